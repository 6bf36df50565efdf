package store

import (
	"context"
	"database/sql"
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

// closeStmts closes the statements kept by queryRowHot.
func (s *Store) closeStmts() {
	s.stmts.Range(func(k, v any) bool {
		v.(*sql.Stmt).Close()
		s.stmts.Delete(k)
		return true
	})
}
