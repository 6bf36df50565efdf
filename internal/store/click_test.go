package store_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// The click-tracking store methods on every engine. Rows are inserted with raw
// SQL so these tests do not depend on the management APIs.

type clickSeed struct {
	t   *testing.T
	st  *store.Store
	now time.Time
}

func (s *clickSeed) id(q string, args ...any) int64 {
	s.t.Helper()
	var id int64
	if err := s.st.DB().QueryRow(q+` RETURNING id`, args...).Scan(&id); err != nil {
		s.t.Fatalf("%s: %v", q, err)
	}
	return id
}

func (s *clickSeed) exec(q string, args ...any) {
	s.t.Helper()
	if _, err := s.st.DB().Exec(q, args...); err != nil {
		s.t.Fatalf("%s: %v", q, err)
	}
}

// workspace creates a workspace with a program and an active affiliate; it
// returns the workspace and affiliate ids.
func (s *clickSeed) workspace(name, code string) (ws, prog, aff int64) {
	s.t.Helper()
	at := s.now.UnixMicro()
	ws = s.id(`INSERT INTO workspaces (name, slug, plan, active, created_at, updated_at) VALUES ($1, $2, 'basic', $3, $4, $4)`,
		name, name, true, at)
	prog = s.id(`INSERT INTO programs (workspace_id, name, currency, commission_type, cookie_days, created_at, updated_at)
		VALUES ($1, 'Default', 'USD', 'percentage', 45, $2, $2)`, ws, at)
	user := s.id(`INSERT INTO affiliate_users (workspace_id, name, email, created_at, updated_at) VALUES ($1, 'Alice', 'alice@example.com', $2, $2)`, ws, at)
	aff = s.id(`INSERT INTO affiliates (workspace_id, program_id, affiliate_user_id, referral_code, status, name, email, created_at, updated_at)
		VALUES ($1, $2, $3, $4, 'active', 'Alice', 'alice@example.com', $5, $5)`, ws, prog, user, code, at)
	return ws, prog, aff
}

func (s *clickSeed) link(ws, aff int64, slug, dest string) int64 {
	s.t.Helper()
	at := s.now.UnixMicro()
	return s.id(`INSERT INTO links (workspace_id, affiliate_id, slug, destination_url, is_active, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)`, ws, aff, slug, dest, true, at)
}

func TestLinkTargetsBySlug(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		s := &clickSeed{t: t, st: st, now: t0}
		ws1, prog1, aff1 := s.workspace("one", "ALICE")
		ws2, _, aff2 := s.workspace("two", "BOB")
		l1 := s.link(ws1, aff1, "spring", "https://one.example/")
		s.link(ws2, aff2, "spring", "https://two.example/")
		s.link(ws2, aff2, "summer", "https://two.example/s")
		s.exec(`UPDATE links SET is_active = $1 WHERE id = $2`, false, l1)
		s.exec(`UPDATE affiliates SET status = 'suspended' WHERE id = $1`, aff1)

		got, err := st.LinkTargetsBySlug(ctx, "spring")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("%d targets, want 2", len(got))
		}
		want := heldsway.LinkTarget{WorkspaceID: ws1, WorkspaceActive: true, LinkID: l1, Slug: "spring",
			DestinationURL: "https://one.example/", LinkActive: false, AffiliateID: aff1, AffiliateStatus: "suspended",
			ReferralCode: "ALICE", ProgramID: prog1, ProgramStatus: "active", CookieDays: 45}
		if got[0] != want {
			t.Fatalf("got %+v\nwant %+v", got[0], want)
		}
		if got[0].Tracks() || !got[1].Tracks() {
			t.Fatalf("Tracks: %v %v, want false true", got[0].Tracks(), got[1].Tracks())
		}
		if none, err := st.LinkTargetsBySlug(ctx, "nope"); err != nil || len(none) != 0 {
			t.Fatalf("unknown slug: %v %v", none, err)
		}
	})
}

func TestInsertClicks(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		s := &clickSeed{t: t, st: st, now: t0}
		ws, prog, aff := s.workspace("one", "ALICE")
		l1 := s.link(ws, aff, "a1", "https://one.example/")
		l2 := s.link(ws, aff, "a2", "https://one.example/")
		var clicks []heldsway.Click
		for i := range 700 { // more than one INSERT statement holds
			link := l1
			if i%7 == 0 {
				link = l2
			}
			clicks = append(clicks, heldsway.Click{WorkspaceID: ws, LinkID: link, AffiliateID: aff, ProgramID: prog,
				ClickID: fmt.Sprintf("c%04d", i), VisitorID: "v", IPHash: bytes.Repeat([]byte{1}, 16),
				UserAgent: "Mozilla/5.0", CreatedAt: t0.Add(time.Duration(i) * time.Microsecond)})
		}
		clicks[1].UserAgent, clicks[1].IPHash = "", nil
		clicks[2].Referrer, clicks[2].LandingQuery = "https://blog.example/post", "utm_source=x"
		if err := st.InsertClicks(ctx, clicks); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			link int64
			want int64
		}{{l1, 600}, {l2, 100}} {
			var rows, updated int64
			count, err := st.LinkClickCount(ctx, c.link)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.DB().QueryRow(`SELECT updated_at FROM links WHERE id = $1`, c.link).Scan(&updated); err != nil {
				t.Fatal(err)
			}
			if err := st.DB().QueryRow(`SELECT COUNT(*) FROM clicks WHERE link_id = $1`, c.link).Scan(&rows); err != nil {
				t.Fatal(err)
			}
			if count != c.want || rows != c.want {
				t.Fatalf("link %d: click_count %d, rows %d, want %d", c.link, count, rows, c.want)
			}
			if updated != t0.UnixMicro() {
				t.Fatal("counting clicks changed the link's updated_at (the cache's change marker)")
			}
		}
		var ua, ref, q *string
		var ip []byte
		var created int64
		if err := st.DB().QueryRow(`SELECT user_agent, referrer, landing_query, ip_hash, created_at FROM clicks WHERE click_id = 'c0001'`).
			Scan(&ua, &ref, &q, &ip, &created); err != nil {
			t.Fatal(err)
		}
		if ua != nil || ref != nil || q != nil || ip != nil || created != t0.Add(time.Microsecond).UnixMicro() {
			t.Fatalf("empty fields not NULL: %v %v %v %v %d", ua, ref, q, ip, created)
		}
		if err := st.DB().QueryRow(`SELECT referrer, landing_query FROM clicks WHERE click_id = 'c0002'`).Scan(&ref, &q); err != nil {
			t.Fatal(err)
		}
		if *ref != "https://blog.example/post" || *q != "utm_source=x" {
			t.Fatalf("referrer %q landing %q", *ref, *q)
		}
		// A duplicate click id fails the whole batch: nothing of it is kept.
		err := st.InsertClicks(ctx, []heldsway.Click{
			{WorkspaceID: ws, LinkID: l1, AffiliateID: aff, ProgramID: prog, ClickID: "fresh", VisitorID: "v", CreatedAt: t0},
			{WorkspaceID: ws, LinkID: l1, AffiliateID: aff, ProgramID: prog, ClickID: "c0001", VisitorID: "v", CreatedAt: t0}})
		if err == nil {
			t.Fatal("duplicate click id accepted")
		}
		if count, _ := st.LinkClickCount(ctx, l1); count != 600 {
			t.Fatalf("a failed batch changed click_count to %d", count)
		}
	})
}

func TestLinkChangesSince(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		s := &clickSeed{t: t, st: st, now: t0}
		ws, prog, aff := s.workspace("one", "ALICE")
		l1 := s.link(ws, aff, "a1", "https://one.example/")
		l2 := s.link(ws, aff, "a2", "https://one.example/")
		ws2, _, aff2 := s.workspace("two", "BOB")
		l3 := s.link(ws2, aff2, "b1", "https://two.example/")

		since := t0.Add(time.Second)
		later := t0.Add(2 * time.Second).UnixMicro()
		changes := func() map[int64]string {
			t.Helper()
			ch, err := st.LinkChangesSince(ctx, since)
			if err != nil {
				t.Fatal(err)
			}
			m := map[int64]string{}
			for _, l := range ch.Links {
				m[l.ID] = l.Slug
			}
			return m
		}
		if got := changes(); len(got) != 0 {
			t.Fatalf("changes before any: %v", got)
		}
		s.exec(`UPDATE links SET destination_url = 'https://x.example/', updated_at = $1 WHERE id = $2`, later, l1)
		if got := changes(); len(got) != 1 || got[l1] != "a1" {
			t.Fatalf("after a link update: %v", got)
		}
		s.exec(`UPDATE affiliates SET status = 'suspended', updated_at = $1 WHERE id = $2`, later, aff)
		if got := changes(); len(got) != 2 || got[l2] != "a2" {
			t.Fatalf("after an affiliate update: %v", got)
		}
		s.exec(`UPDATE programs SET cookie_days = 60, updated_at = $1 WHERE id = $2`, later, prog)
		s.exec(`UPDATE workspaces SET active = $1, updated_at = $2 WHERE id = $3`, false, later, ws2)
		if got := changes(); len(got) != 3 || got[l3] != "b1" {
			t.Fatalf("after program and workspace updates: %v", got)
		}

		ch, err := st.LinkChangesSince(ctx, since)
		if err != nil || ch.Domains {
			t.Fatalf("domains changed before any settings: %v %v", ch, err)
		}
		s.exec(`INSERT INTO workspace_settings (workspace_id, custom_domain, updated_at) VALUES ($1, 'Go.Shop.Example', $2)`, ws2, later)
		if ch, err = st.LinkChangesSince(ctx, since); err != nil || !ch.Domains {
			t.Fatalf("settings change not seen: %v %v", ch, err)
		}
		d, err := st.CustomDomains(ctx)
		if err != nil || len(d) != 1 || d["go.shop.example"] != ws2 {
			t.Fatalf("custom domains %v %v", d, err)
		}

		s.exec(`DELETE FROM links WHERE id = $1`, l2)
		ex, err := st.ExistingLinks(ctx, []int64{l1, l2, l3, 999999})
		if err != nil || len(ex) != 2 || !ex[l1] || !ex[l3] {
			t.Fatalf("existing links %v %v", ex, err)
		}
		many := make([]int64, 1200) // more than one statement's worth
		for i := range many {
			many[i] = int64(i + 1)
		}
		if ex, err = st.ExistingLinks(ctx, many); err != nil || len(ex) != 2 {
			t.Fatalf("existing links of 1200 ids %v %v", ex, err)
		}
	})
}

func TestInstallationSecret(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		a, err := st.InstallationSecret(ctx, "x")
		if err != nil || len(a) != 32 {
			t.Fatalf("secret %x %v", a, err)
		}
		b, err := st.InstallationSecret(ctx, "x")
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("second read %x != %x (%v)", b, a, err)
		}
		c, err := st.InstallationSecret(ctx, "y")
		if err != nil || bytes.Equal(a, c) {
			t.Fatalf("another name shares the secret: %v", err)
		}
	})
}
