package api_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/auth"
	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// TestTokenExchangeErrors covers every documented failure of POST /v1/auth/token:
// status, code and exact message.
func TestTokenExchangeErrors(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		active, activeSecret := e.newKey(nil, auth.KeyInput{Scopes: []string{"read-only"}})
		revoked, revokedSecret := e.newKey(nil, auth.KeyInput{Scopes: []string{"read-only"}})
		if err := e.auth.RevokeKey(ctx, e.ws.ID, revoked.ID); err != nil {
			t.Fatal(err)
		}
		exp := e.clock.Now().Add(time.Hour)
		expiring, expiringSecret := e.newKey(nil, auth.KeyInput{Scopes: []string{"read-only"}, ExpiresAt: &exp})
		publishable, _ := e.newKey(nil, auth.KeyInput{Scopes: []string{"read-only"}, Kind: heldsway.KeyKindPublishable})
		inactiveWS, err := e.auth.CreateWorkspace(ctx, "Closed business", "basic")
		if err != nil {
			t.Fatal(err)
		}
		inactive, inactiveSecret := e.newKey(inactiveWS, auth.KeyInput{Scopes: []string{"read-only"}})
		if err := e.auth.SetWorkspaceActive(ctx, inactiveWS.ID, false); err != nil {
			t.Fatal(err)
		}

		const (
			invalid  = "Invalid API credentials."
			inactKey = "API key is inactive or expired."
			inactWS  = "The business associated with this API key is inactive."
		)
		tests := []struct {
			name, key, secret string
			status            int
			code, message     string
		}{
			{"unknown key", "hs_key_doesnotexist", activeSecret, 401, "UNAUTHORIZED", invalid},
			{"wrong secret", active.Key, "hs_secret_wrong", 401, "UNAUTHORIZED", invalid},
			{"another key's secret", active.Key, revokedSecret, 401, "UNAUTHORIZED", invalid},
			{"publishable key", publishable.Key, "hs_secret_anything", 401, "UNAUTHORIZED", invalid},
			{"revoked key", revoked.Key, revokedSecret, 401, "UNAUTHORIZED", inactKey},
			// A wrong secret for a revoked key must not reveal that the key exists.
			{"revoked key, wrong secret", revoked.Key, "hs_secret_wrong", 401, "UNAUTHORIZED", invalid},
			{"deactivated workspace", inactive.Key, inactiveSecret, 403, "FORBIDDEN", inactWS},
			{"deactivated workspace, wrong secret", inactive.Key, "hs_secret_wrong", 401, "UNAUTHORIZED", invalid},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				e.do("POST", "/v1/auth/token", "", map[string]string{"api_key": tc.key, "api_secret": tc.secret}).
					expectError(t, tc.status, tc.code, tc.message)
			})
		}

		t.Run("expired key", func(t *testing.T) {
			// Before expiry the token is cut short to the key's expiry.
			r := e.do("POST", "/v1/auth/token", "", map[string]string{"api_key": expiring.Key, "api_secret": expiringSecret})
			if r.status != 200 || r.data()["expires_in"] != float64(3600) {
				t.Fatalf("before expiry: want 200 with expires_in 3600, got %d %s", r.status, r.raw)
			}
			e.clock.Advance(time.Hour)
			e.do("POST", "/v1/auth/token", "", map[string]string{"api_key": expiring.Key, "api_secret": expiringSecret}).
				expectError(t, 401, "UNAUTHORIZED", inactKey)
		})
		t.Run("reactivated workspace", func(t *testing.T) {
			if err := e.auth.SetWorkspaceActive(ctx, inactiveWS.ID, true); err != nil {
				t.Fatal(err)
			}
			e.exchange(inactive.Key, inactiveSecret)
		})
	})
}

// TestTokenExchangeValidation covers 422 VALIDATION_ERROR with details per field.
func TestTokenExchangeValidation(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		k, secret := e.newKey(nil, auth.KeyInput{Scopes: []string{"read-only"}})
		tests := []struct {
			name    string
			body    any // string bodies are sent raw
			headers []string
			details map[string][]string // field → exact messages (nil: any message)
		}{
			{"missing both", map[string]string{}, nil, map[string][]string{
				"api_key":    {"The api key field is required."},
				"api_secret": {"The api secret field is required."}}},
			{"missing secret", map[string]string{"api_key": k.Key}, nil, map[string][]string{
				"api_secret": {"The api secret field is required."}}},
			{"empty strings", map[string]string{"api_key": "", "api_secret": ""}, nil, map[string][]string{
				"api_key":    {"The api key field is required."},
				"api_secret": {"The api secret field is required."}}},
			{"over-long api_key", map[string]string{"api_key": strings.Repeat("k", 65), "api_secret": secret}, nil,
				map[string][]string{"api_key": {"The api key field must not be greater than 64 characters."}}},
			{"over-long api_secret", map[string]string{"api_key": k.Key, "api_secret": strings.Repeat("s", 129)}, nil,
				map[string][]string{"api_secret": {"The api secret field must not be greater than 128 characters."}}},
			{"wrong types", `{"api_key":123,"api_secret":["x"]}`, nil, map[string][]string{
				"api_key":    {"The api key field must be a string."},
				"api_secret": {"The api secret field must be a string."}}},
			{"unknown field", map[string]string{"api_key": k.Key, "api_secret": secret, "grant_type": "x"}, nil,
				map[string][]string{"grant_type": {"The grant type field is not allowed."}}},
			{"malformed JSON", `{"api_key": "x", `, nil, map[string][]string{
				"body": {"The request body must be valid JSON."}}},
			{"JSON array body", `[1,2]`, nil, map[string][]string{"body": {"The body field must be an object."}}},
			{"non-JSON content type", "api_key=" + k.Key + "&api_secret=" + secret,
				[]string{"Content-Type", "application/x-www-form-urlencoded"},
				map[string][]string{"body": {"The request body must be JSON (Content-Type: application/json)."}}},
			// The message is huma's generic one; only the field is pinned.
			{"empty body", "", nil, map[string][]string{"body": nil}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := e.do("POST", "/v1/auth/token", "", tc.body, tc.headers...)
				r.expectError(t, 422, "VALIDATION_ERROR", "Validation failed")
				for field, want := range tc.details {
					got := r.details(field)
					if want == nil && len(got) == 0 {
						t.Errorf("no details for %s: %s", field, r.raw)
					} else if want != nil && strings.Join(got, "|") != strings.Join(want, "|") {
						t.Errorf("details[%s] = %q, want %q (body %s)", field, got, want, r.raw)
					}
				}
				if n := len(r.body["error"].(map[string]any)["details"].(map[string]any)); n != len(tc.details) {
					t.Errorf("want details for %d fields, got %s", len(tc.details), r.raw)
				}
				if strings.Contains(r.raw, secret) {
					t.Errorf("response echoes the secret: %s", r.raw)
				}
			})
		}
	})
}

// TestTokenExchangeAPIv1 checks the documented alternate prefix.
func TestTokenExchangeAPIv1(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		k, secret := e.newKey(nil, auth.KeyInput{Scopes: []string{"reports:read"}})
		r := e.do("POST", "/api/v1/auth/token", "", map[string]string{"api_key": k.Key, "api_secret": secret})
		if r.status != 200 || r.body["message"] != "Token issued successfully." || r.data()["token_type"] != "Bearer" {
			t.Fatalf("got %d %s", r.status, r.raw)
		}
		tok := r.data()["access_token"].(string)
		for _, path := range []string{"/v1/me", "/api/v1/me"} {
			if r := e.do("GET", path, tok, nil); r.status != 200 {
				t.Fatalf("%s with a token from /api/v1: %d %s", path, r.status, r.raw)
			}
		}
		e.do("POST", "/api/v1/auth/token", "", map[string]string{"api_key": k.Key, "api_secret": "hs_secret_wrong"}).
			expectError(t, 401, "UNAUTHORIZED", "Invalid API credentials.")
		e.do("POST", "/api/v1/auth/token", "", map[string]string{}).expectError(t, 422, "VALIDATION_ERROR", "Validation failed")
	})
}

// TestTokenExchangeIPLimit: 120 exchanges per minute per client IP, then 429 with
// Retry-After. The budget is shared by /v1 and /api/v1.
func TestTokenExchangeIPLimit(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		k, secret := e.newKey(nil, auth.KeyInput{Scopes: []string{"reports:read"}})
		body := map[string]string{"api_key": k.Key, "api_secret": "hs_secret_wrong"}
		for i := 1; i <= 120; i++ {
			path := "/v1/auth/token"
			if i%2 == 0 {
				path = "/api/v1/auth/token"
			}
			r := e.do("POST", path, "", body)
			if r.status != 401 {
				t.Fatalf("request %d: want 401, got %d %s", i, r.status, r.raw)
			}
			if r.header.Get("X-RateLimit-Limit") != "120" || r.header.Get("X-RateLimit-Remaining") != strconv.Itoa(120-i) {
				t.Fatalf("request %d: rate headers %v", i, r.header)
			}
		}
		// Even correct credentials are refused once the budget is spent.
		r := e.do("POST", "/v1/auth/token", "", map[string]string{"api_key": k.Key, "api_secret": secret})
		r.expectError(t, 429, "RATE_LIMITED", "")
		ra, err := strconv.Atoi(r.header.Get("Retry-After"))
		if err != nil || ra < 1 || ra > 60 {
			t.Fatalf("Retry-After = %q, want 1..60 seconds", r.header.Get("Retry-After"))
		}
		if r.header.Get("X-RateLimit-Remaining") != "0" {
			t.Fatalf("X-RateLimit-Remaining = %q on 429", r.header.Get("X-RateLimit-Remaining"))
		}
		e.do("POST", "/api/v1/auth/token", "", body).expectError(t, 429, "RATE_LIMITED", "")
		// The per-IP throttle applies to the token endpoint only.
		if r := e.do("GET", "/healthz", "", nil); r.status != 200 {
			t.Fatalf("healthz after token throttle: %d", r.status)
		}
		// Another client IP has its own budget (all of 127/8 is loopback on Linux).
		status, err := postFrom(e, "127.0.0.2", "/v1/auth/token",
			`{"api_key":"`+k.Key+`","api_secret":"`+secret+`"}`)
		if err != nil {
			t.Skipf("cannot send from 127.0.0.2: %v", err)
		}
		if status != 200 {
			t.Fatalf("another IP's exchange: %d, want 200", status)
		}
	})
}

// TestDatabaseUnavailable: with PostgreSQL unreachable the token endpoint and
// /readyz answer 503 SERVICE_UNAVAILABLE, never 500. The database is made
// unreachable for real, by cutting a TCP proxy in front of it.
//
// SQLite is an embedded file held open by the process: it has no connection to
// lose, so this case exists on PostgreSQL only.
func TestDatabaseUnavailable(t *testing.T) {
	t.Parallel()
	if !slicesContains(storetest.Engines(), "postgres") {
		t.Skip(storetest.EnvPostgres + " not set")
	}
	dsn := storetest.DSN(t, "postgres")
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, u.Host)
	u.Host = p.addr()
	st, err := store.Open(context.Background(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := newEnvOn(t, "postgres", st)
	k, secret := e.newKey(nil, auth.KeyInput{Scopes: []string{"reports:read"}})
	tok := e.exchange(k.Key, secret)
	if r := e.do("GET", "/readyz", "", nil); r.status != 200 || r.data()["status"] != "ready" {
		t.Fatalf("readyz with the database up: %d %s", r.status, r.raw)
	}

	p.close()

	// Several rounds: the first reuses pooled connections the proxy cut, later
	// ones must dial and are refused. Both are outages, so both are 503.
	for i := 0; i < 3; i++ {
		e.do("POST", "/v1/auth/token", "", map[string]string{"api_key": k.Key, "api_secret": secret}).
			expectError(t, 503, "SERVICE_UNAVAILABLE", "")
		e.do("GET", "/readyz", "", nil).expectError(t, 503, "SERVICE_UNAVAILABLE", "")
		// A token not in this node's cache must be checked against the database.
		e.do("GET", "/v1/me", "unknowntokenunknowntoken"+strconv.Itoa(i), nil).expectError(t, 503, "SERVICE_UNAVAILABLE", "")
	}
	_ = tok
}

// postFrom sends a JSON POST from the local address ip and returns the status.
func postFrom(e *env, ip, path, body string) (int, error) {
	c := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext}}
	defer c.CloseIdleConnections()
	res, err := c.Post(e.http.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode, nil
}

func slicesContains(l []string, v string) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// proxy forwards TCP connections to a target until closed; closing it also cuts
// every connection it carries, as a network partition would.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(p.close)
	go p.serve()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, up) {
			return
		}
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

func (p *proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	p.conns = append(p.conns, conns...)
	return true
}

func (p *proxy) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
}
