package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

// The storefront event handlers. Each validates its whole body (schema, then
// ids, URLs and amounts with field details) before anything is read or written.

// ---- pageview, thank-you, identify -------------------------------------

type pageviewInput struct {
	Body struct {
		TrackContext
	}
}

func (sf *storefront) handlePageview(ctx context.Context, in *pageviewInput) (*Out[eventAck], error) {
	fe := heldsway.FieldErrors{}
	in.Body.check(fe)
	if err := fe.Err(); err != nil {
		return nil, err
	}
	return sf.record(ctx, heldsway.EventPageview, &in.Body.TrackContext, heldsway.StorefrontEvent{})
}

type thankYouInput struct {
	Body struct {
		TrackContext
		OrderID  string `json:"order_id" minLength:"1" maxLength:"255" doc:"The merchant's order id, as sent to POST /v1/track/order."`
		Customer *struct {
			Email string `json:"email,omitempty" nullable:"true" maxLength:"255" format:"email"`
		} `json:"customer,omitempty"`
	}
}

func (sf *storefront) handleThankYou(ctx context.Context, in *thankYouInput) (*Out[eventAck], error) {
	fe := heldsway.FieldErrors{}
	in.Body.check(fe)
	if err := fe.Err(); err != nil {
		return nil, err
	}
	e := heldsway.StorefrontEvent{OrderID: strings.TrimSpace(in.Body.OrderID)}
	if c := in.Body.Customer; c != nil {
		e.Email = heldsway.NormalizeEmail(c.Email)
	}
	return sf.record(ctx, heldsway.EventThankYou, &in.Body.TrackContext, e)
}

type identifyInput struct {
	Body struct {
		TrackContext
		Email  string `json:"email" maxLength:"255" format:"email" doc:"Stored lower-cased."`
		UserID string `json:"user_id,omitempty" nullable:"true" maxLength:"255" doc:"The merchant's user id."`
		Name   string `json:"name,omitempty" nullable:"true" maxLength:"255" doc:"Accepted for SDK compatibility and not stored: analytics need the e-mail, not the name."`
	}
}

func (sf *storefront) handleIdentify(ctx context.Context, in *identifyInput) (*Out[eventAck], error) {
	fe := heldsway.FieldErrors{}
	in.Body.check(fe)
	if err := fe.Err(); err != nil {
		return nil, err
	}
	return sf.record(ctx, heldsway.EventIdentify, &in.Body.TrackContext,
		heldsway.StorefrontEvent{Email: heldsway.NormalizeEmail(in.Body.Email), CustomerID: strings.TrimSpace(in.Body.UserID)})
}

// ---- product view, cart, checkout ---------------------------------------

// TrackProduct is a product of a storefront event (exported for huma, as
// TrackContext).
type TrackProduct struct {
	ProductID string   `json:"product_id" minLength:"1" maxLength:"255"`
	Name      string   `json:"name,omitempty" nullable:"true" maxLength:"255"`
	Category  string   `json:"category,omitempty" nullable:"true" maxLength:"255"`
	Price     *Decimal `json:"price,omitempty" nullable:"true" minimum:"0" doc:"Unit price in the event's currency."`
}

type productViewInput struct {
	Body struct {
		TrackContext
		Currency string       `json:"currency,omitempty" nullable:"true" maxLength:"3" doc:"ISO 4217 code of the price; default the workspace's default program currency."`
		Product  TrackProduct `json:"product"`
	}
}

func (sf *storefront) handleProductView(ctx context.Context, in *productViewInput) (*Out[eventAck], error) {
	fe := heldsway.FieldErrors{}
	in.Body.check(fe)
	e, err := sf.productEvent(ctx, fe, "product", in.Body.Currency, &in.Body.Product, nil)
	if err != nil {
		return nil, err
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	return sf.record(ctx, heldsway.EventProductView, &in.Body.TrackContext, e)
}

// productEvent builds the product fields of an event; problems go to fe
// under prefix.
func (sf *storefront) productEvent(ctx context.Context, fe heldsway.FieldErrors, prefix, currency string, p *TrackProduct, qty *int64) (heldsway.StorefrontEvent, error) {
	e := heldsway.StorefrontEvent{ProductID: strings.TrimSpace(p.ProductID), ProductName: strings.TrimSpace(p.Name),
		Category: strings.TrimSpace(p.Category), Quantity: qty}
	if p.Price != nil {
		cur, ok, err := sf.currency(ctx, fe, "currency", currency)
		if err != nil || !ok {
			return e, err
		}
		e.Amount, e.Currency = minor(fe, prefix+".price", p.Price, cur), cur.Code
	}
	return e, nil
}

type cartItem struct {
	TrackProduct
	Quantity int64 `json:"quantity" minimum:"1" maximum:"1000000"`
}

type cartInput struct {
	Body struct {
		TrackContext
		CartID   string     `json:"cart_id,omitempty" nullable:"true" maxLength:"255"`
		Currency string     `json:"currency,omitempty" nullable:"true" maxLength:"3" doc:"ISO 4217 code of the prices; default the workspace's default program currency."`
		Items    []cartItem `json:"items" minItems:"1" maxItems:"100" doc:"One stored row per item."`
	}
}

func (sf *storefront) handleCart(typ string) func(context.Context, *cartInput) (*Out[eventAck], error) {
	return func(ctx context.Context, in *cartInput) (*Out[eventAck], error) {
		fe := heldsway.FieldErrors{}
		in.Body.check(fe)
		evs := make([]heldsway.StorefrontEvent, 0, len(in.Body.Items))
		for i := range in.Body.Items {
			it := &in.Body.Items[i]
			q := it.Quantity
			e, err := sf.productEvent(ctx, fe, fmt.Sprintf("items.%d", i), in.Body.Currency, &it.TrackProduct, &q)
			if err != nil {
				return nil, err
			}
			e.CartID = strings.TrimSpace(in.Body.CartID)
			evs = append(evs, e)
		}
		if err := fe.Err(); err != nil {
			return nil, err
		}
		return sf.record(ctx, typ, &in.Body.TrackContext, evs...)
	}
}

type checkoutInput struct {
	Body struct {
		TrackContext
		CartID    string   `json:"cart_id,omitempty" nullable:"true" maxLength:"255"`
		Total     *Decimal `json:"total,omitempty" nullable:"true" minimum:"0" doc:"The cart total."`
		Currency  string   `json:"currency,omitempty" nullable:"true" maxLength:"3" doc:"ISO 4217 code of total; default the workspace's default program currency."`
		ItemCount *int64   `json:"item_count,omitempty" nullable:"true" minimum:"0" maximum:"1000000" doc:"Units in the cart."`
	}
}

func (sf *storefront) handleCheckout(ctx context.Context, in *checkoutInput) (*Out[eventAck], error) {
	fe := heldsway.FieldErrors{}
	in.Body.check(fe)
	e := heldsway.StorefrontEvent{CartID: strings.TrimSpace(in.Body.CartID), Quantity: in.Body.ItemCount}
	if in.Body.Total != nil {
		cur, ok, err := sf.currency(ctx, fe, "currency", in.Body.Currency)
		if err != nil {
			return nil, err
		}
		if ok {
			e.Amount, e.Currency = minor(fe, "total", in.Body.Total, cur), cur.Code
		}
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	return sf.record(ctx, heldsway.EventCheckout, &in.Body.TrackContext, e)
}

// ---- order ----------------------------------------------------------------

type trackCustomer struct {
	_      struct{} `nullable:"true"`
	Email  string   `json:"email,omitempty" nullable:"true" maxLength:"255" doc:"Compared case-insensitively; binds the customer to the affiliate and detects self-referral, as in POST /v1/conversions."`
	UserID string   `json:"user_id,omitempty" nullable:"true" maxLength:"255" doc:"The merchant's customer id (customer.id of POST /v1/conversions)."`
	Name   string   `json:"name,omitempty" nullable:"true" maxLength:"255"`
}

type trackOrderInput struct {
	Body struct {
		TrackContext
		OrderID    string               `json:"order_id" minLength:"1" maxLength:"255" doc:"The merchant's order id; one order per id per workspace."`
		Total      Decimal              `json:"total" minimum:"0" doc:"What the customer paid, in currency units (120.50)."`
		Subtotal   *Decimal             `json:"subtotal,omitempty" nullable:"true" minimum:"0" doc:"Line items before discount and tax. Default: the sum of line_items (quantity × price), else total − tax + discount."`
		Discount   *Decimal             `json:"discount,omitempty" nullable:"true" minimum:"0" doc:"Default 0."`
		Tax        *Decimal             `json:"tax,omitempty" nullable:"true" minimum:"0" doc:"Default 0."`
		Currency   string               `json:"currency,omitempty" nullable:"true" maxLength:"3" doc:"ISO 4217 code; default the workspace's default program currency."`
		Customer   *trackCustomer       `json:"customer,omitempty"`
		LineItems  []conversionLineItem `json:"line_items,omitempty" maxItems:"500"`
		CouponCode string               `json:"coupon_code,omitempty" nullable:"true" maxLength:"255" doc:"The discount code applied (the SDK's aff_discount). Attribution evidence after click_id."`
		Metadata   orderMetadata        `json:"metadata,omitempty" doc:"Free-form object of at most 16 KiB, kept with the order."`
	}
}

type trackOrderData struct {
	ConversionID     int64  `json:"conversion_id" doc:"The order's internal id (GET /v1/orders/{id})."`
	OrderID          string `json:"order_id"`
	Status           string `json:"status" enum:"pending,approved,rejected,cancelled"`
	CommissionAmount Amount `json:"commission_amount"`
	Currency         string `json:"currency"`
	AffiliateID      *int64 `json:"affiliate_id" nullable:"true" doc:"null: unattributed."`
}

func (sf *storefront) handleOrder(ctx context.Context, in *trackOrderInput) (*Out[trackOrderData], error) {
	b := &in.Body
	fe := heldsway.FieldErrors{}
	b.check(fe)
	cur, curOK, err := sf.currency(ctx, fe, "currency", strings.TrimSpace(b.Currency))
	if err != nil {
		return nil, err
	}
	req := heldsway.ConversionRequest{OrderID: b.OrderID, Currency: cur.Code, Total: decimalPtr(&b.Total),
		Subtotal: decimalPtr(b.Subtotal), Discount: decimalPtr(b.Discount), Tax: decimalPtr(b.Tax),
		ClickID: b.ClickID, CouponCode: b.CouponCode, Metadata: []byte(b.Metadata)}
	if c := b.Customer; c != nil {
		req.Customer = heldsway.OrderCustomer{Email: c.Email, ID: c.UserID, Name: c.Name}
	}
	for _, it := range b.LineItems {
		req.LineItems = append(req.LineItems, heldsway.LineItemRequest{ProductID: it.ProductID, Name: it.Name,
			Category: it.Category, Quantity: it.Quantity, Price: decimalPtr(&it.Price)})
	}
	if req.Subtotal == nil && curOK {
		req.Subtotal = defaultSubtotal(b.Total, b.Discount, b.Tax, b.LineItems, cur)
	}
	if !curOK {
		req.Currency = "USD" // the currency error is in fe; parse the rest anyway, for its details
		req.Subtotal = decimalPtr(&b.Total)
	}
	now := sf.s.Store.Now()
	conv, err := req.Input(now)
	if err := mergeValidation(fe, err); err != nil {
		return nil, err
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	// The same path as POST /v1/conversions: attribution, commissions, audit
	// entry and events, duplicates answered 409 with the existing id.
	o, err := sf.s.Store.CreateConversion(ctx, principal(ctx).Workspace.ID, conv)
	if err != nil {
		return nil, err
	}
	data := trackOrderData{ConversionID: o.ID, OrderID: o.OrderID, Status: o.Status, Currency: o.Currency,
		CommissionAmount: Amount{Minor: o.CommissionAmount, Currency: orderCurrency(o.Currency)}}
	if o.Affiliate != nil {
		data.AffiliateID = &o.Affiliate.ID
	}
	// The order's row among the visitor's events ties the order to the
	// session (revenue by source, sessions that converted). The order is
	// already recorded: a failure here is logged, not answered.
	ev := heldsway.StorefrontEvent{OrderID: o.OrderID, Amount: &o.Total, Currency: o.Currency}
	if data.AffiliateID != nil { // the order's attribution, not the click's guess
		ev.AffiliateID, ev.LinkID, ev.ProgramID = data.AffiliateID, o.LinkID, o.ProgramID
		if ev.LinkID != nil && *ev.LinkID == 0 {
			ev.LinkID = nil
		}
	}
	if _, err := sf.record(ctx, heldsway.EventOrder, &b.TrackContext, ev); err != nil {
		sf.s.Logger.WarnContext(ctx, "storefront order event", "order", o.ID, "err", err)
	}
	return ok("Conversion recorded.", data), nil
}

// defaultSubtotal is the sum of the line items, else total − tax + discount
// (not below 0); nil when an amount does not parse (Input reports it).
func defaultSubtotal(total Decimal, discount, tax *Decimal, items []conversionLineItem, cur money.Currency) *string {
	parse := func(d *Decimal) (int64, bool) {
		if d == nil {
			return 0, true
		}
		m, err := d.Minor(cur)
		return m, err == nil && m >= 0
	}
	var sub int64
	if len(items) > 0 {
		for _, it := range items {
			p, ok := parse(&it.Price)
			if !ok || it.Quantity < 1 || (p > 0 && it.Quantity > money.MaxMinor/p) || sub+p*it.Quantity > money.MaxMinor {
				return decimalPtr(&total)
			}
			sub += p * it.Quantity
		}
	} else {
		t, ok1 := parse(&total)
		d, ok2 := parse(discount)
		x, ok3 := parse(tax)
		if !ok1 || !ok2 || !ok3 {
			return decimalPtr(&total)
		}
		sub = max(t-x+d, 0)
	}
	s := money.Format(min(sub, money.MaxMinor), cur)
	return &s
}

// ---- click ----------------------------------------------------------------

type trackClickInput struct {
	Body struct {
		TrackContext
		ReferralCode string `json:"referral_code,omitempty" nullable:"true" maxLength:"255" doc:"The ?ref= code of the landing. Required unless click_id names a click already recorded (a landing through the redirect, with hs_click)."`
	}
}

type trackClickData struct {
	ClickID        *string    `json:"click_id" nullable:"true" doc:"The click; null when nothing was recorded (a known bot, or an affiliate, program or workspace that is not active)."`
	CookieToken    *string    `json:"cookie_token" nullable:"true" doc:"The same id: keep it in the storefront's attribution cookie and send it as click_id with later events and the order."`
	Counted        bool       `json:"counted" doc:"false when an earlier click answers: the click_id sent, or the visitor's click within the last 30 s."`
	ReferralCode   *string    `json:"referral_code" nullable:"true"`
	AffiliateID    *int64     `json:"affiliate_id" nullable:"true"`
	CookieDuration *int       `json:"cookie_duration" nullable:"true" doc:"The program's cookie window in days."`
	ExpiresAt      *Timestamp `json:"expires_at" nullable:"true" doc:"When the click stops attributing: the attribution cookie's expiry."`
}

func (sf *storefront) handleClick(ctx context.Context, in *trackClickInput) (*Out[trackClickData], error) {
	b := &in.Body
	fe := heldsway.FieldErrors{}
	b.check(fe)
	code := heldsway.NormalizeReferralCode(b.ReferralCode)
	if code == "" && b.ClickID == "" {
		fe.Add("referral_code", "The referral code field is required when click_id is absent.")
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	ws := principal(ctx).Workspace.ID
	now := sf.s.Store.Now().UTC()
	answer := func(clickID, code string, aff int64, days int, created time.Time, counted bool) *Out[trackClickData] {
		exp := Timestamp(created.Add(time.Duration(days) * 24 * time.Hour))
		return ok("Click recorded.", trackClickData{ClickID: &clickID, CookieToken: &clickID, Counted: counted,
			ReferralCode: &code, AffiliateID: &aff, CookieDuration: &days, ExpiresAt: &exp})
	}
	// A landing through the redirect: its click exists, it is not counted twice.
	if b.ClickID != "" {
		c, err := sf.s.Store.FindClickRef(ctx, ws, b.ClickID)
		switch {
		case heldsway.ErrorCode(err) == heldsway.ENOTFOUND:
		case err != nil:
			return nil, err
		case (code == "" || code == c.ReferralCode) && c.InWindow(now):
			return answer(c.ClickID, c.ReferralCode, c.AffiliateID, c.CookieDays, c.CreatedAt, false), nil
		}
		if code == "" {
			return nil, heldsway.NotFound("Click")
		}
	}
	t, err := sf.s.Store.ReferralTarget(ctx, ws, code)
	if err != nil {
		return nil, err
	}
	none := ok("Click not recorded.", trackClickData{})
	if !t.Tracks() {
		return none, nil
	}
	r := requestOf(ctx)
	ua := userAgent(ctx, r, &b.TrackContext)
	if isBot(ctx, ua) {
		return none, nil
	}
	var landing string
	if u, err := url.Parse(b.URL); err == nil && b.URL != "" {
		landing = u.RawQuery
	}
	click := heldsway.Click{WorkspaceID: ws, AffiliateID: t.AffiliateID, ProgramID: t.ProgramID, VisitorID: b.VisitorID,
		UserAgent: ua, Referrer: b.Referrer, LandingQuery: landing}
	id, counted, err := sf.recordClick(ctx, r, click)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return none, nil
	}
	return answer(id, t.ReferralCode, t.AffiliateID, t.CookieDays, now, counted), nil
}

// recordClick writes through the tracker's click writer when the server has
// one; otherwise (a server without the redirect) straight to the store.
func (sf *storefront) recordClick(ctx context.Context, r *http.Request, c heldsway.Click) (string, bool, error) {
	if rec, ok := sf.s.Tracker.(clickRecorder); ok {
		id, counted, err := rec.RecordClick(ctx, r, c)
		if err != nil && heldsway.ErrorCode(err) == heldsway.EINTERNAL {
			err = &heldsway.Error{Code: heldsway.EUNAVAILABLE, Message: "The click could not be recorded. Please retry.", Err: err}
		}
		return id, counted, err
	}
	c.ClickID = newSessionID()
	c.CreatedAt = sf.s.Store.Now().UTC()
	c.UserAgent, c.Referrer, c.LandingQuery = truncateBytes(c.UserAgent, 512), truncateBytes(c.Referrer, 1024),
		truncateBytes(c.LandingQuery, 1024)
	if err := sf.s.Store.InsertClicks(ctx, []heldsway.Click{c}); err != nil {
		return "", false, err
	}
	return c.ClickID, true, nil
}

// ---- init and discounts -----------------------------------------------------

type trackInitData struct {
	Workspace        string   `json:"workspace" doc:"The workspace's name."`
	Currency         string   `json:"currency" doc:"The default program's currency: the default of every event's currency."`
	CookieDuration   int      `json:"cookie_duration" doc:"The default program's cookie window in days."`
	AttributionModel string   `json:"attribution_model" enum:"first_click,last_click"`
	PageviewsEnabled bool     `json:"pageviews_enabled" doc:"Whether the key may send page views (scope pageviews:write): the SDK's automatic page-view tracking follows it."`
	SessionTimeout   int      `json:"session_timeout_minutes" doc:"Inactivity that ends a session (30)."`
	Scopes           []string `json:"scopes" doc:"The key's scopes."`
	RefParam         string   `json:"ref_param" doc:"The landing parameter with the referral code (ref)."`
	ClickParam       string   `json:"click_param" doc:"The landing parameter with the redirect's click id (hs_click)."`
	DiscountParam    string   `json:"discount_param" doc:"The landing parameter with a discount code (discount)."`
}

func (sf *storefront) handleInit(ctx context.Context, _ *struct{}) (*Out[trackInitData], error) {
	p := principal(ctx)
	prog, err := sf.s.Store.FindDefaultProgram(ctx, p.Workspace.ID)
	if err != nil {
		return nil, err
	}
	return ok("OK", trackInitData{Workspace: p.Workspace.Name, Currency: prog.Currency, CookieDuration: prog.CookieDays,
		AttributionModel: prog.AttributionModel, PageviewsEnabled: heldsway.HasScope(p.Scopes, heldsway.ScopePageviewsWrite),
		SessionTimeout: int(heldsway.StorefrontSessionTimeout / time.Minute), Scopes: p.Scopes,
		RefParam: "ref", ClickParam: "hs_click", DiscountParam: "discount"}), nil
}

// discountView is a coupon as the SDK shows it (digest §6.9).
type discountView struct {
	Code        string  `json:"code"`
	Type        string  `json:"type" enum:"percentage,flat"`
	Value       numText `json:"value" doc:"Percent (10.00) for percentage, an amount in currency for flat."`
	MinOrder    *Amount `json:"min_order" nullable:"true" doc:"The minimum cart total; null: none."`
	Currency    string  `json:"currency"`
	Description string  `json:"description" doc:"e.g. \"10% off orders of 50.00 USD or more\"."`
}

// numText is a JSON number kept as exact text.
type numText string

func (n numText) MarshalJSON() ([]byte, error) { return []byte(n), nil }

// Schema documents numText as a number.
func (numText) Schema(huma.Registry) *huma.Schema { return &huma.Schema{Type: "number"} }

func viewDiscount(c *heldsway.Coupon) discountView {
	v := discountView{Code: c.Code, Currency: c.Currency.Code}
	if c.DiscountType == heldsway.DiscountPercentage {
		v.Type, v.Value = "percentage", numText(money.FormatRate(c.DiscountValue))
		v.Description = strings.TrimSuffix(strings.TrimSuffix(string(v.Value), "0"), ".0") + "% off" // 10.00 → 10%, 12.50 → 12.5%
	} else {
		v.Type, v.Value = "flat", numText(money.Format(c.DiscountValue, c.Currency))
		v.Description = string(v.Value) + " " + c.Currency.Code + " off"
	}
	if c.MinOrderAmount != nil {
		v.MinOrder = &Amount{Minor: *c.MinOrderAmount, Currency: c.Currency}
		v.Description += " orders of " + money.Format(*c.MinOrderAmount, c.Currency) + " " + c.Currency.Code + " or more"
	}
	return v
}

// usable reports whether a coupon can be offered at time at: active and in
// its window (the minimum order is the cart's business, checked by validate).
func usable(c *heldsway.Coupon, at time.Time) bool {
	return c.IsActive && (c.StartsAt == nil || !at.Before(*c.StartsAt)) && (c.EndsAt == nil || at.Before(*c.EndsAt))
}

type discountInput struct {
	Code string `query:"code" minLength:"1" maxLength:"50" required:"true" doc:"The discount code (case-insensitive), e.g. from ?discount= or the aff_discount cookie."`
}

func (sf *storefront) handleDiscount(ctx context.Context, in *discountInput) (*Out[discountView], error) {
	c, err := sf.s.Store.FindCouponByCode(ctx, principal(ctx).Workspace.ID, in.Code)
	if err != nil {
		return nil, err
	}
	if !usable(c, sf.s.Store.Now()) {
		return nil, heldsway.NotFound("Coupon")
	}
	return ok("OK", viewDiscount(c)), nil
}

type discountValidateInput struct {
	Body struct {
		Code      string  `json:"code" minLength:"1" maxLength:"50"`
		CartTotal Decimal `json:"cart_total" minimum:"0" doc:"The cart total the discount would apply to, in the coupon's currency."`
		Currency  string  `json:"currency,omitempty" nullable:"true" maxLength:"3" doc:"The cart's currency; a cart in another currency than the coupon's is not valid for it."`
	}
}

type discountValidation struct {
	Code           string  `json:"code"`
	IsValid        bool    `json:"is_valid"`
	DiscountAmount Amount  `json:"discount_amount" doc:"What the code takes off the cart total: half-up for a percentage, a flat amount capped at the total; 0 when not valid."`
	Currency       string  `json:"currency"`
	Reason         *string `json:"reason,omitempty" enum:"not_found,inactive,not_started,expired,below_minimum,invalid_order_total,currency_mismatch" doc:"Why the code does not apply; absent when valid."`
}

func (sf *storefront) handleDiscountValidate(ctx context.Context, in *discountValidateInput) (*Out[discountValidation], error) {
	b := &in.Body
	fe := heldsway.FieldErrors{}
	var cartCur *money.Currency
	if b.Currency != "" {
		c, err := money.ParseCurrency(b.Currency)
		if err != nil {
			fe.Add("currency", "The currency field must be a valid ISO 4217 currency code.")
		} else {
			cartCur = &c
		}
	}
	c, err := sf.s.Store.FindCouponByCode(ctx, principal(ctx).Workspace.ID, b.Code)
	if err != nil && heldsway.ErrorCode(err) != heldsway.ENOTFOUND {
		return nil, err
	}
	// The total parses in the coupon's currency, else the cart's, else the
	// default program's.
	var cur money.Currency
	switch {
	case c != nil:
		cur = c.Currency
	case cartCur != nil:
		cur = *cartCur
	default:
		d, _, err := sf.currency(ctx, fe, "currency", "")
		if err != nil {
			return nil, err
		}
		cur = d
	}
	total := minor(fe, "cart_total", &b.CartTotal, cur)
	if err := fe.Err(); err != nil {
		return nil, err
	}
	res := discountValidation{Code: strings.TrimSpace(b.Code), DiscountAmount: Amount{Currency: cur}, Currency: cur.Code}
	reason := func(r string) (*Out[discountValidation], error) {
		res.Reason = &r
		return ok("Discount does not apply.", res), nil
	}
	if c == nil {
		return reason("not_found")
	}
	res.Code = c.Code
	if cartCur != nil && cartCur.Code != c.Currency.Code {
		return reason("currency_mismatch")
	}
	d, valid, why := c.Validate(sf.s.Store.Now(), *total)
	if !valid {
		return reason(why)
	}
	res.IsValid, res.DiscountAmount.Minor = true, d
	return ok("Discount applies.", res), nil
}
