package track_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// RecordClick: the storefront SDK's ?ref= landings through the redirect's
// click writer and dedup.
func TestRecordClick(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st)
		ctx := context.Background()
		link := e.link(e.ws, e.aff, "spring", "https://shop.example/", true)
		bob := e.affiliate(e.ws, e.prog, "BOB", "active")
		req := httptest.NewRequest("POST", "/v1/track/click", nil)
		landing := func(aff int64, visitor, ua string) heldsway.Click {
			return heldsway.Click{WorkspaceID: e.ws, AffiliateID: aff, ProgramID: e.prog, VisitorID: visitor, UserAgent: ua,
				LandingQuery: "ref=X"}
		}
		rows := func() (n int64) {
			t.Helper()
			if err := st.DB().QueryRow(`SELECT COUNT(*) FROM clicks WHERE link_id = 0`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}

		id, counted, err := e.h.RecordClick(ctx, req, landing(e.aff, "v1", chrome))
		if err != nil || !counted || len(id) != 22 {
			t.Fatalf("first: %q %v %v", id, counted, err)
		}
		var ua, vis, q string
		var ip []byte
		var created int64
		if err := st.DB().QueryRow(`SELECT user_agent, visitor_id, landing_query, ip_hash, created_at FROM clicks WHERE click_id = $1`, id).
			Scan(&ua, &vis, &q, &ip, &created); err != nil {
			t.Fatal(err)
		}
		if ua != chrome || vis != "v1" || q != "ref=X" || len(ip) != 16 || created != e.clock.Now().UnixMicro() {
			t.Fatalf("row %q %q %q %x %d", ua, vis, q, ip, created)
		}

		// Within 30 s the same visitor and affiliate is the same click...
		e.clock.Advance(29 * time.Second)
		if again, counted, err := e.h.RecordClick(ctx, req, landing(e.aff, "v1", chrome)); again != id || counted || err != nil {
			t.Fatalf("repeat: %q %v %v", again, counted, err)
		}
		// ...but another affiliate, another visitor or another workspace's
		// visitor of the same id is another click.
		for _, c := range []heldsway.Click{landing(bob, "v1", chrome), landing(e.aff, "v2", chrome)} {
			if other, counted, err := e.h.RecordClick(ctx, req, c); other == id || !counted || err != nil {
				t.Fatalf("other: %q %v %v", other, counted, err)
			}
		}
		ws2, prog2, aff2 := e.workspace("other", "CAROL")
		if other, counted, err := e.h.RecordClick(ctx, req, heldsway.Click{WorkspaceID: ws2, AffiliateID: aff2, ProgramID: prog2,
			VisitorID: "v1", UserAgent: chrome}); other == id || !counted || err != nil {
			t.Fatalf("other workspace: %q %v %v", other, counted, err)
		}
		// 30 s after the counted click it counts again.
		e.clock.Advance(time.Second)
		if later, counted, err := e.h.RecordClick(ctx, req, landing(e.aff, "v1", chrome)); later == id || !counted || err != nil {
			t.Fatalf("later: %q %v %v", later, counted, err)
		}
		// Bots are not recorded.
		if bot, counted, err := e.h.RecordClick(ctx, req, landing(e.aff, "v3", googleb)); bot != "" || counted || err != nil {
			t.Fatalf("bot: %q %v %v", bot, counted, err)
		}
		if n := rows(); n != 5 {
			t.Fatalf("landing clicks %d, want 5", n)
		}
		// No link's click_count moved.
		e.expectClicks(link, 0)
		if s := e.h.Stats(); s.Counted != 5 || s.Repeats != 1 || s.Bots != 1 {
			t.Fatalf("stats %+v", s)
		}
	})
}
