package heldsway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/heldsway/heldsway/internal/money"
)

// Coupon discount types.
const (
	DiscountPercentage = "percentage"
	DiscountFixed      = "fixed"
)

// Limits of a coupon's fields.
const (
	CouponCodeMinLen = 3
	CouponCodeMaxLen = 50
)

// Reasons a coupon does not apply, from Coupon.Validate.
const (
	CouponInactive      = "inactive"
	CouponNotStarted    = "not_started"
	CouponExpired       = "expired"
	CouponBelowMinimum  = "below_minimum"
	CouponInvalidAmount = "invalid_order_total"
)

// Coupon is a discount code that attributes orders to AffiliateID. Amounts are
// in minor units of Currency (the affiliate's program currency); a percentage
// DiscountValue is in basis points (10.00% = 1000).
type Coupon struct {
	ID             int64
	WorkspaceID    int64
	AffiliateID    int64
	Code           string // as entered; matched case-insensitively
	DiscountType   string
	DiscountValue  int64
	Currency       money.Currency
	MinOrderAmount *int64
	StartsAt       *time.Time
	EndsAt         *time.Time // exclusive
	IsActive       bool
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// CouponKey is the uniqueness key of a code: codes differ only if they differ
// other than in case.
func CouponKey(code string) string { return strings.ToUpper(strings.TrimSpace(code)) }

// Validate says whether the coupon applies at time at to an order of
// orderTotalMinor (minor units of the coupon's currency) and computes the
// discount: a percentage rounds half-up to the minor unit; a fixed amount is
// capped at the order total, so a discount never exceeds what is paid. When ok is
// false, reason is one of the Coupon* reason constants and discountMinor is 0.
func (c Coupon) Validate(at time.Time, orderTotalMinor int64) (discountMinor int64, ok bool, reason string) {
	switch {
	case !c.IsActive:
		return 0, false, CouponInactive
	case c.StartsAt != nil && at.Before(*c.StartsAt):
		return 0, false, CouponNotStarted
	case c.EndsAt != nil && !at.Before(*c.EndsAt):
		return 0, false, CouponExpired
	case orderTotalMinor < 0:
		return 0, false, CouponInvalidAmount
	case c.MinOrderAmount != nil && orderTotalMinor < *c.MinOrderAmount:
		return 0, false, CouponBelowMinimum
	}
	switch c.DiscountType {
	case DiscountPercentage:
		return money.ApplyRate(orderTotalMinor, c.DiscountValue), true, ""
	default:
		return min(c.DiscountValue, orderTotalMinor), true, ""
	}
}

// CouponInput creates a coupon. Amounts are decimal text as the client sent them
// ("12.50"), because a fixed amount's precision depends on the affiliate's
// program currency, which the store learns inside its transaction.
type CouponInput struct {
	Code           string
	AffiliateID    int64
	DiscountType   string
	DiscountValue  string
	MinOrderAmount *string
	StartsAt       *time.Time
	EndsAt         *time.Time
	IsActive       *bool // nil: active
}

// Normalize trims the code.
func (in *CouponInput) Normalize() {
	in.Code = strings.TrimSpace(in.Code)
	in.DiscountType = strings.ToLower(strings.TrimSpace(in.DiscountType))
}

// Validate checks everything that does not depend on the currency.
func (in *CouponInput) Validate() error {
	fe := FieldErrors{}
	validateCouponCode(fe, in.Code)
	if in.AffiliateID <= 0 {
		fe.Add("affiliate_id", "The affiliate id field is required.")
	}
	validateDiscountType(fe, in.DiscountType)
	if in.DiscountValue == "" {
		fe.Add("discount_value", "The discount value field is required.")
	} else if in.DiscountType == DiscountPercentage {
		_, _ = parseDiscount(fe, DiscountPercentage, in.DiscountValue, money.Currency{})
	}
	validateWindow(fe, in.StartsAt, in.EndsAt)
	return fe.Err()
}

// Coupon builds the coupon in the affiliate's currency. EVALIDATION if an
// amount does not fit the currency.
func (in *CouponInput) Coupon(wsID int64, cur money.Currency) (*Coupon, error) {
	fe := FieldErrors{}
	c := &Coupon{WorkspaceID: wsID, AffiliateID: in.AffiliateID, Code: in.Code, DiscountType: in.DiscountType,
		Currency: cur, StartsAt: in.StartsAt, EndsAt: in.EndsAt, IsActive: true}
	if in.IsActive != nil {
		c.IsActive = *in.IsActive
	}
	c.DiscountValue, _ = parseDiscount(fe, in.DiscountType, in.DiscountValue, cur)
	c.MinOrderAmount = parseMinOrder(fe, in.MinOrderAmount, cur)
	if err := fe.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// CouponUpdate changes the fields it sets. For the nullable fields, SetX with a
// nil value clears the field.
type CouponUpdate struct {
	Code              *string
	AffiliateID       *int64
	DiscountType      *string
	DiscountValue     *string
	SetMinOrderAmount bool
	MinOrderAmount    *string
	SetStartsAt       bool
	StartsAt          *time.Time
	SetEndsAt         bool
	EndsAt            *time.Time
	IsActive          *bool
}

// Normalize trims the code and the discount type.
func (u *CouponUpdate) Normalize() {
	if u.Code != nil {
		v := strings.TrimSpace(*u.Code)
		u.Code = &v
	}
	if u.DiscountType != nil {
		v := strings.ToLower(strings.TrimSpace(*u.DiscountType))
		u.DiscountType = &v
	}
}

// Validate checks the set fields that do not depend on the coupon's current
// state or currency.
func (u *CouponUpdate) Validate() error {
	fe := FieldErrors{}
	if u.Code != nil {
		validateCouponCode(fe, *u.Code)
	}
	if u.AffiliateID != nil && *u.AffiliateID <= 0 {
		fe.Add("affiliate_id", "The selected affiliate id is invalid.")
	}
	if u.DiscountType != nil {
		validateDiscountType(fe, *u.DiscountType)
	}
	if u.DiscountValue != nil && *u.DiscountValue == "" {
		fe.Add("discount_value", "The discount value field is required.")
	}
	switch {
	case u.SetStartsAt && u.SetEndsAt:
		validateWindow(fe, u.StartsAt, u.EndsAt)
	case u.SetStartsAt:
		validateDate(fe, "starts_at", u.StartsAt)
	case u.SetEndsAt:
		validateDate(fe, "ends_at", u.EndsAt)
	}
	return fe.Err()
}

// Apply applies the update to c, whose affiliate's currency is cur (it changes
// when the update moves the coupon to an affiliate of a program in another
// currency; the amounts must then be given again, because they are not
// converted). EVALIDATION with field details.
func (u *CouponUpdate) Apply(c *Coupon, cur money.Currency) error {
	fe := FieldErrors{}
	oldType, oldCur := c.DiscountType, c.Currency
	if u.Code != nil {
		c.Code = *u.Code
	}
	if u.AffiliateID != nil {
		c.AffiliateID = *u.AffiliateID
	}
	if u.DiscountType != nil {
		c.DiscountType = *u.DiscountType
	}
	c.Currency = cur
	switch {
	case u.DiscountValue != nil:
		c.DiscountValue, _ = parseDiscount(fe, c.DiscountType, *u.DiscountValue, cur)
	case c.DiscountType != oldType:
		fe.Add("discount_value", "The discount value field is required when the discount type changes.")
	case c.DiscountType == DiscountFixed && cur != oldCur:
		fe.Add("discount_value", fmt.Sprintf("The discount value field is required: the affiliate's currency changes from %s to %s.", oldCur.Code, cur.Code))
	}
	switch {
	case u.SetMinOrderAmount:
		c.MinOrderAmount = parseMinOrder(fe, u.MinOrderAmount, cur)
	case c.MinOrderAmount != nil && cur != oldCur:
		fe.Add("min_order_amount", fmt.Sprintf("The min order amount field is required: the affiliate's currency changes from %s to %s.", oldCur.Code, cur.Code))
	}
	if u.SetStartsAt {
		c.StartsAt = u.StartsAt
	}
	if u.SetEndsAt {
		c.EndsAt = u.EndsAt
	}
	if u.IsActive != nil {
		c.IsActive = *u.IsActive
	}
	validateWindow(fe, c.StartsAt, c.EndsAt)
	return fe.Err()
}

// CouponFilter selects coupons; zero fields do not filter.
type CouponFilter struct {
	AffiliateID int64
	IsActive    *bool
	Search      string // case-insensitive substring of the code
}

// Coupon sorts.
var CouponSorts = []string{"created_at", "code"}

// CouponService manages coupons. Every write records an audit entry and an
// event (coupon.created, coupon.updated, coupon.deleted) in its transaction.
type CouponService interface {
	// CreateCoupon: EVALIDATION (bad field, affiliate not in the workspace, an
	// amount that does not fit the currency), ECONFLICT (code taken in any case,
	// terminated affiliate).
	CreateCoupon(ctx context.Context, wsID int64, in CouponInput) (*Coupon, error)
	// FindCoupon: ENOTFOUND.
	FindCoupon(ctx context.Context, wsID, id int64) (*Coupon, error)
	// FindCouponByCode finds a coupon by code, case-insensitively: ENOTFOUND.
	// The tracking endpoints call it to attribute an order.
	FindCouponByCode(ctx context.Context, wsID int64, code string) (*Coupon, error)
	// ListCoupons: EVALIDATION for a bad cursor.
	ListCoupons(ctx context.Context, wsID int64, f CouponFilter, o ListOptions) (PageResult[*Coupon], error)
	// UpdateCoupon: ENOTFOUND, EVALIDATION, ECONFLICT.
	UpdateCoupon(ctx context.Context, wsID, id int64, u CouponUpdate) (*Coupon, error)
	// DeleteCoupon returns the coupon as it was: ENOTFOUND.
	DeleteCoupon(ctx context.Context, wsID, id int64) (*Coupon, error)
}

func validateCouponCode(fe FieldErrors, code string) {
	n := len(code)
	switch {
	case n == 0:
		fe.Add("code", "The code field is required.")
		return
	case n < CouponCodeMinLen:
		fe.Add("code", fmt.Sprintf("The code field must be at least %d characters.", CouponCodeMinLen))
	case n > CouponCodeMaxLen:
		fe.Add("code", fmt.Sprintf("The code field must not be greater than %d characters.", CouponCodeMaxLen))
	}
	for _, r := range code {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			fe.Add("code", "The code field may only contain letters, numbers, dashes and underscores.")
			return
		}
	}
}

func validateDiscountType(fe FieldErrors, t string) {
	if t != DiscountPercentage && t != DiscountFixed {
		fe.Add("discount_type", "The selected discount type is invalid. Allowed: percentage, fixed.")
	}
}

// parseDiscount converts a discount value: a percentage above 0 and at most 100
// with at most two decimals to basis points, or a fixed amount above 0 to minor
// units of cur. Messages go to fe.
func parseDiscount(fe FieldErrors, typ, v string, cur money.Currency) (int64, bool) {
	switch typ {
	case DiscountPercentage:
		bp, err := money.ParseRate(v)
		switch {
		case err != nil:
			fe.Add("discount_value", "The discount value field "+err.Error()+".")
		case bp <= 0 || bp > 10000:
			fe.Add("discount_value", "The discount value field must be greater than 0 and at most 100 for a percentage.")
		default:
			return bp, true
		}
	case DiscountFixed:
		m, err := money.ParseMinor(v, cur)
		switch {
		case errors.Is(err, money.ErrPrecision):
			fe.Add("discount_value", fmt.Sprintf("The discount value field must have at most %d decimal places for %s.", cur.Scale, cur.Code))
		case err != nil:
			fe.Add("discount_value", "The discount value field "+err.Error()+".")
		case m <= 0:
			fe.Add("discount_value", "The discount value field must be greater than 0.")
		default:
			return m, true
		}
	}
	return 0, false
}

func parseMinOrder(fe FieldErrors, v *string, cur money.Currency) *int64 {
	if v == nil {
		return nil
	}
	m, err := money.ParseMinor(*v, cur)
	switch {
	case errors.Is(err, money.ErrPrecision):
		fe.Add("min_order_amount", fmt.Sprintf("The min order amount field must have at most %d decimal places for %s.", cur.Scale, cur.Code))
	case err != nil:
		fe.Add("min_order_amount", "The min order amount field "+err.Error()+".")
	case m < 0:
		fe.Add("min_order_amount", "The min order amount field must be at least 0.")
	default:
		return &m
	}
	return nil
}

// Coupon dates must fall in a sane range: stored as microseconds, and a year
// outside it is a client's mistake, not a plan.
var (
	minCouponDate = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxCouponDate = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
)

func validateDate(fe FieldErrors, field string, t *time.Time) {
	if t != nil && (t.Before(minCouponDate) || !t.Before(maxCouponDate)) {
		fe.Add(field, fmt.Sprintf("The %s field must be a date between 1970-01-01 and 9999-12-31.", msgField(field)))
	}
}

func validateWindow(fe FieldErrors, starts, ends *time.Time) {
	validateDate(fe, "starts_at", starts)
	validateDate(fe, "ends_at", ends)
	if starts != nil && ends != nil && !ends.After(*starts) {
		fe.Add("ends_at", "The ends at field must be a date after starts at.")
	}
}
