package worker_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/worker"
)

// fakeApprover answers sweeps from a plan (approved per call; -1 fails) and
// records the times and limits it was called with.
type fakeApprover struct {
	mu     sync.Mutex
	plan   []int
	times  []time.Time
	limits []int
}

func (f *fakeApprover) AutoApproveDue(ctx context.Context, now time.Time, limit int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := len(f.times)
	f.times, f.limits = append(f.times, now), append(f.limits, limit)
	if i >= len(f.plan) {
		return 0, nil
	}
	if f.plan[i] < 0 {
		return 0, errors.New("database down")
	}
	return f.plan[i], nil
}

func (f *fakeApprover) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.times)
}

func TestAutoApprover(t *testing.T) {
	t.Parallel()
	t.Run("a full sweep is followed at once; a partial one waits for the ticker", func(t *testing.T) {
		t.Parallel()
		// 3 = limit: again at once; 3 again; then 1 (< limit): wait an interval.
		f := &fakeApprover{plan: []int{3, 3, 1}}
		now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.FixedZone("x", 3600))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		a := &worker.AutoApprover{Orders: f, Limit: 3, Interval: time.Hour, Now: func() time.Time { return now },
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		go func() { done <- a.Run(ctx) }()
		deadline := time.Now().Add(5 * time.Second)
		for f.calls() < 3 {
			if time.Now().After(deadline) {
				t.Fatalf("backlog not drained: %d sweeps", f.calls())
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		if n := f.calls(); n != 3 {
			t.Fatalf("%d sweeps before the first tick, want 3", n)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		for i, tm := range f.times {
			if tm.Location() != time.UTC || !tm.Equal(now) || f.limits[i] != 3 {
				t.Fatalf("sweep %d at %v limit %d", i, tm, f.limits[i])
			}
		}
	})
	t.Run("errors are retried at the next tick", func(t *testing.T) {
		t.Parallel()
		f := &fakeApprover{plan: []int{-1, -1, 2}}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		a := &worker.AutoApprover{Orders: f, Interval: 5 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		go func() { done <- a.Run(ctx) }()
		deadline := time.Now().Add(5 * time.Second)
		for f.calls() < 5 {
			if time.Now().After(deadline) {
				t.Fatalf("runner stalled after %d sweeps", f.calls())
			}
			time.Sleep(time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if f.limits[0] != 100 {
			t.Fatalf("default limit %d", f.limits[0])
		}
	})
}
