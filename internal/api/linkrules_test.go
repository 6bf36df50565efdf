package api_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// ruleRows counts link rules, audit entries and events.
func (l *lkEnv) ruleRows(t *testing.T) string {
	t.Helper()
	var parts []string
	for _, table := range []string{"link_rules", "audit_log", "events"} {
		var n int
		if err := l.store.DB().QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, fmt.Sprintf("%s=%d", table, n))
	}
	return strings.Join(parts, " ")
}

func (l *lkEnv) createRule(t *testing.T, link int64, body any) map[string]any {
	t.Helper()
	r := l.do("POST", fmt.Sprintf("/v1/links/%d/commission-rules", link), l.write, body)
	if r.status != 201 {
		t.Fatalf("create rule: %d %s", r.status, r.raw)
	}
	return r.data()
}

func TestLinkRuleCRUD(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		l := lkSetup(t, e)
		link := num(l.createLink(t, l.aff, map[string]any{"destination_url": "https://shop.example/"})["id"])
		rules := fmt.Sprintf("/v1/links/%d/commission-rules", link)

		r := e.do("POST", rules, l.write, `{"type":"percentage","value":20.5,"priority":3,
			"conditions":{"product_ids":[" SKU-1 ","SKU-2","SKU-1"],"categories":["Shoes","shoes"],"min_order_amount":50}}`)
		if r.status != 201 || r.body["message"] != "Commission rule created." {
			t.Fatalf("create: %d %s", r.status, r.raw)
		}
		d := r.data()
		want := []string{"conditions", "created_at", "currency", "id", "is_active", "link_id", "priority", "type", "updated_at", "value"}
		if got := sortedKeysOf(d); !slices.Equal(got, want) {
			t.Fatalf("rule fields %v, want %v", got, want)
		}
		// Exact decimals on the wire; lists trimmed and without repeats.
		if !strings.Contains(r.raw, `"value":20.50`) || !strings.Contains(r.raw, `"min_order_amount":50.00`) ||
			!strings.Contains(r.raw, `"product_ids":["SKU-1","SKU-2"]`) || !strings.Contains(r.raw, `"categories":["Shoes"]`) {
			t.Fatalf("rule: %s", r.raw)
		}
		if num(d["link_id"]) != link || d["type"] != "percentage" || d["currency"] != "USD" || num(d["priority"]) != 3 ||
			d["is_active"] != true || d["created_at"] != "2026-11-01T12:00:00.000000Z" {
			t.Fatalf("rule %v", d)
		}
		id := num(d["id"])
		path := fmt.Sprintf("%s/%d", rules, id)

		t.Run("flat in the program currency, defaults", func(t *testing.T) {
			jpy := storetest.InsertAffiliate(t, e.store.DB(), e.ws.ID, "JPY", heldsway.AffiliateActive)
			jl := num(l.createLink(t, jpy, map[string]any{"destination_url": "https://shop.example/jp"})["id"])
			r := e.do("POST", fmt.Sprintf("/v1/links/%d/commission-rules", jl), l.write, map[string]any{"type": "flat", "value": 500})
			d := r.data()
			if r.status != 201 || !strings.Contains(r.raw, `"value":500,`) || d["currency"] != "JPY" || d["conditions"] != nil ||
				num(d["priority"]) != 0 || d["is_active"] != true {
				t.Fatalf("create: %d %s", r.status, r.raw)
			}
			before := l.ruleRows(t)
			r = e.do("POST", fmt.Sprintf("/v1/links/%d/commission-rules", jl), l.write, map[string]any{"type": "flat", "value": 5.5})
			r.expectError(t, 422, "VALIDATION_ERROR", "")
			if got := r.details("value"); len(got) != 1 || got[0] != "The value field must have at most 0 decimal places for JPY." {
				t.Fatalf("details %v", got)
			}
			if l.ruleRows(t) != before {
				t.Fatal("rows written")
			}
			// Empty lists are no condition at all.
			r = e.do("POST", fmt.Sprintf("/v1/links/%d/commission-rules", jl), l.write,
				map[string]any{"type": "percentage", "value": 0, "conditions": map[string]any{"product_ids": []string{}}, "is_active": false})
			if r.status != 201 || r.data()["conditions"] != nil || !strings.Contains(r.raw, `"value":0.00`) || r.data()["is_active"] != false {
				t.Fatalf("create: %d %s", r.status, r.raw)
			}
		})
		t.Run("get", func(t *testing.T) {
			r := e.do("GET", path, l.read, nil)
			if r.status != 200 || num(r.data()["id"]) != id || !strings.Contains(r.raw, `"value":20.50`) {
				t.Fatalf("get: %d %s", r.status, r.raw)
			}
		})
		t.Run("partial update; conditions replaced whole, null removes them", func(t *testing.T) {
			e.clock.Advance(60e9)
			r := e.do("PUT", path, l.write, map[string]any{"priority": 7, "conditions": map[string]any{"categories": []string{"Hats"}}})
			d := r.data()
			if r.status != 200 || r.body["message"] != "Commission rule updated." || num(d["priority"]) != 7 ||
				!strings.Contains(r.raw, `"conditions":{"product_ids":null,"categories":["Hats"],"min_order_amount":null}`) ||
				!strings.Contains(r.raw, `"value":20.50`) || d["updated_at"] != "2026-11-01T12:01:00.000000Z" {
				t.Fatalf("update: %d %s", r.status, r.raw)
			}
			r = e.do("PUT", path, l.write, map[string]any{"conditions": nil, "type": "flat", "value": 4.5})
			if r.status != 200 || r.data()["conditions"] != nil || r.data()["type"] != "flat" || !strings.Contains(r.raw, `"value":4.50`) {
				t.Fatalf("update: %d %s", r.status, r.raw)
			}
			before := l.ruleRows(t)
			// The same values again: nothing written.
			if r := e.do("PUT", path, l.write, map[string]any{"type": "flat", "value": 4.50, "priority": 7}); r.status != 200 {
				t.Fatalf("no-op update: %d %s", r.status, r.raw)
			}
			if l.ruleRows(t) != before {
				t.Fatal("a no-op update wrote rows")
			}
			r = e.do("PUT", path, l.write, map[string]any{"type": "percentage"})
			r.expectError(t, 422, "VALIDATION_ERROR", "")
			if got := r.details("value"); len(got) != 1 || got[0] != "The value field is required when the type changes." {
				t.Fatalf("details %s", r.raw)
			}
			for _, body := range []map[string]any{{"priority": nil}, {"is_active": nil}, {"type": nil}, {"value": nil}} {
				r := e.do("PUT", path, l.write, body)
				if r.status != 422 || l.ruleRows(t) != before {
					t.Fatalf("%v: %d %s", body, r.status, r.raw)
				}
			}
			if g := e.do("GET", path, l.read, nil).data(); g["type"] != "flat" || num(g["priority"]) != 7 {
				t.Fatalf("stored %v", g)
			}
		})
		t.Run("other workspace, unknown link and another link's rule are 404; nothing changes", func(t *testing.T) {
			other := l.createLink(t, l.aff, map[string]any{"destination_url": "https://shop.example/o"})
			otherPath := fmt.Sprintf("/v1/links/%d/commission-rules/%d", num(other["id"]), id)
			before := l.ruleRows(t)
			for _, c := range []struct{ method, path, tok, msg string }{
				{"GET", rules, l.otherTok, "Link not found."},
				{"POST", rules, l.otherTok, "Link not found."},
				{"GET", path, l.otherTok, "Link not found."},
				{"PUT", path, l.otherTok, "Link not found."},
				{"DELETE", path, l.otherTok, "Link not found."},
				{"GET", fmt.Sprintf("/v1/links/%d/commission-rules", link+1000), l.read, "Link not found."},
				{"GET", otherPath, l.read, "Commission rule not found."},
				{"PUT", otherPath, l.write, "Commission rule not found."},
				{"DELETE", otherPath, l.write, "Commission rule not found."},
				{"GET", fmt.Sprintf("%s/%d", rules, id+1000), l.read, "Commission rule not found."},
			} {
				var body any
				switch c.method {
				case "POST":
					body = map[string]any{"type": "percentage", "value": 50}
				case "PUT":
					body = map[string]any{"is_active": false}
				}
				e.do(c.method, c.path, c.tok, body).expectError(t, 404, "NOT_FOUND", c.msg)
			}
			if l.ruleRows(t) != before {
				t.Fatal("rows written")
			}
		})
		t.Run("scopes", func(t *testing.T) {
			none := e.token("orders:read")
			for _, c := range []struct{ method, path, tok string }{
				{"GET", rules, none},
				{"GET", path, none},
				{"POST", rules, l.read},
				{"PUT", path, l.read},
				{"DELETE", path, l.read},
				{"GET", rules, l.write},
				{"GET", fmt.Sprintf("/v1/links/%d/stats", link), l.write},
			} {
				e.do(c.method, c.path, c.tok, map[string]any{}).expectError(t, 403, "FORBIDDEN", "Insufficient scope.")
			}
		})
		t.Run("delete", func(t *testing.T) {
			r := e.do("DELETE", path, l.write, nil)
			if r.status != 200 || r.body["message"] != "Commission rule deleted." || num(r.data()["id"]) != id {
				t.Fatalf("delete: %d %s", r.status, r.raw)
			}
			e.do("GET", path, l.read, nil).expectError(t, 404, "NOT_FOUND", "Commission rule not found.")
			var types, actions []string
			for _, q := range []struct {
				sql string
				out *[]string
			}{
				{`SELECT type FROM events WHERE resource_type = 'link_rule' AND resource_id = $1 ORDER BY id`, &types},
				{`SELECT action FROM audit_log WHERE resource_type = 'link_rule' AND resource_id = $1 ORDER BY id`, &actions},
			} {
				rows, err := e.store.DB().Query(q.sql, id)
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var s string
					_ = rows.Scan(&s)
					*q.out = append(*q.out, s)
				}
				rows.Close()
			}
			if !slices.Equal(types, []string{"link_rule.created", "link_rule.updated", "link_rule.updated", "link_rule.deleted"}) ||
				!slices.Equal(actions, []string{"link_rule.create", "link_rule.update", "link_rule.update", "link_rule.delete"}) {
				t.Fatalf("events %v, audit %v", types, actions)
			}
		})
		t.Run("deleting the link deletes its rules", func(t *testing.T) {
			ln := num(l.createLink(t, l.aff, map[string]any{"destination_url": "https://shop.example/d"})["id"])
			l.createRule(t, ln, map[string]any{"type": "percentage", "value": 5})
			if r := e.do("DELETE", fmt.Sprintf("/v1/links/%d", ln), l.write, nil); r.status != 200 {
				t.Fatalf("delete link: %d %s", r.status, r.raw)
			}
			var n int
			if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM link_rules WHERE link_id = $1`, ln).Scan(&n); err != nil || n != 0 {
				t.Fatalf("%d rules left, %v", n, err)
			}
		})
	})
}

func TestLinkRuleValidation(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		l := lkSetup(t, e)
		link := num(l.createLink(t, l.aff, map[string]any{"destination_url": "https://shop.example/"})["id"])
		rules := fmt.Sprintf("/v1/links/%d/commission-rules", link)
		many := make([]string, 101)
		for i := range many {
			many[i] = fmt.Sprintf("SKU-%d", i)
		}
		for _, c := range []struct {
			name  string
			body  any
			field string
			msg   string
		}{
			{"type missing", map[string]any{"value": 10}, "type", "The type field is required."},
			{"type invalid", map[string]any{"type": "tiered", "value": 10}, "type", "The selected type is invalid. Allowed: percentage, flat."},
			{"value missing", map[string]any{"type": "flat"}, "value", "The value field is required."},
			{"value not a number", map[string]any{"type": "flat", "value": "10"}, "value", "The value field must be a number."},
			{"value negative", map[string]any{"type": "flat", "value": -1}, "value", "The value field must be at least 0."},
			{"percentage above 100", map[string]any{"type": "percentage", "value": 100.01}, "value", "The value field must be between 0 and 100 for a percentage."},
			{"percentage three decimals", map[string]any{"type": "percentage", "value": 10.125}, "value", "The value field must have at most two decimal places."},
			{"flat too precise", map[string]any{"type": "flat", "value": 1.234}, "value", "The value field must have at most 2 decimal places for USD."},
			{"flat absurd", map[string]any{"type": "flat", "value": 1e20}, "value", "The value field is out of range."},
			{"priority negative", map[string]any{"type": "flat", "value": 1, "priority": -1}, "priority", "The priority field must be at least 0."},
			{"priority too large", map[string]any{"type": "flat", "value": 1, "priority": 100001}, "priority", "The priority field must not be greater than 100000."},
			{"priority fractional", map[string]any{"type": "flat", "value": 1, "priority": 1.5}, "priority", "The priority field must be an integer."},
			{"is_active not bool", map[string]any{"type": "flat", "value": 1, "is_active": "yes"}, "is_active", "The is active field must be true or false."},
			{"unknown field", map[string]any{"type": "flat", "value": 1, "rate": 5}, "rate", "The rate field is not allowed."},
			{"conditions not an object", map[string]any{"type": "flat", "value": 1, "conditions": []int{1}}, "conditions", "The conditions field must be an object."},
			{"unknown condition", map[string]any{"type": "flat", "value": 1, "conditions": map[string]any{"sku": "x"}}, "conditions.sku", "The conditions.sku field is not allowed."},
			{"too many product ids", map[string]any{"type": "flat", "value": 1, "conditions": map[string]any{"product_ids": many}},
				"conditions.product_ids", "The conditions.product_ids field must not have more than 100 items."},
			{"empty product id", map[string]any{"type": "flat", "value": 1, "conditions": map[string]any{"product_ids": []string{"a", "  "}}},
				"conditions.product_ids.1", "The conditions.product_ids.1 field must not be empty."},
			{"long category", map[string]any{"type": "flat", "value": 1, "conditions": map[string]any{"categories": []string{strings.Repeat("x", 256)}}},
				"conditions.categories.0", "The conditions.categories.0 field must not be greater than 255 characters."},
			{"category not a string", map[string]any{"type": "flat", "value": 1, "conditions": map[string]any{"categories": []any{1}}},
				"conditions.categories.0", "The conditions.categories.0 field must be a string."},
			{"min order negative", map[string]any{"type": "flat", "value": 1, "conditions": map[string]any{"min_order_amount": -5}},
				"conditions.min_order_amount", "The conditions.min_order_amount field must be at least 0."},
			{"min order too precise", map[string]any{"type": "flat", "value": 1, "conditions": map[string]any{"min_order_amount": 0.001}},
				"conditions.min_order_amount", "The conditions.min_order_amount field must have at most 2 decimal places for USD."},
		} {
			t.Run(c.name, func(t *testing.T) {
				before := l.ruleRows(t)
				r := e.do("POST", rules, l.write, c.body)
				r.expectError(t, 422, "VALIDATION_ERROR", "")
				if got := r.details(c.field); !slices.Contains(got, c.msg) {
					t.Fatalf("details[%s] = %v, want %q (%s)", c.field, got, c.msg, r.raw)
				}
				if l.ruleRows(t) != before {
					t.Fatal("rows written")
				}
			})
		}
		t.Run("at most 100 rules per link", func(t *testing.T) {
			now := e.clock.Now().UnixMicro()
			for i := 0; i < heldsway.LinkRuleMaxPerLink; i++ {
				if _, err := e.store.DB().Exec(`INSERT INTO link_rules (workspace_id, link_id, type, value, currency, priority,
					created_at, updated_at) VALUES ($1, $2, 'percentage', 100, 'USD', $3, $4, $4)`, e.ws.ID, link, i, now); err != nil {
					t.Fatal(err)
				}
			}
			before := l.ruleRows(t)
			e.do("POST", rules, l.write, map[string]any{"type": "flat", "value": 1}).
				expectError(t, 409, "CONFLICT", "A link can have at most 100 commission rules.")
			if l.ruleRows(t) != before {
				t.Fatal("rows written")
			}
		})
	})
}

func TestLinkRuleList(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		l := lkSetup(t, e)
		link := num(l.createLink(t, l.aff, map[string]any{"destination_url": "https://shop.example/"})["id"])
		other := num(l.createLink(t, l.aff, map[string]any{"destination_url": "https://shop.example/2"})["id"])
		l.createRule(t, other, map[string]any{"type": "flat", "value": 1})
		// Priorities 5, 1, 3, 1, 0, 5, 2: evaluation order is by priority, then id.
		var ids []int64
		for _, p := range []int{5, 1, 3, 1, 0, 5, 2} {
			e.clock.Advance(1e6)
			ids = append(ids, num(l.createRule(t, link, map[string]any{"type": "percentage", "value": p, "priority": p})["id"]))
		}
		evalOrder := []int64{ids[4], ids[1], ids[3], ids[6], ids[2], ids[0], ids[5]}
		walk := func(query string) []int64 {
			t.Helper()
			var got []int64
			cursor := ""
			for pages := 0; pages < 10; pages++ {
				q := fmt.Sprintf("/v1/links/%d/commission-rules?per_page=3%s", link, query)
				if cursor != "" {
					q += "&cursor=" + cursor
				}
				r := e.do("GET", q, l.read, nil)
				if r.status != 200 {
					t.Fatalf("%s: %d %s", q, r.status, r.raw)
				}
				for _, it := range listItems(r) {
					got = append(got, num(it.(map[string]any)["id"]))
				}
				meta := r.data()["meta"].(map[string]any)
				c, _ := meta["next_cursor"].(string)
				if c == "" {
					if meta["has_more"] != false {
						t.Fatalf("meta %v", meta)
					}
					return got
				}
				cursor = c
			}
			t.Fatal("too many pages")
			return nil
		}
		if got := walk(""); !slices.Equal(got, evalOrder) {
			t.Fatalf("default order %v, want %v", got, evalOrder)
		}
		rev := slices.Clone(evalOrder)
		slices.Reverse(rev)
		if got := walk("&direction=desc"); !slices.Equal(got, rev) {
			t.Fatalf("desc %v, want %v", got, rev)
		}
		newest := slices.Clone(ids)
		slices.Reverse(newest)
		if got := walk("&sort=created_at&direction=desc"); !slices.Equal(got, newest) {
			t.Fatalf("created_at desc %v, want %v", got, newest)
		}
		e.do("GET", fmt.Sprintf("/v1/links/%d/commission-rules?sort=value", link), l.read, nil).expectError(t, 422, "VALIDATION_ERROR", "")
	})
}

func TestLinkStats(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		l := lkSetup(t, e)
		ctx := context.Background()
		link := num(l.createLink(t, l.aff, map[string]any{"destination_url": "https://shop.example/"})["id"])
		other := num(l.createLink(t, l.aff, map[string]any{"destination_url": "https://shop.example/2"})["id"])
		at := func(s string) time.Time {
			t.Helper()
			v, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		var clicks []heldsway.Click
		for i, c := range []struct {
			link    int64
			visitor string
			at      string
		}{
			{link, "v1", "2026-10-31T10:00:00Z"},
			{link, "v1", "2026-10-31T11:00:00Z"},
			{link, "v2", "2026-10-25T08:00:00Z"},
			{link, "", "2026-10-20T08:00:00Z"}, // no visitor cookie: a visitor each
			{link, "", "2026-10-20T09:00:00Z"},
			{link, "v4", "2026-10-02T00:00:00Z"},        // first instant of the default range
			{link, "v5", "2026-10-01T23:59:59.999999Z"}, // last instant before it
			{link, "v3", "2026-09-01T00:00:00Z"},
			{other, "v1", "2026-10-30T00:00:00Z"},
		} {
			clicks = append(clicks, heldsway.Click{WorkspaceID: e.ws.ID, LinkID: c.link, AffiliateID: l.aff, ProgramID: 1,
				ClickID: fmt.Sprintf("clk_stats_%d", i), VisitorID: c.visitor, CreatedAt: at(c.at)})
		}
		if err := e.store.InsertClicks(ctx, clicks); err != nil {
			t.Fatal(err)
		}
		order := func(ref string, linkID int64, status, cur string, total, refunded int64, conv string, lines ...storetest.CommissionSeed) {
			t.Helper()
			id, _ := storetest.InsertOrder(t, e.store.DB(), e.ws.ID, storetest.OrderSeed{OrderID: ref, Status: status, Currency: cur,
				Total: total, Subtotal: total, AffiliateID: l.aff, ConvertedAt: at(conv), Lines: lines})
			if _, err := e.store.DB().Exec(`UPDATE orders SET link_id = $1, refunded_amount = $2, attribution = 'click' WHERE id = $3`,
				linkID, refunded, id); err != nil {
				t.Fatal(err)
			}
		}
		line := func(amount, reversed int64, status string, tier int) storetest.CommissionSeed {
			return storetest.CommissionSeed{AffiliateID: l.aff, Tier: tier, Amount: amount, Reversed: reversed, Status: status}
		}
		order("A", link, "pending", "USD", 10000, 0, "2026-10-31T12:00:00Z", line(1000, 0, "pending", 1), line(200, 0, "approved", 2))
		order("B", link, "approved", "USD", 5000, 1000, "2026-10-15T12:00:00Z", line(500, 100, "paid", 1))
		order("C", link, "approved", "EUR", 3000, 0, "2026-10-03T12:00:00Z", line(300, 0, "approved", 1))
		order("D", link, "rejected", "USD", 99900, 0, "2026-10-20T12:00:00Z", line(9990, 0, "rejected", 1))
		order("E", link, "cancelled", "USD", 7000, 7000, "2026-10-21T12:00:00Z", line(700, 700, "reversed", 1))
		order("F", link, "pending", "USD", 4000, 0, "2026-09-01T12:00:00Z", line(400, 0, "pending", 1))
		order("G", other, "pending", "USD", 6000, 0, "2026-10-30T12:00:00Z", line(600, 0, "pending", 1))
		// The orders were inserted by raw SQL, past the write paths: the
		// rollups learn of them from a rebuild.
		if _, err := e.store.RebuildRollups(ctx, e.ws.ID); err != nil {
			t.Fatal(err)
		}
		stats := fmt.Sprintf("/v1/links/%d/stats", link)

		r := e.do("GET", stats, l.read, nil)
		if r.status != 200 {
			t.Fatalf("stats: %d %s", r.status, r.raw)
		}
		want := fmt.Sprintf(`{"link_id":%d,"clicks":6,"unique_visitors":5,"conversions":3,`+
			`"revenue":[{"currency":"EUR","amount":30.00},{"currency":"USD","amount":140.00}],`+
			`"commission":[{"currency":"EUR","amount":3.00},{"currency":"USD","amount":16.00}],`+
			`"conversion_rate":50.00,"from":"2026-10-02","to":"2026-11-01"}`, link)
		if !strings.Contains(r.raw, `"data":`+want) {
			t.Fatalf("default range:\n got %s\nwant %s", r.raw, want)
		}
		for _, c := range []struct{ query, want string }{
			{"?from=2026-10-31&to=2026-10-31", `"clicks":2,"unique_visitors":1,"conversions":1,"revenue":[{"currency":"USD","amount":100.00}],` +
				`"commission":[{"currency":"USD","amount":12.00}],"conversion_rate":50.00,"from":"2026-10-31","to":"2026-10-31"`},
			{"?from=2026-09-15&to=2026-09-16", `"clicks":0,"unique_visitors":0,"conversions":0,"revenue":[],"commission":[],` +
				`"conversion_rate":0.00,"from":"2026-09-15","to":"2026-09-16"`},
			{"?from=2026-08-01&to=2026-10-01", `"clicks":2,"unique_visitors":2,"conversions":1,"revenue":[{"currency":"USD","amount":40.00}],` +
				`"commission":[{"currency":"USD","amount":4.00}],"conversion_rate":50.00,"from":"2026-08-01","to":"2026-10-01"`},
			{"?to=2026-10-20", `"clicks":4,"unique_visitors":4,"conversions":2,` +
				`"revenue":[{"currency":"EUR","amount":30.00},{"currency":"USD","amount":40.00}],` +
				`"commission":[{"currency":"EUR","amount":3.00},{"currency":"USD","amount":4.00}],"conversion_rate":50.00,` +
				`"from":"2026-09-20","to":"2026-10-20"`},
			{"?from=2026-10-25", `"clicks":3,"unique_visitors":2,"conversions":1,"revenue":[{"currency":"USD","amount":100.00}],` +
				`"commission":[{"currency":"USD","amount":12.00}],"conversion_rate":33.33,"from":"2026-10-25","to":"2026-11-01"`},
		} {
			r := e.do("GET", stats+c.query, l.read, nil)
			if r.status != 200 || !strings.Contains(r.raw, c.want) {
				t.Errorf("%s:\n got %d %s\nwant %s", c.query, r.status, r.raw, c.want)
			}
		}
		for _, c := range []struct{ query, field, msg string }{
			{"?to=2026-11-02", "to", "The to field must be a date before or equal to today."},
			{"?from=2026-10-05&to=2026-10-01", "to", "The to field must be a date after or equal to from."},
			{"?from=2026-11-05", "from", "The from field must be a date before or equal to to."},
			{"?from=2026-13-01", "from", "The from field must be a date in YYYY-MM-DD format."},
		} {
			r := e.do("GET", stats+c.query, l.read, nil)
			r.expectError(t, 422, "VALIDATION_ERROR", "")
			if got := r.details(c.field); !slices.Contains(got, c.msg) {
				t.Errorf("%s: details %s", c.query, r.raw)
			}
		}
		e.do("GET", stats, l.otherTok, nil).expectError(t, 404, "NOT_FOUND", "Link not found.")
		e.do("GET", fmt.Sprintf("/v1/links/%d/stats", other+1000), l.read, nil).expectError(t, 404, "NOT_FOUND", "Link not found.")
	})
}
