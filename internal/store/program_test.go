package store_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// The ProgramStore and SettingsStore conformance suite, on every engine.

func progPtr[T any](v T) *T { return &v }

// progRows counts the rows of a workspace a program or settings write touches.
func (b *bundle) progRows(ws *heldsway.Workspace) string {
	b.t.Helper()
	out := ""
	for _, table := range []string{"programs", "commission_tiers", "audit_log", "events"} {
		var n int
		if err := b.st.DB().QueryRow(`SELECT COUNT(*) FROM `+table+` WHERE workspace_id = $1`, ws.ID).Scan(&n); err != nil {
			b.t.Fatal(err)
		}
		out += fmt.Sprintf("%s=%d ", table, n)
	}
	var stamp int64
	if err := b.st.DB().QueryRow(`SELECT updated_at FROM workspace_settings WHERE workspace_id = $1`, ws.ID).Scan(&stamp); err != nil {
		b.t.Fatal(err)
	}
	return out + fmt.Sprintf("settings=%d", stamp)
}

func progFields(err error) []string {
	var he *heldsway.Error
	if !errors.As(err, &he) {
		return nil
	}
	var out []string
	for k := range he.Details {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestCreateWorkspaceDefaults(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		b := setup(t, st)
		ws := b.workspace("Acme")
		p, err := st.FindDefaultProgram(b.ctx, ws.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := heldsway.Program{ID: p.ID, WorkspaceID: ws.ID, Name: "Acme program", Currency: "USD",
			CommissionType: "percentage", CommissionBase: "net", Recurring: "off", CookieDays: 30,
			AttributionModel: "last_click", Status: "active", IsDefault: true, CreatedAt: t0, UpdatedAt: t0}
		if *p != want {
			t.Fatalf("default program\n got %+v\nwant %+v", *p, want)
		}
		st2, err := st.Settings(b.ctx, ws.ID)
		if err != nil {
			t.Fatal(err)
		}
		if *st2 != (heldsway.Settings{CookieDuration: 30, Timezone: "UTC", Currency: "USD"}) {
			t.Fatalf("settings %+v", *st2)
		}
		ps, err := st.PayoutSettings(b.ctx, ws.ID)
		if err != nil || *ps != (heldsway.PayoutSettings{Frequency: "monthly", MinimumAmount: 5000, Currency: "USD"}) {
			t.Fatalf("payout settings %+v %v", ps, err)
		}
		// Provisioning is not audited, like the workspace itself.
		if got := b.progRows(ws); got != fmt.Sprintf("programs=1 commission_tiers=0 audit_log=0 events=0 settings=%d", t0.UnixMicro()) {
			t.Fatalf("rows %s", got)
		}
		// A refused workspace (duplicate slug) leaves no program behind.
		dup := &heldsway.Workspace{Name: "Acme", Slug: ws.Slug, Plan: "basic", Active: true}
		wantCode(t, st.CreateWorkspace(b.ctx, dup), heldsway.ECONFLICT)
		var n int
		if err := st.DB().QueryRow(`SELECT COUNT(*) FROM programs`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("programs after refused workspace: %d %v", n, err)
		}
		if err := st.DB().QueryRow(`SELECT COUNT(*) FROM workspace_settings`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("settings rows after refused workspace: %d %v", n, err)
		}
		// A unique index keeps one default program per workspace.
		_, err = st.DB().Exec(`INSERT INTO programs (workspace_id, name, currency, commission_type, is_default, created_at, updated_at)
			VALUES ($1, 'Second', 'USD', 'percentage', $2, 0, 0)`, ws.ID, true)
		if err == nil {
			t.Fatal("a second default program was accepted")
		}
	})
}

func TestProgramStore(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		b := setup(t, st)
		ws, other := b.workspace("One"), b.workspace("Two")

		p, err := st.CreateProgram(b.ctx, ws.ID, heldsway.ProgramPatch{Name: progPtr("Flat EUR"), Currency: progPtr("eur"),
			CommissionType: progPtr("flat"), CommissionValue: heldsway.SetTo("12.5"), Recurring: progPtr("months"),
			RecurringMonths: heldsway.SetTo(6), TierRate: heldsway.SetTo("2.25"),
			AutoApproveMinAmount: heldsway.SetTo("10"), AutoApproveMaxAmount: heldsway.SetTo("99.99")})
		if err != nil {
			t.Fatal(err)
		}
		if p.Currency != "EUR" || *p.CommissionValue != 1250 || *p.RecurringMonths != 6 || *p.TierRate != 225 ||
			*p.AutoApproveMinAmount != 1000 || *p.AutoApproveMaxAmount != 9999 || p.IsDefault || p.CookieDays != 30 {
			t.Fatalf("created %+v", *p)
		}
		got, err := st.FindProgram(b.ctx, ws.ID, p.ID)
		if err != nil || !got.CreatedAt.Equal(t0) {
			t.Fatalf("find: %v %v", got, err)
		}
		got.CreatedAt, got.UpdatedAt = p.CreatedAt, p.UpdatedAt
		if !reflect.DeepEqual(got, p) {
			t.Fatalf("round trip\n got %+v\nwant %+v", *got, *p)
		}
		_, err = st.FindProgram(b.ctx, other.ID, p.ID)
		wantCode(t, err, heldsway.ENOTFOUND)

		// Bad input: EVALIDATION and nothing written.
		before := b.progRows(ws)
		_, err = st.CreateProgram(b.ctx, ws.ID, heldsway.ProgramPatch{Name: progPtr(" ")})
		wantCode(t, err, heldsway.EVALIDATION)
		if f := progFields(err); !slices.Equal(f, []string{"currency", "name"}) {
			t.Fatalf("fields %v", f)
		}
		_, err = st.UpdateProgram(b.ctx, ws.ID, p.ID, heldsway.ProgramPatch{CookieDuration: progPtr(0), Status: progPtr("gone")})
		if f := progFields(err); !slices.Equal(f, []string{"cookie_duration", "status"}) {
			t.Fatalf("update fields %v (%v)", f, err)
		}
		if after := b.progRows(ws); after != before {
			t.Fatalf("bad input wrote: %s → %s", before, after)
		}

		// Update: partial, audited with only the changed fields, and an event.
		b.clock.Set(t0.Add(time.Minute))
		up, err := st.UpdateProgram(b.ctx, ws.ID, p.ID, heldsway.ProgramPatch{Name: progPtr("Renamed"), TierRate: heldsway.SetNull[string]()})
		if err != nil {
			t.Fatal(err)
		}
		if up.Name != "Renamed" || up.TierRate != nil || *up.CommissionValue != 1250 || !up.UpdatedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("updated %+v", *up)
		}
		var changes string
		if err := st.DB().QueryRow(`SELECT changes FROM audit_log WHERE workspace_id = $1 AND action = 'program.update'`, ws.ID).Scan(&changes); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{`"name":{"before":"Flat EUR","after":"Renamed"}`, `"tier_rate":{"before":225,"after":null}`} {
			if !strings.Contains(changes, f) {
				t.Errorf("audit changes %s lack %s", changes, f)
			}
		}
		if strings.Contains(changes, "commission_value") {
			t.Errorf("unchanged field in audit changes: %s", changes)
		}
		_, err = st.UpdateProgram(b.ctx, other.ID, p.ID, heldsway.ProgramPatch{Name: progPtr("x")})
		wantCode(t, err, heldsway.ENOTFOUND)

		// Default program rules.
		def, _ := st.FindDefaultProgram(b.ctx, ws.ID)
		wantCode(t, st.DeleteProgram(b.ctx, ws.ID, def.ID), heldsway.ECONFLICT)
		_, err = st.UpdateProgram(b.ctx, ws.ID, def.ID, heldsway.ProgramPatch{Status: progPtr("archived")})
		wantCode(t, err, heldsway.ECONFLICT)

		// Programs with affiliates keep their currency and cannot be deleted.
		var uid int64
		if err := st.DB().QueryRow(`INSERT INTO affiliate_users (workspace_id, name, email, created_at, updated_at)
			VALUES ($1, 'A', 'a@example.com', 0, 0) RETURNING id`, ws.ID).Scan(&uid); err != nil {
			t.Fatal(err)
		}
		if _, err := st.DB().Exec(`INSERT INTO affiliates (workspace_id, program_id, affiliate_user_id, referral_code, status,
			name, email, created_at, updated_at) VALUES ($1, $2, $3, 'CODE1', 'active', 'A', 'a@example.com', 0, 0)`, ws.ID, p.ID, uid); err != nil {
			t.Fatal(err)
		}
		before = b.progRows(ws)
		_, err = st.UpdateProgram(b.ctx, ws.ID, p.ID, heldsway.ProgramPatch{Currency: progPtr("USD")})
		wantCode(t, err, heldsway.ECONFLICT)
		wantCode(t, st.DeleteProgram(b.ctx, ws.ID, p.ID), heldsway.ECONFLICT)
		if after := b.progRows(ws); after != before {
			t.Fatalf("refused writes wrote: %s → %s", before, after)
		}

		// Delete: another workspace's id is not found; the owner's goes, audited.
		q, err := st.CreateProgram(b.ctx, ws.ID, heldsway.ProgramPatch{Name: progPtr("Temp"), Currency: progPtr("USD")})
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, st.DeleteProgram(b.ctx, other.ID, q.ID), heldsway.ENOTFOUND)
		if err := st.DeleteProgram(b.ctx, ws.ID, q.ID); err != nil {
			t.Fatal(err)
		}
		_, err = st.FindProgram(b.ctx, ws.ID, q.ID)
		wantCode(t, err, heldsway.ENOTFOUND)
		var types []string
		rows, err := st.DB().Query(`SELECT type FROM events WHERE workspace_id = $1 ORDER BY id`, ws.ID)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			_ = rows.Scan(&s)
			types = append(types, s)
		}
		rows.Close()
		if !slices.Equal(types, []string{"program.created", "program.updated", "program.created", "program.deleted"}) {
			t.Fatalf("events %v", types)
		}
	})
}

func TestListPrograms(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		b := setup(t, st)
		ws, other := b.workspace("Lister"), b.workspace("Other")
		for i := range 9 {
			b.clock.Set(t0.Add(time.Duration(i/3) * time.Second))
			status := "active"
			if i%2 == 1 {
				status = "paused"
			}
			if _, err := st.CreateProgram(b.ctx, ws.ID, heldsway.ProgramPatch{Name: progPtr(fmt.Sprintf("p%d", 8-i)),
				Currency: progPtr("USD"), Status: progPtr(status)}); err != nil {
				t.Fatal(err)
			}
		}
		walk := func(f heldsway.ProgramFilter, sort string, desc bool) []string {
			var names []string
			o := heldsway.ListOptions{PerPage: 2, Sort: sort, Desc: desc}
			for range 20 {
				res, err := st.ListPrograms(b.ctx, ws.ID, f, o)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range res.Items {
					names = append(names, p.Name)
				}
				if res.Next == nil {
					return names
				}
				o.After = res.Next
			}
			t.Fatal("no last page")
			return nil
		}
		byName := walk(heldsway.ProgramFilter{}, "name", false)
		if want := []string{"Lister program", "p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"}; !slices.Equal(byName, want) {
			// The default program's capitalised name sorts by the engine's collation; the rest must be in order.
			rest := slices.DeleteFunc(slices.Clone(byName), func(s string) bool { return s == "Lister program" })
			if !slices.Equal(rest, want[1:]) || len(byName) != 10 {
				t.Fatalf("by name %v", byName)
			}
		}
		newest := walk(heldsway.ProgramFilter{}, "created_at", true)
		if want := []string{"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "Lister program"}; !slices.Equal(newest, want) {
			t.Fatalf("newest first %v", newest)
		}
		paused := walk(heldsway.ProgramFilter{Status: "paused"}, "created_at", false)
		if want := []string{"p7", "p5", "p3", "p1"}; !slices.Equal(paused, want) {
			t.Fatalf("paused %v", paused)
		}
		res, err := st.ListPrograms(b.ctx, other.ID, heldsway.ProgramFilter{}, heldsway.ListOptions{PerPage: 100})
		if err != nil || len(res.Items) != 1 || res.Items[0].Name != "Other program" {
			t.Fatalf("other workspace: %v %v", res.Items, err)
		}
	})
}

func TestSettingsStore(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		b := setup(t, st)
		ws, other := b.workspace("Set"), b.workspace("Other")
		s, err := st.UpdateSettings(b.ctx, ws.ID, heldsway.SettingsPatch{CommissionRate: heldsway.SetTo("12.5"),
			CookieDuration: progPtr(60), AutoApproveEnabled: progPtr(true), AutoApproveDelayDays: progPtr(3),
			AutoApproveMinAmount: heldsway.SetTo("1"), AutoApproveMaxAmount: heldsway.SetTo("2.5"),
			AllowSelfRegistration: progPtr(true), Timezone: progPtr("Pacific/Auckland")})
		if err != nil {
			t.Fatal(err)
		}
		want := heldsway.Settings{CommissionRate: progPtr(int64(1250)), CookieDuration: 60, AutoApproveEnabled: true,
			AutoApproveDelayDays: 3, AutoApproveMinAmount: progPtr(int64(100)), AutoApproveMaxAmount: progPtr(int64(250)),
			AllowSelfRegistration: true, Timezone: "Pacific/Auckland", Currency: "USD"}
		got, _ := st.Settings(b.ctx, ws.ID)
		if fmt.Sprint(progSettings(got)) != fmt.Sprint(progSettings(&want)) || fmt.Sprint(progSettings(s)) != fmt.Sprint(progSettings(&want)) {
			t.Fatalf("settings\n got %v\nwant %v", progSettings(got), progSettings(&want))
		}
		def, _ := st.FindDefaultProgram(b.ctx, ws.ID)
		if *def.CommissionValue != 1250 || def.CookieDays != 60 || !def.AllowSelfRegistration {
			t.Fatalf("default program %+v", *def)
		}
		if o, _ := st.Settings(b.ctx, other.ID); o.CookieDuration != 30 || o.Timezone != "UTC" {
			t.Fatalf("other workspace changed: %+v", *o)
		}

		// All or nothing.
		before := b.progRows(ws)
		bad := []heldsway.SettingsPatch{
			{CookieDuration: progPtr(10), Timezone: progPtr("Nowhere/City")},
			{CommissionRate: heldsway.SetTo("1"), AutoApproveMinAmount: heldsway.SetTo("3")},
			{AutoApproveMaxAmount: heldsway.SetTo("0.99")},
			{AutoApproveMinAmount: heldsway.SetTo("1.001")},
			{CommissionRate: heldsway.SetTo("100.5")},
			{AutoApproveDelayDays: progPtr(366)},
		}
		for i, p := range bad {
			_, err := st.UpdateSettings(b.ctx, ws.ID, p)
			wantCode(t, err, heldsway.EVALIDATION)
			if after := b.progRows(ws); after != before {
				t.Fatalf("bad patch %d wrote: %s → %s", i, before, after)
			}
		}
		_, err = st.UpdateSettings(b.ctx, ws.ID, heldsway.SettingsPatch{CommissionRate: heldsway.SetTo("100.001")})
		if f := progFields(err); !slices.Equal(f, []string{"commission_rate"}) {
			t.Fatalf("fields %v", f)
		}
		// A no-op writes nothing.
		if _, err := st.UpdateSettings(b.ctx, ws.ID, heldsway.SettingsPatch{CookieDuration: progPtr(60)}); err != nil {
			t.Fatal(err)
		}
		if after := b.progRows(ws); after != before {
			t.Fatalf("no-op wrote: %s → %s", before, after)
		}
	})
}

func progSettings(s *heldsway.Settings) []any {
	v := func(p *int64) any {
		if p == nil {
			return nil
		}
		return *p
	}
	return []any{v(s.CommissionRate), s.CookieDuration, s.AutoApproveEnabled, s.AutoApproveDelayDays,
		v(s.AutoApproveMinAmount), v(s.AutoApproveMaxAmount), s.AllowSelfRegistration, s.Timezone, s.Currency}
}

func TestCommissionTierStore(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		b := setup(t, st)
		ws, other := b.workspace("Tiers"), b.workspace("Other")
		mk := func(lo string, hi *string, rate string) (*heldsway.CommissionTier, error) {
			in := heldsway.TierPatch{MinAmount: &lo, Rate: &rate}
			if hi != nil {
				in.MaxAmount = heldsway.SetTo(*hi)
			}
			t, _, err := st.CreateCommissionTier(b.ctx, ws.ID, in)
			return t, err
		}
		a, err := mk("0", progPtr("100"), "5")
		if err != nil {
			t.Fatal(err)
		}
		c, err := mk("500", nil, "10")
		if err != nil {
			t.Fatal(err)
		}
		if a.MinAmount != 0 || *a.MaxAmount != 10000 || a.Rate != 500 || c.MaxAmount != nil {
			t.Fatalf("tiers %+v %+v", *a, *c)
		}
		before := b.progRows(ws)
		for _, band := range [][2]*string{{progPtr("99.99"), progPtr("200")}, {progPtr("600"), nil}, {progPtr("400"), progPtr("500.01")}, {progPtr("50"), progPtr("60")}} {
			_, err := mk(*band[0], band[1], "1")
			wantCode(t, err, heldsway.EVALIDATION)
			if f := progFields(err); !slices.Equal(f, []string{"max_amount", "min_amount"}) {
				t.Fatalf("overlap fields %v", f)
			}
		}
		if after := b.progRows(ws); after != before {
			t.Fatalf("overlaps wrote: %s → %s", before, after)
		}
		mid, err := mk("100", progPtr("500"), "7.5")
		if err != nil {
			t.Fatalf("adjacent bands: %v", err)
		}
		tiers, cur, err := st.CommissionTiers(b.ctx, ws.ID)
		if err != nil || cur.Code != "USD" || len(tiers) != 3 || tiers[1].ID != mid.ID {
			t.Fatalf("list %v %v %v", tiers, cur, err)
		}
		// Updating a tier is checked against the others only.
		up, _, err := st.UpdateCommissionTier(b.ctx, ws.ID, mid.ID, heldsway.TierPatch{Rate: progPtr("8"), MaxAmount: heldsway.SetTo("450")})
		if err != nil || up.Rate != 800 || *up.MaxAmount != 45000 {
			t.Fatalf("update %+v %v", up, err)
		}
		_, _, err = st.UpdateCommissionTier(b.ctx, ws.ID, mid.ID, heldsway.TierPatch{MaxAmount: heldsway.SetNull[string]()})
		wantCode(t, err, heldsway.EVALIDATION)
		_, _, err = st.UpdateCommissionTier(b.ctx, other.ID, mid.ID, heldsway.TierPatch{Rate: progPtr("1")})
		wantCode(t, err, heldsway.ENOTFOUND)
		wantCode(t, st.DeleteCommissionTier(b.ctx, other.ID, mid.ID), heldsway.ENOTFOUND)
		if err := st.DeleteCommissionTier(b.ctx, ws.ID, mid.ID); err != nil {
			t.Fatal(err)
		}
		wantCode(t, st.DeleteCommissionTier(b.ctx, ws.ID, mid.ID), heldsway.ENOTFOUND)

		// Reset replaces every tier with the platform defaults, in the default program's currency.
		if _, err := st.UpdateProgram(b.ctx, ws.ID, progDefault(t, b, ws).ID, heldsway.ProgramPatch{Currency: progPtr("JPY")}); err != nil {
			t.Fatal(err)
		}
		reset, cur, err := st.ResetCommissionTiers(b.ctx, ws.ID)
		if err != nil || cur.Code != "JPY" {
			t.Fatalf("reset: %v %v", cur, err)
		}
		var got []string
		for _, t := range reset {
			hi := "∞"
			if t.MaxAmount != nil {
				hi = fmt.Sprint(*t.MaxAmount)
			}
			got = append(got, fmt.Sprintf("%d-%s@%d", t.MinAmount, hi, t.Rate))
		}
		if !slices.Equal(got, []string{"0-100@500", "100-500@750", "500-∞@1000"}) {
			t.Fatalf("reset tiers %v", got)
		}
		if tiers, _, _ := st.CommissionTiers(b.ctx, other.ID); len(tiers) != 0 {
			t.Fatalf("other workspace has tiers %v", tiers)
		}
		var n int
		if err := st.DB().QueryRow(`SELECT COUNT(*) FROM events WHERE workspace_id = $1 AND type = 'commission_tiers.reset'`, ws.ID).Scan(&n); err != nil || n != 1 {
			t.Fatalf("reset events %d %v", n, err)
		}
	})
}

func progDefault(t *testing.T, b *bundle, ws *heldsway.Workspace) *heldsway.Program {
	t.Helper()
	p, err := b.st.FindDefaultProgram(b.ctx, ws.ID)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBrandingAndPayoutStore(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		b := setup(t, st)
		ws, other := b.workspace("Brand"), b.workspace("Other")
		br, err := st.UpdateBranding(b.ctx, ws.ID, heldsway.BrandingPatch{BrandName: heldsway.SetTo("Brand"),
			PrimaryColor: heldsway.SetTo("#abcdef"), CustomDomain: heldsway.SetTo("Portal.Example.com")})
		if err != nil || *br.PrimaryColor != "#ABCDEF" || *br.CustomDomain != "portal.example.com" || br.LogoURL != nil {
			t.Fatalf("branding %+v %v", br, err)
		}
		before := b.progRows(other)
		_, err = st.UpdateBranding(b.ctx, other.ID, heldsway.BrandingPatch{CustomDomain: heldsway.SetTo("portal.example.com")})
		wantCode(t, err, heldsway.ECONFLICT)
		_, err = st.UpdateBranding(b.ctx, other.ID, heldsway.BrandingPatch{LogoURL: heldsway.SetTo("ftp://x.example.com/a.png")})
		wantCode(t, err, heldsway.EVALIDATION)
		if after := b.progRows(other); after != before {
			t.Fatalf("refused branding wrote: %s → %s", before, after)
		}
		got, _ := st.Branding(b.ctx, ws.ID)
		if *got.BrandName != "Brand" || *got.CustomDomain != "portal.example.com" {
			t.Fatalf("read back %+v", *got)
		}

		ps, err := st.UpdatePayoutSettings(b.ctx, ws.ID, heldsway.PayoutSettingsPatch{Frequency: progPtr("weekly"),
			MinimumAmount: progPtr("10.5"), AllowEarlyRequests: progPtr(true)})
		if err != nil || *ps != (heldsway.PayoutSettings{Frequency: "weekly", MinimumAmount: 1050, AllowEarlyRequests: true, Currency: "USD"}) {
			t.Fatalf("payouts %+v %v", ps, err)
		}
		_, err = st.UpdatePayoutSettings(b.ctx, ws.ID, heldsway.PayoutSettingsPatch{MinimumAmount: progPtr("-1")})
		wantCode(t, err, heldsway.EVALIDATION)
		if o, _ := st.PayoutSettings(b.ctx, other.ID); o.Frequency != "monthly" {
			t.Fatalf("other workspace payouts %+v", *o)
		}
	})
}
