package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/heldsway/heldsway/internal/api"
	"github.com/heldsway/heldsway/internal/track"
)

// The redirect through the whole server: routed, wrapped by the common
// middleware, documented. The redirect's behaviour is tested in internal/track.

func TestRedirectRoute(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
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

		at := e.clock.Now().UnixMicro()
		var prog, user, aff, link int64
		row := func(dst *int64, q string, args ...any) {
			t.Helper()
			if err := e.store.DB().QueryRow(q+` RETURNING id`, args...).Scan(dst); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		row(&prog, `INSERT INTO programs (workspace_id, name, currency, commission_type, cookie_days, created_at, updated_at)
			VALUES ($1, 'Default', 'USD', 'percentage', 30, $2, $2)`, e.ws.ID, at)
		row(&user, `INSERT INTO affiliate_users (workspace_id, name, email, created_at, updated_at)
			VALUES ($1, 'Alice', 'alice@example.com', $2, $2)`, e.ws.ID, at)
		row(&aff, `INSERT INTO affiliates (workspace_id, program_id, affiliate_user_id, referral_code, status, name, email, created_at, updated_at)
			VALUES ($1, $2, $3, 'ALICE', 'active', 'Alice', 'alice@example.com', $4, $4)`, e.ws.ID, prog, user, at)
		row(&link, `INSERT INTO links (workspace_id, affiliate_id, slug, destination_url, is_active, created_at, updated_at)
			VALUES ($1, $2, 'spring', 'https://shop.example/?a=1', $3, $4, $4)`, e.ws.ID, aff, true, at)

		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		fetch := func(path string) *http.Response {
			t.Helper()
			req, _ := http.NewRequest("GET", hs.URL+path, nil)
			req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			return res
		}
		res := fetch("/r/spring")
		if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), "https://shop.example/?a=1&ref=ALICE&hs_click=") {
			t.Fatalf("%d %s", res.StatusCode, res.Header.Get("Location"))
		}
		if res.Header.Get("X-Request-Id") == "" || len(res.Cookies()) != 2 {
			t.Fatalf("request id %q, cookies %v", res.Header.Get("X-Request-Id"), res.Cookies())
		}
		if count, err := e.store.LinkClickCount(context.Background(), link); err != nil || count != 1 {
			t.Fatalf("click_count %d %v", count, err)
		}
		if res := fetch("/r/unknown"); res.StatusCode != http.StatusNotFound || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("unknown slug: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
		}
		// Paths the route does not match get the API's answers, not a redirect.
		if res := fetch("/r/spring/extra"); res.StatusCode != http.StatusNotFound || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("/r/spring/extra: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
		}
		if res, err := http.Post(hs.URL+"/r/spring", "text/plain", nil); err != nil || res.StatusCode != http.StatusNotFound {
			t.Fatalf("POST /r/spring: %v %v", res, err)
		}
		// A caller's sane request id is kept, as on every route.
		req, _ := http.NewRequest("GET", hs.URL+"/r/spring", nil)
		req.Header.Set("X-Request-Id", "edge-42")
		if res, err := client.Do(req); err != nil || res.Header.Get("X-Request-Id") != "edge-42" {
			t.Fatalf("request id not kept: %v %v", res, err)
		}
		// The metrics label is the route pattern, not the slug.
		mr, err := http.Get(hs.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(mr.Body)
		mr.Body.Close()
		if !strings.Contains(string(body), `route="GET /r/{slug}",status="302"`) || strings.Contains(string(body), "spring") {
			t.Fatalf("metrics do not label the redirect by its pattern")
		}
	})
}

// TestRedirectRouteWithoutTracker: a server built without a tracker (as the API
// tests do) still routes and documents /r/{slug}, answering the 404 page.
func TestRedirectRouteWithoutTracker(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	r := e.do("GET", "/r/spring", "", nil)
	if r.status != http.StatusNotFound || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") ||
		!strings.Contains(r.raw, "Link not found") {
		t.Fatalf("%d %s %s", r.status, r.header.Get("Content-Type"), r.raw)
	}
	found := false
	for _, rt := range e.server.Routes() {
		if rt.Method == "GET" && rt.Path == "/r/{slug}" && rt.Scope == api.ScopePublic {
			found = true
		}
	}
	if !found {
		t.Fatal("GET /r/{slug} not in Routes()")
	}
	op := e.server.OpenAPI().Paths["/r/{slug}"].Get
	if op == nil || op.Responses["302"] == nil || op.Responses["302"].Headers["Location"] == nil ||
		op.Responses["404"].Content["text/html"] == nil || len(op.Security) != 0 {
		t.Fatalf("GET /r/{slug} documented as %+v", op)
	}
}
