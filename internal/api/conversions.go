package api

import (
	"context"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// POST /v1/conversions: a merchant's server reports an order. Validation
// happens in two steps: the schema (types, required fields, lengths, unknown
// fields) and then heldsway.ConversionRequest.Input (decimals of the currency,
// ranges, dates, e-mail, metadata), each with field details; nothing is written
// unless both pass.

type conversionCustomer struct {
	_     struct{} `nullable:"true"`
	Email string   `json:"email,omitempty" nullable:"true" maxLength:"255" doc:"Compared case-insensitively; also the key of the customer's binding to an affiliate and of the self-referral check."`
	ID    string   `json:"id,omitempty" nullable:"true" maxLength:"255" doc:"The merchant's customer id; the binding key when no e-mail is given."`
	Name  string   `json:"name,omitempty" nullable:"true" maxLength:"255"`
}

type conversionLineItem struct {
	ProductID string  `json:"product_id,omitempty" nullable:"true" maxLength:"255"`
	Name      string  `json:"name,omitempty" nullable:"true" maxLength:"255"`
	Category  string  `json:"category,omitempty" nullable:"true" maxLength:"255"`
	Quantity  int64   `json:"quantity" minimum:"1" maximum:"1000000"`
	Price     Decimal `json:"price" minimum:"0" doc:"Unit price in the order's currency."`
}

type conversionCreateInput struct {
	Body struct {
		OrderID  string   `json:"order_id" minLength:"1" maxLength:"255" doc:"The merchant's order id; one order per id per workspace." example:"#135419"`
		Total    Decimal  `json:"total" minimum:"0" doc:"What the customer paid, tax and shipping included, in currency units (120.50)."`
		Subtotal Decimal  `json:"subtotal" minimum:"0" doc:"Line items before discount and tax."`
		Discount *Decimal `json:"discount,omitempty" nullable:"true" minimum:"0" doc:"Default 0."`
		Tax      *Decimal `json:"tax,omitempty" nullable:"true" minimum:"0" doc:"Default 0."`
		Currency string   `json:"currency" doc:"ISO 4217 code. An attributed order must be in its program's currency." example:"USD"`
		// A time, not Timestamp: any RFC 3339 offset is accepted and stored in UTC.
		OccurredAt     *time.Time           `json:"occurred_at,omitempty" nullable:"true" doc:"When the order happened (RFC 3339); default now. At most 5 minutes in the future, not before 2000-01-01."`
		Customer       *conversionCustomer  `json:"customer,omitempty"`
		LineItems      []conversionLineItem `json:"line_items,omitempty" maxItems:"500"`
		SubscriptionID string               `json:"subscription_id,omitempty" nullable:"true" maxLength:"255" doc:"Marks a subscription: a later order with the same id is a renewal, paid per the program's recurring setting."`
		ClickID        string               `json:"click_id,omitempty" nullable:"true" maxLength:"255" doc:"The hs_click id from the redirect (or the hs_ref cookie). Attribution evidence, tried first."`
		CouponCode     string               `json:"coupon_code,omitempty" nullable:"true" maxLength:"255" doc:"A coupon used on the order (case-insensitive). Attribution evidence, tried second."`
		ReferralCode   string               `json:"referral_code,omitempty" nullable:"true" maxLength:"255" doc:"An affiliate's referral code (?ref=). Attribution evidence, tried third."`
		Metadata       orderMetadata        `json:"metadata,omitempty" doc:"Free-form object of at most 16 KiB, kept with the order."`
	}
}

func (s *Server) handleConversionCreate(ctx context.Context, in *conversionCreateInput) (*Out[orderView], error) {
	b := &in.Body
	req := heldsway.ConversionRequest{OrderID: b.OrderID, Currency: b.Currency, Total: decimalPtr(&b.Total),
		Subtotal: decimalPtr(&b.Subtotal), Discount: decimalPtr(b.Discount), Tax: decimalPtr(b.Tax), OccurredAt: b.OccurredAt,
		SubscriptionID: b.SubscriptionID, ClickID: b.ClickID, CouponCode: b.CouponCode, ReferralCode: b.ReferralCode,
		Metadata: []byte(b.Metadata)}
	if c := b.Customer; c != nil {
		req.Customer = heldsway.OrderCustomer{Email: c.Email, ID: c.ID, Name: c.Name}
	}
	for _, it := range b.LineItems {
		req.LineItems = append(req.LineItems, heldsway.LineItemRequest{ProductID: it.ProductID, Name: it.Name,
			Category: it.Category, Quantity: it.Quantity, Price: decimalPtr(&it.Price)})
	}
	conv, err := req.Input(s.Store.Now())
	if err != nil {
		return nil, err
	}
	o, err := s.Store.CreateConversion(ctx, principal(ctx).Workspace.ID, conv)
	if err != nil {
		return nil, err
	}
	return ok("Conversion recorded.", viewOrder(o)), nil
}

func decimalPtr(d *Decimal) *string {
	if d == nil {
		return nil
	}
	v := string(*d)
	return &v
}
