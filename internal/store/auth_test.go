package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// The AuthStore conformance suite: every method, every documented error code, on
// every engine (SQLite always, PostgreSQL when HELDSWAY_TEST_DATABASE_URL is set).

// clock is a settable clock for the store under test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// t0 has a non-zero microsecond part, so truncation to seconds would show.
var t0 = time.Date(2026, 11, 1, 12, 0, 0, 123456000, time.UTC)

// bundle is the setup of one store test.
type bundle struct {
	t     *testing.T
	ctx   context.Context
	st    *store.Store
	clock *clock
	seq   int
}

func setup(t *testing.T, st *store.Store) *bundle {
	t.Helper()
	c := &clock{now: t0}
	st.Now = c.Now
	return &bundle{t: t, ctx: context.Background(), st: st, clock: c}
}

func (b *bundle) workspace(name string) *heldsway.Workspace {
	b.t.Helper()
	w := &heldsway.Workspace{Name: name, Slug: slug(name), Plan: "basic", Active: true}
	if err := b.st.CreateWorkspace(b.ctx, w); err != nil {
		b.t.Fatalf("create workspace %q: %v", name, err)
	}
	return w
}

func slug(name string) string {
	return fmt.Sprintf("%x", sha256.Sum256([]byte(name)))[:12]
}

func digest(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func (b *bundle) key(ws *heldsway.Workspace, mod func(k *heldsway.APIKey)) *heldsway.APIKey {
	b.t.Helper()
	b.seq++
	k := &heldsway.APIKey{WorkspaceID: ws.ID, Name: fmt.Sprintf("key %d", b.seq), Kind: heldsway.KeyKindSecret,
		Key: fmt.Sprintf("hs_key_%d_%d", ws.ID, b.seq), SecretHash: digest(fmt.Sprintf("secret %d", b.seq)),
		Scopes: []string{"orders:read", "reports:read"}, AllowedOrigins: []string{}}
	if mod != nil {
		mod(k)
	}
	if err := b.st.CreateAPIKey(b.ctx, k); err != nil {
		b.t.Fatalf("create key: %v", err)
	}
	return k
}

func (b *bundle) token(k *heldsway.APIKey, hash []byte, expires time.Time) *heldsway.AccessToken {
	b.t.Helper()
	tok := &heldsway.AccessToken{Hash: hash, WorkspaceID: k.WorkspaceID, APIKeyID: k.ID, Scopes: k.Scopes,
		ExpiresAt: expires, CreatedAt: b.clock.Now()}
	if err := b.st.CreateAccessToken(b.ctx, tok); err != nil {
		b.t.Fatalf("create token: %v", err)
	}
	return tok
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := heldsway.ErrorCode(err); got != code {
		t.Fatalf("want error code %q, got %q (%v)", code, got, err)
	}
}

func ptr(t time.Time) *time.Time { return &t }

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func TestWorkspaces(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		b := setup(t, st)

		n, err := st.CountWorkspaces(b.ctx)
		if err != nil || n != 0 {
			t.Fatalf("count on empty store: %d, %v", n, err)
		}

		w := b.workspace("Acme")
		if w.ID <= 0 || !w.CreatedAt.Equal(t0) {
			t.Fatalf("create did not set id and created_at: %+v", w)
		}
		got, err := st.FindWorkspace(b.ctx, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != w.ID || got.Name != "Acme" || got.Slug != w.Slug || got.Plan != "basic" || !got.Active ||
			!got.CreatedAt.Equal(t0) {
			t.Fatalf("round trip: got %+v, want %+v", got, w)
		}

		t.Run("duplicate slug is ECONFLICT", func(t *testing.T) {
			dup := &heldsway.Workspace{Name: "Other", Slug: w.Slug, Plan: "basic", Active: true}
			wantCode(t, st.CreateWorkspace(b.ctx, dup), heldsway.ECONFLICT)
		})
		t.Run("unknown id is ENOTFOUND", func(t *testing.T) {
			_, err := st.FindWorkspace(b.ctx, w.ID+1000)
			wantCode(t, err, heldsway.ENOTFOUND)
			wantCode(t, st.SetWorkspaceActive(b.ctx, w.ID+1000, false), heldsway.ENOTFOUND)
		})
		t.Run("deactivate and activate", func(t *testing.T) {
			other := b.workspace("Other")
			for _, active := range []bool{false, true, false} {
				if err := st.SetWorkspaceActive(b.ctx, w.ID, active); err != nil {
					t.Fatal(err)
				}
				got, err := st.FindWorkspace(b.ctx, w.ID)
				if err != nil || got.Active != active {
					t.Fatalf("after SetWorkspaceActive(%v): %+v, %v", active, got, err)
				}
			}
			// Only the named workspace changes.
			if got, _ := st.FindWorkspace(b.ctx, other.ID); !got.Active {
				t.Fatal("another workspace was deactivated")
			}
		})
		t.Run("count", func(t *testing.T) {
			n, err := st.CountWorkspaces(b.ctx)
			if err != nil || n != 2 {
				t.Fatalf("count: %d, %v; want 2", n, err)
			}
		})
	})
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		b := setup(t, st)
		ws := b.workspace("Acme")
		other := b.workspace("Other")

		exp := t0.Add(48 * time.Hour)
		k := b.key(ws, func(k *heldsway.APIKey) {
			k.RateLimit = 30
			k.ExpiresAt = &exp
			k.AllowedOrigins = []string{"https://a.example", "https://b.example"}
		})
		if k.ID <= 0 || !k.CreatedAt.Equal(t0) {
			t.Fatalf("create did not set id and created_at: %+v", k)
		}

		check := func(t *testing.T, got *heldsway.APIKey) {
			t.Helper()
			if got.ID != k.ID || got.WorkspaceID != ws.ID || got.Name != k.Name || got.Kind != heldsway.KeyKindSecret ||
				got.Key != k.Key || !bytes.Equal(got.SecretHash, k.SecretHash) || got.PrevSecretHash != nil ||
				got.PrevSecretExpiresAt != nil || !slices.Equal(got.Scopes, k.Scopes) || got.RateLimit != 30 ||
				!slices.Equal(got.AllowedOrigins, k.AllowedOrigins) || !sameTime(got.ExpiresAt, &exp) ||
				got.RevokedAt != nil || got.LastUsedAt != nil || !got.CreatedAt.Equal(t0) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, k)
			}
		}

		t.Run("FindAPIKeyByKey", func(t *testing.T) {
			got, w, err := st.FindAPIKeyByKey(b.ctx, k.Key)
			if err != nil {
				t.Fatal(err)
			}
			check(t, got)
			if w.ID != ws.ID || w.Name != "Acme" || !w.Active {
				t.Fatalf("workspace: %+v", w)
			}
			_, _, err = st.FindAPIKeyByKey(b.ctx, "hs_key_unknown")
			wantCode(t, err, heldsway.ENOTFOUND)
		})
		t.Run("FindAPIKeyByKey reads the workspace's current state", func(t *testing.T) {
			ws2 := b.workspace("Inactive")
			k2 := b.key(ws2, nil)
			if err := st.SetWorkspaceActive(b.ctx, ws2.ID, false); err != nil {
				t.Fatal(err)
			}
			_, w, err := st.FindAPIKeyByKey(b.ctx, k2.Key)
			if err != nil || w.Active {
				t.Fatalf("want inactive workspace, got %+v, %v", w, err)
			}
		})
		t.Run("FindAPIKey is scoped to the workspace", func(t *testing.T) {
			got, err := st.FindAPIKey(b.ctx, ws.ID, k.ID)
			if err != nil {
				t.Fatal(err)
			}
			check(t, got)
			_, err = st.FindAPIKey(b.ctx, other.ID, k.ID)
			wantCode(t, err, heldsway.ENOTFOUND)
			_, err = st.FindAPIKey(b.ctx, ws.ID, k.ID+1000)
			wantCode(t, err, heldsway.ENOTFOUND)
		})
		t.Run("FindAPIKeyByID finds any workspace's key", func(t *testing.T) {
			ko := b.key(other, nil)
			got, err := st.FindAPIKeyByID(b.ctx, ko.ID)
			if err != nil || got.WorkspaceID != other.ID || got.Key != ko.Key {
				t.Fatalf("got %+v, %v", got, err)
			}
			_, err = st.FindAPIKeyByID(b.ctx, ko.ID+1000)
			wantCode(t, err, heldsway.ENOTFOUND)
		})
		t.Run("duplicate key is ECONFLICT", func(t *testing.T) {
			dup := &heldsway.APIKey{WorkspaceID: ws.ID, Name: "dup", Kind: heldsway.KeyKindSecret, Key: k.Key,
				SecretHash: digest("x"), Scopes: []string{"admin"}}
			wantCode(t, st.CreateAPIKey(b.ctx, dup), heldsway.ECONFLICT)
		})
		t.Run("publishable key without secret", func(t *testing.T) {
			p := b.key(ws, func(k *heldsway.APIKey) {
				k.Kind, k.Key, k.SecretHash = heldsway.KeyKindPublishable, "as_publishable", nil
				k.AllowedOrigins = nil
			})
			got, err := st.FindAPIKey(b.ctx, ws.ID, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != heldsway.KeyKindPublishable || got.SecretHash != nil || got.ExpiresAt != nil ||
				got.AllowedOrigins == nil || len(got.AllowedOrigins) != 0 {
				t.Fatalf("publishable round trip: %+v", got)
			}
		})
	})
}

func TestListAPIKeys(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		b := setup(t, st)
		ws := b.workspace("Acme")
		other := b.workspace("Other")

		empty, err := st.ListAPIKeys(b.ctx, ws.ID, 0, 10)
		if err != nil || empty == nil || len(empty) != 0 {
			t.Fatalf("empty list: %v, %v (want a non-nil empty slice)", empty, err)
		}

		var ids []int64
		for i := 0; i < 5; i++ {
			ids = append(ids, b.key(ws, nil).ID)
			b.key(other, nil) // interleaved keys of another workspace never show
		}
		slices.Reverse(ids) // newest first

		listIDs := func(t *testing.T, before int64, limit int) []int64 {
			t.Helper()
			keys, err := st.ListAPIKeys(b.ctx, ws.ID, before, limit)
			if err != nil {
				t.Fatal(err)
			}
			var out []int64
			for _, k := range keys {
				if k.WorkspaceID != ws.ID {
					t.Fatalf("key %d of workspace %d listed for %d", k.ID, k.WorkspaceID, ws.ID)
				}
				out = append(out, k.ID)
			}
			return out
		}

		tests := []struct {
			name   string
			before int64
			limit  int
			want   []int64
		}{
			{"first page", 0, 2, ids[:2]},
			{"second page", ids[1], 2, ids[2:4]},
			{"last page", ids[3], 2, ids[4:]},
			{"past the end", ids[4], 2, nil},
			{"all", 0, 100, ids},
			{"negative before is the first page", -1, 3, ids[:3]},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if got := listIDs(t, tc.before, tc.limit); !slices.Equal(got, tc.want) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			})
		}
	})
}

func TestRevokeAPIKey(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		b := setup(t, st)
		ws := b.workspace("Acme")
		other := b.workspace("Other")
		k := b.key(ws, nil)

		wantCode(t, st.RevokeAPIKey(b.ctx, other.ID, k.ID, t0), heldsway.ENOTFOUND)
		wantCode(t, st.RevokeAPIKey(b.ctx, ws.ID, k.ID+1000, t0), heldsway.ENOTFOUND)
		if got, _ := st.FindAPIKey(b.ctx, ws.ID, k.ID); got.RevokedAt != nil {
			t.Fatal("revoked through another workspace")
		}

		at := t0.Add(time.Minute)
		if err := st.RevokeAPIKey(b.ctx, ws.ID, k.ID, at); err != nil {
			t.Fatal(err)
		}
		// Revoking again succeeds and keeps the first time.
		if err := st.RevokeAPIKey(b.ctx, ws.ID, k.ID, at.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, err := st.FindAPIKey(b.ctx, ws.ID, k.ID)
		if err != nil || !sameTime(got.RevokedAt, &at) || got.Status(at) != "revoked" {
			t.Fatalf("revoked_at: %+v, %v; want %v", got, err, at)
		}
	})
}

func TestRotateAPIKeySecret(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		b := setup(t, st)
		ws := b.workspace("Acme")
		other := b.workspace("Other")
		k := b.key(ws, nil)
		first := k.SecretHash

		grace := t0.Add(24 * time.Hour)
		wantCode(t, st.RotateAPIKeySecret(b.ctx, other.ID, k.ID, digest("new"), grace), heldsway.ENOTFOUND)
		wantCode(t, st.RotateAPIKeySecret(b.ctx, ws.ID, k.ID+1000, digest("new"), grace), heldsway.ENOTFOUND)

		if err := st.RotateAPIKeySecret(b.ctx, ws.ID, k.ID, digest("second"), grace); err != nil {
			t.Fatal(err)
		}
		got, err := st.FindAPIKey(b.ctx, ws.ID, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.SecretHash, digest("second")) || !bytes.Equal(got.PrevSecretHash, first) ||
			!sameTime(got.PrevSecretExpiresAt, &grace) {
			t.Fatalf("after rotation: %+v", got)
		}

		// A second rotation makes the second secret the previous one.
		grace2 := t0.Add(48 * time.Hour)
		if err := st.RotateAPIKeySecret(b.ctx, ws.ID, k.ID, digest("third"), grace2); err != nil {
			t.Fatal(err)
		}
		got, _ = st.FindAPIKey(b.ctx, ws.ID, k.ID)
		if !bytes.Equal(got.SecretHash, digest("third")) || !bytes.Equal(got.PrevSecretHash, digest("second")) ||
			!sameTime(got.PrevSecretExpiresAt, &grace2) {
			t.Fatalf("after second rotation: %+v", got)
		}

		t.Run("a revoked key cannot be rotated", func(t *testing.T) {
			r := b.key(ws, nil)
			if err := st.RevokeAPIKey(b.ctx, ws.ID, r.ID, t0); err != nil {
				t.Fatal(err)
			}
			wantCode(t, st.RotateAPIKeySecret(b.ctx, ws.ID, r.ID, digest("x"), grace), heldsway.ENOTFOUND)
			got, _ := st.FindAPIKey(b.ctx, ws.ID, r.ID)
			if !bytes.Equal(got.SecretHash, r.SecretHash) || got.PrevSecretHash != nil {
				t.Fatalf("revoked key's secret changed: %+v", got)
			}
		})
	})
}

func TestTouchAPIKeys(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		b := setup(t, st)
		ws := b.workspace("Acme")
		k1, k2, k3 := b.key(ws, nil), b.key(ws, nil), b.key(ws, nil)

		if err := st.TouchAPIKeys(b.ctx, nil); err != nil {
			t.Fatalf("empty touch: %v", err)
		}
		t1, t2 := t0.Add(time.Minute), t0.Add(2*time.Minute)
		if err := st.TouchAPIKeys(b.ctx, map[int64]time.Time{k1.ID: t1, k2.ID: t2}); err != nil {
			t.Fatal(err)
		}
		// An older time never moves last_used_at back (batches from several nodes
		// may arrive out of order); a newer one moves it forward.
		if err := st.TouchAPIKeys(b.ctx, map[int64]time.Time{k1.ID: t0, k2.ID: t2.Add(time.Second)}); err != nil {
			t.Fatal(err)
		}
		want := map[int64]*time.Time{k1.ID: &t1, k2.ID: ptr(t2.Add(time.Second)), k3.ID: nil}
		for id, w := range want {
			got, err := st.FindAPIKey(b.ctx, ws.ID, id)
			if err != nil || !sameTime(got.LastUsedAt, w) {
				t.Fatalf("key %d last_used_at = %v, want %v (%v)", id, got.LastUsedAt, w, err)
			}
		}
	})
}

func TestAccessTokens(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		b := setup(t, st)
		ws := b.workspace("Acme")
		k := b.key(ws, func(k *heldsway.APIKey) { k.Scopes = []string{"admin"} })
		exp := t0.Add(4 * time.Hour)
		tok := b.token(k, digest("token-1"), exp)

		t.Run("FindTokenGrant", func(t *testing.T) {
			g, err := st.FindTokenGrant(b.ctx, digest("token-1"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(g.Token.Hash, tok.Hash) || g.Token.WorkspaceID != ws.ID || g.Token.APIKeyID != k.ID ||
				!slices.Equal(g.Token.Scopes, []string{"admin"}) || !g.Token.ExpiresAt.Equal(exp) ||
				!g.Token.CreatedAt.Equal(t0) {
				t.Fatalf("token: %+v", g.Token)
			}
			if g.Key.ID != k.ID || g.Key.Key != k.Key || g.Key.RevokedAt != nil {
				t.Fatalf("key: %+v", g.Key)
			}
			if g.Workspace.ID != ws.ID || g.Workspace.Name != "Acme" || g.Workspace.Plan != "basic" || !g.Workspace.Active {
				t.Fatalf("workspace: %+v", g.Workspace)
			}
			_, err = st.FindTokenGrant(b.ctx, digest("unknown"))
			wantCode(t, err, heldsway.ENOTFOUND)
		})
		t.Run("grant reflects revocation and deactivation", func(t *testing.T) {
			ws2 := b.workspace("Second")
			k2 := b.key(ws2, nil)
			b.token(k2, digest("token-2"), exp)
			if err := st.RevokeAPIKey(b.ctx, ws2.ID, k2.ID, t0); err != nil {
				t.Fatal(err)
			}
			if err := st.SetWorkspaceActive(b.ctx, ws2.ID, false); err != nil {
				t.Fatal(err)
			}
			g, err := st.FindTokenGrant(b.ctx, digest("token-2"))
			if err != nil || g.Key.RevokedAt == nil || g.Workspace.Active {
				t.Fatalf("grant after revoke and deactivate: %+v, %v", g, err)
			}
		})
		t.Run("DeleteExpiredTokens", func(t *testing.T) {
			ws3 := b.workspace("Third")
			k3 := b.key(ws3, nil)
			b.token(k3, digest("old-1"), t0.Add(time.Minute))
			b.token(k3, digest("old-2"), t0.Add(2*time.Minute))
			b.token(k3, digest("boundary"), t0.Add(3*time.Minute))

			n, err := st.DeleteExpiredTokens(b.ctx, t0.Add(3*time.Minute))
			if err != nil || n != 2 {
				t.Fatalf("deleted %d, %v; want 2", n, err)
			}
			for name, want := range map[string]string{"old-1": heldsway.ENOTFOUND, "old-2": heldsway.ENOTFOUND,
				"boundary": "", "token-1": ""} {
				_, err := st.FindTokenGrant(b.ctx, digest(name))
				if got := heldsway.ErrorCode(err); got != want {
					t.Fatalf("token %s after delete: code %q, want %q", name, got, want)
				}
			}
			n, err = st.DeleteExpiredTokens(b.ctx, t0.Add(3*time.Minute))
			if err != nil || n != 0 {
				t.Fatalf("second delete: %d, %v; want 0", n, err)
			}
		})
	})
}

func TestPing(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		if err := st.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Migrations are idempotent: running them on a migrated store is a no-op.
		if err := st.Migrate(context.Background()); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
	})
}
