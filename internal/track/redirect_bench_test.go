package track_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/store/storetest"
	"github.com/heldsway/heldsway/internal/track"
)

// BenchmarkRedirectHandler measures the redirect's own work per counted click
// (link lookup, click committed through the group-commit writer, cookies and
// 302) without the network, with 50 concurrent callers as in
// bench/redirect.sh: the CPU and allocations the handler adds to net/http.
func BenchmarkRedirectHandler(b *testing.B) {
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
			row(`INSERT INTO links (workspace_id, affiliate_id, slug, destination_url, is_active, created_at, updated_at)
				VALUES ($1, $2, 'bench', 'https://shop.example/p?color=red#top', $3, $4, $4)`, ws, aff, true, at)
			h, err := track.New(context.Background(), st, track.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close(context.Background())
			mux := http.NewServeMux()
			mux.Handle("GET /r/{slug}", h)
			b.SetParallelism(25) // 50 callers on 2 CPUs
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r := httptest.NewRequest(http.MethodGet, "/r/bench", nil)
					r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36")
					w := httptest.NewRecorder()
					mux.ServeHTTP(w, r)
					if w.Code != http.StatusFound {
						b.Fatalf("status %d", w.Code)
					}
				}
			})
			b.StopTimer()
			if s := h.Stats(); s.Counted > 0 {
				b.ReportMetric(float64(s.Counted)/float64(s.Batches), "clicks/batch")
			}
		})
	}
}
