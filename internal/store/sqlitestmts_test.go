package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
)

// The SQLite statement cache must be invisible: same results as compiling every
// query, including a query run again while its own rows are still open, more
// distinct texts than the cache holds, scripts, and errors.
func TestSQLiteStatementCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := openSQLite("file:" + filepath.Join(t.TempDir(), "c.db") + "?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one connection, so every query meets the same cache

	if _, err := db.ExecContext(ctx, `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL); CREATE INDEX t_v ON t (v);`); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO t (id, v) VALUES ($1, $2)`, i+1, fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	t.Run("nested run of the same query", func(t *testing.T) {
		const q = `SELECT id FROM t WHERE id <= $1 ORDER BY id`
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		outer, err := conn.QueryContext(ctx, q, 3)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for outer.Next() {
			var id int
			if err := outer.Scan(&id); err != nil {
				t.Fatal(err)
			}
			var n int
			inner, err := conn.QueryContext(ctx, q, 10)
			if err != nil {
				t.Fatal(err)
			}
			for inner.Next() {
				n++
			}
			if err := inner.Close(); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%d:%d", id, n))
		}
		if err := outer.Err(); err != nil {
			t.Fatal(err)
		}
		outer.Close()
		if fmt.Sprint(got) != "[1:10 2:10 3:10]" {
			t.Fatalf("outer rows with a nested run of the same query: %v", got)
		}
	})

	t.Run("more texts than the cache holds", func(t *testing.T) {
		for round := range 2 {
			for i := range stmtCacheSize + 50 {
				var v string
				// Distinct texts: the LIMIT differs.
				err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT v FROM t WHERE id = $1 LIMIT %d`, i+1), i%10+1).Scan(&v)
				if err != nil || v != fmt.Sprint("v", i%10) {
					t.Fatalf("round %d, text %d: %q %v", round, i, v, err)
				}
			}
		}
	})

	t.Run("arguments are rebound on every run", func(t *testing.T) {
		for i := range 10 {
			var v sql.NullString
			if err := db.QueryRowContext(ctx, `SELECT v FROM t WHERE id = $1`, i+1).Scan(&v); err != nil || v.String != fmt.Sprint("v", i) {
				t.Fatalf("id %d: %v %v", i+1, v, err)
			}
		}
		res, err := db.ExecContext(ctx, `UPDATE t SET v = $1 WHERE id = $2`, "x", 1)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("rows affected %d", n)
		}
		res, err = db.ExecContext(ctx, `UPDATE t SET v = $1 WHERE id = $2`, "y", 99)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 0 {
			t.Fatalf("rows affected %d", n)
		}
	})

	t.Run("errors leave the statement usable", func(t *testing.T) {
		const q = `INSERT INTO t (id, v) VALUES ($1, $2)`
		if _, err := db.ExecContext(ctx, q, 1, "dup"); err == nil {
			t.Fatal("duplicate id accepted")
		}
		if _, err := db.ExecContext(ctx, q, 100, "new"); err != nil {
			t.Fatalf("after an error: %v", err)
		}
		if _, err := db.ExecContext(ctx, `SELECT nope FROM t`); err == nil {
			t.Fatal("bad SQL accepted")
		}
	})

	t.Run("scripts", func(t *testing.T) {
		for range 2 {
			if _, err := db.ExecContext(ctx, `UPDATE t SET v = 'a' WHERE id = 2; UPDATE t SET v = 'b' WHERE id = 3;`); err != nil {
				t.Fatal(err)
			}
		}
		var a, b string
		if err := db.QueryRowContext(ctx, `SELECT (SELECT v FROM t WHERE id = 2), (SELECT v FROM t WHERE id = 3)`).Scan(&a, &b); err != nil || a != "a" || b != "b" {
			t.Fatalf("%q %q %v", a, b, err)
		}
	})
}
