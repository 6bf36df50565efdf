package track_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
	"github.com/heldsway/heldsway/internal/track"
)

var _ track.Store = (*store.Store)(nil)

const (
	chrome  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	googleb = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// env is one tracker node over one store, served by an httptest server.
type env struct {
	t     *testing.T
	st    *store.Store
	clock *clock
	h     *track.Handler
	srv   *httptest.Server
	ws    int64 // a workspace with a program (45-day cookie) and an active affiliate ALICE
	prog  int64
	aff   int64
}

func newEnv(t *testing.T, st *store.Store) *env {
	t.Helper()
	c := &clock{now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	st.Now = c.Now
	e := &env{t: t, st: st, clock: c}
	e.ws, e.prog, e.aff = e.workspace("acme", "ALICE")
	e.h, e.srv = e.node(st)
	return e
}

// node starts another tracker over st: a second node sharing the database.
func (e *env) node(st track.Store) (*track.Handler, *httptest.Server) {
	e.t.Helper()
	// The refresher is driven by the tests (Refresh), not by its ticker.
	h, err := track.New(context.Background(), st, track.Options{Now: e.clock.Now, RefreshInterval: time.Hour})
	if err != nil {
		e.t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /r/{slug}", h)
	srv := httptest.NewServer(mux)
	e.t.Cleanup(func() {
		srv.Close()
		if err := h.Close(context.Background()); err != nil {
			e.t.Errorf("close: %v", err)
		}
	})
	return h, srv
}

func (e *env) id(q string, args ...any) int64 {
	e.t.Helper()
	var id int64
	if err := e.st.DB().QueryRow(q+` RETURNING id`, args...).Scan(&id); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	return id
}

func (e *env) exec(q string, args ...any) {
	e.t.Helper()
	if _, err := e.st.DB().Exec(q, args...); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
}

func (e *env) at() int64 { return e.clock.Now().UnixMicro() }

func (e *env) workspace(slug, code string) (ws, prog, aff int64) {
	e.t.Helper()
	ws = e.id(`INSERT INTO workspaces (name, slug, plan, active, created_at, updated_at) VALUES ($1, $1, 'basic', $2, $3, $3)`,
		slug, true, e.at())
	prog = e.id(`INSERT INTO programs (workspace_id, name, currency, commission_type, cookie_days, created_at, updated_at)
		VALUES ($1, 'Default', 'USD', 'percentage', 45, $2, $2)`, ws, e.at())
	aff = e.affiliate(ws, prog, code, "active")
	return ws, prog, aff
}

func (e *env) affiliate(ws, prog int64, code, status string) int64 {
	e.t.Helper()
	email := strings.ToLower(code) + "@example.com"
	user := e.id(`INSERT INTO affiliate_users (workspace_id, name, email, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)`,
		ws, code, email, e.at())
	return e.id(`INSERT INTO affiliates (workspace_id, program_id, affiliate_user_id, referral_code, status, name, email, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $4, $6, $7, $7)`, ws, prog, user, code, status, email, e.at())
}

func (e *env) link(ws, aff int64, slug, dest string, active bool) int64 {
	e.t.Helper()
	return e.id(`INSERT INTO links (workspace_id, affiliate_id, slug, destination_url, is_active, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)`, ws, aff, slug, dest, active, e.at())
}

// counts returns the link's click_count and its rows in clicks.
func (e *env) counts(link int64) (count, rows int64) {
	e.t.Helper()
	count, err := e.st.LinkClickCount(context.Background(), link)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.DB().QueryRow(`SELECT COUNT(*) FROM clicks WHERE link_id = $1`, link).Scan(&rows); err != nil {
		e.t.Fatal(err)
	}
	return count, rows
}

func (e *env) expectClicks(link, want int64) {
	e.t.Helper()
	count, rows := e.counts(link)
	if count != want || rows != want {
		e.t.Fatalf("click_count %d, rows %d, want %d", count, rows, want)
	}
}

// get requests path on srv without following redirects. Headers come in name,
// value pairs; "Host" sets the request's host.
func get(t *testing.T, srv *httptest.Server, method, path string, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", chrome)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			req.Host = headers[i+1]
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(strings.NewReader(string(body)))
	return res
}

func cookie(res *http.Response, name string) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// clickOf checks an attributed redirect and returns its click id.
func clickOf(t *testing.T, res *http.Response) string {
	t.Helper()
	if res.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want 302", res.StatusCode)
	}
	u, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	id := u.Query().Get("hs_click")
	if len(id) != 22 {
		t.Fatalf("hs_click %q in %s", id, res.Header.Get("Location"))
	}
	return id
}

func TestRedirect(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		dest := "https://shop.example/p/42?color=red&size=m%20l#reviews"
		link := e.link(e.ws, e.aff, "spring", dest, true)

		t.Run("attributed redirect keeps the destination's query and fragment", func(t *testing.T) {
			res := get(t, e.srv, "GET", "/r/spring?utm_source=news", "Referer", "https://blog.example/post")
			id := clickOf(t, res)
			want := "https://shop.example/p/42?color=red&size=m%20l&ref=ALICE&hs_click=" + id + "#reviews"
			if got := res.Header.Get("Location"); got != want {
				t.Fatalf("Location %s\nwant     %s", got, want)
			}
			if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Fatalf("Cache-Control %q", cc)
			}
			// The row holds what the issue lists, and no address in clear.
			var ws, aff, prog int64
			var vid, ua, ref, q string
			var ip []byte
			if err := st.DB().QueryRow(`SELECT workspace_id, affiliate_id, program_id, visitor_id, user_agent, referrer,
				landing_query, ip_hash FROM clicks WHERE click_id = $1`, id).Scan(&ws, &aff, &prog, &vid, &ua, &ref, &q, &ip); err != nil {
				t.Fatal(err)
			}
			if ws != e.ws || aff != e.aff || prog != e.prog || ua != chrome || ref != "https://blog.example/post" ||
				q != "utm_source=news" || len(ip) != 16 || strings.Contains(string(ip), "127.0.0.1") {
				t.Fatalf("row: %d %d %d %q %q %q %x", ws, aff, prog, ua, ref, q, ip)
			}
			if c := cookie(res, track.CookieVisitor); c == nil || c.Value != vid {
				t.Fatalf("visitor cookie %v, row visitor %q", c, vid)
			}
			e.expectClicks(link, 1)
		})

		t.Run("cookies", func(t *testing.T) {
			res := get(t, e.srv, "GET", "/r/spring")
			id := clickOf(t, res)
			ref := cookie(res, track.CookieRef)
			if ref == nil || ref.Value != id || ref.MaxAge != 45*86400 || !ref.HttpOnly || ref.SameSite != http.SameSiteLaxMode ||
				ref.Path != "/" || ref.Secure {
				t.Fatalf("hs_ref %+v", ref)
			}
			vid := cookie(res, track.CookieVisitor)
			if vid == nil || len(vid.Value) != 22 || vid.MaxAge < 365*86400 || !vid.HttpOnly || vid.SameSite != http.SameSiteLaxMode || vid.Secure {
				t.Fatalf("hs_vid %+v", vid)
			}
			// Behind a TLS-terminating proxy both are Secure.
			res = get(t, e.srv, "GET", "/r/spring", "X-Forwarded-Proto", "https")
			if c := cookie(res, track.CookieRef); c == nil || !c.Secure {
				t.Fatalf("hs_ref over https: %+v", c)
			}
			if c := cookie(res, track.CookieVisitor); c == nil || !c.Secure {
				t.Fatalf("hs_vid over https: %+v", c)
			}
			// A returning visitor keeps its id: no new hs_vid.
			res = get(t, e.srv, "GET", "/r/spring", "Cookie", "hs_vid="+vid.Value)
			clickOf(t, res)
			if cookie(res, track.CookieVisitor) != nil {
				t.Fatal("hs_vid set again for a known visitor")
			}
			// A malformed visitor cookie is a new visitor.
			res = get(t, e.srv, "GET", "/r/spring", "Cookie", "hs_vid=forged")
			if c := cookie(res, track.CookieVisitor); c == nil || c.Value == "forged" {
				t.Fatalf("malformed hs_vid kept: %+v", c)
			}
		})

		t.Run("ids are time-ordered", func(t *testing.T) {
			// Click and new-visitor ids lead with the time, so the indexes on
			// them grow at their right edge: ids of later clicks sort after
			// earlier ones, as text, whatever their random part.
			var clicks, visitors []string
			for range 20 {
				res := get(t, e.srv, "GET", "/r/spring")
				clicks = append(clicks, clickOf(t, res))
				visitors = append(visitors, cookie(res, track.CookieVisitor).Value)
				e.clock.Advance(time.Millisecond)
			}
			if !slices.IsSorted(clicks) || !slices.IsSorted(visitors) {
				t.Fatalf("ids out of time order:\nclicks %v\nvisitors %v", clicks, visitors)
			}
		})

		t.Run("slug is case-insensitive", func(t *testing.T) {
			clickOf(t, get(t, e.srv, "GET", "/r/SPRING"))
		})
	})
}

func TestRedirectQueryHandling(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		for i, c := range []struct{ dest, want string }{
			{"https://shop.example", "https://shop.example?ref=ALICE&hs_click=ID"},
			{"https://shop.example/", "https://shop.example/?ref=ALICE&hs_click=ID"},
			{"https://shop.example/p?", "https://shop.example/p?ref=ALICE&hs_click=ID"},
			{"https://shop.example/p#top", "https://shop.example/p?ref=ALICE&hs_click=ID#top"},
			{"https://shop.example/p?a=1&b=&c#x?y", "https://shop.example/p?a=1&b=&c&ref=ALICE&hs_click=ID#x?y"},
			// The destination's own ref and hs_click give way to ours.
			{"https://shop.example/p?ref=OLD&x=1&hs_click=zzz", "https://shop.example/p?x=1&ref=ALICE&hs_click=ID"},
			{"https://shop.example/p?r%65f=OLD&x=%2B", "https://shop.example/p?x=%2B&ref=ALICE&hs_click=ID"},
		} {
			slug := "q" + string(rune('a'+i))
			e.link(e.ws, e.aff, slug, c.dest, true)
			res := get(t, e.srv, "GET", "/r/"+slug)
			id := clickOf(t, res)
			if got, want := res.Header.Get("Location"), strings.Replace(c.want, "ID", id, 1); got != want {
				t.Errorf("%s:\n got  %s\n want %s", c.dest, got, want)
			}
		}
		// A referral code that needs escaping is escaped.
		odd := e.affiliate(e.ws, e.prog, "A&B C", "active")
		e.link(e.ws, odd, "odd", "https://shop.example/", true)
		res := get(t, e.srv, "GET", "/r/odd")
		id := clickOf(t, res)
		if got := res.Header.Get("Location"); got != "https://shop.example/?ref=A%26B+C&hs_click="+id {
			t.Fatalf("Location %s", got)
		}
	})
}

func TestRedirectWithoutAttribution(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		dest := "https://shop.example/p?x=1"
		active := e.link(e.ws, e.aff, "live", dest, true)
		inactive := e.link(e.ws, e.aff, "off", dest, false)
		suspended := e.link(e.ws, e.affiliate(e.ws, e.prog, "SUSP", "suspended"), "susp", dest, true)
		pending := e.link(e.ws, e.affiliate(e.ws, e.prog, "PEND", "pending"), "pend", dest, true)
		ws2, prog2, aff2 := e.workspace("paused", "PAUSED")
		e.exec(`UPDATE programs SET status = 'paused' WHERE id = $1`, prog2)
		paused := e.link(ws2, aff2, "paused", dest, true)

		plain := func(t *testing.T, res *http.Response) {
			t.Helper()
			if res.StatusCode != http.StatusFound || res.Header.Get("Location") != dest {
				t.Fatalf("%d %s, want 302 to %s", res.StatusCode, res.Header.Get("Location"), dest)
			}
			if len(res.Cookies()) != 0 {
				t.Fatalf("cookies set: %v", res.Cookies())
			}
		}
		for _, c := range []struct {
			name string
			slug string
			link int64
		}{
			{"inactive link", "off", inactive},
			{"suspended affiliate", "susp", suspended},
			{"pending affiliate", "pend", pending},
			{"paused program", "paused", paused},
		} {
			t.Run(c.name, func(t *testing.T) {
				plain(t, get(t, e.srv, "GET", "/r/"+c.slug))
				e.expectClicks(c.link, 0)
			})
		}
		t.Run("bots are redirected, not counted", func(t *testing.T) {
			for _, ua := range []string{googleb, "facebookexternalhit/1.1", "curl/8.5.0", "Go-http-client/1.1", ""} {
				res := get(t, e.srv, "GET", "/r/live", "User-Agent", ua)
				plain(t, res)
			}
			e.expectClicks(active, 0)
		})
		t.Run("HEAD is not a click", func(t *testing.T) {
			plain(t, get(t, e.srv, "HEAD", "/r/live"))
			e.expectClicks(active, 0)
		})
		if s := e.h.Stats(); s.Counted != 0 || s.Bots != 5 || s.Untracked != 5 {
			t.Fatalf("stats %+v", s)
		}
	})
}

func TestRedirectNotFound(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		for _, path := range []string{"/r/nope", "/r/has%20space", "/r/" + strings.Repeat("a", 65), "/r/%C3%A9t%C3%A9"} {
			res := get(t, e.srv, "GET", path)
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusNotFound || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
				!strings.Contains(string(body), "Link not found") || len(res.Cookies()) != 0 {
				t.Fatalf("%s: %d %s %s", path, res.StatusCode, res.Header.Get("Content-Type"), body)
			}
			if strings.Contains(string(body), "goroutine") || strings.Contains(string(body), ".go:") {
				t.Fatalf("%s: internals in the page: %s", path, body)
			}
		}
		// Unknown slugs are remembered, so a repeat does not reach the database,
		// and forgotten when a link with the slug appears.
		e.link(e.ws, e.aff, "nope", "https://shop.example/", true)
		if res := get(t, e.srv, "GET", "/r/nope"); res.StatusCode != http.StatusNotFound {
			t.Fatalf("negative entry not cached: %d", res.StatusCode)
		}
		e.h.Invalidate("nope")
		clickOf(t, get(t, e.srv, "GET", "/r/nope"))
	})
}

// TestRedirectHosts: a slug several workspaces use is ambiguous on the shared
// host (404) and resolves on each workspace's custom domain.
func TestRedirectHosts(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		e.link(e.ws, e.aff, "only", "https://acme.example/only", true)
		e.link(e.ws, e.aff, "shared", "https://acme.example/", true)
		ws2, _, aff2 := e.workspace("globex", "GLOBEX")
		e.link(ws2, aff2, "shared", "https://globex.example/", true)
		e.exec(`INSERT INTO workspace_settings (workspace_id, custom_domain, updated_at) VALUES ($1, 'go.globex.example', $2)`, ws2, e.at())
		// Another node started after the domain was set; this one learns it at refresh.
		e.clock.Advance(time.Second)
		if err := e.h.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}

		if res := get(t, e.srv, "GET", "/r/shared"); res.StatusCode != http.StatusNotFound {
			t.Fatalf("ambiguous slug on the shared host: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		res := get(t, e.srv, "GET", "/r/shared", "Host", "GO.globex.example:443")
		clickOf(t, res)
		if loc := res.Header.Get("Location"); !strings.HasPrefix(loc, "https://globex.example/?ref=GLOBEX&") {
			t.Fatalf("custom domain: %s", loc)
		}
		// A custom domain answers only its own workspace's links.
		if res := get(t, e.srv, "GET", "/r/only", "Host", "go.globex.example"); res.StatusCode != http.StatusNotFound {
			t.Fatalf("another workspace's link on a custom domain: %d", res.StatusCode)
		}
		// A slug that exactly one workspace has resolves on any host.
		if loc := get(t, e.srv, "GET", "/r/only").Header.Get("Location"); !strings.HasPrefix(loc, "https://acme.example/only?ref=ALICE&") {
			t.Fatalf("unique slug: %s", loc)
		}
	})
}

func TestRedirectDedup(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		link := e.link(e.ws, e.aff, "spring", "https://shop.example/", true)
		other := e.link(e.ws, e.aff, "summer", "https://shop.example/", true)

		first := get(t, e.srv, "GET", "/r/spring")
		id := clickOf(t, first)
		vid := "hs_vid=" + cookie(first, track.CookieVisitor).Value

		e.clock.Advance(29 * time.Second)
		again := get(t, e.srv, "GET", "/r/spring", "Cookie", vid)
		if got := clickOf(t, again); got != id {
			t.Fatalf("repeat within 30 s got a new click %s, want %s", got, id)
		}
		if c := cookie(again, track.CookieRef); c == nil || c.Value != id {
			t.Fatalf("repeat's hs_ref %+v", c)
		}
		e.expectClicks(link, 1)

		// Another link, or another visitor, is another click.
		clickOf(t, get(t, e.srv, "GET", "/r/summer", "Cookie", vid))
		e.expectClicks(other, 1)
		clickOf(t, get(t, e.srv, "GET", "/r/spring"))
		e.expectClicks(link, 2)

		// 30 s after the counted click, the same visitor counts again.
		e.clock.Advance(time.Second)
		if got := clickOf(t, get(t, e.srv, "GET", "/r/spring", "Cookie", vid)); got == id {
			t.Fatal("click 30 s later deduplicated")
		}
		e.expectClicks(link, 3)
		if s := e.h.Stats(); s.Counted != 4 || s.Repeats != 1 {
			t.Fatalf("stats %+v", s)
		}
	})
}

// TestRedirectClickCountUnderLoad: concurrent clicks are batched, and every
// acknowledged click is a row and one unit of click_count.
func TestRedirectClickCountUnderLoad(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		a := e.link(e.ws, e.aff, "a", "https://shop.example/a", true)
		b := e.link(e.ws, e.aff, "b", "https://shop.example/b", true)
		const n = 200
		var wg sync.WaitGroup
		var mu sync.Mutex
		got := map[string]int{}
		sem := make(chan struct{}, 40)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				slug := "a"
				if i%3 == 0 {
					slug = "b"
				}
				res := get(t, e.srv, "GET", "/r/"+slug)
				mu.Lock()
				got[slug]++
				if res.StatusCode != http.StatusFound {
					got["bad"]++
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		if got["bad"] != 0 {
			t.Fatalf("%d requests not redirected", got["bad"])
		}
		e.expectClicks(a, int64(got["a"]))
		e.expectClicks(b, int64(got["b"]))
	})
}

// TestRedirectCacheInvalidation: this node forgets a link at once on
// Invalidate; another node sharing the database catches up at its refresh.
func TestRedirectCacheInvalidation(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		link := e.link(e.ws, e.aff, "spring", "https://old.example/", true)
		hB, srvB := e.node(st)
		for _, srv := range []*httptest.Server{e.srv, srvB} {
			if loc := get(t, srv, "GET", "/r/spring").Header.Get("Location"); !strings.HasPrefix(loc, "https://old.example/") {
				t.Fatalf("before: %s", loc)
			}
		}
		location := func(srv *httptest.Server, slug string) string {
			return get(t, srv, "GET", "/r/"+slug).Header.Get("Location")
		}

		// A write through the API: the API invalidates its own node.
		e.clock.Advance(time.Second)
		e.exec(`UPDATE links SET destination_url = 'https://new.example/', updated_at = $1 WHERE id = $2`, e.at(), link)
		e.h.Invalidate("spring")
		if loc := location(e.srv, "spring"); !strings.HasPrefix(loc, "https://new.example/") {
			t.Fatalf("this node after Invalidate: %s", loc)
		}
		if loc := location(srvB, "spring"); !strings.HasPrefix(loc, "https://old.example/") {
			t.Fatalf("node B changed before its refresh (the test would prove nothing): %s", loc)
		}
		e.clock.Advance(2 * time.Second)
		if err := hB.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if loc := location(srvB, "spring"); !strings.HasPrefix(loc, "https://new.example/") {
			t.Fatalf("node B after refresh: %s", loc)
		}

		// An affiliate suspended elsewhere stops attribution after a refresh.
		e.clock.Advance(time.Second)
		e.exec(`UPDATE affiliates SET status = 'suspended', updated_at = $1 WHERE id = $2`, e.at(), e.aff)
		e.clock.Advance(2 * time.Second)
		if err := hB.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if loc := location(srvB, "spring"); loc != "https://new.example/" {
			t.Fatalf("suspended affiliate still attributed: %s", loc)
		}
		e.exec(`UPDATE affiliates SET status = 'active', updated_at = $1 WHERE id = $2`, e.at(), e.aff)

		// A renamed slug: the old one is gone, the new one answers.
		e.clock.Advance(time.Second)
		e.exec(`UPDATE links SET slug = 'autumn', updated_at = $1 WHERE id = $2`, e.at(), link)
		e.clock.Advance(2 * time.Second)
		if err := hB.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if res := get(t, srvB, "GET", "/r/spring"); res.StatusCode != http.StatusNotFound {
			t.Fatalf("old slug after rename: %d", res.StatusCode)
		}
		clickOf(t, get(t, srvB, "GET", "/r/autumn"))

		// A deleted link leaves no updated_at: the sweep finds it gone.
		e.exec(`DELETE FROM clicks WHERE link_id = $1`, link)
		e.exec(`DELETE FROM links WHERE id = $1`, link)
		e.clock.Advance(time.Minute)
		if err := hB.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if res := get(t, srvB, "GET", "/r/autumn"); res.StatusCode != http.StatusNotFound {
			t.Fatalf("deleted link still redirects: %d", res.StatusCode)
		}
	})
}

// TestRedirectScopedInvalidation: InvalidateLink, InvalidateAffiliate,
// InvalidateProgram and InvalidateWorkspace forget the links they name and keep
// every other (which still answers from memory, stale, until a refresh).
func TestRedirectScopedInvalidation(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		ws2, prog2, aff2 := e.workspace("other", "BOB")
		prog3 := e.id(`INSERT INTO programs (workspace_id, name, currency, commission_type, cookie_days, created_at, updated_at)
			VALUES ($1, 'Second', 'USD', 'percentage', 45, $2, $2)`, e.ws, e.at())
		carol := e.affiliate(e.ws, prog3, "CAROL", "active")
		links := map[string]int64{
			"alice-1": e.link(e.ws, e.aff, "alice-1", "https://a.example/", true),
			"alice-2": e.link(e.ws, e.aff, "alice-2", "https://a.example/", true),
			"carol":   e.link(e.ws, carol, "carol", "https://c.example/", true),
			"bob":     e.link(ws2, aff2, "bob", "https://b.example/", true),
		}
		// attributed reports whether each slug's redirect is attributed now.
		attributed := func() map[string]bool {
			out := map[string]bool{}
			for slug := range links {
				out[slug] = strings.Contains(get(t, e.srv, "GET", "/r/"+slug).Header.Get("Location"), "hs_click=")
			}
			return out
		}
		expect := func(step string, want map[string]bool) {
			t.Helper()
			if got := attributed(); !maps.Equal(got, want) {
				t.Fatalf("%s: attributed %v, want %v", step, got, want)
			}
		}
		all := map[string]bool{"alice-1": true, "alice-2": true, "carol": true, "bob": true}
		expect("warm", all)
		// Every link stops tracking in the database; nothing refreshes the cache.
		e.exec(`UPDATE links SET is_active = $1`, false)

		e.h.InvalidateLink(links["alice-1"], "alice-1")
		expect("link", map[string]bool{"alice-1": false, "alice-2": true, "carol": true, "bob": true})
		e.h.InvalidateAffiliate(e.ws, e.aff)
		expect("affiliate", map[string]bool{"alice-1": false, "alice-2": false, "carol": true, "bob": true})
		e.h.InvalidateProgram(ws2, prog2) // bob's program, not carol's
		expect("program", map[string]bool{"alice-1": false, "alice-2": false, "carol": true, "bob": false})
		e.h.InvalidateWorkspace(e.ws)
		expect("workspace", map[string]bool{"alice-1": false, "alice-2": false, "carol": false, "bob": false})

		// InvalidateLink finds a renamed link under the slug it was cached with.
		e.exec(`UPDATE links SET is_active = $1`, true)
		e.h.InvalidateWorkspace(e.ws)
		clickOf(t, get(t, e.srv, "GET", "/r/carol"))
		e.exec(`UPDATE links SET slug = 'carol-2' WHERE id = $1`, links["carol"])
		e.h.InvalidateLink(links["carol"], "carol-2")
		if res := get(t, e.srv, "GET", "/r/carol"); res.StatusCode != http.StatusNotFound {
			t.Fatalf("old slug after InvalidateLink: %d", res.StatusCode)
		}
		clickOf(t, get(t, e.srv, "GET", "/r/carol-2"))
	})
}

// failingStore fails every click batch.
type failingStore struct{ *store.Store }

var errDown = errors.New("database down")

func (failingStore) RecordClicks(context.Context, []heldsway.Click) error { return errDown }

func TestRedirectWriteFailure(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		link := e.link(e.ws, e.aff, "spring", "https://shop.example/", true)
		_, srv := e.node(failingStore{st})
		res := get(t, srv, "GET", "/r/spring")
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" ||
			!strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || len(res.Cookies()) != 0 ||
			strings.Contains(string(body), errDown.Error()) {
			t.Fatalf("%d %v %s", res.StatusCode, res.Header, body)
		}
		e.expectClicks(link, 0)
		// The failed click is not remembered for dedup: the retry on a working
		// node counts.
		clickOf(t, get(t, e.srv, "GET", "/r/spring"))
		e.expectClicks(link, 1)
	})
}

// TestCloseDrains: clicks in flight when the server stops are written before
// Close returns.
func TestCloseDrains(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		link := e.link(e.ws, e.aff, "spring", "https://shop.example/", true)
		var wg sync.WaitGroup
		var ok sync.Map
		for i := range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if get(t, e.srv, "GET", "/r/spring").StatusCode == http.StatusFound {
					ok.Store(i, true)
				}
			}()
		}
		wg.Wait()
		e.srv.Close()
		if err := e.h.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		n := 0
		ok.Range(func(any, any) bool { n++; return true })
		e.expectClicks(link, int64(n))
	})
}
