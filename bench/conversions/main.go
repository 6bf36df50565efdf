// Command conversions is the issue-4 benchmark tool for POST /v1/conversions
// (bench/conversions.sh runs it):
//
//	conversions seed --db DSN --workspace ID [--affiliates N] [--clicks N]
//	conversions measure --target NAME=URL=KEYFILE=DSN [--target …] [flags]
//
// seed prepares a workspace the way a live one looks: its default program
// recurring for the customer's lifetime with a 5% tier rate and auto-approval
// after 14 days, N active affiliates (one in ten with a parent) each with a
// referral link, and clicks through those links over the last 20 days by
// visitors who clicked about twice each. Rows go straight into the database
// with multi-row INSERTs, following internal/store/migrations; it is a
// benchmark fixture, deliberately not a product command.
//
// measure drives POST /v1/conversions against each target in turn, in up to
// two modes, each after a warm-up in the same mode:
//
//   - closed loop (-c N): N clients for a fixed time, each sending its next
//     request when its previous one is answered. This finds the maximum
//     throughput; its latencies are not a service level (a slow answer holds
//     its client back, so the load backs off exactly when the server is slow,
//     and mean latency is N ÷ throughput).
//   - open loop (-rate R): R×d requests, request i started at t0 + i/R by a
//     goroutine of its own, whatever the earlier ones are doing; each latency
//     runs from the request's scheduled start (a late start of the load
//     generator's counts too). This is the latency at a given arrival rate. If
//     fewer than 99% of R per second are answered within the schedule's span,
//     the run is reported as not sustained, without latencies.
//
// Every request is a new order_id (no Idempotency-Key), the click id of a
// random seeded click (so attribution looks the click up, then the visitor's
// last click in the window), a customer e-mail drawn from a pool (so repeat
// customers hit their binding), two line items. Every answer must be 201. It
// prints a Markdown table (conversions/s, p50, p99, max, errors) and checks
// after each run that the database holds exactly one order per 201; it exits
// non-zero after the table if any run had errors or a mismatch.
package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx"
	_ "modernc.org/sqlite"             // "sqlite"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: conversions seed|measure [flags]")
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
		fmt.Fprintln(os.Stderr, "conversions:", err)
		os.Exit(1)
	}
}

func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

func openDB(dsn string) (*sql.DB, error) {
	if isPostgres(dsn) {
		return sql.Open("pgx", dsn)
	}
	return sql.Open("sqlite", "file:"+dsn+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
}

// ---------------------------------------------------------------------------
// seed

func seedCmd(args []string) error {
	fs := flag.NewFlagSet("seed", flag.ExitOnError)
	dsn := fs.String("db", "", "database: postgres:// URL or SQLite file")
	wsID := fs.Int64("workspace", 1, "workspace id")
	affiliates := fs.Int("affiliates", 1000, "active affiliates, each with one link")
	clicks := fs.Int("clicks", 200000, "clicks over the last 20 days")
	_ = fs.Parse(args)
	db, err := openDB(*dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(4, 2))
	now := time.Now().UTC()

	var prog int64
	if err := db.QueryRowContext(ctx, `SELECT id FROM programs WHERE workspace_id = $1 AND is_default`, *wsID).Scan(&prog); err != nil {
		return fmt.Errorf("default program: %w", err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE programs SET recurring = 'lifetime', tier_rate = 500, cookie_days = 30,
		attribution_model = 'last_click', auto_approve_enabled = $1, auto_approve_delay_days = 14 WHERE id = $2`, true, prog); err != nil {
		return err
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	us := now.UnixMicro()
	affIDs := make([]int64, *affiliates)
	linkIDs := make([]int64, *affiliates)
	for i := range *affiliates {
		name, email := fmt.Sprintf("Bench Affiliate %d", i), fmt.Sprintf("bench-aff-%d@example.com", i)
		var user int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO affiliate_users (workspace_id, name, email, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $4) RETURNING id`, *wsID, name, email, us).Scan(&user); err != nil {
			return err
		}
		var parent any
		if i >= 100 && i%10 == 0 {
			parent = affIDs[rng.IntN(100)]
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO affiliates (workspace_id, program_id, affiliate_user_id, parent_affiliate_id,
			referral_code, status, name, email, approved_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $8, $8, $8) RETURNING id`,
			*wsID, prog, user, parent, fmt.Sprintf("BENCH%06d", i), name, email, us).Scan(&affIDs[i]); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO links (workspace_id, affiliate_id, slug, destination_url, created_at, updated_at)
			VALUES ($1, $2, $3, 'https://shop.example.com/', $4, $4) RETURNING id`,
			*wsID, affIDs[i], fmt.Sprintf("bench-%06d", i), us).Scan(&linkIDs[i]); err != nil {
			return err
		}
	}
	const cols, batch = 7, 500
	visitors := max(*clicks/2, 1)
	window := int64(20 * 24 * time.Hour / time.Microsecond)
	for done := 0; done < *clicks; {
		n := min(batch, *clicks-done)
		var q strings.Builder
		q.WriteString(`INSERT INTO clicks (workspace_id, link_id, affiliate_id, program_id, click_id, visitor_id, created_at) VALUES `)
		vals := make([]any, 0, n*cols)
		for j := range n {
			if j > 0 {
				q.WriteByte(',')
			}
			q.WriteByte('(')
			for k := 1; k <= cols; k++ {
				if k > 1 {
					q.WriteByte(',')
				}
				q.WriteString("$" + strconv.Itoa(j*cols+k))
			}
			q.WriteByte(')')
			a := rng.IntN(*affiliates)
			vals = append(vals, *wsID, linkIDs[a], affIDs[a], prog, fmt.Sprintf("bclk%012d", done+j),
				fmt.Sprintf("bvis%09d", rng.IntN(visitors)), us-rng.Int64N(window))
		}
		if _, err := tx.ExecContext(ctx, q.String(), vals...); err != nil {
			return err
		}
		done += n
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	// Fresh planner statistics, as a live database has them.
	if isPostgres(*dsn) {
		_, err = db.ExecContext(ctx, `ANALYZE`)
	} else {
		_, err = db.ExecContext(ctx, `PRAGMA optimize`)
	}
	if err != nil || isPostgres(*dsn) {
		return err
	}
	return waitRolledUp(ctx, db)
}

// waitRolledUp waits until the running server's SQLite click tailer has
// counted the seeded clicks in the rollups: clicks recorded through the server
// are counted as they arrive, so catching up 200,000 at once is setup, not
// part of the conversions measured after it.
func waitRolledUp(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var behind bool
		err := db.QueryRowContext(ctx, `SELECT COALESCE((SELECT MAX(id) FROM clicks), 0) >
			COALESCE((SELECT last_id FROM rollup_cursors WHERE name = 'clicks'), 0)`).Scan(&behind)
		if err != nil {
			return fmt.Errorf("waiting for the click rollups: %w", err)
		}
		if !behind {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the server did not count the seeded clicks in its rollups within 5 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// measure

type target struct {
	name, base, keyFile, dsn string
	pid                      int // the server's process id, for its CPU time; 0: unknown
	token                    string
	clicks                   []string
	client                   *http.Client
}

type targets []*target

func (t *targets) String() string { return "" }

func (t *targets) Set(v string) error {
	p := strings.SplitN(v, "=", 4)
	if len(p) != 4 {
		return fmt.Errorf("target %q: want NAME=URL=KEYFILE=DSN[=PID]", v)
	}
	tg := &target{name: p[0], base: p[1], keyFile: p[2], dsn: p[3]}
	// A DSN may hold "=" itself (sslmode=disable): a trailing =digits is the PID.
	if i := strings.LastIndexByte(p[3], '='); i >= 0 {
		if pid, err := strconv.Atoi(p[3][i+1:]); err == nil {
			tg.dsn, tg.pid = p[3][:i], pid
		}
	}
	*t = append(*t, tg)
	return nil
}

type result struct {
	target, mode string
	conc         int // closed loop: clients
	ok, errs     int64
	// abandoned counts requests the client gave up on (no answer: its
	// timeout); the server may still have stored them.
	abandoned       int64
	elapsed         time.Duration
	rate            float64 // conversions/s: 201s per second of the run (closed loop), or 201s answered within the schedule's span (open loop)
	p50, p99, worst time.Duration
	attributed      int64
	stored          int64 // orders the database holds for the run
	firstErr        string
	cpu             time.Duration // the server's CPU time during the run; 0: unknown
	batch           float64       // conversions per group-commit transaction (SQLite's /metrics); 0: unknown
	busy            time.Duration // the writer's busy time per conversion (SQLite's /metrics); 0: unknown
	// Open loop only.
	offered   float64         // the schedule's rate
	sustained bool            // rate >= sustainShare × offered
	lag       time.Duration   // the latest start behind the schedule (the load generator's own delay, included in the latencies)
	start     time.Time       // open loop: the schedule's t0
	lat       []time.Duration // open loop: each request's latency, in schedule order
}

// sustainShare is the share of the offered rate that the open loop must see
// answered within the schedule's span to count as sustained. A server that
// keeps up leaves only the requests of its last few milliseconds in flight at
// the end of the span; one that falls behind by 1% leaves a backlog of 150 ms
// of requests after 15 s at 1,500/s, and its latencies grow with the backlog.
const sustainShare = 0.99

func measureCmd(args []string) error {
	fs := flag.NewFlagSet("measure", flag.ExitOnError)
	var ts targets
	fs.Var(&ts, "target", "NAME=URL=KEYFILE=DSN[=PID] (repeatable); with the server's PID its CPU time is reported")
	conc := fs.Int("c", 50, "closed loop: concurrent clients (0: no closed-loop run)")
	rate := fs.Float64("rate", 0, "open loop: requests started per second on a fixed schedule (0: no open-loop run)")
	maxConns := fs.Int("max-conns", 1000, "open loop: most connections to a server (requests beyond wait for one, and the wait counts)")
	dur := fs.Duration("d", 15*time.Second, "measured duration of each run")
	warm := fs.Duration("warmup", 3*time.Second, "unmeasured load before each measured run, in the same mode")
	customers := fs.Int("customers", 200000, "size of the customer e-mail pool")
	p99Goal := fs.Duration("p99-goal", 30*time.Millisecond, "open loop: the p99 the verdict compares with")
	slowEvery := fs.Duration("slow-every", 0, "open loop: if set, print (to stderr) each such span of the schedule in which requests took longer than -p99-goal, with their count and the slowest, to tell a steady tail from stalls")
	_ = fs.Parse(args)
	if len(ts) == 0 {
		return errors.New("no --target")
	}
	if *conc <= 0 && *rate <= 0 {
		return errors.New("neither -c nor -rate")
	}
	var (
		results []result
		failed  []string
	)
	check := func(t *target, r result, prefix string) {
		if err := t.verify(&r, prefix); err != nil {
			failed = append(failed, err.Error())
		}
		if r.errs > 0 {
			failed = append(failed, fmt.Sprintf("%s %s: %d errors, first: %s", r.target, r.mode, r.errs, r.firstErr))
		}
		results = append(results, r)
	}
	for _, t := range ts {
		conns := max(*conc*2, *maxConns)
		t.client = &http.Client{Timeout: time.Minute,
			Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
		if err := t.prepare(); err != nil {
			return err
		}
		if *conc > 0 {
			if *warm > 0 {
				fmt.Fprintf(os.Stderr, "# %s: warming up %s at concurrency %d\n", t.name, *warm, *conc)
				if r := t.closed("warm", *conc, *warm, *customers); r.errs > 0 {
					return fmt.Errorf("%s warm-up: %d errors, first: %s", t.name, r.errs, r.firstErr)
				}
				if err := t.analyze(); err != nil {
					return err
				}
			}
			fmt.Fprintf(os.Stderr, "# %s: measuring %s at concurrency %d (closed loop)\n", t.name, *dur, *conc)
			cpu0, w0 := procCPU(t.pid), t.writerStats()
			r := t.closed("run", *conc, *dur, *customers)
			if t.pid != 0 {
				r.cpu = procCPU(t.pid) - cpu0
			}
			w1 := t.writerStats()
			r.batch, r.busy = w0.batchTo(w1), w0.busyTo(w1)
			check(t, r, "run-")
		}
		if *rate > 0 {
			if *warm > 0 {
				fmt.Fprintf(os.Stderr, "# %s: warming up %s at %.0f/s\n", t.name, *warm, *rate)
				if r := t.open("owarm", *rate, *warm, *customers); r.errs > 0 {
					return fmt.Errorf("%s warm-up: %d errors, first: %s", t.name, r.errs, r.firstErr)
				}
				if err := t.analyze(); err != nil {
					return err
				}
			}
			fmt.Fprintf(os.Stderr, "# %s: measuring %s at %.0f/s (open loop)\n", t.name, *dur, *rate)
			cpu0, w0 := procCPU(t.pid), t.writerStats()
			r := t.open("open", *rate, *dur, *customers)
			if *slowEvery > 0 {
				r.printSlowSpans(*slowEvery, *p99Goal)
			}
			if t.pid != 0 {
				r.cpu = procCPU(t.pid) - cpu0
			}
			w1 := t.writerStats()
			r.batch, r.busy = w0.batchTo(w1), w0.busyTo(w1)
			fmt.Fprintf(os.Stderr, "# %s: open loop: %d of %d answered within the %s schedule; latest start %s behind it\n",
				t.name, int64(r.rate*dur.Seconds()+0.5), int64(*rate*dur.Seconds()), *dur, r.lag.Round(time.Microsecond))
			check(t, r, "open-")
		}
	}
	fmt.Printf("\nPOST /v1/conversions, attribution by click id, %s per run after %s of the same load; %d cores, %s\n",
		*dur, *warm, runtime.NumCPU(), runtime.Version())
	if *conc > 0 {
		fmt.Printf("closed loop: %d clients, each sending its next request when the previous one is answered (maximum throughput; its latency is about %d ÷ throughput)\n", *conc, *conc)
	}
	if *rate > 0 {
		fmt.Printf("open loop: requests started at t0 + i/%.0f whatever the answers, latency from each request's scheduled start\n", *rate)
	}
	fmt.Println()
	fmt.Println("| Engine | Load | Conversions/s | p50 | p99 | max | errors | server CPU per conversion | server CPU used | mean batch | writer busy per conversion | attributed | orders stored = 201s |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range results {
		perConv, used := "n/a", "n/a"
		if r.cpu > 0 && r.ok > 0 {
			perConv = fmt.Sprintf("%.0f µs", float64(r.cpu.Microseconds())/float64(r.ok))
			used = fmt.Sprintf("%.2f cores", r.cpu.Seconds()/r.elapsed.Seconds())
		}
		attributed := "n/a"
		if r.ok > 0 {
			attributed = fmt.Sprintf("%.1f%%", 100*float64(r.attributed)/float64(r.ok))
		}
		stored := fmt.Sprintf("yes (%d)", r.ok)
		if r.stored > r.ok && r.stored <= r.ok+r.abandoned {
			stored = fmt.Sprintf("yes (%d, and %d of the %d requests the client timed out on)", r.ok, r.stored-r.ok, r.abandoned)
		} else if r.stored != r.ok {
			stored = fmt.Sprintf("**no: %d stored, %d answered 201**", r.stored, r.ok)
		}
		p50, p99, worst := ms(r.p50), ms(r.p99), ms(r.worst)
		rate := fmt.Sprintf("%.0f", r.rate)
		if r.mode == "open" && !r.sustained {
			// Its latencies would be those of a backlog, not of the offered rate.
			rate = fmt.Sprintf("**%.0f: %.0f/s not sustained**", r.rate, r.offered)
			p50, p99, worst = "n/a", "n/a", "n/a"
		}
		batch := "n/a"
		if r.batch > 0 {
			batch = fmt.Sprintf("%.1f", r.batch)
		}
		busy := "n/a"
		if r.busy > 0 {
			busy = fmt.Sprintf("%.0f µs (%.0f%% of the time)", float64(r.busy.Nanoseconds())/1e3, 100*r.busy.Seconds()*r.rate)
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s | %s | %s |\n", r.target, r.load(), rate,
			p50, p99, worst, r.errs, perConv, used, batch, busy, attributed, stored)
	}
	fmt.Println()
	for _, r := range results {
		switch {
		case r.mode == "closed":
			fmt.Printf("%s, %s: %.0f conversions/s\n", r.target, r.load(), r.rate)
		case !r.sustained:
			fmt.Printf("%s, %s: NOT SUSTAINED: %.0f of the %.0f/s offered were answered within the schedule; no p99 of the offered rate to report\n",
				r.target, r.load(), r.rate, r.offered)
		default:
			verdict := "under"
			if r.p99 >= *p99Goal {
				verdict = "NOT under"
			}
			fmt.Printf("%s, %s: p99 %s, %s %s\n", r.target, r.load(), ms(r.p99), verdict, *p99Goal)
		}
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

func (r *result) load() string {
	if r.mode == "open" {
		return fmt.Sprintf("open loop, %.0f/s", r.offered)
	}
	return fmt.Sprintf("closed loop, %d clients", r.conc)
}

// writerCounts are the SQLite conversion writer's counters from /metrics.
type writerCounts struct{ conversions, batches, busy float64 }

// writerStats reads the writer's counters; zero when the server has none
// (PostgreSQL).
func (t *target) writerStats() writerCounts {
	var c writerCounts
	resp, err := t.client.Get(t.base + "/metrics")
	if err != nil {
		return c
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "heldsway_conversion_writer_conversions_total "); ok {
			c.conversions, _ = strconv.ParseFloat(v, 64)
		} else if v, ok := strings.CutPrefix(line, "heldsway_conversion_writer_batches_total "); ok {
			c.batches, _ = strconv.ParseFloat(v, 64)
		} else if v, ok := strings.CutPrefix(line, "heldsway_conversion_writer_busy_seconds_total "); ok {
			c.busy, _ = strconv.ParseFloat(v, 64)
		}
	}
	return c
}

// busyTo returns the writer's busy time per conversion between c and a later
// reading; 0 if unknown.
func (c writerCounts) busyTo(later writerCounts) time.Duration {
	if later.conversions <= c.conversions {
		return 0
	}
	return time.Duration((later.busy - c.busy) / (later.conversions - c.conversions) * float64(time.Second))
}

// batchTo returns the mean batch between c and a later reading; 0 if unknown.
func (c writerCounts) batchTo(later writerCounts) float64 {
	if later.batches <= c.batches {
		return 0
	}
	return (later.conversions - c.conversions) / (later.batches - c.batches)
}

// procCPU returns the user+system CPU time of process pid from /proc (Linux),
// 0 when pid is 0 or unreadable. The clock tick is 100 Hz on every Linux
// this runs on (sysconf(_SC_CLK_TCK) without cgo).
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start after ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// prepare exchanges the key for a token and loads the seeded click ids.
func (t *target) prepare() error {
	b, err := os.ReadFile(t.keyFile)
	if err != nil {
		return err
	}
	var k struct {
		APIKey    string `json:"api_key"`
		APISecret string `json:"api_secret"`
	}
	if err := json.Unmarshal(b, &k); err != nil {
		return fmt.Errorf("%s: %w", t.keyFile, err)
	}
	body, _ := json.Marshal(map[string]string{"api_key": k.APIKey, "api_secret": k.APISecret})
	resp, err := t.client.Post(t.base+"/v1/auth/token", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		Data struct {
			AccessToken string `json:"access_token"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Data.AccessToken == "" {
		return fmt.Errorf("%s: token exchange failed (status %d)", t.name, resp.StatusCode)
	}
	t.token = out.Data.AccessToken
	db, err := openDB(t.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.Query(`SELECT click_id FROM clicks`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		t.clicks = append(t.clicks, id)
	}
	if len(t.clicks) == 0 {
		return fmt.Errorf("%s: no clicks seeded", t.name)
	}
	return rows.Err()
}

// post sends conversion n of phase and returns its status (0 and the error
// text when the request failed) and, unless it is 201, the answer.
func (t *target) post(phase string, n int64, customers int, rng *rand.Rand) (int, string) {
	var buf bytes.Buffer
	sub := 2000 + rng.IntN(50000)
	fmt.Fprintf(&buf, `{"order_id":"%s-%s-%d","total":%d.%02d,"subtotal":%d.%02d,"tax":0,"currency":"USD",`+
		`"click_id":"%s","customer":{"email":"c%d@example.com","name":"Customer"},`+
		`"line_items":[{"product_id":"sku-1","name":"Widget","quantity":1,"price":%d.%02d},`+
		`{"product_id":"sku-2","name":"Gadget","quantity":2,"price":0}]}`,
		phase, t.name, n, sub/100, sub%100, sub/100, sub%100, t.clicks[rng.IntN(len(t.clicks))],
		rng.IntN(customers), sub/100, sub%100)
	req, _ := http.NewRequest(http.MethodPost, t.base+"/v1/conversions", &buf)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+t.token)
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusCreated {
		return resp.StatusCode, ""
	}
	return resp.StatusCode, fmt.Sprintf("status %d: %s", resp.StatusCode, rb)
}

// closed posts conversions from conc clients for d, each client sending its
// next request when its previous one is answered, and returns the figures.
func (t *target) closed(phase string, conc int, d time.Duration, customers int) result {
	var (
		ok, errs, seq, abandoned atomic.Int64
		firstErr                 atomic.Value
		wg                       sync.WaitGroup
	)
	lat := make([][]time.Duration, conc)
	start := time.Now()
	stop := start.Add(d)
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			for time.Now().Before(stop) {
				t0 := time.Now()
				status, msg := t.post(phase, seq.Add(1), customers, rng)
				el := time.Since(t0)
				if status == http.StatusCreated {
					ok.Add(1)
					lat[w] = append(lat[w], el)
					continue
				}
				errs.Add(1)
				if status == 0 {
					abandoned.Add(1)
				}
				firstErr.CompareAndSwap(nil, msg)
			}
		}()
	}
	wg.Wait()
	r := result{target: t.name, mode: "closed", conc: conc, ok: ok.Load(), errs: errs.Load(), abandoned: abandoned.Load(),
		elapsed: time.Since(start)}
	r.rate = float64(r.ok) / r.elapsed.Seconds()
	if v := firstErr.Load(); v != nil {
		r.firstErr = v.(string)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	r.percentiles(all)
	return r
}

// open posts rate×d conversions, request i started at t0 + i/rate by a
// goroutine of its own (so a slow answer never delays a later start), and
// waits for all of them. Each latency runs from the request's scheduled start,
// not from when it was sent: a delay of the load generator's, or a wait for a
// connection, counts against the server like a late answer (no coordinated
// omission). The rate reported is the 201s answered within the schedule's span
// per second of it; every request is waited for and counted in the latencies.
func (t *target) open(phase string, rate float64, d time.Duration, customers int) result {
	n := int64(rate * d.Seconds())
	var (
		ok, errs, inSpan, abandoned atomic.Int64
		firstErr                    atomic.Value
		wg                          sync.WaitGroup
		lag                         time.Duration
	)
	lat := make([]time.Duration, n)
	failed := make([]bool, n)
	t0 := time.Now()
	end := t0.Add(d)
	seed := uint64(t0.UnixNano())
	for i := range n {
		at := t0.Add(time.Duration(float64(i) * float64(time.Second) / rate))
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		lag = max(lag, time.Since(at))
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, msg := t.post(phase, i, customers, rand.New(rand.NewPCG(uint64(i), seed)))
			now := time.Now()
			lat[i] = now.Sub(at)
			if status != http.StatusCreated {
				failed[i] = true
				errs.Add(1)
				if status == 0 {
					abandoned.Add(1)
				}
				firstErr.CompareAndSwap(nil, msg)
				return
			}
			ok.Add(1)
			if !now.After(end) {
				inSpan.Add(1)
			}
		}()
	}
	wg.Wait()
	r := result{target: t.name, mode: "open", ok: ok.Load(), errs: errs.Load(), abandoned: abandoned.Load(), elapsed: time.Since(t0),
		offered: rate, lag: lag, start: t0, lat: lat}
	r.rate = float64(inSpan.Load()) / d.Seconds()
	r.sustained = r.rate >= sustainShare*rate
	if v := firstErr.Load(); v != nil {
		r.firstErr = v.(string)
	}
	all := make([]time.Duration, 0, n)
	for i, l := range lat {
		if !failed[i] {
			all = append(all, l)
		}
	}
	r.percentiles(all)
	return r
}

// percentiles sets p50, p99 and max from the latencies of the 201s.
func (r *result) percentiles(all []time.Duration) {
	slices.Sort(all)
	if len(all) > 0 {
		r.p50, r.p99, r.worst = all[len(all)/2], all[len(all)*99/100], all[len(all)-1]
	}
}

// analyze gives PostgreSQL the planner statistics of the tables the warm-up
// filled, as autovacuum's ANALYZE does on a live database within a minute or
// so: the seed's ANALYZE saw no orders and no customers, and the plans the
// server's connections cached on those empty tables scan them whole as they
// grow (until statistics change, which invalidates them). SQLite needs none:
// its planner assumes indexes help a table it has no statistics of.
func (t *target) analyze() error {
	if !isPostgres(t.dsn) {
		return nil
	}
	db, err := openDB(t.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Exec(`ANALYZE`)
	return err
}

// verify checks the measured run stored exactly one order per 201 and counts
// the attributed ones.
func (t *target) verify(r *result, prefix string) error {
	db, err := openDB(t.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	var n, attributed int64
	if err := db.QueryRow(`SELECT COUNT(*), COUNT(affiliate_id) FROM orders WHERE order_id LIKE $1`, prefix+t.name+"-%").
		Scan(&n, &attributed); err != nil {
		return err
	}
	r.stored, r.attributed = n, attributed
	// One order per 201, plus at most one per request the client abandoned
	// (the server may have committed it after the client's timeout).
	if n < r.ok || n > r.ok+r.abandoned {
		return fmt.Errorf("%s %s: %d orders stored for %d answers 201 (%d abandoned)", t.name, r.mode, n, r.ok, r.abandoned)
	}
	return nil
}

// printSlowSpans prints, for each span of the open loop's schedule in which
// some requests took longer than goal, the span's start (UTC, to line up with
// the server's logs), how many did and the slowest: a tail spread evenly is
// the server's pace, one in a few spans is a stall.
func (r result) printSlowSpans(every, goal time.Duration) {
	if r.offered <= 0 || len(r.lat) == 0 {
		return
	}
	per := max(1, int(r.offered*every.Seconds()))
	for from := 0; from < len(r.lat); from += per {
		var slow int
		var worst time.Duration
		for _, l := range r.lat[from:min(len(r.lat), from+per)] {
			if l > goal {
				slow++
			}
			worst = max(worst, l)
		}
		if slow > 0 {
			at := r.start.Add(time.Duration(float64(from) / r.offered * float64(time.Second)))
			fmt.Fprintf(os.Stderr, "# %s: %s +%s: %d of %d over %s, slowest %s\n", r.target, at.UTC().Format("15:04:05.000"),
				every, slow, min(per, len(r.lat)-from), goal, worst.Round(100*time.Microsecond))
		}
	}
}
