package store

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// Click rollups on SQLite are kept by a tailer, not by the click batch.
//
// The redirect commits a click batch before it answers, and on SQLite every
// statement and every page of that transaction is paid by one writer for
// every 302: counting the batch in rollup_daily and rollup_totals took a
// tenth of the redirect's CPU. So on SQLite the batch stores the clicks and
// links.click_count only, and the tailer adds the clicks to the rollups
// after them, in transactions of up to clickRollupChunk clicks in id order:
// rollup_cursors.last_id is the last click counted, moved in the same
// transaction as the counts, so a click is counted exactly once whatever
// stops when. SQLite has one writer, so ids are committed in order and the
// cursor never passes a click still being written.
//
// Readers see every committed click: each analytics read first catches the
// rollups up (SyncClickRollups), a no-op unless clicks arrived since the last
// run; and a rebuild catches up inside each of its transactions before it
// recomputes, so a click is never both recomputed and tailed. PostgreSQL has
// concurrent writers whose ids commit out of order, and counts clicks in the
// click transaction as before.

// clickRollupEvery is how often the tailer looks for clicks to count: often
// enough that a tick finds a few hundred clicks at the redirect's peak.
const clickRollupEvery = 25 * time.Millisecond

// clickRollupChunk bounds one tailer transaction (a few milliseconds), so a
// click batch never waits long behind it.
const clickRollupChunk = 1000

type clickTailer struct {
	stop   chan struct{}
	done   sync.WaitGroup
	closed sync.Once
}

func (s *Store) startClickTailer() {
	// The days that ended while the server was down, before anything else
	// writes (an error is retried at the first minute).
	_ = s.FoldRollups(context.Background())
	t := &clickTailer{stop: make(chan struct{})}
	t.done.Add(1)
	go func() {
		defer t.done.Done()
		tick := time.NewTicker(clickRollupEvery)
		defer tick.Stop()
		fold := time.NewTicker(foldEvery)
		defer fold.Stop()
		for {
			select {
			case <-t.stop:
				return
			case <-tick.C:
			case <-fold.C:
				// Ended days into their blocks (rollupfold.go); errors are
				// retried at the next minute.
				_ = s.FoldRollups(context.Background())
				continue
			}
			// Errors (the database briefly busy) are retried at the next
			// tick; readers catch up on their own meanwhile.
			_ = s.SyncClickRollups(context.Background())
		}
	}()
	s.tailer = t
}

func (t *clickTailer) close() {
	t.closed.Do(func() {
		close(t.stop)
		t.done.Wait()
	})
}

// SyncClickRollups counts every acknowledged click in the rollups before it
// returns (SQLite, after ingesting the click journal; on PostgreSQL it
// stores what a click journal holds). When nothing is waiting it costs one
// read on SQLite, nothing on PostgreSQL.
func (s *Store) SyncClickRollups(ctx context.Context) error {
	if s.Dialect.IsPostgres() {
		// Counted in the clicks' transaction; only a journal's clicks wait.
		return s.syncClicks(ctx)
	}
	if err := s.syncClicks(ctx); err != nil {
		return err
	}
	for {
		var behind bool
		if err := s.r.QueryRowContext(ctx, `SELECT COALESCE((SELECT MAX(id) FROM clicks), 0) >
			(SELECT last_id FROM rollup_cursors WHERE name = 'clicks')`).Scan(&behind); err != nil {
			return unavailable(err)
		}
		if !behind {
			return nil
		}
		var n int
		if err := s.tx(ctx, func(tx *sql.Tx) error {
			var err error
			n, err = s.tailClicks(ctx, tx, clickRollupChunk)
			return err
		}); err != nil {
			return err
		}
		if n < clickRollupChunk {
			return nil
		}
	}
}

// tailClicks counts up to limit clicks after the cursor in the rollups and
// moves the cursor past them, in tx (limit < 1: all of them). It returns how
// many it counted.
func (s *Store) tailClicks(ctx context.Context, tx *sql.Tx, limit int) (int, error) {
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT last_id FROM rollup_cursors WHERE name = 'clicks'`).Scan(&last); err != nil {
		return 0, err
	}
	q := `SELECT id, workspace_id, program_id, affiliate_id, link_id, created_at FROM clicks WHERE id > $1 ORDER BY id`
	args := []any{last}
	if limit > 0 {
		q += ` LIMIT $2`
		args = append(args, limit)
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	var clicks []heldsway.Click
	for rows.Next() {
		var c heldsway.Click
		var at int64
		if err := rows.Scan(&last, &c.WorkspaceID, &c.ProgramID, &c.AffiliateID, &c.LinkID, &at); err != nil {
			rows.Close()
			return 0, err
		}
		c.CreatedAt = fromTS(at)
		clicks = append(clicks, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(clicks) == 0 {
		return 0, nil
	}
	r := s.newRollup(ctx, tx, nil)
	for i := range clicks {
		if err := r.click(&clicks[i]); err != nil {
			return 0, err
		}
	}
	if err := r.flush(); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE rollup_cursors SET last_id = $1 WHERE name = 'clicks'`, last); err != nil {
		return 0, err
	}
	return len(clicks), nil
}
