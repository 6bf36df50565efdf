package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// Group commit of conversions. On SQLite, which has one writer, a
// transaction per conversion serialises them all through BEGIN … COMMIT, and
// the commit (writing the changed pages to the WAL) was a quarter of a
// conversion's cost. Instead, callers queue their conversion and wait; one
// goroutine takes everything queued while its previous batch ran and records
// the batch in one transaction. A conversion's own failures (a duplicate
// order_id, found by a lookup before anything is written; a currency
// mismatch) happen before it writes, so it is answered with its error and the
// others go on: no savepoint is needed (a savepoint per conversion made SQLite
// copy every page it touched into a statement journal). A lone conversion is
// written at once. Under load (the previous batch held more than one), the
// writer waits up to convLinger for the batch to reach convLingerBatch: the
// commit (its WAL page writes, one pwrite pair per page) cost about as much as
// three conversions, and at 1,500/s on two cores batches of two to four left
// it a third of the writer's time.
// A caller is answered after its batch committed, so a 201 always names a
// stored order. If a conversion fails once it began writing, the batch rolls
// back, that conversion is retried alone and the others run again as one
// batch; if the batch fails as a whole (the commit), each conversion is
// retried in a transaction of its own. Either way one cannot fail the others
// (see flush).
//
// PostgreSQL takes concurrent writers, but a transaction per conversion cost
// it about a dozen statements and a commit per conversion, each statement
// opening and locking its table and indexes, and PostgreSQL's CPU ran out at
// ~600 conversions/s on two cores. A batch writes its order items, audit
// entries, events and rollup rows in a statement per table, and commits once.
// There convWritersPG writers take batches from the same queue, so that one
// batch's round trips overlap another's; a conversion that another writer's
// batch recorded first under the same order_id is found by the insert (which
// waits for that batch's commit), fails its batch, and its rerun answers the
// duplicate. Rollup rows are written in key order, so two batches cannot
// deadlock on them.
//
// The writer goroutines exit after convWriterIdle without work and are started
// again by the next conversion, so they need no hook in Store.Close.

// convLinger is how long a writer under load waits for its batch to reach
// convLingerBatch. A conversion may wait that long more; a millisecond is
// small next to the 30 ms p99 the conversions are held to.
var convLinger = time.Millisecond

// convLingerBatch is the batch a writer under load waits for.
const convLingerBatch = 16

// maxConvBatch bounds one group commit.
const maxConvBatch = 64

// convBatchTimeout bounds one batch's transaction, independently of any caller.
const convBatchTimeout = 10 * time.Second

// convWritersPG is how many writers record batches at once on PostgreSQL.
const convWritersPG = 4

// convWriterIdle is how long a writer waits for work before it exits.
const convWriterIdle = 2 * time.Second

// ConversionWriterStats counts the conversion writers' work since the store
// opened. Conversions ÷ Batches is the group commit's mean batch.
type ConversionWriterStats struct {
	Conversions int64 // conversions the writer answered
	Batches     int64 // transactions it committed
	Reruns      int64 // batches run again without a conversion that spoiled them
	Alone       int64 // conversions retried in a transaction of their own after their batch failed
	// Busy is the time the writers spent recording batches (not waiting for
	// them), summed: over a span, Busy ÷ span is their utilisation, on SQLite
	// the share of the one write connection conversions use (on PostgreSQL
	// it can reach convWritersPG).
	Busy time.Duration
}

type convWriterStats struct {
	conversions, batches, reruns, alone, busy atomic.Int64
}

// ConversionWriterStats returns the conversion writer's counters.
func (s *Store) ConversionWriterStats() ConversionWriterStats {
	c := &s.convStats
	return ConversionWriterStats{Conversions: c.conversions.Load(), Batches: c.batches.Load(), Reruns: c.reruns.Load(),
		Alone: c.alone.Load(), Busy: time.Duration(c.busy.Load())}
}

// convWriters holds each store's running writer.
var convWriters sync.Map // *Store → *convWriter

// convWriter is a store's queue of conversions and the goroutines recording
// them (one on SQLite, convWritersPG on PostgreSQL).
type convWriter struct {
	s    *Store
	reqs chan *convReq
	mu   sync.Mutex
	// pending counts conversions promised to this writer (counted before they
	// are sent): its goroutines exit only when none is, under mu, and it is
	// then dead.
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

// recordConversion records a validated conversion through the group-commit
// writer.
func (s *Store) recordConversion(ctx context.Context, wsID int64, in *heldsway.ConversionInput, now time.Time) (*heldsway.Order, error) {
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
				n := 1
				if s.Dialect.IsPostgres() {
					n = convWritersPG
				}
				for range n {
					go w.run()
				}
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
	linger := time.NewTimer(convLinger)
	linger.Stop()
	last := 0 // the previous batch's size
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
		if last > 1 && len(batch) < convLingerBatch {
			linger.Reset(convLinger)
		wait:
			for len(batch) < convLingerBatch {
				select {
				case r := <-w.reqs:
					batch = append(batch, r)
				case <-linger.C:
					break wait
				}
			}
			linger.Stop()
		}
		last = len(batch)
		w.mu.Lock()
		w.pending -= len(batch)
		w.mu.Unlock()
		began := time.Now()
		w.flush(batch)
		w.s.convStats.conversions.Add(int64(len(batch)))
		for _, r := range batch {
			close(r.done)
		}
		w.s.convStats.busy.Add(int64(time.Since(began)))
		clear(batch) // let the orders be collected
		idle.Reset(convWriterIdle)
	}
}

// maxConvReruns bounds how many times flush runs a batch again without a
// conversion that spoiled it before it retries each conversion alone.
const maxConvReruns = 3

// flush records batch and sets every request's result. A conversion that fails
// once it began writing spoils the transaction, which rolls back: that one is
// retried alone (its error may have been caused by the batch), and the others
// run again as one batch. So a bad conversion costs its batch two more
// transactions, not one per conversion (a batch of 64 retried alone meant 64
// commits while every newer conversion waited). A failure that is the batch's
// own (begin, the rollups, the commit) has no culprit; then, or after
// maxConvReruns culprits, each conversion is retried alone, so none can fail
// the others.
func (w *convWriter) flush(batch []*convReq) {
	for reruns := 0; ; reruns++ {
		failed, err := w.record(batch)
		if err == nil {
			return
		}
		for _, r := range batch { // the rolled-back transaction's results
			r.o, r.err = nil, nil
		}
		if len(batch) == 1 {
			batch[0].err = err
			return
		}
		if failed < 0 || reruns == maxConvReruns {
			w.s.convStats.alone.Add(int64(len(batch)))
			for i, r := range batch {
				if _, err := w.record(batch[i : i+1]); err != nil {
					r.o, r.err = nil, err
				}
			}
			return
		}
		w.s.convStats.reruns.Add(1)
		w.s.convStats.alone.Add(1)
		bad := batch[failed]
		if _, err := w.record([]*convReq{bad}); err != nil {
			bad.o, bad.err = nil, err
		}
		// A new slice: run answers the whole of its batch afterwards.
		batch = append(slices.Clip(batch[:failed]), batch[failed+1:]...)
	}
}

// record runs batch in one transaction; the error is the batch's own (the
// conversions' errors are in their requests), and failed is the index of the
// conversion that caused it, -1 if none did.
//
// On SQLite the statements run with contexts that are never done:
// modernc.org/sqlite starts a goroutine per statement to interrupt it when its
// context ends, and with a dozen statements per conversion those goroutines
// (and a timer per request for its deadline) were a tenth of the writer's
// time. For the same reason the transaction is not a *sql.Tx (see connTx).
// The batch's deadline is checked between conversions and before the commit;
// the conversion's statements are indexed lookups and single-row inserts, so
// none runs long on its own. On PostgreSQL, where a statement can wait on
// another transaction's lock, they run with the batch's deadline. Either way
// a caller that leaves mid-batch does not interrupt the others' transaction.
func (w *convWriter) record(batch []*convReq) (failed int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), convBatchTimeout)
	defer cancel()
	s := w.s
	// Attribution reads clicks: the journaled ones must be in the database
	// (before the batch takes the writer connection).
	if err := s.syncClicks(ctx); err != nil {
		return -1, err
	}
	failed = -1
	pg := s.Dialect.IsPostgres()
	stmtCtx := context.WithoutCancel(ctx)
	if pg {
		stmtCtx = ctx
	}
	err = s.connTx(ctx, func(c *sql.Conn) error {
		// The batch's rollups are flushed once, after its last conversion, and
		// its order items, audit entries and events written then too.
		q := &convQ{ctx: stmtCtx, db: c, sqlite: !pg, rollup: s.newRollup(stmtCtx, c, nil),
			batchRows: &convRows{}}
		for i, r := range batch {
			if err := ctx.Err(); err != nil {
				return err // the batch's deadline
			}
			if err := r.ctx.Err(); err != nil {
				r.err = unavailable(err) // the caller left before its turn
				continue
			}
			// The request's values (the actor the audit entry names).
			q.ctx = valuesOf{stmtCtx, r.ctx}
			if err := w.recordOne(q, r); err != nil {
				failed = i
				return err
			}
		}
		q.ctx = stmtCtx
		if err := q.batchRows.write(q); err != nil {
			return err // no culprit: each conversion is retried alone
		}
		return q.rollup.flush()
	})
	if err == nil {
		failed = -1
		s.convStats.batches.Add(1)
	}
	return failed, err
}

// valuesOf is a context with ctx's deadline and cancellation and vals' values.
type valuesOf struct {
	context.Context
	vals context.Context
}

func (c valuesOf) Value(key any) any { return c.vals.Value(key) }

// connTx runs fn in a transaction on a connection of the write pool (on
// SQLite, its one writer connection), begun and ended by statements of its own
// rather than as a *sql.Tx: database/sql starts a goroutine for every query of
// a Tx (to close the rows if the Tx's context ends first), about ten per
// conversion. On SQLite fn's statements must use contexts that are never done,
// or modernc.org/sqlite starts one per statement instead. ctx bounds the wait
// for the connection and, checked once fn returns, the transaction: past it,
// the transaction rolls back.
func (s *Store) connTx(ctx context.Context, fn func(c *sql.Conn) error) (err error) {
	c, err := s.w.Conn(ctx)
	if err != nil {
		return unavailable(err)
	}
	defer c.Close()
	bg := context.WithoutCancel(ctx)
	begin := "BEGIN IMMEDIATE" // the write lock now, not at the first write: no deadlock between two upgrading readers
	if s.Dialect.IsPostgres() {
		begin = "BEGIN"
	}
	if _, err := c.ExecContext(bg, begin); err != nil {
		return unavailable(err)
	}
	if err = fn(c); err == nil {
		err = ctx.Err()
	}
	if err == nil {
		if _, err = c.ExecContext(bg, "COMMIT"); err == nil {
			return nil
		}
	}
	if _, rerr := c.ExecContext(bg, "ROLLBACK"); rerr != nil {
		// The transaction may still be open: the connection must not go
		// back to the pool, where the next writer would run inside it.
		_ = c.Raw(func(any) error { return driver.ErrBadConn })
	}
	return unavailable(err)
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
