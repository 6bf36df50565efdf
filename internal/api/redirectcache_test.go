package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/api"
	"github.com/heldsway/heldsway/internal/auth"
	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store/storetest"
	"github.com/heldsway/heldsway/internal/track"
)

// The link cache of GET /r/{slug} follows every API write that changes what a
// redirect does, on this node, before the write's response is sent. The
// tracker's own refresh is pushed out of reach (an hour), so only the API's
// invalidation can make these tests pass.

// rcEnv is an env whose server has a tracker, with a token for the affiliate,
// link and settings routes.
type rcEnv struct {
	*env
	tok    string
	client *http.Client
}

func rcSetup(t *testing.T, engine string) *rcEnv {
	t.Helper()
	e := newEnv(t, engine)
	ctx := context.Background()
	tr, err := track.New(ctx, e.store, track.Options{Now: e.clock.Now, RefreshInterval: time.Hour})
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
	e.server, e.http = srv, hs
	affDefaultProgram(t, e, e.ws.ID)
	return &rcEnv{env: e, tok: e.token("affiliates:read", "affiliates:write", "settings:read", "settings:write"),
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// visit is one redirect as a new visitor (no cookies) would see it.
type visit struct {
	status   int
	location string
	ref      string // the ref parameter; empty when the visit was not attributed
	maxAge   int    // the hs_ref cookie's Max-Age; 0 without the cookie
}

func (r *rcEnv) visit(t *testing.T, slug string, host ...string) visit {
	t.Helper()
	req, err := http.NewRequest("GET", r.http.URL+"/r/"+slug, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(host) > 0 {
		req.Host = host[0]
	}
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	res, err := r.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	v := visit{status: res.StatusCode, location: res.Header.Get("Location")}
	if u, err := url.Parse(v.location); err == nil {
		v.ref = u.Query().Get("ref")
	}
	for _, c := range res.Cookies() {
		if c.Name == track.CookieRef {
			v.maxAge = c.MaxAge
		}
	}
	return v
}

// tracked asserts an attributed redirect to dest with ref and returns it.
func (r *rcEnv) tracked(t *testing.T, slug, dest, ref string) visit {
	t.Helper()
	v := r.visit(t, slug)
	if v.status != http.StatusFound || !strings.HasPrefix(v.location, dest) || v.ref != ref || v.maxAge == 0 {
		t.Fatalf("/r/%s: want an attributed 302 to %s with ref %s, got %+v", slug, dest, ref, v)
	}
	return v
}

// untracked asserts a plain redirect to dest: no referral parameters, no cookie.
func (r *rcEnv) untracked(t *testing.T, slug, dest string) {
	t.Helper()
	if v := r.visit(t, slug); v.status != http.StatusFound || v.location != dest || v.maxAge != 0 {
		t.Fatalf("/r/%s: want a plain 302 to %s, got %+v", slug, dest, v)
	}
}

func (r *rcEnv) notFound(t *testing.T, slug string) {
	t.Helper()
	if v := r.visit(t, slug); v.status != http.StatusNotFound {
		t.Fatalf("/r/%s: want 404, got %+v", slug, v)
	}
}

func (r *rcEnv) clicks(t *testing.T, link int64) int64 {
	t.Helper()
	n, err := r.store.LinkClickCount(context.Background(), link)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// call sends a write and expects 2xx.
func (r *rcEnv) call(t *testing.T, method, path string, body any) map[string]any {
	t.Helper()
	res := r.do(method, path, r.tok, body)
	if res.status/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, res.status, res.raw)
	}
	return res.data()
}

// affiliate creates an affiliate (active unless status says otherwise) and a
// link of it with slug, and returns their ids and the referral code.
func (r *rcEnv) affiliate(t *testing.T, slug, dest string, extra map[string]any) (aff, link int64, code string) {
	t.Helper()
	body := map[string]any{"name": "Aff " + slug, "email": slug + "@example.com"}
	for k, v := range extra {
		body[k] = v
	}
	a := r.call(t, "POST", "/v1/affiliates", body)
	aff, code = affID(a), a["referral_code"].(string)
	l := r.call(t, "POST", fmt.Sprintf("/v1/affiliates/%d/links", aff), map[string]any{"destination_url": dest, "slug": slug})
	return aff, num(l["id"]), code
}

func TestRedirectFollowsAPIWrites(t *testing.T) {
	t.Parallel()
	for _, engine := range storetest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			r := rcSetup(t, engine)
			const day = 86400

			t.Run("link deactivated and reactivated", func(t *testing.T) {
				_, link, code := r.affiliate(t, "deact", "https://shop.example/a", nil)
				r.tracked(t, "deact", "https://shop.example/a?ref=", code)
				r.call(t, "PUT", fmt.Sprintf("/v1/links/%d", link), map[string]any{"is_active": false})
				r.untracked(t, "deact", "https://shop.example/a")
				if n := r.clicks(t, link); n != 1 {
					t.Fatalf("click_count %d after a visit to the deactivated link, want 1", n)
				}
				r.call(t, "PUT", fmt.Sprintf("/v1/links/%d", link), map[string]any{"is_active": true})
				r.tracked(t, "deact", "https://shop.example/a?ref=", code)
				if n := r.clicks(t, link); n != 2 {
					t.Fatalf("click_count %d, want 2", n)
				}
			})

			t.Run("destination changed", func(t *testing.T) {
				_, link, code := r.affiliate(t, "dest", "https://old.example/p?x=1", nil)
				r.tracked(t, "dest", "https://old.example/p?x=1&ref=", code)
				r.call(t, "PUT", fmt.Sprintf("/v1/links/%d", link), map[string]any{"destination_url": "https://new.example/q"})
				r.tracked(t, "dest", "https://new.example/q?ref=", code)
			})

			t.Run("slug renamed", func(t *testing.T) {
				_, link, code := r.affiliate(t, "before", "https://shop.example/r", nil)
				r.tracked(t, "before", "https://shop.example/r?ref=", code)
				r.notFound(t, "after") // remembered as unknown
				r.call(t, "PUT", fmt.Sprintf("/v1/links/%d", link), map[string]any{"slug": "after"})
				r.notFound(t, "before")
				r.tracked(t, "after", "https://shop.example/r?ref=", code)
			})

			t.Run("link deleted", func(t *testing.T) {
				_, link, code := r.affiliate(t, "gone", "https://shop.example/g", nil)
				r.tracked(t, "gone", "https://shop.example/g?ref=", code)
				r.call(t, "DELETE", fmt.Sprintf("/v1/links/%d", link), nil)
				r.notFound(t, "gone")
			})

			t.Run("link created for a slug remembered as unknown", func(t *testing.T) {
				r.notFound(t, "later")
				r.affiliate(t, "later", "https://shop.example/l", nil)
				if v := r.visit(t, "later"); v.status != http.StatusFound || v.ref == "" {
					t.Fatalf("new link: %+v", v)
				}
			})

			t.Run("affiliate suspended, reactivated, terminated", func(t *testing.T) {
				aff, link, code := r.affiliate(t, "susp", "https://shop.example/s", nil)
				r.tracked(t, "susp", "https://shop.example/s?ref=", code)
				r.call(t, "POST", fmt.Sprintf("/v1/affiliates/%d/suspend", aff), nil)
				r.untracked(t, "susp", "https://shop.example/s")
				if n := r.clicks(t, link); n != 1 {
					t.Fatalf("click_count %d after a visit while suspended, want 1", n)
				}
				r.call(t, "POST", fmt.Sprintf("/v1/affiliates/%d/reactivate", aff), nil)
				r.tracked(t, "susp", "https://shop.example/s?ref=", code)
				r.call(t, "POST", fmt.Sprintf("/v1/affiliates/%d/terminate", aff), nil)
				r.untracked(t, "susp", "https://shop.example/s")
				if n := r.clicks(t, link); n != 2 {
					t.Fatalf("click_count %d, want 2", n)
				}
			})

			t.Run("affiliate approved", func(t *testing.T) {
				aff, _, code := r.affiliate(t, "pend", "https://shop.example/p", map[string]any{"status": "pending"})
				r.untracked(t, "pend", "https://shop.example/p")
				r.call(t, "POST", fmt.Sprintf("/v1/affiliates/%d/approve", aff), nil)
				r.tracked(t, "pend", "https://shop.example/p?ref=", code)
			})

			t.Run("referral code changed", func(t *testing.T) {
				aff, _, code := r.affiliate(t, "recode", "https://shop.example/c", nil)
				r.tracked(t, "recode", "https://shop.example/c?ref=", code)
				r.call(t, "PUT", fmt.Sprintf("/v1/affiliates/%d", aff), map[string]any{"referral_code": "NEWCODE1"})
				r.tracked(t, "recode", "https://shop.example/c?ref=", "NEWCODE1")
			})

			t.Run("affiliate deleted", func(t *testing.T) {
				aff, _, code := r.affiliate(t, "delaff", "https://shop.example/d", nil)
				r.tracked(t, "delaff", "https://shop.example/d?ref=", code)
				r.call(t, "DELETE", fmt.Sprintf("/v1/affiliates/%d", aff), nil)
				r.notFound(t, "delaff")
			})

			t.Run("program cookie window and status; affiliate moved between programs", func(t *testing.T) {
				p := r.call(t, "POST", "/v1/programs", map[string]any{"name": "Short window", "currency": "USD", "cookie_duration": 7})
				prog := num(p["id"])
				aff, _, code := r.affiliate(t, "prog", "https://shop.example/w", nil)
				before := r.tracked(t, "prog", "https://shop.example/w?ref=", code)
				r.call(t, "PUT", fmt.Sprintf("/v1/affiliates/%d", aff), map[string]any{"program_id": prog})
				if v := r.tracked(t, "prog", "https://shop.example/w?ref=", code); v.maxAge != 7*day || before.maxAge == 7*day {
					t.Fatalf("cookie Max-Age %d after the move (before %d), want %d", v.maxAge, before.maxAge, 7*day)
				}
				r.call(t, "PUT", fmt.Sprintf("/v1/programs/%d", prog), map[string]any{"cookie_duration": 12})
				if v := r.tracked(t, "prog", "https://shop.example/w?ref=", code); v.maxAge != 12*day {
					t.Fatalf("cookie Max-Age %d after the program's change, want %d", v.maxAge, 12*day)
				}
				r.call(t, "PUT", fmt.Sprintf("/v1/programs/%d", prog), map[string]any{"status": "paused"})
				r.untracked(t, "prog", "https://shop.example/w")
				r.call(t, "PUT", fmt.Sprintf("/v1/programs/%d", prog), map[string]any{"status": "active"})
				r.tracked(t, "prog", "https://shop.example/w?ref=", code)
			})

			t.Run("cookie_duration setting", func(t *testing.T) {
				_, _, code := r.affiliate(t, "setting", "https://shop.example/t", nil)
				r.tracked(t, "setting", "https://shop.example/t?ref=", code)
				r.call(t, "PUT", "/v1/settings/cookie_duration", map[string]any{"value": 45})
				if v := r.tracked(t, "setting", "https://shop.example/t?ref=", code); v.maxAge != 45*day {
					t.Fatalf("cookie Max-Age %d after the setting, want %d", v.maxAge, 45*day)
				}
				r.call(t, "PUT", "/v1/settings", map[string]any{"cookie_duration": 60})
				if v := r.tracked(t, "setting", "https://shop.example/t?ref=", code); v.maxAge != 60*day {
					t.Fatalf("cookie Max-Age %d after the settings, want %d", v.maxAge, 60*day)
				}
			})

			t.Run("custom domain", func(t *testing.T) {
				// Two workspaces share the slug: on a shared host it is ambiguous,
				// on a workspace's custom domain it is that workspace's link.
				_, _, code := r.affiliate(t, "shared", "https://acme.example/", nil)
				other, err := r.auth.CreateWorkspace(context.Background(), "Other "+t.Name(), "basic")
				if err != nil {
					t.Fatal(err)
				}
				k, secret := r.newKey(other, auth.KeyInput{Scopes: []string{"affiliates:write"}})
				otherAff := storetest.InsertAffiliate(t, r.store.DB(), other.ID, "USD", heldsway.AffiliateActive)
				if res := r.do("POST", fmt.Sprintf("/v1/affiliates/%d/links", otherAff), r.exchange(k.Key, secret),
					map[string]any{"destination_url": "https://other.example/", "slug": "shared"}); res.status != 201 {
					t.Fatalf("other workspace's link: %d %s", res.status, res.raw)
				}
				if v := r.visit(t, "shared", "go.acme.example"); v.status != http.StatusNotFound {
					t.Fatalf("shared slug on a shared host: %+v", v)
				}
				r.call(t, "PUT", "/v1/settings/branding", map[string]any{"custom_domain": "go.acme.example"})
				if v := r.visit(t, "shared", "go.acme.example"); v.status != http.StatusFound || v.ref != code {
					t.Fatalf("shared slug on the custom domain: %+v", v)
				}
				r.call(t, "PUT", "/v1/settings/branding", map[string]any{"custom_domain": nil})
				if v := r.visit(t, "shared", "go.acme.example"); v.status != http.StatusNotFound {
					t.Fatalf("shared slug after the custom domain was removed: %+v", v)
				}
			})
		})
	}
}
