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
// measure drives POST /v1/conversions at a fixed concurrency for a fixed
// time against each target in turn: every request a new order_id (no
// Idempotency-Key), the click id of a random seeded click (so attribution
// looks the click up, then the visitor's last click in the window), a customer
// e-mail drawn from a pool (so repeat customers hit their binding), two line
// items. Every answer must be 201. It prints a Markdown table (requests/s,
// p50, p99, max) and checks afterwards that the database holds exactly one
// order per 201.
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
	return err
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
	target          string
	ok, errs        int64
	elapsed         time.Duration
	p50, p99, worst time.Duration
	attributed      int64
	firstErr        string
	cpu             time.Duration // the server's CPU time during the run; 0: unknown
}

func measureCmd(args []string) error {
	fs := flag.NewFlagSet("measure", flag.ExitOnError)
	var ts targets
	fs.Var(&ts, "target", "NAME=URL=KEYFILE=DSN[=PID] (repeatable); with the server's PID its CPU time is reported")
	conc := fs.Int("c", 50, "concurrent clients")
	dur := fs.Duration("d", 15*time.Second, "measured duration per target")
	warm := fs.Duration("warmup", 3*time.Second, "unmeasured load before each measurement")
	customers := fs.Int("customers", 200000, "size of the customer e-mail pool")
	_ = fs.Parse(args)
	if len(ts) == 0 {
		return errors.New("no --target")
	}
	var results []result
	for _, t := range ts {
		t.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conc * 2, MaxConnsPerHost: *conc * 2}}
		if err := t.prepare(); err != nil {
			return err
		}
		if *warm > 0 {
			fmt.Fprintf(os.Stderr, "# %s: warming up %s\n", t.name, *warm)
			if r := t.run("warm", *conc, *warm, *customers); r.errs > 0 {
				return fmt.Errorf("%s warm-up: %d errors, first: %s", t.name, r.errs, r.firstErr)
			}
		}
		fmt.Fprintf(os.Stderr, "# %s: measuring %s at concurrency %d\n", t.name, *dur, *conc)
		cpu0 := procCPU(t.pid)
		r := t.run("run", *conc, *dur, *customers)
		if t.pid != 0 {
			r.cpu = procCPU(t.pid) - cpu0
		}
		if r.errs > 0 {
			return fmt.Errorf("%s: %d errors, first: %s", t.name, r.errs, r.firstErr)
		}
		if err := t.verify(&r); err != nil {
			return err
		}
		results = append(results, r)
	}
	fmt.Printf("\nPOST /v1/conversions, attribution by click id, %d concurrent clients, %s per engine after %s warm-up; %d cores, %s\n\n",
		*conc, *dur, *warm, runtime.NumCPU(), runtime.Version())
	fmt.Println("| Engine | Conversions/s | p50 | p99 | max | server CPU per conversion | server CPU used | attributed | orders stored = 201s |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range results {
		perConv, used := "n/a", "n/a"
		if r.cpu > 0 {
			perConv = fmt.Sprintf("%.0f µs", float64(r.cpu.Microseconds())/float64(r.ok))
			used = fmt.Sprintf("%.2f cores", r.cpu.Seconds()/r.elapsed.Seconds())
		}
		fmt.Printf("| %s | %.0f | %s | %s | %s | %s | %s | %.1f%% | yes (%d) |\n", r.target, float64(r.ok)/r.elapsed.Seconds(),
			ms(r.p50), ms(r.p99), ms(r.worst), perConv, used, 100*float64(r.attributed)/float64(r.ok), r.ok)
	}
	return nil
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

// run posts conversions from conc clients for d and returns the figures.
func (t *target) run(phase string, conc int, d time.Duration, customers int) result {
	var (
		ok, errs, seq atomic.Int64
		firstErr      atomic.Value
		wg            sync.WaitGroup
	)
	lat := make([][]time.Duration, conc)
	start := time.Now()
	stop := start.Add(d)
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			var buf bytes.Buffer
			for time.Now().Before(stop) {
				n := seq.Add(1)
				buf.Reset()
				sub := 2000 + rng.IntN(50000)
				fmt.Fprintf(&buf, `{"order_id":"%s-%s-%d","total":%d.%02d,"subtotal":%d.%02d,"tax":0,"currency":"USD",`+
					`"click_id":"%s","customer":{"email":"c%d@example.com","name":"Customer"},`+
					`"line_items":[{"product_id":"sku-1","name":"Widget","quantity":1,"price":%d.%02d},`+
					`{"product_id":"sku-2","name":"Gadget","quantity":2,"price":0}]}`,
					phase, t.name, n, sub/100, sub%100, sub/100, sub%100, t.clicks[rng.IntN(len(t.clicks))],
					rng.IntN(customers), sub/100, sub%100)
				req, _ := http.NewRequest(http.MethodPost, t.base+"/v1/conversions", bytes.NewReader(buf.Bytes()))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+t.token)
				t0 := time.Now()
				resp, err := t.client.Do(req)
				var status int
				var rb []byte
				if err == nil {
					rb, _ = io.ReadAll(resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				el := time.Since(t0)
				if status == http.StatusCreated {
					ok.Add(1)
					lat[w] = append(lat[w], el)
					continue
				}
				errs.Add(1)
				msg := fmt.Sprintf("status %d: %s", status, rb)
				if err != nil {
					msg = err.Error()
				}
				firstErr.CompareAndSwap(nil, msg)
			}
		}()
	}
	wg.Wait()
	r := result{target: t.name, ok: ok.Load(), errs: errs.Load(), elapsed: time.Since(start)}
	if v := firstErr.Load(); v != nil {
		r.firstErr = v.(string)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	if len(all) > 0 {
		r.p50, r.p99, r.worst = all[len(all)/2], all[len(all)*99/100], all[len(all)-1]
	}
	return r
}

// verify checks the measured run stored exactly one order per 201 and counts
// the attributed ones.
func (t *target) verify(r *result) error {
	db, err := openDB(t.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	var n, attributed int64
	if err := db.QueryRow(`SELECT COUNT(*), COUNT(affiliate_id) FROM orders WHERE order_id LIKE $1`, "run-"+t.name+"-%").
		Scan(&n, &attributed); err != nil {
		return err
	}
	if n != r.ok {
		return fmt.Errorf("%s: %d orders stored for %d answers 201", t.name, n, r.ok)
	}
	r.attributed = attributed
	return nil
}
