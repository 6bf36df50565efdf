package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/heldsway/heldsway/internal/api"
	"github.com/heldsway/heldsway/internal/auth"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// In-process benchmarks of the issue-2 hot paths, without the network, to find
// per-request costs (go test -bench . -benchmem -cpuprofile). bench/auth.sh
// measures the same paths over loopback against a bare net/http handler.

type benchEnv struct {
	h      http.Handler
	key    string
	secret string
	token  string
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	ctx := context.Background()
	st := storetest.Open(b, "sqlite")
	svc := auth.NewService(st)
	srv := &api.Server{Auth: svc, DB: st, Idempotency: st, Store: st, Version: "bench", TokenIPLimit: 1 << 30}
	ws, err := svc.CreateWorkspace(ctx, "Bench", "basic")
	if err != nil {
		b.Fatal(err)
	}
	k, secret, err := svc.CreateKey(ctx, auth.KeyInput{WorkspaceID: ws.ID, Name: "bench",
		Scopes: []string{"read-only"}, RateLimit: auth.MaxRateLimit})
	if err != nil {
		b.Fatal(err)
	}
	token, _, err := svc.IssueToken(ctx, k.Key, secret)
	if err != nil {
		b.Fatal(err)
	}
	return &benchEnv{h: srv.Handler(), key: k.Key, secret: secret, token: token}
}

var bareBody = []byte(`{"success":true,"data":{"workspace":"x","plan":"basic"}}`)

// BenchmarkBare is the floor: a handler that writes a small JSON body.
func BenchmarkBare(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(bareBody)
	})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}

func BenchmarkMe(b *testing.B) {
	e := newBenchEnv(b)
	req := httptest.NewRequest(http.MethodGet, "/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("GET /v1/me: %d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkIssueToken runs the token exchange from parallel callers, as a
// loaded server sees it, so concurrent inserts share commits.
func BenchmarkIssueToken(b *testing.B) {
	e := newBenchEnv(b)
	body := `{"api_key":"` + e.key + `","api_secret":"` + e.secret + `"}`
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/v1/auth/token", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Errorf("POST /v1/auth/token: %d %s", w.Code, w.Body)
				return
			}
		}
	})
}
