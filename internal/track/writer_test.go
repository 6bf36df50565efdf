package track

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// gatedInsert records batch sizes; while gate is set, each insert waits on it.
type gatedInsert struct {
	mu      sync.Mutex
	sizes   []int
	ids     []string
	gate    chan struct{}
	entered chan struct{}
	fail    func(batch int) error
}

func newGated() *gatedInsert {
	return &gatedInsert{gate: make(chan struct{}), entered: make(chan struct{}, 100)}
}

func (g *gatedInsert) insert(_ context.Context, clicks []heldsway.Click) error {
	g.entered <- struct{}{}
	<-g.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	n := len(g.sizes)
	g.sizes = append(g.sizes, len(clicks))
	for _, c := range clicks {
		g.ids = append(g.ids, c.ClickID)
	}
	if g.fail != nil {
		return g.fail(n)
	}
	return nil
}

func (g *gatedInsert) batches() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.sizes...)
}

// waitQueued waits until n clicks sit in w's queue.
func waitQueued(t *testing.T, w *Writer, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(w.queue) < n {
		if time.Now().After(deadline) {
			t.Fatalf("queued %d, want %d", len(w.queue), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// writeAll starts n concurrent writes and returns their results when all end.
func writeAll(w *Writer, from, n int) func() []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w.Write(context.Background(), heldsway.Click{ClickID: fmt.Sprint(from + i)})
		}()
	}
	return func() []error { wg.Wait(); return errs }
}

func TestWriterBatchesUnderConcurrency(t *testing.T) {
	t.Parallel()
	g := newGated()
	w := NewWriter(g.insert, 0, 1)
	defer w.Close(context.Background())

	// The first click's transaction is held open; the 99 that arrive meanwhile
	// must then commit together in one transaction.
	first := writeAll(w, 0, 1)
	<-g.entered
	rest := writeAll(w, 1, 99)
	waitQueued(t, w, 99)
	close(g.gate)
	for _, err := range append(first(), rest()...) {
		if err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	if got := g.batches(); len(got) != 2 || got[0] != 1 || got[1] != 99 {
		t.Fatalf("batches %v, want [1 99]", got)
	}
	if b, c := w.Stats(); b != 2 || c != 100 {
		t.Fatalf("stats %d batches %d clicks, want 2, 100", b, c)
	}
}

func TestWriterMaxBatch(t *testing.T) {
	t.Parallel()
	g := newGated()
	w := NewWriter(g.insert, 10, 1)
	defer w.Close(context.Background())
	first := writeAll(w, 0, 1)
	<-g.entered
	rest := writeAll(w, 1, 35)
	waitQueued(t, w, 35)
	close(g.gate)
	first()
	rest()
	got := g.batches()
	total := 0
	for _, n := range got {
		if n > 10 {
			t.Fatalf("batch of %d, max 10: %v", n, got)
		}
		total += n
	}
	if total != 36 || len(got) != 5 {
		t.Fatalf("batches %v, want 1+10+10+10+5", got)
	}
}

// With three writers, three batches are in flight at once, and no fourth
// begins before one of them ends; Close still writes everything queued.
func TestWriterConcurrentBatches(t *testing.T) {
	t.Parallel()
	g := newGated()
	w := NewWriter(g.insert, 0, 3)
	var waits []func() []error
	for i := range 3 {
		waits = append(waits, writeAll(w, i, 1))
		select {
		case <-g.entered: // a transaction of its own, while the others are open
		case <-time.After(5 * time.Second):
			t.Fatalf("batch %d did not begin while %d were in flight", i+1, i)
		}
	}
	waits = append(waits, writeAll(w, 3, 20))
	waitQueued(t, w, 20)
	select {
	case <-g.entered:
		t.Fatal("a fourth batch began while three were in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(g.gate)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, wait := range waits {
		for _, err := range wait() {
			if err != nil {
				t.Fatalf("write: %v", err)
			}
		}
	}
	got := g.batches()
	total := 0
	for _, n := range got {
		total += n
	}
	if total != 23 || len(got) < 4 {
		t.Fatalf("batches %v, want three of 1 and the 20 queued after", got)
	}
	if b, c := w.Stats(); b != int64(len(got)) || c != 23 {
		t.Fatalf("stats %d batches %d clicks, want %d, 23", b, c, len(got))
	}
}

func TestWriterErrorReachesEveryWaiterOfTheBatch(t *testing.T) {
	t.Parallel()
	boom := errors.New("disk full")
	g := newGated()
	g.fail = func(batch int) error {
		if batch == 1 {
			return boom
		}
		return nil
	}
	w := NewWriter(g.insert, 0, 1)
	defer w.Close(context.Background())
	first := writeAll(w, 0, 1)
	<-g.entered
	second := writeAll(w, 1, 20)
	waitQueued(t, w, 20)
	close(g.gate)
	if errs := first(); errs[0] != nil {
		t.Fatalf("first batch: %v", errs[0])
	}
	for i, err := range second() {
		if !errors.Is(err, boom) {
			t.Fatalf("waiter %d of the failed batch got %v", i, err)
		}
	}
	// The writer goes on after a failed batch.
	if err := w.Write(context.Background(), heldsway.Click{ClickID: "after"}); err != nil {
		t.Fatalf("write after a failure: %v", err)
	}
}

func TestWriterPanicFailsTheBatch(t *testing.T) {
	t.Parallel()
	w := NewWriter(func(context.Context, []heldsway.Click) error { panic("bad driver") }, 0, 1)
	defer w.Close(context.Background())
	if err := w.Write(context.Background(), heldsway.Click{}); err == nil {
		t.Fatal("a panicking insert acknowledged the click")
	}
}

func TestWriterCloseDrainsTheQueue(t *testing.T) {
	t.Parallel()
	g := newGated()
	w := NewWriter(g.insert, 16, 1) // queue capacity 64
	first := writeAll(w, 0, 1)
	<-g.entered
	rest := writeAll(w, 1, 50)
	waitQueued(t, w, 50)

	closed := make(chan error, 1)
	go func() { closed <- w.Close(context.Background()) }()
	// Close stops intake at once, while the queue still waits.
	deadline := time.Now().Add(5 * time.Second)
	for {
		w.mu.RLock()
		stopped := w.closed
		w.mu.RUnlock()
		if stopped {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Close did not stop intake")
		}
		time.Sleep(time.Millisecond)
	}
	if err := w.Write(context.Background(), heldsway.Click{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) before the queue was written", err)
	default:
	}
	close(g.gate)
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	for _, err := range append(first(), rest()...) {
		if err != nil {
			t.Fatalf("a queued click was not written: %v", err)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.ids) != 51 {
		t.Fatalf("wrote %d clicks, want 51", len(g.ids))
	}
}

func TestWriterCloseTimeout(t *testing.T) {
	t.Parallel()
	g := newGated()
	w := NewWriter(g.insert, 0, 1)
	pending := writeAll(w, 0, 1)
	<-g.entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := w.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("close with a stuck insert: %v", err)
	}
	close(g.gate)
	pending()
}

func TestWriterWaitEndsWithTheCaller(t *testing.T) {
	t.Parallel()
	g := newGated()
	w := NewWriter(g.insert, 0, 1)
	defer func() { close(g.gate); w.Close(context.Background()) }()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Write(ctx, heldsway.Click{}) }()
	<-g.entered
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("write after the caller left: %v", err)
	}
}
