package api

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

// Orders under review (digest §5.7): list, stats, CSV export, detail,
// approve/reject one or many, refund. /v1/conversions answers the same reads.

// OrderFilterParams are the filters the order list, stats and export share.
type OrderFilterParams struct {
	DateRange
	Search      string `query:"search" maxLength:"255" doc:"Case-insensitive substring of the merchant's order id or the affiliate's name."`
	Status      string `query:"status" enum:"pending,approved,rejected,cancelled" doc:"Only orders with this status."`
	AffiliateID int64  `query:"affiliate_id" minimum:"1" doc:"Only orders attributed to this affiliate, which must be one of this workspace's (422 otherwise)."`
}

// filter validates the date range (on converted_at, UTC days, inclusive).
func (p OrderFilterParams) filter() (heldsway.OrderFilter, error) {
	from, to, err := p.DateRange.bounds()
	return heldsway.OrderFilter{Search: p.Search, Status: p.Status, AffiliateID: p.AffiliateID, From: from, To: to}, err
}

type orderListInput struct {
	ListParams
	OrderFilterParams
	Sort string `query:"sort" enum:"order_id,order_total,commission_amount,converted_at,status" default:"converted_at" doc:"Sort field; ties are broken by id. Amounts sort by their minor units, whatever the currency."`
}

func (s *Server) handleOrderList(ctx context.Context, in *orderListInput) (*Out[Page[orderView]], error) {
	f, err := in.filter()
	if err != nil {
		return nil, err
	}
	o, err := in.options(in.Sort)
	if err != nil {
		return nil, err
	}
	res, err := s.Store.ListOrders(ctx, principal(ctx).Workspace.ID, f, o)
	if err != nil {
		return nil, err
	}
	return ok("OK", pageOut(res, in.ListParams, o, viewOrder)), nil
}

// orderStatsView is one currency's figures: amounts of different currencies
// are never added up.
type orderStatsView struct {
	Currency        string `json:"currency" example:"USD"`
	TotalOrders     int64  `json:"total_orders" doc:"Number of orders selected."`
	TotalRevenue    Amount `json:"total_revenue" doc:"Sum of the orders' subtotals."`
	TotalCommission Amount `json:"total_commission" doc:"pending + approved."`
	Pending         Amount `json:"pending" doc:"Commission awaiting approval: the orders' pending commissions, net of refund reversals."`
	Approved        Amount `json:"approved" doc:"Commission confirmed for payout: approved commissions and those already paid, net of refund reversals."`
}

type orderStatsOut struct {
	Items []orderStatsView `json:"items" doc:"One entry per currency among the selected orders, by currency code; empty when no order matches."`
}

type orderStatsInput struct {
	OrderFilterParams
}

func (s *Server) handleOrderStats(ctx context.Context, in *orderStatsInput) (*Out[orderStatsOut], error) {
	f, err := in.filter()
	if err != nil {
		return nil, err
	}
	stats, err := s.Store.OrderStats(ctx, principal(ctx).Workspace.ID, f)
	if err != nil {
		return nil, err
	}
	out := orderStatsOut{Items: make([]orderStatsView, 0, len(stats))}
	for _, st := range stats {
		cur := orderCurrency(st.Currency)
		amt := func(m int64) Amount { return Amount{Minor: m, Currency: cur} }
		out.Items = append(out.Items, orderStatsView{Currency: cur.Code, TotalOrders: st.TotalOrders,
			TotalRevenue: amt(st.TotalRevenue), TotalCommission: amt(st.TotalCommission), Pending: amt(st.Pending),
			Approved: amt(st.Approved)})
	}
	return ok("Order statistics retrieved.", out), nil
}

// OrderExportColumns are the export's CSV columns, in order. Amounts are
// decimals with the currency's exact minor-unit digits, as in the API
// (12450.00, 500 for JPY); rates are percentages with two decimals; times are
// RFC 3339 UTC with microseconds; an absent value is an empty cell.
var OrderExportColumns = []string{"id", "order_id", "status", "currency", "order_total", "subtotal", "discount", "tax",
	"refunded_amount", "commission_amount", "commission_rate", "affiliate_id", "affiliate_name", "affiliate_referral_code",
	"program_id", "link_id", "click_id", "coupon_code", "attribution", "converted_at", "approved_at", "rejected_at",
	"cancelled_at", "created_at"}

func orderExportColumnsDoc() string { return strings.Join(OrderExportColumns, ", ") }

type orderExportInput struct {
	OrderFilterParams
	Sort      string `query:"sort" enum:"order_id,order_total,commission_amount,converted_at,status" default:"converted_at" doc:"Sort field; ties are broken by id."`
	Direction string `query:"direction" enum:"asc,desc" default:"desc" doc:"Sort direction."`
}

// ExportRateLimit is the documented throttle of CSV exports, per API key.
const ExportRateLimit = 30

// limitExport is the export's own budget, on top of the key's: 30 a minute
// per API key (digest §4.5). It runs after authenticate, so the key is known.
func (s *Server) limitExport(ctx huma.Context, next func(huma.Context)) {
	if p := principal(ctx.Context()); p != nil &&
		!s.takeRate(ctx, "export:key:"+strconv.FormatInt(p.Key.ID, 10), ExportRateLimit) {
		return
	}
	next(ctx)
}

// handleOrderExport validates everything before the first byte, so a bad
// filter is a 422 envelope; then streams the rows as the store reads them, a
// chunk at a time, so an export of any size holds little memory. A failure
// mid-stream aborts the connection: a client sees a failed download, never a
// silently truncated file.
func (s *Server) handleOrderExport(ctx context.Context, in *orderExportInput) (*huma.StreamResponse, error) {
	f, err := in.filter()
	if err != nil {
		return nil, err
	}
	o := heldsway.ListOptions{Sort: in.Sort, Desc: in.Direction != "asc"}
	wsID := principal(ctx).Workspace.ID
	if err := s.Store.CheckOrderFilter(ctx, wsID, f); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("orders-%s.csv", s.Store.Now().UTC().Format("2006-01-02"))
	return &huma.StreamResponse{Body: func(hctx huma.Context) {
		hctx.SetHeader("Content-Type", "text/csv; charset=utf-8")
		hctx.SetHeader("Content-Disposition", `attachment; filename="`+name+`"`)
		hctx.SetHeader("Cache-Control", "no-store")
		hctx.SetStatus(http.StatusOK)
		w := csv.NewWriter(hctx.BodyWriter())
		row := make([]string, len(OrderExportColumns))
		_ = w.Write(OrderExportColumns)
		n := 0
		err := s.Store.ExportOrders(hctx.Context(), wsID, f, o, func(ord *heldsway.Order) error {
			orderCSVRow(row, ord)
			if err := w.Write(row); err != nil {
				return err
			}
			if n++; n%exportFlushEvery == 0 {
				w.Flush()
				// The controller unwraps the middleware's recorders to reach
				// the connection's Flusher.
				if rw, ok := hctx.BodyWriter().(http.ResponseWriter); ok {
					_ = http.NewResponseController(rw).Flush()
				}
			}
			return w.Error()
		})
		if err == nil {
			w.Flush()
			err = w.Error()
		}
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				s.Logger.Error("order export failed", "request_id", requestID(ctx), "err", err)
			}
			panic(http.ErrAbortHandler)
		}
	}}, nil
}

// exportFlushEvery bounds how many rows wait in buffers before reaching the client.
const exportFlushEvery = 200

// orderCSVRow fills row with ord's cells in OrderExportColumns order.
func orderCSVRow(row []string, ord *heldsway.Order) {
	cur := orderCurrency(ord.Currency)
	amt := func(m int64) string { return money.Format(m, cur) }
	opt := func(p *int64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatInt(*p, 10)
	}
	when := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(timestampLayout)
	}
	var rate, affID, affName, affCode string
	if ord.CommissionRate != nil {
		rate = money.FormatRate(*ord.CommissionRate)
	}
	if a := ord.Affiliate; a != nil {
		affID, affName, affCode = strconv.FormatInt(a.ID, 10), a.Name, a.ReferralCode
	}
	copy(row, []string{strconv.FormatInt(ord.ID, 10), csvText(ord.OrderID), ord.Status, cur.Code, amt(ord.Total),
		amt(ord.Subtotal), amt(ord.Discount), amt(ord.Tax), amt(ord.RefundedAmount), amt(ord.CommissionAmount), rate,
		affID, csvText(affName), csvText(affCode), opt(ord.ProgramID), opt(ord.LinkID), csvText(ord.ClickID),
		csvText(ord.CouponCode), ord.Attribution, when(&ord.ConvertedAt), when(ord.ApprovedAt), when(ord.RejectedAt),
		when(ord.CancelledAt), when(&ord.CreatedAt)})
}

// csvText neutralises a free-text cell that a spreadsheet would run as a
// formula (CSV injection): one starting with =, +, -, @, tab or CR gets a
// leading apostrophe. Only merchant- or affiliate-supplied text passes here;
// numbers and amounts are written as they are.
func csvText(s string) string {
	if s != "" {
		switch s[0] {
		case '=', '+', '-', '@', '\t', '\r':
			return "'" + s
		}
	}
	return s
}

type orderIDInput struct {
	ID int64 `path:"id" minimum:"1" doc:"Internal order id (the id field), not the merchant's order_id."`
}

func (s *Server) handleOrderGet(ctx context.Context, in *orderIDInput) (*Out[orderView], error) {
	o, err := s.Store.FindOrder(ctx, principal(ctx).Workspace.ID, in.ID)
	if err != nil {
		return nil, err
	}
	return ok("OK", viewOrder(o)), nil
}

type orderReviewInput struct {
	ID   int64 `path:"id" minimum:"1" doc:"Internal order id."`
	Body *struct {
		Reason string `json:"reason,omitempty" maxLength:"1000" doc:"Why; kept in the audit entry."`
	} `required:"false"`
}

func (s *Server) orderReview(ctx context.Context, in *orderReviewInput, approve bool, msg string) (*Out[orderView], error) {
	var reason string
	if in.Body != nil {
		reason = in.Body.Reason
	}
	o, err := s.Store.ReviewOrder(ctx, principal(ctx).Workspace.ID, in.ID, approve, reason)
	if err != nil {
		return nil, err
	}
	return ok(msg, viewOrder(o)), nil
}

func (s *Server) handleOrderApprove(ctx context.Context, in *orderReviewInput) (*Out[orderView], error) {
	return s.orderReview(ctx, in, true, "Order approved.")
}

func (s *Server) handleOrderReject(ctx context.Context, in *orderReviewInput) (*Out[orderView], error) {
	return s.orderReview(ctx, in, false, "Order rejected.")
}

type orderBulkInput struct {
	Body struct {
		IDs    []int64 `json:"ids" minItems:"1" maxItems:"100" nullable:"false" doc:"1 to 100 distinct internal order ids."`
		Reason string  `json:"reason,omitempty" maxLength:"1000" doc:"Why; kept in each order's audit entry."`
	}
}

type bulkErrorView struct {
	Code    string `json:"code" example:"INVALID_STATUS_TRANSITION"`
	Message string `json:"message"`
}

type orderBulkResultView struct {
	ID      int64          `json:"id"`
	Success bool           `json:"success"`
	Status  string         `json:"status,omitempty" enum:"approved,rejected" doc:"The order's status after the action; present on success."`
	Error   *bulkErrorView `json:"error,omitempty" doc:"Why this id failed: NOT_FOUND (unknown or another workspace's) or INVALID_STATUS_TRANSITION (not pending)."`
}

type orderBulkOut struct {
	Items     []orderBulkResultView `json:"items" doc:"One result per id, in request order."`
	Succeeded int                   `json:"succeeded"`
	Failed    int                   `json:"failed"`
}

func (s *Server) orderBulk(ctx context.Context, in *orderBulkInput, approve bool, msg string) (*Out[orderBulkOut], error) {
	fe := heldsway.FieldErrors{}
	seen := make(map[int64]bool, len(in.Body.IDs))
	for i, id := range in.Body.IDs {
		field := fmt.Sprintf("ids.%d", i)
		if id < 1 {
			fe.Add(field, fmt.Sprintf("The %s field must be at least 1.", field))
		} else if seen[id] {
			fe.Add(field, fmt.Sprintf("The %s field has a duplicate value (%d).", field, id))
		}
		seen[id] = true
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	res, err := s.Store.BulkReview(ctx, principal(ctx).Workspace.ID, in.Body.IDs, approve, in.Body.Reason)
	if err != nil {
		return nil, err
	}
	out := orderBulkOut{Items: make([]orderBulkResultView, 0, len(res))}
	for _, r := range res {
		v := orderBulkResultView{ID: r.ID, Success: r.Err == nil, Status: r.Status}
		if r.Err != nil {
			if heldsway.ErrorCode(r.Err) == heldsway.EINTERNAL {
				s.Logger.Error("bulk review", "request_id", requestID(ctx), "order", r.ID, "err", r.Err)
			}
			v.Error = &bulkErrorView{Code: heldsway.ErrorCode(r.Err), Message: heldsway.ErrorMessage(r.Err)}
			out.Failed++
		} else {
			out.Succeeded++
		}
		out.Items = append(out.Items, v)
	}
	return ok(msg, out), nil
}

func (s *Server) handleOrderBulkApprove(ctx context.Context, in *orderBulkInput) (*Out[orderBulkOut], error) {
	return s.orderBulk(ctx, in, true, "Bulk approval processed.")
}

func (s *Server) handleOrderBulkReject(ctx context.Context, in *orderBulkInput) (*Out[orderBulkOut], error) {
	return s.orderBulk(ctx, in, false, "Bulk rejection processed.")
}

type orderRefundInput struct {
	ID   int64 `path:"id" minimum:"1" doc:"Internal order id."`
	Body *struct {
		Amount *Decimal `json:"amount,omitempty" doc:"Amount refunded, in the order's currency with at most its decimals; > 0 and at most the unrefunded total. Absent: the whole unrefunded total."`
		Reason string   `json:"reason,omitempty" maxLength:"1000" doc:"Why; kept in the audit entry and the conversion.refunded event."`
	} `required:"false"`
}

func (s *Server) handleOrderRefund(ctx context.Context, in *orderRefundInput) (*Out[orderView], error) {
	wsID := principal(ctx).Workspace.ID
	var (
		amount *int64
		reason string
	)
	if b := in.Body; b != nil {
		reason = b.Reason
		if b.Amount != nil {
			// The amount's decimals depend on the order's currency.
			o, err := s.Store.FindOrder(ctx, wsID, in.ID)
			if err != nil {
				return nil, err
			}
			cur := orderCurrency(o.Currency)
			m, err := b.Amount.Minor(cur)
			if err != nil {
				if errors.Is(err, money.ErrPrecision) {
					return nil, heldsway.Invalid("amount", fmt.Sprintf("The amount field must have at most %d decimal places for %s.", cur.Scale, cur.Code))
				}
				return nil, heldsway.Invalid("amount", "The amount field "+err.Error()+".")
			}
			if m <= 0 {
				return nil, heldsway.Invalid("amount", "The amount field must be greater than 0.")
			}
			amount = &m
		}
	}
	o, err := s.Store.RefundOrder(ctx, wsID, in.ID, amount, reason)
	if err != nil {
		return nil, err
	}
	return ok("Order refunded.", viewOrder(o)), nil
}
