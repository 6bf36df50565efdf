package api_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/auth"
	"github.com/heldsway/heldsway/internal/heldsway"
)

// maskedKey is how a listed key looks: prefix, eight stars, last four characters.
var maskedKey = regexp.MustCompile(`^(hs_key_|as_)\*{8}[A-Za-z0-9]{4}$`)

// listKeys fetches every key of the token's workspace, following cursors.
func (e *env) listKeys(token string) (items []map[string]any, raw string) {
	e.t.Helper()
	cursor := ""
	for page := 0; page < 100; page++ {
		path := "/v1/api-keys?per_page=100"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := e.do("GET", path, token, nil)
		if r.status != 200 {
			e.t.Fatalf("list keys: %d %s", r.status, r.raw)
		}
		raw += r.raw
		for _, it := range r.data()["items"].([]any) {
			items = append(items, it.(map[string]any))
		}
		meta := r.data()["meta"].(map[string]any)
		if meta["has_more"] != true {
			return items, raw
		}
		cursor = meta["next_cursor"].(string)
	}
	e.t.Fatal("list keys: too many pages")
	return nil, ""
}

func findItem(items []map[string]any, id int64) map[string]any {
	for _, it := range items {
		if it["id"] == float64(id) {
			return it
		}
	}
	return nil
}

func TestAPIKeyList(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		admin := e.token("admin")
		type cred struct {
			k      *heldsway.APIKey
			secret string
		}
		var creds []cred
		for i := 0; i < 4; i++ {
			k, s := e.newKey(nil, auth.KeyInput{Name: fmt.Sprintf("key %d", i), Scopes: []string{"read-only"}})
			creds = append(creds, cred{k, s})
		}
		pub, _ := e.newKey(nil, auth.KeyInput{Name: "browser", Scopes: []string{"sdk:init"}, Kind: heldsway.KeyKindPublishable,
			AllowedOrigins: []string{"https://shop.example"}})
		otherWS, err := e.auth.CreateWorkspace(ctx, "Someone else", "basic")
		if err != nil {
			t.Fatal(err)
		}
		foreign, _ := e.newKey(otherWS, auth.KeyInput{Scopes: []string{"admin"}})

		items, raw := e.listKeys(admin)
		t.Run("masked, never a secret", func(t *testing.T) {
			for _, c := range creds {
				if strings.Contains(raw, c.k.Key) || strings.Contains(raw, c.secret) {
					t.Fatalf("list shows a full key or secret: %s", raw)
				}
			}
			if strings.Contains(raw, pub.Key) || strings.Contains(raw, "hs_secret_") || strings.Contains(raw, "api_secret") {
				t.Fatalf("list shows a credential: %s", raw)
			}
			for _, it := range items {
				key, _ := it["key"].(string)
				if !maskedKey.MatchString(key) {
					t.Errorf("key %q is not masked", key)
				}
			}
			it := findItem(items, creds[0].k.ID)
			if it == nil || it["key"] != "hs_key_********"+creds[0].k.Key[len(creds[0].k.Key)-4:] {
				t.Fatalf("masked key of %d: %v", creds[0].k.ID, it)
			}
			if it := findItem(items, pub.ID); it == nil || it["kind"] != "publishable" || !strings.HasPrefix(it["key"].(string), "as_") ||
				!slices.Equal(strs(it["allowed_origins"]), []string{"https://shop.example"}) {
				t.Fatalf("publishable key: %v", it)
			}
		})
		t.Run("fields", func(t *testing.T) {
			it := findItem(items, creds[1].k.ID)
			want := []string{"allowed_origins", "created_at", "expires_at", "id", "key", "kind", "last_used_at",
				"name", "previous_secret_expires_at", "rate_limit", "revoked_at", "scopes", "status"}
			if got := sortedKeys(it); !slices.Equal(got, want) {
				t.Fatalf("fields %v, want %v", got, want)
			}
			if it["name"] != "key 1" || it["status"] != "active" || it["rate_limit"] != float64(1000) ||
				it["created_at"] != "2026-11-01T12:00:00.000000Z" || it["last_used_at"] != nil {
				t.Fatalf("item: %v", it)
			}
		})
		t.Run("tenant isolation", func(t *testing.T) {
			if findItem(items, foreign.ID) != nil {
				t.Fatalf("another workspace's key %d is listed", foreign.ID)
			}
			// 4 keys, the publishable one and the admin key behind the token.
			if len(items) != 6 {
				t.Fatalf("listed %d keys, want 6", len(items))
			}
		})
		t.Run("paging", func(t *testing.T) {
			var ids []float64
			cursor, pages := "", 0
			for {
				path := "/v1/api-keys?per_page=2"
				if cursor != "" {
					path += "&cursor=" + cursor
				}
				r := e.do("GET", path, admin, nil)
				if r.status != 200 {
					t.Fatalf("page %d: %d %s", pages, r.status, r.raw)
				}
				pages++
				page := r.data()["items"].([]any)
				meta := r.data()["meta"].(map[string]any)
				if meta["per_page"] != float64(2) || len(page) > 2 {
					t.Fatalf("page %d: %s", pages, r.raw)
				}
				for _, it := range page {
					ids = append(ids, it.(map[string]any)["id"].(float64))
				}
				if meta["has_more"] != true {
					if _, ok := meta["next_cursor"]; ok {
						t.Fatalf("last page has a next_cursor: %s", r.raw)
					}
					break
				}
				cursor = meta["next_cursor"].(string)
			}
			if pages != 3 || len(ids) != 6 || !slices.IsSortedFunc(ids, func(a, b float64) int { return int(b - a) }) {
				t.Fatalf("paged ids %v over %d pages; want 6 ids newest first over 3 pages", ids, pages)
			}
		})
		t.Run("bad paging input", func(t *testing.T) {
			for _, q := range []string{"per_page=0", "per_page=101", "per_page=x", "cursor=garbage"} {
				e.do("GET", "/v1/api-keys?"+q, admin, nil).expectError(t, 422, "VALIDATION_ERROR", "Validation failed")
			}
		})
	})
}

func TestAPIKeyLastUsed(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		admin := e.token("admin")
		k, secret := e.newKey(nil, auth.KeyInput{Scopes: []string{"reports:read"}})
		lastUsed := func() any {
			t.Helper()
			if err := e.auth.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			items, _ := e.listKeys(admin)
			return findItem(items, k.ID)["last_used_at"]
		}
		if got := lastUsed(); got != nil {
			t.Fatalf("unused key has last_used_at %v", got)
		}
		e.clock.Advance(time.Minute)
		tok := e.exchange(k.Key, secret)
		if got := lastUsed(); got != "2026-11-01T12:01:00.000000Z" {
			t.Fatalf("after the exchange: last_used_at %v", got)
		}
		e.clock.Advance(time.Minute)
		if r := e.do("GET", "/v1/me", tok, nil); r.status != 200 {
			t.Fatal(r.raw)
		}
		if got := lastUsed(); got != "2026-11-01T12:02:00.000000Z" {
			t.Fatalf("after a call: last_used_at %v", got)
		}
	})
}

func TestAPIKeyCreate(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		admin := e.token("admin")

		t.Run("secret shown once", func(t *testing.T) {
			r := e.do("POST", "/v1/api-keys", admin, map[string]any{"name": "  Server  ", "scopes": []string{"read-only"},
				"rate_limit": 50, "expires_at": "2027-06-01T00:00:00Z"})
			if r.status != 201 || r.body["success"] != true ||
				r.body["message"] != "API key created. Store the secret now: it is not shown again." {
				t.Fatalf("create: %d %s", r.status, r.raw)
			}
			d := r.data()
			key, _ := d["api_key"].(string)
			secret, _ := d["api_secret"].(string)
			if !regexp.MustCompile(`^hs_key_[A-Za-z0-9]{24}$`).MatchString(key) ||
				!regexp.MustCompile(`^hs_secret_[A-Za-z0-9]{48}$`).MatchString(secret) {
				t.Fatalf("credentials: %q %q", key, secret)
			}
			if d["key"] != "hs_key_********"+key[len(key)-4:] || d["name"] != "Server" || d["rate_limit"] != float64(50) ||
				d["expires_at"] != "2027-06-01T00:00:00.000000Z" || d["status"] != "active" || d["kind"] != "secret" {
				t.Fatalf("created key: %s", r.raw)
			}
			// The secret works, and nothing shows it again.
			tok := e.exchange(key, secret)
			if r := e.do("GET", "/v1/me", tok, nil); r.status != 200 {
				t.Fatalf("me with the new key: %d %s", r.status, r.raw)
			}
			if _, raw := e.listKeys(admin); strings.Contains(raw, secret) || strings.Contains(raw, key) {
				t.Fatalf("the list shows the new key's credentials")
			}
			// The stored form is a digest, not the secret.
			k, _, err := e.store.FindAPIKeyByKey(context.Background(), key)
			if err != nil || string(k.SecretHash) == secret || len(k.SecretHash) != 32 {
				t.Fatalf("stored secret: %v", err)
			}
		})
		t.Run("publishable key has no secret", func(t *testing.T) {
			r := e.do("POST", "/v1/api-keys", admin, map[string]any{"name": "browser", "scopes": []string{"sdk:init"},
				"kind": "publishable", "allowed_origins": []string{"https://shop.example"}})
			if r.status != 201 || !strings.HasPrefix(r.data()["api_key"].(string), "as_") {
				t.Fatalf("create publishable: %d %s", r.status, r.raw)
			}
			if _, ok := r.data()["api_secret"]; ok {
				t.Fatalf("publishable key with a secret: %s", r.raw)
			}
		})

		before, _ := e.listKeys(admin)
		tests := []struct {
			name  string
			body  any
			field string // the field that must carry a message
		}{
			{"unknown scope", map[string]any{"name": "x", "scopes": []string{"everything"}}, "scopes.0"},
			{"one bad scope among good ones", map[string]any{"name": "x", "scopes": []string{"orders:read", "orders:delete"}}, "scopes.1"},
			{"no scopes", map[string]any{"name": "x", "scopes": []string{}}, "scopes"},
			{"missing scopes", map[string]any{"name": "x"}, "scopes"},
			{"scopes not a list", map[string]any{"name": "x", "scopes": "admin"}, "scopes"},
			{"empty name", map[string]any{"name": "", "scopes": []string{"admin"}}, "name"},
			{"blank name", map[string]any{"name": "   ", "scopes": []string{"admin"}}, "name"},
			{"missing name", map[string]any{"scopes": []string{"admin"}}, "name"},
			{"over-long name", map[string]any{"name": strings.Repeat("n", 101), "scopes": []string{"admin"}}, "name"},
			{"expires_at in the past", map[string]any{"name": "x", "scopes": []string{"admin"},
				"expires_at": "2026-10-31T12:00:00Z"}, "expires_at"},
			{"expires_at now", map[string]any{"name": "x", "scopes": []string{"admin"},
				"expires_at": "2026-11-01T12:00:00Z"}, "expires_at"},
			{"expires_at not a time", map[string]any{"name": "x", "scopes": []string{"admin"}, "expires_at": "tomorrow"}, "expires_at"},
			{"rate_limit zero", map[string]any{"name": "x", "scopes": []string{"admin"}, "rate_limit": 0}, "rate_limit"},
			{"rate_limit negative", map[string]any{"name": "x", "scopes": []string{"admin"}, "rate_limit": -5}, "rate_limit"},
			{"rate_limit too high", map[string]any{"name": "x", "scopes": []string{"admin"}, "rate_limit": 1000001}, "rate_limit"},
			{"rate_limit not an integer", map[string]any{"name": "x", "scopes": []string{"admin"}, "rate_limit": 1.5}, "rate_limit"},
			{"rate_limit a string", map[string]any{"name": "x", "scopes": []string{"admin"}, "rate_limit": "10"}, "rate_limit"},
			{"unknown kind", map[string]any{"name": "x", "scopes": []string{"admin"}, "kind": "root"}, "kind"},
			{"unknown field", map[string]any{"name": "x", "scopes": []string{"admin"}, "secret": "mine"}, "secret"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := e.do("POST", "/v1/api-keys", admin, tc.body)
				r.expectError(t, 422, "VALIDATION_ERROR", "Validation failed")
				if got := r.details(tc.field); len(got) == 0 || got[0] == "" {
					t.Fatalf("no details for %s: %s", tc.field, r.raw)
				}
			})
		}
		t.Run("nothing written", func(t *testing.T) {
			after, _ := e.listKeys(admin)
			if len(after) != len(before) {
				t.Fatalf("%d keys before the invalid requests, %d after", len(before), len(after))
			}
		})
		t.Run("field messages", func(t *testing.T) {
			r := e.do("POST", "/v1/api-keys", admin, map[string]any{"name": " ", "scopes": []string{"admin"},
				"expires_at": "2020-01-01T00:00:00Z"})
			if got := r.details("name"); !slices.Equal(got, []string{"The name field is required."}) {
				t.Errorf("name: %q (%s)", got, r.raw)
			}
			if got := r.details("expires_at"); !slices.Equal(got, []string{"The expires at field must be a date in the future."}) {
				t.Errorf("expires_at: %q (%s)", got, r.raw)
			}
			r = e.do("POST", "/v1/api-keys", admin, map[string]any{"name": "x", "scopes": []string{"admin"}, "rate_limit": 0})
			if got := r.details("rate_limit"); !slices.Equal(got, []string{"The rate limit field must be at least 1."}) {
				t.Errorf("rate_limit: %q (%s)", got, r.raw)
			}
		})
	})
}

func TestAPIKeyRevoke(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		admin := e.token("admin")
		k, secret := e.newKey(nil, auth.KeyInput{Scopes: []string{"reports:read"}})
		otherWS, err := e.auth.CreateWorkspace(ctx, "Someone else", "basic")
		if err != nil {
			t.Fatal(err)
		}
		foreign, foreignSecret := e.newKey(otherWS, auth.KeyInput{Scopes: []string{"admin"}})

		t.Run("another workspace's key is not found", func(t *testing.T) {
			for _, action := range []string{"revoke", "rotate"} {
				e.do("POST", fmt.Sprintf("/v1/api-keys/%d/%s", foreign.ID, action), admin, nil).
					expectError(t, 404, "NOT_FOUND", "API key not found.")
			}
			// And it keeps working, with its secret unchanged.
			e.exchange(foreign.Key, foreignSecret)
		})
		t.Run("unknown and malformed ids", func(t *testing.T) {
			e.do("POST", "/v1/api-keys/999999/revoke", admin, nil).expectError(t, 404, "NOT_FOUND", "")
			for _, id := range []string{"0", "-1", "abc"} {
				e.do("POST", "/v1/api-keys/"+id+"/revoke", admin, nil).expectError(t, 422, "VALIDATION_ERROR", "")
			}
		})
		t.Run("revoke", func(t *testing.T) {
			r := e.do("POST", fmt.Sprintf("/v1/api-keys/%d/revoke", k.ID), admin, nil)
			if r.status != 200 || r.body["message"] != "API key revoked." || r.data()["status"] != "revoked" ||
				r.data()["revoked_at"] != "2026-11-01T12:00:00.000000Z" {
				t.Fatalf("revoke: %d %s", r.status, r.raw)
			}
			e.do("POST", "/v1/auth/token", "", map[string]string{"api_key": k.Key, "api_secret": secret}).
				expectError(t, 401, "UNAUTHORIZED", "API key is inactive or expired.")
			// Revoking again is harmless and keeps the first time.
			e.clock.Advance(time.Minute)
			r = e.do("POST", fmt.Sprintf("/v1/api-keys/%d/revoke", k.ID), admin, nil)
			if r.status != 200 || r.data()["revoked_at"] != "2026-11-01T12:00:00.000000Z" {
				t.Fatalf("second revoke: %d %s", r.status, r.raw)
			}
			// A revoked key cannot be rotated back to life.
			e.do("POST", fmt.Sprintf("/v1/api-keys/%d/rotate", k.ID), admin, nil).expectError(t, 409, "CONFLICT", "")
		})
		t.Run("a key can revoke itself", func(t *testing.T) {
			self, selfSecret := e.newKey(nil, auth.KeyInput{Scopes: []string{"admin"}})
			tok := e.exchange(self.Key, selfSecret)
			if r := e.do("POST", fmt.Sprintf("/v1/api-keys/%d/revoke", self.ID), tok, nil); r.status != 200 {
				t.Fatalf("self revoke: %d %s", r.status, r.raw)
			}
			e.do("GET", "/v1/api-keys", tok, nil).expectError(t, 401, "UNAUTHORIZED", "")
		})
	})
}

func TestAPIKeyRotate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		body  any // nil: no body
		grace time.Duration
	}{
		{"default grace", nil, 24 * time.Hour},
		{"empty body", map[string]any{}, 24 * time.Hour},
		{"custom grace", map[string]any{"grace_period_seconds": 90}, 90 * time.Second},
		{"maximum grace", map[string]any{"grace_period_seconds": 604800}, 7 * 24 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			eachEnv(t, func(t *testing.T, e *env) {
				k, oldSecret := e.newKey(nil, auth.KeyInput{Scopes: []string{"reports:read"}})
				admin := e.token("admin")
				start := e.clock.Now()
				r := e.do("POST", fmt.Sprintf("/v1/api-keys/%d/rotate", k.ID), admin, tc.body)
				if r.status != 200 || r.body["message"] != "API key rotated. Store the new secret now: it is not shown again." {
					t.Fatalf("rotate: %d %s", r.status, r.raw)
				}
				newSecret, _ := r.data()["api_secret"].(string)
				if !strings.HasPrefix(newSecret, "hs_secret_") || newSecret == oldSecret || r.data()["api_key"] != k.Key {
					t.Fatalf("rotate returned %s", r.raw)
				}
				wantPrev := start.Add(tc.grace).UTC().Format("2006-01-02T15:04:05.000000Z")
				if r.data()["previous_secret_expires_at"] != wantPrev {
					t.Fatalf("previous_secret_expires_at %v, want %s", r.data()["previous_secret_expires_at"], wantPrev)
				}

				e.exchange(k.Key, newSecret)
				e.exchange(k.Key, oldSecret)
				e.clock.Advance(tc.grace - time.Second)
				e.exchange(k.Key, oldSecret) // still inside the grace period
				e.clock.Advance(time.Second)
				e.do("POST", "/v1/auth/token", "", map[string]string{"api_key": k.Key, "api_secret": oldSecret}).
					expectError(t, 401, "UNAUTHORIZED", "Invalid API credentials.")
				e.exchange(k.Key, newSecret)

				// After the grace period the list no longer advertises it.
				items, _ := e.listKeys(e.token("admin"))
				if it := findItem(items, k.ID); it["previous_secret_expires_at"] != nil {
					t.Fatalf("expired grace still listed: %v", it)
				}
			})
		})
	}
	t.Run("zero grace stops the old secret at once", func(t *testing.T) {
		t.Parallel()
		eachEnv(t, func(t *testing.T, e *env) {
			k, oldSecret := e.newKey(nil, auth.KeyInput{Scopes: []string{"reports:read"}})
			r := e.do("POST", fmt.Sprintf("/v1/api-keys/%d/rotate", k.ID), e.token("admin"), map[string]any{"grace_period_seconds": 0})
			if r.status != 200 {
				t.Fatalf("rotate: %d %s", r.status, r.raw)
			}
			e.do("POST", "/v1/auth/token", "", map[string]string{"api_key": k.Key, "api_secret": oldSecret}).
				expectError(t, 401, "UNAUTHORIZED", "Invalid API credentials.")
			e.exchange(k.Key, r.data()["api_secret"].(string))
		})
	})
	t.Run("second rotation ends the first grace", func(t *testing.T) {
		t.Parallel()
		eachEnv(t, func(t *testing.T, e *env) {
			k, first := e.newKey(nil, auth.KeyInput{Scopes: []string{"reports:read"}})
			admin := e.token("admin")
			path := fmt.Sprintf("/v1/api-keys/%d/rotate", k.ID)
			second := e.do("POST", path, admin, nil).data()["api_secret"].(string)
			third := e.do("POST", path, admin, nil).data()["api_secret"].(string)
			e.do("POST", "/v1/auth/token", "", map[string]string{"api_key": k.Key, "api_secret": first}).
				expectError(t, 401, "UNAUTHORIZED", "Invalid API credentials.")
			e.exchange(k.Key, second)
			e.exchange(k.Key, third)
		})
	})
	t.Run("bad grace", func(t *testing.T) {
		t.Parallel()
		eachEnv(t, func(t *testing.T, e *env) {
			k, secret := e.newKey(nil, auth.KeyInput{Scopes: []string{"reports:read"}})
			admin := e.token("admin")
			for _, body := range []any{
				map[string]any{"grace_period_seconds": -1},
				map[string]any{"grace_period_seconds": 604801},
				map[string]any{"grace_period_seconds": "1h"},
				map[string]any{"grace": 60},
			} {
				r := e.do("POST", fmt.Sprintf("/v1/api-keys/%d/rotate", k.ID), admin, body)
				r.expectError(t, 422, "VALIDATION_ERROR", "Validation failed")
			}
			// Nothing rotated: the original secret is the only one and still works.
			got, _, err := e.store.FindAPIKeyByKey(context.Background(), k.Key)
			if err != nil || got.PrevSecretHash != nil {
				t.Fatalf("key rotated by an invalid request: %+v %v", got, err)
			}
			e.exchange(k.Key, secret)
		})
	})
}
