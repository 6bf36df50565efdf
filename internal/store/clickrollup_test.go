package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// Clicks reach the rollups after their batch on SQLite (a tailer) and in it
// on PostgreSQL; either way every committed click is counted exactly once
// and reads see it.

type clickRollupEnv struct {
	ws, prog, aff, link int64
	seq                 int
}

func newClickRollupEnv(t *testing.T, st *store.Store) *clickRollupEnv {
	s := &clickSeed{t: t, st: st, now: time.Now()}
	e := &clickRollupEnv{}
	e.ws, e.prog, e.aff = s.workspace("tail", "TAIL")
	e.link = s.link(e.ws, e.aff, "tail", "https://shop.example/")
	return e
}

func (e *clickRollupEnv) insert(t *testing.T, st *store.Store, n int) {
	t.Helper()
	if err := st.InsertClicks(context.Background(), e.batch(n)); err != nil {
		t.Fatal(err)
	}
}

func (e *clickRollupEnv) record(t *testing.T, st *store.Store, n int) {
	t.Helper()
	if err := st.RecordClicks(context.Background(), e.batch(n)); err != nil {
		t.Fatal(err)
	}
}

func (e *clickRollupEnv) batch(n int) []heldsway.Click {
	batch := make([]heldsway.Click, n)
	for i := range batch {
		e.seq++
		batch[i] = heldsway.Click{WorkspaceID: e.ws, LinkID: e.link, AffiliateID: e.aff, ProgramID: e.prog,
			ClickID: fmt.Sprintf("c%08d", e.seq), VisitorID: fmt.Sprintf("v%08d", e.seq), CreatedAt: time.Now().UTC()}
	}
	return batch
}

// rawClicks is what rollup_totals holds for the workspace, read directly.
func rawClicks(t *testing.T, db *sql.DB, ws int64) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(`SELECT CAST(COALESCE(SUM(clicks), 0) AS BIGINT) FROM rollup_totals WHERE workspace_id = $1`, ws).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestClickRollupsReadYourWrites(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newClickRollupEnv(t, st)
		today := heldsway.DayOf(time.Now(), time.UTC)
		for i := 1; i <= 3; i++ {
			e.insert(t, st, 7)
			// Read at once: no wait for the tailer's next tick.
			c, err := st.AnalyticsTotals(context.Background(), e.ws, today.AddDays(-1), today.AddDays(1), "", heldsway.AnalyticsFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if c.Clicks != int64(7*i) {
				t.Fatalf("after %d clicks the totals read %d", 7*i, c.Clicks)
			}
			daily, err := st.AnalyticsDaily(context.Background(), e.ws, today.AddDays(-1), today.AddDays(1), "",
				heldsway.AnalyticsFilter{LinkID: e.link})
			if err != nil {
				t.Fatal(err)
			}
			var sum int64
			for _, d := range daily {
				sum += d.Counts.Clicks
			}
			if sum != int64(7*i) {
				t.Fatalf("after %d clicks the link's days read %d", 7*i, sum)
			}
		}
	})
}

func TestClickRollupsTailer(t *testing.T) {
	t.Parallel()
	st := storetest.Open(t, "sqlite")
	e := newClickRollupEnv(t, st)
	e.insert(t, st, 25)
	// Nobody reads analytics: the tailer counts them by itself.
	deadline := time.Now().Add(5 * time.Second)
	for rawClicks(t, st.DB(), e.ws) != 25 {
		if time.Now().After(deadline) {
			t.Fatalf("the tailer counted %d of 25 clicks in 5 s", rawClicks(t, st.DB(), e.ws))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestClickRollupsCountedOnClose(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "heldsway.db")
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	e := newClickRollupEnv(t, st)
	e.insert(t, st, 40)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n := rawClicks(t, db, e.ws); n != 40 {
		t.Fatalf("closed store left rollups with %d of 40 clicks", n)
	}
}

// TestClickRollupsExactlyOnce runs click batches, catch-ups and rebuilds at
// the same time: at the end the rollups hold each click once, as a rebuild
// from the raw clicks says.
func TestClickRollupsExactlyOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newClickRollupEnv(t, st)
		ctx := context.Background()
		var wg sync.WaitGroup
		stop := make(chan struct{})
		errs := make(chan error, 2)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := st.SyncClickRollups(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 3 {
				if _, err := st.RebuildRollups(ctx, e.ws); err != nil {
					errs <- err
					return
				}
			}
		}()
		// Batches written straight (InsertClicks) and through the click
		// journal (RecordClicks, which counts in its ingesting transaction)
		// interleave.
		for i := range 60 {
			if i%2 == 0 {
				e.insert(t, st, 1+e.seq%9)
			} else {
				e.record(t, st, 1+e.seq%9)
			}
		}
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if err := st.SyncClickRollups(ctx); err != nil {
			t.Fatal(err)
		}
		if n := rawClicks(t, st.DB(), e.ws); n != int64(e.seq) {
			t.Fatalf("rollups count %d clicks, %d were stored", n, e.seq)
		}
		if _, err := st.RebuildRollups(ctx, e.ws); err != nil {
			t.Fatal(err)
		}
		if n := rawClicks(t, st.DB(), e.ws); n != int64(e.seq) {
			t.Fatalf("rebuilt rollups count %d clicks, %d were stored", n, e.seq)
		}
	})
}
