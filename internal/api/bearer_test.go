package api_test

import (
	"context"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/auth"
	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// propagationBound is the documented bound for a change made on one node to stop
// tokens on every other node sharing the database.
const propagationBound = 5 * time.Second

// eachNodePair runs fn on every engine with two nodes (servers with their own
// caches, limiters and clocks) over one database.
func eachNodePair(t *testing.T, fn func(t *testing.T, a, b *env)) {
	t.Helper()
	for _, engine := range storetest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, engine)
			a := newEnvOn(t, engine, st)
			b := newEnvOn(t, engine, st)
			fn(t, a, b)
		})
	}
}

func TestBearerRejected(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		valid := e.token("reports:read")
		tests := []struct {
			name, authorization string
		}{
			{"missing header", ""},
			{"basic scheme", "Basic " + valid},
			{"token scheme", "Token " + valid},
			{"scheme without token", "Bearer"},
			{"scheme with blank token", "Bearer    "},
			{"no space after scheme", "Bearer" + valid},
			{"unknown token", "Bearer " + strings.Repeat("A", 64)},
			{"truncated token", "Bearer " + valid[:len(valid)-1]},
			{"token with a suffix", "Bearer " + valid + "x"},
			{"over-long token", "Bearer " + strings.Repeat("a", 300)},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				var h []string
				if tc.authorization != "" {
					h = []string{"Authorization", tc.authorization}
				}
				r := e.do("GET", "/v1/me", "", nil, h...)
				r.expectError(t, 401, "UNAUTHORIZED", "Invalid or missing access token.")
				if r.header.Get("X-RateLimit-Limit") != "" {
					t.Errorf("an unauthenticated request spent a key's budget: %v", r.header)
				}
			})
		}
		t.Run("valid token still works", func(t *testing.T) {
			if r := e.do("GET", "/v1/me", valid, nil); r.status != 200 {
				t.Fatalf("got %d %s", r.status, r.raw)
			}
		})
	})
}

// TestBearerExpiresWithKey: a token never outlives its key.
func TestBearerExpiresWithKey(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		exp := e.clock.Now().Add(30 * time.Minute)
		k, secret := e.newKey(nil, auth.KeyInput{Scopes: []string{"reports:read"}, ExpiresAt: &exp})
		tok := e.exchange(k.Key, secret)
		e.clock.Advance(30*time.Minute - time.Second)
		if r := e.do("GET", "/v1/me", tok, nil); r.status != 200 {
			t.Fatalf("before the key expires: %d %s", r.status, r.raw)
		}
		e.clock.Advance(time.Second)
		e.do("GET", "/v1/me", tok, nil).expectError(t, 401, "UNAUTHORIZED", "")
	})
}

// TestRevocationStopsLiveTokens: revoking a key stops its live tokens at once on
// the node that revoked it, and within 5 s on another node sharing the database.
func TestRevocationStopsLiveTokens(t *testing.T) {
	t.Parallel()
	eachNodePair(t, func(t *testing.T, a, b *env) {
		if b.auth.CacheTTL <= 0 || b.auth.CacheTTL > propagationBound {
			t.Fatalf("token cache TTL %v is outside (0, %v]", b.auth.CacheTTL, propagationBound)
		}
		admin := a.token("admin")
		k, secret := a.newKey(nil, auth.KeyInput{Scopes: []string{"reports:read"}})
		tok := a.exchange(k.Key, secret)
		other := a.token("reports:read") // another key of the same workspace
		for _, n := range []*env{a, b} {
			if r := n.do("GET", "/v1/me", tok, nil); r.status != 200 {
				t.Fatalf("before revocation: %d %s", r.status, r.raw)
			}
		}

		r := a.do("POST", "/v1/api-keys/"+strconv.FormatInt(k.ID, 10)+"/revoke", admin, nil)
		if r.status != 200 || r.data()["status"] != "revoked" || r.data()["revoked_at"] == nil {
			t.Fatalf("revoke: %d %s", r.status, r.raw)
		}

		// At once on the node that made the change.
		a.do("GET", "/v1/me", tok, nil).expectError(t, 401, "UNAUTHORIZED", "API key is inactive or expired.")
		// New exchanges are refused on every node at once: they read the database.
		b.do("POST", "/v1/auth/token", "", map[string]string{"api_key": k.Key, "api_secret": secret}).
			expectError(t, 401, "UNAUTHORIZED", "API key is inactive or expired.")
		// Within the bound on the other node.
		b.clock.Advance(propagationBound)
		b.do("GET", "/v1/me", tok, nil).expectError(t, 401, "UNAUTHORIZED", "API key is inactive or expired.")
		// Other keys are untouched.
		for _, n := range []*env{a, b} {
			if r := n.do("GET", "/v1/me", other, nil); r.status != 200 {
				t.Fatalf("another key's token after revocation: %d %s", r.status, r.raw)
			}
		}
	})
}

// TestDeactivationStopsLiveTokens: deactivating a workspace stops its live tokens
// at once on the node that made the change and within 5 s on the others;
// reactivating restores them.
func TestDeactivationStopsLiveTokens(t *testing.T) {
	t.Parallel()
	eachNodePair(t, func(t *testing.T, a, b *env) {
		ctx := context.Background()
		tok := a.token("reports:read")
		otherWS, err := a.auth.CreateWorkspace(ctx, "Unaffected", "basic")
		if err != nil {
			t.Fatal(err)
		}
		ok, okSecret := a.newKey(otherWS, auth.KeyInput{Scopes: []string{"reports:read"}})
		otherTok := a.exchange(ok.Key, okSecret)
		for _, n := range []*env{a, b} {
			if r := n.do("GET", "/v1/me", tok, nil); r.status != 200 {
				t.Fatalf("before deactivation: %d %s", r.status, r.raw)
			}
		}

		if err := a.auth.SetWorkspaceActive(ctx, a.ws.ID, false); err != nil {
			t.Fatal(err)
		}
		const msg = "The business associated with this API key is inactive."
		a.do("GET", "/v1/me", tok, nil).expectError(t, 403, "FORBIDDEN", msg)
		b.clock.Advance(propagationBound)
		b.do("GET", "/v1/me", tok, nil).expectError(t, 403, "FORBIDDEN", msg)
		for _, n := range []*env{a, b} {
			if r := n.do("GET", "/v1/me", otherTok, nil); r.status != 200 {
				t.Fatalf("another workspace's token after deactivation: %d %s", r.status, r.raw)
			}
		}

		if err := a.auth.SetWorkspaceActive(ctx, a.ws.ID, true); err != nil {
			t.Fatal(err)
		}
		if r := a.do("GET", "/v1/me", tok, nil); r.status != 200 {
			t.Fatalf("after reactivation on the same node: %d %s", r.status, r.raw)
		}
		b.clock.Advance(propagationBound)
		if r := b.do("GET", "/v1/me", tok, nil); r.status != 200 {
			t.Fatalf("after reactivation on the other node: %d %s", r.status, r.raw)
		}
	})
}

func TestMe(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		exp := time.Date(2027, 1, 2, 3, 4, 5, 678901000, time.UTC)
		tests := []struct {
			name      string
			in        auth.KeyInput
			scopes    []string
			expiresAt any
		}{
			{"no expiry", auth.KeyInput{Name: "server", Scopes: []string{"reports:read", "orders:write"}},
				[]string{"orders:write", "reports:read"}, nil},
			{"with expiry", auth.KeyInput{Name: "temporary", Scopes: []string{"payout-write"}, ExpiresAt: &exp},
				[]string{"payouts:read", "payouts:write"}, "2027-01-02T03:04:05.678901Z"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				k, secret := e.newKey(nil, tc.in)
				for _, path := range []string{"/v1/me", "/api/v1/me"} {
					r := e.do("GET", path, e.exchange(k.Key, secret), nil)
					if r.status != 200 || r.body["success"] != true {
						t.Fatalf("%s: %d %s", path, r.status, r.raw)
					}
					d := r.data()
					if keys := sortedKeys(d); !slices.Equal(keys, []string{"key", "plan", "workspace"}) {
						t.Fatalf("data fields %v: %s", keys, r.raw)
					}
					if d["workspace"] != e.ws.Name || d["plan"] != "basic" {
						t.Fatalf("workspace/plan: %s", r.raw)
					}
					key, _ := d["key"].(map[string]any)
					if keys := sortedKeys(key); !slices.Equal(keys, []string{"expires_at", "id", "name", "scopes"}) {
						t.Fatalf("key fields %v: %s", keys, r.raw)
					}
					if key["id"] != float64(k.ID) || key["name"] != tc.in.Name || key["expires_at"] != tc.expiresAt ||
						!slices.Equal(strs(key["scopes"]), tc.scopes) {
						t.Fatalf("key: %s", r.raw)
					}
					if strings.Contains(r.raw, secret) || strings.Contains(r.raw, k.Key) {
						t.Fatalf("/v1/me shows a credential: %s", r.raw)
					}
				}
			})
		}
	})
}

// TestScopes: a token lacking a route's scope gets 403 "Insufficient scope." on
// every route that declares one; admin passes everywhere.
func TestScopes(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		// One token per scope set: the token endpoint allows 120 exchanges a
		// minute per IP, and there are more routes than that.
		// Paths get id 1: make key 1 a bystander, so revoking or rotating it
		// does not disable the tokens this test uses.
		e.newKey(nil, auth.KeyInput{Name: "bystander", Scopes: []string{"reports:read"}})
		tokens := map[string]string{}
		tokenFor := func(scopes ...string) string {
			k := strings.Join(scopes, ",")
			if tokens[k] == "" {
				tokens[k] = e.token(scopes...)
			}
			return tokens[k]
		}
		n := 0
		for _, rt := range e.server.Routes() {
			if !slices.Contains(heldsway.AllScopes, rt.Scope) {
				continue // public, or any valid token
			}
			n++
			t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
				// A key with every scope but the one required (and but admin).
				var others []string
				for _, s := range heldsway.AllScopes {
					if s != rt.Scope && s != heldsway.ScopeAdmin {
						others = append(others, s)
					}
				}
				path := pathParam.ReplaceAllString(rt.Path, "1")
				e.do(rt.Method, path, tokenFor(others...), nil).expectError(t, 403, "FORBIDDEN", "Insufficient scope.")
				if r := e.do(rt.Method, path, tokenFor("admin"), nil); r.status == 403 || r.status == 401 {
					t.Fatalf("admin refused: %d %s", r.status, r.raw)
				}
			})
		}
		if n == 0 {
			t.Fatal("no route declares a scope")
		}
		t.Run("the right scope passes", func(t *testing.T) {
			// /v1/api-keys requires admin; admin is both a preset and a scope.
			if r := e.do("GET", "/v1/api-keys", e.token("admin"), nil); r.status != 200 {
				t.Fatalf("admin listing keys: %d %s", r.status, r.raw)
			}
			e.do("GET", "/v1/api-keys", e.token("read-only", "payout-write", "conversion-write"), nil).
				expectError(t, 403, "FORBIDDEN", "Insufficient scope.")
		})
		t.Run("any valid token reads /v1/me", func(t *testing.T) {
			if r := e.do("GET", "/v1/me", e.token("sdk:init"), nil); r.status != 200 {
				t.Fatalf("%d %s", r.status, r.raw)
			}
		})
	})
}

// TestScopePresets: presets expand to namespaced scopes, in the key, the token
// and /v1/me alike.
func TestScopePresets(t *testing.T) {
	t.Parallel()
	var reads []string
	for _, s := range heldsway.AllScopes {
		if strings.HasSuffix(s, ":read") {
			reads = append(reads, s)
		}
	}
	all := slices.Sorted(slices.Values(heldsway.AllScopes))
	tests := []struct {
		name      string
		requested []string
		want      []string
	}{
		{"read-only is every read scope", []string{"read-only"}, sortedCopy(reads)},
		{"conversion-write", []string{"conversion-write"}, []string{"clicks:write", "conversions:write", "pageviews:write"}},
		{"payout-write", []string{"payout-write"}, []string{"payouts:read", "payouts:write"}},
		{"admin is every scope", []string{"admin"}, all},
		{"preset plus scope, de-duplicated", []string{"payout-write", "payouts:read", "orders:write"},
			[]string{"orders:write", "payouts:read", "payouts:write"}},
		{"namespaced scope alone", []string{"webhooks:write"}, []string{"webhooks:write"}},
	}
	eachEnv(t, func(t *testing.T, e *env) {
		admin := e.token("admin")
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := e.do("POST", "/v1/api-keys", admin, map[string]any{"name": tc.name, "scopes": tc.requested})
				if r.status != 201 {
					t.Fatalf("create: %d %s", r.status, r.raw)
				}
				if got := strs(r.data()["scopes"]); !slices.Equal(got, tc.want) {
					t.Fatalf("key scopes %v, want %v", got, tc.want)
				}
				tr := e.do("POST", "/v1/auth/token", "", map[string]any{
					"api_key": r.data()["api_key"], "api_secret": r.data()["api_secret"]})
				if got := strs(tr.data()["scopes"]); tr.status != 200 || !slices.Equal(got, tc.want) {
					t.Fatalf("token scopes %v, want %v (%s)", got, tc.want, tr.raw)
				}
				me := e.do("GET", "/v1/me", tr.data()["access_token"].(string), nil)
				key, _ := me.data()["key"].(map[string]any)
				if got := strs(key["scopes"]); !slices.Equal(got, tc.want) {
					t.Fatalf("/v1/me scopes %v, want %v", got, tc.want)
				}
			})
		}
		t.Run("read-only grants no write", func(t *testing.T) {
			for _, s := range heldsway.ScopePresets["read-only"] {
				if !strings.HasSuffix(s, ":read") {
					t.Errorf("read-only grants %s", s)
				}
			}
		})
	})
}

// pathParam matches a path parameter such as {id}.
var pathParam = regexp.MustCompile(`\{[^}]+\}`)

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedCopy(l []string) []string {
	out := slices.Clone(l)
	sort.Strings(out)
	return out
}

// strs turns a decoded JSON array into strings.
func strs(v any) []string {
	l, _ := v.([]any)
	out := []string{}
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
