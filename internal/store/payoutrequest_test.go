package store_test

import (
	"sync"
	"testing"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// Payout requests on every engine: concurrent requests never count one
// balance twice, and of an approval and a rejection racing exactly one wins.

func allowEarlyRequests(t *testing.T, f *payFixture) {
	t.Helper()
	on := true
	if _, err := f.st.UpdatePayoutSettings(f.ctx, f.ws.ID, heldsway.PayoutSettingsPatch{AllowEarlyRequests: &on}); err != nil {
		t.Fatal(err)
	}
}

func TestPayoutRequestsConcurrent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := paySetup(t, st)
		allowEarlyRequests(t, f)
		f.approved(f.alice, 1000)

		t.Run("requests never share a balance", func(t *testing.T) {
			const n = 8
			var (
				wg   sync.WaitGroup
				errs = make([]error, n)
			)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = st.CreatePayoutRequest(f.ctx, f.ws.ID, f.alice,
						heldsway.PayoutRequestInput{Amount: 600, Currency: "USD"})
				}()
			}
			wg.Wait()
			won := 0
			for _, err := range errs {
				switch heldsway.ErrorCode(err) {
				case "":
					won++
				case heldsway.ECONFLICT:
				default:
					t.Fatalf("unexpected error: %v", err)
				}
			}
			if won != 1 {
				t.Fatalf("%d of %d requests of 6.00 out of 10.00 accepted, want 1", won, n)
			}
			// 4.00 is still requestable, 4.01 is not.
			if _, err := st.CreatePayoutRequest(f.ctx, f.ws.ID, f.alice, heldsway.PayoutRequestInput{Amount: 401, Currency: "USD"}); heldsway.ErrorCode(err) != heldsway.ECONFLICT {
				t.Fatalf("4.01: %v", err)
			}
			if _, err := st.CreatePayoutRequest(f.ctx, f.ws.ID, f.alice, heldsway.PayoutRequestInput{Amount: 400, Currency: "USD"}); err != nil {
				t.Fatalf("4.00: %v", err)
			}
		})

		t.Run("approve and reject race", func(t *testing.T) {
			res, err := st.ListPayoutRequests(f.ctx, f.ws.ID, heldsway.PayoutRequestFilter{Status: heldsway.PayoutRequestPending},
				heldsway.ListOptions{PerPage: 10})
			if err != nil || len(res.Items) != 2 {
				t.Fatalf("pending requests: %v %v", res.Items, err)
			}
			for _, r := range res.Items {
				var (
					wg             sync.WaitGroup
					appErr, rejErr error
				)
				wg.Add(2)
				go func() { defer wg.Done(); _, appErr = st.CreatePayoutForRequest(f.ctx, f.ws.ID, r.ID) }()
				go func() { defer wg.Done(); _, rejErr = st.RejectPayoutRequest(f.ctx, f.ws.ID, r.ID, "no") }()
				wg.Wait()
				if (appErr == nil) == (rejErr == nil) {
					t.Fatalf("request %d: approve %v, reject %v: want exactly one to win", r.ID, appErr, rejErr)
				}
				loser := appErr
				if loser == nil {
					loser = rejErr
				}
				if heldsway.ErrorCode(loser) != heldsway.ETRANSITION {
					t.Fatalf("loser: %v", loser)
				}
				got, err := st.FindPayoutRequest(f.ctx, f.ws.ID, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				if (appErr == nil && (got.Status != "approved" || got.PayoutID == nil)) || (rejErr == nil && (got.Status != "rejected" || got.PayoutID != nil)) {
					t.Fatalf("request after the race: %+v", got)
				}
			}
			// Whatever won, the balance explains itself: available + in flight = 10.00.
			if b := f.balance(f.alice, "USD"); b.Available+b.InFlight != 1000 || b.Available < 0 {
				t.Fatalf("balance %+v", b)
			}
		})

		t.Run("other workspace", func(t *testing.T) {
			if _, err := st.CreatePayoutRequest(f.ctx, f.other.ID, f.alice, heldsway.PayoutRequestInput{Amount: 1, Currency: "USD"}); heldsway.ErrorCode(err) != heldsway.ENOTFOUND {
				t.Fatalf("request for another workspace's affiliate: %v", err)
			}
			if _, err := st.FindPayoutRequest(f.ctx, f.other.ID, 1); heldsway.ErrorCode(err) != heldsway.ENOTFOUND {
				t.Fatalf("find: %v", err)
			}
		})
	})
}
