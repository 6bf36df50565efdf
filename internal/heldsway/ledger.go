package heldsway

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heldsway/heldsway/internal/money"
)

// MaxAdjustmentReason bounds an adjustment's reason.
const MaxAdjustmentReason = 500

// AdjustmentInput is a manual correction of an affiliate's balance: a signed
// amount (credit positive, debit negative, never zero) in minor units of
// Currency, with the reason that explains it in the ledger.
type AdjustmentInput struct {
	Amount   int64
	Currency string
	Reason   string
}

// Validate checks the input and normalises the currency code and reason.
// Errors: EVALIDATION with field details.
func (in *AdjustmentInput) Validate() error {
	c := fieldCheck{FieldErrors{}}
	if cur, err := money.ParseCurrency(in.Currency); err != nil {
		if strings.TrimSpace(in.Currency) == "" {
			c.addf("currency", "is required.")
		} else {
			c.addf("currency", "%s.", err.Error())
		}
	} else {
		in.Currency = cur.Code
	}
	switch {
	case in.Amount == 0:
		c.addf("amount", "must not be 0.")
	case in.Amount > money.MaxMinor || in.Amount < -money.MaxMinor:
		c.addf("amount", "is out of range.")
	}
	if r, ok := c.text("reason", in.Reason, MaxAdjustmentReason); ok {
		in.Reason = r
	}
	return c.Err()
}

// LedgerFilter selects an affiliate's ledger entries; zero fields do not filter.
type LedgerFilter struct {
	Currency string
	Kind     string
}

// LedgerKinds lists the ledger entry kinds, for filters and documentation.
var LedgerKinds = []string{LedgerCommissionApproved, LedgerCommissionReversed, LedgerAdjustment, LedgerPayout, LedgerPayoutReturned}

// Payout run statuses.
const (
	PayoutRunRunning   = "running"
	PayoutRunCompleted = "completed"
)

// PayoutRun is one execution of the payout run for a workspace and period: it
// grouped each active affiliate's available balance per currency into one
// pending payout where the balance reached the minimum.
type PayoutRun struct {
	ID             int64
	WorkspaceID    int64
	PeriodKey      string
	Status         string
	Currency       string // the only currency paid; "" for every currency
	PayoutsCreated int
	// Totals per currency of the payouts created, by currency code.
	Totals []PayoutRunTotal
	// CarriedForward counts active affiliates' positive balances left below
	// the minimum for a later run.
	CarriedForward int
	StartedAt      time.Time
	CompletedAt    *time.Time
}

// PayoutRunInput starts a run. PeriodKey names the period (scheduled runs
// pass DuePayoutPeriod's key); empty makes a manual run of its own
// (manual:<random>). Currency, when set, pays only balances in that currency.
type PayoutRunInput struct {
	PeriodKey string
	Currency  string
}

// PayoutRunTotal is what a run created in one currency.
type PayoutRunTotal struct {
	Currency string
	Payouts  int
	Amount   int64
}

// PayoutSchedule is what the scheduler needs to know of a workspace whose
// payouts run on their own.
type PayoutSchedule struct {
	WorkspaceID int64
	Frequency   string
	Timezone    string
	CreatedAt   time.Time // the workspace's: periods that ended before it are not run
}

// Payout period keys name the period a run settles and are unique per
// workspace (payout_runs.period_key), so a period is never paid twice:
//
//	weekly:2026-W47    the ISO week
//	biweekly:2026-W48  a pair of ISO weeks (W47–W48), named by its even week;
//	                   week 53 of a long year is a period of its own (W53)
//	monthly:2026-11    the calendar month
//	manual:<hex>       a run started through the API, unique per call
//
// Periods are calendar periods in the workspace's time zone.

// DuePayoutPeriod returns the key of the most recent period of frequency freq
// that has ended at now in loc, the period a scheduled run settles, and the
// instant it ended. A weekly workspace is due for last week's run from Monday
// 00:00 local time. ok is false for manual (never run on its own) and unknown
// frequencies.
func DuePayoutPeriod(freq string, now time.Time, loc *time.Location) (key string, end time.Time, ok bool) {
	if loc == nil {
		loc = time.UTC
	}
	t := now.In(loc)
	y, m, d := t.Date()
	// Monday of the current ISO week, as a local calendar date.
	monday := d - (int(t.Weekday())+6)%7
	switch freq {
	case PayoutWeekly:
		// The Sunday before this week's Monday lies in last week.
		py, pw := time.Date(y, m, monday-1, 12, 0, 0, 0, loc).ISOWeek()
		return fmt.Sprintf("%s:%04d-W%02d", PayoutWeekly, py, pw), time.Date(y, m, monday, 0, 0, 0, 0, loc), true
	case PayoutBiweekly:
		_, w := t.ISOWeek()
		start := monday // an odd week (or week 53) starts its period
		if w%2 == 0 && w != 53 {
			start -= 7
		}
		py, pw := time.Date(y, m, start-1, 12, 0, 0, 0, loc).ISOWeek()
		return fmt.Sprintf("%s:%04d-W%02d", PayoutBiweekly, py, biweeklyEnd(pw)), time.Date(y, m, start, 0, 0, 0, 0, loc), true
	case PayoutMonthly:
		p := time.Date(y, m-1, 1, 12, 0, 0, 0, loc)
		return fmt.Sprintf("%s:%04d-%02d", PayoutMonthly, p.Year(), int(p.Month())), time.Date(y, m, 1, 0, 0, 0, 0, loc), true
	}
	return "", time.Time{}, false
}

// biweeklyEnd names a week's biweekly period by its last week: weeks 2k−1 and
// 2k form period 2k; week 53 is alone.
func biweeklyEnd(w int) int {
	if w == 53 {
		return 53
	}
	return w + w%2
}

// MaxPeriodKey bounds a period key's length.
const MaxPeriodKey = 64

// CheckPeriodKey validates a period key given by a caller.
func CheckPeriodKey(key string) error {
	if key == "" || len(key) > MaxPeriodKey || !utf8.ValidString(key) || strings.TrimSpace(key) != key {
		return Invalid("period_key", fmt.Sprintf("The period key must be 1 to %d characters without surrounding spaces.", MaxPeriodKey))
	}
	return nil
}

// Payout transition actions, for PayoutTransitionError.
const (
	PayoutActionProcessing = "processing"
	PayoutActionComplete   = "complete"
	PayoutActionFail       = "fail"
)

// PayoutTransitions says which statuses each action leaves (digest §7.3):
// pending → processing; pending/processing → completed or failed.
var PayoutTransitions = map[string]struct {
	From []string
	To   string
}{
	PayoutActionProcessing: {From: []string{PayoutPending}, To: PayoutProcessing},
	PayoutActionComplete:   {From: []string{PayoutPending, PayoutProcessing}, To: PayoutCompleted},
	PayoutActionFail:       {From: []string{PayoutPending, PayoutProcessing}, To: PayoutFailed},
}

// PayoutTransitionError is the INVALID_STATUS_TRANSITION of a payout action
// from a status that does not allow it, naming both statuses.
func PayoutTransitionError(action, from string) error {
	tr := PayoutTransitions[action]
	return &Error{Code: ETRANSITION,
		Message: fmt.Sprintf("Cannot move a payout whose status is %s to %s: only %s payouts can.", from, tr.To, strings.Join(tr.From, " or ")),
		Details: map[string]any{"from": from, "to": tr.To}}
}

// Limits of the free text of payout transitions.
const (
	MaxExternalReference = 255
	MaxFailureReason     = 1000
)
