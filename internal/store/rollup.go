package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// Daily rollups (migration 00030), kept in the transaction of the events they
// count. A write path creates a rollup on its transaction, adds what each
// event (or each change of an order) contributes, and flushes it last, just
// before the commit: one upsert per key per transaction, so a batch of 50
// clicks through one link costs one row update per table, not 50.
//
// Lock order (PostgreSQL): a writer first takes KEY SHARE on the
// workspace's rollup_state row (read for the time zone), then, at flush, the
// rollup rows in one sorted order per table and the tables in one order, so
// concurrent writers never deadlock on rollups. A rebuild takes the
// rollup_state row FOR UPDATE, so it waits for the writers in flight and
// they wait for it. Flushing last keeps the row locks only for the commit.
// The click batches of PostgreSQL may take the KEY SHARE without reading the
// zone, from a cache, in a statement that fails the batch if the zone is not
// the cached one (checkRollupZonesPG in click.go).

// rollupShards spreads a day's workspace totals over this many rows on
// PostgreSQL, where concurrent transactions would otherwise queue on one row
// until each other's commit: with 32 concurrent conversions, 64 rows leave
// about one in three waiting, 16 nearly all of them. SQLite has one writer,
// so one row a day is enough there (and fewer rows are faster to sum).
func (d Dialect) rollupShards() int {
	if d.IsPostgres() {
		return 64
	}
	return 1
}

// dimShards spreads a rollup_daily key over this many rows on PostgreSQL:
// concurrent conversions of one affiliate would otherwise wait for each
// other's commit on its row (the conversion benchmark's 32 callers over 100
// affiliates spent most of their time so). One row on SQLite.
func (d Dialect) dimShards() int {
	if d.IsPostgres() {
		return 8
	}
	return 1
}

// countCols are the counter columns in the order of heldsway.Counts.Fields.
var countCols = []string{"clicks", "events", "pageviews", "sessions", "product_views", "add_to_carts",
	"remove_from_carts", "checkouts", "thank_you_views", "conversions", "revenue", "commission_pending",
	"commission_approved", "commission_paid"}

// orderCountCols are the counters orders change: the last five of countCols.
var orderCountCols = countCols[orderCol0:]

// orderCol0 is the index of conversions, the first order counter, in
// countCols (and Counts.Fields).
const orderCol0 = 9

// dimKey is a row of rollup_daily. The write paths add at span 0 (the day);
// flush writes each change at every span of rollupSpans.
type dimKey struct {
	ws              int64
	span            int
	day             heldsway.Day
	prog, aff, link int64
	cur             string
	shard           int
}

type totKey struct {
	ws    int64
	day   heldsway.Day
	shard int
	cur   string
}

// sessKey is a session seen on a day; aff 0 (and prog, link 0) is the
// workspace total's marker, other values the dimensions of rollup_daily.
type sessKey struct {
	ws              int64
	day             heldsway.Day
	session         string
	prog, aff, link int64
	shard           int // the workspace total's shard, for the marker
}

type pageKey struct {
	ws              int64
	day             heldsway.Day
	host, path      string
	prog, aff, link int64
}

type prodKey struct {
	ws              int64
	day             heldsway.Day
	product         string
	prog, aff, link int64
}

type prodVal struct {
	name                 string
	views, adds, removes int64
}

func cmpDim(a, b dimKey) int {
	return cmp.Or(cmp.Compare(a.ws, b.ws), cmp.Compare(a.span, b.span), cmp.Compare(a.day, b.day), cmp.Compare(a.prog, b.prog),
		cmp.Compare(a.aff, b.aff), cmp.Compare(a.link, b.link), cmp.Compare(a.cur, b.cur), cmp.Compare(a.shard, b.shard))
}

func cmpTot(a, b totKey) int {
	return cmp.Or(cmp.Compare(a.ws, b.ws), cmp.Compare(a.day, b.day), cmp.Compare(a.shard, b.shard), cmp.Compare(a.cur, b.cur))
}

func cmpSess(a, b sessKey) int {
	return cmp.Or(cmp.Compare(a.ws, b.ws), cmp.Compare(a.day, b.day), cmp.Compare(a.session, b.session),
		cmp.Compare(a.prog, b.prog), cmp.Compare(a.aff, b.aff), cmp.Compare(a.link, b.link))
}

func cmpPage(a, b pageKey) int {
	return cmp.Or(cmp.Compare(a.ws, b.ws), cmp.Compare(a.aff, b.aff), cmp.Compare(a.day, b.day), cmp.Compare(a.host, b.host),
		cmp.Compare(a.path, b.path), cmp.Compare(a.prog, b.prog), cmp.Compare(a.link, b.link))
}

func cmpProd(a, b prodKey) int {
	return cmp.Or(cmp.Compare(a.ws, b.ws), cmp.Compare(a.aff, b.aff), cmp.Compare(a.day, b.day), cmp.Compare(a.product, b.product),
		cmp.Compare(a.prog, b.prog), cmp.Compare(a.link, b.link))
}

// rollupSpans are the block lengths rollup_daily keeps, largest first.
var rollupSpans = []int{64, 16, 4, 1}

// epochDay numbers a day: days since 1970-01-01.
func epochDay(d heldsway.Day) int64 { return d.Date().Unix() / 86400 }

func dayOfEpoch(n int64) heldsway.Day { return heldsway.DayFromDate(time.Unix(n*86400, 0).UTC()) }

// spanStart is the first day of the span-day block holding d.
func spanStart(d heldsway.Day, span int) heldsway.Day {
	if span == 1 {
		return d
	}
	n := epochDay(d)
	return dayOfEpoch(n - n%int64(span))
}

// block is one row range of rollup_daily: span days from start.
type block struct {
	span  int
	start heldsway.Day
}

// blocks covers [from, to] with the fewest aligned blocks, greedily from
// from: the largest span that starts there and ends by to.
func blocks(from, to heldsway.Day) []block {
	var out []block
	for n, end := epochDay(from), epochDay(to); n <= end; {
		for _, s := range rollupSpans {
			if n%int64(s) == 0 && n+int64(s)-1 <= end {
				out = append(out, block{s, dayOfEpoch(n)})
				n += int64(s)
				break
			}
		}
	}
	return out
}

// allDims marks the rows of rollup_pages and rollup_products that count
// every event, attributed or not.
const allDims = -1

// sessionShard is the workspace-total shard of a storefront session.
func sessionShard(session string, shards int) int {
	h := fnv.New32a()
	h.Write([]byte(session))
	return int(h.Sum32() % uint32(shards))
}

// orderShard is the workspace-total shard of an order.
func orderShard(orderID int64, shards int) int { return int(orderID % int64(shards)) }

var locations sync.Map // time zone name → *time.Location

// loadLocation is time.LoadLocation, cached. An unknown name (never stored:
// the setting is validated) falls back to UTC.
func loadLocation(name string) *time.Location {
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location)
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		l = time.UTC
	}
	locations.Store(name, l)
	return l
}

// The rollup statements. SQLite runs the single-row forms, prepared on the
// writer connection where the caller can prepare outside its transaction
// (rollupStmts); PostgreSQL sends each table's rows as arrays in one
// statement.
var (
	qRollupState = `SELECT timezone, folded_to FROM rollup_state WHERE workspace_id = $1`
	// A workspace's first event pins its rollups to its current time zone.
	qRollupStateInit = `INSERT INTO rollup_state (workspace_id, timezone)
		VALUES ($1, COALESCE((SELECT timezone FROM workspace_settings WHERE workspace_id = $1), 'UTC'))
		ON CONFLICT (workspace_id) DO NOTHING`
	qRollupStateFold = `UPDATE rollup_state SET folded_to = $1 WHERE workspace_id = $2`
	qRollupDim       = upsertOne("rollup_daily", []string{"workspace_id", "span", "day", "program_id", "affiliate_id", "link_id", "currency", "shard"}, countCols)
	qRollupTot       = upsertOne("rollup_totals", []string{"workspace_id", "day", "shard", "currency"}, countCols)
	qRollupPage      = upsertOne("rollup_pages", []string{"workspace_id", "affiliate_id", "day", "host", "path", "program_id", "link_id"}, []string{"pageviews"})
	// Clicks only (SQLite): the click writer's rows change one counter, so
	// they bind 9 values instead of 22 and update one column; the four span
	// rows of a key go in one statement.
	// Any rows of rollup_daily, four to a statement (SQLite): the span rows of
	// a conversion batch, bound by position.
	qRollupDim4      = upsertRows("rollup_daily", []string{"workspace_id", "span", "day", "program_id", "affiliate_id", "link_id", "currency", "shard"}, countCols, len(rollupSpans))
	qRollupDimClick  = upsertClicks("rollup_daily", []string{"workspace_id", "span", "day", "program_id", "affiliate_id", "link_id", "currency", "shard"}, 1)
	qRollupDimClick4 = upsertClicks("rollup_daily", []string{"workspace_id", "span", "day", "program_id", "affiliate_id", "link_id", "currency", "shard"}, len(rollupSpans))
	qRollupTotClick  = upsertClicks("rollup_totals", []string{"workspace_id", "day", "shard", "currency"}, 1)
	// Order counters only (SQLite): a conversion's or review's rows change
	// the five order counters, so they bind 13 values instead of 22 and set
	// five columns.
	qRollupDimOrder  = upsertRows("rollup_daily", []string{"workspace_id", "span", "day", "program_id", "affiliate_id", "link_id", "currency", "shard"}, orderCountCols, 1)
	qRollupDimOrder4 = upsertRows("rollup_daily", []string{"workspace_id", "span", "day", "program_id", "affiliate_id", "link_id", "currency", "shard"}, orderCountCols, len(rollupSpans))
	qRollupProdHead  = `INSERT INTO rollup_products (workspace_id, day, product_id, program_id, affiliate_id, link_id,
		product_name, product_views, add_to_carts, remove_from_carts) `
	qRollupSession = `INSERT INTO rollup_sessions (workspace_id, day, session_id, program_id, affiliate_id, link_id)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`
	qRollupDimPG = upsertArrays("rollup_daily", []string{"workspace_id", "span", "day", "program_id", "affiliate_id", "link_id", "currency", "shard"},
		[]string{"bigint", "integer", "integer", "bigint", "bigint", "bigint", "text", "integer"}, countCols)
	qRollupTotPG = upsertArrays("rollup_totals", []string{"workspace_id", "day", "shard", "currency"},
		[]string{"bigint", "integer", "integer", "text"}, countCols)
	// The click batch's rows add to clicks only: 9 and 5 arrays rather than
	// 22 and 18, and one column updated (PostgreSQL).
	qRollupDimClicksPG = upsertArrays("rollup_daily", []string{"workspace_id", "span", "day", "program_id", "affiliate_id", "link_id", "currency", "shard"},
		[]string{"bigint", "integer", "integer", "bigint", "bigint", "bigint", "text", "integer"}, []string{"clicks"})
	qRollupTotClicksPG = upsertArrays("rollup_totals", []string{"workspace_id", "day", "shard", "currency"},
		[]string{"bigint", "integer", "integer", "text"}, []string{"clicks"})
	qRollupPagePG = upsertArrays("rollup_pages", []string{"workspace_id", "affiliate_id", "day", "host", "path", "program_id", "link_id"},
		[]string{"bigint", "bigint", "integer", "text", "text", "bigint", "bigint"}, []string{"pageviews"})
	qRollupSessionPG = `INSERT INTO rollup_sessions (workspace_id, day, session_id, program_id, affiliate_id, link_id)
		SELECT * FROM unnest($1::bigint[], $2::integer[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[])
		ON CONFLICT DO NOTHING RETURNING workspace_id, day, session_id, program_id, affiliate_id, link_id`
)

// qRollupProd is the products upsert; the name kept is the greatest in
// byte order on both engines (PostgreSQL compares with the "C" collation).
func (d Dialect) qRollupProd() string {
	values := `VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`
	collate := ""
	if d.IsPostgres() {
		values = `SELECT * FROM unnest($1::bigint[], $2::integer[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[],
			$7::text[], $8::bigint[], $9::bigint[], $10::bigint[])`
		collate = ` COLLATE "C"`
	}
	return qRollupProdHead + values + ` ON CONFLICT (workspace_id, affiliate_id, day, product_id, program_id, link_id) DO UPDATE SET
		product_views = rollup_products.product_views + excluded.product_views,
		add_to_carts = rollup_products.add_to_carts + excluded.add_to_carts,
		remove_from_carts = rollup_products.remove_from_carts + excluded.remove_from_carts,
		product_name = CASE WHEN excluded.product_name` + collate + ` > rollup_products.product_name` + collate + `
			THEN excluded.product_name ELSE rollup_products.product_name END`
}

// keyShare is the lock a writer takes on its workspace's rollup_state row:
// PostgreSQL's weakest row lock, which only a rebuild's FOR UPDATE waits for.
// SQLite has one writer at a time, so it needs none.
func (d Dialect) keyShare() string {
	if d.IsPostgres() {
		return ` FOR KEY SHARE`
	}
	return ``
}

func upsertSet(table string, counters []string) string {
	var b strings.Builder
	for i, c := range counters {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c + " = " + table + "." + c + " + excluded." + c)
	}
	return b.String()
}

func upsertOne(table string, keys, counters []string) string {
	return `INSERT INTO ` + table + ` (` + strings.Join(keys, ", ") + `, ` + strings.Join(counters, ", ") + `) VALUES ` +
		valuesRows(1, len(keys)+len(counters), true) + ` ON CONFLICT (` + strings.Join(keys, ", ") + `) DO UPDATE SET ` +
		upsertSet(table, counters)
}

// upsertRows is the upsert of n rows with anonymous parameters: SQLite binds
// them by position, where numbered ones are looked up by name.
func upsertRows(table string, keys, counters []string, n int) string {
	return `INSERT INTO ` + table + ` (` + strings.Join(keys, ", ") + `, ` + strings.Join(counters, ", ") + `) VALUES ` +
		valuesRows(n, len(keys)+len(counters), false) + ` ON CONFLICT (` + strings.Join(keys, ", ") + `) DO UPDATE SET ` + upsertSet(table, counters)
}

// upsertClicks is the upsert of n rows that add to the clicks counter only,
// with anonymous parameters (SQLite binds them by position).
func upsertClicks(table string, keys []string, n int) string {
	return `INSERT INTO ` + table + ` (` + strings.Join(keys, ", ") + `, clicks) VALUES ` + valuesRows(n, len(keys)+1, false) +
		` ON CONFLICT (` + strings.Join(keys, ", ") + `) DO UPDATE SET clicks = ` + table + `.clicks + excluded.clicks`
}

func upsertArrays(table string, keys, keyTypes, counters []string) string {
	ph := make([]string, 0, len(keys)+len(counters))
	for i, t := range keyTypes {
		ph = append(ph, "$"+strconv.Itoa(i+1)+"::"+t+"[]")
	}
	for i := range counters {
		ph = append(ph, "$"+strconv.Itoa(len(keys)+i+1)+"::bigint[]")
	}
	return `INSERT INTO ` + table + ` (` + strings.Join(keys, ", ") + `, ` + strings.Join(counters, ", ") + `) SELECT * FROM unnest(` +
		strings.Join(ph, ", ") + `) ON CONFLICT (` + strings.Join(keys, ", ") + `) DO UPDATE SET ` + upsertSet(table, counters)
}

// rollupQueries are the statements SQLite prepares on the writer connection.
func (s *Store) rollupQueries() []string {
	return []string{qRollupState + s.Dialect.keyShare(), qRollupStateInit, qRollupStateFold, qRollupDim, qRollupTot, qRollupPage,
		s.Dialect.qRollupProd(), qRollupSession, qRollupDimClick, qRollupDimClick4, qRollupTotClick, qRollupDim4,
		qRollupDimOrder, qRollupDimOrder4}
}

// rollupStmts prepares the rollup statements on the writer connection (nil on
// PostgreSQL). Like writerStmt it must run outside any transaction.
func (s *Store) rollupStmts(ctx context.Context) (map[string]*sql.Stmt, error) {
	return s.preparedSet(ctx, "rollup", s.rollupQueries())
}

// rollup accumulates one transaction's changes to the rollups.
type rollup struct {
	s        *Store
	ctx      context.Context
	tx       sqlQuerier           // a *sql.Tx when prepared is set
	prepared map[string]*sql.Stmt // on the writer connection; nil: run the text
	bound    map[string]*sql.Stmt
	// batch, when set, takes PostgreSQL's upserts instead of tx: the caller
	// sends them in one pipeline with the rest of its transaction, and has
	// set locs (nothing may need an answer before the flush).
	batch *pgx.Batch
	// clickShard is the shard of rollup_daily and rollup_totals that click
	// counts go to: one per click batch in flight (see clickShards), so that
	// concurrent batches through one link do not queue on its rows. The rows
	// are read summed over shards, so which one a click lands in is free.
	clickShard int
	locs       map[int64]*time.Location
	// folded holds each workspace's fold watermark, read with its zone
	// (absent: none, every span written; see rollupfold.go).
	folded map[int64]heldsway.Day
	dims   map[dimKey]*heldsway.Counts
	tots   map[totKey]*heldsway.Counts
	sess   map[sessKey]bool
	pages  map[pageKey]int64
	prods  map[prodKey]*prodVal
}

// newRollup starts the rollup changes of tx. prepared may be nil.
func (s *Store) newRollup(ctx context.Context, tx sqlQuerier, prepared map[string]*sql.Stmt) *rollup {
	return &rollup{s: s, ctx: ctx, tx: tx, prepared: prepared, locs: map[int64]*time.Location{},
		folded: map[int64]heldsway.Day{}, dims: map[dimKey]*heldsway.Counts{}, tots: map[totKey]*heldsway.Counts{}}
}

func (r *rollup) stmt(q string) *sql.Stmt {
	st := r.prepared[q]
	if st == nil {
		return nil
	}
	if b := r.bound[q]; b != nil {
		return b
	}
	if r.bound == nil {
		r.bound = map[string]*sql.Stmt{}
	}
	b := r.tx.(*sql.Tx).StmtContext(r.ctx, st)
	r.bound[q] = b
	return b
}

func (r *rollup) exec(q string, args ...any) (sql.Result, error) {
	if st := r.stmt(q); st != nil {
		return st.ExecContext(r.ctx, args...)
	}
	return r.tx.ExecContext(r.ctx, q, args...)
}

// execArrays runs one of PostgreSQL's array upserts, or queues it on the
// rollup's pipeline (see InsertClicks).
func (r *rollup) execArrays(q string, args ...any) error {
	if r.batch != nil {
		r.batch.Queue(q, args...)
		return nil
	}
	_, err := r.tx.ExecContext(r.ctx, q, args...)
	return err
}

func (r *rollup) row(q string, args ...any) *sql.Row {
	if st := r.stmt(q); st != nil {
		return st.QueryRowContext(r.ctx, args...)
	}
	return r.tx.QueryRowContext(r.ctx, q, args...)
}

// loc returns the time zone of the workspace's rollups, pinning it on the
// workspace's first event, and takes the writer's lock on rollup_state.
func (r *rollup) loc(ws int64) (*time.Location, error) {
	if l := r.locs[ws]; l != nil {
		return l, nil
	}
	q := qRollupState + r.s.Dialect.keyShare()
	var (
		tz     string
		folded sql.NullInt64
	)
	err := r.row(q, ws).Scan(&tz, &folded)
	created := false
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := r.exec(qRollupStateInit, ws); err != nil {
			return nil, err
		}
		err = r.row(q, ws).Scan(&tz, &folded)
		created = true
	}
	if err != nil {
		return nil, err
	}
	l := loadLocation(tz)
	if created && !r.s.Dialect.IsPostgres() {
		// A workspace's first event: it has no rollup rows, so its days fold
		// from today on (rollupfold.go).
		today := heldsway.DayOf(r.s.Now(), l)
		if _, err := r.exec(qRollupStateFold, int32(today), ws); err != nil {
			return nil, err
		}
		folded = sql.NullInt64{Int64: int64(today), Valid: true}
	}
	r.locs[ws] = l
	if folded.Valid {
		r.folded[ws] = heldsway.Day(folded.Int64)
	}
	if r.s.Dialect.IsPostgres() {
		r.s.rollupZones.Store(ws, tz)
	}
	return l, nil
}

func (r *rollup) addDim(k dimKey, c heldsway.Counts) {
	if p := r.dims[k]; p != nil {
		p.Add(c)
	} else {
		r.dims[k] = &c
	}
}

func (r *rollup) addTot(k totKey, c heldsway.Counts) {
	if p := r.tots[k]; p != nil {
		p.Add(c)
	} else {
		r.tots[k] = &c
	}
}

// click adds a click.
func (r *rollup) click(c *heldsway.Click) error {
	loc, err := r.loc(c.WorkspaceID)
	if err != nil {
		return err
	}
	day := heldsway.DayOf(c.CreatedAt, loc)
	cc := heldsway.ClickCounts()
	r.addDim(dimKey{ws: c.WorkspaceID, day: day, prog: c.ProgramID, aff: c.AffiliateID, link: c.LinkID, shard: r.clickShard}, cc)
	r.addTot(totKey{c.WorkspaceID, day, r.clickShard, ""}, cc)
	return nil
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// event adds a stored storefront event row.
func (r *rollup) event(e *heldsway.StorefrontEvent) error {
	loc, err := r.loc(e.WorkspaceID)
	if err != nil {
		return err
	}
	day := heldsway.DayOf(e.CreatedAt, loc)
	c := heldsway.StorefrontEventCounts(e.Type)
	aff := deref(e.AffiliateID)
	prog, link := deref(e.ProgramID), deref(e.LinkID)
	if aff == 0 {
		prog, link = 0, 0
	}
	shard := sessionShard(e.SessionID, r.s.Dialect.rollupShards())
	if aff != 0 {
		r.addDim(dimKey{ws: e.WorkspaceID, day: day, prog: prog, aff: aff, link: link,
			shard: sessionShard(e.SessionID, r.s.Dialect.dimShards())}, c)
	}
	r.addTot(totKey{e.WorkspaceID, day, shard, ""}, c)
	switch e.Type {
	case heldsway.EventPageview:
		if r.sess == nil {
			r.sess = map[sessKey]bool{}
		}
		r.sess[sessKey{ws: e.WorkspaceID, day: day, session: e.SessionID, shard: shard}] = true
		if aff != 0 {
			r.sess[sessKey{ws: e.WorkspaceID, day: day, session: e.SessionID, prog: prog, aff: aff, link: link}] = true
		}
		if e.Host != "" {
			if r.pages == nil {
				r.pages = map[pageKey]int64{}
			}
			r.pages[pageKey{e.WorkspaceID, day, e.Host, e.Path, allDims, allDims, allDims}]++
			if aff != 0 {
				r.pages[pageKey{e.WorkspaceID, day, e.Host, e.Path, prog, aff, link}]++
			}
		}
	case heldsway.EventProductView, heldsway.EventAddToCart, heldsway.EventRemoveFromCart:
		if e.ProductID == "" {
			break
		}
		if r.prods == nil {
			r.prods = map[prodKey]*prodVal{}
		}
		r.addProd(prodKey{e.WorkspaceID, day, e.ProductID, allDims, allDims, allDims}, e.ProductName, c)
		if aff != 0 {
			r.addProd(prodKey{e.WorkspaceID, day, e.ProductID, prog, aff, link}, e.ProductName, c)
		}
	}
	return nil
}

func (r *rollup) addProd(k prodKey, name string, c heldsway.Counts) {
	p := r.prods[k]
	if p == nil {
		p = &prodVal{}
		r.prods[k] = p
	}
	p.name = max(p.name, name)
	p.views += c.ProductViews
	p.adds += c.AddToCarts
	p.removes += c.RemoveFromCarts
}

// orderKey is where an order's figures go.
type orderKey struct {
	ws, id          int64
	convertedAt     time.Time
	prog, aff, link int64
	cur             string
}

func orderKeyOf(o *heldsway.Order) orderKey {
	k := orderKey{ws: o.WorkspaceID, id: o.ID, convertedAt: o.ConvertedAt, prog: deref(o.ProgramID), link: deref(o.LinkID), cur: o.Currency}
	if o.Affiliate != nil {
		k.aff = o.Affiliate.ID
	}
	return k
}

// orderDelta adds c (a change of what the order contributes) to the order's
// rows: the dimensions when the order is attributed, and the workspace total.
func (r *rollup) orderDelta(k orderKey, c heldsway.Counts) error {
	if c.IsZero() {
		return nil
	}
	loc, err := r.loc(k.ws)
	if err != nil {
		return err
	}
	day := heldsway.DayOf(k.convertedAt, loc)
	if k.aff != 0 {
		r.addDim(dimKey{ws: k.ws, day: day, prog: k.prog, aff: k.aff, link: k.link, cur: k.cur,
			shard: orderShard(k.id, r.s.Dialect.dimShards())}, c)
	}
	r.addTot(totKey{k.ws, day, orderShard(k.id, r.s.Dialect.rollupShards()), k.cur}, c)
	return nil
}

// orderChange adds the change from before (nil: a new order) to after.
func (r *rollup) orderChange(before, after *heldsway.Order) error {
	c := heldsway.OrderCountsOf(after)
	if before != nil {
		c.Sub(heldsway.OrderCountsOf(before))
	}
	return r.orderDelta(orderKeyOf(after), c)
}

// commissionStatus adds a commission's move from one status to another
// (net unchanged) on an order of status orderStatus.
func (r *rollup) commissionStatus(k orderKey, orderStatus string, net int64, from, to string) error {
	c := heldsway.OrderCounts(orderStatus, 0, 0, []heldsway.CommissionLine{{Status: to, Net: net}})
	c.Sub(heldsway.OrderCounts(orderStatus, 0, 0, []heldsway.CommissionLine{{Status: from, Net: net}}))
	return r.orderDelta(k, c)
}

// flush writes the accumulated changes: the sessions first (they decide
// the sessions counters), then each table in one order, each table's rows
// sorted.
func (r *rollup) flush() error {
	if err := r.flushSessions(); err != nil {
		return err
	}
	pg := r.s.Dialect.IsPostgres()
	// Every day's change goes to the day and to the blocks holding it; from
	// the workspace's fold watermark on, to the day only (rollupfold.go).
	spans := make(map[dimKey]*heldsway.Counts, len(r.dims)*len(rollupSpans))
	for k, c := range r.dims {
		if c.IsZero() {
			continue
		}
		f, ok := r.folded[k.ws]
		dayOnly := ok && k.day >= f
		for _, s := range rollupSpans {
			if dayOnly && s != 1 {
				continue
			}
			k2 := k
			k2.span, k2.day = s, spanStart(k.day, s)
			if p := spans[k2]; p != nil {
				p.Add(*c)
			} else {
				cc := *c
				spans[k2] = &cc
			}
		}
	}
	dims := sortedKeys(spans, cmpDim)
	if len(dims) > 0 {
		if pg {
			clicksOnly := allClicks(dims, spans)
			ws, span, day, prog, aff, link, cur, shard := make([]int64, len(dims)), make([]int32, len(dims)), make([]int32, len(dims)),
				make([]int64, len(dims)), make([]int64, len(dims)), make([]int64, len(dims)), make([]string, len(dims)), make([]int32, len(dims))
			counts := countArrays(len(dims))
			for i, k := range dims {
				ws[i], span[i], day[i], prog[i], aff[i], link[i], cur[i], shard[i] = k.ws, int32(k.span), int32(k.day), k.prog, k.aff, k.link,
					k.cur, int32(k.shard)
				fillCounts(counts, i, spans[k])
			}
			keys := []any{ws, span, day, prog, aff, link, cur, shard}
			q, cols := withCounts(keys, counts, clicksOnly, qRollupDimPG, qRollupDimClicksPG)
			if err := r.execArrays(q, cols...); err != nil {
				return err
			}
		} else if err := r.flushDimsSQLite(dims, spans); err != nil {
			return err
		}
	}
	tots := sortedKeys(r.tots, cmpTot)
	if len(tots) > 0 {
		if pg {
			clicksOnly := allClicks(tots, r.tots)
			ws, day, shard, cur := make([]int64, len(tots)), make([]int32, len(tots)), make([]int32, len(tots)), make([]string, len(tots))
			counts := countArrays(len(tots))
			for i, k := range tots {
				ws[i], day[i], shard[i], cur[i] = k.ws, int32(k.day), int32(k.shard), k.cur
				fillCounts(counts, i, r.tots[k])
			}
			keys := []any{ws, day, shard, cur}
			q, cols := withCounts(keys, counts, clicksOnly, qRollupTotPG, qRollupTotClicksPG)
			if err := r.execArrays(q, cols...); err != nil {
				return err
			}
		} else {
			for _, k := range tots {
				c := r.tots[k]
				if onlyClicks(c) {
					if _, err := r.exec(qRollupTotClick, k.ws, int32(k.day), k.shard, k.cur, c.Clicks); err != nil {
						return err
					}
					continue
				}
				args := append([]any{k.ws, int32(k.day), k.shard, k.cur}, countArgs(c)...)
				if _, err := r.exec(qRollupTot, args...); err != nil {
					return err
				}
			}
		}
	}
	if err := r.flushPages(); err != nil {
		return err
	}
	return r.flushProducts()
}

// onlyClicks reports whether c changes the clicks counter and nothing else.
func onlyClicks(c *heldsway.Counts) bool {
	return c.Clicks != 0 && *c == heldsway.Counts{Clicks: c.Clicks}
}

// clicksCol is the index of clicks in countCols (and Counts.Fields).
const clicksCol = 0

// withCounts appends the counter arrays to the key arrays: the clicks array
// alone, for the clicks-only statement, when every row adds clicks only;
// else all of them, for the full one.
func withCounts(keys []any, counts [][]int64, clicksOnly bool, full, clicks string) (string, []any) {
	if clicksOnly {
		return clicks, append(keys, counts[clicksCol])
	}
	for _, c := range counts {
		keys = append(keys, c)
	}
	return full, keys
}

// allClicks reports whether every change of keys adds to clicks only.
func allClicks[K comparable](keys []K, m map[K]*heldsway.Counts) bool {
	for _, k := range keys {
		if !onlyClicks(m[k]) {
			return false
		}
	}
	return true
}

// flushDimsSQLite upserts rollup_daily rows four to a statement, in the
// sorted order; runs of rows that only add clicks (a click batch's) or only
// change the order counters (a conversion's, a review's) in the statements
// that bind and set only those counters. A statement's overhead, its bound
// values most, was most of a row's cost.
func (r *rollup) flushDimsSQLite(dims []dimKey, spans map[dimKey]*heldsway.Counts) error {
	var args []any
	kind, n := dimAll, 0
	flush := func() error {
		st := dimStmts[kind]
		per := 8 + st.hi - st.lo
		for n > 0 {
			q, m := st.one, 1
			if n >= len(rollupSpans) {
				q, m = st.four, len(rollupSpans)
			}
			if _, err := r.exec(q, args[:m*per]...); err != nil {
				return err
			}
			args, n = args[m*per:], n-m
		}
		args = args[:0]
		return nil
	}
	for _, k := range dims {
		f := spans[k].Fields()
		if kd := dimKindOf(f); kd != kind {
			if err := flush(); err != nil {
				return err
			}
			kind = kd
		}
		args = append(args, k.ws, k.span, int32(k.day), k.prog, k.aff, k.link, k.cur, k.shard)
		st := dimStmts[kind]
		for _, p := range f[st.lo:st.hi] {
			args = append(args, *p)
		}
		n++
	}
	return flush()
}

// The kinds of rollup_daily rows flushDimsSQLite writes with statements of
// their own.
const (
	dimAll = iota
	dimClicks
	dimOrders
)

// dimStmts are each kind's upserts of one and of four rows, and the counters
// they bind: Counts.Fields()[lo:hi].
var dimStmts = [...]struct {
	one, four string
	lo, hi    int
}{
	dimAll:    {qRollupDim, qRollupDim4, 0, len(countCols)},
	dimClicks: {qRollupDimClick, qRollupDimClick4, clicksCol, clicksCol + 1},
	dimOrders: {qRollupDimOrder, qRollupDimOrder4, orderCol0, len(countCols)},
}

// dimKindOf returns the kind of statement a row changing the counters f
// (Counts.Fields) takes.
func dimKindOf(f []*int64) int {
	for i, p := range f[:orderCol0] {
		if i != clicksCol && *p != 0 {
			return dimAll
		}
	}
	orders := slices.ContainsFunc(f[orderCol0:], func(p *int64) bool { return *p != 0 })
	switch {
	case *f[clicksCol] == 0:
		return dimOrders
	case orders:
		return dimAll
	}
	return dimClicks
}

func (r *rollup) flushSessions() error {
	if len(r.sess) == 0 {
		return nil
	}
	keys := sortedKeys(r.sess, cmpSess)
	credit := func(k sessKey) {
		one := heldsway.Counts{Sessions: 1}
		if k.aff == 0 {
			r.addTot(totKey{k.ws, k.day, k.shard, ""}, one)
		} else {
			r.addDim(dimKey{ws: k.ws, day: k.day, prog: k.prog, aff: k.aff, link: k.link,
				shard: sessionShard(k.session, r.s.Dialect.dimShards())}, one)
		}
	}
	if !r.s.Dialect.IsPostgres() {
		for _, k := range keys {
			res, err := r.exec(qRollupSession, k.ws, int32(k.day), k.session, k.prog, k.aff, k.link)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 {
				credit(k)
			}
		}
		return nil
	}
	n := len(keys)
	ws, day, sess, prog, aff, link := make([]int64, n), make([]int32, n), make([]string, n), make([]int64, n), make([]int64, n), make([]int64, n)
	shards := map[sessKey]int{}
	for i, k := range keys {
		ws[i], day[i], sess[i], prog[i], aff[i], link[i] = k.ws, int32(k.day), k.session, k.prog, k.aff, k.link
		k2 := k
		k2.shard = 0
		shards[k2] = k.shard
	}
	if r.batch != nil {
		return errors.New("rollup: sessions need their upsert's answer and cannot be pipelined")
	}
	rows, err := r.tx.QueryContext(r.ctx, qRollupSessionPG, ws, day, sess, prog, aff, link)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k sessKey
		var d int32
		if err := rows.Scan(&k.ws, &d, &k.session, &k.prog, &k.aff, &k.link); err != nil {
			return err
		}
		k.day = heldsway.Day(d)
		k.shard = shards[k]
		credit(k)
	}
	return rows.Err()
}

func (r *rollup) flushPages() error {
	keys := sortedKeys(r.pages, cmpPage)
	if len(keys) == 0 {
		return nil
	}
	if !r.s.Dialect.IsPostgres() {
		for _, k := range keys {
			if _, err := r.exec(qRollupPage, k.ws, k.aff, int32(k.day), k.host, k.path, k.prog, k.link, r.pages[k]); err != nil {
				return err
			}
		}
		return nil
	}
	n := len(keys)
	ws, day, host, path, prog, aff, link, views := make([]int64, n), make([]int32, n), make([]string, n), make([]string, n),
		make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, k := range keys {
		ws[i], day[i], host[i], path[i], prog[i], aff[i], link[i], views[i] = k.ws, int32(k.day), k.host, k.path, k.prog, k.aff, k.link, r.pages[k]
	}
	return r.execArrays(qRollupPagePG, ws, aff, day, host, path, prog, link, views)
}

func (r *rollup) flushProducts() error {
	keys := sortedKeys(r.prods, cmpProd)
	if len(keys) == 0 {
		return nil
	}
	q := r.s.Dialect.qRollupProd()
	if !r.s.Dialect.IsPostgres() {
		for _, k := range keys {
			p := r.prods[k]
			if _, err := r.exec(q, k.ws, int32(k.day), k.product, k.prog, k.aff, k.link, p.name, p.views, p.adds, p.removes); err != nil {
				return err
			}
		}
		return nil
	}
	n := len(keys)
	ws, day, prod, prog, aff, link := make([]int64, n), make([]int32, n), make([]string, n), make([]int64, n), make([]int64, n), make([]int64, n)
	name, views, adds, removes := make([]string, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, k := range keys {
		p := r.prods[k]
		ws[i], day[i], prod[i], prog[i], aff[i], link[i] = k.ws, int32(k.day), k.product, k.prog, k.aff, k.link
		name[i], views[i], adds[i], removes[i] = p.name, p.views, p.adds, p.removes
	}
	return r.execArrays(q, ws, day, prod, prog, aff, link, name, views, adds, removes)
}

// sortedKeys returns the keys of m whose value is not zero, sorted.
func sortedKeys[K comparable, V any](m map[K]V, cmp func(a, b K) int) []K {
	keys := make([]K, 0, len(m))
	for k, v := range m {
		switch x := any(v).(type) {
		case *heldsway.Counts:
			if x.IsZero() {
				continue
			}
		case int64:
			if x == 0 {
				continue
			}
		case *prodVal:
			if x.views == 0 && x.adds == 0 && x.removes == 0 {
				continue
			}
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmp)
	return keys
}

func countArrays(n int) [][]int64 {
	out := make([][]int64, len(countCols))
	for i := range out {
		out[i] = make([]int64, n)
	}
	return out
}

func fillCounts(arrays [][]int64, i int, c *heldsway.Counts) {
	for j, f := range c.Fields() {
		arrays[j][i] = *f
	}
}

func countArgs(c *heldsway.Counts) []any {
	f := c.Fields()
	out := make([]any, len(f))
	for i, p := range f {
		out[i] = *p
	}
	return out
}

// CountColumns returns the counter columns of rollup_daily and rollup_totals
// in the order of heldsway.Counts.Fields, for tools and tests.
func CountColumns() []string { return slices.Clone(countCols) }
