package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// idemWait bounds how long a retry waits for a concurrent first request under
// the same key before answering 409.
const idemWait = 30 * time.Second

// captureWriter passes the response through and keeps a copy of it.
type captureWriter struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	c.buf.Write(b)
	return c.ResponseWriter.Write(b)
}

func (c *captureWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// metaClaimInTx marks, in an operation's Metadata, a write whose every database
// write goes through the store's transactions (store.Store.tx), so that its
// Idempotency-Key can be claimed in the first of them (idempotentInTx). Set it
// with claimInTx() in routes.go.
const metaClaimInTx = "heldsway:claim-idempotency-key-in-transaction"

func claimInTx() map[string]any { return map[string]any{metaClaimInTx: true} }

// idemRequest is a write's Idempotency-Key with what scopes and identifies it.
type idemRequest struct {
	wsID       int64
	scope, key string
	fp         []byte
	r          *http.Request
	w          http.ResponseWriter
}

// readIdem reads the key and fingerprints the request. Without a key (or a
// store) it runs the operation as is; with an invalid key it answers 422.
// Either way ok is false and the request is done.
func (s *Server) readIdem(ctx huma.Context, next func(huma.Context)) (q idemRequest, ok bool) {
	key := ctx.Header("Idempotency-Key")
	if key == "" || s.Idempotency == nil {
		next(ctx)
		return q, false
	}
	if len(key) > 255 || !printableASCII(key) {
		s.writeErr(ctx, heldsway.Invalid("Idempotency-Key", "The Idempotency-Key header must be 1 to 255 printable ASCII characters."))
		return q, false
	}
	r, w := humago.Unwrap(ctx)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.writeErr(ctx, heldsway.Errorf(heldsway.EPAYLOADTOOLARGE, "The request body must not be larger than 1 MiB."))
		return q, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	h := sha256.New()
	io.WriteString(h, r.Method+"\x00"+r.URL.Path+"?"+r.URL.RawQuery+"\x00")
	h.Write(body)
	q = idemRequest{scope: "ip:" + clientIP(r), key: key, fp: h.Sum(nil), r: r, w: w}
	if p := principal(ctx.Context()); p != nil {
		q.wsID, q.scope = p.Workspace.ID, "key:"+strconv.FormatInt(p.Key.ID, 10)
	}
	return q, true
}

// idempotent makes a write operation honour Idempotency-Key: the first response
// is stored for 24 h; a retry with the same request gets it back with
// Idempotent-Replayed: true; the same key with a different request gets 422
// IDEMPOTENCY_KEY_REUSED; a concurrent retry waits for the first to finish, so
// the operation executes once. Keys are scoped to the API key that sent them.
//
// It claims the key in a transaction of its own before the operation runs; see
// idempotentInTx for the routes that claim it in their own transaction.
func (s *Server) idempotent(ctx huma.Context, next func(huma.Context)) {
	q, ok := s.readIdem(ctx, next)
	if !ok {
		return
	}
	wsID, scope, key, fp, r, w := q.wsID, q.scope, q.key, q.fp, q.r, q.w
	rec, err := s.Idempotency.ClaimIdempotencyKey(ctx.Context(), wsID, scope, key, fp)
	if err != nil {
		s.writeErr(ctx, err)
		return
	}
	if rec != nil {
		s.replay(ctx, w, wsID, scope, key, fp, rec)
		return
	}
	cw := &captureWriter{ResponseWriter: w}
	defer func() {
		// Detached from the request: the outcome must be stored even if the
		// client has gone away.
		bg := context.WithoutCancel(ctx.Context())
		if v := recover(); v != nil || cw.status >= 500 || cw.status == 0 {
			_ = s.Idempotency.ReleaseIdempotencyKey(bg, wsID, scope, key)
			if v != nil {
				panic(v)
			}
			return
		}
		if err := s.Idempotency.CompleteIdempotencyKey(bg, wsID, scope, key, cw.status,
			w.Header().Get("Content-Type"), cw.buf.Bytes()); err != nil {
			s.Logger.Error("store idempotent response", "request_id", requestID(ctx.Context()), "err", err)
		}
	}()
	next(humago.NewContext(ctx.Operation(), r.WithContext(ctx.Context()), cw))
}

// idempotentInTx is idempotent for routes whose writes all go through store
// transactions (metaClaimInTx): the key is claimed in the operation's own first
// transaction (heldsway.IdempotencyClaim), which saves a write transaction and a
// commit per request, and a retry of a stored response is answered from a read
// before anything runs. The response is held back until the outcome is known:
// if the operation's transaction found the key held by a concurrent request,
// what the operation answered is dropped and that request's response is
// awaited and replayed instead, as idempotent does.
func (s *Server) idempotentInTx(ctx huma.Context, next func(huma.Context)) {
	q, ok := s.readIdem(ctx, next)
	if !ok {
		return
	}
	rec, err := s.Idempotency.PeekIdempotencyKey(ctx.Context(), q.wsID, q.scope, q.key)
	if err != nil {
		s.writeErr(ctx, err)
		return
	}
	if rec != nil {
		s.replay(ctx, q.w, q.wsID, q.scope, q.key, q.fp, rec)
		return
	}
	claim := &heldsway.IdempotencyClaim{WorkspaceID: q.wsID, Scope: q.scope, Key: q.key, Fingerprint: q.fp}
	// Detached from the request: the outcome must be stored even if the client
	// has gone away.
	bg := context.WithoutCancel(ctx.Context())
	defer func() {
		if v := recover(); v != nil {
			if claim.Recorded() {
				_ = s.Idempotency.ReleaseIdempotencyKey(bg, q.wsID, q.scope, q.key)
			}
			panic(v)
		}
	}()
	bw := &bufferWriter{header: http.Header{}}
	next(humago.NewContext(ctx.Operation(), q.r.WithContext(heldsway.WithIdempotencyClaim(ctx.Context(), claim)), bw))
	if held := claim.Held(); held != nil {
		s.replay(ctx, q.w, q.wsID, q.scope, q.key, q.fp, held)
		return
	}
	if bw.status >= 500 || bw.status == 0 {
		if claim.Recorded() {
			_ = s.Idempotency.ReleaseIdempotencyKey(bg, q.wsID, q.scope, q.key)
		}
	} else if err := s.Idempotency.FinishIdempotencyClaim(bg, claim, bw.status, bw.header.Get("Content-Type"), bw.buf.Bytes()); err != nil {
		s.Logger.Error("store idempotent response", "request_id", requestID(ctx.Context()), "err", err)
	}
	bw.flush(q.w)
}

// bufferWriter holds a response back: headers, status and body.
type bufferWriter struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func (b *bufferWriter) Header() http.Header { return b.header }

func (b *bufferWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.buf.Write(p)
}

// flush sends the held response to w.
func (b *bufferWriter) flush(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	if b.status == 0 {
		return
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.buf.Bytes())
}

func (s *Server) replay(ctx huma.Context, w http.ResponseWriter, wsID int64, scope, key string, fp []byte, rec *heldsway.IdempotencyRecord) {
	deadline := time.Now().Add(idemWait)
	for {
		if !bytes.Equal(rec.Fingerprint, fp) {
			s.writeErr(ctx, heldsway.Errorf(heldsway.EIDEMPOTENCYREUSED,
				"This Idempotency-Key was already used with a different request."))
			return
		}
		if rec.Status != 0 {
			if rec.ContentType != "" {
				w.Header().Set("Content-Type", rec.ContentType)
			}
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(rec.Status)
			_, _ = w.Write(rec.Body)
			return
		}
		if time.Now().After(deadline) {
			s.writeErr(ctx, heldsway.Errorf(heldsway.ECONFLICT,
				"A request with this Idempotency-Key is still being processed. Retry later."))
			return
		}
		select {
		case <-ctx.Context().Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
		next, err := s.Idempotency.FindIdempotencyKey(ctx.Context(), wsID, scope, key)
		if heldsway.ErrorCode(err) == heldsway.ENOTFOUND {
			// The first request failed and released the key: claim it ourselves.
			s.writeErr(ctx, heldsway.Errorf(heldsway.ECONFLICT,
				"The first request with this Idempotency-Key failed. Retry to execute it again."))
			return
		} else if err != nil {
			s.writeErr(ctx, err)
			return
		}
		rec = next
	}
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
