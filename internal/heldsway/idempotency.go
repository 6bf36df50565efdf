package heldsway

import (
	"context"
	"sync"
	"time"
)

// IdempotencyTTL is how long a stored response answers retries (documented: 24 h).
const IdempotencyTTL = 24 * time.Hour

// IdempotencyRecord is the stored outcome of the first request under a key.
type IdempotencyRecord struct {
	Fingerprint []byte
	// Status is 0 while the first request is still running.
	Status      int
	ContentType string
	Body        []byte
	CreatedAt   time.Time
}

// IdempotencyStore claims keys and stores responses. Scope is the sender
// ("key:<api key id>"), so keys of different API keys never collide.
type IdempotencyStore interface {
	// ClaimIdempotencyKey claims the key for a request with fingerprint fp and
	// returns nil, or returns the record of an earlier claim still in force.
	ClaimIdempotencyKey(ctx context.Context, wsID int64, scope, key string, fp []byte) (*IdempotencyRecord, error)
	// FindIdempotencyKey reloads a record while waiting for a concurrent request.
	FindIdempotencyKey(ctx context.Context, wsID int64, scope, key string) (*IdempotencyRecord, error)
	CompleteIdempotencyKey(ctx context.Context, wsID int64, scope, key string, status int, contentType string, body []byte) error
	// ReleaseIdempotencyKey forgets a claim whose request failed with a 5xx, so a
	// retry executes again.
	ReleaseIdempotencyKey(ctx context.Context, wsID int64, scope, key string) error

	// PeekIdempotencyKey returns the record in force under the key (a request
	// running or a stored response), or nil when there is none or it expired or
	// was abandoned. It writes nothing: a request whose claim is made in its own
	// transaction (IdempotencyClaim) looks first, to replay without running.
	PeekIdempotencyKey(ctx context.Context, wsID int64, scope, key string) (*IdempotencyRecord, error)
	// FinishIdempotencyClaim stores the response of a request that ran with c:
	// into its claim when a transaction recorded it, or as a new record when the
	// request wrote nothing (a rejected request is replayed too). A record that
	// another request made meanwhile is left alone.
	FinishIdempotencyClaim(ctx context.Context, c *IdempotencyClaim, status int, contentType string, body []byte) error
}

// IdempotencyClaim is an Idempotency-Key claimed inside the request's own write
// transaction rather than in one of its own before the request runs: the store
// records it in the first transaction that the request commits, so the key and
// what the request wrote commit together, in one commit instead of two. Only
// routes whose writes all go through the store's transactions use it (see
// api.register); the API puts it in the request's context.
//
// When another request holds the key, the transaction records nothing and fails
// with ErrIdempotencyKeyHeld, and Held returns that request's record so the
// caller can wait for its response.
type IdempotencyClaim struct {
	WorkspaceID int64
	Scope, Key  string
	Fingerprint []byte

	mu       sync.Mutex
	recorded bool
	held     *IdempotencyRecord
}

// ErrIdempotencyKeyHeld is the error of a transaction that found its request's
// Idempotency-Key claimed by another request.
var ErrIdempotencyKeyHeld = &Error{Code: ECONFLICT,
	Message: "A request with this Idempotency-Key is still being processed. Retry later."}

// Recorded reports whether a committed transaction holds the claim.
func (c *IdempotencyClaim) Recorded() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.recorded
}

// MarkRecorded is called by the store once the transaction holding the claim
// has committed.
func (c *IdempotencyClaim) MarkRecorded() {
	c.mu.Lock()
	c.recorded = true
	c.mu.Unlock()
}

// Held returns the record of the request that holds the key, or nil.
func (c *IdempotencyClaim) Held() *IdempotencyRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held
}

// MarkHeld is called by the store when another request holds the key.
func (c *IdempotencyClaim) MarkHeld(rec *IdempotencyRecord) {
	c.mu.Lock()
	c.held = rec
	c.mu.Unlock()
}

type idempotencyClaimKey struct{}

// WithIdempotencyClaim returns ctx carrying c.
func WithIdempotencyClaim(ctx context.Context, c *IdempotencyClaim) context.Context {
	return context.WithValue(ctx, idempotencyClaimKey{}, c)
}

// IdempotencyClaimFrom returns the claim ctx carries, or nil.
func IdempotencyClaimFrom(ctx context.Context) *IdempotencyClaim {
	c, _ := ctx.Value(idempotencyClaimKey{}).(*IdempotencyClaim)
	return c
}
