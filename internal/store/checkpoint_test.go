package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// TestCheckpointerRestartsTheWAL: under a steady stream of commits, with
// readers coming and going, the WAL does not grow without bound: past its
// limit the checkpointer has the next write start it over, so the frames in
// the WAL fall back while the writes go on.
func TestCheckpointerRestartsTheWAL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "heldsway.db")
	st := openAt(t, path)
	store.SetWALRestartPages(st, 32)
	s := &clickSeed{t: t, st: st, now: t0}
	ws, prog, aff := s.workspace("wal", "WAL")
	link := s.link(ws, aff, "wal", "https://wal.example/")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // the writer: a transaction after another
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			batch := make([]heldsway.Click, 20)
			for j := range batch {
				batch[j] = newClick(ws, prog, aff, link, fmt.Sprint("w", i, "-", j), t0)
			}
			if err := st.InsertClicks(ctx, batch); err != nil {
				t.Error(err)
				return
			}
		}
	})
	// Readers whose transactions overlap, so that one always holds a
	// snapshot in the WAL, as a server's reads under load do.
	db := rawDB(t, path)
	db.SetMaxOpenConns(8)
	for r := range 3 {
		wg.Go(func() {
			time.Sleep(time.Duration(r) * time.Millisecond)
			for {
				select {
				case <-stop:
					return
				default:
				}
				tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
				if err != nil {
					t.Error(err)
					return
				}
				var n int
				if err := tx.QueryRow(`SELECT COUNT(*) FROM clicks WHERE link_id = $1`, link).Scan(&n); err != nil {
					t.Error(err)
				}
				time.Sleep(3 * time.Millisecond)
				_ = tx.Rollback()
			}
		})
	}

	// The WAL's frames, as a checkpoint reports them, sampled while the
	// writes go on: they must fall back soon after passing the limit (the
	// checkpointer looks every 250 ms). With PASSIVE checkpoints alone they
	// grew past 65,000 frames and fell back only by chance, after 4.5 s or
	// more.
	frames := func() int {
		var busy, log, done int
		if err := db.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &done); err != nil {
			t.Fatal(err)
		}
		return log
	}
	peak, restarted := 0, false
	start := time.Now()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline) && !restarted; time.Sleep(20 * time.Millisecond) {
		n := frames()
		if peak > 32 && n < peak/2 {
			restarted = true
		}
		peak = max(peak, n)
	}
	close(stop)
	wg.Wait()
	if !restarted {
		t.Fatalf("the WAL grew to %d frames under steady writes and did not start over within 2 s", peak)
	}
	t.Logf("the WAL started over after %v, at %d frames", time.Since(start).Round(time.Millisecond), peak)
	// The restart ran on the writer's connection with a short busy timeout:
	// the writers get theirs back.
	var timeout int
	if err := st.DB().QueryRow(`PRAGMA busy_timeout`).Scan(&timeout); err != nil || timeout != 10000 {
		t.Fatalf("the writer's busy_timeout after a restart: %d (%v), want 10000", timeout, err)
	}
}

// A database a server reopens gets planner statistics for its tables, as the
// benchmarks' databases have: PRAGMA optimize at open.
func TestOpenAnalysesTheDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hs.db")
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	ws := &heldsway.Workspace{Name: "Stats", Slug: "stats", Plan: "basic", Active: true}
	if err := st.CreateWorkspace(ctx, ws); err != nil {
		t.Fatal(err)
	}
	aff := storetest.InsertAffiliate(t, st.DB(), ws.ID, "USD", heldsway.AffiliateActive)
	var prog int64
	if err := st.DB().QueryRow(`SELECT program_id FROM affiliates WHERE id = $1`, aff).Scan(&prog); err != nil {
		t.Fatal(err)
	}
	clicks := make([]heldsway.Click, 2000)
	for i := range clicks {
		clicks[i] = heldsway.Click{WorkspaceID: ws.ID, AffiliateID: aff, ProgramID: prog, ClickID: fmt.Sprintf("c-%d", i),
			VisitorID: fmt.Sprintf("v-%d", i%300), CreatedAt: time.Now().Add(-time.Duration(i) * time.Minute)}
	}
	if err := st.InsertClicks(ctx, clicks); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var stat string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		err := st.DB().QueryRow(`SELECT stat FROM sqlite_stat1 WHERE tbl = 'clicks' AND idx = 'clicks_visitor'`).Scan(&stat)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no statistics for clicks_visitor after reopening: %v", err)
		}
	}
	if !strings.HasPrefix(stat, "2000 ") {
		t.Fatalf("clicks_visitor statistics %q, want 2000 rows first", stat)
	}
}
