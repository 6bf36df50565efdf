package api_test

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/heldsway/heldsway/internal/auth"
	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// lkEnv is an env with an active affiliate, tokens for the link scopes and a
// second workspace (its token and an affiliate of it).
type lkEnv struct {
	*env
	read, write, both string
	aff               int64
	other             *heldsway.Workspace
	otherTok          string
	otherAff          int64
}

func lkSetup(t *testing.T, e *env) *lkEnv {
	t.Helper()
	l := &lkEnv{env: e, read: e.token("affiliates:read"), write: e.token("affiliates:write"),
		both: e.token("affiliates:read", "affiliates:write")}
	l.aff = storetest.InsertAffiliate(t, e.store.DB(), e.ws.ID, "USD", heldsway.AffiliateActive)
	ws, err := e.auth.CreateWorkspace(context.Background(), "Other "+t.Name(), "basic")
	if err != nil {
		t.Fatal(err)
	}
	l.other = ws
	k, secret := e.newKey(ws, auth.KeyInput{Scopes: []string{"affiliates:read", "affiliates:write"}})
	l.otherTok = e.exchange(k.Key, secret)
	l.otherAff = storetest.InsertAffiliate(t, e.store.DB(), ws.ID, "USD", heldsway.AffiliateActive)
	return l
}

// rows counts links, link batches, coupons, audit entries and events.
func (l *lkEnv) rows(t *testing.T) string {
	t.Helper()
	var parts []string
	for _, table := range []string{"links", "link_batches", "coupons", "audit_log", "events"} {
		var n int
		if err := l.store.DB().QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, fmt.Sprintf("%s=%d", table, n))
	}
	return strings.Join(parts, " ")
}

func (l *lkEnv) createLink(t *testing.T, aff int64, body map[string]any) map[string]any {
	t.Helper()
	r := l.do("POST", fmt.Sprintf("/v1/affiliates/%d/links", aff), l.write, body)
	if r.status != 201 {
		t.Fatalf("create link: %d %s", r.status, r.raw)
	}
	return r.data()
}

func num(v any) int64 { return int64(v.(float64)) }

var lkGenerated = regexp.MustCompile(`^[a-z0-9]{9}$`)

func TestLinkCRUD(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		l := lkSetup(t, e)
		host := strings.TrimPrefix(e.http.URL, "http://")

		before := l.rows(t)
		r := e.do("POST", fmt.Sprintf("/v1/affiliates/%d/links", l.aff), l.write,
			`{"destination_url":"https://shop.example/p/1","campaign":"spring","metadata":{"n":12345678901234567890}}`)
		if r.status != 201 || r.body["success"] != true || r.body["message"] != "Link created." {
			t.Fatalf("create: %d %s", r.status, r.raw)
		}
		d := r.data()
		slug, _ := d["slug"].(string)
		want := []string{"affiliate_id", "campaign", "click_count", "created_at", "destination_url", "id", "is_active",
			"metadata", "slug", "tracking_url", "updated_at"}
		if got := sortedKeysOf(d); !slices.Equal(got, want) {
			t.Fatalf("link fields %v, want %v", got, want)
		}
		if !lkGenerated.MatchString(slug) || num(d["affiliate_id"]) != l.aff || d["destination_url"] != "https://shop.example/p/1" ||
			d["campaign"] != "spring" || d["is_active"] != true || num(d["click_count"]) != 0 ||
			d["tracking_url"] != "http://"+host+"/r/"+slug || d["created_at"] != "2026-11-01T12:00:00.000000Z" ||
			d["updated_at"] != d["created_at"] {
			t.Fatalf("link %v", d)
		}
		// Metadata is kept byte for byte: a 20-digit number is not rounded.
		if !strings.Contains(r.raw, `"metadata":{"n":12345678901234567890}`) {
			t.Fatalf("metadata not preserved: %s", r.raw)
		}
		id := num(d["id"])
		path := fmt.Sprintf("/v1/links/%d", id)
		if after := l.rows(t); after == before {
			t.Fatal("nothing written")
		}

		t.Run("get, also under /api/v1", func(t *testing.T) {
			for _, p := range []string{path, "/api" + path} {
				r := e.do("GET", p, l.read, nil)
				if r.status != 200 || r.data()["slug"] != slug || r.data()["tracking_url"] != "http://"+host+"/r/"+slug {
					t.Fatalf("GET %s: %d %s", p, r.status, r.raw)
				}
			}
		})
		t.Run("tracking URL honours X-Forwarded-Proto", func(t *testing.T) {
			r := e.do("GET", path, l.read, nil, "X-Forwarded-Proto", "https")
			if r.data()["tracking_url"] != "https://"+host+"/r/"+slug {
				t.Fatalf("tracking_url %v", r.data()["tracking_url"])
			}
		})
		t.Run("tracking URL uses the custom domain", func(t *testing.T) {
			db := e.store.DB()
			res, err := db.Exec(`UPDATE workspace_settings SET custom_domain = 'go.acme.example' WHERE workspace_id = $1`, e.ws.ID)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				if _, err := db.Exec(`INSERT INTO workspace_settings (workspace_id, custom_domain, updated_at) VALUES ($1, 'go.acme.example', 0)`, e.ws.ID); err != nil {
					t.Fatal(err)
				}
			}
			defer db.Exec(`UPDATE workspace_settings SET custom_domain = NULL WHERE workspace_id = $1`, e.ws.ID)
			r := e.do("GET", path, l.read, nil)
			if r.data()["tracking_url"] != "https://go.acme.example/r/"+slug {
				t.Fatalf("tracking_url %v", r.data()["tracking_url"])
			}
		})
		t.Run("partial update", func(t *testing.T) {
			e.clock.Advance(60e9)
			r := e.do("PUT", path, l.write, map[string]any{"slug": "My-Sale", "is_active": false, "campaign": nil})
			d := r.data()
			if r.status != 200 || r.body["message"] != "Link updated." || d["slug"] != "my-sale" || d["is_active"] != false ||
				d["campaign"] != nil || d["destination_url"] != "https://shop.example/p/1" || d["metadata"] == nil ||
				d["updated_at"] != "2026-11-01T12:01:00.000000Z" || d["created_at"] != "2026-11-01T12:00:00.000000Z" {
				t.Fatalf("update: %d %s", r.status, r.raw)
			}
			r = e.do("PUT", path, l.write, map[string]any{"metadata": nil, "destination_url": "http://b.example"})
			if r.status != 200 || r.data()["metadata"] != nil || r.data()["destination_url"] != "http://b.example" {
				t.Fatalf("update: %d %s", r.status, r.raw)
			}
			if g := e.do("GET", path, l.read, nil).data(); g["slug"] != "my-sale" || g["metadata"] != nil || g["is_active"] != false {
				t.Fatalf("stored %v", g)
			}
		})
		t.Run("slug conflict is 409 with details", func(t *testing.T) {
			l.createLink(t, l.aff, map[string]any{"destination_url": "https://a.example", "slug": "taken"})
			before := l.rows(t)
			for _, c := range []struct{ method, path string }{
				{"POST", fmt.Sprintf("/v1/affiliates/%d/links", l.aff)},
				{"PUT", path},
			} {
				r := e.do(c.method, c.path, l.write, map[string]any{"destination_url": "https://a.example", "slug": "TAKEN"})
				r.expectError(t, 409, "CONFLICT", "The slug has already been taken.")
				if got := r.details("slug"); len(got) != 1 {
					t.Fatalf("details %s", r.raw)
				}
			}
			if l.rows(t) != before {
				t.Fatal("rows written")
			}
		})
		t.Run("terminated affiliate is 409", func(t *testing.T) {
			term := storetest.InsertAffiliate(t, e.store.DB(), e.ws.ID, "USD", heldsway.AffiliateTerminated)
			before := l.rows(t)
			e.do("POST", fmt.Sprintf("/v1/affiliates/%d/links", term), l.write, map[string]any{"destination_url": "https://a.example"}).
				expectError(t, 409, "CONFLICT", "Links cannot be created for a terminated affiliate.")
			if l.rows(t) != before {
				t.Fatal("rows written")
			}
		})
		t.Run("other workspace and unknown ids are 404, nothing changes", func(t *testing.T) {
			before := l.rows(t)
			msg := "Affiliate not found for this business."
			body := map[string]any{"destination_url": "https://a.example"}
			for _, aff := range []int64{l.otherAff, l.otherAff + 1000} {
				e.do("POST", fmt.Sprintf("/v1/affiliates/%d/links", aff), l.write, body).expectError(t, 404, "NOT_FOUND", msg)
				e.do("GET", fmt.Sprintf("/v1/affiliates/%d/links", aff), l.read, nil).expectError(t, 404, "NOT_FOUND", msg)
				e.do("POST", fmt.Sprintf("/v1/affiliates/%d/links/bulk", aff), l.write, map[string]any{"links": []any{body}}).
					expectError(t, 404, "NOT_FOUND", msg)
			}
			e.do("GET", path, l.otherTok, nil).expectError(t, 404, "NOT_FOUND", "Link not found.")
			e.do("PUT", path, l.otherTok, map[string]any{"is_active": true}).expectError(t, 404, "NOT_FOUND", "Link not found.")
			e.do("DELETE", path, l.otherTok, nil).expectError(t, 404, "NOT_FOUND", "Link not found.")
			e.do("GET", fmt.Sprintf("/v1/links/%d", id+1000), l.read, nil).expectError(t, 404, "NOT_FOUND", "Link not found.")
			if l.rows(t) != before {
				t.Fatal("rows written")
			}
			if g := e.do("GET", path, l.read, nil).data(); g["is_active"] != false {
				t.Fatal("another workspace changed the link")
			}
		})
		t.Run("scopes", func(t *testing.T) {
			none := e.token("orders:read")
			for _, c := range []struct{ method, path, tok string }{
				{"GET", "/v1/links", none},
				{"GET", path, none},
				{"GET", fmt.Sprintf("/v1/affiliates/%d/links", l.aff), none},
				{"GET", fmt.Sprintf("/v1/affiliates/%d/link-batches/1", l.aff), none},
				{"POST", fmt.Sprintf("/v1/affiliates/%d/links", l.aff), l.read},
				{"POST", fmt.Sprintf("/v1/affiliates/%d/links/bulk", l.aff), l.read},
				{"PUT", path, l.read},
				{"DELETE", path, l.read},
				{"GET", path, l.write},
			} {
				e.do(c.method, c.path, c.tok, map[string]any{"destination_url": "https://a.example"}).
					expectError(t, 403, "FORBIDDEN", "Insufficient scope.")
			}
			e.do("GET", path, "", nil).expectError(t, 401, "UNAUTHORIZED", "")
		})
		t.Run("idempotent create", func(t *testing.T) {
			before := l.rows(t)
			body := map[string]any{"destination_url": "https://idem.example"}
			p := fmt.Sprintf("/v1/affiliates/%d/links", l.aff)
			a := e.do("POST", p, l.write, body, "Idempotency-Key", "lk-1")
			b := e.do("POST", p, l.write, body, "Idempotency-Key", "lk-1")
			if a.status != 201 || b.status != 201 || a.raw != b.raw || b.header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("first %d %s, retry %d %s", a.status, a.raw, b.status, b.raw)
			}
			var n int
			_ = e.store.DB().QueryRow(`SELECT COUNT(*) FROM links WHERE destination_url = 'https://idem.example'`).Scan(&n)
			if n != 1 || l.rows(t) == before {
				t.Fatalf("%d links", n)
			}
		})
		t.Run("delete", func(t *testing.T) {
			r := e.do("DELETE", path, l.write, nil)
			if r.status != 200 || r.body["message"] != "Link deleted." || num(r.data()["id"]) != id {
				t.Fatalf("delete: %d %s", r.status, r.raw)
			}
			e.do("GET", path, l.read, nil).expectError(t, 404, "NOT_FOUND", "Link not found.")
			e.do("DELETE", path, l.write, nil).expectError(t, 404, "NOT_FOUND", "Link not found.")
			var types []string
			rows, _ := e.store.DB().Query(`SELECT type FROM events WHERE resource_type = 'link' AND resource_id = $1 ORDER BY id`, id)
			for rows.Next() {
				var s string
				_ = rows.Scan(&s)
				types = append(types, s)
			}
			rows.Close()
			if !slices.Equal(types, []string{"link.created", "link.updated", "link.updated", "link.deleted"}) {
				t.Fatalf("events %v", types)
			}
			var actor string
			_ = e.store.DB().QueryRow(`SELECT actor_type FROM audit_log WHERE resource_type = 'link' AND resource_id = $1 AND action = 'link.delete'`, id).Scan(&actor)
			if actor != "api_key" {
				t.Fatalf("delete audited as %q", actor)
			}
		})
	})
}

func TestLinkValidation(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		l := lkSetup(t, e)
		existing := num(l.createLink(t, l.aff, map[string]any{"destination_url": "https://a.example"})["id"])
		create := fmt.Sprintf("/v1/affiliates/%d/links", l.aff)
		update := fmt.Sprintf("/v1/links/%d", existing)
		cases := []struct {
			name, method, path string
			body               any
			field, msg         string
		}{
			{"missing destination", "POST", create, map[string]any{"slug": "abc"}, "destination_url", "The destination url field is required."},
			{"empty destination", "POST", create, map[string]any{"destination_url": ""}, "destination_url", "The destination url field is required."},
			{"destination not a string", "POST", create, map[string]any{"destination_url": 42}, "destination_url", "The destination url field must be a string."},
			{"relative destination", "POST", create, map[string]any{"destination_url": "/p/1"}, "destination_url", "The destination url field must be an absolute http or https URL."},
			{"javascript destination", "POST", create, map[string]any{"destination_url": "javascript:alert(1)"}, "destination_url", "The destination url field must be an absolute http or https URL."},
			{"long destination", "POST", create, map[string]any{"destination_url": "https://a.example/" + strings.Repeat("x", 2031)}, "destination_url", "The destination url field must not be greater than 2048 characters."},
			{"short slug", "POST", create, map[string]any{"destination_url": "https://a.example", "slug": "ab"}, "slug", "The slug field must be at least 3 characters."},
			{"long slug", "POST", create, map[string]any{"destination_url": "https://a.example", "slug": strings.Repeat("a", 65)}, "slug", "The slug field must not be greater than 64 characters."},
			{"slug characters", "POST", create, map[string]any{"destination_url": "https://a.example", "slug": "no/way"}, "slug", "The slug field may only contain letters, numbers and dashes."},
			{"long campaign", "POST", create, map[string]any{"destination_url": "https://a.example", "campaign": strings.Repeat("c", 101)}, "campaign", "The campaign field must not be greater than 100 characters."},
			{"is_active not bool", "POST", create, map[string]any{"destination_url": "https://a.example", "is_active": "yes"}, "is_active", "The is active field must be true or false."},
			{"metadata not object", "POST", create, map[string]any{"destination_url": "https://a.example", "metadata": []int{1}}, "metadata", "The metadata field must be an object."},
			{"metadata too large", "POST", create, map[string]any{"destination_url": "https://a.example", "metadata": map[string]string{"a": strings.Repeat("x", 4100)}}, "metadata", "The metadata field must not be larger than 4096 bytes of JSON."},
			{"unknown field", "POST", create, map[string]any{"destination_url": "https://a.example", "colour": "red"}, "colour", "The colour field is not allowed."},
			{"not JSON", "POST", create, `{"destination_url":`, "body", "The request body must be valid JSON."},
			{"update null destination", "PUT", update, map[string]any{"destination_url": nil}, "destination_url", "The destination url field must not be null."},
			{"update null slug", "PUT", update, map[string]any{"slug": nil}, "slug", "The slug field must not be null."},
			{"update bad URL", "PUT", update, map[string]any{"destination_url": "ftp://a.example"}, "destination_url", "The destination url field must be an absolute http or https URL."},
			{"update long campaign", "PUT", update, map[string]any{"campaign": strings.Repeat("c", 101)}, "campaign", "The campaign field must not be greater than 100 characters."},
			{"update unknown field", "PUT", update, map[string]any{"click_count": 5}, "click_count", "The click count field is not allowed."},
			{"update metadata string", "PUT", update, map[string]any{"metadata": "x"}, "metadata", "The metadata field must be an object."},
			{"bad path id", "GET", "/v1/links/abc", nil, "id", "The id field must be an integer."},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := l.rows(t)
				r := e.do(c.method, c.path, l.both, c.body)
				r.expectError(t, 422, "VALIDATION_ERROR", "")
				if got := r.details(c.field); !slices.Contains(got, c.msg) {
					t.Fatalf("details of %s: %v, want %q (%s)", c.field, got, c.msg, r.raw)
				}
				if l.rows(t) != before {
					t.Fatalf("rows written: %s → %s", before, l.rows(t))
				}
			})
		}
	})
}

// lkPage fetches every page of a list, following next_cursor.
func (l *lkEnv) allPages(t *testing.T, tok, path string) []map[string]any {
	t.Helper()
	var items []map[string]any
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		p := path
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		r := l.do("GET", p, tok, nil)
		if r.status != 200 {
			t.Fatalf("GET %s: %d %s", p, r.status, r.raw)
		}
		for _, it := range r.data()["items"].([]any) {
			items = append(items, it.(map[string]any))
		}
		meta := r.data()["meta"].(map[string]any)
		next, _ := meta["next_cursor"].(string)
		if (next != "") != (meta["has_more"] == true) {
			t.Fatalf("meta %v", meta)
		}
		if next == "" {
			return items
		}
		cursor = next
	}
}

func idsOf(items []map[string]any) []int64 {
	var ids []int64
	for _, it := range items {
		ids = append(ids, num(it["id"]))
	}
	return ids
}

func TestLinkList(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		l := lkSetup(t, e)
		aff2 := storetest.InsertAffiliate(t, e.store.DB(), e.ws.ID, "USD", heldsway.AffiliateActive)
		_, email2 := storetest.AffiliateName(t, e.store.DB(), aff2)
		if r := e.do("POST", fmt.Sprintf("/v1/affiliates/%d/links", l.otherAff), l.otherTok,
			map[string]any{"destination_url": "https://other.example", "slug": "s001"}); r.status != 201 {
			t.Fatalf("other workspace's link: %d %s", r.status, r.raw)
		}
		type row struct {
			id       int64
			created  string
			slug     string
			aff      int64
			active   bool
			campaign string
		}
		var all []row
		for i := range 30 {
			if i%4 == 0 {
				e.clock.Advance(1e6) // several links per timestamp: ties break on id
			}
			aff := l.aff
			if i%3 == 0 {
				aff = aff2
			}
			body := map[string]any{"destination_url": fmt.Sprintf("https://shop.example/p/%d", i),
				"slug": fmt.Sprintf("s%03d", (i*11)%30), "is_active": i%5 != 0}
			if i%2 == 0 {
				body["campaign"] = fmt.Sprintf("camp-%d", i%3)
			}
			d := l.createLink(t, aff, body)
			c, _ := d["campaign"].(string)
			all = append(all, row{num(d["id"]), d["created_at"].(string), d["slug"].(string), aff, d["is_active"] == true, c})
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
		every := func(row) bool { return true }

		t.Run("cursor pages: default order, no duplicates, no gaps", func(t *testing.T) {
			got := idsOf(l.allPages(t, l.read, "/v1/links?per_page=7"))
			if w := expect(every, newestFirst); !slices.Equal(got, w) {
				t.Fatalf("got %v\nwant %v", got, w)
			}
		})
		t.Run("sort slug asc", func(t *testing.T) {
			got := idsOf(l.allPages(t, l.read, "/v1/links?per_page=4&sort=slug&direction=asc"))
			w := expect(every, func(a, b row) int { return strings.Compare(a.slug, b.slug) })
			if !slices.Equal(got, w) {
				t.Fatalf("got %v\nwant %v", got, w)
			}
		})
		t.Run("page parameter", func(t *testing.T) {
			r := e.do("GET", "/v1/links?per_page=5&page=2", l.read, nil)
			var got []int64
			for _, it := range r.data()["items"].([]any) {
				got = append(got, num(it.(map[string]any)["id"]))
			}
			if w := expect(every, newestFirst)[5:10]; !slices.Equal(got, w) {
				t.Fatalf("page 2: got %v want %v", got, w)
			}
		})
		filters := []struct {
			name, query string
			keep        func(row) bool
		}{
			{"affiliate", fmt.Sprintf("affiliate_id=%d", aff2), func(r row) bool { return r.aff == aff2 }},
			{"inactive", "is_active=0", func(r row) bool { return !r.active }},
			{"active true", "is_active=true", func(r row) bool { return r.active }},
			{"search campaign", "search=CAMP-1", func(r row) bool { return r.campaign == "camp-1" }},
			{"search affiliate email", "search=" + url.QueryEscape(email2), func(r row) bool { return r.aff == aff2 }},
			{"search slug", "search=s00", func(r row) bool { return strings.HasPrefix(r.slug, "s00") }},
			{"other workspace's affiliate", fmt.Sprintf("affiliate_id=%d", l.otherAff), func(row) bool { return false }},
		}
		for _, c := range filters {
			t.Run("filter "+c.name, func(t *testing.T) {
				got := idsOf(l.allPages(t, l.read, "/v1/links?per_page=4&"+c.query))
				if w := expect(c.keep, newestFirst); !slices.Equal(got, w) {
					t.Fatalf("got %v\nwant %v", got, w)
				}
			})
		}
		t.Run("an affiliate's links", func(t *testing.T) {
			got := idsOf(l.allPages(t, l.read, fmt.Sprintf("/v1/affiliates/%d/links?per_page=3&is_active=1", aff2)))
			if w := expect(func(r row) bool { return r.aff == aff2 && r.active }, newestFirst); !slices.Equal(got, w) || len(w) == 0 {
				t.Fatalf("got %v\nwant %v", got, w)
			}
		})
		t.Run("bad parameters", func(t *testing.T) {
			slugCursor := e.do("GET", "/v1/links?per_page=2&sort=slug", l.read, nil).data()["meta"].(map[string]any)["next_cursor"].(string)
			for _, c := range []struct{ query, field string }{
				{"sort=bogus", "sort"},
				{"direction=up", "direction"},
				{"per_page=101", "per_page"},
				{"per_page=0", "per_page"},
				{"is_active=2", "is_active"},
				{"affiliate_id=x", "affiliate_id"},
				{"cursor=garbage", "cursor"},
				{"cursor=" + slugCursor, "cursor"},
				{"search=" + strings.Repeat("s", 256), "search"},
			} {
				r := e.do("GET", "/v1/links?"+c.query, l.read, nil)
				r.expectError(t, 422, "VALIDATION_ERROR", "")
				if len(r.details(c.field)) == 0 {
					t.Fatalf("%s: no details on %s: %s", c.query, c.field, r.raw)
				}
			}
		})
	})
}

func TestLinkBulk(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		l := lkSetup(t, e)
		l.createLink(t, l.aff, map[string]any{"destination_url": "https://a.example", "slug": "taken"})
		bulk := fmt.Sprintf("/v1/affiliates/%d/links/bulk", l.aff)
		links := func(n int) []map[string]any {
			var out []map[string]any
			for i := range n {
				out = append(out, map[string]any{"destination_url": fmt.Sprintf("https://shop.example/p/%d", i)})
			}
			return out
		}

		t.Run("whole batch validated first, nothing queued", func(t *testing.T) {
			bad := links(6)
			delete(bad[1], "destination_url")
			bad[2]["destination_url"] = "not a url"
			bad[3]["slug"], bad[4]["slug"] = "Same", "same"
			bad[5]["slug"] = "TAKEN"
			cases := []struct {
				name   string
				body   any
				fields map[string]string
			}{
				{"empty array", map[string]any{"links": []any{}}, map[string]string{"links": "The links field must have at least 1 items."}},
				{"missing links", map[string]any{}, map[string]string{"links": "The links field is required."}},
				{"over 1000", map[string]any{"links": links(1001)}, map[string]string{"links": "The links field must not have more than 1000 items."}},
				{"missing destination", map[string]any{"links": bad[:2]}, map[string]string{"links.1.destination_url": "The links.1.destination_url field is required."}},
				{"per item", map[string]any{"links": bad[2:]}, map[string]string{
					"links.0.destination_url": "The links.0.destination_url field must be an absolute http or https URL.",
					"links.2.slug":            `The slug "same" is repeated in this batch (first at links.1).`,
				}},
				{"taken", map[string]any{"links": []any{bad[5]}}, map[string]string{"links.0.slug": "The slug has already been taken."}},
				{"unknown item field", map[string]any{"links": []any{map[string]any{"destination_url": "https://a.example", "x": 1}}},
					map[string]string{"links.0.x": "The links.0.x field is not allowed."}},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					before := l.rows(t)
					r := e.do("POST", bulk, l.write, c.body)
					r.expectError(t, 422, "VALIDATION_ERROR", "")
					for f, msg := range c.fields {
						if got := r.details(f); !slices.Contains(got, msg) {
							t.Fatalf("details of %s: %v, want %q (%s)", f, got, msg, r.raw)
						}
					}
					if l.rows(t) != before {
						t.Fatal("rows written")
					}
				})
			}
		})

		items := links(130)
		items[0]["slug"], items[0]["campaign"], items[0]["is_active"] = "Bulk-First", "launch", false
		items[1]["metadata"] = map[string]any{"k": "v"}
		r := e.do("POST", bulk, l.write, map[string]any{"links": items})
		if r.status != 202 || r.body["message"] != "Bulk creation queued." {
			t.Fatalf("bulk: %d %s", r.status, r.raw)
		}
		d := r.data()
		batchID := num(d["batch_id"])
		statusURL := fmt.Sprintf("/v1/affiliates/%d/link-batches/%d", l.aff, batchID)
		if d["status"] != "pending" || num(d["total_items"]) != 130 || d["status_url"] != statusURL {
			t.Fatalf("queued %v", d)
		}

		r = e.do("GET", statusURL, l.read, nil)
		d = r.data()
		if r.status != 200 || d["status"] != "pending" || num(d["processed_items"]) != 0 || len(d["results"].([]any)) != 0 ||
			d["completed_at"] != nil || d["created_at"] != "2026-11-01T12:00:00.000000Z" {
			t.Fatalf("pending: %d %s", r.status, r.raw)
		}
		// Someone takes an item's slug before the worker runs: that item fails alone.
		l.createLink(t, l.aff, map[string]any{"destination_url": "https://a.example", "slug": "bulk-first"})

		e.clock.Advance(2e9)
		if n, err := e.store.ProcessLinkBatches(context.Background(), 10); err != nil || n != 1 {
			t.Fatalf("processed %d, %v", n, err)
		}
		r = e.do("GET", "/api"+statusURL, l.read, nil)
		d = r.data()
		results := d["results"].([]any)
		if d["status"] != "completed" || num(d["processed_items"]) != 130 || num(d["failed_items"]) != 1 || len(results) != 130 ||
			d["completed_at"] != "2026-11-01T12:00:02.000000Z" || num(d["batch_id"]) != batchID || num(d["affiliate_id"]) != l.aff {
			t.Fatalf("completed: %s", r.raw)
		}
		first := results[0].(map[string]any)
		if first["status"] != "failed" || first["slug"] != "bulk-first" || first["error"] != "The slug has already been taken." || first["link_id"] != nil {
			t.Fatalf("result 0: %v", first)
		}
		second := results[1].(map[string]any)
		if second["status"] != "created" || num(second["index"]) != 1 || !lkGenerated.MatchString(second["slug"].(string)) {
			t.Fatalf("result 1: %v", second)
		}
		link := e.do("GET", fmt.Sprintf("/v1/links/%d", num(second["link_id"])), l.read, nil).data()
		if link["destination_url"] != "https://shop.example/p/1" || link["slug"] != second["slug"] ||
			fmt.Sprint(link["metadata"]) != "map[k:v]" || num(link["affiliate_id"]) != l.aff {
			t.Fatalf("created link %v", link)
		}
		listed := l.allPages(t, l.read, fmt.Sprintf("/v1/affiliates/%d/links?per_page=100", l.aff))
		if len(listed) != 131 { // "taken", "bulk-first" and 129 from the batch
			t.Fatalf("%d links listed", len(listed))
		}

		t.Run("batch is scoped to its affiliate and workspace", func(t *testing.T) {
			aff2 := storetest.InsertAffiliate(t, e.store.DB(), e.ws.ID, "USD", heldsway.AffiliateActive)
			e.do("GET", fmt.Sprintf("/v1/affiliates/%d/link-batches/%d", aff2, batchID), l.read, nil).
				expectError(t, 404, "NOT_FOUND", "Link batch not found.")
			e.do("GET", statusURL, l.otherTok, nil).expectError(t, 404, "NOT_FOUND", "Affiliate not found for this business.")
			e.do("GET", fmt.Sprintf("/v1/affiliates/%d/link-batches/%d", l.aff, batchID+100), l.read, nil).
				expectError(t, 404, "NOT_FOUND", "Link batch not found.")
		})
		t.Run("terminated affiliate", func(t *testing.T) {
			term := storetest.InsertAffiliate(t, e.store.DB(), e.ws.ID, "USD", heldsway.AffiliateTerminated)
			before := l.rows(t)
			e.do("POST", fmt.Sprintf("/v1/affiliates/%d/links/bulk", term), l.write, map[string]any{"links": links(1)}).
				expectError(t, 409, "CONFLICT", "Links cannot be created for a terminated affiliate.")
			if l.rows(t) != before {
				t.Fatal("rows written")
			}
		})
	})
}
