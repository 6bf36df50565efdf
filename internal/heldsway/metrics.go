package heldsway

import (
	"time"

	"github.com/heldsway/heldsway/internal/money"
)

// Metric definitions, written once: the link stats (GET /v1/links/{id}/stats)
// compute them from raw rows today, and the analytics rollups are to reuse the
// same definitions, so every figure agrees wherever it is shown.
//
//   - clicks: rows of the clicks table (bots and 30-second repeats were never
//     recorded).
//   - unique_visitors: distinct visitor ids (the hs_vid cookie) among those
//     clicks; a click without a visitor id is a visitor of its own.
//   - conversions: orders converted in the range whose status is one of
//     CountedOrderStatuses: pending or approved. Rejected orders were found
//     invalid and cancelled ones were fully refunded.
//   - revenue: per currency, the order totals of the counted orders net of
//     what was refunded (total − refunded_amount), so a partial refund lowers
//     revenue and a full one removes the order.
//   - commission: per currency, the commissions (every tier) of the counted
//     orders whose status is one of CountedCommissionStatuses, net of refund
//     reversals (amount − reversed_amount): what the affiliates earn.
//   - conversion_rate: ConversionRate(conversions, clicks).
//
// Amounts of different currencies are never added together.

// CountedOrderStatuses are the order statuses a conversion figure counts.
var CountedOrderStatuses = []string{OrderPending, OrderApproved}

// CountedCommissionStatuses are the commission statuses a commission figure
// sums: owed (pending, approved) or already paid.
var CountedCommissionStatuses = []string{CommissionPending, CommissionApproved, CommissionPaid}

// ConversionRate is conversions ÷ clicks as a percentage, in basis points
// (12.34% = 1234), rounded half-up to two decimals. No clicks gives 0, never a
// division by zero. It may exceed 100% when one click leads to several orders.
func ConversionRate(conversions, clicks int64) int64 {
	if clicks <= 0 || conversions <= 0 {
		return 0
	}
	return money.MulDivHalfUp(conversions, 10000, clicks)
}

// MetricsDefaultDays is the length of a metric range with no from: from is
// this many days before to, as the analytics endpoint documents ("30 days
// ago"); to defaults to today.
const MetricsDefaultDays = 30

// MetricsRange resolves a metric date range: from and to are inclusive days
// (midnight UTC), either may be nil. to defaults to today (the day of now,
// UTC) and from to MetricsDefaultDays before to. It returns the days and the
// half-open interval [start, end) of instants they cover.
func MetricsRange(from, to *time.Time, now time.Time) (fromDay, toDay time.Time, start, end time.Time) {
	today := now.UTC().Truncate(24 * time.Hour)
	toDay = today
	if to != nil {
		toDay = to.UTC().Truncate(24 * time.Hour)
	}
	fromDay = toDay.AddDate(0, 0, -MetricsDefaultDays)
	if from != nil {
		fromDay = from.UTC().Truncate(24 * time.Hour)
	}
	return fromDay, toDay, fromDay, toDay.AddDate(0, 0, 1)
}

// LinkStats are a link's figures over a range of days; see the definitions
// above.
type LinkStats struct {
	LinkID         int64
	From, To       time.Time // inclusive days, midnight UTC
	Clicks         int64
	UniqueVisitors int64
	Conversions    int64
	// Revenue and Commission hold one entry per currency among the counted
	// orders, by currency code; Commission has the same currencies as Revenue
	// (0 where nothing is owed).
	Revenue    []CurrencyAmount
	Commission []CurrencyAmount
	// ConversionRate is in basis points.
	ConversionRate int64
}

// CurrencyAmount is an amount in minor units of a currency.
type CurrencyAmount struct {
	Currency string
	Amount   int64
}
