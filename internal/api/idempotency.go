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

// idempotent makes a write operation honour Idempotency-Key: the first response
// is stored for 24 h; a retry with the same request gets it back with
// Idempotent-Replayed: true; the same key with a different request gets 422
// IDEMPOTENCY_KEY_REUSED; a concurrent retry waits for the first to finish, so
// the operation executes once. Keys are scoped to the API key that sent them.
func (s *Server) idempotent(ctx huma.Context, next func(huma.Context)) {
	key := ctx.Header("Idempotency-Key")
	if key == "" || s.Idempotency == nil {
		next(ctx)
		return
	}
	if len(key) > 255 || !printableASCII(key) {
		s.writeErr(ctx, heldsway.Invalid("Idempotency-Key", "The Idempotency-Key header must be 1 to 255 printable ASCII characters."))
		return
	}
	r, w := humago.Unwrap(ctx)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.writeErr(ctx, heldsway.Errorf(heldsway.EPAYLOADTOOLARGE, "The request body must not be larger than 1 MiB."))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	h := sha256.New()
	io.WriteString(h, r.Method+"\x00"+r.URL.Path+"?"+r.URL.RawQuery+"\x00")
	h.Write(body)
	fp := h.Sum(nil)

	var wsID int64
	scope := "ip:" + clientIP(r)
	if p := principal(ctx.Context()); p != nil {
		wsID, scope = p.Workspace.ID, "key:"+strconv.FormatInt(p.Key.ID, 10)
	}
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
