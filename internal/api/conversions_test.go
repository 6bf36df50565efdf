package api_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/auth"
	"github.com/heldsway/heldsway/internal/heldsway"
)

// cvEnv is an env with a conversions:write token and helpers that seed
// programs, affiliates, links, clicks and coupons by raw SQL.
type cvEnv struct {
	*env
	tok string
	def int64 // the default program (USD)
}

func cvSetup(t *testing.T, e *env) *cvEnv {
	t.Helper()
	c := &cvEnv{env: e, tok: e.token("conversions:write")}
	if err := e.store.DB().QueryRow(`SELECT id FROM programs WHERE workspace_id = $1 AND is_default`, e.ws.ID).Scan(&c.def); err != nil {
		t.Fatal(err)
	}
	return c
}

func cvTag() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// exec runs raw SQL or fails the test.
func (c *cvEnv) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := c.store.DB().Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// program inserts a program of workspace ws in cur; set is an UPDATE SET
// fragment applied to it ("commission_value = 1000, recurring = 'lifetime'").
func (c *cvEnv) program(t *testing.T, ws int64, cur, set string) int64 {
	t.Helper()
	var id int64
	now := c.clock.Now().UnixMicro()
	if err := c.store.DB().QueryRow(`INSERT INTO programs (workspace_id, name, currency, commission_type, created_at, updated_at)
		VALUES ($1, $2, $3, 'percentage', $4, $4) RETURNING id`, ws, "P "+cvTag(), cur, now).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if set != "" {
		c.exec(t, `UPDATE programs SET `+set+` WHERE id = $1`, id)
	}
	return id
}

type cvAff struct {
	id, prog, ws int64
	code, email  string
	name         string
}

// affiliate inserts an affiliate of program prog (of workspace ws) with status.
func (c *cvEnv) affiliate(t *testing.T, ws, prog int64, status string) cvAff {
	t.Helper()
	tag := cvTag()
	a := cvAff{prog: prog, ws: ws, code: "A" + tag, email: "aff-" + strings.ToLower(tag) + "@example.com", name: "Affiliate " + tag}
	now := c.clock.Now().UnixMicro()
	var user int64
	if err := c.store.DB().QueryRow(`INSERT INTO affiliate_users (workspace_id, name, email, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4) RETURNING id`, ws, a.name, a.email, now).Scan(&user); err != nil {
		t.Fatal(err)
	}
	if err := c.store.DB().QueryRow(`INSERT INTO affiliates (workspace_id, program_id, affiliate_user_id, referral_code, status,
		name, email, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id`,
		ws, prog, user, a.code, status, a.name, a.email, now).Scan(&a.id); err != nil {
		t.Fatal(err)
	}
	return a
}

// click records a click of visitor through a new link of a at time at; it
// returns the click id and the link id.
func (c *cvEnv) click(t *testing.T, a cvAff, visitor string, at time.Time) (string, int64) {
	t.Helper()
	var link int64
	now := c.clock.Now().UnixMicro()
	if err := c.store.DB().QueryRow(`INSERT INTO links (workspace_id, affiliate_id, slug, destination_url, created_at, updated_at)
		VALUES ($1, $2, $3, 'https://shop.example.com/', $4, $4) RETURNING id`, a.ws, a.id, strings.ToLower("s"+cvTag()), now).Scan(&link); err != nil {
		t.Fatal(err)
	}
	id := "clk_" + strings.ToLower(cvTag())
	if err := c.store.InsertClicks(context.Background(), []heldsway.Click{{WorkspaceID: a.ws, LinkID: link, AffiliateID: a.id,
		ProgramID: a.prog, ClickID: id, VisitorID: visitor, CreatedAt: at}}); err != nil {
		t.Fatal(err)
	}
	return id, link
}

// coupon inserts a coupon of a; starts and ends may be nil.
func (c *cvEnv) coupon(t *testing.T, a cvAff, code string, active bool, starts, ends *time.Time) {
	t.Helper()
	us := func(p *time.Time) any {
		if p == nil {
			return nil
		}
		return p.UnixMicro()
	}
	now := c.clock.Now().UnixMicro()
	c.exec(t, `INSERT INTO coupons (workspace_id, affiliate_id, code, code_key, discount_type, discount_value, currency,
		starts_at, ends_at, is_active, created_at, updated_at) VALUES ($1, $2, $3, $4, 'percentage', 1000, 'USD', $5, $6, $7, $8, $8)`,
		a.ws, a.id, code, strings.ToUpper(code), us(starts), us(ends), active, now)
}

func (c *cvEnv) convert(body any, headers ...string) *resp {
	return c.do("POST", "/v1/conversions", c.tok, body, headers...)
}

// create records a conversion and expects 201.
func (c *cvEnv) create(t *testing.T, body any) map[string]any {
	t.Helper()
	r := c.convert(body)
	if r.status != 201 {
		t.Fatalf("conversion: %d %s", r.status, r.raw)
	}
	return r.data()
}

// counts counts the rows a conversion writes.
func (c *cvEnv) counts(t *testing.T) string {
	t.Helper()
	var parts []string
	for _, table := range []string{"orders", "order_items", "commissions", "customers", "audit_log", "events"} {
		var n int
		if err := c.store.DB().QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, fmt.Sprintf("%s=%d", table, n))
	}
	return strings.Join(parts, " ")
}

// cvOrder is a USD order body: subtotal 100.00, total 110.00, plus extra pairs.
func cvOrder(orderID string, extra ...any) map[string]any {
	m := map[string]any{"order_id": orderID, "total": json.Number("110.00"), "subtotal": json.Number("100.00"), "currency": "USD"}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	return m
}

func cvAffiliateID(d map[string]any) int64 {
	a, _ := d["affiliate"].(map[string]any)
	if a == nil {
		return 0
	}
	return num(a["id"])
}

func cvCommissions(d map[string]any) []map[string]any {
	var out []map[string]any
	for _, c := range d["commissions"].([]any) {
		out = append(out, c.(map[string]any))
	}
	return out
}

func cvKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestConversionCreate(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		c := cvSetup(t, e)
		a := c.affiliate(t, e.ws.ID, c.def, heldsway.AffiliateActive)
		r := c.convert(`{"order_id":"#1001","total":120.50,"subtotal":110.00,"discount":10,"tax":20.50,"currency":"usd",
			"occurred_at":"2026-11-01T10:30:00.1234567+02:00","referral_code":"` + strings.ToLower(a.code) + `",
			"customer":{"email":"Buyer@Example.com","id":"cus_1","name":"Buyer"},
			"line_items":[{"product_id":"p1","name":"Widget","category":"tools","quantity":2,"price":55.00}],
			"metadata":{"source": "web", "n": 1.50}}`)
		if r.status != 201 || r.body["message"] != "Conversion recorded." {
			t.Fatalf("create: %d %s", r.status, r.raw)
		}
		d := r.data()
		want := []string{"affiliate", "approved_at", "attribution", "auto_approve_at", "cancelled_at", "click_id", "commission_amount",
			"commission_rate", "commissions", "converted_at", "coupon_code", "created_at", "currency", "customer", "discount", "flags",
			"id", "line_items", "link_id", "metadata", "order_id", "order_total", "program_id", "refunded_amount", "rejected_at",
			"status", "subscription_id", "subtotal", "tax", "updated_at"}
		if got := cvKeys(d); !slices.Equal(got, want) {
			t.Fatalf("order fields %v, want %v", got, want)
		}
		// Net 100.00 (110.00 − 10.00) falls in the platform band [100, 500): 7.50%.
		for _, s := range []string{`"order_total":120.50`, `"subtotal":110.00`, `"discount":10.00`, `"tax":20.50`,
			`"commission_amount":7.50`, `"commission_rate":7.50`, `"refunded_amount":0.00`, `"metadata":{"source":"web","n":1.50}`,
			`"price":55.00`, `"base_amount":100.00`, `"amount":7.50`} {
			if !strings.Contains(r.raw, s) {
				t.Fatalf("missing %s in %s", s, r.raw)
			}
		}
		if d["order_id"] != "#1001" || d["status"] != "pending" || d["currency"] != "USD" || d["attribution"] != "referral_code" ||
			d["converted_at"] != "2026-11-01T08:30:00.123456Z" || d["created_at"] != "2026-11-01T12:00:00.000000Z" ||
			d["link_id"] != nil || d["click_id"] != nil || d["auto_approve_at"] != nil || num(d["program_id"]) != c.def ||
			len(d["flags"].([]any)) != 0 {
			t.Fatalf("order %v", d)
		}
		aff := d["affiliate"].(map[string]any)
		if num(aff["id"]) != a.id || aff["name"] != a.name || aff["referral_code"] != a.code || len(aff) != 3 {
			t.Fatalf("affiliate %v", aff)
		}
		cu := d["customer"].(map[string]any)
		if cu["email"] != "buyer@example.com" || cu["id"] != "cus_1" || cu["name"] != "Buyer" {
			t.Fatalf("customer %v", cu)
		}
		items := d["line_items"].([]any)
		if it := items[0].(map[string]any); len(items) != 1 || it["product_id"] != "p1" || it["name"] != "Widget" ||
			it["category"] != "tools" || num(it["quantity"]) != 2 {
			t.Fatalf("items %v", items)
		}
		cs := cvCommissions(d)
		wantC := []string{"affiliate_id", "amount", "base_amount", "explanation", "id", "payout_id", "rate", "reversed_amount",
			"rule", "status", "tier"}
		if len(cs) != 1 || !slices.Equal(cvKeys(cs[0]), wantC) || num(cs[0]["affiliate_id"]) != a.id || num(cs[0]["tier"]) != 1 ||
			cs[0]["status"] != "pending" || cs[0]["rule"] != "platform_tier" ||
			!strings.Contains(cs[0]["explanation"].(string), "7.50% of net 100.00") {
			t.Fatalf("commissions %v", cs)
		}
		id := num(d["id"])

		// One audit entry and the events, in the same transaction.
		var action, changes string
		if err := e.store.DB().QueryRow(`SELECT action, changes FROM audit_log WHERE workspace_id = $1 AND resource_type = 'order'
			AND resource_id = $2`, e.ws.ID, id).Scan(&action, &changes); err != nil || action != "conversion.create" {
			t.Fatalf("audit: %v %q", err, action)
		}
		if !strings.Contains(changes, `"evidence":{"before":null,"after":{"click_id":null,"coupon_code":null,"referral_code":"`+a.code+`"}}`) {
			t.Fatalf("audit evidence: %s", changes)
		}
		for typ, n := range map[string]int{"conversion.created": 1, "commission.accrued": 1} {
			var got int
			if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM events WHERE workspace_id = $1 AND type = $2`, e.ws.ID, typ).Scan(&got); err != nil || got != n {
				t.Fatalf("events %s: %d %v", typ, got, err)
			}
		}
		var data string
		if err := e.store.DB().QueryRow(`SELECT data FROM events WHERE workspace_id = $1 AND type = 'commission.accrued'`,
			e.ws.ID).Scan(&data); err != nil || !strings.Contains(data, `"amount":7.50`) {
			t.Fatalf("commission event: %v %s", err, data)
		}

		t.Run("under /api/v1, defaults", func(t *testing.T) {
			r := e.do("POST", "/api/v1/conversions", c.tok, map[string]any{"order_id": "#1002", "total": 50, "subtotal": 50,
				"currency": "USD", "customer": nil, "click_id": nil, "discount": nil})
			d := r.data()
			if r.status != 201 || d["converted_at"] != "2026-11-01T12:00:00.000000Z" || d["attribution"] != "none" ||
				d["affiliate"] != nil || d["commission_rate"] != nil || len(d["commissions"].([]any)) != 0 ||
				!strings.Contains(r.raw, `"commission_amount":0.00`) || !strings.Contains(r.raw, `"line_items":[]`) ||
				d["metadata"] != nil || d["program_id"] != nil {
				t.Fatalf("unattributed: %d %s", r.status, r.raw)
			}
		})
		t.Run("scope", func(t *testing.T) {
			r := e.do("POST", "/v1/conversions", e.token("orders:write", "orders:read"), cvOrder("#scope"))
			r.expectError(t, 403, "FORBIDDEN", "Insufficient scope.")
			preset := e.token("conversion-write")
			if r := e.do("POST", "/v1/conversions", preset, cvOrder("#preset")); r.status != 201 {
				t.Fatalf("conversion-write preset: %d %s", r.status, r.raw)
			}
		})
		t.Run("idempotency key replays", func(t *testing.T) {
			r1 := c.convert(cvOrder("#idem"), "Idempotency-Key", "k-1")
			r2 := c.convert(cvOrder("#idem"), "Idempotency-Key", "k-1")
			if r1.status != 201 || r2.status != 201 || r2.header.Get("Idempotent-Replayed") != "true" || r1.raw != r2.raw {
				t.Fatalf("replay: %d %d %s", r1.status, r2.status, r2.raw)
			}
		})
	})
}

// TestConversionWriterMetrics: on SQLite /metrics counts the conversion
// writer's conversions and batches (their ratio is the group commit's batch
// size); PostgreSQL has no such writer and no such series.
func TestConversionWriterMetrics(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		c := cvSetup(t, e)
		for i := range 3 {
			c.create(t, map[string]any{"order_id": fmt.Sprintf("#m-%d", i), "total": 10, "subtotal": 10, "currency": "USD"})
		}
		r := e.do("GET", "/metrics", "", nil)
		if r.status != 200 {
			t.Fatalf("metrics: %d", r.status)
		}
		if e.engine == "postgres" {
			if strings.Contains(r.raw, "heldsway_click_journal_") {
				t.Fatalf("SQLite click journal series on PostgreSQL:\n%s", grepLines(r.raw, "heldsway_"))
			}
		} else {
			// The click journal's series sit beside them (no clicks here).
			for _, want := range []string{"heldsway_click_journal_pending 0", "heldsway_click_journal_dropped_total 0"} {
				if !strings.Contains(r.raw, want+"\n") {
					t.Errorf("metrics lack %s:\n%s", want, grepLines(r.raw, "heldsway_click_journal_"))
				}
			}
		}
		var batches, busy float64
		for _, line := range strings.Split(r.raw, "\n") {
			if v, ok := strings.CutPrefix(line, "heldsway_conversion_writer_batches_total "); ok {
				batches, _ = strconv.ParseFloat(v, 64)
			} else if v, ok := strings.CutPrefix(line, "heldsway_conversion_writer_busy_seconds_total "); ok {
				busy, _ = strconv.ParseFloat(v, 64)
			}
		}
		// Three transactions' time: more than nothing, less than the test.
		if busy <= 0 || busy > 10 {
			t.Errorf("writer busy %v s for 3 conversions", busy)
		}
		for _, want := range []string{"heldsway_conversion_writer_conversions_total 3", "heldsway_conversion_writer_reruns_total 0",
			"heldsway_conversion_writer_alone_total 0"} {
			if !strings.Contains(r.raw, want+"\n") {
				t.Errorf("metrics lack %s:\n%s", want, grepLines(r.raw, "heldsway_conversion_writer_"))
			}
		}
		if batches < 1 || batches > 3 {
			t.Errorf("%v batches for 3 conversions", batches)
		}
	})
}

func TestConversionAttribution(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		c := cvSetup(t, e)
		now := e.clock.Now()
		day := 24 * time.Hour
		a := c.affiliate(t, e.ws.ID, c.def, heldsway.AffiliateActive)
		b := c.affiliate(t, e.ws.ID, c.def, heldsway.AffiliateActive)
		sus := c.affiliate(t, e.ws.ID, c.def, heldsway.AffiliateSuspended)
		paused := c.affiliate(t, e.ws.ID, c.program(t, e.ws.ID, "USD", "status = 'paused'"), heldsway.AffiliateActive)
		other, err := e.auth.CreateWorkspace(context.Background(), "Other "+t.Name(), "basic")
		if err != nil {
			t.Fatal(err)
		}
		var otherDef int64
		if err := e.store.DB().QueryRow(`SELECT id FROM programs WHERE workspace_id = $1`, other.ID).Scan(&otherDef); err != nil {
			t.Fatal(err)
		}
		foreign := c.affiliate(t, other.ID, otherDef, heldsway.AffiliateActive)

		clickA, linkA := c.click(t, a, "v-a", now.Add(-10*day))
		expiredA, _ := c.click(t, a, "v-a-old", now.Add(-31*day))
		clickB, linkB := c.click(t, b, "v-b", now.Add(-2*day))
		clickSus, _ := c.click(t, sus, "v-s", now.Add(-day))
		clickForeign, _ := c.click(t, foreign, "v-f", now.Add(-day))
		clickLate, _ := c.click(t, a, "v-late", now.Add(-2*time.Minute))
		past, future := now.Add(-day), now.Add(day)
		c.coupon(t, a, "Save10A", true, nil, nil)
		c.coupon(t, b, "SAVE10B", true, &past, &future)
		c.coupon(t, b, "EXPIREDB", true, nil, &past)
		c.coupon(t, b, "LATERB", true, &future, nil)
		c.coupon(t, a, "OFFA", false, nil, nil)
		c.coupon(t, sus, "SUSP", true, nil, nil)

		occurred := now.Format(time.RFC3339Nano)
		cases := []struct {
			name     string
			evidence []any
			method   string
			aff      cvAff
			link     int64
			click    string
		}{
			{"click within the window", []any{"click_id", clickA}, "click", a, linkA, clickA},
			{"click older than the cookie window", []any{"click_id", expiredA}, "none", cvAff{}, 0, ""},
			{"click 2 minutes after occurred_at (clock skew)", []any{"click_id", clickLate, "occurred_at", now.Add(-4 * time.Minute).Format(time.RFC3339)}, "click", a, 0, clickLate},
			{"click an hour after occurred_at", []any{"click_id", clickLate, "occurred_at", now.Add(-time.Hour).Format(time.RFC3339)}, "none", cvAff{}, 0, ""},
			{"another workspace's click is ignored, referral code next", []any{"click_id", clickForeign, "referral_code", b.code}, "referral_code", b, 0, ""},
			{"unknown click, coupon next (case-insensitive)", []any{"click_id", "clk_nope", "coupon_code", "save10a"}, "coupon", a, 0, ""},
			{"click wins over coupon", []any{"click_id", clickB, "coupon_code", "SAVE10A"}, "click", b, linkB, clickB},
			{"expired click, coupon next", []any{"click_id", expiredA, "coupon_code", "save10b"}, "coupon", b, 0, ""},
			{"coupon wins over referral code", []any{"coupon_code", "SAVE10B", "referral_code", a.code}, "coupon", b, 0, ""},
			{"expired coupon, referral code next", []any{"coupon_code", "EXPIREDB", "referral_code", a.code}, "referral_code", a, 0, ""},
			{"coupon not started", []any{"coupon_code", "LATERB"}, "none", cvAff{}, 0, ""},
			{"inactive coupon", []any{"coupon_code", "OFFA"}, "none", cvAff{}, 0, ""},
			{"coupon of a suspended affiliate", []any{"coupon_code", "SUSP"}, "none", cvAff{}, 0, ""},
			{"referral code, any case", []any{"referral_code", strings.ToLower(b.code)}, "referral_code", b, 0, ""},
			{"referral code of a suspended affiliate", []any{"referral_code", sus.code}, "none", cvAff{}, 0, ""},
			{"click of a suspended affiliate", []any{"click_id", clickSus}, "none", cvAff{}, 0, ""},
			{"referral code in a paused program", []any{"referral_code", paused.code}, "none", cvAff{}, 0, ""},
			{"referral code of another workspace", []any{"referral_code", foreign.code}, "none", cvAff{}, 0, ""},
			{"no evidence", nil, "none", cvAff{}, 0, ""},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				body := cvOrder(fmt.Sprintf("#att-%d", i), append([]any{"occurred_at", occurred}, tc.evidence...)...)
				d := c.create(t, body)
				if d["attribution"] != tc.method || cvAffiliateID(d) != tc.aff.id {
					t.Fatalf("attribution %v affiliate %v, want %s %d", d["attribution"], d["affiliate"], tc.method, tc.aff.id)
				}
				if tc.click != "" && d["click_id"] != tc.click || tc.click == "" && d["click_id"] != nil {
					t.Fatalf("click_id %v, want %q", d["click_id"], tc.click)
				}
				if tc.link != 0 && num(d["link_id"]) != tc.link || tc.click == "" && d["link_id"] != nil {
					t.Fatalf("link_id %v, want %d", d["link_id"], tc.link)
				}
				cs := cvCommissions(d)
				if tc.aff.id == 0 {
					if len(cs) != 0 || !strings.Contains(fmt.Sprint(d["commission_amount"]), "0") || d["commission_rate"] != nil || d["program_id"] != nil {
						t.Fatalf("unattributed order with commission: %v", d)
					}
					return
				}
				if len(cs) != 1 || num(cs[0]["affiliate_id"]) != tc.aff.id || num(d["program_id"]) != tc.aff.prog {
					t.Fatalf("commissions %v", cs)
				}
			})
		}
		t.Run("coupon code is kept as reported", func(t *testing.T) {
			d := c.create(t, cvOrder("#coupon-kept", "coupon_code", "save10a"))
			if d["coupon_code"] != "save10a" || d["attribution"] != "coupon" {
				t.Fatalf("coupon %v", d)
			}
		})
	})
}

func TestConversionFirstLastClick(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		c := cvSetup(t, e)
		now := e.clock.Now()
		day := 24 * time.Hour
		prog := c.program(t, e.ws.ID, "USD", "cookie_days = 30")
		x := c.affiliate(t, e.ws.ID, prog, heldsway.AffiliateActive)
		y := c.affiliate(t, e.ws.ID, prog, heldsway.AffiliateActive)
		z := c.affiliate(t, e.ws.ID, prog, heldsway.AffiliateActive)
		w := c.affiliate(t, e.ws.ID, prog, heldsway.AffiliateSuspended)
		elsewhere := c.affiliate(t, e.ws.ID, c.def, heldsway.AffiliateActive)
		const vis = "visitor-1"
		c.click(t, z, vis, now.Add(-40*day))                  // outside the 30-day window
		c.click(t, w, vis, now.Add(-25*day))                  // affiliate cannot be credited
		clickX, linkX := c.click(t, x, vis, now.Add(-20*day)) // first in the window
		c.click(t, elsewhere, vis, now.Add(-10*day))          // another program
		clickY, linkY := c.click(t, y, vis, now.Add(-5*day))
		c.click(t, x, "visitor-2", now.Add(-time.Hour)) // another visitor

		d := c.create(t, cvOrder("#last", "click_id", clickX))
		if cvAffiliateID(d) != y.id || d["click_id"] != clickY || num(d["link_id"]) != linkY {
			t.Fatalf("last click: %v", d)
		}
		c.exec(t, `UPDATE programs SET attribution_model = 'first_click' WHERE id = $1`, prog)
		d = c.create(t, cvOrder("#first", "click_id", clickY))
		if cvAffiliateID(d) != x.id || d["click_id"] != clickX || num(d["link_id"]) != linkX || d["attribution"] != "click" {
			t.Fatalf("first click: %v", d)
		}
		// 21 days on, X's click has left the window: Y's is the first left.
		occurred := now.Add(-time.Hour)
		e.clock.Advance(0)
		c.exec(t, `UPDATE programs SET cookie_days = 19 WHERE id = $1`, prog)
		d = c.create(t, cvOrder("#first-window", "click_id", clickY, "occurred_at", occurred.Format(time.RFC3339)))
		if cvAffiliateID(d) != y.id || d["click_id"] != clickY {
			t.Fatalf("first click in a shorter window: %v", d)
		}
	})
}

func TestConversionCustomerBinding(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		c := cvSetup(t, e)
		at := func(s string) string { return s + "T12:00:00Z" }
		life := c.program(t, e.ws.ID, "USD", "recurring = 'lifetime', commission_value = 1000")
		months := c.program(t, e.ws.ID, "USD", "recurring = 'months', recurring_months = 3, commission_value = 1000")
		la := c.affiliate(t, e.ws.ID, life, heldsway.AffiliateActive)
		lb := c.affiliate(t, e.ws.ID, life, heldsway.AffiliateActive)
		ma := c.affiliate(t, e.ws.ID, months, heldsway.AffiliateActive)
		oa := c.affiliate(t, e.ws.ID, c.def, heldsway.AffiliateActive)
		sa := c.affiliate(t, e.ws.ID, life, heldsway.AffiliateActive)

		check := func(t *testing.T, d map[string]any, method string, aff int64) {
			t.Helper()
			if d["attribution"] != method || cvAffiliateID(d) != aff {
				t.Fatalf("attribution %v %v, want %s %d", d["attribution"], d["affiliate"], method, aff)
			}
		}
		cust := func(email, id string) map[string]any { return map[string]any{"email": email, "id": id} }

		t.Run("lifetime", func(t *testing.T) {
			check(t, c.create(t, cvOrder("#l1", "referral_code", la.code, "occurred_at", at("2024-01-15"),
				"customer", cust("life@example.com", "ext-life"))), "referral_code", la.id)
			check(t, c.create(t, cvOrder("#l2", "occurred_at", at("2026-10-01"), "customer", cust("LIFE@example.com", ""))), "customer", la.id)
			check(t, c.create(t, cvOrder("#l3", "occurred_at", at("2026-10-02"), "customer", cust("", "ext-life"))), "customer", la.id)
			// Other evidence still wins for its order, and the first binding stays.
			check(t, c.create(t, cvOrder("#l4", "referral_code", lb.code, "occurred_at", at("2026-10-03"),
				"customer", cust("life@example.com", ""))), "referral_code", lb.id)
			check(t, c.create(t, cvOrder("#l5", "occurred_at", at("2026-10-04"), "customer", cust("life@example.com", ""))), "customer", la.id)
			// An order from before the binding is not the binding's.
			check(t, c.create(t, cvOrder("#l0", "occurred_at", at("2023-12-01"), "customer", cust("life@example.com", ""))), "none", 0)
			var n int
			if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM customers WHERE workspace_id = $1 AND email = 'life@example.com'
				AND external_id = 'ext-life' AND affiliate_id = $2`, e.ws.ID, la.id).Scan(&n); err != nil || n != 1 {
				t.Fatalf("customer rows %d %v", n, err)
			}
		})
		t.Run("recurring months: within and beyond the limit", func(t *testing.T) {
			check(t, c.create(t, cvOrder("#m1", "referral_code", ma.code, "occurred_at", at("2026-06-15"),
				"customer", cust("months@example.com", ""))), "referral_code", ma.id)
			check(t, c.create(t, cvOrder("#m2", "occurred_at", at("2026-08-31"), "customer", cust("months@example.com", ""))), "customer", ma.id)
			check(t, c.create(t, cvOrder("#m3", "occurred_at", at("2026-09-01"), "customer", cust("months@example.com", ""))), "none", 0)
		})
		t.Run("a program without recurring binds nobody", func(t *testing.T) {
			check(t, c.create(t, cvOrder("#o1", "referral_code", oa.code, "occurred_at", at("2026-10-01"),
				"customer", cust("off@example.com", ""))), "referral_code", oa.id)
			check(t, c.create(t, cvOrder("#o2", "occurred_at", at("2026-10-02"), "customer", cust("off@example.com", ""))), "none", 0)
		})
		t.Run("a suspended bound affiliate gets nothing", func(t *testing.T) {
			check(t, c.create(t, cvOrder("#s1", "referral_code", sa.code, "occurred_at", at("2026-10-01"),
				"customer", cust("susp@example.com", ""))), "referral_code", sa.id)
			c.exec(t, `UPDATE affiliates SET status = 'suspended' WHERE id = $1`, sa.id)
			check(t, c.create(t, cvOrder("#s2", "occurred_at", at("2026-10-02"), "customer", cust("susp@example.com", ""))), "none", 0)
		})
	})
}

func TestConversionCommission(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		c := cvSetup(t, e)
		override := c.affiliate(t, e.ws.ID, c.program(t, e.ws.ID, "USD", "commission_value = 2000"), heldsway.AffiliateActive)
		c.exec(t, `UPDATE affiliates SET commission_rate = 1250 WHERE id = $1`, override.id)
		rate := c.affiliate(t, e.ws.ID, c.program(t, e.ws.ID, "USD", "commission_value = 2000"), heldsway.AffiliateActive)
		flat := c.affiliate(t, e.ws.ID, c.program(t, e.ws.ID, "USD", "commission_type = 'flat', commission_value = 500"), heldsway.AffiliateActive)
		tier := c.affiliate(t, e.ws.ID, c.program(t, e.ws.ID, "USD", ""), heldsway.AffiliateActive)
		now := e.clock.Now().UnixMicro()
		c.exec(t, `INSERT INTO commission_tiers (workspace_id, min_amount, max_amount, rate, created_at, updated_at)
			VALUES ($1, 0, 10000, 300, $2, $2), ($1, 10000, NULL, 400, $2, $2)`, e.ws.ID, now)
		// Tiers are kept in the default program's currency (USD): a EUR
		// program falls through to the platform tiers.
		eur := c.affiliate(t, e.ws.ID, c.program(t, e.ws.ID, "EUR", ""), heldsway.AffiliateActive)
		base := c.affiliate(t, e.ws.ID, c.program(t, e.ws.ID, "USD", "commission_value = 1000, commission_base = 'total'"), heldsway.AffiliateActive)

		cases := []struct {
			name           string
			aff            cvAff
			currency       string
			amount, rateJS string
			rule           string
		}{
			{"affiliate override beats the program rate", override, "USD", "12.50", "12.50", "affiliate_override"},
			{"program rate", rate, "USD", "20.00", "20.00", "program_rate"},
			{"program flat amount", flat, "USD", "5.00", "null", "program_rate"},
			{"workspace tier by the base amount", tier, "USD", "4.00", "4.00", "workspace_tier"},
			{"platform default tiers", eur, "EUR", "7.50", "7.50", "platform_tier"},
			{"commission base total", base, "USD", "11.00", "10.00", "program_rate"},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := c.convert(cvOrder(fmt.Sprintf("#prec-%d", i), "referral_code", tc.aff.code, "currency", tc.currency))
				if r.status != 201 {
					t.Fatalf("%d %s", r.status, r.raw)
				}
				if !strings.Contains(r.raw, `"commission_amount":`+tc.amount+`,`) || !strings.Contains(r.raw, `"commission_rate":`+tc.rateJS+`,`) {
					t.Fatalf("want amount %s rate %s: %s", tc.amount, tc.rateJS, r.raw)
				}
				cs := cvCommissions(r.data())
				if len(cs) != 1 || cs[0]["rule"] != tc.rule || cs[0]["status"] != "pending" {
					t.Fatalf("commissions %v", cs)
				}
			})
		}

		t.Run("a link rule comes first, when its conditions hold", func(t *testing.T) {
			aff := c.affiliate(t, e.ws.ID, c.program(t, e.ws.ID, "USD", "commission_value = 2000"), heldsway.AffiliateActive)
			c.exec(t, `UPDATE affiliates SET commission_rate = 1250 WHERE id = $1`, aff.id)
			now := e.clock.Now()
			rule := func(link int64, typ string, value, priority int64, active bool, categories, minOrder any) {
				c.exec(t, `INSERT INTO link_rules (workspace_id, link_id, type, value, currency, categories, min_order_amount,
					priority, is_active, created_at, updated_at) VALUES ($1, $2, $3, $4, 'USD', $5, $6, $7, $8, $9, $9)`,
					e.ws.ID, link, typ, value, categories, minOrder, priority, active, now.UnixMicro())
			}
			click, link := c.click(t, aff, "v-rule-"+cvTag(), now.Add(-time.Hour))
			rule(link, "percentage", 9000, 0, false, nil, nil) // inactive: never applies
			rule(link, "percentage", 3000, 1, true, `["Shoes"]`, nil)
			rule(link, "flat", 700, 2, true, nil, int64(5000))
			// Another link of the same affiliate has no rules.
			plain, _ := c.click(t, aff, "v-plain-"+cvTag(), now.Add(-time.Hour))
			shoes := []any{map[string]any{"product_id": "sku-1", "category": "shoes", "quantity": 1, "price": json.Number("100.00")}}
			for _, tc := range []struct {
				name, amount, rateJS, rule string
				order                      map[string]any
			}{
				{"percentage rule by category", "30.00", "30.00", "link_rule", cvOrder("#rule-shoes", "click_id", click, "line_items", shoes)},
				{"flat rule by the order total", "7.00", "null", "link_rule", cvOrder("#rule-flat", "click_id", click)},
				{"no rule holds: the affiliate override", "5.00", "12.50", "affiliate_override",
					map[string]any{"order_id": "#rule-small", "total": json.Number("40.00"), "subtotal": json.Number("40.00"), "currency": "USD", "click_id": click}},
				{"another link", "12.50", "12.50", "affiliate_override", cvOrder("#rule-plain", "click_id", plain)},
				{"no link: referral code", "12.50", "12.50", "affiliate_override", cvOrder("#rule-ref", "referral_code", aff.code, "line_items", shoes)},
			} {
				r := c.convert(tc.order)
				cs := cvCommissions(r.data())
				if r.status != 201 || !strings.Contains(r.raw, `"commission_amount":`+tc.amount+`,`) ||
					!strings.Contains(r.raw, `"commission_rate":`+tc.rateJS+`,`) || len(cs) != 1 || cs[0]["rule"] != tc.rule {
					t.Fatalf("%s: want %s at %s by %s: %d %s", tc.name, tc.amount, tc.rateJS, tc.rule, r.status, r.raw)
				}
			}
			// First click: the order names the visitor's later click, the
			// earlier one's link (with a rule) is credited, and its rule applies.
			fc := c.affiliate(t, e.ws.ID, c.program(t, e.ws.ID, "USD", "commission_value = 2000, attribution_model = 'first_click'"), heldsway.AffiliateActive)
			v := "v-first-" + cvTag()
			_, first := c.click(t, fc, v, now.Add(-2*time.Hour))
			later, _ := c.click(t, fc, v, now.Add(-time.Hour))
			rule(first, "flat", 900, 0, true, nil, nil)
			r := c.convert(cvOrder("#rule-first", "click_id", later))
			if d := r.data(); r.status != 201 || num(d["link_id"]) != first || !strings.Contains(r.raw, `"commission_amount":9.00,`) ||
				cvCommissions(d)[0]["rule"] != "link_rule" {
				t.Fatalf("first click's link rule: %d %s", r.status, r.raw)
			}
		})

		t.Run("multi-tier: an active parent earns the tier rate", func(t *testing.T) {
			prog := c.program(t, e.ws.ID, "USD", "commission_value = 1000, tier_rate = 500")
			parent := c.affiliate(t, e.ws.ID, prog, heldsway.AffiliateActive)
			child := c.affiliate(t, e.ws.ID, prog, heldsway.AffiliateActive)
			c.exec(t, `UPDATE affiliates SET parent_affiliate_id = $1 WHERE id = $2`, parent.id, child.id)
			r := c.convert(cvOrder("#tier2", "referral_code", child.code))
			cs := cvCommissions(r.data())
			if r.status != 201 || len(cs) != 2 || !strings.Contains(r.raw, `"commission_amount":15.00`) ||
				!strings.Contains(r.raw, `"commission_rate":10.00`) ||
				num(cs[0]["affiliate_id"]) != child.id || num(cs[0]["tier"]) != 1 ||
				num(cs[1]["affiliate_id"]) != parent.id || num(cs[1]["tier"]) != 2 || cs[1]["rule"] != "program_tier_rate" ||
				!strings.Contains(r.raw, `"amount":5.00`) {
				t.Fatalf("two tiers: %d %s", r.status, r.raw)
			}
			var events int
			_ = e.store.DB().QueryRow(`SELECT COUNT(*) FROM events WHERE type = 'commission.accrued' AND data LIKE $1`,
				`%"order_id":"#tier2"%`).Scan(&events)
			if events != 2 {
				t.Fatalf("commission.accrued events: %d", events)
			}
			c.exec(t, `UPDATE affiliates SET status = 'suspended' WHERE id = $1`, parent.id)
			r = c.convert(cvOrder("#tier2-suspended", "referral_code", child.code))
			if cs := cvCommissions(r.data()); r.status != 201 || len(cs) != 1 || !strings.Contains(r.raw, `"commission_amount":10.00`) {
				t.Fatalf("suspended parent: %d %s", r.status, r.raw)
			}
		})

		t.Run("self-referral is held with rejected commissions", func(t *testing.T) {
			prog := c.program(t, e.ws.ID, "USD", "commission_value = 1000, recurring = 'lifetime', auto_approve_enabled = true, auto_approve_delay_days = 7")
			self := c.affiliate(t, e.ws.ID, prog, heldsway.AffiliateActive)
			r := c.convert(cvOrder("#self", "referral_code", self.code, "customer", map[string]any{"email": strings.ToUpper(self.email)}))
			d := r.data()
			cs := cvCommissions(d)
			if r.status != 201 || d["status"] != "pending" || fmt.Sprint(d["flags"]) != "[self_referral]" || len(cs) != 1 ||
				cs[0]["status"] != "rejected" || !strings.Contains(r.raw, `"commission_amount":0.00`) ||
				!strings.Contains(r.raw, `"amount":10.00`) || d["auto_approve_at"] != nil ||
				!strings.Contains(cs[0]["explanation"].(string), "self-referral") {
				t.Fatalf("self-referral: %d %s", r.status, r.raw)
			}
			var bound int
			_ = e.store.DB().QueryRow(`SELECT COUNT(*) FROM customers WHERE workspace_id = $1 AND affiliate_id IS NOT NULL AND email = $2`,
				e.ws.ID, self.email).Scan(&bound)
			if bound != 0 {
				t.Fatal("a self-referral bound the customer")
			}
			// The same program auto-approves an ordinary order after 7 days.
			d = c.create(t, cvOrder("#auto", "referral_code", self.code, "occurred_at", "2026-10-30T08:00:00Z"))
			if d["auto_approve_at"] != "2026-11-06T08:00:00.000000Z" {
				t.Fatalf("auto_approve_at %v", d["auto_approve_at"])
			}
		})

		t.Run("unattributed orders follow the workspace auto-approval", func(t *testing.T) {
			c.exec(t, `UPDATE programs SET auto_approve_enabled = true, auto_approve_delay_days = 3 WHERE id = $1`, c.def)
			d := c.create(t, cvOrder("#auto-none", "occurred_at", "2026-10-30T08:00:00Z"))
			if d["auto_approve_at"] != "2026-11-02T08:00:00.000000Z" {
				t.Fatalf("auto_approve_at %v", d["auto_approve_at"])
			}
			c.exec(t, `UPDATE programs SET auto_approve_enabled = false WHERE id = $1`, c.def)
		})

		t.Run("JPY has no decimals; rounding is half-up", func(t *testing.T) {
			jpy := c.affiliate(t, e.ws.ID, c.program(t, e.ws.ID, "JPY", "commission_value = 1000"), heldsway.AffiliateActive)
			for _, tc := range []struct{ sub, want string }{{"1235", "124"}, {"1234", "123"}} {
				r := c.convert(map[string]any{"order_id": "#jpy-" + tc.sub, "total": json.Number(tc.sub), "subtotal": json.Number(tc.sub),
					"currency": "JPY", "referral_code": jpy.code})
				if r.status != 201 || !strings.Contains(r.raw, `"order_total":`+tc.sub+`,`) ||
					!strings.Contains(r.raw, `"commission_amount":`+tc.want+`,`) {
					t.Fatalf("JPY %s: %d %s", tc.sub, r.status, r.raw)
				}
			}
			r := c.convert(map[string]any{"order_id": "#jpy-frac", "total": json.Number("1500.5"), "subtotal": json.Number("1500"),
				"currency": "JPY", "referral_code": jpy.code})
			r.expectError(t, 422, "VALIDATION_ERROR", "")
			if got := r.details("total"); len(got) != 1 || got[0] != "The total field has more decimal places than the currency allows." {
				t.Fatalf("details %s", r.raw)
			}
		})

		t.Run("renewals within and beyond the recurring limit", func(t *testing.T) {
			rec := c.affiliate(t, e.ws.ID, c.program(t, e.ws.ID, "USD", "commission_value = 1000, recurring = 'months', recurring_months = 3"), heldsway.AffiliateActive)
			off := c.affiliate(t, e.ws.ID, c.program(t, e.ws.ID, "USD", "commission_value = 1000"), heldsway.AffiliateActive)
			for _, tc := range []struct {
				order, sub, at, aff, amount, flags, status string
			}{
				{"#sub-1", "sub_1", "2026-06-10T00:00:00Z", rec.code, "10.00", "[]", "pending"},
				{"#sub-2", "sub_1", "2026-08-10T00:00:00Z", rec.code, "10.00", "[]", "pending"},
				{"#sub-3", "sub_1", "2026-09-10T00:00:00Z", rec.code, "0.00", "[recurring_limit]", "rejected"},
				{"#off-1", "sub_2", "2026-06-10T00:00:00Z", off.code, "10.00", "[]", "pending"},
				{"#off-2", "sub_2", "2026-07-10T00:00:00Z", off.code, "0.00", "[recurring_off]", "rejected"},
			} {
				r := c.convert(cvOrder(tc.order, "subscription_id", tc.sub, "occurred_at", tc.at, "referral_code", tc.aff))
				d := r.data()
				cs := cvCommissions(d)
				if r.status != 201 || !strings.Contains(r.raw, `"commission_amount":`+tc.amount+`,`) ||
					fmt.Sprint(d["flags"]) != tc.flags || len(cs) != 1 || cs[0]["status"] != tc.status || d["subscription_id"] != tc.sub {
					t.Fatalf("%s: %d %s", tc.order, r.status, r.raw)
				}
			}
		})

		t.Run("currency other than the program's", func(t *testing.T) {
			before := c.counts(t)
			r := c.convert(cvOrder("#eur", "currency", "EUR", "referral_code", rate.code))
			r.expectError(t, 422, "VALIDATION_ERROR", "")
			if got := r.details("currency"); len(got) != 1 || got[0] != "The currency field must be the currency of the affiliate's program (USD), not EUR." {
				t.Fatalf("details %s", r.raw)
			}
			if after := c.counts(t); after != before {
				t.Fatalf("rows %s → %s", before, after)
			}
			// Unattributed, any currency is fine.
			if d := c.create(t, cvOrder("#eur-none", "currency", "EUR")); d["currency"] != "EUR" {
				t.Fatalf("unattributed EUR: %v", d)
			}
		})
	})
}

func TestConversionValidation(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		c := cvSetup(t, e)
		a := c.affiliate(t, e.ws.ID, c.def, heldsway.AffiliateActive)
		now := e.clock.Now()
		items := make([]map[string]any, 501)
		for i := range items {
			items[i] = map[string]any{"quantity": 1, "price": 1}
		}
		big := `{"k":"` + strings.Repeat("x", 16<<10) + `"}`
		without := func(field string) map[string]any {
			m := cvOrder("#bad", "referral_code", a.code)
			delete(m, field)
			return m
		}
		cases := []struct {
			name  string
			body  any
			field string
			msg   string
		}{
			{"order_id missing", without("order_id"), "order_id", "The order id field is required."},
			{"order_id blank", cvOrder("  "), "order_id", "The order id field is required."},
			{"order_id too long", cvOrder(strings.Repeat("x", 256)), "order_id", "The order id field must not be greater than 255 characters."},
			{"total missing", without("total"), "total", "The total field is required."},
			{"subtotal missing", without("subtotal"), "subtotal", "The subtotal field is required."},
			{"currency missing", without("currency"), "currency", "The currency field is required."},
			{"currency unknown", cvOrder("#bad", "currency", "XYZ"), "currency", "The currency field must be a valid ISO 4217 currency code."},
			{"total negative", cvOrder("#bad", "total", -1), "total", "The total field must be at least 0."},
			{"total a string", cvOrder("#bad", "total", "12"), "total", "The total field must be a number."},
			{"total with three decimals", cvOrder("#bad", "total", json.Number("12.345")), "total", "The total field has more decimal places than the currency allows."},
			{"total absurd", cvOrder("#bad", "total", json.Number("10000000000000001")), "total", "The total field is out of range."},
			{"discount negative", cvOrder("#bad", "discount", -5), "discount", "The discount field must be at least 0."},
			{"tax with three decimals", cvOrder("#bad", "tax", json.Number("0.001")), "tax", "The tax field has more decimal places than the currency allows."},
			{"occurred_at in the future", cvOrder("#bad", "occurred_at", now.Add(6*time.Minute).Format(time.RFC3339)), "occurred_at", "The occurred at field must not be in the future."},
			{"occurred_at before 2000", cvOrder("#bad", "occurred_at", "1999-12-31T23:59:59Z"), "occurred_at", "The occurred at field must be a date after 2000-01-01."},
			{"occurred_at not a date", cvOrder("#bad", "occurred_at", "yesterday"), "occurred_at", "The occurred at field must be a valid RFC 3339 date-time."},
			{"customer email invalid", cvOrder("#bad", "customer", map[string]any{"email": "not-an-email"}), "customer.email", "The customer.email field must be a valid email address."},
			{"customer name too long", cvOrder("#bad", "customer", map[string]any{"name": strings.Repeat("n", 256)}), "customer.name", "The customer.name field must not be greater than 255 characters."},
			{"too many line items", cvOrder("#bad", "line_items", items), "line_items", "The line items field must not have more than 500 items."},
			{"line item quantity 0", cvOrder("#bad", "line_items", []any{map[string]any{"quantity": 0, "price": 1}}), "line_items.0.quantity", "The line_items.0.quantity field must be at least 1."},
			{"line item price missing", cvOrder("#bad", "line_items", []any{map[string]any{"quantity": 1}}), "line_items.0.price", "The line_items.0.price field is required."},
			{"line item price precision", cvOrder("#bad", "line_items", []any{map[string]any{"quantity": 1, "price": json.Number("1.001")}}), "line_items.0.price", "The line_items.0.price field has more decimal places than the currency allows."},
			{"metadata not an object", cvOrder("#bad", "metadata", []any{1}), "metadata", "The metadata field must be an object."},
			{"metadata too large", cvOrder("#bad", "metadata", json.RawMessage(big)), "metadata", "The metadata field must not be larger than 16384 bytes of JSON."},
			{"click_id too long", cvOrder("#bad", "click_id", strings.Repeat("c", 256)), "click_id", "The click id field must not be greater than 255 characters."},
			{"unknown field", cvOrder("#bad", "affiliate_id", 1), "affiliate_id", "The affiliate id field is not allowed."},
		}
		before := c.counts(t)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := c.convert(tc.body)
				r.expectError(t, 422, "VALIDATION_ERROR", "")
				if got := r.details(tc.field); !slices.Contains(got, tc.msg) {
					t.Fatalf("details for %s: %s", tc.field, r.raw)
				}
			})
		}
		if after := c.counts(t); after != before {
			t.Fatalf("bad input wrote rows: %s → %s", before, after)
		}
		t.Run("several fields at once", func(t *testing.T) {
			r := c.convert(cvOrder("#bad", "total", json.Number("1.001"), "occurred_at", "1990-01-01T00:00:00Z",
				"customer", map[string]any{"email": "x@"}))
			r.expectError(t, 422, "VALIDATION_ERROR", "")
			if len(r.details("total")) != 1 || len(r.details("occurred_at")) != 1 {
				t.Fatalf("details %s", r.raw)
			}
		})
	})
}

func TestConversionDuplicate(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		c := cvSetup(t, e)
		a := c.affiliate(t, e.ws.ID, c.def, heldsway.AffiliateActive)
		d := c.create(t, cvOrder("#dup", "referral_code", a.code))
		id := num(d["id"])
		before := c.counts(t)
		r := c.convert(cvOrder("#dup", "total", 999))
		msg := fmt.Sprintf(`The order id "#dup" has already been recorded as order %d.`, id)
		r.expectError(t, 409, "CONFLICT", msg)
		det := r.body["error"].(map[string]any)["details"].(map[string]any)
		if num(det["existing_id"]) != id || fmt.Sprint(r.details("order_id")) != "["+msg+"]" {
			t.Fatalf("details %s", r.raw)
		}
		if after := c.counts(t); after != before {
			t.Fatalf("duplicate wrote rows: %s → %s", before, after)
		}
		// The same order id in another workspace is another order.
		ws, err := e.auth.CreateWorkspace(context.Background(), "Dup "+t.Name(), "basic")
		if err != nil {
			t.Fatal(err)
		}
		k, secret := e.newKey(ws, auth.KeyInput{Scopes: []string{"conversions:write"}})
		if r := e.do("POST", "/v1/conversions", e.exchange(k.Key, secret), cvOrder("#dup")); r.status != 201 {
			t.Fatalf("other workspace: %d %s", r.status, r.raw)
		}
	})
}

// TestConversionConcurrentDuplicates: 20 concurrent retries of one order
// without an Idempotency-Key make exactly one order and one set of commissions.
func TestConversionConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		c := cvSetup(t, e)
		prog := c.program(t, e.ws.ID, "USD", "commission_value = 1000, tier_rate = 500, recurring = 'lifetime'")
		parent := c.affiliate(t, e.ws.ID, prog, heldsway.AffiliateActive)
		child := c.affiliate(t, e.ws.ID, prog, heldsway.AffiliateActive)
		c.exec(t, `UPDATE affiliates SET parent_affiliate_id = $1 WHERE id = $2`, parent.id, child.id)
		click, _ := c.click(t, child, "v-race", e.clock.Now().Add(-time.Hour))
		body := cvOrder("#race", "click_id", click, "customer", map[string]any{"email": "race@example.com", "id": "c-race"},
			"line_items", []any{map[string]any{"quantity": 1, "price": 100}})
		const n = 20
		var wg sync.WaitGroup
		results := make([]*resp, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = c.convert(body)
			}()
		}
		wg.Wait()
		var created int64
		conflicts := 0
		for _, r := range results {
			switch r.status {
			case 201:
				if created != 0 {
					t.Fatalf("two 201s")
				}
				created = num(r.data()["id"])
			case 409:
				conflicts++
			default:
				t.Fatalf("unexpected %d %s", r.status, r.raw)
			}
		}
		if created == 0 || conflicts != n-1 {
			t.Fatalf("created %d, conflicts %d", created, conflicts)
		}
		for _, r := range results {
			if r.status == 409 {
				det := r.body["error"].(map[string]any)["details"].(map[string]any)
				if num(det["existing_id"]) != created {
					t.Fatalf("existing_id %v, want %d", det["existing_id"], created)
				}
			}
		}
		// One order, its item, its customer, two commission lines (child and
		// parent), one audit entry and three events.
		for q, want := range map[string]int{
			`SELECT COUNT(*) FROM orders WHERE workspace_id = $1`:                                                          1,
			`SELECT COUNT(*) FROM commissions WHERE workspace_id = $1`:                                                     2,
			`SELECT COUNT(*) FROM order_items WHERE workspace_id = $1`:                                                     1,
			`SELECT COUNT(*) FROM customers WHERE workspace_id = $1`:                                                       1,
			`SELECT COUNT(*) FROM audit_log WHERE workspace_id = $1 AND action = 'conversion.create'`:                      1,
			`SELECT COUNT(*) FROM events WHERE workspace_id = $1 AND type IN ('conversion.created', 'commission.accrued')`: 3,
		} {
			var got int
			if err := e.store.DB().QueryRow(q, e.ws.ID).Scan(&got); err != nil || got != want {
				t.Fatalf("%s: %d (%v), want %d", q, got, err, want)
			}
		}
	})
}

func TestAffiliateDeleteWithConversions(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		c := cvSetup(t, e)
		tok := e.token("affiliates:write")
		prog := c.program(t, e.ws.ID, "USD", "commission_value = 1000, tier_rate = 500")
		parent := c.affiliate(t, e.ws.ID, prog, heldsway.AffiliateActive)
		child := c.affiliate(t, e.ws.ID, prog, heldsway.AffiliateActive)
		idle := c.affiliate(t, e.ws.ID, prog, heldsway.AffiliateActive)
		c.exec(t, `UPDATE affiliates SET parent_affiliate_id = $1 WHERE id = $2`, parent.id, child.id)
		c.create(t, cvOrder("#del", "referral_code", child.code))
		for _, a := range []cvAff{child, parent} { // the parent has only a tier-2 commission
			r := e.do("DELETE", fmt.Sprintf("/v1/affiliates/%d", a.id), tok, nil)
			r.expectError(t, 409, "CONFLICT", "The affiliate has conversions; terminate it instead.")
		}
		var n int
		_ = e.store.DB().QueryRow(`SELECT COUNT(*) FROM affiliates WHERE id IN ($1, $2)`, parent.id, child.id).Scan(&n)
		if n != 2 {
			t.Fatalf("affiliates left: %d", n)
		}
		if r := e.do("DELETE", fmt.Sprintf("/v1/affiliates/%d", idle.id), tok, nil); r.status != 200 {
			t.Fatalf("delete without conversions: %d %s", r.status, r.raw)
		}
	})
}
