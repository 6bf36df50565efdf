package store_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// Payout runs on every engine: what a run pays and carries forward, that a
// period runs once, concurrent runs, resuming a crashed run.

func (f *payFixture) run(key string) (*heldsway.PayoutRun, error) {
	f.t.Helper()
	return f.st.RunPayouts(f.ctx, f.ws.ID, heldsway.PayoutRunInput{PeriodKey: key})
}

// runPayouts returns the affiliate, amount and status of the run's payouts, by affiliate.
func (f *payFixture) runPayouts(runID int64) []string {
	f.t.Helper()
	rows, err := f.st.DB().Query(`SELECT affiliate_id, currency, amount, status FROM payouts WHERE run_id = $1 ORDER BY affiliate_id, currency`, runID)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var (
			aff, amt  int64
			cur, stat string
		)
		if err := rows.Scan(&aff, &cur, &amt, &stat); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d %s %d %s", aff, cur, amt, stat))
	}
	return out
}

func TestPayoutRun(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := paySetup(t, st)
		// The default minimum is 50.00 USD.
		_, c1 := f.approved(f.alice, 3000)
		_, c2 := f.approved(f.alice, 4000)
		_, c3 := f.approved(f.alice, 2000)
		f.approved(f.bob, 1000) // below the minimum: carried forward
		if _, err := st.CreateAdjustment(f.ctx, f.ws.ID, f.alice, heldsway.AdjustmentInput{Amount: -500, Currency: "USD", Reason: "fee"}); err != nil {
			t.Fatal(err)
		}
		// A suspended affiliate's balance is on hold.
		carl := storetest.SeedAffiliate(t, st.DB(), f.ws.ID, f.prog, "Carl Held")
		f.approved(carl, 9000)
		if _, err := st.DB().Exec(`UPDATE affiliates SET status = 'suspended' WHERE id = $1`, carl); err != nil {
			t.Fatal(err)
		}
		strangerBefore := f.rowsOf("payouts", f.other.ID)

		run, err := f.run("monthly:2026-11")
		if err != nil {
			t.Fatal(err)
		}
		if run.Status != heldsway.PayoutRunCompleted || run.PayoutsCreated != 1 || run.CarriedForward != 1 || run.CompletedAt == nil ||
			len(run.Totals) != 1 || run.Totals[0] != (heldsway.PayoutRunTotal{Currency: "USD", Payouts: 1, Amount: 8500}) {
			t.Fatalf("run %+v", run)
		}
		want := fmt.Sprintf("%d USD 8500 pending", f.alice)
		if got := f.runPayouts(run.ID); len(got) != 1 || got[0] != want {
			t.Fatalf("payouts %q, want %q", got, want)
		}
		// The payout settles the commissions it covers in full, oldest first:
		// 3000 + 4000 ≤ 8500, 9000 > 8500.
		var pid int64
		if err := st.DB().QueryRow(`SELECT id FROM payouts WHERE run_id = $1`, run.ID).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			id  int64
			in  bool
			msg string
		}{{c1, true, "first"}, {c2, true, "second"}, {c3, false, "third"}} {
			_, p := f.commissionState(c.id)
			if (p != nil && *p == pid) != c.in {
				t.Fatalf("%s commission payout_id %v, payout %d", c.msg, p, pid)
			}
		}
		if b := f.balance(f.alice, "USD"); b.Available != 0 || b.InFlight != 8500 {
			t.Fatalf("alice after the run %+v", b)
		}
		if b := f.balance(f.bob, "USD"); b.Available != 1000 || b.InFlight != 0 {
			t.Fatalf("bob after the run %+v", b)
		}
		if got := f.events("payout", pid); len(got) != 1 || got[0] != "payout.scheduled" {
			t.Fatalf("payout events %q", got)
		}
		if got := f.events("payout_run", run.ID); len(got) != 1 || got[0] != "payout_run.completed" {
			t.Fatalf("run events %q", got)
		}
		if n := f.rowsOf("payouts", f.other.ID); n != strangerBefore {
			t.Fatalf("the other workspace got %d payouts", n-strangerBefore)
		}

		// The same period never runs twice.
		_, err = f.run("monthly:2026-11")
		var he *heldsway.Error
		if !errors.As(err, &he) || he.Code != heldsway.ECONFLICT || he.Details["run_id"] != run.ID {
			t.Fatalf("second run of the period: %v", err)
		}
		if n := f.rows("payouts"); n != 1 {
			t.Fatalf("%d payouts after a refused run", n)
		}
		// Another period pays what became available since, nets off a
		// reversal after payout, and nothing twice.
		if _, err := st.CreateAdjustment(f.ctx, f.ws.ID, f.bob, heldsway.AdjustmentInput{Amount: 4500, Currency: "USD", Reason: "bonus"}); err != nil {
			t.Fatal(err)
		}
		run2, err := f.run("")
		if err != nil {
			t.Fatal(err)
		}
		if got := f.runPayouts(run2.ID); len(got) != 1 || got[0] != fmt.Sprintf("%d USD 5500 pending", f.bob) {
			t.Fatalf("second period payouts %q", got)
		}
		if run2.PeriodKey[:7] != "manual:" {
			t.Fatalf("manual period key %q", run2.PeriodKey)
		}
		f.checkInvariant(f.alice, f.bob, carl)
	})
}

func TestPayoutRunMinimumAndCurrencies(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := paySetup(t, st)
		min := "10.00"
		if _, err := st.UpdatePayoutSettings(f.ctx, f.ws.ID, heldsway.PayoutSettingsPatch{MinimumAmount: &min}); err != nil {
			t.Fatal(err)
		}
		f.approved(f.alice, 1000) // exactly the minimum
		f.approved(f.bob, 999)
		// A balance in another currency is paid when positive.
		if _, err := st.CreateAdjustment(f.ctx, f.ws.ID, f.bob, heldsway.AdjustmentInput{Amount: 1, Currency: "EUR", Reason: "x"}); err != nil {
			t.Fatal(err)
		}
		// A negative balance is not a payout.
		if _, err := st.CreateAdjustment(f.ctx, f.ws.ID, f.alice, heldsway.AdjustmentInput{Amount: -5, Currency: "GBP", Reason: "x"}); err != nil {
			t.Fatal(err)
		}
		// currency restricts a run to one currency.
		run, err := st.RunPayouts(f.ctx, f.ws.ID, heldsway.PayoutRunInput{Currency: "eur"})
		if err != nil {
			t.Fatal(err)
		}
		if got := f.runPayouts(run.ID); len(got) != 1 || got[0] != fmt.Sprintf("%d EUR 1 pending", f.bob) {
			t.Fatalf("EUR run %q", got)
		}
		run, err = f.run("weekly:2026-W48")
		if err != nil {
			t.Fatal(err)
		}
		if got := f.runPayouts(run.ID); len(got) != 1 || got[0] != fmt.Sprintf("%d USD 1000 pending", f.alice) || run.CarriedForward != 1 {
			t.Fatalf("USD run %q carried %d", got, run.CarriedForward)
		}
		for _, bad := range []heldsway.PayoutRunInput{{PeriodKey: " x"}, {Currency: "XYZ"}} {
			var he *heldsway.Error
			if _, err := st.RunPayouts(f.ctx, f.ws.ID, bad); !errors.As(err, &he) || he.Code != heldsway.EVALIDATION {
				t.Fatalf("%+v: %v", bad, err)
			}
		}
	})
}

// Runs starting at the same moment, of the same period or not, in chunks
// that interleave, pay every balance exactly once.
func TestPayoutRunConcurrent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := paySetup(t, st)
		store.SetRunChunkForTest(st, 3)
		affs := []int64{f.alice, f.bob}
		for i := range 10 {
			affs = append(affs, storetest.SeedAffiliate(t, st.DB(), f.ws.ID, f.prog, fmt.Sprintf("Aff %d", i)))
		}
		var want int64
		for i, a := range affs {
			f.approved(a, int64(5000+i*100))
			want += int64(5000 + i*100)
		}
		keys := []string{"monthly:2026-10", "monthly:2026-10", "", "", "weekly:2026-W40"}
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			ok, conf int
		)
		for _, k := range keys {
			wg.Go(func() {
				_, err := st.RunPayouts(f.ctx, f.ws.ID, heldsway.PayoutRunInput{PeriodKey: k})
				mu.Lock()
				defer mu.Unlock()
				var he *heldsway.Error
				switch {
				case err == nil:
					ok++
				case errors.As(err, &he) && he.Code == heldsway.ECONFLICT:
					conf++
				default:
					t.Errorf("run %q: %v", k, err)
				}
			})
		}
		wg.Wait()
		if conf != 1 || ok != 4 {
			t.Fatalf("%d runs completed, %d refused; want 4 and 1", ok, conf)
		}
		var n, sum int64
		if err := st.DB().QueryRow(`SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM payouts WHERE workspace_id = $1`, f.ws.ID).Scan(&n, &sum); err != nil {
			t.Fatal(err)
		}
		if n != int64(len(affs)) || sum != want {
			t.Fatalf("%d payouts of %d in all; want %d of %d", n, sum, len(affs), want)
		}
		var twice int
		if err := st.DB().QueryRow(`SELECT COUNT(*) FROM (SELECT commission_id FROM payout_items GROUP BY commission_id HAVING COUNT(*) > 1) x`).
			Scan(&twice); err != nil || twice != 0 {
			t.Fatalf("%d commissions in two payouts (%v)", twice, err)
		}
		f.checkInvariant(affs...)
	})
}

// A run whose process died mid-way is resumed by the next attempt once its
// lease has expired, paying only the affiliates it had not paid.
func TestPayoutRunResume(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := paySetup(t, st)
		f.approved(f.alice, 6000)
		f.approved(f.bob, 7000)
		now := t0.UnixMicro()
		// A crashed run: it paid alice (payout and ledger entry in one
		// transaction) and its lease is still live, then expires.
		var runID, pid int64
		if err := st.DB().QueryRow(`INSERT INTO payout_runs (workspace_id, period_key, status, started_at, lease_until)
			VALUES ($1, 'monthly:2026-09', 'running', $2, $3) RETURNING id`, f.ws.ID, now, now+60e6).Scan(&runID); err != nil {
			t.Fatal(err)
		}
		if err := st.DB().QueryRow(`INSERT INTO payouts (workspace_id, affiliate_id, currency, amount, status, run_id, created_at, updated_at)
			VALUES ($1, $2, 'USD', 6000, 'pending', $3, $4, $4) RETURNING id`, f.ws.ID, f.alice, runID, now).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		if _, err := st.DB().Exec(`INSERT INTO ledger_entries (workspace_id, affiliate_id, currency, kind, amount, payout_id, created_at)
			VALUES ($1, $2, 'USD', 'payout', -6000, $3, $4)`, f.ws.ID, f.alice, pid, now); err != nil {
			t.Fatal(err)
		}
		var he *heldsway.Error
		if _, err := f.run("monthly:2026-09"); !errors.As(err, &he) || he.Code != heldsway.ECONFLICT || he.Details["status"] != "running" {
			t.Fatalf("run with a live lease: %v", err)
		}
		if _, err := st.DB().Exec(`UPDATE payout_runs SET lease_until = $1 WHERE id = $2`, now-1, runID); err != nil {
			t.Fatal(err)
		}
		run, err := f.run("monthly:2026-09")
		if err != nil {
			t.Fatal(err)
		}
		if run.ID != runID || run.Status != heldsway.PayoutRunCompleted {
			t.Fatalf("resumed run %+v", run)
		}
		want := []string{fmt.Sprintf("%d USD 6000 pending", f.alice), fmt.Sprintf("%d USD 7000 pending", f.bob)}
		if got := f.runPayouts(runID); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("payouts %q, want %q", got, want)
		}
		f.checkInvariant(f.alice, f.bob)
	})
}

func (f *payFixture) rowsOf(table string, wsID int64) int {
	f.t.Helper()
	var n int
	if err := f.st.DB().QueryRow(`SELECT COUNT(*) FROM `+table+` WHERE workspace_id = $1`, wsID).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// checkInvariant checks, for each affiliate and currency: approved
// commissions − reversals + adjustments = paid + in flight + available, and
// that no commission is in two live payouts.
func (f *payFixture) checkInvariant(affs ...int64) {
	f.t.Helper()
	for _, a := range affs {
		// Earned from the commissions themselves (a commission reversed while
		// pending was never credited, and its net is what approval credited),
		// adjustments from the ledger.
		rows, err := f.st.DB().Query(`SELECT currency, CAST(SUM(amount - reversed_amount) AS BIGINT) FROM commissions
			WHERE workspace_id = $1 AND affiliate_id = $2 AND status IN ('approved', 'paid', 'reversed') GROUP BY currency
			UNION ALL
			SELECT currency, CAST(SUM(amount) AS BIGINT) FROM ledger_entries
			WHERE workspace_id = $1 AND affiliate_id = $2 AND kind = 'adjustment' GROUP BY currency`, f.ws.ID, a)
		if err != nil {
			f.t.Fatal(err)
		}
		earned := map[string]int64{}
		for rows.Next() {
			var (
				cur string
				v   int64
			)
			if err := rows.Scan(&cur, &v); err != nil {
				f.t.Fatal(err)
			}
			earned[cur] += v
		}
		rows.Close()
		for cur, e := range earned {
			b := f.balance(a, cur)
			if e != b.Paid+b.InFlight+b.Available {
				f.t.Fatalf("affiliate %d %s: earned %d ≠ paid %d + in flight %d + available %d", a, cur, e, b.Paid, b.InFlight, b.Available)
			}
		}
	}
	var live int
	if err := f.st.DB().QueryRow(`SELECT COUNT(*) FROM (SELECT pi.commission_id FROM payout_items pi
		JOIN payouts p ON p.id = pi.payout_id WHERE p.status <> 'failed' GROUP BY pi.commission_id HAVING COUNT(*) > 1) x`).Scan(&live); err != nil || live != 0 {
		f.t.Fatalf("%d commissions in two live payouts (%v)", live, err)
	}
}
