// Command analytics is the issue-6 benchmark tool for the analytics and
// report endpoints (bench/analytics.sh runs it):
//
//	analytics seed --db DSN [--clicks N] [--conversions N] [--affiliates N] [--events N] [--days N]
//	analytics measure --db DSN --workspace ID [--range-days N] [--requests N]
//
// seed creates a workspace with N affiliates (one referral link each, in 20
// campaigns), clicks, storefront events and conversions spread over the last
// --days days (popular affiliates get more: a Zipf-like draw), a few thousand
// payouts, by bulk inserts straight into the tables (prepared single-row
// INSERTs in large transactions on SQLite, arrays through unnest on
// PostgreSQL), then rebuilds the workspace's rollups with the store's own
// RebuildRollups. It prints the workspace id and how long each step took.
// It is a benchmark fixture, deliberately not a product command.
//
// measure serves the API in process over the database and asks each
// analytics section and report for the last --range-days days, --requests
// times one after another, after a warm-up; it prints a Markdown table of
// p50, p99 and max per endpoint, then times the stats figures computed by a
// direct scan of the raw rows (store.ScanTotals) for the ratio.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/heldsway/heldsway/internal/api"
	"github.com/heldsway/heldsway/internal/auth"
	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: analytics seed|measure [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "seed":
		err = seedCmd(os.Args[2:])
	case "measure":
		err = measureCmd(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "analytics:", err)
		os.Exit(1)
	}
}

// ---------------------------------------------------------------------------
// seed

type seeder struct {
	ctx  context.Context
	st   *store.Store
	db   *sql.DB
	pg   bool
	ws   int64
	prog int64
	rng  *rand.Rand
	now  time.Time
	span int64 // microseconds
}

// pick draws an affiliate index, low ones far more often: log-uniform, so
// index i comes about 1/(i+1) as often as index 0.
func (s *seeder) pick(n int) int {
	return min(int(math.Exp(s.rng.Float64()*math.Log(float64(n)+1))-1), n-1)
}

func (s *seeder) at() int64 { return s.now.UnixMicro() - s.rng.Int64N(s.span) }

// bulk inserts rows of cols columns: on PostgreSQL through unnest of one
// array per column (types gives each array's type), on SQLite by a prepared
// single-row INSERT, 50,000 rows per transaction.
func (s *seeder) bulk(table string, cols, types []string, rows int, row func(i int) []any) error {
	const chunk = 50000
	ph := make([]string, len(cols))
	for i := range cols {
		if s.pg {
			ph[i] = fmt.Sprintf("$%d::%s[]", i+1, types[i])
		} else {
			ph[i] = fmt.Sprintf("$%d", i+1)
		}
	}
	q := `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) `
	if s.pg {
		q += `SELECT * FROM unnest(` + strings.Join(ph, ", ") + `)`
	} else {
		q += `VALUES (` + strings.Join(ph, ", ") + `)`
	}
	for done := 0; done < rows; {
		n := min(chunk, rows-done)
		tx, err := s.db.BeginTx(s.ctx, nil)
		if err != nil {
			return err
		}
		if s.pg {
			arrays := make([][]any, len(cols))
			for i := range n {
				for j, v := range row(done + i) {
					arrays[j] = append(arrays[j], v)
				}
			}
			args := make([]any, len(cols))
			for j, a := range arrays {
				args[j] = typedArray(types[j], a)
			}
			if _, err := tx.ExecContext(s.ctx, q, args...); err != nil {
				tx.Rollback()
				return fmt.Errorf("%s: %w", table, err)
			}
		} else {
			st, err := tx.PrepareContext(s.ctx, q)
			if err != nil {
				tx.Rollback()
				return err
			}
			for i := range n {
				if _, err := st.ExecContext(s.ctx, row(done+i)...); err != nil {
					tx.Rollback()
					return fmt.Errorf("%s: %w", table, err)
				}
			}
			st.Close()
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		done += n
	}
	return nil
}

// typedArray converts a column's values to the slice pgx encodes as an array
// of that type; nil values become NULL.
func typedArray(typ string, vs []any) any {
	switch typ {
	case "bigint":
		out := make([]*int64, len(vs))
		for i, v := range vs {
			if x, ok := v.(int64); ok {
				out[i] = &x
			}
		}
		return out
	default:
		out := make([]*string, len(vs))
		for i, v := range vs {
			if x, ok := v.(string); ok {
				out[i] = &x
			}
		}
		return out
	}
}

func seedCmd(args []string) error {
	fs := flag.NewFlagSet("seed", flag.ExitOnError)
	dsn := fs.String("db", "", "database: postgres:// URL or SQLite file")
	nClicks := fs.Int("clicks", 5000000, "clicks")
	nConv := fs.Int("conversions", 50000, "conversions (orders)")
	nAff := fs.Int("affiliates", 2000, "active affiliates, one link each")
	nEvents := fs.Int("events", 500000, "storefront events")
	days := fs.Int("days", 180, "days of history, up to now")
	_ = fs.Parse(args)
	ctx := context.Background()
	st, err := store.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	svc := auth.NewService(st)
	started := time.Now()
	w, err := svc.CreateWorkspace(ctx, fmt.Sprintf("Analytics bench %d", time.Now().Unix()), "basic")
	if err != nil {
		return err
	}
	s := &seeder{ctx: ctx, st: st, db: st.DB(), pg: st.Dialect.IsPostgres(), ws: w.ID, rng: rand.New(rand.NewPCG(6, 6)),
		now: time.Now().UTC(), span: int64(time.Duration(*days) * 24 * time.Hour / time.Microsecond)}
	if err := s.db.QueryRowContext(ctx, `SELECT id FROM programs WHERE workspace_id = $1 AND is_default`, w.ID).Scan(&s.prog); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE programs SET commission_type = 'percentage', commission_value = 1000 WHERE id = $1`, s.prog); err != nil {
		return err
	}
	step := func(name string, t0 time.Time) {
		fmt.Fprintf(os.Stderr, "# %s: %.1fs\n", name, time.Since(t0).Seconds())
	}

	t := time.Now()
	us := s.now.UnixMicro()
	affIDs, linkIDs := make([]int64, *nAff), make([]int64, *nAff)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	for i := range *nAff {
		name, email := fmt.Sprintf("Bench Affiliate %d", i), fmt.Sprintf("bench-%d-%d@example.com", w.ID, i)
		var user int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO affiliate_users (workspace_id, name, email, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $4) RETURNING id`, w.ID, name, email, us).Scan(&user); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO affiliates (workspace_id, program_id, affiliate_user_id, referral_code, status,
			name, email, approved_at, created_at, updated_at) VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $7, $7) RETURNING id`,
			w.ID, s.prog, user, fmt.Sprintf("B%dA%06d", w.ID, i), name, email, us).Scan(&affIDs[i]); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO links (workspace_id, affiliate_id, slug, destination_url, campaign, is_active,
			created_at, updated_at) VALUES ($1, $2, $3, 'https://shop.example.com/', $4, $5, $6, $6) RETURNING id`,
			w.ID, affIDs[i], fmt.Sprintf("b%d-%06d", w.ID, i), fmt.Sprintf("campaign-%02d", i%20), true, us).Scan(&linkIDs[i]); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	step(fmt.Sprintf("%d affiliates and links", *nAff), t)

	// Clicks in time order, as the click writer appends them.
	t = time.Now()
	times := make([]int64, *nClicks)
	for i := range times {
		times[i] = s.at()
	}
	slices.Sort(times)
	err = s.bulk("clicks", []string{"workspace_id", "link_id", "affiliate_id", "program_id", "click_id", "visitor_id", "user_agent", "created_at"},
		[]string{"bigint", "bigint", "bigint", "bigint", "text", "text", "text", "bigint"}, *nClicks, func(i int) []any {
			a := s.pick(*nAff)
			return []any{w.ID, linkIDs[a], affIDs[a], s.prog, fmt.Sprintf("b%d-%012d", w.ID, i),
				fmt.Sprintf("v%09d", s.rng.IntN(max(*nClicks*2/3, 1))), "Mozilla/5.0 (bench)", times[i]}
		})
	if err != nil {
		return err
	}
	times = nil
	if _, err := s.db.ExecContext(ctx, `UPDATE links SET click_count = (SELECT COUNT(*) FROM clicks c
		WHERE c.workspace_id = links.workspace_id AND c.link_id = links.id) WHERE workspace_id = $1`, w.ID); err != nil {
		return err
	}
	step(fmt.Sprintf("%d clicks", *nClicks), t)

	t = time.Now()
	types := []string{"pageview", "pageview", "pageview", "pageview", "pageview", "pageview", "pageview", "product_view",
		"product_view", "add_to_cart", "add_to_cart", "remove_from_cart", "checkout", "thank_you"}
	err = s.bulk("storefront_events", []string{"workspace_id", "type", "visitor_id", "session_id", "program_id", "affiliate_id",
		"link_id", "host", "path", "product_id", "product_name", "created_at"},
		[]string{"bigint", "text", "text", "text", "bigint", "bigint", "bigint", "text", "text", "text", "text", "bigint"},
		*nEvents, func(i int) []any {
			typ := types[s.rng.IntN(len(types))]
			sess := s.rng.IntN(max(*nEvents/3, 1))
			row := []any{w.ID, typ, fmt.Sprintf("sv%d", sess/2), fmt.Sprintf("ss%d", sess), nil, nil, nil, "shop.example.com",
				fmt.Sprintf("/p/%d", s.rng.IntN(200)), nil, nil, s.at()}
			if s.rng.IntN(10) < 3 {
				a := s.pick(*nAff)
				row[4], row[5], row[6] = s.prog, affIDs[a], linkIDs[a]
			}
			if typ == "product_view" || typ == "add_to_cart" || typ == "remove_from_cart" {
				p := s.rng.IntN(100)
				row[9], row[10] = fmt.Sprintf("sku-%03d", p), fmt.Sprintf("Product %d", p)
			}
			return row
		})
	if err != nil {
		return err
	}
	step(fmt.Sprintf("%d storefront events", *nEvents), t)

	// Conversions: 60% approved (half of those paid), 30% pending, 5%
	// rejected, 5% refunded in full; a commission of 10% each.
	t = time.Now()
	var firstOrder int64
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM orders`).Scan(&firstOrder); err != nil {
		return err
	}
	type ord struct {
		status, cstatus string
		total, refunded int64
		aff             int
	}
	orders := make([]ord, *nConv)
	for i := range orders {
		o := ord{total: 2000 + s.rng.Int64N(48000), aff: s.pick(*nAff), status: "approved", cstatus: "approved"}
		switch r := s.rng.IntN(100); {
		case r < 30:
			o.cstatus = "paid"
		case r < 60:
		case r < 90:
			o.status, o.cstatus = "pending", "pending"
		case r < 95:
			o.status, o.cstatus = "rejected", "rejected"
		default:
			o.status, o.cstatus, o.refunded = "cancelled", "reversed", o.total
		}
		orders[i] = o
	}
	err = s.bulk("orders", []string{"id", "workspace_id", "order_id", "status", "currency", "total", "subtotal", "refunded_amount",
		"commission_amount", "affiliate_id", "program_id", "link_id", "attribution", "converted_at", "created_at", "updated_at"},
		[]string{"bigint", "bigint", "text", "text", "text", "bigint", "bigint", "bigint", "bigint", "bigint", "bigint", "bigint",
			"text", "bigint", "bigint", "bigint"}, *nConv, func(i int) []any {
			o := orders[i]
			comm := o.total / 10
			if o.status == "rejected" || o.status == "cancelled" {
				comm = 0
			}
			return []any{firstOrder + 1 + int64(i), w.ID, fmt.Sprintf("bo-%d-%d", w.ID, i), o.status, "USD", o.total, o.total,
				o.refunded, comm, affIDs[o.aff], s.prog, linkIDs[o.aff], "click", s.at(), us, us}
		})
	if err != nil {
		return err
	}
	err = s.bulk("commissions", []string{"workspace_id", "order_id", "affiliate_id", "tier", "currency", "amount", "reversed_amount",
		"rate", "rule", "base_amount", "explanation", "status", "created_at", "updated_at"},
		[]string{"bigint", "bigint", "bigint", "bigint", "text", "bigint", "bigint", "bigint", "text", "bigint", "text", "text",
			"bigint", "bigint"}, *nConv, func(i int) []any {
			o := orders[i]
			var rev int64
			if o.cstatus == "reversed" {
				rev = o.total / 10
			}
			return []any{w.ID, firstOrder + 1 + int64(i), affIDs[o.aff], int64(1), "USD", o.total / 10, rev, int64(1000),
				"program", o.total, "10% of the subtotal", o.cstatus, us, us}
		})
	if err != nil {
		return err
	}
	if s.pg { // the explicit ids passed the identity sequence by
		if _, err := s.db.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('orders', 'id'), (SELECT MAX(id) FROM orders))`); err != nil {
			return err
		}
	}
	step(fmt.Sprintf("%d conversions", *nConv), t)

	t = time.Now()
	statuses := []string{"completed", "completed", "completed", "pending", "processing", "failed"}
	err = s.bulk("payouts", []string{"workspace_id", "affiliate_id", "currency", "amount", "status", "method", "created_at", "updated_at"},
		[]string{"bigint", "bigint", "text", "bigint", "text", "text", "bigint", "bigint"}, 3000, func(i int) []any {
			at := s.at()
			return []any{w.ID, affIDs[s.pick(*nAff)], "USD", 1000 + s.rng.Int64N(100000), statuses[s.rng.IntN(len(statuses))], "manual", at, at}
		})
	if err != nil {
		return err
	}
	step("3000 payouts", t)

	t = time.Now()
	if s.pg {
		_, err = s.db.ExecContext(ctx, `ANALYZE`)
	} else {
		_, err = s.db.ExecContext(ctx, `PRAGMA optimize`)
	}
	if err != nil {
		return err
	}
	res, err := st.RebuildRollups(ctx, w.ID)
	if err != nil {
		return err
	}
	if s.pg {
		_, err = s.db.ExecContext(ctx, `ANALYZE`)
	} else {
		_, err = s.db.ExecContext(ctx, `ANALYZE`)
	}
	if err != nil {
		return err
	}
	step(fmt.Sprintf("rollups rebuilt (%d days)", res.Days), t)
	fmt.Fprintf(os.Stderr, "# seeded in %.1fs\n", time.Since(started).Seconds())
	fmt.Println(w.ID)
	return nil
}

// ---------------------------------------------------------------------------
// measure

func measureCmd(args []string) error {
	fs := flag.NewFlagSet("measure", flag.ExitOnError)
	dsn := fs.String("db", "", "database")
	wsID := fs.Int64("workspace", 0, "workspace id")
	rangeDays := fs.Int("range-days", 90, "days of the measured range, up to today")
	requests := fs.Int("requests", 200, "requests per endpoint")
	label := fs.String("label", "", "engine label for the table")
	_ = fs.Parse(args)
	ctx := context.Background()
	st, err := store.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	svc := auth.NewService(st)
	k, secret, err := svc.CreateKey(ctx, auth.KeyInput{WorkspaceID: *wsID, Name: "bench", Scopes: []string{"reports:read", "affiliates:read"},
		RateLimit: 1000000})
	if err != nil {
		return err
	}
	srv := &api.Server{Auth: svc, DB: st, Idempotency: st, Store: st, Version: "bench"}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	tok, _, err := svc.IssueToken(ctx, k.Key, secret)
	if err != nil {
		return err
	}
	_, loc, err := st.RollupZone(ctx, *wsID)
	if err != nil {
		return err
	}
	to := heldsway.DayOf(time.Now(), loc)
	from := to.AddDays(-(*rangeDays - 1))
	q := fmt.Sprintf("from=%s&to=%s", from, to)
	endpoints := []struct{ name, path string }{
		{"section=stats", "/v1/affiliate/analytics?section=stats&" + q},
		{"/v1/reports/stats", "/v1/reports/stats?" + q},
		{"section=trends", "/v1/affiliate/analytics?section=trends&" + q},
		{"section=charts", "/v1/affiliate/analytics?section=charts&" + q},
		{"section=tables", "/v1/affiliate/analytics?section=tables&" + q},
		{"section=recent_clicks", "/v1/affiliate/analytics?section=recent_clicks&" + q},
		{"section=recent_conversions", "/v1/affiliate/analytics?section=recent_conversions&" + q},
		{"section=recent_events", "/v1/affiliate/analytics?section=recent_events&" + q},
		{"/v1/reports/commission-chart", "/v1/reports/commission-chart?" + q},
		{"/v1/reports/top-affiliates", "/v1/reports/top-affiliates?" + q},
		{"/v1/reports/clicks-by-campaign", "/v1/reports/clicks-by-campaign?" + q},
		{"/v1/reports/payouts", "/v1/reports/payouts?" + q},
	}
	client := hs.Client()
	get := func(path string) (time.Duration, error) {
		req, _ := http.NewRequest("GET", hs.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		t := time.Now()
		res, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		d := time.Since(t)
		if res.StatusCode != 200 {
			return 0, fmt.Errorf("%s: status %d", path, res.StatusCode)
		}
		return d, nil
	}
	fmt.Printf("| %s endpoint (%d days, %d requests) | p50 ms | p99 ms | max ms |\n|---|---|---|---|\n", *label, *rangeDays, *requests)
	for _, ep := range endpoints {
		for range 10 {
			if _, err := get(ep.path); err != nil {
				return err
			}
		}
		ds := make([]time.Duration, 0, *requests)
		for range *requests {
			d, err := get(ep.path)
			if err != nil {
				return err
			}
			ds = append(ds, d)
		}
		p50, p99, mx := percentiles(ds)
		fmt.Printf("| %s | %.1f | %.1f | %.1f |\n", ep.name, p50, p99, mx)
	}
	// The same stats figures by a direct scan of the raw rows.
	scans := max(*requests/20, 5)
	ds := make([]time.Duration, 0, scans)
	for i := range scans + 1 {
		t := time.Now()
		if _, err := st.ScanTotals(ctx, *wsID, from, to, "USD", loc); err != nil {
			return err
		}
		if i > 0 { // the first one warms the cache
			ds = append(ds, time.Since(t))
		}
	}
	p50, p99, mx := percentiles(ds)
	fmt.Printf("| stats by direct raw scan (store.ScanTotals, %d runs) | %.1f | %.1f | %.1f |\n", scans, p50, p99, mx)
	return nil
}

func percentiles(ds []time.Duration) (p50, p99, mx float64) {
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	idx := func(p float64) int { return min(len(ds)-1, int(math.Ceil(p*float64(len(ds))))-1) }
	return ms(ds[idx(0.50)]), ms(ds[idx(0.99)]), ms(ds[len(ds)-1])
}
