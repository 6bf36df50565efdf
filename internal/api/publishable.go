package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/heldsway/heldsway/internal/auth"
	"github.com/heldsway/heldsway/internal/heldsway"
)

// Authentication of the storefront routes (/v1/track/*).
//
// Browser code sends the publishable key itself, never a token:
//
//	X-HeldSway-Key: as_…            (preferred)
//	Authorization: Bearer as_…      (also accepted)
//
// A publishable key is accepted only with an Origin header (every browser
// sends one on a cross-origin fetch) that is one of the key's allowed_origins,
// compared exactly as scheme://host[:port] after normalization (lower case,
// default port dropped). A request without Origin is refused with 403: the key
// is public, so it must not work from scripts that do not claim an origin; a
// server reporting events authenticates with a bearer token instead, which
// these routes also accept (scope checked the same, no Origin needed).
//
// Budgets: the key's own (its rate_limit, else the server default of 1000 a
// minute) and, per key and origin, DefaultOriginRateLimit a minute (or the
// key's rate_limit when one is set), so a flood from one origin cannot use up
// the budget of the key's other origins. Over either: 429 with Retry-After.
//
// CORS: a preflight (OPTIONS) is answered 204 when its Origin is an allowed
// origin of some usable publishable key (the preflight carries no key); the
// request itself is then checked against its key's own list. The allowed
// origin is echoed in Access-Control-Allow-Origin, never "*"; credentials
// (cookies) are not used, so Access-Control-Allow-Credentials is not sent. A
// disallowed origin gets no CORS headers and 403.

// Names and numbers of the storefront authentication.
const (
	HeaderPublishableKey      = "X-HeldSway-Key"
	DefaultOriginRateLimit    = 600 // requests per minute per publishable key and origin
	securitySchemePublishable = "publishableKey"
	// corsMaxAge lets a browser reuse a preflight for 10 minutes: every
	// tracked page then costs one preflight per endpoint at most that often.
	corsMaxAge = 600
	// Origins of new keys are picked up by a preflight at most this long
	// after creation; a revoked key's origins stop being answered within
	// originSetTTL (its requests are refused at once anyway).
	originSetMissReload = time.Second
	originSetTTL        = 10 * time.Second
)

const (
	corsAllowHeaders  = "Content-Type, Authorization, X-HeldSway-Key, Idempotency-Key"
	corsExposeHeaders = "X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, Idempotent-Replayed"
)

// Messages of the storefront authentication.
const (
	msgOriginRequired   = "A publishable key is accepted only from a browser: the Origin header is required."
	msgOriginNotAllowed = "The origin is not allowed for this key."
	msgPreflightRefused = "The origin is not allowed by any publishable key."
)

// publishableKeyOf returns the publishable key a request presents, or "".
func publishableKeyOf(ctx huma.Context) string {
	if k := strings.TrimSpace(ctx.Header(HeaderPublishableKey)); k != "" {
		return k
	}
	h := ctx.Header("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		tok, ok = strings.CutPrefix(h, "bearer ")
	}
	if tok = strings.TrimSpace(tok); ok && strings.HasPrefix(tok, auth.PublishablePrefix) {
		return tok
	}
	return ""
}

// trackAuth authenticates a storefront route: a publishable key from an
// allowed origin, or else a bearer token (server to server). Either way the
// scope is checked and the principal set.
func (s *Server) trackAuth(scope string) func(huma.Context, func(huma.Context)) {
	bearer := s.authenticate(scope)
	return func(ctx huma.Context, next func(huma.Context)) {
		ctx.AppendHeader("Vary", "Origin")
		key := publishableKeyOf(ctx)
		if key == "" {
			bearer(ctx, next)
			return
		}
		p, err := s.Auth.LookupPublishable(ctx.Context(), key)
		if err != nil {
			s.writeErr(ctx, err)
			return
		}
		origin := ctx.Header("Origin")
		norm, valid := heldsway.NormalizeOrigin(origin)
		allowed := valid && originListed(p.Key.AllowedOrigins, norm)
		if allowed {
			// Even errors carry CORS headers, so the SDK can read them.
			ctx.SetHeader("Access-Control-Allow-Origin", origin)
			ctx.SetHeader("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		switch {
		case p.Key.Status(s.Auth.Now()) != "active":
			s.writeErr(ctx, heldsway.Errorf(heldsway.EUNAUTHORIZED, auth.MsgKeyInactive))
			return
		case !p.Workspace.Active:
			s.writeErr(ctx, heldsway.Errorf(heldsway.EFORBIDDEN, auth.MsgWorkspaceInactive))
			return
		case origin == "":
			s.writeErr(ctx, heldsway.Errorf(heldsway.EFORBIDDEN, msgOriginRequired))
			return
		case !allowed:
			s.writeErr(ctx, heldsway.Errorf(heldsway.EFORBIDDEN, msgOriginNotAllowed))
			return
		}
		keyLimit, originLimit := s.KeyRateLimit, DefaultOriginRateLimit
		if p.Key.RateLimit > 0 {
			keyLimit, originLimit = p.Key.RateLimit, p.Key.RateLimit
		}
		id := strconv.FormatInt(p.Key.ID, 10)
		if !s.takeRate(ctx, "key:"+id, uint64(keyLimit)) || !s.takeRate(ctx, "origin:"+id+":"+norm, uint64(originLimit)) {
			return
		}
		if !heldsway.HasScope(p.Scopes, scope) {
			s.writeErr(ctx, heldsway.Errorf(heldsway.EFORBIDDEN, "Insufficient scope."))
			return
		}
		s.Auth.MarkUsed(p.Key.ID)
		ctx = huma.WithValue(ctx, principalKey, p)
		r, _ := humago.Unwrap(ctx)
		next(huma.WithContext(ctx, heldsway.WithActor(ctx.Context(), heldsway.Actor{Type: heldsway.ActorAPIKey,
			ID: p.Key.ID, RequestID: requestID(ctx.Context()), IP: clientIP(r)})))
	}
}

// publishable reports whether the request came with a publishable key (from a
// browser) rather than a bearer token.
func publishable(ctx context.Context) bool {
	p := principal(ctx)
	return p != nil && p.Key.Kind == heldsway.KeyKindPublishable
}

// originListed reports whether the normalized origin is in a key's list. Lists
// written before origins were validated may hold un-normalized entries.
func originListed(list []string, norm string) bool {
	for _, o := range list {
		if o == norm {
			return true
		}
		if n, ok := heldsway.NormalizeOrigin(o); ok && n == norm {
			return true
		}
	}
	return false
}

// registerTrack registers a storefront route: register's handling (body
// limit, idempotency, errors) with trackAuth in front, documented as taking
// either a bearer token or a publishable key with the scope.
func registerTrack[I, O any](s *Server, op huma.Operation, scope string, h func(context.Context, *I) (*O, error)) {
	op.Middlewares = append(huma.Middlewares{s.trackAuth(scope), withRequest}, op.Middlewares...)
	op.Errors = append(op.Errors, http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests)
	op.Description = strings.TrimSpace(op.Description + "\n\nRequired scope: `" + scope + "`, with a publishable key (" +
		HeaderPublishableKey + ": as_…, from an allowed Origin) or a bearer token.")
	if op.Extensions == nil {
		op.Extensions = map[string]any{}
	}
	op.Extensions[scopeExtension] = scope
	register(s, op, ScopePublic, h)
	// register documented and recorded the route as public; it is not.
	s.routes[len(s.routes)-1].Scope = scope
	if pi := s.api.OpenAPI().Paths[op.Path]; pi != nil {
		for _, o := range []*huma.Operation{pi.Get, pi.Post} {
			if o != nil && o.OperationID == op.OperationID {
				o.Security = []map[string][]string{{securitySchemeBearer: {scope}}, {securitySchemePublishable: {scope}}}
			}
		}
	}
}

// handleTrackPreflight answers the CORS preflight of a storefront route whose
// method is method.
func (sf *storefront) handleTrackPreflight(method string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		h.Add("Vary", "Access-Control-Request-Method")
		h.Add("Vary", "Access-Control-Request-Headers")
		origin := r.Header.Get("Origin")
		norm, ok := heldsway.NormalizeOrigin(origin)
		if !ok {
			writeError(w, r, heldsway.Errorf(heldsway.EFORBIDDEN, "A CORS preflight needs an http(s) Origin header."))
			return
		}
		if m := r.Header.Get("Access-Control-Request-Method"); m != "" && m != method {
			writeError(w, r, heldsway.Errorf(heldsway.EFORBIDDEN, "This route answers %s only.", method))
			return
		}
		allowed, err := sf.origins.allowed(r.Context(), norm)
		if err != nil {
			writeError(w, r, err)
			return
		}
		if !allowed {
			writeError(w, r, heldsway.Errorf(heldsway.EFORBIDDEN, msgPreflightRefused))
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Methods", method+", OPTIONS")
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		h.Set("Access-Control-Max-Age", strconv.Itoa(corsMaxAge))
		w.WriteHeader(http.StatusNoContent)
	}
}

// originSet caches the allowed origins of all usable publishable keys for
// preflights: reloaded every originSetTTL, and on a miss at most every
// originSetMissReload (so a flood of unknown origins costs one query a second).
type originSet struct {
	load func(context.Context) ([]string, error)

	mu       sync.Mutex
	set      map[string]bool
	loadedAt time.Time
}

func (o *originSet) allowed(ctx context.Context, origin string) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	age := time.Since(o.loadedAt)
	if o.set != nil && age < originSetTTL && (o.set[origin] || age < originSetMissReload) {
		return o.set[origin], nil
	}
	list, err := o.load(ctx)
	if err != nil {
		if o.set != nil { // serve the last known set through an outage
			return o.set[origin], nil
		}
		return false, err
	}
	o.set = make(map[string]bool, len(list))
	for _, x := range list {
		o.set[x] = true
	}
	o.loadedAt = time.Now()
	return o.set[origin], nil
}

// documentTrackAuth adds the publishable key scheme to the document.
func (s *Server) documentTrackAuth() {
	oa := s.api.OpenAPI()
	oa.Components.SecuritySchemes[securitySchemePublishable] = &huma.SecurityScheme{Type: "apiKey", In: "header",
		Name: HeaderPublishableKey,
		Description: "A publishable key (as_…) for browser code on a storefront, accepted only with an Origin header " +
			"that is one of the key's allowed_origins. `Authorization: Bearer as_…` is accepted too. The storefront " +
			"routes also take a bearer token."}
}

// documentPreflight adds the OPTIONS route of a storefront path.
func (s *Server) documentPreflight(path, method, opID string) {
	str := &huma.Schema{Type: "string"}
	hdr := func(desc string) *huma.Param { return &huma.Param{Description: desc, Schema: str} }
	s.api.OpenAPI().AddOperation(&huma.Operation{OperationID: "preflight" + strings.ToUpper(opID[:1]) + opID[1:],
		Method: http.MethodOptions, Path: path, Tags: []string{"Storefront"},
		Summary: "CORS preflight of " + method + " " + path,
		Description: "Answered for an Origin that is an allowed origin of some usable publishable key (the preflight " +
			"carries no key; the request itself is checked against its key's list). The origin is echoed, never *; " +
			"no credentials. Anything else — no Origin, another origin, another method in " +
			"Access-Control-Request-Method — is 403 FORBIDDEN without CORS headers.",
		Security: []map[string][]string{},
		Parameters: []*huma.Param{
			{Name: "Origin", In: "header", Required: true, Schema: str},
			{Name: "Access-Control-Request-Method", In: "header", Schema: str},
			{Name: "Access-Control-Request-Headers", In: "header", Schema: str},
		},
		Responses: map[string]*huma.Response{
			"204": {Description: "Allowed.", Headers: map[string]*huma.Param{
				"Access-Control-Allow-Origin":  hdr("The request's Origin."),
				"Access-Control-Allow-Methods": hdr(method + ", OPTIONS"),
				"Access-Control-Allow-Headers": hdr(corsAllowHeaders),
				"Access-Control-Max-Age":       hdr(strconv.Itoa(corsMaxAge)),
				"Vary":                         hdr("Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
			}},
			"403": {Description: "Refused: no CORS headers.", Content: map[string]*huma.MediaType{
				"application/json": {Schema: &huma.Schema{Ref: "#/components/schemas/ErrorModel"}}}}, // as every error response
		},
	})
}
