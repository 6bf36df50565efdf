package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/auth"
	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// Balances, ledger and adjustments; payouts and their export and statement;
// payout requests. Commissions are seeded by raw SQL and approved through the
// store, so the ledger holds what a real approval writes.

type payAPI struct {
	e           *env
	prog        int64
	alice, bob  int64
	other       *heldsway.Workspace
	otherAff    int64
	otherTok    string // payouts:read + payouts:write in the other workspace
	read, write string // payouts:read; payouts:read + payouts:write
	none        string // a token without the payouts scopes
	n           int
}

func paySetupAPI(t *testing.T, e *env) *payAPI {
	t.Helper()
	db := e.store.DB()
	a := &payAPI{e: e, prog: storetest.DefaultProgram(t, db, e.ws.ID)}
	a.alice = storetest.SeedAffiliate(t, db, e.ws.ID, a.prog, "Alice Able")
	a.bob = storetest.SeedAffiliate(t, db, e.ws.ID, a.prog, "Bob Baker")
	other, err := e.auth.CreateWorkspace(context.Background(), "Other "+e.engine, "basic")
	if err != nil {
		t.Fatal(err)
	}
	a.other = other
	a.otherAff = storetest.SeedAffiliate(t, db, other.ID, storetest.DefaultProgram(t, db, other.ID), "Olga Other")
	a.read = e.token(heldsway.ScopePayoutsRead)
	a.write = e.token(heldsway.ScopePayoutsRead, heldsway.ScopePayoutsWrite)
	a.none = e.token(heldsway.ScopeOrdersRead, heldsway.ScopeAffiliatesWrite)
	k, secret := e.newKey(other, auth.KeyInput{Scopes: []string{heldsway.ScopePayoutsRead, heldsway.ScopePayoutsWrite}})
	a.otherTok = e.exchange(k.Key, secret)
	return a
}

// approved seeds an order of aff with one commission of amount minor units in
// USD and approves it (ledger + amount); it returns the order and commission ids.
func (a *payAPI) approved(t *testing.T, aff, amount int64) (int64, int64) {
	t.Helper()
	return a.approvedIn(t, aff, amount, "USD")
}

func (a *payAPI) approvedIn(t *testing.T, aff, amount int64, cur string) (int64, int64) {
	t.Helper()
	a.n++
	oid, cids := storetest.InsertOrder(t, a.e.store.DB(), a.e.ws.ID, storetest.OrderSeed{OrderID: fmt.Sprintf("PO-%d", a.n),
		AffiliateID: aff, ProgramID: a.prog, Currency: cur, Total: 10 * amount, Subtotal: 10 * amount,
		ConvertedAt: time.Date(2026, 10, 1, 12, 0, a.n, 0, time.UTC),
		Lines:       []storetest.CommissionSeed{{AffiliateID: aff, Amount: amount, BaseAmount: 10 * amount}}})
	if _, err := a.e.store.ApproveOrder(context.Background(), a.e.ws.ID, oid); err != nil {
		t.Fatalf("approve: %v", err)
	}
	return oid, cids[0]
}

// pending seeds an order with one pending commission.
func (a *payAPI) pending(t *testing.T, aff, amount int64) int64 {
	t.Helper()
	a.n++
	oid, _ := storetest.InsertOrder(t, a.e.store.DB(), a.e.ws.ID, storetest.OrderSeed{OrderID: fmt.Sprintf("PO-%d", a.n),
		AffiliateID: aff, ProgramID: a.prog, Total: 10 * amount, Subtotal: 10 * amount,
		Lines: []storetest.CommissionSeed{{AffiliateID: aff, Amount: amount, BaseAmount: 10 * amount}}})
	return oid
}

// writes fingerprints what payout writes may add or change, to prove a
// refused request wrote nothing.
func (a *payAPI) writes(t *testing.T) string {
	t.Helper()
	var out []string
	for _, q := range []string{
		`SELECT COUNT(*) FROM audit_log WHERE workspace_id = $1`,
		`SELECT COUNT(*) FROM events WHERE workspace_id = $1`,
		`SELECT COUNT(*) || ':' || COALESCE(SUM(amount), 0) FROM ledger_entries WHERE workspace_id = $1`,
		`SELECT COUNT(*) || ':' || COALESCE(SUM(updated_at), 0) FROM payouts WHERE workspace_id = $1`,
		`SELECT COUNT(*) || ':' || COALESCE(SUM(updated_at), 0) FROM payout_requests WHERE workspace_id = $1`,
		`SELECT COUNT(*) || ':' || COALESCE(SUM(updated_at), 0) FROM commissions WHERE workspace_id = $1`,
	} {
		var s string
		if err := a.e.store.DB().QueryRow(q, a.e.ws.ID).Scan(&s); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// balanceOf returns the affiliate's balance in cur as the API shows it:
// currency → field → decimal text.
func (a *payAPI) balanceOf(t *testing.T, aff int64, cur string) map[string]string {
	t.Helper()
	r := a.e.do("GET", fmt.Sprintf("/v1/affiliates/%d/balance", aff), a.read, nil)
	if r.status != 200 {
		t.Fatalf("balance: %d %s", r.status, r.raw)
	}
	for _, b := range r.data()["balances"].([]any) {
		m := b.(map[string]any)
		if m["currency"] == cur {
			out := map[string]string{}
			for _, k := range []string{"available", "pending", "in_flight", "paid"} {
				out[k] = jsonNum(t, r.raw, m[k])
			}
			return out
		}
	}
	return nil
}

// jsonNum renders a decoded JSON number as the API wrote it for two-decimal
// currencies (the tests use USD and EUR): %.2f is exact at these magnitudes.
func jsonNum(t *testing.T, raw string, v any) string {
	t.Helper()
	f, ok := v.(float64)
	if !ok {
		t.Fatalf("not a number: %v in %s", v, raw)
	}
	return fmt.Sprintf("%.2f", f)
}

func TestBalanceLedgerAdjustments(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		a := paySetupAPI(t, e)
		a.approved(t, a.alice, 1250)
		a.approved(t, a.alice, 999)
		a.pending(t, a.alice, 500)

		t.Run("balance", func(t *testing.T) {
			r := e.do("GET", fmt.Sprintf("/v1/affiliates/%d/balance", a.alice), a.read, nil)
			if r.status != 200 || r.body["success"] != true {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			// Amounts are JSON numbers with exactly the currency's decimals.
			if !strings.Contains(r.raw, `"available":22.49`) || !strings.Contains(r.raw, `"pending":5.00`) ||
				!strings.Contains(r.raw, `"in_flight":0.00`) || !strings.Contains(r.raw, `"paid":0.00`) {
				t.Fatalf("balance: %s", r.raw)
			}
			if bs := e.do("GET", fmt.Sprintf("/v1/affiliates/%d/balance", a.bob), a.read, nil); len(bs.data()["balances"].([]any)) != 0 {
				t.Fatalf("bob has no money: %s", bs.raw)
			}
		})

		t.Run("adjustment", func(t *testing.T) {
			before := a.writes(t)
			r := e.do("POST", fmt.Sprintf("/v1/affiliates/%d/adjustments", a.alice), a.write,
				`{"amount": -2.49, "currency": "usd", "reason": "Returned goods outside the refund window"}`)
			if r.status != 201 || r.data()["kind"] != "adjustment" || !strings.Contains(r.raw, `"amount":-2.49`) ||
				r.data()["currency"] != "USD" || r.data()["reason"] != "Returned goods outside the refund window" {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			if a.writes(t) == before {
				t.Fatal("nothing written")
			}
			if b := a.balanceOf(t, a.alice, "USD"); b["available"] != "20.00" {
				t.Fatalf("balance after adjustment: %v", b)
			}
			var action, typ string
			if err := e.store.DB().QueryRow(`SELECT a.action, ev.type FROM audit_log a, events ev WHERE a.workspace_id = $1
				AND ev.workspace_id = $1 AND a.resource_type = 'ledger_entry' AND ev.resource_type = 'ledger_entry'`,
				e.ws.ID).Scan(&action, &typ); err != nil || action != "ledger.adjust" || typ != "balance.adjusted" {
				t.Fatalf("audit %q event %q: %v", action, typ, err)
			}
			// A credit in another currency opens a balance in it.
			e.do("POST", fmt.Sprintf("/v1/affiliates/%d/adjustments", a.alice), a.write,
				map[string]any{"amount": 10, "currency": "EUR", "reason": "Bonus"})
			if b := a.balanceOf(t, a.alice, "EUR"); b["available"] != "10.00" {
				t.Fatalf("EUR balance: %v", b)
			}
		})

		t.Run("adjustment validation", func(t *testing.T) {
			path := fmt.Sprintf("/v1/affiliates/%d/adjustments", a.alice)
			before := a.writes(t)
			for _, tc := range []struct {
				name, body, field string
			}{
				{"zero", `{"amount": 0, "currency": "USD", "reason": "x"}`, "amount"},
				{"too many decimals", `{"amount": 1.005, "currency": "USD", "reason": "x"}`, "amount"},
				{"JPY decimals", `{"amount": 1.5, "currency": "JPY", "reason": "x"}`, "amount"},
				{"absurd", `{"amount": 1e30, "currency": "USD", "reason": "x"}`, "amount"},
				{"string amount", `{"amount": "1.00", "currency": "USD", "reason": "x"}`, "amount"},
				{"unknown currency", `{"amount": 1, "currency": "XYZ", "reason": "x"}`, "currency"},
				{"missing reason", `{"amount": 1, "currency": "USD"}`, "reason"},
				{"blank reason", `{"amount": 1, "currency": "USD", "reason": "   "}`, "reason"},
				{"long reason", `{"amount": 1, "currency": "USD", "reason": "` + strings.Repeat("r", 501) + `"}`, "reason"},
				{"unknown field", `{"amount": 1, "currency": "USD", "reason": "x", "extra": 1}`, "extra"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					r := e.do("POST", path, a.write, tc.body)
					r.expectError(t, 422, "VALIDATION_ERROR", "")
					if len(r.details(tc.field)) == 0 {
						t.Fatalf("no detail on %s: %s", tc.field, r.raw)
					}
				})
			}
			if a.writes(t) != before {
				t.Fatal("a refused adjustment wrote something")
			}
		})

		t.Run("ledger", func(t *testing.T) {
			r := e.do("GET", fmt.Sprintf("/v1/affiliates/%d/ledger?currency=USD", a.alice), a.read, nil)
			items := ordItems(r)
			if r.status != 200 || len(items) != 3 {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			// Newest first: the adjustment, then the two approvals.
			if items[0]["kind"] != "adjustment" || items[1]["kind"] != "commission_approved" || items[1]["commission_id"] == nil {
				t.Fatalf("ledger order: %s", r.raw)
			}
			if n := len(ordItems(e.do("GET", fmt.Sprintf("/v1/affiliates/%d/ledger?kind=commission_approved", a.alice), a.read, nil))); n != 2 {
				t.Fatalf("kind filter: %d", n)
			}
			if n := len(ordItems(e.do("GET", fmt.Sprintf("/v1/affiliates/%d/ledger?currency=eur", a.alice), a.read, nil))); n != 1 {
				t.Fatalf("currency filter: %d", n)
			}
			// Cursor pages cover every entry once.
			seen := map[float64]bool{}
			cursor := ""
			for range 10 {
				p := fmt.Sprintf("/v1/affiliates/%d/ledger?per_page=1&direction=asc", a.alice)
				if cursor != "" {
					p += "&cursor=" + cursor
				}
				r := e.do("GET", p, a.read, nil)
				for _, it := range ordItems(r) {
					if seen[it["id"].(float64)] {
						t.Fatalf("entry seen twice")
					}
					seen[it["id"].(float64)] = true
				}
				next, _ := r.data()["meta"].(map[string]any)["next_cursor"].(string)
				if next == "" {
					break
				}
				cursor = next
			}
			if len(seen) != 4 {
				t.Fatalf("paged %d entries, want 4", len(seen))
			}
			e.do("GET", fmt.Sprintf("/v1/affiliates/%d/ledger?kind=bonus", a.alice), a.read, nil).expectError(t, 422, "VALIDATION_ERROR", "")
			e.do("GET", fmt.Sprintf("/v1/affiliates/%d/ledger?cursor=nope", a.alice), a.read, nil).expectError(t, 422, "VALIDATION_ERROR", "")
		})

		t.Run("other workspace and unknown affiliates are 404", func(t *testing.T) {
			for _, p := range []string{"/v1/affiliates/%d/balance", "/v1/affiliates/%d/ledger"} {
				e.do("GET", fmt.Sprintf(p, a.alice), a.otherTok, nil).expectError(t, 404, "NOT_FOUND", "")
				e.do("GET", fmt.Sprintf(p, 999999), a.read, nil).expectError(t, 404, "NOT_FOUND", "")
			}
			before := a.writes(t)
			e.do("POST", fmt.Sprintf("/v1/affiliates/%d/adjustments", a.alice), a.otherTok,
				map[string]any{"amount": 5, "currency": "USD", "reason": "x"}).expectError(t, 404, "NOT_FOUND", "")
			if a.writes(t) != before {
				t.Fatal("another workspace's adjustment wrote something")
			}
		})

		t.Run("scopes", func(t *testing.T) {
			e.do("GET", fmt.Sprintf("/v1/affiliates/%d/balance", a.alice), a.none, nil).expectError(t, 403, "FORBIDDEN", "")
			e.do("GET", fmt.Sprintf("/v1/affiliates/%d/ledger", a.alice), a.none, nil).expectError(t, 403, "FORBIDDEN", "")
			e.do("POST", fmt.Sprintf("/v1/affiliates/%d/adjustments", a.alice), a.read,
				map[string]any{"amount": 5, "currency": "USD", "reason": "x"}).expectError(t, 403, "FORBIDDEN", "")
		})
	})
}
