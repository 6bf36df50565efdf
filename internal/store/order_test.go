package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
	"github.com/heldsway/heldsway/internal/worker"
)

// The review half of the OrderService conformance suite, on every engine.
// Orders are seeded by raw SQL (storetest.InsertOrder) so these tests do not
// depend on the conversion path.

type ordFixture struct {
	*bundle
	ws, other  *heldsway.Workspace
	prog       int64
	alice, bob int64 // affiliates of ws
	stranger   int64 // an affiliate of other
}

func ordSetup(t *testing.T, st *store.Store) *ordFixture {
	t.Helper()
	b := setup(t, st)
	f := &ordFixture{bundle: b, ws: b.workspace("Orders " + t.Name()), other: b.workspace("Other " + t.Name())}
	f.prog = storetest.DefaultProgram(t, st.DB(), f.ws.ID)
	f.alice = storetest.SeedAffiliate(t, st.DB(), f.ws.ID, f.prog, "Alice Able")
	f.bob = storetest.SeedAffiliate(t, st.DB(), f.ws.ID, f.prog, "Bob Baker")
	f.stranger = storetest.SeedAffiliate(t, st.DB(), f.other.ID, storetest.DefaultProgram(t, st.DB(), f.other.ID), "Carl Stranger")
	return f
}

func (f *ordFixture) order(s storetest.OrderSeed) (int64, []int64) {
	f.t.Helper()
	if s.ProgramID == 0 && s.AffiliateID != 0 {
		s.ProgramID = f.prog
	}
	return storetest.InsertOrder(f.t, f.st.DB(), f.ws.ID, s)
}

// rows counts a workspace's rows of table (orders, commissions, audit_log, events).
func (f *ordFixture) rows(table string) int {
	f.t.Helper()
	var n int
	if err := f.st.DB().QueryRow(`SELECT COUNT(*) FROM `+table+` WHERE workspace_id = $1`, f.ws.ID).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// events returns the types of the workspace's events about one resource, oldest first.
func (f *ordFixture) events(resType string, id int64) []string {
	f.t.Helper()
	rows, err := f.st.DB().Query(`SELECT type FROM events WHERE workspace_id = $1 AND resource_type = $2 AND resource_id = $3 ORDER BY id`,
		f.ws.ID, resType, id)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// written is a snapshot of the row counts a write may change.
func (f *ordFixture) written() [4]int {
	return [4]int{f.rows("orders"), f.rows("commissions"), f.rows("audit_log"), f.rows("events")}
}

func expectCode(t *testing.T, err error, code string) {
	t.Helper()
	if heldsway.ErrorCode(err) != code {
		t.Fatalf("want %s, got %v", code, err)
	}
}

func two(a, b int64) []storetest.CommissionSeed {
	return []storetest.CommissionSeed{{AffiliateID: 0, Tier: 1, Amount: a, Rate: ptrInt(1000), BaseAmount: a * 10},
		{AffiliateID: 0, Tier: 2, Amount: b, Rate: ptrInt(200), Rule: "program_tier_rate", BaseAmount: a * 10}}
}

func (f *ordFixture) lines(aff, parent int64, a, b int64) []storetest.CommissionSeed {
	l := two(a, b)
	l[0].AffiliateID, l[1].AffiliateID = aff, parent
	return l
}

func TestOrderFindAndReview(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := ordSetup(t, st)
		id, cids := f.order(storetest.OrderSeed{OrderID: "A-1", Total: 11000, Subtotal: 10000, AffiliateID: f.alice,
			CommissionRate: ptrInt(1000), Lines: f.lines(f.alice, f.bob, 1000, 200),
			Items: []storetest.ItemSeed{{ProductID: "p1", Name: "Mug", Category: "kitchen", Quantity: 2, Price: 5000}}})

		t.Run("find", func(t *testing.T) {
			o, err := st.FindOrder(f.ctx, f.ws.ID, id)
			if err != nil {
				t.Fatal(err)
			}
			if o.OrderID != "A-1" || o.Status != heldsway.OrderPending || o.Total != 11000 || o.CommissionAmount != 1200 ||
				o.Affiliate == nil || o.Affiliate.ID != f.alice || o.Affiliate.Name != "Alice Able" || o.Affiliate.ReferralCode != "ALICEABLE" {
				t.Fatalf("order = %+v", o)
			}
			if len(o.Items) != 1 || o.Items[0] != (heldsway.LineItem{ProductID: "p1", Name: "Mug", Category: "kitchen", Quantity: 2, Price: 5000}) {
				t.Fatalf("items = %+v", o.Items)
			}
			if len(o.Commissions) != 2 || o.Commissions[0].ID != cids[0] || o.Commissions[0].Tier != 1 || o.Commissions[1].Tier != 2 ||
				o.Commissions[1].AffiliateID != f.bob || o.Commissions[0].OrderRef != "A-1" || *o.Commissions[0].Rate != 1000 {
				t.Fatalf("commissions = %+v", o.Commissions)
			}
			_, err = st.FindOrder(f.ctx, f.other.ID, id)
			expectCode(t, err, heldsway.ENOTFOUND)
		})

		t.Run("approve", func(t *testing.T) {
			f.clock.Set(t0.Add(time.Hour))
			o, err := st.ApproveOrder(f.ctx, f.ws.ID, id)
			if err != nil {
				t.Fatal(err)
			}
			if o.Status != heldsway.OrderApproved || o.ApprovedAt == nil || !o.ApprovedAt.Equal(t0.Add(time.Hour)) || o.CommissionAmount != 1200 {
				t.Fatalf("approved order = %+v", o)
			}
			for _, c := range o.Commissions {
				if c.Status != heldsway.CommissionApproved || c.ApprovedAt == nil {
					t.Fatalf("commission %+v not approved", c)
				}
			}
			if got := f.events("order", id); !slices.Equal(got, []string{"conversion.approved"}) {
				t.Fatalf("order events = %v", got)
			}
			for _, c := range cids {
				if got := f.events("commission", c); !slices.Equal(got, []string{"commission.approved"}) {
					t.Fatalf("commission %d events = %v", c, got)
				}
			}
			var actor, action string
			if err := st.DB().QueryRow(`SELECT actor_type, action FROM audit_log WHERE workspace_id = $1 AND resource_type = 'order'
				AND resource_id = $2`, f.ws.ID, id).Scan(&actor, &action); err != nil || actor != "system" || action != "order.approve" {
				t.Fatalf("audit = %s %s %v", actor, action, err)
			}
		})

		t.Run("transitions from a final status are refused and write nothing", func(t *testing.T) {
			before := f.written()
			_, err := st.ApproveOrder(f.ctx, f.ws.ID, id)
			expectCode(t, err, heldsway.ETRANSITION)
			if msg := heldsway.ErrorMessage(err); msg != "Cannot approve an order whose status is approved: only pending orders can be approved." {
				t.Fatalf("message = %q", msg)
			}
			_, err = st.RejectOrder(f.ctx, f.ws.ID, id, "late")
			expectCode(t, err, heldsway.ETRANSITION)
			if !strings.Contains(heldsway.ErrorMessage(err), "status is approved") {
				t.Fatalf("message = %q", heldsway.ErrorMessage(err))
			}
			if f.written() != before {
				t.Fatal("a refused transition wrote rows")
			}
		})

		t.Run("another workspace's order is not found", func(t *testing.T) {
			other, _ := storetest.InsertOrder(t, st.DB(), f.other.ID, storetest.OrderSeed{OrderID: "X-1", Total: 100, Subtotal: 100})
			before := f.written()
			_, err := st.ApproveOrder(f.ctx, f.ws.ID, other)
			expectCode(t, err, heldsway.ENOTFOUND)
			_, err = st.RefundOrder(f.ctx, f.ws.ID, other, nil, "")
			expectCode(t, err, heldsway.ENOTFOUND)
			if f.written() != before {
				t.Fatal("wrote rows")
			}
		})

		t.Run("reject", func(t *testing.T) {
			rid, rcids := f.order(storetest.OrderSeed{OrderID: "R-1", Total: 5000, Subtotal: 5000, AffiliateID: f.alice,
				Lines: f.lines(f.alice, f.bob, 500, 100), AutoApproveAt: ptrTime(t0.Add(48 * time.Hour))})
			o, err := st.RejectOrder(f.ctx, f.ws.ID, rid, "fraud suspected")
			if err != nil {
				t.Fatal(err)
			}
			if o.Status != heldsway.OrderRejected || o.RejectedAt == nil || o.CommissionAmount != 0 || o.AutoApproveAt != nil {
				t.Fatalf("rejected order = %+v", o)
			}
			for _, c := range o.Commissions {
				if c.Status != heldsway.CommissionRejected || c.Amount == 0 {
					t.Fatalf("commission %+v", c)
				}
			}
			if got := f.events("commission", rcids[1]); !slices.Equal(got, []string{"commission.rejected"}) {
				t.Fatalf("events = %v", got)
			}
			var changes string
			if err := st.DB().QueryRow(`SELECT changes FROM audit_log WHERE workspace_id = $1 AND action = 'order.reject' AND resource_id = $2`,
				f.ws.ID, rid).Scan(&changes); err != nil || !strings.Contains(changes, "fraud suspected") {
				t.Fatalf("audit changes = %s (%v)", changes, err)
			}
			_, err = st.ApproveOrder(f.ctx, f.ws.ID, rid)
			expectCode(t, err, heldsway.ETRANSITION)
		})

		t.Run("self-referral lines stay rejected on approval", func(t *testing.T) {
			l := f.lines(f.alice, f.bob, 700, 100)
			l[0].Status, l[1].Status = heldsway.CommissionRejected, heldsway.CommissionRejected
			sid, scids := f.order(storetest.OrderSeed{OrderID: "S-1", Total: 7000, Subtotal: 7000, AffiliateID: f.alice,
				Flags: "self_referral", Lines: l})
			o, err := st.ApproveOrder(f.ctx, f.ws.ID, sid)
			if err != nil {
				t.Fatal(err)
			}
			if o.Status != heldsway.OrderApproved || o.CommissionAmount != 0 || o.Commissions[0].Status != heldsway.CommissionRejected ||
				o.Commissions[1].Status != heldsway.CommissionRejected {
				t.Fatalf("order = %+v %+v", o, o.Commissions)
			}
			if len(f.events("commission", scids[0])) != 0 {
				t.Fatal("an unchanged commission got an event")
			}
		})

		t.Run("concurrent reviews: exactly one wins", func(t *testing.T) {
			cid, _ := f.order(storetest.OrderSeed{OrderID: "C-1", Total: 5000, Subtotal: 5000, AffiliateID: f.alice,
				Lines: f.lines(f.alice, f.bob, 500, 100)})
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = st.ReviewOrder(context.Background(), f.ws.ID, cid, i%2 == 0, "")
				}()
			}
			wg.Wait()
			wins := 0
			for _, err := range errs {
				if err == nil {
					wins++
				} else if heldsway.ErrorCode(err) != heldsway.ETRANSITION {
					t.Fatalf("unexpected error %v", err)
				}
			}
			if wins != 1 {
				t.Fatalf("%d reviews won", wins)
			}
			if got := f.events("order", cid); len(got) != 1 {
				t.Fatalf("events = %v", got)
			}
		})
	})
}

func TestOrderBulkReview(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := ordSetup(t, st)
		p1, _ := f.order(storetest.OrderSeed{OrderID: "B-1", Total: 100, Subtotal: 100})
		done, _ := f.order(storetest.OrderSeed{OrderID: "B-2", Total: 100, Subtotal: 100, Status: heldsway.OrderApproved})
		p2, _ := f.order(storetest.OrderSeed{OrderID: "B-3", Total: 100, Subtotal: 100})
		other, _ := storetest.InsertOrder(t, st.DB(), f.other.ID, storetest.OrderSeed{OrderID: "B-4", Total: 100, Subtotal: 100})
		res, err := st.BulkReview(f.ctx, f.ws.ID, []int64{p1, done, 999999, other, p2}, false, "bulk")
		if err != nil {
			t.Fatal(err)
		}
		want := []struct {
			status, code string
		}{{"rejected", ""}, {"", heldsway.ETRANSITION}, {"", heldsway.ENOTFOUND}, {"", heldsway.ENOTFOUND}, {"rejected", ""}}
		for i, r := range res {
			if r.Status != want[i].status || heldsway.ErrorCode(r.Err) != want[i].code {
				t.Fatalf("result %d = %+v (%v)", i, r, r.Err)
			}
		}
		var st4 string
		if err := st.DB().QueryRow(`SELECT status FROM orders WHERE id = $1`, other).Scan(&st4); err != nil || st4 != "pending" {
			t.Fatalf("other workspace's order is %s", st4)
		}
	})
}

func TestOrderListAndSorts(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := ordSetup(t, st)
		day := func(d int) time.Time { return time.Date(2026, 10, d, 10, 0, 0, 0, time.UTC) }
		type seed struct {
			ref    string
			status string
			aff    int64
			total  int64
			comm   int64
			at     time.Time
		}
		seeds := []seed{
			{"ORD001", "pending", f.alice, 5000, 500, day(1)},
			{"ORD002", "approved", f.bob, 12000, 1200, day(2)},
			{"ORD003", "rejected", f.alice, 700, 0, day(3)},
			{"ORD004", "pending", 0, 3000, 0, day(3).Add(13*time.Hour + 59*time.Minute)}, // 23:59 on the 3rd
			{"ORD005", "cancelled", f.bob, 12000, 300, day(4)},
			{"ORD006", "approved", f.alice, 9900, 990, day(5)},
			{"ord_07%", "pending", f.bob, 100, 10, day(5)}, // equal converted_at: tie broken by id
		}
		ids := map[string]int64{}
		for _, s := range seeds {
			var lines []storetest.CommissionSeed
			if s.aff != 0 {
				lines = []storetest.CommissionSeed{{AffiliateID: s.aff, Amount: s.comm, Rate: ptrInt(1000), BaseAmount: s.total}}
			}
			ids[s.ref], _ = f.order(storetest.OrderSeed{OrderID: s.ref, Status: s.status, AffiliateID: s.aff, Total: s.total,
				Subtotal: s.total, ConvertedAt: s.at, Lines: lines, CommissionAmount: ptrInt(s.comm)})
		}
		storetest.InsertOrder(t, st.DB(), f.other.ID, storetest.OrderSeed{OrderID: "ORD001", Total: 1, Subtotal: 1})

		refs := func(items []*heldsway.Order) []string {
			out := []string{}
			for _, o := range items {
				out = append(out, o.OrderID)
			}
			return out
		}
		list := func(flt heldsway.OrderFilter, o heldsway.ListOptions) []string {
			t.Helper()
			if o.PerPage == 0 {
				o.PerPage = 100
			}
			res, err := st.ListOrders(f.ctx, f.ws.ID, flt, o)
			if err != nil {
				t.Fatal(err)
			}
			return refs(res.Items)
		}
		from, to := day(3), day(3).Add(24*time.Hour-time.Microsecond)
		filters := []struct {
			name string
			f    heldsway.OrderFilter
			want []string
		}{
			{"none (converted_at desc, id desc)", heldsway.OrderFilter{}, []string{"ord_07%", "ORD006", "ORD005", "ORD004", "ORD003", "ORD002", "ORD001"}},
			{"status", heldsway.OrderFilter{Status: "approved"}, []string{"ORD006", "ORD002"}},
			{"affiliate", heldsway.OrderFilter{AffiliateID: f.bob}, []string{"ord_07%", "ORD005", "ORD002"}},
			{"one day, both ends inclusive", heldsway.OrderFilter{From: &from, To: &to}, []string{"ORD004", "ORD003"}},
			{"from only", heldsway.OrderFilter{From: ptrTime(day(5))}, []string{"ord_07%", "ORD006"}},
			{"search order id, any case", heldsway.OrderFilter{Search: "ord00"}, []string{"ORD006", "ORD005", "ORD004", "ORD003", "ORD002", "ORD001"}},
			{"search affiliate name", heldsway.OrderFilter{Search: "alice"}, []string{"ORD006", "ORD003", "ORD001"}},
			{"wildcards match literally", heldsway.OrderFilter{Search: "_07%"}, []string{"ord_07%"}},
			{"underscore is not a wildcard", heldsway.OrderFilter{Search: "R_0"}, []string{}},
			{"combined", heldsway.OrderFilter{Status: "pending", AffiliateID: f.alice}, []string{"ORD001"}},
		}
		for _, c := range filters {
			t.Run(c.name, func(t *testing.T) {
				if got := list(c.f, heldsway.ListOptions{Desc: true}); !slices.Equal(got, c.want) {
					t.Fatalf("got %v, want %v", got, c.want)
				}
			})
		}

		t.Run("affiliate of another workspace is a validation error", func(t *testing.T) {
			_, err := st.ListOrders(f.ctx, f.ws.ID, heldsway.OrderFilter{AffiliateID: f.stranger}, heldsway.ListOptions{PerPage: 10})
			expectCode(t, err, heldsway.EVALIDATION)
			_, err = st.OrderStats(f.ctx, f.ws.ID, heldsway.OrderFilter{AffiliateID: f.stranger})
			expectCode(t, err, heldsway.EVALIDATION)
			_, err = st.ListOrders(f.ctx, f.ws.ID, heldsway.OrderFilter{}, heldsway.ListOptions{PerPage: 10, Sort: "customer_email"})
			expectCode(t, err, heldsway.EVALIDATION)
		})

		t.Run("list items carry their commissions", func(t *testing.T) {
			res, err := st.ListOrders(f.ctx, f.ws.ID, heldsway.OrderFilter{Search: "ORD002"}, heldsway.ListOptions{PerPage: 5})
			if err != nil || len(res.Items) != 1 || len(res.Items[0].Commissions) != 1 || res.Items[0].Commissions[0].Amount != 1200 {
				t.Fatalf("%+v %v", res.Items, err)
			}
			if res.Items[0].Items != nil {
				t.Fatal("list read line items")
			}
		})

		// Each sort in both directions, paged two at a time: the pages join up
		// to the full order with no duplicate and no gap.
		key := map[string]func(s seed) string{
			heldsway.OrderSortConvertedAt:      func(s seed) string { return fmt.Sprintf("%020d", s.at.UnixMicro()) },
			heldsway.OrderSortOrderID:          func(s seed) string { return s.ref },
			heldsway.OrderSortOrderTotal:       func(s seed) string { return fmt.Sprintf("%020d", s.total) },
			heldsway.OrderSortCommissionAmount: func(s seed) string { return fmt.Sprintf("%020d", s.comm) },
			heldsway.OrderSortStatus:           func(s seed) string { return s.status },
		}
		for name, k := range key {
			for _, desc := range []bool{false, true} {
				t.Run(fmt.Sprintf("sort %s desc=%v", name, desc), func(t *testing.T) {
					want := slices.Clone(seeds)
					sort.SliceStable(want, func(i, j int) bool {
						ki, kj := k(want[i]), k(want[j])
						if ki == kj {
							return (ids[want[i].ref] < ids[want[j].ref]) != desc
						}
						if name == heldsway.OrderSortOrderID {
							// Compare case-insensitively: PostgreSQL's collation may
							// sort "ord_07%" among the upper-case ids.
							ki, kj = strings.ToLower(ki), strings.ToLower(kj)
						}
						return (ki < kj) != desc
					})
					var wantRefs []string
					for _, s := range want {
						wantRefs = append(wantRefs, s.ref)
					}
					var got []string
					o := heldsway.ListOptions{PerPage: 2, Sort: name, Desc: desc}
					for range 10 {
						res, err := st.ListOrders(f.ctx, f.ws.ID, heldsway.OrderFilter{}, o)
						if err != nil {
							t.Fatal(err)
						}
						got = append(got, refs(res.Items)...)
						if res.Next == nil {
							break
						}
						o.After = res.Next
					}
					if name == heldsway.OrderSortOrderID {
						// The engines' collations disagree on "_" against digits;
						// the pages must still be a duplicate-free walk of all rows
						// in the engine's own order: compare as sets plus order
						// of the plain ids.
						gs, ws := slices.Clone(got), slices.Clone(wantRefs)
						slices.Sort(gs)
						slices.Sort(ws)
						if !slices.Equal(gs, ws) {
							t.Fatalf("got %v, want %v", got, wantRefs)
						}
						plain := func(l []string) []string {
							return slices.DeleteFunc(slices.Clone(l), func(s string) bool { return strings.HasPrefix(s, "ord_") })
						}
						if !slices.Equal(plain(got), plain(wantRefs)) {
							t.Fatalf("got %v, want %v", got, wantRefs)
						}
						return
					}
					if !slices.Equal(got, wantRefs) {
						t.Fatalf("got %v, want %v", got, wantRefs)
					}
				})
			}
		}

		t.Run("page offset for compatibility", func(t *testing.T) {
			got := list(heldsway.OrderFilter{}, heldsway.ListOptions{PerPage: 3, Offset: 3, Desc: true})
			if !slices.Equal(got, []string{"ORD004", "ORD003", "ORD002"}) {
				t.Fatalf("got %v", got)
			}
		})

		t.Run("export streams every selected order in list order", func(t *testing.T) {
			var got []string
			err := st.ExportOrders(f.ctx, f.ws.ID, heldsway.OrderFilter{Status: "pending"},
				heldsway.ListOptions{Sort: heldsway.OrderSortOrderTotal, Desc: false}, func(o *heldsway.Order) error {
					got = append(got, o.OrderID)
					return nil
				})
			if err != nil || !slices.Equal(got, []string{"ord_07%", "ORD004", "ORD001"}) {
				t.Fatalf("got %v %v", got, err)
			}
		})
	})
}

func TestOrderExportChunks(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := ordSetup(t, st)
		const n = 1234 // more than two chunks
		tx, err := st.DB().Begin()
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if _, err := tx.Exec(`INSERT INTO orders (workspace_id, order_id, status, currency, total, subtotal, attribution,
				converted_at, created_at, updated_at) VALUES ($1, $2, 'pending', 'USD', $3, $3, 'none', $4, $4, $4)`,
				f.ws.ID, fmt.Sprintf("E%05d", i), i, t0.Add(time.Duration(i%50)*time.Minute).UnixMicro()); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		var last int64 = -1
		err = st.ExportOrders(f.ctx, f.ws.ID, heldsway.OrderFilter{}, heldsway.ListOptions{Sort: heldsway.OrderSortOrderTotal},
			func(o *heldsway.Order) error {
				if seen[o.OrderID] || o.Total < last {
					return fmt.Errorf("duplicate or out of order: %s", o.OrderID)
				}
				seen[o.OrderID], last = true, o.Total
				return nil
			})
		if err != nil || len(seen) != n {
			t.Fatalf("exported %d of %d: %v", len(seen), n, err)
		}
	})
}

func TestOrderStats(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := ordSetup(t, st)
		l := func(amount, reversed int64, status string) storetest.CommissionSeed {
			return storetest.CommissionSeed{AffiliateID: f.alice, Amount: amount, Reversed: reversed, Status: status, BaseAmount: amount}
		}
		f.order(storetest.OrderSeed{OrderID: "S1", Total: 11000, Subtotal: 10000, AffiliateID: f.alice,
			Lines: []storetest.CommissionSeed{l(1000, 0, "pending"), l(200, 0, "pending")}})
		f.order(storetest.OrderSeed{OrderID: "S2", Status: "approved", Total: 5050, Subtotal: 5005, AffiliateID: f.alice,
			Lines: []storetest.CommissionSeed{l(500, 100, "approved")}})
		f.order(storetest.OrderSeed{OrderID: "S3", Status: "approved", Total: 3000, Subtotal: 3000, AffiliateID: f.alice,
			Lines: []storetest.CommissionSeed{l(300, 0, "paid")}})
		f.order(storetest.OrderSeed{OrderID: "S4", Status: "rejected", Total: 2000, Subtotal: 2000, AffiliateID: f.alice,
			Lines: []storetest.CommissionSeed{l(200, 0, "rejected")}})
		f.order(storetest.OrderSeed{OrderID: "S5", Status: "cancelled", Total: 1000, Subtotal: 1000, AffiliateID: f.alice,
			Lines: []storetest.CommissionSeed{l(100, 100, "reversed")}})
		f.order(storetest.OrderSeed{OrderID: "J1", Currency: "JPY", Total: 12000, Subtotal: 11000, AffiliateID: f.alice,
			Lines: []storetest.CommissionSeed{l(1100, 0, "pending")}})
		f.order(storetest.OrderSeed{OrderID: "U1", Total: 999, Subtotal: 990})
		storetest.InsertOrder(t, st.DB(), f.other.ID, storetest.OrderSeed{OrderID: "S1", Total: 777, Subtotal: 777})

		got, err := st.OrderStats(f.ctx, f.ws.ID, heldsway.OrderFilter{})
		if err != nil {
			t.Fatal(err)
		}
		want := []heldsway.OrderStats{
			{Currency: "JPY", TotalOrders: 1, TotalRevenue: 11000, TotalCommission: 1100, Pending: 1100},
			{Currency: "USD", TotalOrders: 6, TotalRevenue: 10000 + 5005 + 3000 + 2000 + 1000 + 990,
				TotalCommission: 1200 + 400 + 300, Pending: 1200, Approved: 400 + 300},
		}
		if !slices.Equal(got, want) {
			t.Fatalf("got %+v\nwant %+v", got, want)
		}
		got, err = st.OrderStats(f.ctx, f.ws.ID, heldsway.OrderFilter{Status: "approved"})
		if err != nil || !slices.Equal(got, []heldsway.OrderStats{{Currency: "USD", TotalOrders: 2, TotalRevenue: 8005,
			TotalCommission: 700, Approved: 700}}) {
			t.Fatalf("approved: %+v %v", got, err)
		}
		got, err = st.OrderStats(f.ctx, f.ws.ID, heldsway.OrderFilter{Search: "nothing matches"})
		if err != nil || got == nil || len(got) != 0 {
			t.Fatalf("empty: %#v %v", got, err)
		}
	})
}

func TestOrderRefund(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := ordSetup(t, st)

		t.Run("partial refunds add up to the full reversal exactly", func(t *testing.T) {
			// 1000 and 333 on a 100.00 order refunded in thirds: per-refund rounding
			// would drift; cumulative reversal does not.
			id, cids := f.order(storetest.OrderSeed{OrderID: "RF-1", Total: 10000, Subtotal: 10000, AffiliateID: f.alice,
				Lines: f.lines(f.alice, f.bob, 1000, 333), AutoApproveAt: ptrTime(t0.Add(time.Hour))})
			refunds := []int64{3333, 3333, 3334}
			var refunded int64
			for i, r := range refunds {
				o, err := st.RefundOrder(f.ctx, f.ws.ID, id, ptrInt(r), "customer return")
				if err != nil {
					t.Fatalf("refund %d: %v", i, err)
				}
				refunded += r
				if o.RefundedAmount != refunded {
					t.Fatalf("refunded = %d", o.RefundedAmount)
				}
				for j, amt := range []int64{1000, 333} {
					want := money.MulDivHalfUp(amt, refunded, 10000)
					if got := o.Commissions[j].ReversedAmount; got != want {
						t.Fatalf("after refund %d line %d reversed %d, want %d", i, j, got, want)
					}
				}
				if o.CommissionAmount != 1333-o.Commissions[0].ReversedAmount-o.Commissions[1].ReversedAmount {
					t.Fatalf("commission_amount %d", o.CommissionAmount)
				}
				if i < 2 && (o.Status != heldsway.OrderPending || o.AutoApproveAt == nil || o.Commissions[0].Status != heldsway.CommissionPending) {
					t.Fatalf("partial refund changed status: %+v", o)
				}
			}
			o, _ := st.FindOrder(f.ctx, f.ws.ID, id)
			if o.Status != heldsway.OrderCancelled || o.CancelledAt == nil || o.AutoApproveAt != nil || o.CommissionAmount != 0 ||
				o.Commissions[0].ReversedAmount != 1000 || o.Commissions[1].ReversedAmount != 333 ||
				o.Commissions[0].Status != heldsway.CommissionReversed || o.Commissions[1].Status != heldsway.CommissionReversed {
				t.Fatalf("after full refund: %+v %+v %+v", o, o.Commissions[0], o.Commissions[1])
			}
			// The reversal events add up to each line's amount.
			for j, cid := range cids {
				rows, err := st.DB().Query(`SELECT data FROM events WHERE workspace_id = $1 AND type = 'commission.reversed'
					AND resource_id = $2`, f.ws.ID, cid)
				if err != nil {
					t.Fatal(err)
				}
				var sum int64
				n := 0
				for rows.Next() {
					var data string
					_ = rows.Scan(&data)
					var ev struct {
						Reversal json.Number `json:"reversal"`
					}
					_ = json.Unmarshal([]byte(data), &ev)
					m, err := money.ParseMinor(ev.Reversal.String(), money.MustCurrency("USD"))
					if err != nil {
						t.Fatal(err)
					}
					sum += m
					n++
				}
				rows.Close()
				if want := []int64{1000, 333}[j]; sum != want || n != 3 {
					t.Fatalf("line %d: %d events reversing %d, want 3 reversing %d", j, n, sum, want)
				}
			}
			if got := f.events("order", id); !slices.Equal(got, []string{"conversion.refunded", "conversion.refunded", "conversion.refunded"}) {
				t.Fatalf("order events = %v", got)
			}

			before := f.written()
			_, err := st.RefundOrder(f.ctx, f.ws.ID, id, nil, "")
			expectCode(t, err, heldsway.ETRANSITION)
			if f.written() != before {
				t.Fatal("refused refund wrote rows")
			}
		})

		t.Run("bad amounts are refused and write nothing", func(t *testing.T) {
			id, _ := f.order(storetest.OrderSeed{OrderID: "RF-2", Total: 5000, Subtotal: 5000, AffiliateID: f.alice,
				Lines: f.lines(f.alice, f.bob, 500, 50)})
			if _, err := st.RefundOrder(f.ctx, f.ws.ID, id, ptrInt(2000), ""); err != nil {
				t.Fatal(err)
			}
			before := f.written()
			for _, amt := range []int64{0, -1, 3001} {
				_, err := st.RefundOrder(f.ctx, f.ws.ID, id, ptrInt(amt), "")
				expectCode(t, err, heldsway.EVALIDATION)
			}
			_, err := st.RefundOrder(f.ctx, f.ws.ID, id, ptrInt(3001), "")
			if d := err.(*heldsway.Error).Details["amount"]; fmt.Sprint(d) != "[The amount may not be greater than the unrefunded total of 30.00 USD.]" {
				t.Fatalf("details = %v", d)
			}
			if f.written() != before {
				t.Fatal("wrote rows")
			}
			// The rest in full: the remaining 30.00 and the rest of each line.
			o, err := st.RefundOrder(f.ctx, f.ws.ID, id, nil, "")
			if err != nil || o.RefundedAmount != 5000 || o.Commissions[0].ReversedAmount != 500 || o.Commissions[1].ReversedAmount != 50 {
				t.Fatalf("%+v %v", o, err)
			}
		})

		t.Run("approved order: partial keeps approved; paid lines keep their payout", func(t *testing.T) {
			l := f.lines(f.alice, f.bob, 1000, 200)
			l[0].Status, l[0].PayoutID = heldsway.CommissionPaid, ptrInt(42)
			l[1].Status = heldsway.CommissionApproved
			id, _ := f.order(storetest.OrderSeed{OrderID: "RF-3", Status: heldsway.OrderApproved, Total: 20000, Subtotal: 20000,
				AffiliateID: f.alice, Lines: l})
			o, err := st.RefundOrder(f.ctx, f.ws.ID, id, ptrInt(5000), "")
			if err != nil {
				t.Fatal(err)
			}
			if o.Status != heldsway.OrderApproved || o.Commissions[0].Status != heldsway.CommissionPaid ||
				o.Commissions[0].ReversedAmount != 250 || o.Commissions[1].ReversedAmount != 50 || o.CommissionAmount != 900 {
				t.Fatalf("%+v %+v %+v", o, o.Commissions[0], o.Commissions[1])
			}
			o, err = st.RefundOrder(f.ctx, f.ws.ID, id, nil, "chargeback")
			if err != nil || o.Status != heldsway.OrderCancelled || o.Commissions[0].Status != heldsway.CommissionReversed ||
				o.Commissions[0].PayoutID == nil || *o.Commissions[0].PayoutID != 42 || o.Commissions[0].Net() != 0 {
				t.Fatalf("%+v %+v %v", o, o.Commissions[0], err)
			}
		})

		t.Run("rejected order stays rejected; its lines are not reversed", func(t *testing.T) {
			l := f.lines(f.alice, f.bob, 1000, 200)
			l[0].Status, l[1].Status = heldsway.CommissionRejected, heldsway.CommissionRejected
			id, cids := f.order(storetest.OrderSeed{OrderID: "RF-4", Status: heldsway.OrderRejected, Total: 1000, Subtotal: 1000,
				AffiliateID: f.alice, Lines: l})
			o, err := st.RefundOrder(f.ctx, f.ws.ID, id, nil, "")
			if err != nil || o.Status != heldsway.OrderRejected || o.RefundedAmount != 1000 || o.Commissions[0].ReversedAmount != 0 {
				t.Fatalf("%+v %v", o, err)
			}
			if len(f.events("commission", cids[0])) != 0 {
				t.Fatal("rejected line got an event")
			}
		})

		t.Run("zero-decimal currency rounds half-up to whole yen", func(t *testing.T) {
			id, _ := f.order(storetest.OrderSeed{OrderID: "RF-5", Currency: "JPY", Total: 1001, Subtotal: 1001, AffiliateID: f.alice,
				Lines: []storetest.CommissionSeed{{AffiliateID: f.alice, Amount: 100, BaseAmount: 1001}}})
			o, err := st.RefundOrder(f.ctx, f.ws.ID, id, ptrInt(500), "")
			// 100 × 500 / 1001 = 49.95… → 50
			if err != nil || o.Commissions[0].ReversedAmount != 50 {
				t.Fatalf("%+v %v", o, err)
			}
		})

		t.Run("concurrent partial refunds never over-refund", func(t *testing.T) {
			id, _ := f.order(storetest.OrderSeed{OrderID: "RF-6", Total: 1000, Subtotal: 1000, AffiliateID: f.alice,
				Lines: []storetest.CommissionSeed{{AffiliateID: f.alice, Amount: 100, BaseAmount: 1000}}})
			var wg sync.WaitGroup
			errs := make([]error, 6)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = st.RefundOrder(context.Background(), f.ws.ID, id, ptrInt(300), "")
				}()
			}
			wg.Wait()
			ok := 0
			for _, err := range errs {
				if err == nil {
					ok++
				} else if c := heldsway.ErrorCode(err); c != heldsway.EVALIDATION && c != heldsway.ECONFLICT {
					t.Fatalf("unexpected %v", err)
				}
			}
			o, _ := st.FindOrder(f.ctx, f.ws.ID, id)
			if ok != 3 || o.RefundedAmount != 900 || o.Commissions[0].ReversedAmount != 90 {
				t.Fatalf("%d succeeded; refunded %d reversed %d", ok, o.RefundedAmount, o.Commissions[0].ReversedAmount)
			}
		})
	})
}

func TestListCommissions(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := ordSetup(t, st)
		mk := func(ref string, at time.Time, aff int64, status string, amount int64) {
			f.order(storetest.OrderSeed{OrderID: ref, Total: 10000, Subtotal: 10000, AffiliateID: aff, ConvertedAt: at,
				Lines: []storetest.CommissionSeed{{AffiliateID: aff, Amount: amount, Status: status, BaseAmount: 10000}}})
		}
		d := func(n int) time.Time { return time.Date(2026, 9, n, 8, 0, 0, 0, time.UTC) }
		mk("L1", d(1), f.alice, "pending", 100)
		mk("L2", d(2), f.bob, "approved", 300)
		mk("L3", d(3), f.alice, "paid", 200)
		mk("L4", d(4), f.alice, "reversed", 50)
		mk("L5", d(5), f.bob, "rejected", 400)
		storetest.InsertOrder(t, st.DB(), f.other.ID, storetest.OrderSeed{OrderID: "L1", Total: 1, Subtotal: 1,
			Lines: []storetest.CommissionSeed{{AffiliateID: f.stranger, Amount: 1}}})

		refs := func(flt heldsway.CommissionFilter, o heldsway.ListOptions) []string {
			t.Helper()
			var out []string
			o.PerPage = 2
			for range 10 {
				res, err := st.ListCommissions(f.ctx, f.ws.ID, flt, o)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range res.Items {
					if c.OrderID == 0 || c.WorkspaceID != f.ws.ID {
						t.Fatalf("commission %+v", c)
					}
					out = append(out, c.OrderRef)
				}
				if res.Next == nil {
					return out
				}
				o.After = res.Next
			}
			return out
		}
		cases := []struct {
			name string
			f    heldsway.CommissionFilter
			o    heldsway.ListOptions
			want []string
		}{
			{"all, newest first", heldsway.CommissionFilter{}, heldsway.ListOptions{Desc: true}, []string{"L5", "L4", "L3", "L2", "L1"}},
			{"oldest first", heldsway.CommissionFilter{}, heldsway.ListOptions{}, []string{"L1", "L2", "L3", "L4", "L5"}},
			{"by amount", heldsway.CommissionFilter{}, heldsway.ListOptions{Sort: "amount", Desc: true}, []string{"L5", "L2", "L3", "L1", "L4"}},
			{"affiliate", heldsway.CommissionFilter{AffiliateID: f.bob}, heldsway.ListOptions{Desc: true}, []string{"L5", "L2"}},
			{"status paid", heldsway.CommissionFilter{Status: "paid"}, heldsway.ListOptions{}, []string{"L3"}},
			{"status reversed", heldsway.CommissionFilter{Status: "reversed"}, heldsway.ListOptions{}, []string{"L4"}},
			{"date range inclusive", heldsway.CommissionFilter{From: ptrTime(d(2)), To: ptrTime(d(4))}, heldsway.ListOptions{},
				[]string{"L2", "L3", "L4"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if got := refs(c.f, c.o); !slices.Equal(got, c.want) {
					t.Fatalf("got %v, want %v", got, c.want)
				}
			})
		}
		_, err := st.ListCommissions(f.ctx, f.ws.ID, heldsway.CommissionFilter{AffiliateID: f.stranger}, heldsway.ListOptions{PerPage: 5})
		expectCode(t, err, heldsway.EVALIDATION)
	})
}

func ptrTime(t time.Time) *time.Time { return &t }

var quiet = slog.New(slog.DiscardHandler)

// setAutoApprove configures the program's auto-approval.
func setAutoApprove(t *testing.T, st *store.Store, prog int64, enabled bool, lo, hi *int64) {
	t.Helper()
	if _, err := st.DB().Exec(`UPDATE programs SET auto_approve_enabled = $1, auto_approve_min_amount = $2,
		auto_approve_max_amount = $3 WHERE id = $4`, enabled, lo, hi, prog); err != nil {
		t.Fatal(err)
	}
}

func TestAutoApproveDue(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := ordSetup(t, st)
		now := t0.Add(72 * time.Hour)
		past, future := ptrTime(now.Add(-time.Minute)), ptrTime(now.Add(time.Minute))
		setAutoApprove(t, st, f.prog, true, ptrInt(1000), ptrInt(50000))
		eur := affProgramCur(t, st, f.ws.ID, "EUR")
		mk := func(ref string, total int64, at *time.Time, status string, prog int64) int64 {
			s := storetest.OrderSeed{OrderID: ref, Total: total, Subtotal: total, Status: status, ProgramID: prog, AutoApproveAt: at}
			if prog != 0 { // else unattributed: the default program's criteria apply
				s.AffiliateID, s.Lines = f.alice, f.lines(f.alice, f.bob, total/10, total/50)
			}
			id, _ := storetest.InsertOrder(t, st.DB(), f.ws.ID, s)
			return id
		}
		inBounds := mk("AA-in", 1000, past, "", f.prog) // at the minimum: inclusive
		atMax := mk("AA-max", 50000, past, "", f.prog)
		below := mk("AA-low", 999, past, "", f.prog)
		above := mk("AA-high", 50001, past, "", f.prog)
		notDue := mk("AA-later", 5000, future, "", f.prog)
		unattributed := mk("AA-none", 5000, past, "", 0)
		otherCur := mk("AA-eur", 5000, past, "", eur)
		manual := mk("AA-manual", 5000, nil, "", f.prog)

		n, err := st.AutoApproveDue(f.ctx, now, 100)
		if err != nil || n != 3 {
			t.Fatalf("approved %d: %v", n, err)
		}
		status := func(id int64) (string, bool) {
			var s string
			var at *int64
			if err := st.DB().QueryRow(`SELECT status, auto_approve_at FROM orders WHERE id = $1`, id).Scan(&s, &at); err != nil {
				t.Fatal(err)
			}
			return s, at != nil
		}
		for id, want := range map[int64]struct {
			status    string
			scheduled bool
		}{inBounds: {"approved", false}, atMax: {"approved", false}, unattributed: {"approved", false},
			below: {"pending", false}, above: {"pending", false}, otherCur: {"pending", false},
			notDue: {"pending", true}, manual: {"pending", false}} {
			if s, sch := status(id); s != want.status || sch != want.scheduled {
				t.Fatalf("order %d: %s scheduled=%v, want %+v", id, s, sch, want)
			}
		}
		var actor string
		if err := st.DB().QueryRow(`SELECT actor_type FROM audit_log WHERE action = 'order.approve' AND resource_id = $1`,
			inBounds).Scan(&actor); err != nil || actor != "system" {
			t.Fatalf("actor %q %v", actor, err)
		}
		var why string
		if err := st.DB().QueryRow(`SELECT changes FROM audit_log WHERE action = 'order.auto_approve_skip' AND resource_id = $1`,
			below).Scan(&why); err != nil || !strings.Contains(why, "below the auto-approval minimum 10.00") {
			t.Fatalf("skip audit %q %v", why, err)
		}
		events := f.rows("events")

		// Nothing is due any more: a second sweep approves nothing and writes nothing.
		if n, err := st.AutoApproveDue(f.ctx, now, 100); err != nil || n != 0 || f.rows("events") != events {
			t.Fatalf("second sweep: %d %v", n, err)
		}
		// The later order falls due; with auto-approval disabled it is held.
		setAutoApprove(t, st, f.prog, false, nil, nil)
		if n, err := st.AutoApproveDue(f.ctx, now.Add(time.Hour), 100); err != nil || n != 0 {
			t.Fatalf("disabled sweep: %d %v", n, err)
		}
		if s, sch := status(notDue); s != "pending" || sch {
			t.Fatalf("disabled: %s %v", s, sch)
		}
	})
}

// Turning auto-approval on, or changing its delay, through the settings or a
// program's update reschedules the pending orders that follow it; turning it
// off unschedules them. Held self-referrals and reviewed orders stay as they are.
func TestAutoApprovalFollowsSettingsChanges(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := ordSetup(t, st)
		other := affProgramCur(t, st, f.ws.ID, "USD") // auto-approval on, no delay
		at := t0.Add(-48 * time.Hour)
		mk := func(ref string, prog, aff int64, status, flags string) int64 {
			s := storetest.OrderSeed{OrderID: ref, Total: 5000, Subtotal: 5000, Status: status, ProgramID: prog, Flags: flags, ConvertedAt: at}
			if aff != 0 {
				s.AffiliateID, s.Lines = aff, f.lines(aff, f.bob, 500, 100)
			}
			id, _ := storetest.InsertOrder(t, st.DB(), f.ws.ID, s)
			return id
		}
		attributed := mk("RS-aff", f.prog, f.alice, "", "")
		unattributed := mk("RS-none", 0, 0, "", "")
		self := mk("RS-self", f.prog, f.alice, "", "self_referral")
		approved := mk("RS-approved", f.prog, f.alice, "approved", "")
		otherProg := mk("RS-other", other, f.alice, "", "")
		schedule := func(id int64) *time.Time {
			var at *int64
			if err := st.DB().QueryRow(`SELECT auto_approve_at FROM orders WHERE id = $1`, id).Scan(&at); err != nil {
				t.Fatal(err)
			}
			if at == nil {
				return nil
			}
			v := time.UnixMicro(*at).UTC()
			return &v
		}
		expect := func(step string, want map[int64]*time.Time) {
			t.Helper()
			for id, w := range want {
				got := schedule(id)
				if (got == nil) != (w == nil) || got != nil && !got.Equal(w.Truncate(time.Microsecond)) {
					t.Fatalf("%s: order %d auto_approve_at %v, want %v", step, id, got, w)
				}
			}
		}
		in := func(d time.Duration) *time.Time { v := at.Add(d); return &v }
		on, off, two, five := true, false, 2, 5

		if _, err := st.UpdateSettings(f.ctx, f.ws.ID, heldsway.SettingsPatch{AutoApproveEnabled: &on, AutoApproveDelayDays: &two}); err != nil {
			t.Fatal(err)
		}
		expect("enabled", map[int64]*time.Time{attributed: in(48 * time.Hour), unattributed: in(48 * time.Hour), self: nil,
			approved: nil, otherProg: nil})
		if _, err := st.UpdateSettings(f.ctx, f.ws.ID, heldsway.SettingsPatch{AutoApproveDelayDays: &five}); err != nil {
			t.Fatal(err)
		}
		expect("delay", map[int64]*time.Time{attributed: in(120 * time.Hour), unattributed: in(120 * time.Hour), self: nil, otherProg: nil})
		// The sweep approves what the new schedule makes due, with its usual checks.
		if n, err := st.AutoApproveDue(f.ctx, at.Add(121*time.Hour), 100); err != nil || n != 2 {
			t.Fatalf("sweep after the change: %d %v", n, err)
		}
		if _, err := st.UpdateProgram(f.ctx, f.ws.ID, other, heldsway.ProgramPatch{AutoApproveDelayDays: &two}); err != nil {
			t.Fatal(err)
		}
		expect("other program's delay", map[int64]*time.Time{otherProg: in(48 * time.Hour)})
		if _, err := st.UpdateProgram(f.ctx, f.ws.ID, other, heldsway.ProgramPatch{AutoApproveEnabled: &off}); err != nil {
			t.Fatal(err)
		}
		expect("disabled", map[int64]*time.Time{otherProg: nil})
	})
}

// affProgramCur returns a non-default program of the workspace in currency cur.
func affProgramCur(t *testing.T, st *store.Store, wsID int64, cur string) int64 {
	t.Helper()
	var id int64
	if err := st.DB().QueryRow(`INSERT INTO programs (workspace_id, name, currency, commission_type, auto_approve_enabled,
		created_at, updated_at) VALUES ($1, $2, $3, 'percentage', $4, 0, 0) RETURNING id`, wsID, "Program "+cur, cur, true).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestAutoApproveRestartAndNodes: the schedule lives in the database. A node
// that stops mid-sweep and comes back (the store closed and reopened on the
// same SQLite file or PostgreSQL schema) approves what fell due before the
// restart; two nodes sweeping at once approve each order exactly once.
func TestAutoApproveRestartAndNodes(t *testing.T) {
	t.Parallel()
	for _, engine := range storetest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dsn := storetest.DSN(t, engine)
			open := func() *store.Store {
				st, err := store.Open(ctx, dsn)
				if err != nil {
					t.Fatal(err)
				}
				return st
			}
			st := open()
			f := ordSetup(t, st)
			setAutoApprove(t, st, f.prog, true, nil, nil)
			due := t0.Add(-time.Hour)
			seed := func(st *store.Store, prefix string, n int) []int64 {
				var ids []int64
				for i := range n {
					id, _ := storetest.InsertOrder(t, st.DB(), f.ws.ID, storetest.OrderSeed{OrderID: fmt.Sprintf("%s-%02d", prefix, i),
						Total: 1000, Subtotal: 1000, AffiliateID: f.alice, ProgramID: f.prog, AutoApproveAt: &due,
						Lines: f.lines(f.alice, f.bob, 100, 20)})
					ids = append(ids, id)
				}
				return ids
			}
			checkOnce := func(st *store.Store, ids []int64) {
				t.Helper()
				for _, id := range ids {
					var status string
					var approved, commEvents int
					if err := st.DB().QueryRow(`SELECT status FROM orders WHERE id = $1`, id).Scan(&status); err != nil {
						t.Fatal(err)
					}
					if err := st.DB().QueryRow(`SELECT COUNT(*) FROM events WHERE resource_type = 'order' AND resource_id = $1
						AND type = 'conversion.approved'`, id).Scan(&approved); err != nil {
						t.Fatal(err)
					}
					if err := st.DB().QueryRow(`SELECT COUNT(*) FROM events e JOIN commissions c ON c.id = e.resource_id
						WHERE e.resource_type = 'commission' AND c.order_id = $1`, id).Scan(&commEvents); err != nil {
						t.Fatal(err)
					}
					if status != "approved" || approved != 1 || commEvents != 2 {
						t.Fatalf("order %d: %s, %d approval events, %d commission events", id, status, approved, commEvents)
					}
				}
			}

			// A node runs the worker and dies after its first sweep.
			first := seed(st, "R", 25)
			sweeps := &countingApprover{OrderApprover: st, sweeps: 1}
			wctx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				done <- (&worker.AutoApprover{Orders: sweeps, Logger: quiet, Limit: 10, Interval: time.Hour, Now: func() time.Time { return t0 }}).Run(wctx)
			}()
			deadline := time.Now().Add(10 * time.Second)
			for sweeps.approvedSoFar() < 10 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			stop()
			<-done
			if n := sweeps.approvedSoFar(); n != 10 {
				t.Fatalf("approved %d before the restart, want 10", n)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}

			// It comes back: what fell due before the restart is approved.
			st = open()
			defer st.Close()
			wctx, stop = context.WithCancel(ctx)
			go func() {
				done <- (&worker.AutoApprover{Orders: st, Logger: quiet, Limit: 7, Interval: 10 * time.Millisecond, Now: func() time.Time { return t0 }}).Run(wctx)
			}()
			for !allApproved(t, st, first) {
				if time.Now().After(deadline) {
					t.Fatal("orders due before the restart were not approved after it")
				}
				time.Sleep(5 * time.Millisecond)
			}
			stop()
			<-done
			checkOnce(st, first)

			// Two nodes sweep the same orders at once.
			second := seed(st, "N", 30)
			st2 := open()
			defer st2.Close()
			var wg sync.WaitGroup
			counts := make([]int, 2)
			for i, node := range []*store.Store{st, st2} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 100 {
						n, err := node.AutoApproveDue(ctx, t0, 4)
						if err != nil {
							t.Error(err)
							return
						}
						counts[i] += n
						if n == 0 && allApproved(t, node, second) {
							return
						}
					}
				}()
			}
			wg.Wait()
			if counts[0]+counts[1] != len(second) {
				t.Fatalf("nodes approved %v, want %d in all", counts, len(second))
			}
			checkOnce(st, second)
		})
	}
}

// countingApprover counts approvals and, after sweeps sweeps, hangs until its
// context ends: a node that dies mid-backlog.
type countingApprover struct {
	worker.OrderApprover
	sweeps int
	mu     sync.Mutex
	calls  int
	n      int
}

func (c *countingApprover) AutoApproveDue(ctx context.Context, now time.Time, limit int) (int, error) {
	c.mu.Lock()
	c.calls++
	hang := c.calls > c.sweeps
	c.mu.Unlock()
	if hang {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	n, err := c.OrderApprover.AutoApproveDue(ctx, now, limit)
	c.mu.Lock()
	c.n += n
	c.mu.Unlock()
	return n, err
}

func (c *countingApprover) approvedSoFar() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func allApproved(t *testing.T, st *store.Store, ids []int64) bool {
	t.Helper()
	for _, id := range ids {
		var s string
		if err := st.DB().QueryRow(`SELECT status FROM orders WHERE id = $1`, id).Scan(&s); err != nil {
			t.Fatal(err)
		}
		if s != "approved" {
			return false
		}
	}
	return true
}
