package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/auth"
	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// Hand-computed analytics and reports: a workspace in New York with a
// history around 1 November 2026, when New York leaves daylight saving time
// (02:00 EDT = 06:00 UTC becomes 01:00 EST), so its 1 November lasts 25
// hours, from 04:00 UTC to 05:00 UTC the next day. Every event is written
// through the store's write paths, so the rollups are the incremental ones.

type anaFixture struct {
	*env
	tok                string
	a, b               int64 // affiliates A and B
	la1, la2, lb1      int64 // A's links (campaign spring, none), B's link (spring)
	o1, o2, o3, o6, o8 int64
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func anaSetup(t *testing.T, e *env) *anaFixture {
	t.Helper()
	ctx := context.Background()
	f := &anaFixture{env: e}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := e.store.DB().Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`UPDATE workspace_settings SET timezone = 'America/New_York' WHERE workspace_id = $1`, e.ws.ID)
	e.clock.now = utc("2026-11-02T12:00:00Z") // 07:00 on 2 November in New York
	f.tok = e.token("reports:read", "affiliates:read")
	f.a = storetest.InsertAffiliate(t, e.store.DB(), e.ws.ID, "USD", heldsway.AffiliateActive)
	f.b = storetest.InsertAffiliate(t, e.store.DB(), e.ws.ID, "USD", heldsway.AffiliateActive)
	exec(`UPDATE programs SET commission_type = 'percentage', commission_value = 1000 WHERE workspace_id = $1`, e.ws.ID)
	var prog int64
	if err := e.store.DB().QueryRow(`SELECT program_id FROM affiliates WHERE id = $1`, f.a).Scan(&prog); err != nil {
		t.Fatal(err)
	}
	link := func(aff int64, slug string, campaign any) int64 {
		var id int64
		if err := e.store.DB().QueryRow(`INSERT INTO links (workspace_id, affiliate_id, slug, destination_url, campaign, is_active,
			created_at, updated_at) VALUES ($1, $2, $3, 'https://shop.example/', $4, $5, $6, $6) RETURNING id`,
			e.ws.ID, aff, slug, campaign, true, utc("2026-09-01T00:00:00Z").UnixMicro()).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	f.la1, f.la2, f.lb1 = link(f.a, "a1", "spring"), link(f.a, "a2", nil), link(f.b, "b1", "spring")

	click := func(id string, linkID, aff int64, at string) heldsway.Click {
		return heldsway.Click{WorkspaceID: e.ws.ID, LinkID: linkID, AffiliateID: aff, ProgramID: prog, ClickID: id,
			VisitorID: "vis-" + id, CreatedAt: utc(at)}
	}
	clicks := []heldsway.Click{
		click("c1", f.la1, f.a, "2026-10-31T03:30:00Z"), // 23:30 on 30 October in New York
		click("c2", f.la1, f.a, "2026-10-31T12:00:00Z"),
		click("c3", f.la2, f.a, "2026-10-31T20:00:00Z"),
		click("c4", f.lb1, f.b, "2026-11-01T04:30:00Z"), // 00:30 EDT, 1 November
		click("c5", f.la1, f.a, "2026-11-01T05:30:00Z"), // 01:30 EDT
		click("c6", f.la1, f.a, "2026-11-01T06:30:00Z"), // 01:30 EST, after the change
		click("c7", f.lb1, f.b, "2026-09-20T10:00:00Z"), // the previous window
		click("c8", 0, f.a, "2026-10-31T15:00:00Z"),     // an SDK ?ref= landing
		click("c9", f.lb1, f.b, "2026-11-02T04:30:00Z"), // 23:30 EST, still 1 November
	}
	for i := 0; i < len(clicks); i += 4 {
		if err := e.store.InsertClicks(ctx, clicks[i:min(i+4, len(clicks))]); err != nil {
			t.Fatal(err)
		}
	}

	aRef := func() (*int64, *int64, *int64) { a, p, l := f.a, prog, f.la1; return &a, &p, &l }
	ev := func(typ, session, at, path string, attributed bool, products ...string) {
		t.Helper()
		base := heldsway.StorefrontEvent{WorkspaceID: e.ws.ID, Type: typ, VisitorID: "v-" + session, SessionID: session,
			Host: "shop.example", Path: path, CreatedAt: utc(at)}
		if attributed {
			base.AffiliateID, base.ProgramID, base.LinkID = aRef()
		}
		evs := []heldsway.StorefrontEvent{base}
		if len(products) > 0 {
			evs = evs[:0]
			for _, p := range products {
				x := base
				x.ProductID, x.ProductName, _ = strings.Cut(p, ":")
				evs = append(evs, x)
			}
		}
		if err := e.store.InsertStorefrontEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	ev("pageview", "S1", "2026-10-31T12:01:00Z", "/", true)
	ev("pageview", "S1", "2026-10-31T12:02:00Z", "/p/mug", true)
	ev("product_view", "S1", "2026-10-31T12:03:00Z", "/p/mug", true, "p1:Mug")
	ev("add_to_cart", "S1", "2026-10-31T12:04:00Z", "/p/mug", true, "p1:Mug", "p2:Cap")
	ev("remove_from_cart", "S1", "2026-10-31T12:05:00Z", "/cart", true, "p2:Cap")
	ev("thank_you", "S1", "2026-10-31T12:10:00Z", "/thanks", true)
	ev("pageview", "S2", "2026-10-31T13:00:00Z", "/", false)
	ev("pageview", "S2", "2026-11-01T03:59:00Z", "/", false) // 23:59 on 31 October
	ev("pageview", "S2", "2026-11-01T04:30:00Z", "/", false) // the same session past midnight: a new visit
	ev("checkout", "S3", "2026-11-01T10:00:00Z", "/checkout", false)
	b, lb1 := f.b, f.lb1
	if err := e.store.InsertStorefrontEvents(ctx, []heldsway.StorefrontEvent{{WorkspaceID: e.ws.ID, Type: "pageview",
		VisitorID: "v-S4", SessionID: "S4", AffiliateID: &b, ProgramID: &prog, LinkID: &lb1, Host: "shop.example", Path: "/",
		CreatedAt: utc("2026-11-01T11:00:00Z")}}); err != nil {
		t.Fatal(err)
	}

	code := func(aff int64) string {
		var c string
		if err := e.store.DB().QueryRow(`SELECT referral_code FROM affiliates WHERE id = $1`, aff).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	conv := func(id, cur string, total int64, at, clickID, ref string) int64 {
		t.Helper()
		o, err := e.store.CreateConversion(ctx, e.ws.ID, heldsway.ConversionInput{OrderID: id, Currency: cur, Total: total,
			Subtotal: total, OccurredAt: utc(at), ClickID: clickID, ReferralCode: ref})
		if err != nil {
			t.Fatalf("conversion %s: %v", id, err)
		}
		return o.ID
	}
	f.o1 = conv("o1", "USD", 10000, "2026-10-31T12:15:00Z", "c2", "")
	f.o2 = conv("o2", "USD", 5000, "2026-11-01T05:45:00Z", "", code(f.a))
	f.o3 = conv("o3", "USD", 20000, "2026-11-01T04:45:00Z", "c4", "")
	conv("o4", "USD", 3000, "2026-10-31T18:00:00Z", "", "")
	conv("o5", "EUR", 2000, "2026-10-31T19:00:00Z", "", "")
	f.o6 = conv("o6", "USD", 6000, "2026-11-01T08:00:00Z", "", code(f.a))
	o7 := conv("o7", "USD", 8000, "2026-09-20T12:00:00Z", "c7", "")
	f.o8 = conv("o8", "USD", 5000, "2026-10-25T12:00:00Z", "", code(f.b))
	for _, id := range []int64{f.o1, o7, f.o8} {
		if _, err := e.store.ApproveOrder(ctx, e.ws.ID, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.store.RejectOrder(ctx, e.ws.ID, f.o3, ""); err != nil {
		t.Fatal(err)
	}
	ten := int64(1000)
	if _, err := e.store.RefundOrder(ctx, e.ws.ID, f.o2, &ten, ""); err != nil { // 10.00 of 50.00: commission 5.00 → 4.00
		t.Fatal(err)
	}
	if _, err := e.store.RefundOrder(ctx, e.ws.ID, f.o6, nil, ""); err != nil { // the whole order: cancelled
		t.Fatal(err)
	}
	// A's approved 10.00 (o1) is paid out.
	var rid int64
	if err := e.store.DB().QueryRow(`INSERT INTO payout_requests (workspace_id, affiliate_id, currency, amount, status, created_at, updated_at)
		VALUES ($1, $2, 'USD', 1000, 'pending', $3, $3) RETURNING id`, e.ws.ID, f.a, e.clock.now.UnixMicro()).Scan(&rid); err != nil {
		t.Fatal(err)
	}
	p, err := e.store.CreatePayoutForRequest(ctx, e.ws.ID, rid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.CompletePayout(ctx, e.ws.ID, p.ID, "wire-1"); err != nil {
		t.Fatal(err)
	}
	return f
}

// get asks path and returns data re-encoded compactly, for comparison with
// hand-written JSON.
func (f *anaFixture) get(t *testing.T, path string) string {
	t.Helper()
	r := f.do("GET", path, f.tok, nil)
	if r.status != 200 || r.body["success"] != true {
		t.Fatalf("GET %s: %d %s", path, r.status, r.raw)
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(r.raw), &env); err != nil {
		t.Fatal(err)
	}
	return string(env.Data)
}

// want asserts that the JSON data of path contains every fragment.
func (f *anaFixture) want(t *testing.T, path string, fragments ...string) {
	t.Helper()
	got := f.get(t, path)
	for _, w := range fragments {
		if !strings.Contains(got, w) {
			t.Errorf("GET %s\n got %s\nwant …%s…", path, got, w)
		}
	}
}

const allZero = `"stats":{"total_clicks":0,"total_pageviews":0,"unique_visitors":0,"pages_per_visit":0.00,` +
	`"total_conversions":0,"total_revenue":0.00,"total_commission":0.00,"conversion_rate":0.00,"total_product_views":0,` +
	`"total_add_to_carts":0,"total_remove_from_carts":0,"total_thank_you_views":0,"cart_to_conversion_rate":0.00}`

func TestAnalyticsHandComputed(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		f := anaSetup(t, e)
		const ana = "/v1/affiliate/analytics?section="

		t.Run("stats", func(t *testing.T) {
			// Default range: 3 October to 2 November (today in New York).
			f.want(t, ana+"stats", `"section":"stats","filters":{"from":"2026-10-03","to":"2026-11-02","timezone":"America/New_York",`+
				`"currency":"USD","program_id":null,"affiliate_id":null,"link_id":null}`,
				`"stats":{"total_clicks":8,"total_pageviews":6,"unique_visitors":4,"pages_per_visit":1.50,"total_conversions":5,`+
					`"total_revenue":220.00,"total_commission":19.00,"conversion_rate":62.50,"total_product_views":1,`+
					`"total_add_to_carts":2,"total_remove_from_carts":1,"total_thank_you_views":1,"cart_to_conversion_rate":250.00}`)
			// One day, 31 October: c1 was on 30 October there, not in UTC.
			f.want(t, ana+"stats&from=2026-10-31&to=2026-10-31",
				`"stats":{"total_clicks":3,"total_pageviews":4,"unique_visitors":2,"pages_per_visit":2.00,"total_conversions":3,`+
					`"total_revenue":130.00,"total_commission":10.00,"conversion_rate":100.00,"total_product_views":1,`+
					`"total_add_to_carts":2,"total_remove_from_carts":1,"total_thank_you_views":1,"cart_to_conversion_rate":150.00}`)
			// The 25-hour day of the change: c9 at 04:30 UTC on 2 November is 23:30 EST on 1 November; the
			// refunded o2 counts its 40.00, the rejected o3 and fully refunded o6 nothing.
			f.want(t, ana+"stats&from=2026-11-01&to=2026-11-01",
				`"stats":{"total_clicks":4,"total_pageviews":2,"unique_visitors":2,"pages_per_visit":1.00,"total_conversions":1,`+
					`"total_revenue":40.00,"total_commission":4.00,"conversion_rate":25.00,"total_product_views":0,`+
					`"total_add_to_carts":0,"total_remove_from_carts":0,"total_thank_you_views":0,"cart_to_conversion_rate":0.00}`)
			f.want(t, ana+"stats&from=2026-09-10&to=2026-09-12", allZero)
			f.want(t, ana+"stats&from=2026-10-30&to=2026-10-30", `"total_clicks":1,`)
			// Selected metrics, in the documented order whatever the order asked.
			got := f.get(t, ana+"stats&metrics=conversion_rate,%20total_clicks,total_clicks")
			if !strings.Contains(got, `"stats":{"total_clicks":8,"conversion_rate":62.50}`) {
				t.Errorf("metrics selection: %s", got)
			}
			// EUR: o5 only.
			f.want(t, ana+"stats&currency=eur&metrics=total_revenue,total_conversions",
				`"currency":"EUR"`, `"stats":{"total_conversions":5,"total_revenue":20.00}`)
		})

		t.Run("filters", func(t *testing.T) {
			f.want(t, ana+fmt.Sprintf("stats&affiliate_id=%d", f.a), fmt.Sprintf(`"affiliate_id":%d`, f.a),
				`"stats":{"total_clicks":6,"total_pageviews":2,"unique_visitors":1,"pages_per_visit":2.00,"total_conversions":2,`+
					`"total_revenue":140.00,"total_commission":14.00,"conversion_rate":33.33,"total_product_views":1,`+
					`"total_add_to_carts":2,"total_remove_from_carts":1,"total_thank_you_views":1,"cart_to_conversion_rate":100.00}`)
			f.want(t, ana+fmt.Sprintf("stats&link_id=%d&metrics=total_clicks,total_pageviews,total_conversions,total_revenue,total_commission,conversion_rate", f.la1),
				`"stats":{"total_clicks":4,"total_pageviews":2,"total_conversions":1,"total_revenue":100.00,"total_commission":10.00,"conversion_rate":25.00}`)
			var prog int64
			if err := e.store.DB().QueryRow(`SELECT program_id FROM affiliates WHERE id = $1`, f.a).Scan(&prog); err != nil {
				t.Fatal(err)
			}
			f.want(t, ana+fmt.Sprintf("stats&program_id=%d&metrics=total_clicks,total_pageviews,total_conversions,total_revenue", prog),
				`"stats":{"total_clicks":8,"total_pageviews":3,"total_conversions":3,"total_revenue":190.00}`)
		})

		t.Run("trends", func(t *testing.T) {
			// Previous window: 2 September to 2 October: c7 and the approved o7 (80.00, commission 8.00).
			f.want(t, ana+"trends", `"previous":{"from":"2026-09-02","to":"2026-10-02"}`,
				`"trends":{"total_clicks":700.00,"total_pageviews":0.00,"unique_visitors":0.00,"pages_per_visit":0.00,`+
					`"total_conversions":400.00,"total_revenue":175.00,"total_commission":137.50,"conversion_rate":-37.50,`+
					`"total_product_views":0.00,"total_add_to_carts":0.00,"total_remove_from_carts":0.00,`+
					`"total_thank_you_views":0.00,"cart_to_conversion_rate":0.00}`)
			// One day against the day before.
			f.want(t, ana+"trends&from=2026-10-31&to=2026-10-31&metrics=total_clicks", `"previous":{"from":"2026-10-30","to":"2026-10-30"}`,
				`"trends":{"total_clicks":200.00}`)
		})

		t.Run("charts", func(t *testing.T) {
			f.want(t, ana+"charts&from=2026-10-30&to=2026-11-02&metrics=total_clicks,total_revenue,unique_visitors",
				`"charts":{"dates":["2026-10-30","2026-10-31","2026-11-01","2026-11-02"],"series":{"total_clicks":[1,3,4,0],`+
					`"unique_visitors":[0,2,2,0],"total_revenue":[0.00,130.00,40.00,0.00]}}`)
			f.want(t, ana+"charts&from=2026-10-31&to=2026-10-31&metrics=cart_to_conversion_rate",
				`"charts":{"dates":["2026-10-31"],"series":{"cart_to_conversion_rate":[150.00]}}`)
		})

		t.Run("tables", func(t *testing.T) {
			f.want(t, ana+"tables",
				fmt.Sprintf(`"affiliates":[{"affiliate_id":%d,`, f.a),
				`"clicks":6,"pageviews":2,"unique_visitors":1,"conversions":2,"revenue":140.00,"commission":14.00,"conversion_rate":33.33},`+
					fmt.Sprintf(`{"affiliate_id":%d,`, f.b),
				`"clicks":2,"pageviews":1,"unique_visitors":1,"conversions":1,"revenue":50.00,"commission":5.00,"conversion_rate":50.00}]`,
				fmt.Sprintf(`"links":[{"link_id":%d,"slug":"a1","campaign":"spring","affiliate_id":%d,"clicks":4,"pageviews":2,`+
					`"unique_visitors":1,"conversions":1,"revenue":100.00,"commission":10.00,"conversion_rate":25.00},`, f.la1, f.a)+
					fmt.Sprintf(`{"link_id":%d,"slug":"b1","campaign":"spring","affiliate_id":%d,"clicks":2,"pageviews":1,`+
						`"unique_visitors":1,"conversions":0,"revenue":0.00,"commission":0.00,"conversion_rate":0.00},`, f.lb1, f.b)+
					fmt.Sprintf(`{"link_id":%d,"slug":"a2","campaign":null,"affiliate_id":%d,"clicks":1,"pageviews":0,`+
						`"unique_visitors":0,"conversions":0,"revenue":0.00,"commission":0.00,"conversion_rate":0.00}]`, f.la2, f.a),
				`"campaigns":[{"campaign":"spring","links":2,"clicks":6,"pageviews":3,"unique_visitors":2,"conversions":1,"revenue":100.00,`+
					`"commission":10.00,"conversion_rate":16.67},{"campaign":null,"links":1,"clicks":2,"pageviews":0,"unique_visitors":0,`+
					`"conversions":2,"revenue":90.00,"commission":9.00,"conversion_rate":100.00}]`,
				`"pages":[{"host":"shop.example","path":"/","pageviews":5},{"host":"shop.example","path":"/p/mug","pageviews":1}]`,
				`"products":[{"product_id":"p1","name":"Mug","product_views":1,"add_to_carts":1,"remove_from_carts":0},`+
					`{"product_id":"p2","name":"Cap","product_views":0,"add_to_carts":1,"remove_from_carts":1}]`)
			got := f.get(t, ana+"tables&top_limit=1")
			var d struct {
				Tables map[string][]any `json:"tables"`
			}
			if err := json.Unmarshal([]byte(got), &d); err != nil {
				t.Fatal(err)
			}
			for k, v := range d.Tables {
				if len(v) != 1 {
					t.Errorf("top_limit=1: %s has %d rows", k, len(v))
				}
			}
			f.want(t, ana+"tables&from=2026-09-10&to=2026-09-12",
				`"tables":{"affiliates":[],"links":[],"campaigns":[],"pages":[],"products":[]}`)
		})

		t.Run("recent", func(t *testing.T) {
			got := f.get(t, ana+"recent_clicks&per_page=3")
			if !strings.Contains(got, `"meta":{"current_page":1,"per_page":3,"total":8,"last_page":3,"has_more":true}`) ||
				!strings.Contains(got, `"click_id":"c9"`) || strings.Index(got, `"c9"`) > strings.Index(got, `"c6"`) ||
				strings.Index(got, `"c6"`) > strings.Index(got, `"c5"`) || strings.Contains(got, `"c4"`) {
				t.Errorf("recent clicks page 1: %s", got)
			}
			got = f.get(t, ana+"recent_clicks&per_page=3&page=3")
			if !strings.Contains(got, `"total":8,"last_page":3,"has_more":false`) || strings.Count(got, `"click_id"`) != 2 ||
				!strings.Contains(got, `"click_id":"c1","link_id":`) {
				t.Errorf("recent clicks page 3: %s", got)
			}
			f.want(t, ana+"recent_clicks&per_page=3&page=9", `"clicks":[]`, `"total":8,"last_page":3,"has_more":false`)
			f.want(t, ana+fmt.Sprintf("recent_clicks&affiliate_id=%d&from=2026-10-31&to=2026-10-31", f.a),
				`"click_id":"c8","link_id":null`, `"total":3,`)
			got = f.get(t, ana+"recent_conversions&per_page=2")
			if !strings.Contains(got, `"meta":{"current_page":1,"per_page":2,"total":7,"last_page":4,"has_more":true}`) ||
				!strings.Contains(got, `"order_id":"o6","status":"cancelled"`) || !strings.Contains(got, `"order_id":"o2","status":"pending"`) {
				t.Errorf("recent conversions: %s", got)
			}
			got = f.get(t, ana+"recent_events&per_page=100")
			if !strings.Contains(got, `"total":12,`) || strings.Count(got, `"session_id"`) != 12 ||
				!strings.Contains(got, `"type":"checkout"`) {
				t.Errorf("recent events: %s", got)
			}
		})

		t.Run("link stats agree", func(t *testing.T) {
			got := f.get(t, fmt.Sprintf("/v1/links/%d/stats", f.la1))
			want := fmt.Sprintf(`{"link_id":%d,"clicks":4,"unique_visitors":4,"conversions":1,"revenue":[{"currency":"USD","amount":100.00}],`+
				`"commission":[{"currency":"USD","amount":10.00}],"conversion_rate":25.00,"from":"2026-10-03","to":"2026-11-02"}`, f.la1)
			if got != want {
				t.Errorf("link stats\n got %s\nwant %s", got, want)
			}
		})

		t.Run("orders stats agree", func(t *testing.T) {
			// The same orders (none near a day boundary): commission pending 4.00, approved or paid 15.00.
			ord := e.token("orders:read")
			r := e.do("GET", "/v1/orders/stats?from=2026-10-03&to=2026-11-02", ord, nil)
			if !strings.Contains(r.raw, `"currency":"USD","total_orders":6,`) ||
				!strings.Contains(r.raw, `"total_commission":19.00,"pending":4.00,"approved":15.00`) {
				t.Errorf("orders stats: %s", r.raw)
			}
		})

		t.Run("reports", func(t *testing.T) {
			got := f.get(t, "/v1/reports/stats")
			want := `{"total_commission_paid":15.00,"pending_payouts":5.00,"conversion_rate":62.50,"total_referral_clicks":8,` +
				`"trends":{"commission_paid":87.50,"pending_payouts":-37.50,"conversion_rate":-37.50,"referral_clicks":700.00},` +
				`"filters":{"from":"2026-10-03","to":"2026-11-02"},"currency":"USD","timezone":"America/New_York"}`
			if got != want {
				t.Errorf("report stats\n got %s\nwant %s", got, want)
			}
			if r := f.do("GET", "/v1/reports/stats", f.tok, nil); r.body["message"] != "Report statistics retrieved." {
				t.Errorf("message: %s", r.raw)
			}
			f.want(t, "/v1/reports/stats?from=2026-09-10&to=2026-09-12",
				`{"total_commission_paid":0.00,"pending_payouts":0.00,"conversion_rate":0.00,"total_referral_clicks":0,`)
			f.want(t, "/v1/reports/commission-chart?from=2026-10-31&to=2026-11-01",
				`"items":[{"date":"2026-10-31","total_commission":10.00,"commission_paid":10.00,"pending_payouts":0.00,`+
					`"commission_pending":0.00,"conversions":3,"revenue":130.00},{"date":"2026-11-01","total_commission":4.00,`+
					`"commission_paid":0.00,"pending_payouts":0.00,"commission_pending":4.00,"conversions":1,"revenue":40.00}]`)
			f.want(t, "/v1/reports/top-affiliates",
				fmt.Sprintf(`"items":[{"rank":1,"affiliate_id":%d,`, f.a),
				`"earnings":14.00,"commission_paid":10.00,"clicks":6,"conversions":2,"revenue":140.00,"conversion_rate":33.33},`+
					fmt.Sprintf(`{"rank":2,"affiliate_id":%d,`, f.b),
				`"earnings":5.00,"commission_paid":5.00,"clicks":2,"conversions":1,"revenue":50.00,"conversion_rate":50.00}]`)
			f.want(t, "/v1/reports/clicks-by-campaign",
				`"items":[{"campaign":"spring","links":2,"clicks":6,"conversions":1,"revenue":100.00,"commission":10.00,"conversion_rate":16.67},`+
					`{"campaign":null,"links":1,"clicks":2,"conversions":2,"revenue":90.00,"commission":9.00,"conversion_rate":100.00}]`)
			f.want(t, "/v1/reports/payouts",
				fmt.Sprintf(`"affiliate":{"id":%d,`, f.a), `"amount":10.00,"currency":"USD","status":"completed","method":"manual",`+
					`"external_reference":"wire-1","failure_reason":null,"created_at":"2026-11-02T12:00:00.000000Z"`,
				`"meta":{"current_page":1,"per_page":25,"total":1,"last_page":1,"has_more":false}`)
			f.want(t, "/v1/reports/payouts?status=failed", `"items":[]`, `"total":0,`)
			r := f.do("GET", "/v1/reports/export?from=2026-10-31&to=2026-11-01", f.tok, nil)
			wantCSV := "date,clicks,pageviews,unique_visitors,conversions,revenue,commission,commission_pending,commission_approved,commission_paid,conversion_rate,currency\n" +
				"2026-10-31,3,4,2,3,130.00,10.00,0.00,0.00,10.00,100.00,USD\n" +
				"2026-11-01,4,2,2,1,40.00,4.00,4.00,0.00,0.00,25.00,USD\n"
			if r.status != 200 || r.raw != wantCSV || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") ||
				r.header.Get("Content-Disposition") != `attachment; filename="report-daily-2026-10-31-2026-11-01.csv"` {
				t.Errorf("export: %d %v\n%s", r.status, r.header, r.raw)
			}
			r = f.do("GET", "/v1/reports/export?type=campaigns", f.tok, nil)
			if !strings.Contains(r.raw, "spring,2,6,1,100.00,10.00,16.67,USD\n,1,2,2,90.00,9.00,100.00,USD\n") {
				t.Errorf("export campaigns: %s", r.raw)
			}
			r = f.do("GET", "/v1/reports/export?type=affiliates", f.tok, nil)
			if !strings.Contains(r.raw, fmt.Sprintf("\n%d,", f.a)) || strings.Count(r.raw, "\n") != 3 {
				t.Errorf("export affiliates: %s", r.raw)
			}
		})
	})
}

func TestAnalyticsValidationAndScope(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		tok := e.token("reports:read")
		other, err := e.auth.CreateWorkspace(context.Background(), "Other "+t.Name(), "basic")
		if err != nil {
			t.Fatal(err)
		}
		otherAff := storetest.InsertAffiliate(t, e.store.DB(), other.ID, "USD", heldsway.AffiliateActive)
		for _, c := range []struct{ path, field, msg string }{
			{"/v1/affiliate/analytics", "section", ""},
			{"/v1/affiliate/analytics?section=nope", "section", ""},
			{"/v1/affiliate/analytics?section=stats&metrics=total_clicks,bogus", "metrics", ""},
			{"/v1/affiliate/analytics?section=stats&to=2026-11-02", "to", "The to field must be a date before or equal to today."},
			{"/v1/affiliate/analytics?section=stats&from=2026-10-05&to=2026-10-01", "to", "The to field must be a date after or equal to from."},
			{"/v1/affiliate/analytics?section=stats&from=2026-11-05", "from", "The from field must be a date before or equal to to."},
			{"/v1/affiliate/analytics?section=stats&from=2026-02-30", "from", "The from field must be a date in YYYY-MM-DD format."},
			{"/v1/affiliate/analytics?section=stats&from=2020-01-01", "from", "The range may span at most 1096 days."},
			{"/v1/affiliate/analytics?section=tables&top_limit=51", "top_limit", ""},
			{"/v1/affiliate/analytics?section=tables&top_limit=0", "top_limit", ""},
			{"/v1/affiliate/analytics?section=recent_clicks&per_page=101", "per_page", ""},
			{"/v1/affiliate/analytics?section=recent_clicks&per_page=100&page=101", "page", ""},
			{"/v1/affiliate/analytics?section=stats&currency=XYZ", "currency", "The currency field must be an ISO 4217 currency code."},
			{fmt.Sprintf("/v1/affiliate/analytics?section=stats&affiliate_id=%d", otherAff), "affiliate_id", "The selected affiliate id is invalid."},
			{"/v1/affiliate/analytics?section=stats&link_id=999999", "link_id", "The selected link id is invalid."},
			{"/v1/affiliate/analytics?section=stats&program_id=999999", "program_id", "The selected program id is invalid."},
			{"/v1/reports/stats?from=2026-10-05&to=2026-10-01", "to", "The to field must be a date after or equal to from."},
			{"/v1/reports/top-affiliates?limit=51", "limit", ""},
			{"/v1/reports/payouts?status=lost", "status", ""},
			{fmt.Sprintf("/v1/reports/payouts?affiliate_id=%d", otherAff), "affiliate_id", "The selected affiliate id is invalid."},
			{"/v1/reports/export?type=everything", "type", ""},
		} {
			r := e.do("GET", c.path, tok, nil)
			if r.status != 422 || r.errCode() != "VALIDATION_ERROR" {
				t.Errorf("%s: %d %s", c.path, r.status, r.raw)
				continue
			}
			if got := r.details(c.field); len(got) == 0 || (c.msg != "" && !strings.Contains(strings.Join(got, "|"), c.msg)) {
				t.Errorf("%s: details %s", c.path, r.raw)
			}
		}
		// Reports take a future to (the digest bounds only analytics).
		if r := e.do("GET", "/v1/reports/stats?to=2026-12-31", tok, nil); r.status != 200 {
			t.Errorf("report with a future to: %d %s", r.status, r.raw)
		}
		// An empty workspace has zero figures, never an error.
		r := e.do("GET", "/v1/affiliate/analytics?section=stats", tok, nil)
		if r.status != 200 || !strings.Contains(r.raw, allZero) {
			t.Errorf("empty workspace: %s", r.raw)
		}
		noScope := e.token("orders:read")
		for _, p := range []string{"/v1/affiliate/analytics?section=stats", "/v1/reports/stats", "/v1/reports/commission-chart",
			"/v1/reports/top-affiliates", "/v1/reports/clicks-by-campaign", "/v1/reports/payouts", "/v1/reports/export"} {
			e.do("GET", p, noScope, nil).expectError(t, 403, "FORBIDDEN", "")
			e.do("GET", p, "", nil).expectError(t, 401, "UNAUTHORIZED", "")
		}
		// Another workspace's figures are its own.
		k, secret := e.newKey(other, auth.KeyInput{Scopes: []string{"reports:read"}})
		otherTok := e.exchange(k.Key, secret)
		if err := e.store.InsertClicks(context.Background(), []heldsway.Click{{WorkspaceID: e.ws.ID, AffiliateID: 1, ProgramID: 1,
			ClickID: "x", VisitorID: "v", CreatedAt: e.clock.Now()}}); err != nil {
			t.Fatal(err)
		}
		if r := e.do("GET", "/v1/affiliate/analytics?section=stats&metrics=total_clicks", otherTok, nil); !strings.Contains(r.raw, `"total_clicks":0}`) {
			t.Errorf("other workspace: %s", r.raw)
		}
		if r := e.do("GET", "/v1/affiliate/analytics?section=stats&metrics=total_clicks", tok, nil); !strings.Contains(r.raw, `"total_clicks":1}`) {
			t.Errorf("own workspace: %s", r.raw)
		}
	})
}
