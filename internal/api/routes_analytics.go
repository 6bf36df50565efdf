package api

import (
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// analyticsRangeDoc describes the range rules every analytics and report
// operation shares.
const analyticsRangeDoc = "Days are calendar days of the workspace's time zone (its timezone setting as of its analytics " +
	"rollups' last rebuild: a changed setting applies after `heldsway rollups rebuild`). from and to are inclusive " +
	"(YYYY-MM-DD); to defaults to today, from to 30 days before to; from after to, or a range of more than 1096 days, " +
	"is 422. Figures come from daily rollups kept in the transaction of every click, storefront event, conversion, " +
	"review, refund and payout, so they are never stale. Amounts are in one currency (currency, default the " +
	"workspace's); orders in other currencies count in the conversion figures only. program_id, affiliate_id and " +
	"link_id (each one of this workspace's, else 422) narrow every figure to attributed events. Commission follows its " +
	"order: an affiliate's commission is that of the orders it referred, every tier included."

// routesAnalytics: GET /v1/affiliate/analytics (digest §5.8).
func (s *Server) routesAnalytics() {
	s.api.OpenAPI().Tags = append(s.api.OpenAPI().Tags, &huma.Tag{Name: "Analytics",
		Description: "Sectioned analytics (digest §5.8) and reports (§5.9), from daily rollups."})
	register(s, huma.Operation{OperationID: "getAnalytics", Method: http.MethodGet, Path: "/v1/affiliate/analytics",
		Tags: []string{"Analytics"}, Summary: "Analytics by section: stats, trends, charts, tables, recent clicks, conversions, events",
		Description: "One section per request. to may not be after today. " + analyticsRangeDoc + "\n\n" +
			"- `stats`: the metrics selected by metrics (default all) over the range.\n" +
			"- `trends`: each selected metric's signed percentage change against the preceding window of the same length " +
			"(previous gives it); 0 when the previous figure is 0.\n" +
			"- `charts`: dates, and per selected metric one value per day.\n" +
			"- `tables`: top affiliates, links and campaigns (by revenue, then clicks), pages (by page views) and products " +
			"(by product views), top_limit rows each.\n" +
			"- `recent_clicks`, `recent_conversions`, `recent_events`: the range's newest rows, page/per_page (default 15) " +
			"with meta {current_page, per_page, total, last_page, has_more}; at most the newest 10000 rows are reachable.\n\n" +
			"Metrics:" + metricsDoc()}, heldsway.ScopeReportsRead, s.handleAnalytics)
}

// routesReports: /v1/reports/* (digest §5.9).
func (s *Server) routesReports() {
	tags := []string{"Analytics"}
	read := heldsway.ScopeReportsRead
	register(s, huma.Operation{OperationID: "getReportStats", Method: http.MethodGet, Path: "/v1/reports/stats", Tags: tags,
		Summary: "Report summary with trends",
		Description: "total_commission_paid, pending_payouts, conversion_rate and total_referral_clicks over the range, " +
			"with each one's signed % change against the preceding window of the same length. " + analyticsRangeDoc},
		read, s.handleReportStats)
	register(s, huma.Operation{OperationID: "getReportCommissionChart", Method: http.MethodGet, Path: "/v1/reports/commission-chart",
		Tags: tags, Summary: "Daily commission series for charting",
		Description: "One point per day of the range, commission split by status. " + analyticsRangeDoc},
		read, s.handleReportCommissionChart)
	register(s, huma.Operation{OperationID: "getReportTopAffiliates", Method: http.MethodGet, Path: "/v1/reports/top-affiliates",
		Tags: tags, Summary: "Top affiliates by earnings", Description: analyticsRangeDoc}, read, s.handleReportTopAffiliates)
	register(s, huma.Operation{OperationID: "getReportClicksByCampaign", Method: http.MethodGet, Path: "/v1/reports/clicks-by-campaign",
		Tags: tags, Summary: "Clicks grouped by link campaign", Description: analyticsRangeDoc}, read, s.handleReportClicksByCampaign)
	register(s, huma.Operation{OperationID: "getReportPayouts", Method: http.MethodGet, Path: "/v1/reports/payouts",
		Tags: tags, Summary: "Payout history, paginated",
		Description: "Payouts created in the range (days of the workspace's time zone), newest first, optionally of one status " +
			"and affiliate; page/per_page (default 25) with meta {current_page, per_page, total, last_page, has_more}."},
		read, s.handleReportPayouts)
	register(s, huma.Operation{OperationID: "exportReport", Method: http.MethodGet, Path: "/v1/reports/export",
		Tags: tags, Summary: "Export report data as CSV",
		Description: "type daily (default) columns: " + joinCols(ReportExportDaily) + "; affiliates: " + joinCols(ReportExportAffiliates) +
			"; campaigns: " + joinCols(ReportExportCampaigns) + ". Amounts carry the currency's exact decimals, rates two decimals. " +
			"Throttled at 30 requests per minute per API key. " + analyticsRangeDoc,
		Middlewares: huma.Middlewares{s.limitExport},
		Responses: map[string]*huma.Response{"200": {Description: "CSV, one header row then the rows.",
			Headers: map[string]*huma.Param{"Content-Disposition": {Description: `attachment; filename="report-<type>-<from>-<to>.csv"`,
				Schema: &huma.Schema{Type: "string"}}},
			Content: map[string]*huma.MediaType{"text/csv": {Schema: &huma.Schema{Type: "string"}}}}}},
		read, s.handleReportExport)
	s.documentMetrics()
}

func joinCols(c []string) string {
	out := ""
	for i, v := range c {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out
}
