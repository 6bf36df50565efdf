package api_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// The payout figures of /v1/reports/payouts agree with /v1/payouts and
// /v1/payouts/stats: the same payouts with the same amounts, and the stats'
// pending and completed-this-month sums are the sums of the report's rows.
func TestReportPayoutsAgreeWithPayoutStats(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		ctx, db := context.Background(), e.store.DB()
		prog := storetest.DefaultProgram(t, db, e.ws.ID)
		var affs []int64
		for i, amount := range []int64{6000, 7010, 8020} {
			aff := storetest.SeedAffiliate(t, db, e.ws.ID, prog, fmt.Sprintf("Agree %d", i))
			affs = append(affs, aff)
			oid, _ := storetest.InsertOrder(t, db, e.ws.ID, storetest.OrderSeed{OrderID: fmt.Sprintf("AG-%d", i), AffiliateID: aff,
				ProgramID: prog, Total: 10 * amount, Subtotal: 10 * amount,
				Lines: []storetest.CommissionSeed{{AffiliateID: aff, Amount: amount, BaseAmount: 10 * amount}}})
			if _, err := e.store.ApproveOrder(ctx, e.ws.ID, oid); err != nil {
				t.Fatal(err)
			}
		}
		run, err := e.store.RunPayouts(ctx, e.ws.ID, heldsway.PayoutRunInput{})
		if err != nil || run.PayoutsCreated != 3 {
			t.Fatalf("run %+v %v", run, err)
		}
		ids := map[int64]int64{}
		rows, err := db.Query(`SELECT affiliate_id, id FROM payouts WHERE run_id = $1`, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var a, id int64
			if err := rows.Scan(&a, &id); err != nil {
				t.Fatal(err)
			}
			ids[a] = id
		}
		rows.Close()
		if _, err := e.store.CompletePayout(ctx, e.ws.ID, ids[affs[0]], "tx-1"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.MarkPayoutProcessing(ctx, e.ws.ID, ids[affs[1]]); err != nil {
			t.Fatal(err)
		}
		tok := e.token(heldsway.ScopePayoutsRead, heldsway.ScopeReportsRead)

		rep := e.do("GET", "/v1/reports/payouts?per_page=100", tok, nil)
		list := e.do("GET", "/v1/payouts?per_page=100", tok, nil)
		stats := e.do("GET", "/v1/payouts/stats", tok, nil)
		if rep.status != 200 || list.status != 200 || stats.status != 200 {
			t.Fatalf("%d %s\n%d %s\n%d %s", rep.status, rep.raw, list.status, list.raw, stats.status, stats.raw)
		}
		byID := func(items []any) map[float64]string {
			out := map[float64]string{}
			for _, it := range items {
				m := it.(map[string]any)
				out[m["id"].(float64)] = fmt.Sprintf("%v %v %v", m["amount"], m["currency"], m["status"])
			}
			return out
		}
		repItems := rep.data()["items"].([]any)
		if a, b := byID(repItems), byID(list.data()["items"].([]any)); fmt.Sprint(a) != fmt.Sprint(b) || len(a) != 3 {
			t.Fatalf("report payouts %v\n/v1/payouts %v", a, b)
		}
		var pending, completed float64
		for _, it := range repItems {
			m := it.(map[string]any)
			switch m["status"] {
			case "pending", "processing":
				pending += m["amount"].(float64)
			case "completed":
				completed += m["amount"].(float64)
			}
		}
		cs := stats.data()["currencies"].([]any)
		if len(cs) != 1 {
			t.Fatalf("stats %s", stats.raw)
		}
		c := cs[0].(map[string]any)
		if c["pending_amount"].(float64) != pending || c["completed_this_month"].(float64) != completed ||
			pending != 150.30 || completed != 60.00 || stats.data()["pending_count"] != 2.0 {
			t.Fatalf("stats %s; report sums pending %.2f completed %.2f", stats.raw, pending, completed)
		}
	})
}
