// Command affiliates is the issue-3 benchmark tool for GET and POST
// /v1/affiliates (bench/affiliates.sh runs it):
//
//	affiliates seed --db DSN --workspace ID [--affiliates N]
//	affiliates measure --target NAME=URL=KEYFILE=DSN[=PID] [--target …] [--bare URL] [flags]
//
// seed adds N affiliates to the workspace's default program, the way a large
// live program looks: created over the last year (ids and created_at rising
// together, as rows arrive over time), 75% active, 12% pending, 8% suspended
// and 5% terminated with the matching timestamps, a commission override on
// three in ten, names drawn at random from 40 first names × 60 last names, each with its
// affiliate user. Rows go straight into the database, following
// internal/store/migrations: a prepared single-row INSERT per row in one
// transaction on SQLite (modernc.org/sqlite binds numbered parameters by name,
// so multi-row INSERTs get slower per row as they grow) and multi-row INSERTs
// on PostgreSQL. It is a benchmark fixture, deliberately not a product command.
//
// measure drives each target in turn. First the list: for each case (default
// sort, status filter, search) it walks the pages with the API's own cursors to
// find the cursor deep in the list, then requests the first page and the deep
// page, per_page=100, from a fixed number of clients for a fixed time; every
// answer must be 200 with the expected number of items. Then POST
// /v1/affiliates from more clients, each request a new affiliate with a new
// Idempotency-Key; every answer must be 201, and afterwards the database must
// hold exactly one affiliate and one completed idempotency record per 201, and a
// replay of a few keys must answer the stored response with Idempotent-Replayed.
// With --bare, a bare net/http handler (bench/bare) is measured at the read
// concurrency before each target, as a reference for what the shared machine
// allows. It prints one Markdown table: requests/s, p50, p99, max and the
// server's CPU per request.
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
	"net/url"
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
		fmt.Fprintln(os.Stderr, "usage: affiliates seed|measure [flags]")
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
		fmt.Fprintln(os.Stderr, "affiliates:", err)
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

var (
	firstNames = strings.Fields(`Olivia Liam Emma Noah Amelia Oliver Sophia Elijah Charlotte James Ava William
		Isabella Benjamin Mia Lucas Evelyn Henry Harper Theodore Luna Jack Camila Levi Gianna Alexander Elizabeth
		Jackson Eleanor Mateo Ella Daniel Abigail Michael Sofia Mason Avery Sebastian Scarlett Ethan`)
	lastNames = strings.Fields(`Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez
		Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez
		Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams
		Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz
		Edwards Collins Reyes`)
)

// affRow is one seeded affiliate.
type affRow struct {
	name, email, code, status       string
	rate                            any // int64 basis points or nil
	approved, suspended, terminated any // int64 µs or nil
	created                         int64
}

// seedRow returns the i-th affiliate. It is a function of i only, so the
// measure command can name rows without reading them.
func seedRow(i int, now time.Time, n int) affRow {
	rng := rand.New(rand.NewPCG(uint64(i), 3))
	// Names drawn at random, not in runs: a search then finds its matches
	// spread through the list, as in a real program.
	first, last := firstNames[rng.IntN(len(firstNames))], lastNames[rng.IntN(len(lastNames))]
	year := int64(365 * 24 * time.Hour / time.Microsecond)
	created := now.UnixMicro() - year + year*int64(i)/int64(n) // rising with the id
	r := affRow{name: first + " " + last, email: strings.ToLower(fmt.Sprintf("%s.%s.%d@example.com", first, last, i)),
		code: fmt.Sprintf("BN%06d", i), created: created}
	switch p := rng.IntN(100); {
	case p < 75:
		r.status, r.approved = "active", created+3600e6
	case p < 87:
		r.status = "pending"
	case p < 95:
		r.status, r.approved, r.suspended = "suspended", created+3600e6, created+7200e6
	default:
		r.status, r.approved, r.terminated = "terminated", created+3600e6, created+7200e6
	}
	if rng.IntN(10) < 3 {
		r.rate = int64(500 * (1 + rng.IntN(5)))
	}
	return r
}

func seedCmd(args []string) error {
	fs := flag.NewFlagSet("seed", flag.ExitOnError)
	dsn := fs.String("db", "", "database: postgres:// URL or SQLite file")
	wsID := fs.Int64("workspace", 1, "workspace id")
	n := fs.Int("affiliates", 100000, "affiliates to add")
	_ = fs.Parse(args)
	db, err := openDB(*dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	start := time.Now()
	now := start.UTC()

	var prog int64
	if err := db.QueryRowContext(ctx, `SELECT id FROM programs WHERE workspace_id = $1 AND is_default`, *wsID).Scan(&prog); err != nil {
		return fmt.Errorf("default program: %w", err)
	}
	rows := make([]affRow, *n)
	for i := range rows {
		rows[i] = seedRow(i, now, *n)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if isPostgres(*dsn) {
		err = seedPostgres(ctx, tx, *wsID, prog, rows)
	} else {
		err = seedSQLite(ctx, tx, *wsID, prog, rows)
	}
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	// Fresh planner statistics, as a live database has them.
	if isPostgres(*dsn) {
		_, err = db.ExecContext(ctx, `VACUUM ANALYZE affiliates`)
		if err == nil {
			_, err = db.ExecContext(ctx, `VACUUM ANALYZE affiliate_users`)
		}
	} else {
		_, err = db.ExecContext(ctx, `ANALYZE`)
	}
	fmt.Fprintf(os.Stderr, "# seeded %d affiliates in %s\n", *n, time.Since(start).Round(time.Millisecond))
	return err
}

const affInsert = `INSERT INTO affiliates (workspace_id, program_id, affiliate_user_id, referral_code, status, commission_rate,
	name, email, approved_at, suspended_at, terminated_at, created_at, updated_at) VALUES `

func seedSQLite(ctx context.Context, tx *sql.Tx, wsID, prog int64, rows []affRow) error {
	user, err := tx.PrepareContext(ctx, `INSERT INTO affiliate_users (workspace_id, name, email, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4)`)
	if err != nil {
		return err
	}
	defer user.Close()
	aff, err := tx.PrepareContext(ctx, affInsert+`($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)`)
	if err != nil {
		return err
	}
	defer aff.Close()
	for _, r := range rows {
		res, err := user.ExecContext(ctx, wsID, r.name, r.email, r.created)
		if err != nil {
			return err
		}
		uid, err := res.LastInsertId()
		if err != nil {
			return err
		}
		if _, err := aff.ExecContext(ctx, wsID, prog, uid, r.code, r.status, r.rate, r.name, r.email,
			r.approved, r.suspended, r.terminated, r.created); err != nil {
			return err
		}
	}
	return nil
}

// seedPostgres inserts 2,000 rows per statement (13 parameters a row, under
// PostgreSQL's 65,535).
func seedPostgres(ctx context.Context, tx *sql.Tx, wsID, prog int64, rows []affRow) error {
	const chunk = 2000
	for lo := 0; lo < len(rows); lo += chunk {
		part := rows[lo:min(lo+chunk, len(rows))]
		var q strings.Builder
		q.WriteString(`INSERT INTO affiliate_users (workspace_id, name, email, created_at, updated_at) VALUES `)
		args := make([]any, 0, len(part)*4)
		for j, r := range part {
			if j > 0 {
				q.WriteByte(',')
			}
			fmt.Fprintf(&q, "($%d,$%d,$%d,$%d,$%d)", 4*j+1, 4*j+2, 4*j+3, 4*j+4, 4*j+4)
			args = append(args, wsID, r.name, r.email, r.created)
		}
		q.WriteString(` RETURNING id, email`)
		res, err := tx.QueryContext(ctx, q.String(), args...)
		if err != nil {
			return err
		}
		users := make(map[string]int64, len(part))
		for res.Next() {
			var id int64
			var email string
			if err := res.Scan(&id, &email); err != nil {
				res.Close()
				return err
			}
			users[email] = id
		}
		res.Close()
		if err := res.Err(); err != nil {
			return err
		}
		q.Reset()
		q.WriteString(affInsert)
		args = args[:0]
		const cols = 12
		for j, r := range part {
			if j > 0 {
				q.WriteByte(',')
			}
			q.WriteByte('(')
			for k := 1; k <= cols; k++ {
				fmt.Fprintf(&q, "$%d,", cols*j+k)
			}
			fmt.Fprintf(&q, "$%d)", cols*j+cols)
			args = append(args, wsID, prog, users[r.email], r.code, r.status, r.rate, r.name, r.email,
				r.approved, r.suspended, r.terminated, r.created)
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// measure

type target struct {
	name, base, keyFile, dsn string
	pid                      int // the server's process id, for its CPU time; 0: unknown
	token                    string
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

// listCase is one GET /v1/affiliates query, measured on its first page and on
// a page deep in it.
type listCase struct {
	label string
	query string // filters, without per_page and cursor
	// deep is where the deep page starts: this many rows, or, when below 1, this
	// fraction of the matching rows.
	deep float64
}

type result struct {
	label           string
	ok, errs        int64
	elapsed         time.Duration
	p50, p99, worst time.Duration
	firstErr        string
	cpu             time.Duration // the server's CPU time during the run; 0: unknown
	conc            int
}

func measureCmd(args []string) error {
	fs := flag.NewFlagSet("measure", flag.ExitOnError)
	var ts targets
	fs.Var(&ts, "target", "NAME=URL=KEYFILE=DSN[=PID] (repeatable); with the server's PID its CPU time is reported")
	bare := fs.String("bare", "", "URL of a bare net/http handler to measure before each target (optional)")
	conc := fs.Int("c", 4, "concurrent clients for the list cases")
	dur := fs.Duration("d", 10*time.Second, "measured duration per list case")
	postConc := fs.Int("post-c", 50, "concurrent clients for POST /v1/affiliates")
	postDur := fs.Duration("post-d", 15*time.Second, "measured duration of POST /v1/affiliates")
	warm := fs.Duration("warmup", 2*time.Second, "unmeasured load before each measurement")
	n := fs.Int("affiliates", 100000, "affiliates seeded (where the deep page starts)")
	only := fs.String("only", "", "list or post: measure only those cases")
	match := fs.String("match", "", "measure only the list cases whose label contains this")
	_ = fs.Parse(args)
	if len(ts) == 0 {
		return errors.New("no --target")
	}
	// The rare search is one seeded e-mail: every row must be checked to find
	// there is no other, the worst case of a substring search.
	rareIdx := *n * 7 / 10
	rare := seedRow(rareIdx, time.Now(), *n).email
	rare = rare[:strings.IndexByte(rare, '@')]
	cases := []listCase{
		{label: "default sort (created_at desc)", query: "", deep: float64(*n) * 0.9},
		{label: "status=active", query: "status=active", deep: 0.9},
		{label: "sort=referral_code&direction=asc", query: "sort=referral_code&direction=asc", deep: 0.9},
		{label: "search=garcia (1 in 60)", query: "search=garcia", deep: 0.9},
		{label: "search=garcia&status=pending", query: "search=garcia&status=pending", deep: 0.9},
		{label: "search=" + rare + " (1 row)", query: "search=" + url.QueryEscape(rare), deep: 0},
	}
	var results []result
	for _, t := range ts {
		t.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *postConc * 2, MaxConnsPerHost: *postConc * 2}}
		if err := t.prepare(); err != nil {
			return err
		}
		if *bare != "" && *only != "post" {
			b := &target{name: "bare", base: *bare, client: t.client}
			r, err := b.measureGet("bare net/http handler (reference, before "+t.name+")", *bare, -1, *conc, *dur, *warm)
			if err != nil {
				return err
			}
			results = append(results, r)
		}
		for _, c := range cases {
			if *only == "post" {
				break
			}
			if !strings.Contains(c.label, *match) {
				continue
			}
			first := t.base + "/v1/affiliates?per_page=100"
			if c.query != "" {
				first += "&" + c.query
			}
			cursor, total, skipped, took, err := t.walk(first, c.deep)
			if err != nil {
				return fmt.Errorf("%s %s: %w", t.name, c.label, err)
			}
			fmt.Fprintf(os.Stderr, "# %s: %s: %d rows; walked %d pages in %s\n", t.name, c.label, total, skipped/100,
				took.Round(time.Millisecond))
			want := min(100, total)
			r, err := t.measureGet(fmt.Sprintf("%s: first page, %s", t.name, c.label), first, want, *conc, *dur, *warm)
			if err != nil {
				return err
			}
			results = append(results, r)
			if cursor == "" {
				continue
			}
			r, err = t.measureGet(fmt.Sprintf("%s: page after row %d of %d, %s", t.name, skipped, total, c.label),
				first+"&cursor="+cursor, min(100, total-skipped), *conc, *dur, *warm)
			if err != nil {
				return err
			}
			results = append(results, r)
		}
		if *only == "list" {
			continue
		}
		r, err := t.measurePost(*postConc, *postDur, *warm)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	fmt.Printf("\nper_page=100 from a workspace of %d affiliates; list cases %s each at %d clients, POST %s at %d clients, after %s warm-up; %d cores, %s\n\n",
		*n, *dur, *conc, *postDur, *postConc, *warm, runtime.NumCPU(), runtime.Version())
	fmt.Println("| Case | Clients | Requests/s | p50 | p99 | max | server CPU per request |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		cpu := "n/a"
		if r.cpu > 0 {
			cpu = fmt.Sprintf("%.2f ms", float64(r.cpu.Microseconds())/1000/float64(r.ok))
		}
		fmt.Printf("| %s | %d | %.0f | %s | %s | %s | %s |\n", r.label, r.conc, float64(r.ok)/r.elapsed.Seconds(),
			ms(r.p50), ms(r.p99), ms(r.worst), cpu)
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

// prepare exchanges the key for a token.
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
	return nil
}

type listPage struct {
	Data struct {
		Items []struct {
			ID int64 `json:"id"`
		} `json:"items"`
		Meta struct {
			NextCursor string `json:"next_cursor"`
			HasMore    bool   `json:"has_more"`
		} `json:"meta"`
	} `json:"data"`
}

func (t *target) get(u string) (int, []byte, error) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, b, err
}

// walk pages through the whole list from first with the API's cursors,
// checking that no id repeats, and returns the cursor after the deep row (a
// multiple of 100), the number of rows and that row's position. deep < 1 is a
// fraction of the rows; 0 asks for no deep page.
func (t *target) walk(first string, deep float64) (cursor string, total, skipped int, took time.Duration, err error) {
	start := time.Now()
	seen := map[int64]bool{}
	var cursors []string
	u := first
	for {
		status, b, err := t.get(u)
		if err != nil {
			return "", 0, 0, 0, err
		}
		if status != http.StatusOK {
			return "", 0, 0, 0, fmt.Errorf("GET %s: %d %s", u, status, b)
		}
		var p listPage
		if err := json.Unmarshal(b, &p); err != nil {
			return "", 0, 0, 0, err
		}
		for _, it := range p.Data.Items {
			if seen[it.ID] {
				return "", 0, 0, 0, fmt.Errorf("affiliate %d twice while paging", it.ID)
			}
			seen[it.ID] = true
		}
		if !p.Data.Meta.HasMore {
			break
		}
		cursors = append(cursors, p.Data.Meta.NextCursor) // cursors[k]: after row 100(k+1)
		u = first + "&cursor=" + p.Data.Meta.NextCursor
	}
	total = len(seen)
	at := int(deep)
	if deep > 0 && deep < 1 {
		at = int(deep * float64(total))
	}
	if k := at/100 - 1; at > 0 && k >= 0 && k < len(cursors) {
		return cursors[k], total, 100 * (k + 1), time.Since(start), nil
	}
	return "", total, 0, time.Since(start), nil
}

// run calls do from conc clients for d and collects the latencies of the
// calls that succeeded.
func run(conc int, d time.Duration, do func(w int, rng *rand.Rand) (bool, string)) result {
	var (
		ok, errs atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
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
				good, msg := do(w, rng)
				el := time.Since(t0)
				if good {
					ok.Add(1)
					lat[w] = append(lat[w], el)
					continue
				}
				errs.Add(1)
				firstErr.CompareAndSwap(nil, msg)
			}
		}()
	}
	wg.Wait()
	r := result{ok: ok.Load(), errs: errs.Load(), elapsed: time.Since(start), conc: conc}
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

// measureGet requests u from conc clients; every answer must be 200 with want
// items (want < 0: any body).
func (t *target) measureGet(label, u string, want, conc int, d, warm time.Duration) (result, error) {
	do := func(int, *rand.Rand) (bool, string) {
		status, b, err := t.get(u)
		if err != nil {
			return false, err.Error()
		}
		if status != http.StatusOK {
			return false, fmt.Sprintf("status %d: %s", status, b)
		}
		// One referral_code per item: cheaper for the client, which shares the
		// machine with the server, than decoding the page.
		if want >= 0 && bytes.Count(b, []byte(`"referral_code":`)) != want {
			return false, fmt.Sprintf("want %d items: %.200s", want, b)
		}
		return true, ""
	}
	if warm > 0 {
		if r := run(conc, warm, do); r.errs > 0 {
			return r, fmt.Errorf("%s warm-up: %d errors, first: %s", label, r.errs, r.firstErr)
		}
	}
	fmt.Fprintf(os.Stderr, "# %s\n", label)
	cpu0 := procCPU(t.pid)
	r := run(conc, d, do)
	if t.pid != 0 {
		r.cpu = procCPU(t.pid) - cpu0
	}
	r.label = label
	if r.errs > 0 {
		return r, fmt.Errorf("%s: %d errors, first: %s", label, r.errs, r.firstErr)
	}
	return r, nil
}

// post creates one affiliate under its own Idempotency-Key.
func (t *target) post(key, email string) (int, http.Header, []byte, error) {
	body := fmt.Sprintf(`{"name":"Posted Affiliate","email":%q,"commission_rate":12.5,"notes":"bench"}`, email)
	req, _ := http.NewRequest(http.MethodPost, t.base+"/v1/affiliates", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+t.token)
	req.Header.Set("Idempotency-Key", key)
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header, b, err
}

// measurePost creates affiliates from conc clients, each request with a new
// Idempotency-Key, then checks the database and a few replays.
func (t *target) measurePost(conc int, d, warm time.Duration) (result, error) {
	var seq atomic.Int64
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	phase := "warm"
	do := func(int, *rand.Rand) (bool, string) {
		n := seq.Add(1)
		id := fmt.Sprintf("%s-%s-%s-%d", phase, t.name, runID, n)
		status, _, b, err := t.post("bench-"+id, "post-"+id+"@example.com")
		if err != nil {
			return false, err.Error()
		}
		if status != http.StatusCreated {
			return false, fmt.Sprintf("status %d: %s", status, b)
		}
		return true, ""
	}
	label := t.name + ": POST /v1/affiliates, a new Idempotency-Key each"
	if warm > 0 {
		if r := run(conc, warm, do); r.errs > 0 {
			return r, fmt.Errorf("%s warm-up: %d errors, first: %s", label, r.errs, r.firstErr)
		}
	}
	phase = "run"
	seq.Store(0)
	fmt.Fprintf(os.Stderr, "# %s\n", label)
	cpu0 := procCPU(t.pid)
	r := run(conc, d, do)
	if t.pid != 0 {
		r.cpu = procCPU(t.pid) - cpu0
	}
	r.label = label
	if r.errs > 0 {
		return r, fmt.Errorf("%s: %d errors, first: %s", label, r.errs, r.firstErr)
	}
	prefix := fmt.Sprintf("run-%s-%s-", t.name, runID)
	db, err := openDB(t.dsn)
	if err != nil {
		return r, err
	}
	defer db.Close()
	var affs, keys int64
	if err := db.QueryRow(`SELECT COUNT(*) FROM affiliates WHERE email LIKE $1`, "post-"+prefix+"%").Scan(&affs); err != nil {
		return r, err
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM idempotency_keys WHERE key LIKE $1 AND status = 201`, "bench-"+prefix+"%").Scan(&keys); err != nil {
		return r, err
	}
	if affs != r.ok || keys != r.ok {
		return r, fmt.Errorf("%s: %d answers 201, but %d affiliates and %d completed idempotency records", t.name, r.ok, affs, keys)
	}
	// A replay answers the stored response and creates nothing.
	for _, n := range []int64{1, r.ok / 2, r.ok} {
		id := fmt.Sprintf("%s%d", prefix, n)
		status, h, b, err := t.post("bench-"+id, "post-"+id+"@example.com")
		if err != nil {
			return r, err
		}
		if status != http.StatusCreated || h.Get("Idempotent-Replayed") != "true" || !bytes.Contains(b, []byte("post-"+id)) {
			return r, fmt.Errorf("%s: replay of %s: %d %s %s", t.name, id, status, h.Get("Idempotent-Replayed"), b)
		}
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM affiliates WHERE email LIKE $1`, "post-"+prefix+"%").Scan(&affs); err != nil {
		return r, err
	}
	if affs != r.ok {
		return r, fmt.Errorf("%s: replays created affiliates", t.name)
	}
	fmt.Fprintf(os.Stderr, "# %s: %d created = %d affiliates = %d completed idempotency records; 3 replays answered the stored response\n",
		t.name, r.ok, affs, keys)
	return r, nil
}
