package api_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/auth"
)

// expectRateHeaders asserts the rate-limit headers of an authenticated response.
func (r *resp) expectRateHeaders(t *testing.T, limit, remaining int) {
	t.Helper()
	if got := r.header.Get("X-RateLimit-Limit"); got != strconv.Itoa(limit) {
		t.Fatalf("X-RateLimit-Limit = %q, want %d (status %d)", got, limit, r.status)
	}
	if got := r.header.Get("X-RateLimit-Remaining"); got != strconv.Itoa(remaining) {
		t.Fatalf("X-RateLimit-Remaining = %q, want %d (status %d)", got, remaining, r.status)
	}
	// The limiter runs on real time: the window resets within the next minute.
	reset, err := strconv.ParseInt(r.header.Get("X-RateLimit-Reset"), 10, 64)
	now := time.Now().Unix()
	if err != nil || reset < now-1 || reset > now+61 {
		t.Fatalf("X-RateLimit-Reset = %q, want a Unix time within a minute of %d", r.header.Get("X-RateLimit-Reset"), now)
	}
}

func TestKeyRateLimit(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		t.Run("own limit, then 429", func(t *testing.T) {
			k, secret := e.newKey(nil, auth.KeyInput{Scopes: []string{"reports:read"}, RateLimit: 3})
			tok := e.exchange(k.Key, secret)
			for i := 1; i <= 3; i++ {
				r := e.do("GET", "/v1/me", tok, nil)
				if r.status != 200 {
					t.Fatalf("request %d: %d %s", i, r.status, r.raw)
				}
				r.expectRateHeaders(t, 3, 3-i)
			}
			r := e.do("GET", "/v1/me", tok, nil)
			r.expectError(t, 429, "RATE_LIMITED", "")
			r.expectRateHeaders(t, 3, 0)
			ra, err := strconv.Atoi(r.header.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 60 {
				t.Fatalf("Retry-After = %q, want 1..60", r.header.Get("Retry-After"))
			}
			// The budget is per key, across routes and across tokens of the key.
			e.do("GET", "/v1/api-keys", e.exchange(k.Key, secret), nil).expectError(t, 429, "RATE_LIMITED", "")
			// Other keys are unaffected.
			if r := e.do("GET", "/v1/me", e.token("reports:read"), nil); r.status != 200 {
				t.Fatalf("another key: %d %s", r.status, r.raw)
			}
		})
		t.Run("default 1000 per minute", func(t *testing.T) {
			tok := e.token("reports:read")
			for i := 1; i <= 3; i++ {
				r := e.do("GET", "/v1/me", tok, nil)
				r.expectRateHeaders(t, 1000, 1000-i)
			}
		})
		t.Run("headers on every authenticated response", func(t *testing.T) {
			k, secret := e.newKey(nil, auth.KeyInput{Scopes: []string{"admin"}, RateLimit: 100})
			tok := e.exchange(k.Key, secret)
			ro := e.token("read-only")
			calls := []struct {
				name, method, path string
				token              string
				body               any
				status             int
			}{
				{"200 me", "GET", "/v1/me", tok, nil, 200},
				{"200 list", "GET", "/v1/api-keys", tok, nil, 200},
				{"201 create", "POST", "/v1/api-keys", tok, map[string]any{"name": "x", "scopes": []string{"sdk:init"}}, 201},
				{"404 revoke", "POST", "/v1/api-keys/999999/revoke", tok, nil, 404},
				{"422 create", "POST", "/v1/api-keys", tok, map[string]any{"name": ""}, 422},
				{"422 query", "GET", "/v1/api-keys?per_page=1000", tok, nil, 422},
			}
			for i, c := range calls {
				r := e.do(c.method, c.path, c.token, c.body)
				if r.status != c.status {
					t.Fatalf("%s: %d %s", c.name, r.status, r.raw)
				}
				r.expectRateHeaders(t, 100, 100-i-1)
			}
			// 403 for a missing scope still spends (and shows) the caller's budget.
			r := e.do("GET", "/v1/api-keys", ro, nil)
			r.expectError(t, 403, "FORBIDDEN", "Insufficient scope.")
			r.expectRateHeaders(t, 1000, 999)
		})
		t.Run("limit shown on the key", func(t *testing.T) {
			r := e.do("POST", "/v1/api-keys", e.token("admin"), map[string]any{"name": "slow", "scopes": []string{"admin"}, "rate_limit": 7})
			if r.status != 201 || r.data()["rate_limit"] != float64(7) {
				t.Fatalf("create: %d %s", r.status, r.raw)
			}
			tok := e.exchange(r.data()["api_key"].(string), r.data()["api_secret"].(string))
			e.do("GET", "/v1/me", tok, nil).expectRateHeaders(t, 7, 6)
			items, _ := e.listKeys(tok)
			if it := findItem(items, int64(r.data()["id"].(float64))); it["rate_limit"] != float64(7) {
				t.Fatalf("listed rate_limit: %v", it)
			}
		})
	})
}
