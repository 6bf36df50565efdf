package api

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

// Reports (digest §5.9): the report pages' figures, from the same rollups
// and definitions as the analytics endpoint.

// ReportParams is the common query of the reports: the range (to may be in
// the future here, as the digest gives no upper bound), the currency and the
// filters.
type ReportParams struct {
	From     string `query:"from" format:"date" doc:"First day (YYYY-MM-DD, inclusive, the workspace's time zone); default 30 days before to."`
	To       string `query:"to" format:"date" doc:"Last day (inclusive); default today; not before from."`
	Currency string `query:"currency" maxLength:"3" doc:"ISO 4217 code of the amounts; default the workspace's currency."`
	AnalyticsFilterParams
}

type reportFilters struct {
	From string `json:"from" format:"date"`
	To   string `json:"to" format:"date"`
}

type reportTrends struct {
	CommissionPaid Rate `json:"commission_paid" doc:"Signed % change of total_commission_paid against the preceding window of the same length (0 when that was 0)."`
	PendingPayouts Rate `json:"pending_payouts" doc:"Signed % change of pending_payouts."`
	ConversionRate Rate `json:"conversion_rate" doc:"Signed % change of conversion_rate (relative, not percentage points)."`
	ReferralClicks Rate `json:"referral_clicks" doc:"Signed % change of total_referral_clicks."`
}

type reportStatsOut struct {
	TotalCommissionPaid Amount        `json:"total_commission_paid" doc:"Commission of the approved orders converted in the range (approved or already paid commissions, net of refund reversals): Σ commission_amount over approved conversions."`
	PendingPayouts      Amount        `json:"pending_payouts" doc:"The part of total_commission_paid not paid out yet (approved commissions, in a payout in flight or not)."`
	ConversionRate      Rate          `json:"conversion_rate" doc:"Conversions (pending or approved orders) ÷ referral clicks × 100, two decimals; 0 without clicks."`
	TotalReferralClicks int64         `json:"total_referral_clicks" doc:"Referral link clicks (total_clicks of the analytics endpoint)."`
	Trends              reportTrends  `json:"trends"`
	Filters             reportFilters `json:"filters"`
	Currency            string        `json:"currency"`
	Timezone            string        `json:"timezone"`
}

func (s *Server) handleReportStats(ctx context.Context, in *ReportParams) (*Out[reportStatsOut], error) {
	sc, err := s.scope(ctx, in.From, in.To, in.Currency, in.filter(), false)
	if err != nil {
		return nil, err
	}
	c, err := s.Store.AnalyticsTotals(ctx, sc.ws, sc.from, sc.to, sc.cur.Code, sc.filter)
	if err != nil {
		return nil, err
	}
	pf, pt := heldsway.PreviousWindow(sc.from, sc.to)
	p, err := s.Store.AnalyticsTotals(ctx, sc.ws, pf, pt, sc.cur.Code, sc.filter)
	if err != nil {
		return nil, err
	}
	rate := func(c heldsway.Counts) int64 { return heldsway.ConversionRate(c.Conversions, c.Clicks) }
	out := reportStatsOut{TotalCommissionPaid: Amount{Minor: c.CommissionConfirmed(), Currency: sc.cur},
		PendingPayouts: Amount{Minor: c.CommissionApproved, Currency: sc.cur}, ConversionRate: Rate(rate(c)),
		TotalReferralClicks: c.Clicks,
		Trends: reportTrends{CommissionPaid: Rate(heldsway.PercentChange(c.CommissionConfirmed(), p.CommissionConfirmed())),
			PendingPayouts: Rate(heldsway.PercentChange(c.CommissionApproved, p.CommissionApproved)),
			ConversionRate: Rate(heldsway.PercentChange(rate(c), rate(p))),
			ReferralClicks: Rate(heldsway.PercentChange(c.Clicks, p.Clicks))},
		Filters: reportFilters{From: sc.from.String(), To: sc.to.String()}, Currency: sc.cur.Code, Timezone: sc.tz}
	return ok("Report statistics retrieved.", out), nil
}

type commissionPoint struct {
	Date              string `json:"date" format:"date"`
	TotalCommission   Amount `json:"total_commission" doc:"Commission pending, approved or paid on the orders converted that day."`
	CommissionPaid    Amount `json:"commission_paid" doc:"Of it, approved or paid (total_commission_paid of /v1/reports/stats)."`
	PendingPayouts    Amount `json:"pending_payouts" doc:"Of it, approved and not paid yet."`
	CommissionPending Amount `json:"commission_pending" doc:"Of it, awaiting approval."`
	Conversions       int64  `json:"conversions"`
	Revenue           Amount `json:"revenue"`
}

type commissionChartOut struct {
	Items    []commissionPoint `json:"items" doc:"Every day of the range, oldest first."`
	Filters  reportFilters     `json:"filters"`
	Currency string            `json:"currency"`
	Timezone string            `json:"timezone"`
}

func (s *Server) handleReportCommissionChart(ctx context.Context, in *ReportParams) (*Out[commissionChartOut], error) {
	sc, err := s.scope(ctx, in.From, in.To, in.Currency, in.filter(), false)
	if err != nil {
		return nil, err
	}
	days, err := s.Store.AnalyticsDaily(ctx, sc.ws, sc.from, sc.to, sc.cur.Code, sc.filter)
	if err != nil {
		return nil, err
	}
	byDay := map[heldsway.Day]heldsway.Counts{}
	for _, d := range days {
		byDay[d.Day] = d.Counts
	}
	out := commissionChartOut{Items: []commissionPoint{}, Filters: reportFilters{From: sc.from.String(), To: sc.to.String()},
		Currency: sc.cur.Code, Timezone: sc.tz}
	amt := func(m int64) Amount { return Amount{Minor: m, Currency: sc.cur} }
	for d := sc.from; d <= sc.to; d = d.AddDays(1) {
		c := byDay[d]
		out.Items = append(out.Items, commissionPoint{Date: d.String(), TotalCommission: amt(c.Commission()),
			CommissionPaid: amt(c.CommissionConfirmed()), PendingPayouts: amt(c.CommissionApproved),
			CommissionPending: amt(c.CommissionPending), Conversions: c.Conversions, Revenue: amt(c.Revenue)})
	}
	return ok("Commission chart retrieved.", out), nil
}

type topAffiliatesInput struct {
	ReportParams
	Limit int `query:"limit" minimum:"1" maximum:"50" default:"10" doc:"How many affiliates."`
}

type topAffiliateRow struct {
	Rank           int    `json:"rank"`
	AffiliateID    int64  `json:"affiliate_id"`
	Name           string `json:"name"`
	ReferralCode   string `json:"referral_code"`
	Earnings       Amount `json:"earnings" doc:"Commission pending, approved or paid on the orders the affiliate referred (every tier) in the range."`
	CommissionPaid Amount `json:"commission_paid" doc:"Of the earnings, approved or paid."`
	Clicks         int64  `json:"clicks"`
	Conversions    int64  `json:"conversions"`
	Revenue        Amount `json:"revenue"`
	ConversionRate Rate   `json:"conversion_rate"`
}

type topAffiliatesOut struct {
	Items    []topAffiliateRow `json:"items" doc:"By earnings, then revenue; ties by affiliate id. Affiliates without any figure are left out."`
	Filters  reportFilters     `json:"filters"`
	Currency string            `json:"currency"`
	Timezone string            `json:"timezone"`
}

func (s *Server) handleReportTopAffiliates(ctx context.Context, in *topAffiliatesInput) (*Out[topAffiliatesOut], error) {
	sc, err := s.scope(ctx, in.From, in.To, in.Currency, in.filter(), false)
	if err != nil {
		return nil, err
	}
	limit := in.Limit
	if limit == 0 {
		limit = 10
	}
	rows, err := s.Store.AnalyticsTop(ctx, sc.ws, sc.from, sc.to, sc.cur.Code, sc.filter, heldsway.TopAffiliates, heldsway.TopByCommission, limit)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	labels, err := s.Store.AffiliateLabels(ctx, sc.ws, ids)
	if err != nil {
		return nil, err
	}
	out := topAffiliatesOut{Items: []topAffiliateRow{}, Filters: reportFilters{From: sc.from.String(), To: sc.to.String()},
		Currency: sc.cur.Code, Timezone: sc.tz}
	amt := func(m int64) Amount { return Amount{Minor: m, Currency: sc.cur} }
	for i, r := range rows {
		c := r.Counts
		out.Items = append(out.Items, topAffiliateRow{Rank: i + 1, AffiliateID: r.ID, Name: labels[r.ID][0], ReferralCode: labels[r.ID][1],
			Earnings: amt(c.Commission()), CommissionPaid: amt(c.CommissionConfirmed()), Clicks: c.Clicks, Conversions: c.Conversions,
			Revenue: amt(c.Revenue), ConversionRate: Rate(heldsway.ConversionRate(c.Conversions, c.Clicks))})
	}
	return ok("Top affiliates retrieved.", out), nil
}

type campaignsInput struct {
	ReportParams
	Limit int `query:"limit" minimum:"1" maximum:"100" default:"50" doc:"How many campaigns."`
}

type campaignClicksRow struct {
	Campaign       *string `json:"campaign" nullable:"true" doc:"The links' campaign (their current one); null for links without one and ?ref= landings."`
	Links          int64   `json:"links" doc:"Links of the campaign with figures in the range."`
	Clicks         int64   `json:"clicks"`
	Conversions    int64   `json:"conversions"`
	Revenue        Amount  `json:"revenue"`
	Commission     Amount  `json:"commission"`
	ConversionRate Rate    `json:"conversion_rate"`
}

type campaignsOut struct {
	Items    []campaignClicksRow `json:"items" doc:"By clicks, then conversions; ties by campaign name, null last."`
	Filters  reportFilters       `json:"filters"`
	Currency string              `json:"currency"`
	Timezone string              `json:"timezone"`
}

func (s *Server) handleReportClicksByCampaign(ctx context.Context, in *campaignsInput) (*Out[campaignsOut], error) {
	sc, err := s.scope(ctx, in.From, in.To, in.Currency, in.filter(), false)
	if err != nil {
		return nil, err
	}
	limit := in.Limit
	if limit == 0 {
		limit = 50
	}
	rows, err := s.Store.AnalyticsTop(ctx, sc.ws, sc.from, sc.to, sc.cur.Code, sc.filter, heldsway.TopCampaigns, heldsway.TopByClicks, limit)
	if err != nil {
		return nil, err
	}
	out := campaignsOut{Items: []campaignClicksRow{}, Filters: reportFilters{From: sc.from.String(), To: sc.to.String()},
		Currency: sc.cur.Code, Timezone: sc.tz}
	for _, r := range rows {
		c := r.Counts
		out.Items = append(out.Items, campaignClicksRow{Campaign: r.Campaign, Links: r.Links, Clicks: c.Clicks, Conversions: c.Conversions,
			Revenue: Amount{Minor: c.Revenue, Currency: sc.cur}, Commission: Amount{Minor: c.Commission(), Currency: sc.cur},
			ConversionRate: Rate(heldsway.ConversionRate(c.Conversions, c.Clicks))})
	}
	return ok("Clicks by campaign retrieved.", out), nil
}

type reportPayoutsInput struct {
	From        string `query:"from" format:"date" doc:"First day the payouts were created (inclusive, the workspace's time zone); default 30 days before to."`
	To          string `query:"to" format:"date" doc:"Last day (inclusive); default today."`
	Status      string `query:"status" enum:"pending,processing,completed,failed"`
	AffiliateID int64  `query:"affiliate_id" minimum:"1" doc:"One of this workspace's affiliates, else 422."`
	Page        int    `query:"page" minimum:"1" maximum:"10000" default:"1"`
	PerPage     int    `query:"per_page" minimum:"1" maximum:"100" default:"25"`
}

type reportPayoutAffiliate struct {
	ID           int64  `json:"id"`
	Name         string `json:"name"`
	ReferralCode string `json:"referral_code"`
}

type reportPayoutItem struct {
	ID                int64                 `json:"id"`
	Affiliate         reportPayoutAffiliate `json:"affiliate"`
	Amount            Amount                `json:"amount"`
	Currency          string                `json:"currency"`
	Status            string                `json:"status" enum:"pending,processing,completed,failed"`
	Method            string                `json:"method"`
	ExternalReference *string               `json:"external_reference" nullable:"true"`
	FailureReason     *string               `json:"failure_reason" nullable:"true"`
	CreatedAt         Timestamp             `json:"created_at"`
	ProcessingAt      *Timestamp            `json:"processing_at" nullable:"true"`
	CompletedAt       *Timestamp            `json:"completed_at" nullable:"true"`
	FailedAt          *Timestamp            `json:"failed_at" nullable:"true"`
}

type reportPayoutsOut struct {
	Items    []reportPayoutItem `json:"items" doc:"Newest first."`
	Meta     offsetMeta         `json:"meta"`
	Filters  reportFilters      `json:"filters"`
	Timezone string             `json:"timezone"`
}

func (s *Server) handleReportPayouts(ctx context.Context, in *reportPayoutsInput) (*Out[reportPayoutsOut], error) {
	page, perPage := max(in.Page, 1), in.PerPage
	if perPage == 0 {
		perPage = 25
	}
	sc, err := s.scope(ctx, in.From, in.To, "", heldsway.AnalyticsFilter{AffiliateID: in.AffiliateID}, false)
	if err != nil {
		return nil, err
	}
	rows, total, err := s.Store.ReportPayouts(ctx, sc.ws, sc.start(), sc.end(), in.Status, in.AffiliateID, perPage, (page-1)*perPage)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, 0, len(rows))
	for _, p := range rows {
		ids = append(ids, p.AffiliateID)
	}
	labels, err := s.Store.AffiliateLabels(ctx, sc.ws, ids)
	if err != nil {
		return nil, err
	}
	out := reportPayoutsOut{Items: make([]reportPayoutItem, 0, len(rows)), Meta: *metaOf(page, perPage, total),
		Filters: reportFilters{From: sc.from.String(), To: sc.to.String()}, Timezone: sc.tz}
	for _, p := range rows {
		cur := orderCurrency(p.Currency)
		out.Items = append(out.Items, reportPayoutItem{ID: p.ID,
			Affiliate: reportPayoutAffiliate{ID: p.AffiliateID, Name: labels[p.AffiliateID][0], ReferralCode: labels[p.AffiliateID][1]},
			Amount:    Amount{Minor: p.Amount, Currency: cur}, Currency: cur.Code, Status: p.Status, Method: p.Method,
			ExternalReference: strOrNil(p.ExternalReference), FailureReason: strOrNil(p.FailureReason),
			CreatedAt: Timestamp(p.CreatedAt), ProcessingAt: tsPtr(p.ProcessingAt), CompletedAt: tsPtr(p.CompletedAt),
			FailedAt: tsPtr(p.FailedAt)})
	}
	return ok("Payout history retrieved.", out), nil
}

// Report export columns, per type.
var (
	ReportExportDaily      = []string{"date", "clicks", "pageviews", "unique_visitors", "conversions", "revenue", "commission", "commission_pending", "commission_approved", "commission_paid", "conversion_rate", "currency"}
	ReportExportAffiliates = []string{"affiliate_id", "name", "referral_code", "clicks", "conversions", "revenue", "commission", "commission_paid", "conversion_rate", "currency"}
	ReportExportCampaigns  = []string{"campaign", "links", "clicks", "conversions", "revenue", "commission", "conversion_rate", "currency"}
)

// reportExportMax bounds the affiliate and campaign rows of an export.
const reportExportMax = 100000

type reportExportInput struct {
	ReportParams
	Type string `query:"type" enum:"daily,affiliates,campaigns" default:"daily" doc:"daily: one row per day; affiliates: one row per affiliate with figures, by earnings; campaigns: one row per link campaign, by clicks."`
}

func (s *Server) handleReportExport(ctx context.Context, in *reportExportInput) (*huma.StreamResponse, error) {
	sc, err := s.scope(ctx, in.From, in.To, in.Currency, in.filter(), false)
	if err != nil {
		return nil, err
	}
	typ := in.Type
	if typ == "" {
		typ = "daily"
	}
	// Everything is read before the first byte, so a failure is an error
	// envelope, not a truncated file: the rows are at most a few thousand
	// days or one per affiliate.
	amt := func(m int64) string { return money.Format(m, sc.cur) }
	var rows [][]string
	switch typ {
	case "daily":
		days, err := s.Store.AnalyticsDaily(ctx, sc.ws, sc.from, sc.to, sc.cur.Code, sc.filter)
		if err != nil {
			return nil, err
		}
		byDay := map[heldsway.Day]heldsway.Counts{}
		for _, d := range days {
			byDay[d.Day] = d.Counts
		}
		rows = append(rows, ReportExportDaily)
		for d := sc.from; d <= sc.to; d = d.AddDays(1) {
			c := byDay[d]
			rows = append(rows, []string{d.String(), itoa(c.Clicks), itoa(c.Pageviews), itoa(c.Sessions), itoa(c.Conversions),
				amt(c.Revenue), amt(c.Commission()), amt(c.CommissionPending), amt(c.CommissionApproved), amt(c.CommissionPaid),
				money.FormatRate(heldsway.ConversionRate(c.Conversions, c.Clicks)), sc.cur.Code})
		}
	case "affiliates":
		top, err := s.Store.AnalyticsTop(ctx, sc.ws, sc.from, sc.to, sc.cur.Code, sc.filter, heldsway.TopAffiliates, heldsway.TopByCommission, reportExportMax)
		if err != nil {
			return nil, err
		}
		ids := make([]int64, len(top))
		for i, r := range top {
			ids[i] = r.ID
		}
		labels, err := s.Store.AffiliateLabels(ctx, sc.ws, ids)
		if err != nil {
			return nil, err
		}
		rows = append(rows, ReportExportAffiliates)
		for _, r := range top {
			c := r.Counts
			rows = append(rows, []string{itoa(r.ID), csvText(labels[r.ID][0]), csvText(labels[r.ID][1]), itoa(c.Clicks),
				itoa(c.Conversions), amt(c.Revenue), amt(c.Commission()), amt(c.CommissionConfirmed()),
				money.FormatRate(heldsway.ConversionRate(c.Conversions, c.Clicks)), sc.cur.Code})
		}
	case "campaigns":
		top, err := s.Store.AnalyticsTop(ctx, sc.ws, sc.from, sc.to, sc.cur.Code, sc.filter, heldsway.TopCampaigns, heldsway.TopByClicks, reportExportMax)
		if err != nil {
			return nil, err
		}
		rows = append(rows, ReportExportCampaigns)
		for _, r := range top {
			c, name := r.Counts, ""
			if r.Campaign != nil {
				name = *r.Campaign
			}
			rows = append(rows, []string{csvText(name), itoa(r.Links), itoa(c.Clicks), itoa(c.Conversions), amt(c.Revenue),
				amt(c.Commission()), money.FormatRate(heldsway.ConversionRate(c.Conversions, c.Clicks)), sc.cur.Code})
		}
	}
	name := fmt.Sprintf("report-%s-%s-%s.csv", typ, sc.from, sc.to)
	return &huma.StreamResponse{Body: func(hctx huma.Context) {
		hctx.SetHeader("Content-Type", "text/csv; charset=utf-8")
		hctx.SetHeader("Content-Disposition", `attachment; filename="`+name+`"`)
		hctx.SetHeader("Cache-Control", "no-store")
		hctx.SetStatus(http.StatusOK)
		w := csv.NewWriter(hctx.BodyWriter())
		_ = w.WriteAll(rows)
	}}, nil
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
