package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

// The ledger: an append-only record per affiliate and currency of every
// movement of the balance (migration 00020). Balances are sums of it, never a
// counter, so every figure can be explained entry by entry:
//
//	commission_approved  + the commission's net amount when it is approved
//	commission_reversed  − a refund's reversal of an approved or paid commission
//	adjustment           ± a manual correction with a reason
//	payout               − the amount moved into a payout (run or request)
//	payout_returned      + a failed payout's amount, back to available
//
// Each entry is written in the transaction of the change that causes it. A
// pending commission is not in the ledger (it was never available), so a
// reversal of a pending commission writes nothing; a reversal after payout
// leaves a negative balance that the next payout nets off.
//
// Concurrency. Whatever creates a payout (a run, a request's approval) or
// returns one (fail) takes the affected affiliates' rows FOR NO KEY UPDATE on
// PostgreSQL, in id order, so two of them never read the same balance: the
// second waits, and under READ COMMITTED its next statement sees the first's
// entries. Approvals and refunds take the rows FOR SHARE (which conflicts with
// that lock but not with other approvals), so a run never sees a commission's
// status change without its ledger entry or the other way round. NO KEY
// UPDATE does not conflict with the KEY SHARE locks of foreign-key checks, so
// conversions of those affiliates never wait for a run. SQLite runs one
// writer at a time (BEGIN IMMEDIATE), which already serialises all of this.

const (
	lockShare     = "FOR SHARE"
	lockExclusive = "FOR NO KEY UPDATE"
)

// lockAffiliates takes row locks on the given affiliates of the workspace in
// id order (PostgreSQL; a no-op on SQLite, see above).
func (s *Store) lockAffiliates(ctx context.Context, tx *sql.Tx, wsID int64, ids []int64, mode string) error {
	if !s.Dialect.IsPostgres() || len(ids) == 0 {
		return nil
	}
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	rows, err := tx.QueryContext(ctx, `SELECT id FROM affiliates WHERE workspace_id = $1 AND id = ANY($2)
		ORDER BY id `+mode, wsID, ids)
	if err != nil {
		return err
	}
	return closeRows(rows)
}

func closeRows(rows *sql.Rows) error {
	for rows.Next() {
	}
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}

// appendLedger inserts one entry and sets its id.
func appendLedger(ctx context.Context, tx *sql.Tx, e *heldsway.LedgerEntry) error {
	return tx.QueryRowContext(ctx, `INSERT INTO ledger_entries (workspace_id, affiliate_id, currency, kind, amount,
		commission_id, payout_id, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
		e.WorkspaceID, e.AffiliateID, e.Currency, e.Kind, e.Amount, nullInt(e.CommissionID), nullInt(e.PayoutID),
		nullStr(e.Reason), ts(e.CreatedAt)).Scan(&e.ID)
}

// commissionLedgerEntries appends the entries of the commissions whose status
// or reversal changed between before and after in one review or refund:
// + net for a commission that became approved (a partial reversal while it was
// pending is already out of its net), − the new reversal for one that was
// approved or paid. Zero amounts write nothing.
func (s *Store) commissionLedgerEntries(ctx context.Context, tx *sql.Tx, wsID int64, before, after []*heldsway.Commission) error {
	prev := make(map[int64]*heldsway.Commission, len(before))
	for _, c := range before {
		prev[c.ID] = c
	}
	now := s.Now()
	for _, c := range after {
		b := prev[c.ID]
		if b == nil {
			continue
		}
		id := c.ID
		e := &heldsway.LedgerEntry{WorkspaceID: wsID, AffiliateID: c.AffiliateID, Currency: c.Currency, CommissionID: &id, CreatedAt: now}
		switch {
		case b.Status == heldsway.CommissionPending && c.Status == heldsway.CommissionApproved:
			e.Kind, e.Amount = heldsway.LedgerCommissionApproved, c.Net()
		case (b.Status == heldsway.CommissionApproved || b.Status == heldsway.CommissionPaid) && c.ReversedAmount > b.ReversedAmount:
			e.Kind, e.Amount = heldsway.LedgerCommissionReversed, -(c.ReversedAmount - b.ReversedAmount)
		default:
			continue
		}
		if e.Amount == 0 {
			continue
		}
		if err := appendLedger(ctx, tx, e); err != nil {
			return err
		}
	}
	return nil
}

// lockCommissionAffiliates takes FOR SHARE locks on the beneficiaries of an
// order's commissions before a review or refund changes them (see above).
func (s *Store) lockCommissionAffiliates(ctx context.Context, tx *sql.Tx, wsID int64, cs []*heldsway.Commission) error {
	if !s.Dialect.IsPostgres() || len(cs) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(cs))
	for _, c := range cs {
		ids = append(ids, c.AffiliateID)
	}
	return s.lockAffiliates(ctx, tx, wsID, ids, lockShare)
}

const ledgerCols = `l.id, l.workspace_id, l.affiliate_id, l.currency, l.kind, l.amount, l.commission_id, l.payout_id, l.reason, l.created_at`

func scanLedgerRow(sc scanner) (*heldsway.LedgerEntry, error) {
	var (
		e           heldsway.LedgerEntry
		comm, pay   sql.NullInt64
		reason      sql.NullString
		createdAtTS int64
	)
	if err := sc.Scan(&e.ID, &e.WorkspaceID, &e.AffiliateID, &e.Currency, &e.Kind, &e.Amount, &comm, &pay, &reason, &createdAtTS); err != nil {
		return nil, err
	}
	e.CommissionID, e.PayoutID, e.Reason, e.CreatedAt = fromNullInt(comm), fromNullInt(pay), reason.String, fromTS(createdAtTS)
	return &e, nil
}

// affiliateExists returns ENOTFOUND unless the affiliate is the workspace's.
func affiliateExists(ctx context.Context, q rowQuerier, wsID, affID int64) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM affiliates WHERE workspace_id = $1 AND id = $2`, wsID, affID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return heldsway.NotFound("Affiliate")
	}
	return err
}

// ledgerSnapshot is an entry as audit entries and events show it, in the
// shape of the API's ledger entry.
type ledgerSnapshot struct {
	ID           int64       `json:"id"`
	AffiliateID  int64       `json:"affiliate_id"`
	Currency     string      `json:"currency"`
	Kind         string      `json:"kind"`
	Amount       json.Number `json:"amount"`
	CommissionID *int64      `json:"commission_id"`
	PayoutID     *int64      `json:"payout_id"`
	Reason       *string     `json:"reason"`
	CreatedAt    string      `json:"created_at"`
}

func snapLedger(e *heldsway.LedgerEntry) *ledgerSnapshot {
	return &ledgerSnapshot{ID: e.ID, AffiliateID: e.AffiliateID, Currency: e.Currency, Kind: e.Kind,
		Amount: json.Number(money.Format(e.Amount, orderCurrencyOf(e.Currency))), CommissionID: e.CommissionID,
		PayoutID: e.PayoutID, Reason: snapNullStr(e.Reason), CreatedAt: e.CreatedAt.UTC().Format(affSnapTime)}
}

// CreateAdjustment appends a manual adjustment to an affiliate's balance, with
// its audit entry (ledger.adjust) and event (balance.adjusted) in the same
// transaction. A debit may take the balance below zero: the next payouts net
// it off. Errors: EVALIDATION (before anything is written); ENOTFOUND for
// another workspace's or an unknown affiliate.
func (s *Store) CreateAdjustment(ctx context.Context, wsID, affID int64, in heldsway.AdjustmentInput) (*heldsway.LedgerEntry, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	e := &heldsway.LedgerEntry{WorkspaceID: wsID, AffiliateID: affID, Currency: in.Currency, Kind: heldsway.LedgerAdjustment,
		Amount: in.Amount, Reason: in.Reason, CreatedAt: s.Now()}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := affiliateExists(ctx, tx, wsID, affID); err != nil {
			return err
		}
		if err := appendLedger(ctx, tx, e); err != nil {
			return err
		}
		return s.record(ctx, tx, wsID, "ledger.adjust", "ledger_entry", e.ID, nil, snapLedger(e), "balance.adjusted")
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Balances returns an affiliate's position per currency, by currency code:
// available = the sum of its ledger entries (may be negative after a
// reversal of paid commission); pending = its commissions not yet approved,
// net of reversals; in flight = its pending and processing payouts; paid = its
// completed payouts. A currency appears once any of them is not zero or an
// entry or payout exists in it. Errors: ENOTFOUND.
func (s *Store) Balances(ctx context.Context, wsID, affID int64) ([]heldsway.Balance, error) {
	out, err := s.balances(ctx, s.r, wsID, affID)
	return out, unavailable(err)
}

func (s *Store) balances(ctx context.Context, q orderQuerier, wsID, affID int64) ([]heldsway.Balance, error) {
	if err := affiliateExists(ctx, q, wsID, affID); err != nil {
		return nil, err
	}
	// SUM of a BIGINT is NUMERIC on PostgreSQL: cast back so both engines scan an int64.
	rows, err := q.QueryContext(ctx, `
		SELECT currency, 'a', CAST(SUM(amount) AS BIGINT) FROM ledger_entries
			WHERE workspace_id = $1 AND affiliate_id = $2 GROUP BY currency
		UNION ALL
		SELECT currency, 'p', CAST(SUM(amount - reversed_amount) AS BIGINT) FROM commissions
			WHERE workspace_id = $1 AND affiliate_id = $2 AND status = 'pending' GROUP BY currency
		UNION ALL
		SELECT currency, CASE WHEN status = 'completed' THEN 'd' ELSE 'f' END, CAST(SUM(amount) AS BIGINT) FROM payouts
			WHERE workspace_id = $1 AND affiliate_id = $2 AND status IN ('pending', 'processing', 'completed')
			GROUP BY currency, CASE WHEN status = 'completed' THEN 'd' ELSE 'f' END`, wsID, affID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	by := map[string]*heldsway.Balance{}
	for rows.Next() {
		var (
			cur, what string
			sum       int64
		)
		if err := rows.Scan(&cur, &what, &sum); err != nil {
			return nil, err
		}
		b := by[cur]
		if b == nil {
			b = &heldsway.Balance{Currency: cur}
			by[cur] = b
		}
		switch what {
		case "a":
			b.Available = sum
		case "p":
			b.Pending = sum
		case "d":
			b.Paid = sum
		case "f":
			b.InFlight = sum
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]heldsway.Balance, 0, len(by))
	for _, b := range by {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b heldsway.Balance) int { return strings.Compare(a.Currency, b.Currency) })
	return out, nil
}

// availableBalance is the sum of an affiliate's ledger entries in cur.
func availableBalance(ctx context.Context, q rowQuerier, wsID, affID int64, cur string) (int64, error) {
	var sum int64
	err := q.QueryRowContext(ctx, `SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger_entries
		WHERE workspace_id = $1 AND affiliate_id = $2 AND currency = $3`, wsID, affID, cur).Scan(&sum)
	return sum, err
}

// ListLedger pages an affiliate's ledger entries, newest first by default
// (the only sort is id, which follows the order entries were appended).
// Filters: currency, kind. Errors: ENOTFOUND for the affiliate; EVALIDATION
// for a bad cursor, an unknown kind or sort.
func (s *Store) ListLedger(ctx context.Context, wsID, affID int64, f heldsway.LedgerFilter, o heldsway.ListOptions) (heldsway.PageResult[*heldsway.LedgerEntry], error) {
	var res heldsway.PageResult[*heldsway.LedgerEntry]
	if f.Kind != "" && !slices.Contains(heldsway.LedgerKinds, f.Kind) {
		return res, heldsway.Invalid("kind", "The selected kind is invalid.")
	}
	if o.Sort == "" {
		o.Sort = "id"
	}
	if o.Sort != "id" {
		return res, heldsway.Invalid("sort", "The selected sort is invalid.")
	}
	if err := affiliateExists(ctx, s.r, wsID, affID); err != nil {
		return res, unavailable(err)
	}
	where, args := " WHERE l.workspace_id = $1 AND l.affiliate_id = $2", []any{wsID, affID}
	if f.Currency != "" {
		args = append(args, strings.ToUpper(f.Currency))
		where += fmt.Sprintf(" AND l.currency = $%d", len(args))
	}
	if f.Kind != "" {
		args = append(args, f.Kind)
		where += fmt.Sprintf(" AND l.kind = $%d", len(args))
	}
	tail, args, err := keyset(sortCol{expr: "l.id", isInt: true}, "l.id", o, where, args)
	if err != nil {
		return res, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+ledgerCols+` FROM ledger_entries l`+tail, args...)
	if err != nil {
		return res, unavailable(err)
	}
	defer rows.Close()
	var items []*heldsway.LedgerEntry
	for rows.Next() {
		e, err := scanLedgerRow(rows)
		if err != nil {
			return res, unavailable(err)
		}
		items = append(items, e)
	}
	if err := rows.Err(); err != nil {
		return res, unavailable(err)
	}
	return pageOf(items, o, func(e *heldsway.LedgerEntry) (*string, int64) { return intStr(e.ID), e.ID }), nil
}
