package api

import (
	"context"
	"sync"
	"time"

	"github.com/sethvargo/go-limiter"
	"github.com/sethvargo/go-limiter/memorystore"
)

// RateLimiter takes one request from key's budget of limit per interval. It
// returns the limit, what remains, when the window resets (Unix nanoseconds) and
// whether the request may proceed.
type RateLimiter interface {
	Take(ctx context.Context, key string, limit uint64) (lim, remaining, reset uint64, ok bool, err error)
}

// MemoryLimiter keeps budgets in this process. Each distinct limit gets its own
// go-limiter store, so changing a key's limit takes effect on its next request.
type MemoryLimiter struct {
	Interval time.Duration
	mu       sync.Mutex
	stores   map[uint64]limiter.Store
}

// NewMemoryLimiter returns a limiter with per-interval budgets.
func NewMemoryLimiter(interval time.Duration) *MemoryLimiter {
	return &MemoryLimiter{Interval: interval, stores: map[uint64]limiter.Store{}}
}

func (m *MemoryLimiter) Take(ctx context.Context, key string, limit uint64) (uint64, uint64, uint64, bool, error) {
	m.mu.Lock()
	st, ok := m.stores[limit]
	if !ok {
		var err error
		st, err = memorystore.New(&memorystore.Config{Tokens: limit, Interval: m.Interval})
		if err != nil {
			m.mu.Unlock()
			return 0, 0, 0, false, err
		}
		m.stores[limit] = st
	}
	m.mu.Unlock()
	return st.Take(ctx, key)
}

// Close stops the stores' sweepers.
func (m *MemoryLimiter) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, st := range m.stores {
		_ = st.Close(context.Background())
	}
}
