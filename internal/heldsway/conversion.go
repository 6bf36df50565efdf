package heldsway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heldsway/heldsway/internal/money"
)

// Limits of a reported conversion.
const (
	ConversionTextMaxLen     = 255       // order_id, ids, codes, customer and line item texts
	ConversionMaxLineItems   = 500       // line_items per order
	ConversionMaxQuantity    = 1_000_000 // per line item
	ConversionMetadataMaxLen = 16 << 10  // bytes of compact JSON
	// ConversionFutureSkew is how far in the future occurred_at may lie: the
	// merchant's clock and ours disagree a little. The same tolerance lets a
	// click recorded shortly after the reported occurred_at still count.
	ConversionFutureSkew = 5 * time.Minute
)

// ConversionEarliest is the earliest occurred_at accepted: anything before is a
// client bug (a zero or epoch date), not a real order.
var ConversionEarliest = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// ConversionRequest is a conversion as a client reports it, amounts still as
// the decimal text it sent ("120.50"): their precision depends on the currency,
// so they are parsed together with it. Nil amounts were not sent.
type ConversionRequest struct {
	OrderID        string
	Currency       string
	Total          *string
	Subtotal       *string
	Discount       *string
	Tax            *string
	OccurredAt     *time.Time // nil: now
	Customer       OrderCustomer
	LineItems      []LineItemRequest
	SubscriptionID string
	ClickID        string
	CouponCode     string
	ReferralCode   string
	Metadata       json.RawMessage
}

// LineItemRequest is one reported line item; Price is decimal text.
type LineItemRequest struct {
	ProductID string
	Name      string
	Category  string
	Quantity  int64
	Price     *string
}

// Input validates the request at time now and returns the conversion in minor
// units. Errors: EVALIDATION with details per field ("total",
// "customer.email", "line_items.3.price", …).
func (r *ConversionRequest) Input(now time.Time) (ConversionInput, error) {
	fe := FieldErrors{}
	in := ConversionInput{OrderID: r.OrderID, Customer: r.Customer, SubscriptionID: r.SubscriptionID,
		ClickID: r.ClickID, CouponCode: r.CouponCode, ReferralCode: r.ReferralCode, Metadata: r.Metadata}
	if r.OccurredAt != nil {
		in.OccurredAt = *r.OccurredAt
	}
	cur, curErr := money.ParseCurrency(strings.TrimSpace(r.Currency))
	if curErr == nil {
		in.Currency = cur.Code
	} else {
		in.Currency = r.Currency // Validate reports it
	}
	amount := func(field string, v *string, required bool) int64 {
		switch {
		case v == nil && required:
			fe.Add(field, fmt.Sprintf("The %s field is required.", convField(field)))
		case v == nil || curErr != nil:
		default:
			m, err := money.ParseMinor(*v, cur)
			switch {
			case err != nil:
				fe.Add(field, fmt.Sprintf("The %s field %s.", convField(field), err.Error()))
			case m < 0:
				fe.Add(field, fmt.Sprintf("The %s field must be at least 0.", convField(field)))
			default:
				return m
			}
		}
		return 0
	}
	in.Total = amount("total", r.Total, true)
	in.Subtotal = amount("subtotal", r.Subtotal, true)
	in.Discount = amount("discount", r.Discount, false)
	in.Tax = amount("tax", r.Tax, false)
	if len(r.LineItems) > 0 {
		in.LineItems = make([]LineItem, len(r.LineItems))
		for i, it := range r.LineItems {
			in.LineItems[i] = LineItem{ProductID: it.ProductID, Name: it.Name, Category: it.Category, Quantity: it.Quantity,
				Price: amount(fmt.Sprintf("line_items.%d.price", i), it.Price, true)}
		}
	}
	in.Normalize(now)
	in.validateInto(fe, now)
	if err := fe.Err(); err != nil {
		return ConversionInput{}, err
	}
	return in, nil
}

// Normalize trims the texts, lower-cases the customer e-mail, upper-cases the
// currency, drops a null metadata and takes now for a missing occurred_at. The
// time is kept in UTC at microsecond precision, as it is stored.
func (in *ConversionInput) Normalize(now time.Time) {
	in.OrderID = strings.TrimSpace(in.OrderID)
	in.Currency = strings.ToUpper(strings.TrimSpace(in.Currency))
	in.Customer.Email = NormalizeEmail(in.Customer.Email)
	in.Customer.ID = strings.TrimSpace(in.Customer.ID)
	in.Customer.Name = strings.TrimSpace(in.Customer.Name)
	in.SubscriptionID = strings.TrimSpace(in.SubscriptionID)
	in.ClickID = strings.TrimSpace(in.ClickID)
	in.CouponCode = strings.TrimSpace(in.CouponCode)
	in.ReferralCode = NormalizeReferralCode(in.ReferralCode)
	if in.OccurredAt.IsZero() {
		in.OccurredAt = now
	}
	in.OccurredAt = in.OccurredAt.UTC().Truncate(time.Microsecond)
	if t := bytes.TrimSpace(in.Metadata); len(t) == 0 || string(t) == "null" {
		in.Metadata = nil
	} else {
		var c bytes.Buffer
		if json.Compact(&c, t) == nil {
			in.Metadata = c.Bytes()
		}
	}
	for i := range in.LineItems {
		it := &in.LineItems[i]
		it.ProductID, it.Name, it.Category = strings.TrimSpace(it.ProductID), strings.TrimSpace(it.Name), strings.TrimSpace(it.Category)
	}
}

// Validate checks a normalized input at time now. Errors: EVALIDATION with
// details per field.
func (in *ConversionInput) Validate(now time.Time) error {
	fe := FieldErrors{}
	in.validateInto(fe, now)
	return fe.Err()
}

// validateInto adds the input's problems to fe, skipping fields that already
// have one (Input reports parse errors first).
func (in *ConversionInput) validateInto(fe FieldErrors, now time.Time) {
	add := func(field, format string, args ...any) {
		if _, dup := fe[field]; !dup {
			fe.Add(field, fmt.Sprintf("The %s field ", convField(field))+fmt.Sprintf(format, args...))
		}
	}
	text := func(field, v string) {
		switch {
		case !utf8.ValidString(v):
			add(field, "must be valid UTF-8.")
		case utf8.RuneCountInString(v) > ConversionTextMaxLen:
			add(field, "must not be greater than %d characters.", ConversionTextMaxLen)
		}
	}
	if in.OrderID == "" {
		add("order_id", "is required.")
	} else {
		text("order_id", in.OrderID)
	}
	var cur money.Currency
	curOK := false
	if in.Currency == "" {
		add("currency", "is required.")
	} else if c, err := money.ParseCurrency(in.Currency); err != nil || c.Code != in.Currency {
		add("currency", "must be a valid ISO 4217 currency code.")
	} else {
		cur, curOK = c, true
	}
	amount := func(field string, v int64) {
		switch {
		case v < 0:
			add(field, "must be at least 0.")
		case v > money.MaxMinor && curOK:
			add(field, "must not be greater than %s.", money.Format(money.MaxMinor, cur))
		case v > money.MaxMinor:
			add(field, "is out of range.")
		}
	}
	amount("total", in.Total)
	amount("subtotal", in.Subtotal)
	amount("discount", in.Discount)
	amount("tax", in.Tax)
	switch {
	case in.OccurredAt.IsZero():
		add("occurred_at", "is required.")
	case in.OccurredAt.Before(ConversionEarliest):
		add("occurred_at", "must be a date after %s.", ConversionEarliest.Format(time.DateOnly))
	case in.OccurredAt.After(now.Add(ConversionFutureSkew)):
		add("occurred_at", "must not be in the future.")
	}
	if e := in.Customer.Email; e != "" {
		text("customer.email", e)
		if a, err := mail.ParseAddress(e); err != nil || a.Name != "" || a.Address != e {
			add("customer.email", "must be a valid email address.")
		}
	}
	text("customer.id", in.Customer.ID)
	text("customer.name", in.Customer.Name)
	text("subscription_id", in.SubscriptionID)
	text("click_id", in.ClickID)
	text("coupon_code", in.CouponCode)
	text("referral_code", in.ReferralCode)
	if len(in.LineItems) > ConversionMaxLineItems {
		add("line_items", "must not have more than %d items.", ConversionMaxLineItems)
	} else {
		for i, it := range in.LineItems {
			p := "line_items." + strconv.Itoa(i) + "."
			text(p+"product_id", it.ProductID)
			text(p+"name", it.Name)
			text(p+"category", it.Category)
			switch {
			case it.Quantity < 1:
				add(p+"quantity", "must be at least 1.")
			case it.Quantity > ConversionMaxQuantity:
				add(p+"quantity", "must not be greater than %d.", ConversionMaxQuantity)
			}
			amount(p+"price", it.Price)
		}
	}
	if in.Metadata != nil {
		t := bytes.TrimSpace(in.Metadata)
		if len(t) == 0 || t[0] != '{' || !json.Valid(t) {
			add("metadata", "must be an object.")
		} else if len(t) > ConversionMetadataMaxLen {
			add("metadata", "must not be larger than %d bytes of JSON.", ConversionMetadataMaxLen)
		}
	}
}

// convField renders a field as the documented messages do: "order_id" →
// "order id"; paths such as "customer.email" stay as they are.
func convField(field string) string {
	if strings.Contains(field, ".") {
		return field
	}
	return strings.ReplaceAll(field, "_", " ")
}

// DuplicateOrder is the CONFLICT of a conversion whose order_id the workspace
// has already recorded. Details: {"order_id": [message], "existing_id": id}.
func DuplicateOrder(orderID string, existingID int64) error {
	msg := fmt.Sprintf("The order id %q has already been recorded as order %d.", orderID, existingID)
	return &Error{Code: ECONFLICT, Message: msg,
		Details: map[string]any{"order_id": []string{msg}, "existing_id": existingID}}
}

// ErrCurrencyMismatch is the VALIDATION_ERROR of an attributed conversion in
// a currency other than its program's: commissions, flat amounts and tiers are
// in the program's currency and HeldSway does no exchange.
func ErrCurrencyMismatch(orderCur, programCur string) error {
	return Invalid("currency", fmt.Sprintf(
		"The currency field must be the currency of the affiliate's program (%s), not %s.", programCur, orderCur))
}
