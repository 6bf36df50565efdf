// Package worker runs the background work of a node: today, bulk link batches.
// Work is claimed through the database, so any number of nodes may run a worker.
package worker

import (
	"context"
	"log/slog"
	"time"
)

// DefaultInterval is how often an idle worker polls for work.
const DefaultInterval = 500 * time.Millisecond

// LinkBatches processes queued bulk link creations; *store.Store implements it.
type LinkBatches interface {
	// ProcessLinkBatches claims up to limit batches and processes them,
	// returning how many it finished.
	ProcessLinkBatches(ctx context.Context, limit int) (int, error)
}

// Runner polls for work until its context ends.
type Runner struct {
	Batches  LinkBatches
	Interval time.Duration // DefaultInterval when zero
	Limit    int           // batches per poll; 10 when zero
	Logger   *slog.Logger
}

// Run processes batches until ctx is done, then returns nil. After a poll that
// found work it polls again at once; an error is logged and retried at the next
// tick, so a database outage pauses the worker rather than stopping it.
func (r *Runner) Run(ctx context.Context) error {
	interval, limit, log := r.Interval, r.Limit, r.Logger
	if interval <= 0 {
		interval = DefaultInterval
	}
	if limit <= 0 {
		limit = 10
	}
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if ctx.Err() != nil {
			return nil
		}
		n, err := r.Batches.ProcessLinkBatches(ctx, limit)
		if err != nil && ctx.Err() == nil {
			log.Error("link batches", "err", err)
		}
		if n > 0 && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
