package heldsway_test

import (
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

func TestCouponValidate(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	end := start.Add(30 * 24 * time.Hour)
	i64 := func(v int64) *int64 { return &v }
	at := func(t time.Time) *time.Time { return &t }
	usd := money.MustCurrency("USD")
	pct := func(bp int64) heldsway.Coupon {
		return heldsway.Coupon{DiscountType: heldsway.DiscountPercentage, DiscountValue: bp, Currency: usd, IsActive: true}
	}
	fixed := func(minor int64) heldsway.Coupon {
		return heldsway.Coupon{DiscountType: heldsway.DiscountFixed, DiscountValue: minor, Currency: usd, IsActive: true}
	}
	with := func(c heldsway.Coupon, mod func(*heldsway.Coupon)) heldsway.Coupon { mod(&c); return c }
	windowed := with(pct(1000), func(c *heldsway.Coupon) { c.StartsAt, c.EndsAt = at(start), at(end) })

	cases := []struct {
		name     string
		c        heldsway.Coupon
		at       time.Time
		total    int64
		discount int64
		ok       bool
		reason   string
	}{
		{"10% of 123.45", pct(1000), start, 12345, 1235, true, ""},       // 1234.5 rounds half-up
		{"12.5% of 0.04", pct(1250), start, 4, 1, true, ""},              // 0.5 rounds up
		{"12.5% of 0.03", pct(1250), start, 3, 0, true, ""},              // 0.375 rounds down
		{"100% of 99.99", pct(10000), start, 9999, 9999, true, ""},       // the whole order
		{"0.01% of 1.00", pct(1), start, 100, 0, true, ""},               // 0.01 cent
		{"percentage of zero", pct(1000), start, 0, 0, true, ""},         // nothing to discount
		{"fixed below total", fixed(500), start, 2000, 500, true, ""},    // 5.00 off 20.00
		{"fixed capped at total", fixed(500), start, 300, 300, true, ""}, // never more than paid
		{"inactive", with(pct(1000), func(c *heldsway.Coupon) { c.IsActive = false }), start, 1000, 0, false, heldsway.CouponInactive},
		{"before start", windowed, start.Add(-time.Microsecond), 1000, 0, false, heldsway.CouponNotStarted},
		{"at start", windowed, start, 1000, 100, true, ""},
		{"just before end", windowed, end.Add(-time.Microsecond), 1000, 100, true, ""},
		{"at end (exclusive)", windowed, end, 1000, 0, false, heldsway.CouponExpired},
		{"open start", with(pct(1000), func(c *heldsway.Coupon) { c.EndsAt = at(end) }), start.AddDate(-5, 0, 0), 1000, 100, true, ""},
		{"open end", with(pct(1000), func(c *heldsway.Coupon) { c.StartsAt = at(start) }), end.AddDate(5, 0, 0), 1000, 100, true, ""},
		{"below minimum", with(fixed(500), func(c *heldsway.Coupon) { c.MinOrderAmount = i64(2500) }), start, 2499, 0, false, heldsway.CouponBelowMinimum},
		{"at minimum", with(fixed(500), func(c *heldsway.Coupon) { c.MinOrderAmount = i64(2500) }), start, 2500, 500, true, ""},
		{"zero minimum", with(fixed(500), func(c *heldsway.Coupon) { c.MinOrderAmount = i64(0) }), start, 0, 0, true, ""},
		{"negative total", pct(1000), start, -1, 0, false, heldsway.CouponInvalidAmount},
		{"inactive wins over window", with(windowed, func(c *heldsway.Coupon) { c.IsActive = false }), end, 1000, 0, false, heldsway.CouponInactive},
		{"large order, exact", pct(3333), start, money.MaxMinor, 333_300_000_000_000, true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, ok, reason := c.c.Validate(c.at, c.total)
			if d != c.discount || ok != c.ok || reason != c.reason {
				t.Fatalf("Validate(%v, %d) = %d, %v, %q; want %d, %v, %q", c.at, c.total, d, ok, reason, c.discount, c.ok, c.reason)
			}
		})
	}
}

func TestCouponKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"summer10": "SUMMER10", " Save-5_x ": "SAVE-5_X", "ABC": "ABC"} {
		if got := heldsway.CouponKey(in); got != want {
			t.Errorf("CouponKey(%q) = %q, want %q", in, got, want)
		}
	}
}
