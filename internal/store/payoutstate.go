package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

// Payout state changes (digest §7.3) and the payout of an approved request.
// Each is one transaction with its ledger entries, commission changes, audit
// entry and event, guarded by an UPDATE conditional on the statuses the
// transition leaves, so of two concurrent transitions exactly one wins and the
// other gets INVALID_STATUS_TRANSITION naming the status the winner left.
//
// Commissions and payouts: a live payout (pending, processing, completed)
// settles the commissions listed in payout_items, whose primary key is the
// commission, so a commission is in at most one live payout. complete marks
// them paid; fail moves its items to payout_items_released (the history),
// which frees the commissions (still approved) for a later payout, and returns
// the amount to the balance with a payout_returned entry.

const payoutCols = `p.id, p.workspace_id, p.affiliate_id, p.currency, p.amount, p.status, p.method, p.run_id, p.request_id,
	p.external_reference, p.failure_reason, p.processing_at, p.completed_at, p.failed_at, p.created_at, p.updated_at`

// scanPayout reads a row of payoutCols.
func scanPayout(sc scanner) (*heldsway.Payout, error) {
	var (
		p                        heldsway.Payout
		runID, reqID             sql.NullInt64
		ext, reason              sql.NullString
		processing, done, failed sql.NullInt64
		createdAtTS, updatedAtTS int64
	)
	if err := sc.Scan(&p.ID, &p.WorkspaceID, &p.AffiliateID, &p.Currency, &p.Amount, &p.Status, &p.Method, &runID, &reqID,
		&ext, &reason, &processing, &done, &failed, &createdAtTS, &updatedAtTS); err != nil {
		return nil, err
	}
	p.RunID, p.RequestID, p.ExternalReference, p.FailureReason = fromNullInt(runID), fromNullInt(reqID), ext.String, reason.String
	p.ProcessingAt, p.CompletedAt, p.FailedAt = fromNullTS(processing), fromNullTS(done), fromNullTS(failed)
	p.CreatedAt, p.UpdatedAt = fromTS(createdAtTS), fromTS(updatedAtTS)
	return &p, nil
}

// readPayout reads one payout of the workspace; ENOTFOUND otherwise. With
// commissions it also loads the commissions the payout settles (payout_items),
// oldest first, with their current status and net amount.
func readPayout(ctx context.Context, q orderQuerier, wsID, id int64, commissions bool) (*heldsway.Payout, error) {
	p, err := scanPayout(q.QueryRowContext(ctx, `SELECT `+payoutCols+` FROM payouts p WHERE p.workspace_id = $1 AND p.id = $2`, wsID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, heldsway.NotFound("Payout")
	}
	if err != nil || !commissions {
		return p, err
	}
	p.Commissions, err = readPayoutCommissions(ctx, q, wsID, id)
	return p, err
}

// readPayoutCommissions lists the commissions a payout settles (a failed
// payout: settled until it failed), by id.
func readPayoutCommissions(ctx context.Context, q orderQuerier, wsID, payoutID int64) ([]*heldsway.Commission, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+commissionCols+` FROM (
			SELECT commission_id FROM payout_items WHERE workspace_id = $1 AND payout_id = $2
			UNION ALL
			SELECT commission_id FROM payout_items_released WHERE workspace_id = $1 AND payout_id = $2) pi
		JOIN commissions c ON c.workspace_id = $1 AND c.id = pi.commission_id
		JOIN orders o ON o.workspace_id = c.workspace_id AND o.id = c.order_id
		ORDER BY c.id`, wsID, payoutID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*heldsway.Commission{}
	for rows.Next() {
		c, err := scanCommissionRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// payoutSnapshot is a payout as audit entries and events show it.
type payoutSnapshot struct {
	ID                int64       `json:"id"`
	AffiliateID       int64       `json:"affiliate_id"`
	Currency          string      `json:"currency"`
	Amount            json.Number `json:"amount"`
	Status            string      `json:"status"`
	Method            string      `json:"method"`
	RunID             *int64      `json:"run_id"`
	RequestID         *int64      `json:"request_id"`
	ExternalReference *string     `json:"external_reference"`
	FailureReason     *string     `json:"failure_reason"`
	ProcessingAt      *string     `json:"processing_at"`
	CompletedAt       *string     `json:"completed_at"`
	FailedAt          *string     `json:"failed_at"`
	CreatedAt         string      `json:"created_at"`
}

func snapPayout(p *heldsway.Payout) *payoutSnapshot {
	if p == nil {
		return nil
	}
	return &payoutSnapshot{ID: p.ID, AffiliateID: p.AffiliateID, Currency: p.Currency,
		Amount: json.Number(money.Format(p.Amount, orderCurrencyOf(p.Currency))), Status: p.Status, Method: p.Method,
		RunID: p.RunID, RequestID: p.RequestID, ExternalReference: snapNullStr(p.ExternalReference),
		FailureReason: snapNullStr(p.FailureReason), ProcessingAt: snapTime(p.ProcessingAt), CompletedAt: snapTime(p.CompletedAt),
		FailedAt: snapTime(p.FailedAt), CreatedAt: p.CreatedAt.UTC().Format(affSnapTime)}
}

// transitionPayout moves payout id out of one of action's statuses, setting
// extra columns (set, with args numbered from $5), in tx. It returns the
// payout before and after. Errors: ENOTFOUND; ETRANSITION naming the status
// found (also the status a concurrent winner left).
func (s *Store) transitionPayout(ctx context.Context, tx *sql.Tx, wsID, id int64, action string, before *heldsway.Payout,
	set string, args ...any) (*heldsway.Payout, error) {
	tr := heldsway.PayoutTransitions[action]
	if !slices.Contains(tr.From, before.Status) {
		return nil, heldsway.PayoutTransitionError(action, before.Status)
	}
	q := `UPDATE payouts SET status = $1, updated_at = $2` + set + ` WHERE workspace_id = $3 AND id = $4 AND status IN (` +
		`'` + strings.Join(tr.From, `', '`) + `')`
	res, err := tx.ExecContext(ctx, q, append([]any{tr.To, ts(s.Now()), wsID, id}, args...)...)
	if err != nil {
		return nil, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, err
	} else if n == 0 {
		cur, err := readPayout(ctx, tx, wsID, id, false)
		if err != nil {
			return nil, err
		}
		return nil, heldsway.PayoutTransitionError(action, cur.Status)
	}
	return readPayout(ctx, tx, wsID, id, false)
}

// MarkPayoutProcessing moves a pending payout to processing (processing_at),
// with an audit entry (payout.processing). Errors: ENOTFOUND; ETRANSITION.
func (s *Store) MarkPayoutProcessing(ctx context.Context, wsID, id int64) (*heldsway.Payout, error) {
	var out *heldsway.Payout
	err := s.tx(ctx, func(tx *sql.Tx) error {
		before, err := readPayout(ctx, tx, wsID, id, false)
		if err != nil {
			return err
		}
		after, err := s.transitionPayout(ctx, tx, wsID, id, heldsway.PayoutActionProcessing, before,
			`, processing_at = $5`, ts(s.Now()))
		if err != nil {
			return err
		}
		out = after
		return s.record(ctx, tx, wsID, "payout.processing", "payout", id, snapPayout(before), snapPayout(after), "")
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CompletePayout moves a pending or processing payout to completed
// (completed_at; external_reference when ref is not empty, ≤ 255 characters)
// and marks the commissions it settles paid. Audit payout.complete, event
// payout.sent. The amount moves from in flight to paid; the ledger does not
// change (the payout entry was written when the payout was created). Errors:
// EVALIDATION; ENOTFOUND; ETRANSITION.
func (s *Store) CompletePayout(ctx context.Context, wsID, id int64, externalRef string) (*heldsway.Payout, error) {
	externalRef = strings.TrimSpace(externalRef)
	if utf8.RuneCountInString(externalRef) > heldsway.MaxExternalReference || !utf8.ValidString(externalRef) {
		return nil, heldsway.Invalid("external_reference",
			fmt.Sprintf("The external reference field must not be greater than %d characters.", heldsway.MaxExternalReference))
	}
	var out *heldsway.Payout
	err := s.tx(ctx, func(tx *sql.Tx) error {
		before, err := readPayout(ctx, tx, wsID, id, false)
		if err != nil {
			return err
		}
		now := ts(s.Now())
		after, err := s.transitionPayout(ctx, tx, wsID, id, heldsway.PayoutActionComplete, before,
			`, completed_at = $5, external_reference = COALESCE($6, external_reference)`, now, nullStr(externalRef))
		if err != nil {
			return err
		}
		// The commissions move from approved to paid in the rollups of their
		// orders' days.
		r := s.newRollup(ctx, tx, nil)
		if err := payoutRollup(ctx, tx, r, wsID, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE commissions SET status = 'paid', updated_at = $1
			WHERE workspace_id = $2 AND status = 'approved'
			AND id IN (SELECT commission_id FROM payout_items WHERE payout_id = $3)`, now, wsID, id); err != nil {
			return err
		}
		if err := r.flush(); err != nil {
			return err
		}
		out = after
		return s.record(ctx, tx, wsID, "payout.complete", "payout", id, snapPayout(before), snapPayout(after), "payout.sent")
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// payoutRollup adds to r the commissions that completing payout id marks
// paid (the same selection as its UPDATE), before the UPDATE.
func payoutRollup(ctx context.Context, tx *sql.Tx, r *rollup, wsID, id int64) error {
	rows, err := tx.QueryContext(ctx, `SELECT o.id, o.converted_at, o.program_id, o.affiliate_id, o.link_id, o.currency,
		o.status, c.amount - c.reversed_amount
		FROM commissions c JOIN orders o ON o.workspace_id = c.workspace_id AND o.id = c.order_id
		WHERE c.workspace_id = $1 AND c.status = 'approved'
		AND c.id IN (SELECT commission_id FROM payout_items WHERE payout_id = $2)`, wsID, id)
	if err != nil {
		return err
	}
	type line struct {
		k      orderKey
		status string
		net    int64
	}
	var lines []line
	for rows.Next() {
		var (
			l               line
			at              int64
			prog, aff, link sql.NullInt64
		)
		if err := rows.Scan(&l.k.id, &at, &prog, &aff, &link, &l.k.cur, &l.status, &l.net); err != nil {
			rows.Close()
			return err
		}
		l.k.ws, l.k.convertedAt, l.k.prog, l.k.aff, l.k.link = wsID, fromTS(at), prog.Int64, aff.Int64, link.Int64
		lines = append(lines, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, l := range lines {
		if err := r.commissionStatus(l.k, l.status, l.net, heldsway.CommissionApproved, heldsway.CommissionPaid); err != nil {
			return err
		}
	}
	return nil
}

// FailPayout moves a pending or processing payout to failed (failed_at;
// failure_reason when reason is not empty, ≤ 1000 characters), returns its
// amount to the affiliate's available balance (ledger payout_returned) and
// releases its commissions (its items move to payout_items_released; they
// stay approved, or reversed, and go into a later payout). Audit payout.fail, event payout.failed.
// Errors: EVALIDATION; ENOTFOUND; ETRANSITION.
func (s *Store) FailPayout(ctx context.Context, wsID, id int64, reason string) (*heldsway.Payout, error) {
	reason = strings.TrimSpace(reason)
	if utf8.RuneCountInString(reason) > heldsway.MaxFailureReason || !utf8.ValidString(reason) {
		return nil, heldsway.Invalid("reason", fmt.Sprintf("The reason field must not be greater than %d characters.", heldsway.MaxFailureReason))
	}
	var out *heldsway.Payout
	err := s.tx(ctx, func(tx *sql.Tx) error {
		before, err := readPayout(ctx, tx, wsID, id, false)
		if err != nil {
			return err
		}
		// The returned amount changes the balance a run or request reads.
		if err := s.lockAffiliates(ctx, tx, wsID, []int64{before.AffiliateID}, lockExclusive); err != nil {
			return err
		}
		now := s.Now()
		after, err := s.transitionPayout(ctx, tx, wsID, id, heldsway.PayoutActionFail, before,
			`, failed_at = $5, failure_reason = COALESCE($6, failure_reason)`, ts(now), nullStr(reason))
		if err != nil {
			return err
		}
		pid := id
		if err := appendLedger(ctx, tx, &heldsway.LedgerEntry{WorkspaceID: wsID, AffiliateID: after.AffiliateID,
			Currency: after.Currency, Kind: heldsway.LedgerPayoutReturned, Amount: after.Amount, PayoutID: &pid,
			Reason: reason, CreatedAt: now}); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO payout_items_released (payout_id, commission_id, workspace_id, amount,
			released_at) SELECT payout_id, commission_id, workspace_id, amount, $1 FROM payout_items WHERE payout_id = $2`,
			ts(now), id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM payout_items WHERE payout_id = $1`, id); err != nil {
			return err
		}
		out = after
		return s.record(ctx, tx, wsID, "payout.fail", "payout", id, snapPayout(before), snapPayout(after), "payout.failed")
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// insertPayout inserts a pending payout and its ledger entry (payout, −amount).
func insertPayout(ctx context.Context, tx *sql.Tx, p *heldsway.Payout) error {
	if p.Method == "" {
		p.Method = "manual"
	}
	p.Status, p.UpdatedAt = heldsway.PayoutPending, p.CreatedAt
	if err := tx.QueryRowContext(ctx, `INSERT INTO payouts (workspace_id, affiliate_id, currency, amount, status, method,
		run_id, request_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id`,
		p.WorkspaceID, p.AffiliateID, p.Currency, p.Amount, p.Status, p.Method, nullInt(p.RunID), nullInt(p.RequestID),
		ts(p.CreatedAt)).Scan(&p.ID); err != nil {
		return err
	}
	pid := p.ID
	return appendLedger(ctx, tx, &heldsway.LedgerEntry{WorkspaceID: p.WorkspaceID, AffiliateID: p.AffiliateID,
		Currency: p.Currency, Kind: heldsway.LedgerPayout, Amount: -p.Amount, PayoutID: &pid, CreatedAt: p.CreatedAt})
}

// CreatePayoutForRequest approves a pending payout request and creates its
// payout, in one transaction: the request becomes approved (decided_at,
// payout_id); the payout is pending, of exactly the requested amount, with a
// payout ledger entry (−amount). The amount must not exceed the affiliate's
// available balance in the request's currency at approval time (409 CONFLICT
// otherwise, with the available amount in details), and the affiliate must
// be active (a suspended or terminated affiliate's balance is on hold).
//
// The payout settles the affiliate's approved commissions not yet in a
// payout, oldest first (created_at, id), as long as they are fully covered by
// the amount: a commission is never split, so the commissions listed may sum
// to less than the amount (the rest of the amount is balance from
// adjustments or commissions left for a later payout, which the ledger
// explains). Audit payout.create and payout_request.approve; events
// payout.scheduled and payout_request.approved. Errors: ENOTFOUND (request);
// ETRANSITION (request not pending); ECONFLICT.
func (s *Store) CreatePayoutForRequest(ctx context.Context, wsID, requestID int64) (*heldsway.Payout, error) {
	var out *heldsway.Payout
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var (
			affID         int64
			cur, status   string
			amount        int64
			createdAtTS   int64
			decided, pay  sql.NullInt64
			note, reasonS sql.NullString
		)
		err := tx.QueryRowContext(ctx, `SELECT affiliate_id, currency, amount, status, note, reason, payout_id, decided_at, created_at
			FROM payout_requests WHERE workspace_id = $1 AND id = $2`, wsID, requestID).
			Scan(&affID, &cur, &amount, &status, &note, &reasonS, &pay, &decided, &createdAtTS)
		if errors.Is(err, sql.ErrNoRows) {
			return heldsway.NotFound("Payout request")
		} else if err != nil {
			return err
		}
		if status != heldsway.PayoutRequestPending {
			return requestTransitionError(status)
		}
		if err := s.lockAffiliates(ctx, tx, wsID, []int64{affID}, lockExclusive); err != nil {
			return err
		}
		var affStatus string
		if err := tx.QueryRowContext(ctx, `SELECT status FROM affiliates WHERE workspace_id = $1 AND id = $2`, wsID, affID).
			Scan(&affStatus); err != nil {
			return err
		}
		if affStatus != heldsway.AffiliateActive {
			return heldsway.Errorf(heldsway.ECONFLICT, "The affiliate is %s: its balance is on hold until it is active.", affStatus)
		}
		available, err := availableBalance(ctx, tx, wsID, affID, cur)
		if err != nil {
			return err
		}
		c := orderCurrencyOf(cur)
		if amount <= 0 || amount > available {
			return &heldsway.Error{Code: heldsway.ECONFLICT,
				Message: fmt.Sprintf("The requested amount %s %s exceeds the available balance of %s %s.",
					money.Format(amount, c), c.Code, money.Format(available, c), c.Code),
				Details: map[string]any{"available": json.Number(money.Format(available, c)), "currency": c.Code}}
		}
		now := s.Now()
		rid := requestID
		p := &heldsway.Payout{WorkspaceID: wsID, AffiliateID: affID, Currency: cur, Amount: amount, RequestID: &rid, CreatedAt: now}
		if err := insertPayout(ctx, tx, p); err != nil {
			return err
		}
		// The commissions fully covered, oldest first: a running sum over
		// non-negative nets is a prefix.
		if _, err := tx.ExecContext(ctx, `INSERT INTO payout_items (payout_id, commission_id, workspace_id, amount)
			SELECT $1, x.id, x.workspace_id, x.net FROM (
				SELECT c.id, c.workspace_id, c.amount - c.reversed_amount AS net,
					SUM(c.amount - c.reversed_amount) OVER (ORDER BY c.created_at, c.id) AS running
				FROM commissions c
				WHERE c.workspace_id = $2 AND c.affiliate_id = $3 AND c.status = 'approved' AND c.currency = $4
					AND NOT EXISTS (SELECT 1 FROM payout_items pi WHERE pi.commission_id = c.id)) x
			WHERE x.running <= $5`, p.ID, wsID, affID, cur, amount); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE payout_requests SET status = 'approved', payout_id = $1, decided_at = $2,
			updated_at = $2 WHERE workspace_id = $3 AND id = $4 AND status = 'pending'`, p.ID, ts(now), wsID, requestID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			var left string
			if err := tx.QueryRowContext(ctx, `SELECT status FROM payout_requests WHERE workspace_id = $1 AND id = $2`,
				wsID, requestID).Scan(&left); err != nil {
				return err
			}
			return requestTransitionError(left)
		}
		if err := s.record(ctx, tx, wsID, "payout.create", "payout", p.ID, nil, snapPayout(p), "payout.scheduled"); err != nil {
			return err
		}
		reqBefore := requestSnapshot{ID: requestID, AffiliateID: affID, Currency: cur,
			Amount: json.Number(money.Format(amount, c)), Status: status, PayoutID: nil,
			Note: snapNullStr(note.String), CreatedAt: fromTS(createdAtTS).Format(affSnapTime)}
		reqAfter := reqBefore
		reqAfter.Status, reqAfter.PayoutID, reqAfter.DecidedAt = heldsway.PayoutRequestApproved, &p.ID, snapTime(&now)
		if err := s.record(ctx, tx, wsID, "payout_request.approve", "payout_request", requestID, reqBefore, reqAfter,
			"payout_request.approved"); err != nil {
			return err
		}
		out = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// requestSnapshot is a payout request as the approval's audit entry and event
// show it.
type requestSnapshot struct {
	ID          int64       `json:"id"`
	AffiliateID int64       `json:"affiliate_id"`
	Currency    string      `json:"currency"`
	Amount      json.Number `json:"amount"`
	Status      string      `json:"status"`
	PayoutID    *int64      `json:"payout_id"`
	Note        *string     `json:"note"`
	DecidedAt   *string     `json:"decided_at"`
	CreatedAt   string      `json:"created_at"`
}

func requestTransitionError(from string) error {
	return &heldsway.Error{Code: heldsway.ETRANSITION,
		Message: fmt.Sprintf("Cannot approve a payout request whose status is %s: only pending requests can be approved.", from),
		Details: map[string]any{"from": from, "to": heldsway.PayoutRequestApproved}}
}
