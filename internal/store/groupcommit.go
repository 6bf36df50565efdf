package store

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// groupCommitter runs small independent writes of concurrent requests in one
// transaction: a group commit, like tokenWriter's, for writes given as
// functions. Each caller waits until the transaction holding its write has
// committed. There is no timer: a lone write commits at once, and a group grows
// only with concurrency (what queued while the previous commit ran). If a group
// fails, each write is retried in a transaction of its own, so one bad write
// cannot fail the others; the functions must therefore be safe to run again
// after a rollback, as plain UPDATEs and INSERTs are.
//
// It serves the idempotency records' completions: one per idempotent write,
// each a one-row UPDATE whose commit, on its own, cost as much as the write's
// own transaction (on SQLite the WAL frames of a commit, on PostgreSQL its
// fsync).
type groupCommitter struct {
	s    *Store
	reqs chan *groupReq
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

type groupReq struct {
	fn  func(ctx context.Context, tx *sql.Tx) error
	err chan error // buffered: the committer never blocks on a caller that left
}

// maxGroup bounds one group; groupTimeout bounds its transaction.
const (
	maxGroup     = 256
	groupTimeout = 10 * time.Second
)

func newGroupCommitter(s *Store) *groupCommitter {
	g := &groupCommitter{s: s, reqs: make(chan *groupReq, maxGroup), quit: make(chan struct{}), done: make(chan struct{})}
	go g.run()
	return g
}

// do queues fn and waits until it has committed (or failed).
func (g *groupCommitter) do(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	r := &groupReq{fn: fn, err: make(chan error, 1)}
	select {
	case g.reqs <- r:
	case <-g.quit:
		return errStoreClosed
	case <-ctx.Done():
		return unavailable(ctx.Err())
	}
	select {
	case err := <-r.err:
		return err
	case <-g.done:
		select {
		case err := <-r.err:
			return err
		default:
			return errStoreClosed
		}
	case <-ctx.Done():
		return unavailable(ctx.Err())
	}
}

func (g *groupCommitter) run() {
	defer close(g.done)
	batch := make([]*groupReq, 0, maxGroup)
	for {
		select {
		case r := <-g.reqs:
			batch = append(batch[:0], r)
		case <-g.quit:
			for {
				select {
				case r := <-g.reqs:
					r.err <- errStoreClosed
				default:
					return
				}
			}
		}
	drain:
		for len(batch) < maxGroup {
			select {
			case r := <-g.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		g.flush(batch)
		clear(batch)
	}
}

func (g *groupCommitter) flush(batch []*groupReq) {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	err := g.s.tx(ctx, func(tx *sql.Tx) error {
		for _, r := range batch {
			if err := r.fn(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && len(batch) > 1 {
		for _, r := range batch {
			r.err <- g.s.tx(ctx, func(tx *sql.Tx) error { return r.fn(ctx, tx) })
		}
		return
	}
	for _, r := range batch {
		r.err <- err
	}
}

// close stops the committer after answering what is queued; later writes fail.
func (g *groupCommitter) close() {
	g.once.Do(func() { close(g.quit) })
	<-g.done
}
