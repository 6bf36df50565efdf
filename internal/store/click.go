package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"errors"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// The click-tracking queries: the redirect's link lookup, the link cache's change
// feed, the click secret and the batched click insert.

// linkTargetCols reads a link with its affiliate, program and workspace. Every
// join stays inside the link's workspace.
const linkTargetCols = `l.workspace_id, w.active, l.id, l.slug, l.destination_url, l.is_active,
	a.id, a.status, a.referral_code, p.id, p.status, p.cookie_days`

const linkTargetFrom = `FROM links l
	JOIN affiliates a ON a.workspace_id = l.workspace_id AND a.id = l.affiliate_id
	JOIN programs p ON p.workspace_id = a.workspace_id AND p.id = a.program_id
	JOIN workspaces w ON w.id = l.workspace_id`

// LinkTargetsBySlug returns every link with the slug, in any workspace (slugs
// are unique per workspace only), ordered by workspace. It reads through the
// links_slug_global index.
func (s *Store) LinkTargetsBySlug(ctx context.Context, slug string) ([]heldsway.LinkTarget, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+linkTargetCols+` `+linkTargetFrom+`
		WHERE l.slug = $1 ORDER BY l.workspace_id`, slug)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []heldsway.LinkTarget
	for rows.Next() {
		var t heldsway.LinkTarget
		if err := rows.Scan(&t.WorkspaceID, &t.WorkspaceActive, &t.LinkID, &t.Slug, &t.DestinationURL, &t.LinkActive,
			&t.AffiliateID, &t.AffiliateStatus, &t.ReferralCode, &t.ProgramID, &t.ProgramStatus, &t.CookieDays); err != nil {
			return nil, unavailable(err)
		}
		out = append(out, t)
	}
	return out, unavailable(rows.Err())
}

// CustomDomains maps every workspace's custom domain (lower-cased) to the
// workspace. The set is small (one per workspace at most), so the redirect
// holds all of it rather than asking per Host header.
func (s *Store) CustomDomains(ctx context.Context) (map[string]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT custom_domain, workspace_id FROM workspace_settings
		WHERE custom_domain IS NOT NULL AND custom_domain <> ''`)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var d string
		var ws int64
		if err := rows.Scan(&d, &ws); err != nil {
			return nil, unavailable(err)
		}
		out[strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))] = ws
	}
	return out, unavailable(rows.Err())
}

// LinkChangesSince lists the links whose row, affiliate, program or workspace has
// updated_at after since, and whether workspace_settings changed. Each branch of
// the UNION starts from its own table's updated_at, so the work is proportional
// to what changed, not to the number of links.
func (s *Store) LinkChangesSince(ctx context.Context, since time.Time) (*heldsway.LinkChanges, error) {
	rows, err := s.r.QueryContext(ctx, `
		SELECT l.id, l.slug FROM links l WHERE l.updated_at > $1
		UNION
		SELECT l.id, l.slug FROM affiliates a
			JOIN links l ON l.workspace_id = a.workspace_id AND l.affiliate_id = a.id
			WHERE a.updated_at > $1
		UNION
		SELECT l.id, l.slug FROM programs p
			JOIN affiliates a ON a.workspace_id = p.workspace_id AND a.program_id = p.id
			JOIN links l ON l.workspace_id = a.workspace_id AND l.affiliate_id = a.id
			WHERE p.updated_at > $1
		UNION
		SELECT l.id, l.slug FROM workspaces w
			JOIN links l ON l.workspace_id = w.id
			WHERE w.updated_at > $1`, ts(since))
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	ch := &heldsway.LinkChanges{}
	for rows.Next() {
		var r heldsway.LinkRef
		if err := rows.Scan(&r.ID, &r.Slug); err != nil {
			return nil, unavailable(err)
		}
		ch.Links = append(ch.Links, r)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM workspace_settings WHERE updated_at > $1`,
		ts(since)).Scan(&n); err != nil {
		return nil, unavailable(err)
	}
	ch.Domains = n > 0
	return ch, nil
}

// ExistingLinks returns which of ids still name a link. The link cache asks
// about the links it holds, because a deleted row leaves no updated_at behind.
func (s *Store) ExistingLinks(ctx context.Context, ids []int64) (map[int64]bool, error) {
	out := make(map[int64]bool, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), 500)
		var b strings.Builder
		args := make([]any, n)
		b.WriteString(`SELECT id FROM links WHERE id IN (`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("$" + strconv.Itoa(i+1))
			args[i] = ids[i]
		}
		b.WriteByte(')')
		rows, err := s.r.QueryContext(ctx, b.String(), args...)
		if err != nil {
			return nil, unavailable(err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, unavailable(err)
			}
			out[id] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, unavailable(err)
		}
		ids = ids[n:]
	}
	return out, nil
}

// InstallationSecret returns the installation's secret called name, creating a
// random 32-byte one if there is none yet. Several nodes may race to create it:
// the first insert wins and everyone reads the winner's value.
func (s *Store) InstallationSecret(ctx context.Context, name string) ([]byte, error) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	var secret []byte
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO installation_secrets (name, secret, created_at)
			VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`, name, b[:], ts(s.Now())); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT secret FROM installation_secrets WHERE name = $1`, name).Scan(&secret)
	})
	if err != nil {
		return nil, err
	}
	if len(secret) < 16 {
		return nil, errors.New("installation secret " + name + " is too short")
	}
	return secret, nil
}

// clickCols are the columns the click writer fills, in insertClicks' order.
const clickCols = `INSERT INTO clicks (workspace_id, link_id, affiliate_id, program_id, click_id, visitor_id,
	ip_hash, user_agent, referrer, landing_query, created_at) VALUES `

// clickColCount is the number of clickCols' columns.
const clickColCount = 11

// clickChunks are the row counts of the multi-row INSERTs SQLite runs: a
// batch is cut into these (largest first), so a batch of any size takes a
// few statements, each prepared once on the writer connection. One row per
// statement costs the database/sql and driver overhead per click, which was
// most of the insert's time.
var clickChunks = []int{64, 16, 4, 1}

// insertClicksSQL holds the INSERT of n rows for each n of clickChunks, with
// anonymous parameters: the driver binds those by position, without looking
// up each parameter's name.
var insertClicksSQL = func() map[int]string {
	m := map[int]string{}
	for _, n := range clickChunks {
		m[n] = insertClicksText(n)
	}
	return m
}()

// clickQueries are the statements the SQLite click batch prepares.
var clickQueries = func() []string {
	out := []string{countClicksSQL}
	for _, n := range clickChunks {
		out = append(out, insertClicksSQL[n])
	}
	return out
}()

func insertClicksText(n int) string { return clickCols + valuesRows(n, clickColCount, false) }

// insertClicksPG inserts a whole batch from one array per column: one statement
// text (so one cached prepared statement) and one round trip for any batch size.
// PostgreSQL only; SQLite has no arrays.
const insertClicksPG = `INSERT INTO clicks (workspace_id, link_id, affiliate_id, program_id, click_id, visitor_id,
	ip_hash, user_agent, referrer, landing_query, created_at)
	SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::text[],
		$7::bytea[], $8::text[], $9::text[], $10::text[], $11::bigint[])`

// countClicksSQL adds a batch's clicks to one link (SQLite). click_count only:
// updated_at is the link caches' change marker, and a click is not a change of
// the link.
const countClicksSQL = `UPDATE links SET click_count = click_count + $1 WHERE workspace_id = $2 AND id = $3`

// countClicksPG adds a batch's clicks to its links' shard rows of link_clicks
// (migration 00042), in the order given: sorted, one lock order for every
// batch.
const countClicksPG = `INSERT INTO link_clicks (workspace_id, link_id, shard, clicks)
	SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::integer[], $4::bigint[])
	ON CONFLICT (workspace_id, link_id, shard) DO UPDATE SET clicks = link_clicks.clicks + excluded.clicks`

func linkCountArrays(counts []linkCount, shard int) []any {
	ws, id, sh, n := make([]int64, len(counts)), make([]int64, len(counts)), make([]int32, len(counts)), make([]int64, len(counts))
	for i, c := range counts {
		ws[i], id[i], sh[i], n[i] = c.ws, c.id, int32(shard), c.n
	}
	return []any{ws, id, sh, n}
}

// writerStmt returns a statement prepared on the writer connection, kept for the
// store's life in wstmts (closed by Close). On SQLite it must be prepared outside
// any transaction: a transaction holds the one writer connection, so preparing
// inside it would wait for itself.
func (s *Store) writerStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.wstmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.w.PrepareContext(context.WithoutCancel(ctx), query)
	if err != nil {
		return nil, unavailable(err)
	}
	if prev, loaded := s.wstmts.LoadOrStore(query, st); loaded {
		st.Close()
		st = prev.(*sql.Stmt)
	}
	return st, nil
}

// InsertClicks writes clicks in one transaction, with their links' click
// counts and daily rollups, so a link's click count always equals its rows in
// clicks. The click writer (internal/track) calls it with a whole batch: group
// commit.
//
// SQLite runs prepared multi-row INSERTs (clickChunks) and adds to
// links.click_count; the clicks reach the rollups through the tailer
// (clickrollup.go). (The redirect's batches go through RecordClicks and the
// click journal instead.) PostgreSQL, where several batches commit at once, sends
// the batch as arrays (unnest) and counts it in one shard of the rollups and
// of link_clicks (takeClickShard), so that concurrent batches through one link
// do not queue on the same rows until each other's commit. When every
// workspace's rollup time zone is cached, the whole transaction goes as one
// pipeline (insertClicksPipelined); else, or if a cached zone turns out
// stale, statement by statement, reading the zones.
func (s *Store) InsertClicks(ctx context.Context, clicks []heldsway.Click) error {
	if len(clicks) == 0 {
		return nil
	}
	if s.Dialect.IsPostgres() {
		linkCounts := linkCounts(clicks)
		shard, pooled := s.takeClickShard()
		if pooled {
			defer func() { s.clickShards <- shard }()
		}
		// A request's Idempotency-Key is claimed by s.tx, in its transaction.
		claim := heldsway.IdempotencyClaimFrom(ctx)
		if locs := s.cachedRollupZones(clicks); locs != nil && (claim == nil || claim.Recorded()) {
			err := s.insertClicksPipelined(ctx, clicks, linkCounts, locs, shard)
			switch {
			case errors.Is(err, errRollupZoneChanged):
				// A rebuild changed a time zone since it was cached: the
				// transaction wrote nothing; run it again reading the zones.
				for ws := range locs {
					s.rollupZones.Delete(ws)
				}
			case err != nil && pgconn.SafeToRetry(err):
				// Nothing reached the server (a pooled connection that had
				// died): run it again on another, as database/sql would.
			default:
				return err
			}
		}
		return s.tx(ctx, func(tx *sql.Tx) error {
			if err := insertClickArrays(ctx, tx, clicks); err != nil {
				return err
			}
			return s.countStoredClicksPG(ctx, tx, clicks, linkCounts, shard)
		})
	}

	clickStmts, err := s.preparedSet(ctx, "clicks", clickQueries)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := insertClickRows(ctx, tx, clickStmts, clicks); err != nil {
			return err
		}
		// the tailer adds the clicks to the rollups (clickrollup.go)
		return countLinkClicksSQLite(ctx, tx, clickStmts, clicks)
	})
}

// takeClickShard returns a shard no other click batch of this store is
// using, to be given back to clickShards, if one is free; else a random one
// (more batches than shards then share some).
func (s *Store) takeClickShard() (shard int, pooled bool) {
	select {
	case i := <-s.clickShards:
		return i, true
	default:
		return mrand.IntN(s.Dialect.dimShards()), false
	}
}

// linkCount is one link's clicks in a batch.
type linkCount struct{ ws, id, n int64 }

// zoneChanged is the text of the error checkRollupZonesPG raises.
const zoneChanged = "heldsway: rollup time zone changed"

// errRollupZoneChanged reports that a pipelined batch found a workspace's
// rollup time zone other than the cached one, and so wrote nothing.
var errRollupZoneChanged = errors.New("store: rollup time zone changed since cached")

// checkRollupZonesPG takes a writer's KEY SHARE lock on each workspace's
// rollup_state row, in the order given (sorted), as rollup.loc would, and
// fails the transaction if a row is missing or holds another time zone than
// the one the batch's days were computed in. The failure is a cast error
// carrying zoneChanged: a pipeline cannot look at an answer before its
// commit, so the check has to abort the transaction itself. Waiting for a
// rebuild's FOR UPDATE, the lock reads the row as the rebuild left it
// (READ COMMITTED re-checks the updated row), so a zone changed meanwhile is
// caught too.
const checkRollupZonesPG = `SELECT CAST(CASE
	WHEN (SELECT s.timezone FROM rollup_state s WHERE s.workspace_id = z.ws FOR KEY SHARE) = z.tz THEN '1'
	ELSE '` + zoneChanged + `' END AS integer)
	FROM unnest($1::bigint[], $2::text[]) AS z(ws, tz)`

// checkRollupZonePG is checkRollupZonesPG for a batch of one workspace, the
// usual case: with scalar parameters PostgreSQL plans it once per connection
// (a generic plan), where the arrays' version was planned again at every
// batch (a custom plan, 125 µs of the serial batch's ~1 ms).
const checkRollupZonePG = `SELECT CAST(CASE
	WHEN (SELECT s.timezone FROM rollup_state s WHERE s.workspace_id = $1 FOR KEY SHARE) = $2::text THEN '1'
	ELSE '` + zoneChanged + `' END AS integer)`

// cachedRollupZones returns the cached rollup time zone of every workspace of
// clicks, or nil if one is not cached.
func (s *Store) cachedRollupZones(clicks []heldsway.Click) map[int64]string {
	out := map[int64]string{}
	for i := range clicks {
		ws := clicks[i].WorkspaceID
		if _, ok := out[ws]; ok {
			continue
		}
		tz, ok := s.rollupZones.Load(ws)
		if !ok {
			return nil
		}
		out[ws] = tz.(string)
	}
	return out
}

// insertClicksPipelined writes a batch on PostgreSQL in one round trip: the
// zone check, the INSERT, the rollup upserts and the link count upsert are
// sent as one pgx pipeline ending in a single Sync, which PostgreSQL runs as
// one implicit transaction: a statement that fails rolls back every one
// before it and skips the rest. The rollup days come from the cached time
// zones; if the check finds one changed, errRollupZoneChanged.
//
// Lock order, as on the serial path: rollup_state (KEY SHARE), the rollup
// rows (sorted), then the link_clicks rows (sorted). The rows a batch updates
// are those of its shard, which no other batch of this node holds meanwhile.
func (s *Store) insertClicksPipelined(ctx context.Context, clicks []heldsway.Click, counts []linkCount, zones map[int64]string, shard int) error {
	b := &pgx.Batch{}
	ws := make([]int64, 0, len(zones))
	for id := range zones {
		ws = append(ws, id)
	}
	slices.Sort(ws)
	tzs := make([]string, len(ws))
	for i, id := range ws {
		tzs[i] = zones[id]
	}
	if len(ws) == 1 {
		b.Queue(checkRollupZonePG, ws[0], tzs[0])
	} else {
		b.Queue(checkRollupZonesPG, ws, tzs)
	}
	b.Queue(insertClicksPG, clickArrays(clicks)...)
	r := s.newRollup(ctx, nil, nil)
	r.batch, r.clickShard = b, shard
	for id, tz := range zones {
		r.locs[id] = loadLocation(tz)
	}
	for i := range clicks {
		if err := r.click(&clicks[i]); err != nil {
			return err
		}
	}
	if err := r.flush(); err != nil {
		return err
	}
	b.Queue(countClicksPG, linkCountArrays(counts, shard)...)

	conn, err := s.w.Conn(ctx)
	if err != nil {
		return unavailable(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		err := pc.SendBatch(ctx, b).Close()
		if err != nil && !pc.IsClosed() && pc.PgConn().TxStatus() != 'I' {
			// Not expected (the implicit transaction ends at the Sync), but a
			// connection must not go back to the pool inside a transaction.
			pc.Close(context.WithoutCancel(ctx))
			return errors.Join(err, driver.ErrBadConn)
		}
		return err
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && strings.Contains(pe.Message, zoneChanged) {
		return errRollupZoneChanged
	}
	return unavailable(err)
}

// insertClickRows inserts clicks through the prepared multi-row INSERTs of
// clickChunks (SQLite).
func insertClickRows(ctx context.Context, tx *sql.Tx, prepared map[string]*sql.Stmt, clicks []heldsway.Click) error {
	args := make([]any, 0, clickChunks[0]*11)
	for _, n := range clickChunks {
		if len(clicks) < n {
			continue
		}
		st := tx.StmtContext(ctx, prepared[insertClicksSQL[n]]) // the writer's one connection has it prepared
		for len(clicks) >= n {
			args = args[:0]
			for i := range n {
				args = clickArgs(args, &clicks[i])
			}
			if _, err := st.ExecContext(ctx, args...); err != nil {
				st.Close()
				return err
			}
			clicks = clicks[n:]
		}
		st.Close()
	}
	return nil
}

// clickArgs appends c's values in clickCols' order.
func clickArgs(args []any, c *heldsway.Click) []any {
	var ip any
	if len(c.IPHash) > 0 {
		ip = c.IPHash
	}
	return append(args, c.WorkspaceID, c.LinkID, c.AffiliateID, c.ProgramID, c.ClickID, c.VisitorID,
		ip, nullStr(c.UserAgent), nullStr(c.Referrer), nullStr(c.LandingQuery), ts(c.CreatedAt))
}

// countStoredClicksPG adds stored clicks to the rollups and their links' counts
// (counts, from linkCounts), in shard, in tx: the serial path's half of a
// PostgreSQL click batch after its INSERT.
func (s *Store) countStoredClicksPG(ctx context.Context, tx *sql.Tx, clicks []heldsway.Click, counts []linkCount, shard int) error {
	r := s.newRollup(ctx, tx, nil)
	r.clickShard = shard
	for i := range clicks {
		if err := r.click(&clicks[i]); err != nil {
			return err
		}
	}
	if err := r.flush(); err != nil {
		return err
	}
	if len(counts) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, countClicksPG, linkCountArrays(counts, shard)...)
	return err
}

func insertClickArrays(ctx context.Context, tx *sql.Tx, clicks []heldsway.Click) error {
	_, err := tx.ExecContext(ctx, insertClicksPG, clickArrays(clicks)...)
	return err
}

// clickArrays are insertClicksPG's arguments: one array per column.
func clickArrays(clicks []heldsway.Click) []any {
	n := len(clicks)
	ws, link, aff, prog, at := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	cid, vid, ua, ref, q := make([]string, n), make([]string, n), make([]*string, n), make([]*string, n), make([]*string, n)
	ip := make([][]byte, n)
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	for i := range clicks {
		c := &clicks[i]
		ws[i], link[i], aff[i], prog[i], at[i] = c.WorkspaceID, c.LinkID, c.AffiliateID, c.ProgramID, ts(c.CreatedAt)
		cid[i], vid[i], ua[i], ref[i], q[i] = c.ClickID, c.VisitorID, opt(c.UserAgent), opt(c.Referrer), opt(c.LandingQuery)
		if len(c.IPHash) > 0 {
			ip[i] = c.IPHash
		}
	}
	return []any{ws, link, aff, prog, cid, vid, ip, ua, ref, q, at}
}

// ClickWriters is how many click batches the redirect's writer keeps in
// flight by default (track.Options.Writers): one on both engines. SQLite has
// one writer connection. On PostgreSQL, with the database on the same 2-core
// machine, more batches in flight made smaller batches and more transactions,
// which cost more CPU than the overlap saved (bench/redirect.sh's case, A/B
// in one run: 1 writer 10.1k-11.3k req/s, 2 writers 8.4k-9.5k, 3 writers
// 4.0k-6.8k). Where the database is a network hop away, HELDSWAY_CLICK_WRITERS
// raises it; batches in flight, of one node or of several, then count in
// shards of their own and do not queue on a hot link's rows.
func (s *Store) ClickWriters() int { return 1 }
