package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// Folding rollup_daily's blocks (SQLite).
//
// Each change to rollup_daily is kept at four spans (rollup.go): the day and
// the 4-, 16- and 64-day blocks holding it, so that a range reads few rows.
// Writing four rows per change was most of what a conversion's rollups cost
// the one writer: about three upserts and two of the ten 4 KiB pages its
// commit writes (BenchmarkConversionWALFrames). Yet the blocks of the days
// still running are read only by ranges reaching today. So on SQLite a
// workspace's days from its fold watermark (rollup_state.folded_to) on keep
// their day rows only, and a day is added to its blocks once, after it
// ended, in one transaction with moving the watermark; the analytics cover a
// range with blocks up to the day before the watermark and with day rows
// from it (rollupSource).
//
// A workspace's first event sets its watermark to its today (it has no rows
// yet). A watermark is NULL for rollups kept before folding existed and after
// a rebuild: every change goes to all four spans, until the next fold sets it
// to the workspace's tomorrow (today's rows already reached their blocks), so
// no day is ever half in its blocks. A
// change dated before the watermark (a review, a refund, a late order) still
// goes to all four spans. A rebuild sets it back to NULL. PostgreSQL keeps
// writing all four spans: its writers run concurrently, and a fold would
// have to hold them all off.

// foldEvery is how often the tailer looks for ended days to fold.
const foldEvery = time.Minute

// qFoldSpan adds one day's rows (span 1, day $2) to their blocks of span $4
// starting on day $3.
var qFoldSpan = `INSERT INTO rollup_daily (workspace_id, span, day, program_id, affiliate_id, link_id, currency, shard, ` +
	strings.Join(countCols, ", ") + `)
	SELECT workspace_id, $4, $3, program_id, affiliate_id, link_id, currency, shard, ` + strings.Join(countCols, ", ") + `
	FROM rollup_daily WHERE workspace_id = $1 AND span = 1 AND day = $2
	ON CONFLICT (workspace_id, span, day, program_id, affiliate_id, link_id, currency, shard) DO UPDATE SET ` +
	upsertSet("rollup_daily", countCols)

// FoldRollups folds every ended day of every workspace into its blocks (see
// above), each day in a transaction of its own. Nothing on PostgreSQL.
func (s *Store) FoldRollups(ctx context.Context) error {
	if s.Dialect.IsPostgres() {
		return nil
	}
	type state struct {
		ws     int64
		tz     string
		folded sql.NullInt64
	}
	rows, err := s.r.QueryContext(ctx, `SELECT workspace_id, timezone, folded_to FROM rollup_state ORDER BY workspace_id`)
	if err != nil {
		return unavailable(err)
	}
	var states []state
	for rows.Next() {
		var st state
		if err := rows.Scan(&st.ws, &st.tz, &st.folded); err != nil {
			rows.Close()
			return unavailable(err)
		}
		states = append(states, st)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return unavailable(err)
	}
	var errs []error
	for _, st := range states {
		today := heldsway.DayOf(s.Now(), loadLocation(st.tz))
		if !st.folded.Valid {
			errs = append(errs, s.startFolding(ctx, st.ws, st.tz, today.AddDays(1)))
			continue
		}
		for d := heldsway.Day(st.folded.Int64); d < today && ctx.Err() == nil; d = d.AddDays(1) {
			if err := s.foldDay(ctx, st.ws, st.tz, d); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	return errors.Join(errs...)
}

// startFolding sets a workspace's first watermark, unless a rebuild or
// another fold changed its state since it was read.
func (s *Store) startFolding(ctx context.Context, ws int64, tz string, from heldsway.Day) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE rollup_state SET folded_to = $1
			WHERE workspace_id = $2 AND timezone = $3 AND folded_to IS NULL`, int32(from), ws, tz)
		return err
	})
}

// foldDay adds day d of workspace ws, the one at its watermark, to the day's
// blocks and moves the watermark past it, in one transaction; nothing if the
// state changed since it was read.
func (s *Store) foldDay(ctx context.Context, ws int64, tz string, d heldsway.Day) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var (
			curTZ  string
			folded sql.NullInt64
		)
		if err := tx.QueryRowContext(ctx, `SELECT timezone, folded_to FROM rollup_state WHERE workspace_id = $1`, ws).
			Scan(&curTZ, &folded); err != nil {
			return err
		}
		if curTZ != tz || !folded.Valid || heldsway.Day(folded.Int64) != d {
			return nil
		}
		for _, span := range rollupSpans {
			if span == 1 {
				continue
			}
			if _, err := tx.ExecContext(ctx, qFoldSpan, ws, int32(d), int32(spanStart(d, span)), span); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE rollup_state SET folded_to = $1 WHERE workspace_id = $2`, int32(d.AddDays(1)), ws)
		return err
	})
}
