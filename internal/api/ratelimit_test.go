package api

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// TestLimiters checks both limiters enforce a budget and report it. The Redis
// one runs when HELDSWAY_TEST_REDIS_URL is set (CI sets it).
func TestLimiters(t *testing.T) {
	t.Parallel()
	limiters := map[string]RateLimiter{"memory": NewMemoryLimiter(time.Minute)}
	if url := os.Getenv("HELDSWAY_TEST_REDIS_URL"); url != "" {
		rl, rdb, err := NewRedisLimiter(url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rdb.Close() })
		limiters["redis"] = rl
	}
	for name, l := range limiters {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			key := fmt.Sprintf("test:%s:%d", name, time.Now().UnixNano())
			for i := range 3 {
				lim, rem, reset, ok, err := l.Take(ctx, key, 3)
				if err != nil || !ok || lim != 3 || rem != uint64(2-i) {
					t.Fatalf("take %d: lim=%d rem=%d ok=%v err=%v", i, lim, rem, ok, err)
				}
				if r := time.Unix(0, int64(reset)); r.Before(time.Now()) || r.After(time.Now().Add(61*time.Second)) {
					t.Fatalf("reset %v out of range", r)
				}
			}
			if _, rem, _, ok, _ := l.Take(ctx, key, 3); ok || rem != 0 {
				t.Fatalf("fourth take allowed (rem %d)", rem)
			}
			// Another key has its own budget.
			if _, _, _, ok, _ := l.Take(ctx, key+":other", 3); !ok {
				t.Fatal("separate key limited")
			}
		})
	}
}
