package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// Reading payouts for the API: the list, the export, the detail with the
// commissions a payout settles, and the dashboard's statistics. State changes
// live in payoutstate.go, payout requests in payoutrequest.go.

// payoutAffCols follow payoutCols when a read joins the payout's affiliate.
const (
	payoutAffCols = `, a.name, a.email`
	payoutAffFrom = ` FROM payouts p JOIN affiliates a ON a.workspace_id = p.workspace_id AND a.id = p.affiliate_id`
)

func scanPayoutAff(sc scanner) (*heldsway.Payout, error) {
	var (
		p                        heldsway.Payout
		runID, reqID             sql.NullInt64
		ext, reason              sql.NullString
		processing, done, failed sql.NullInt64
		createdAtTS, updatedAtTS int64
		name, email              string
	)
	if err := sc.Scan(&p.ID, &p.WorkspaceID, &p.AffiliateID, &p.Currency, &p.Amount, &p.Status, &p.Method, &runID, &reqID,
		&ext, &reason, &processing, &done, &failed, &createdAtTS, &updatedAtTS, &name, &email); err != nil {
		return nil, err
	}
	p.RunID, p.RequestID, p.ExternalReference, p.FailureReason = fromNullInt(runID), fromNullInt(reqID), ext.String, reason.String
	p.ProcessingAt, p.CompletedAt, p.FailedAt = fromNullTS(processing), fromNullTS(done), fromNullTS(failed)
	p.CreatedAt, p.UpdatedAt = fromTS(createdAtTS), fromTS(updatedAtTS)
	p.Affiliate = &heldsway.PayoutAffiliate{ID: p.AffiliateID, Name: name, Email: email}
	return &p, nil
}

// FindPayout returns one payout of the workspace with its affiliate and, if
// items, the commissions it settles with the amounts it settled, oldest
// first. Errors: ENOTFOUND for another workspace's or an unknown id.
func (s *Store) FindPayout(ctx context.Context, wsID, id int64, items bool) (*heldsway.Payout, error) {
	p, err := s.findPayout(ctx, wsID, id, items)
	return p, unavailable(err)
}

func (s *Store) findPayout(ctx context.Context, wsID, id int64, items bool) (*heldsway.Payout, error) {
	p, err := scanPayoutAff(s.r.QueryRowContext(ctx, `SELECT `+payoutCols+payoutAffCols+payoutAffFrom+
		` WHERE p.workspace_id = $1 AND p.id = $2`, wsID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, heldsway.NotFound("Payout")
	}
	if err != nil || !items {
		return p, err
	}
	p.Items, err = loadPayoutItems(ctx, s.r, wsID, id)
	return p, err
}

// loadPayoutItems reads the commissions a payout settles (payout_items; a
// failed payout's, payout_items_released: what it settled until it failed)
// with the amount settled and the order's date. A commission's status and net
// are as they are now (a reversal after payout shows in reversed_amount); the
// item's amount is what the payout paid for it.
func loadPayoutItems(ctx context.Context, q orderQuerier, wsID, payoutID int64) ([]heldsway.PayoutItem, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+commissionCols+`, pi.amount, o.converted_at FROM (
			SELECT commission_id, amount FROM payout_items WHERE workspace_id = $1 AND payout_id = $2
			UNION ALL
			SELECT commission_id, amount FROM payout_items_released WHERE workspace_id = $1 AND payout_id = $2) pi
		JOIN commissions c ON c.workspace_id = $1 AND c.id = pi.commission_id
		JOIN orders o ON o.workspace_id = c.workspace_id AND o.id = c.order_id
		ORDER BY o.converted_at, c.id`, wsID, payoutID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []heldsway.PayoutItem{}
	for rows.Next() {
		var (
			c                 heldsway.Commission
			rate, payout, apr sql.NullInt64
			created, updated  int64
			amount, converted int64
		)
		if err := rows.Scan(&c.ID, &c.WorkspaceID, &c.OrderID, &c.OrderRef, &c.AffiliateID, &c.Tier, &c.Currency, &c.Amount,
			&c.ReversedAmount, &rate, &c.Rule, &c.BaseAmount, &c.Explanation, &c.Status, &payout, &created,
			&apr, &updated, &amount, &converted); err != nil {
			return nil, err
		}
		c.Rate, c.PayoutID, c.ApprovedAt = fromNullInt(rate), fromNullInt(payout), fromNullTS(apr)
		c.CreatedAt, c.UpdatedAt = fromTS(created), fromTS(updated)
		out = append(out, heldsway.PayoutItem{Commission: &c, Amount: amount, OrderDate: fromTS(converted)})
	}
	return out, rows.Err()
}

// AttachPayoutAffiliates loads the affiliate of each payout (name, e-mail) in
// one query, for answers built from a state change's payout.
func (s *Store) AttachPayoutAffiliates(ctx context.Context, wsID int64, ps ...*heldsway.Payout) error {
	if len(ps) == 0 {
		return nil
	}
	args := []any{wsID}
	ph := make([]string, 0, len(ps))
	for _, p := range ps {
		args = append(args, p.AffiliateID)
		ph = append(ph, fmt.Sprintf("$%d", len(args)))
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, name, email FROM affiliates WHERE workspace_id = $1 AND id IN (`+
		strings.Join(ph, ", ")+`)`, args...)
	if err != nil {
		return unavailable(err)
	}
	defer rows.Close()
	by := map[int64]*heldsway.PayoutAffiliate{}
	for rows.Next() {
		var a heldsway.PayoutAffiliate
		if err := rows.Scan(&a.ID, &a.Name, &a.Email); err != nil {
			return unavailable(err)
		}
		by[a.ID] = &a
	}
	if err := rows.Err(); err != nil {
		return unavailable(err)
	}
	for _, p := range ps {
		p.Affiliate = by[p.AffiliateID]
	}
	return nil
}

// PayoutSortCreatedAt is the payout list's only sort: each filter has an index
// ending in (created_at, id).
const PayoutSortCreatedAt = "created_at"

// payoutWhere is the WHERE clause of a filter over payoutAffFrom.
func payoutWhere(wsID int64, f heldsway.PayoutListFilter) (string, []any) {
	where, args := " WHERE p.workspace_id = $1", []any{wsID}
	if f.Status != "" {
		args = append(args, f.Status)
		where += fmt.Sprintf(" AND p.status = $%d", len(args))
	}
	if f.AffiliateID != 0 {
		args = append(args, f.AffiliateID)
		where += fmt.Sprintf(" AND p.affiliate_id = $%d", len(args))
	}
	if f.Currency != "" {
		args = append(args, strings.ToUpper(f.Currency))
		where += fmt.Sprintf(" AND p.currency = $%d", len(args))
	}
	if f.From != nil {
		args = append(args, ts(*f.From))
		where += fmt.Sprintf(" AND p.created_at >= $%d", len(args))
	}
	if f.To != nil {
		args = append(args, ts(*f.To))
		where += fmt.Sprintf(" AND p.created_at <= $%d", len(args))
	}
	if f.Search != "" {
		// LOWER on both sides: PostgreSQL's LIKE is case-sensitive.
		args = append(args, "%"+affLikeEscaper.Replace(strings.ToLower(f.Search))+"%")
		n := len(args)
		where += fmt.Sprintf(` AND (LOWER(a.name) LIKE $%d ESCAPE '\' OR LOWER(a.email) LIKE $%d ESCAPE '\'
			OR LOWER(COALESCE(p.external_reference, '')) LIKE $%d ESCAPE '\')`, n, n, n)
	}
	return where, args
}

// CheckPayoutFilter validates a filter's references without reading payouts:
// the affiliate must be one of the workspace's (EVALIDATION otherwise, never
// an empty list that would tell whether another workspace's id exists).
func (s *Store) CheckPayoutFilter(ctx context.Context, wsID int64, f heldsway.PayoutListFilter) error {
	return unavailable(checkOrderAffiliate(ctx, s.r, wsID, f.AffiliateID))
}

// ListPayouts pages a workspace's payouts with their affiliates, by
// created_at then id. Errors: EVALIDATION for an unknown sort, a bad cursor or
// another workspace's affiliate_id.
func (s *Store) ListPayouts(ctx context.Context, wsID int64, f heldsway.PayoutListFilter, o heldsway.ListOptions) (heldsway.PageResult[*heldsway.Payout], error) {
	if err := checkOrderAffiliate(ctx, s.r, wsID, f.AffiliateID); err != nil {
		return heldsway.PageResult[*heldsway.Payout]{}, unavailable(err)
	}
	res, err := s.listPayouts(ctx, wsID, f, o)
	return res, unavailable(err)
}

func (s *Store) listPayouts(ctx context.Context, wsID int64, f heldsway.PayoutListFilter, o heldsway.ListOptions) (heldsway.PageResult[*heldsway.Payout], error) {
	var res heldsway.PageResult[*heldsway.Payout]
	if o.Sort == "" {
		o.Sort = PayoutSortCreatedAt
	}
	if o.Sort != PayoutSortCreatedAt {
		return res, heldsway.Invalid("sort", "The selected sort is invalid.")
	}
	where, args := payoutWhere(wsID, f)
	tail, args, err := keyset(sortCol{expr: "p.created_at", isInt: true}, "p.id", o, where, args)
	if err != nil {
		return res, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+payoutCols+payoutAffCols+payoutAffFrom+tail, args...)
	if err != nil {
		return res, err
	}
	defer rows.Close()
	var items []*heldsway.Payout
	for rows.Next() {
		p, err := scanPayoutAff(rows)
		if err != nil {
			return res, err
		}
		items = append(items, p)
	}
	if err := rows.Err(); err != nil {
		return res, err
	}
	return pageOf(items, o, func(p *heldsway.Payout) (*string, int64) { return intStr(ts(p.CreatedAt)), p.ID }), nil
}

// ExportPayouts calls fn for every payout the filter selects, in the order o
// gives (its PerPage, After and Offset are ignored), reading keyset chunks so
// an export of any size is streamed. An error from fn stops the export.
func (s *Store) ExportPayouts(ctx context.Context, wsID int64, f heldsway.PayoutListFilter, o heldsway.ListOptions, fn func(*heldsway.Payout) error) error {
	if err := checkOrderAffiliate(ctx, s.r, wsID, f.AffiliateID); err != nil {
		return unavailable(err)
	}
	o.PerPage, o.After, o.Offset = exportChunk, nil, 0
	for {
		page, err := s.listPayouts(ctx, wsID, f, o)
		if err != nil {
			return unavailable(err)
		}
		for _, p := range page.Items {
			if err := fn(p); err != nil {
				return err
			}
		}
		if page.Next == nil {
			return nil
		}
		o.After = page.Next
	}
}

// PayoutStats returns the dashboard's payout figures: per currency, the
// payouts awaiting payment (pending or processing) and those completed in the
// current calendar month of the workspace's time zone; the number of
// affiliates with a payout awaiting payment; the pending payout requests.
func (s *Store) PayoutStats(ctx context.Context, wsID int64) (*heldsway.PayoutStats, error) {
	st, err := s.payoutStats(ctx, wsID)
	return st, unavailable(err)
}

func (s *Store) payoutStats(ctx context.Context, wsID int64) (*heldsway.PayoutStats, error) {
	tz, err := readTimezone(ctx, s.r, wsID)
	if err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		loc = time.UTC // validated when set; a zone gone from the tz database falls back to UTC
	}
	now := s.Now().In(loc)
	start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, loc)
	st := &heldsway.PayoutStats{Timezone: loc.String(), MonthStart: start, MonthEnd: start.AddDate(0, 1, 0)}

	// SUM of a BIGINT is NUMERIC on PostgreSQL: cast back so both engines scan an int64.
	rows, err := s.r.QueryContext(ctx, `
		SELECT currency, 'p', COUNT(*), CAST(SUM(amount) AS BIGINT) FROM payouts
			WHERE workspace_id = $1 AND status IN ('pending', 'processing') GROUP BY currency
		UNION ALL
		SELECT currency, 'c', COUNT(*), CAST(SUM(amount) AS BIGINT) FROM payouts
			WHERE workspace_id = $1 AND status = 'completed' AND completed_at >= $2 AND completed_at < $3 GROUP BY currency`,
		wsID, ts(st.MonthStart), ts(st.MonthEnd))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	by := map[string]*heldsway.PayoutCurrencyStats{}
	var order []string
	for rows.Next() {
		var (
			cur, what string
			n, sum    int64
		)
		if err := rows.Scan(&cur, &what, &n, &sum); err != nil {
			return nil, err
		}
		c := by[cur]
		if c == nil {
			c = &heldsway.PayoutCurrencyStats{Currency: cur}
			by[cur] = c
			order = append(order, cur)
		}
		if what == "p" {
			c.PendingPayouts, c.PendingAmount = n, sum
		} else {
			c.CompletedThisMonthPayouts, c.CompletedThisMonth = n, sum
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.Sort(order)
	st.Currencies = make([]heldsway.PayoutCurrencyStats, 0, len(order))
	for _, cur := range order {
		st.Currencies = append(st.Currencies, *by[cur])
	}
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(DISTINCT affiliate_id) FROM payouts
		WHERE workspace_id = $1 AND status IN ('pending', 'processing')`, wsID).Scan(&st.PendingAffiliates); err != nil {
		return nil, err
	}
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM payout_requests WHERE workspace_id = $1 AND status = 'pending'`,
		wsID).Scan(&st.PendingRequests); err != nil {
		return nil, err
	}
	return st, nil
}

// MaxPayoutBulk bounds the ids of one bulk payout action.
const MaxPayoutBulk = 100

// BulkPayoutTransition applies action (heldsway.PayoutActionProcessing or
// PayoutActionComplete, with ref as the external reference) to each id on its
// own, each in its own transaction, so one failure (an unknown id, a payout
// in a status that does not allow it) does not undo the others. Results are
// in the order of ids; the payouts carry their affiliates. Errors: EVALIDATION
// for an unknown action or more than MaxPayoutBulk ids.
func (s *Store) BulkPayoutTransition(ctx context.Context, wsID int64, ids []int64, action, ref string) ([]heldsway.PayoutBulkResult, error) {
	if len(ids) > MaxPayoutBulk {
		return nil, heldsway.Invalid("ids", fmt.Sprintf("The ids field must not have more than %d items.", MaxPayoutBulk))
	}
	out := make([]heldsway.PayoutBulkResult, 0, len(ids))
	var done []*heldsway.Payout
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r := heldsway.PayoutBulkResult{ID: id}
		switch action {
		case heldsway.PayoutActionProcessing:
			r.Payout, r.Err = s.MarkPayoutProcessing(ctx, wsID, id)
		case heldsway.PayoutActionComplete:
			r.Payout, r.Err = s.CompletePayout(ctx, wsID, id, ref)
		default:
			return nil, heldsway.Invalid("action", "The selected action is invalid.")
		}
		if r.Err == nil {
			done = append(done, r.Payout)
		}
		out = append(out, r)
	}
	if err := s.AttachPayoutAffiliates(ctx, wsID, done...); err != nil {
		return nil, err
	}
	return out, nil
}
