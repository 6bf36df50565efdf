package api_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/heldsway/heldsway/internal/api"
)

// openAPIDoc is the part of the served document the coverage check reads.
type openAPIDoc struct {
	OpenAPI string                                   `json:"openapi"`
	Paths   map[string]map[string]openAPIOp          `json:"paths"`
	Comp    struct{ SecuritySchemes map[string]any } `json:"components"`
}

type openAPIOp struct {
	OperationID string                 `json:"operationId"`
	Security    *[]map[string][]string `json:"security"`
	Scope       *string                `json:"x-required-scope"`
	Responses   map[string]any         `json:"responses"`
}

// specProblems lists every way the document fails to describe routes: a route
// missing from paths, or documented without its scope.
func specProblems(doc *openAPIDoc, routes []api.Route) []string {
	var out []string
	for _, rt := range routes {
		name := rt.Method + " " + rt.Path
		op, ok := doc.Paths[rt.Path][strings.ToLower(rt.Method)]
		if !ok {
			out = append(out, name+": not in the document")
			continue
		}
		if op.OperationID == "" {
			out = append(out, name+": no operationId")
		}
		if op.Security == nil {
			out = append(out, name+": no security requirement (public routes declare an empty one)")
			continue
		}
		sec := *op.Security
		switch rt.Scope {
		case api.ScopePublic:
			if len(sec) != 0 {
				out = append(out, fmt.Sprintf("%s: public route documents security %v", name, sec))
			}
			if op.Scope != nil {
				out = append(out, fmt.Sprintf("%s: public route documents scope %q", name, *op.Scope))
			}
			continue
		case api.ScopeAuthenticated:
			if op.Scope == nil || *op.Scope != "any" {
				out = append(out, name+`: x-required-scope is not "any"`)
			}
			if len(sec) != 1 || sec[0]["bearerAuth"] == nil || len(sec[0]["bearerAuth"]) != 0 {
				out = append(out, fmt.Sprintf("%s: security %v, want bearerAuth without scopes", name, sec))
			}
		default:
			if op.Scope == nil || *op.Scope != rt.Scope {
				out = append(out, fmt.Sprintf("%s: x-required-scope is not %q", name, rt.Scope))
			}
			// Further alternatives (the storefront routes' publishable key)
			// must require the same scope.
			bad := len(sec) == 0 || !slices.Equal(sec[0]["bearerAuth"], []string{rt.Scope})
			for _, alt := range sec[min(len(sec), 1):] {
				for _, scopes := range alt {
					bad = bad || !slices.Equal(scopes, []string{rt.Scope})
				}
			}
			if bad {
				out = append(out, fmt.Sprintf("%s: security %v, want bearerAuth [%s]", name, sec, rt.Scope))
			}
		}
		for _, status := range []string{"401", "403", "429"} {
			if _, ok := op.Responses[status]; !ok {
				out = append(out, name+": protected route without a documented "+status)
			}
		}
	}
	return out
}

func fetchSpec(t *testing.T, e *env, path string) *openAPIDoc {
	t.Helper()
	r := e.do("GET", path, "", nil)
	if r.status != 200 || r.header.Get("Content-Type") != "application/vnd.oai.openapi+json" {
		t.Fatalf("%s: %d %q", path, r.status, r.header.Get("Content-Type"))
	}
	var doc openAPIDoc
	if err := json.Unmarshal([]byte(r.raw), &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &doc
}

func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	doc := fetchSpec(t, e, "/v1/openapi.json")
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	if _, ok := doc.Comp.SecuritySchemes["bearerAuth"]; !ok {
		t.Fatal("no bearerAuth security scheme")
	}
	for _, alias := range []string{"/openapi.json", "/api/v1/openapi.json"} {
		if other := fetchSpec(t, e, alias); len(other.Paths) != len(doc.Paths) || other.OpenAPI != doc.OpenAPI {
			t.Fatalf("%s differs from /v1/openapi.json", alias)
		}
	}

	t.Run("every route is documented with its scope", func(t *testing.T) {
		routes := e.server.Routes()
		if len(routes) < 10 {
			t.Fatalf("only %d routes registered", len(routes))
		}
		for _, p := range specProblems(doc, routes) {
			t.Error(p)
		}
	})
	t.Run("the documented auth surface", func(t *testing.T) {
		want := map[string]string{ // method path → x-required-scope
			"POST /v1/auth/token":           "",
			"GET /v1/me":                    "any",
			"GET /v1/api-keys":              "admin",
			"POST /v1/api-keys":             "admin",
			"POST /v1/api-keys/{id}/revoke": "admin",
			"POST /v1/api-keys/{id}/rotate": "admin",
		}
		for mp, scope := range want {
			method, path, _ := strings.Cut(mp, " ")
			op, ok := doc.Paths[path][strings.ToLower(method)]
			if !ok {
				t.Errorf("%s missing", mp)
				continue
			}
			if got := ""; op.Scope != nil {
				got = *op.Scope
				if got != scope {
					t.Errorf("%s: scope %q, want %q", mp, got, scope)
				}
			} else if scope != "" {
				t.Errorf("%s: no scope, want %q", mp, scope)
			}
		}
		body := doc.Paths["/v1/auth/token"]["post"].Responses
		for _, status := range []string{"200", "401", "403", "422", "429", "503"} {
			if _, ok := body[status]; !ok {
				t.Errorf("POST /v1/auth/token does not document %s", status)
			}
		}
	})
	// The check itself must fail for an undocumented route or a wrong scope,
	// or the coverage test above proves nothing.
	t.Run("the check catches omissions", func(t *testing.T) {
		tests := []struct {
			name  string
			route api.Route
		}{
			{"unknown path", api.Route{Method: "GET", Path: "/v1/undocumented", Scope: api.ScopePublic}},
			{"known path, other method", api.Route{Method: "DELETE", Path: "/v1/me", Scope: api.ScopeAuthenticated}},
			{"wrong scope", api.Route{Method: "GET", Path: "/v1/api-keys", Scope: "reports:read"}},
			{"protected route documented as public", api.Route{Method: "GET", Path: "/healthz", Scope: "admin"}},
			{"public route documented as protected", api.Route{Method: "GET", Path: "/v1/me", Scope: api.ScopePublic}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if p := specProblems(doc, []api.Route{tc.route}); len(p) == 0 {
					t.Fatalf("no problem reported for %+v", tc.route)
				}
			})
		}
	})
}
