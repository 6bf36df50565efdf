// Package store is the SQL store for SQLite (embedded default) and PostgreSQL. The
// same SQL text runs on both; the few fragments that differ live in dialect.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/heldsway/heldsway/internal/heldsway"
)

//go:embed migrations
var migrations embed.FS

// Dialect names the engine and holds the few SQL fragments that differ.
type Dialect struct {
	Name string // "sqlite" or "postgres"
}

// IsPostgres reports whether the store runs on PostgreSQL.
func (d Dialect) IsPostgres() bool { return d.Name == "postgres" }

// Store is the SQL store. Writes go through w; reads through r. On SQLite w is a
// single connection (SQLite has one writer; queueing in Go beats SQLITE_BUSY
// retries) and r a pool of read-only connections; on PostgreSQL both are one pool.
type Store struct {
	Dialect Dialect
	w       *sql.DB
	r       *sql.DB
	// Now is the store's clock, injected so tests control time.
	Now func() time.Time
	// tokens group-commits the token exchange's inserts (see tokenwriter.go).
	tokens *tokenWriter
	// stmts holds prepared statements of hot reads by SQL text (stmtcache.go).
	stmts sync.Map
	// wstmts holds statements prepared on the SQLite writer connection, by
	// SQL text (writerStmt); wsets the sets of them a write path uses, by
	// name (preparedSet).
	wstmts, wsets sync.Map
	// tailer counts SQLite's clicks in the rollups (clickrollup.go); nil on
	// PostgreSQL.
	tailer *clickTailer
	// journal acknowledges SQLite's click batches (clickjournal.go); nil on
	// PostgreSQL and when another process holds the journal.
	journal *clickJournal
	// journalDropped counts journaled clicks the database refused.
	journalDropped atomic.Int64
	// path is the SQLite database file.
	path string
	// ckpt runs SQLite's WAL checkpoints off the writer (checkpoint.go); nil
	// on PostgreSQL.
	ckpt *checkpointer
	// runChunkSize overrides runChunk (payoutrun.go) in tests.
	runChunkSize int
	// sparseSearch overrides the constant of the same name when set (tests).
	sparseSearch int
	// idem group-commits the idempotency records' completions (groupcommit.go).
	idem *groupCommitter
	// convStats counts the conversion writer's work (conversionwriter.go).
	convStats convWriterStats
	// search indexes new affiliates for search in batches (searchindex.go);
	// nil on PostgreSQL.
	search *searchIndexer
	// rollupZones caches each workspace's rollup time zone as last read from
	// rollup_state (PostgreSQL), so a click batch can be sent in one pipeline
	// that checks the zone instead of reading it first (see InsertClicks).
	rollupZones sync.Map // workspace id → time zone name
	// clickShards holds the rollup shards free for a click batch on
	// PostgreSQL (see rollup.clickShard); nil on SQLite.
	clickShards chan int
}

// IsPostgresURL reports whether dsn names a PostgreSQL database rather than a
// SQLite file.
func IsPostgresURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open opens the database named by dsn (a postgres:// URL or a SQLite file path)
// and runs the embedded migrations.
func Open(ctx context.Context, dsn string) (*Store, error) {
	s, err := open(dsn)
	if err != nil {
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if !s.Dialect.IsPostgres() {
		if err := s.openClickJournal(ctx, s.path); err != nil {
			s.Close()
			return nil, err
		}
		s.startSearchIndexer()
		s.startClickTailer()
	}
	return s, nil
}

func open(dsn string) (*Store, error) {
	s := &Store{Now: func() time.Time { return time.Now().UTC() }}
	if IsPostgresURL(dsn) {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		db.SetMaxOpenConns(32)
		db.SetMaxIdleConns(32)
		db.SetConnMaxIdleTime(5 * time.Minute)
		s.Dialect, s.w, s.r = Dialect{Name: "postgres"}, db, db
		s.clickShards = make(chan int, s.Dialect.dimShards())
		// In a random order, so that nodes sharing the database start on
		// different shards.
		for _, i := range mrand.Perm(s.Dialect.dimShards()) {
			s.clickShards <- i
		}
		s.tokens = newTokenWriter(s)
		s.idem = newGroupCommitter(s)
		return s, nil
	}
	path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite://"), "file:")
	if path == "" {
		return nil, errors.New("open sqlite: empty database path")
	}
	// busy_timeout covers the reader pool and other processes; synchronous=NORMAL
	// in WAL mode is durable against process crashes and only risks the last
	// commits on power loss, the usual trade for an embedded server.
	//
	// mmap_size reads the database file through a memory map, so every
	// connection shares the operating system's page cache instead of a 2 MiB
	// cache of its own, and a page it lacks costs no read system call: a list
	// of 100 affiliates found through an index (rows all over the table) took
	// 8–15 ms warm with the default cache and 3–4 ms mapped. It is address
	// space, not memory; pages are loaded as read. Writes still go through the
	// WAL, so this changes no durability.
	pragmas := "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)" +
		"&_pragma=mmap_size(1073741824)"
	// journal_size_limit: when the writer starts the WAL over (checkpoint.go),
	// it cuts the file back to 512 MiB. Above the size a restart happens at
	// (256 MiB of pages, ~270 MB of frames, plus a quarter second's), so
	// under load the file is reused, not cut and grown again at every restart
	// (the cut is paid by the first commit after it, which syncs the file).
	w, err := openSQLite("file:" + path + "?" + pragmas + "&_pragma=wal_autocheckpoint(0)&_pragma=journal_size_limit(536870912)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	r, err := openSQLite("file:" + path + "?" + pragmas + "&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	r.SetConnMaxIdleTime(0)
	r.SetConnMaxLifetime(0)
	c, err := sql.Open("sqlite", "file:"+path+"?"+pragmas)
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	c.SetMaxOpenConns(1)
	c.SetMaxIdleConns(1)
	c.SetConnMaxLifetime(0)
	c.SetConnMaxIdleTime(0)
	s.Dialect, s.w, s.r, s.path = Dialect{Name: "sqlite"}, w, r, path
	s.ckpt = startCheckpointer(c, w, path)
	s.tokens = newTokenWriter(s)
	s.idem = newGroupCommitter(s)
	return s, nil
}

// Migrate applies the embedded migrations of the store's dialect.
func (s *Store) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations/"+s.Dialect.Name)
	if err != nil {
		return err
	}
	dialect := goose.DialectSQLite3
	var opts []goose.ProviderOption
	if s.Dialect.IsPostgres() {
		dialect = goose.DialectPostgres
		// A table lock rather than an advisory lock: several nodes may start at
		// once, and advisory locks are not available on every distributed engine.
		locker, err := lock.NewPostgresTableLocker()
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithLocker(locker))
	}
	p, err := goose.NewProvider(dialect, s.w, sub, opts...)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", unavailable(err))
	}
	return nil
}

// Close closes the database handles.
func (s *Store) Close() error {
	if s.search != nil {
		s.search.close()
	}
	if s.tailer != nil {
		s.tailer.close()
		// Count what the last ticks left, so the file is complete without us.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = s.SyncClickRollups(ctx)
		cancel()
	}
	var err error
	if s.journal != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = s.journal.close(ctx)
		cancel()
	}
	s.tokens.close()
	s.idem.close()
	s.closeStmts()
	err = errors.Join(err, s.w.Close())
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	if s.ckpt != nil {
		err = errors.Join(err, s.ckpt.close())
	}
	return err
}

// Ping checks the database can be reached; EUNAVAILABLE if not.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return unavailable(err)
	}
	var one int
	if err := s.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return unavailable(err)
	}
	return nil
}

// DB exposes the writer handle for tests and tools that need raw SQL. It
// first puts the journaled clicks in the database, so raw reads see every
// acknowledged click as the store's own reads do.
func (s *Store) DB() *sql.DB {
	_ = s.syncClicks(context.Background())
	return s.w
}

// tx runs fn in a write transaction, committing if fn returns nil.
//
// When ctx carries an Idempotency-Key claim not yet recorded, the transaction
// claims the key first (see heldsway.IdempotencyClaim): the key commits with
// the request's writes; if another request holds it, nothing runs and the
// error is heldsway.ErrIdempotencyKeyHeld.
func (s *Store) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return unavailable(err)
	}
	defer tx.Rollback()
	claim := heldsway.IdempotencyClaimFrom(ctx)
	if claim != nil && claim.Recorded() {
		claim = nil
	}
	if claim != nil {
		held, err := s.claimIdem(ctx, tx, claim.WorkspaceID, claim.Scope, claim.Key, claim.Fingerprint)
		if err != nil {
			return unavailable(err)
		}
		if held != nil {
			claim.MarkHeld(held)
			return heldsway.ErrIdempotencyKeyHeld
		}
	}
	if err := fn(tx); err != nil {
		return unavailable(err)
	}
	if err := tx.Commit(); err != nil {
		return unavailable(err)
	}
	if claim != nil {
		claim.MarkRecorded()
	}
	return nil
}

// unavailable turns a lost or refused database connection into EUNAVAILABLE, so
// clients get a 503 they may retry instead of a 500. Other errors pass through.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	var he *heldsway.Error
	if errors.As(err, &he) {
		return err
	}
	var netErr *net.OpError
	var connErr *pgconn.ConnectError
	var se *sqlite.Error
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.As(err, &netErr), errors.As(err, &connErr),
		pgconn.SafeToRetry(err), errors.Is(err, context.DeadlineExceeded):
	// A pooled connection whose peer went away fails its next read with EOF (pgx
	// returns the bare io error and closes the connection): an outage too.
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, net.ErrClosed):
	case errors.As(err, &se) && (se.Code()&0xff == sqlite3.SQLITE_BUSY || se.Code()&0xff == sqlite3.SQLITE_CANTOPEN):
	default:
		return err
	}
	return &heldsway.Error{Code: heldsway.EUNAVAILABLE, Message: "The service is temporarily unavailable. Please retry.", Err: err}
}

// isUniqueViolation reports whether err is a unique-constraint violation on
// either engine.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// Timestamps are stored as microseconds since the epoch (see the migrations).

func ts(t time.Time) int64 { return t.UnixMicro() }

func fromTS(v int64) time.Time { return time.UnixMicro(v).UTC() }

func nullTS(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func fromNullTS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromTS(v.Int64)
	return &t
}

func joinList(l []string) string { return strings.Join(l, " ") }

func splitList(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Fields(s)
}
