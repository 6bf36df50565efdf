package store

import (
	"context"
	"database/sql"
	"sync"
)

// queryRowHot runs a read on a hot path. On SQLite it goes through a prepared
// statement kept for the store's life: modernc.org/sqlite parses the SQL of
// every un-prepared query again, and parsing was about half the cost of the
// token exchange's key lookup. database/sql prepares the statement once on each
// pooled connection. PostgreSQL needs no help (pgx caches prepared statements
// per connection), so there the query runs as usual.
func (s *Store) queryRowHot(ctx context.Context, query string, args ...any) *sql.Row {
	if s.Dialect.IsPostgres() {
		return s.r.QueryRowContext(ctx, query, args...)
	}
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt).QueryRowContext(ctx, args...)
	}
	st, err := s.r.PrepareContext(context.WithoutCancel(ctx), query)
	if err != nil {
		return s.r.QueryRowContext(ctx, query, args...) // reports the error as usual
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		st = prev.(*sql.Stmt)
	}
	return st.QueryRowContext(ctx, args...)
}

// closeStmts closes the statements kept by queryRowHot and writerStmt.
func (s *Store) closeStmts() {
	s.wsets.Clear()
	for _, m := range []*sync.Map{&s.stmts, &s.wstmts} {
		m.Range(func(k, v any) bool {
			v.(*sql.Stmt).Close()
			m.Delete(k)
			return true
		})
	}
}

// preparedSet returns queries prepared on the writer connection, by text,
// made once per store under name: the write paths look their statements up
// per transaction, so the map is built once, not per batch. nil on
// PostgreSQL. Like writerStmt it must run outside any transaction.
func (s *Store) preparedSet(ctx context.Context, name string, queries []string) (map[string]*sql.Stmt, error) {
	if s.Dialect.IsPostgres() {
		return nil, nil
	}
	if m, ok := s.wsets.Load(name); ok {
		return m.(map[string]*sql.Stmt), nil
	}
	out := make(map[string]*sql.Stmt, len(queries))
	for _, q := range queries {
		st, err := s.writerStmt(ctx, q)
		if err != nil {
			return nil, err
		}
		out[q] = st
	}
	m, _ := s.wsets.LoadOrStore(name, out)
	return m.(map[string]*sql.Stmt), nil
}
