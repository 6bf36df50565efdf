package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

// Payout requests (digest §7.4): an affiliate asks to be paid early; the
// business approves (CreatePayoutForRequest, payoutstate.go, creates the
// payout) or rejects. A request moves no money: the balance is only debited
// when the payout is created. Requests awaiting a decision are nonetheless
// counted against what the affiliate can request, so two requests never ask
// for the same balance twice.

const payoutRequestCols = `r.id, r.workspace_id, r.affiliate_id, r.currency, r.amount, r.status, r.payout_id, r.note, r.reason,
	r.created_at, r.decided_at, r.updated_at, a.name, a.email`

const payoutRequestFrom = ` FROM payout_requests r JOIN affiliates a ON a.workspace_id = r.workspace_id AND a.id = r.affiliate_id`

func scanPayoutRequest(sc scanner) (*heldsway.PayoutRequest, error) {
	var (
		r                heldsway.PayoutRequest
		payout, decided  sql.NullInt64
		note, reason     sql.NullString
		created, updated int64
		name, email      string
	)
	if err := sc.Scan(&r.ID, &r.WorkspaceID, &r.AffiliateID, &r.Currency, &r.Amount, &r.Status, &payout, &note, &reason,
		&created, &decided, &updated, &name, &email); err != nil {
		return nil, err
	}
	r.PayoutID, r.Note, r.Reason, r.DecidedAt = fromNullInt(payout), note.String, reason.String, fromNullTS(decided)
	r.CreatedAt, r.UpdatedAt = fromTS(created), fromTS(updated)
	r.Affiliate = &heldsway.PayoutAffiliate{ID: r.AffiliateID, Name: name, Email: email}
	return &r, nil
}

func readPayoutRequest(ctx context.Context, q orderQuerier, wsID, id int64) (*heldsway.PayoutRequest, error) {
	r, err := scanPayoutRequest(q.QueryRowContext(ctx, `SELECT `+payoutRequestCols+payoutRequestFrom+
		` WHERE r.workspace_id = $1 AND r.id = $2`, wsID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, heldsway.NotFound("Payout request")
	}
	return r, err
}

// requestSnap is a payout request as its audit entries and events show it:
// the approval's requestSnapshot plus the rejection reason.
type requestSnap struct {
	requestSnapshot
	Reason *string `json:"reason"`
}

func snapRequest(r *heldsway.PayoutRequest) requestSnap {
	return requestSnap{requestSnapshot: requestSnapshot{ID: r.ID, AffiliateID: r.AffiliateID, Currency: r.Currency,
		Amount: json.Number(money.Format(r.Amount, orderCurrencyOf(r.Currency))), Status: r.Status, PayoutID: r.PayoutID,
		Note: snapNullStr(r.Note), DecidedAt: snapTime(r.DecidedAt), CreatedAt: r.CreatedAt.UTC().Format(affSnapTime)},
		Reason: snapNullStr(r.Reason)}
}

// FindPayoutRequest returns one payout request of the workspace with its
// affiliate. Errors: ENOTFOUND.
func (s *Store) FindPayoutRequest(ctx context.Context, wsID, id int64) (*heldsway.PayoutRequest, error) {
	r, err := readPayoutRequest(ctx, s.r, wsID, id)
	return r, unavailable(err)
}

// CreatePayoutRequest records an affiliate's request for an early payout,
// with its audit entry (payout_request.create) and event
// (payout_request.created) in the same transaction. Checked in this order:
// the input (EVALIDATION, before anything is read); the affiliate (ENOTFOUND
// for another workspace's or an unknown one); the workspace's payout settings
// must allow early requests (ECONFLICT); the affiliate must be active
// (ECONFLICT: a suspended or terminated affiliate's balance is on hold); the
// amount must not exceed the available balance in the currency less the
// affiliate's requests still pending in it (ECONFLICT with details available,
// requested, requestable and currency).
//
// The affiliate's row is locked as a payout's creation locks it (ledger.go),
// so two concurrent requests never both count the same balance.
func (s *Store) CreatePayoutRequest(ctx context.Context, wsID, affID int64, in heldsway.PayoutRequestInput) (*heldsway.PayoutRequest, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	var out *heldsway.PayoutRequest
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.lockAffiliates(ctx, tx, wsID, []int64{affID}, lockExclusive); err != nil {
			return err
		}
		var affStatus string
		err := tx.QueryRowContext(ctx, `SELECT status FROM affiliates WHERE workspace_id = $1 AND id = $2`, wsID, affID).Scan(&affStatus)
		if errors.Is(err, sql.ErrNoRows) {
			return heldsway.NotFound("Affiliate")
		} else if err != nil {
			return err
		}
		ps, err := readPayoutSettings(ctx, tx, wsID)
		if err != nil {
			return err
		}
		if !ps.AllowEarlyRequests {
			return &heldsway.Error{Code: heldsway.ECONFLICT,
				Message: "Early payout requests are not enabled: the payout settings' allow_early_requests is false.",
				Details: map[string]any{"allow_early_requests": false}}
		}
		if affStatus != heldsway.AffiliateActive {
			return heldsway.Errorf(heldsway.ECONFLICT, "The affiliate is %s: only active affiliates can request a payout.", affStatus)
		}
		available, err := availableBalance(ctx, tx, wsID, affID, in.Currency)
		if err != nil {
			return err
		}
		var requested int64
		if err := tx.QueryRowContext(ctx, `SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM payout_requests
			WHERE workspace_id = $1 AND affiliate_id = $2 AND currency = $3 AND status = 'pending'`,
			wsID, affID, in.Currency).Scan(&requested); err != nil {
			return err
		}
		c := orderCurrencyOf(in.Currency)
		if requestable := available - requested; in.Amount > requestable {
			return &heldsway.Error{Code: heldsway.ECONFLICT,
				Message: fmt.Sprintf("The requested amount %s %s exceeds what can be requested: %s %s available, %s %s already requested.",
					money.Format(in.Amount, c), c.Code, money.Format(available, c), c.Code, money.Format(requested, c), c.Code),
				Details: map[string]any{"amount": []string{"The amount field must not be greater than the requestable balance."},
					"available": json.Number(money.Format(available, c)), "requested": json.Number(money.Format(requested, c)),
					"requestable": json.Number(money.Format(max(requestable, 0), c)), "currency": c.Code}}
		}
		now := s.Now()
		r := &heldsway.PayoutRequest{WorkspaceID: wsID, AffiliateID: affID, Currency: in.Currency, Amount: in.Amount,
			Status: heldsway.PayoutRequestPending, Note: in.Note, CreatedAt: now, UpdatedAt: now}
		if err := tx.QueryRowContext(ctx, `INSERT INTO payout_requests (workspace_id, affiliate_id, currency, amount, status,
			note, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id`,
			wsID, affID, r.Currency, r.Amount, r.Status, nullStr(r.Note), ts(now)).Scan(&r.ID); err != nil {
			return err
		}
		if err := s.record(ctx, tx, wsID, "payout_request.create", "payout_request", r.ID, nil, snapRequest(r),
			"payout_request.created"); err != nil {
			return err
		}
		out, err = readPayoutRequest(ctx, tx, wsID, r.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RejectPayoutRequest rejects a pending request (decided_at; reason when not
// empty, ≤ 1000 characters), with its audit entry (payout_request.reject) and
// event (payout_request.rejected). The UPDATE is conditional on pending, so of
// a rejection and an approval racing, exactly one wins. Errors: EVALIDATION;
// ENOTFOUND; ETRANSITION naming the status found.
func (s *Store) RejectPayoutRequest(ctx context.Context, wsID, id int64, reason string) (*heldsway.PayoutRequest, error) {
	reason = strings.TrimSpace(reason)
	if !utf8.ValidString(reason) || utf8.RuneCountInString(reason) > heldsway.MaxPayoutRequestReason {
		return nil, heldsway.Invalid("reason", fmt.Sprintf("The reason field must not be greater than %d characters.",
			heldsway.MaxPayoutRequestReason))
	}
	var out *heldsway.PayoutRequest
	err := s.tx(ctx, func(tx *sql.Tx) error {
		before, err := readPayoutRequest(ctx, tx, wsID, id)
		if err != nil {
			return err
		}
		if before.Status != heldsway.PayoutRequestPending {
			return rejectTransitionError(before.Status)
		}
		now := ts(s.Now())
		res, err := tx.ExecContext(ctx, `UPDATE payout_requests SET status = 'rejected', reason = $1, decided_at = $2,
			updated_at = $2 WHERE workspace_id = $3 AND id = $4 AND status = 'pending'`, nullStr(reason), now, wsID, id)
		if err != nil {
			return err
		}
		after, err := readPayoutRequest(ctx, tx, wsID, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return rejectTransitionError(after.Status)
		}
		out = after
		return s.record(ctx, tx, wsID, "payout_request.reject", "payout_request", id, snapRequest(before), snapRequest(after),
			"payout_request.rejected")
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func rejectTransitionError(from string) error {
	return &heldsway.Error{Code: heldsway.ETRANSITION,
		Message: fmt.Sprintf("Cannot reject a payout request whose status is %s: only pending requests can be rejected.", from),
		Details: map[string]any{"from": from, "to": heldsway.PayoutRequestRejected}}
}

// ListPayoutRequests pages a workspace's payout requests with their
// affiliates, by created_at then id. Filters status and affiliate (one of
// the workspace's, EVALIDATION otherwise). Errors: EVALIDATION for an unknown
// status or sort, or a bad cursor.
func (s *Store) ListPayoutRequests(ctx context.Context, wsID int64, f heldsway.PayoutRequestFilter, o heldsway.ListOptions) (heldsway.PageResult[*heldsway.PayoutRequest], error) {
	res, err := s.listPayoutRequests(ctx, wsID, f, o)
	return res, unavailable(err)
}

func (s *Store) listPayoutRequests(ctx context.Context, wsID int64, f heldsway.PayoutRequestFilter, o heldsway.ListOptions) (heldsway.PageResult[*heldsway.PayoutRequest], error) {
	var res heldsway.PageResult[*heldsway.PayoutRequest]
	switch f.Status {
	case "", heldsway.PayoutRequestPending, heldsway.PayoutRequestApproved, heldsway.PayoutRequestRejected:
	default:
		return res, heldsway.Invalid("status", "The selected status is invalid.")
	}
	if o.Sort == "" {
		o.Sort = PayoutSortCreatedAt
	}
	if o.Sort != PayoutSortCreatedAt {
		return res, heldsway.Invalid("sort", "The selected sort is invalid.")
	}
	if err := checkOrderAffiliate(ctx, s.r, wsID, f.AffiliateID); err != nil {
		return res, err
	}
	where, args := " WHERE r.workspace_id = $1", []any{wsID}
	if f.Status != "" {
		args = append(args, f.Status)
		where += fmt.Sprintf(" AND r.status = $%d", len(args))
	}
	if f.AffiliateID != 0 {
		args = append(args, f.AffiliateID)
		where += fmt.Sprintf(" AND r.affiliate_id = $%d", len(args))
	}
	tail, args, err := keyset(sortCol{expr: "r.created_at", isInt: true}, "r.id", o, where, args)
	if err != nil {
		return res, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+payoutRequestCols+payoutRequestFrom+tail, args...)
	if err != nil {
		return res, err
	}
	defer rows.Close()
	var items []*heldsway.PayoutRequest
	for rows.Next() {
		r, err := scanPayoutRequest(rows)
		if err != nil {
			return res, err
		}
		items = append(items, r)
	}
	if err := rows.Err(); err != nil {
		return res, err
	}
	return pageOf(items, o, func(r *heldsway.PayoutRequest) (*string, int64) { return intStr(ts(r.CreatedAt)), r.ID }), nil
}
