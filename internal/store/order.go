package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/heldsway/heldsway/internal/commission"
	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

// The store implements the whole order contract: CreateConversion lives in
// conversion.go, the review half here.
var _ heldsway.OrderService = (*Store)(nil)

// Orders under review: reading, listing, aggregating and exporting orders;
// approving, rejecting and refunding them; listing commissions; and the
// auto-approval sweep. CreateConversion (conversion.go) writes the orders.
//
// Concurrency: every review write is an UPDATE conditional on the state it read
// (status, refunded_amount) in the same transaction. On PostgreSQL the second
// of two concurrent writers blocks on the row, then matches nothing and either
// reads the new state again (refunds) or reports the transition the winner made
// (approve, reject); on SQLite writers are serialised anyway. So two reviews, two
// nodes' auto-approval sweeps, or a review racing a refund never both win.

// orderCols reads an order with its affiliate's name and code and the
// customer's external id; both joins are by primary key within the workspace.
const orderCols = `o.id, o.workspace_id, o.order_id, o.status, o.currency, o.total, o.subtotal, o.discount, o.tax,
	o.refunded_amount, o.commission_amount, o.commission_rate, o.affiliate_id, a.name, a.referral_code,
	o.program_id, o.link_id, o.click_id, o.coupon_id, o.coupon_code, o.customer_id, o.customer_email,
	o.customer_name, cu.external_id, o.subscription_id, o.attribution, o.flags, o.metadata, o.converted_at,
	o.approved_at, o.rejected_at, o.cancelled_at, o.auto_approve_at, o.created_at, o.updated_at`

const orderFrom = ` FROM orders o
	LEFT JOIN affiliates a ON a.workspace_id = o.workspace_id AND a.id = o.affiliate_id
	LEFT JOIN customers cu ON cu.workspace_id = o.workspace_id AND cu.id = o.customer_id`

// orderQuerier is satisfied by *sql.DB and *sql.Tx.
type orderQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func scanOrderRow(sc scanner) (*heldsway.Order, error) {
	var (
		o                                         heldsway.Order
		rate, affID, progID, linkID, couponID     sql.NullInt64
		custID                                    sql.NullInt64
		affName, affCode, clickID, couponCode     sql.NullString
		custEmail, custName, custExt, subID, meta sql.NullString
		flags                                     string
		approved, rejected, cancelled, autoAt     sql.NullInt64
		converted, created, updated               int64
	)
	err := sc.Scan(&o.ID, &o.WorkspaceID, &o.OrderID, &o.Status, &o.Currency, &o.Total, &o.Subtotal, &o.Discount, &o.Tax,
		&o.RefundedAmount, &o.CommissionAmount, &rate, &affID, &affName, &affCode,
		&progID, &linkID, &clickID, &couponID, &couponCode, &custID, &custEmail,
		&custName, &custExt, &subID, &o.Attribution, &flags, &meta, &converted,
		&approved, &rejected, &cancelled, &autoAt, &created, &updated)
	if err != nil {
		return nil, err
	}
	o.CommissionRate, o.ProgramID, o.LinkID, o.CouponID, o.CustomerID =
		fromNullInt(rate), fromNullInt(progID), fromNullInt(linkID), fromNullInt(couponID), fromNullInt(custID)
	if affID.Valid {
		o.Affiliate = &heldsway.OrderAffiliate{ID: affID.Int64, Name: affName.String, ReferralCode: affCode.String}
	}
	o.ClickID, o.CouponCode, o.SubscriptionID = clickID.String, couponCode.String, subID.String
	o.Customer = heldsway.OrderCustomer{Email: custEmail.String, ID: custExt.String, Name: custName.String}
	o.Flags = splitList(flags)
	if meta.Valid && meta.String != "" {
		o.Metadata = json.RawMessage(meta.String)
	}
	o.ConvertedAt, o.CreatedAt, o.UpdatedAt = fromTS(converted), fromTS(created), fromTS(updated)
	o.ApprovedAt, o.RejectedAt, o.CancelledAt, o.AutoApproveAt =
		fromNullTS(approved), fromNullTS(rejected), fromNullTS(cancelled), fromNullTS(autoAt)
	return &o, nil
}

const commissionCols = `c.id, c.workspace_id, c.order_id, o.order_id, c.affiliate_id, c.tier, c.currency, c.amount,
	c.reversed_amount, c.rate, c.rule, c.base_amount, c.explanation, c.status,
	(SELECT pi.payout_id FROM payout_items pi WHERE pi.commission_id = c.id), c.created_at,
	c.approved_at, c.updated_at`

const commissionFrom = ` FROM commissions c JOIN orders o ON o.workspace_id = c.workspace_id AND o.id = c.order_id`

func scanCommissionRow(sc scanner) (*heldsway.Commission, error) {
	var (
		c                 heldsway.Commission
		rate, payout, apr sql.NullInt64
		created, updated  int64
	)
	err := sc.Scan(&c.ID, &c.WorkspaceID, &c.OrderID, &c.OrderRef, &c.AffiliateID, &c.Tier, &c.Currency, &c.Amount,
		&c.ReversedAmount, &rate, &c.Rule, &c.BaseAmount, &c.Explanation, &c.Status, &payout, &created,
		&apr, &updated)
	if err != nil {
		return nil, err
	}
	c.Rate, c.PayoutID, c.ApprovedAt = fromNullInt(rate), fromNullInt(payout), fromNullTS(apr)
	c.CreatedAt, c.UpdatedAt = fromTS(created), fromTS(updated)
	return &c, nil
}

// readOrder reads one order of the workspace with its commissions and, if
// items, its line items; ENOTFOUND otherwise. q is the read pool or the
// caller's transaction.
func readOrder(ctx context.Context, q orderQuerier, wsID, id int64, items bool) (*heldsway.Order, error) {
	o, err := scanOrderRow(q.QueryRowContext(ctx, `SELECT `+orderCols+orderFrom+
		` WHERE o.workspace_id = $1 AND o.id = $2`, wsID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, heldsway.NotFound("Order")
	}
	if err != nil {
		return nil, err
	}
	if err := loadOrderCommissions(ctx, q, wsID, []*heldsway.Order{o}); err != nil {
		return nil, err
	}
	if items {
		rows, err := q.QueryContext(ctx, `SELECT product_id, name, category, quantity, price FROM order_items
			WHERE workspace_id = $1 AND order_id = $2 ORDER BY id`, wsID, id)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		o.Items = []heldsway.LineItem{}
		for rows.Next() {
			var (
				it                   heldsway.LineItem
				prod, name, category sql.NullString
			)
			if err := rows.Scan(&prod, &name, &category, &it.Quantity, &it.Price); err != nil {
				return nil, err
			}
			it.ProductID, it.Name, it.Category = prod.String, name.String, category.String
			o.Items = append(o.Items, it)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// loadOrderCommissions fills the commissions of orders in one query, tier 1
// first.
func loadOrderCommissions(ctx context.Context, q orderQuerier, wsID int64, orders []*heldsway.Order) error {
	if len(orders) == 0 {
		return nil
	}
	byID := make(map[int64]*heldsway.Order, len(orders))
	args := []any{wsID}
	ph := make([]string, 0, len(orders))
	for _, o := range orders {
		o.Commissions = []*heldsway.Commission{}
		byID[o.ID] = o
		args = append(args, o.ID)
		ph = append(ph, fmt.Sprintf("$%d", len(args)))
	}
	rows, err := q.QueryContext(ctx, `SELECT `+commissionCols+commissionFrom+
		` WHERE c.workspace_id = $1 AND c.order_id IN (`+strings.Join(ph, ", ")+`) ORDER BY c.order_id, c.tier, c.id`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		c, err := scanCommissionRow(rows)
		if err != nil {
			return err
		}
		if o := byID[c.OrderID]; o != nil {
			o.Commissions = append(o.Commissions, c)
		}
	}
	return rows.Err()
}

// FindOrder returns one order of the workspace with its line items and
// commission breakdown; ENOTFOUND for another workspace's or an unknown id.
func (s *Store) FindOrder(ctx context.Context, wsID, id int64) (*heldsway.Order, error) {
	o, err := readOrder(ctx, s.r, wsID, id, true)
	return o, unavailable(err)
}

// orderSorts whitelists the list sorts; each has an index on (workspace_id,
// <column>, id) or is served by orders_converted with the filters applied.
// order_total and commission_amount compare minor units, so a workspace with
// several currencies sorts them by their raw amounts.
var orderSorts = map[string]sortCol{
	heldsway.OrderSortConvertedAt:      {expr: "o.converted_at", isInt: true},
	heldsway.OrderSortOrderID:          {expr: "o.order_id"},
	heldsway.OrderSortOrderTotal:       {expr: "o.total", isInt: true},
	heldsway.OrderSortCommissionAmount: {expr: "o.commission_amount", isInt: true},
	heldsway.OrderSortStatus:           {expr: "o.status"},
}

func orderSortValue(sort string, o *heldsway.Order) (*string, int64) {
	switch sort {
	case heldsway.OrderSortOrderID:
		return strPtr(o.OrderID), o.ID
	case heldsway.OrderSortOrderTotal:
		return intStr(o.Total), o.ID
	case heldsway.OrderSortCommissionAmount:
		return intStr(o.CommissionAmount), o.ID
	case heldsway.OrderSortStatus:
		return strPtr(o.Status), o.ID
	}
	return intStr(ts(o.ConvertedAt)), o.ID
}

// checkOrderAffiliate verifies that a filter's affiliate belongs to the
// workspace: another workspace's id is a validation error, as the digest asks
// ("must be an affiliate of this business"), never an empty list that would
// confirm or deny its existence.
func checkOrderAffiliate(ctx context.Context, q orderQuerier, wsID, affID int64) error {
	if affID == 0 {
		return nil
	}
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM affiliates WHERE workspace_id = $1 AND id = $2`, wsID, affID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return heldsway.Invalid("affiliate_id", "The selected affiliate id is invalid.")
	}
	return err
}

// CheckOrderFilter validates a filter's references without reading orders: the
// affiliate must be one of the workspace's (EVALIDATION otherwise). The export
// calls it before it starts streaming, while it can still answer 422.
func (s *Store) CheckOrderFilter(ctx context.Context, wsID int64, f heldsway.OrderFilter) error {
	return unavailable(checkOrderAffiliate(ctx, s.r, wsID, f.AffiliateID))
}

// orderWhere is the WHERE clause of a filter over orderFrom (or any FROM that
// names orders o and affiliates a).
func orderWhere(wsID int64, f heldsway.OrderFilter) (string, []any) {
	where, args := " WHERE o.workspace_id = $1", []any{wsID}
	if f.Status != "" {
		args = append(args, f.Status)
		where += fmt.Sprintf(" AND o.status = $%d", len(args))
	}
	if f.AffiliateID != 0 {
		args = append(args, f.AffiliateID)
		where += fmt.Sprintf(" AND o.affiliate_id = $%d", len(args))
	}
	if f.From != nil {
		args = append(args, ts(*f.From))
		where += fmt.Sprintf(" AND o.converted_at >= $%d", len(args))
	}
	if f.To != nil {
		args = append(args, ts(*f.To))
		where += fmt.Sprintf(" AND o.converted_at <= $%d", len(args))
	}
	if f.Search != "" {
		// LOWER on both sides: PostgreSQL's LIKE is case-sensitive.
		args = append(args, "%"+affLikeEscaper.Replace(strings.ToLower(f.Search))+"%")
		n := len(args)
		where += fmt.Sprintf(` AND (LOWER(o.order_id) LIKE $%d ESCAPE '\' OR LOWER(a.name) LIKE $%d ESCAPE '\')`, n, n)
	}
	return where, args
}

// ListOrders pages a workspace's orders, each with its commissions (line items
// are only read by FindOrder). Default sort converted_at. Errors: EVALIDATION
// for an unknown sort, a bad cursor or an affiliate_id of another workspace.
func (s *Store) ListOrders(ctx context.Context, wsID int64, f heldsway.OrderFilter, o heldsway.ListOptions) (heldsway.PageResult[*heldsway.Order], error) {
	if err := checkOrderAffiliate(ctx, s.r, wsID, f.AffiliateID); err != nil {
		return heldsway.PageResult[*heldsway.Order]{}, unavailable(err)
	}
	res, err := s.listOrders(ctx, wsID, f, o)
	return res, unavailable(err)
}

func (s *Store) listOrders(ctx context.Context, wsID int64, f heldsway.OrderFilter, o heldsway.ListOptions) (heldsway.PageResult[*heldsway.Order], error) {
	var res heldsway.PageResult[*heldsway.Order]
	if o.Sort == "" {
		o.Sort = heldsway.OrderSortConvertedAt
	}
	col, ok := orderSorts[o.Sort]
	if !ok {
		return res, heldsway.Invalid("sort", "The selected sort is invalid.")
	}
	where, args := orderWhere(wsID, f)
	tail, args, err := keyset(col, "o.id", o, where, args)
	if err != nil {
		return res, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+orderCols+orderFrom+tail, args...)
	if err != nil {
		return res, err
	}
	var items []*heldsway.Order
	for rows.Next() {
		ord, err := scanOrderRow(rows)
		if err != nil {
			rows.Close()
			return res, err
		}
		items = append(items, ord)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, err
	}
	res = pageOf(items, o, func(ord *heldsway.Order) (*string, int64) { return orderSortValue(o.Sort, ord) })
	if err := loadOrderCommissions(ctx, s.r, wsID, res.Items); err != nil {
		return res, err
	}
	return res, nil
}

// exportChunk is how many orders an export reads per query: enough to amortise
// the round trip, few enough that an export of any size holds little memory
// and no long-lived cursor.
const exportChunk = 500

// ExportOrders calls fn for every order the filter selects, in the order o
// gives (its PerPage, After and Offset are ignored), reading them in keyset
// chunks so the export is streamed rather than built in memory. Orders come
// with their commissions. An error from fn stops the export and is returned.
func (s *Store) ExportOrders(ctx context.Context, wsID int64, f heldsway.OrderFilter, o heldsway.ListOptions, fn func(*heldsway.Order) error) error {
	if err := checkOrderAffiliate(ctx, s.r, wsID, f.AffiliateID); err != nil {
		return unavailable(err)
	}
	o.PerPage, o.After, o.Offset = exportChunk, nil, 0
	for {
		page, err := s.listOrders(ctx, wsID, f, o)
		if err != nil {
			return unavailable(err)
		}
		for _, ord := range page.Items {
			if err := fn(ord); err != nil {
				return err
			}
		}
		if page.Next == nil {
			return nil
		}
		o.After = page.Next
	}
}

// OrderStats returns, per currency, the dashboard's five figures over the
// orders the filter selects: their count, revenue (sum of subtotals), and the
// commission still owed on them (net of reversals) that is pending, approved
// (approved or already paid) and both together. Currencies are sorted by code;
// an empty selection gives no rows.
func (s *Store) OrderStats(ctx context.Context, wsID int64, f heldsway.OrderFilter) ([]heldsway.OrderStats, error) {
	if err := checkOrderAffiliate(ctx, s.r, wsID, f.AffiliateID); err != nil {
		return nil, unavailable(err)
	}
	stats, err := s.orderStats(ctx, wsID, f)
	return stats, unavailable(err)
}

func (s *Store) orderStats(ctx context.Context, wsID int64, f heldsway.OrderFilter) ([]heldsway.OrderStats, error) {
	where, args := orderWhere(wsID, f)
	const from = ` FROM orders o LEFT JOIN affiliates a ON a.workspace_id = o.workspace_id AND a.id = o.affiliate_id`
	// SUM of a BIGINT is NUMERIC on PostgreSQL: cast back so both engines scan an int64.
	rows, err := s.r.QueryContext(ctx, `SELECT o.currency, COUNT(*), CAST(COALESCE(SUM(o.subtotal), 0) AS BIGINT)`+
		from+where+` GROUP BY o.currency ORDER BY o.currency`, args...)
	if err != nil {
		return nil, err
	}
	var out []heldsway.OrderStats
	idx := map[string]int{}
	for rows.Next() {
		var st heldsway.OrderStats
		if err := rows.Scan(&st.Currency, &st.TotalOrders, &st.TotalRevenue); err != nil {
			rows.Close()
			return nil, err
		}
		idx[st.Currency] = len(out)
		out = append(out, st)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.r.QueryContext(ctx, `SELECT o.currency, c.status, CAST(COALESCE(SUM(c.amount - c.reversed_amount), 0) AS BIGINT)`+
		from+` JOIN commissions c ON c.workspace_id = o.workspace_id AND c.order_id = o.id`+where+
		` AND c.status IN ('pending', 'approved', 'paid') GROUP BY o.currency, c.status`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			cur, status string
			sum         int64
		)
		if err := rows.Scan(&cur, &status, &sum); err != nil {
			return nil, err
		}
		i, ok := idx[cur]
		if !ok {
			continue
		}
		if status == heldsway.CommissionPending {
			out[i].Pending += sum
		} else {
			out[i].Approved += sum
		}
		out[i].TotalCommission += sum
	}
	if out == nil {
		out = []heldsway.OrderStats{}
	}
	return out, rows.Err()
}

// Snapshots for audit entries and events, in the shape of the API's order
// object so webhook payloads read like API responses. Amounts are JSON numbers
// with the currency's exact decimals.

type orderSnapAffiliate struct {
	ID           int64  `json:"id"`
	Name         string `json:"name"`
	ReferralCode string `json:"referral_code"`
}

type orderSnapshot struct {
	ID               int64                 `json:"id"`
	OrderID          string                `json:"order_id"`
	Status           string                `json:"status"`
	OrderTotal       json.Number           `json:"order_total"`
	Subtotal         json.Number           `json:"subtotal"`
	Discount         json.Number           `json:"discount"`
	Tax              json.Number           `json:"tax"`
	RefundedAmount   json.Number           `json:"refunded_amount"`
	CommissionAmount json.Number           `json:"commission_amount"`
	CommissionRate   *json.Number          `json:"commission_rate"`
	Currency         string                `json:"currency"`
	ConvertedAt      string                `json:"converted_at"`
	Affiliate        *orderSnapAffiliate   `json:"affiliate"`
	ProgramID        *int64                `json:"program_id"`
	LinkID           *int64                `json:"link_id"`
	ClickID          *string               `json:"click_id"`
	CouponCode       *string               `json:"coupon_code"`
	Attribution      string                `json:"attribution"`
	Flags            []string              `json:"flags"`
	AutoApproveAt    *string               `json:"auto_approve_at"`
	ApprovedAt       *string               `json:"approved_at"`
	RejectedAt       *string               `json:"rejected_at"`
	CancelledAt      *string               `json:"cancelled_at"`
	Commissions      []*commissionSnapshot `json:"commissions"`
}

type commissionSnapshot struct {
	ID             int64        `json:"id"`
	ConversionID   int64        `json:"conversion_id"`
	OrderID        string       `json:"order_id"`
	AffiliateID    int64        `json:"affiliate_id"`
	Tier           int          `json:"tier"`
	Currency       string       `json:"currency"`
	Amount         json.Number  `json:"amount"`
	ReversedAmount json.Number  `json:"reversed_amount"`
	NetAmount      json.Number  `json:"net_amount"`
	Rate           *json.Number `json:"rate"`
	Rule           string       `json:"rule"`
	BaseAmount     json.Number  `json:"base_amount"`
	Explanation    string       `json:"explanation"`
	Status         string       `json:"status"`
	PayoutID       *int64       `json:"payout_id"`
	ApprovedAt     *string      `json:"approved_at"`
}

func snapTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	return strPtr(t.UTC().Format(affSnapTime))
}

func snapRate(bp *int64) *json.Number {
	if bp == nil {
		return nil
	}
	n := json.Number(money.FormatRate(*bp))
	return &n
}

func snapNullStr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// orderCurrencyOf returns the currency of a stored code; codes were validated
// on the way in, so the fallback only guards against a corrupted row.
func orderCurrencyOf(code string) money.Currency {
	c, err := money.ParseCurrency(code)
	if err != nil {
		return money.Currency{Code: code, Scale: 2}
	}
	return c
}

func snapCommission(c *heldsway.Commission) *commissionSnapshot {
	cur := orderCurrencyOf(c.Currency)
	amt := func(m int64) json.Number { return json.Number(money.Format(m, cur)) }
	return &commissionSnapshot{ID: c.ID, ConversionID: c.OrderID, OrderID: c.OrderRef, AffiliateID: c.AffiliateID,
		Tier: c.Tier, Currency: cur.Code, Amount: amt(c.Amount), ReversedAmount: amt(c.ReversedAmount),
		NetAmount: amt(c.Net()), Rate: snapRate(c.Rate), Rule: c.Rule, BaseAmount: amt(c.BaseAmount),
		Explanation: c.Explanation, Status: c.Status, PayoutID: c.PayoutID, ApprovedAt: snapTime(c.ApprovedAt)}
}

func snapOrder(o *heldsway.Order) *orderSnapshot {
	if o == nil {
		return nil
	}
	cur := orderCurrencyOf(o.Currency)
	amt := func(m int64) json.Number { return json.Number(money.Format(m, cur)) }
	s := &orderSnapshot{ID: o.ID, OrderID: o.OrderID, Status: o.Status, OrderTotal: amt(o.Total), Subtotal: amt(o.Subtotal),
		Discount: amt(o.Discount), Tax: amt(o.Tax), RefundedAmount: amt(o.RefundedAmount),
		CommissionAmount: amt(o.CommissionAmount), CommissionRate: snapRate(o.CommissionRate), Currency: cur.Code,
		ConvertedAt: o.ConvertedAt.UTC().Format(affSnapTime), ProgramID: o.ProgramID, LinkID: o.LinkID,
		ClickID: snapNullStr(o.ClickID), CouponCode: snapNullStr(o.CouponCode), Attribution: o.Attribution,
		Flags: o.Flags, AutoApproveAt: snapTime(o.AutoApproveAt), ApprovedAt: snapTime(o.ApprovedAt),
		RejectedAt: snapTime(o.RejectedAt), CancelledAt: snapTime(o.CancelledAt),
		Commissions: make([]*commissionSnapshot, 0, len(o.Commissions))}
	if s.Flags == nil {
		s.Flags = []string{}
	}
	if a := o.Affiliate; a != nil {
		s.Affiliate = &orderSnapAffiliate{ID: a.ID, Name: a.Name, ReferralCode: a.ReferralCode}
	}
	for _, c := range o.Commissions {
		s.Commissions = append(s.Commissions, snapCommission(c))
	}
	return s
}

// orderAudited adds the optional reason of a review action to an audit snapshot.
type orderAudited struct {
	*orderSnapshot
	Reason *string `json:"reason,omitempty"`
}

func auditedOrder(o *heldsway.Order, reason string) orderAudited {
	a := orderAudited{orderSnapshot: snapOrder(o)}
	if reason != "" {
		a.Reason = &reason
	}
	return a
}

// ApproveOrder approves a pending order: see ReviewOrder.
func (s *Store) ApproveOrder(ctx context.Context, wsID, id int64) (*heldsway.Order, error) {
	return s.ReviewOrder(ctx, wsID, id, true, "")
}

// RejectOrder rejects a pending order: see ReviewOrder.
func (s *Store) RejectOrder(ctx context.Context, wsID, id int64, reason string) (*heldsway.Order, error) {
	return s.ReviewOrder(ctx, wsID, id, false, reason)
}

// ReviewOrder approves (approve true) or rejects a pending order. Approval sets
// approved_at and moves the order's pending commissions to approved; a
// commission already rejected (a self-referral, a renewal the program does not
// pay) stays rejected. Rejection sets rejected_at, rejects the pending
// commissions and sets commission_amount to 0 (nothing is payable). Either
// clears auto_approve_at. The optional reason is kept in the audit entry.
// Writes conversion.approved/rejected and commission.approved/rejected per
// commission changed, each with its audit entry. Each commission approved
// appends a commission_approved ledger entry (+ its net amount) in the same
// transaction. Errors: ENOTFOUND;
// ETRANSITION when the order is not pending (also for the loser of two
// concurrent reviews).
func (s *Store) ReviewOrder(ctx context.Context, wsID, id int64, approve bool, reason string) (*heldsway.Order, error) {
	var out *heldsway.Order
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.reviewOrder(ctx, tx, wsID, id, approve, reason, s.Now(), false)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// reviewOrder applies a review in tx at time at. With auto (the auto-approval
// sweep) the UPDATE also requires the order to be due, and an order another
// node already handled yields (nil, nil) rather than an error.
func (s *Store) reviewOrder(ctx context.Context, tx *sql.Tx, wsID, id int64, approve bool, reason string, at time.Time, auto bool) (*heldsway.Order, error) {
	before, err := readOrder(ctx, tx, wsID, id, false)
	if err != nil {
		if auto && heldsway.ErrorCode(err) == heldsway.ENOTFOUND {
			return nil, nil
		}
		return nil, err
	}
	action, to, event, stamp, commTo := "reject", heldsway.OrderRejected, "conversion.rejected", "rejected_at", heldsway.CommissionRejected
	amountSet := "commission_amount = 0"
	if approve {
		action, to, event, stamp, commTo = "approve", heldsway.OrderApproved, "conversion.approved", "approved_at", heldsway.CommissionApproved
		amountSet = "commission_amount = commission_amount"
	}
	if before.Status != heldsway.OrderPending {
		if auto {
			return nil, nil
		}
		return nil, heldsway.OrderTransitionError(action, before.Status)
	}
	// Approval credits the ledger: a payout run must see the commissions'
	// status and their entries together (ledger.go).
	if approve {
		if err := s.lockCommissionAffiliates(ctx, tx, wsID, before.Commissions); err != nil {
			return nil, err
		}
	}
	now := ts(at)
	q := `UPDATE orders SET status = $1, ` + stamp + ` = $2, ` + amountSet + `, auto_approve_at = NULL, updated_at = $2
		WHERE workspace_id = $3 AND id = $4 AND status = 'pending'`
	args := []any{to, now, wsID, id}
	if auto {
		q += ` AND auto_approve_at IS NOT NULL AND auto_approve_at <= $2`
	}
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, err
	} else if n == 0 {
		if auto {
			return nil, nil
		}
		// A concurrent review won: report the status it left.
		cur, err := readOrder(ctx, tx, wsID, id, false)
		if err != nil {
			return nil, err
		}
		return nil, heldsway.OrderTransitionError(action, cur.Status)
	}
	approvedAt := "approved_at"
	if approve {
		approvedAt = "$1"
	}
	if _, err := tx.ExecContext(ctx, `UPDATE commissions SET status = $2, approved_at = `+approvedAt+`, updated_at = $1
		WHERE workspace_id = $3 AND order_id = $4 AND status = 'pending'`, now, commTo, wsID, id); err != nil {
		return nil, err
	}
	after, err := readOrder(ctx, tx, wsID, id, false)
	if err != nil {
		return nil, err
	}
	if err := s.commissionLedgerEntries(ctx, tx, wsID, before.Commissions, after.Commissions); err != nil {
		return nil, err
	}
	if err := s.audit(ctx, tx, wsID, "order."+action, "order", id, snapOrder(before), auditedOrder(after, reason)); err != nil {
		return nil, err
	}
	if err := s.event(ctx, tx, wsID, event, "order", id, snapOrder(after)); err != nil {
		return nil, err
	}
	prev := make(map[int64]*heldsway.Commission, len(before.Commissions))
	for _, c := range before.Commissions {
		prev[c.ID] = c
	}
	for _, c := range after.Commissions {
		if b := prev[c.ID]; b == nil || b.Status == c.Status {
			continue
		}
		if err := s.record(ctx, tx, wsID, "commission."+action, "commission", c.ID, snapCommission(prev[c.ID]), snapCommission(c),
			"commission."+to); err != nil {
			return nil, err
		}
	}
	r := s.newRollup(ctx, tx, nil)
	if err := r.orderChange(before, after); err != nil {
		return nil, err
	}
	if err := r.flush(); err != nil {
		return nil, err
	}
	return after, nil
}

// BulkReview approves or rejects each id on its own, in its own transaction, so
// one failure (an unknown id, an order no longer pending) does not undo the
// others. Results are in the order of ids.
func (s *Store) BulkReview(ctx context.Context, wsID int64, ids []int64, approve bool, reason string) ([]heldsway.BulkResult, error) {
	out := make([]heldsway.BulkResult, 0, len(ids))
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r := heldsway.BulkResult{ID: id}
		o, err := s.ReviewOrder(ctx, wsID, id, approve, reason)
		if err != nil {
			r.Err = err
		} else {
			r.Status = o.Status
		}
		out = append(out, r)
	}
	return out, nil
}

// RefundOrder records a refund of amount minor units (nil: the whole
// unrefunded rest) and reverses the order's commissions in proportion,
// cumulatively (commission.Reverse): each live line is reversed to
// amount × refunded so far / order total, so partial refunds add up to exactly
// what one refund of their sum would reverse, and a full refund reverses every
// line to exactly its amount. Rejected lines are not reversed: they were never
// owed. A line fully reversed gets status reversed.
//
// A reversed line that was already paid keeps its payout_id: the reversal is
// recorded the same way (reversed_amount, commission.reversed event). The
// reversal of an approved or paid line appends a commission_reversed ledger
// entry (− the reversal) in the same transaction, so a reversal after payout
// leaves a negative balance that the next payout nets off; a pending line's
// reversal touches no ledger (it was never available).
//
// The order keeps its status on a partial refund; a full refund cancels it
// (cancelled_at) unless it was rejected, which stays rejected.
// commission_amount drops by what was reversed. Errors: ENOTFOUND; EVALIDATION
// for an amount ≤ 0 or above the unrefunded rest; ETRANSITION for a cancelled
// order (nothing left to refund).
func (s *Store) RefundOrder(ctx context.Context, wsID, id int64, amount *int64, reason string) (*heldsway.Order, error) {
	if amount != nil && *amount <= 0 {
		return nil, heldsway.Invalid("amount", "The amount must be greater than 0.")
	}
	var out *heldsway.Order
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// A retry follows a concurrent refund or review that changed the order
		// between the read and the conditional UPDATE.
		for range 5 {
			done, err := s.refundOrder(ctx, tx, wsID, id, amount, reason, &out)
			if err != nil || done {
				return err
			}
		}
		return heldsway.Errorf(heldsway.ECONFLICT, "The order was changed concurrently; retry.")
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) refundOrder(ctx context.Context, tx *sql.Tx, wsID, id int64, amount *int64, reason string, out **heldsway.Order) (bool, error) {
	before, err := readOrder(ctx, tx, wsID, id, false)
	if err != nil {
		return false, err
	}
	if before.Status == heldsway.OrderCancelled {
		return false, &heldsway.Error{Code: heldsway.ETRANSITION,
			Message: "Cannot refund an order whose status is cancelled: nothing is left to refund.",
			Details: map[string]any{"from": before.Status}}
	}
	cur := orderCurrencyOf(before.Currency)
	rest := max(before.Total-before.RefundedAmount, 0)
	refund := rest
	if amount != nil {
		refund = *amount
		if refund > rest {
			return false, heldsway.Invalid("amount", fmt.Sprintf("The amount may not be greater than the unrefunded total of %s %s.",
				money.Format(rest, cur), cur.Code))
		}
	}
	refunded := before.RefundedAmount + refund
	full := refunded >= before.Total

	// The live lines: owed or paid, not rejected and not already reversed.
	var (
		live     []*heldsway.Commission
		standing []commission.Standing
	)
	for _, c := range before.Commissions {
		if c.Status == heldsway.CommissionRejected || c.Status == heldsway.CommissionReversed {
			continue
		}
		live = append(live, c)
		standing = append(standing, commission.Standing{Amount: c.Amount, Reversed: c.ReversedAmount})
	}
	revs := make([]int64, len(live))
	if full {
		// Everything goes, including a zero-total order's flat commission, which
		// a proportion of 0/0 could not express.
		for i, c := range live {
			revs[i] = c.Amount - c.ReversedAmount
		}
	} else if revs, err = commission.Reverse(standing, refunded, before.Total); err != nil {
		return false, err
	}
	var reversed int64
	for _, r := range revs {
		reversed += r
	}

	if err := s.lockCommissionAffiliates(ctx, tx, wsID, live); err != nil {
		return false, err
	}
	now := ts(s.Now())
	status, cancelledAt, autoAt := before.Status, nullTS(before.CancelledAt), nullTS(before.AutoApproveAt)
	if full && before.Status != heldsway.OrderRejected {
		status, cancelledAt, autoAt = heldsway.OrderCancelled, sql.NullInt64{Int64: now, Valid: true}, sql.NullInt64{}
	}
	res, err := tx.ExecContext(ctx, `UPDATE orders SET refunded_amount = $1, commission_amount = commission_amount - $2,
		status = $3, cancelled_at = $4, auto_approve_at = $5, updated_at = $6
		WHERE workspace_id = $7 AND id = $8 AND status = $9 AND refunded_amount = $10`,
		refunded, reversed, status, cancelledAt, autoAt, now, wsID, id, before.Status, before.RefundedAmount)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, err
	} else if n == 0 {
		return false, nil
	}
	changed := map[int64]bool{}
	for i, c := range live {
		newRev := c.ReversedAmount + revs[i]
		cStatus := c.Status
		if newRev == c.Amount && (c.Amount > 0 || full) {
			cStatus = heldsway.CommissionReversed
		}
		if revs[i] == 0 && cStatus == c.Status {
			continue
		}
		// The order row's conditional UPDATE above already serialises refunds,
		// so the line cannot have moved; the condition is a guard.
		res, err := tx.ExecContext(ctx, `UPDATE commissions SET reversed_amount = $1, status = $2, updated_at = $3
			WHERE workspace_id = $4 AND id = $5 AND reversed_amount = $6`, newRev, cStatus, now, wsID, c.ID, c.ReversedAmount)
		if err != nil {
			return false, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return false, err
		} else if n != 1 {
			return false, heldsway.Errorf(heldsway.ECONFLICT, "The order's commissions were changed concurrently; retry.")
		}
		changed[c.ID] = true
	}
	after, err := readOrder(ctx, tx, wsID, id, false)
	if err != nil {
		return false, err
	}
	// Reversals of approved or paid commissions debit the ledger; a pending
	// commission was never available, so its reversal writes nothing.
	if err := s.commissionLedgerEntries(ctx, tx, wsID, before.Commissions, after.Commissions); err != nil {
		return false, err
	}
	refundInfo := struct {
		Amount   json.Number `json:"amount"`
		Reversed json.Number `json:"commission_reversed"`
		Full     bool        `json:"full"`
		Reason   *string     `json:"reason,omitempty"`
	}{Amount: json.Number(money.Format(refund, cur)), Reversed: json.Number(money.Format(reversed, cur)), Full: full}
	if reason != "" {
		refundInfo.Reason = &reason
	}
	type refundSnap struct {
		*orderSnapshot
		Refund any `json:"refund"`
	}
	if err := s.audit(ctx, tx, wsID, "order.refund", "order", id, snapOrder(before), refundSnap{snapOrder(after), refundInfo}); err != nil {
		return false, err
	}
	if err := s.event(ctx, tx, wsID, "conversion.refunded", "order", id, refundSnap{snapOrder(after), refundInfo}); err != nil {
		return false, err
	}
	prev := make(map[int64]*heldsway.Commission, len(before.Commissions))
	for _, c := range before.Commissions {
		prev[c.ID] = c
	}
	for _, c := range after.Commissions {
		if !changed[c.ID] {
			continue
		}
		type reversedLine struct {
			*commissionSnapshot
			Reversal json.Number `json:"reversal"`
		}
		line := reversedLine{snapCommission(c), json.Number(money.Format(c.ReversedAmount-prev[c.ID].ReversedAmount, cur))}
		if err := s.audit(ctx, tx, wsID, "commission.reverse", "commission", c.ID, snapCommission(prev[c.ID]), line); err != nil {
			return false, err
		}
		if err := s.event(ctx, tx, wsID, "commission.reversed", "commission", c.ID, line); err != nil {
			return false, err
		}
	}
	r := s.newRollup(ctx, tx, nil)
	if err := r.orderChange(before, after); err != nil {
		return false, err
	}
	if err := r.flush(); err != nil {
		return false, err
	}
	*out = after
	return true, nil
}

// commissionSorts whitelists the commission list's sorts.
var commissionSorts = map[string]sortCol{
	heldsway.CommissionSortCreatedAt: {expr: "c.created_at", isInt: true},
	heldsway.CommissionSortAmount:    {expr: "c.amount", isInt: true},
}

// ListCommissions pages a workspace's commissions, each with its order's
// internal and merchant ids. Filters: affiliate (EVALIDATION when not of this
// workspace), status, created_at range. Default sort created_at.
func (s *Store) ListCommissions(ctx context.Context, wsID int64, f heldsway.CommissionFilter, o heldsway.ListOptions) (heldsway.PageResult[*heldsway.Commission], error) {
	var res heldsway.PageResult[*heldsway.Commission]
	if err := checkOrderAffiliate(ctx, s.r, wsID, f.AffiliateID); err != nil {
		return res, unavailable(err)
	}
	if o.Sort == "" {
		o.Sort = heldsway.CommissionSortCreatedAt
	}
	col, ok := commissionSorts[o.Sort]
	if !ok {
		return res, heldsway.Invalid("sort", "The selected sort is invalid.")
	}
	where, args := " WHERE c.workspace_id = $1", []any{wsID}
	if f.AffiliateID != 0 {
		args = append(args, f.AffiliateID)
		where += fmt.Sprintf(" AND c.affiliate_id = $%d", len(args))
	}
	if f.Status != "" {
		args = append(args, f.Status)
		where += fmt.Sprintf(" AND c.status = $%d", len(args))
	}
	if f.From != nil {
		args = append(args, ts(*f.From))
		where += fmt.Sprintf(" AND c.created_at >= $%d", len(args))
	}
	if f.To != nil {
		args = append(args, ts(*f.To))
		where += fmt.Sprintf(" AND c.created_at <= $%d", len(args))
	}
	tail, args, err := keyset(col, "c.id", o, where, args)
	if err != nil {
		return res, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+commissionCols+commissionFrom+tail, args...)
	if err != nil {
		return res, unavailable(err)
	}
	defer rows.Close()
	var items []*heldsway.Commission
	for rows.Next() {
		c, err := scanCommissionRow(rows)
		if err != nil {
			return res, unavailable(err)
		}
		items = append(items, c)
	}
	if err := rows.Err(); err != nil {
		return res, unavailable(err)
	}
	return pageOf(items, o, func(c *heldsway.Commission) (*string, int64) {
		if o.Sort == heldsway.CommissionSortAmount {
			return intStr(c.Amount), c.ID
		}
		return intStr(ts(c.CreatedAt)), c.ID
	}), nil
}

// AutoApproveDue approves up to limit pending orders whose auto_approve_at has
// passed, as the system actor, and returns how many it approved. The schedule
// is the persisted auto_approve_at column, so it survives restarts, and any
// number of nodes may sweep at once: the approving UPDATE is conditional on the
// order still being pending and due, so each order is approved once, with one
// set of events.
//
// Criteria are read from the order's program (the workspace's default program
// for an unattributed order) when the order falls due, so a later settings
// change applies: auto-approval must still be enabled, and the order total
// must lie within [auto_approve_min_amount, auto_approve_max_amount] (NULL:
// unbounded; bounds are in the program's currency, and an order in another
// currency cannot be compared). An order that fails them stays pending for
// manual review, with auto_approve_at cleared so later sweeps skip it and an
// audit entry (order.auto_approve_skip) saying why.
//
// An order whose transaction fails is skipped for this sweep (others still
// go); the errors are returned joined.
func (s *Store) AutoApproveDue(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit <= 0 {
		limit = 100
	}
	type due struct{ ws, id int64 }
	// The partial index orders_auto_approve serves this scan across workspaces;
	// each order is then handled within its own workspace.
	rows, err := s.r.QueryContext(ctx, `SELECT workspace_id, id FROM orders
		WHERE status = 'pending' AND auto_approve_at IS NOT NULL AND auto_approve_at <= $1
		ORDER BY auto_approve_at, id LIMIT $2`, ts(now), limit)
	if err != nil {
		return 0, unavailable(err)
	}
	var list []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.ws, &d.id); err != nil {
			rows.Close()
			return 0, unavailable(err)
		}
		list = append(list, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, unavailable(err)
	}
	approved := 0
	var errs []error
	for _, d := range list {
		if ctx.Err() != nil {
			break
		}
		var ok bool
		err := s.tx(ctx, func(tx *sql.Tx) error {
			var err error
			ok, err = s.autoApprove(ctx, tx, d.ws, d.id, now)
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("auto-approve order %d: %w", d.id, err))
			continue
		}
		if ok {
			approved++
		}
	}
	return approved, errors.Join(errs...)
}

// autoApprove handles one due order in tx: approves it when its program's
// criteria hold, else holds it for manual review. It reports whether it
// approved.
func (s *Store) autoApprove(ctx context.Context, tx *sql.Tx, wsID, id int64, now time.Time) (bool, error) {
	var (
		status, cur string
		total       int64
		progID      sql.NullInt64
		autoAt      sql.NullInt64
	)
	err := tx.QueryRowContext(ctx, `SELECT status, currency, total, program_id, auto_approve_at FROM orders
		WHERE workspace_id = $1 AND id = $2`, wsID, id).Scan(&status, &cur, &total, &progID, &autoAt)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if status != heldsway.OrderPending || !autoAt.Valid || autoAt.Int64 > ts(now) {
		return false, nil // another node got here first
	}
	var (
		enabled bool
		progCur string
		lo, hi  sql.NullInt64
	)
	q := `SELECT auto_approve_enabled, currency, auto_approve_min_amount, auto_approve_max_amount FROM programs
		WHERE workspace_id = $1 AND `
	args := []any{wsID}
	if progID.Valid {
		q += `id = $2`
		args = append(args, progID.Int64)
	} else {
		q += `is_default`
	}
	err = tx.QueryRowContext(ctx, q, args...).Scan(&enabled, &progCur, &lo, &hi)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, err
	}
	var why string
	switch {
	case errors.Is(err, sql.ErrNoRows):
		why = "The order has no program to take auto-approval criteria from."
	case !enabled:
		why = "Auto-approval is disabled for the order's program."
	case progCur != cur:
		why = fmt.Sprintf("The order's currency %s is not the program's %s, so the amount bounds cannot be compared.", cur, progCur)
	case lo.Valid && total < lo.Int64:
		c := orderCurrencyOf(cur)
		why = fmt.Sprintf("The order total %s is below the auto-approval minimum %s.", money.Format(total, c), money.Format(lo.Int64, c))
	case hi.Valid && total > hi.Int64:
		c := orderCurrencyOf(cur)
		why = fmt.Sprintf("The order total %s is above the auto-approval maximum %s.", money.Format(total, c), money.Format(hi.Int64, c))
	}
	if why == "" {
		o, err := s.reviewOrder(ctx, tx, wsID, id, true, "Auto-approved: the program's auto-approval criteria are met.", now, true)
		return o != nil, err
	}
	res, err := tx.ExecContext(ctx, `UPDATE orders SET auto_approve_at = NULL, updated_at = $1
		WHERE workspace_id = $2 AND id = $3 AND status = 'pending' AND auto_approve_at = $4`, ts(now), wsID, id, autoAt.Int64)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	before := struct {
		AutoApproveAt *string `json:"auto_approve_at"`
	}{snapTime(fromNullTS(autoAt))}
	after := struct {
		AutoApproveAt *string `json:"auto_approve_at"`
		Reason        string  `json:"reason"`
	}{nil, why + " The order stays pending for manual review."}
	return false, s.audit(ctx, tx, wsID, "order.auto_approve_skip", "order", id, before, after)
}
