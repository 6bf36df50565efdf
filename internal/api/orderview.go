package api

import (
	"encoding/json"

	"github.com/danielgtaylor/huma/v2"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

// The order object (digest §6.4 and issue 4 "Shapes"): what POST /v1/conversions
// answers and what the orders API (GET /v1/orders, /v1/orders/{id}, the review
// actions) shows. One view so every route speaks of an order the same way.

// orderAffiliateView is the affiliate an order is attributed to.
type orderAffiliateView struct {
	_            struct{} `nullable:"true"`
	ID           int64    `json:"id"`
	Name         string   `json:"name"`
	ReferralCode string   `json:"referral_code"`
}

// orderCustomerView is the buyer as the merchant reported it.
type orderCustomerView struct {
	Email *string `json:"email" nullable:"true" doc:"Lower-cased."`
	ID    *string `json:"id" nullable:"true" doc:"The merchant's customer id."`
	Name  *string `json:"name" nullable:"true"`
}

// orderLineItemView is one product line; price is the unit price.
type orderLineItemView struct {
	ProductID *string `json:"product_id" nullable:"true"`
	Name      *string `json:"name" nullable:"true"`
	Category  *string `json:"category" nullable:"true"`
	Quantity  int64   `json:"quantity"`
	Price     Amount  `json:"price" doc:"Unit price in the order's currency."`
}

// orderCommissionView is one line of the commission breakdown: what one
// beneficiary earns on the order and why.
type orderCommissionView struct {
	ID             int64  `json:"id"`
	AffiliateID    int64  `json:"affiliate_id"`
	Tier           int    `json:"tier" doc:"1: the referring affiliate; 2: its parent (multi-tier)."`
	Amount         Amount `json:"amount" doc:"As computed at conversion; never changes. Reversals are in reversed_amount."`
	ReversedAmount Amount `json:"reversed_amount" doc:"Taken back by refunds."`
	Status         string `json:"status" enum:"pending,approved,rejected,reversed,paid"`
	Rule           string `json:"rule" enum:"link_rule,affiliate_override,program_rate,workspace_tier,platform_tier,platform_default,program_tier_rate" doc:"The rate precedence level that set the figure."`
	Rate           *Rate  `json:"rate" nullable:"true" doc:"Percentage applied; null for a flat amount."`
	BaseAmount     Amount `json:"base_amount" doc:"The amount the rate applied to (the program's commission base)."`
	Explanation    string `json:"explanation" doc:"The computation in words, e.g. \"10.00% of net 125.00 (subtotal 130.00 − discount 5.00) = 12.50 USD, rule: program_rate\"."`
	PayoutID       *int64 `json:"payout_id" nullable:"true"`
}

// orderView is the order object.
type orderView struct {
	ID               int64                 `json:"id" doc:"Internal id; /v1/orders/{id} takes it."`
	OrderID          string                `json:"order_id" doc:"The merchant's order id, unique in the workspace." example:"#135419"`
	Status           string                `json:"status" enum:"pending,approved,rejected,cancelled"`
	OrderTotal       Amount                `json:"order_total" doc:"What the customer paid, tax and shipping included."`
	Subtotal         Amount                `json:"subtotal" doc:"Line items before discount and tax."`
	Discount         Amount                `json:"discount"`
	Tax              Amount                `json:"tax"`
	RefundedAmount   Amount                `json:"refunded_amount"`
	CommissionAmount Amount                `json:"commission_amount" doc:"Sum of the payable commissions, net of reversals; 0 when unattributed or not payable (self-referral)."`
	CommissionRate   *Rate                 `json:"commission_rate" nullable:"true" doc:"The referring affiliate's rate (tier 1); null for a flat commission or an unattributed order."`
	Currency         string                `json:"currency" example:"USD"`
	ConvertedAt      Timestamp             `json:"converted_at" doc:"When the order happened (occurred_at of the conversion)."`
	Affiliate        *orderAffiliateView   `json:"affiliate" doc:"null: unattributed."`
	ProgramID        *int64                `json:"program_id" nullable:"true"`
	LinkID           *int64                `json:"link_id" nullable:"true" doc:"The referral link of the attributing click, if any."`
	ClickID          *string               `json:"click_id" nullable:"true" doc:"The attributing click (hs_click), if any."`
	CouponCode       *string               `json:"coupon_code" nullable:"true"`
	SubscriptionID   *string               `json:"subscription_id" nullable:"true"`
	Attribution      string                `json:"attribution" enum:"click,coupon,referral_code,customer,none" doc:"Which evidence attributed the order."`
	Flags            []string              `json:"flags" doc:"e.g. self_referral (the commissions are rejected, not paid), recurring_limit, recurring_off."`
	Customer         orderCustomerView     `json:"customer"`
	Commissions      []orderCommissionView `json:"commissions" doc:"The commission breakdown, tier 1 first; empty when unattributed."`
	LineItems        *[]orderLineItemView  `json:"line_items,omitempty" doc:"Present when the order is shown by itself (create, get); omitted in lists."`
	Metadata         orderMetadata         `json:"metadata" nullable:"true"`
	AutoApproveAt    *Timestamp            `json:"auto_approve_at" nullable:"true" doc:"When auto-approval looks at the order; null if the program does not auto-approve."`
	ApprovedAt       *Timestamp            `json:"approved_at" nullable:"true"`
	RejectedAt       *Timestamp            `json:"rejected_at" nullable:"true"`
	CancelledAt      *Timestamp            `json:"cancelled_at" nullable:"true"`
	CreatedAt        Timestamp             `json:"created_at"`
	UpdatedAt        Timestamp             `json:"updated_at"`
}

// orderCurrency returns the order's currency; stored codes were validated on the
// way in, so the fallback (two decimals) only guards against a corrupted row.
func orderCurrency(code string) money.Currency {
	c, err := money.ParseCurrency(code)
	if err != nil {
		return money.Currency{Code: code, Scale: 2}
	}
	return c
}

func strOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// viewOrder renders an order. Items are shown when loaded (o.Items non-nil).
func viewOrder(o *heldsway.Order) orderView {
	cur := orderCurrency(o.Currency)
	amt := func(m int64) Amount { return Amount{Minor: m, Currency: cur} }
	v := orderView{ID: o.ID, OrderID: o.OrderID, Status: o.Status, OrderTotal: amt(o.Total), Subtotal: amt(o.Subtotal),
		Discount: amt(o.Discount), Tax: amt(o.Tax), RefundedAmount: amt(o.RefundedAmount),
		CommissionAmount: amt(o.CommissionAmount), Currency: cur.Code, ConvertedAt: Timestamp(o.ConvertedAt),
		ProgramID: o.ProgramID, LinkID: o.LinkID, ClickID: strOrNil(o.ClickID), CouponCode: strOrNil(o.CouponCode),
		SubscriptionID: strOrNil(o.SubscriptionID), Attribution: o.Attribution, Flags: o.Flags,
		Customer:    orderCustomerView{Email: strOrNil(o.Customer.Email), ID: strOrNil(o.Customer.ID), Name: strOrNil(o.Customer.Name)},
		Commissions: make([]orderCommissionView, 0, len(o.Commissions)), Metadata: orderMetadata(o.Metadata),
		AutoApproveAt: tsPtr(o.AutoApproveAt), ApprovedAt: tsPtr(o.ApprovedAt), RejectedAt: tsPtr(o.RejectedAt),
		CancelledAt: tsPtr(o.CancelledAt), CreatedAt: Timestamp(o.CreatedAt), UpdatedAt: Timestamp(o.UpdatedAt)}
	if v.Flags == nil {
		v.Flags = []string{}
	}
	if o.CommissionRate != nil {
		r := Rate(*o.CommissionRate)
		v.CommissionRate = &r
	}
	if a := o.Affiliate; a != nil {
		v.Affiliate = &orderAffiliateView{ID: a.ID, Name: a.Name, ReferralCode: a.ReferralCode}
	}
	for _, c := range o.Commissions {
		cv := orderCommissionView{ID: c.ID, AffiliateID: c.AffiliateID, Tier: c.Tier, Amount: amt(c.Amount),
			ReversedAmount: amt(c.ReversedAmount), Status: c.Status, Rule: c.Rule, BaseAmount: amt(c.BaseAmount),
			Explanation: c.Explanation, PayoutID: c.PayoutID}
		if c.Rate != nil {
			r := Rate(*c.Rate)
			cv.Rate = &r
		}
		v.Commissions = append(v.Commissions, cv)
	}
	if o.Items != nil {
		items := make([]orderLineItemView, 0, len(o.Items))
		for _, it := range o.Items {
			items = append(items, orderLineItemView{ProductID: strOrNil(it.ProductID), Name: strOrNil(it.Name),
				Category: strOrNil(it.Category), Quantity: it.Quantity, Price: amt(it.Price)})
		}
		v.LineItems = &items
	}
	return v
}

// orderMetadata is the merchant's metadata object, kept byte for byte (numbers
// are not reparsed); null when none was sent.
type orderMetadata json.RawMessage

func (m *orderMetadata) UnmarshalJSON(b []byte) error {
	*m = append(orderMetadata(nil), b...)
	return nil
}

func (m orderMetadata) MarshalJSON() ([]byte, error) {
	if len(m) == 0 {
		return []byte("null"), nil
	}
	return m, nil
}

// Schema documents a free-form object.
func (orderMetadata) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: "object", AdditionalProperties: true,
		Description: "Free-form JSON object of at most 16 KiB (compact JSON), kept as sent."}
}
