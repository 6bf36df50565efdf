package store

import (
	"container/list"
	"context"
	"database/sql"
	"database/sql/driver"
	"reflect"
	"strings"
	"sync"
)

// SQLite statement cache.
//
// modernc.org/sqlite compiles the SQL of every query that was not prepared
// explicitly, and compiling is expensive in the transpiled engine: in a
// profile of POST /v1/affiliates on SQLite, sqlite3Prepare was 20% of the
// server's CPU, more than executing the statements. PostgreSQL needs no help:
// pgx caches prepared statements per connection. This wraps each SQLite
// connection so that Exec and Query reuse a compiled statement per SQL text,
// the way pgx does, for every query of the store without changing its code.
//
// A cached statement runs one query at a time: a statement whose rows are still
// open (a query nested inside the iteration of the same query) is not reused,
// the query compiles a transient statement instead. Scripts (text with a ';')
// are never cached: SQLite compiles them statement by statement anyway.

// stmtCacheSize bounds the statements kept per connection. Lists build their
// SQL from the filters and sorts requested, so the texts are many but the hot
// ones few; the least recently used idle statement goes first.
const stmtCacheSize = 256

// sqliteConnector opens modernc.org/sqlite connections wrapped by cachedConn.
type sqliteConnector struct {
	dsn string
	drv driver.Driver
}

// openSQLite is sql.Open("sqlite", dsn) with the statement cache.
func openSQLite(dsn string) (*sql.DB, error) {
	// The package-level driver, as sql.Open("sqlite", …) uses it.
	probe, err := sql.Open("sqlite", "")
	if err != nil {
		return nil, err
	}
	drv := probe.Driver()
	probe.Close()
	return sql.OpenDB(sqliteConnector{dsn: dsn, drv: drv}), nil
}

func (c sqliteConnector) Connect(context.Context) (driver.Conn, error) {
	cn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &cachedConn{inner: cn, stmts: map[string]*list.Element{}, lru: list.New()}, nil
}

func (c sqliteConnector) Driver() driver.Driver { return c.drv }

// innerConn is what the wrapper needs of a modernc.org/sqlite connection.
type innerConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// cachedConn is a SQLite connection with its compiled statements. database/sql
// uses a connection from one goroutine at a time; mu guards the cache anyway,
// since rows may be closed from another goroutine.
type cachedConn struct {
	inner driver.Conn
	mu    sync.Mutex
	stmts map[string]*list.Element // SQL text → element of lru holding *cachedStmt
	lru   *list.List               // front: most recently used
}

type cachedStmt struct {
	query string
	st    driver.Stmt
	busy  bool // its rows are open
}

var (
	_ driver.Conn               = (*cachedConn)(nil)
	_ driver.ConnBeginTx        = (*cachedConn)(nil)
	_ driver.ConnPrepareContext = (*cachedConn)(nil)
	_ driver.ExecerContext      = (*cachedConn)(nil)
	_ driver.QueryerContext     = (*cachedConn)(nil)
	_ driver.Pinger             = (*cachedConn)(nil)
	_ driver.SessionResetter    = (*cachedConn)(nil)
	_ driver.Validator          = (*cachedConn)(nil)
)

func (c *cachedConn) in() innerConn { return c.inner.(innerConn) }

func (c *cachedConn) Prepare(query string) (driver.Stmt, error) { return c.inner.Prepare(query) }

func (c *cachedConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.in().PrepareContext(ctx, query)
}

func (c *cachedConn) Begin() (driver.Tx, error) {
	return c.in().BeginTx(context.Background(), driver.TxOptions{})
}

func (c *cachedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.in().BeginTx(ctx, opts)
}

func (c *cachedConn) Ping(ctx context.Context) error         { return c.in().Ping(ctx) }
func (c *cachedConn) ResetSession(ctx context.Context) error { return c.in().ResetSession(ctx) }
func (c *cachedConn) IsValid() bool                          { return c.in().IsValid() }
func (c *cachedConn) cacheable(query string) bool            { return !strings.Contains(query, ";") }
func (c *cachedConn) release(cs *cachedStmt)                 { c.mu.Lock(); cs.busy = false; c.mu.Unlock() }
func (c *cachedConn) Close() error                           { c.closeStmts(); return c.inner.Close() }
func (c *cachedConn) closeStmts() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.lru.Front(); e != nil; e = e.Next() {
		e.Value.(*cachedStmt).st.Close()
	}
	c.lru.Init()
	clear(c.stmts)
}

// take returns an idle cached statement for query, compiling and caching it if
// there is none; transient is true when the statement is not cached and the
// caller must close it.
func (c *cachedConn) take(ctx context.Context, query string) (cs *cachedStmt, transient bool, err error) {
	if !c.cacheable(query) {
		st, err := c.in().PrepareContext(ctx, query)
		return &cachedStmt{query: query, st: st}, true, err
	}
	c.mu.Lock()
	if e, ok := c.stmts[query]; ok {
		cs := e.Value.(*cachedStmt)
		if !cs.busy {
			cs.busy = true
			c.lru.MoveToFront(e)
			c.mu.Unlock()
			return cs, false, nil
		}
		c.mu.Unlock()
		st, err := c.in().PrepareContext(ctx, query) // the cached one is in use
		return &cachedStmt{query: query, st: st}, true, err
	}
	c.mu.Unlock()
	st, err := c.in().PrepareContext(ctx, query)
	if err != nil {
		return nil, false, err
	}
	cs = &cachedStmt{query: query, st: st, busy: true}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru.Len() >= stmtCacheSize {
		for e := c.lru.Back(); e != nil; e = e.Prev() {
			if old := e.Value.(*cachedStmt); !old.busy {
				old.st.Close()
				delete(c.stmts, old.query)
				c.lru.Remove(e)
				break
			}
		}
	}
	c.stmts[query] = c.lru.PushFront(cs)
	return cs, false, nil
}

func (c *cachedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cs, transient, err := c.take(ctx, query)
	if err != nil {
		return nil, err
	}
	if transient {
		defer cs.st.Close()
	} else {
		defer c.release(cs)
	}
	return cs.st.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (c *cachedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs, transient, err := c.take(ctx, query)
	if err != nil {
		return nil, err
	}
	rows, err := cs.st.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		if transient {
			cs.st.Close()
		} else {
			c.release(cs)
		}
		return nil, err
	}
	return &cachedRows{Rows: rows, done: func() {
		if transient {
			cs.st.Close()
		} else {
			c.release(cs)
		}
	}}, nil
}

// cachedRows gives its statement back when closed.
type cachedRows struct {
	driver.Rows
	done func()
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	if r.done != nil {
		r.done()
		r.done = nil
	}
	return err
}

// The column type methods of modernc.org/sqlite's rows, passed through.

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

func (r *cachedRows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}
