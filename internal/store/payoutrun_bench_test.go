package store_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// BenchmarkPayoutRun measures one payout run over a workspace of
// HELDSWAY_BENCH_AFFILIATES affiliates (default 1,000) with
// HELDSWAY_BENCH_COMMISSIONS approved commissions (default 100,000), each with
// its order and its ledger entry, seeded by SQL. The figure is 10,000
// affiliates and 1,000,000 commissions (docs/BENCHMARKS.md). Each iteration
// seeds a fresh workspace outside the timer and runs once; the peak heap the
// run adds is reported as MB-heap.
func BenchmarkPayoutRun(b *testing.B) {
	affs := envInt(b, "HELDSWAY_BENCH_AFFILIATES", 1000)
	comms := envInt(b, "HELDSWAY_BENCH_COMMISSIONS", 100000)
	for _, engine := range storetest.Engines() {
		b.Run(engine, func(b *testing.B) {
			b.StopTimer() // opening and migrating the store is not the run
			st := storetest.Open(b, engine)
			ctx := context.Background()
			var heap uint64
			for i := 0; i < b.N; i++ {
				ws := seedPayoutWorkspace(b, st, affs, comms)
				runtime.GC()
				stop := watchHeap(&heap)
				b.StartTimer()
				run, err := st.RunPayouts(ctx, ws, heldsway.PayoutRunInput{PeriodKey: "monthly:2026-11"})
				b.StopTimer()
				stop()
				if err != nil {
					b.Fatal(err)
				}
				if run.PayoutsCreated != affs {
					b.Fatalf("%d payouts for %d affiliates", run.PayoutsCreated, affs)
				}
				var unpaid int
				if err := st.DB().QueryRow(`SELECT COUNT(*) FROM commissions c WHERE workspace_id = $1
					AND NOT EXISTS (SELECT 1 FROM payout_items pi WHERE pi.commission_id = c.id)`, ws).
					Scan(&unpaid); err != nil || unpaid != 0 {
					b.Fatalf("%d commissions left out of the payouts (%v)", unpaid, err)
				}
			}
			b.ReportMetric(float64(heap)/(1<<20), "MB-heap")
		})
	}
}

func envInt(b *testing.B, name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q", name, v)
		}
		return n
	}
	return def
}

// watchHeap samples the live heap every 10 ms into *peak until stopped.
func watchHeap(peak *uint64) func() {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > *peak {
				*peak = m.HeapAlloc
			}
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return func() { close(done); <-finished }
}

// seedPayoutWorkspace creates a workspace with affs active affiliates and
// comms approved commissions spread evenly over them (each 1.00 to 99.99 USD,
// one order each), with the ledger entries approval writes, by set-based SQL.
func seedPayoutWorkspace(b *testing.B, st *store.Store, affs, comms int) int64 {
	b.Helper()
	ctx := context.Background()
	tag36 := strconv.FormatInt(time.Now().UnixNano(), 36)
	ws := &heldsway.Workspace{Name: "Payout bench " + tag36, Slug: "payout-bench-" + tag36, Plan: "standard", Active: true}
	if err := st.CreateWorkspace(ctx, ws); err != nil {
		b.Fatal(err)
	}
	db := st.DB()
	var prog int64
	if err := db.QueryRow(`SELECT id FROM programs WHERE workspace_id = $1 AND is_default = $2`, ws.ID, true).Scan(&prog); err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC).UnixMicro()
	seq := func(n int) string {
		return `WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ` + strconv.Itoa(n) + `)`
	}
	tag := strconv.FormatInt(ws.ID, 10)
	stmts := []string{
		seq(affs) + ` INSERT INTO affiliate_users (workspace_id, name, email, created_at, updated_at)
			SELECT $1, 'Affiliate ' || n, 'a' || n || '-` + tag + `@example.com', $2, $2 FROM seq`,
		`INSERT INTO affiliates (workspace_id, program_id, affiliate_user_id, referral_code, status, name, email, created_at, updated_at)
			SELECT u.workspace_id, $3, u.id, 'R' || u.id, 'active', u.name, u.email, $2, $2 FROM affiliate_users u WHERE u.workspace_id = $1`,
		seq(comms) + ` INSERT INTO orders (workspace_id, order_id, status, currency, total, subtotal, commission_amount, attribution,
			converted_at, approved_at, created_at, updated_at)
			SELECT $1, 'B-' || n, 'approved', 'USD', 100 * (100 + n % 9900), 100 * (100 + n % 9900), 100 + n % 9900, 'referral_code',
				CAST($2 AS BIGINT) + n, CAST($2 AS BIGINT) + n, CAST($2 AS BIGINT) + n, CAST($2 AS BIGINT) + n FROM seq`,
	}
	for _, q := range stmts {
		if _, err := db.Exec(q, argsFor(q, []any{ws.ID, now, prog})...); err != nil {
			b.Fatalf("seed: %v\n%s", err, q)
		}
	}
	var first int64
	if err := db.QueryRow(`SELECT MIN(id) FROM affiliates WHERE workspace_id = $1`, ws.ID).Scan(&first); err != nil {
		b.Fatal(err)
	}
	// Commission k goes to affiliate first + k mod affs; affiliate ids are
	// consecutive (one INSERT … SELECT).
	for _, q := range []string{
		`UPDATE orders SET affiliate_id = $2 + (id % $3), program_id = $4 WHERE workspace_id = $1`,
		`INSERT INTO commissions (workspace_id, order_id, affiliate_id, tier, currency, amount, rule, base_amount, explanation,
			status, created_at, approved_at, updated_at)
			SELECT workspace_id, id, affiliate_id, 1, 'USD', commission_amount, 'program_rate', subtotal, 'seeded', 'approved',
				created_at, created_at, created_at FROM orders WHERE workspace_id = $1`,
		`INSERT INTO ledger_entries (workspace_id, affiliate_id, currency, kind, amount, commission_id, created_at)
			SELECT workspace_id, affiliate_id, currency, 'commission_approved', amount, id, created_at FROM commissions
			WHERE workspace_id = $1`,
	} {
		if _, err := db.Exec(q, argsFor(q, []any{ws.ID, first, affs, prog})...); err != nil {
			b.Fatalf("seed: %v\n%s", err, q)
		}
	}
	if _, err := db.Exec(`ANALYZE`); err != nil {
		b.Fatal(err)
	}
	return ws.ID
}

// argsFor passes a statement only the parameters it uses ($1 … $n), which
// PostgreSQL insists on.
func argsFor(q string, args []any) []any {
	n := 0
	for i := len(args); i > 0; i-- {
		if containsParam(q, i) {
			n = i
			break
		}
	}
	return args[:n]
}

func containsParam(q string, i int) bool {
	p := "$" + strconv.Itoa(i)
	for k := 0; k+len(p) <= len(q); k++ {
		if q[k:k+len(p)] == p && (k+len(p) == len(q) || q[k+len(p)] < '0' || q[k+len(p)] > '9') {
			return true
		}
	}
	return false
}
