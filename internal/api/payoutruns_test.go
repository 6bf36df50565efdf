package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/heldsway/heldsway/internal/auth"
	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// POST /v1/payouts/run and GET /v1/payout-runs/{id} on every engine.
func TestPayoutRunAPI(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		db := e.store.DB()
		prog := storetest.DefaultProgram(t, db, e.ws.ID)
		alice := storetest.SeedAffiliate(t, db, e.ws.ID, prog, "Alice Able")
		bob := storetest.SeedAffiliate(t, db, e.ws.ID, prog, "Bob Baker")
		for _, c := range []struct {
			aff    int64
			amount int64
		}{{alice, 7550}, {alice, 1000}, {bob, 4999}} {
			oid, _ := storetest.InsertOrder(t, db, e.ws.ID, storetest.OrderSeed{OrderID: fmt.Sprintf("R-%d-%d", c.aff, c.amount),
				AffiliateID: c.aff, ProgramID: prog, Total: 10 * c.amount, Subtotal: 10 * c.amount,
				Lines: []storetest.CommissionSeed{{AffiliateID: c.aff, Amount: c.amount, BaseAmount: 10 * c.amount}}})
			if _, err := e.store.ApproveOrder(context.Background(), e.ws.ID, oid); err != nil {
				t.Fatal(err)
			}
		}
		write := e.token(heldsway.ScopePayoutsRead, heldsway.ScopePayoutsWrite)
		read := e.token(heldsway.ScopePayoutsRead)

		e.do("POST", "/v1/payouts/run", read, nil).expectError(t, 403, "FORBIDDEN", "Insufficient scope.")
		e.do("POST", "/v1/payouts/run", write, map[string]any{"currency": "XYZ"}).expectError(t, 422, "VALIDATION_ERROR", "")
		e.do("POST", "/v1/payouts/run", write, map[string]any{"period_key": strings.Repeat("k", 65)}).expectError(t, 422, "VALIDATION_ERROR", "")

		r := e.do("POST", "/v1/payouts/run", write, map[string]any{"period_key": "monthly:2026-11"})
		if r.status != 201 || r.body["message"] != "Payout run completed." {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		d := r.data()
		// Alice's 85.50 reaches the 50.00 minimum; Bob's 49.99 is carried forward.
		if d["period_key"] != "monthly:2026-11" || d["status"] != "completed" || d["payouts_created"] != 1.0 ||
			d["carried_forward"] != 1.0 || d["currency"] != nil || d["completed_at"] == nil {
			t.Fatalf("run %s", r.raw)
		}
		if !strings.Contains(r.raw, `"totals":[{"currency":"USD","payouts":1,"amount":85.50}]`) {
			t.Fatalf("totals %s", r.raw)
		}
		id := int64(d["id"].(float64))
		var amount int64
		if err := db.QueryRow(`SELECT amount FROM payouts WHERE run_id = $1 AND affiliate_id = $2 AND status = 'pending'`, id, alice).
			Scan(&amount); err != nil || amount != 8550 {
			t.Fatalf("alice's payout %d (%v)", amount, err)
		}

		again := e.do("POST", "/v1/payouts/run", write, map[string]any{"period_key": "monthly:2026-11"})
		again.expectError(t, 409, "CONFLICT", "The payout run of period monthly:2026-11 has already run.")
		if !strings.Contains(again.raw, fmt.Sprintf(`"run_id":%d`, id)) {
			t.Fatalf("conflict without the run id: %s", again.raw)
		}

		// Without a body: a manual run of its own, which finds nothing new.
		m := e.do("POST", "/v1/payouts/run", write, nil)
		if m.status != 201 || !strings.HasPrefix(m.data()["period_key"].(string), "manual:") || m.data()["payouts_created"] != 0.0 {
			t.Fatalf("manual run %d %s", m.status, m.raw)
		}

		g := e.do("GET", fmt.Sprintf("/v1/payout-runs/%d", id), read, nil)
		if g.status != 200 || g.data()["id"] != float64(id) || g.data()["payouts_created"] != 1.0 {
			t.Fatalf("get %d %s", g.status, g.raw)
		}
		other, err := e.auth.CreateWorkspace(context.Background(), "Other "+e.engine, "basic")
		if err != nil {
			t.Fatal(err)
		}
		k, secret := e.newKey(other, auth.KeyInput{Scopes: []string{heldsway.ScopePayoutsRead}})
		e.do("GET", fmt.Sprintf("/v1/payout-runs/%d", id), e.exchange(k.Key, secret), nil).expectError(t, 404, "NOT_FOUND", "")
	})
}
