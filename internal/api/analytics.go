package api

import (
	"context"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

// GET /v1/affiliate/analytics (digest §5.8): one endpoint, one section per
// request, every figure from the daily rollups. The metric definitions are
// heldsway/metrics.go's; metricDocs below carries them into the OpenAPI
// document.

// metricDocs documents each metric of §5.8 as the figures compute it.
var metricDocs = map[string]string{
	heldsway.MetricTotalClicks:          "Referral link clicks (GET /r/{slug} and SDK ?ref= landings), bots and 30-second repeats never recorded.",
	heldsway.MetricTotalPageviews:       "Tracked storefront page views.",
	heldsway.MetricUniqueVisitors:       "Distinct visitor sessions with page views, counted once per day of the workspace's time zone: a session going on past midnight is a new visit on the new day.",
	heldsway.MetricPagesPerVisit:        "total_pageviews ÷ unique_visitors, two decimals; 0 without visits.",
	heldsway.MetricTotalConversions:     "Orders converted in the range whose status is pending or approved (rejected and fully refunded orders do not count), every currency.",
	heldsway.MetricTotalRevenue:         "Sum of the counted orders' totals net of refunds, in the selected currency.",
	heldsway.MetricTotalCommission:      "Commission of the counted orders (every tier) that is pending, approved or paid, net of refund reversals, in the selected currency.",
	heldsway.MetricConversionRate:       "total_conversions ÷ total_clicks × 100, two decimals, half-up; 0 without clicks. May exceed 100.",
	heldsway.MetricTotalProductViews:    "Product detail views.",
	heldsway.MetricTotalAddToCarts:      "Products added to a cart: one per product line of an add-to-cart event, whatever its quantity.",
	heldsway.MetricTotalRemoveFromCarts: "Products removed from a cart, counted like add-to-carts.",
	heldsway.MetricTotalThankYouViews:   "Thank-you page views.",
	heldsway.MetricCartToConversionRate: "total_conversions ÷ total_add_to_carts × 100, two decimals; 0 without add-to-carts.",
}

// metricsDoc is the definitions list for operation descriptions.
func metricsDoc() string {
	var b strings.Builder
	for _, m := range heldsway.MetricNames {
		b.WriteString("\n- `" + m + "`: " + metricDocs[m])
	}
	return b.String()
}

// Ratio renders hundredths as a JSON number with two decimals (2.50).
type Ratio int64

func (r Ratio) MarshalJSON() ([]byte, error) { return []byte(money.FormatRate(int64(r))), nil }

// Schema documents Ratio as a number.
func (Ratio) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: "number", Description: "Number with two decimals.", Examples: []any{2.5}}
}

// analyticsStats holds the selected metrics (digest §5.8); unselected ones
// are absent.
type analyticsStats struct {
	TotalClicks          *int64  `json:"total_clicks,omitempty"`
	TotalPageviews       *int64  `json:"total_pageviews,omitempty"`
	UniqueVisitors       *int64  `json:"unique_visitors,omitempty"`
	PagesPerVisit        *Ratio  `json:"pages_per_visit,omitempty"`
	TotalConversions     *int64  `json:"total_conversions,omitempty"`
	TotalRevenue         *Amount `json:"total_revenue,omitempty"`
	TotalCommission      *Amount `json:"total_commission,omitempty"`
	ConversionRate       *Rate   `json:"conversion_rate,omitempty"`
	TotalProductViews    *int64  `json:"total_product_views,omitempty"`
	TotalAddToCarts      *int64  `json:"total_add_to_carts,omitempty"`
	TotalRemoveFromCarts *int64  `json:"total_remove_from_carts,omitempty"`
	TotalThankYouViews   *int64  `json:"total_thank_you_views,omitempty"`
	CartToConversionRate *Rate   `json:"cart_to_conversion_rate,omitempty"`
}

// documentMetrics puts each metric's definition on the properties of the
// schemas that carry metrics (stats, trends, chart series), so the OpenAPI
// document states them.
func (s *Server) documentMetrics() {
	schemas := s.api.OpenAPI().Components.Schemas.Map()
	for name, suffix := range map[string]string{"AnalyticsStats": "", "AnalyticsTrends": " Here: its signed percentage change.",
		"AnalyticsSeries": " Here: one value per day of dates."} {
		sch := schemas[name]
		if sch == nil {
			continue
		}
		for _, m := range heldsway.MetricNames {
			if p := sch.Properties[m]; p != nil {
				p.Description = metricDocs[m] + suffix
			}
		}
	}
}

func (st *analyticsStats) set(name string, c heldsway.Counts, cur money.Currency) {
	v := heldsway.MetricValue(name, c)
	n := func() *int64 { return &v }
	amt := func() *Amount { return &Amount{Minor: v, Currency: cur} }
	rate := func() *Rate { r := Rate(v); return &r }
	switch name {
	case heldsway.MetricTotalClicks:
		st.TotalClicks = n()
	case heldsway.MetricTotalPageviews:
		st.TotalPageviews = n()
	case heldsway.MetricUniqueVisitors:
		st.UniqueVisitors = n()
	case heldsway.MetricPagesPerVisit:
		r := Ratio(v)
		st.PagesPerVisit = &r
	case heldsway.MetricTotalConversions:
		st.TotalConversions = n()
	case heldsway.MetricTotalRevenue:
		st.TotalRevenue = amt()
	case heldsway.MetricTotalCommission:
		st.TotalCommission = amt()
	case heldsway.MetricConversionRate:
		st.ConversionRate = rate()
	case heldsway.MetricTotalProductViews:
		st.TotalProductViews = n()
	case heldsway.MetricTotalAddToCarts:
		st.TotalAddToCarts = n()
	case heldsway.MetricTotalRemoveFromCarts:
		st.TotalRemoveFromCarts = n()
	case heldsway.MetricTotalThankYouViews:
		st.TotalThankYouViews = n()
	case heldsway.MetricCartToConversionRate:
		st.CartToConversionRate = rate()
	}
}

func statsOf(c heldsway.Counts, metrics []string, cur money.Currency) *analyticsStats {
	st := &analyticsStats{}
	for _, m := range metrics {
		st.set(m, c, cur)
	}
	return st
}

// analyticsTrends holds each selected metric's signed percentage change
// against the preceding window of the same length.
type analyticsTrends struct {
	TotalClicks          *Rate `json:"total_clicks,omitempty"`
	TotalPageviews       *Rate `json:"total_pageviews,omitempty"`
	UniqueVisitors       *Rate `json:"unique_visitors,omitempty"`
	PagesPerVisit        *Rate `json:"pages_per_visit,omitempty"`
	TotalConversions     *Rate `json:"total_conversions,omitempty"`
	TotalRevenue         *Rate `json:"total_revenue,omitempty"`
	TotalCommission      *Rate `json:"total_commission,omitempty"`
	ConversionRate       *Rate `json:"conversion_rate,omitempty"`
	TotalProductViews    *Rate `json:"total_product_views,omitempty"`
	TotalAddToCarts      *Rate `json:"total_add_to_carts,omitempty"`
	TotalRemoveFromCarts *Rate `json:"total_remove_from_carts,omitempty"`
	TotalThankYouViews   *Rate `json:"total_thank_you_views,omitempty"`
	CartToConversionRate *Rate `json:"cart_to_conversion_rate,omitempty"`
}

func trendsOf(cur, prev heldsway.Counts, metrics []string) *analyticsTrends {
	t := &analyticsTrends{}
	fields := map[string]**Rate{
		heldsway.MetricTotalClicks: &t.TotalClicks, heldsway.MetricTotalPageviews: &t.TotalPageviews,
		heldsway.MetricUniqueVisitors: &t.UniqueVisitors, heldsway.MetricPagesPerVisit: &t.PagesPerVisit,
		heldsway.MetricTotalConversions: &t.TotalConversions, heldsway.MetricTotalRevenue: &t.TotalRevenue,
		heldsway.MetricTotalCommission: &t.TotalCommission, heldsway.MetricConversionRate: &t.ConversionRate,
		heldsway.MetricTotalProductViews: &t.TotalProductViews, heldsway.MetricTotalAddToCarts: &t.TotalAddToCarts,
		heldsway.MetricTotalRemoveFromCarts: &t.TotalRemoveFromCarts, heldsway.MetricTotalThankYouViews: &t.TotalThankYouViews,
		heldsway.MetricCartToConversionRate: &t.CartToConversionRate,
	}
	for _, m := range metrics {
		r := Rate(heldsway.PercentChange(heldsway.MetricValue(m, cur), heldsway.MetricValue(m, prev)))
		*fields[m] = &r
	}
	return t
}

// analyticsSeries holds one value per day of the range for each selected
// metric, aligned with dates.
type analyticsSeries struct {
	TotalClicks          []int64  `json:"total_clicks,omitempty"`
	TotalPageviews       []int64  `json:"total_pageviews,omitempty"`
	UniqueVisitors       []int64  `json:"unique_visitors,omitempty"`
	PagesPerVisit        []Ratio  `json:"pages_per_visit,omitempty"`
	TotalConversions     []int64  `json:"total_conversions,omitempty"`
	TotalRevenue         []Amount `json:"total_revenue,omitempty"`
	TotalCommission      []Amount `json:"total_commission,omitempty"`
	ConversionRate       []Rate   `json:"conversion_rate,omitempty"`
	TotalProductViews    []int64  `json:"total_product_views,omitempty"`
	TotalAddToCarts      []int64  `json:"total_add_to_carts,omitempty"`
	TotalRemoveFromCarts []int64  `json:"total_remove_from_carts,omitempty"`
	TotalThankYouViews   []int64  `json:"total_thank_you_views,omitempty"`
	CartToConversionRate []Rate   `json:"cart_to_conversion_rate,omitempty"`
}

type analyticsCharts struct {
	Dates  []string        `json:"dates" doc:"Every day of the range (YYYY-MM-DD, the workspace's time zone), oldest first."`
	Series analyticsSeries `json:"series" doc:"Per selected metric, its value on each day of dates (same definitions as stats, computed per day)."`
}

// seriesOf fills the series of the selected metrics over every day of
// [from, to]; days without rows are zero.
func seriesOf(days []heldsway.DayCounts, from, to heldsway.Day, metrics []string, cur money.Currency) *analyticsCharts {
	byDay := make(map[heldsway.Day]heldsway.Counts, len(days))
	for _, d := range days {
		byDay[d.Day] = d.Counts
	}
	ch := &analyticsCharts{Dates: []string{}}
	for d := from; d <= to; d = d.AddDays(1) {
		ch.Dates = append(ch.Dates, d.String())
		st := statsOf(byDay[d], metrics, cur)
		s := &ch.Series
		appendIf(&s.TotalClicks, st.TotalClicks)
		appendIf(&s.TotalPageviews, st.TotalPageviews)
		appendIf(&s.UniqueVisitors, st.UniqueVisitors)
		appendIf(&s.PagesPerVisit, st.PagesPerVisit)
		appendIf(&s.TotalConversions, st.TotalConversions)
		appendIf(&s.TotalRevenue, st.TotalRevenue)
		appendIf(&s.TotalCommission, st.TotalCommission)
		appendIf(&s.ConversionRate, st.ConversionRate)
		appendIf(&s.TotalProductViews, st.TotalProductViews)
		appendIf(&s.TotalAddToCarts, st.TotalAddToCarts)
		appendIf(&s.TotalRemoveFromCarts, st.TotalRemoveFromCarts)
		appendIf(&s.TotalThankYouViews, st.TotalThankYouViews)
		appendIf(&s.CartToConversionRate, st.CartToConversionRate)
	}
	return ch
}

func appendIf[T any](s *[]T, v *T) {
	if v != nil {
		*s = append(*s, *v)
	}
}

// tableFigures are the figures of one row of a table.
type tableFigures struct {
	Clicks         int64  `json:"clicks"`
	Pageviews      int64  `json:"pageviews" doc:"Page views of the visitors the row attributes."`
	UniqueVisitors int64  `json:"unique_visitors"`
	Conversions    int64  `json:"conversions"`
	Revenue        Amount `json:"revenue"`
	Commission     Amount `json:"commission"`
	ConversionRate Rate   `json:"conversion_rate"`
}

func figuresOf(c heldsway.Counts, cur money.Currency) tableFigures {
	return tableFigures{Clicks: c.Clicks, Pageviews: c.Pageviews, UniqueVisitors: c.Sessions, Conversions: c.Conversions,
		Revenue: Amount{Minor: c.Revenue, Currency: cur}, Commission: Amount{Minor: c.Commission(), Currency: cur},
		ConversionRate: Rate(heldsway.ConversionRate(c.Conversions, c.Clicks))}
}

type affiliateTableRow struct {
	AffiliateID  int64  `json:"affiliate_id"`
	Name         string `json:"name"`
	ReferralCode string `json:"referral_code"`
	tableFigures
}

type linkTableRow struct {
	LinkID      int64   `json:"link_id"`
	Slug        string  `json:"slug"`
	Campaign    *string `json:"campaign" nullable:"true"`
	AffiliateID int64   `json:"affiliate_id"`
	tableFigures
}

type campaignTableRow struct {
	Campaign *string `json:"campaign" nullable:"true" doc:"The links' campaign; null for links without one and ?ref= landings."`
	Links    int64   `json:"links" doc:"Links of the campaign with figures in the range."`
	tableFigures
}

type pageTableRow struct {
	Host      string `json:"host"`
	Path      string `json:"path"`
	Pageviews int64  `json:"pageviews"`
}

type productTableRow struct {
	ProductID       string `json:"product_id"`
	Name            string `json:"name" doc:"The greatest name the storefront reported for the product in the range."`
	ProductViews    int64  `json:"product_views"`
	AddToCarts      int64  `json:"add_to_carts"`
	RemoveFromCarts int64  `json:"remove_from_carts"`
}

type analyticsTables struct {
	Affiliates []affiliateTableRow `json:"affiliates" doc:"By revenue (selected currency), then clicks."`
	Links      []linkTableRow      `json:"links" doc:"Referral links by revenue, then clicks."`
	Campaigns  []campaignTableRow  `json:"campaigns" doc:"Link campaigns (the links' current campaign) by revenue, then clicks."`
	Pages      []pageTableRow      `json:"pages" doc:"Pages (host and path) by page views."`
	Products   []productTableRow   `json:"products" doc:"Products by product views, then add-to-carts."`
}

type clickItem struct {
	ID          int64     `json:"id"`
	ClickID     string    `json:"click_id"`
	LinkID      *int64    `json:"link_id" nullable:"true" doc:"null for an SDK ?ref= landing."`
	AffiliateID int64     `json:"affiliate_id"`
	ProgramID   int64     `json:"program_id"`
	VisitorID   string    `json:"visitor_id"`
	Referrer    *string   `json:"referrer" nullable:"true"`
	UserAgent   *string   `json:"user_agent" nullable:"true"`
	CreatedAt   Timestamp `json:"created_at"`
}

type eventItem struct {
	ID          int64     `json:"id"`
	Type        string    `json:"type"`
	VisitorID   string    `json:"visitor_id"`
	SessionID   string    `json:"session_id"`
	AffiliateID *int64    `json:"affiliate_id" nullable:"true"`
	ProgramID   *int64    `json:"program_id" nullable:"true"`
	LinkID      *int64    `json:"link_id" nullable:"true"`
	Host        *string   `json:"host" nullable:"true"`
	Path        *string   `json:"path" nullable:"true"`
	Referrer    *string   `json:"referrer" nullable:"true"`
	UTMSource   *string   `json:"utm_source" nullable:"true"`
	UTMMedium   *string   `json:"utm_medium" nullable:"true"`
	UTMCampaign *string   `json:"utm_campaign" nullable:"true"`
	ProductID   *string   `json:"product_id" nullable:"true"`
	ProductName *string   `json:"product_name" nullable:"true"`
	Amount      *Amount   `json:"amount" nullable:"true" doc:"Product events: unit price; checkout: cart total; order: order total."`
	Currency    *string   `json:"currency" nullable:"true"`
	Quantity    *int64    `json:"quantity" nullable:"true"`
	OrderID     *string   `json:"order_id" nullable:"true"`
	CreatedAt   Timestamp `json:"created_at"`
}

// offsetMeta is the documented meta of a page-numbered list (digest §4.2).
type offsetMeta struct {
	CurrentPage int   `json:"current_page"`
	PerPage     int   `json:"per_page"`
	Total       int64 `json:"total"`
	LastPage    int64 `json:"last_page"`
	HasMore     bool  `json:"has_more"`
}

func metaOf(page, perPage int, total int64) *offsetMeta {
	last := max((total+int64(perPage)-1)/int64(perPage), 1)
	return &offsetMeta{CurrentPage: page, PerPage: perPage, Total: total, LastPage: last, HasMore: int64(page) < last}
}

type analyticsFilters struct {
	From        string `json:"from" format:"date"`
	To          string `json:"to" format:"date"`
	Timezone    string `json:"timezone" doc:"The time zone of the days: the workspace's, as of its rollups' last rebuild."`
	Currency    string `json:"currency" doc:"The currency of every amount."`
	ProgramID   *int64 `json:"program_id" nullable:"true"`
	AffiliateID *int64 `json:"affiliate_id" nullable:"true"`
	LinkID      *int64 `json:"link_id" nullable:"true"`
}

type periodView struct {
	From string `json:"from" format:"date"`
	To   string `json:"to" format:"date"`
}

type analyticsOut struct {
	Section     string           `json:"section" enum:"stats,trends,charts,tables,recent_clicks,recent_conversions,recent_events"`
	Filters     analyticsFilters `json:"filters"`
	Stats       *analyticsStats  `json:"stats,omitempty" doc:"section=stats: the selected metrics over the range."`
	Trends      *analyticsTrends `json:"trends,omitempty" doc:"section=trends: each selected metric's signed percentage change against previous (0 when the previous figure is 0)."`
	Previous    *periodView      `json:"previous,omitempty" doc:"section=trends: the preceding window of the same length."`
	Charts      *analyticsCharts `json:"charts,omitempty" doc:"section=charts: a daily series per selected metric."`
	Tables      *analyticsTables `json:"tables,omitempty" doc:"section=tables: the top top_limit rows of each table."`
	Clicks      *[]clickItem     `json:"clicks,omitempty" doc:"section=recent_clicks: newest first."`
	Conversions *[]orderView     `json:"conversions,omitempty" doc:"section=recent_conversions: orders converted in the range, any status, newest first."`
	Events      *[]eventItem     `json:"events,omitempty" doc:"section=recent_events: storefront events, newest first."`
	Meta        *offsetMeta      `json:"meta,omitempty" doc:"recent_* sections: the page."`
}

// AnalyticsFilterParams are the optional filters of analytics and reports.
type AnalyticsFilterParams struct {
	ProgramID   int64 `query:"program_id" minimum:"1" doc:"Only this program's attributed figures (one of this workspace's programs, else 422)."`
	AffiliateID int64 `query:"affiliate_id" minimum:"1" doc:"Only this affiliate's attributed figures."`
	LinkID      int64 `query:"link_id" minimum:"1" doc:"Only this referral link's figures."`
}

func (p AnalyticsFilterParams) filter() heldsway.AnalyticsFilter {
	return heldsway.AnalyticsFilter{ProgramID: p.ProgramID, AffiliateID: p.AffiliateID, LinkID: p.LinkID}
}

type analyticsInput struct {
	Section  string `query:"section" required:"true" enum:"stats,trends,charts,tables,recent_clicks,recent_conversions,recent_events"`
	From     string `query:"from" format:"date" doc:"First day (YYYY-MM-DD, inclusive, the workspace's time zone); default 30 days before to."`
	To       string `query:"to" format:"date" doc:"Last day (inclusive); default today; not after today."`
	Metrics  string `query:"metrics" maxLength:"1024" doc:"Comma-separated metric names (stats, trends, charts); default all."`
	Page     int    `query:"page" minimum:"1" maximum:"10000" default:"1" doc:"recent_* sections only."`
	PerPage  int    `query:"per_page" minimum:"1" maximum:"100" default:"15" doc:"recent_* sections only."`
	TopLimit int    `query:"top_limit" minimum:"1" maximum:"50" default:"10" doc:"tables only: rows per table."`
	Currency string `query:"currency" maxLength:"3" doc:"ISO 4217 code of the amounts; default the workspace's (its default program's) currency. Orders in other currencies count in total_conversions, not in the amounts."`
	AnalyticsFilterParams
}

// maxRecentOffset bounds how deep the recent_* pages go: past it a narrower
// range is cheaper for everyone than a deep OFFSET.
const maxRecentOffset = 10000

// analyticsScope is a resolved analytics or report request.
type analyticsScope struct {
	ws       int64
	tz       string
	loc      *time.Location
	from, to heldsway.Day
	cur      money.Currency
	filter   heldsway.AnalyticsFilter
}

func (sc *analyticsScope) start() time.Time { return sc.from.Start(sc.loc) }
func (sc *analyticsScope) end() time.Time   { return sc.to.AddDays(1).Start(sc.loc) }

func (sc *analyticsScope) filters() analyticsFilters {
	opt := func(v int64) *int64 {
		if v == 0 {
			return nil
		}
		return &v
	}
	return analyticsFilters{From: sc.from.String(), To: sc.to.String(), Timezone: sc.tz, Currency: sc.cur.Code,
		ProgramID: opt(sc.filter.ProgramID), AffiliateID: opt(sc.filter.AffiliateID), LinkID: opt(sc.filter.LinkID)}
}

// parseDates reads optional YYYY-MM-DD dates into fe.
func parseDates(fe heldsway.FieldErrors, from, to string) (*time.Time, *time.Time) {
	var f, t *time.Time
	for _, d := range []struct {
		field, v string
		out      **time.Time
	}{{"from", from, &f}, {"to", to, &t}} {
		if d.v == "" {
			continue
		}
		v, err := time.Parse(time.DateOnly, d.v)
		if err != nil {
			fe.Add(d.field, "The "+d.field+" field must be a date in YYYY-MM-DD format.")
			continue
		}
		*d.out = &v
	}
	return f, t
}

// scope resolves the range (in the workspace's analytics time zone), the
// currency and the filter, or answers 422 with every field's problem.
func (s *Server) scope(ctx context.Context, from, to, currency string, f heldsway.AnalyticsFilter, toBeforeToday bool) (*analyticsScope, error) {
	ws := principal(ctx).Workspace.ID
	sc := &analyticsScope{ws: ws, filter: f}
	var err error
	if sc.tz, sc.loc, err = s.Store.RollupZone(ctx, ws); err != nil {
		return nil, err
	}
	fe := heldsway.FieldErrors{}
	fromDate, toDate := parseDates(fe, from, to)
	if len(fe) == 0 {
		sc.from, sc.to, err = heldsway.AnalyticsRange(fromDate, toDate, s.Store.Now(), sc.loc, toBeforeToday)
		if he, ok := err.(*heldsway.Error); ok && he.Code == heldsway.EVALIDATION {
			mergeFieldErrors(fe, he)
		} else if err != nil {
			return nil, err
		}
	}
	code := strings.ToUpper(strings.TrimSpace(currency))
	if code == "" {
		if code, err = s.Store.DefaultCurrency(ctx, ws); err != nil {
			return nil, err
		}
	}
	if sc.cur, err = money.ParseCurrency(code); err != nil {
		fe.Add("currency", "The currency field must be an ISO 4217 currency code.")
	}
	if err := s.Store.CheckAnalyticsFilter(ctx, ws, f); err != nil {
		if he, ok := err.(*heldsway.Error); ok && he.Code == heldsway.EVALIDATION {
			mergeFieldErrors(fe, he)
		} else {
			return nil, err
		}
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	return sc, nil
}

// mergeFieldErrors copies a validation error's field details into fe.
func mergeFieldErrors(fe heldsway.FieldErrors, he *heldsway.Error) {
	for k, v := range he.Details {
		switch msgs := v.(type) {
		case []string:
			for _, m := range msgs {
				fe.Add(k, m)
			}
		case string:
			fe.Add(k, msgs)
		}
	}
	if len(he.Details) == 0 {
		fe.Add("from", he.Message)
	}
}

func (s *Server) handleAnalytics(ctx context.Context, in *analyticsInput) (*Out[analyticsOut], error) {
	fe := heldsway.FieldErrors{}
	metrics, err := heldsway.ParseMetrics("metrics", in.Metrics)
	if he, ok := err.(*heldsway.Error); ok {
		mergeFieldErrors(fe, he)
	}
	page, perPage := max(in.Page, 1), in.PerPage
	if perPage == 0 {
		perPage = 15
	}
	if (page-1)*perPage >= maxRecentOffset {
		fe.Add("page", "The page field reaches past the newest 10000 rows of the range; narrow from and to instead.")
	}
	topLimit := in.TopLimit
	if topLimit == 0 {
		topLimit = 10
	}
	sc, err := s.scope(ctx, in.From, in.To, in.Currency, in.filter(), true)
	if he, ok := err.(*heldsway.Error); ok && he.Code == heldsway.EVALIDATION {
		mergeFieldErrors(fe, he)
	} else if err != nil {
		return nil, err
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	out := analyticsOut{Section: in.Section, Filters: sc.filters()}
	switch in.Section {
	case "stats":
		c, err := s.Store.AnalyticsTotals(ctx, sc.ws, sc.from, sc.to, sc.cur.Code, sc.filter)
		if err != nil {
			return nil, err
		}
		out.Stats = statsOf(c, metrics, sc.cur)
	case "trends":
		c, err := s.Store.AnalyticsTotals(ctx, sc.ws, sc.from, sc.to, sc.cur.Code, sc.filter)
		if err != nil {
			return nil, err
		}
		pf, pt := heldsway.PreviousWindow(sc.from, sc.to)
		p, err := s.Store.AnalyticsTotals(ctx, sc.ws, pf, pt, sc.cur.Code, sc.filter)
		if err != nil {
			return nil, err
		}
		out.Trends, out.Previous = trendsOf(c, p, metrics), &periodView{From: pf.String(), To: pt.String()}
	case "charts":
		days, err := s.Store.AnalyticsDaily(ctx, sc.ws, sc.from, sc.to, sc.cur.Code, sc.filter)
		if err != nil {
			return nil, err
		}
		out.Charts = seriesOf(days, sc.from, sc.to, metrics, sc.cur)
	case "tables":
		if out.Tables, err = s.analyticsTables(ctx, sc, topLimit); err != nil {
			return nil, err
		}
	case "recent_clicks":
		c, err := s.Store.AnalyticsTotals(ctx, sc.ws, sc.from, sc.to, sc.cur.Code, sc.filter)
		if err != nil {
			return nil, err
		}
		rows, err := s.Store.RecentClicks(ctx, sc.ws, sc.start(), sc.end(), sc.filter, perPage, (page-1)*perPage)
		if err != nil {
			return nil, err
		}
		items := make([]clickItem, 0, len(rows))
		for _, r := range rows {
			it := clickItem{ID: r.ID, ClickID: r.ClickID, AffiliateID: r.AffiliateID, ProgramID: r.ProgramID,
				VisitorID: r.VisitorID, Referrer: strOrNil(r.Referrer), UserAgent: strOrNil(r.UserAgent), CreatedAt: Timestamp(r.CreatedAt)}
			if r.LinkID != 0 {
				id := r.LinkID
				it.LinkID = &id
			}
			items = append(items, it)
		}
		out.Clicks, out.Meta = &items, metaOf(page, perPage, c.Clicks)
	case "recent_conversions":
		rows, total, err := s.Store.RecentOrders(ctx, sc.ws, sc.start(), sc.end(), sc.filter, perPage, (page-1)*perPage)
		if err != nil {
			return nil, err
		}
		items := make([]orderView, 0, len(rows))
		for _, o := range rows {
			items = append(items, viewOrder(o))
		}
		out.Conversions, out.Meta = &items, metaOf(page, perPage, total)
	case "recent_events":
		c, err := s.Store.AnalyticsTotals(ctx, sc.ws, sc.from, sc.to, sc.cur.Code, sc.filter)
		if err != nil {
			return nil, err
		}
		rows, err := s.Store.RecentEvents(ctx, sc.ws, sc.start(), sc.end(), sc.filter, perPage, (page-1)*perPage)
		if err != nil {
			return nil, err
		}
		items := make([]eventItem, 0, len(rows))
		for _, e := range rows {
			it := eventItem{ID: e.ID, Type: e.Type, VisitorID: e.VisitorID, SessionID: e.SessionID, AffiliateID: e.AffiliateID,
				ProgramID: e.ProgramID, LinkID: e.LinkID, Host: strOrNil(e.Host), Path: strOrNil(e.Path),
				Referrer: strOrNil(e.Referrer), UTMSource: strOrNil(e.UTM.Source), UTMMedium: strOrNil(e.UTM.Medium),
				UTMCampaign: strOrNil(e.UTM.Campaign), ProductID: strOrNil(e.ProductID), ProductName: strOrNil(e.ProductName),
				Currency: strOrNil(e.Currency), Quantity: e.Quantity, OrderID: strOrNil(e.OrderID), CreatedAt: Timestamp(e.CreatedAt)}
			if e.Amount != nil && e.Currency != "" {
				it.Amount = &Amount{Minor: *e.Amount, Currency: orderCurrency(e.Currency)}
			}
			items = append(items, it)
		}
		out.Events, out.Meta = &items, metaOf(page, perPage, c.Events)
	}
	return ok("Analytics retrieved.", out), nil
}

// analyticsTables reads the five tables.
func (s *Server) analyticsTables(ctx context.Context, sc *analyticsScope, limit int) (*analyticsTables, error) {
	t := &analyticsTables{Affiliates: []affiliateTableRow{}, Links: []linkTableRow{}, Campaigns: []campaignTableRow{},
		Pages: []pageTableRow{}, Products: []productTableRow{}}
	affs, links, camps, ll, err := s.Store.AnalyticsTables(ctx, sc.ws, sc.from, sc.to, sc.cur.Code, sc.filter, limit)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(affs))
	for i, r := range affs {
		ids[i] = r.ID
	}
	labels, err := s.Store.AffiliateLabels(ctx, sc.ws, ids)
	if err != nil {
		return nil, err
	}
	for _, r := range affs {
		l := labels[r.ID]
		t.Affiliates = append(t.Affiliates, affiliateTableRow{AffiliateID: r.ID, Name: l[0], ReferralCode: l[1], tableFigures: figuresOf(r.Counts, sc.cur)})
	}
	for _, r := range links {
		l := ll[r.ID]
		t.Links = append(t.Links, linkTableRow{LinkID: r.ID, Slug: l.Slug, Campaign: l.Campaign, AffiliateID: l.AffiliateID,
			tableFigures: figuresOf(r.Counts, sc.cur)})
	}
	for _, r := range camps {
		t.Campaigns = append(t.Campaigns, campaignTableRow{Campaign: r.Campaign, Links: r.Links, tableFigures: figuresOf(r.Counts, sc.cur)})
	}
	pages, err := s.Store.AnalyticsPages(ctx, sc.ws, sc.from, sc.to, sc.filter, limit)
	if err != nil {
		return nil, err
	}
	for _, p := range pages {
		t.Pages = append(t.Pages, pageTableRow{Host: p.Host, Path: p.Path, Pageviews: p.Pageviews})
	}
	prods, err := s.Store.AnalyticsProducts(ctx, sc.ws, sc.from, sc.to, sc.filter, limit)
	if err != nil {
		return nil, err
	}
	for _, p := range prods {
		t.Products = append(t.Products, productTableRow{ProductID: p.ProductID, Name: p.Name, ProductViews: p.ProductViews,
			AddToCarts: p.AddToCarts, RemoveFromCarts: p.RemoveCarts})
	}
	return t, nil
}
