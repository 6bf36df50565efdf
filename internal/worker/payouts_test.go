package worker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
	"github.com/heldsway/heldsway/internal/worker"
)

// The scheduler on a real store, on every engine: each workspace's due period
// runs once in its own time zone, even with several nodes ticking at once;
// manual workspaces never run on their own.
func TestPayoutScheduler(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		workspace := func(name, freq, tz string) (int64, int64) {
			ws := &heldsway.Workspace{Name: name, Slug: fmt.Sprintf("ws-%d-%d", len(name), time.Now().UnixNano()), Plan: "standard", Active: true}
			if err := st.CreateWorkspace(ctx, ws); err != nil {
				t.Fatal(err)
			}
			// Created before every period below (the store's clock is the real one).
			if _, err := st.DB().Exec(`UPDATE workspaces SET created_at = $1 WHERE id = $2`,
				time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC).UnixMicro(), ws.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := st.UpdatePayoutSettings(ctx, ws.ID, heldsway.PayoutSettingsPatch{Frequency: &freq}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.UpdateSettings(ctx, ws.ID, heldsway.SettingsPatch{Timezone: &tz}); err != nil {
				t.Fatal(err)
			}
			aff := storetest.InsertAffiliate(t, st.DB(), ws.ID, "USD", heldsway.AffiliateActive)
			if _, err := st.CreateAdjustment(ctx, ws.ID, aff, heldsway.AdjustmentInput{Amount: 10000, Currency: "USD", Reason: "opening balance"}); err != nil {
				t.Fatal(err)
			}
			return ws.ID, aff
		}
		utc, _ := workspace("UTC monthly", heldsway.PayoutMonthly, "UTC")
		la, _ := workspace("LA monthly", heldsway.PayoutMonthly, "America/Los_Angeles")
		weekly, _ := workspace("Weekly", heldsway.PayoutWeekly, "UTC")
		manual, _ := workspace("Manual", heldsway.PayoutManual, "UTC")
		// A workspace created after November ended (UTC) has no November run.
		fresh, _ := workspace("Fresh monthly", heldsway.PayoutMonthly, "UTC")
		if _, err := st.DB().Exec(`UPDATE workspaces SET created_at = $1 WHERE id = $2`,
			time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC).UnixMicro(), fresh); err != nil {
			t.Fatal(err)
		}

		// 1 December 03:00 UTC is still 30 November in Los Angeles: its last
		// ended month is October. A Tuesday: last week is ISO week 48.
		now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
		nodes := make([]*worker.PayoutScheduler, 3)
		for i := range nodes {
			nodes[i] = &worker.PayoutScheduler{Runs: st, Now: func() time.Time { return now },
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		}
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			total int
		)
		for _, n := range nodes {
			wg.Go(func() {
				got := n.Tick(ctx)
				mu.Lock()
				total += got
				mu.Unlock()
			})
		}
		wg.Wait()
		if total != 3 {
			t.Fatalf("%d runs completed by 3 nodes, want 3 (one per scheduled workspace)", total)
		}
		runs := func(ws int64) []string {
			rows, err := st.DB().Query(`SELECT r.period_key, r.status, COUNT(p.id) FROM payout_runs r
				LEFT JOIN payouts p ON p.run_id = r.id WHERE r.workspace_id = $1 GROUP BY r.period_key, r.status ORDER BY r.period_key`, ws)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			out := []string{}
			for rows.Next() {
				var (
					k, s string
					n    int
				)
				if err := rows.Scan(&k, &s, &n); err != nil {
					t.Fatal(err)
				}
				out = append(out, fmt.Sprintf("%s %s %d", k, s, n))
			}
			return out
		}
		for _, c := range []struct {
			ws   int64
			want string
		}{
			{utc, "[monthly:2026-11 completed 1]"},
			{la, "[monthly:2026-10 completed 1]"},
			{weekly, "[weekly:2026-W48 completed 1]"},
			{manual, "[]"},
			{fresh, "[]"},
		} {
			if got := fmt.Sprint(runs(c.ws)); got != c.want {
				t.Errorf("workspace %d runs %s, want %s", c.ws, got, c.want)
			}
		}
		// Later ticks in the same period do nothing; the next period runs.
		if n := nodes[0].Tick(ctx); n != 0 {
			t.Fatalf("a second tick ran %d periods", n)
		}
		now = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC) // 1 December in Los Angeles too
		if n := nodes[1].Tick(ctx); n != 1 {
			t.Fatalf("the LA November run: %d runs", n)
		}
		if got := fmt.Sprint(runs(la)); got != "[monthly:2026-10 completed 1 monthly:2026-11 completed 0]" {
			t.Fatalf("LA runs %s", got)
		}
		// December is the fresh workspace's first period: it runs in January.
		now = time.Date(2027, 1, 1, 9, 0, 0, 0, time.UTC)
		nodes[2].Tick(ctx)
		if got := fmt.Sprint(runs(fresh)); got != "[monthly:2026-12 completed 1]" {
			t.Fatalf("fresh workspace runs %s", got)
		}
	})
}
