package api

import (
	"context"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

// couponDiscount renders a coupon's discount value: a percentage with two
// decimals (10.00) or an amount with the currency's decimals (5.00).
type couponDiscount struct {
	c *heldsway.Coupon
}

func (d couponDiscount) MarshalJSON() ([]byte, error) {
	if d.c.DiscountType == heldsway.DiscountPercentage {
		return []byte(money.FormatRate(d.c.DiscountValue)), nil
	}
	return []byte(money.Format(d.c.DiscountValue, d.c.Currency)), nil
}

// Schema documents the discount value as a number.
func (couponDiscount) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: "number", Examples: []any{10.00},
		Description: "For percentage: the percent off (10.00 = 10 %). For fixed: the amount off in the currency."}
}

// couponView is the coupon object.
type couponView struct {
	ID             int64          `json:"id"`
	Code           string         `json:"code" example:"SUMMER10" doc:"As entered; matched case-insensitively."`
	AffiliateID    int64          `json:"affiliate_id" doc:"The affiliate orders using this code are attributed to."`
	DiscountType   string         `json:"discount_type" enum:"percentage,fixed"`
	DiscountValue  couponDiscount `json:"discount_value"`
	Currency       string         `json:"currency" example:"USD" doc:"The affiliate's program currency, in which fixed amounts and the minimum order are expressed."`
	MinOrderAmount *Amount        `json:"min_order_amount" nullable:"true" doc:"Minimum order total for the coupon to apply, or null."`
	StartsAt       *Timestamp     `json:"starts_at" doc:"Valid from (inclusive), or null."`
	EndsAt         *Timestamp     `json:"ends_at" doc:"Valid until (exclusive), or null."`
	IsActive       bool           `json:"is_active"`
	CreatedAt      Timestamp      `json:"created_at"`
	UpdatedAt      Timestamp      `json:"updated_at"`
}

func viewCoupon(c *heldsway.Coupon) couponView {
	v := couponView{ID: c.ID, Code: c.Code, AffiliateID: c.AffiliateID, DiscountType: c.DiscountType,
		DiscountValue: couponDiscount{c}, Currency: c.Currency.Code, StartsAt: tsPtr(c.StartsAt), EndsAt: tsPtr(c.EndsAt),
		IsActive: c.IsActive, CreatedAt: Timestamp(c.CreatedAt), UpdatedAt: Timestamp(c.UpdatedAt)}
	if c.MinOrderAmount != nil {
		v.MinOrderAmount = &Amount{Minor: *c.MinOrderAmount, Currency: c.Currency}
	}
	return v
}

type couponListInput struct {
	ListParams
	AffiliateID int64  `query:"affiliate_id" minimum:"1" doc:"Only this affiliate's coupons."`
	IsActive    string `query:"is_active" enum:"1,0,true,false" doc:"1: active coupons only; 0: inactive only."`
	Search      string `query:"search" maxLength:"255" doc:"Matches the code (case-insensitive)."`
	Sort        string `query:"sort" enum:"created_at,code" default:"created_at" doc:"code sorts case-insensitively."`
}

func (s *Server) handleCouponList(ctx context.Context, in *couponListInput) (*Out[Page[couponView]], error) {
	p := principal(ctx)
	o, err := in.options(in.Sort)
	if err != nil {
		return nil, err
	}
	f := heldsway.CouponFilter{AffiliateID: in.AffiliateID, Search: in.Search}
	if in.IsActive != "" {
		v := in.IsActive == "1" || in.IsActive == "true"
		f.IsActive = &v
	}
	res, err := s.Store.ListCoupons(ctx, p.Workspace.ID, f, o)
	if err != nil {
		return nil, err
	}
	return ok("OK", pageOut(res, in.ListParams, o, viewCoupon)), nil
}

// utcMicro normalizes a client's time to what is stored: UTC, microseconds.
func utcMicro(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC().Truncate(time.Microsecond)
	return &v
}

func decimalText(d *Decimal) *string {
	if d == nil {
		return nil
	}
	v := string(*d)
	return &v
}

type couponCreateInput struct {
	Body struct {
		Code           string     `json:"code" minLength:"3" maxLength:"50" doc:"3–50 letters, digits, dashes and underscores; unique in the workspace regardless of case."`
		AffiliateID    int64      `json:"affiliate_id" minimum:"1" doc:"An affiliate of this workspace."`
		DiscountType   string     `json:"discount_type" enum:"percentage,fixed"`
		DiscountValue  Decimal    `json:"discount_value" exclusiveMinimum:"0" doc:"percentage: above 0 and at most 100, two decimals at most. fixed: an amount above 0 in the affiliate's program currency."`
		MinOrderAmount *Decimal   `json:"min_order_amount,omitempty" minimum:"0" nullable:"true" doc:"Minimum order total in the program currency; null for none."`
		StartsAt       *time.Time `json:"starts_at,omitempty" nullable:"true" doc:"RFC 3339; null for no start."`
		EndsAt         *time.Time `json:"ends_at,omitempty" nullable:"true" doc:"RFC 3339, after starts_at; null for no end."`
		IsActive       *bool      `json:"is_active,omitempty" doc:"Default true."`
	}
}

func (s *Server) handleCouponCreate(ctx context.Context, in *couponCreateInput) (*Out[couponView], error) {
	b := in.Body
	c, err := s.Store.CreateCoupon(ctx, principal(ctx).Workspace.ID, heldsway.CouponInput{Code: b.Code,
		AffiliateID: b.AffiliateID, DiscountType: b.DiscountType, DiscountValue: string(b.DiscountValue),
		MinOrderAmount: decimalText(b.MinOrderAmount), StartsAt: utcMicro(b.StartsAt), EndsAt: utcMicro(b.EndsAt),
		IsActive: b.IsActive})
	if err != nil {
		return nil, err
	}
	return ok("Coupon created.", viewCoupon(c)), nil
}

func (s *Server) handleCouponGet(ctx context.Context, in *idInput) (*Out[couponView], error) {
	c, err := s.Store.FindCoupon(ctx, principal(ctx).Workspace.ID, in.ID)
	if err != nil {
		return nil, err
	}
	return ok("OK", viewCoupon(c)), nil
}

type couponUpdateInput struct {
	ID   int64 `path:"id" minimum:"1"`
	Body struct {
		Code           nullableField[string]    `json:"code,omitempty" minLength:"3" maxLength:"50"`
		AffiliateID    nullableField[int64]     `json:"affiliate_id,omitempty" minimum:"1" doc:"Moving the coupon to an affiliate of a program in another currency requires discount_value (for fixed) and min_order_amount (if set) again: amounts are not converted."`
		DiscountType   nullableField[string]    `json:"discount_type,omitempty" enum:"percentage,fixed" doc:"Changing it requires discount_value."`
		DiscountValue  nullableField[Decimal]   `json:"discount_value,omitempty" exclusiveMinimum:"0"`
		MinOrderAmount nullableField[Decimal]   `json:"min_order_amount,omitempty" nullable:"true" minimum:"0" doc:"null clears it."`
		StartsAt       nullableField[time.Time] `json:"starts_at,omitempty" nullable:"true" doc:"null clears it."`
		EndsAt         nullableField[time.Time] `json:"ends_at,omitempty" nullable:"true" doc:"null clears it."`
		IsActive       nullableField[bool]      `json:"is_active,omitempty"`
	}
}

func (s *Server) handleCouponUpdate(ctx context.Context, in *couponUpdateInput) (*Out[couponView], error) {
	b := in.Body
	fe := heldsway.FieldErrors{}
	u := heldsway.CouponUpdate{Code: b.Code.value(fe, "code"), AffiliateID: b.AffiliateID.value(fe, "affiliate_id"),
		DiscountType: b.DiscountType.value(fe, "discount_type"), DiscountValue: decimalText(b.DiscountValue.value(fe, "discount_value")),
		IsActive:          b.IsActive.value(fe, "is_active"),
		SetMinOrderAmount: b.MinOrderAmount.Sent, MinOrderAmount: decimalText(b.MinOrderAmount.ptr()),
		SetStartsAt: b.StartsAt.Sent, StartsAt: utcMicro(b.StartsAt.ptr()),
		SetEndsAt: b.EndsAt.Sent, EndsAt: utcMicro(b.EndsAt.ptr())}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	c, err := s.Store.UpdateCoupon(ctx, principal(ctx).Workspace.ID, in.ID, u)
	if err != nil {
		return nil, err
	}
	return ok("Coupon updated.", viewCoupon(c)), nil
}

func (s *Server) handleCouponDelete(ctx context.Context, in *idInput) (*Out[couponView], error) {
	c, err := s.Store.DeleteCoupon(ctx, principal(ctx).Workspace.ID, in.ID)
	if err != nil {
		return nil, err
	}
	return ok("Coupon deleted.", viewCoupon(c)), nil
}
