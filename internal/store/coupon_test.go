package store_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// The CouponService conformance suite, on every engine.

func (f *lkFixture) coupon(in heldsway.CouponInput) *heldsway.Coupon {
	f.t.Helper()
	c, err := f.st.CreateCoupon(f.ctx, f.ws.ID, in)
	if err != nil {
		f.t.Fatalf("create coupon %+v: %v", in, err)
	}
	return c
}

func (f *lkFixture) couponCounts() [3]int {
	f.t.Helper()
	var out [3]int
	for i, table := range []string{"coupons", "audit_log", "events"} {
		if err := f.st.DB().QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&out[i]); err != nil {
			f.t.Fatal(err)
		}
	}
	return out
}

func lkTime(t time.Time) *time.Time { return &t }

func TestCreateCoupon(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := lkSetup(t, st)
		jpy := storetest.InsertAffiliate(t, st.DB(), f.ws.ID, "JPY", heldsway.AffiliateActive)

		c := f.coupon(heldsway.CouponInput{Code: " Summer10 ", AffiliateID: f.aff, DiscountType: "percentage",
			DiscountValue: "12.5", MinOrderAmount: lkStr("20.00"), StartsAt: lkTime(t0), EndsAt: lkTime(t0.Add(24 * time.Hour))})
		if c.ID <= 0 || c.Code != "Summer10" || c.DiscountValue != 1250 || c.Currency.Code != "USD" || *c.MinOrderAmount != 2000 ||
			!c.StartsAt.Equal(t0) || !c.EndsAt.Equal(t0.Add(24*time.Hour)) || !c.IsActive || !c.CreatedAt.Equal(t0) {
			t.Fatalf("created %+v", c)
		}
		got, err := st.FindCoupon(f.ctx, f.ws.ID, c.ID)
		if err != nil || got.Code != "Summer10" || got.DiscountValue != 1250 || *got.MinOrderAmount != 2000 || !got.EndsAt.Equal(*c.EndsAt) {
			t.Fatalf("find: %+v, %v", got, err)
		}
		for _, code := range []string{"SUMMER10", "summer10", " sUmMeR10"} {
			if got, err := st.FindCouponByCode(f.ctx, f.ws.ID, code); err != nil || got.ID != c.ID {
				t.Fatalf("by code %q: %+v, %v", code, got, err)
			}
		}
		_, err = st.FindCouponByCode(f.ctx, f.other.ID, "summer10")
		wantCode(t, err, heldsway.ENOTFOUND)
		_, err = st.FindCoupon(f.ctx, f.other.ID, c.ID)
		wantCode(t, err, heldsway.ENOTFOUND)
		action, _, changes := f.lastAudit("coupon", c.ID)
		if action != "coupon.create" || fmt.Sprint(changes["discount_value"]) != "map[after:12.5 before:<nil>]" {
			t.Fatalf("audit %s %v", action, changes)
		}
		if ev := f.eventTypes("coupon", c.ID); !slices.Equal(ev, []string{"coupon.created"}) {
			t.Fatalf("events %v", ev)
		}

		t.Run("fixed in the program currency", func(t *testing.T) {
			c := f.coupon(heldsway.CouponInput{Code: "YEN500", AffiliateID: jpy, DiscountType: "fixed", DiscountValue: "500",
				IsActive: lkBool(false)})
			if c.Currency.Code != "JPY" || c.DiscountValue != 500 || c.IsActive || c.MinOrderAmount != nil {
				t.Fatalf("created %+v", c)
			}
			c = f.coupon(heldsway.CouponInput{Code: "USD5", AffiliateID: f.aff, DiscountType: "fixed", DiscountValue: "5.5"})
			if c.DiscountValue != 550 {
				t.Fatalf("created %+v", c)
			}
		})
		t.Run("errors write nothing", func(t *testing.T) {
			terminated := f.affiliate(f.ws.ID, heldsway.AffiliateTerminated)
			foreign := f.affiliate(f.other.ID, heldsway.AffiliateActive)
			valid := heldsway.CouponInput{Code: "FRESH", AffiliateID: f.aff, DiscountType: "percentage", DiscountValue: "10"}
			with := func(mod func(*heldsway.CouponInput)) heldsway.CouponInput { in := valid; mod(&in); return in }
			cases := []struct {
				name  string
				in    heldsway.CouponInput
				code  string
				field string
			}{
				{"code taken in another case", with(func(in *heldsway.CouponInput) { in.Code = "sUMMER10" }), heldsway.ECONFLICT, "code"},
				{"terminated affiliate", with(func(in *heldsway.CouponInput) { in.AffiliateID = terminated }), heldsway.ECONFLICT, ""},
				{"other workspace's affiliate", with(func(in *heldsway.CouponInput) { in.AffiliateID = foreign }), heldsway.EVALIDATION, "affiliate_id"},
				{"missing affiliate", with(func(in *heldsway.CouponInput) { in.AffiliateID = 0 }), heldsway.EVALIDATION, "affiliate_id"},
				{"short code", with(func(in *heldsway.CouponInput) { in.Code = "AB" }), heldsway.EVALIDATION, "code"},
				{"long code", with(func(in *heldsway.CouponInput) { in.Code = strings.Repeat("A", 51) }), heldsway.EVALIDATION, "code"},
				{"code characters", with(func(in *heldsway.CouponInput) { in.Code = "TEN OFF" }), heldsway.EVALIDATION, "code"},
				{"bad type", with(func(in *heldsway.CouponInput) { in.DiscountType = "bogus" }), heldsway.EVALIDATION, "discount_type"},
				{"percentage over 100", with(func(in *heldsway.CouponInput) { in.DiscountValue = "100.01" }), heldsway.EVALIDATION, "discount_value"},
				{"percentage zero", with(func(in *heldsway.CouponInput) { in.DiscountValue = "0" }), heldsway.EVALIDATION, "discount_value"},
				{"percentage 3 decimals", with(func(in *heldsway.CouponInput) { in.DiscountValue = "10.125" }), heldsway.EVALIDATION, "discount_value"},
				{"fixed negative", with(func(in *heldsway.CouponInput) { in.DiscountType, in.DiscountValue = "fixed", "-1" }), heldsway.EVALIDATION, "discount_value"},
				{"fixed too precise", with(func(in *heldsway.CouponInput) { in.DiscountType, in.DiscountValue = "fixed", "1.005" }), heldsway.EVALIDATION, "discount_value"},
				{"fixed yen decimals", with(func(in *heldsway.CouponInput) {
					in.AffiliateID, in.DiscountType, in.DiscountValue = jpy, "fixed", "5.5"
				}), heldsway.EVALIDATION, "discount_value"},
				{"fixed absurd", with(func(in *heldsway.CouponInput) { in.DiscountType, in.DiscountValue = "fixed", "1e30" }), heldsway.EVALIDATION, "discount_value"},
				{"negative minimum", with(func(in *heldsway.CouponInput) { in.MinOrderAmount = lkStr("-0.01") }), heldsway.EVALIDATION, "min_order_amount"},
				{"window backwards", with(func(in *heldsway.CouponInput) { in.StartsAt, in.EndsAt = lkTime(t0), lkTime(t0) }), heldsway.EVALIDATION, "ends_at"},
				{"date out of range", with(func(in *heldsway.CouponInput) { in.StartsAt = lkTime(time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)) }), heldsway.EVALIDATION, "starts_at"},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					before := f.couponCounts()
					_, err := st.CreateCoupon(f.ctx, f.ws.ID, c.in)
					wantCode(t, err, c.code)
					if c.field != "" {
						if d := err.(*heldsway.Error).Details; d[c.field] == nil {
							t.Fatalf("no detail on %s: %v", c.field, d)
						}
					}
					if f.couponCounts() != before {
						t.Fatalf("rows %v → %v", before, f.couponCounts())
					}
				})
			}
		})
	})
}

func TestUpdateDeleteCoupon(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := lkSetup(t, st)
		eur := storetest.InsertAffiliate(t, st.DB(), f.ws.ID, "EUR", heldsway.AffiliateActive)
		usd2 := f.affiliate(f.ws.ID, heldsway.AffiliateActive)
		c := f.coupon(heldsway.CouponInput{Code: "SAVE5", AffiliateID: f.aff, DiscountType: "fixed", DiscountValue: "5",
			MinOrderAmount: lkStr("30"), StartsAt: lkTime(t0)})
		f.coupon(heldsway.CouponInput{Code: "OTHER", AffiliateID: f.aff, DiscountType: "percentage", DiscountValue: "5"})
		f.clock.Set(t0.Add(time.Hour))

		t.Run("partial update", func(t *testing.T) {
			got, err := st.UpdateCoupon(f.ctx, f.ws.ID, c.ID, heldsway.CouponUpdate{Code: lkStr("save-5"), IsActive: lkBool(false),
				SetEndsAt: true, EndsAt: lkTime(t0.Add(48 * time.Hour)), AffiliateID: &usd2})
			if err != nil {
				t.Fatal(err)
			}
			if got.Code != "save-5" || got.IsActive || got.DiscountValue != 500 || *got.MinOrderAmount != 3000 ||
				!got.EndsAt.Equal(t0.Add(48*time.Hour)) || got.AffiliateID != usd2 || !got.UpdatedAt.Equal(t0.Add(time.Hour)) {
				t.Fatalf("updated %+v", got)
			}
			if g, _ := st.FindCouponByCode(f.ctx, f.ws.ID, "SAVE-5"); g == nil || g.ID != c.ID {
				t.Fatal("code key not updated")
			}
		})
		t.Run("switch type needs a value", func(t *testing.T) {
			before := f.couponCounts()
			_, err := st.UpdateCoupon(f.ctx, f.ws.ID, c.ID, heldsway.CouponUpdate{DiscountType: lkStr("percentage")})
			wantCode(t, err, heldsway.EVALIDATION)
			if f.couponCounts() != before {
				t.Fatal("rows written")
			}
			got, err := st.UpdateCoupon(f.ctx, f.ws.ID, c.ID, heldsway.CouponUpdate{DiscountType: lkStr("percentage"), DiscountValue: lkStr("15")})
			if err != nil || got.DiscountType != "percentage" || got.DiscountValue != 1500 {
				t.Fatalf("%+v, %v", got, err)
			}
		})
		t.Run("another currency needs the amounts again", func(t *testing.T) {
			_, err := st.UpdateCoupon(f.ctx, f.ws.ID, c.ID, heldsway.CouponUpdate{AffiliateID: &eur})
			wantCode(t, err, heldsway.EVALIDATION)
			if d := err.(*heldsway.Error).Details; d["min_order_amount"] == nil {
				t.Fatalf("details %v", d)
			}
			got, err := st.UpdateCoupon(f.ctx, f.ws.ID, c.ID, heldsway.CouponUpdate{AffiliateID: &eur, SetMinOrderAmount: true})
			if err != nil || got.Currency.Code != "EUR" || got.MinOrderAmount != nil || got.DiscountValue != 1500 {
				t.Fatalf("%+v, %v", got, err)
			}
		})
		t.Run("no change writes nothing", func(t *testing.T) {
			before := f.couponCounts()
			if _, err := st.UpdateCoupon(f.ctx, f.ws.ID, c.ID, heldsway.CouponUpdate{IsActive: lkBool(false), Code: lkStr("save-5")}); err != nil {
				t.Fatal(err)
			}
			if f.couponCounts() != before {
				t.Fatalf("rows %v → %v", before, f.couponCounts())
			}
		})
		t.Run("errors write nothing", func(t *testing.T) {
			foreign := f.affiliate(f.other.ID, heldsway.AffiliateActive)
			terminated := f.affiliate(f.ws.ID, heldsway.AffiliateTerminated)
			cases := []struct {
				name string
				ws   int64
				u    heldsway.CouponUpdate
				code string
			}{
				{"code taken", f.ws.ID, heldsway.CouponUpdate{Code: lkStr("other")}, heldsway.ECONFLICT},
				{"foreign affiliate", f.ws.ID, heldsway.CouponUpdate{AffiliateID: &foreign}, heldsway.EVALIDATION},
				{"terminated affiliate", f.ws.ID, heldsway.CouponUpdate{AffiliateID: &terminated}, heldsway.ECONFLICT},
				{"ends before starts", f.ws.ID, heldsway.CouponUpdate{SetEndsAt: true, EndsAt: lkTime(t0.Add(-time.Hour))}, heldsway.EVALIDATION},
				{"percentage over 100", f.ws.ID, heldsway.CouponUpdate{DiscountValue: lkStr("101")}, heldsway.EVALIDATION},
				{"other workspace", f.other.ID, heldsway.CouponUpdate{IsActive: lkBool(true)}, heldsway.ENOTFOUND},
			}
			for _, c0 := range cases {
				t.Run(c0.name, func(t *testing.T) {
					before := f.couponCounts()
					_, err := st.UpdateCoupon(f.ctx, c0.ws, c.ID, c0.u)
					wantCode(t, err, c0.code)
					if f.couponCounts() != before {
						t.Fatalf("rows %v → %v", before, f.couponCounts())
					}
				})
			}
		})
		t.Run("delete", func(t *testing.T) {
			_, err := st.DeleteCoupon(f.ctx, f.other.ID, c.ID)
			wantCode(t, err, heldsway.ENOTFOUND)
			got, err := st.DeleteCoupon(f.ctx, f.ws.ID, c.ID)
			if err != nil || got.ID != c.ID {
				t.Fatalf("%+v, %v", got, err)
			}
			_, err = st.FindCoupon(f.ctx, f.ws.ID, c.ID)
			wantCode(t, err, heldsway.ENOTFOUND)
			if ev := f.eventTypes("coupon", c.ID); !slices.Equal(ev, []string{"coupon.created", "coupon.updated", "coupon.updated",
				"coupon.updated", "coupon.deleted"}) {
				t.Fatalf("events %v", ev)
			}
			f.coupon(heldsway.CouponInput{Code: "SAVE-5", AffiliateID: f.aff, DiscountType: "percentage", DiscountValue: "5"})
		})
	})
}

func TestListCoupons(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := lkSetup(t, st)
		aff2 := f.affiliate(f.ws.ID, heldsway.AffiliateActive)
		foreign := f.affiliate(f.other.ID, heldsway.AffiliateActive)
		if _, err := st.CreateCoupon(f.ctx, f.other.ID, heldsway.CouponInput{Code: "FOREIGN1", AffiliateID: foreign,
			DiscountType: "percentage", DiscountValue: "5"}); err != nil {
			t.Fatal(err)
		}
		var all []*heldsway.Coupon
		for i := range 17 {
			f.clock.Set(t0.Add(time.Duration(i%4) * time.Minute))
			aff := f.aff
			if i%2 == 0 {
				aff = aff2
			}
			code := fmt.Sprintf("code%02d", (i*5)%17)
			if i%3 == 0 {
				code = strings.ToUpper(code)
			}
			all = append(all, f.coupon(heldsway.CouponInput{Code: code, AffiliateID: aff, DiscountType: "percentage",
				DiscountValue: "5", IsActive: lkBool(i%5 != 0)}))
		}
		list := func(t *testing.T, flt heldsway.CouponFilter, sort string, desc bool) []int64 {
			t.Helper()
			var ids []int64
			o := heldsway.ListOptions{PerPage: 4, Sort: sort, Desc: desc}
			for {
				res, err := st.ListCoupons(f.ctx, f.ws.ID, flt, o)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range res.Items {
					ids = append(ids, c.ID)
				}
				if res.Next == nil {
					return ids
				}
				o.After = res.Next
			}
		}
		want := func(keep func(*heldsway.Coupon) bool, key func(*heldsway.Coupon) string, desc bool) []int64 {
			var cs []*heldsway.Coupon
			for _, c := range all {
				if keep(c) {
					cs = append(cs, c)
				}
			}
			slices.SortFunc(cs, func(a, b *heldsway.Coupon) int {
				c := strings.Compare(key(a), key(b))
				if c == 0 {
					c = int(a.ID - b.ID)
				}
				if desc {
					return -c
				}
				return c
			})
			var ids []int64
			for _, c := range cs {
				ids = append(ids, c.ID)
			}
			return ids
		}
		byCreated := func(c *heldsway.Coupon) string { return fmt.Sprintf("%020d", c.CreatedAt.UnixMicro()) }
		byCode := func(c *heldsway.Coupon) string { return strings.ToUpper(c.Code) }
		all1 := func(*heldsway.Coupon) bool { return true }
		cases := []struct {
			name string
			flt  heldsway.CouponFilter
			sort string
			desc bool
			keep func(*heldsway.Coupon) bool
			key  func(*heldsway.Coupon) string
		}{
			{"created desc", heldsway.CouponFilter{}, "created_at", true, all1, byCreated},
			{"created asc", heldsway.CouponFilter{}, "created_at", false, all1, byCreated},
			{"code asc, case-insensitive", heldsway.CouponFilter{}, "code", false, all1, byCode},
			{"code desc", heldsway.CouponFilter{}, "code", true, all1, byCode},
			{"affiliate", heldsway.CouponFilter{AffiliateID: aff2}, "created_at", true, func(c *heldsway.Coupon) bool { return c.AffiliateID == aff2 }, byCreated},
			{"inactive", heldsway.CouponFilter{IsActive: lkBool(false)}, "created_at", true, func(c *heldsway.Coupon) bool { return !c.IsActive }, byCreated},
			{"search any case", heldsway.CouponFilter{Search: "dE1"}, "code", false, func(c *heldsway.Coupon) bool { return strings.Contains(byCode(c), "DE1") }, byCode},
			{"search underscore literal", heldsway.CouponFilter{Search: "_"}, "code", false, func(*heldsway.Coupon) bool { return false }, byCode},
			{"foreign affiliate", heldsway.CouponFilter{AffiliateID: foreign}, "created_at", true, func(*heldsway.Coupon) bool { return false }, byCreated},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if got, w := list(t, c.flt, c.sort, c.desc), want(c.keep, c.key, c.desc); !slices.Equal(got, w) {
					t.Fatalf("got %v\nwant %v", got, w)
				}
			})
		}
	})
}
