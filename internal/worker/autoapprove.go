package worker

import (
	"context"
	"log/slog"
	"time"
)

// DefaultAutoApproveInterval is how often an idle auto-approver sweeps. Orders
// fall due on whole days (auto_approve_delay_days), so a few seconds of lag is
// invisible, and an idle sweep costs one index probe.
const DefaultAutoApproveInterval = 5 * time.Second

// OrderApprover approves orders whose auto-approval time has passed;
// *store.Store implements it (heldsway.OrderService.AutoApproveDue).
type OrderApprover interface {
	AutoApproveDue(ctx context.Context, now time.Time, limit int) (int, error)
}

// AutoApprover sweeps for due orders until its context ends. The schedule is
// the orders' persisted auto_approve_at, so a restarted node simply picks up
// what fell due while it was down; and each approval is a conditional UPDATE,
// so any number of nodes may run one.
type AutoApprover struct {
	Orders   OrderApprover
	Interval time.Duration    // DefaultAutoApproveInterval when zero
	Limit    int              // orders per sweep; 100 when zero
	Now      func() time.Time // time.Now when nil
	Logger   *slog.Logger
}

// Run sweeps until ctx is done, then returns nil. A sweep that filled its limit
// is followed at once by another, so a backlog (after downtime) drains without
// waiting for the ticker; an error is logged and retried at the next tick.
func (a *AutoApprover) Run(ctx context.Context) error {
	interval, limit, now, log := a.Interval, a.Limit, a.Now, a.Logger
	if interval <= 0 {
		interval = DefaultAutoApproveInterval
	}
	if limit <= 0 {
		limit = 100
	}
	if now == nil {
		now = time.Now
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
		n, err := a.Orders.AutoApproveDue(ctx, now().UTC(), limit)
		if err != nil && ctx.Err() == nil {
			log.Error("auto-approval", "err", err)
		}
		if n > 0 {
			log.Info("auto-approval", "approved", n)
		}
		if n >= limit && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
