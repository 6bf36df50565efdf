package api

import (
	"context"
	"testing"
	"time"
)

// fakeClock drives a MemoryLimiter's windows.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newTestLimiter(c *fakeClock) *MemoryLimiter {
	m := NewMemoryLimiter(time.Minute)
	m.now = c.now
	return m
}

// TestMemoryLimiterLargeBudgetsRefill: every window grants the whole budget,
// however large. go-limiter's memorystore, used before, refilled a 1,000,000
// per-minute budget with 60,000 from the second minute on.
func TestMemoryLimiterLargeBudgetsRefill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := &fakeClock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	m := newTestLimiter(c)
	const limit = 1_000_000 // the largest per-key budget a key may have
	for window := range 3 {
		for i := range limit {
			if _, rem, _, ok, _ := m.Take(ctx, "key:1", limit); !ok || rem != uint64(limit-1-i) {
				t.Fatalf("window %d, take %d: ok=%v remaining=%d", window, i, ok, rem)
			}
		}
		if _, rem, _, ok, _ := m.Take(ctx, "key:1", limit); ok || rem != 0 {
			t.Fatalf("window %d: take over the budget allowed (remaining %d)", window, rem)
		}
		c.add(time.Minute)
	}
}

func TestMemoryLimiterWindows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	c := &fakeClock{t: start}
	m := newTestLimiter(c)

	lim, rem, reset, ok, err := m.Take(ctx, "k", 2)
	if err != nil || !ok || lim != 2 || rem != 1 || reset != uint64(start.Add(time.Minute).UnixNano()) {
		t.Fatalf("first take: lim=%d rem=%d reset=%d ok=%v err=%v", lim, rem, reset, ok, err)
	}
	c.add(59 * time.Second)
	if _, rem, _, ok, _ := m.Take(ctx, "k", 2); !ok || rem != 0 {
		t.Fatalf("second take: ok=%v rem=%d", ok, rem)
	}
	if _, _, _, ok, _ := m.Take(ctx, "k", 2); ok {
		t.Fatal("third take in one window allowed")
	}
	// A raised limit applies at once, within the same window.
	if _, rem, _, ok, _ := m.Take(ctx, "k", 3); !ok || rem != 0 {
		t.Fatalf("take after raising the limit: ok=%v rem=%d", ok, rem)
	}

	// After an idle stretch the window is the one containing now, aligned to
	// the key's first request, and the budget is whole again.
	c.add(2*time.Minute + 30*time.Second) // now start + 3m29s
	_, rem, reset, ok, _ = m.Take(ctx, "k", 2)
	if !ok || rem != 1 || reset != uint64(start.Add(4*time.Minute).UnixNano()) {
		t.Fatalf("after idle: ok=%v rem=%d reset=%v", ok, rem, time.Unix(0, int64(reset)).UTC())
	}
}

func TestMemoryLimiterSweepsIdleKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := &fakeClock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	m := newTestLimiter(c)
	for _, k := range []string{"ip:1", "ip:2", "ip:3"} {
		m.Take(ctx, k, 10)
	}
	c.add(2 * time.Minute)
	m.Take(ctx, "ip:4", 10) // a new key triggers the sweep
	m.mu.RLock()
	n := len(m.windows)
	m.mu.RUnlock()
	if n != 1 {
		t.Fatalf("%d windows kept after the sweep, want 1", n)
	}
}
