package store_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// Ledger entries of reviews and refunds, adjustments, balances, payout state
// changes and request payouts, on every engine.

type payFixture struct {
	*ordFixture
	n int
}

func paySetup(t *testing.T, st *store.Store) *payFixture {
	t.Helper()
	return &payFixture{ordFixture: ordSetup(t, st)}
}

// pending inserts an order of total 10 × amount with one pending commission
// of amount for aff and returns the order and commission ids.
func (f *payFixture) pending(aff, amount int64) (int64, int64) {
	f.t.Helper()
	f.n++
	oid, cids := f.order(storetest.OrderSeed{OrderID: fmt.Sprintf("P-%d", f.n), AffiliateID: aff, Total: 10 * amount,
		Subtotal: 10 * amount, ConvertedAt: t0.Add(time.Duration(f.n) * time.Second),
		Lines: []storetest.CommissionSeed{{AffiliateID: aff, Amount: amount, BaseAmount: 10 * amount}}})
	return oid, cids[0]
}

// approved is pending followed by ApproveOrder.
func (f *payFixture) approved(aff, amount int64) (int64, int64) {
	f.t.Helper()
	oid, cid := f.pending(aff, amount)
	if _, err := f.st.ApproveOrder(f.ctx, f.ws.ID, oid); err != nil {
		f.t.Fatalf("approve: %v", err)
	}
	return oid, cid
}

func (f *payFixture) balance(aff int64, cur string) heldsway.Balance {
	f.t.Helper()
	bs, err := f.st.Balances(f.ctx, f.ws.ID, aff)
	if err != nil {
		f.t.Fatalf("balances: %v", err)
	}
	for _, b := range bs {
		if b.Currency == cur {
			return b
		}
	}
	return heldsway.Balance{Currency: cur}
}

// ledger returns the kinds and amounts of an affiliate's entries, oldest first.
func (f *payFixture) ledger(aff int64) []string {
	f.t.Helper()
	rows, err := f.st.DB().Query(`SELECT kind, amount FROM ledger_entries WHERE workspace_id = $1 AND affiliate_id = $2 ORDER BY id`,
		f.ws.ID, aff)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var (
			k string
			a int64
		)
		if err := rows.Scan(&k, &a); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %d", k, a))
	}
	return out
}

// request inserts a pending payout request by raw SQL (the request API is
// another file's) and returns its id.
func (f *payFixture) request(aff int64, cur string, amount int64) int64 {
	f.t.Helper()
	var id int64
	if err := f.st.DB().QueryRow(`INSERT INTO payout_requests (workspace_id, affiliate_id, currency, amount, status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, 'pending', $5, $5) RETURNING id`, f.ws.ID, aff, cur, amount, t0.UnixMicro()).Scan(&id); err != nil {
		f.t.Fatal(err)
	}
	return id
}

func (f *payFixture) commissionState(cid int64) (status string, payout *int64) {
	f.t.Helper()
	var p *int64
	if err := f.st.DB().QueryRow(`SELECT c.status, pi.payout_id FROM commissions c LEFT JOIN payout_items pi ON pi.commission_id = c.id WHERE c.id = $1`, cid).Scan(&status, &p); err != nil {
		f.t.Fatal(err)
	}
	return status, p
}

func wantLedger(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Fatalf("ledger\n got %q\nwant %q", got, want)
	}
}

func errorsAs(err error, target **heldsway.Error) bool { return errors.As(err, target) }

func TestLedgerOfReviewsAndRefunds(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := paySetup(t, st)
		// Approval credits the net amount.
		oid, _ := f.approved(f.alice, 1000)
		wantLedger(t, f.ledger(f.alice), "commission_approved 1000")
		// A partial refund of an approved order debits the reversal: 25% of 1000.
		amt := int64(2500)
		if _, err := st.RefundOrder(f.ctx, f.ws.ID, oid, &amt, ""); err != nil {
			t.Fatal(err)
		}
		wantLedger(t, f.ledger(f.alice), "commission_approved 1000", "commission_reversed -250")
		// The rest of it reverses the rest.
		if _, err := st.RefundOrder(f.ctx, f.ws.ID, oid, nil, ""); err != nil {
			t.Fatal(err)
		}
		wantLedger(t, f.ledger(f.alice), "commission_approved 1000", "commission_reversed -250", "commission_reversed -750")
		if b := f.balance(f.alice, "USD"); b.Available != 0 || b.Pending != 0 {
			t.Fatalf("balance %+v", b)
		}

		// A pending commission's reversal touches no ledger; approval then
		// credits what is left of it.
		oid2, _ := f.pending(f.bob, 800)
		amt = 4000 // half of 8000
		if _, err := st.RefundOrder(f.ctx, f.ws.ID, oid2, &amt, ""); err != nil {
			t.Fatal(err)
		}
		wantLedger(t, f.ledger(f.bob))
		if b := f.balance(f.bob, "USD"); b.Pending != 400 || b.Available != 0 {
			t.Fatalf("pending after a partial refund: %+v", b)
		}
		if _, err := st.ApproveOrder(f.ctx, f.ws.ID, oid2); err != nil {
			t.Fatal(err)
		}
		wantLedger(t, f.ledger(f.bob), "commission_approved 400")

		// Rejection, bulk approval and the auto-approval sweep.
		oid3, _ := f.pending(f.bob, 300)
		if _, err := st.RejectOrder(f.ctx, f.ws.ID, oid3, "no"); err != nil {
			t.Fatal(err)
		}
		oid4, _ := f.pending(f.bob, 200)
		if _, err := st.BulkReview(f.ctx, f.ws.ID, []int64{oid4, oid3}, true, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := st.DB().Exec(`UPDATE programs SET auto_approve_enabled = $1 WHERE id = $2`, true, f.prog); err != nil {
			t.Fatal(err)
		}
		due := t0.Add(-time.Hour)
		n := f.n + 1
		f.n++
		oid5, _ := f.order(storetest.OrderSeed{OrderID: fmt.Sprintf("P-%d", n), AffiliateID: f.bob, Total: 1000, Subtotal: 1000,
			AutoApproveAt: &due, Lines: []storetest.CommissionSeed{{AffiliateID: f.bob, Amount: 100, BaseAmount: 1000}}})
		if got, err := st.AutoApproveDue(f.ctx, t0, 10); err != nil || got != 1 {
			t.Fatalf("auto-approve: %d, %v", got, err)
		}
		wantLedger(t, f.ledger(f.bob), "commission_approved 400", "commission_approved 200", "commission_approved 100")
		if o, _ := st.FindOrder(f.ctx, f.ws.ID, oid5); o.Status != heldsway.OrderApproved {
			t.Fatalf("auto-approved order is %s", o.Status)
		}
		if b := f.balance(f.bob, "USD"); b.Available != 700 || b.Pending != 0 {
			t.Fatalf("bob %+v", b)
		}
	})
}

func TestAdjustments(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := paySetup(t, st)
		counts := func() [3]int { return [3]int{f.rows("ledger_entries"), f.rows("audit_log"), f.rows("events")} }
		before := counts()
		for _, tc := range []struct {
			name  string
			in    heldsway.AdjustmentInput
			field string
		}{
			{"zero", heldsway.AdjustmentInput{Amount: 0, Currency: "USD", Reason: "x"}, "amount"},
			{"absurd", heldsway.AdjustmentInput{Amount: 2e15, Currency: "USD", Reason: "x"}, "amount"},
			{"no currency", heldsway.AdjustmentInput{Amount: 5, Reason: "x"}, "currency"},
			{"bad currency", heldsway.AdjustmentInput{Amount: 5, Currency: "XYZ", Reason: "x"}, "currency"},
			{"no reason", heldsway.AdjustmentInput{Amount: 5, Currency: "USD", Reason: "  "}, "reason"},
			{"long reason", heldsway.AdjustmentInput{Amount: 5, Currency: "USD", Reason: strings.Repeat("é", 501)}, "reason"},
		} {
			_, err := st.CreateAdjustment(f.ctx, f.ws.ID, f.alice, tc.in)
			var he *heldsway.Error
			if heldsway.ErrorCode(err) != heldsway.EVALIDATION || !errorsAs(err, &he) || he.Details[tc.field] == nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		}
		_, err := st.CreateAdjustment(f.ctx, f.ws.ID, f.stranger, heldsway.AdjustmentInput{Amount: 5, Currency: "USD", Reason: "x"})
		wantCode(t, err, heldsway.ENOTFOUND)
		if counts() != before {
			t.Fatalf("rejected adjustments wrote rows: %v → %v", before, counts())
		}

		e, err := st.CreateAdjustment(f.ctx, f.ws.ID, f.alice, heldsway.AdjustmentInput{Amount: -1250, Currency: "usd", Reason: " Chargeback fee "})
		if err != nil {
			t.Fatal(err)
		}
		if e.ID == 0 || e.Kind != heldsway.LedgerAdjustment || e.Amount != -1250 || e.Currency != "USD" || e.Reason != "Chargeback fee" {
			t.Fatalf("entry %+v", e)
		}
		if _, err := st.CreateAdjustment(f.ctx, f.ws.ID, f.alice, heldsway.AdjustmentInput{Amount: 500, Currency: "JPY", Reason: "bonus"}); err != nil {
			t.Fatal(err)
		}
		if got := f.events("ledger_entry", e.ID); len(got) != 1 || got[0] != "balance.adjusted" {
			t.Fatalf("events %v", got)
		}
		after := counts()
		if after[0] != before[0]+2 || after[1] != before[1]+2 || after[2] != before[2]+2 {
			t.Fatalf("rows %v → %v", before, after)
		}
		bs, err := st.Balances(f.ctx, f.ws.ID, f.alice)
		if err != nil {
			t.Fatal(err)
		}
		if len(bs) != 2 || bs[0].Currency != "JPY" || bs[0].Available != 500 || bs[1].Currency != "USD" || bs[1].Available != -1250 {
			t.Fatalf("balances %+v", bs)
		}
		if _, err := st.Balances(f.ctx, f.ws.ID, f.stranger); heldsway.ErrorCode(err) != heldsway.ENOTFOUND {
			t.Fatalf("balances of another workspace's affiliate: %v", err)
		}

		// The ledger list: newest first, filters, cursor pages.
		f.approved(f.alice, 300)
		page, err := st.ListLedger(f.ctx, f.ws.ID, f.alice, heldsway.LedgerFilter{}, heldsway.ListOptions{PerPage: 2, Desc: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 2 || page.Items[0].Kind != heldsway.LedgerCommissionApproved || page.Next == nil {
			t.Fatalf("page 1 %+v", page)
		}
		page2, err := st.ListLedger(f.ctx, f.ws.ID, f.alice, heldsway.LedgerFilter{}, heldsway.ListOptions{PerPage: 2, Desc: true, After: page.Next})
		if err != nil || len(page2.Items) != 1 || page2.Next != nil || page2.Items[0].ID != e.ID {
			t.Fatalf("page 2 %+v %v", page2, err)
		}
		only, err := st.ListLedger(f.ctx, f.ws.ID, f.alice, heldsway.LedgerFilter{Currency: "USD", Kind: heldsway.LedgerAdjustment},
			heldsway.ListOptions{PerPage: 10})
		if err != nil || len(only.Items) != 1 || only.Items[0].ID != e.ID {
			t.Fatalf("filtered %+v %v", only, err)
		}
		if _, err := st.ListLedger(f.ctx, f.ws.ID, f.alice, heldsway.LedgerFilter{Kind: "bogus"}, heldsway.ListOptions{PerPage: 10}); heldsway.ErrorCode(err) != heldsway.EVALIDATION {
			t.Fatalf("bad kind: %v", err)
		}
		if _, err := st.ListLedger(f.ctx, f.ws.ID, f.stranger, heldsway.LedgerFilter{}, heldsway.ListOptions{PerPage: 10}); heldsway.ErrorCode(err) != heldsway.ENOTFOUND {
			t.Fatalf("other workspace: %v", err)
		}
	})
}

func TestPayoutRequestPayout(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := paySetup(t, st)
		_, c1 := f.approved(f.alice, 300)
		_, c2 := f.approved(f.alice, 500)
		_, c3 := f.approved(f.alice, 200)
		// available 1000; a request of 900 covers c1 and c2 (800), not c3.
		rid := f.request(f.alice, "USD", 900)
		p, err := st.CreatePayoutForRequest(f.ctx, f.ws.ID, rid)
		if err != nil {
			t.Fatal(err)
		}
		if p.Amount != 900 || p.Status != heldsway.PayoutPending || p.RequestID == nil || *p.RequestID != rid || p.RunID != nil {
			t.Fatalf("payout %+v", p)
		}
		for _, c := range []int64{c1, c2} {
			if _, pid := f.commissionState(c); pid == nil || *pid != p.ID {
				t.Fatalf("commission %d not in the payout", c)
			}
		}
		if _, pid := f.commissionState(c3); pid != nil {
			t.Fatalf("commission c3 is in payout %d", *pid)
		}
		if b := f.balance(f.alice, "USD"); b.Available != 100 || b.InFlight != 900 || b.Paid != 0 {
			t.Fatalf("balance %+v", b)
		}
		var status string
		var payoutID *int64
		if err := st.DB().QueryRow(`SELECT status, payout_id FROM payout_requests WHERE id = $1`, rid).Scan(&status, &payoutID); err != nil {
			t.Fatal(err)
		}
		if status != "approved" || payoutID == nil || *payoutID != p.ID {
			t.Fatalf("request %s %v", status, payoutID)
		}
		if got := f.events("payout", p.ID); len(got) != 1 || got[0] != "payout.scheduled" {
			t.Fatalf("payout events %v", got)
		}
		// Approving again is a transition error; an unknown id or another
		// workspace's request is not found.
		_, err = st.CreatePayoutForRequest(f.ctx, f.ws.ID, rid)
		wantCode(t, err, heldsway.ETRANSITION)
		_, err = st.CreatePayoutForRequest(f.ctx, f.other.ID, rid)
		wantCode(t, err, heldsway.ENOTFOUND)

		// More than available is a conflict, and writes nothing.
		big := f.request(f.alice, "USD", 101)
		ledgerBefore := f.rows("ledger_entries")
		_, err = st.CreatePayoutForRequest(f.ctx, f.ws.ID, big)
		wantCode(t, err, heldsway.ECONFLICT)
		if f.rows("ledger_entries") != ledgerBefore || f.rows("payouts") != 1 {
			t.Fatal("a refused request wrote rows")
		}
		// A suspended affiliate's balance is on hold.
		f.approved(f.bob, 700)
		if _, err := st.DB().Exec(`UPDATE affiliates SET status = 'suspended' WHERE id = $1`, f.bob); err != nil {
			t.Fatal(err)
		}
		_, err = st.CreatePayoutForRequest(f.ctx, f.ws.ID, f.request(f.bob, "USD", 700))
		wantCode(t, err, heldsway.ECONFLICT)
	})
}

func TestPayoutTransitions(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := paySetup(t, st)
		pay := func(aff, amount int64) (*heldsway.Payout, int64) {
			t.Helper()
			_, cid := f.approved(aff, amount)
			p, err := st.CreatePayoutForRequest(f.ctx, f.ws.ID, f.request(aff, "USD", amount))
			if err != nil {
				t.Fatal(err)
			}
			return p, cid
		}

		// pending → processing → completed, with the commissions paid.
		p, cid := pay(f.alice, 1000)
		got, err := st.MarkPayoutProcessing(f.ctx, f.ws.ID, p.ID)
		if err != nil || got.Status != heldsway.PayoutProcessing || got.ProcessingAt == nil {
			t.Fatalf("processing: %+v %v", got, err)
		}
		_, err = st.MarkPayoutProcessing(f.ctx, f.ws.ID, p.ID)
		wantCode(t, err, heldsway.ETRANSITION)
		_, err = st.CompletePayout(f.ctx, f.other.ID, p.ID, "")
		wantCode(t, err, heldsway.ENOTFOUND)
		_, err = st.CompletePayout(f.ctx, f.ws.ID, p.ID, strings.Repeat("x", 256))
		wantCode(t, err, heldsway.EVALIDATION)
		got, err = st.CompletePayout(f.ctx, f.ws.ID, p.ID, "PP-123")
		if err != nil || got.Status != heldsway.PayoutCompleted || got.CompletedAt == nil || got.ExternalReference != "PP-123" {
			t.Fatalf("complete: %+v %v", got, err)
		}
		if status, pid := f.commissionState(cid); status != heldsway.CommissionPaid || pid == nil || *pid != p.ID {
			t.Fatalf("commission %s %v", status, pid)
		}
		if b := f.balance(f.alice, "USD"); b.Available != 0 || b.InFlight != 0 || b.Paid != 1000 {
			t.Fatalf("balance %+v", b)
		}
		for _, try := range []func() error{
			func() error { _, err := st.FailPayout(f.ctx, f.ws.ID, p.ID, ""); return err },
			func() error { _, err := st.CompletePayout(f.ctx, f.ws.ID, p.ID, ""); return err },
			func() error { _, err := st.MarkPayoutProcessing(f.ctx, f.ws.ID, p.ID); return err },
		} {
			err := try()
			var he *heldsway.Error
			if heldsway.ErrorCode(err) != heldsway.ETRANSITION || !errorsAs(err, &he) || he.Details["from"] != "completed" {
				t.Fatalf("from completed: %v", err)
			}
		}
		if got := f.events("payout", p.ID); strings.Join(got, " ") != "payout.scheduled payout.sent" {
			t.Fatalf("events %v", got)
		}

		// A paid commission refunded after payout: a negative balance that
		// the next payout nets off.
		var oid int64
		if err := st.DB().QueryRow(`SELECT order_id FROM commissions WHERE id = $1`, cid).Scan(&oid); err != nil {
			t.Fatal(err)
		}
		if _, err := st.RefundOrder(f.ctx, f.ws.ID, oid, nil, "chargeback"); err != nil {
			t.Fatal(err)
		}
		if b := f.balance(f.alice, "USD"); b.Available != -1000 || b.Paid != 1000 {
			t.Fatalf("after refund %+v", b)
		}

		// pending → failed: the amount returns, the commissions are released.
		p2, cid2 := pay(f.bob, 600)
		_, err = st.FailPayout(f.ctx, f.ws.ID, p2.ID, strings.Repeat("x", 1001))
		wantCode(t, err, heldsway.EVALIDATION)
		got, err = st.FailPayout(f.ctx, f.ws.ID, p2.ID, "Bank account closed")
		if err != nil || got.Status != heldsway.PayoutFailed || got.FailedAt == nil || got.FailureReason != "Bank account closed" {
			t.Fatalf("fail: %+v %v", got, err)
		}
		if status, pid := f.commissionState(cid2); status != heldsway.CommissionApproved || pid != nil {
			t.Fatalf("released commission %s %v", status, pid)
		}
		wantLedger(t, f.ledger(f.bob), "commission_approved 600", "payout -600", "payout_returned 600")
		if b := f.balance(f.bob, "USD"); b.Available != 600 || b.InFlight != 0 || b.Paid != 0 {
			t.Fatalf("balance after fail %+v", b)
		}
		if got := f.events("payout", p2.ID); strings.Join(got, " ") != "payout.scheduled payout.failed" {
			t.Fatalf("events %v", got)
		}
		// The released commission goes into the next payout.
		p3, err := st.CreatePayoutForRequest(f.ctx, f.ws.ID, f.request(f.bob, "USD", 600))
		if err != nil {
			t.Fatal(err)
		}
		if _, pid := f.commissionState(cid2); pid == nil || *pid != p3.ID {
			t.Fatal("released commission not in the next payout")
		}
		full, err := store.ReadPayoutForTest(st, f.ws.ID, p2.ID)
		if err != nil || len(full.Commissions) != 1 || full.Commissions[0].ID != cid2 {
			t.Fatalf("failed payout keeps its history: %+v %v", full, err)
		}

		// Concurrent complete and fail: exactly one wins, the other is told
		// the status the winner left.
		cara := storetest.SeedAffiliate(t, st.DB(), f.ws.ID, f.prog, "Cara Concurrent")
		for round := range 5 {
			p, _ := pay(cara, 1500+int64(round))
			var wg sync.WaitGroup
			errs := make([]error, 2)
			wg.Add(2)
			go func() { defer wg.Done(); _, errs[0] = st.CompletePayout(f.ctx, f.ws.ID, p.ID, "") }()
			go func() { defer wg.Done(); _, errs[1] = st.FailPayout(f.ctx, f.ws.ID, p.ID, "") }()
			wg.Wait()
			if (errs[0] == nil) == (errs[1] == nil) {
				t.Fatalf("round %d: complete %v, fail %v", round, errs[0], errs[1])
			}
			for _, err := range errs {
				if err != nil && heldsway.ErrorCode(err) != heldsway.ETRANSITION {
					t.Fatalf("loser: %v", err)
				}
			}
		}
	})
}
