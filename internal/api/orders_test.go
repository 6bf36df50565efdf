package api_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/auth"
	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// The orders review API (digest §5.7) and GET /v1/commissions. Orders are
// seeded by raw SQL (storetest.InsertOrder), so these tests exercise review
// alone; TestOrderLifecycleThroughConversions drives the whole path.

type ordAPI struct {
	e            *env
	prog         int64
	alice, bob   int64
	other        *heldsway.Workspace
	otherAff     int64
	read, write  string // orders:read; orders:read + orders:write
	none         string // a token without the orders scopes
	otherReadTok string // orders:read in the other workspace
}

func ordSetupAPI(t *testing.T, e *env) *ordAPI {
	t.Helper()
	db := e.store.DB()
	a := &ordAPI{e: e, prog: storetest.DefaultProgram(t, db, e.ws.ID)}
	a.alice = storetest.SeedAffiliate(t, db, e.ws.ID, a.prog, "Alice Able")
	a.bob = storetest.SeedAffiliate(t, db, e.ws.ID, a.prog, "Bob Baker")
	other, err := e.auth.CreateWorkspace(context.Background(), "Other "+e.engine, "basic")
	if err != nil {
		t.Fatal(err)
	}
	a.other = other
	a.otherAff = storetest.SeedAffiliate(t, db, other.ID, storetest.DefaultProgram(t, db, other.ID), "Olga Other")
	a.read = e.token(heldsway.ScopeOrdersRead)
	a.write = e.token(heldsway.ScopeOrdersRead, heldsway.ScopeOrdersWrite)
	a.none = e.token(heldsway.ScopeAffiliatesRead)
	k, secret := e.newKey(other, auth.KeyInput{Scopes: []string{heldsway.ScopeOrdersRead}})
	a.otherReadTok = e.exchange(k.Key, secret)
	return a
}

// order seeds an order of the env's workspace attributed to aff (0: none)
// with one commission line of comm minor units, and returns its id.
func (a *ordAPI) order(t *testing.T, s storetest.OrderSeed) int64 {
	t.Helper()
	if s.AffiliateID != 0 && s.ProgramID == 0 {
		s.ProgramID = a.prog
	}
	id, _ := storetest.InsertOrder(t, a.e.store.DB(), a.e.ws.ID, s)
	return id
}

func ordLine(aff, amount int64) []storetest.CommissionSeed {
	return []storetest.CommissionSeed{{AffiliateID: aff, Amount: amount, Rate: ptrI64(1000), BaseAmount: amount * 10}}
}

func ptrI64(v int64) *int64 { return &v }

// counts is the rows a review write may add or change, to prove a refused
// request wrote nothing.
func (a *ordAPI) counts(t *testing.T) string {
	t.Helper()
	var out []string
	for _, q := range []string{`SELECT COUNT(*) FROM audit_log WHERE workspace_id = $1`,
		`SELECT COUNT(*) FROM events WHERE workspace_id = $1`,
		`SELECT COUNT(*) || ':' || COALESCE(SUM(refunded_amount), 0) || ':' || COALESCE(SUM(commission_amount), 0) FROM orders WHERE workspace_id = $1`,
		`SELECT COUNT(*) || ':' || COALESCE(SUM(reversed_amount), 0) FROM commissions WHERE workspace_id = $1`,
		`SELECT status FROM orders WHERE workspace_id = $1 ORDER BY id`} {
		rows, err := a.e.store.DB().Query(q, a.e.ws.ID)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			_ = rows.Scan(&s)
			out = append(out, s)
		}
		rows.Close()
	}
	return strings.Join(out, " ")
}

func ordItems(r *resp) []map[string]any {
	l, _ := r.data()["items"].([]any)
	out := []map[string]any{}
	for _, it := range l {
		out = append(out, it.(map[string]any))
	}
	return out
}

func ordNum(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

// ordRefs lists the merchant order ids of every page of path (cursor paging).
func (a *ordAPI) ordRefs(t *testing.T, path string) []string {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	refs := []string{}
	cursor := ""
	for range 50 {
		p := path + sep + "per_page=2"
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		r := a.e.do("GET", p, a.read, nil)
		if r.status != 200 {
			t.Fatalf("GET %s: %d %s", p, r.status, r.raw)
		}
		for _, it := range ordItems(r) {
			refs = append(refs, it["order_id"].(string))
		}
		meta := r.data()["meta"].(map[string]any)
		next, _ := meta["next_cursor"].(string)
		if next == "" {
			if meta["has_more"] != false {
				t.Fatalf("no cursor but has_more: %s", r.raw)
			}
			return refs
		}
		cursor = next
	}
	t.Fatal("too many pages")
	return nil
}

func TestOrderListAPI(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		a := ordSetupAPI(t, e)
		day := func(d int) time.Time { return time.Date(2026, 10, d, 9, 30, 0, 0, time.UTC) }
		a.order(t, storetest.OrderSeed{OrderID: "ORD001", AffiliateID: a.alice, Total: 11000, Subtotal: 10000,
			CommissionRate: ptrI64(1000), ConvertedAt: day(1), Lines: ordLine(a.alice, 1000)})
		a.order(t, storetest.OrderSeed{OrderID: "ORD002", Status: "approved", AffiliateID: a.bob, Total: 5000, Subtotal: 5000,
			ConvertedAt: day(2), Lines: ordLine(a.bob, 500)})
		a.order(t, storetest.OrderSeed{OrderID: "ORD003", Status: "rejected", AffiliateID: a.alice, Total: 700, Subtotal: 700,
			ConvertedAt: day(3), CommissionAmount: ptrI64(0)})
		a.order(t, storetest.OrderSeed{OrderID: "ORD004", Status: "cancelled", Total: 30000, Subtotal: 30000, ConvertedAt: day(4)})
		a.order(t, storetest.OrderSeed{OrderID: "ORD005", AffiliateID: a.bob, Total: 2500, Subtotal: 2500, ConvertedAt: day(5),
			Lines: ordLine(a.bob, 250)})
		storetest.InsertOrder(t, e.store.DB(), a.other.ID, storetest.OrderSeed{OrderID: "ORD001", Total: 1, Subtotal: 1})

		cases := []struct {
			query string
			want  []string
		}{
			{"", []string{"ORD005", "ORD004", "ORD003", "ORD002", "ORD001"}},
			{"direction=asc", []string{"ORD001", "ORD002", "ORD003", "ORD004", "ORD005"}},
			{"status=pending", []string{"ORD005", "ORD001"}},
			{"status=cancelled", []string{"ORD004"}},
			{fmt.Sprintf("affiliate_id=%d", a.alice), []string{"ORD003", "ORD001"}},
			{"from=2026-10-02&to=2026-10-04", []string{"ORD004", "ORD003", "ORD002"}},
			{"from=2026-10-05", []string{"ORD005"}},
			{"to=2026-10-01", []string{"ORD001"}},
			{"search=ord00", []string{"ORD005", "ORD004", "ORD003", "ORD002", "ORD001"}},
			{"search=baker", []string{"ORD005", "ORD002"}},
			{"search=%25", []string{}},
			{"sort=order_total&direction=desc", []string{"ORD004", "ORD001", "ORD002", "ORD005", "ORD003"}},
			{"sort=order_total&direction=asc", []string{"ORD003", "ORD005", "ORD002", "ORD001", "ORD004"}},
			{"sort=commission_amount&direction=desc", []string{"ORD001", "ORD002", "ORD005", "ORD004", "ORD003"}},
			{"sort=order_id&direction=asc", []string{"ORD001", "ORD002", "ORD003", "ORD004", "ORD005"}},
			{"sort=status&direction=asc", []string{"ORD002", "ORD004", "ORD001", "ORD005", "ORD003"}},
			{"sort=converted_at&direction=desc&status=pending&affiliate_id=" + strconv.FormatInt(a.bob, 10), []string{"ORD005"}},
		}
		for _, c := range cases {
			t.Run("query "+c.query, func(t *testing.T) {
				got := a.ordRefs(t, "/v1/orders?"+c.query)
				if !slices.Equal(got, c.want) {
					t.Fatalf("got %v, want %v", got, c.want)
				}
				// /v1/conversions answers for the same resource.
				if alias := a.ordRefs(t, "/v1/conversions?"+c.query); !slices.Equal(alias, got) {
					t.Fatalf("alias %v, orders %v", alias, got)
				}
			})
		}

		t.Run("item shape with exact amounts", func(t *testing.T) {
			r := e.do("GET", "/v1/orders?search=ORD001", a.read, nil)
			items := ordItems(r)
			if len(items) != 1 {
				t.Fatalf("%s", r.raw)
			}
			it := items[0]
			for _, k := range []string{"id", "order_id", "status", "order_total", "subtotal", "commission_amount", "commission_rate",
				"currency", "converted_at", "affiliate", "link_id", "click_id", "commissions"} {
				if _, ok := it[k]; !ok {
					t.Fatalf("item lacks %s: %v", k, it)
				}
			}
			if _, ok := it["line_items"]; ok {
				t.Fatal("list items carry line_items")
			}
			aff := it["affiliate"].(map[string]any)
			if ordNum(aff["id"]) != a.alice || aff["name"] != "Alice Able" || aff["referral_code"] != "ALICEABLE" {
				t.Fatalf("affiliate = %v", aff)
			}
			for _, frag := range []string{`"order_total":110.00`, `"subtotal":100.00`, `"commission_amount":10.00`,
				`"commission_rate":10.00`, `"converted_at":"2026-10-01T09:30:00.000000Z"`} {
				if !strings.Contains(r.raw, frag) {
					t.Fatalf("body lacks %s: %s", frag, r.raw)
				}
			}
			r = e.do("GET", "/v1/orders?search=ORD004", a.read, nil)
			if it := ordItems(r)[0]; it["affiliate"] != nil || len(it["commissions"].([]any)) != 0 {
				t.Fatalf("unattributed = %v", it)
			}
		})

		t.Run("page compatibility", func(t *testing.T) {
			r := e.do("GET", "/v1/orders?per_page=2&page=2", a.read, nil)
			var got []string
			for _, it := range ordItems(r) {
				got = append(got, it["order_id"].(string))
			}
			if !slices.Equal(got, []string{"ORD003", "ORD002"}) || ordNum(r.data()["meta"].(map[string]any)["current_page"]) != 2 {
				t.Fatalf("%s", r.raw)
			}
		})

		t.Run("invalid input is 422 with details", func(t *testing.T) {
			bad := []struct{ query, field string }{
				{"status=paid", "status"},
				{"search=" + strings.Repeat("x", 256), "search"},
				{fmt.Sprintf("affiliate_id=%d", a.otherAff), "affiliate_id"},
				{"affiliate_id=0", "affiliate_id"},
				{"affiliate_id=abc", "affiliate_id"},
				{"from=2026-13-01", "from"},
				{"to=01/10/2026", "to"},
				{"from=2026-10-05&to=2026-10-04", "to"},
				{"sort=customer", "sort"},
				{"direction=up", "direction"},
				{"per_page=101", "per_page"},
				{"cursor=nonsense", "cursor"},
			}
			for _, b := range bad {
				for _, path := range []string{"/v1/orders?", "/v1/orders/stats?", "/v1/orders/export?", "/v1/conversions?"} {
					listOnly := b.field == "per_page" || b.field == "cursor"
					if (listOnly && strings.Contains(path, "export")) ||
						((listOnly || b.field == "sort" || b.field == "direction") && strings.Contains(path, "stats")) {
						continue // parameters these routes do not take
					}
					r := e.do("GET", path+b.query, a.read, nil)
					r.expectError(t, 422, "VALIDATION_ERROR", "")
					if len(r.details(b.field)) == 0 {
						t.Fatalf("%s%s: no details on %s: %s", path, b.query, b.field, r.raw)
					}
				}
			}
			r := e.do("GET", fmt.Sprintf("/v1/orders?affiliate_id=%d", a.otherAff), a.read, nil)
			if d := r.details("affiliate_id"); d[0] != "The selected affiliate id is invalid." {
				t.Fatalf("details %v", d)
			}
			r = e.do("GET", "/v1/orders?from=2026-10-05&to=2026-10-04", a.read, nil)
			if d := r.details("to"); d[0] != "The to field must be a date after or equal to from." {
				t.Fatalf("details %v", d)
			}
		})

		t.Run("workspaces are isolated", func(t *testing.T) {
			r := e.do("GET", "/v1/orders", a.otherReadTok, nil)
			if items := ordItems(r); len(items) != 1 || !strings.Contains(r.raw, `"order_total":0.01`) {
				t.Fatalf("other workspace sees %s", r.raw)
			}
		})

		t.Run("scopes", func(t *testing.T) {
			for _, p := range []string{"/v1/orders", "/v1/orders/stats", "/v1/orders/export", "/v1/conversions", "/v1/commissions"} {
				e.do("GET", p, a.none, nil).expectError(t, 403, "FORBIDDEN", "Insufficient scope.")
				e.do("GET", p, "", nil).expectError(t, 401, "UNAUTHORIZED", "")
			}
		})
	})
}

func TestOrderGetAPI(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		a := ordSetupAPI(t, e)
		id, cids := storetest.InsertOrder(t, e.store.DB(), e.ws.ID, storetest.OrderSeed{OrderID: "#135419", AffiliateID: a.alice,
			ProgramID: a.prog, Total: 13450, Subtotal: 12450, Tax: 1000, CommissionRate: ptrI64(1000),
			Items: []storetest.ItemSeed{{ProductID: "sku-1", Name: "Lamp", Category: "home", Quantity: 3, Price: 4150}},
			Lines: []storetest.CommissionSeed{{AffiliateID: a.alice, Tier: 1, Amount: 1245, Rate: ptrI64(1000), BaseAmount: 12450},
				{AffiliateID: a.bob, Tier: 2, Amount: 249, Rate: ptrI64(200), Rule: "program_tier_rate", BaseAmount: 12450}}})
		jpy := a.order(t, storetest.OrderSeed{OrderID: "JP-1", Currency: "JPY", AffiliateID: a.alice, Total: 500, Subtotal: 500,
			Lines: ordLine(a.alice, 50)})
		otherID, _ := storetest.InsertOrder(t, e.store.DB(), a.other.ID, storetest.OrderSeed{OrderID: "X", Total: 1, Subtotal: 1})

		for _, path := range []string{"/v1/orders/", "/v1/conversions/", "/api/v1/orders/"} {
			r := e.do("GET", path+strconv.FormatInt(id, 10), a.read, nil)
			if r.status != 200 {
				t.Fatalf("%s: %d %s", path, r.status, r.raw)
			}
			d := r.data()
			if d["order_id"] != "#135419" || ordNum(d["id"]) != id {
				t.Fatalf("%v", d)
			}
			items := d["line_items"].([]any)
			if len(items) != 1 || items[0].(map[string]any)["name"] != "Lamp" || !strings.Contains(r.raw, `"price":41.50`) {
				t.Fatalf("line items %s", r.raw)
			}
			comms := d["commissions"].([]any)
			if len(comms) != 2 {
				t.Fatalf("%s", r.raw)
			}
			c0, c1 := comms[0].(map[string]any), comms[1].(map[string]any)
			if ordNum(c0["id"]) != cids[0] || ordNum(c0["affiliate_id"]) != a.alice || ordNum(c0["tier"]) != 1 ||
				c0["rule"] != "program_rate" || c0["status"] != "pending" || c0["explanation"] != "seeded line" ||
				ordNum(c1["affiliate_id"]) != a.bob || c1["rule"] != "program_tier_rate" {
				t.Fatalf("breakdown %v", comms)
			}
			for _, frag := range []string{`"amount":12.45`, `"reversed_amount":0.00`, `"rate":10.00`, `"base_amount":124.50`,
				`"amount":2.49`, `"rate":2.00`, `"order_total":134.50`, `"tax":10.00`} {
				if !strings.Contains(r.raw, frag) {
					t.Fatalf("lacks %s: %s", frag, r.raw)
				}
			}
		}
		r := e.do("GET", fmt.Sprintf("/v1/orders/%d", jpy), a.read, nil)
		if !strings.Contains(r.raw, `"order_total":500,`) || !strings.Contains(r.raw, `"amount":50,`) {
			t.Fatalf("JPY amounts: %s", r.raw)
		}
		for _, p := range []string{fmt.Sprintf("/v1/orders/%d", otherID), "/v1/orders/999999", fmt.Sprintf("/v1/conversions/%d", otherID)} {
			e.do("GET", p, a.read, nil).expectError(t, 404, "NOT_FOUND", "Order not found.")
		}
		e.do("GET", "/v1/orders/0", a.read, nil).expectError(t, 422, "VALIDATION_ERROR", "")
		e.do("GET", fmt.Sprintf("/v1/orders/%d", id), a.none, nil).expectError(t, 403, "FORBIDDEN", "")
	})
}

func TestOrderReviewAPI(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		a := ordSetupAPI(t, e)
		p1 := a.order(t, storetest.OrderSeed{OrderID: "P1", AffiliateID: a.alice, Total: 1000, Subtotal: 1000, Lines: ordLine(a.alice, 100)})
		p2 := a.order(t, storetest.OrderSeed{OrderID: "P2", AffiliateID: a.alice, Total: 1000, Subtotal: 1000, Lines: ordLine(a.alice, 100)})
		otherID, _ := storetest.InsertOrder(t, e.store.DB(), a.other.ID, storetest.OrderSeed{OrderID: "X", Total: 1, Subtotal: 1})

		t.Run("approve, then every review of it is 409", func(t *testing.T) {
			r := e.do("POST", fmt.Sprintf("/v1/orders/%d/approve", p1), a.write, nil)
			if r.status != 200 || r.body["message"] != "Order approved." || r.data()["status"] != "approved" ||
				r.data()["approved_at"] == nil || r.data()["commissions"].([]any)[0].(map[string]any)["status"] != "approved" {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			before := a.counts(t)
			e.do("POST", fmt.Sprintf("/v1/orders/%d/approve", p1), a.write, nil).expectError(t, 409, "INVALID_STATUS_TRANSITION",
				"Cannot approve an order whose status is approved: only pending orders can be approved.")
			e.do("POST", fmt.Sprintf("/v1/orders/%d/reject", p1), a.write, map[string]any{"reason": "x"}).expectError(t, 409,
				"INVALID_STATUS_TRANSITION", "Cannot reject an order whose status is approved: only pending orders can be rejected.")
			if a.counts(t) != before {
				t.Fatal("a refused review wrote rows")
			}
		})

		t.Run("reject with a reason", func(t *testing.T) {
			r := e.do("POST", fmt.Sprintf("/api/v1/orders/%d/reject", p2), a.write, map[string]any{"reason": "Test order"})
			if r.status != 200 || r.data()["status"] != "rejected" || r.data()["rejected_at"] == nil || !strings.Contains(r.raw, `"commission_amount":0.00`) {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			var changes string
			if err := e.store.DB().QueryRow(`SELECT changes FROM audit_log WHERE workspace_id = $1 AND action = 'order.reject'`,
				e.ws.ID).Scan(&changes); err != nil || !strings.Contains(changes, "Test order") {
				t.Fatalf("audit %s %v", changes, err)
			}
			var actor string
			if err := e.store.DB().QueryRow(`SELECT actor_type FROM audit_log WHERE workspace_id = $1 AND action = 'order.reject'`,
				e.ws.ID).Scan(&actor); err != nil || actor != "api_key" {
				t.Fatalf("actor %s %v", actor, err)
			}
		})

		t.Run("refused requests write nothing", func(t *testing.T) {
			p3 := a.order(t, storetest.OrderSeed{OrderID: "P3", Total: 1000, Subtotal: 1000})
			before := a.counts(t)
			e.do("POST", fmt.Sprintf("/v1/orders/%d/approve", otherID), a.write, nil).expectError(t, 404, "NOT_FOUND", "Order not found.")
			e.do("POST", "/v1/orders/999999/reject", a.write, nil).expectError(t, 404, "NOT_FOUND", "")
			e.do("POST", fmt.Sprintf("/v1/orders/%d/approve", p3), a.read, nil).expectError(t, 403, "FORBIDDEN", "Insufficient scope.")
			r := e.do("POST", fmt.Sprintf("/v1/orders/%d/approve", p3), a.write, map[string]any{"reason": "x", "note": 1})
			r.expectError(t, 422, "VALIDATION_ERROR", "")
			if len(r.details("note")) == 0 {
				t.Fatalf("%s", r.raw)
			}
			r = e.do("POST", fmt.Sprintf("/v1/orders/%d/reject", p3), a.write, map[string]any{"reason": strings.Repeat("r", 1001)})
			r.expectError(t, 422, "VALIDATION_ERROR", "")
			if len(r.details("reason")) == 0 {
				t.Fatalf("%s", r.raw)
			}
			if a.counts(t) != before {
				t.Fatal("wrote rows")
			}
			var status string
			_ = e.store.DB().QueryRow(`SELECT status FROM orders WHERE id = $1`, otherID).Scan(&status)
			if status != "pending" {
				t.Fatalf("other workspace's order is %s", status)
			}
		})

		t.Run("idempotent retry replays", func(t *testing.T) {
			p4 := a.order(t, storetest.OrderSeed{OrderID: "P4", Total: 1000, Subtotal: 1000})
			r1 := e.do("POST", fmt.Sprintf("/v1/orders/%d/approve", p4), a.write, nil, "Idempotency-Key", "rev-p4")
			r2 := e.do("POST", fmt.Sprintf("/v1/orders/%d/approve", p4), a.write, nil, "Idempotency-Key", "rev-p4")
			if r1.status != 200 || r2.status != 200 || r2.header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("%d %d %s", r1.status, r2.status, r2.raw)
			}
		})
	})
}

func TestOrderBulkAPI(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		a := ordSetupAPI(t, e)
		p1 := a.order(t, storetest.OrderSeed{OrderID: "B1", AffiliateID: a.alice, Total: 1000, Subtotal: 1000, Lines: ordLine(a.alice, 100)})
		done := a.order(t, storetest.OrderSeed{OrderID: "B2", Status: "rejected", Total: 1000, Subtotal: 1000})
		p2 := a.order(t, storetest.OrderSeed{OrderID: "B3", Total: 1000, Subtotal: 1000})
		otherID, _ := storetest.InsertOrder(t, e.store.DB(), a.other.ID, storetest.OrderSeed{OrderID: "X", Total: 1, Subtotal: 1})

		r := e.do("POST", "/v1/orders/bulk-approve", a.write, map[string]any{"ids": []int64{p1, done, otherID, 999999, p2}})
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		items := ordItems(r)
		want := []struct {
			ok     bool
			status string
			code   string
		}{{true, "approved", ""}, {false, "", "INVALID_STATUS_TRANSITION"}, {false, "", "NOT_FOUND"}, {false, "", "NOT_FOUND"},
			{true, "approved", ""}}
		for i, w := range want {
			it := items[i]
			errCode := ""
			if e, ok := it["error"].(map[string]any); ok {
				errCode = e["code"].(string)
				if e["message"] == "" {
					t.Fatalf("error without message: %v", it)
				}
			}
			if it["success"] != w.ok || (it["status"] != nil && it["status"] != w.status) || (w.ok && it["status"] != w.status) || errCode != w.code {
				t.Fatalf("item %d = %v, want %+v", i, it, w)
			}
		}
		if ordNum(r.data()["succeeded"]) != 2 || ordNum(r.data()["failed"]) != 3 {
			t.Fatalf("%s", r.raw)
		}

		p3 := a.order(t, storetest.OrderSeed{OrderID: "B4", Total: 1000, Subtotal: 1000})
		r = e.do("POST", "/v1/orders/bulk-reject", a.write, map[string]any{"ids": []int64{p3, p1}, "reason": "bulk"})
		items = ordItems(r)
		if items[0]["status"] != "rejected" || items[1]["success"] != false {
			t.Fatalf("%s", r.raw)
		}

		before := a.counts(t)
		many := make([]int64, 101)
		for i := range many {
			many[i] = int64(i + 1)
		}
		bad := []struct {
			body  any
			field string
		}{
			{map[string]any{"ids": []int64{}}, "ids"},
			{map[string]any{}, "ids"},
			{map[string]any{"ids": many}, "ids"},
			{map[string]any{"ids": []int64{p2, p2}}, "ids.1"},
			{map[string]any{"ids": []int64{0}}, "ids.0"},
			{map[string]any{"ids": []string{"a"}}, "ids.0"},
			{map[string]any{"ids": []int64{p2}, "extra": true}, "extra"},
		}
		for _, b := range bad {
			for _, path := range []string{"/v1/orders/bulk-approve", "/v1/orders/bulk-reject"} {
				r := e.do("POST", path, a.write, b.body)
				r.expectError(t, 422, "VALIDATION_ERROR", "")
				if len(r.details(b.field)) == 0 {
					t.Fatalf("%v: no details on %s: %s", b.body, b.field, r.raw)
				}
			}
		}
		e.do("POST", "/v1/orders/bulk-approve", a.read, map[string]any{"ids": []int64{p2}}).expectError(t, 403, "FORBIDDEN", "")
		if a.counts(t) != before {
			t.Fatal("refused bulk request wrote rows")
		}
	})
}

func TestOrderRefundAPI(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		a := ordSetupAPI(t, e)
		lines := []storetest.CommissionSeed{{AffiliateID: a.alice, Tier: 1, Amount: 1000, Rate: ptrI64(1000), BaseAmount: 10000},
			{AffiliateID: a.bob, Tier: 2, Amount: 333, Rate: ptrI64(333), Rule: "program_tier_rate", BaseAmount: 10000}}
		id := a.order(t, storetest.OrderSeed{OrderID: "RF1", Status: "approved", AffiliateID: a.alice, Total: 10000, Subtotal: 10000,
			Lines: lines})
		path := fmt.Sprintf("/v1/orders/%d/refund", id)

		t.Run("partial refunds sum exactly to the full reversal", func(t *testing.T) {
			for i, amt := range []string{"33.33", "33.33", "33.34"} {
				r := e.do("POST", path, a.write, fmt.Sprintf(`{"amount": %s, "reason": "return %d"}`, amt, i))
				if r.status != 200 || r.body["message"] != "Order refunded." {
					t.Fatalf("refund %d: %d %s", i, r.status, r.raw)
				}
				want := []string{
					`"refunded_amount":33.33,"commission_amount":8.89`, // 10.00 − 3.33, 3.33 − 1.11
					`"refunded_amount":66.66,"commission_amount":4.44`, // 13.33 − 6.67 (666.6 → 667) − 2.22 (221.98 → 222)
					`"refunded_amount":100.00,"commission_amount":0.00`,
				}[i]
				if !strings.Contains(r.raw, want) {
					t.Fatalf("refund %d: want %s in %s", i, want, r.raw)
				}
			}
			r := e.do("GET", fmt.Sprintf("/v1/orders/%d", id), a.read, nil)
			d := r.data()
			if d["status"] != "cancelled" || d["cancelled_at"] == nil {
				t.Fatalf("%s", r.raw)
			}
			for _, frag := range []string{`"amount":10.00,"reversed_amount":10.00,"status":"reversed"`,
				`"amount":3.33,"reversed_amount":3.33,"status":"reversed"`} {
				if !strings.Contains(r.raw, frag) {
					t.Fatalf("lacks %s: %s", frag, r.raw)
				}
			}
			var n int
			_ = e.store.DB().QueryRow(`SELECT COUNT(*) FROM events WHERE workspace_id = $1 AND type = 'commission.reversed'`, e.ws.ID).Scan(&n)
			if n != 6 {
				t.Fatalf("%d commission.reversed events, want 6", n)
			}
			e.do("POST", path, a.write, nil).expectError(t, 409, "INVALID_STATUS_TRANSITION",
				"Cannot refund an order whose status is cancelled: nothing is left to refund.")
		})

		t.Run("bad amounts are 422 and write nothing", func(t *testing.T) {
			id := a.order(t, storetest.OrderSeed{OrderID: "RF2", AffiliateID: a.alice, Total: 5000, Subtotal: 5000, Lines: ordLine(a.alice, 500)})
			jp := a.order(t, storetest.OrderSeed{OrderID: "RF3", Currency: "JPY", AffiliateID: a.alice, Total: 5000, Subtotal: 5000,
				Lines: ordLine(a.alice, 500)})
			before := a.counts(t)
			bad := []struct {
				id   int64
				body string
				msg  string
			}{
				{id, `{"amount": 0}`, "The amount field must be greater than 0."},
				{id, `{"amount": -5}`, "The amount field must be greater than 0."},
				{id, `{"amount": 10.001}`, "The amount field must have at most 2 decimal places for USD."},
				{id, `{"amount": 50.01}`, "The amount may not be greater than the unrefunded total of 50.00 USD."},
				{id, `{"amount": "10"}`, ""},
				{id, `{"amount": 1e30}`, ""},
				{jp, `{"amount": 1.5}`, "The amount field must have at most 0 decimal places for JPY."},
				{id, `{"amount": 1, "currency": "USD"}`, ""},
				{id, `{"reason": "` + strings.Repeat("x", 1001) + `"}`, ""},
			}
			for _, b := range bad {
				r := e.do("POST", fmt.Sprintf("/v1/orders/%d/refund", b.id), a.write, b.body)
				r.expectError(t, 422, "VALIDATION_ERROR", "")
				if b.msg != "" && !slices.Contains(r.details("amount"), b.msg) {
					t.Fatalf("%s: %s", b.body, r.raw)
				}
			}
			if a.counts(t) != before {
				t.Fatal("wrote rows")
			}
			otherID, _ := storetest.InsertOrder(t, e.store.DB(), a.other.ID, storetest.OrderSeed{OrderID: "X", Total: 100, Subtotal: 100})
			e.do("POST", fmt.Sprintf("/v1/orders/%d/refund", otherID), a.write, `{"amount": 1}`).expectError(t, 404, "NOT_FOUND", "")
			e.do("POST", fmt.Sprintf("/v1/orders/%d/refund", otherID), a.write, nil).expectError(t, 404, "NOT_FOUND", "")
			e.do("POST", fmt.Sprintf("/v1/orders/%d/refund", id), a.read, nil).expectError(t, 403, "FORBIDDEN", "")
			if a.counts(t) != before {
				t.Fatal("wrote rows")
			}

			// Full refund without a body: the rest of the order, JPY whole yen.
			r := e.do("POST", fmt.Sprintf("/v1/orders/%d/refund", jp), a.write, `{"amount": 1234}`)
			if !strings.Contains(r.raw, `"refunded_amount":1234,"commission_amount":377,`) { // 500 − round(500×1234/5000 = 123.4)
				t.Fatalf("%s", r.raw)
			}
			r = e.do("POST", fmt.Sprintf("/v1/orders/%d/refund", jp), a.write, nil)
			if r.data()["status"] != "cancelled" || !strings.Contains(r.raw, `"refunded_amount":5000,"commission_amount":0,`) {
				t.Fatalf("%s", r.raw)
			}
		})
	})
}

func TestOrderStatsAPI(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		a := ordSetupAPI(t, e)
		a.order(t, storetest.OrderSeed{OrderID: "S1", AffiliateID: a.alice, Total: 11000, Subtotal: 10000, Lines: ordLine(a.alice, 1000)})
		a.order(t, storetest.OrderSeed{OrderID: "S2", Status: "approved", AffiliateID: a.bob, Total: 5000, Subtotal: 4999,
			Lines: []storetest.CommissionSeed{{AffiliateID: a.bob, Amount: 500, Status: "approved"}}})
		a.order(t, storetest.OrderSeed{OrderID: "S3", Status: "rejected", AffiliateID: a.bob, Total: 100, Subtotal: 100,
			Lines: []storetest.CommissionSeed{{AffiliateID: a.bob, Amount: 10, Status: "rejected"}}})
		a.order(t, storetest.OrderSeed{OrderID: "K1", Currency: "KWD", Total: 1500, Subtotal: 1234})
		storetest.InsertOrder(t, e.store.DB(), a.other.ID, storetest.OrderSeed{OrderID: "S1", Total: 9, Subtotal: 9})

		r := e.do("GET", "/v1/orders/stats", a.read, nil)
		want := `{"items":[{"currency":"KWD","total_orders":1,"total_revenue":1.234,"total_commission":0.000,"pending":0.000,"approved":0.000},` +
			`{"currency":"USD","total_orders":3,"total_revenue":150.99,"total_commission":15.00,"pending":10.00,"approved":5.00}]}`
		if r.status != 200 || !strings.Contains(r.raw, want) {
			t.Fatalf("%d %s\nwant %s", r.status, r.raw, want)
		}
		r = e.do("GET", fmt.Sprintf("/v1/orders/stats?affiliate_id=%d&status=approved", a.bob), a.read, nil)
		if !strings.Contains(r.raw, `{"items":[{"currency":"USD","total_orders":1,"total_revenue":49.99,"total_commission":5.00,"pending":0.00,"approved":5.00}]}`) {
			t.Fatalf("%s", r.raw)
		}
		r = e.do("GET", "/v1/orders/stats?from=2030-01-01", a.read, nil)
		if !strings.Contains(r.raw, `"data":{"items":[]}`) {
			t.Fatalf("%s", r.raw)
		}
	})
}

func TestOrderExportAPI(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		a := ordSetupAPI(t, e)
		for i := range 12 {
			cur, total := "USD", int64(1000+i*137)
			if i%4 == 3 {
				cur = "JPY"
			}
			ref := fmt.Sprintf("EX%02d", i)
			if i == 5 {
				ref = "=HYPERLINK(\"x\")"
			}
			a.order(t, storetest.OrderSeed{OrderID: ref, Currency: cur, AffiliateID: a.alice, Total: total, Subtotal: total - 5,
				Discount: 5, CommissionRate: ptrI64(1250), ConvertedAt: time.Date(2026, 10, 1+i, 8, 0, 0, 0, time.UTC),
				Lines: ordLine(a.alice, money125(total))})
		}
		a.order(t, storetest.OrderSeed{OrderID: "EXNONE", Total: 999, Subtotal: 999, ConvertedAt: time.Date(2026, 10, 3, 0, 0, 0, 0, time.UTC)})

		// The API's figures as JSON text, so the comparison is exact.
		apiRows := func(query string) []map[string]json.RawMessage {
			var out []map[string]json.RawMessage
			cursor := ""
			for range 20 {
				p := "/v1/orders?per_page=5&" + query
				if cursor != "" {
					p += "&cursor=" + url.QueryEscape(cursor)
				}
				r := e.do("GET", p, a.read, nil)
				var env struct {
					Data struct {
						Items []map[string]json.RawMessage `json:"items"`
						Meta  struct {
							NextCursor string `json:"next_cursor"`
						} `json:"meta"`
					} `json:"data"`
				}
				if err := json.Unmarshal([]byte(r.raw), &env); err != nil {
					t.Fatal(err)
				}
				out = append(out, env.Data.Items...)
				if cursor = env.Data.Meta.NextCursor; cursor == "" {
					return out
				}
			}
			return out
		}
		for _, query := range []string{"", "status=pending&sort=order_total&direction=asc", "from=2026-10-03&to=2026-10-08",
			"search=ex0&sort=commission_amount"} {
			t.Run("query "+query, func(t *testing.T) {
				r := e.do("GET", "/v1/orders/export?"+query, a.read, nil)
				if r.status != 200 {
					t.Fatalf("%d %s", r.status, r.raw)
				}
				if ct := r.header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
					t.Fatalf("content type %q", ct)
				}
				if cd := r.header.Get("Content-Disposition"); cd != `attachment; filename="orders-2026-11-01.csv"` {
					t.Fatalf("disposition %q", cd)
				}
				recs, err := csv.NewReader(strings.NewReader(r.raw)).ReadAll()
				if err != nil {
					t.Fatal(err)
				}
				header := recs[0]
				if !slices.Equal(header, []string{"id", "order_id", "status", "currency", "order_total", "subtotal", "discount", "tax",
					"refunded_amount", "commission_amount", "commission_rate", "affiliate_id", "affiliate_name", "affiliate_referral_code",
					"program_id", "link_id", "click_id", "coupon_code", "attribution", "converted_at", "approved_at", "rejected_at",
					"cancelled_at", "created_at"}) {
					t.Fatalf("header %v", header)
				}
				col := func(name string) int { return slices.Index(header, name) }
				want := apiRows(query)
				if len(recs)-1 != len(want) || len(want) == 0 {
					t.Fatalf("%d CSV rows, %d API items", len(recs)-1, len(want))
				}
				for i, it := range want {
					row := recs[i+1]
					for _, f := range []string{"id", "order_total", "subtotal", "discount", "tax", "refunded_amount",
						"commission_amount", "commission_rate", "converted_at", "status", "currency"} {
						api := strings.Trim(string(it[f]), `"`)
						if api == "null" {
							api = ""
						}
						if row[col(f)] != api {
							t.Fatalf("row %d %s: CSV %q, API %q", i, f, row[col(f)], api)
						}
					}
					ref := strings.Trim(string(it["order_id"]), `"`)
					if ref == `=HYPERLINK(\"x\")` {
						if row[col("order_id")] != `'=HYPERLINK("x")` {
							t.Fatalf("formula cell not neutralised: %q", row[col("order_id")])
						}
					} else if row[col("order_id")] != ref {
						t.Fatalf("order id %q vs %q", row[col("order_id")], ref)
					}
				}
			})
		}

		t.Run("bad filter is a JSON 422 before any CSV", func(t *testing.T) {
			r := e.do("GET", fmt.Sprintf("/v1/orders/export?affiliate_id=%d", a.otherAff), a.read, nil)
			r.expectError(t, 422, "VALIDATION_ERROR", "")
			if len(r.details("affiliate_id")) == 0 {
				t.Fatal(r.raw)
			}
		})

		t.Run("30 exports a minute per key", func(t *testing.T) {
			tok := e.token(heldsway.ScopeOrdersRead)
			for i := range 30 {
				if r := e.do("GET", "/v1/orders/export?status=rejected", tok, nil); r.status != 200 {
					t.Fatalf("export %d: %d %s", i, r.status, r.raw)
				}
			}
			r := e.do("GET", "/v1/orders/export?status=rejected", tok, nil)
			r.expectError(t, 429, "RATE_LIMITED", "")
			if r.header.Get("Retry-After") == "" || r.header.Get("X-RateLimit-Limit") != "30" {
				t.Fatalf("headers %v", r.header)
			}
			// Only the export is throttled; other reads of the key go on.
			if r := e.do("GET", "/v1/orders", tok, nil); r.status != 200 {
				t.Fatalf("list after export limit: %d", r.status)
			}
		})
	})
}

// money125 is 12.50% of amount, half-up.
func money125(amount int64) int64 { return (amount*1250 + 5000) / 10000 }

func TestCommissionListAPI(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		a := ordSetupAPI(t, e)
		mk := func(ref string, aff int64, status string, amount, reversed int64, at time.Time) {
			a.order(t, storetest.OrderSeed{OrderID: ref, AffiliateID: aff, Total: 10000, Subtotal: 10000, ConvertedAt: at,
				Lines: []storetest.CommissionSeed{{AffiliateID: aff, Amount: amount, Reversed: reversed, Status: status,
					Rate: ptrI64(1000), BaseAmount: 10000}}})
		}
		d := func(n int) time.Time { return time.Date(2026, 9, n, 12, 0, 0, 0, time.UTC) }
		mk("C1", a.alice, "pending", 100, 0, d(1))
		mk("C2", a.bob, "approved", 300, 0, d(2))
		mk("C3", a.alice, "paid", 200, 50, d(3))
		mk("C4", a.alice, "reversed", 150, 150, d(4))
		mk("C5", a.bob, "rejected", 400, 0, d(5))
		storetest.InsertOrder(t, e.store.DB(), a.other.ID, storetest.OrderSeed{OrderID: "C1", Total: 1, Subtotal: 1,
			Lines: []storetest.CommissionSeed{{AffiliateID: a.otherAff, Amount: 1}}})

		refs := func(query string) []string {
			t.Helper()
			var out []string
			cursor := ""
			for range 20 {
				p := "/v1/commissions?per_page=2&" + query
				if cursor != "" {
					p += "&cursor=" + url.QueryEscape(cursor)
				}
				r := e.do("GET", p, a.read, nil)
				if r.status != 200 {
					t.Fatalf("%s: %d %s", p, r.status, r.raw)
				}
				for _, it := range ordItems(r) {
					out = append(out, it["order_id"].(string))
				}
				next, _ := r.data()["meta"].(map[string]any)["next_cursor"].(string)
				if cursor = next; cursor == "" {
					return out
				}
			}
			return out
		}
		cases := []struct {
			query string
			want  []string
		}{
			{"", []string{"C5", "C4", "C3", "C2", "C1"}},
			{"direction=asc", []string{"C1", "C2", "C3", "C4", "C5"}},
			{"sort=amount", []string{"C5", "C2", "C3", "C4", "C1"}},
			{fmt.Sprintf("affiliate_id=%d", a.bob), []string{"C5", "C2"}},
			{"status=paid", []string{"C3"}},
			{"status=reversed", []string{"C4"}},
			{"status=rejected", []string{"C5"}},
			{"from=2026-09-02&to=2026-09-03", []string{"C3", "C2"}},
		}
		for _, c := range cases {
			if got := refs(c.query); !slices.Equal(got, c.want) {
				t.Fatalf("%s: got %v, want %v", c.query, got, c.want)
			}
		}
		r := e.do("GET", "/v1/commissions?status=paid", a.read, nil)
		it := ordItems(r)[0]
		if ordNum(it["conversion_id"]) == 0 || ordNum(it["affiliate_id"]) != a.alice || it["status"] != "paid" ||
			!strings.Contains(r.raw, `"amount":2.00,"reversed_amount":0.50,"net_amount":1.50,"rate":10.00`) {
			t.Fatalf("%s", r.raw)
		}
		for _, b := range []struct{ q, field string }{{"status=cancelled", "status"}, {fmt.Sprintf("affiliate_id=%d", a.otherAff), "affiliate_id"},
			{"from=2026-02-30", "from"}, {"sort=rate", "sort"}, {"from=2026-09-03&to=2026-09-01", "to"}} {
			r := e.do("GET", "/v1/commissions?"+b.q, a.read, nil)
			r.expectError(t, 422, "VALIDATION_ERROR", "")
			if len(r.details(b.field)) == 0 {
				t.Fatalf("%s: %s", b.q, r.raw)
			}
		}
		if r := e.do("GET", "/v1/commissions", a.otherReadTok, nil); len(ordItems(r)) != 1 {
			t.Fatalf("other workspace: %s", r.raw)
		}
	})
}

// TestOrderLifecycleThroughConversions drives the whole path: conversions
// recorded by POST /v1/conversions, reviewed, refunded and auto-approved.
func TestOrderLifecycleThroughConversions(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		a := ordSetupAPI(t, e)
		db := e.store.DB()
		if _, err := db.Exec(`UPDATE programs SET commission_value = 1000, tier_rate = 200, auto_approve_enabled = $1,
			auto_approve_delay_days = 2, auto_approve_max_amount = 100000 WHERE id = $2`, true, a.prog); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`UPDATE affiliates SET parent_affiliate_id = $1 WHERE id = $2`, a.bob, a.alice); err != nil {
			t.Fatal(err)
		}
		conv := e.token(heldsway.ScopeConversionsWrite)
		record := func(ref, total, subtotal string) int64 {
			t.Helper()
			r := e.do("POST", "/v1/conversions", conv, fmt.Sprintf(`{"order_id":%q,"total":%s,"subtotal":%s,"currency":"USD",
				"occurred_at":"2026-11-01T12:00:00Z","referral_code":"aliceable"}`, ref, total, subtotal))
			if r.status != 201 {
				t.Fatalf("conversion %s: %d %s", ref, r.status, r.raw)
			}
			return ordNum(r.data()["id"])
		}
		l1 := record("#L1", "110.00", "100.00")
		l2 := record("#L2", "55.00", "50.00")
		l3 := record("#L3", "2000.00", "1900.00") // above the auto-approval maximum of 1000.00

		r := e.do("GET", fmt.Sprintf("/v1/orders/%d", l1), a.read, nil)
		for _, frag := range []string{`"tier":1,"amount":10.00`, `"tier":2,"amount":2.00`, `"rule":"program_rate"`,
			`"rule":"program_tier_rate"`, `"auto_approve_at":"2026-11-03T12:00:00.000000Z"`} {
			if !strings.Contains(r.raw, frag) {
				t.Fatalf("lacks %s: %s", frag, r.raw)
			}
		}
		if r := e.do("POST", fmt.Sprintf("/v1/orders/%d/approve", l1), a.write, nil); r.data()["status"] != "approved" ||
			r.data()["auto_approve_at"] != nil {
			t.Fatalf("%s", r.raw)
		}
		r = e.do("POST", fmt.Sprintf("/v1/orders/%d/refund", l1), a.write, `{"amount": 55.00}`)
		if !strings.Contains(r.raw, `"refunded_amount":55.00,"commission_amount":6.00`) {
			t.Fatalf("%s", r.raw)
		}

		// Nothing is due yet; three days later #L2 is, and #L3 is held for review.
		if n, err := e.store.AutoApproveDue(context.Background(), e.clock.Now(), 100); err != nil || n != 0 {
			t.Fatalf("early sweep: %d %v", n, err)
		}
		if n, err := e.store.AutoApproveDue(context.Background(), e.clock.Now().Add(72*time.Hour), 100); err != nil || n != 1 {
			t.Fatalf("sweep: %d %v", n, err)
		}
		if r := e.do("GET", fmt.Sprintf("/v1/orders/%d", l2), a.read, nil); r.data()["status"] != "approved" {
			t.Fatalf("%s", r.raw)
		}
		if r := e.do("GET", fmt.Sprintf("/v1/conversions/%d", l3), a.read, nil); r.data()["status"] != "pending" ||
			r.data()["auto_approve_at"] != nil {
			t.Fatalf("%s", r.raw)
		}

		r = e.do("GET", "/v1/commissions?status=approved&direction=asc", a.read, nil)
		var got []string
		for _, it := range ordItems(r) {
			got = append(got, fmt.Sprintf("%s/%v/%d", it["order_id"], it["tier"], ordNum(it["conversion_id"])))
		}
		if !slices.Equal(got, []string{fmt.Sprintf("#L1/1/%d", l1), fmt.Sprintf("#L1/2/%d", l1), fmt.Sprintf("#L2/1/%d", l2),
			fmt.Sprintf("#L2/2/%d", l2)}) {
			t.Fatalf("approved commissions %v", got)
		}
		r = e.do("GET", "/v1/orders/stats", a.read, nil)
		// Revenue 100 + 50 + 1900; approved 6.00 (#L1 net) + 6.00 (#L2: 5.00 + 1.00); pending #L3 190.00 + 38.00.
		if !strings.Contains(r.raw, `{"currency":"USD","total_orders":3,"total_revenue":2050.00,"total_commission":240.00,"pending":228.00,"approved":12.00}`) {
			t.Fatalf("%s", r.raw)
		}
		var types []string
		rows, err := db.Query(`SELECT type FROM events WHERE workspace_id = $1 AND resource_type = 'order' AND resource_id = $2 ORDER BY id`,
			e.ws.ID, l1)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			_ = rows.Scan(&s)
			types = append(types, s)
		}
		rows.Close()
		if !slices.Equal(types, []string{"conversion.created", "conversion.approved", "conversion.refunded"}) {
			t.Fatalf("events %v", types)
		}
	})
}
