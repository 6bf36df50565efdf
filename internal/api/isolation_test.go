package api_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/heldsway/heldsway/internal/auth"
)

// isolationFixture is one resource of workspace A per kind of path id.
type isolationFixture map[string]int64

// isolationBodies are valid bodies for the writes that take a path id, so a
// refusal can only come from the id belonging to another workspace (a 422 would
// prove nothing about isolation).
var isolationBodies = map[string]any{
	"PUT /v1/programs/{id}":                         map[string]any{"name": "Hijacked"},
	"PUT /v1/affiliates/{id}":                       map[string]any{"name": "Hijacked"},
	"PUT /v1/affiliates/{id}/commission":            map[string]any{"commission_rate": 50},
	"POST /v1/affiliates/{id}/links":                map[string]any{"destination_url": "https://evil.example/"},
	"POST /v1/affiliates/{id}/links/bulk":           map[string]any{"links": []any{map[string]any{"destination_url": "https://evil.example/"}}},
	"PUT /v1/links/{id}":                            map[string]any{"campaign": "hijacked"},
	"POST /v1/links/{id}/commission-rules":          map[string]any{"type": "percentage", "value": 50},
	"PUT /v1/links/{id}/commission-rules/{rule_id}": map[string]any{"is_active": false},
	"PUT /v1/coupons/{id}":                          map[string]any{"is_active": false},
	"PUT /v1/settings/commission-tiers/{id}":        map[string]any{"rate": 99},
	"POST /v1/orders/{id}/refund":                   map[string]any{},
	"POST /v1/orders/{id}/approve":                  map[string]any{},
	"POST /v1/orders/{id}/reject":                   map[string]any{},
	"POST /v1/affiliates/{id}/approve":              map[string]any{},
	"POST /v1/affiliates/{id}/suspend":              map[string]any{},
	"POST /v1/affiliates/{id}/reactivate":           map[string]any{},
	"POST /v1/affiliates/{id}/terminate":            map[string]any{},
	"POST /v1/api-keys/{id}/rotate":                 map[string]any{},
	"POST /v1/payouts/{id}/processing":              map[string]any{},
	"POST /v1/payouts/{id}/complete":                map[string]any{},
	"POST /v1/payouts/{id}/fail":                    map[string]any{},
	"POST /v1/payouts/requests/{id}/approve":        map[string]any{},
	"POST /v1/payouts/requests/{id}/reject":         map[string]any{},
	"POST /v1/affiliates/{id}/adjustments":          map[string]any{"amount": 1, "currency": "USD", "reason": "x"},
	"POST /v1/affiliates/{id}/payout-requests":      map[string]any{"amount": 1, "currency": "USD"},
}

// resourceOf names the fixture a path id refers to, from the path before it.
func resourceOf(path, param string) string {
	switch {
	case param == "batch_id":
		return "link_batch"
	case param == "rule_id":
		return "link_rule"
	case strings.HasPrefix(path, "/v1/settings/commission-tiers/"):
		return "tier"
	case strings.HasPrefix(path, "/v1/payouts/requests/"):
		return "payout_request"
	}
	parts := strings.Split(strings.TrimPrefix(path, "/v1/"), "/")
	return map[string]string{"programs": "program", "affiliates": "affiliate", "links": "link", "coupons": "coupon",
		"api-keys": "api_key", "events": "event", "orders": "order", "conversions": "order",
		"payouts": "payout", "payout-runs": "payout_run"}[parts[0]]
}

var isolationParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// snapshotA fingerprints everything workspace A holds: row counts and the sum of
// update times of every table, and the audit log. Any write shows up in it.
func snapshotA(t *testing.T, e *env) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{
		`SELECT COUNT(*), COALESCE(SUM(updated_at), 0) FROM programs WHERE workspace_id = $1`,
		`SELECT COUNT(*), COALESCE(SUM(updated_at), 0) FROM affiliates WHERE workspace_id = $1`,
		`SELECT COUNT(*), COALESCE(SUM(updated_at), 0) FROM affiliate_users WHERE workspace_id = $1`,
		`SELECT COUNT(*), COALESCE(SUM(updated_at), 0) FROM links WHERE workspace_id = $1`,
		`SELECT COUNT(*), COALESCE(SUM(updated_at), 0) FROM link_batches WHERE workspace_id = $1`,
		`SELECT COUNT(*), COALESCE(SUM(updated_at), 0) FROM link_rules WHERE workspace_id = $1`,
		`SELECT COUNT(*), COALESCE(SUM(updated_at), 0) FROM coupons WHERE workspace_id = $1`,
		`SELECT COUNT(*), COALESCE(SUM(updated_at), 0) FROM commission_tiers WHERE workspace_id = $1`,
		`SELECT COUNT(*), COALESCE(SUM(updated_at), 0) FROM workspace_settings WHERE workspace_id = $1`,
		`SELECT COUNT(*), COALESCE(SUM(updated_at), 0) FROM orders WHERE workspace_id = $1`,
		`SELECT COUNT(*), COALESCE(SUM(updated_at), 0) FROM commissions WHERE workspace_id = $1`,
		`SELECT COUNT(*), COALESCE(SUM(COALESCE(revoked_at, 0) + COALESCE(prev_secret_expires_at, 0)), 0) FROM api_keys WHERE workspace_id = $1`,
		`SELECT COUNT(*), COALESCE(SUM(updated_at), 0) FROM payouts WHERE workspace_id = $1`,
		`SELECT COUNT(*), COALESCE(SUM(updated_at), 0) FROM payout_requests WHERE workspace_id = $1`,
		`SELECT COUNT(*), COALESCE(MAX(id), 0) FROM ledger_entries WHERE workspace_id = $1`,
		`SELECT COUNT(*), COALESCE(MAX(id), 0) FROM payout_runs WHERE workspace_id = $1`,
		`SELECT COUNT(*), COALESCE(MAX(id), 0) FROM audit_log WHERE workspace_id = $1`,
		`SELECT COUNT(*), COALESCE(MAX(id), 0) FROM events WHERE workspace_id = $1`,
	} {
		var n, sum int64
		if err := e.store.DB().QueryRow(q, e.ws.ID).Scan(&n, &sum); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		fmt.Fprintf(&b, "%d/%d ", n, sum)
	}
	return b.String()
}

// TestTenantIsolation walks every route of the OpenAPI document with a second
// workspace's admin token and the first workspace's ids: each answers 404 (or
// 403) and nothing of the first workspace changes. A new route with a path id
// the walk does not know fails the test until a fixture is added here.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		tokA := e.token("admin")
		fx := isolationFixture{}
		mustID := func(r *resp, what string) int64 {
			t.Helper()
			if r.status >= 300 {
				t.Fatalf("fixture %s: %d %s", what, r.status, r.raw)
			}
			d := r.data()
			for _, k := range []string{"id", "batch_id"} {
				if v, ok := d[k].(float64); ok {
					return int64(v)
				}
			}
			t.Fatalf("fixture %s: no id in %s", what, r.raw)
			return 0
		}
		fx["program"] = mustID(e.do("POST", "/v1/programs", tokA, map[string]any{"name": "A program", "currency": "USD"}), "program")
		fx["affiliate"] = mustID(e.do("POST", "/v1/affiliates", tokA, map[string]any{"name": "A aff", "email": "a@example.com"}), "affiliate")
		fx["link"] = mustID(e.do("POST", fmt.Sprintf("/v1/affiliates/%d/links", fx["affiliate"]), tokA,
			map[string]any{"destination_url": "https://shop.example/"}), "link")
		fx["link_rule"] = mustID(e.do("POST", fmt.Sprintf("/v1/links/%d/commission-rules", fx["link"]), tokA,
			map[string]any{"type": "percentage", "value": 20}), "link rule")
		fx["link_batch"] = mustID(e.do("POST", fmt.Sprintf("/v1/affiliates/%d/links/bulk", fx["affiliate"]), tokA,
			map[string]any{"links": []any{map[string]any{"destination_url": "https://shop.example/b"}}}), "batch")
		fx["coupon"] = mustID(e.do("POST", "/v1/coupons", tokA, map[string]any{"code": "ASAVE10", "affiliate_id": fx["affiliate"],
			"discount_type": "percentage", "discount_value": 10}), "coupon")
		fx["tier"] = mustID(e.do("POST", "/v1/settings/commission-tiers", tokA, map[string]any{"min_amount": 0, "max_amount": 100, "rate": 5}), "tier")
		keyA, _ := e.newKey(nil, auth.KeyInput{Name: "A key", Scopes: []string{"reports:read"}})
		fx["api_key"] = keyA.ID
		now := e.clock.Now().UnixMicro()
		var orderID int64
		if err := e.store.DB().QueryRow(`INSERT INTO orders (workspace_id, order_id, status, currency, total, subtotal,
			attribution, converted_at, created_at, updated_at) VALUES ($1, 'A-1', 'pending', 'USD', 1000, 1000, 'none', $2, $2, $2)
			RETURNING id`, e.ws.ID, now).Scan(&orderID); err != nil {
			t.Fatal(err)
		}
		fx["order"] = orderID
		// A payout (through an approved request) and a pending request of A.
		if r := e.do("POST", fmt.Sprintf("/v1/affiliates/%d/adjustments", fx["affiliate"]), tokA,
			map[string]any{"amount": 100, "currency": "USD", "reason": "fixture"}); r.status != 201 {
			t.Fatalf("fixture adjustment: %d %s", r.status, r.raw)
		}
		insertRequest := func() int64 {
			var id int64
			if err := e.store.DB().QueryRow(`INSERT INTO payout_requests (workspace_id, affiliate_id, currency, amount, status,
				created_at, updated_at) VALUES ($1, $2, 'USD', 1000, 'pending', $3, $3) RETURNING id`,
				e.ws.ID, fx["affiliate"], now).Scan(&id); err != nil {
				t.Fatal(err)
			}
			return id
		}
		payout, err := e.store.CreatePayoutForRequest(ctx, e.ws.ID, insertRequest())
		if err != nil {
			t.Fatalf("fixture payout: %v", err)
		}
		fx["payout"] = payout.ID
		fx["payout_request"] = insertRequest()
		var runID int64
		if err := e.store.DB().QueryRow(`INSERT INTO payout_runs (workspace_id, period_key, status, started_at, completed_at)
			VALUES ($1, 'manual:fixture', 'completed', $2, $2) RETURNING id`, e.ws.ID, now).Scan(&runID); err != nil {
			t.Fatal(err)
		}
		fx["payout_run"] = runID
		var eventID int64
		if err := e.store.DB().QueryRow(`SELECT MAX(id) FROM events WHERE workspace_id = $1`, e.ws.ID).Scan(&eventID); err != nil || eventID == 0 {
			t.Fatalf("no event in A: %v", err)
		}
		fx["event"] = eventID

		wsB, err := e.auth.CreateWorkspace(ctx, "Workspace B", "basic")
		if err != nil {
			t.Fatal(err)
		}
		kB, secretB := e.newKey(wsB, auth.KeyInput{Scopes: []string{"admin"}, RateLimit: 100000})
		tokB := e.exchange(kB.Key, secretB)

		before := snapshotA(t, e)
		walked := 0
		for path, ops := range e.server.OpenAPI().Paths {
			if !strings.HasPrefix(path, "/v1/") || !strings.Contains(path, "{") {
				continue
			}
			for method, op := range map[string]*huma.Operation{"GET": ops.Get, "POST": ops.Post, "PUT": ops.Put, "DELETE": ops.Delete, "PATCH": ops.Patch} {
				if op == nil {
					continue
				}
				route := method + " " + path
				if strings.Contains(path, "{workspace_slug}") {
					continue // public by design: no token, addressed by slug
				}
				if path == "/v1/settings/{key}" {
					// Settings keys name settings, not rows: B reads and writes its
					// own; the snapshot below proves A is untouched.
					e.do(method, "/v1/settings/cookie_duration", tokB, map[string]any{"value": 45})
					walked++
					continue
				}
				url := isolationParam.ReplaceAllStringFunc(path, func(m string) string {
					param := m[1 : len(m)-1]
					res := resourceOf(path, param)
					if param == "id" && strings.HasPrefix(path, "/v1/affiliates/{id}/link-batches") {
						res = "affiliate"
					}
					id, ok := fx[res]
					if !ok {
						t.Fatalf("%s: no fixture for {%s} (resource %q): add one to TestTenantIsolation", route, param, res)
					}
					return fmt.Sprint(id)
				})
				var body any
				if op.RequestBody != nil {
					body = isolationBodies[route]
					if body == nil {
						t.Fatalf("%s: no body in isolationBodies: add a valid one", route)
					}
				}
				r := e.do(method, url, tokB, body)
				if r.status != 404 && r.status != 403 {
					t.Errorf("%s as workspace B: %d %s", route, r.status, r.raw)
				}
				walked++
			}
		}
		t.Logf("walked %d routes with path ids", walked)
		if walked < 20 {
			t.Fatalf("walked only %d routes", walked)
		}
		t.Run("lists and references", func(t *testing.T) {
			for _, q := range []string{
				fmt.Sprintf("/v1/links?affiliate_id=%d", fx["affiliate"]),
				fmt.Sprintf("/v1/affiliates?program_id=%d", fx["program"]),
				fmt.Sprintf("/v1/coupons?affiliate_id=%d", fx["affiliate"]),
				fmt.Sprintf("/v1/audit-log?resource_id=%d", fx["affiliate"]),
				"/v1/events", "/v1/programs", "/v1/affiliates", "/v1/links", "/v1/coupons", "/v1/api-keys",
			} {
				r := e.do("GET", q, tokB, nil)
				if r.status != 200 && r.status != 422 {
					t.Errorf("GET %s: %d %s", q, r.status, r.raw)
					continue
				}
				for _, it := range listItems(r) {
					if strings.Contains(fmt.Sprint(it), "A aff") || strings.Contains(fmt.Sprint(it), "ASAVE10") ||
						strings.Contains(fmt.Sprint(it), "A program") || strings.Contains(fmt.Sprint(it), "A key") {
						t.Errorf("GET %s as B shows A's data: %v", q, it)
					}
				}
			}
			for route, body := range map[string]map[string]any{
				"POST /v1/affiliates":        {"name": "x", "email": "x@example.com", "program_id": fx["program"]},
				"POST /v1/affiliates#parent": {"name": "y", "email": "y@example.com", "parent_affiliate_id": fx["affiliate"]},
				"POST /v1/coupons":           {"code": "BSAVE", "affiliate_id": fx["affiliate"], "discount_type": "percentage", "discount_value": 5},
			} {
				path := strings.SplitN(strings.TrimPrefix(route, "POST "), "#", 2)[0]
				r := e.do("POST", path, tokB, body)
				if r.status != 422 && r.status != 404 {
					t.Errorf("%s with A's id as B: %d %s", route, r.status, r.raw)
				}
			}
		})
		e.clock.Advance(time.Second)
		if after := snapshotA(t, e); after != before {
			t.Fatalf("workspace A changed under B's requests:\nbefore %s\nafter  %s", before, after)
		}
	})
}

func listItems(r *resp) []any {
	items, _ := r.data()["items"].([]any)
	return items
}
