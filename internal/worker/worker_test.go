package worker_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/worker"
)

// fakeBatches reports work for the first calls, fails once, then is idle.
type fakeBatches struct {
	mu    sync.Mutex
	calls int
	plan  []int // batches found per call; -1 fails
}

func (f *fakeBatches) ProcessLinkBatches(ctx context.Context, limit int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.calls
	f.calls++
	if i >= len(f.plan) {
		return 0, nil
	}
	if f.plan[i] < 0 {
		return 0, errors.New("database down")
	}
	return f.plan[i], nil
}

func (f *fakeBatches) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func TestRunner(t *testing.T) {
	t.Parallel()
	f := &fakeBatches{plan: []int{2, 1, 0, -1, 3}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	r := &worker.Runner{Batches: f, Interval: 5 * time.Millisecond}
	go func() { done <- r.Run(ctx) }()

	// Work found: polled again at once; idle and errors: polled on the ticker.
	deadline := time.Now().Add(5 * time.Second)
	for f.count() < 8 {
		if time.Now().After(deadline) {
			t.Fatalf("runner stalled after %d polls", f.count())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
