package worker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// DefaultPayoutInterval is how often the payout scheduler looks for due
// periods. A period falls due at midnight of the workspace's time zone, so a
// minute of lag is invisible, and a look at a period already run is one read.
const DefaultPayoutInterval = time.Minute

// PayoutRunner lists the workspaces whose payouts run on their own and runs a
// period; *store.Store implements it.
type PayoutRunner interface {
	PayoutSchedules(ctx context.Context) ([]heldsway.PayoutSchedule, error)
	RunPayouts(ctx context.Context, wsID int64, in heldsway.PayoutRunInput) (*heldsway.PayoutRun, error)
}

// PayoutScheduler runs each workspace's payout run when its period (weekly,
// biweekly or monthly, in the workspace's time zone) has ended. The run of a
// period is claimed in the database (unique per workspace and period), so any
// number of nodes may run a scheduler and a period is paid once; a node that
// died mid-run leaves a lease that the next tick of any node takes over.
type PayoutScheduler struct {
	Runs     PayoutRunner
	Interval time.Duration    // DefaultPayoutInterval when zero
	Now      func() time.Time // time.Now when nil
	Logger   *slog.Logger
}

// Run checks at once and then every Interval until ctx is done; it returns nil.
func (p *PayoutScheduler) Run(ctx context.Context) error {
	interval := p.Interval
	if interval <= 0 {
		interval = DefaultPayoutInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		p.Tick(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Tick runs every due period once and returns how many runs it completed.
// Periods already run (or running on another node) are skipped; errors are
// logged and retried at the next tick.
func (p *PayoutScheduler) Tick(ctx context.Context) int {
	now, log := p.Now, p.Logger
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	schedules, err := p.Runs.PayoutSchedules(ctx)
	if err != nil {
		if ctx.Err() == nil {
			log.Error("payout schedules", "err", err)
		}
		return 0
	}
	done := 0
	for _, s := range schedules {
		if ctx.Err() != nil {
			return done
		}
		loc, err := time.LoadLocation(s.Timezone)
		if err != nil {
			loc = time.UTC // validated when set; UTC rather than never paying
		}
		key, end, ok := heldsway.DuePayoutPeriod(s.Frequency, now(), loc)
		if !ok || !s.CreatedAt.Before(end) {
			continue // manual, or the workspace did not exist in the period
		}
		run, err := p.Runs.RunPayouts(ctx, s.WorkspaceID, heldsway.PayoutRunInput{PeriodKey: key})
		var he *heldsway.Error
		switch {
		case errors.As(err, &he) && he.Code == heldsway.ECONFLICT:
			// Already run, or running on another node.
		case err != nil:
			if ctx.Err() == nil {
				log.Error("payout run", "workspace_id", s.WorkspaceID, "period", key, "err", err)
			}
		default:
			done++
			log.Info("payout run", "workspace_id", s.WorkspaceID, "period", key, "run_id", run.ID,
				"payouts", run.PayoutsCreated, "carried_forward", run.CarriedForward)
		}
	}
	return done
}
