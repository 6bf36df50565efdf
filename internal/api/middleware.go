package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	principalKey
)

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// saneRequestID accepts an incoming id only if it cannot corrupt logs or headers.
var saneRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// MaxBodyBytes is the request body limit (1 MiB).
const MaxBodyBytes = 1 << 20

// withCommon wraps every route: request id, panic recovery, body limit, access log
// and metrics. The route label is the mux pattern, so metrics stay bounded.
func (s *Server) withCommon(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Tracker != nil && isRedirect(r) {
			s.serveRedirect(w, r)
			return
		}
		start := time.Now()
		id := ensureRequestID(w, r)
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		// Unauthenticated writes are audited as "public"; authentication
		// replaces the actor with the API key.
		ctx = heldsway.WithActor(ctx, heldsway.Actor{Type: heldsway.ActorPublic, RequestID: id, IP: clientIP(r)})
		r = r.WithContext(ctx)
		if r.ContentLength > MaxBodyBytes {
			writeError(w, r, heldsway.Errorf(heldsway.EPAYLOADTOOLARGE, "The request body must not be larger than 1 MiB."))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		rec := &statusRecorder{ResponseWriter: w}
		defer s.finish(rec, r, id, start)
		next.ServeHTTP(rec, r)
	})
}

// redirectRoute is the pattern GET /r/{slug} is registered under: the route
// label of its metrics and access log.
const redirectRoute = "GET /r/{slug}"

// isRedirect reports whether r is GET (or HEAD) /r/{slug}, a path the mux
// would route to the redirect.
func isRedirect(r *http.Request) bool {
	slug, ok := strings.CutPrefix(r.URL.Path, "/r/")
	return ok && slug != "" && !strings.Contains(slug, "/") && (r.Method == http.MethodGet || r.Method == http.MethodHead)
}

// serveRedirect answers GET /r/{slug} outside the API's stack: the redirect
// is the hottest path of all and needs no actor, no body and no routing, so
// it skips the two muxes and the request copies that carry the API's context
// values. It keeps what every response has: the request id, panic recovery,
// metrics and the access log.
func (s *Server) serveRedirect(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := ensureRequestID(w, r)
	r.Pattern = redirectRoute
	r.SetPathValue("slug", strings.TrimPrefix(r.URL.Path, "/r/"))
	rec := &statusRecorder{ResponseWriter: w}
	defer s.finish(rec, r, id, start)
	s.Tracker.ServeHTTP(rec, r)
}

// ensureRequestID returns the request's id (the caller's X-Request-Id when
// sane, else a new one) and echoes it on the response.
func ensureRequestID(w http.ResponseWriter, r *http.Request) string {
	id := r.Header.Get("X-Request-Id")
	if !saneRequestID.MatchString(id) {
		id = newRequestID()
	}
	w.Header()["X-Request-Id"] = []string{id}
	return id
}

// finish runs after every request: it turns a panic into a 500 and records
// the request in the metrics and the access log. Deferred by the caller, so
// recover sees the handler's panic.
func (s *Server) finish(rec *statusRecorder, r *http.Request, id string, start time.Time) {
	if v := recover(); v != nil {
		if v == http.ErrAbortHandler {
			panic(v)
		}
		slog.ErrorContext(r.Context(), "panic", "request_id", id, "panic", v)
		if rec.status == 0 {
			writeError(rec, r, &heldsway.Error{Code: heldsway.EINTERNAL, Message: "An internal error occurred."})
		}
	}
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	elapsed := time.Since(start)
	s.metrics.observe(route, r.Method, status, elapsed)
	if s.AccessLog {
		s.Logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("request_id", id), slog.String("method", r.Method),
			slog.String("route", route), slog.String("path", r.URL.Path),
			slog.Int("status", status), slog.Int("bytes", rec.bytes),
			slog.Duration("duration", elapsed), slog.String("ip", clientIP(r)))
	}
}

// clientIP is the peer address. Deployments behind a proxy should terminate at a
// proxy that sets RemoteAddr correctly (e.g. PROXY protocol); trusting
// X-Forwarded-For blindly would let any client pick its own rate-limit bucket.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func setRateHeaders(h http.Header, limit, remaining, reset uint64) {
	h.Set("X-RateLimit-Limit", strconv.FormatUint(limit, 10))
	h.Set("X-RateLimit-Remaining", strconv.FormatUint(remaining, 10))
	h.Set("X-RateLimit-Reset", strconv.FormatUint(reset, 10))
}
