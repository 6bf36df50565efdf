package store_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// The token exchange's inserts are group-committed (tokenwriter.go). These tests
// pin what batching must not change: a token is readable as soon as
// CreateAccessToken returns, one bad row fails only its own caller, and a closed
// store answers instead of hanging.

func TestAccessTokenGroupCommit(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		b := setup(t, st)
		k := b.key(b.workspace("Group commit"), nil)
		exp := t0.Add(4 * time.Hour)

		const n = 200
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := digest(fmt.Sprintf("concurrent %d", i))
				tok := &heldsway.AccessToken{Hash: h, WorkspaceID: k.WorkspaceID, APIKeyID: k.ID,
					Scopes: k.Scopes, ExpiresAt: exp, CreatedAt: t0}
				if err := st.CreateAccessToken(b.ctx, tok); err != nil {
					errs <- fmt.Errorf("token %d: %w", i, err)
					return
				}
				// Committed before the call returned: readable at once.
				g, err := st.FindTokenGrant(b.ctx, h)
				if err != nil {
					errs <- fmt.Errorf("token %d not readable after CreateAccessToken returned: %w", i, err)
					return
				}
				if g.Key.ID != k.ID || !g.Token.ExpiresAt.Equal(exp) || len(g.Token.Scopes) != len(k.Scopes) {
					errs <- fmt.Errorf("token %d read back wrong: %+v", i, g.Token)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

func TestAccessTokenBadRowFailsAlone(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		b := setup(t, st)
		k := b.key(b.workspace("Bad row"), nil)
		exp := t0.Add(time.Hour)
		b.token(k, digest("taken"), exp)

		// Concurrent inserts, one of which reuses a stored digest: it may share a
		// batch with the others, but only it may fail.
		const n = 50
		var wg sync.WaitGroup
		results := make([]error, n+1)
		for i := range n + 1 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := digest(fmt.Sprintf("fresh %d", i))
				if i == n {
					h = digest("taken")
				}
				results[i] = st.CreateAccessToken(b.ctx, &heldsway.AccessToken{Hash: h, WorkspaceID: k.WorkspaceID,
					APIKeyID: k.ID, Scopes: k.Scopes, ExpiresAt: exp, CreatedAt: t0})
			}()
		}
		wg.Wait()
		for i, err := range results[:n] {
			if err != nil {
				t.Errorf("token %d failed beside a duplicate: %v", i, err)
			} else if _, err := st.FindTokenGrant(b.ctx, digest(fmt.Sprintf("fresh %d", i))); err != nil {
				t.Errorf("token %d not stored: %v", i, err)
			}
		}
		if results[n] == nil {
			t.Error("a duplicate token digest was accepted")
		}
	})
}

func TestAccessTokenAfterClose(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		b := setup(t, st)
		k := b.key(b.workspace("Closed"), nil)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			done <- st.CreateAccessToken(b.ctx, &heldsway.AccessToken{Hash: digest("late"), WorkspaceID: k.WorkspaceID,
				APIKeyID: k.ID, Scopes: k.Scopes, ExpiresAt: t0.Add(time.Hour), CreatedAt: t0})
		}()
		select {
		case err := <-done:
			wantCode(t, err, heldsway.EUNAVAILABLE)
		case <-time.After(5 * time.Second):
			t.Fatal("CreateAccessToken on a closed store did not return")
		}
	})
}
