package track

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// slowSource answers LinkTargetsBySlug once release is closed, counting calls.
type slowSource struct {
	calls   atomic.Int32
	release chan struct{}
}

func (s *slowSource) LinkTargetsBySlug(ctx context.Context, slug string) ([]heldsway.LinkTarget, error) {
	s.calls.Add(1)
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return []heldsway.LinkTarget{{WorkspaceID: 1, WorkspaceActive: true, LinkID: 7, Slug: slug,
		DestinationURL: "https://shop.example/", LinkActive: true, AffiliateID: 2, AffiliateStatus: "active",
		ReferralCode: "R", ProgramID: 3, ProgramStatus: "active", CookieDays: 30}}, nil
}

func (s *slowSource) CustomDomains(context.Context) (map[string]int64, error) { return nil, nil }
func (s *slowSource) LinkChangesSince(context.Context, time.Time) (*heldsway.LinkChanges, error) {
	return &heldsway.LinkChanges{}, nil
}
func (s *slowSource) ExistingLinks(context.Context, []int64) (map[int64]bool, error) { return nil, nil }

func waitCalls(t *testing.T, src *slowSource, n int32) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for src.calls.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d reads, want %d", src.calls.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCacheMissesShareOneRead: requests that miss a slug together cause one
// read; one that leaves does not fail the others; after an invalidation a
// miss reads again.
func TestCacheMissesShareOneRead(t *testing.T) {
	t.Parallel()
	src := &slowSource{release: make(chan struct{})}
	c := NewCache(src, time.Now)
	ctx := context.Background()

	// A caller that gives up gets its own error; the read goes on.
	gone, cancel := context.WithCancel(ctx)
	left := make(chan error, 1)
	go func() {
		_, err := c.Resolve(gone, "go.example", "hot")
		left <- err
	}()
	waitCalls(t, src, 1)
	cancel()
	if err := <-left; !errors.Is(err, context.Canceled) {
		t.Fatalf("a caller that left got %v", err)
	}

	var wg sync.WaitGroup
	got := make([]int64, 20)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tg, err := c.Resolve(ctx, "go.example", "hot")
			if err != nil || tg == nil {
				t.Errorf("resolve: %v %v", tg, err)
				return
			}
			got[i] = tg.LinkID
		}()
	}
	time.Sleep(50 * time.Millisecond) // let them all miss
	close(src.release)
	wg.Wait()
	for _, id := range got {
		if id != 7 {
			t.Fatalf("link ids %v", got)
		}
	}
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("%d reads for 21 concurrent misses, want 1", n)
	}
	// Cached now.
	if _, err := c.Resolve(ctx, "go.example", "hot"); err != nil || src.calls.Load() != 1 {
		t.Fatalf("a hit read again: %d reads, %v", src.calls.Load(), err)
	}
	c.Invalidate("hot")
	if _, err := c.Resolve(ctx, "go.example", "hot"); err != nil || src.calls.Load() != 2 {
		t.Fatalf("after an invalidation: %d reads, want 2; %v", src.calls.Load(), err)
	}
}
