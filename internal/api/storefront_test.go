package api_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/api"
	"github.com/heldsway/heldsway/internal/auth"
	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/track"
)

// The storefront routes (/v1/track/*) as the browser SDK calls them: a
// publishable key in X-HeldSway-Key, an Origin, a browser User-Agent.

const (
	sfOrigin = "https://shop.example"
	sfUA     = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
)

var sfAllScopes = []string{"sdk:init", "pageviews:write", "clicks:write", "conversions:write"}

// sfEnv is an env whose server has a click tracker (so POST /v1/track/click
// goes through the redirect's click writer), a publishable key for sfOrigin
// and the seeding helpers of the conversion tests.
type sfEnv struct {
	*cvEnv
	key   string
	keyID int64
}

func sfSetup(t *testing.T, e *env) *sfEnv {
	t.Helper()
	ctx := context.Background()
	tr, err := track.New(ctx, e.store, track.Options{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := &api.Server{Auth: e.auth, DB: e.store, Idempotency: e.store, Store: e.store, Tracker: tr, Version: "test"}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		if err := tr.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	e2 := *e
	e2.server, e2.http = srv, hs
	s := &sfEnv{cvEnv: cvSetup(t, &e2)}
	k, _ := s.newKey(nil, auth.KeyInput{Kind: heldsway.KeyKindPublishable, Scopes: sfAllScopes,
		AllowedOrigins: []string{sfOrigin, "https://other.example:8443"}})
	s.key, s.keyID = k.Key, k.ID
	return s
}

// browser sends a request as the SDK on sfOrigin would; extra header pairs
// override.
func (s *sfEnv) browser(method, path string, body any, headers ...string) *resp {
	h := append([]string{api.HeaderPublishableKey, s.key, "Origin", sfOrigin, "User-Agent", sfUA}, headers...)
	return s.do(method, path, "", body, h...)
}

// post sends a storefront POST and expects status.
func (s *sfEnv) post(t *testing.T, path string, status int, body any, headers ...string) map[string]any {
	t.Helper()
	r := s.browser("POST", path, body, headers...)
	if r.status != status {
		t.Fatalf("POST %s: %d %s", path, r.status, r.raw)
	}
	return r.data()
}

// sfRow is one storefront_events row.
type sfRow struct {
	typ, visitor, session                          string
	affiliate, link, amount, quantity              sql.NullInt64
	host, path, referrer, source, medium, campaign sql.NullString
	product, name, category, currency, cart        sql.NullString
	order, email, customer, ua                     sql.NullString
}

func (s *sfEnv) rows(t *testing.T, where string, args ...any) []sfRow {
	t.Helper()
	rs, err := s.store.DB().Query(`SELECT type, visitor_id, session_id, affiliate_id, link_id, amount, quantity, host, path,
		referrer, utm_source, utm_medium, utm_campaign, product_id, product_name, category, currency, cart_id, order_id,
		email, customer_id, user_agent FROM storefront_events WHERE `+where+` ORDER BY id`, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []sfRow
	for rs.Next() {
		var r sfRow
		if err := rs.Scan(&r.typ, &r.visitor, &r.session, &r.affiliate, &r.link, &r.amount, &r.quantity, &r.host, &r.path,
			&r.referrer, &r.source, &r.medium, &r.campaign, &r.product, &r.name, &r.category, &r.currency, &r.cart,
			&r.order, &r.email, &r.customer, &r.ua); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func (s *sfEnv) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := s.store.DB().QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func visitor() string { return "v-" + strings.ToLower(cvTag()) }

func TestStorefrontEvents(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		s := sfSetup(t, e)
		t.Run("pageview: page, referrer, utm, user agent, derived session", func(t *testing.T) {
			v := visitor()
			d := s.post(t, "/v1/track/pageview", 201, map[string]any{"visitor_id": v,
				"url":      "https://Shop.Example/products/shoe?color=red&utm_source=news&utm_medium=email&utm_campaign=spring#top",
				"referrer": "https://www.google.com/"})
			if d["type"] != "pageview" || num(d["recorded"]) != 1 || d["visitor_id"] != v || d["affiliate_id"] != nil {
				t.Fatalf("ack %v", d)
			}
			sess, _ := d["session_id"].(string)
			if len(sess) < 16 {
				t.Fatalf("no derived session: %v", d)
			}
			rows := s.rows(t, `visitor_id = $1`, v)
			r := rows[0]
			if len(rows) != 1 || r.typ != "pageview" || r.session != sess || r.host.String != "shop.example" ||
				r.path.String != "/products/shoe" || r.referrer.String != "https://www.google.com/" ||
				r.source.String != "news" || r.medium.String != "email" || r.campaign.String != "spring" ||
				r.ua.String != sfUA || r.affiliate.Valid || r.link.Valid || r.amount.Valid {
				t.Fatalf("row %+v", rows)
			}
			// Within 30 minutes the session continues; after, a new one starts.
			s.clock.Advance(29 * time.Minute)
			if d := s.post(t, "/v1/track/pageview", 201, map[string]any{"visitor_id": v}); d["session_id"] != sess {
				t.Fatalf("session did not continue: %v vs %s", d, sess)
			}
			s.clock.Advance(31 * time.Minute)
			if d := s.post(t, "/v1/track/pageview", 201, map[string]any{"visitor_id": v}); d["session_id"] == sess {
				t.Fatalf("session did not end after 30 minutes of inactivity")
			}
			// A session the SDK sends is kept as sent.
			if d := s.post(t, "/v1/track/pageview", 201, map[string]any{"visitor_id": v, "session_id": "sdk-session_1"}); d["session_id"] != "sdk-session_1" {
				t.Fatalf("sent session: %v", d)
			}
			if r := s.rows(t, `visitor_id = $1 AND session_id = 'sdk-session_1'`, v); len(r) != 1 {
				t.Fatalf("sent session rows %d", len(r))
			}
		})
		t.Run("product view with price in the default currency", func(t *testing.T) {
			v := visitor()
			s.post(t, "/v1/track/product-view", 201, map[string]any{"visitor_id": v,
				"product": map[string]any{"product_id": "SKU-1", "name": "Shoe", "category": "Footwear", "price": json.Number("19.99")}})
			r := s.rows(t, `visitor_id = $1`, v)
			if len(r) != 1 || r[0].typ != "product_view" || r[0].product.String != "SKU-1" || r[0].name.String != "Shoe" ||
				r[0].category.String != "Footwear" || r[0].amount.Int64 != 1999 || r[0].currency.String != "USD" {
				t.Fatalf("row %+v", r)
			}
			// In another currency, with its own decimals.
			s.post(t, "/v1/track/product-view", 201, map[string]any{"visitor_id": v, "currency": "JPY",
				"product": map[string]any{"product_id": "SKU-2", "price": json.Number("1500")}})
			if r := s.rows(t, `visitor_id = $1 AND product_id = 'SKU-2'`, v); r[0].amount.Int64 != 1500 || r[0].currency.String != "JPY" {
				t.Fatalf("JPY row %+v", r)
			}
		})
		t.Run("cart events: one row per item", func(t *testing.T) {
			v := visitor()
			d := s.post(t, "/v1/track/add-to-cart", 201, map[string]any{"visitor_id": v, "cart_id": "cart-9", "items": []any{
				map[string]any{"product_id": "A", "name": "Alpha", "price": json.Number("10.00"), "quantity": 2},
				map[string]any{"product_id": "B", "price": json.Number("5.50"), "quantity": 1, "category": "Misc"},
			}})
			if num(d["recorded"]) != 2 {
				t.Fatalf("ack %v", d)
			}
			s.post(t, "/v1/track/remove-from-cart", 201, map[string]any{"visitor_id": v, "cart_id": "cart-9",
				"items": []any{map[string]any{"product_id": "A", "quantity": 1}}})
			r := s.rows(t, `visitor_id = $1`, v)
			if len(r) != 3 || r[0].typ != "add_to_cart" || r[0].product.String != "A" || r[0].quantity.Int64 != 2 ||
				r[0].amount.Int64 != 1000 || r[0].cart.String != "cart-9" || r[1].product.String != "B" || r[1].amount.Int64 != 550 ||
				r[1].category.String != "Misc" || r[2].typ != "remove_from_cart" || r[2].quantity.Int64 != 1 || r[2].amount.Valid ||
				r[0].session != r[2].session {
				t.Fatalf("rows %+v", r)
			}
		})
		t.Run("checkout, thank-you, identify", func(t *testing.T) {
			v := visitor()
			s.post(t, "/v1/track/checkout", 201, map[string]any{"visitor_id": v, "cart_id": "c1", "total": json.Number("42.10"), "item_count": 3})
			s.post(t, "/v1/track/thank-you", 201, map[string]any{"visitor_id": v, "order_id": "ORD-7", "customer": map[string]any{"email": "Buyer@Example.COM"}})
			s.post(t, "/v1/track/identify", 201, map[string]any{"visitor_id": v, "email": "Buyer@Example.COM", "user_id": "u-42", "name": "Bea"})
			r := s.rows(t, `visitor_id = $1`, v)
			if len(r) != 3 || r[0].typ != "checkout" || r[0].amount.Int64 != 4210 || r[0].quantity.Int64 != 3 || r[0].cart.String != "c1" ||
				r[1].typ != "thank_you" || r[1].order.String != "ORD-7" || r[1].email.String != "buyer@example.com" ||
				r[2].typ != "identify" || r[2].email.String != "buyer@example.com" || r[2].customer.String != "u-42" {
				t.Fatalf("rows %+v", r)
			}
		})
		t.Run("bots are acknowledged, not stored", func(t *testing.T) {
			v := visitor()
			for _, ua := range []string{"Googlebot/2.1 (+http://www.google.com/bot.html)", ""} {
				d := s.post(t, "/v1/track/pageview", 201, map[string]any{"visitor_id": v}, "User-Agent", ua)
				if num(d["recorded"]) != 0 {
					t.Fatalf("bot %q recorded: %v", ua, d)
				}
			}
			if r := s.rows(t, `visitor_id = $1`, v); len(r) != 0 {
				t.Fatalf("bot rows %+v", r)
			}
		})
		t.Run("a server reports with a bearer token, no Origin", func(t *testing.T) {
			v := visitor()
			tok := s.token("pageviews:write")
			r := s.do("POST", "/v1/track/pageview", tok, map[string]any{"visitor_id": v, "user_agent": sfUA})
			if r.status != 201 || r.header.Get("Access-Control-Allow-Origin") != "" {
				t.Fatalf("bearer pageview: %d %s %v", r.status, r.raw, r.header)
			}
			if rows := s.rows(t, `visitor_id = $1`, v); len(rows) != 1 || rows[0].ua.String != sfUA {
				t.Fatalf("rows %+v", rows)
			}
		})
	})
}

func TestStorefrontClickAttribution(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		s := sfSetup(t, e)
		aff := s.affiliate(t, s.ws.ID, s.def, "active")
		t.Run("a ?ref= landing becomes a click through the click writer", func(t *testing.T) {
			v := visitor()
			before := s.count(t, "clicks")
			d := s.post(t, "/v1/track/click", 200, map[string]any{"visitor_id": v, "referral_code": strings.ToLower(aff.code),
				"url": "https://shop.example/?ref=" + aff.code + "&utm_source=x", "referrer": "https://blog.example/"})
			id, _ := d["click_id"].(string)
			if id == "" || d["cookie_token"] != id || d["counted"] != true || d["referral_code"] != aff.code ||
				num(d["affiliate_id"]) != aff.id || num(d["cookie_duration"]) != 30 {
				t.Fatalf("click %v", d)
			}
			if exp := s.clock.Now().Add(30 * 24 * time.Hour).Format("2006-01-02T15:04:05"); !strings.HasPrefix(d["expires_at"].(string), exp) {
				t.Fatalf("expires_at %v, want %s", d["expires_at"], exp)
			}
			var link, affID int64
			var vis, landing, ref string
			if err := s.store.DB().QueryRow(`SELECT link_id, affiliate_id, visitor_id, landing_query, referrer FROM clicks
				WHERE workspace_id = $1 AND click_id = $2`, s.ws.ID, id).Scan(&link, &affID, &vis, &landing, &ref); err != nil {
				t.Fatal(err)
			}
			if link != 0 || affID != aff.id || vis != v || landing != "ref="+aff.code+"&utm_source=x" || ref != "https://blog.example/" ||
				s.count(t, "clicks") != before+1 {
				t.Fatalf("stored click link=%d aff=%d visitor=%s landing=%s ref=%s", link, affID, vis, landing, ref)
			}
			// A repeat within 30 s answers the same click and counts nothing.
			d2 := s.post(t, "/v1/track/click", 200, map[string]any{"visitor_id": v, "referral_code": aff.code})
			if d2["click_id"] != id || d2["counted"] != false || s.count(t, "clicks") != before+1 {
				t.Fatalf("repeat %v", d2)
			}
			// Events with the token are the affiliate's.
			ev := s.post(t, "/v1/track/pageview", 201, map[string]any{"visitor_id": v, "click_id": id})
			if num(ev["affiliate_id"]) != aff.id {
				t.Fatalf("event ack %v", ev)
			}
			if r := s.rows(t, `visitor_id = $1`, v); len(r) != 1 || r[0].affiliate.Int64 != aff.id || r[0].link.Valid {
				t.Fatalf("rows %+v", r)
			}
		})
		t.Run("a server reports a landing with a bearer token; its order has no link", func(t *testing.T) {
			tok := s.token("clicks:write")
			v := visitor()
			r := s.do("POST", "/v1/track/click", tok, map[string]any{"visitor_id": v, "referral_code": aff.code})
			id, _ := r.data()["click_id"].(string)
			if r.status != 200 || id == "" || r.data()["counted"] != true {
				t.Fatalf("bearer click without a user agent: %d %s", r.status, r.raw)
			}
			r = s.do("POST", "/v1/track/click", tok, map[string]any{"visitor_id": visitor(), "referral_code": aff.code,
				"user_agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"})
			if r.status != 200 || r.data()["click_id"] != nil {
				t.Fatalf("bearer click of a bot: %d %s", r.status, r.raw)
			}
			r = s.do("POST", "/v1/conversions", s.token("conversions:write"), map[string]any{"order_id": "#landing-" + cvTag(),
				"total": json.Number("50.00"), "subtotal": json.Number("50.00"), "currency": "USD", "click_id": id})
			if d := r.data(); r.status != 201 || d["attribution"] != "click" || d["click_id"] != id || d["link_id"] != nil ||
				cvAffiliateID(d) != aff.id {
				t.Fatalf("order of a landing without a link: %d %s", r.status, r.raw)
			}
		})
		t.Run("a landing through the redirect is not counted twice", func(t *testing.T) {
			v := visitor()
			clickID, linkID := s.click(t, aff, v, s.clock.Now())
			before := s.count(t, "clicks")
			d := s.post(t, "/v1/track/click", 200, map[string]any{"visitor_id": v, "referral_code": aff.code, "click_id": clickID})
			if d["click_id"] != clickID || d["counted"] != false || s.count(t, "clicks") != before {
				t.Fatalf("redirect landing %v", d)
			}
			if clicks, err := s.store.LinkClickCount(context.Background(), linkID); err != nil || clicks != 1 {
				t.Fatalf("click_count %d %v", clicks, err)
			}
			s.post(t, "/v1/track/add-to-cart", 201, map[string]any{"visitor_id": v, "click_id": clickID,
				"items": []any{map[string]any{"product_id": "A", "quantity": 1}}})
			if r := s.rows(t, `visitor_id = $1`, v); len(r) != 1 || r[0].affiliate.Int64 != aff.id || r[0].link.Int64 != linkID {
				t.Fatalf("rows %+v", r)
			}
		})
		t.Run("unknown, other workspace's and expired clicks do not attribute", func(t *testing.T) {
			other, err := s.auth.CreateWorkspace(context.Background(), "Other "+cvTag(), "basic")
			if err != nil {
				t.Fatal(err)
			}
			var otherProg int64
			if err := s.store.DB().QueryRow(`SELECT id FROM programs WHERE workspace_id = $1 AND is_default`, other.ID).Scan(&otherProg); err != nil {
				t.Fatal(err)
			}
			foreign, _ := s.click(t, s.affiliate(t, other.ID, otherProg, "active"), "fv", s.clock.Now())
			old, _ := s.click(t, aff, "ov", s.clock.Now().Add(-31*24*time.Hour))
			for _, id := range []string{"nosuchclick", foreign, old} {
				v := visitor()
				d := s.post(t, "/v1/track/pageview", 201, map[string]any{"visitor_id": v, "click_id": id})
				if d["affiliate_id"] != nil {
					t.Fatalf("%s attributed: %v", id, d)
				}
				if r := s.rows(t, `visitor_id = $1`, v); len(r) != 1 || r[0].affiliate.Valid {
					t.Fatalf("rows %+v", r)
				}
			}
			// The click endpoint does not confirm another workspace's click.
			s.browser("POST", "/v1/track/click", map[string]any{"visitor_id": visitor(), "click_id": foreign}).
				expectError(t, 404, "NOT_FOUND", "Click not found.")
		})
		t.Run("unknown code 404, inactive affiliate or bot records nothing", func(t *testing.T) {
			before := s.count(t, "clicks")
			s.browser("POST", "/v1/track/click", map[string]any{"visitor_id": visitor(), "referral_code": "NOSUCHCODE"}).
				expectError(t, 404, "NOT_FOUND", "Referral code not found.")
			susp := s.affiliate(t, s.ws.ID, s.def, "suspended")
			if d := s.post(t, "/v1/track/click", 200, map[string]any{"visitor_id": visitor(), "referral_code": susp.code}); d["click_id"] != nil || d["counted"] != false {
				t.Fatalf("suspended affiliate: %v", d)
			}
			if d := s.post(t, "/v1/track/click", 200, map[string]any{"visitor_id": visitor(), "referral_code": aff.code},
				"User-Agent", "curl/8.5.0"); d["click_id"] != nil {
				t.Fatalf("bot click: %v", d)
			}
			if n := s.count(t, "clicks"); n != before {
				t.Fatalf("clicks %d, want %d", n, before)
			}
		})
	})
}

func TestStorefrontOrder(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		s := sfSetup(t, e)
		s.exec(t, `UPDATE programs SET commission_value = 1000 WHERE id = $1`, s.def)
		aff := s.affiliate(t, s.ws.ID, s.def, "active")
		v := visitor()
		click := s.post(t, "/v1/track/click", 200, map[string]any{"visitor_id": v, "referral_code": aff.code})
		clickID := click["click_id"].(string)

		d := s.post(t, "/v1/track/order", 201, map[string]any{"visitor_id": v, "click_id": clickID, "order_id": "SDK-1",
			"total": json.Number("110.00"), "tax": json.Number("10.00"),
			"customer":   map[string]any{"email": "Buyer@Example.com", "user_id": "u1", "name": "Bea"},
			"line_items": []any{map[string]any{"product_id": "P1", "name": "Shoe", "quantity": 2, "price": json.Number("50.00")}}})
		if num(d["affiliate_id"]) != aff.id || d["commission_amount"] != 10.0 || d["order_id"] != "SDK-1" ||
			d["currency"] != "USD" || d["status"] != "pending" || num(d["conversion_id"]) == 0 {
			t.Fatalf("order %v", d)
		}
		id := num(d["conversion_id"])
		// The same order as POST /v1/conversions records: attribution, breakdown, items.
		o := s.do("GET", fmt.Sprintf("/v1/orders/%d", id), s.token("orders:read"), nil).data()
		items, _ := o["line_items"].([]any)
		if o["attribution"] != "click" || o["click_id"] != clickID || o["subtotal"] != 100.0 || o["order_total"] != 110.0 ||
			o["tax"] != 10.0 || cvAffiliateID(o) != aff.id || len(cvCommissions(o)) != 1 || len(items) != 1 {
			t.Fatalf("order detail %v", o)
		}
		if c := o["customer"].(map[string]any); c["email"] != "buyer@example.com" || c["id"] != "u1" {
			t.Fatalf("customer %v", c)
		}
		// Audited as the publishable key, with the conversion's events.
		var audits, events int
		if err := s.store.DB().QueryRow(`SELECT COUNT(*) FROM audit_log WHERE workspace_id = $1 AND resource_id = $2
			AND actor_type = 'api_key' AND actor_id = $3`, s.ws.ID, id, s.keyID).Scan(&audits); err != nil {
			t.Fatal(err)
		}
		if err := s.store.DB().QueryRow(`SELECT COUNT(*) FROM events WHERE workspace_id = $1 AND type = 'conversion.created'
			AND resource_id = $2`, s.ws.ID, id).Scan(&events); err != nil {
			t.Fatal(err)
		}
		if audits == 0 || events != 1 {
			t.Fatalf("audit entries %d, conversion.created events %d", audits, events)
		}
		if r := s.rows(t, `visitor_id = $1 AND type = 'order'`, v); len(r) != 1 || r[0].order.String != "SDK-1" ||
			r[0].amount.Int64 != 11000 || r[0].affiliate.Int64 != aff.id || r[0].currency.String != "USD" {
			t.Fatalf("order row %+v", r)
		}

		t.Run("duplicates answer the server API's 409", func(t *testing.T) {
			before := s.counts(t)
			for _, r := range []*resp{
				s.browser("POST", "/v1/track/order", map[string]any{"visitor_id": v, "order_id": "SDK-1", "total": json.Number("5.00")}),
				s.convert(cvOrder("SDK-1")),
			} {
				r.expectError(t, 409, "CONFLICT", "")
				if det, _ := r.body["error"].(map[string]any)["details"].(map[string]any); num(det["existing_id"]) != id {
					t.Fatalf("details %v", det)
				}
			}
			// And an order first recorded by the server is a duplicate here.
			s.create(t, cvOrder("SRV-1"))
			s.browser("POST", "/v1/track/order", map[string]any{"visitor_id": v, "order_id": "SRV-1", "total": json.Number("5.00")}).
				expectError(t, 409, "CONFLICT", "")
			if after := s.counts(t); after == before {
				t.Fatal("SRV-1 not created") // sanity: counts moved only by SRV-1
			}
			if r := s.rows(t, `type = 'order'`); len(r) != 1 {
				t.Fatalf("order rows %d", len(r))
			}
		})
		t.Run("without evidence: unattributed; subtotal defaults", func(t *testing.T) {
			d := s.post(t, "/v1/track/order", 201, map[string]any{"visitor_id": visitor(), "order_id": "SDK-2",
				"total": json.Number("20.00"), "tax": json.Number("2.00"), "discount": json.Number("1.00")})
			if d["affiliate_id"] != nil || d["commission_amount"] != 0.0 {
				t.Fatalf("unattributed %v", d)
			}
			o := s.do("GET", fmt.Sprintf("/v1/orders/%d", num(d["conversion_id"])), s.token("orders:read"), nil).data()
			if o["subtotal"] != 19.0 || o["attribution"] != "none" { // 20 − 2 + 1
				t.Fatalf("order %v", o)
			}
		})
		t.Run("coupon evidence", func(t *testing.T) {
			s.coupon(t, aff, "SAVE10", true, nil, nil)
			d := s.post(t, "/v1/track/order", 201, map[string]any{"visitor_id": visitor(), "order_id": "SDK-3",
				"total": json.Number("50.00"), "coupon_code": "save10"})
			if num(d["affiliate_id"]) != aff.id {
				t.Fatalf("coupon order %v", d)
			}
		})
		t.Run("idempotent retry", func(t *testing.T) {
			body := map[string]any{"visitor_id": visitor(), "order_id": "SDK-4", "total": json.Number("9.00")}
			r1 := s.browser("POST", "/v1/track/order", body, "Idempotency-Key", "retry-1")
			r2 := s.browser("POST", "/v1/track/order", body, "Idempotency-Key", "retry-1")
			if r1.status != 201 || r2.status != 201 || r2.header.Get("Idempotent-Replayed") != "true" || r1.raw != r2.raw {
				t.Fatalf("retry: %d %s / %d %s", r1.status, r1.raw, r2.status, r2.raw)
			}
		})
		t.Run("bad input writes nothing", func(t *testing.T) {
			before, rows := s.counts(t), s.count(t, "storefront_events")
			for _, tc := range []struct {
				body  map[string]any
				field string
			}{
				{map[string]any{"visitor_id": "v1", "total": json.Number("1.00")}, "order_id"},
				{map[string]any{"visitor_id": "v1", "order_id": "X"}, "total"},
				{map[string]any{"visitor_id": "v1", "order_id": "X", "total": json.Number("1.001")}, "total"},
				{map[string]any{"visitor_id": "v1", "order_id": "X", "total": json.Number("-1")}, "total"},
				{map[string]any{"visitor_id": "v1", "order_id": "X", "total": json.Number("1"), "currency": "ZZZ"}, "currency"},
				{map[string]any{"visitor_id": "v1", "order_id": "X", "total": json.Number("1"), "customer": map[string]any{"email": "nope"}}, "customer.email"},
				{map[string]any{"visitor_id": "v1", "order_id": "X", "total": json.Number("1"), "line_items": []any{map[string]any{"quantity": 0, "price": json.Number("1")}}}, "line_items.0.quantity"},
				{map[string]any{"visitor_id": "bad id!", "order_id": "X", "total": json.Number("1")}, "visitor_id"},
				{map[string]any{"visitor_id": "v1", "order_id": "X", "total": json.Number("1"), "referral_code": aff.code}, "referral_code"},
			} {
				r := s.browser("POST", "/v1/track/order", tc.body)
				r.expectError(t, 422, "VALIDATION_ERROR", "")
				if len(r.details(tc.field)) == 0 {
					t.Fatalf("%v: no detail on %s: %s", tc.body, tc.field, r.raw)
				}
			}
			if s.counts(t) != before || s.count(t, "storefront_events") != rows {
				t.Fatal("bad input wrote rows")
			}
		})
	})
}

func TestStorefrontCORS(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		s := sfSetup(t, e)
		// A key of another workspace allows another origin.
		other, err := s.auth.CreateWorkspace(context.Background(), "Other "+cvTag(), "basic")
		if err != nil {
			t.Fatal(err)
		}
		s.newKey(other, auth.KeyInput{Kind: heldsway.KeyKindPublishable, Scopes: sfAllScopes, AllowedOrigins: []string{"https://elsewhere.example"}})
		preflight := func(path, origin, method string) *http.Response {
			t.Helper()
			req, _ := http.NewRequest("OPTIONS", s.http.URL+path, nil)
			if origin != "" {
				req.Header.Set("Origin", origin)
			}
			req.Header.Set("Access-Control-Request-Method", method)
			req.Header.Set("Access-Control-Request-Headers", "content-type,x-heldsway-key")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res
		}
		t.Run("preflight of an allowed origin", func(t *testing.T) {
			for _, rt := range []struct{ path, method string }{
				{"/v1/track/pageview", "POST"}, {"/v1/track/order", "POST"}, {"/v1/track/init", "GET"},
				{"/v1/track/discount", "GET"}, {"/api/v1/track/click", "POST"}, {"/v1/track/discount/validate", "POST"},
			} {
				for _, origin := range []string{sfOrigin, "https://other.example:8443", "https://elsewhere.example"} {
					res := preflight(rt.path, origin, rt.method)
					h := res.Header
					if res.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != origin ||
						h.Get("Access-Control-Allow-Methods") != rt.method+", OPTIONS" ||
						!strings.Contains(h.Get("Access-Control-Allow-Headers"), "X-HeldSway-Key") ||
						!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Idempotency-Key") ||
						h.Get("Access-Control-Max-Age") != "600" || !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") ||
						h.Get("Access-Control-Allow-Credentials") != "" {
						t.Fatalf("%s %s from %s: %d %v", rt.method, rt.path, origin, res.StatusCode, h)
					}
				}
			}
		})
		t.Run("preflight refused: other origin, no origin, other method, no wildcard", func(t *testing.T) {
			for _, tc := range []struct{ origin, method string }{
				{"https://evil.example", "POST"}, {"http://shop.example", "POST"}, {"https://shop.example:444", "POST"},
				{"", "POST"}, {"null", "POST"}, {sfOrigin, "DELETE"},
			} {
				res := preflight("/v1/track/pageview", tc.origin, tc.method)
				if res.StatusCode != 403 || res.Header.Get("Access-Control-Allow-Origin") != "" || res.Header.Get("Access-Control-Allow-Methods") != "" {
					t.Fatalf("%q %s: %d %v", tc.origin, tc.method, res.StatusCode, res.Header)
				}
			}
		})
		t.Run("requests: origin checked against the key's own list", func(t *testing.T) {
			r := s.browser("POST", "/v1/track/pageview", map[string]any{"visitor_id": "v1"})
			if r.status != 201 || r.header.Get("Access-Control-Allow-Origin") != sfOrigin ||
				!strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "Retry-After") || !strings.Contains(r.header.Get("Vary"), "Origin") {
				t.Fatalf("allowed: %d %v", r.status, r.header)
			}
			// Allowed by another workspace's key is not allowed by this one.
			for _, origin := range []string{"https://elsewhere.example", "https://evil.example", "https://shop.example.evil.com"} {
				r := s.browser("POST", "/v1/track/pageview", map[string]any{"visitor_id": "v1"}, "Origin", origin)
				r.expectError(t, 403, "FORBIDDEN", "The origin is not allowed for this key.")
				if r.header.Get("Access-Control-Allow-Origin") != "" {
					t.Fatalf("%s got CORS headers", origin)
				}
			}
			// Server to server with a publishable key: refused.
			s.do("POST", "/v1/track/pageview", "", map[string]any{"visitor_id": "v1"}, api.HeaderPublishableKey, s.key, "User-Agent", sfUA).
				expectError(t, 403, "FORBIDDEN", "A publishable key is accepted only from a browser: the Origin header is required.")
			// Authorization: Bearer as_… is the same key.
			if r := s.do("POST", "/v1/track/pageview", s.key, map[string]any{"visitor_id": "v1"}, "Origin", sfOrigin, "User-Agent", sfUA); r.status != 201 {
				t.Fatalf("Bearer as_: %d %s", r.status, r.raw)
			}
			// Nothing was stored by the refused requests.
			if n := len(s.rows(t, `visitor_id = 'v1'`)); n != 2 {
				t.Fatalf("rows %d, want 2", n)
			}
		})
		t.Run("allowed origins are validated and normalized", func(t *testing.T) {
			admin := s.token("admin")
			r := s.do("POST", "/v1/api-keys", admin, map[string]any{"name": "pk", "kind": "publishable", "scopes": sfAllScopes,
				"allowed_origins": []string{"https://ok.example", "https://bad.example/path", "ftp://x.example"}})
			r.expectError(t, 422, "VALIDATION_ERROR", "")
			if len(r.details("allowed_origins.1")) == 0 || len(r.details("allowed_origins.2")) == 0 || len(r.details("allowed_origins.0")) != 0 {
				t.Fatalf("details %s", r.raw)
			}
			r = s.do("POST", "/v1/api-keys", admin, map[string]any{"name": "pk", "kind": "publishable", "scopes": sfAllScopes,
				"allowed_origins": []string{"HTTPS://Norm.Example:443/", "http://norm.example:8080"}})
			if r.status != 201 || strings.Join(strs(r.data()["allowed_origins"]), " ") != "https://norm.example http://norm.example:8080" {
				t.Fatalf("normalized: %d %s", r.status, r.raw)
			}
			key := r.data()["api_key"].(string)
			if r := s.browser("GET", "/v1/track/init", nil, api.HeaderPublishableKey, key, "Origin", "https://norm.example"); r.status != 200 {
				t.Fatalf("normalized origin refused: %d %s", r.status, r.raw)
			}
		})
	})
}

func TestStorefrontKeys(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		s := sfSetup(t, e)
		t.Run("scopes", func(t *testing.T) {
			k, _ := s.newKey(nil, auth.KeyInput{Kind: heldsway.KeyKindPublishable, Scopes: []string{"pageviews:write"}, AllowedOrigins: []string{sfOrigin}})
			as := func(method, path string, body any) *resp {
				return s.browser(method, path, body, api.HeaderPublishableKey, k.Key)
			}
			if r := as("POST", "/v1/track/pageview", map[string]any{"visitor_id": "v"}); r.status != 201 {
				t.Fatalf("pageview: %d %s", r.status, r.raw)
			}
			for _, rt := range []struct{ method, path string }{
				{"POST", "/v1/track/click"}, {"POST", "/v1/track/order"}, {"GET", "/v1/track/init"},
				{"GET", "/v1/track/discount?code=X"}, {"POST", "/v1/track/discount/validate"},
			} {
				r := as(rt.method, rt.path, map[string]any{})
				r.expectError(t, 403, "FORBIDDEN", "Insufficient scope.")
				if r.header.Get("Access-Control-Allow-Origin") != sfOrigin {
					t.Fatalf("%s: no CORS headers on the 403, the SDK could not read it", rt.path)
				}
			}
			// A publishable key opens no other route.
			s.do("GET", "/v1/me", k.Key, nil).expectError(t, 401, "UNAUTHORIZED", "")
			// init says page views are enabled for this key only if it may send them.
			if d := s.browser("GET", "/v1/track/init", nil).data(); d["pageviews_enabled"] != true || d["currency"] != "USD" ||
				num(d["cookie_duration"]) != 30 || d["workspace"] != s.ws.Name || d["ref_param"] != "ref" {
				t.Fatalf("init %v", d)
			}
			k2, _ := s.newKey(nil, auth.KeyInput{Kind: heldsway.KeyKindPublishable, Scopes: []string{"sdk:init"}, AllowedOrigins: []string{sfOrigin}})
			if d := s.browser("GET", "/v1/track/init", nil, api.HeaderPublishableKey, k2.Key).data(); d["pageviews_enabled"] != false {
				t.Fatalf("init without pageviews:write %v", d)
			}
		})
		t.Run("unknown, secret, revoked and expired keys", func(t *testing.T) {
			body := map[string]any{"visitor_id": "v"}
			s.browser("POST", "/v1/track/pageview", body, api.HeaderPublishableKey, "as_nosuchkey").
				expectError(t, 401, "UNAUTHORIZED", "Invalid publishable key.")
			secret, _ := s.newKey(nil, auth.KeyInput{Scopes: sfAllScopes})
			s.browser("POST", "/v1/track/pageview", body, api.HeaderPublishableKey, secret.Key).
				expectError(t, 401, "UNAUTHORIZED", "Invalid publishable key.")

			k, _ := s.newKey(nil, auth.KeyInput{Kind: heldsway.KeyKindPublishable, Scopes: sfAllScopes, AllowedOrigins: []string{sfOrigin}})
			if r := s.browser("POST", "/v1/track/pageview", body, api.HeaderPublishableKey, k.Key); r.status != 201 {
				t.Fatalf("before revoke: %d %s", r.status, r.raw)
			}
			if r := s.do("POST", fmt.Sprintf("/v1/api-keys/%d/revoke", k.ID), s.token("admin"), nil); r.status != 200 {
				t.Fatalf("revoke: %d %s", r.status, r.raw)
			}
			s.browser("POST", "/v1/track/pageview", body, api.HeaderPublishableKey, k.Key).
				expectError(t, 401, "UNAUTHORIZED", auth.MsgKeyInactive)

			exp := s.clock.Now().Add(time.Hour)
			ek, _ := s.newKey(nil, auth.KeyInput{Kind: heldsway.KeyKindPublishable, Scopes: sfAllScopes, AllowedOrigins: []string{sfOrigin}, ExpiresAt: &exp})
			if r := s.browser("GET", "/v1/track/init", nil, api.HeaderPublishableKey, ek.Key); r.status != 200 {
				t.Fatalf("before expiry: %d %s", r.status, r.raw)
			}
			s.clock.Advance(2 * time.Hour)
			s.browser("GET", "/v1/track/init", nil, api.HeaderPublishableKey, ek.Key).expectError(t, 401, "UNAUTHORIZED", auth.MsgKeyInactive)
		})
		t.Run("a flood from one origin is throttled, other origins are not", func(t *testing.T) {
			k, _ := s.newKey(nil, auth.KeyInput{Kind: heldsway.KeyKindPublishable, Scopes: sfAllScopes,
				AllowedOrigins: []string{sfOrigin, "https://b.example"}})
			get := func(origin string) *resp {
				return s.browser("GET", "/v1/track/init", nil, api.HeaderPublishableKey, k.Key, "Origin", origin)
			}
			for i := 1; i <= api.DefaultOriginRateLimit; i++ {
				if r := get(sfOrigin); r.status != 200 {
					t.Fatalf("request %d: %d %s", i, r.status, r.raw)
				}
			}
			r := get(sfOrigin)
			r.expectError(t, 429, "RATE_LIMITED", "")
			if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 ||
				r.header.Get("Access-Control-Allow-Origin") != sfOrigin {
				t.Fatalf("429 headers %v", r.header)
			}
			if r := get("https://b.example"); r.status != 200 {
				t.Fatalf("other origin: %d %s", r.status, r.raw)
			}
			// Another key from the flooded origin has its own budget.
			if r := s.browser("GET", "/v1/track/init", nil); r.status != 200 {
				t.Fatalf("other key: %d %s", r.status, r.raw)
			}
		})
		t.Run("a key's own rate limit", func(t *testing.T) {
			k, _ := s.newKey(nil, auth.KeyInput{Kind: heldsway.KeyKindPublishable, Scopes: sfAllScopes, RateLimit: 2,
				AllowedOrigins: []string{sfOrigin, "https://b.example"}})
			get := func(origin string) *resp {
				return s.browser("GET", "/v1/track/init", nil, api.HeaderPublishableKey, k.Key, "Origin", origin)
			}
			get(sfOrigin)
			get("https://b.example")
			get("https://b.example").expectError(t, 429, "RATE_LIMITED", "")
			get(sfOrigin).expectError(t, 429, "RATE_LIMITED", "")
		})
	})
}

func TestStorefrontDiscount(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		s := sfSetup(t, e)
		aff := s.affiliate(t, s.ws.ID, s.def, "active")
		now := s.clock.Now()
		past, future := now.Add(-time.Hour), now.Add(time.Hour)
		s.coupon(t, aff, "Pct10", true, &past, &future)
		s.coupon(t, aff, "OFF", false, nil, nil)
		s.coupon(t, aff, "OLD", true, nil, &past)
		s.coupon(t, aff, "SOON", true, &future, nil)
		s.exec(t, `INSERT INTO coupons (workspace_id, affiliate_id, code, code_key, discount_type, discount_value, currency,
			min_order_amount, is_active, created_at, updated_at) VALUES ($1, $2, 'Flat5', 'FLAT5', 'fixed', 500, 'USD', 5000, $3, $4, $4)`,
			s.ws.ID, aff.id, true, now.UnixMicro())
		s.exec(t, `INSERT INTO coupons (workspace_id, affiliate_id, code, code_key, discount_type, discount_value, currency,
			is_active, created_at, updated_at) VALUES ($1, $2, 'Half', 'HALF', 'percentage', 1250, 'USD', $3, $4, $4)`,
			s.ws.ID, aff.id, true, now.UnixMicro())

		t.Run("lookup", func(t *testing.T) {
			d := s.browser("GET", "/v1/track/discount?code=pct10", nil).data()
			if d["code"] != "Pct10" || d["type"] != "percentage" || d["value"] != 10.0 || d["min_order"] != nil ||
				d["description"] != "10% off" || d["currency"] != "USD" {
				t.Fatalf("percentage %v", d)
			}
			r := s.browser("GET", "/v1/track/discount?code=FLAT5", nil)
			if d := r.data(); d["type"] != "flat" || d["value"] != 5.0 || d["min_order"] != 50.0 ||
				d["description"] != "5.00 USD off orders of 50.00 USD or more" || !strings.Contains(r.raw, `"value":5.00`) {
				t.Fatalf("flat %s", r.raw)
			}
			if d := s.browser("GET", "/v1/track/discount?code=half", nil).data(); d["description"] != "12.5% off" || d["value"] != 12.5 {
				t.Fatalf("12.5%% %v", d)
			}
			for _, code := range []string{"NOPE", "OFF", "OLD", "SOON"} {
				s.browser("GET", "/v1/track/discount?code="+code, nil).expectError(t, 404, "NOT_FOUND", "Coupon not found.")
			}
			r = s.browser("GET", "/v1/track/discount", nil)
			r.expectError(t, 422, "VALIDATION_ERROR", "")
			if len(r.details("code")) == 0 {
				t.Fatalf("missing code: %s", r.raw)
			}
		})
		t.Run("validate", func(t *testing.T) {
			for _, tc := range []struct {
				code, total string
				valid       bool
				amount      float64
				reason      string
			}{
				{"pct10", "123.45", true, 12.35, ""}, // 12.345 rounds half-up
				{"PCT10", "0.05", true, 0.01, ""},    // 0.005 → 0.01
				{"half", "10.00", true, 1.25, ""},
				{"flat5", "50.00", true, 5, ""}, // at the minimum
				{"flat5", "49.99", false, 0, "below_minimum"},
				{"OFF", "100", false, 0, "inactive"},
				{"OLD", "100", false, 0, "expired"},
				{"SOON", "100", false, 0, "not_started"},
				{"NOPE", "100", false, 0, "not_found"},
			} {
				r := s.browser("POST", "/v1/track/discount/validate", map[string]any{"code": tc.code, "cart_total": json.Number(tc.total)})
				d := r.data()
				if r.status != 200 || d["is_valid"] != tc.valid || d["discount_amount"] != tc.amount ||
					(tc.reason == "" && d["reason"] != nil) || (tc.reason != "" && d["reason"] != tc.reason) {
					t.Fatalf("%s %s: %d %s", tc.code, tc.total, r.status, r.raw)
				}
			}
			// A flat discount is capped at the cart total.
			s.exec(t, `UPDATE coupons SET min_order_amount = NULL WHERE code_key = 'FLAT5'`)
			if d := s.browser("POST", "/v1/track/discount/validate", map[string]any{"code": "flat5", "cart_total": json.Number("3.00")}).data(); d["discount_amount"] != 3.0 {
				t.Fatalf("capped %v", d)
			}
			if d := s.browser("POST", "/v1/track/discount/validate", map[string]any{"code": "pct10", "cart_total": json.Number("10"), "currency": "EUR"}).data(); d["is_valid"] != false || d["reason"] != "currency_mismatch" {
				t.Fatalf("currency %v", d)
			}
			for _, tc := range []struct {
				body  map[string]any
				field string
			}{
				{map[string]any{"cart_total": json.Number("1")}, "code"},
				{map[string]any{"code": "pct10"}, "cart_total"},
				{map[string]any{"code": "pct10", "cart_total": json.Number("-1")}, "cart_total"},
				{map[string]any{"code": "pct10", "cart_total": json.Number("1.001")}, "cart_total"},
				{map[string]any{"code": "pct10", "cart_total": "12"}, "cart_total"},
				{map[string]any{"code": "pct10", "cart_total": json.Number("1"), "currency": "EURO"}, "currency"},
				{map[string]any{"code": "pct10", "cart_total": json.Number("1"), "extra": 1}, "extra"},
			} {
				r := s.browser("POST", "/v1/track/discount/validate", tc.body)
				r.expectError(t, 422, "VALIDATION_ERROR", "")
				if len(r.details(tc.field)) == 0 {
					t.Fatalf("%v: no detail on %s: %s", tc.body, tc.field, r.raw)
				}
			}
		})
	})
}

func TestStorefrontValidation(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		s := sfSetup(t, e)
		long := strings.Repeat("x", 65)
		item := func(kv ...any) map[string]any {
			m := map[string]any{"product_id": "A", "quantity": 1}
			for i := 0; i+1 < len(kv); i += 2 {
				m[kv[i].(string)] = kv[i+1]
			}
			return m
		}
		tests := []struct {
			path  string
			body  any
			field string
		}{
			{"pageview", map[string]any{}, "visitor_id"},
			{"pageview", map[string]any{"visitor_id": ""}, "visitor_id"},
			{"pageview", map[string]any{"visitor_id": long}, "visitor_id"},
			{"pageview", map[string]any{"visitor_id": "a b"}, "visitor_id"},
			{"pageview", map[string]any{"visitor_id": 12}, "visitor_id"},
			{"pageview", map[string]any{"visitor_id": "v", "session_id": "s/1"}, "session_id"},
			{"pageview", map[string]any{"visitor_id": "v", "click_id": "c;1"}, "click_id"},
			{"pageview", map[string]any{"visitor_id": "v", "url": "not a url"}, "url"},
			{"pageview", map[string]any{"visitor_id": "v", "url": "javascript:alert(1)"}, "url"},
			{"pageview", map[string]any{"visitor_id": "v", "url": "https://x.example/" + strings.Repeat("p", 2048)}, "url"},
			{"pageview", map[string]any{"visitor_id": "v", "referrer": "/relative"}, "referrer"},
			{"pageview", map[string]any{"visitor_id": "v", "title": "unknown field"}, "title"},
			{"pageview", "{", "body"},
			{"product-view", map[string]any{"visitor_id": "v"}, "product"},
			{"product-view", map[string]any{"visitor_id": "v", "product": map[string]any{}}, "product.product_id"},
			{"product-view", map[string]any{"visitor_id": "v", "product": map[string]any{"product_id": "A", "price": json.Number("-1")}}, "product.price"},
			{"product-view", map[string]any{"visitor_id": "v", "product": map[string]any{"product_id": "A", "price": json.Number("1.001")}}, "product.price"},
			{"product-view", map[string]any{"visitor_id": "v", "currency": "ZZZ", "product": map[string]any{"product_id": "A", "price": json.Number("1")}}, "currency"},
			{"product-view", map[string]any{"visitor_id": "v", "product": map[string]any{"product_id": "A", "sku": "S"}}, "product.sku"},
			{"add-to-cart", map[string]any{"visitor_id": "v"}, "items"},
			{"add-to-cart", map[string]any{"visitor_id": "v", "items": []any{}}, "items"},
			{"add-to-cart", map[string]any{"visitor_id": "v", "items": []any{item("quantity", 0)}}, "items.0.quantity"},
			{"add-to-cart", map[string]any{"visitor_id": "v", "items": []any{item(), item("product_id", "")}}, "items.1.product_id"},
			{"add-to-cart", map[string]any{"visitor_id": "v", "items": []any{item("price", json.Number("0.001"))}}, "items.0.price"},
			{"remove-from-cart", map[string]any{"visitor_id": "v", "items": []any{item("quantity", 2000000)}}, "items.0.quantity"},
			{"checkout", map[string]any{"visitor_id": "v", "total": json.Number("-5")}, "total"},
			{"checkout", map[string]any{"visitor_id": "v", "item_count": -1}, "item_count"},
			{"thank-you", map[string]any{"visitor_id": "v"}, "order_id"},
			{"thank-you", map[string]any{"visitor_id": "v", "order_id": "O", "customer": map[string]any{"email": "x"}}, "customer.email"},
			{"identify", map[string]any{"visitor_id": "v"}, "email"},
			{"identify", map[string]any{"visitor_id": "v", "email": "not-an-email"}, "email"},
			{"identify", map[string]any{"visitor_id": "v", "email": "a@b.example", "user_id": strings.Repeat("u", 256)}, "user_id"},
			{"click", map[string]any{"visitor_id": "v"}, "referral_code"},
			{"click", map[string]any{"referral_code": "X"}, "visitor_id"},
		}
		before := s.count(t, "storefront_events") + s.count(t, "clicks")
		for _, tc := range tests {
			t.Run(tc.path+" "+tc.field, func(t *testing.T) {
				r := s.browser("POST", "/v1/track/"+tc.path, tc.body)
				r.expectError(t, 422, "VALIDATION_ERROR", "")
				if len(r.details(tc.field)) == 0 {
					t.Fatalf("no detail on %s: %s", tc.field, r.raw)
				}
			})
		}
		if after := s.count(t, "storefront_events") + s.count(t, "clicks"); after != before {
			t.Fatalf("bad input wrote %d rows", after-before)
		}
	})
}
