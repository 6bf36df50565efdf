// Command redirectseed prepares and checks bench/redirect.sh's database with
// plain SQL, so the benchmark needs no management API:
//
//	redirectseed seed  --db DSN --slug S   creates a program, an active affiliate and a link
//	                                       in workspace 1 (heldsway serve's bootstrap) and
//	                                       prints the link id
//	redirectseed count --db DSN --link ID  prints "click_count rows" of the link
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/heldsway/heldsway/internal/store"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "redirectseed:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: redirectseed seed|count --db DSN [--slug S] [--link ID]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	db := fs.String("db", "", "database (SQLite path or postgres:// URL)")
	slug := fs.String("slug", "bench", "slug of the link to create")
	link := fs.Int64("link", 0, "link id to count")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	ctx := context.Background()
	st, err := store.Open(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	q := st.DB()
	switch args[0] {
	case "seed":
		at := time.Now().UnixMicro()
		var prog, user, aff, id int64
		steps := []struct {
			dst  *int64
			sql  string
			args []any
		}{
			{&prog, `INSERT INTO programs (workspace_id, name, currency, commission_type, cookie_days, created_at, updated_at)
				VALUES (1, 'Bench', 'USD', 'percentage', 30, $1, $1) RETURNING id`, []any{at}},
			{&user, `INSERT INTO affiliate_users (workspace_id, name, email, created_at, updated_at)
				VALUES (1, 'Bench', 'bench@example.com', $1, $1) RETURNING id`, []any{at}},
			{&aff, `INSERT INTO affiliates (workspace_id, program_id, affiliate_user_id, referral_code, status, name, email, created_at, updated_at)
				VALUES (1, $1, $2, 'BENCH', 'active', 'Bench', 'bench@example.com', $3, $3) RETURNING id`, []any{&prog, &user, at}},
			{&id, `INSERT INTO links (workspace_id, affiliate_id, slug, destination_url, is_active, created_at, updated_at)
				VALUES (1, $1, $2, 'https://shop.example/p?color=red#top', $3, $4, $4) RETURNING id`, []any{&aff, *slug, true, at}},
		}
		for _, s := range steps {
			for i, a := range s.args {
				if p, ok := a.(*int64); ok {
					s.args[i] = *p
				}
			}
			if err := q.QueryRowContext(ctx, s.sql, s.args...).Scan(s.dst); err != nil {
				return err
			}
		}
		fmt.Println(id)
	case "count":
		var count, rows int64
		if count, err = st.LinkClickCount(ctx, *link); err != nil {
			return err
		}
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM clicks WHERE link_id = $1`, *link).Scan(&rows); err != nil {
			return err
		}
		fmt.Println(count, rows)
	default:
		return fmt.Errorf("unknown command %q", args[0])
	}
	return nil
}
