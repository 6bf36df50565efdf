package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// The storefront ingestion store methods on every engine.

func TestInsertStorefrontEvents(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		st.Now = func() time.Time { return t0 }
		s := &clickSeed{t: t, st: st, now: t0}
		ws, _, aff := s.workspace("one", "ALICE")
		amount, qty, link := int64(1999), int64(2), int64(7)
		full := heldsway.StorefrontEvent{WorkspaceID: ws, Type: heldsway.EventAddToCart, VisitorID: "v1", SessionID: "s1",
			AffiliateID: &aff, LinkID: &link, Host: "shop.example", Path: "/p", Referrer: "https://r.example/",
			UTM:       heldsway.UTM{Source: "a", Medium: "b", Campaign: "c", Term: "d", Content: "e"},
			ProductID: "P", ProductName: "N", Category: "C", Amount: &amount, Currency: "USD", Quantity: &qty, CartID: "K",
			OrderID: "O", Email: "e@x.example", CustomerID: "U", UserAgent: "UA", CreatedAt: t0}
		bare := heldsway.StorefrontEvent{WorkspaceID: ws, Type: heldsway.EventPageview, VisitorID: "v1", SessionID: "s1",
			CreatedAt: t0.Add(time.Minute)}
		if err := st.InsertStorefrontEvents(ctx, []heldsway.StorefrontEvent{full, bare}); err != nil {
			t.Fatal(err)
		}
		var got heldsway.StorefrontEvent
		var created int64
		if err := st.DB().QueryRow(`SELECT type, visitor_id, session_id, affiliate_id, link_id, host, path, referrer,
			utm_source, utm_medium, utm_campaign, utm_term, utm_content, product_id, product_name, category, amount, currency,
			quantity, cart_id, order_id, email, customer_id, user_agent, created_at FROM storefront_events WHERE type = 'add_to_cart'`).
			Scan(&got.Type, &got.VisitorID, &got.SessionID, &got.AffiliateID, &got.LinkID, &got.Host, &got.Path, &got.Referrer,
				&got.UTM.Source, &got.UTM.Medium, &got.UTM.Campaign, &got.UTM.Term, &got.UTM.Content, &got.ProductID,
				&got.ProductName, &got.Category, &got.Amount, &got.Currency, &got.Quantity, &got.CartID, &got.OrderID,
				&got.Email, &got.CustomerID, &got.UserAgent, &created); err != nil {
			t.Fatal(err)
		}
		got.WorkspaceID, got.CreatedAt = ws, time.UnixMicro(created).UTC()
		if *got.AffiliateID != aff || *got.LinkID != link || *got.Amount != amount || *got.Quantity != qty {
			t.Fatalf("pointers %+v", got)
		}
		got.AffiliateID, got.LinkID, got.Amount, got.Quantity = full.AffiliateID, full.LinkID, full.Amount, full.Quantity
		if got != full {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, full)
		}
		// Absent values are NULL, not empty strings or zeros.
		var nulls int
		if err := st.DB().QueryRow(`SELECT COUNT(*) FROM storefront_events WHERE type = 'pageview' AND affiliate_id IS NULL
			AND link_id IS NULL AND host IS NULL AND referrer IS NULL AND utm_source IS NULL AND amount IS NULL AND quantity IS NULL
			AND email IS NULL AND user_agent IS NULL`).Scan(&nulls); err != nil || nulls != 1 {
			t.Fatalf("NULLs: %d %v", nulls, err)
		}

		sess, at, ok, err := st.LastStorefrontSession(ctx, ws, "v1")
		if err != nil || !ok || sess != "s1" || !at.Equal(t0.Add(time.Minute)) {
			t.Fatalf("last session %q %v %v %v", sess, at, ok, err)
		}
		if _, _, ok, err := st.LastStorefrontSession(ctx, ws+1000, "v1"); ok || err != nil {
			t.Fatalf("another workspace's visitor: %v %v", ok, err)
		}
	})
}

func TestStorefrontLookups(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		st.Now = func() time.Time { return t0 }
		s := &clickSeed{t: t, st: st, now: t0}
		ws1, prog1, aff1 := s.workspace("one", "ALICE")
		ws2, prog2, aff2 := s.workspace("two", "BOB")
		if err := st.InsertClicks(ctx, []heldsway.Click{
			{WorkspaceID: ws1, LinkID: 0, AffiliateID: aff1, ProgramID: prog1, ClickID: "c1", VisitorID: "v", CreatedAt: t0},
			{WorkspaceID: ws2, LinkID: 0, AffiliateID: aff2, ProgramID: prog2, ClickID: "c2", VisitorID: "v", CreatedAt: t0},
		}); err != nil {
			t.Fatal(err)
		}
		c, err := st.FindClickRef(ctx, ws1, "c1")
		if err != nil || c.AffiliateID != aff1 || c.ProgramID != prog1 || c.LinkID != 0 || c.ReferralCode != "ALICE" ||
			c.CookieDays != 45 || !c.CreatedAt.Equal(t0.Truncate(time.Microsecond)) {
			t.Fatalf("click %+v %v", c, err)
		}
		if !c.InWindow(t0.Add(44*24*time.Hour)) || c.InWindow(t0.Add(45*24*time.Hour)) || c.InWindow(t0.Add(-time.Hour)) {
			t.Fatal("cookie window")
		}
		if _, err := st.FindClickRef(ctx, ws1, "c2"); heldsway.ErrorCode(err) != heldsway.ENOTFOUND {
			t.Fatalf("another workspace's click: %v", err)
		}

		tg, err := st.ReferralTarget(ctx, ws1, " alice ")
		if err != nil || tg.AffiliateID != aff1 || tg.ProgramID != prog1 || tg.LinkID != 0 || tg.ReferralCode != "ALICE" || !tg.Tracks() {
			t.Fatalf("target %+v %v", tg, err)
		}
		if _, err := st.ReferralTarget(ctx, ws1, "BOB"); heldsway.ErrorCode(err) != heldsway.ENOTFOUND {
			t.Fatalf("another workspace's code: %v", err)
		}
		s.exec(`UPDATE affiliates SET status = 'suspended' WHERE id = $1`, aff1)
		if tg, err := st.ReferralTarget(ctx, ws1, "ALICE"); err != nil || tg.Tracks() {
			t.Fatalf("suspended affiliate tracks: %+v %v", tg, err)
		}
	})
}

func TestPublishableOrigins(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		st.Now = func() time.Time { return t0 }
		s := &clickSeed{t: t, st: st, now: t0}
		ws1, _, _ := s.workspace("one", "ALICE")
		ws2, _, _ := s.workspace("two", "BOB")
		at := t0.UnixMicro()
		key := func(ws int64, kind, key, origins string, revoked, expires any) {
			s.exec(`INSERT INTO api_keys (workspace_id, name, kind, key, scopes, allowed_origins, revoked_at, expires_at, created_at)
				VALUES ($1, 'k', $2, $3, 'sdk:init', $4, $5, $6, $7)`, ws, kind, key, origins, revoked, expires, at)
		}
		key(ws1, "publishable", "as_1", "https://a.example HTTPS://B.example:443/", nil, nil)
		key(ws1, "publishable", "as_2", "https://a.example", nil, t0.Add(time.Hour).UnixMicro())
		key(ws1, "publishable", "as_3", "https://revoked.example", at, nil)
		key(ws1, "publishable", "as_4", "https://expired.example", nil, at)
		key(ws1, "secret", "hs_key_1", "https://secret.example", nil, nil)
		key(ws2, "publishable", "as_5", "https://inactive.example", nil, nil)
		s.exec(`UPDATE workspaces SET active = $1 WHERE id = $2`, false, ws2)
		got, err := st.PublishableOrigins(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if want := []string{"https://a.example", "https://b.example"}; !slices.Equal(got, want) {
			t.Fatalf("origins %v, want %v", got, want)
		}
	})
}
