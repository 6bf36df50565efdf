package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// A writer under load (its previous batch held more than one conversion)
// waits up to convLinger for more before it commits; one that is not writes
// at once.
func TestConvWriterLingersUnderLoad(t *testing.T) {
	// Not parallel: it sets convLinger.
	prev := convLinger
	convLinger = time.Second
	t.Cleanup(func() { convLinger = prev })
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(t.TempDir(), "hs.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ws := &heldsway.Workspace{Name: "Linger", Slug: "linger", Plan: "basic", Active: true}
	if err := st.CreateWorkspace(ctx, ws); err != nil {
		t.Fatal(err)
	}
	req := func(id string) *convReq {
		now := st.Now()
		in := heldsway.ConversionInput{OrderID: id, Currency: "USD", Total: 100, Subtotal: 100}
		in.Normalize(now)
		if err := in.Validate(now); err != nil {
			t.Fatal(err)
		}
		return &convReq{ctx: ctx, wsID: ws.ID, in: &in, now: now, done: make(chan struct{})}
	}
	answered := func(r *convReq, within time.Duration) bool {
		select {
		case <-r.done:
			if r.err != nil {
				t.Fatalf("%s: %v", r.in.OrderID, r.err)
			}
			return true
		case <-time.After(within):
			return false
		}
	}
	// A lone conversion is written at once, and so is the next one after it.
	w := &convWriter{s: st, reqs: make(chan *convReq, 8), pending: 2}
	go w.run()
	for _, id := range []string{"first", "second"} {
		r := req(id)
		w.reqs <- r
		if !answered(r, 500*time.Millisecond) {
			t.Fatalf("%s: a lone conversion waited", id)
		}
	}
	// A batch of two, queued before its writer starts: under load after it.
	w = &convWriter{s: st, reqs: make(chan *convReq, 8), pending: 4}
	a, b := req("a"), req("b")
	w.reqs <- a
	w.reqs <- b
	go w.run()
	if !answered(a, 5*time.Second) || !answered(b, 5*time.Second) {
		t.Fatal("a and b not answered")
	}
	before := st.ConversionWriterStats()
	c := req("c")
	w.reqs <- c
	if answered(c, 200*time.Millisecond) {
		t.Fatal("c was committed without waiting for more")
	}
	d := req("d")
	w.reqs <- d
	if !answered(c, 5*time.Second) || !answered(d, 5*time.Second) {
		t.Fatal("c and d not answered")
	}
	if n := st.ConversionWriterStats().Batches - before.Batches; n != 1 {
		t.Fatalf("c and d in %d batches, want 1", n)
	}
}

// The click attribution walks the visitor's clicks through clicks_visitor
// whatever the planner's statistics say. On a database never analysed SQLite
// picked clicks_created, every click of the cookie window per conversion.
func TestConvClickQueryUsesVisitorIndex(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(t.TempDir(), "hs.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rows, err := st.r.QueryContext(ctx, `EXPLAIN QUERY PLAN `+qConvClickSQLite, 1, "c", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	visitor := 0
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(detail, "c2 ") {
			if !strings.Contains(detail, "USING INDEX clicks_visitor") {
				t.Errorf("visitor clicks read as %q, want through clicks_visitor", detail)
			}
			visitor++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if visitor != 2 {
		t.Fatalf("%d reads of the visitor's clicks in the plan, want 2 (one per attribution model)", visitor)
	}
}
