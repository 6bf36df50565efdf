// Package api is the HTTP surface: huma operations, the envelopes, the one error
// mapping, middleware, and routes.go listing every route with its scope.
package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/heldsway/heldsway/internal/auth"
	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/track"
)

// Scope markers for routes that need no namespaced scope.
const (
	ScopePublic        = ""              // no token
	ScopeAuthenticated = "authenticated" // any valid token
)

// Defaults for the rate limits.
const (
	DefaultKeyRateLimit  = 1000 // requests per minute per API key
	DefaultTokenIPLimit  = 120  // token exchanges per minute per IP (documented)
	rateLimitWindow      = time.Minute
	scopeExtension       = "x-required-scope"
	securitySchemeBearer = "bearerAuth"
)

// Pinger reports whether the database can be reached.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Server holds the dependencies of the HTTP layer.
type Server struct {
	Auth        *auth.Service
	DB          Pinger
	Idempotency heldsway.IdempotencyStore
	// Store serves the management resources (programs, affiliates, links, …).
	Store     *store.Store
	Logger    *slog.Logger
	AccessLog bool
	Limiter   RateLimiter
	// KeyRateLimit is the default per-key budget per minute; TokenIPLimit the
	// token endpoint's per-IP budget.
	KeyRateLimit int
	TokenIPLimit int
	Version      string
	// Tracker serves GET /r/{slug} (a *track.Handler); nil answers every
	// slug with the 404 page.
	Tracker Tracker

	metrics *metrics
	mux     *http.ServeMux
	api     huma.API
	routes  []Route
	once    sync.Once
	handler http.Handler
}

// Route is one registered route, as routes.go declares it.
type Route struct {
	Method string
	Path   string
	Scope  string
}

var initHuma sync.Once

// Handler builds the router once and returns it.
func (s *Server) Handler() http.Handler {
	s.once.Do(s.build)
	return s.handler
}

// OpenAPI returns the generated OpenAPI document.
func (s *Server) OpenAPI() *huma.OpenAPI {
	s.once.Do(s.build)
	return s.api.OpenAPI()
}

// Routes lists every route registered on the mux.
func (s *Server) Routes() []Route {
	s.once.Do(s.build)
	return s.routes
}

func (s *Server) build() {
	initHuma.Do(func() { huma.NewErrorWithContext = newHumaError })
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.Limiter == nil {
		s.Limiter = NewMemoryLimiter(rateLimitWindow)
	}
	if s.KeyRateLimit == 0 {
		s.KeyRateLimit = DefaultKeyRateLimit
	}
	if s.TokenIPLimit == 0 {
		s.TokenIPLimit = DefaultTokenIPLimit
	}
	s.metrics = newMetrics()
	if st, ok := s.Tracker.(interface{ Stats() track.Stats }); ok {
		s.metrics.trackStats(st.Stats)
	}
	if s.Store != nil {
		s.metrics.conversionStats(s.Store.ConversionWriterStats)
		if !s.Store.Dialect.IsPostgres() {
			s.metrics.clickJournalStats(s.Store.ClickJournalStats)
		}
	}
	s.mux = http.NewServeMux()

	registry := huma.NewMapRegistry("#/components/schemas/", huma.DefaultSchemaNamer)
	cfg := huma.Config{
		OpenAPI: &huma.OpenAPI{
			OpenAPI: "3.1.0",
			Info: &huma.Info{
				Title:   "HeldSway API",
				Version: s.Version,
				Description: "Self-hostable affiliate-program platform. Every route also answers under /api/v1. " +
					"Authenticate with POST /v1/auth/token and send `Authorization: Bearer <access_token>`. " +
					"Errors use {\"success\":false,\"error\":{code,message,details}}.",
				License: &huma.License{Name: "MIT", Identifier: "MIT"},
			},
			Servers: []*huma.Server{{URL: "/"}},
			Components: &huma.Components{
				Schemas: registry,
				SecuritySchemes: map[string]*huma.SecurityScheme{
					securitySchemeBearer: {Type: "http", Scheme: "bearer",
						Description: "Opaque access token from POST /v1/auth/token, valid 14400 s."},
				},
			},
			Tags: []*huma.Tag{{Name: "Auth", Description: "Token exchange, identity and API keys."},
				{Name: "Operations", Description: "Health, readiness, metrics and this document."}},
		},
		Formats: map[string]huma.Format{
			"application/json": huma.DefaultJSONFormat,
			"json":             huma.DefaultJSONFormat,
		},
		DefaultFormat: "application/json",
	}
	s.api = humago.New(s.mux, cfg)
	s.routesInit()

	// Unmatched paths get the JSON envelope rather than the mux's plain text.
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, heldsway.Errorf(heldsway.ENOTFOUND, "No route matches %s %s.", r.Method, r.URL.Path))
	})
	top := http.NewServeMux()
	top.Handle("/", s.mux)
	// The documented hosts use both /v1 and /api/v1; rewrite in place so the
	// mux records the matched pattern on this request for metrics and logs.
	top.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = strings.TrimPrefix(r.URL.Path, "/api")
		r.URL.RawPath = ""
		s.mux.ServeHTTP(w, r)
	})
	s.handler = s.withCommon(top)
}

// op registers a huma operation with its scope. The scope is declared next to the
// route in routes.go, enforced here, and written into the OpenAPI document.
func register[I, O any](s *Server, op huma.Operation, scope string, h func(context.Context, *I) (*O, error)) {
	// huma refuses a body that fills MaxBodyBytes, so a body of exactly 1 MiB
	// would get 413; one byte more makes the documented limit inclusive. The
	// exact limit is enforced by withCommon's MaxBytesReader.
	op.MaxBodyBytes = MaxBodyBytes + 1
	if op.Extensions == nil {
		op.Extensions = map[string]any{}
	}
	switch scope {
	case ScopePublic:
		op.Security = []map[string][]string{}
	case ScopeAuthenticated:
		op.Security = []map[string][]string{{securitySchemeBearer: {}}}
		op.Extensions[scopeExtension] = "any"
		op.Middlewares = append(huma.Middlewares{s.authenticate(scope)}, op.Middlewares...)
		op.Errors = append(op.Errors, http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests)
	default:
		op.Security = []map[string][]string{{securitySchemeBearer: {scope}}}
		op.Extensions[scopeExtension] = scope
		op.Description = strings.TrimSpace(op.Description + "\n\nRequired scope: `" + scope + "`.")
		op.Middlewares = append(huma.Middlewares{s.authenticate(scope)}, op.Middlewares...)
		op.Errors = append(op.Errors, http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests)
	}
	if op.Method != http.MethodGet {
		op.Errors = append(op.Errors, http.StatusUnprocessableEntity)
		// Writes honour Idempotency-Key; it runs after authentication so keys
		// are scoped to the API key that sent them.
		idem := s.idempotent
		if in, _ := op.Metadata[metaClaimInTx].(bool); in {
			idem = s.idempotentInTx
		}
		op.Middlewares = append(op.Middlewares, idem)
		op.Parameters = append(op.Parameters, &huma.Param{Name: "Idempotency-Key", In: "header",
			Description: "Makes the write safe to retry for 24 h: a retry gets the stored response with " +
				"Idempotent-Replayed: true; reusing the key for a different request is 422 IDEMPOTENCY_KEY_REUSED.",
			Schema: &huma.Schema{Type: "string", MinLength: ptr(1), MaxLength: ptr(255)}})
	}
	op.Errors = append(op.Errors, http.StatusServiceUnavailable)
	s.routes = append(s.routes, Route{Method: op.Method, Path: op.Path, Scope: scope})
	huma.Register(s.api, op, h)
}

// handle registers a plain net/http handler (non-JSON routes) and records it.
func (s *Server) handle(method, path string, h http.HandlerFunc) {
	s.mux.HandleFunc(method+" "+path, h)
	s.routes = append(s.routes, Route{Method: method, Path: path, Scope: ScopePublic})
}

// authenticate resolves the bearer token, applies the key's rate limit and checks
// the scope. Rate-limit headers are set on every authenticated response.
func (s *Server) authenticate(scope string) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		h := ctx.Header("Authorization")
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			token, ok = strings.CutPrefix(h, "bearer ")
		}
		token = strings.TrimSpace(token)
		if !ok || token == "" {
			s.writeErr(ctx, heldsway.Errorf(heldsway.EUNAUTHORIZED, auth.MsgInvalidToken))
			return
		}
		p, err := s.Auth.Authenticate(ctx.Context(), token)
		if err != nil {
			s.writeErr(ctx, err)
			return
		}
		limit := p.Key.RateLimit
		if limit <= 0 {
			limit = s.KeyRateLimit
		}
		if !s.takeRate(ctx, "key:"+strconv.FormatInt(p.Key.ID, 10), uint64(limit)) {
			return
		}
		if scope != ScopeAuthenticated && !heldsway.HasScope(p.Scopes, scope) {
			s.writeErr(ctx, heldsway.Errorf(heldsway.EFORBIDDEN, "Insufficient scope."))
			return
		}
		ctx = huma.WithValue(ctx, principalKey, p)
		r, _ := humago.Unwrap(ctx)
		next(huma.WithContext(ctx, heldsway.WithActor(ctx.Context(), heldsway.Actor{Type: heldsway.ActorAPIKey,
			ID: p.Key.ID, RequestID: requestID(ctx.Context()), IP: clientIP(r)})))
	}
}

// limitByIP is the token endpoint's per-IP throttle.
func (s *Server) limitByIP(bucket string, limit int) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		r, _ := humago.Unwrap(ctx)
		if s.takeRate(ctx, bucket+":"+clientIP(r), uint64(limit)) {
			next(ctx)
		}
	}
}

// takeRate takes one request from key's budget, sets the headers and writes a 429
// when the budget is spent. A limiter failure lets the request through: an outage
// of the limiter must not become an outage of the API.
func (s *Server) takeRate(ctx huma.Context, key string, limit uint64) bool {
	lim, remaining, reset, ok, err := s.Limiter.Take(ctx.Context(), key, limit)
	if err != nil {
		s.Logger.Warn("rate limiter", "err", err)
		return true
	}
	resetAt := time.Unix(0, int64(min(reset, math.MaxInt64)))
	ctx.SetHeader("X-RateLimit-Limit", strconv.FormatUint(lim, 10))
	ctx.SetHeader("X-RateLimit-Remaining", strconv.FormatUint(remaining, 10))
	ctx.SetHeader("X-RateLimit-Reset", strconv.FormatInt(resetAt.Unix(), 10))
	if !ok {
		wait := int(math.Ceil(time.Until(resetAt).Seconds()))
		ctx.SetHeader("Retry-After", strconv.Itoa(max(wait, 1)))
		s.writeErr(ctx, heldsway.Errorf(heldsway.ERATELIMITED, "Too many requests. Retry after %d seconds.", max(wait, 1)))
		return false
	}
	return true
}

func (s *Server) writeErr(ctx huma.Context, err error) {
	_ = huma.WriteErr(s.api, ctx, 0, "", err)
}

// principal returns the authenticated caller; routes behind authenticate always have one.
func principal(ctx context.Context) *heldsway.Principal {
	p, _ := ctx.Value(principalKey).(*heldsway.Principal)
	return p
}

// Envelope is the success envelope: {"success":true,"message":…,"data":…}.
type Envelope[T any] struct {
	Success bool   `json:"success"`
	Message string `json:"message,omitempty"`
	Data    T      `json:"data"`
}

// Out is a huma output carrying an envelope.
type Out[T any] struct {
	Body Envelope[T]
}

func ok[T any](msg string, data T) *Out[T] {
	return &Out[T]{Body: Envelope[T]{Success: true, Message: msg, Data: data}}
}

// serveOpenAPI writes the generated document.
func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	b, err := json.Marshal(s.api.OpenAPI())
	if err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.oai.openapi+json")
	_, _ = w.Write(b)
}

func ptr[T any](v T) *T { return &v }
