package api_test

import (
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/auth"
)

func TestTokenExchange(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		k, secret := e.newKey(nil, auth.KeyInput{Scopes: []string{"reports:read"}})

		t.Run("success", func(t *testing.T) {
			r := e.do("POST", "/v1/auth/token", "", map[string]string{"api_key": k.Key, "api_secret": secret})
			if r.status != 200 || r.body["success"] != true || r.body["message"] != "Token issued successfully." {
				t.Fatalf("got %d %s", r.status, r.raw)
			}
			d := r.data()
			tok, _ := d["access_token"].(string)
			if len(tok) < 43 || d["token_type"] != "Bearer" || d["expires_in"] != float64(14400) {
				t.Fatalf("bad token data: %s", r.raw)
			}
			for _, c := range tok {
				if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
					t.Fatalf("token not alphanumeric: %q", tok)
				}
			}
			if sc, _ := d["scopes"].([]any); len(sc) != 1 || sc[0] != "reports:read" {
				t.Fatalf("scopes: %v", d["scopes"])
			}
		})
		t.Run("wrong secret", func(t *testing.T) {
			e.do("POST", "/v1/auth/token", "", map[string]string{"api_key": k.Key, "api_secret": "hs_secret_wrong"}).
				expectError(t, 401, "UNAUTHORIZED", "Invalid API credentials.")
		})
		t.Run("unknown key", func(t *testing.T) {
			e.do("POST", "/v1/auth/token", "", map[string]string{"api_key": "hs_key_nope", "api_secret": secret}).
				expectError(t, 401, "UNAUTHORIZED", "Invalid API credentials.")
		})
		t.Run("missing fields", func(t *testing.T) {
			r := e.do("POST", "/v1/auth/token", "", map[string]string{})
			r.expectError(t, 422, "VALIDATION_ERROR", "Validation failed")
			if got := r.details("api_key"); len(got) != 1 || got[0] != "The api key field is required." {
				t.Fatalf("api_key details: %v", got)
			}
		})
	})
}

func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		tok := e.token("reports:read")
		if r := e.do("GET", "/v1/me", tok, nil); r.status != 200 {
			t.Fatalf("me: %d %s", r.status, r.raw)
		}
		e.clock.Advance(4*time.Hour - time.Second)
		if r := e.do("GET", "/v1/me", tok, nil); r.status != 200 {
			t.Fatalf("me just before expiry: %d %s", r.status, r.raw)
		}
		e.clock.Advance(time.Second)
		e.do("GET", "/v1/me", tok, nil).expectError(t, 401, "UNAUTHORIZED", "")
	})
}
