package store_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// The LinkRuleService conformance suite, on every engine.

func (f *lkFixture) rule(linkID int64, in heldsway.LinkRuleInput) *heldsway.LinkRule {
	f.t.Helper()
	r, err := f.st.CreateLinkRule(f.ctx, f.ws.ID, linkID, in)
	if err != nil {
		f.t.Fatalf("create rule %+v: %v", in, err)
	}
	return r
}

func (f *lkFixture) ruleCounts() [3]int {
	f.t.Helper()
	var out [3]int
	for i, table := range []string{"link_rules", "audit_log", "events"} {
		if err := f.st.DB().QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&out[i]); err != nil {
			f.t.Fatal(err)
		}
	}
	return out
}

func TestLinkRuleCRUD(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := lkSetup(t, st)
		link := f.link(f.aff, heldsway.LinkInput{DestinationURL: "https://shop.example/"})

		r := f.rule(link.ID, heldsway.LinkRuleInput{Type: "flat", Value: "4.5", Priority: lkInt(2),
			Conditions: &heldsway.LinkRuleConditionsInput{ProductIDs: []string{"SKU-1"}, MinOrderAmount: lkStr("20")}})
		if r.ID <= 0 || r.LinkID != link.ID || r.Type != "flat" || r.Value != 450 || r.Currency.Code != "USD" || r.Priority != 2 ||
			!r.IsActive || !r.CreatedAt.Equal(t0) || r.Conditions == nil || *r.Conditions.MinOrderAmount != 2000 {
			t.Fatalf("created %+v", r)
		}
		got, err := st.FindLinkRule(f.ctx, f.ws.ID, link.ID, r.ID)
		if err != nil || got.Value != 450 || !slices.Equal(got.Conditions.ProductIDs, []string{"SKU-1"}) || got.Conditions.Categories != nil ||
			*got.Conditions.MinOrderAmount != 2000 || !got.CreatedAt.Equal(t0) {
			t.Fatalf("find: %+v, %v", got, err)
		}
		action, _, changes := f.lastAudit("link_rule", r.ID)
		if action != "link_rule.create" || fmt.Sprint(changes["value"]) != "map[after:4.5 before:<nil>]" {
			t.Fatalf("audit %s %v", action, changes)
		}

		t.Run("another workspace sees nothing", func(t *testing.T) {
			before := f.ruleCounts()
			_, err := st.FindLinkRule(f.ctx, f.other.ID, link.ID, r.ID)
			wantCode(t, err, heldsway.ENOTFOUND)
			_, err = st.CreateLinkRule(f.ctx, f.other.ID, link.ID, heldsway.LinkRuleInput{Type: "flat", Value: "1"})
			wantCode(t, err, heldsway.ENOTFOUND)
			_, err = st.UpdateLinkRule(f.ctx, f.other.ID, link.ID, r.ID, heldsway.LinkRuleUpdate{IsActive: lkBool(false)})
			wantCode(t, err, heldsway.ENOTFOUND)
			_, err = st.DeleteLinkRule(f.ctx, f.other.ID, link.ID, r.ID)
			wantCode(t, err, heldsway.ENOTFOUND)
			_, err = st.ListLinkRules(f.ctx, f.other.ID, link.ID, heldsway.ListOptions{PerPage: 10})
			wantCode(t, err, heldsway.ENOTFOUND)
			if f.ruleCounts() != before {
				t.Fatal("rows written")
			}
		})
		t.Run("bad input writes nothing", func(t *testing.T) {
			before := f.ruleCounts()
			_, err := st.CreateLinkRule(f.ctx, f.ws.ID, link.ID, heldsway.LinkRuleInput{Type: "flat", Value: "1.001"})
			wantCode(t, err, heldsway.EVALIDATION)
			_, err = st.UpdateLinkRule(f.ctx, f.ws.ID, link.ID, r.ID, heldsway.LinkRuleUpdate{Type: lkStr("percentage")})
			wantCode(t, err, heldsway.EVALIDATION)
			if f.ruleCounts() != before {
				t.Fatal("rows written")
			}
		})
		t.Run("update, no-op, currency change", func(t *testing.T) {
			f.clock.Set(t0.Add(time.Minute))
			u, err := st.UpdateLinkRule(f.ctx, f.ws.ID, link.ID, r.ID, heldsway.LinkRuleUpdate{Priority: lkInt(9), IsActive: lkBool(false)})
			if err != nil || u.Priority != 9 || u.IsActive || u.Value != 450 || !u.UpdatedAt.Equal(t0.Add(time.Minute)) {
				t.Fatalf("update: %+v, %v", u, err)
			}
			before := f.ruleCounts()
			if _, err := st.UpdateLinkRule(f.ctx, f.ws.ID, link.ID, r.ID, heldsway.LinkRuleUpdate{Priority: lkInt(9)}); err != nil {
				t.Fatal(err)
			}
			if f.ruleCounts() != before {
				t.Fatal("a no-op update wrote rows")
			}
			// The link's affiliate moves to a EUR program: the USD amounts must be given again.
			eur := storetest.InsertAffiliate(t, st.DB(), f.ws.ID, "EUR", heldsway.AffiliateActive)
			if _, err := st.DB().Exec(`UPDATE affiliates SET program_id = (SELECT program_id FROM affiliates WHERE id = $1) WHERE id = $2`,
				eur, f.aff); err != nil {
				t.Fatal(err)
			}
			defer func() {
				_, _ = st.DB().Exec(`UPDATE affiliates SET program_id = (SELECT id FROM programs WHERE workspace_id = $1 AND is_default) WHERE id = $2`, f.ws.ID, f.aff)
			}()
			_, err = st.UpdateLinkRule(f.ctx, f.ws.ID, link.ID, r.ID, heldsway.LinkRuleUpdate{IsActive: lkBool(true)})
			wantCode(t, err, heldsway.EVALIDATION)
			u, err = st.UpdateLinkRule(f.ctx, f.ws.ID, link.ID, r.ID, heldsway.LinkRuleUpdate{Value: lkStr("3"), SetConditions: true,
				Conditions: &heldsway.LinkRuleConditionsInput{Categories: []string{"Shoes"}}})
			if err != nil || u.Currency.Code != "EUR" || u.Value != 300 || u.Conditions.MinOrderAmount != nil ||
				!slices.Equal(u.Conditions.Categories, []string{"Shoes"}) {
				t.Fatalf("update: %+v, %v", u, err)
			}
		})
		t.Run("delete", func(t *testing.T) {
			d, err := st.DeleteLinkRule(f.ctx, f.ws.ID, link.ID, r.ID)
			if err != nil || d.ID != r.ID {
				t.Fatalf("delete: %+v, %v", d, err)
			}
			_, err = st.FindLinkRule(f.ctx, f.ws.ID, link.ID, r.ID)
			wantCode(t, err, heldsway.ENOTFOUND)
			if ev := f.eventTypes("link_rule", r.ID); !slices.Equal(ev, []string{"link_rule.created", "link_rule.updated",
				"link_rule.updated", "link_rule.deleted"}) {
				t.Fatalf("events %v", ev)
			}
		})
	})
}

// Concurrent creations on one link never take it past the cap.
func TestLinkRuleCap(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := lkSetup(t, st)
		link := f.link(f.aff, heldsway.LinkInput{DestinationURL: "https://shop.example/"})
		for i := 0; i < heldsway.LinkRuleMaxPerLink-5; i++ {
			f.rule(link.ID, heldsway.LinkRuleInput{Type: "percentage", Value: "1"})
		}
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := st.CreateLinkRule(f.ctx, f.ws.ID, link.ID, heldsway.LinkRuleInput{Type: "percentage", Value: "2"})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		var created, conflicts int
		for err := range errs {
			switch heldsway.ErrorCode(err) {
			case "":
				created++
			case heldsway.ECONFLICT:
				conflicts++
			default:
				t.Errorf("unexpected %v", err)
			}
		}
		var n int
		if err := st.DB().QueryRow(`SELECT COUNT(*) FROM link_rules WHERE link_id = $1`, link.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if created != 5 || conflicts != 15 || n != heldsway.LinkRuleMaxPerLink {
			t.Fatalf("created %d, conflicts %d, rows %d", created, conflicts, n)
		}
	})
}

func lkInt(v int64) *int64 { return &v }
