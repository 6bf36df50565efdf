package store

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// RebuildResult reports what a rollup rebuild read.
type RebuildResult struct {
	WorkspaceID int64         `json:"workspace_id"`
	Timezone    string        `json:"timezone"`
	From        string        `json:"from,omitempty"` // first and last day rebuilt; empty when the workspace has no events
	To          string        `json:"to,omitempty"`
	Days        int           `json:"days"`
	Clicks      int64         `json:"clicks"`
	Events      int64         `json:"events"`
	Orders      int64         `json:"orders"`
	Duration    time.Duration `json:"-"`
	Seconds     float64       `json:"seconds"`
}

// RebuildAllRollups rebuilds the rollups of every workspace, one after the
// other; see RebuildRollups.
func (s *Store) RebuildAllRollups(ctx context.Context) ([]RebuildResult, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM workspaces ORDER BY id`)
	if err != nil {
		return nil, unavailable(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, unavailable(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	out := make([]RebuildResult, 0, len(ids))
	for _, id := range ids {
		res, err := s.RebuildRollups(ctx, id)
		if err != nil {
			return out, err
		}
		out = append(out, *res)
	}
	return out, nil
}

// RebuildRollups recomputes a workspace's rollups from its raw events
// (clicks, storefront events, orders with their commissions) in the
// workspace's current time zone setting, which from then on is the time
// zone of its analytics days. ENOTFOUND for an unknown workspace.
//
// The rebuild runs while events keep coming, without counting any twice or
// missing one: a first transaction adopts the time zone and deletes the
// workspace's rollups; then each day is recomputed in a transaction of its
// own that deletes the day's rows and feeds the day's raw events through the
// same code the write paths use (rollup.go). Every transaction holds the
// workspace's rollup_state row FOR UPDATE (PostgreSQL; SQLite has one writer
// anyway), which a writer's KEY SHARE waits for, so each event is either in
// a day's recomputation or added on top of it. While a rebuild runs, the
// days not yet recomputed read low.
func (s *Store) RebuildRollups(ctx context.Context, wsID int64) (*RebuildResult, error) {
	started := time.Now()
	res := &RebuildResult{WorkspaceID: wsID}
	lock := ``
	if s.Dialect.IsPostgres() {
		lock = ` FOR UPDATE`
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.catchUpClicks(ctx, tx); err != nil {
			return err
		}
		var tz string
		err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT timezone FROM workspace_settings WHERE workspace_id = w.id), 'UTC')
			FROM workspaces w WHERE w.id = $1`, wsID).Scan(&tz)
		if err == sql.ErrNoRows {
			return heldsway.NotFound("Workspace")
		} else if err != nil {
			return err
		}
		res.Timezone = tz
		if _, err := tx.ExecContext(ctx, `INSERT INTO rollup_state (workspace_id, timezone) VALUES ($1, $2)
			ON CONFLICT (workspace_id) DO NOTHING`, wsID, tz); err != nil {
			return err
		}
		var old string
		if err := tx.QueryRowContext(ctx, `SELECT timezone FROM rollup_state WHERE workspace_id = $1`+lock, wsID).Scan(&old); err != nil {
			return err
		}
		// Every row is written again, at all four spans: nothing is folded.
		if _, err := tx.ExecContext(ctx, `UPDATE rollup_state SET timezone = $1, rebuilt_at = $2, folded_to = NULL WHERE workspace_id = $3`,
			tz, ts(s.Now()), wsID); err != nil {
			return err
		}
		for _, t := range rollupTables {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+t+` WHERE workspace_id = $1`, wsID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Batches pipelined with the old zone fail their check and re-read it;
	// forgetting it here saves this node's next batch that round.
	s.rollupZones.Delete(wsID)
	loc := loadLocation(res.Timezone)

	// The days holding events, from each table's (workspace_id, time) index.
	var lo, hi sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT MIN(t), MAX(t) FROM (
			SELECT MIN(created_at) AS t FROM clicks WHERE workspace_id = $1
			UNION ALL SELECT MAX(created_at) FROM clicks WHERE workspace_id = $1
			UNION ALL SELECT MIN(created_at) FROM storefront_events WHERE workspace_id = $1
			UNION ALL SELECT MAX(created_at) FROM storefront_events WHERE workspace_id = $1
			UNION ALL SELECT MIN(converted_at) FROM orders WHERE workspace_id = $1
			UNION ALL SELECT MAX(converted_at) FROM orders WHERE workspace_id = $1) x`, wsID).Scan(&lo, &hi); err != nil {
		return nil, unavailable(err)
	}
	if lo.Valid {
		// One day more on each side: where clocks go back across midnight, a
		// later instant can fall on an earlier day.
		first, last := heldsway.DayOf(fromTS(lo.Int64), loc).AddDays(-1), heldsway.DayOf(fromTS(hi.Int64), loc).AddDays(1)
		res.From, res.To = first.String(), last.String()
		for d := first; d <= last; d = d.AddDays(1) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if err := s.rebuildDay(ctx, wsID, d, res.Timezone, loc, lock, res); err != nil {
				return nil, err
			}
			res.Days++
		}
	}
	res.Duration = time.Since(started)
	res.Seconds = res.Duration.Seconds()
	return res, nil
}

// catchUpClicks counts every click the tailer has not yet counted, in tx
// (SQLite; see clickrollup.go): a recomputation then reads no click the
// tailer would add again.
func (s *Store) catchUpClicks(ctx context.Context, tx *sql.Tx) error {
	if s.Dialect.IsPostgres() {
		return nil
	}
	_, err := s.tailClicks(ctx, tx, 0)
	return err
}

// rollupTables are every table of a workspace's rollups (not rollup_state).
var rollupTables = []string{"rollup_daily", "rollup_totals", "rollup_sessions", "rollup_pages", "rollup_products"}

// rebuildDay recomputes one day of a workspace's rollups in one transaction.
func (s *Store) rebuildDay(ctx context.Context, wsID int64, d heldsway.Day, tzName string, loc *time.Location, lock string, res *RebuildResult) error {
	// The day's instants, padded: where a zone moves its clocks back across
	// midnight a local day is not one interval, so rows are read a little
	// wider and kept when heldsway.DayOf (what the write paths use) says d.
	const pad = 3 * time.Hour
	start, end := ts(d.Start(loc).Add(-pad)), ts(d.AddDays(1).Start(loc).Add(pad))
	in := func(t time.Time) bool { return heldsway.DayOf(t, loc) == d }
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.catchUpClicks(ctx, tx); err != nil {
			return err
		}
		var (
			tz     string
			folded sql.NullInt64
		)
		if err := tx.QueryRowContext(ctx, `SELECT timezone, folded_to FROM rollup_state WHERE workspace_id = $1`+lock, wsID).Scan(&tz, &folded); err != nil {
			return err
		}
		if tz != tzName {
			return heldsway.Errorf(heldsway.ECONFLICT, "Another rebuild changed the workspace's rollup time zone to %s; run the rebuild again.", tz)
		}
		// The day's rows hold what writers added since the first transaction
		// deleted everything: the recomputation writes the difference, so
		// the 4-, 16- and 64-day blocks holding the day get it too.
		r := s.newRollup(ctx, tx, nil)
		r.locs[wsID] = loc
		if folded.Valid { // the fold job ran since the rebuild began: its watermark holds here too
			r.folded[wsID] = heldsway.Day(folded.Int64)
		}
		if err := r.subtractDay(wsID, d); err != nil {
			return err
		}

		rows, err := tx.QueryContext(ctx, `SELECT program_id, affiliate_id, link_id, created_at FROM clicks
			WHERE workspace_id = $1 AND created_at >= $2 AND created_at < $3`, wsID, start, end)
		if err != nil {
			return err
		}
		c := heldsway.Click{WorkspaceID: wsID}
		for rows.Next() {
			var at int64
			if err := rows.Scan(&c.ProgramID, &c.AffiliateID, &c.LinkID, &at); err != nil {
				rows.Close()
				return err
			}
			c.CreatedAt = fromTS(at)
			if !in(c.CreatedAt) {
				continue
			}
			if err := r.click(&c); err != nil {
				rows.Close()
				return err
			}
			res.Clicks++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}

		rows, err = tx.QueryContext(ctx, `SELECT type, session_id, program_id, affiliate_id, link_id, host, path, product_id,
			product_name, created_at FROM storefront_events WHERE workspace_id = $1 AND created_at >= $2 AND created_at < $3`,
			wsID, start, end)
		if err != nil {
			return err
		}
		for rows.Next() {
			var (
				e                      = heldsway.StorefrontEvent{WorkspaceID: wsID}
				prog, aff, link        sql.NullInt64
				host, path, prod, name sql.NullString
				at                     int64
			)
			if err := rows.Scan(&e.Type, &e.SessionID, &prog, &aff, &link, &host, &path, &prod, &name, &at); err != nil {
				rows.Close()
				return err
			}
			e.ProgramID, e.AffiliateID, e.LinkID = fromNullInt(prog), fromNullInt(aff), fromNullInt(link)
			e.Host, e.Path, e.ProductID, e.ProductName, e.CreatedAt = host.String, path.String, prod.String, name.String, fromTS(at)
			if !in(e.CreatedAt) {
				continue
			}
			if err := r.event(&e); err != nil {
				rows.Close()
				return err
			}
			res.Events++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}

		orders, err := rollupOrders(ctx, tx, wsID, start, end)
		if err != nil {
			return err
		}
		for _, o := range orders {
			if !in(o.ConvertedAt) {
				continue
			}
			if err := r.orderChange(nil, o); err != nil {
				return err
			}
			res.Orders++
		}
		return r.flush()
	})
}

// rollupOrders reads the orders converted in [start, end) with what their
// figures need: status, amounts, dimensions and commissions.
func rollupOrders(ctx context.Context, tx *sql.Tx, wsID, start, end int64) ([]*heldsway.Order, error) {
	rows, err := tx.QueryContext(ctx, `SELECT o.id, o.status, o.currency, o.total, o.refunded_amount, o.program_id,
		o.affiliate_id, o.link_id, o.converted_at, c.status, c.amount - c.reversed_amount
		FROM orders o LEFT JOIN commissions c ON c.workspace_id = o.workspace_id AND c.order_id = o.id
		WHERE o.workspace_id = $1 AND o.converted_at >= $2 AND o.converted_at < $3 ORDER BY o.id`, wsID, start, end)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*heldsway.Order
	for rows.Next() {
		var (
			o               heldsway.Order
			prog, aff, link sql.NullInt64
			at              int64
			cst             sql.NullString
			net             sql.NullInt64
		)
		if err := rows.Scan(&o.ID, &o.Status, &o.Currency, &o.Total, &o.RefundedAmount, &prog, &aff, &link, &at, &cst, &net); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || out[n-1].ID != o.ID {
			o.WorkspaceID, o.ProgramID, o.LinkID, o.ConvertedAt = wsID, fromNullInt(prog), fromNullInt(link), fromTS(at)
			if aff.Valid {
				o.Affiliate = &heldsway.OrderAffiliate{ID: aff.Int64}
			}
			out = append(out, &o)
		}
		if cst.Valid {
			last := out[len(out)-1]
			last.Commissions = append(last.Commissions, &heldsway.Commission{Status: cst.String, Amount: net.Int64})
		}
	}
	return out, rows.Err()
}

// subtractDay adds minus the current rows of day d (rollup_daily at span 1,
// rollup_totals, rollup_pages, rollup_products) to r and deletes the day's
// session marks, so that r, once fed the day's raw events, writes the
// difference between the day recomputed and the day as it stands.
func (r *rollup) subtractDay(wsID int64, d heldsway.Day) error {
	ctx, tx := r.ctx, r.tx
	if _, err := tx.ExecContext(ctx, `DELETE FROM rollup_sessions WHERE workspace_id = $1 AND day = $2`, wsID, int32(d)); err != nil {
		return err
	}
	cols := strings.Join(countCols, ", ")
	rows, err := tx.QueryContext(ctx, `SELECT program_id, affiliate_id, link_id, currency, shard, `+cols+` FROM rollup_daily
		WHERE workspace_id = $1 AND span = 1 AND day = $2`, wsID, int32(d))
	if err != nil {
		return err
	}
	for rows.Next() {
		k := dimKey{ws: wsID, day: d}
		c, err := scanCounts(rows, &k.prog, &k.aff, &k.link, &k.cur, &k.shard)
		if err != nil {
			rows.Close()
			return err
		}
		var neg heldsway.Counts
		neg.Sub(c)
		r.addDim(k, neg)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = tx.QueryContext(ctx, `SELECT shard, currency, `+cols+` FROM rollup_totals WHERE workspace_id = $1 AND day = $2`, wsID, int32(d))
	if err != nil {
		return err
	}
	for rows.Next() {
		k := totKey{ws: wsID, day: d}
		c, err := scanCounts(rows, &k.shard, &k.cur)
		if err != nil {
			rows.Close()
			return err
		}
		var neg heldsway.Counts
		neg.Sub(c)
		r.addTot(k, neg)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = tx.QueryContext(ctx, `SELECT host, path, program_id, affiliate_id, link_id, pageviews FROM rollup_pages
		WHERE workspace_id = $1 AND day = $2`, wsID, int32(d))
	if err != nil {
		return err
	}
	for rows.Next() {
		k := pageKey{ws: wsID, day: d}
		var n int64
		if err := rows.Scan(&k.host, &k.path, &k.prog, &k.aff, &k.link, &n); err != nil {
			rows.Close()
			return err
		}
		if r.pages == nil {
			r.pages = map[pageKey]int64{}
		}
		r.pages[k] -= n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = tx.QueryContext(ctx, `SELECT product_id, program_id, affiliate_id, link_id, product_views, add_to_carts,
		remove_from_carts FROM rollup_products WHERE workspace_id = $1 AND day = $2`, wsID, int32(d))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		k := prodKey{ws: wsID, day: d}
		var c heldsway.Counts
		if err := rows.Scan(&k.product, &k.prog, &k.aff, &k.link, &c.ProductViews, &c.AddToCarts, &c.RemoveFromCarts); err != nil {
			return err
		}
		if r.prods == nil {
			r.prods = map[prodKey]*prodVal{}
		}
		var neg heldsway.Counts
		neg.Sub(c)
		r.addProd(k, "", neg)
	}
	return rows.Err()
}
