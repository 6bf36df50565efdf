package store_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// TestLedgerInvariantRandomized drives a random mix of the operations that
// move money — conversions, approvals, rejections, partial and full refunds,
// adjustments, payout runs, payout requests, and payout transitions — and
// after each one checks, for every affiliate and currency,
//
//	approved commissions − reversals + adjustments = paid + in flight + available
//
// and that a run paid each balance exactly once: a paid affiliate's payout is
// its whole available balance before the run and leaves it at zero, everyone
// else's balance is untouched. HELDSWAY_TEST_SEED replays a run;
// HELDSWAY_TEST_OPS sets the number of operations (default 1,500 per engine).
func TestLedgerInvariantRandomized(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("HELDSWAY_TEST_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	ops := 1500
	if v := os.Getenv("HELDSWAY_TEST_OPS"); v != "" {
		ops, _ = strconv.Atoi(v)
	}
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		t.Logf("HELDSWAY_TEST_SEED=%d", seed)
		rng := rand.New(rand.NewPCG(seed, 1))
		f := paySetup(t, st)
		min := "20.00"
		if _, err := st.UpdatePayoutSettings(f.ctx, f.ws.ID, heldsway.PayoutSettingsPatch{MinimumAmount: &min}); err != nil {
			t.Fatal(err)
		}
		affs := []int64{f.alice, f.bob}
		for i := range 2 {
			affs = append(affs, storetest.SeedAffiliate(t, st.DB(), f.ws.ID, f.prog, fmt.Sprintf("Random %d", i)))
		}
		currencies := []string{"USD", "EUR"}
		var (
			pendingOrders, liveOrders []int64 // pending; approved or pending with something left to refund
			counts                    = map[string]int{}
		)
		pick := func(ids []int64) (int64, int) {
			i := rng.IntN(len(ids))
			return ids[i], i
		}
		drop := func(ids []int64, i int) []int64 { return append(ids[:i], ids[i+1:]...) }
		payouts := func(statuses ...string) []int64 {
			q := `SELECT id FROM payouts WHERE workspace_id = $1 AND status IN ('` + statuses[0]
			for _, s := range statuses[1:] {
				q += `', '` + s
			}
			rows, err := st.DB().Query(q+`') ORDER BY id`, f.ws.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var out []int64
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				out = append(out, id)
			}
			return out
		}
		expect := func(op string, err error, allowed ...string) {
			t.Helper()
			if err == nil {
				counts[op]++
				return
			}
			var he *heldsway.Error
			if errors.As(err, &he) {
				for _, c := range allowed {
					if he.Code == c {
						counts[op+" refused"]++
						return
					}
				}
			}
			t.Fatalf("%s: %v", op, err)
		}

		for i := 0; i < ops; i++ {
			switch r := rng.IntN(100); {
			case r < 25: // a conversion: one or two commission lines
				f.n++
				cur := currencies[rng.IntN(2)]
				a1 := affs[rng.IntN(len(affs))]
				total := int64(500 + rng.IntN(20000))
				lines := []storetest.CommissionSeed{{AffiliateID: a1, Amount: total / 10, BaseAmount: total}}
				if rng.IntN(4) == 0 {
					a2 := affs[rng.IntN(len(affs))]
					if a2 != a1 {
						lines = append(lines, storetest.CommissionSeed{AffiliateID: a2, Tier: 2, Amount: total / 50, BaseAmount: total})
					}
				}
				oid, _ := f.order(storetest.OrderSeed{OrderID: fmt.Sprintf("R-%d", f.n), AffiliateID: a1, Currency: cur,
					Total: total, Subtotal: total, ConvertedAt: t0.Add(time.Duration(f.n) * time.Second), Lines: lines})
				pendingOrders, liveOrders = append(pendingOrders, oid), append(liveOrders, oid)
				counts["order"]++
			case r < 42 && len(pendingOrders) > 0:
				oid, k := pick(pendingOrders)
				pendingOrders = drop(pendingOrders, k)
				_, err := st.ApproveOrder(f.ctx, f.ws.ID, oid)
				expect("approve", err, heldsway.ETRANSITION) // a full refund cancelled it
			case r < 45 && len(pendingOrders) > 0:
				oid, k := pick(pendingOrders)
				pendingOrders = drop(pendingOrders, k)
				_, err := st.RejectOrder(f.ctx, f.ws.ID, oid, "random")
				expect("reject", err, heldsway.ETRANSITION)
			case r < 53 && len(liveOrders) > 0:
				oid, k := pick(liveOrders)
				var amt *int64
				if rng.IntN(3) > 0 {
					a := int64(1 + rng.IntN(3000))
					amt = &a
				} else {
					liveOrders = drop(liveOrders, k)
				}
				_, err := st.RefundOrder(f.ctx, f.ws.ID, oid, amt, "random")
				expect("refund", err, heldsway.EVALIDATION, heldsway.ETRANSITION)
			case r < 60:
				amt := int64(rng.IntN(4000) - 1500)
				if amt == 0 {
					amt = 1
				}
				_, err := st.CreateAdjustment(f.ctx, f.ws.ID, affs[rng.IntN(len(affs))],
					heldsway.AdjustmentInput{Amount: amt, Currency: currencies[rng.IntN(2)], Reason: "random"})
				expect("adjust", err)
			case r < 67:
				before := f.balancesOf(affs)
				run, err := st.RunPayouts(f.ctx, f.ws.ID, heldsway.PayoutRunInput{})
				expect("run", err)
				f.checkRun(run.ID, before, f.balancesOf(affs))
			case r < 74:
				aff, cur := affs[rng.IntN(len(affs))], currencies[rng.IntN(2)]
				avail := f.balance(aff, cur).Available
				amt := int64(1 + rng.IntN(3000))
				if avail > 0 && rng.IntN(3) > 0 {
					amt = 1 + rng.Int64N(avail)
				}
				_, err := st.CreatePayoutForRequest(f.ctx, f.ws.ID, f.request(aff, cur, amt))
				expect("request", err, heldsway.ECONFLICT)
			case r < 79:
				if ids := payouts("pending"); len(ids) > 0 {
					id, _ := pick(ids)
					_, err := st.MarkPayoutProcessing(f.ctx, f.ws.ID, id)
					expect("processing", err)
				}
			case r < 90:
				if ids := payouts("pending", "processing"); len(ids) > 0 {
					id, _ := pick(ids)
					_, err := st.CompletePayout(f.ctx, f.ws.ID, id, "ref")
					expect("complete", err)
				}
			default:
				if ids := payouts("pending", "processing"); len(ids) > 0 {
					id, _ := pick(ids)
					_, err := st.FailPayout(f.ctx, f.ws.ID, id, "bounced")
					expect("fail", err)
				}
			}
			f.checkInvariant(affs...)
			f.checkPaidCommissions()
		}
		t.Logf("operations: %v", counts)
		for _, op := range []string{"order", "approve", "refund", "adjust", "run", "request", "complete", "fail"} {
			if counts[op] == 0 {
				t.Fatalf("no successful %s in %d operations: %v", op, ops, counts)
			}
		}
	})
}

// balancesOf returns every affiliate's balances by affiliate and currency.
func (f *payFixture) balancesOf(affs []int64) map[string]heldsway.Balance {
	f.t.Helper()
	out := map[string]heldsway.Balance{}
	for _, a := range affs {
		bs, err := f.st.Balances(f.ctx, f.ws.ID, a)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, b := range bs {
			out[fmt.Sprintf("%d %s", a, b.Currency)] = b
		}
	}
	return out
}

// checkRun checks a run paid each balance once: a payout of the run equals the
// affiliate's available balance before it and leaves zero; other balances
// did not move.
func (f *payFixture) checkRun(runID int64, before, after map[string]heldsway.Balance) {
	f.t.Helper()
	rows, err := f.st.DB().Query(`SELECT affiliate_id, currency, amount FROM payouts WHERE run_id = $1`, runID)
	if err != nil {
		f.t.Fatal(err)
	}
	paid := map[string]int64{}
	for rows.Next() {
		var (
			aff, amt int64
			cur      string
		)
		if err := rows.Scan(&aff, &cur, &amt); err != nil {
			f.t.Fatal(err)
		}
		paid[fmt.Sprintf("%d %s", aff, cur)] = amt
	}
	rows.Close()
	for k, b := range before {
		a := after[k]
		if amt, ok := paid[k]; ok {
			if amt != b.Available || a.Available != 0 || amt <= 0 {
				f.t.Fatalf("run %d paid %s %d of an available %d, leaving %d", runID, k, amt, b.Available, a.Available)
			}
		} else if a.Available != b.Available {
			f.t.Fatalf("run %d moved %s's balance %d → %d without a payout", runID, k, b.Available, a.Available)
		}
	}
}

// checkPaidCommissions checks that a paid commission is in a completed payout,
// and that no commission is in a live payout and also open for another: every
// payout_items row belongs to a live payout.
func (f *payFixture) checkPaidCommissions() {
	f.t.Helper()
	var bad int
	if err := f.st.DB().QueryRow(`SELECT COUNT(*) FROM commissions c WHERE c.workspace_id = $1 AND c.status = 'paid'
		AND NOT EXISTS (SELECT 1 FROM payout_items pi JOIN payouts p ON p.id = pi.payout_id
			WHERE pi.commission_id = c.id AND p.status = 'completed')`, f.ws.ID).Scan(&bad); err != nil || bad != 0 {
		f.t.Fatalf("%d paid commissions outside a completed payout (%v)", bad, err)
	}
	if err := f.st.DB().QueryRow(`SELECT COUNT(*) FROM payout_items pi JOIN payouts p ON p.id = pi.payout_id
		WHERE pi.workspace_id = $1 AND p.status = 'failed'`, f.ws.ID).Scan(&bad); err != nil || bad != 0 {
		f.t.Fatalf("%d commissions still held by failed payouts (%v)", bad, err)
	}
}
