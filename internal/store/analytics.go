package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// Analytics and report queries (digest §5.8, §5.9): sums over the daily
// rollups (rollup.go), never scans of raw events, except the recent_* lists,
// which page through the newest raw rows of a range.
//
// Unfiltered figures read rollup_totals (a row a day and currency on SQLite,
// at most 64 on PostgreSQL). A program, affiliate or link filter, and the
// top-N tables, read rollup_daily's fewest blocks covering the range (see
// blocks), through its primary key or its (workspace_id, affiliate_id, span,
// day) and (workspace_id, link_id, span, day) indexes. Money columns are
// summed for one currency; counts (conversions included) over every
// currency.

// moneyCols are the counters that hold amounts of the row's currency.
var moneyCols = map[string]bool{"revenue": true, "commission_pending": true, "commission_approved": true, "commission_paid": true}

// sumCounts is the select list of the counters' sums, money for currency
// placeholder cur only. SUM of a BIGINT is NUMERIC on PostgreSQL: cast back
// so both engines scan an int64.
func sumCounts(alias, cur string) string {
	parts := make([]string, len(countCols))
	for i, c := range countCols {
		col := alias + c
		if moneyCols[c] {
			col = `CASE WHEN ` + alias + `currency = ` + cur + ` THEN ` + col + ` ELSE 0 END`
		}
		parts[i] = `CAST(COALESCE(SUM(` + col + `), 0) AS BIGINT)`
	}
	return strings.Join(parts, ", ")
}

// sumOf is the sum expression of one counter (money for cur), for ORDER BY.
func sumOf(alias, col, cur string) string {
	c := alias + col
	if moneyCols[col] {
		c = `CASE WHEN ` + alias + `currency = ` + cur + ` THEN ` + c + ` ELSE 0 END`
	}
	return `SUM(` + c + `)`
}

// collateC makes PostgreSQL compare text bytewise, as SQLite does, so ties
// order the same on both engines.
func (d Dialect) collateC() string {
	if d.IsPostgres() {
		return ` COLLATE "C"`
	}
	return ``
}

// RollupZone returns the time zone of the workspace's analytics days: the one
// its rollups are kept in, or its setting when it has no rollups yet.
func (s *Store) RollupZone(ctx context.Context, wsID int64) (string, *time.Location, error) {
	var tz string
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE((SELECT timezone FROM rollup_state WHERE workspace_id = $1),
		(SELECT timezone FROM workspace_settings WHERE workspace_id = $1), 'UTC')`, wsID).Scan(&tz)
	if err != nil {
		return "", nil, unavailable(err)
	}
	return tz, loadLocation(tz), nil
}

// DefaultCurrency returns the currency of the workspace's default program
// (the settings' currency), USD when it has none.
func (s *Store) DefaultCurrency(ctx context.Context, wsID int64) (string, error) {
	var cur string
	err := s.r.QueryRowContext(ctx, `SELECT currency FROM programs WHERE workspace_id = $1 AND is_default`, wsID).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) {
		return "USD", nil
	}
	return cur, unavailable(err)
}

// CheckAnalyticsFilter verifies that the filter's program, affiliate and link
// are the workspace's: another workspace's id is EVALIDATION on its field,
// never an empty figure that would confirm or deny its existence.
func (s *Store) CheckAnalyticsFilter(ctx context.Context, wsID int64, f heldsway.AnalyticsFilter) error {
	fe := heldsway.FieldErrors{}
	for _, c := range []struct {
		field, table string
		id           int64
	}{{"program_id", "programs", f.ProgramID}, {"affiliate_id", "affiliates", f.AffiliateID}, {"link_id", "links", f.LinkID}} {
		if c.id == 0 {
			continue
		}
		var one int
		err := s.r.QueryRowContext(ctx, `SELECT 1 FROM `+c.table+` WHERE workspace_id = $1 AND id = $2`, wsID, c.id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			fe.Add(c.field, "The selected "+strings.ReplaceAll(c.field, "_", " ")+" is invalid.")
		} else if err != nil {
			return unavailable(err)
		}
	}
	return fe.Err()
}

// Where a query reads its rows from.
const (
	srcTotals = iota // rollup_totals, or rollup_daily's days when filtered
	srcDaily         // rollup_daily's days (span 1)
	srcBlocks        // rollup_daily's fewest blocks covering the range
	srcPages         // rollup_pages or rollup_products: -1 rows, or dimension rows when filtered
)

// rollupSource returns the table and WHERE clause of a range of days with the
// filter; args hold workspace, from, to ($1…$3), the currency ($4) when cur
// is not nil, then the filter's. Day lists of blocks are integers written
// into the text.
//
// folded is the workspace's fold watermark (0: none; see rollupfold.go):
// blocks cover the range up to the day before it, day rows the rest.
func rollupSource(wsID int64, from, to heldsway.Day, cur *string, f heldsway.AnalyticsFilter, src int, folded heldsway.Day) (string, string, []any) {
	args := []any{wsID, int32(from), int32(to)}
	if cur != nil {
		args = append(args, *cur)
	}
	table := "rollup_daily"
	where := ` WHERE r.workspace_id = $1 AND r.day >= $2 AND r.day <= $3`
	switch {
	case src == srcTotals && !f.Any():
		table = "rollup_totals"
	case src == srcTotals, src == srcDaily:
		where += ` AND r.span = 1`
	case src == srcBlocks:
		blocksTo := to
		if folded != 0 && folded <= to {
			blocksTo = folded.AddDays(-1)
		}
		bySpan := map[int][]string{}
		if blocksTo >= from {
			for _, b := range blocks(from, blocksTo) {
				bySpan[b.span] = append(bySpan[b.span], strconv.Itoa(int(b.start)))
			}
		}
		var terms []string
		for _, sp := range rollupSpans {
			if days := bySpan[sp]; len(days) > 0 {
				terms = append(terms, `(r.span = `+strconv.Itoa(sp)+` AND r.day IN (`+strings.Join(days, ", ")+`))`)
			}
		}
		if blocksTo < to { // not folded yet: the day rows
			terms = append(terms, `(r.span = 1 AND r.day >= `+strconv.Itoa(int(max(from, blocksTo.AddDays(1))))+`)`)
		}
		// Every block starts in [from, to], so the range bounds hold too.
		where = ` WHERE r.workspace_id = $1 AND r.day >= $2 AND r.day <= $3 AND (` + strings.Join(terms, ` OR `) + `)`
	case src == srcPages && !f.Any():
		where += ` AND r.affiliate_id = -1`
	}
	for _, c := range []struct {
		col string
		id  int64
	}{{"program_id", f.ProgramID}, {"affiliate_id", f.AffiliateID}, {"link_id", f.LinkID}} {
		if c.id != 0 {
			args = append(args, c.id)
			where += ` AND r.` + c.col + ` = $` + strconv.Itoa(len(args))
		}
	}
	return table + ` r`, where, args
}

// blockSource is where a range's sums come from under the filter: the
// workspace totals, or rollup_daily's blocks with the fold watermark.
func (s *Store) blockSource(ctx context.Context, wsID int64, f heldsway.AnalyticsFilter) (int, heldsway.Day, error) {
	if !f.Any() {
		return srcTotals, 0, nil
	}
	folded, err := s.rollupFolded(ctx, wsID)
	return srcBlocks, folded, err
}

// rollupFolded returns the workspace's fold watermark (0: none). It must be
// read before the rows it splits: one read earlier can only be older, and an
// older watermark reads more day rows, which every day has, and only blocks
// that were complete already.
func (s *Store) rollupFolded(ctx context.Context, wsID int64) (heldsway.Day, error) {
	if s.Dialect.IsPostgres() {
		return 0, nil // nothing folds there: no query for it
	}
	var f sql.NullInt64
	err := s.queryRowHot(ctx, `SELECT folded_to FROM rollup_state WHERE workspace_id = $1`, wsID).Scan(&f)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	} else if err != nil {
		return 0, unavailable(err)
	}
	return heldsway.Day(f.Int64), nil
}

func scanCounts(sc scanner, lead ...any) (heldsway.Counts, error) {
	var c heldsway.Counts
	dest := lead
	for _, f := range c.Fields() {
		dest = append(dest, f)
	}
	err := sc.Scan(dest...)
	return c, err
}

// AnalyticsTotals sums the counts of the days [from, to] under the filter;
// money in currency cur.
func (s *Store) AnalyticsTotals(ctx context.Context, wsID int64, from, to heldsway.Day, cur string, f heldsway.AnalyticsFilter) (heldsway.Counts, error) {
	if err := s.SyncClickRollups(ctx); err != nil { // SQLite: count the newest clicks first
		return heldsway.Counts{}, err
	}
	src, folded, err := s.blockSource(ctx, wsID, f)
	if err != nil {
		return heldsway.Counts{}, err
	}
	table, where, args := rollupSource(wsID, from, to, &cur, f, src, folded)
	c, err := scanCounts(s.r.QueryRowContext(ctx, `SELECT `+sumCounts("r.", "$4")+` FROM `+table+where, args...))
	return c, unavailable(err)
}

// AnalyticsDaily returns the counts of each day of [from, to] that has any,
// by day.
func (s *Store) AnalyticsDaily(ctx context.Context, wsID int64, from, to heldsway.Day, cur string, f heldsway.AnalyticsFilter) ([]heldsway.DayCounts, error) {
	if err := s.SyncClickRollups(ctx); err != nil { // SQLite: count the newest clicks first
		return nil, err
	}
	table, where, args := rollupSource(wsID, from, to, &cur, f, srcTotals, 0)
	rows, err := s.r.QueryContext(ctx, `SELECT r.day, `+sumCounts("r.", "$4")+` FROM `+table+where+` GROUP BY r.day ORDER BY r.day`, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []heldsway.DayCounts
	for rows.Next() {
		var d int32
		c, err := scanCounts(rows, &d)
		if err != nil {
			return nil, unavailable(err)
		}
		out = append(out, heldsway.DayCounts{Day: heldsway.Day(d), Counts: c})
	}
	return out, unavailable(rows.Err())
}

// tableCols are the counts of the top-N tables (DimRow.Counts holds only
// these).
var tableCols = []string{"clicks", "pageviews", "sessions", "conversions", "revenue", "commission_pending",
	"commission_approved", "commission_paid"}

// dimPair is the figures of one affiliate and link over a range.
type dimPair struct {
	aff, link int64
	c         heldsway.Counts
}

// dimPairs sums rollup_daily per affiliate and link over the fewest blocks
// covering [from, to]: one scan serves the affiliate, link and campaign
// tables.
func (s *Store) dimPairs(ctx context.Context, wsID int64, from, to heldsway.Day, cur string, f heldsway.AnalyticsFilter) ([]dimPair, error) {
	folded, err := s.rollupFolded(ctx, wsID)
	if err != nil {
		return nil, err
	}
	table, where, args := rollupSource(wsID, from, to, &cur, f, srcBlocks, folded)
	// Only the counts the tables show: each sum costs on SQLite.
	sums := make([]string, len(tableCols))
	for i, c := range tableCols {
		sums[i] = `CAST(COALESCE(` + sumOf("r.", c, "$4") + `, 0) AS BIGINT)`
	}
	rows, err := s.r.QueryContext(ctx, `SELECT r.affiliate_id, r.link_id, `+strings.Join(sums, ", ")+` FROM `+table+where+
		` GROUP BY r.affiliate_id, r.link_id`, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []dimPair
	for rows.Next() {
		var p dimPair
		c := &p.c
		if err := rows.Scan(&p.aff, &p.link, &c.Clicks, &c.Pageviews, &c.Sessions, &c.Conversions, &c.Revenue,
			&c.CommissionPending, &c.CommissionApproved, &c.CommissionPaid); err != nil {
			return nil, unavailable(err)
		}
		out = append(out, p)
	}
	return out, unavailable(rows.Err())
}

// rankDims groups pairs into affiliates, links (not link 0) or campaigns
// (by the links' campaign; link 0 and links without one under nil) and
// ranks them by revenue then clicks, commission then revenue, or clicks then
// conversions; ties go to the lower id, or the campaign name in byte order
// with no campaign last. Rows without any figure are left out.
func rankDims(pairs []dimPair, kind, by string, limit int, labels map[int64]heldsway.LinkLabel) []heldsway.DimRow {
	type group struct {
		row   heldsway.DimRow
		links map[int64]bool
	}
	groups := map[string]*group{}
	var order []string
	for _, p := range pairs {
		if p.c.IsZero() {
			continue
		}
		var key string
		var g heldsway.DimRow
		switch kind {
		case heldsway.TopAffiliates:
			key, g.ID = strconv.FormatInt(p.aff, 10), p.aff
		case heldsway.TopLinks:
			if p.link == 0 {
				continue
			}
			key, g.ID = strconv.FormatInt(p.link, 10), p.link
		default:
			key = "none"
			if l, ok := labels[p.link]; ok && p.link != 0 && l.Campaign != nil {
				key, g.Campaign = "c:"+*l.Campaign, l.Campaign
			}
		}
		x := groups[key]
		if x == nil {
			x = &group{row: g, links: map[int64]bool{}}
			groups[key] = x
			order = append(order, key)
		}
		x.row.Counts.Add(p.c)
		if p.link != 0 {
			x.links[p.link] = true
		}
	}
	out := make([]heldsway.DimRow, 0, len(groups))
	for _, k := range order {
		g := groups[k]
		if g.row.Counts.IsZero() {
			continue
		}
		if kind == heldsway.TopCampaigns {
			g.row.Links = int64(len(g.links))
		}
		out = append(out, g.row)
	}
	slices.SortFunc(out, func(a, b heldsway.DimRow) int {
		x, y := a.Counts, b.Counts
		var o int
		switch by {
		case heldsway.TopByCommission:
			o = cmp.Or(cmp.Compare(y.Commission(), x.Commission()), cmp.Compare(y.Revenue, x.Revenue))
		case heldsway.TopByClicks:
			o = cmp.Or(cmp.Compare(y.Clicks, x.Clicks), cmp.Compare(y.Conversions, x.Conversions))
		default:
			o = cmp.Or(cmp.Compare(y.Revenue, x.Revenue), cmp.Compare(y.Clicks, x.Clicks))
		}
		if o != 0 || kind != heldsway.TopCampaigns {
			return cmp.Or(o, cmp.Compare(a.ID, b.ID))
		}
		switch {
		case a.Campaign == nil && b.Campaign == nil:
			return 0
		case a.Campaign == nil:
			return 1
		case b.Campaign == nil:
			return -1
		}
		return strings.Compare(*a.Campaign, *b.Campaign)
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// pairLinks returns the labels of the pairs' links.
func (s *Store) pairLinks(ctx context.Context, wsID int64, pairs []dimPair) (map[int64]heldsway.LinkLabel, error) {
	seen := map[int64]bool{}
	var ids []int64
	for _, p := range pairs {
		if p.link != 0 && !seen[p.link] {
			seen[p.link] = true
			ids = append(ids, p.link)
		}
	}
	return s.LinkLabels(ctx, wsID, ids)
}

// AnalyticsTop ranks the affiliates, links or campaigns (kind) of the range
// under the filter by revenue, commission or clicks (by), at most limit rows;
// see rankDims.
func (s *Store) AnalyticsTop(ctx context.Context, wsID int64, from, to heldsway.Day, cur string, f heldsway.AnalyticsFilter, kind, by string, limit int) ([]heldsway.DimRow, error) {
	if err := s.SyncClickRollups(ctx); err != nil { // SQLite: count the newest clicks first
		return nil, err
	}
	pairs, err := s.dimPairs(ctx, wsID, from, to, cur, f)
	if err != nil {
		return nil, err
	}
	var labels map[int64]heldsway.LinkLabel
	if kind == heldsway.TopCampaigns {
		if labels, err = s.pairLinks(ctx, wsID, pairs); err != nil {
			return nil, err
		}
	}
	return rankDims(pairs, kind, by, limit, labels), nil
}

// AnalyticsTables ranks affiliates, links and campaigns by revenue from one
// scan, and returns the labels of the links.
func (s *Store) AnalyticsTables(ctx context.Context, wsID int64, from, to heldsway.Day, cur string, f heldsway.AnalyticsFilter, limit int) (affs, links, campaigns []heldsway.DimRow, labels map[int64]heldsway.LinkLabel, err error) {
	if err := s.SyncClickRollups(ctx); err != nil { // SQLite: count the newest clicks first
		return nil, nil, nil, nil, err
	}
	pairs, err := s.dimPairs(ctx, wsID, from, to, cur, f)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if labels, err = s.pairLinks(ctx, wsID, pairs); err != nil {
		return nil, nil, nil, nil, err
	}
	return rankDims(pairs, heldsway.TopAffiliates, heldsway.TopByRevenue, limit, labels),
		rankDims(pairs, heldsway.TopLinks, heldsway.TopByRevenue, limit, labels),
		rankDims(pairs, heldsway.TopCampaigns, heldsway.TopByRevenue, limit, labels), labels, nil
}

// pageWhere is the WHERE clause of rollup_pages and rollup_products.
func pageWhere(wsID int64, from, to heldsway.Day, f heldsway.AnalyticsFilter) (string, []any) {
	_, where, args := rollupSource(wsID, from, to, nil, f, srcPages, 0)
	return where, args
}

// AnalyticsPages ranks pages by pageviews over the range, at most limit.
func (s *Store) AnalyticsPages(ctx context.Context, wsID int64, from, to heldsway.Day, f heldsway.AnalyticsFilter, limit int) ([]heldsway.PageRow, error) {
	where, args := pageWhere(wsID, from, to, f)
	args = append(args, limit)
	c := s.Dialect.collateC()
	rows, err := s.r.QueryContext(ctx, `SELECT r.host, r.path, CAST(SUM(r.pageviews) AS BIGINT) FROM rollup_pages r`+where+
		` GROUP BY r.host, r.path ORDER BY SUM(r.pageviews) DESC, r.host`+c+`, r.path`+c+` LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []heldsway.PageRow
	for rows.Next() {
		var p heldsway.PageRow
		if err := rows.Scan(&p.Host, &p.Path, &p.Pageviews); err != nil {
			return nil, unavailable(err)
		}
		out = append(out, p)
	}
	return out, unavailable(rows.Err())
}

// AnalyticsProducts ranks products by product views, then add-to-carts, at
// most limit; the name is the greatest reported.
func (s *Store) AnalyticsProducts(ctx context.Context, wsID int64, from, to heldsway.Day, f heldsway.AnalyticsFilter, limit int) ([]heldsway.ProductRow, error) {
	where, args := pageWhere(wsID, from, to, f)
	args = append(args, limit)
	c := s.Dialect.collateC()
	rows, err := s.r.QueryContext(ctx, `SELECT r.product_id, MAX(r.product_name`+c+`), CAST(SUM(r.product_views) AS BIGINT),
		CAST(SUM(r.add_to_carts) AS BIGINT), CAST(SUM(r.remove_from_carts) AS BIGINT) FROM rollup_products r`+where+
		` GROUP BY r.product_id ORDER BY SUM(r.product_views) DESC, SUM(r.add_to_carts) DESC, r.product_id`+c+
		` LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []heldsway.ProductRow
	for rows.Next() {
		var p heldsway.ProductRow
		if err := rows.Scan(&p.ProductID, &p.Name, &p.ProductViews, &p.AddToCarts, &p.RemoveCarts); err != nil {
			return nil, unavailable(err)
		}
		out = append(out, p)
	}
	return out, unavailable(rows.Err())
}

// rawWhere filters a raw table (alias t) by workspace, [start, end) on col
// and the filter; program_id, affiliate_id and link_id are its columns.
func rawWhere(alias, col string, wsID int64, start, end time.Time, f heldsway.AnalyticsFilter) (string, []any) {
	args := []any{wsID, ts(start), ts(end)}
	where := ` WHERE ` + alias + `workspace_id = $1 AND ` + alias + col + ` >= $2 AND ` + alias + col + ` < $3`
	for _, c := range []struct {
		col string
		id  int64
	}{{"program_id", f.ProgramID}, {"affiliate_id", f.AffiliateID}, {"link_id", f.LinkID}} {
		if c.id != 0 {
			args = append(args, c.id)
			where += ` AND ` + alias + c.col + ` = $` + strconv.Itoa(len(args))
		}
	}
	return where, args
}

func limitOffset(args []any, limit, offset int) (string, []any) {
	args = append(args, limit, offset)
	return ` LIMIT $` + strconv.Itoa(len(args)-1) + ` OFFSET $` + strconv.Itoa(len(args)), args
}

// RecentClicks pages the clicks of [start, end) under the filter, newest
// first (through clicks_created, or clicks_link for a link).
func (s *Store) RecentClicks(ctx context.Context, wsID int64, start, end time.Time, f heldsway.AnalyticsFilter, limit, offset int) ([]heldsway.ClickRecord, error) {
	if err := s.syncClicks(ctx); err != nil {
		return nil, err
	}
	where, args := rawWhere("", "created_at", wsID, start, end, f)
	tail, args := limitOffset(args, limit, offset)
	rows, err := s.r.QueryContext(ctx, `SELECT id, link_id, affiliate_id, program_id, click_id, visitor_id, user_agent, referrer,
		landing_query, created_at FROM clicks`+where+` ORDER BY created_at DESC, id DESC`+tail, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	out := []heldsway.ClickRecord{}
	for rows.Next() {
		var (
			c           heldsway.ClickRecord
			ua, ref, lq sql.NullString
			at          int64
		)
		if err := rows.Scan(&c.ID, &c.LinkID, &c.AffiliateID, &c.ProgramID, &c.ClickID, &c.VisitorID, &ua, &ref, &lq, &at); err != nil {
			return nil, unavailable(err)
		}
		c.WorkspaceID, c.UserAgent, c.Referrer, c.LandingQuery, c.CreatedAt = wsID, ua.String, ref.String, lq.String, fromTS(at)
		out = append(out, c)
	}
	return out, unavailable(rows.Err())
}

// RecentOrders pages the orders converted in [start, end) under the filter,
// whatever their status, newest first, with their commissions; total is how
// many there are.
func (s *Store) RecentOrders(ctx context.Context, wsID int64, start, end time.Time, f heldsway.AnalyticsFilter, limit, offset int) ([]*heldsway.Order, int64, error) {
	where, args := rawWhere("o.", "converted_at", wsID, start, end, f)
	var total int64
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM orders o`+where, args...).Scan(&total); err != nil {
		return nil, 0, unavailable(err)
	}
	tail, args := limitOffset(args, limit, offset)
	rows, err := s.r.QueryContext(ctx, `SELECT `+orderCols+orderFrom+where+` ORDER BY o.converted_at DESC, o.id DESC`+tail, args...)
	if err != nil {
		return nil, 0, unavailable(err)
	}
	out := []*heldsway.Order{}
	for rows.Next() {
		o, err := scanOrderRow(rows)
		if err != nil {
			rows.Close()
			return nil, 0, unavailable(err)
		}
		out = append(out, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, unavailable(err)
	}
	return out, total, unavailable(loadOrderCommissions(ctx, s.r, wsID, out))
}

// RecentEvents pages the storefront events of [start, end) under the
// filter, newest first.
func (s *Store) RecentEvents(ctx context.Context, wsID int64, start, end time.Time, f heldsway.AnalyticsFilter, limit, offset int) ([]heldsway.StorefrontEvent, error) {
	where, args := rawWhere("", "created_at", wsID, start, end, f)
	tail, args := limitOffset(args, limit, offset)
	rows, err := s.r.QueryContext(ctx, `SELECT id, type, visitor_id, session_id, program_id, affiliate_id, link_id, host, path,
		referrer, utm_source, utm_medium, utm_campaign, utm_term, utm_content, product_id, product_name, category, amount,
		currency, quantity, cart_id, order_id, created_at FROM storefront_events`+where+` ORDER BY created_at DESC, id DESC`+tail, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	out := []heldsway.StorefrontEvent{}
	for rows.Next() {
		var (
			e                                              heldsway.StorefrontEvent
			prog, aff, link, amount, qty                   sql.NullInt64
			host, path, ref, src, med, camp, term, content sql.NullString
			prod, name, cat, cur, cart, order              sql.NullString
			at                                             int64
		)
		if err := rows.Scan(&e.ID, &e.Type, &e.VisitorID, &e.SessionID, &prog, &aff, &link, &host, &path, &ref, &src, &med,
			&camp, &term, &content, &prod, &name, &cat, &amount, &cur, &qty, &cart, &order, &at); err != nil {
			return nil, unavailable(err)
		}
		e.WorkspaceID = wsID
		e.ProgramID, e.AffiliateID, e.LinkID, e.Amount, e.Quantity = fromNullInt(prog), fromNullInt(aff), fromNullInt(link),
			fromNullInt(amount), fromNullInt(qty)
		e.Host, e.Path, e.Referrer = host.String, path.String, ref.String
		e.UTM = heldsway.UTM{Source: src.String, Medium: med.String, Campaign: camp.String, Term: term.String, Content: content.String}
		e.ProductID, e.ProductName, e.Category, e.Currency = prod.String, name.String, cat.String, cur.String
		e.CartID, e.OrderID, e.CreatedAt = cart.String, order.String, fromTS(at)
		out = append(out, e)
	}
	return out, unavailable(rows.Err())
}

// ReportPayouts pages the payouts created in [start, end), newest first,
// optionally of one status and affiliate; total is how many there are. It
// reads the payouts table through payouts_created (or payouts_status,
// payouts_affiliate).
func (s *Store) ReportPayouts(ctx context.Context, wsID int64, start, end time.Time, status string, affID int64, limit, offset int) ([]*heldsway.Payout, int64, error) {
	args := []any{wsID, ts(start), ts(end)}
	where := ` WHERE p.workspace_id = $1 AND p.created_at >= $2 AND p.created_at < $3`
	if status != "" {
		args = append(args, status)
		where += ` AND p.status = $` + strconv.Itoa(len(args))
	}
	if affID != 0 {
		args = append(args, affID)
		where += ` AND p.affiliate_id = $` + strconv.Itoa(len(args))
	}
	var total int64
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM payouts p`+where, args...).Scan(&total); err != nil {
		return nil, 0, unavailable(err)
	}
	tail, args := limitOffset(args, limit, offset)
	rows, err := s.r.QueryContext(ctx, `SELECT `+payoutCols+` FROM payouts p`+where+` ORDER BY p.created_at DESC, p.id DESC`+tail, args...)
	if err != nil {
		return nil, 0, unavailable(err)
	}
	defer rows.Close()
	out := []*heldsway.Payout{}
	for rows.Next() {
		p, err := scanPayout(rows)
		if err != nil {
			return nil, 0, unavailable(err)
		}
		out = append(out, p)
	}
	return out, total, unavailable(rows.Err())
}

// AffiliateLabels returns the name and referral code of the workspace's
// affiliates among ids.
func (s *Store) AffiliateLabels(ctx context.Context, wsID int64, ids []int64) (map[int64][2]string, error) {
	out := map[int64][2]string{}
	err := s.byIDs(ctx, `SELECT id, name, referral_code FROM affiliates WHERE workspace_id = $1 AND id IN `, wsID, ids, func(rows *sql.Rows) error {
		var id int64
		var name, code string
		if err := rows.Scan(&id, &name, &code); err != nil {
			return err
		}
		out[id] = [2]string{name, code}
		return nil
	})
	return out, err
}

// LinkLabels returns the slug, campaign and affiliate of the workspace's
// links among ids.
func (s *Store) LinkLabels(ctx context.Context, wsID int64, ids []int64) (map[int64]heldsway.LinkLabel, error) {
	out := map[int64]heldsway.LinkLabel{}
	err := s.byIDs(ctx, `SELECT id, slug, campaign, affiliate_id FROM links WHERE workspace_id = $1 AND id IN `, wsID, ids, func(rows *sql.Rows) error {
		var (
			l        heldsway.LinkLabel
			id       int64
			campaign sql.NullString
		)
		if err := rows.Scan(&id, &l.Slug, &campaign, &l.AffiliateID); err != nil {
			return err
		}
		if campaign.Valid {
			l.Campaign = &campaign.String
		}
		out[id] = l
		return nil
	})
	return out, err
}

// byIDs runs q (ending in "IN ") with ids written into the text, in
// chunks: they are integers, and modernc.org/sqlite binds numbered
// parameters by name, at a cost that grows with their number.
func (s *Store) byIDs(ctx context.Context, q string, wsID int64, ids []int64, scan func(*sql.Rows) error) error {
	for len(ids) > 0 {
		n := min(len(ids), 1000)
		list := make([]string, n)
		for i := range n {
			list[i] = strconv.FormatInt(ids[i], 10)
		}
		rows, err := s.r.QueryContext(ctx, q+`(`+strings.Join(list, ", ")+`)`, wsID)
		if err != nil {
			return unavailable(err)
		}
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				return unavailable(err)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return unavailable(err)
		}
		ids = ids[n:]
	}
	return nil
}

// AnalyticsByCurrency sums the counts of [from, to] under the filter per
// currency: the row of currency "" holds the counts that have no currency
// (clicks, storefront events), the others their orders' counts and amounts.
// Currencies are sorted by code; only those with a non-zero count appear.
func (s *Store) AnalyticsByCurrency(ctx context.Context, wsID int64, from, to heldsway.Day, f heldsway.AnalyticsFilter) ([]heldsway.CurrencyCounts, error) {
	if err := s.SyncClickRollups(ctx); err != nil { // SQLite: count the newest clicks first
		return nil, err
	}
	src, folded, err := s.blockSource(ctx, wsID, f)
	if err != nil {
		return nil, err
	}
	table, where, args := rollupSource(wsID, from, to, nil, f, src, folded)
	rows, err := s.r.QueryContext(ctx, `SELECT r.currency, `+sumCounts("r.", "r.currency")+` FROM `+table+where+
		` GROUP BY r.currency ORDER BY r.currency`+s.Dialect.collateC(), args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []heldsway.CurrencyCounts
	for rows.Next() {
		var cc heldsway.CurrencyCounts
		var err error
		if cc.Counts, err = scanCounts(rows, &cc.Currency); err != nil {
			return nil, unavailable(err)
		}
		if !cc.Counts.IsZero() {
			out = append(out, cc)
		}
	}
	return out, unavailable(rows.Err())
}

// LinkUniqueVisitors counts the distinct visitors among a link's clicks of
// [start, end); a click without a visitor id is a visitor of its own.
func (s *Store) LinkUniqueVisitors(ctx context.Context, wsID, linkID int64, start, end time.Time) (int64, error) {
	if err := s.syncClicks(ctx); err != nil {
		return 0, err
	}
	var distinct, anonymous int64
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(DISTINCT CASE WHEN visitor_id <> '' THEN visitor_id END),
			CAST(COALESCE(SUM(CASE WHEN visitor_id = '' THEN 1 ELSE 0 END), 0) AS BIGINT)
		FROM clicks WHERE workspace_id = $1 AND link_id = $2 AND created_at >= $3 AND created_at < $4`,
		wsID, linkID, ts(start), ts(end)).Scan(&distinct, &anonymous)
	return distinct + anonymous, unavailable(err)
}

// ScanTotals computes the stats figures of [from, to] (days of loc) by a
// direct scan of the raw rows, as analytics would without rollups: the
// benchmark's yardstick (bench/analytics), not used by the API. Sessions are
// counted distinct over the range rather than per day.
func (s *Store) ScanTotals(ctx context.Context, wsID int64, from, to heldsway.Day, cur string, loc *time.Location) (heldsway.Counts, error) {
	if err := s.syncClicks(ctx); err != nil {
		return heldsway.Counts{}, err
	}
	var c heldsway.Counts
	start, end := ts(from.Start(loc)), ts(to.AddDays(1).Start(loc))
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM clicks WHERE workspace_id = $1 AND created_at >= $2 AND created_at < $3`,
		wsID, start, end).Scan(&c.Clicks); err != nil {
		return c, unavailable(err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT type, COUNT(*), COUNT(DISTINCT session_id) FROM storefront_events
		WHERE workspace_id = $1 AND created_at >= $2 AND created_at < $3 GROUP BY type`, wsID, start, end)
	if err != nil {
		return c, unavailable(err)
	}
	for rows.Next() {
		var typ string
		var n, sessions int64
		if err := rows.Scan(&typ, &n, &sessions); err != nil {
			rows.Close()
			return c, unavailable(err)
		}
		c.Events += n
		e := heldsway.StorefrontEventCounts(typ)
		c.Pageviews += e.Pageviews * n
		c.ProductViews += e.ProductViews * n
		c.AddToCarts += e.AddToCarts * n
		c.RemoveFromCarts += e.RemoveFromCarts * n
		c.Checkouts += e.Checkouts * n
		c.ThankYouViews += e.ThankYouViews * n
		if typ == heldsway.EventPageview {
			c.Sessions = sessions
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return c, unavailable(err)
	}
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN currency = $4 THEN total - refunded_amount ELSE 0 END), 0) AS BIGINT)
		FROM orders WHERE workspace_id = $1 AND converted_at >= $2 AND converted_at < $3 AND status IN ('pending', 'approved')`,
		wsID, start, end, cur).Scan(&c.Conversions, &c.Revenue); err != nil {
		return c, unavailable(err)
	}
	rows, err = s.r.QueryContext(ctx, `SELECT c.status, CAST(COALESCE(SUM(c.amount - c.reversed_amount), 0) AS BIGINT)
		FROM orders o JOIN commissions c ON c.workspace_id = o.workspace_id AND c.order_id = o.id
		WHERE o.workspace_id = $1 AND o.converted_at >= $2 AND o.converted_at < $3 AND o.status IN ('pending', 'approved')
		AND o.currency = $4 GROUP BY c.status`, wsID, start, end, cur)
	if err != nil {
		return c, unavailable(err)
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		var sum int64
		if err := rows.Scan(&st, &sum); err != nil {
			return c, unavailable(err)
		}
		switch st {
		case heldsway.CommissionPending:
			c.CommissionPending = sum
		case heldsway.CommissionApproved:
			c.CommissionApproved = sum
		case heldsway.CommissionPaid:
			c.CommissionPaid = sum
		}
	}
	return c, unavailable(rows.Err())
}
