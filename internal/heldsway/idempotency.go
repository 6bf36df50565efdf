package heldsway

import (
	"context"
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
}
