package store_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// BenchmarkInsertClicks measures the click writer's transaction per click, in
// batches of 50 (the redirect benchmark's 50 connections), on each engine.
func BenchmarkInsertClicks(b *testing.B) {
	for _, engine := range storetest.Engines() {
		b.Run(engine, func(b *testing.B) {
			st := storetest.Open(b, engine)
			at := time.Now().UnixMicro()
			row := func(q string, args ...any) int64 {
				var id int64
				if err := st.DB().QueryRow(q+` RETURNING id`, args...).Scan(&id); err != nil {
					b.Fatal(err)
				}
				return id
			}
			ws := row(`INSERT INTO workspaces (name, slug, plan, active, created_at, updated_at) VALUES ('b', 'b', 'basic', $1, $2, $2)`, true, at)
			prog := row(`INSERT INTO programs (workspace_id, name, currency, commission_type, cookie_days, created_at, updated_at)
				VALUES ($1, 'Default', 'USD', 'percentage', 45, $2, $2)`, ws, at)
			user := row(`INSERT INTO affiliate_users (workspace_id, name, email, created_at, updated_at) VALUES ($1, 'A', 'a@example.com', $2, $2)`, ws, at)
			aff := row(`INSERT INTO affiliates (workspace_id, program_id, affiliate_user_id, referral_code, status, name, email, created_at, updated_at)
				VALUES ($1, $2, $3, 'BENCH', 'active', 'A', 'a@example.com', $4, $4)`, ws, prog, user, at)
			link := row(`INSERT INTO links (workspace_id, affiliate_id, slug, destination_url, is_active, created_at, updated_at)
				VALUES ($1, $2, 'bench', 'https://shop.example/', $3, $4, $4)`, ws, aff, true, at)
			batch := benchBatch()
			clicks := make([]heldsway.Click, batch)
			ctx := context.Background()
			n := 0
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				now := time.Now()
				for j := range clicks {
					n++
					clicks[j] = heldsway.Click{WorkspaceID: ws, LinkID: link, AffiliateID: aff, ProgramID: prog,
						ClickID: fmt.Sprintf("%016x%06d", now.UnixMilli(), n), VisitorID: fmt.Sprintf("v%022d", n),
						IPHash:    []byte("0123456789abcdef"),
						UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
						CreatedAt: now}
				}
				if err := st.InsertClicks(ctx, clicks); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchBatch is the batch size: HELDSWAY_BENCH_BATCH, or 50.
func benchBatch() int {
	if n, err := strconv.Atoi(os.Getenv("HELDSWAY_BENCH_BATCH")); err == nil && n > 0 {
		return n
	}
	return 50
}
