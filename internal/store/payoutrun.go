package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

// Payout runs: each active affiliate's available balance per currency becomes
// one pending payout when it reaches the workspace's minimum; below it the
// balance is carried forward to a later run.
//
// Never twice. A run is claimed by inserting its (workspace, period) row, which
// is unique: of two processes starting the same period at once, one inserts
// the row and works, the other finds it. The run then pays the affiliates in
// chunks of runChunk, one transaction each, so a run over millions of
// commissions holds no lock for long (SQLite has one writer: clicks and
// conversions get their turn between chunks) and its memory is bounded by a
// chunk. Each chunk locks its affiliates (FOR NO KEY UPDATE on PostgreSQL, in
// id order, see ledger.go) and reads their balances under the lock, so any two
// runs, of the same period or not, and any request approval or failed payout,
// see each other's ledger entries and never pay one balance twice.
//
// Crashes. While it works the run renews a lease; a run left "running" with an
// expired lease (its process died) is resumed by the next attempt at the same
// period. payouts_run (run_id, affiliate_id, currency) is unique and a
// resumed chunk only pays affiliates without a payout in the run, so resuming
// never pays twice either.

const (
	// runChunk is how many affiliates one transaction of a run pays (tests
	// set Store.runChunk lower).
	runChunk = 200
	// runWorkers is how many chunks a run pays at once on PostgreSQL.
	runWorkers = 2
	// runLease is how long a run may go without progress before another
	// attempt takes it over.
	runLease = 2 * time.Minute
)

// RunPayouts executes the payout run of a period for the workspace and returns
// it completed. Audit payout.create and event payout.scheduled for each
// payout, audit payout_run.complete for the run. Errors: EVALIDATION; ECONFLICT
// when the period already ran or another process is running it (details
// run_id, status).
func (s *Store) RunPayouts(ctx context.Context, wsID int64, in heldsway.PayoutRunInput) (*heldsway.PayoutRun, error) {
	if in.PeriodKey == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		in.PeriodKey = "manual:" + hex.EncodeToString(b[:])
	}
	if err := heldsway.CheckPeriodKey(in.PeriodKey); err != nil {
		return nil, err
	}
	if in.Currency != "" {
		c, err := money.ParseCurrency(in.Currency)
		if err != nil {
			return nil, heldsway.Invalid("currency", err.Error()+".")
		}
		in.Currency = c.Code
	}
	// The scheduler asks every minute: answer a finished period from the
	// reader without taking the writer.
	if run, err := s.readRun(ctx, s.r, wsID, in.PeriodKey); err != nil {
		return nil, unavailable(err)
	} else if run != nil && (run.Status == heldsway.PayoutRunCompleted || run.leaseUntil.After(s.Now())) {
		return nil, runConflict(run)
	}
	run, err := s.claimRun(ctx, wsID, in)
	if err != nil {
		return nil, err
	}
	ps, err := readPayoutSettings(ctx, s.r, wsID)
	if err != nil {
		return nil, unavailable(err)
	}
	size := runChunk
	if s.runChunkSize > 0 {
		size = s.runChunkSize
	}
	ranges, err := s.runRanges(ctx, wsID, size)
	if err != nil {
		return nil, unavailable(err)
	}
	// PostgreSQL runs two chunks at a time, one per backend: chunks lock
	// disjoint affiliates, so they never wait for each other (their progress
	// updates of the run's row queue at commit). SQLite has one writer.
	workers := 1
	if s.Dialect.IsPostgres() {
		workers = runWorkers
	}
	if err := s.payRanges(ctx, wsID, run, ps, ranges, workers); err != nil {
		return nil, err
	}
	return s.completeRun(ctx, wsID, run)
}

// runRow is a payout_runs row with its lease.
type runRow struct {
	heldsway.PayoutRun
	leaseUntil time.Time
}

const runCols = `id, workspace_id, period_key, status, payouts_created, carried_forward, currency, started_at, completed_at, lease_until`

func scanRun(sc scanner) (*runRow, error) {
	var (
		r          runRow
		cur        sql.NullString
		started    int64
		done, till sql.NullInt64
	)
	if err := sc.Scan(&r.ID, &r.WorkspaceID, &r.PeriodKey, &r.Status, &r.PayoutsCreated, &r.CarriedForward, &cur,
		&started, &done, &till); err != nil {
		return nil, err
	}
	r.Currency, r.StartedAt, r.CompletedAt = cur.String, fromTS(started), fromNullTS(done)
	if till.Valid {
		r.leaseUntil = fromTS(till.Int64)
	}
	return &r, nil
}

// readRun reads the run of a period, or nil.
func (s *Store) readRun(ctx context.Context, q rowQuerier, wsID int64, key string) (*runRow, error) {
	r, err := scanRun(q.QueryRowContext(ctx, `SELECT `+runCols+` FROM payout_runs WHERE workspace_id = $1 AND period_key = $2`,
		wsID, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return r, err
}

func runConflict(r *runRow) error {
	msg := fmt.Sprintf("The payout run of period %s has already run.", r.PeriodKey)
	if r.Status != heldsway.PayoutRunCompleted {
		msg = fmt.Sprintf("The payout run of period %s is in progress.", r.PeriodKey)
	}
	return &heldsway.Error{Code: heldsway.ECONFLICT, Message: msg,
		Details: map[string]any{"run_id": r.ID, "status": r.Status, "period_key": r.PeriodKey}}
}

// claimRun inserts the run of the period, or takes over a running one whose
// lease expired. Of two claims at once exactly one succeeds: the insert is
// unique and the takeover is conditional on the lease it read.
func (s *Store) claimRun(ctx context.Context, wsID int64, in heldsway.PayoutRunInput) (*runRow, error) {
	var out *runRow
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now := s.Now()
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO payout_runs (workspace_id, period_key, status, started_at, lease_until, currency)
			VALUES ($1, $2, 'running', $3, $4, $5) ON CONFLICT (workspace_id, period_key) DO NOTHING RETURNING id`,
			wsID, in.PeriodKey, ts(now), ts(now.Add(runLease)), nullStr(in.Currency)).Scan(&id)
		if err == nil {
			out = &runRow{PayoutRun: heldsway.PayoutRun{ID: id, WorkspaceID: wsID, PeriodKey: in.PeriodKey,
				Status: heldsway.PayoutRunRunning, Currency: in.Currency, StartedAt: now}, leaseUntil: now.Add(runLease)}
			return s.audit(ctx, tx, wsID, "payout_run.start", "payout_run", id, nil, snapRun(&out.PayoutRun))
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		r, err := s.readRun(ctx, tx, wsID, in.PeriodKey)
		if err != nil {
			return err
		}
		if r.Status == heldsway.PayoutRunCompleted || r.leaseUntil.After(now) {
			return runConflict(r)
		}
		res, err := tx.ExecContext(ctx, `UPDATE payout_runs SET lease_until = $1 WHERE id = $2 AND status = 'running'
			AND lease_until = $3`, ts(now.Add(runLease)), r.ID, ts(r.leaseUntil))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return runConflict(r)
		}
		r.leaseUntil = now.Add(runLease)
		out = r
		return s.audit(ctx, tx, wsID, "payout_run.resume", "payout_run", r.ID, nil, snapRun(&r.PayoutRun))
	})
	return out, err
}

// idRange is a chunk of a run: the affiliates with after < id <= last.
type idRange struct{ after, last int64 }

// runRanges cuts the workspace's active affiliates, in id order, into ranges
// of size; the last range is open-ended, so an affiliate activated during the
// run is paid by it when its id comes last. Only the bounds are kept.
func (s *Store) runRanges(ctx context.Context, wsID int64, size int) ([]idRange, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM affiliates WHERE workspace_id = $1 AND status = 'active' ORDER BY id`, wsID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var (
		out   []idRange
		after int64
		n     int
	)
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		if n++; n%size == 0 {
			out = append(out, idRange{after, id})
			after = id
		}
	}
	return append(out, idRange{after, math.MaxInt64}), rows.Err()
}

// payRanges pays the ranges with workers goroutines; the first error stops
// the others (the run stays claimed; its next attempt resumes it).
func (s *Store) payRanges(ctx context.Context, wsID int64, run *runRow, ps *heldsway.PayoutSettings, ranges []idRange, workers int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan idRange)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for r := range next {
				if err := s.payChunk(ctx, wsID, run, ps, r); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
feed:
	for _, r := range ranges {
		select {
		case next <- r:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// payChunk pays the active affiliates of one range in one transaction.
func (s *Store) payChunk(ctx context.Context, wsID int64, run *runRow, ps *heldsway.PayoutSettings, rg idRange) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		now := s.Now()
		lock := ""
		if s.Dialect.IsPostgres() {
			lock = " " + lockExclusive
		}
		rows, err := tx.QueryContext(ctx, `SELECT id FROM affiliates WHERE workspace_id = $1 AND id > $2 AND id <= $3
			AND status = 'active' ORDER BY id`+lock, wsID, rg.after, rg.last)
		if err != nil {
			return err
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		if len(ids) == 0 {
			return nil
		}
		lo, hi := ids[0], ids[len(ids)-1]
		due, carried, err := s.chunkBalances(ctx, tx, wsID, run, ps, ids)
		if err != nil {
			return err
		}
		if err := s.createRunPayouts(ctx, tx, wsID, run, due, lo, hi, now); err != nil {
			return err
		}
		// Progress: the count, the carried-forward balances and a renewed lease.
		if _, err := tx.ExecContext(ctx, `UPDATE payout_runs SET payouts_created = payouts_created + $1,
			carried_forward = carried_forward + $2, lease_until = $3 WHERE id = $4`,
			len(due), carried, ts(now.Add(runLease)), run.ID); err != nil {
			return err
		}
		return nil
	})
}

// dueBalance is an affiliate's balance a run pays.
type dueBalance struct {
	affiliateID int64
	currency    string
	amount      int64
}

// chunkBalances reads the available balances of the chunk's affiliates (ids,
// ascending) and returns those the run pays, and how many positive balances
// stay below the minimum. The minimum is in the payout settings' currency;
// a balance in another currency (a program in another currency) is paid
// when it is positive. An affiliate already paid by this run (a resumed run)
// is skipped.
func (s *Store) chunkBalances(ctx context.Context, tx *sql.Tx, wsID int64, run *runRow, ps *heldsway.PayoutSettings,
	ids []int64) ([]dueBalance, int, error) {
	lo, hi := ids[0], ids[len(ids)-1]
	rows, err := tx.QueryContext(ctx, `SELECT l.affiliate_id, l.currency, CAST(SUM(l.amount) AS BIGINT) FROM ledger_entries l
		WHERE l.workspace_id = $1 AND l.affiliate_id >= $2 AND l.affiliate_id <= $3
			AND NOT EXISTS (SELECT 1 FROM payouts p WHERE p.run_id = $4 AND p.affiliate_id = l.affiliate_id
				AND p.currency = l.currency)
		GROUP BY l.affiliate_id, l.currency ORDER BY l.affiliate_id, l.currency`, wsID, lo, hi, run.ID)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var (
		due     []dueBalance
		carried int
	)
	for rows.Next() {
		var b dueBalance
		if err := rows.Scan(&b.affiliateID, &b.currency, &b.amount); err != nil {
			return nil, 0, err
		}
		if _, active := slices.BinarySearch(ids, b.affiliateID); !active || b.amount <= 0 ||
			(run.Currency != "" && b.currency != run.Currency) {
			continue
		}
		if b.currency == ps.Currency && b.amount < ps.MinimumAmount {
			carried++
			continue
		}
		due = append(due, b)
	}
	return due, carried, rows.Err()
}

// createRunPayouts inserts the chunk's payouts with, for each, its ledger
// entry, the commissions it settles, its audit entry and its event. Every
// statement is set-based over the chunk: the payouts of this run in [lo, hi]
// without a ledger entry yet are exactly the ones inserted here.
func (s *Store) createRunPayouts(ctx context.Context, tx *sql.Tx, wsID int64, run *runRow, due []dueBalance, lo, hi int64, now time.Time) error {
	if len(due) == 0 {
		return nil
	}
	const cols = 6
	for start := 0; start < len(due); start += maxRowsPerInsert(cols) {
		part := due[start:min(len(due), start+maxRowsPerInsert(cols))]
		var (
			q    strings.Builder
			args = make([]any, 0, len(part)*cols+2)
		)
		q.WriteString(`INSERT INTO payouts (workspace_id, affiliate_id, currency, amount, status, method, run_id, created_at, updated_at) VALUES `)
		args = append(args, run.ID, ts(now))
		for i, b := range part {
			if i > 0 {
				q.WriteString(", ")
			}
			k := len(args)
			fmt.Fprintf(&q, "($%d, $%d, $%d, $%d, 'pending', 'manual', $1, $2, $2)", k+1, k+2, k+3, k+4)
			args = append(args, wsID, b.affiliateID, b.currency, b.amount)
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
	}
	const fresh = `SELECT p.id FROM payouts p WHERE p.run_id = $1 AND p.affiliate_id >= $2 AND p.affiliate_id <= $3
		AND NOT EXISTS (SELECT 1 FROM ledger_entries l WHERE l.payout_id = p.id)`
	// The commissions each payout covers in full, oldest first, as for a
	// request (payoutstate.go): a running sum over non-negative nets is a prefix.
	if _, err := tx.ExecContext(ctx, `INSERT INTO payout_items (payout_id, commission_id, workspace_id, amount)
		SELECT x.pid, x.id, x.workspace_id, x.net FROM (
			SELECT p.id AS pid, p.amount AS pamount, c.id, c.workspace_id, c.amount - c.reversed_amount AS net,
				SUM(c.amount - c.reversed_amount) OVER (PARTITION BY p.id ORDER BY c.created_at, c.id) AS running
			FROM payouts p JOIN commissions c ON c.workspace_id = p.workspace_id AND c.affiliate_id = p.affiliate_id
				AND c.status = 'approved' AND c.currency = p.currency
			WHERE p.id IN (`+fresh+`) AND NOT EXISTS (SELECT 1 FROM payout_items pi WHERE pi.commission_id = c.id)) x
		WHERE x.running <= x.pamount`, run.ID, lo, hi); err != nil {
		return err
	}
	// Audit entries and events need the payouts' ids: read them back.
	rows, err := tx.QueryContext(ctx, `SELECT `+payoutCols+` FROM payouts p WHERE p.id IN (`+fresh+`) ORDER BY p.id`, run.ID, lo, hi)
	if err != nil {
		return err
	}
	var created []*heldsway.Payout
	for rows.Next() {
		p, err := scanPayout(rows)
		if err != nil {
			rows.Close()
			return err
		}
		created = append(created, p)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows.Close()
	if _, err := tx.ExecContext(ctx, `INSERT INTO ledger_entries (workspace_id, affiliate_id, currency, kind, amount, payout_id, created_at)
		SELECT p.workspace_id, p.affiliate_id, p.currency, 'payout', -p.amount, p.id, p.created_at FROM payouts p
		WHERE p.id IN (`+fresh+`)`, run.ID, lo, hi); err != nil {
		return err
	}
	recs := make([]recordItem, len(created))
	for i, p := range created {
		recs[i] = recordItem{id: p.ID, after: snapPayout(p)}
	}
	return s.recordMany(ctx, tx, wsID, "payout.create", "payout", "payout.scheduled", recs)
}

// completeRun marks the run completed and reads its totals.
func (s *Store) completeRun(ctx context.Context, wsID int64, run *runRow) (*heldsway.PayoutRun, error) {
	var out *heldsway.PayoutRun
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now := s.Now()
		if _, err := tx.ExecContext(ctx, `UPDATE payout_runs SET status = 'completed', completed_at = $1, lease_until = NULL
			WHERE id = $2`, ts(now), run.ID); err != nil {
			return err
		}
		r, err := s.readRunByID(ctx, tx, wsID, run.ID)
		if err != nil {
			return err
		}
		out = r
		before := *r
		before.Status, before.CompletedAt = heldsway.PayoutRunRunning, nil
		return s.record(ctx, tx, wsID, "payout_run.complete", "payout_run", r.ID, snapRun(&before), snapRun(r), "payout_run.completed")
	})
	return out, err
}

// ReadPayoutRun returns a run with its totals. Errors: ENOTFOUND.
func (s *Store) ReadPayoutRun(ctx context.Context, wsID, id int64) (*heldsway.PayoutRun, error) {
	r, err := s.readRunByID(ctx, s.r, wsID, id)
	return r, unavailable(err)
}

func (s *Store) readRunByID(ctx context.Context, q orderQuerier, wsID, id int64) (*heldsway.PayoutRun, error) {
	r, err := scanRun(q.QueryRowContext(ctx, `SELECT `+runCols+` FROM payout_runs WHERE workspace_id = $1 AND id = $2`, wsID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, heldsway.NotFound("Payout run")
	} else if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, `SELECT currency, COUNT(*), CAST(SUM(amount) AS BIGINT) FROM payouts
		WHERE workspace_id = $1 AND run_id = $2 GROUP BY currency ORDER BY currency`, wsID, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	r.Totals = []heldsway.PayoutRunTotal{}
	for rows.Next() {
		var t heldsway.PayoutRunTotal
		if err := rows.Scan(&t.Currency, &t.Payouts, &t.Amount); err != nil {
			return nil, err
		}
		r.Totals = append(r.Totals, t)
	}
	return &r.PayoutRun, rows.Err()
}

// runSnapshot is a run as its audit entries and event show it.
type runSnapshot struct {
	ID             int64              `json:"id"`
	PeriodKey      string             `json:"period_key"`
	Status         string             `json:"status"`
	Currency       *string            `json:"currency"`
	PayoutsCreated int                `json:"payouts_created"`
	CarriedForward int                `json:"carried_forward"`
	Totals         []runTotalSnapshot `json:"totals,omitempty"`
	StartedAt      string             `json:"started_at"`
	CompletedAt    *string            `json:"completed_at"`
}

type runTotalSnapshot struct {
	Currency string      `json:"currency"`
	Payouts  int         `json:"payouts"`
	Amount   json.Number `json:"amount"`
}

func snapRun(r *heldsway.PayoutRun) *runSnapshot {
	out := &runSnapshot{ID: r.ID, PeriodKey: r.PeriodKey, Status: r.Status, Currency: snapNullStr(r.Currency),
		PayoutsCreated: r.PayoutsCreated, CarriedForward: r.CarriedForward,
		StartedAt: r.StartedAt.UTC().Format(affSnapTime), CompletedAt: snapTime(r.CompletedAt)}
	for _, t := range r.Totals {
		out.Totals = append(out.Totals, runTotalSnapshot{Currency: t.Currency, Payouts: t.Payouts,
			Amount: json.Number(money.Format(t.Amount, orderCurrencyOf(t.Currency)))})
	}
	return out
}

// PayoutSchedules lists the active workspaces whose payouts run on their own
// (frequency not manual), with their time zones, for the scheduler.
func (s *Store) PayoutSchedules(ctx context.Context) ([]heldsway.PayoutSchedule, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT w.id, ws.payout_frequency, ws.timezone, w.created_at FROM workspaces w
		JOIN workspace_settings ws ON ws.workspace_id = w.id
		WHERE w.active = $1 AND ws.payout_frequency <> 'manual' ORDER BY w.id`, true)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []heldsway.PayoutSchedule
	for rows.Next() {
		var p heldsway.PayoutSchedule
		var created int64
		if err := rows.Scan(&p.WorkspaceID, &p.Frequency, &p.Timezone, &created); err != nil {
			return nil, unavailable(err)
		}
		p.CreatedAt = fromTS(created)
		out = append(out, p)
	}
	return out, unavailable(rows.Err())
}
