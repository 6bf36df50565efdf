package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

var _ heldsway.CouponService = (*Store)(nil)

const couponCols = `c.id, c.workspace_id, c.affiliate_id, c.code, c.discount_type, c.discount_value, c.currency,
	c.min_order_amount, c.starts_at, c.ends_at, c.is_active, c.created_at, c.updated_at`

func scanCoupon(sc scanner) (*heldsway.Coupon, error) {
	var c heldsway.Coupon
	var cur string
	var minOrder, starts, ends sql.NullInt64
	var created, updated int64
	if err := sc.Scan(&c.ID, &c.WorkspaceID, &c.AffiliateID, &c.Code, &c.DiscountType, &c.DiscountValue, &cur,
		&minOrder, &starts, &ends, &c.IsActive, &created, &updated); err != nil {
		return nil, err
	}
	var err error
	if c.Currency, err = money.ParseCurrency(cur); err != nil {
		return nil, err
	}
	c.MinOrderAmount, c.StartsAt, c.EndsAt = fromNullInt(minOrder), fromNullTS(starts), fromNullTS(ends)
	c.CreatedAt, c.UpdatedAt = fromTS(created), fromTS(updated)
	return &c, nil
}

// couponSnapshot is a coupon as audit entries and events show it: amounts as
// decimal numbers in the currency, as the API does.
type couponSnapshot struct {
	ID             int64           `json:"id"`
	AffiliateID    int64           `json:"affiliate_id"`
	Code           string          `json:"code"`
	DiscountType   string          `json:"discount_type"`
	DiscountValue  json.RawMessage `json:"discount_value"`
	Currency       string          `json:"currency"`
	MinOrderAmount json.RawMessage `json:"min_order_amount"`
	StartsAt       *time.Time      `json:"starts_at"`
	EndsAt         *time.Time      `json:"ends_at"`
	IsActive       bool            `json:"is_active"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
}

func snapCoupon(c *heldsway.Coupon) *couponSnapshot {
	if c == nil {
		return nil
	}
	v := money.Format(c.DiscountValue, c.Currency)
	if c.DiscountType == heldsway.DiscountPercentage {
		v = money.FormatRate(c.DiscountValue)
	}
	minOrder := json.RawMessage("null")
	if c.MinOrderAmount != nil {
		minOrder = json.RawMessage(money.Format(*c.MinOrderAmount, c.Currency))
	}
	return &couponSnapshot{ID: c.ID, AffiliateID: c.AffiliateID, Code: c.Code, DiscountType: c.DiscountType,
		DiscountValue: json.RawMessage(v), Currency: c.Currency.Code, MinOrderAmount: minOrder, StartsAt: c.StartsAt,
		EndsAt: c.EndsAt, IsActive: c.IsActive, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

// couponAffiliate returns the status of an affiliate of the workspace and its
// program's currency; a VALIDATION_ERROR on affiliate_id when the workspace has
// no such affiliate (it is a reference in the body, not a path id).
func (s *Store) couponAffiliate(ctx context.Context, tx *sql.Tx, wsID, affID int64) (string, money.Currency, error) {
	var status, cur string
	err := tx.QueryRowContext(ctx, `SELECT a.status, p.currency FROM affiliates a
		JOIN programs p ON p.workspace_id = a.workspace_id AND p.id = a.program_id
		WHERE a.workspace_id = $1 AND a.id = $2`+s.forShare(), wsID, affID).Scan(&status, &cur)
	if errors.Is(err, sql.ErrNoRows) {
		return "", money.Currency{}, heldsway.Invalid("affiliate_id", "The selected affiliate id is invalid.")
	} else if err != nil {
		return "", money.Currency{}, err
	}
	c, err := money.ParseCurrency(cur)
	return status, c, err
}

func codeTaken() error {
	return &heldsway.Error{Code: heldsway.ECONFLICT, Message: "The code has already been taken.",
		Details: map[string]any{"code": []string{"The code has already been taken."}}}
}

var errCouponTerminated = heldsway.Errorf(heldsway.ECONFLICT, "Coupons cannot be created for a terminated affiliate.")

// CreateCoupon creates a coupon in the currency of the affiliate's program.
func (s *Store) CreateCoupon(ctx context.Context, wsID int64, in heldsway.CouponInput) (*heldsway.Coupon, error) {
	in.Normalize()
	if err := in.Validate(); err != nil {
		return nil, err
	}
	var c *heldsway.Coupon
	err := s.tx(ctx, func(tx *sql.Tx) error {
		status, cur, err := s.couponAffiliate(ctx, tx, wsID, in.AffiliateID)
		if err != nil {
			return err
		}
		if status == heldsway.AffiliateTerminated {
			return errCouponTerminated
		}
		if c, err = in.Coupon(wsID, cur); err != nil {
			return err
		}
		now := s.Now()
		c.CreatedAt, c.UpdatedAt = now, now
		err = tx.QueryRowContext(ctx, `INSERT INTO coupons (workspace_id, affiliate_id, code, code_key, discount_type,
			discount_value, currency, min_order_amount, starts_at, ends_at, is_active, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
			ON CONFLICT (workspace_id, code_key) DO NOTHING RETURNING id`,
			wsID, c.AffiliateID, c.Code, heldsway.CouponKey(c.Code), c.DiscountType, c.DiscountValue, c.Currency.Code,
			nullInt(c.MinOrderAmount), nullTS(c.StartsAt), nullTS(c.EndsAt), c.IsActive, ts(now)).Scan(&c.ID)
		if errors.Is(err, sql.ErrNoRows) {
			return codeTaken()
		} else if err != nil {
			return err
		}
		return s.record(ctx, tx, wsID, "coupon.create", "coupon", c.ID, nil, snapCoupon(c), "coupon.created")
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// FindCoupon returns a coupon of the workspace.
func (s *Store) FindCoupon(ctx context.Context, wsID, id int64) (*heldsway.Coupon, error) {
	c, err := scanCoupon(s.r.QueryRowContext(ctx, `SELECT `+couponCols+` FROM coupons c
		WHERE c.workspace_id = $1 AND c.id = $2`, wsID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, heldsway.NotFound("Coupon")
	}
	return c, unavailable(err)
}

// FindCouponByCode returns the workspace's coupon with code in any case.
func (s *Store) FindCouponByCode(ctx context.Context, wsID int64, code string) (*heldsway.Coupon, error) {
	c, err := scanCoupon(s.r.QueryRowContext(ctx, `SELECT `+couponCols+` FROM coupons c
		WHERE c.workspace_id = $1 AND c.code_key = $2`, wsID, heldsway.CouponKey(code)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, heldsway.NotFound("Coupon")
	}
	return c, unavailable(err)
}

// couponSorts: code sorts case-insensitively, on the upper-cased key.
var couponSorts = map[string]sortCol{
	"":           {expr: "c.created_at", isInt: true},
	"created_at": {expr: "c.created_at", isInt: true},
	"code":       {expr: "c.code_key"},
}

// ListCoupons pages through the workspace's coupons.
func (s *Store) ListCoupons(ctx context.Context, wsID int64, f heldsway.CouponFilter, o heldsway.ListOptions) (heldsway.PageResult[*heldsway.Coupon], error) {
	col, ok := couponSorts[o.Sort]
	if !ok {
		return heldsway.PageResult[*heldsway.Coupon]{}, heldsway.Invalid("sort", "The selected sort is invalid.")
	}
	where, args := ` WHERE c.workspace_id = $1`, []any{wsID}
	if f.AffiliateID != 0 {
		args = append(args, f.AffiliateID)
		where += " AND c.affiliate_id = $" + strconv.Itoa(len(args))
	}
	if f.IsActive != nil {
		args = append(args, *f.IsActive)
		where += " AND c.is_active = $" + strconv.Itoa(len(args))
	}
	if q := strings.TrimSpace(f.Search); q != "" {
		args = append(args, containsLike(heldsway.CouponKey(q)))
		where += " AND c.code_key LIKE $" + strconv.Itoa(len(args)) + ` ESCAPE '\'`
	}
	q, args, err := keyset(col, "c.id", o, where, args)
	if err != nil {
		return heldsway.PageResult[*heldsway.Coupon]{}, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+couponCols+` FROM coupons c`+q, args...)
	if err != nil {
		return heldsway.PageResult[*heldsway.Coupon]{}, unavailable(err)
	}
	defer rows.Close()
	items := []*heldsway.Coupon{}
	for rows.Next() {
		c, err := scanCoupon(rows)
		if err != nil {
			return heldsway.PageResult[*heldsway.Coupon]{}, unavailable(err)
		}
		items = append(items, c)
	}
	if err := rows.Err(); err != nil {
		return heldsway.PageResult[*heldsway.Coupon]{}, unavailable(err)
	}
	return pageOf(items, o, func(c *heldsway.Coupon) (*string, int64) {
		if o.Sort == "code" {
			return strPtr(heldsway.CouponKey(c.Code)), c.ID
		}
		return intStr(ts(c.CreatedAt)), c.ID
	}), nil
}

// UpdateCoupon applies u to a coupon of the workspace. Moving a coupon to a
// terminated affiliate is ECONFLICT; an update that changes nothing writes
// nothing.
func (s *Store) UpdateCoupon(ctx context.Context, wsID, id int64, u heldsway.CouponUpdate) (*heldsway.Coupon, error) {
	u.Normalize()
	if err := u.Validate(); err != nil {
		return nil, err
	}
	var out *heldsway.Coupon
	err := s.tx(ctx, func(tx *sql.Tx) error {
		before, err := scanCoupon(tx.QueryRowContext(ctx, `SELECT `+couponCols+` FROM coupons c
			WHERE c.workspace_id = $1 AND c.id = $2`+s.forUpdate(), wsID, id))
		if errors.Is(err, sql.ErrNoRows) {
			return heldsway.NotFound("Coupon")
		} else if err != nil {
			return err
		}
		cur := before.Currency
		if u.AffiliateID != nil && *u.AffiliateID != before.AffiliateID {
			status, c, err := s.couponAffiliate(ctx, tx, wsID, *u.AffiliateID)
			if err != nil {
				return err
			}
			if status == heldsway.AffiliateTerminated {
				return errCouponTerminated
			}
			cur = c
		}
		after := *before
		if err := u.Apply(&after, cur); err != nil {
			return err
		}
		if len(diff(snapCoupon(before), snapCoupon(&after))) == 0 {
			out = before
			return nil
		}
		after.UpdatedAt = s.Now()
		_, err = tx.ExecContext(ctx, `UPDATE coupons SET affiliate_id = $1, code = $2, code_key = $3, discount_type = $4,
			discount_value = $5, currency = $6, min_order_amount = $7, starts_at = $8, ends_at = $9, is_active = $10,
			updated_at = $11 WHERE workspace_id = $12 AND id = $13`,
			after.AffiliateID, after.Code, heldsway.CouponKey(after.Code), after.DiscountType, after.DiscountValue,
			after.Currency.Code, nullInt(after.MinOrderAmount), nullTS(after.StartsAt), nullTS(after.EndsAt),
			after.IsActive, ts(after.UpdatedAt), wsID, id)
		if isUniqueViolation(err) {
			return codeTaken()
		} else if err != nil {
			return err
		}
		out = &after
		return s.record(ctx, tx, wsID, "coupon.update", "coupon", id, snapCoupon(before), snapCoupon(&after), "coupon.updated")
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteCoupon deletes a coupon of the workspace and returns it as it was.
func (s *Store) DeleteCoupon(ctx context.Context, wsID, id int64) (*heldsway.Coupon, error) {
	var out *heldsway.Coupon
	err := s.tx(ctx, func(tx *sql.Tx) error {
		c, err := scanCoupon(tx.QueryRowContext(ctx, `SELECT `+couponCols+` FROM coupons c
			WHERE c.workspace_id = $1 AND c.id = $2`+s.forUpdate(), wsID, id))
		if errors.Is(err, sql.ErrNoRows) {
			return heldsway.NotFound("Coupon")
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM coupons WHERE workspace_id = $1 AND id = $2`, wsID, id); err != nil {
			return err
		}
		out = c
		return s.record(ctx, tx, wsID, "coupon.delete", "coupon", id, snapCoupon(c), nil, "coupon.deleted")
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
