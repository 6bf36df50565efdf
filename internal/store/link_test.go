package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// The LinkService conformance suite (links and bulk batches), on every engine.

// lkFixture is a workspace with an active affiliate, and a second workspace.
type lkFixture struct {
	*bundle
	ws, other *heldsway.Workspace
	aff       int64
}

func lkSetup(t *testing.T, st *store.Store) *lkFixture {
	t.Helper()
	b := setup(t, st)
	f := &lkFixture{bundle: b, ws: b.workspace("Links " + t.Name()), other: b.workspace("Other " + t.Name())}
	f.aff = f.affiliate(f.ws.ID, heldsway.AffiliateActive)
	return f
}

func (f *lkFixture) affiliate(wsID int64, status string) int64 {
	f.t.Helper()
	return storetest.InsertAffiliate(f.t, f.st.DB(), wsID, "USD", status)
}

func (f *lkFixture) link(affID int64, in heldsway.LinkInput) *heldsway.Link {
	f.t.Helper()
	l, err := f.st.CreateLink(f.ctx, f.ws.ID, affID, in)
	if err != nil {
		f.t.Fatalf("create link %+v: %v", in, err)
	}
	return l
}

// lkCounts counts the rows a link write may add: links, batches, audit entries, events.
func (f *lkFixture) counts() [4]int {
	f.t.Helper()
	var out [4]int
	for i, table := range []string{"links", "link_batches", "audit_log", "events"} {
		if err := f.st.DB().QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&out[i]); err != nil {
			f.t.Fatal(err)
		}
	}
	return out
}

// lastAudit returns the action, actor and changes of the newest audit entry of a resource.
func (f *lkFixture) lastAudit(resType string, id int64) (action, actorType string, changes map[string]any) {
	f.t.Helper()
	var raw string
	if err := f.st.DB().QueryRow(`SELECT action, actor_type, changes FROM audit_log WHERE resource_type = $1 AND resource_id = $2
		ORDER BY id DESC LIMIT 1`, resType, id).Scan(&action, &actorType, &raw); err != nil {
		f.t.Fatalf("audit of %s %d: %v", resType, id, err)
	}
	_ = json.Unmarshal([]byte(raw), &changes)
	return action, actorType, changes
}

func (f *lkFixture) eventTypes(resType string, id int64) []string {
	f.t.Helper()
	rows, err := f.st.DB().Query(`SELECT type FROM events WHERE resource_type = $1 AND resource_id = $2 ORDER BY id`, resType, id)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		out = append(out, s)
	}
	return out
}

func lkStr(s string) *string { return &s }
func lkBool(b bool) *bool    { return &b }

var generatedSlug = regexp.MustCompile(`^[a-z0-9]{9}$`)

func TestCreateLink(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := lkSetup(t, st)

		t.Run("generated slug, defaults, audit and event", func(t *testing.T) {
			l := f.link(f.aff, heldsway.LinkInput{DestinationURL: "https://shop.example/p/1"})
			if l.ID <= 0 || !generatedSlug.MatchString(l.Slug) || !l.IsActive || l.Campaign != nil || l.Metadata != nil ||
				l.ClickCount != 0 || !l.CreatedAt.Equal(t0) || !l.UpdatedAt.Equal(t0) || l.AffiliateID != f.aff {
				t.Fatalf("created %+v", l)
			}
			got, err := st.FindLink(f.ctx, f.ws.ID, l.ID)
			if err != nil || got.Slug != l.Slug || got.DestinationURL != l.DestinationURL || !got.CreatedAt.Equal(t0) {
				t.Fatalf("find: %+v, %v", got, err)
			}
			action, actor, changes := f.lastAudit("link", l.ID)
			if action != "link.create" || actor != heldsway.ActorSystem || changes["slug"] == nil {
				t.Fatalf("audit %s %s %v", action, actor, changes)
			}
			if ev := f.eventTypes("link", l.ID); !slices.Equal(ev, []string{"link.created"}) {
				t.Fatalf("events %v", ev)
			}
		})
		t.Run("given slug lower-cased, campaign, metadata compacted", func(t *testing.T) {
			l := f.link(f.aff, heldsway.LinkInput{DestinationURL: " http://shop.example/x?y=1 ", Slug: "Spring-Sale",
				Campaign: lkStr("  spring "), IsActive: lkBool(false), Metadata: json.RawMessage(`{ "a" : [1, 2] }`)})
			if l.Slug != "spring-sale" || l.DestinationURL != "http://shop.example/x?y=1" || *l.Campaign != "spring" ||
				l.IsActive || string(l.Metadata) != `{"a":[1,2]}` {
				t.Fatalf("created %+v (metadata %s)", l, l.Metadata)
			}
			got, _ := st.FindLink(f.ctx, f.ws.ID, l.ID)
			if string(got.Metadata) != `{"a":[1,2]}` || got.IsActive || *got.Campaign != "spring" {
				t.Fatalf("round trip %+v", got)
			}
		})
		t.Run("errors write nothing", func(t *testing.T) {
			f.link(f.aff, heldsway.LinkInput{DestinationURL: "https://a.example", Slug: "taken"})
			terminated := f.affiliate(f.ws.ID, heldsway.AffiliateTerminated)
			foreign := f.affiliate(f.other.ID, heldsway.AffiliateActive)
			cases := []struct {
				name  string
				aff   int64
				in    heldsway.LinkInput
				code  string
				field string
			}{
				{"taken slug in another case", f.aff, heldsway.LinkInput{DestinationURL: "https://a.example", Slug: "TAKEN"}, heldsway.ECONFLICT, "slug"},
				{"terminated affiliate", terminated, heldsway.LinkInput{DestinationURL: "https://a.example"}, heldsway.ECONFLICT, ""},
				{"other workspace's affiliate", foreign, heldsway.LinkInput{DestinationURL: "https://a.example"}, heldsway.ENOTFOUND, ""},
				{"unknown affiliate", foreign + 1000, heldsway.LinkInput{DestinationURL: "https://a.example"}, heldsway.ENOTFOUND, ""},
				{"missing destination", f.aff, heldsway.LinkInput{}, heldsway.EVALIDATION, "destination_url"},
				{"relative destination", f.aff, heldsway.LinkInput{DestinationURL: "/p/1"}, heldsway.EVALIDATION, "destination_url"},
				{"ftp destination", f.aff, heldsway.LinkInput{DestinationURL: "ftp://a.example/x"}, heldsway.EVALIDATION, "destination_url"},
				{"no host", f.aff, heldsway.LinkInput{DestinationURL: "https:///x"}, heldsway.EVALIDATION, "destination_url"},
				{"space in URL", f.aff, heldsway.LinkInput{DestinationURL: "https://a.example/a b"}, heldsway.EVALIDATION, "destination_url"},
				{"long destination", f.aff, heldsway.LinkInput{DestinationURL: "https://a.example/" + strings.Repeat("x", 2048)}, heldsway.EVALIDATION, "destination_url"},
				{"short slug", f.aff, heldsway.LinkInput{DestinationURL: "https://a.example", Slug: "ab"}, heldsway.EVALIDATION, "slug"},
				{"long slug", f.aff, heldsway.LinkInput{DestinationURL: "https://a.example", Slug: strings.Repeat("a", 65)}, heldsway.EVALIDATION, "slug"},
				{"slug characters", f.aff, heldsway.LinkInput{DestinationURL: "https://a.example", Slug: "a_b.c"}, heldsway.EVALIDATION, "slug"},
				{"long campaign", f.aff, heldsway.LinkInput{DestinationURL: "https://a.example", Campaign: lkStr(strings.Repeat("c", 101))}, heldsway.EVALIDATION, "campaign"},
				{"metadata not an object", f.aff, heldsway.LinkInput{DestinationURL: "https://a.example", Metadata: json.RawMessage(`[1]`)}, heldsway.EVALIDATION, "metadata"},
				{"metadata too large", f.aff, heldsway.LinkInput{DestinationURL: "https://a.example", Metadata: json.RawMessage(`{"a":"` + strings.Repeat("x", 4096) + `"}`)}, heldsway.EVALIDATION, "metadata"},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					before := f.counts()
					_, err := st.CreateLink(f.ctx, f.ws.ID, c.aff, c.in)
					wantCode(t, err, c.code)
					if c.field != "" {
						if d := err.(*heldsway.Error).Details; d[c.field] == nil {
							t.Fatalf("no detail on %s: %v", c.field, d)
						}
					}
					if c.code == heldsway.ENOTFOUND && heldsway.ErrorMessage(err) != heldsway.MsgAffiliateNotFound {
						t.Fatalf("message %q", heldsway.ErrorMessage(err))
					}
					if after := f.counts(); after != before {
						t.Fatalf("rows %v → %v", before, after)
					}
				})
			}
		})
		t.Run("same slug in another workspace", func(t *testing.T) {
			foreign := f.affiliate(f.other.ID, heldsway.AffiliateActive)
			if _, err := st.CreateLink(f.ctx, f.other.ID, foreign, heldsway.LinkInput{DestinationURL: "https://a.example", Slug: "taken"}); err != nil {
				t.Fatalf("slug of another workspace refused: %v", err)
			}
		})
	})
}

// TestSlugCollisionRetry swaps the global slug source, so it does not run in
// parallel with the other link tests.
func TestSlugCollisionRetry(t *testing.T) {
	for _, engine := range storetest.Engines() {
		t.Run(engine, func(t *testing.T) {
			st := storetest.Open(t, engine)
			f := lkSetup(t, st)
			f.link(f.aff, heldsway.LinkInput{DestinationURL: "https://a.example", Slug: "aaaaaaaaa"})
			seq, calls := []string{"aaaaaaaaa", "aaaaaaaaa", "bbbbbbbbb"}, 0
			restore := store.SetSlugSource(func() string { s := seq[min(calls, len(seq)-1)]; calls++; return s })
			defer restore()
			l := f.link(f.aff, heldsway.LinkInput{DestinationURL: "https://a.example"})
			if l.Slug != "bbbbbbbbb" || calls != 3 {
				t.Fatalf("slug %q after %d draws", l.Slug, calls)
			}
			seq, calls = []string{"aaaaaaaaa"}, 0
			before := f.counts()
			if _, err := st.CreateLink(f.ctx, f.ws.ID, f.aff, heldsway.LinkInput{DestinationURL: "https://a.example"}); err == nil {
				t.Fatal("create succeeded with every slug taken")
			}
			if calls != 8 || f.counts() != before {
				t.Fatalf("%d draws; rows %v → %v", calls, before, f.counts())
			}
		})
	}
}

func TestUpdateDeleteLink(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := lkSetup(t, st)
		l := f.link(f.aff, heldsway.LinkInput{DestinationURL: "https://a.example", Slug: "first",
			Campaign: lkStr("c1"), Metadata: json.RawMessage(`{"k":1}`)})
		f.link(f.aff, heldsway.LinkInput{DestinationURL: "https://a.example", Slug: "second"})
		f.clock.Set(t0.Add(time.Hour))

		t.Run("partial update keeps the rest", func(t *testing.T) {
			got, err := st.UpdateLink(f.ctx, f.ws.ID, l.ID, heldsway.LinkUpdate{DestinationURL: lkStr("https://b.example/x"),
				IsActive: lkBool(false)})
			if err != nil {
				t.Fatal(err)
			}
			if got.DestinationURL != "https://b.example/x" || got.IsActive || got.Slug != "first" || *got.Campaign != "c1" ||
				string(got.Metadata) != `{"k":1}` || !got.UpdatedAt.Equal(t0.Add(time.Hour)) || !got.CreatedAt.Equal(t0) {
				t.Fatalf("updated %+v", got)
			}
			action, _, changes := f.lastAudit("link", l.ID)
			if action != "link.update" || len(changes) != 3 || changes["destination_url"] == nil || changes["is_active"] == nil {
				t.Fatalf("audit %s %v", action, changes)
			}
		})
		t.Run("clear campaign and metadata, new slug lower-cased", func(t *testing.T) {
			got, err := st.UpdateLink(f.ctx, f.ws.ID, l.ID, heldsway.LinkUpdate{SetCampaign: true, SetMetadata: true,
				Metadata: json.RawMessage("null"), Slug: lkStr("Renamed")})
			if err != nil || got.Campaign != nil || got.Metadata != nil || got.Slug != "renamed" {
				t.Fatalf("updated %+v, %v", got, err)
			}
			again, _ := st.FindLink(f.ctx, f.ws.ID, l.ID)
			if again.Campaign != nil || again.Metadata != nil || again.Slug != "renamed" {
				t.Fatalf("stored %+v", again)
			}
		})
		t.Run("no change writes nothing", func(t *testing.T) {
			before := f.counts()
			got, err := st.UpdateLink(f.ctx, f.ws.ID, l.ID, heldsway.LinkUpdate{Slug: lkStr("renamed"), IsActive: lkBool(false)})
			if err != nil || got.Slug != "renamed" || f.counts() != before {
				t.Fatalf("%+v, %v; rows %v → %v", got, err, before, f.counts())
			}
		})
		t.Run("errors write nothing", func(t *testing.T) {
			cases := []struct {
				name string
				ws   int64
				u    heldsway.LinkUpdate
				code string
			}{
				{"taken slug", f.ws.ID, heldsway.LinkUpdate{Slug: lkStr("SECOND")}, heldsway.ECONFLICT},
				{"bad URL", f.ws.ID, heldsway.LinkUpdate{DestinationURL: lkStr("nope")}, heldsway.EVALIDATION},
				{"empty URL", f.ws.ID, heldsway.LinkUpdate{DestinationURL: lkStr("")}, heldsway.EVALIDATION},
				{"bad slug", f.ws.ID, heldsway.LinkUpdate{Slug: lkStr("x")}, heldsway.EVALIDATION},
				{"other workspace", f.other.ID, heldsway.LinkUpdate{IsActive: lkBool(true)}, heldsway.ENOTFOUND},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					before := f.counts()
					_, err := st.UpdateLink(f.ctx, c.ws, l.ID, c.u)
					wantCode(t, err, c.code)
					if f.counts() != before {
						t.Fatalf("rows %v → %v", before, f.counts())
					}
				})
			}
		})
		t.Run("delete", func(t *testing.T) {
			_, err := st.DeleteLink(f.ctx, f.other.ID, l.ID)
			wantCode(t, err, heldsway.ENOTFOUND)
			got, err := st.DeleteLink(f.ctx, f.ws.ID, l.ID)
			if err != nil || got.ID != l.ID || got.Slug != "renamed" {
				t.Fatalf("delete: %+v, %v", got, err)
			}
			_, err = st.FindLink(f.ctx, f.ws.ID, l.ID)
			wantCode(t, err, heldsway.ENOTFOUND)
			_, err = st.DeleteLink(f.ctx, f.ws.ID, l.ID)
			wantCode(t, err, heldsway.ENOTFOUND)
			if ev := f.eventTypes("link", l.ID); !slices.Equal(ev, []string{"link.created", "link.updated", "link.updated", "link.deleted"}) {
				t.Fatalf("events %v", ev)
			}
			// The freed slug can be used again.
			f.link(f.aff, heldsway.LinkInput{DestinationURL: "https://a.example", Slug: "renamed"})
		})
	})
}

func TestListLinks(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := lkSetup(t, st)
		aff2 := f.affiliate(f.ws.ID, heldsway.AffiliateActive)
		name2, email2 := storetest.AffiliateName(t, st.DB(), aff2)
		foreign := f.affiliate(f.other.ID, heldsway.AffiliateActive)
		if _, err := st.CreateLink(f.ctx, f.other.ID, foreign, heldsway.LinkInput{DestinationURL: "https://other.example"}); err != nil {
			t.Fatal(err)
		}
		var all []*heldsway.Link
		for i := range 23 {
			f.clock.Set(t0.Add(time.Duration(i%7) * time.Minute)) // ties on created_at
			aff := f.aff
			if i%3 == 0 {
				aff = aff2
			}
			in := heldsway.LinkInput{DestinationURL: fmt.Sprintf("https://shop.example/p/%02d", i%5),
				Slug: fmt.Sprintf("s%03d", (i*7)%23), IsActive: lkBool(i%4 != 0)}
			if i%2 == 0 {
				in.Campaign = lkStr(fmt.Sprintf("camp-%d", i%3))
			}
			all = append(all, f.link(aff, in))
		}
		// click_count is the tracking issue's to maintain; give it distinct-ish values.
		for i, l := range all {
			if _, err := st.DB().Exec(`UPDATE links SET click_count = $1 WHERE id = $2`, i%6, l.ID); err != nil {
				t.Fatal(err)
			}
			l.ClickCount = int64(i % 6)
		}

		list := func(t *testing.T, flt heldsway.LinkFilter, sort string, desc bool, per int) []int64 {
			t.Helper()
			var ids []int64
			o := heldsway.ListOptions{PerPage: per, Sort: sort, Desc: desc}
			for pages := 0; ; pages++ {
				if pages > 50 {
					t.Fatal("paging does not end")
				}
				res, err := st.ListLinks(f.ctx, f.ws.ID, flt, o)
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Items) > per {
					t.Fatalf("page of %d items, per_page %d", len(res.Items), per)
				}
				for _, l := range res.Items {
					ids = append(ids, l.ID)
				}
				if res.Next == nil {
					return ids
				}
				o.After = res.Next
			}
		}
		// want sorts the expected links with the same order as the store: the
		// sort key, then the id, in the direction.
		want := func(keep func(*heldsway.Link) bool, key func(*heldsway.Link) string, desc bool) []int64 {
			var ls []*heldsway.Link
			for _, l := range all {
				if keep(l) {
					ls = append(ls, l)
				}
			}
			slices.SortFunc(ls, func(a, b *heldsway.Link) int {
				c := strings.Compare(key(a), key(b))
				if c == 0 {
					c = int(a.ID - b.ID)
				}
				if desc {
					return -c
				}
				return c
			})
			var ids []int64
			for _, l := range ls {
				ids = append(ids, l.ID)
			}
			return ids
		}
		anyLink := func(*heldsway.Link) bool { return true }
		keys := map[string]func(*heldsway.Link) string{
			"created_at":      func(l *heldsway.Link) string { return fmt.Sprintf("%020d", l.CreatedAt.UnixMicro()) },
			"slug":            func(l *heldsway.Link) string { return l.Slug },
			"click_count":     func(l *heldsway.Link) string { return fmt.Sprintf("%020d", l.ClickCount) },
			"destination_url": func(l *heldsway.Link) string { return l.DestinationURL },
			"campaign": func(l *heldsway.Link) string {
				if l.Campaign == nil {
					return ""
				}
				return *l.Campaign
			},
		}
		for sort, key := range keys {
			for _, desc := range []bool{false, true} {
				t.Run(fmt.Sprintf("sort %s desc %v", sort, desc), func(t *testing.T) {
					got := list(t, heldsway.LinkFilter{}, sort, desc, 4)
					if w := want(anyLink, key, desc); !slices.Equal(got, w) {
						t.Fatalf("order\n got %v\nwant %v", got, w)
					}
				})
			}
		}
		t.Run("default sort is created_at desc", func(t *testing.T) {
			if got, w := list(t, heldsway.LinkFilter{}, "", true, 100), want(anyLink, keys["created_at"], true); !slices.Equal(got, w) {
				t.Fatalf("got %v want %v", got, w)
			}
		})
		filters := []struct {
			name string
			flt  heldsway.LinkFilter
			keep func(*heldsway.Link) bool
		}{
			{"affiliate", heldsway.LinkFilter{AffiliateID: aff2}, func(l *heldsway.Link) bool { return l.AffiliateID == aff2 }},
			{"active", heldsway.LinkFilter{IsActive: lkBool(true)}, func(l *heldsway.Link) bool { return l.IsActive }},
			{"inactive of affiliate", heldsway.LinkFilter{IsActive: lkBool(false), AffiliateID: f.aff},
				func(l *heldsway.Link) bool { return !l.IsActive && l.AffiliateID == f.aff }},
			{"search slug", heldsway.LinkFilter{Search: "S00"}, func(l *heldsway.Link) bool { return strings.HasPrefix(l.Slug, "s00") }},
			{"search destination", heldsway.LinkFilter{Search: "p/03"}, func(l *heldsway.Link) bool { return strings.HasSuffix(l.DestinationURL, "p/03") }},
			{"search campaign", heldsway.LinkFilter{Search: "CAMP-2"}, func(l *heldsway.Link) bool { return l.Campaign != nil && *l.Campaign == "camp-2" }},
			{"search affiliate name", heldsway.LinkFilter{Search: strings.ToUpper(name2)}, func(l *heldsway.Link) bool { return l.AffiliateID == aff2 }},
			{"search affiliate email", heldsway.LinkFilter{Search: email2}, func(l *heldsway.Link) bool { return l.AffiliateID == aff2 }},
			{"search wildcard is literal", heldsway.LinkFilter{Search: "%"}, func(*heldsway.Link) bool { return false }},
			{"unknown affiliate", heldsway.LinkFilter{AffiliateID: foreign}, func(*heldsway.Link) bool { return false }},
		}
		for _, c := range filters {
			t.Run("filter "+c.name, func(t *testing.T) {
				got := list(t, c.flt, "created_at", true, 3)
				if w := want(c.keep, keys["created_at"], true); !slices.Equal(got, w) {
					t.Fatalf("got %v\nwant %v", got, w)
				}
			})
		}
		t.Run("require affiliate", func(t *testing.T) {
			_, err := st.ListLinks(f.ctx, f.ws.ID, heldsway.LinkFilter{AffiliateID: foreign, RequireAffiliate: true},
				heldsway.ListOptions{PerPage: 10})
			wantCode(t, err, heldsway.ENOTFOUND)
			res, err := st.ListLinks(f.ctx, f.ws.ID, heldsway.LinkFilter{AffiliateID: aff2, RequireAffiliate: true},
				heldsway.ListOptions{PerPage: 100})
			if err != nil || len(res.Items) != 8 {
				t.Fatalf("%d items, %v", len(res.Items), err)
			}
		})
		t.Run("bad cursor", func(t *testing.T) {
			_, err := st.ListLinks(f.ctx, f.ws.ID, heldsway.LinkFilter{}, heldsway.ListOptions{PerPage: 5, Sort: "created_at",
				After: &heldsway.Cursor{Sort: "created_at", Value: lkStr("x"), ID: 1}})
			wantCode(t, err, heldsway.EVALIDATION)
		})
	})
}

// lkBatch queues items for the fixture's affiliate.
func (f *lkFixture) batch(items ...heldsway.LinkInput) *heldsway.LinkBatch {
	f.t.Helper()
	b, err := f.st.CreateLinkBatch(f.ctx, f.ws.ID, f.aff, items)
	if err != nil {
		f.t.Fatalf("create batch: %v", err)
	}
	return b
}

func (f *lkFixture) findBatch(id int64) *heldsway.LinkBatch {
	f.t.Helper()
	b, err := f.st.FindLinkBatch(f.ctx, f.ws.ID, f.aff, id)
	if err != nil {
		f.t.Fatalf("find batch: %v", err)
	}
	return b
}

func lkItems(n int, slug func(i int) string) []heldsway.LinkInput {
	items := make([]heldsway.LinkInput, n)
	for i := range items {
		items[i] = heldsway.LinkInput{DestinationURL: fmt.Sprintf("https://shop.example/p/%d", i)}
		if slug != nil {
			items[i].Slug = slug(i)
		}
	}
	return items
}

func TestLinkBatchValidation(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := lkSetup(t, st)
		f.link(f.aff, heldsway.LinkInput{DestinationURL: "https://a.example", Slug: "taken"})
		terminated := f.affiliate(f.ws.ID, heldsway.AffiliateTerminated)
		foreign := f.affiliate(f.other.ID, heldsway.AffiliateActive)
		ok := []heldsway.LinkInput{{DestinationURL: "https://a.example"}}
		cases := []struct {
			name   string
			aff    int64
			items  []heldsway.LinkInput
			code   string
			fields []string
		}{
			{"empty", f.aff, nil, heldsway.EVALIDATION, []string{"links"}},
			{"too many", f.aff, lkItems(1001, nil), heldsway.EVALIDATION, []string{"links"}},
			{"per item", f.aff, []heldsway.LinkInput{
				{DestinationURL: "https://a.example", Slug: "dup"},
				{},
				{DestinationURL: "mailto:x@y.example", Slug: "DUP"},
				{DestinationURL: "https://a.example", Slug: "Taken"},
				{DestinationURL: "https://a.example", Campaign: lkStr(strings.Repeat("c", 101))},
			}, heldsway.EVALIDATION, []string{"links.1.destination_url", "links.2.destination_url", "links.2.slug", "links.4.campaign"}},
			{"taken in workspace", f.aff, []heldsway.LinkInput{{DestinationURL: "https://a.example", Slug: "free"},
				{DestinationURL: "https://a.example", Slug: "TAKEN"}}, heldsway.EVALIDATION, []string{"links.1.slug"}},
			{"terminated affiliate", terminated, ok, heldsway.ECONFLICT, nil},
			{"other workspace's affiliate", foreign, ok, heldsway.ENOTFOUND, nil},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := f.counts()
				_, err := st.CreateLinkBatch(f.ctx, f.ws.ID, c.aff, c.items)
				wantCode(t, err, c.code)
				if c.fields != nil {
					d := err.(*heldsway.Error).Details
					var got []string
					for k := range d {
						got = append(got, k)
					}
					slices.Sort(got)
					if !slices.Equal(got, c.fields) {
						t.Fatalf("detail fields %v, want %v (%v)", got, c.fields, d)
					}
				}
				if f.counts() != before {
					t.Fatalf("rows %v → %v", before, f.counts())
				}
			})
		}
	})
}

func TestProcessLinkBatches(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := lkSetup(t, st)
		actx := heldsway.WithActor(f.ctx, heldsway.Actor{Type: heldsway.ActorAPIKey, ID: 77, RequestID: "req-1", IP: "192.0.2.1"})

		// 250 items: three chunks; item 7 names a slug taken after queueing.
		items := lkItems(250, func(i int) string {
			if i%10 == 7 {
				return fmt.Sprintf("bulk-%d", i)
			}
			return ""
		})
		items[3].Campaign, items[3].IsActive = lkStr("bulk"), lkBool(false)
		b, err := st.CreateLinkBatch(actx, f.ws.ID, f.aff, items)
		if err != nil {
			t.Fatal(err)
		}
		if b.ID <= 0 || b.Status != heldsway.BatchPending || b.TotalItems != 250 {
			t.Fatalf("queued %+v", b)
		}
		if got := f.findBatch(b.ID); got.Status != heldsway.BatchPending || len(got.Results) != 0 || got.CompletedAt != nil {
			t.Fatalf("pending batch %+v", got)
		}
		f.link(f.aff, heldsway.LinkInput{DestinationURL: "https://a.example", Slug: "bulk-7"})
		linksBefore := f.counts()[0]

		f.clock.Set(t0.Add(time.Minute))
		n, err := st.ProcessLinkBatches(f.ctx, 10)
		if err != nil || n != 1 {
			t.Fatalf("processed %d, %v", n, err)
		}
		got := f.findBatch(b.ID)
		if got.Status != heldsway.BatchCompleted || got.ProcessedItems != 250 || got.FailedItems != 1 || len(got.Results) != 250 ||
			got.CompletedAt == nil || !got.CompletedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("done batch %+v", got)
		}
		for i, r := range got.Results {
			if r.Index != i {
				t.Fatalf("result %d has index %d", i, r.Index)
			}
			switch {
			case i == 7:
				if r.Status != heldsway.BatchItemFailed || r.Slug != "bulk-7" || r.Error != "The slug has already been taken." || r.LinkID != 0 {
					t.Fatalf("result 7: %+v", r)
				}
			case r.Status != heldsway.BatchItemCreated || r.LinkID == 0 || (items[i].Slug != "" && r.Slug != items[i].Slug) ||
				(items[i].Slug == "" && !generatedSlug.MatchString(r.Slug)):
				t.Fatalf("result %d: %+v", i, r)
			}
		}
		if after := f.counts()[0]; after != linksBefore+249 {
			t.Fatalf("links %d → %d", linksBefore, after)
		}
		l3, err := st.FindLink(f.ctx, f.ws.ID, got.Results[3].LinkID)
		if err != nil || l3.IsActive || *l3.Campaign != "bulk" || l3.DestinationURL != "https://shop.example/p/3" || l3.AffiliateID != f.aff {
			t.Fatalf("link of item 3: %+v, %v", l3, err)
		}
		// The links' audit entries name the key that queued the batch.
		var actorType string
		var actorID int64
		var reqID string
		if err := st.DB().QueryRow(`SELECT actor_type, actor_id, request_id FROM audit_log WHERE resource_type = 'link' AND resource_id = $1`,
			l3.ID).Scan(&actorType, &actorID, &reqID); err != nil || actorType != heldsway.ActorAPIKey || actorID != 77 || reqID != "req-1" {
			t.Fatalf("audit actor %s %d %s, %v", actorType, actorID, reqID, err)
		}
		if ev := f.eventTypes("link", l3.ID); !slices.Equal(ev, []string{"link.created"}) {
			t.Fatalf("events %v", ev)
		}
		if action, _, _ := f.lastAudit("link_batch", b.ID); action != "link_batch.create" {
			t.Fatalf("batch audit %q", action)
		}

		t.Run("nothing left", func(t *testing.T) {
			before := f.counts()
			if n, err := st.ProcessLinkBatches(f.ctx, 10); err != nil || n != 0 || f.counts() != before {
				t.Fatalf("processed %d, %v", n, err)
			}
		})
		t.Run("affiliate terminated after queueing", func(t *testing.T) {
			b := f.batch(lkItems(3, nil)...)
			if _, err := st.DB().Exec(`UPDATE affiliates SET status = 'terminated' WHERE id = $1`, f.aff); err != nil {
				t.Fatal(err)
			}
			defer st.DB().Exec(`UPDATE affiliates SET status = 'active' WHERE id = $1`, f.aff)
			if n, err := st.ProcessLinkBatches(f.ctx, 10); err != nil || n != 1 {
				t.Fatalf("processed %d, %v", n, err)
			}
			got := f.findBatch(b.ID)
			if got.Status != heldsway.BatchFailed || got.FailedItems != 3 || got.ProcessedItems != 3 ||
				got.Results[2].Error != "Links cannot be created for a terminated affiliate." {
				t.Fatalf("batch %+v", got)
			}
		})
		t.Run("find is scoped to workspace and affiliate", func(t *testing.T) {
			other := f.affiliate(f.ws.ID, heldsway.AffiliateActive)
			foreign := f.affiliate(f.other.ID, heldsway.AffiliateActive)
			_, err := st.FindLinkBatch(f.ctx, f.ws.ID, other, b.ID)
			wantCode(t, err, heldsway.ENOTFOUND)
			_, err = st.FindLinkBatch(f.ctx, f.other.ID, f.aff, b.ID)
			wantCode(t, err, heldsway.ENOTFOUND)
			_, err = st.FindLinkBatch(f.ctx, f.other.ID, foreign, b.ID)
			wantCode(t, err, heldsway.ENOTFOUND)
		})
	})
}

func TestLinkBatchRecovery(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := lkSetup(t, st)

		t.Run("a batch in progress is left alone until its lease expires", func(t *testing.T) {
			b := f.batch(lkItems(2, nil)...)
			if _, err := st.DB().Exec(`UPDATE link_batches SET status = 'processing', updated_at = $1 WHERE id = $2`,
				t0.UnixMicro(), b.ID); err != nil {
				t.Fatal(err)
			}
			f.clock.Set(t0.Add(store.BatchLease - time.Second))
			if n, err := st.ProcessLinkBatches(f.ctx, 10); err != nil || n != 0 {
				t.Fatalf("processed %d, %v", n, err)
			}
			if got := f.findBatch(b.ID); got.ProcessedItems != 0 {
				t.Fatalf("live batch touched: %+v", got)
			}
			f.clock.Set(t0.Add(store.BatchLease + time.Second))
			if n, err := st.ProcessLinkBatches(f.ctx, 10); err != nil || n != 1 {
				t.Fatalf("processed %d, %v", n, err)
			}
			if got := f.findBatch(b.ID); got.Status != heldsway.BatchCompleted || got.ProcessedItems != 2 {
				t.Fatalf("abandoned batch not taken over: %+v", got)
			}
		})
		t.Run("a restarted batch resumes after its last committed chunk", func(t *testing.T) {
			f.clock.Set(t0.Add(time.Hour))
			b := f.batch(lkItems(150, func(i int) string { return fmt.Sprintf("resume-%d", i) })...)
			// As a worker that died after its first chunk leaves it: 100 items
			// done (their links and results committed), still processing.
			var results []heldsway.LinkBatchResult
			for i := range 100 {
				l := f.link(f.aff, heldsway.LinkInput{DestinationURL: "https://a.example", Slug: fmt.Sprintf("resume-%d", i)})
				results = append(results, heldsway.LinkBatchResult{Index: i, Status: heldsway.BatchItemCreated, LinkID: l.ID, Slug: l.Slug})
			}
			raw, _ := json.Marshal(results)
			if _, err := st.DB().Exec(`UPDATE link_batches SET status = 'processing', processed_items = 100, results = $1,
				updated_at = $2 WHERE id = $3`, string(raw), f.clock.Now().UnixMicro(), b.ID); err != nil {
				t.Fatal(err)
			}
			f.clock.Set(f.clock.Now().Add(store.BatchLease + time.Second))
			if n, err := st.ProcessLinkBatches(f.ctx, 10); err != nil || n != 1 {
				t.Fatalf("processed %d, %v", n, err)
			}
			got := f.findBatch(b.ID)
			if got.Status != heldsway.BatchCompleted || got.ProcessedItems != 150 || got.FailedItems != 0 || len(got.Results) != 150 {
				t.Fatalf("resumed batch %+v", got)
			}
			for i, r := range got.Results {
				if r.Index != i || r.Status != heldsway.BatchItemCreated || r.Slug != fmt.Sprintf("resume-%d", i) {
					t.Fatalf("result %d: %+v", i, r)
				}
			}
		})
	})
}

// TestLinkBatchTwoWorkers runs two stores on one database, as two nodes, each
// processing batches concurrently: every item is created exactly once. A worker
// that fails (SQLite may answer busy under load) leaves its batch to the lease
// expiry, as a crashed node would; the final pass after the lease picks it up.
func TestLinkBatchTwoWorkers(t *testing.T) {
	t.Parallel()
	for _, engine := range storetest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			dsn := storetest.DSN(t, engine)
			var nodes [2]*store.Store
			for i := range nodes {
				st, err := store.Open(context.Background(), dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				nodes[i] = st
			}
			f := lkSetup(t, nodes[0])
			nodes[1].Now = nodes[0].Now
			const batches, per = 6, 120
			for range batches {
				f.batch(lkItems(per, nil)...) // generated slugs: a double run would show as extra links
			}
			var wg sync.WaitGroup
			for _, st := range nodes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						n, err := st.ProcessLinkBatches(f.ctx, 2)
						if heldsway.ErrorCode(err) == heldsway.EUNAVAILABLE {
							t.Logf("worker: %v", err)
							time.Sleep(10 * time.Millisecond)
							continue
						} else if err != nil {
							t.Error(err)
							return
						}
						if n == 0 {
							return
						}
					}
				}()
			}
			wg.Wait()
			f.clock.Set(f.clock.Now().Add(store.BatchLease + time.Second))
			if _, err := nodes[0].ProcessLinkBatches(f.ctx, batches); err != nil {
				t.Fatal(err)
			}
			var links, done, audits int
			db := nodes[0].DB()
			_ = db.QueryRow(`SELECT COUNT(*) FROM links`).Scan(&links)
			_ = db.QueryRow(`SELECT COUNT(*) FROM link_batches WHERE status = 'completed' AND processed_items = $1 AND failed_items = 0`, per).Scan(&done)
			_ = db.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE action = 'link.create'`).Scan(&audits)
			if links != batches*per || done != batches || audits != batches*per {
				t.Fatalf("links %d, completed batches %d, audits %d", links, done, audits)
			}
		})
	}
}
