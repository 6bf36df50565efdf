package api

import (
	"context"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// commissionView is one commission: what one beneficiary earns on one order,
// with the order it belongs to.
type commissionView struct {
	ID             int64      `json:"id"`
	ConversionID   int64      `json:"conversion_id" doc:"Internal id of the order (GET /v1/orders/{id})."`
	OrderID        string     `json:"order_id" doc:"The merchant's order id." example:"#135419"`
	AffiliateID    int64      `json:"affiliate_id"`
	Tier           int        `json:"tier" doc:"1: the referring affiliate; 2: its parent (multi-tier)."`
	Currency       string     `json:"currency" example:"USD"`
	Amount         Amount     `json:"amount" doc:"As computed at conversion; never changes."`
	ReversedAmount Amount     `json:"reversed_amount" doc:"Taken back by refunds."`
	NetAmount      Amount     `json:"net_amount" doc:"amount − reversed_amount."`
	Rate           *Rate      `json:"rate" nullable:"true" doc:"Percentage applied; null for a flat amount."`
	Rule           string     `json:"rule" doc:"The rate precedence level that set the figure."`
	BaseAmount     Amount     `json:"base_amount" doc:"The amount the rate applied to."`
	Explanation    string     `json:"explanation"`
	Status         string     `json:"status" enum:"pending,approved,rejected,reversed,paid" doc:"reversed: fully reversed by refunds. A paid commission keeps status paid while partly reversed."`
	PayoutID       *int64     `json:"payout_id" nullable:"true"`
	CreatedAt      Timestamp  `json:"created_at"`
	ApprovedAt     *Timestamp `json:"approved_at" nullable:"true"`
	UpdatedAt      Timestamp  `json:"updated_at"`
}

func viewCommission(c *heldsway.Commission) commissionView {
	cur := orderCurrency(c.Currency)
	amt := func(m int64) Amount { return Amount{Minor: m, Currency: cur} }
	v := commissionView{ID: c.ID, ConversionID: c.OrderID, OrderID: c.OrderRef, AffiliateID: c.AffiliateID, Tier: c.Tier,
		Currency: cur.Code, Amount: amt(c.Amount), ReversedAmount: amt(c.ReversedAmount), NetAmount: amt(c.Net()),
		Rule: c.Rule, BaseAmount: amt(c.BaseAmount), Explanation: c.Explanation, Status: c.Status, PayoutID: c.PayoutID,
		CreatedAt: Timestamp(c.CreatedAt), ApprovedAt: tsPtr(c.ApprovedAt), UpdatedAt: Timestamp(c.UpdatedAt)}
	if c.Rate != nil {
		r := Rate(*c.Rate)
		v.Rate = &r
	}
	return v
}

type commissionListInput struct {
	ListParams
	DateRange
	AffiliateID int64  `query:"affiliate_id" minimum:"1" doc:"Only this affiliate's commissions; must be one of this workspace's affiliates (422 otherwise)."`
	Status      string `query:"status" enum:"pending,approved,rejected,reversed,paid" doc:"Only commissions with this status."`
	Sort        string `query:"sort" enum:"created_at,amount" default:"created_at" doc:"Sort field; ties are broken by id. from/to filter on created_at."`
}

func (s *Server) handleCommissionList(ctx context.Context, in *commissionListInput) (*Out[Page[commissionView]], error) {
	from, to, err := in.DateRange.bounds()
	if err != nil {
		return nil, err
	}
	o, err := in.options(in.Sort)
	if err != nil {
		return nil, err
	}
	res, err := s.Store.ListCommissions(ctx, principal(ctx).Workspace.ID,
		heldsway.CommissionFilter{AffiliateID: in.AffiliateID, Status: in.Status, From: from, To: to}, o)
	if err != nil {
		return nil, err
	}
	return ok("OK", pageOut(res, in.ListParams, o, viewCommission)), nil
}
