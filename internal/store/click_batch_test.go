package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// Click batches on PostgreSQL: sent as one pipeline once the workspace's
// rollup time zone is cached, several at once, counted in shard rows.

// clickTotals returns what the store shows of a link's clicks: its rows in
// clicks, its click count (as the API reads it), and its clicks in the daily
// rollups (span 1, summed over shards) and in the workspace totals.
func clickTotals(t *testing.T, st *store.Store, ws, link int64) (rows, count, daily, totals int64) {
	t.Helper()
	ctx := context.Background()
	var err error
	if count, err = st.LinkClickCount(ctx, link); err != nil {
		t.Fatal(err)
	}
	// SQLite's tailer counts clicks after their batch: read what every
	// committed click makes the rollups.
	if err := st.SyncClickRollups(ctx); err != nil {
		t.Fatal(err)
	}
	db := st.DB()
	if err := db.QueryRow(`SELECT COUNT(*) FROM clicks WHERE workspace_id = $1 AND link_id = $2`, ws, link).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT COALESCE(SUM(clicks), 0) FROM rollup_daily WHERE workspace_id = $1 AND link_id = $2 AND span = 1`,
		ws, link).Scan(&daily); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT COALESCE(SUM(clicks), 0) FROM rollup_totals WHERE workspace_id = $1`, ws).Scan(&totals); err != nil {
		t.Fatal(err)
	}
	return rows, count, daily, totals
}

func newClick(ws, prog, aff, link int64, id string, at time.Time) heldsway.Click {
	return heldsway.Click{WorkspaceID: ws, LinkID: link, AffiliateID: aff, ProgramID: prog, ClickID: id, VisitorID: "v",
		UserAgent: "Mozilla/5.0", CreatedAt: at}
}

// TestInsertClicksConcurrentBatches sends many batches through two links at
// once, as the redirect's writers do: every link's count, rows and rollups
// agree after all commit, and while they commit, every reader sees the count
// equal to the rows.
func TestInsertClicksConcurrentBatches(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		s := &clickSeed{t: t, st: st, now: t0}
		ws, prog, aff := s.workspace("one", "ALICE")
		l1 := s.link(ws, aff, "a1", "https://one.example/")
		l2 := s.link(ws, aff, "a2", "https://one.example/")
		// Some clicks counted before the shards existed: click_count keeps them.
		s.exec(`INSERT INTO clicks (workspace_id, link_id, affiliate_id, program_id, click_id, visitor_id, created_at)
			VALUES ($1, $2, $3, $4, 'old', 'v', $5)`, ws, l1, aff, prog, t0.UnixMicro())
		s.exec(`UPDATE links SET click_count = 1 WHERE id = $1`, l1)
		s.exec(`INSERT INTO rollup_state (workspace_id, timezone) VALUES ($1, 'UTC')`, ws)
		s.exec(`INSERT INTO rollup_totals (workspace_id, day, shard, currency, clicks) VALUES ($1, $2, 0, '', 1)`,
			ws, int32(heldsway.DayOf(t0, time.UTC)))
		s.exec(`INSERT INTO rollup_daily (workspace_id, span, day, program_id, affiliate_id, link_id, currency, shard, clicks)
			VALUES ($1, 1, $2, $3, $4, $5, '', 0, 1)`, ws, int32(heldsway.DayOf(t0, time.UTC)), prog, aff, l1)
		if !st.Dialect.IsPostgres() {
			// Counted already, as the rows above say: past SQLite's tailer.
			s.exec(`UPDATE rollup_cursors SET last_id = (SELECT MAX(id) FROM clicks) WHERE name = 'clicks'`)
		}

		const writers, batches, size = 6, 15, 7
		done := make(chan struct{})
		var readErr error
		var readers sync.WaitGroup
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				// One statement, so one snapshot: the count and the rows of
				// every commit, or of none.
				var count, rows int64
				err := st.DB().QueryRow(`SELECT (SELECT COUNT(*) FROM clicks WHERE workspace_id = $1 AND link_id = $2)`, ws, l1).Scan(&rows)
				if err == nil {
					count, err = st.LinkClickCount(ctx, l1)
				}
				if err != nil {
					readErr = err
					return
				}
				// Read apart, the count may only be ahead of the rows read before it.
				if count < rows {
					readErr = fmt.Errorf("click_count %d read after %d rows", count, rows)
					return
				}
			}
		})
		var wg sync.WaitGroup
		errs := make(chan error, writers*batches)
		for w := range writers {
			wg.Go(func() {
				for b := range batches {
					var clicks []heldsway.Click
					for i := range size {
						link := l1
						if (w+b+i)%3 == 0 {
							link = l2
						}
						at := t0.Add(time.Duration(w*batches*size+b*size+i) * time.Second)
						clicks = append(clicks, newClick(ws, prog, aff, link, fmt.Sprintf("w%d-b%d-%d", w, b, i), at))
					}
					if err := st.InsertClicks(ctx, clicks); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(done)
		readers.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("batch: %v", err)
		}
		if readErr != nil {
			t.Fatal(readErr)
		}
		var all int64
		for _, l := range []int64{l1, l2} {
			rows, count, daily, _ := clickTotals(t, st, ws, l)
			if count != rows || daily != rows {
				t.Fatalf("link %d: %d rows, click_count %d, daily rollup %d", l, rows, count, daily)
			}
			all += rows
			got, err := st.FindLink(ctx, ws, l)
			if err != nil || got.ClickCount != rows {
				t.Fatalf("FindLink: click_count %v, want %d (%v)", got, rows, err)
			}
		}
		if want := int64(writers*batches*size + 1); all != want {
			t.Fatalf("%d rows, want %d", all, want)
		}
		if _, _, _, totals := clickTotals(t, st, ws, l1); totals != all {
			t.Fatalf("workspace totals count %d clicks, want %d", totals, all)
		}
		// The list sorts by the same count it shows.
		page, err := st.ListLinks(ctx, ws, heldsway.LinkFilter{}, heldsway.ListOptions{Sort: "click_count", Desc: true, PerPage: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 2 || page.Items[0].ClickCount < page.Items[1].ClickCount {
			t.Fatalf("links by click_count: %+v", page.Items)
		}
	})
}

// TestInsertClicksFailedBatchWritesNothing fails a batch on its last statement
// (the click count; a trigger refuses it on PostgreSQL, where the batch is one
// pipeline by then): nothing of it is kept, and the connection is fit for the
// next batch.
func TestInsertClicksFailedBatchWritesNothing(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		s := &clickSeed{t: t, st: st, now: t0}
		ws, prog, aff := s.workspace("one", "ALICE")
		l1 := s.link(ws, aff, "a1", "https://one.example/")
		bad := s.link(ws, aff, "bad", "https://one.example/")
		if err := st.InsertClicks(ctx, []heldsway.Click{newClick(ws, prog, aff, l1, "first", t0)}); err != nil {
			t.Fatal(err)
		}
		if st.Dialect.IsPostgres() {
			if tz, ok := store.CachedRollupZone(st, ws); !ok || tz != "UTC" {
				t.Fatalf("rollup zone cached %q %v after a batch, want UTC", tz, ok)
			}
			s.exec(`CREATE FUNCTION refuse_bad() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN RAISE EXCEPTION 'refused'; END $$`)
			s.exec(`CREATE TRIGGER refuse_bad BEFORE INSERT OR UPDATE ON link_clicks FOR EACH ROW
				WHEN (NEW.link_id = ` + fmt.Sprint(bad) + `) EXECUTE FUNCTION refuse_bad()`)
		} else {
			s.exec(`CREATE TRIGGER refuse_bad BEFORE UPDATE OF click_count ON links
				WHEN NEW.id = ` + fmt.Sprint(bad) + ` BEGIN SELECT RAISE(ABORT, 'refused'); END`)
		}
		batch := []heldsway.Click{newClick(ws, prog, aff, l1, "second", t0), newClick(ws, prog, aff, bad, "third", t0)}
		if err := st.InsertClicks(ctx, batch); err == nil {
			t.Fatal("the refused batch succeeded")
		}
		for _, l := range []int64{l1, bad} {
			want := int64(0)
			if l == l1 {
				want = 1
			}
			if rows, count, daily, totals := clickTotals(t, st, ws, l); rows != want || count != want || daily != want || totals != 1 {
				t.Fatalf("link %d after a failed batch: %d rows, click_count %d, daily %d, totals %d; want %d, 1 in totals",
					l, rows, count, daily, totals, want)
			}
		}
		// Every pooled connection takes a good batch afterwards (none is left
		// inside the failed transaction).
		for i := range 40 {
			if err := st.InsertClicks(ctx, []heldsway.Click{newClick(ws, prog, aff, l1, fmt.Sprint("after", i), t0)}); err != nil {
				t.Fatalf("batch %d after the failure: %v", i, err)
			}
		}
		if rows, count, daily, totals := clickTotals(t, st, ws, l1); rows != 41 || count != 41 || daily != 41 || totals != 41 {
			t.Fatalf("after: %d rows, click_count %d, daily %d, totals %d; want 41", rows, count, daily, totals)
		}
	})
}

// TestInsertClicksRollupZoneChanged: a node whose cached rollup time zone is
// stale (another node rebuilt the rollups in a new one) counts its next batch
// in the new zone, both when the rebuild committed before the batch and when
// the batch waited for the rebuild's lock.
func TestInsertClicksRollupZoneChanged(t *testing.T) {
	t.Parallel()
	for _, engine := range storetest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dsn := storetest.DSN(t, engine)
			a := openStore(t, dsn)
			b := openStore(t, dsn)
			s := &clickSeed{t: t, st: a, now: t0}
			ws, prog, aff := s.workspace("one", "ALICE")
			l := s.link(ws, aff, "a1", "https://one.example/")
			// 02:30 UTC on 1 November is 22:30 on 31 October in New York and
			// 11:30 on 1 November in Tokyo.
			at := time.Date(2026, 11, 1, 2, 30, 0, 0, time.UTC)
			day := func(tz string) int32 {
				loc, err := time.LoadLocation(tz)
				if err != nil {
					t.Fatal(err)
				}
				return int32(heldsway.DayOf(at, loc))
			}
			clicksOn := func(d int32) int64 {
				t.Helper()
				if err := a.SyncClickRollups(ctx); err != nil {
					t.Fatal(err)
				}
				var n int64
				if err := a.DB().QueryRow(`SELECT COALESCE(SUM(clicks), 0) FROM rollup_daily WHERE workspace_id = $1 AND span = 1 AND day = $2`,
					ws, d).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			if err := a.InsertClicks(ctx, []heldsway.Click{newClick(ws, prog, aff, l, "c1", at)}); err != nil {
				t.Fatal(err)
			}
			if clicksOn(day("UTC")) != 1 {
				t.Fatal("first click not on its UTC day")
			}

			// Node b rebuilds in New York time; a still holds UTC.
			s.exec(`INSERT INTO workspace_settings (workspace_id, timezone, updated_at) VALUES ($1, 'America/New_York', $2)`,
				ws, t0.UnixMicro())
			if _, err := b.RebuildRollups(ctx, ws); err != nil {
				t.Fatal(err)
			}
			if err := a.InsertClicks(ctx, []heldsway.Click{newClick(ws, prog, aff, l, "c2", at)}); err != nil {
				t.Fatal(err)
			}
			if got, utc := clicksOn(day("America/New_York")), clicksOn(day("UTC")); got != 2 || utc != 0 {
				t.Fatalf("after the rebuild: %d clicks on the New York day, %d on the UTC day; want 2, 0", got, utc)
			}
			if !a.Dialect.IsPostgres() {
				return
			}
			if tz, _ := store.CachedRollupZone(a, ws); tz != "America/New_York" {
				t.Fatalf("node a caches %q after its retried batch", tz)
			}

			// A rebuild's first transaction holds rollup_state FOR UPDATE and
			// changes the zone; a batch sent meanwhile waits for it, then must
			// see the new zone.
			tx, err := b.DB().BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if _, err := tx.Exec(`SELECT timezone FROM rollup_state WHERE workspace_id = $1 FOR UPDATE`, ws); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(`UPDATE rollup_state SET timezone = 'Asia/Tokyo' WHERE workspace_id = $1`, ws); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(`DELETE FROM rollup_daily WHERE workspace_id = $1`, ws); err != nil {
				t.Fatal(err)
			}
			res := make(chan error, 1)
			go func() { res <- a.InsertClicks(ctx, []heldsway.Click{newClick(ws, prog, aff, l, "c3", at)}) }()
			waitLockWait(t, b, ws)
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			if err := <-res; err != nil {
				t.Fatal(err)
			}
			if got, ny := clicksOn(day("Asia/Tokyo")), clicksOn(day("America/New_York")); got != 1 || ny != 0 {
				t.Fatalf("a batch that waited for the zone change: %d on the Tokyo day, %d on the New York one; want 1, 0", got, ny)
			}
		})
	}
}

func openStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// waitLockWait waits until some backend of st's database waits for a lock.
func waitLockWait(t *testing.T, st *store.Store, ws int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := st.DB().QueryRow(`SELECT COUNT(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%rollup_state%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no batch of workspace %d waits for the rebuild's lock", ws)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A click written with a request's Idempotency-Key claim (an SDK click on a
// server without the redirect's writer) records the key in its transaction,
// pipelined path or not.
func TestInsertClicksClaimsIdempotencyKey(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		s := &clickSeed{t: t, st: st, now: t0}
		ws, prog, aff := s.workspace("one", "ALICE")
		l := s.link(ws, aff, "a1", "https://one.example/")
		if err := st.InsertClicks(ctx, []heldsway.Click{newClick(ws, prog, aff, l, "c1", t0)}); err != nil {
			t.Fatal(err)
		}
		claim := &heldsway.IdempotencyClaim{WorkspaceID: ws, Scope: "POST /v1/track/click", Key: "k1", Fingerprint: []byte("f")}
		if err := st.InsertClicks(heldsway.WithIdempotencyClaim(ctx, claim), []heldsway.Click{newClick(ws, prog, aff, l, "c2", t0)}); err != nil {
			t.Fatal(err)
		}
		if !claim.Recorded() {
			t.Fatal("the click's transaction did not record the Idempotency-Key")
		}
	})
}
