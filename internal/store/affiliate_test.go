package store_test

import (
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// The AffiliateService conformance suite, on every engine.

// affFixture is a workspace with its default program and a second program.
type affFixture struct {
	*bundle
	ws       *heldsway.Workspace
	def, alt int64 // program ids
}

func affSetup(t *testing.T, st *store.Store) *affFixture {
	t.Helper()
	b := setup(t, st)
	ws := b.workspace("Aff " + t.Name())
	f := &affFixture{bundle: b, ws: ws}
	f.def = affDefaultProgram(t, st, ws.ID)
	f.alt = affProgram(t, st, ws.ID, "Second", "percentage", ptrInt(1500), false)
	return f
}

// affDefaultProgram returns the workspace's default program, creating one when
// the workspace was made without it.
func affDefaultProgram(t *testing.T, st *store.Store, wsID int64) int64 {
	t.Helper()
	var id int64
	err := st.DB().QueryRow(`SELECT id FROM programs WHERE workspace_id = $1 AND is_default`, wsID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return affProgram(t, st, wsID, "Default", "percentage", nil, true)
	}
	if err != nil {
		t.Fatalf("default program: %v", err)
	}
	return id
}

func affProgram(t *testing.T, st *store.Store, wsID int64, name, typ string, value *int64, isDefault bool) int64 {
	t.Helper()
	var v sql.NullInt64
	if value != nil {
		v = sql.NullInt64{Int64: *value, Valid: true}
	}
	var id int64
	err := st.DB().QueryRow(`INSERT INTO programs (workspace_id, name, currency, commission_type, commission_value, is_default, created_at, updated_at)
		VALUES ($1, $2, 'USD', $3, $4, $5, 0, 0) RETURNING id`, wsID, name, typ, v, isDefault).Scan(&id)
	if err != nil {
		t.Fatalf("insert program: %v", err)
	}
	return id
}

func ptrInt(v int64) *int64   { return &v }
func ptrStr(v string) *string { return &v }

func (f *affFixture) create(in heldsway.AffiliateCreate) *heldsway.Affiliate {
	f.t.Helper()
	a, err := f.st.CreateAffiliate(f.ctx, f.ws.ID, &in)
	if err != nil {
		f.t.Fatalf("create affiliate %s: %v", in.Email, err)
	}
	return a
}

func (f *affFixture) count(table string) int {
	f.t.Helper()
	var n int
	if err := f.st.DB().QueryRow(`SELECT COUNT(*) FROM `+table+` WHERE workspace_id = $1`, f.ws.ID).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// writes counts the rows every affiliate write touches.
func (f *affFixture) writes() [4]int {
	return [4]int{f.count("affiliates"), f.count("affiliate_users"), f.count("audit_log"), f.count("events")}
}

var reGenerated = regexp.MustCompile(`^[A-Z0-9]{8}$`)

func TestCreateAffiliate(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := affSetup(t, st)
		a := f.create(heldsway.AffiliateCreate{Name: " Ada Lovelace ", Email: "Ada@Example.COM", Phone: ptrStr("+14155552671"),
			CommissionRate: ptrInt(1250), Notes: ptrStr("vip")})
		if a.ID == 0 || a.WorkspaceID != f.ws.ID || a.ProgramID != f.def || a.Status != heldsway.AffiliateActive {
			t.Fatalf("created %+v", a)
		}
		if !reGenerated.MatchString(a.ReferralCode) {
			t.Fatalf("generated code %q", a.ReferralCode)
		}
		if a.User.Name != "Ada Lovelace" || a.User.Email != "ada@example.com" || *a.User.Phone != "+14155552671" || a.User.ID == 0 {
			t.Fatalf("user %+v", a.User)
		}
		if !sameTime(a.ApprovedAt, ptr(t0)) || a.SuspendedAt != nil || a.TerminatedAt != nil || !a.CreatedAt.Equal(t0) {
			t.Fatalf("timestamps %+v", a)
		}
		if *a.CommissionRate != 1250 || *a.Notes != "vip" {
			t.Fatalf("rate/notes %+v", a)
		}
		got, err := st.FindAffiliate(f.ctx, f.ws.ID, a.ID)
		if err != nil || got.ReferralCode != a.ReferralCode || got.User.ID != a.User.ID {
			t.Fatalf("find: %+v %v", got, err)
		}
		var action, typ string
		if err := st.DB().QueryRow(`SELECT action FROM audit_log WHERE workspace_id = $1 AND resource_id = $2`, f.ws.ID, a.ID).Scan(&action); err != nil || action != "affiliate.create" {
			t.Fatalf("audit %q %v", action, err)
		}
		if err := st.DB().QueryRow(`SELECT type FROM events WHERE workspace_id = $1 AND resource_id = $2`, f.ws.ID, a.ID).Scan(&typ); err != nil || typ != "affiliate.created" {
			t.Fatalf("event %q %v", typ, err)
		}

		t.Run("pending has no approved_at", func(t *testing.T) {
			p := f.create(heldsway.AffiliateCreate{Name: "P", Email: "p@example.com", Status: heldsway.AffiliatePending})
			if p.Status != heldsway.AffiliatePending || p.ApprovedAt != nil {
				t.Fatalf("%+v", p)
			}
		})
		t.Run("given code is upper-cased; taken code conflicts", func(t *testing.T) {
			c := f.create(heldsway.AffiliateCreate{Name: "C", Email: "c@example.com", ReferralCode: "summer24"})
			if c.ReferralCode != "SUMMER24" {
				t.Fatalf("code %q", c.ReferralCode)
			}
			before := f.writes()
			_, err := st.CreateAffiliate(f.ctx, f.ws.ID, &heldsway.AffiliateCreate{Name: "D", Email: "d@example.com", ReferralCode: "Summer24"})
			wantCode(t, err, heldsway.ECONFLICT)
			if f.writes() != before {
				t.Fatalf("conflict wrote rows: %v → %v", before, f.writes())
			}
		})
		t.Run("email unique per program, user shared across programs", func(t *testing.T) {
			before := f.writes()
			_, err := st.CreateAffiliate(f.ctx, f.ws.ID, &heldsway.AffiliateCreate{Name: "Ada", Email: "ADA@example.com"})
			wantCode(t, err, heldsway.ECONFLICT)
			if f.writes() != before {
				t.Fatalf("conflict wrote rows")
			}
			b := f.create(heldsway.AffiliateCreate{Name: "Ada King", Email: "ada@example.com", ProgramID: &f.alt})
			if b.User.ID != a.User.ID || b.ProgramID != f.alt || b.User.Name != "Ada King" {
				t.Fatalf("second enrolment %+v (first user %d)", b, a.User.ID)
			}
			// The first enrolment follows the shared profile; the phone, not sent, is kept.
			first, _ := st.FindAffiliate(f.ctx, f.ws.ID, a.ID)
			if first.User.Name != "Ada King" || first.User.Phone == nil {
				t.Fatalf("first enrolment not synced: %+v", first.User)
			}
			var name string
			_ = st.DB().QueryRow(`SELECT name FROM affiliates WHERE id = $1`, a.ID).Scan(&name)
			if name != "Ada King" {
				t.Fatalf("denormalised name %q", name)
			}
		})
		t.Run("references", func(t *testing.T) {
			other := f.workspace("Other " + t.Name())
			otherProg := affProgram(t, st, other.ID, "Theirs", "flat", nil, false)
			parentAlt := f.create(heldsway.AffiliateCreate{Name: "Alt parent", Email: "altp@example.com", ProgramID: &f.alt})
			cases := []struct {
				name  string
				in    heldsway.AffiliateCreate
				field string
			}{
				{"program of another workspace", heldsway.AffiliateCreate{ProgramID: &otherProg}, "program_id"},
				{"unknown program", heldsway.AffiliateCreate{ProgramID: ptrInt(999999)}, "program_id"},
				{"unknown parent", heldsway.AffiliateCreate{ParentAffiliateID: ptrInt(999999)}, "parent_affiliate_id"},
				{"parent in another program", heldsway.AffiliateCreate{ParentAffiliateID: &parentAlt.ID}, "parent_affiliate_id"},
				{"bad email", heldsway.AffiliateCreate{Email: "Ada <x@example.com>"}, "email"},
				{"bad phone", heldsway.AffiliateCreate{Phone: ptrStr("4155552671")}, "phone"},
				{"rate over 100", heldsway.AffiliateCreate{CommissionRate: ptrInt(10001)}, "commission_rate"},
				{"short code", heldsway.AffiliateCreate{ReferralCode: "AB1"}, "referral_code"},
				{"code with symbols", heldsway.AffiliateCreate{ReferralCode: "AB-12"}, "referral_code"},
				{"status", heldsway.AffiliateCreate{Status: "suspended"}, "status"},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					in := c.in
					if in.Name == "" {
						in.Name = "N"
					}
					if in.Email == "" {
						in.Email = "ref-" + c.field + "@example.com"
					}
					before := f.writes()
					_, err := st.CreateAffiliate(f.ctx, f.ws.ID, &in)
					wantCode(t, err, heldsway.EVALIDATION)
					var he *heldsway.Error
					if !errors.As(err, &he) || he.Details[c.field] == nil {
						t.Fatalf("want details on %s, got %v", c.field, err)
					}
					if f.writes() != before {
						t.Fatalf("invalid create wrote rows")
					}
				})
			}
		})
	})
}

// TestReferralCodeRetry is not parallel, and runs its engines one after the
// other: it swaps the package's code generator.
func TestReferralCodeRetry(t *testing.T) {
	for _, engine := range storetest.Engines() {
		t.Run(engine, func(t *testing.T) {
			st := storetest.Open(t, engine)
			f := affSetup(t, st)
			f.create(heldsway.AffiliateCreate{Name: "A", Email: "a@example.com", ReferralCode: "TAKEN001"})
			seq := []string{"TAKEN001", "TAKEN001", "FRESH002"}
			calls := 0
			restore := store.SetReferralCodeSource(func() (string, error) {
				c := seq[min(calls, len(seq)-1)]
				calls++
				return c, nil
			})
			defer restore()
			b := f.create(heldsway.AffiliateCreate{Name: "B", Email: "b@example.com"})
			if b.ReferralCode != "FRESH002" || calls != 3 {
				t.Fatalf("code %q after %d draws", b.ReferralCode, calls)
			}
			seq, calls = []string{"TAKEN001"}, 0
			before := f.writes()
			if _, err := st.CreateAffiliate(f.ctx, f.ws.ID, &heldsway.AffiliateCreate{Name: "C", Email: "c@example.com"}); err == nil {
				t.Fatal("create succeeded with every code taken")
			}
			if calls != 10 || f.writes() != before {
				t.Fatalf("%d draws, writes %v → %v", calls, before, f.writes())
			}
		})
	}
}

func TestUpdateAffiliate(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := affSetup(t, st)
		a := f.create(heldsway.AffiliateCreate{Name: "Ada", Email: "ada@example.com", Phone: ptrStr("+14155552671"),
			CommissionRate: ptrInt(1000), Notes: ptrStr("n")})
		f.clock.Set(t0.Add(time.Hour))

		t.Run("partial", func(t *testing.T) {
			u, err := st.UpdateAffiliate(f.ctx, f.ws.ID, a.ID, &heldsway.AffiliateUpdate{Notes: ptrStr("changed"), SetNotes: true})
			if err != nil || *u.Notes != "changed" || *u.CommissionRate != 1000 || u.User.Name != "Ada" || *u.User.Phone != "+14155552671" {
				t.Fatalf("%+v %v", u, err)
			}
			if !u.UpdatedAt.Equal(t0.Add(time.Hour)) {
				t.Fatalf("updated_at %v", u.UpdatedAt)
			}
		})
		t.Run("null clears", func(t *testing.T) {
			u, err := st.UpdateAffiliate(f.ctx, f.ws.ID, a.ID, &heldsway.AffiliateUpdate{SetNotes: true, SetCommissionRate: true, SetPhone: true})
			if err != nil || u.Notes != nil || u.CommissionRate != nil || u.User.Phone != nil {
				t.Fatalf("%+v %v", u, err)
			}
		})
		t.Run("profile and code", func(t *testing.T) {
			sib := f.create(heldsway.AffiliateCreate{Name: "Ada", Email: "ada@example.com", ProgramID: &f.alt})
			u, err := st.UpdateAffiliate(f.ctx, f.ws.ID, a.ID, &heldsway.AffiliateUpdate{Name: ptrStr("Ada K"),
				Email: ptrStr("ADA.K@example.com"), ReferralCode: ptrStr("adak")})
			if err != nil || u.User.Name != "Ada K" || u.User.Email != "ada.k@example.com" || u.ReferralCode != "ADAK" {
				t.Fatalf("%+v %v", u, err)
			}
			s, _ := st.FindAffiliate(f.ctx, f.ws.ID, sib.ID)
			if s.User.Email != "ada.k@example.com" || s.User.Name != "Ada K" {
				t.Fatalf("sibling not synced: %+v", s.User)
			}
			res, _ := st.ListAffiliates(f.ctx, f.ws.ID, heldsway.AffiliateFilter{Search: "ada.k@"}, heldsway.ListOptions{PerPage: 10})
			if len(res.Items) != 2 {
				t.Fatalf("search after e-mail change found %d", len(res.Items))
			}
			var n int
			_ = st.DB().QueryRow(`SELECT COUNT(*) FROM audit_log WHERE workspace_id = $1 AND resource_id = $2 AND action = 'affiliate.update'`,
				f.ws.ID, sib.ID).Scan(&n)
			if n != 1 {
				t.Fatalf("sibling audit entries: %d", n)
			}
		})
		t.Run("conflicts", func(t *testing.T) {
			b := f.create(heldsway.AffiliateCreate{Name: "Bob", Email: "bob@example.com", ReferralCode: "BOBCODE"})
			before := f.writes()
			_, err := st.UpdateAffiliate(f.ctx, f.ws.ID, b.ID, &heldsway.AffiliateUpdate{Email: ptrStr("ada.k@example.com")})
			wantCode(t, err, heldsway.ECONFLICT)
			_, err = st.UpdateAffiliate(f.ctx, f.ws.ID, b.ID, &heldsway.AffiliateUpdate{ReferralCode: ptrStr("adak")})
			wantCode(t, err, heldsway.ECONFLICT)
			if f.writes() != before {
				t.Fatalf("conflict wrote rows")
			}
		})
		t.Run("parents and cycles", func(t *testing.T) {
			p := f.create(heldsway.AffiliateCreate{Name: "P", Email: "p@example.com"})
			c := f.create(heldsway.AffiliateCreate{Name: "C", Email: "c@example.com", ParentAffiliateID: &p.ID})
			g := f.create(heldsway.AffiliateCreate{Name: "G", Email: "g@example.com", ParentAffiliateID: &c.ID})
			for _, tc := range []struct {
				name     string
				id, to   int64
				wantCode string
			}{
				{"self", p.ID, p.ID, heldsway.EVALIDATION},
				{"child as parent", p.ID, c.ID, heldsway.EVALIDATION},
				{"grandchild as parent", p.ID, g.ID, heldsway.EVALIDATION},
				{"unknown", p.ID, 999999, heldsway.EVALIDATION},
			} {
				t.Run(tc.name, func(t *testing.T) {
					before := f.writes()
					_, err := st.UpdateAffiliate(f.ctx, f.ws.ID, tc.id, &heldsway.AffiliateUpdate{ParentAffiliateID: &tc.to, SetParent: true})
					wantCode(t, err, tc.wantCode)
					if f.writes() != before {
						t.Fatalf("wrote rows")
					}
				})
			}
			u, err := st.UpdateAffiliate(f.ctx, f.ws.ID, g.ID, &heldsway.AffiliateUpdate{SetParent: true})
			if err != nil || u.ParentAffiliateID != nil {
				t.Fatalf("clear parent: %+v %v", u, err)
			}
			_, err = st.UpdateAffiliate(f.ctx, f.ws.ID, p.ID, &heldsway.AffiliateUpdate{ProgramID: &f.alt})
			wantCode(t, err, heldsway.EVALIDATION) // p has a sub-affiliate
			_, err = st.UpdateAffiliate(f.ctx, f.ws.ID, c.ID, &heldsway.AffiliateUpdate{ProgramID: &f.alt})
			wantCode(t, err, heldsway.EVALIDATION) // c's parent stays in the default program
			m, err := st.UpdateAffiliate(f.ctx, f.ws.ID, c.ID, &heldsway.AffiliateUpdate{ProgramID: &f.alt, SetParent: true})
			if err != nil || m.ProgramID != f.alt || m.ParentAffiliateID != nil {
				t.Fatalf("move: %+v %v", m, err)
			}
		})
		t.Run("other workspace", func(t *testing.T) {
			other := f.workspace("Other " + t.Name())
			_, err := st.UpdateAffiliate(f.ctx, other.ID, a.ID, &heldsway.AffiliateUpdate{Notes: ptrStr("x"), SetNotes: true})
			wantCode(t, err, heldsway.ENOTFOUND)
			_, err = st.FindAffiliate(f.ctx, other.ID, a.ID)
			wantCode(t, err, heldsway.ENOTFOUND)
		})
	})
}

func TestAffiliateTransitions(t *testing.T) {
	t.Parallel()
	// Digest §7.1's table: action → the statuses it may start from.
	allowed := map[string][]string{
		heldsway.ActionApprove:    {"pending"},
		heldsway.ActionSuspend:    {"pending", "active"},
		heldsway.ActionReactivate: {"suspended"},
		heldsway.ActionTerminate:  {"pending", "active", "suspended"},
	}
	to := map[string]string{heldsway.ActionApprove: "active", heldsway.ActionSuspend: "suspended",
		heldsway.ActionReactivate: "active", heldsway.ActionTerminate: "terminated"}
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := affSetup(t, st)
		n := 0
		// inStatus creates an affiliate and drives it to status through legal actions.
		inStatus := func(status string) *heldsway.Affiliate {
			n++
			a := f.create(heldsway.AffiliateCreate{Name: "T", Email: fmt.Sprintf("t%d@example.com", n), Status: heldsway.AffiliatePending})
			var action string
			switch status {
			case "active":
				action = heldsway.ActionApprove
			case "suspended":
				action = heldsway.ActionSuspend
			case "terminated":
				action = heldsway.ActionTerminate
			}
			if action != "" {
				var err error
				if a, err = st.TransitionAffiliate(f.ctx, f.ws.ID, a.ID, action, ""); err != nil {
					t.Fatal(err)
				}
			}
			return a
		}
		for _, action := range []string{heldsway.ActionApprove, heldsway.ActionSuspend, heldsway.ActionReactivate, heldsway.ActionTerminate} {
			for _, from := range heldsway.AffiliateStatuses {
				t.Run(action+" from "+from, func(t *testing.T) {
					a := inStatus(from)
					f.clock.Set(t0.Add(time.Duration(n) * time.Minute))
					before := f.writes()
					got, err := st.TransitionAffiliate(f.ctx, f.ws.ID, a.ID, action, "because")
					if !slices.Contains(allowed[action], from) {
						wantCode(t, err, heldsway.ETRANSITION)
						want := fmt.Sprintf("Cannot %s an affiliate whose status is %s: %s → %s is not allowed.", action, from, from, to[action])
						if heldsway.ErrorMessage(err) != want {
							t.Fatalf("message %q", heldsway.ErrorMessage(err))
						}
						if f.writes() != before {
							t.Fatalf("refused transition wrote rows")
						}
						return
					}
					if err != nil || got.Status != to[action] {
						t.Fatalf("%+v %v", got, err)
					}
					now := f.clock.Now()
					switch action {
					case heldsway.ActionApprove:
						if !sameTime(got.ApprovedAt, &now) {
							t.Fatalf("approved_at %v", got.ApprovedAt)
						}
					case heldsway.ActionSuspend:
						if !sameTime(got.SuspendedAt, &now) {
							t.Fatalf("suspended_at %v", got.SuspendedAt)
						}
					case heldsway.ActionReactivate:
						if got.SuspendedAt != nil || got.ApprovedAt == nil {
							t.Fatalf("reactivated %+v", got)
						}
					case heldsway.ActionTerminate:
						if !sameTime(got.TerminatedAt, &now) {
							t.Fatalf("terminated_at %v", got.TerminatedAt)
						}
					}
					var changes, typ string
					if err := st.DB().QueryRow(`SELECT changes FROM audit_log WHERE workspace_id = $1 AND resource_id = $2 AND action = $3`,
						f.ws.ID, a.ID, "affiliate."+action).Scan(&changes); err != nil {
						t.Fatal(err)
					}
					if !regexp.MustCompile(`"reason":\{"before":null,"after":"because"\}`).MatchString(changes) {
						t.Fatalf("audit changes without reason: %s", changes)
					}
					if err := st.DB().QueryRow(`SELECT type FROM events WHERE workspace_id = $1 AND resource_id = $2 ORDER BY id DESC LIMIT 1`,
						f.ws.ID, a.ID).Scan(&typ); err != nil || typ != heldsway.AffiliateTransitions[action].Event {
						t.Fatalf("event %q %v", typ, err)
					}
				})
			}
		}
		t.Run("concurrent transitions: one wins", func(t *testing.T) {
			a := inStatus("active")
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					action := heldsway.ActionSuspend
					if i%2 == 1 {
						action = heldsway.ActionTerminate
					}
					_, errs[i] = st.TransitionAffiliate(f.ctx, f.ws.ID, a.ID, action, "")
				}()
			}
			wg.Wait()
			wins := 0
			for _, err := range errs {
				switch heldsway.ErrorCode(err) {
				case "":
					wins++
				case heldsway.ETRANSITION:
				default:
					// suspend then terminate is legal; what must never happen is
					// two suspends or two terminates both succeeding.
					t.Fatalf("unexpected error %v", err)
				}
			}
			var events int
			_ = st.DB().QueryRow(`SELECT COUNT(*) FROM events WHERE workspace_id = $1 AND resource_id = $2 AND type IN ('affiliate.suspended', 'affiliate.terminated')`,
				f.ws.ID, a.ID).Scan(&events)
			if wins == 0 || wins > 2 || events != wins {
				t.Fatalf("%d wins, %d events", wins, events)
			}
		})
		t.Run("not found", func(t *testing.T) {
			_, err := st.TransitionAffiliate(f.ctx, f.ws.ID, 999999, heldsway.ActionApprove, "")
			wantCode(t, err, heldsway.ENOTFOUND)
		})
	})
}

func TestDeleteAffiliate(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := affSetup(t, st)
		a := f.create(heldsway.AffiliateCreate{Name: "A", Email: "a@example.com"})
		child := f.create(heldsway.AffiliateCreate{Name: "C", Email: "c@example.com", ParentAffiliateID: &a.ID})
		keep := f.create(heldsway.AffiliateCreate{Name: "K", Email: "k@example.com"})
		db := st.DB()
		for i, aff := range []int64{a.ID, a.ID, keep.ID} {
			if _, err := db.Exec(`INSERT INTO links (workspace_id, affiliate_id, slug, destination_url, created_at, updated_at)
				VALUES ($1, $2, $3, 'https://example.com', 0, 0)`, f.ws.ID, aff, fmt.Sprintf("slug%d", i)); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`INSERT INTO coupons (workspace_id, affiliate_id, code, code_key, discount_type, discount_value, currency, created_at, updated_at)
				VALUES ($1, $2, $3, $3, 'percentage', 1000, 'USD', 0, 0)`, f.ws.ID, aff, fmt.Sprintf("CODE%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.Exec(`INSERT INTO link_batches (workspace_id, affiliate_id, status, total_items, request, created_at, updated_at)
			VALUES ($1, $2, 'completed', 1, '[]', 0, 0)`, f.ws.ID, a.ID); err != nil {
			t.Fatal(err)
		}
		other := f.workspace("Other " + t.Name())
		_, err := st.DeleteAffiliate(f.ctx, other.ID, a.ID)
		wantCode(t, err, heldsway.ENOTFOUND)

		if _, err := st.DeleteAffiliate(f.ctx, f.ws.ID, a.ID); err != nil {
			t.Fatal(err)
		}
		_, err = st.FindAffiliate(f.ctx, f.ws.ID, a.ID)
		wantCode(t, err, heldsway.ENOTFOUND)
		if n := f.count("links"); n != 1 {
			t.Fatalf("links left: %d", n)
		}
		if n := f.count("coupons"); n != 1 {
			t.Fatalf("coupons left: %d", n)
		}
		if n := f.count("link_batches"); n != 0 {
			t.Fatalf("batches left: %d", n)
		}
		var users int
		_ = db.QueryRow(`SELECT COUNT(*) FROM affiliate_users WHERE workspace_id = $1 AND id = $2`, f.ws.ID, a.User.ID).Scan(&users)
		if users != 0 {
			t.Fatal("orphaned affiliate user kept")
		}
		c, _ := st.FindAffiliate(f.ctx, f.ws.ID, child.ID)
		if c.ParentAffiliateID != nil {
			t.Fatalf("child keeps deleted parent %d", *c.ParentAffiliateID)
		}
		for action, want := range map[string]int{"affiliate.delete": 1, "link.delete": 2, "coupon.delete": 2} {
			var n int
			_ = db.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE workspace_id = $1 AND action = $2`, f.ws.ID, action).Scan(&n)
			if n != want {
				t.Fatalf("%s entries: %d, want %d", action, n, want)
			}
		}
		_, err = st.DeleteAffiliate(f.ctx, f.ws.ID, a.ID)
		wantCode(t, err, heldsway.ENOTFOUND)

		t.Run("shared user stays", func(t *testing.T) {
			x := f.create(heldsway.AffiliateCreate{Name: "X", Email: "x@example.com"})
			y := f.create(heldsway.AffiliateCreate{Name: "X", Email: "x@example.com", ProgramID: &f.alt})
			if _, err := st.DeleteAffiliate(f.ctx, f.ws.ID, x.ID); err != nil {
				t.Fatal(err)
			}
			if got, err := st.FindAffiliate(f.ctx, f.ws.ID, y.ID); err != nil || got.User.ID != x.User.ID {
				t.Fatalf("%+v %v", got, err)
			}
		})
	})
}

func TestListAffiliates(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := affSetup(t, st)
		statuses := []string{"pending", "active", "suspended", "terminated"}
		var all []*heldsway.Affiliate
		for i := range 23 {
			// Several rows share a created_at, rate and status, so the id tie-break matters.
			f.clock.Set(t0.Add(time.Duration(i/3) * time.Second))
			in := heldsway.AffiliateCreate{Name: fmt.Sprintf("Person %02d", i), Email: fmt.Sprintf("p%02d@example.com", i),
				Status: heldsway.AffiliatePending}
			if i%4 != 0 {
				in.CommissionRate = ptrInt(int64(i%3) * 500)
			}
			if i%5 == 0 {
				in.ProgramID = &f.alt
			}
			a := f.create(in)
			if s := statuses[i%4]; s != "pending" {
				action := map[string]string{"active": "approve", "suspended": "suspend", "terminated": "terminate"}[s]
				a, _ = st.TransitionAffiliate(f.ctx, f.ws.ID, a.ID, action, "")
			}
			all = append(all, a)
		}
		f.create(heldsway.AffiliateCreate{Name: "100%_off", Email: "weird@example.com", ReferralCode: "WEIRD"})
		other := f.workspace("Other " + t.Name())
		affDefaultProgram(t, st, other.ID)
		if _, err := st.CreateAffiliate(f.ctx, other.ID, &heldsway.AffiliateCreate{Name: "Person 99", Email: "p99@example.com"}); err != nil {
			t.Fatal(err)
		}

		for _, sort := range []string{"created_at", "referral_code", "status", "commission_rate"} {
			for _, desc := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s desc=%v", sort, desc), func(t *testing.T) {
					o := heldsway.ListOptions{PerPage: 5, Sort: sort, Desc: desc}
					var got []*heldsway.Affiliate
					for pages := 0; ; pages++ {
						res, err := st.ListAffiliates(f.ctx, f.ws.ID, heldsway.AffiliateFilter{}, o)
						if err != nil {
							t.Fatal(err)
						}
						got = append(got, res.Items...)
						if res.Next == nil {
							break
						}
						if pages > 10 {
							t.Fatal("too many pages")
						}
						o.After = res.Next
					}
					if len(got) != 24 {
						t.Fatalf("paged %d rows, want 24", len(got))
					}
					seen := map[int64]bool{}
					key := func(a *heldsway.Affiliate) string {
						switch sort {
						case "referral_code":
							return a.ReferralCode
						case "status":
							return a.Status
						case "commission_rate":
							r := int64(-1)
							if a.CommissionRate != nil {
								r = *a.CommissionRate
							}
							return fmt.Sprintf("%08d", r+1)
						}
						return fmt.Sprintf("%020d", a.CreatedAt.UnixMicro())
					}
					for i, a := range got {
						if seen[a.ID] {
							t.Fatalf("duplicate %d", a.ID)
						}
						seen[a.ID] = true
						if i == 0 {
							continue
						}
						p := got[i-1]
						less := key(p) < key(a) || key(p) == key(a) && p.ID < a.ID
						if less == desc {
							t.Fatalf("order broken at %d: %s/%d then %s/%d", i, key(p), p.ID, key(a), a.ID)
						}
					}
				})
			}
		}
		t.Run("offset page", func(t *testing.T) {
			first, _ := st.ListAffiliates(f.ctx, f.ws.ID, heldsway.AffiliateFilter{}, heldsway.ListOptions{PerPage: 5, Desc: true})
			second, _ := st.ListAffiliates(f.ctx, f.ws.ID, heldsway.AffiliateFilter{}, heldsway.ListOptions{PerPage: 5, Desc: true, Offset: 5})
			next, _ := st.ListAffiliates(f.ctx, f.ws.ID, heldsway.AffiliateFilter{}, heldsway.ListOptions{PerPage: 5, Desc: true, After: first.Next})
			for i := range second.Items {
				if second.Items[i].ID != next.Items[i].ID {
					t.Fatal("page 2 by offset differs from page 2 by cursor")
				}
			}
		})
		filters := []struct {
			name string
			f    heldsway.AffiliateFilter
			want func(a *heldsway.Affiliate) bool
			n    int
		}{
			{"status", heldsway.AffiliateFilter{Status: "suspended"}, func(a *heldsway.Affiliate) bool { return a.Status == "suspended" }, 6},
			{"program", heldsway.AffiliateFilter{ProgramID: f.alt}, func(a *heldsway.Affiliate) bool { return a.ProgramID == f.alt }, 5},
			{"search name, any case", heldsway.AffiliateFilter{Search: "PERSON 1"}, nil, 10},
			{"search email", heldsway.AffiliateFilter{Search: "P07@EXAMPLE"}, nil, 1},
			{"search code, lower-case", heldsway.AffiliateFilter{Search: "weird"}, nil, 1},
			{"percent is literal", heldsway.AffiliateFilter{Search: "100%"}, nil, 1},
			{"underscore is literal", heldsway.AffiliateFilter{Search: "%_o"}, nil, 1},
			{"lone underscore", heldsway.AffiliateFilter{Search: "_"}, nil, 1},
			{"no match", heldsway.AffiliateFilter{Search: "zzz"}, nil, 0},
			{"status and program", heldsway.AffiliateFilter{Status: "pending", ProgramID: f.alt}, nil, 2},
		}
		for _, c := range filters {
			t.Run("filter "+c.name, func(t *testing.T) {
				res, err := st.ListAffiliates(f.ctx, f.ws.ID, c.f, heldsway.ListOptions{PerPage: 100})
				if err != nil || len(res.Items) != c.n {
					t.Fatalf("got %d, want %d (%v)", len(res.Items), c.n, err)
				}
				for _, a := range res.Items {
					if a.WorkspaceID != f.ws.ID || c.want != nil && !c.want(a) {
						t.Fatalf("unexpected %+v", a)
					}
				}
			})
		}
		t.Run("bad cursor value", func(t *testing.T) {
			_, err := st.ListAffiliates(f.ctx, f.ws.ID, heldsway.AffiliateFilter{},
				heldsway.ListOptions{PerPage: 5, Sort: "created_at", After: &heldsway.Cursor{Sort: "created_at", Value: ptrStr("x"), ID: 1}})
			wantCode(t, err, heldsway.EVALIDATION)
		})
	})
}

func TestAffiliateCommission(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := affSetup(t, st)
		flat := affProgram(t, st, f.ws.ID, "Flat", "flat", ptrInt(500), false)
		if _, err := st.DB().Exec(`UPDATE programs SET commission_type = 'percentage', commission_value = 1000 WHERE id = $1`, f.def); err != nil {
			t.Fatal(err)
		}
		a := f.create(heldsway.AffiliateCreate{Name: "A", Email: "a@example.com"})
		b := f.create(heldsway.AffiliateCreate{Name: "B", Email: "b@example.com", ProgramID: &f.alt})
		c := f.create(heldsway.AffiliateCreate{Name: "C", Email: "c@example.com", ProgramID: &flat})
		eq := func(p *int64, want int64) bool { return (p == nil && want < 0) || (p != nil && *p == want) }
		check := func(t *testing.T, id, aff, def, eff int64) {
			t.Helper()
			v, err := st.AffiliateCommission(f.ctx, f.ws.ID, id)
			if err != nil || !eq(v.AffiliateRate, aff) || !eq(v.BusinessDefaultRate, def) || !eq(v.EffectiveRate, eff) {
				t.Fatalf("got %v/%v/%v %v, want %d/%d/%d", v.AffiliateRate, v.BusinessDefaultRate, v.EffectiveRate, err, aff, def, eff)
			}
		}
		check(t, a.ID, -1, 1000, 1000)
		check(t, b.ID, -1, 1000, 1500) // its own program's percentage
		check(t, c.ID, -1, 1000, -1)   // a flat program has no percentage
		v, err := st.SetAffiliateCommission(f.ctx, f.ws.ID, a.ID, ptrInt(1234))
		if err != nil || *v.EffectiveRate != 1234 || *v.AffiliateRate != 1234 {
			t.Fatalf("%+v %v", v, err)
		}
		check(t, a.ID, 1234, 1000, 1234)
		if _, err := st.SetAffiliateCommission(f.ctx, f.ws.ID, a.ID, nil); err != nil {
			t.Fatal(err)
		}
		check(t, a.ID, -1, 1000, 1000)
		before := f.writes()
		_, err = st.SetAffiliateCommission(f.ctx, f.ws.ID, a.ID, ptrInt(10001))
		wantCode(t, err, heldsway.EVALIDATION)
		other := f.workspace("Other " + t.Name())
		_, err = st.SetAffiliateCommission(f.ctx, other.ID, a.ID, ptrInt(100))
		wantCode(t, err, heldsway.ENOTFOUND)
		_, err = st.AffiliateCommission(f.ctx, other.ID, a.ID)
		wantCode(t, err, heldsway.ENOTFOUND)
		if f.writes() != before {
			t.Fatal("refused commission change wrote rows")
		}
		var n int
		_ = st.DB().QueryRow(`SELECT COUNT(*) FROM audit_log WHERE workspace_id = $1 AND action = 'affiliate.commission.update'`, f.ws.ID).Scan(&n)
		if n != 2 {
			t.Fatalf("commission audit entries %d", n)
		}
	})
}

func TestRegisterAffiliate(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := affSetup(t, st)
		reg := func(email string) *heldsway.AffiliateRegistration {
			return &heldsway.AffiliateRegistration{Name: "Reg", Email: email, Password: "correct horse", PasswordConfirmation: "correct horse"}
		}
		hash, err := heldsway.HashPassword("correct horse")
		if err != nil {
			t.Fatal(err)
		}
		before := f.writes()
		_, err = st.RegisterAffiliate(f.ctx, f.ws.Slug, reg("r@example.com"), hash)
		wantCode(t, err, heldsway.EFORBIDDEN)
		_, err = st.RegisterAffiliate(f.ctx, "no-such-workspace", reg("r@example.com"), hash)
		wantCode(t, err, heldsway.ENOTFOUND)
		if f.writes() != before {
			t.Fatal("refused registration wrote rows")
		}
		if _, err := st.DB().Exec(`UPDATE programs SET allow_self_registration = $1 WHERE id = $2`, true, f.def); err != nil {
			t.Fatal(err)
		}
		a, err := st.RegisterAffiliate(f.ctx, f.ws.Slug, reg("R@Example.com"), hash)
		if err != nil || a.Status != heldsway.AffiliatePending || a.ApprovedAt != nil || a.ProgramID != f.def || a.User.Email != "r@example.com" {
			t.Fatalf("%+v %v", a, err)
		}
		var stored string
		_ = st.DB().QueryRow(`SELECT password_hash FROM affiliate_users WHERE id = $1`, a.User.ID).Scan(&stored)
		if !heldsway.CheckPassword(stored, "correct horse") || heldsway.CheckPassword(stored, "wrong") {
			t.Fatal("password hash does not verify")
		}
		var actor string
		_ = st.DB().QueryRow(`SELECT actor_type FROM audit_log WHERE workspace_id = $1 AND action = 'affiliate.register'`, f.ws.ID).Scan(&actor)
		if actor != heldsway.ActorSystem { // no actor on this context; the API sets "public"
			t.Fatalf("actor %q", actor)
		}
		// An e-mail with an account already, in any program, is refused.
		f.create(heldsway.AffiliateCreate{Name: "Admin made", Email: "known@example.com", ProgramID: &f.alt})
		before = f.writes()
		for _, email := range []string{"r@example.com", "KNOWN@example.com"} {
			_, err = st.RegisterAffiliate(f.ctx, f.ws.Slug, reg(email), hash)
			wantCode(t, err, heldsway.ECONFLICT)
		}
		bad := reg("x@example.com")
		bad.PasswordConfirmation = "different"
		_, err = st.RegisterAffiliate(f.ctx, f.ws.Slug, bad, hash)
		wantCode(t, err, heldsway.EVALIDATION)
		if f.writes() != before {
			t.Fatal("refused registration wrote rows")
		}
		if err := st.SetWorkspaceActive(f.ctx, f.ws.ID, false); err != nil {
			t.Fatal(err)
		}
		_, err = st.RegisterAffiliate(f.ctx, f.ws.Slug, reg("late@example.com"), hash)
		wantCode(t, err, heldsway.ENOTFOUND)
	})
}

// TestAffiliateSearchPaths: on SQLite a search is read from the trigram index
// when it matches few rows and scanned in list order otherwise; both give the
// same pages, and the index follows inserts, renames and deletions. (On
// PostgreSQL the planner chooses; the same assertions hold.)
func TestAffiliateSearchPaths(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := affSetup(t, st)
		st.StopSearchIndexer() // the test indexes when it chooses
		var want []int64       // ids whose name, e-mail or code holds "Quartz", in list order (created_at desc, id desc)
		for i := range 30 {
			f.clock.Set(t0.Add(time.Duration(i/4) * time.Second)) // ties on created_at
			in := heldsway.AffiliateCreate{Name: fmt.Sprintf("Person %02d", i), Email: fmt.Sprintf("s%02d@example.com", i)}
			switch i % 3 {
			case 0:
				in.Name = fmt.Sprintf("Rose QUARTZ %02d", i)
			case 1:
				in.Email = fmt.Sprintf("quartz.%02d@example.com", i)
			}
			a := f.create(in)
			if i%3 != 2 {
				want = append([]int64{a.ID}, want...)
			}
		}
		coded := f.create(heldsway.AffiliateCreate{Name: "Coded", Email: "coded@example.com", ReferralCode: "XQUARTZX"})
		want = append([]int64{coded.ID}, want...)
		other := f.workspace("Other " + t.Name())
		affDefaultProgram(t, st, other.ID)
		if _, err := st.CreateAffiliate(f.ctx, other.ID, &heldsway.AffiliateCreate{Name: "Quartz Elsewhere", Email: "q@example.com"}); err != nil {
			t.Fatal(err)
		}

		page := func(t *testing.T, search string, sort string, desc bool) []int64 {
			t.Helper()
			o := heldsway.ListOptions{PerPage: 4, Sort: sort, Desc: desc}
			var ids []int64
			for range 20 {
				res, err := st.ListAffiliates(f.ctx, f.ws.ID, heldsway.AffiliateFilter{Search: search}, o)
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range res.Items {
					ids = append(ids, a.ID)
				}
				if res.Next == nil {
					return ids
				}
				o.After = res.Next
			}
			t.Fatal("too many pages")
			return nil
		}
		// Half the rows indexed, the other half waiting for the indexer.
		half := want[len(want)/2]
		if _, err := st.DB().Exec(`DELETE FROM affiliates_search_pending WHERE affiliate_id > $1`, half); err == nil {
			if err := st.IndexPendingAffiliates(f.ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := st.DB().Exec(`INSERT INTO affiliates_search_pending (affiliate_id) SELECT id FROM affiliates WHERE id > $1`, half); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			name   string
			sparse int
		}{{"index and waiting rows", 0}, {"scan", -1}, {"index only", 0}} { // 0: the default (index for few matches); -1: always scan
			store.SetSparseSearch(st, c.sparse)
			if c.name == "index only" {
				if err := st.IndexPendingAffiliates(f.ctx); err != nil {
					t.Fatal(err)
				}
			}
			t.Run(c.name, func(t *testing.T) {
				if got := page(t, "quartz", "created_at", true); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("search pages\n got %v\nwant %v", got, want)
				}
				for _, sort := range []string{"referral_code", "status", "commission_rate"} {
					if got := page(t, "QuArTz", sort, false); len(got) != len(want) {
						t.Fatalf("sort %s: %d rows, want %d", sort, len(got), len(want))
					}
				}
				if got := page(t, `"quartz`, "created_at", true); len(got) != 0 {
					t.Fatalf("a quote is literal: %v", got)
				}
				if got := page(t, "uartz 0", "created_at", true); len(got) != 4 { // Rose QUARTZ 00, 03, 06, 09
					t.Fatalf("a space is literal: %v", got)
				}
			})
		}
		store.SetSparseSearch(st, 0)
		t.Run("follows renames and deletions while waiting to be indexed", func(t *testing.T) {
			a := f.create(heldsway.AffiliateCreate{Name: "Topaz Waiting", Email: "topaz@example.com"})
			if got := page(t, "topaz", "created_at", true); fmt.Sprint(got) != fmt.Sprint([]int64{a.ID}) {
				t.Fatalf("new affiliate: %v", got)
			}
			if _, err := st.UpdateAffiliate(f.ctx, f.ws.ID, a.ID, &heldsway.AffiliateUpdate{Name: ptrStr("Onyx Waiting"),
				Email: ptrStr("onyx@example.com")}); err != nil {
				t.Fatal(err)
			}
			if got := page(t, "topaz", "created_at", true); len(got) != 0 {
				t.Fatalf("old name after the rename: %v", got)
			}
			if err := st.IndexPendingAffiliates(f.ctx); err != nil {
				t.Fatal(err)
			}
			if got := page(t, "onyx", "created_at", true); fmt.Sprint(got) != fmt.Sprint([]int64{a.ID}) {
				t.Fatalf("new name, indexed: %v", got)
			}
			b := f.create(heldsway.AffiliateCreate{Name: "Jade Waiting", Email: "jade@example.com"})
			if _, err := st.DeleteAffiliate(f.ctx, f.ws.ID, b.ID); err != nil {
				t.Fatal(err)
			}
			if err := st.IndexPendingAffiliates(f.ctx); err != nil {
				t.Fatal(err)
			}
			if got := page(t, "jade", "created_at", true); len(got) != 0 {
				t.Fatalf("deleted while waiting: %v", got)
			}
		})
		t.Run("follows renames and deletions once indexed", func(t *testing.T) {
			if _, err := st.UpdateAffiliate(f.ctx, f.ws.ID, coded.ID, &heldsway.AffiliateUpdate{Name: ptrStr("Amethyst"),
				ReferralCode: ptrStr("AMETHYST")}); err != nil {
				t.Fatal(err)
			}
			if got := page(t, "quartz", "created_at", true); len(got) != len(want)-1 || slices.Contains(got, coded.ID) {
				t.Fatalf("after the rename: %v", got)
			}
			if got := page(t, "amethyst", "created_at", true); fmt.Sprint(got) != fmt.Sprint([]int64{coded.ID}) {
				t.Fatalf("new name: %v", got)
			}
			if _, err := st.DeleteAffiliate(f.ctx, f.ws.ID, coded.ID); err != nil {
				t.Fatal(err)
			}
			if got := page(t, "amethyst", "created_at", true); len(got) != 0 {
				t.Fatalf("after the deletion: %v", got)
			}
		})
	})
}
