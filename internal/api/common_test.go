package api_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// generatedID is the form of a request id the server makes up.
var generatedID = regexp.MustCompile(`^[0-9a-f]{24}$`)

func TestRequestID(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		tok := e.token("reports:read")
		big := strings.Repeat(" ", 1<<20+1)
		responses := []struct {
			name, method, path, token string
			body                      any
			status                    int
		}{
			{"200 healthz", "GET", "/healthz", "", nil, 200},
			{"200 me", "GET", "/v1/me", tok, nil, 200},
			{"401 me", "GET", "/v1/me", "", nil, 401},
			{"403 scope", "GET", "/v1/api-keys", tok, nil, 403},
			{"404 unmatched", "GET", "/v1/nothing-here", "", nil, 404},
			{"413 body", "POST", "/v1/auth/token", "", big, 413},
			{"422 token", "POST", "/v1/auth/token", "", map[string]string{}, 422},
			{"200 metrics", "GET", "/metrics", "", nil, 200},
			{"200 openapi", "GET", "/v1/openapi.json", "", nil, 200},
		}
		for _, c := range responses {
			t.Run(c.name, func(t *testing.T) {
				r := e.do(c.method, c.path, c.token, c.body)
				if r.status != c.status {
					t.Fatalf("want %d, got %d %s", c.status, r.status, r.raw)
				}
				if id := r.header.Get("X-Request-Id"); !generatedID.MatchString(id) {
					t.Fatalf("X-Request-Id = %q", id)
				}
				sane := "req-" + strings.ReplaceAll(c.name, " ", "_")
				r = e.do(c.method, c.path, c.token, c.body, "X-Request-Id", sane)
				if got := r.header.Get("X-Request-Id"); got != sane {
					t.Fatalf("sane X-Request-Id %q echoed as %q", sane, got)
				}
			})
		}
		t.Run("ids are unique", func(t *testing.T) {
			a := e.do("GET", "/healthz", "", nil).header.Get("X-Request-Id")
			b := e.do("GET", "/healthz", "", nil).header.Get("X-Request-Id")
			if a == b {
				t.Fatalf("two requests got the same id %q", a)
			}
		})

		tests := []struct {
			name, id string
			echoed   bool
		}{
			{"uuid", "0f8fad5b-d9cb-469f-a165-70867728950e", true},
			{"dots, colons, underscores", "trace.v1:abc_DEF-9", true},
			{"exactly 128 characters", strings.Repeat("a", 128), true},
			{"129 characters", strings.Repeat("a", 129), false},
			{"spaces", "has spaces in it", false},
			{"quotes", `"quoted"`, false},
			{"slash", "a/b", false},
			{"non-ASCII", "réquest", false},
			{"log injection", `x" level=ERROR msg="forged`, false},
		}
		for _, tc := range tests {
			t.Run("incoming "+tc.name, func(t *testing.T) {
				got := e.do("GET", "/healthz", "", nil, "X-Request-Id", tc.id).header.Get("X-Request-Id")
				if tc.echoed && got != tc.id {
					t.Fatalf("sane id %q answered with %q", tc.id, got)
				}
				if !tc.echoed && (got == tc.id || !generatedID.MatchString(got)) {
					t.Fatalf("insane id %q answered with %q; want a fresh generated id", tc.id, got)
				}
			})
		}
	})
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		const limit = 1 << 20
		// pad makes a valid token request exactly n bytes long with trailing spaces.
		pad := func(n int) string {
			b := `{"api_key":"hs_key_x","api_secret":"hs_secret_x"}`
			return b + strings.Repeat(" ", n-len(b))
		}
		admin := e.token("admin")
		t.Run("exactly 1 MiB is read", func(t *testing.T) {
			e.do("POST", "/v1/auth/token", "", pad(limit)).expectError(t, 401, "UNAUTHORIZED", "Invalid API credentials.")
		})
		tests := []struct {
			name, path, token string
			chunked           bool
		}{
			{"token, with Content-Length", "/v1/auth/token", "", false},
			{"token, chunked", "/v1/auth/token", "", true},
			{"api keys, with Content-Length", "/v1/api-keys", admin, false},
			{"api keys, chunked", "/v1/api-keys", admin, true},
			{"unmatched route", "/v1/nothing-here", "", false},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				var body io.Reader = strings.NewReader(pad(limit + 1))
				if tc.chunked {
					body = io.MultiReader(body) // hides the length: sent chunked
				}
				req, err := http.NewRequest("POST", e.http.URL+tc.path, body)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				if tc.token != "" {
					req.Header.Set("Authorization", "Bearer "+tc.token)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				raw, _ := io.ReadAll(res.Body)
				if tc.chunked && req.ContentLength != 0 {
					t.Fatalf("request was not chunked (Content-Length %d)", req.ContentLength)
				}
				if res.StatusCode != 413 || !strings.Contains(string(raw), `"code":"PAYLOAD_TOO_LARGE"`) ||
					!strings.Contains(string(raw), `"success":false`) {
					t.Fatalf("want 413 PAYLOAD_TOO_LARGE, got %d %s", res.StatusCode, raw)
				}
				if res.Header.Get("X-Request-Id") == "" {
					t.Fatal("413 without X-Request-Id")
				}
			})
		}
		t.Run("nothing written by an oversize create", func(t *testing.T) {
			before, _ := e.listKeys(admin)
			name := strings.Repeat("n", limit)
			e.do("POST", "/v1/api-keys", admin, map[string]any{"name": name, "scopes": []string{"admin"}}).
				expectError(t, 413, "PAYLOAD_TOO_LARGE", "")
			if after, _ := e.listKeys(admin); len(after) != len(before) {
				t.Fatalf("%d keys before, %d after", len(before), len(after))
			}
		})
	})
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		for _, c := range []struct{ method, path string }{
			{"GET", "/v1/nothing-here"},
			{"GET", "/api/v1/nothing-here"},
			{"POST", "/v1/auth/token/extra"},
			{"GET", "/"},
			{"GET", "/v2/me"},
			{"DELETE", "/nope"},
		} {
			t.Run(c.method+" "+c.path, func(t *testing.T) {
				r := e.do(c.method, c.path, "", nil)
				r.expectError(t, 404, "NOT_FOUND", "")
				if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
					t.Fatalf("Content-Type %q", r.header.Get("Content-Type"))
				}
			})
		}
	})
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		for _, c := range []struct{ path, status string }{
			{"/healthz", "ok"},
			{"/readyz", "ready"},
		} {
			r := e.do("GET", c.path, "", nil)
			if r.status != 200 || r.body["success"] != true || r.data()["status"] != c.status {
				t.Fatalf("%s: %d %s", c.path, r.status, r.raw)
			}
			if r.header.Get("X-RateLimit-Limit") != "" {
				t.Fatalf("%s carries rate-limit headers", c.path)
			}
		}
		if r := e.do("GET", "/healthz", "", nil); r.data()["version"] != "test" {
			t.Fatalf("healthz version: %s", r.raw)
		}
	})
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		tok := e.token("reports:read")
		e.do("GET", "/healthz", "", nil)
		e.do("GET", "/api/v1/me", tok, nil)
		e.do("GET", "/v1/me", "", nil)
		e.do("GET", "/v1/random-unmatched-path-4711", "", nil)
		e.do("GET", "/v1/api-keys/123/unmatched-4711", "", nil)

		r := e.do("GET", "/metrics", "", nil)
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
			t.Fatalf("metrics: %d %s", r.status, r.header.Get("Content-Type"))
		}
		for _, want := range []string{
			`heldsway_http_requests_total{method="GET",route="GET /healthz",status="200"} 1`,
			`heldsway_http_requests_total{method="POST",route="POST /v1/auth/token",status="200"} 1`,
			// /api/v1 is counted under the /v1 route, not a route of its own.
			`heldsway_http_requests_total{method="GET",route="GET /v1/me",status="200"} 1`,
			`heldsway_http_requests_total{method="GET",route="GET /v1/me",status="401"} 1`,
			`heldsway_http_request_duration_seconds_bucket{method="GET",route="GET /healthz",status="200",le="+Inf"} 1`,
			`heldsway_http_request_duration_seconds_count{method="GET",route="GET /v1/me",status="401"} 1`,
		} {
			if !strings.Contains(r.raw, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		// Unmatched paths share one label, so a scanner cannot blow up the series.
		// ("unmatched-4711", not "4711": a Go runtime figure may hold those digits.)
		if strings.Contains(r.raw, "unmatched-4711") || strings.Contains(r.raw, "path-4711") {
			t.Errorf("metrics label a raw path:\n%s", grepLines(r.raw, "4711"))
		}
		if strings.Contains(r.raw, tok) {
			t.Error("metrics contain a token")
		}
	})
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
