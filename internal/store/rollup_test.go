package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// The rollups: kept by every write path, equal to a rebuild from raw events.

// world is a workspace with programs in two currencies, affiliates (one the
// parent of another, in a multi-tier program), links with campaigns, and a
// random history of clicks, storefront events, conversions, reviews,
// refunds and payouts written through the store's own write paths.
type world struct {
	*bundle
	rng    *rand.Rand
	ws     *heldsway.Workspace
	loc    *time.Location
	start  time.Time // events fall in [start, start+span)
	span   time.Duration
	affs   []wAff
	links  []wLink
	clicks []heldsway.Click
	orders []int64
	seq    int
}

type wAff struct {
	id, prog int64
	code     string
	cur      string
}

type wLink struct {
	id, aff, prog int64
	campaign      string
}

// newWorld builds the workspace in time zone tz, its history spread over
// span from start.
func newWorld(t *testing.T, st *store.Store, seed uint64, tz string, start time.Time, span time.Duration) *world {
	t.Helper()
	b := setup(t, st)
	w := &world{bundle: b, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), start: start, span: span}
	w.ws = b.workspace(fmt.Sprintf("World %s %d", t.Name(), seed))
	var err error
	if w.loc, err = time.LoadLocation(tz); err != nil {
		t.Fatal(err)
	}
	w.exec(`UPDATE workspace_settings SET timezone = $1 WHERE workspace_id = $2`, tz, w.ws.ID)
	for i, cur := range []string{"USD", "USD", "EUR", "USD"} {
		id := storetest.InsertAffiliate(t, st.DB(), w.ws.ID, cur, heldsway.AffiliateActive)
		a := wAff{id: id, cur: cur}
		if err := st.DB().QueryRow(`SELECT program_id, referral_code FROM affiliates WHERE id = $1`, id).Scan(&a.prog, &a.code); err != nil {
			t.Fatal(err)
		}
		if i == 1 { // the first affiliate is its parent, in a multi-tier program
			w.exec(`UPDATE affiliates SET parent_affiliate_id = $1 WHERE id = $2`, w.affs[0].id, id)
			w.exec(`UPDATE programs SET tier_rate = 500 WHERE id = $1`, a.prog)
		}
		w.affs = append(w.affs, a)
	}
	w.exec(`UPDATE programs SET commission_type = 'percentage', commission_value = 1000 WHERE workspace_id = $1`, w.ws.ID)
	for i, a := range w.affs {
		for j, campaign := range []string{"spring", "", "summer"}[:1+i%3] {
			var id int64
			var c any
			if campaign != "" {
				c = campaign
			}
			if err := st.DB().QueryRow(`INSERT INTO links (workspace_id, affiliate_id, slug, destination_url, campaign, is_active,
				created_at, updated_at) VALUES ($1, $2, $3, 'https://shop.example/', $4, $5, $6, $6) RETURNING id`,
				w.ws.ID, a.id, fmt.Sprintf("w%d-%d-%d", w.ws.ID, i, j), c, true, t0.UnixMicro()).Scan(&id); err != nil {
				t.Fatal(err)
			}
			w.links = append(w.links, wLink{id: id, aff: a.id, prog: a.prog, campaign: campaign})
		}
	}
	return w
}

func (w *world) exec(q string, args ...any) {
	w.t.Helper()
	if _, err := w.st.DB().Exec(q, args...); err != nil {
		w.t.Fatalf("%s: %v", q, err)
	}
}

// at returns a random instant of the world's span.
func (w *world) at() time.Time {
	return w.start.Add(time.Duration(w.rng.Int64N(int64(w.span)))).Truncate(time.Microsecond)
}

// clickBatch records a batch of clicks through random links (some SDK
// landings without a link).
func (w *world) clickBatch() {
	n := 1 + w.rng.IntN(8)
	batch := make([]heldsway.Click, 0, n)
	for range n {
		w.seq++
		l := w.links[w.rng.IntN(len(w.links))]
		c := heldsway.Click{WorkspaceID: w.ws.ID, LinkID: l.id, AffiliateID: l.aff, ProgramID: l.prog,
			ClickID: fmt.Sprintf("clk%08d", w.seq), VisitorID: fmt.Sprintf("v%d", w.rng.IntN(40)), CreatedAt: w.at()}
		if w.rng.IntN(6) == 0 {
			c.LinkID = 0
		}
		batch = append(batch, c)
	}
	if err := w.st.InsertClicks(w.ctx, batch); err != nil {
		w.t.Fatal(err)
	}
	w.clicks = append(w.clicks, batch...)
}

var sfTypes = []string{heldsway.EventPageview, heldsway.EventPageview, heldsway.EventPageview, heldsway.EventProductView,
	heldsway.EventAddToCart, heldsway.EventRemoveFromCart, heldsway.EventCheckout, heldsway.EventThankYou, heldsway.EventIdentify}

// events records one storefront request's events: a pageview or product
// event of a random session, attributed to a random click's affiliate or to
// nobody; cart events have one to three product lines.
func (w *world) events() {
	typ := sfTypes[w.rng.IntN(len(sfTypes))]
	base := heldsway.StorefrontEvent{WorkspaceID: w.ws.ID, Type: typ, VisitorID: fmt.Sprintf("v%d", w.rng.IntN(40)),
		SessionID: fmt.Sprintf("s%d", w.rng.IntN(30)), Host: "shop.example",
		Path: []string{"/", "/a", "/b", "/c/d"}[w.rng.IntN(4)], CreatedAt: w.at()}
	if len(w.clicks) > 0 && w.rng.IntN(2) == 0 {
		c := w.clicks[w.rng.IntN(len(w.clicks))]
		base.AffiliateID, base.ProgramID = &c.AffiliateID, &c.ProgramID
		if c.LinkID != 0 {
			base.LinkID = &c.LinkID
		}
	}
	if w.rng.IntN(10) == 0 {
		base.Host, base.Path = "", ""
	}
	n := 1
	if typ == heldsway.EventAddToCart || typ == heldsway.EventRemoveFromCart {
		n = 1 + w.rng.IntN(3)
	}
	evs := make([]heldsway.StorefrontEvent, n)
	for i := range evs {
		evs[i] = base
		if typ == heldsway.EventProductView || n > 1 || typ == heldsway.EventAddToCart || typ == heldsway.EventRemoveFromCart {
			p := w.rng.IntN(5)
			evs[i].ProductID, evs[i].ProductName = fmt.Sprintf("p%d", p), []string{"Mug", "Cap", "Tee", "Bag", "Pin"}[p]
			if w.rng.IntN(4) == 0 {
				evs[i].ProductName += " (new)"
			}
		}
	}
	if err := w.st.InsertStorefrontEvents(w.ctx, evs); err != nil {
		w.t.Fatal(err)
	}
}

// conversion records an order by a random click, referral code, or nobody.
func (w *world) conversion() {
	w.seq++
	in := heldsway.ConversionInput{OrderID: fmt.Sprintf("o-%d", w.seq), Currency: "USD",
		Total: 1000 + w.rng.Int64N(90000), OccurredAt: w.at()}
	in.Subtotal = in.Total - w.rng.Int64N(in.Total/5)
	switch w.rng.IntN(4) {
	case 0, 1:
		if len(w.clicks) > 0 {
			c := w.clicks[w.rng.IntN(len(w.clicks))]
			in.ClickID = c.ClickID
			in.OccurredAt = c.CreatedAt.Add(time.Duration(w.rng.Int64N(int64(48 * time.Hour))))
			for _, a := range w.affs {
				if a.id == c.AffiliateID {
					in.Currency = a.cur
				}
			}
		}
	case 2:
		a := w.affs[w.rng.IntN(len(w.affs))]
		in.ReferralCode, in.Currency = a.code, a.cur
	default:
		in.Currency = []string{"USD", "EUR"}[w.rng.IntN(2)]
	}
	// The store's clock is past every event, so no occurred_at is in the future.
	o, err := w.st.CreateConversion(w.ctx, w.ws.ID, in)
	if err != nil {
		w.t.Fatalf("conversion %+v: %v", in, err)
	}
	w.orders = append(w.orders, o.ID)
}

// review approves, rejects or refunds a random order; errors for orders no
// longer in a state that allows it are expected and ignored.
func (w *world) review() {
	if len(w.orders) == 0 {
		return
	}
	id := w.orders[w.rng.IntN(len(w.orders))]
	var err error
	switch w.rng.IntN(5) {
	case 0, 1:
		_, err = w.st.ApproveOrder(w.ctx, w.ws.ID, id)
	case 2:
		_, err = w.st.RejectOrder(w.ctx, w.ws.ID, id, "")
	case 3:
		amount := 1 + w.rng.Int64N(3000)
		_, err = w.st.RefundOrder(w.ctx, w.ws.ID, id, &amount, "")
	default:
		_, err = w.st.RefundOrder(w.ctx, w.ws.ID, id, nil, "")
	}
	if err != nil {
		if c := heldsway.ErrorCode(err); c != heldsway.ETRANSITION && c != heldsway.EVALIDATION {
			w.t.Fatalf("review order %d: %v", id, err)
		}
	}
}

// payout pays a random affiliate's available balance through a payout
// request, and completes or fails the payout.
func (w *world) payout() {
	a := w.affs[w.rng.IntN(len(w.affs))]
	bals, err := w.st.Balances(w.ctx, w.ws.ID, a.id)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, b := range bals {
		if b.Available <= 0 {
			continue
		}
		var rid int64
		if err := w.st.DB().QueryRow(`INSERT INTO payout_requests (workspace_id, affiliate_id, currency, amount, status, created_at, updated_at)
			VALUES ($1, $2, $3, $4, 'pending', $5, $5) RETURNING id`, w.ws.ID, a.id, b.Currency, b.Available, t0.UnixMicro()).Scan(&rid); err != nil {
			w.t.Fatal(err)
		}
		p, err := w.st.CreatePayoutForRequest(w.ctx, w.ws.ID, rid)
		if err != nil {
			w.t.Fatal(err)
		}
		if w.rng.IntN(4) == 0 {
			_, err = w.st.FailPayout(w.ctx, w.ws.ID, p.ID, "bank said no")
		} else {
			_, err = w.st.CompletePayout(w.ctx, w.ws.ID, p.ID, "")
		}
		if err != nil {
			w.t.Fatal(err)
		}
	}
}

// run writes n random steps.
func (w *world) run(n int) {
	w.t.Helper()
	for range n {
		switch r := w.rng.IntN(20); {
		case r < 6:
			w.clickBatch()
		case r < 12:
			w.events()
		case r < 16:
			w.conversion()
		case r < 19:
			w.review()
		default:
			w.payout()
		}
	}
}

// rollupRows dumps a workspace's rollup tables, one string per row, leaving
// out rows whose counters are all zero (a change that cancels out leaves
// one; a rebuild writes none). Clicks are compared summed over shards: a
// click batch counts in the shard it holds while in flight, which a rebuild
// cannot know (it counts clicks in shard 0), and the reads sum shards anyway;
// every other counter is compared shard by shard.
func rollupRows(t *testing.T, st *store.Store, ws int64) []string {
	t.Helper()
	// On SQLite the tailer counts clicks after their batch: read what every
	// committed click makes the rollups.
	if err := st.SyncClickRollups(context.Background()); err != nil {
		t.Fatal(err)
	}
	var out []string
	var rest []string
	for _, c := range store.CountColumns() {
		if c != "clicks" {
			rest = append(rest, c)
		}
	}
	for _, q := range []struct{ table, keys, vals, group string }{
		{"rollup_daily", "span, day, program_id, affiliate_id, link_id, currency, shard", strings.Join(rest, ", "), ""},
		{"rollup_daily", "span, day, program_id, affiliate_id, link_id, currency", "SUM(clicks)", "clicks"},
		{"rollup_totals", "day, shard, currency", strings.Join(rest, ", "), ""},
		{"rollup_totals", "day, currency", "SUM(clicks)", "clicks"},
		{"rollup_sessions", "day, session_id, program_id, affiliate_id, link_id", "1", ""},
		{"rollup_pages", "day, host, path, program_id, affiliate_id, link_id", "pageviews", ""},
		{"rollup_products", "day, product_id, program_id, affiliate_id, link_id", "product_name, product_views, add_to_carts, remove_from_carts", ""},
	} {
		group := ""
		if q.group != "" {
			group = ` GROUP BY ` + q.keys
		}
		rows, err := st.DB().Query(`SELECT `+q.keys+`, `+q.vals+` FROM `+q.table+` WHERE workspace_id = $1`+group+` ORDER BY `+q.keys, ws)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		nk := len(strings.Split(q.keys, ","))
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			zero := true
			parts := []string{q.table, q.group}
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				s := fmt.Sprint(v)
				if i >= nk && s != "0" && s != "" {
					zero = false
				}
				parts = append(parts, s)
			}
			if !zero || q.table == "rollup_sessions" {
				out = append(out, strings.Join(parts, " "))
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return out
}

func TestRollupRebuildEqualsIncremental(t *testing.T) {
	t.Parallel()
	for _, tz := range []string{"America/New_York", "UTC", "Asia/Kathmandu"} {
		t.Run(strings.ReplaceAll(tz, "/", "_"), func(t *testing.T) {
			t.Parallel()
			storetest.Each(t, func(t *testing.T, st *store.Store) {
				// Five days around 1 November 2026, when New York leaves
				// daylight saving time.
				w := newWorld(t, st, 42, tz, t0.Add(-60*time.Hour), 120*time.Hour)
				w.clock.now = t0.Add(200 * time.Hour)
				w.run(400)
				inc := rollupRows(t, st, w.ws.ID)
				if len(inc) < 100 {
					t.Fatalf("only %d rollup rows: the world wrote too little", len(inc))
				}
				res, err := st.RebuildRollups(w.ctx, w.ws.ID)
				if err != nil {
					t.Fatal(err)
				}
				if res.Timezone != tz || res.Clicks != int64(len(w.clicks)) || res.Orders != int64(len(w.orders)) || res.Events == 0 {
					t.Fatalf("rebuild %+v, want %d clicks and %d orders in %s", res, len(w.clicks), len(w.orders), tz)
				}
				reb := rollupRows(t, st, w.ws.ID)
				if d := diffLines(inc, reb); d != "" {
					t.Fatalf("incremental and rebuilt rollups differ (- incremental, + rebuilt):\n%s", d)
				}
				// More history on top of the rebuild is still equal to a
				// second rebuild.
				w.run(100)
				inc = rollupRows(t, st, w.ws.ID)
				if _, err := st.RebuildRollups(w.ctx, w.ws.ID); err != nil {
					t.Fatal(err)
				}
				if d := diffLines(inc, rollupRows(t, st, w.ws.ID)); d != "" {
					t.Fatalf("after more events (- incremental, + rebuilt):\n%s", d)
				}
			})
		})
	}
}

// diffLines lists the lines only in a (-) or only in b (+).
func diffLines(a, b []string) string {
	count := map[string]int{}
	for _, l := range a {
		count[l]++
	}
	for _, l := range b {
		count[l]--
	}
	var out []string
	for l, n := range count {
		for ; n > 0; n-- {
			out = append(out, "- "+l)
		}
		for ; n < 0; n++ {
			out = append(out, "+ "+l)
		}
	}
	if len(out) > 40 {
		out = append(out[:40], fmt.Sprintf("… %d more", len(out)-40))
	}
	return strings.Join(out, "\n")
}

// On SQLite, the days from a workspace's fold watermark on keep only their
// day rows until folded (rollupfold.go). The analytics read the same figures
// whatever the watermark (checked against a rebuild, which writes every
// span), and once every ended day is folded the rollup rows equal a rebuild's.
func TestRollupFold(t *testing.T) {
	t.Parallel()
	st := storetest.Open(t, "sqlite")
	w := newWorld(t, st, 7, "America/New_York", t0.Add(-60*time.Hour), 120*time.Hour)
	w.clock.now = w.start.Add(w.span + 48*time.Hour) // after every event of the span
	first := heldsway.DayOf(w.start, w.loc)
	today := heldsway.DayOf(w.clock.now, w.loc)
	folded := func() heldsway.Day {
		var d *int64
		if err := st.DB().QueryRow(`SELECT folded_to FROM rollup_state WHERE workspace_id = $1`, w.ws.ID).Scan(&d); err != nil {
			t.Fatal(err)
		}
		if d == nil {
			return 0
		}
		return heldsway.Day(*d)
	}
	// As if folding had started on the span's first day, before any event.
	w.exec(`INSERT INTO rollup_state (workspace_id, timezone, folded_to) VALUES ($1, $2, $3)`,
		w.ws.ID, w.loc.String(), int32(first.AddDays(1)))
	w.run(460) // every day of the span, all but the first past the watermark
	var blocked int
	if err := st.DB().QueryRow(`SELECT COUNT(*) FROM rollup_daily WHERE workspace_id = $1 AND span > 1 AND day > $2`,
		w.ws.ID, int32(first)).Scan(&blocked); err != nil {
		t.Fatal(err)
	}
	if blocked != 0 {
		t.Fatalf("%d block rows start after the watermark's first day %v, want none", blocked, first)
	}

	// The analytics of every range of the span's days, filtered and not.
	figures := func() string {
		t.Helper()
		var b strings.Builder
		for from := first.AddDays(-1); from <= first.AddDays(6); from = from.AddDays(1) {
			for to := from; to <= first.AddDays(6); to = to.AddDays(1) {
				tot, err := st.AnalyticsTotals(w.ctx, w.ws.ID, from, to, "USD", heldsway.AnalyticsFilter{AffiliateID: w.affs[0].id})
				if err != nil {
					t.Fatal(err)
				}
				cur, err := st.AnalyticsByCurrency(w.ctx, w.ws.ID, from, to, heldsway.AnalyticsFilter{ProgramID: w.affs[2].prog})
				if err != nil {
					t.Fatal(err)
				}
				affs, links, campaigns, _, err := st.AnalyticsTables(w.ctx, w.ws.ID, from, to, "USD", heldsway.AnalyticsFilter{}, 10)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&b, "%v..%v totals %+v by currency %+v", from, to, tot, cur)
				for _, rows := range [][]heldsway.DimRow{affs, links, campaigns} {
					for _, r := range rows {
						campaign := ""
						if r.Campaign != nil {
							campaign = *r.Campaign
						}
						fmt.Fprintf(&b, " [%d %q %d %+v]", r.ID, campaign, r.Links, r.Counts)
					}
				}
				b.WriteString("\n")
			}
		}
		return b.String()
	}
	withWatermark := figures()

	if err := st.FoldRollups(w.ctx); err != nil { // every day of the span has ended
		t.Fatal(err)
	}
	if got := folded(); got != today {
		t.Fatalf("watermark after folding %v, want today %v", got, today)
	}
	if got := figures(); got != withWatermark {
		t.Fatalf("the analytics changed when the days were folded:\n%s", firstDiff(withWatermark, got))
	}
	inc := rollupRows(t, st, w.ws.ID)
	if _, err := st.RebuildRollups(w.ctx, w.ws.ID); err != nil {
		t.Fatal(err)
	}
	if folded() != 0 {
		t.Fatal("a rebuild kept the watermark")
	}
	if d := diffLines(inc, rollupRows(t, st, w.ws.ID)); d != "" {
		t.Fatalf("folded and rebuilt rollups differ (- folded, + rebuilt):\n%s", d)
	}
	if got := figures(); got != withWatermark {
		t.Fatalf("the analytics of a rebuild differ from those read with the watermark:\n%s", firstDiff(withWatermark, got))
	}
	// The first fold after the rebuild starts tomorrow: today's rows have
	// their blocks already.
	if err := st.FoldRollups(w.ctx); err != nil {
		t.Fatal(err)
	}
	if got := folded(); got != today.AddDays(1) {
		t.Fatalf("watermark after the rebuild's first fold %v, want the day after %v", got, today)
	}
}

// firstDiff shows the first line where a and b differ.
func firstDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return "- " + la[i] + "\n+ " + lb[i]
		}
	}
	return fmt.Sprintf("%d lines against %d", len(la), len(lb))
}
