package api_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/auth"
)

func countKeys(t *testing.T, e *env) int {
	t.Helper()
	var n int
	if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM api_keys WHERE workspace_id = $1`, e.ws.ID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// idemRoute is a write tested under Idempotency-Key: POST /v1/api-keys claims
// the key in a transaction of its own before it runs, POST /v1/affiliates in
// its own write transaction (claimInTx).
type idemRoute struct {
	name, path string
	scope      string
	body       func(tag string) map[string]any // a valid request; tag makes it unique
	bad        map[string]any                  // a request that fails validation
	count      func(t *testing.T, e *env) int  // the rows the route creates
}

var idemRoutes = []idemRoute{
	{name: "api-keys", path: "/v1/api-keys", scope: "admin",
		body: func(tag string) map[string]any {
			return map[string]any{"name": "ci " + tag, "scopes": []string{"read-only"}}
		},
		bad: map[string]any{"name": "", "scopes": []string{"read-only"}}, count: countKeys},
	{name: "affiliates", path: "/v1/affiliates", scope: "affiliates:write",
		body: func(tag string) map[string]any {
			return map[string]any{"name": "Idem " + tag, "email": "idem-" + tag + "@example.com"}
		},
		bad: map[string]any{"name": "", "email": "bad@example.com"},
		count: func(t *testing.T, e *env) int {
			t.Helper()
			var n int
			if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM affiliates WHERE workspace_id = $1`, e.ws.ID).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}},
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	for _, rt := range idemRoutes {
		t.Run(rt.name, func(t *testing.T) {
			t.Parallel()
			eachEnv(t, func(t *testing.T, e *env) { testIdempotencyKey(t, e, rt) })
		})
	}
}

func testIdempotencyKey(t *testing.T, e *env, rt idemRoute) {
	if rt.name == "affiliates" {
		affDefaultProgram(t, e, e.ws.ID)
	}
	tok := e.token(rt.scope)
	t.Run("replay returns the stored response", func(t *testing.T) {
		before := rt.count(t, e)
		body := rt.body("replay")
		r1 := e.do("POST", rt.path, tok, body, "Idempotency-Key", "k-replay")
		r2 := e.do("POST", rt.path, tok, body, "Idempotency-Key", "k-replay")
		if r1.status != 201 || r2.status != 201 || r1.raw != r2.raw {
			t.Fatalf("first %d %s\nretry %d %s", r1.status, r1.raw, r2.status, r2.raw)
		}
		if r1.header.Get("Idempotent-Replayed") != "" || r2.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("Idempotent-Replayed: first %q, retry %q", r1.header.Get("Idempotent-Replayed"), r2.header.Get("Idempotent-Replayed"))
		}
		if r2.header.Get("Content-Type") != r1.header.Get("Content-Type") || r1.header.Get("X-RateLimit-Limit") == "" {
			t.Fatalf("headers: first %v, retry %v", r1.header, r2.header)
		}
		if got := rt.count(t, e); got != before+1 {
			t.Fatalf("rows: %d → %d, want one created", before, got)
		}
	})
	t.Run("different request under the same key", func(t *testing.T) {
		e.do("POST", rt.path, tok, rt.body("reuse"), "Idempotency-Key", "k-reuse")
		e.do("POST", rt.path, tok, rt.body("other"), "Idempotency-Key", "k-reuse").
			expectError(t, 422, "IDEMPOTENCY_KEY_REUSED", "")
	})
	t.Run("keys are scoped to the API key", func(t *testing.T) {
		tok2 := e.token(rt.scope)
		r1 := e.do("POST", rt.path, tok, rt.body("scoped-1"), "Idempotency-Key", "k-scoped")
		r2 := e.do("POST", rt.path, tok2, rt.body("scoped-2"), "Idempotency-Key", "k-scoped")
		if r1.status != 201 || r2.status != 201 || r2.header.Get("Idempotent-Replayed") != "" || r1.data()["id"] == r2.data()["id"] {
			t.Fatalf("a second API key replayed the first's response: %s / %s", r1.raw, r2.raw)
		}
	})
	t.Run("failed validation is replayed too, and writes nothing", func(t *testing.T) {
		before := rt.count(t, e)
		r1 := e.do("POST", rt.path, tok, rt.bad, "Idempotency-Key", "k-bad")
		r2 := e.do("POST", rt.path, tok, rt.bad, "Idempotency-Key", "k-bad")
		if r1.status != 422 || r2.status != 422 || r2.header.Get("Idempotent-Replayed") != "true" || r1.raw != r2.raw {
			t.Fatalf("got %d, %d %q", r1.status, r2.status, r2.header.Get("Idempotent-Replayed"))
		}
		if rt.count(t, e) != before {
			t.Fatal("a rejected request wrote a row")
		}
	})
	t.Run("a conflict found inside the transaction is replayed, and writes nothing", func(t *testing.T) {
		if rt.name != "affiliates" {
			t.Skip("api keys have no conflict")
		}
		before := rt.count(t, e)
		body := rt.body("replay") // its e-mail is taken
		r1 := e.do("POST", rt.path, tok, body, "Idempotency-Key", "k-conflict")
		r2 := e.do("POST", rt.path, tok, body, "Idempotency-Key", "k-conflict")
		if r1.status != 409 || r2.status != 409 || r2.header.Get("Idempotent-Replayed") != "true" || r1.raw != r2.raw {
			t.Fatalf("got %d %s, %d %q", r1.status, r1.raw, r2.status, r2.header.Get("Idempotent-Replayed"))
		}
		if rt.count(t, e) != before {
			t.Fatal("a conflicting request wrote a row")
		}
	})
	t.Run("invalid header", func(t *testing.T) {
		long := make([]byte, 256)
		for i := range long {
			long[i] = 'a'
		}
		r := e.do("POST", rt.path, tok, rt.body("long"), "Idempotency-Key", string(long))
		r.expectError(t, 422, "VALIDATION_ERROR", "")
		if len(r.details("Idempotency-Key")) == 0 {
			t.Fatalf("no detail for the header: %s", r.raw)
		}
	})
	t.Run("concurrent requests execute once", func(t *testing.T) {
		before := rt.count(t, e)
		const n = 16
		var wg sync.WaitGroup
		res := make([]*resp, n)
		body := rt.body("concurrent")
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i] = e.do("POST", rt.path, tok, body, "Idempotency-Key", "k-concurrent")
			}()
		}
		wg.Wait()
		replayed := 0
		for _, r := range res {
			if r.status != 201 || r.raw != res[0].raw {
				t.Fatalf("responses differ: %d %s vs %s", r.status, r.raw, res[0].raw)
			}
			if r.header.Get("Idempotent-Replayed") == "true" {
				replayed++
			}
		}
		if replayed != n-1 {
			t.Fatalf("replayed %d of %d, want all but one", replayed, n)
		}
		if got := rt.count(t, e); got != before+1 {
			t.Fatalf("rows: %d → %d, want exactly one created", before, got)
		}
	})
	t.Run("expires after 24 hours", func(t *testing.T) {
		body := rt.body("ttl")
		r1 := e.do("POST", rt.path, tok, body, "Idempotency-Key", "k-ttl")
		e.clock.Advance(24*time.Hour + time.Second)
		if rt.name == "affiliates" {
			body = rt.body("ttl-2") // the first one's e-mail is taken now
		}
		r2 := e.do("POST", rt.path, e.token(rt.scope), body, "Idempotency-Key", "k-ttl")
		if r1.status != 201 || r2.status != 201 || r2.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("after 24 h: %d %q", r2.status, r2.header.Get("Idempotent-Replayed"))
		}
	})
	t.Run("a claim abandoned by a crashed process is taken over", func(t *testing.T) {
		body := rt.body("abandoned")
		// What a process that crashed mid-request leaves: a claim without a
		// response. A retry waits for it while it may still be running…
		k, secret := e.newKey(nil, auth.KeyInput{Scopes: []string{rt.scope}})
		tok3 := e.exchange(k.Key, secret)
		before := rt.count(t, e)
		if _, err := e.store.DB().Exec(`INSERT INTO idempotency_keys (workspace_id, scope, key, fingerprint, created_at) VALUES ($1, $2, $3, $4, $5)`,
			e.ws.ID, fmt.Sprintf("key:%d", k.ID), "k-abandoned", []byte("x"), e.clock.Now().UnixMicro()); err != nil {
			t.Fatal(err)
		}
		// …and once it is old enough to be abandoned, the retry runs.
		e.clock.Advance(3 * time.Minute)
		r := e.do("POST", rt.path, tok3, body, "Idempotency-Key", "k-abandoned")
		if r.status != 201 || r.header.Get("Idempotent-Replayed") != "" || rt.count(t, e) != before+1 {
			t.Fatalf("retry after an abandoned claim: %d %s", r.status, r.raw)
		}
		r2 := e.do("POST", rt.path, tok3, body, "Idempotency-Key", "k-abandoned")
		if r2.status != 201 || r2.header.Get("Idempotent-Replayed") != "true" || r2.raw != r.raw {
			t.Fatalf("replay after the takeover: %d %s", r2.status, r2.raw)
		}
	})
}

func TestAuditLogAndEvents(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		tok := e.token("admin")
		r := e.do("POST", "/v1/api-keys", tok, map[string]any{"name": "audited", "scopes": []string{"reports:read"}},
			"X-Request-Id", "req-audit-1")
		id := int64(r.data()["id"].(float64))
		e.do("POST", fmt.Sprintf("/v1/api-keys/%d/revoke", id), tok, nil)

		l := e.do("GET", fmt.Sprintf("/v1/audit-log?resource_type=api_key&resource_id=%d", id), tok, nil)
		items, _ := l.data()["items"].([]any)
		if l.status != 200 || len(items) != 2 {
			t.Fatalf("audit list: %d %s", l.status, l.raw)
		}
		revoke, create := items[0].(map[string]any), items[1].(map[string]any)
		if create["action"] != "api_key.create" || revoke["action"] != "api_key.revoke" {
			t.Fatalf("actions: %v, %v", create["action"], revoke["action"])
		}
		if create["request_id"] != "req-audit-1" || create["ip"] != "127.0.0.1" {
			t.Fatalf("request id / ip: %v", create)
		}
		actor := create["actor"].(map[string]any)
		if actor["type"] != "api_key" || actor["id"] == nil {
			t.Fatalf("actor: %v", actor)
		}
		ch := create["changes"].(map[string]any)
		if name := ch["name"].(map[string]any); name["before"] != nil || name["after"] != "audited" {
			t.Fatalf("changes: %v", ch)
		}
		for k := range ch {
			if k == "secret_hash" || k == "api_secret" {
				t.Fatalf("audit entry carries a secret field %q", k)
			}
		}
		if s := revoke["changes"].(map[string]any)["status"].(map[string]any); s["after"] != "revoked" {
			t.Fatalf("revoke changes: %v", revoke["changes"])
		}

		t.Run("filters", func(t *testing.T) {
			for q, want := range map[string]int{
				"action=api_key.revoke":               1,
				"actor_type=public":                   0,
				"from=2026-11-01&to=2026-11-01":       -1, // everything so far happened on the clock's day
				"from=2026-11-02":                     0,
				"resource_type=affiliate&action=none": 0,
			} {
				r := e.do("GET", "/v1/audit-log?"+q, tok, nil)
				n := len(r.data()["items"].([]any))
				if r.status != 200 || (want >= 0 && n != want) || (want < 0 && n == 0) {
					t.Errorf("%s: %d items (status %d)", q, n, r.status)
				}
			}
			e.do("GET", "/v1/audit-log?from=2026-11-02&to=2026-11-01", tok, nil).expectError(t, 422, "VALIDATION_ERROR", "")
			e.do("GET", "/v1/audit-log?from=yesterday", tok, nil).expectError(t, 422, "VALIDATION_ERROR", "")
		})
		t.Run("no route changes an entry", func(t *testing.T) {
			for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
				if r := e.do(m, "/v1/audit-log", tok, map[string]any{}); r.status < 400 {
					t.Errorf("%s /v1/audit-log answered %d", m, r.status)
				}
			}
		})
		t.Run("scope", func(t *testing.T) {
			e.do("GET", "/v1/audit-log", e.token("reports:read"), nil).expectError(t, 403, "FORBIDDEN", "Insufficient scope.")
		})
		t.Run("other workspace sees nothing", func(t *testing.T) {
			ws2, err := e.auth.CreateWorkspace(context.Background(), "Other", "basic")
			if err != nil {
				t.Fatal(err)
			}
			k, secret := e.newKey(ws2, auth.KeyInput{Scopes: []string{"admin"}})
			tok2 := e.exchange(k.Key, secret)
			r := e.do("GET", fmt.Sprintf("/v1/audit-log?resource_id=%d", id), tok2, nil)
			if n := len(r.data()["items"].([]any)); n != 0 {
				t.Fatalf("second workspace sees %d entries of the first", n)
			}
		})
	})
}

// TestPaginationStableUnderInserts pages through the audit log while another
// goroutine keeps appending: no row is seen twice, and every row that existed at
// the start is seen.
func TestPaginationStableUnderInserts(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		for i := range 60 {
			if _, _, err := e.auth.CreateKey(ctx, auth.KeyInput{WorkspaceID: e.ws.ID, Name: fmt.Sprint("k", i), Scopes: []string{"reports:read"}}); err != nil {
				t.Fatal(err)
			}
		}
		tok := e.token("audit:read")
		var initial []float64
		for _, dir := range []string{"desc", "asc"} {
			t.Run(dir, func(t *testing.T) {
				first := e.do("GET", "/v1/audit-log?per_page=100&direction="+dir, tok, nil)
				initial = initial[:0]
				for _, it := range first.data()["items"].([]any) {
					initial = append(initial, it.(map[string]any)["id"].(float64))
				}
				stop := make(chan struct{})
				done := make(chan struct{})
				go func() {
					defer close(done)
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						_, _, _ = e.auth.CreateKey(ctx, auth.KeyInput{WorkspaceID: e.ws.ID, Name: fmt.Sprint("x", i), Scopes: []string{"reports:read"}})
					}
				}()
				seen := map[float64]bool{}
				cursor := ""
				for pages := 0; pages < 100; pages++ {
					r := e.do("GET", "/v1/audit-log?per_page=7&direction="+dir+"&cursor="+cursor, tok, nil)
					if r.status != 200 {
						t.Fatalf("page: %d %s", r.status, r.raw)
					}
					for _, it := range r.data()["items"].([]any) {
						id := it.(map[string]any)["id"].(float64)
						if seen[id] {
							t.Fatalf("id %v seen twice", id)
						}
						seen[id] = true
					}
					meta := r.data()["meta"].(map[string]any)
					if meta["has_more"] != true {
						break
					}
					cursor = meta["next_cursor"].(string)
					if dir == "asc" && len(seen) > len(initial)+30 {
						break // ascending, the writer can keep us paging forever
					}
				}
				close(stop)
				<-done
				for _, id := range initial {
					if !seen[id] {
						t.Fatalf("id %v existed at the start but was never seen", id)
					}
				}
			})
		}
		t.Run("cursor of another order", func(t *testing.T) {
			r := e.do("GET", "/v1/audit-log?per_page=1", tok, nil)
			c := r.data()["meta"].(map[string]any)["next_cursor"].(string)
			e.do("GET", "/v1/audit-log?direction=asc&cursor="+c, tok, nil).expectError(t, 422, "VALIDATION_ERROR", "")
			e.do("GET", "/v1/audit-log?cursor=garbage", tok, nil).expectError(t, 422, "VALIDATION_ERROR", "")
		})
	})
}
