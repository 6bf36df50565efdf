package store_test

import (
	"cmp"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// Every analytics figure against a direct computation from the raw rows
// (clicks, storefront_events, orders and commissions), after a random
// history written through the write paths, for random ranges and filters.

type rawDims struct{ prog, aff, link int64 }

type rawClick struct {
	rawDims
	at time.Time
}

type rawEvent struct {
	rawDims
	typ, session, host, path, product, name string
	at                                      time.Time
}

type rawOrder struct {
	rawDims
	status, cur     string
	total, refunded int64
	at              time.Time
	lines           []heldsway.CommissionLine
}

type raw struct {
	loc       *time.Location
	clicks    []rawClick
	events    []rawEvent
	orders    []rawOrder
	campaigns map[int64]*string
}

func loadRaw(t *testing.T, st *store.Store, ws int64, loc *time.Location) *raw {
	t.Helper()
	r := &raw{loc: loc, campaigns: map[int64]*string{}}
	q := func(query string, scan func(*sql.Rows) error) {
		t.Helper()
		rows, err := st.DB().Query(query, ws)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				t.Fatal(err)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	q(`SELECT program_id, affiliate_id, link_id, created_at FROM clicks WHERE workspace_id = $1`, func(rows *sql.Rows) error {
		var c rawClick
		var at int64
		err := rows.Scan(&c.prog, &c.aff, &c.link, &at)
		c.at = time.UnixMicro(at)
		r.clicks = append(r.clicks, c)
		return err
	})
	q(`SELECT type, session_id, COALESCE(program_id, 0), COALESCE(affiliate_id, 0), COALESCE(link_id, 0), COALESCE(host, ''),
		COALESCE(path, ''), COALESCE(product_id, ''), COALESCE(product_name, ''), created_at FROM storefront_events WHERE workspace_id = $1`,
		func(rows *sql.Rows) error {
			var e rawEvent
			var at int64
			err := rows.Scan(&e.typ, &e.session, &e.prog, &e.aff, &e.link, &e.host, &e.path, &e.product, &e.name, &at)
			if e.aff == 0 {
				e.prog, e.link = 0, 0
			}
			e.at = time.UnixMicro(at)
			r.events = append(r.events, e)
			return err
		})
	byID := map[int64]int{}
	q(`SELECT id, status, currency, total, refunded_amount, COALESCE(program_id, 0), COALESCE(affiliate_id, 0), COALESCE(link_id, 0),
		converted_at FROM orders WHERE workspace_id = $1 ORDER BY id`, func(rows *sql.Rows) error {
		var o rawOrder
		var id, at int64
		err := rows.Scan(&id, &o.status, &o.cur, &o.total, &o.refunded, &o.prog, &o.aff, &o.link, &at)
		o.at = time.UnixMicro(at)
		byID[id] = len(r.orders)
		r.orders = append(r.orders, o)
		return err
	})
	q(`SELECT order_id, status, amount - reversed_amount FROM commissions WHERE workspace_id = $1`, func(rows *sql.Rows) error {
		var id int64
		var l heldsway.CommissionLine
		err := rows.Scan(&id, &l.Status, &l.Net)
		o := &r.orders[byID[id]]
		o.lines = append(o.lines, l)
		return err
	})
	q(`SELECT id, campaign FROM links WHERE workspace_id = $1`, func(rows *sql.Rows) error {
		var id int64
		var c sql.NullString
		err := rows.Scan(&id, &c)
		if c.Valid {
			r.campaigns[id] = &c.String
		}
		return err
	})
	return r
}

func (d rawDims) match(f heldsway.AnalyticsFilter) bool {
	if !f.Any() {
		return true
	}
	return d.aff != 0 && (f.ProgramID == 0 || d.prog == f.ProgramID) && (f.AffiliateID == 0 || d.aff == f.AffiliateID) &&
		(f.LinkID == 0 || d.link == f.LinkID)
}

// counts computes, per key (keyOf returns the key of an event's dimensions
// and whether it is counted at all), the figures of [from, to] directly:
// clicks and events by type, sessions as distinct (day, session, link
// dimensions) among pageviews (distinct (day, session) for the workspace
// total), and orders by the definitions of heldsway/metrics.go written out.
func (r *raw) counts(from, to heldsway.Day, cur string, f heldsway.AnalyticsFilter, perDims bool, keyOf func(rawDims) (string, bool)) map[string]*heldsway.Counts {
	out := map[string]*heldsway.Counts{}
	get := func(d rawDims) *heldsway.Counts {
		k, ok := keyOf(d)
		if !ok {
			return nil
		}
		if out[k] == nil {
			out[k] = &heldsway.Counts{}
		}
		return out[k]
	}
	in := func(t time.Time) bool { d := heldsway.DayOf(t, r.loc); return d >= from && d <= to }
	for _, c := range r.clicks {
		if in(c.at) && c.match(f) {
			if p := get(c.rawDims); p != nil {
				p.Clicks++
			}
		}
	}
	seen := map[string]bool{}
	for _, e := range r.events {
		if !in(e.at) || !e.match(f) {
			continue
		}
		p := get(e.rawDims)
		if p == nil {
			continue
		}
		p.Events++
		switch e.typ {
		case heldsway.EventPageview:
			p.Pageviews++
			sk := fmt.Sprint(heldsway.DayOf(e.at, r.loc), e.session)
			if f.Any() || perDims {
				sk += fmt.Sprint(e.rawDims)
			}
			if !seen[sk] {
				seen[sk] = true
				p.Sessions++
			}
		case heldsway.EventProductView:
			p.ProductViews++
		case heldsway.EventAddToCart:
			p.AddToCarts++
		case heldsway.EventRemoveFromCart:
			p.RemoveFromCarts++
		case heldsway.EventCheckout:
			p.Checkouts++
		case heldsway.EventThankYou:
			p.ThankYouViews++
		}
	}
	for _, o := range r.orders {
		if !in(o.at) || !o.match(f) || (o.status != heldsway.OrderPending && o.status != heldsway.OrderApproved) {
			continue
		}
		p := get(o.rawDims)
		if p == nil {
			continue
		}
		p.Conversions++
		if o.cur != cur {
			continue
		}
		p.Revenue += o.total - o.refunded
		for _, l := range o.lines {
			switch l.Status {
			case heldsway.CommissionPending:
				p.CommissionPending += l.Net
			case heldsway.CommissionApproved:
				p.CommissionApproved += l.Net
			case heldsway.CommissionPaid:
				p.CommissionPaid += l.Net
			}
		}
	}
	return out
}

func TestAnalyticsAgainstRawRows(t *testing.T) {
	t.Parallel()
	// Two short histories in zones with daylight saving and odd offsets,
	// and a long one whose ranges read the 16- and 64-day blocks.
	for i, c := range []struct {
		tz        string
		days, max int
	}{{"America/New_York", 6, 5}, {"Asia/Kathmandu", 6, 5}, {"UTC", 200, 180}} {
		tz := c.tz
		t.Run(strings.ReplaceAll(tz, "/", "_"), func(t *testing.T) {
			t.Parallel()
			storetest.Each(t, func(t *testing.T, st *store.Store) {
				w := newWorld(t, st, uint64(7+i), tz, t0.Add(-time.Duration(c.days/2)*24*time.Hour), time.Duration(c.days)*24*time.Hour)
				w.clock.now = t0.Add(time.Duration(c.days+10) * 24 * time.Hour)
				w.run(500)
				r := loadRaw(t, st, w.ws.ID, w.loc)
				ctx := w.ctx
				first := heldsway.DayOf(w.start, w.loc).AddDays(-1)
				filters := []heldsway.AnalyticsFilter{{}, {AffiliateID: w.affs[0].id}, {AffiliateID: w.affs[2].id},
					{ProgramID: w.affs[2].prog}, {ProgramID: w.affs[0].prog}, {LinkID: w.links[0].id},
					{AffiliateID: w.affs[3].id, LinkID: w.links[len(w.links)-1].id}}
				total := func(_ rawDims) (string, bool) { return "", true }
				for n := range 40 {
					from := first.AddDays(w.rng.IntN(c.days + 2))
					to := from.AddDays(w.rng.IntN(c.max))
					if n == 0 {
						from, to = first, first.AddDays(c.days+2)
					}
					f := filters[n%len(filters)]
					cur := []string{"USD", "EUR"}[n%2]
					name := fmt.Sprintf("%s..%s %+v %s", from, to, f, cur)

					want := r.counts(from, to, cur, f, false, total)[""]
					if want == nil {
						want = &heldsway.Counts{}
					}
					got, err := st.AnalyticsTotals(ctx, w.ws.ID, from, to, cur, f)
					if err != nil {
						t.Fatal(err)
					}
					if got != *want {
						t.Errorf("%s: totals\n got %+v\nwant %+v", name, got, *want)
					}
					for _, m := range heldsway.MetricNames {
						if g, x := heldsway.MetricValue(m, got), heldsway.MetricValue(m, *want); g != x {
							t.Errorf("%s: %s %d, want %d", name, m, g, x)
						}
					}

					days, err := st.AnalyticsDaily(ctx, w.ws.ID, from, to, cur, f)
					if err != nil {
						t.Fatal(err)
					}
					byDay := map[heldsway.Day]heldsway.Counts{}
					for _, d := range days {
						byDay[d.Day] = d.Counts
					}
					for d := from; d <= to; d = d.AddDays(1) {
						x := r.counts(d, d, cur, f, false, total)[""]
						if x == nil {
							x = &heldsway.Counts{}
						}
						if byDay[d] != *x {
							t.Errorf("%s: day %s\n got %+v\nwant %+v", name, d, byDay[d], *x)
						}
					}

					for _, kind := range []string{heldsway.TopAffiliates, heldsway.TopLinks, heldsway.TopCampaigns} {
						by := []string{heldsway.TopByRevenue, heldsway.TopByCommission, heldsway.TopByClicks}[n%3]
						rows, err := st.AnalyticsTop(ctx, w.ws.ID, from, to, cur, f, kind, by, 100)
						if err != nil {
							t.Fatal(err)
						}
						gotRows := make([]string, len(rows))
						for j, x := range rows {
							k := fmt.Sprint(x.ID)
							if kind == heldsway.TopCampaigns {
								k = "<none>"
								if x.Campaign != nil {
									k = *x.Campaign
								}
							}
							gotRows[j] = fmt.Sprintf("%s %+v", k, x.Counts)
						}
						wantRows := r.top(from, to, cur, f, kind, by)
						if !slices.Equal(gotRows, wantRows) {
							t.Errorf("%s: top %s by %s\n got %q\nwant %q", name, kind, by, gotRows, wantRows)
						}
					}

					r.checkPagesProducts(t, st, w, from, to, f, name)

					start, end := from.Start(w.loc), to.AddDays(1).Start(w.loc)
					clicks, err := st.RecentClicks(ctx, w.ws.ID, start, end, f, 10000, 0)
					if err != nil {
						t.Fatal(err)
					}
					events, err := st.RecentEvents(ctx, w.ws.ID, start, end, f, 10000, 0)
					if err != nil {
						t.Fatal(err)
					}
					if int64(len(clicks)) != want.Clicks || int64(len(events)) != want.Events {
						t.Errorf("%s: recent lists %d clicks, %d events; figures %d, %d", name, len(clicks), len(events), want.Clicks, want.Events)
					}
					orders, n2, err := st.RecentOrders(ctx, w.ws.ID, start, end, f, 10000, 0)
					if err != nil {
						t.Fatal(err)
					}
					counted := 0
					for _, o := range orders {
						if o.Status == heldsway.OrderPending || o.Status == heldsway.OrderApproved {
							counted++
						}
					}
					if int64(len(orders)) != n2 || int64(counted) != want.Conversions {
						t.Errorf("%s: recent orders %d of %d, %d counted; figure %d", name, len(orders), n2, counted, want.Conversions)
					}
				}
			})
		})
	}
}

// top ranks affiliates, links or campaigns as AnalyticsTop documents.
func (r *raw) top(from, to heldsway.Day, cur string, f heldsway.AnalyticsFilter, kind, by string) []string {
	keyOf := func(d rawDims) (string, bool) {
		if d.aff == 0 {
			return "", false
		}
		switch kind {
		case heldsway.TopAffiliates:
			return fmt.Sprint(d.aff), true
		case heldsway.TopLinks:
			return fmt.Sprint(d.link), d.link != 0
		}
		if c := r.campaigns[d.link]; c != nil && d.link != 0 {
			return *c, true
		}
		return "<none>", true
	}
	m := r.counts(from, to, cur, f, true, keyOf)
	type row struct {
		key string
		c   heldsway.Counts
	}
	var rows []row
	for k, c := range m {
		t := heldsway.Counts{Clicks: c.Clicks, Pageviews: c.Pageviews, Sessions: c.Sessions, Conversions: c.Conversions,
			Revenue: c.Revenue, CommissionPending: c.CommissionPending, CommissionApproved: c.CommissionApproved,
			CommissionPaid: c.CommissionPaid}
		if !t.IsZero() {
			rows = append(rows, row{k, t})
		}
	}
	slices.SortFunc(rows, func(a, b row) int {
		var o int
		switch by {
		case heldsway.TopByCommission:
			o = cmp.Or(cmp.Compare(b.c.Commission(), a.c.Commission()), cmp.Compare(b.c.Revenue, a.c.Revenue))
		case heldsway.TopByClicks:
			o = cmp.Or(cmp.Compare(b.c.Clicks, a.c.Clicks), cmp.Compare(b.c.Conversions, a.c.Conversions))
		default:
			o = cmp.Or(cmp.Compare(b.c.Revenue, a.c.Revenue), cmp.Compare(b.c.Clicks, a.c.Clicks))
		}
		if o != 0 {
			return o
		}
		if kind == heldsway.TopCampaigns {
			an, bn := a.key == "<none>", b.key == "<none>"
			if an != bn {
				if an {
					return 1
				}
				return -1
			}
			return strings.Compare(a.key, b.key)
		}
		var ai, bi int64
		fmt.Sscan(a.key, &ai)
		fmt.Sscan(b.key, &bi)
		return cmp.Compare(ai, bi)
	})
	out := make([]string, len(rows))
	for i, x := range rows {
		// The tables hold these counts only.
		c := heldsway.Counts{Clicks: x.c.Clicks, Pageviews: x.c.Pageviews, Sessions: x.c.Sessions, Conversions: x.c.Conversions,
			Revenue: x.c.Revenue, CommissionPending: x.c.CommissionPending, CommissionApproved: x.c.CommissionApproved,
			CommissionPaid: x.c.CommissionPaid}
		out[i] = fmt.Sprintf("%s %+v", x.key, c)
	}
	return out
}

func (r *raw) checkPagesProducts(t *testing.T, st *store.Store, w *world, from, to heldsway.Day, f heldsway.AnalyticsFilter, name string) {
	t.Helper()
	pages := map[string]int64{}
	type prod struct {
		name                 string
		views, adds, removes int64
	}
	prods := map[string]*prod{}
	for _, e := range r.events {
		d := heldsway.DayOf(e.at, r.loc)
		if d < from || d > to || !e.match(f) {
			continue
		}
		if e.typ == heldsway.EventPageview && e.host != "" {
			pages[e.host+e.path]++
		}
		if e.product != "" && (e.typ == heldsway.EventProductView || e.typ == heldsway.EventAddToCart || e.typ == heldsway.EventRemoveFromCart) {
			p := prods[e.product]
			if p == nil {
				p = &prod{}
				prods[e.product] = p
			}
			p.name = max(p.name, e.name)
			switch e.typ {
			case heldsway.EventProductView:
				p.views++
			case heldsway.EventAddToCart:
				p.adds++
			default:
				p.removes++
			}
		}
	}
	gotPages, err := st.AnalyticsPages(w.ctx, w.ws.ID, from, to, f, 100)
	if err != nil {
		t.Fatal(err)
	}
	var gp, wp []string
	for _, p := range gotPages {
		gp = append(gp, fmt.Sprint(p.Host+p.Path, " ", p.Pageviews))
	}
	for k, v := range pages {
		wp = append(wp, fmt.Sprint(k, " ", v))
	}
	slices.Sort(gp)
	slices.Sort(wp)
	if !slices.Equal(gp, wp) {
		t.Errorf("%s: pages\n got %q\nwant %q", name, gp, wp)
	}
	for i := 1; i < len(gotPages); i++ {
		if gotPages[i].Pageviews > gotPages[i-1].Pageviews {
			t.Errorf("%s: pages not by pageviews: %+v", name, gotPages)
		}
	}
	gotProds, err := st.AnalyticsProducts(w.ctx, w.ws.ID, from, to, f, 100)
	if err != nil {
		t.Fatal(err)
	}
	var gq, wq []string
	for _, p := range gotProds {
		gq = append(gq, fmt.Sprint(p.ProductID, p.Name, p.ProductViews, p.AddToCarts, p.RemoveCarts))
	}
	for k, p := range prods {
		wq = append(wq, fmt.Sprint(k, p.name, p.views, p.adds, p.removes))
	}
	slices.Sort(gq)
	slices.Sort(wq)
	if !slices.Equal(gq, wq) {
		t.Errorf("%s: products\n got %q\nwant %q", name, gq, wq)
	}
}
