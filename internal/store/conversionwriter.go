package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// Group commit of conversions on SQLite. SQLite has one writer, so a
// transaction per conversion serialises them all through BEGIN … COMMIT, and
// the commit (writing the changed pages to the WAL) was a quarter of a
// conversion's cost. Instead, callers queue their conversion and wait; one
// goroutine takes everything queued while its previous batch ran and records
// the batch in one transaction. A conversion's own failures (a duplicate
// order_id, found by a lookup before anything is written; a currency
// mismatch) happen before it writes, so it is answered with its error and the
// others go on: no savepoint is needed (a savepoint per conversion made SQLite
// copy every page it touched into a statement journal). There is no timer: a
// lone conversion is written at once, and batches grow only with concurrency.
// A caller is answered after its batch committed, so a 201 always names a
// stored order. If the batch fails (an error once a conversion began writing,
// or the commit), each conversion is retried in a transaction of its own, so
// one cannot fail the others.
//
// PostgreSQL takes concurrent writers, and commits of concurrent transactions
// share their WAL flushes, so there each conversion has its own transaction
// on the pool.
//
// The writer goroutine exits after convWriterIdle without work and is started
// again by the next conversion, so it needs no hook in Store.Close.

// maxConvBatch bounds one group commit.
const maxConvBatch = 64

// convBatchTimeout bounds one batch's transaction, independently of any caller.
const convBatchTimeout = 10 * time.Second

// convWriterIdle is how long a writer waits for work before it exits.
const convWriterIdle = 2 * time.Second

// convWriters holds each store's running writer.
var convWriters sync.Map // *Store → *convWriter

type convWriter struct {
	s    *Store
	reqs chan *convReq
	mu   sync.Mutex
	// pending counts conversions promised to this writer (counted before they
	// are sent): it exits only when none is, under mu, and is then dead.
	pending int
	dead    bool
}

type convReq struct {
	ctx  context.Context
	wsID int64
	in   *heldsway.ConversionInput
	now  time.Time
	o    *heldsway.Order
	err  error
	done chan struct{}
}

// recordConversion records a validated conversion: through the group-commit
// writer on SQLite, in a transaction of its own on PostgreSQL.
func (s *Store) recordConversion(ctx context.Context, wsID int64, in *heldsway.ConversionInput, now time.Time) (*heldsway.Order, error) {
	if s.Dialect.IsPostgres() {
		var o *heldsway.Order
		err := s.tx(ctx, func(tx *sql.Tx) error {
			q := &convQ{ctx: ctx, tx: tx, rollup: s.newRollup(ctx, tx, nil)}
			var err error
			if o, err = s.createConversion(q, wsID, in, now); err != nil {
				return err
			}
			return q.rollup.flush()
		})
		return o, unwrapWrite(err)
	}
	r := &convReq{ctx: ctx, wsID: wsID, in: in, now: now, done: make(chan struct{})}
	if err := s.enqueueConversion(r); err != nil {
		return nil, err
	}
	<-r.done
	return r.o, unwrapWrite(r.err)
}

// unwrapWrite drops the convWriteError mark, which only the writer reads.
func unwrapWrite(err error) error {
	var we convWriteError
	if errors.As(err, &we) {
		return we.err
	}
	return err
}

// enqueueConversion hands r to the store's writer, starting one if none runs.
func (s *Store) enqueueConversion(r *convReq) error {
	for {
		var w *convWriter
		if v, ok := convWriters.Load(s); ok {
			w = v.(*convWriter)
		} else {
			nw := &convWriter{s: s, reqs: make(chan *convReq, 4*maxConvBatch)}
			if v, loaded := convWriters.LoadOrStore(s, nw); loaded {
				w = v.(*convWriter)
			} else {
				w = nw
				go w.run()
			}
		}
		w.mu.Lock()
		if w.dead { // it retired between the lookup and now; the next lookup finds its successor or none
			w.mu.Unlock()
			continue
		}
		w.pending++
		w.mu.Unlock()
		select {
		case w.reqs <- r:
			return nil
		case <-r.ctx.Done():
			w.mu.Lock()
			w.pending--
			w.mu.Unlock()
			return unavailable(r.ctx.Err())
		}
	}
}

func (w *convWriter) run() {
	idle := time.NewTimer(convWriterIdle)
	defer idle.Stop()
	batch := make([]*convReq, 0, maxConvBatch)
	for {
		select {
		case r := <-w.reqs:
			batch = append(batch[:0], r)
		case <-idle.C:
			w.mu.Lock()
			if w.pending == 0 {
				w.dead = true
				convWriters.CompareAndDelete(w.s, w)
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
			idle.Reset(convWriterIdle)
			continue
		}
	drain:
		for len(batch) < maxConvBatch {
			select {
			case r := <-w.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		w.mu.Lock()
		w.pending -= len(batch)
		w.mu.Unlock()
		w.flush(batch)
		for _, r := range batch {
			close(r.done)
		}
		clear(batch) // let the orders be collected
		idle.Reset(convWriterIdle)
	}
}

// flush records batch in one transaction and sets every request's result. If
// the batch fails as a whole, each request is retried alone.
func (w *convWriter) flush(batch []*convReq) {
	err := w.record(batch)
	if err == nil {
		return
	}
	if len(batch) == 1 {
		batch[0].o, batch[0].err = nil, err
		return
	}
	for _, r := range batch {
		r.o, r.err = nil, nil
		if err := w.record([]*convReq{r}); err != nil {
			r.o, r.err = nil, err
		}
	}
}

// record runs batch in one transaction, each conversion in a savepoint; the
// error is the batch's own (the conversions' errors are in their requests).
func (w *convWriter) record(batch []*convReq) error {
	ctx, cancel := context.WithTimeout(context.Background(), convBatchTimeout)
	defer cancel()
	s := w.s
	prepared, err := s.prepareConv(ctx)
	if err != nil {
		return err
	}
	rollupPrepared, err := s.rollupStmts(ctx)
	if err != nil {
		return err
	}
	deadline, _ := ctx.Deadline()
	return s.tx(ctx, func(tx *sql.Tx) error {
		// The batch's rollups are flushed once, after its last conversion.
		q := &convQ{ctx: ctx, tx: tx, prepared: prepared, precheck: true, rollup: s.newRollup(ctx, tx, rollupPrepared)}
		for _, r := range batch {
			if err := r.ctx.Err(); err != nil {
				r.err = unavailable(err) // the caller left before its turn
				continue
			}
			// The request's values (the actor the audit entry names), the
			// batch's deadline, and no cancellation: a caller that leaves
			// mid-statement must not interrupt the others' transaction.
			rctx, cancel := context.WithDeadline(context.WithoutCancel(r.ctx), deadline)
			q.ctx = rctx
			err := w.recordOne(q, r)
			cancel()
			if err != nil {
				return err
			}
		}
		q.ctx = ctx
		return q.rollup.flush()
	})
}

// recordOne records r in q's transaction. Its own error is answered to it; an
// error after it began writing fails the batch.
func (w *convWriter) recordOne(q *convQ, r *convReq) error {
	o, err := w.s.createConversion(q, r.wsID, r.in, r.now)
	var we convWriteError
	if errors.As(err, &we) {
		return err
	}
	r.o, r.err = o, err
	return nil
}
