package api_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

func (l *lkEnv) createCoupon(t *testing.T, body any) map[string]any {
	t.Helper()
	r := l.do("POST", "/v1/coupons", l.write, body)
	if r.status != 201 {
		t.Fatalf("create coupon: %d %s", r.status, r.raw)
	}
	return r.data()
}

func TestCouponCRUD(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		l := lkSetup(t, e)
		jpy := storetest.InsertAffiliate(t, e.store.DB(), e.ws.ID, "JPY", heldsway.AffiliateActive)

		r := e.do("POST", "/v1/coupons", l.write, fmt.Sprintf(`{"code":"Summer10","affiliate_id":%d,"discount_type":"percentage",
			"discount_value":12.5,"min_order_amount":20,"starts_at":"2026-11-01T12:00:00+02:00","ends_at":"2026-12-01T00:00:00.1234567Z"}`, l.aff))
		if r.status != 201 || r.body["message"] != "Coupon created." {
			t.Fatalf("create: %d %s", r.status, r.raw)
		}
		d := r.data()
		want := []string{"affiliate_id", "code", "created_at", "currency", "discount_type", "discount_value", "ends_at", "id",
			"is_active", "min_order_amount", "starts_at", "updated_at"}
		if got := sortedKeysOf(d); !slices.Equal(got, want) {
			t.Fatalf("coupon fields %v, want %v", got, want)
		}
		// Exact decimals on the wire: 12.50 and 20.00, not floats.
		if !strings.Contains(r.raw, `"discount_value":12.50`) || !strings.Contains(r.raw, `"min_order_amount":20.00`) {
			t.Fatalf("amounts: %s", r.raw)
		}
		if d["code"] != "Summer10" || num(d["affiliate_id"]) != l.aff || d["discount_type"] != "percentage" || d["currency"] != "USD" ||
			d["starts_at"] != "2026-11-01T10:00:00.000000Z" || d["ends_at"] != "2026-12-01T00:00:00.123456Z" || d["is_active"] != true ||
			d["created_at"] != "2026-11-01T12:00:00.000000Z" {
			t.Fatalf("coupon %v", d)
		}
		id := num(d["id"])
		path := fmt.Sprintf("/v1/coupons/%d", id)

		t.Run("fixed amount in the program currency", func(t *testing.T) {
			r := e.do("POST", "/v1/coupons", l.write, map[string]any{"code": "yen500", "affiliate_id": jpy,
				"discount_type": "fixed", "discount_value": 500, "is_active": false})
			if r.status != 201 || !strings.Contains(r.raw, `"discount_value":500,`) || r.data()["currency"] != "JPY" ||
				r.data()["min_order_amount"] != nil || r.data()["is_active"] != false || r.data()["starts_at"] != nil {
				t.Fatalf("create: %d %s", r.status, r.raw)
			}
		})
		t.Run("get", func(t *testing.T) {
			r := e.do("GET", path, l.read, nil)
			if r.status != 200 || r.data()["code"] != "Summer10" || !strings.Contains(r.raw, `"discount_value":12.50`) {
				t.Fatalf("get: %d %s", r.status, r.raw)
			}
		})
		t.Run("code is unique regardless of case", func(t *testing.T) {
			before := l.rows(t)
			r := e.do("POST", "/v1/coupons", l.write, map[string]any{"code": "SUMMER10", "affiliate_id": l.aff,
				"discount_type": "percentage", "discount_value": 5})
			r.expectError(t, 409, "CONFLICT", "The code has already been taken.")
			if len(r.details("code")) != 1 || l.rows(t) != before {
				t.Fatalf("details %s, rows %s → %s", r.raw, before, l.rows(t))
			}
			// Another workspace may use the same code.
			other := e.do("POST", "/v1/coupons", l.otherTok, map[string]any{"code": "summer10", "affiliate_id": l.otherAff,
				"discount_type": "percentage", "discount_value": 5})
			if other.status != 201 {
				t.Fatalf("other workspace: %d %s", other.status, other.raw)
			}
		})
		t.Run("partial update, null clears", func(t *testing.T) {
			e.clock.Advance(60e9)
			r := e.do("PUT", path, l.write, map[string]any{"min_order_amount": nil, "ends_at": nil, "discount_type": "fixed",
				"discount_value": 7.5, "is_active": false})
			d := r.data()
			if r.status != 200 || r.body["message"] != "Coupon updated." || d["min_order_amount"] != nil || d["ends_at"] != nil ||
				d["starts_at"] != "2026-11-01T10:00:00.000000Z" || d["discount_type"] != "fixed" || !strings.Contains(r.raw, `"discount_value":7.50`) ||
				d["is_active"] != false || d["code"] != "Summer10" || d["updated_at"] != "2026-11-01T12:01:00.000000Z" {
				t.Fatalf("update: %d %s", r.status, r.raw)
			}
			if g := e.do("GET", path, l.read, nil).data(); g["ends_at"] != nil || g["discount_type"] != "fixed" {
				t.Fatalf("stored %v", g)
			}
		})
		t.Run("other workspace and unknown ids are 404, nothing changes", func(t *testing.T) {
			before := l.rows(t)
			e.do("GET", path, l.otherTok, nil).expectError(t, 404, "NOT_FOUND", "Coupon not found.")
			e.do("PUT", path, l.otherTok, map[string]any{"is_active": true}).expectError(t, 404, "NOT_FOUND", "Coupon not found.")
			e.do("DELETE", path, l.otherTok, nil).expectError(t, 404, "NOT_FOUND", "Coupon not found.")
			e.do("GET", fmt.Sprintf("/v1/coupons/%d", id+1000), l.read, nil).expectError(t, 404, "NOT_FOUND", "Coupon not found.")
			if l.rows(t) != before {
				t.Fatal("rows written")
			}
			if g := e.do("GET", path, l.read, nil).data(); g["is_active"] != false {
				t.Fatal("another workspace changed the coupon")
			}
		})
		t.Run("scopes", func(t *testing.T) {
			none := e.token("orders:read")
			for _, c := range []struct{ method, path, tok string }{
				{"GET", "/v1/coupons", none},
				{"GET", path, none},
				{"POST", "/v1/coupons", l.read},
				{"PUT", path, l.read},
				{"DELETE", path, l.read},
				{"GET", path, l.write},
			} {
				e.do(c.method, c.path, c.tok, map[string]any{}).expectError(t, 403, "FORBIDDEN", "Insufficient scope.")
			}
		})
		t.Run("delete", func(t *testing.T) {
			r := e.do("DELETE", path, l.write, nil)
			if r.status != 200 || r.body["message"] != "Coupon deleted." || num(r.data()["id"]) != id {
				t.Fatalf("delete: %d %s", r.status, r.raw)
			}
			e.do("GET", path, l.read, nil).expectError(t, 404, "NOT_FOUND", "Coupon not found.")
			var types []string
			rows, _ := e.store.DB().Query(`SELECT type FROM events WHERE resource_type = 'coupon' AND resource_id = $1 ORDER BY id`, id)
			for rows.Next() {
				var s string
				_ = rows.Scan(&s)
				types = append(types, s)
			}
			rows.Close()
			if !slices.Equal(types, []string{"coupon.created", "coupon.updated", "coupon.deleted"}) {
				t.Fatalf("events %v", types)
			}
		})
	})
}

func TestCouponValidation(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		l := lkSetup(t, e)
		jpy := storetest.InsertAffiliate(t, e.store.DB(), e.ws.ID, "JPY", heldsway.AffiliateActive)
		term := storetest.InsertAffiliate(t, e.store.DB(), e.ws.ID, "USD", heldsway.AffiliateTerminated)
		existing := num(l.createCoupon(t, map[string]any{"code": "EXISTING", "affiliate_id": l.aff, "discount_type": "fixed",
			"discount_value": 5, "starts_at": "2026-11-01T00:00:00Z"})["id"])
		update := fmt.Sprintf("/v1/coupons/%d", existing)
		valid := func(mod map[string]any) map[string]any {
			b := map[string]any{"code": "NEW10", "affiliate_id": l.aff, "discount_type": "percentage", "discount_value": 10}
			for k, v := range mod {
				if v == "<absent>" {
					delete(b, k)
				} else {
					b[k] = v
				}
			}
			return b
		}
		cases := []struct {
			name, method, path string
			body               any
			status             int
			field, msg         string
		}{
			{"missing code", "POST", "/v1/coupons", valid(map[string]any{"code": "<absent>"}), 422, "code", "The code field is required."},
			{"short code", "POST", "/v1/coupons", valid(map[string]any{"code": "AB"}), 422, "code", "The code field must be at least 3 characters."},
			{"long code", "POST", "/v1/coupons", valid(map[string]any{"code": strings.Repeat("A", 51)}), 422, "code", "The code field must not be greater than 50 characters."},
			{"code characters", "POST", "/v1/coupons", valid(map[string]any{"code": "TEN OFF"}), 422, "code", "The code field may only contain letters, numbers, dashes and underscores."},
			{"missing affiliate", "POST", "/v1/coupons", valid(map[string]any{"affiliate_id": "<absent>"}), 422, "affiliate_id", "The affiliate id field is required."},
			{"affiliate not integer", "POST", "/v1/coupons", valid(map[string]any{"affiliate_id": "1"}), 422, "affiliate_id", "The affiliate id field must be an integer."},
			{"other workspace's affiliate", "POST", "/v1/coupons", valid(map[string]any{"affiliate_id": l.otherAff}), 422, "affiliate_id", "The selected affiliate id is invalid."},
			{"unknown affiliate", "POST", "/v1/coupons", valid(map[string]any{"affiliate_id": l.otherAff + 1000}), 422, "affiliate_id", "The selected affiliate id is invalid."},
			{"bad type", "POST", "/v1/coupons", valid(map[string]any{"discount_type": "bogo"}), 422, "discount_type", "The selected discount type is invalid. Allowed: percentage, fixed."},
			{"missing value", "POST", "/v1/coupons", valid(map[string]any{"discount_value": "<absent>"}), 422, "discount_value", "The discount value field is required."},
			{"value as string", "POST", "/v1/coupons", valid(map[string]any{"discount_value": "10"}), 422, "discount_value", "The discount value field must be a number."},
			{"value zero", "POST", "/v1/coupons", valid(map[string]any{"discount_value": 0}), 422, "discount_value", "The discount value field must be greater than 0."},
			{"percentage over 100", "POST", "/v1/coupons", valid(map[string]any{"discount_value": 100.5}), 422, "discount_value", "The discount value field must be greater than 0 and at most 100 for a percentage."},
			{"percentage 3 decimals", "POST", "/v1/coupons", `{"code":"P3","affiliate_id":1,"discount_type":"percentage","discount_value":1.005}`, 422, "", ""},
			{"fixed too precise for JPY", "POST", "/v1/coupons", valid(map[string]any{"affiliate_id": jpy, "discount_type": "fixed", "discount_value": 1.5}), 422, "discount_value", "The discount value field must have at most 0 decimal places for JPY."},
			{"fixed absurd", "POST", "/v1/coupons", `{"code":"HUGE","affiliate_id":1,"discount_type":"fixed","discount_value":1e20}`, 422, "", ""},
			{"negative minimum", "POST", "/v1/coupons", valid(map[string]any{"min_order_amount": -1}), 422, "min_order_amount", "The min order amount field must be at least 0."},
			{"minimum too precise", "POST", "/v1/coupons", valid(map[string]any{"min_order_amount": 1.001}), 422, "min_order_amount", "The min order amount field must have at most 2 decimal places for USD."},
			{"bad date", "POST", "/v1/coupons", valid(map[string]any{"starts_at": "tomorrow"}), 422, "starts_at", "The starts at field must be a valid RFC 3339 date-time."},
			{"date out of range", "POST", "/v1/coupons", valid(map[string]any{"ends_at": "1960-01-01T00:00:00Z"}), 422, "ends_at", "The ends at field must be a date between 1970-01-01 and 9999-12-31."},
			{"ends before starts", "POST", "/v1/coupons", valid(map[string]any{"starts_at": "2026-12-01T00:00:00Z", "ends_at": "2026-11-01T00:00:00Z"}), 422, "ends_at", "The ends at field must be a date after starts at."},
			{"unknown field", "POST", "/v1/coupons", valid(map[string]any{"currency": "EUR"}), 422, "currency", "The currency field is not allowed."},
			{"terminated affiliate", "POST", "/v1/coupons", valid(map[string]any{"affiliate_id": term}), 409, "", "Coupons cannot be created for a terminated affiliate."},
			{"update null code", "PUT", update, map[string]any{"code": nil}, 422, "code", "The code field must not be null."},
			{"update null value", "PUT", update, map[string]any{"discount_value": nil}, 422, "discount_value", "The discount value field must not be null."},
			{"update type without value", "PUT", update, map[string]any{"discount_type": "percentage"}, 422, "discount_value", "The discount value field is required when the discount type changes."},
			{"update currency without amounts", "PUT", update, map[string]any{"affiliate_id": jpy}, 422, "discount_value", "The discount value field is required: the affiliate's currency changes from USD to JPY."},
			{"update ends before existing start", "PUT", update, map[string]any{"ends_at": "2026-10-01T00:00:00Z"}, 422, "ends_at", "The ends at field must be a date after starts at."},
			{"update foreign affiliate", "PUT", update, map[string]any{"affiliate_id": l.otherAff}, 422, "affiliate_id", "The selected affiliate id is invalid."},
			{"update bad type", "PUT", update, map[string]any{"discount_type": 5}, 422, "discount_type", "The discount type field must be a string."},
			{"update unknown field", "PUT", update, map[string]any{"code_key": "X"}, 422, "code_key", "The code key field is not allowed."},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := l.rows(t)
				r := e.do(c.method, c.path, l.both, c.body)
				code := "VALIDATION_ERROR"
				if c.status == 409 {
					code = "CONFLICT"
				}
				r.expectError(t, c.status, code, "")
				if c.field != "" {
					if got := r.details(c.field); !slices.Contains(got, c.msg) {
						t.Fatalf("details of %s: %v, want %q (%s)", c.field, got, c.msg, r.raw)
					}
				} else if c.msg != "" && r.errMessage() != c.msg {
					t.Fatalf("message %q, want %q", r.errMessage(), c.msg)
				}
				if l.rows(t) != before {
					t.Fatalf("rows written: %s → %s", before, l.rows(t))
				}
			})
		}
	})
}

func TestCouponList(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		l := lkSetup(t, e)
		aff2 := storetest.InsertAffiliate(t, e.store.DB(), e.ws.ID, "USD", heldsway.AffiliateActive)
		if r := e.do("POST", "/v1/coupons", l.otherTok, map[string]any{"code": "FOREIGN", "affiliate_id": l.otherAff,
			"discount_type": "percentage", "discount_value": 5}); r.status != 201 {
			t.Fatalf("other workspace: %d %s", r.status, r.raw)
		}
		type row struct {
			id            int64
			created, code string
			aff           int64
			active        bool
		}
		var all []row
		for i := range 20 {
			if i%3 == 0 {
				e.clock.Advance(1e6)
			}
			aff := l.aff
			if i%2 == 0 {
				aff = aff2
			}
			code := fmt.Sprintf("code%02d", (i*7)%20)
			if i%4 == 0 {
				code = strings.ToUpper(code)
			}
			d := l.createCoupon(t, map[string]any{"code": code, "affiliate_id": aff, "discount_type": "percentage",
				"discount_value": 5, "is_active": i%5 != 0})
			all = append(all, row{num(d["id"]), d["created_at"].(string), code, aff, i%5 != 0})
		}
		expect := func(keep func(row) bool, less func(a, b row) int) []int64 {
			var rs []row
			for _, r := range all {
				if keep(r) {
					rs = append(rs, r)
				}
			}
			slices.SortFunc(rs, less)
			var ids []int64
			for _, r := range rs {
				ids = append(ids, r.id)
			}
			return ids
		}
		newestFirst := func(a, b row) int {
			if c := strings.Compare(b.created, a.created); c != 0 {
				return c
			}
			return int(b.id - a.id)
		}
		byCode := func(a, b row) int { return strings.Compare(strings.ToUpper(a.code), strings.ToUpper(b.code)) }
		cases := []struct {
			name, query string
			keep        func(row) bool
			less        func(a, b row) int
		}{
			{"default order", "", func(row) bool { return true }, newestFirst},
			{"code asc, case-insensitive", "sort=code&direction=asc", func(row) bool { return true }, byCode},
			{"affiliate", fmt.Sprintf("affiliate_id=%d", aff2), func(r row) bool { return r.aff == aff2 }, newestFirst},
			{"inactive", "is_active=0", func(r row) bool { return !r.active }, newestFirst},
			{"search", "search=E1", func(r row) bool { return strings.Contains(strings.ToUpper(r.code), "E1") }, newestFirst},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				got := idsOf(l.allPages(t, l.read, "/v1/coupons?per_page=3&"+c.query))
				if w := expect(c.keep, c.less); !slices.Equal(got, w) {
					t.Fatalf("got %v\nwant %v", got, w)
				}
			})
		}
		for _, q := range []string{"sort=amount", "is_active=yes", "per_page=500", "cursor=x"} {
			e.do("GET", "/v1/coupons?"+q, l.read, nil).expectError(t, 422, "VALIDATION_ERROR", "")
		}
	})
}
