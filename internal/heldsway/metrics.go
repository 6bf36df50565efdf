package heldsway

import (
	"fmt"
	"slices"
	"strings"
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

// Analytics (digest §5.8, §5.9) read daily rollups: per workspace and local
// day (the workspace's time zone), per program, affiliate and link, the
// additive Counts below. Every figure the API shows is a sum of Counts over
// days, or a ratio of two such sums (Metrics), so the definitions above and
// the ones here are the only place a figure is defined.
//
//   - total_clicks: Counts.Clicks, the clicks of the clicks table.
//   - total_pageviews: pageview events (storefront_events type pageview).
//   - unique_visitors: distinct visitor sessions among the pageviews. A
//     session is counted once per day it has pageviews: a session that goes on
//     past local midnight starts a new visit (as Google's Universal Analytics
//     did), which keeps the figure exact and additive across days.
//   - pages_per_visit: total_pageviews ÷ unique_visitors, two decimals.
//   - total_conversions, total_revenue, total_commission: the conversion,
//     revenue and commission definitions above, on the day the order was
//     converted; commission splits by the commission's status into pending,
//     approved (approved, not paid yet) and paid.
//   - total_product_views, total_thank_you_views: events of those types.
//   - total_add_to_carts, total_remove_from_carts: products added to or
//     removed from a cart: one per product line of a cart event, whatever its
//     quantity.
//   - cart_to_conversion_rate: conversions ÷ add-to-carts as a percentage.
//   - reports: total_commission_paid is the commission of approved orders
//     (approved or paid commissions), pending_payouts the part of it not paid
//     yet (approved commissions).
//
// Dimensions follow the event: a click's and an order's program, affiliate
// and link are the ones recorded with it; a storefront event's are those of
// the visitor's click. A link's campaign is the link's current campaign.
// Commission follows its order: an affiliate's commission figure is the
// commission (every tier) of the orders it referred.

// Counts are the additive figures of one day and one set of dimensions.
// Money fields are minor units of one currency.
type Counts struct {
	Clicks          int64
	Events          int64 // storefront events of any type (one per stored row)
	Pageviews       int64
	Sessions        int64
	ProductViews    int64
	AddToCarts      int64
	RemoveFromCarts int64
	Checkouts       int64
	ThankYouViews   int64
	Conversions     int64
	Revenue         int64
	// CommissionPending, CommissionApproved and CommissionPaid are the net
	// commissions of the counted orders by commission status.
	CommissionPending  int64
	CommissionApproved int64
	CommissionPaid     int64
}

// Fields returns pointers to every field, in a fixed order (the rollup
// tables' column order).
func (c *Counts) Fields() []*int64 {
	return []*int64{&c.Clicks, &c.Events, &c.Pageviews, &c.Sessions, &c.ProductViews, &c.AddToCarts,
		&c.RemoveFromCarts, &c.Checkouts, &c.ThankYouViews, &c.Conversions, &c.Revenue, &c.CommissionPending,
		&c.CommissionApproved, &c.CommissionPaid}
}

// Add adds o to c. (Written out: it runs per event on the write paths.)
func (c *Counts) Add(o Counts) {
	c.Clicks += o.Clicks
	c.Events += o.Events
	c.Pageviews += o.Pageviews
	c.Sessions += o.Sessions
	c.ProductViews += o.ProductViews
	c.AddToCarts += o.AddToCarts
	c.RemoveFromCarts += o.RemoveFromCarts
	c.Checkouts += o.Checkouts
	c.ThankYouViews += o.ThankYouViews
	c.Conversions += o.Conversions
	c.Revenue += o.Revenue
	c.CommissionPending += o.CommissionPending
	c.CommissionApproved += o.CommissionApproved
	c.CommissionPaid += o.CommissionPaid
}

// Sub subtracts o from c.
func (c *Counts) Sub(o Counts) {
	f, g := c.Fields(), o.Fields()
	for i := range f {
		*f[i] -= *g[i]
	}
}

// IsZero reports whether every count is 0.
func (c Counts) IsZero() bool { return c == Counts{} }

// Commission is the commission earned: pending, approved and paid.
func (c Counts) Commission() int64 {
	return c.CommissionPending + c.CommissionApproved + c.CommissionPaid
}

// CommissionConfirmed is the commission of approved orders: approved or paid
// (the reports' total_commission_paid).
func (c Counts) CommissionConfirmed() int64 { return c.CommissionApproved + c.CommissionPaid }

// ClickCounts is what one click adds.
func ClickCounts() Counts { return Counts{Clicks: 1} }

// StorefrontEventCounts is what one stored storefront event row adds, apart
// from sessions (which need to know whether the session was seen that day).
func StorefrontEventCounts(typ string) Counts {
	c := Counts{Events: 1}
	switch typ {
	case EventPageview:
		c.Pageviews = 1
	case EventProductView:
		c.ProductViews = 1
	case EventAddToCart:
		c.AddToCarts = 1
	case EventRemoveFromCart:
		c.RemoveFromCarts = 1
	case EventCheckout:
		c.Checkouts = 1
	case EventThankYou:
		c.ThankYouViews = 1
	}
	return c
}

// CommissionLine is what the figures need of one commission.
type CommissionLine struct {
	Status string
	Net    int64 // amount − reversed_amount
}

// OrderCounts is what one order adds in its currency: nothing unless its
// status is counted (CountedOrderStatuses).
func OrderCounts(status string, total, refunded int64, lines []CommissionLine) Counts {
	if !slices.Contains(CountedOrderStatuses, status) {
		return Counts{}
	}
	c := Counts{Conversions: 1, Revenue: total - refunded}
	for _, l := range lines {
		switch l.Status {
		case CommissionPending:
			c.CommissionPending += l.Net
		case CommissionApproved:
			c.CommissionApproved += l.Net
		case CommissionPaid:
			c.CommissionPaid += l.Net
		}
	}
	return c
}

// OrderCountsOf is OrderCounts of an order with its commissions.
func OrderCountsOf(o *Order) Counts {
	lines := make([]CommissionLine, len(o.Commissions))
	for i, c := range o.Commissions {
		lines[i] = CommissionLine{Status: c.Status, Net: c.Net()}
	}
	return OrderCounts(o.Status, o.Total, o.RefundedAmount, lines)
}

// Metric names of digest §5.8, in the documented order.
const (
	MetricTotalClicks          = "total_clicks"
	MetricTotalPageviews       = "total_pageviews"
	MetricUniqueVisitors       = "unique_visitors"
	MetricPagesPerVisit        = "pages_per_visit"
	MetricTotalConversions     = "total_conversions"
	MetricTotalRevenue         = "total_revenue"
	MetricTotalCommission      = "total_commission"
	MetricConversionRate       = "conversion_rate"
	MetricTotalProductViews    = "total_product_views"
	MetricTotalAddToCarts      = "total_add_to_carts"
	MetricTotalRemoveFromCarts = "total_remove_from_carts"
	MetricTotalThankYouViews   = "total_thank_you_views"
	MetricCartToConversionRate = "cart_to_conversion_rate"
)

// MetricNames lists every metric in the documented order.
var MetricNames = []string{MetricTotalClicks, MetricTotalPageviews, MetricUniqueVisitors, MetricPagesPerVisit,
	MetricTotalConversions, MetricTotalRevenue, MetricTotalCommission, MetricConversionRate, MetricTotalProductViews,
	MetricTotalAddToCarts, MetricTotalRemoveFromCarts, MetricTotalThankYouViews, MetricCartToConversionRate}

// MetricKind tells how a metric's value reads: a count, an amount in minor
// units, a percentage in basis points, or a ratio in hundredths.
type MetricKind int

const (
	KindCount MetricKind = iota
	KindAmount
	KindPercent
	KindRatio
)

// MetricKindOf returns the kind of a metric name.
func MetricKindOf(name string) MetricKind {
	switch name {
	case MetricTotalRevenue, MetricTotalCommission:
		return KindAmount
	case MetricConversionRate, MetricCartToConversionRate:
		return KindPercent
	case MetricPagesPerVisit:
		return KindRatio
	}
	return KindCount
}

// ParseMetrics reads the comma-separated metrics parameter: empty selects
// every metric; names are trimmed, duplicates dropped, and the result is in
// the documented order. An unknown name is EVALIDATION on field.
func ParseMetrics(field, s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return MetricNames, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !slices.Contains(MetricNames, n) {
			return nil, Invalid(field, fmt.Sprintf("The %s field has an unknown metric %q; known metrics: %s.",
				field, truncateRunes(n, 64), strings.Join(MetricNames, ", ")))
		}
		want[n] = true
	}
	if len(want) == 0 {
		return MetricNames, nil
	}
	out := make([]string, 0, len(want))
	for _, n := range MetricNames {
		if want[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

// MetricValue computes one metric from summed counts: a count, an amount in
// minor units (revenue and commission in the currency the counts are in), a
// percentage in basis points or a ratio in hundredths. Ratios of nothing are 0.
func MetricValue(name string, c Counts) int64 {
	switch name {
	case MetricTotalClicks:
		return c.Clicks
	case MetricTotalPageviews:
		return c.Pageviews
	case MetricUniqueVisitors:
		return c.Sessions
	case MetricPagesPerVisit:
		return Ratio(c.Pageviews, c.Sessions)
	case MetricTotalConversions:
		return c.Conversions
	case MetricTotalRevenue:
		return c.Revenue
	case MetricTotalCommission:
		return c.Commission()
	case MetricConversionRate:
		return ConversionRate(c.Conversions, c.Clicks)
	case MetricTotalProductViews:
		return c.ProductViews
	case MetricTotalAddToCarts:
		return c.AddToCarts
	case MetricTotalRemoveFromCarts:
		return c.RemoveFromCarts
	case MetricTotalThankYouViews:
		return c.ThankYouViews
	case MetricCartToConversionRate:
		return ConversionRate(c.Conversions, c.AddToCarts)
	}
	return 0
}

// Ratio is a ÷ b in hundredths (2.5 = 250), rounded half-up; 0 when b is 0.
func Ratio(a, b int64) int64 {
	if b <= 0 || a <= 0 {
		return 0
	}
	return money.MulDivHalfUp(a, 100, b)
}

// PercentChange is the signed change from prev to cur as a percentage of
// prev, in basis points (−8.3% = −830), rounded half away from zero. No
// previous figure gives 0: a change from nothing has no percentage.
func PercentChange(cur, prev int64) int64 {
	if prev <= 0 { // figures are never negative; nothing before has no percentage
		return 0
	}
	return money.MulDivHalfUp(cur-prev, 10000, prev)
}

// Day is a local calendar day as the rollups key it: yyyymmdd (20261101).
type Day int32

// DayOf returns the day of t in loc.
func DayOf(t time.Time, loc *time.Location) Day {
	y, m, d := t.In(loc).Date()
	return Day(y*10000 + int(m)*100 + d)
}

// DayFromDate returns the Day of a date's calendar fields (any location).
func DayFromDate(t time.Time) Day {
	y, m, d := t.Date()
	return Day(y*10000 + int(m)*100 + d)
}

// Date returns the day at midnight UTC, for arithmetic and formatting.
func (d Day) Date() time.Time {
	return time.Date(int(d)/10000, time.Month(int(d)/100%100), int(d)%100, 0, 0, 0, 0, time.UTC)
}

// String formats the day as YYYY-MM-DD.
func (d Day) String() string { return d.Date().Format(time.DateOnly) }

// AddDays returns the day n days later (earlier for n < 0).
func (d Day) AddDays(n int) Day { return DayFromDate(d.Date().AddDate(0, 0, n)) }

// Start returns the first instant of the day in loc. Where a daylight-saving
// change skips midnight (some zones move their clocks at 00:00), time.Date
// may answer an instant of the day before; the day then begins at the
// change, found by bisection (changes fall on whole seconds).
func (d Day) Start(loc *time.Location) time.Time {
	t := d.Date()
	c := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	if DayOf(c, loc) == d {
		return c
	}
	lo, hi := c, c.Add(4*time.Hour) // lo before the day, hi in it
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2).Truncate(time.Second)
		if DayOf(mid, loc) >= d {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// DaysBetween counts the days from a to b inclusive (0 when b is before a).
func DaysBetween(a, b Day) int {
	n := int(b.Date().Sub(a.Date()).Hours()/24+0.5) + 1
	return max(n, 0)
}

// AnalyticsMaxDays bounds an analytics or report range: three years of days.
const AnalyticsMaxDays = 1096

// AnalyticsRange resolves an analytics date range in the workspace's time
// zone loc: from and to are the requested dates (nil: default). to defaults
// to today (in loc) and, when toBeforeToday (the analytics endpoint's rule),
// may not be after it; from defaults to MetricsDefaultDays before to and may
// not be after to; the range holds at most AnalyticsMaxDays days. Field
// errors name from and to.
func AnalyticsRange(from, to *time.Time, now time.Time, loc *time.Location, toBeforeToday bool) (Day, Day, error) {
	today := DayOf(now, loc)
	toDay := today
	if to != nil {
		toDay = DayFromDate(*to)
	}
	fromDay := toDay.AddDays(-MetricsDefaultDays)
	if from != nil {
		fromDay = DayFromDate(*from)
	}
	fe := FieldErrors{}
	if toBeforeToday && toDay > today {
		fe.Add("to", "The to field must be a date before or equal to today.")
	}
	if fromDay > toDay {
		if from != nil && to != nil {
			fe.Add("to", "The to field must be a date after or equal to from.")
		} else {
			fe.Add("from", "The from field must be a date before or equal to to.")
		}
	} else if DaysBetween(fromDay, toDay) > AnalyticsMaxDays {
		fe.Add("from", fmt.Sprintf("The range may span at most %d days.", AnalyticsMaxDays))
	}
	return fromDay, toDay, fe.Err()
}

// PreviousWindow is the window of equal length just before [from, to].
func PreviousWindow(from, to Day) (Day, Day) {
	n := DaysBetween(from, to)
	return from.AddDays(-n), from.AddDays(-1)
}

// AnalyticsFilter narrows analytics to one program, affiliate and/or link
// (0: any). A filtered figure counts attributed events only.
type AnalyticsFilter struct {
	ProgramID, AffiliateID, LinkID int64
}

// Any reports whether the filter narrows anything.
func (f AnalyticsFilter) Any() bool { return f.ProgramID != 0 || f.AffiliateID != 0 || f.LinkID != 0 }

// DimRow is one row of a top-N table: the figures of one affiliate, link or
// campaign over a range (money in the selected currency). Counts holds
// clicks, pageviews, sessions, conversions, revenue and commission only.
type DimRow struct {
	ID       int64   // affiliate or link id; 0 for campaigns
	Campaign *string // campaigns: the link campaign, nil for links without one
	Links    int64   // campaigns: how many links had figures
	Counts   Counts
}

// PageRow is a page's pageviews over a range.
type PageRow struct {
	Host, Path string
	Pageviews  int64
}

// ProductRow is a product's storefront events over a range.
type ProductRow struct {
	ProductID, Name                       string
	ProductViews, AddToCarts, RemoveCarts int64
}

// DayCounts are the counts of one day.
type DayCounts struct {
	Day    Day
	Counts Counts
}

// Top-N table kinds and orders.
const (
	TopAffiliates = "affiliates"
	TopLinks      = "links"
	TopCampaigns  = "campaigns"

	TopByRevenue    = "revenue"    // revenue, then clicks
	TopByCommission = "commission" // commission, then revenue
	TopByClicks     = "clicks"     // clicks, then conversions
)

// CurrencyCounts are counts whose money is in Currency ("" for the counts
// that have no currency).
type CurrencyCounts struct {
	Currency string
	Counts   Counts
}

// ClickRecord is a stored click with its row id.
type ClickRecord struct {
	ID int64
	Click
}

// LinkLabel is what a table row shows of a link.
type LinkLabel struct {
	Slug        string
	Campaign    *string
	AffiliateID int64
}
