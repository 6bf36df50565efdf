package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/api"
	"github.com/heldsway/heldsway/internal/auth"
	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// Balances, ledger and adjustments; payouts and their export and statement;
// payout requests. Commissions are seeded by raw SQL and approved through the
// store, so the ledger holds what a real approval writes.

type payAPI struct {
	e           *env
	prog        int64
	alice, bob  int64
	other       *heldsway.Workspace
	otherAff    int64
	otherTok    string // payouts:read + payouts:write in the other workspace
	read, write string // payouts:read; payouts:read + payouts:write
	none        string // a token without the payouts scopes
	n           int
}

func paySetupAPI(t *testing.T, e *env) *payAPI {
	t.Helper()
	db := e.store.DB()
	a := &payAPI{e: e, prog: storetest.DefaultProgram(t, db, e.ws.ID)}
	a.alice = storetest.SeedAffiliate(t, db, e.ws.ID, a.prog, "Alice Able")
	a.bob = storetest.SeedAffiliate(t, db, e.ws.ID, a.prog, "Bob Baker")
	other, err := e.auth.CreateWorkspace(context.Background(), "Other "+e.engine, "basic")
	if err != nil {
		t.Fatal(err)
	}
	a.other = other
	a.otherAff = storetest.SeedAffiliate(t, db, other.ID, storetest.DefaultProgram(t, db, other.ID), "Olga Other")
	a.mint()
	return a
}

// mint issues the tokens anew, after the clock moved past their 4 h.
func (a *payAPI) mint() {
	e := a.e
	a.read = e.token(heldsway.ScopePayoutsRead)
	a.write = e.token(heldsway.ScopePayoutsRead, heldsway.ScopePayoutsWrite)
	a.none = e.token(heldsway.ScopeOrdersRead, heldsway.ScopeAffiliatesWrite)
	k, secret := e.newKey(a.other, auth.KeyInput{Scopes: []string{heldsway.ScopePayoutsRead, heldsway.ScopePayoutsWrite}})
	a.otherTok = e.exchange(k.Key, secret)
}

// approved seeds an order of aff with one commission of amount minor units in
// USD and approves it (ledger + amount); it returns the order and commission ids.
func (a *payAPI) approved(t *testing.T, aff, amount int64) (int64, int64) {
	t.Helper()
	return a.approvedIn(t, aff, amount, "USD")
}

func (a *payAPI) approvedIn(t *testing.T, aff, amount int64, cur string) (int64, int64) {
	t.Helper()
	a.n++
	oid, cids := storetest.InsertOrder(t, a.e.store.DB(), a.e.ws.ID, storetest.OrderSeed{OrderID: fmt.Sprintf("PO-%d", a.n),
		AffiliateID: aff, ProgramID: a.prog, Currency: cur, Total: 10 * amount, Subtotal: 10 * amount,
		ConvertedAt: time.Date(2026, 10, 1, 12, 0, a.n, 0, time.UTC),
		Lines:       []storetest.CommissionSeed{{AffiliateID: aff, Amount: amount, BaseAmount: 10 * amount}}})
	if _, err := a.e.store.ApproveOrder(context.Background(), a.e.ws.ID, oid); err != nil {
		t.Fatalf("approve: %v", err)
	}
	return oid, cids[0]
}

// pending seeds an order with one pending commission.
func (a *payAPI) pending(t *testing.T, aff, amount int64) int64 {
	t.Helper()
	a.n++
	oid, _ := storetest.InsertOrder(t, a.e.store.DB(), a.e.ws.ID, storetest.OrderSeed{OrderID: fmt.Sprintf("PO-%d", a.n),
		AffiliateID: aff, ProgramID: a.prog, Total: 10 * amount, Subtotal: 10 * amount,
		Lines: []storetest.CommissionSeed{{AffiliateID: aff, Amount: amount, BaseAmount: 10 * amount}}})
	return oid
}

// writes fingerprints what payout writes may add or change, to prove a
// refused request wrote nothing.
func (a *payAPI) writes(t *testing.T) string {
	t.Helper()
	var out []string
	for _, q := range []string{
		`SELECT COUNT(*) FROM audit_log WHERE workspace_id = $1`,
		`SELECT COUNT(*) FROM events WHERE workspace_id = $1`,
		`SELECT COUNT(*) || ':' || COALESCE(SUM(amount), 0) FROM ledger_entries WHERE workspace_id = $1`,
		`SELECT COUNT(*) || ':' || COALESCE(SUM(updated_at), 0) FROM payouts WHERE workspace_id = $1`,
		`SELECT COUNT(*) || ':' || COALESCE(SUM(updated_at), 0) FROM payout_requests WHERE workspace_id = $1`,
		`SELECT COUNT(*) || ':' || COALESCE(SUM(updated_at), 0) FROM commissions WHERE workspace_id = $1`,
	} {
		var s string
		if err := a.e.store.DB().QueryRow(q, a.e.ws.ID).Scan(&s); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// balanceOf returns the affiliate's balance in cur as the API shows it:
// currency → field → decimal text.
func (a *payAPI) balanceOf(t *testing.T, aff int64, cur string) map[string]string {
	t.Helper()
	r := a.e.do("GET", fmt.Sprintf("/v1/affiliates/%d/balance", aff), a.read, nil)
	if r.status != 200 {
		t.Fatalf("balance: %d %s", r.status, r.raw)
	}
	for _, b := range r.data()["balances"].([]any) {
		m := b.(map[string]any)
		if m["currency"] == cur {
			out := map[string]string{}
			for _, k := range []string{"available", "pending", "in_flight", "paid"} {
				out[k] = jsonNum(t, r.raw, m[k])
			}
			return out
		}
	}
	return nil
}

// jsonNum renders a decoded JSON number as the API wrote it for two-decimal
// currencies (the tests use USD and EUR): %.2f is exact at these magnitudes.
func jsonNum(t *testing.T, raw string, v any) string {
	t.Helper()
	f, ok := v.(float64)
	if !ok {
		t.Fatalf("not a number: %v in %s", v, raw)
	}
	return fmt.Sprintf("%.2f", f)
}

func TestBalanceLedgerAdjustments(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		a := paySetupAPI(t, e)
		a.approved(t, a.alice, 1250)
		a.approved(t, a.alice, 999)
		a.pending(t, a.alice, 500)

		t.Run("balance", func(t *testing.T) {
			r := e.do("GET", fmt.Sprintf("/v1/affiliates/%d/balance", a.alice), a.read, nil)
			if r.status != 200 || r.body["success"] != true {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			// Amounts are JSON numbers with exactly the currency's decimals.
			if !strings.Contains(r.raw, `"available":22.49`) || !strings.Contains(r.raw, `"pending":5.00`) ||
				!strings.Contains(r.raw, `"in_flight":0.00`) || !strings.Contains(r.raw, `"paid":0.00`) {
				t.Fatalf("balance: %s", r.raw)
			}
			if bs := e.do("GET", fmt.Sprintf("/v1/affiliates/%d/balance", a.bob), a.read, nil); len(bs.data()["balances"].([]any)) != 0 {
				t.Fatalf("bob has no money: %s", bs.raw)
			}
		})

		t.Run("adjustment", func(t *testing.T) {
			before := a.writes(t)
			r := e.do("POST", fmt.Sprintf("/v1/affiliates/%d/adjustments", a.alice), a.write,
				`{"amount": -2.49, "currency": "usd", "reason": "Returned goods outside the refund window"}`)
			if r.status != 201 || r.data()["kind"] != "adjustment" || !strings.Contains(r.raw, `"amount":-2.49`) ||
				r.data()["currency"] != "USD" || r.data()["reason"] != "Returned goods outside the refund window" {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			if a.writes(t) == before {
				t.Fatal("nothing written")
			}
			if b := a.balanceOf(t, a.alice, "USD"); b["available"] != "20.00" {
				t.Fatalf("balance after adjustment: %v", b)
			}
			var action, typ string
			if err := e.store.DB().QueryRow(`SELECT a.action, ev.type FROM audit_log a, events ev WHERE a.workspace_id = $1
				AND ev.workspace_id = $1 AND a.resource_type = 'ledger_entry' AND ev.resource_type = 'ledger_entry'`,
				e.ws.ID).Scan(&action, &typ); err != nil || action != "ledger.adjust" || typ != "balance.adjusted" {
				t.Fatalf("audit %q event %q: %v", action, typ, err)
			}
			// A credit in another currency opens a balance in it.
			e.do("POST", fmt.Sprintf("/v1/affiliates/%d/adjustments", a.alice), a.write,
				map[string]any{"amount": 10, "currency": "EUR", "reason": "Bonus"})
			if b := a.balanceOf(t, a.alice, "EUR"); b["available"] != "10.00" {
				t.Fatalf("EUR balance: %v", b)
			}
		})

		t.Run("adjustment validation", func(t *testing.T) {
			path := fmt.Sprintf("/v1/affiliates/%d/adjustments", a.alice)
			before := a.writes(t)
			for _, tc := range []struct {
				name, body, field string
			}{
				{"zero", `{"amount": 0, "currency": "USD", "reason": "x"}`, "amount"},
				{"too many decimals", `{"amount": 1.005, "currency": "USD", "reason": "x"}`, "amount"},
				{"JPY decimals", `{"amount": 1.5, "currency": "JPY", "reason": "x"}`, "amount"},
				{"absurd", `{"amount": 1e30, "currency": "USD", "reason": "x"}`, "amount"},
				{"string amount", `{"amount": "1.00", "currency": "USD", "reason": "x"}`, "amount"},
				{"unknown currency", `{"amount": 1, "currency": "XYZ", "reason": "x"}`, "currency"},
				{"missing reason", `{"amount": 1, "currency": "USD"}`, "reason"},
				{"blank reason", `{"amount": 1, "currency": "USD", "reason": "   "}`, "reason"},
				{"long reason", `{"amount": 1, "currency": "USD", "reason": "` + strings.Repeat("r", 501) + `"}`, "reason"},
				{"unknown field", `{"amount": 1, "currency": "USD", "reason": "x", "extra": 1}`, "extra"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					r := e.do("POST", path, a.write, tc.body)
					r.expectError(t, 422, "VALIDATION_ERROR", "")
					if len(r.details(tc.field)) == 0 {
						t.Fatalf("no detail on %s: %s", tc.field, r.raw)
					}
				})
			}
			if a.writes(t) != before {
				t.Fatal("a refused adjustment wrote something")
			}
		})

		t.Run("ledger", func(t *testing.T) {
			r := e.do("GET", fmt.Sprintf("/v1/affiliates/%d/ledger?currency=USD", a.alice), a.read, nil)
			items := ordItems(r)
			if r.status != 200 || len(items) != 3 {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			// Newest first: the adjustment, then the two approvals.
			if items[0]["kind"] != "adjustment" || items[1]["kind"] != "commission_approved" || items[1]["commission_id"] == nil {
				t.Fatalf("ledger order: %s", r.raw)
			}
			if n := len(ordItems(e.do("GET", fmt.Sprintf("/v1/affiliates/%d/ledger?kind=commission_approved", a.alice), a.read, nil))); n != 2 {
				t.Fatalf("kind filter: %d", n)
			}
			if n := len(ordItems(e.do("GET", fmt.Sprintf("/v1/affiliates/%d/ledger?currency=eur", a.alice), a.read, nil))); n != 1 {
				t.Fatalf("currency filter: %d", n)
			}
			// Cursor pages cover every entry once.
			seen := map[float64]bool{}
			cursor := ""
			for range 10 {
				p := fmt.Sprintf("/v1/affiliates/%d/ledger?per_page=1&direction=asc", a.alice)
				if cursor != "" {
					p += "&cursor=" + cursor
				}
				r := e.do("GET", p, a.read, nil)
				for _, it := range ordItems(r) {
					if seen[it["id"].(float64)] {
						t.Fatalf("entry seen twice")
					}
					seen[it["id"].(float64)] = true
				}
				next, _ := r.data()["meta"].(map[string]any)["next_cursor"].(string)
				if next == "" {
					break
				}
				cursor = next
			}
			if len(seen) != 4 {
				t.Fatalf("paged %d entries, want 4", len(seen))
			}
			e.do("GET", fmt.Sprintf("/v1/affiliates/%d/ledger?kind=bonus", a.alice), a.read, nil).expectError(t, 422, "VALIDATION_ERROR", "")
			e.do("GET", fmt.Sprintf("/v1/affiliates/%d/ledger?cursor=nope", a.alice), a.read, nil).expectError(t, 422, "VALIDATION_ERROR", "")
		})

		t.Run("other workspace and unknown affiliates are 404", func(t *testing.T) {
			for _, p := range []string{"/v1/affiliates/%d/balance", "/v1/affiliates/%d/ledger"} {
				e.do("GET", fmt.Sprintf(p, a.alice), a.otherTok, nil).expectError(t, 404, "NOT_FOUND", "")
				e.do("GET", fmt.Sprintf(p, 999999), a.read, nil).expectError(t, 404, "NOT_FOUND", "")
			}
			before := a.writes(t)
			e.do("POST", fmt.Sprintf("/v1/affiliates/%d/adjustments", a.alice), a.otherTok,
				map[string]any{"amount": 5, "currency": "USD", "reason": "x"}).expectError(t, 404, "NOT_FOUND", "")
			if a.writes(t) != before {
				t.Fatal("another workspace's adjustment wrote something")
			}
		})

		t.Run("scopes", func(t *testing.T) {
			e.do("GET", fmt.Sprintf("/v1/affiliates/%d/balance", a.alice), a.none, nil).expectError(t, 403, "FORBIDDEN", "")
			e.do("GET", fmt.Sprintf("/v1/affiliates/%d/ledger", a.alice), a.none, nil).expectError(t, 403, "FORBIDDEN", "")
			e.do("POST", fmt.Sprintf("/v1/affiliates/%d/adjustments", a.alice), a.read,
				map[string]any{"amount": 5, "currency": "USD", "reason": "x"}).expectError(t, 403, "FORBIDDEN", "")
		})
	})
}

// payout creates a pending payout of amount for aff through an approved
// request (the request is inserted by raw SQL so these tests do not depend on
// the request API or the settings), and returns its id.
func (a *payAPI) payout(t *testing.T, aff int64, cur string, amount int64) int64 {
	t.Helper()
	var rid int64
	if err := a.e.store.DB().QueryRow(`INSERT INTO payout_requests (workspace_id, affiliate_id, currency, amount, status,
		created_at, updated_at) VALUES ($1, $2, $3, $4, 'pending', $5, $5) RETURNING id`, a.e.ws.ID, aff, cur, amount,
		a.e.clock.Now().UnixMicro()).Scan(&rid); err != nil {
		t.Fatal(err)
	}
	p, err := a.e.store.CreatePayoutForRequest(context.Background(), a.e.ws.ID, rid)
	if err != nil {
		t.Fatalf("payout: %v", err)
	}
	return p.ID
}

func TestPayoutReads(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		a := paySetupAPI(t, e)
		// Alice: three commissions, a payout of the first two plus 1.11 of
		// an adjustment (the third is not fully covered, so not itemised).
		_, c1 := a.approved(t, a.alice, 1234)
		_, c2 := a.approved(t, a.alice, 5001)
		a.approved(t, a.alice, 7000)
		if _, err := e.store.CreateAdjustment(context.Background(), e.ws.ID, a.alice,
			heldsway.AdjustmentInput{Amount: 111, Currency: "USD", Reason: "bonus"}); err != nil {
			t.Fatal(err)
		}
		p1 := a.payout(t, a.alice, "USD", 1234+5001+111)
		e.clock.Advance(time.Hour)
		a.approved(t, a.bob, 4200)
		p2 := a.payout(t, a.bob, "USD", 4200)
		e.clock.Advance(24 * time.Hour)
		a.approvedIn(t, a.bob, 990, "EUR")
		p3 := a.payout(t, a.bob, "EUR", 990)
		if _, err := e.store.CompletePayout(context.Background(), e.ws.ID, p2, "TX-42"); err != nil {
			t.Fatal(err)
		}
		a.mint()

		t.Run("detail", func(t *testing.T) {
			r := e.do("GET", fmt.Sprintf("/v1/payouts/%d", p1), a.read, nil)
			d := r.data()
			if r.status != 200 || d["status"] != "pending" || d["currency"] != "USD" || !strings.Contains(r.raw, `"amount":63.46`) {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			aff := d["affiliate"].(map[string]any)
			if aff["name"] != "Alice Able" || aff["email"] != "aliceable@example.com" {
				t.Fatalf("affiliate: %v", aff)
			}
			items := d["commissions"].([]any)
			if len(items) != 2 || !strings.Contains(r.raw, `"commissions_total":62.35`) {
				t.Fatalf("commissions: %s", r.raw)
			}
			first := items[0].(map[string]any)
			if ordNum(first["commission_id"]) != c1 || ordNum(items[1].(map[string]any)["commission_id"]) != c2 ||
				first["order_id"] != "PO-1" || first["status"] != "approved" || !strings.Contains(r.raw, `"amount":12.34`) {
				t.Fatalf("items: %s", r.raw)
			}
			e.do("GET", fmt.Sprintf("/v1/payouts/%d", p1), a.otherTok, nil).expectError(t, 404, "NOT_FOUND", "")
			e.do("GET", "/v1/payouts/999999", a.read, nil).expectError(t, 404, "NOT_FOUND", "")
			e.do("GET", "/v1/payouts/abc", a.read, nil).expectError(t, 422, "VALIDATION_ERROR", "")
		})

		t.Run("list", func(t *testing.T) {
			ids := func(q string) []int64 {
				t.Helper()
				var out []int64
				cursor := ""
				for range 20 {
					p := "/v1/payouts?per_page=1" + q
					if cursor != "" {
						p += "&cursor=" + cursor
					}
					r := e.do("GET", p, a.read, nil)
					if r.status != 200 {
						t.Fatalf("GET %s: %d %s", p, r.status, r.raw)
					}
					for _, it := range ordItems(r) {
						if it["commissions"] != nil {
							t.Fatalf("list items carry commissions: %s", r.raw)
						}
						out = append(out, ordNum(it["id"]))
					}
					next, _ := r.data()["meta"].(map[string]any)["next_cursor"].(string)
					if next == "" {
						return out
					}
					cursor = next
				}
				t.Fatal("too many pages")
				return nil
			}
			for q, want := range map[string][]int64{
				"":                                     {p3, p2, p1},
				"&direction=asc":                       {p1, p2, p3},
				"&status=pending":                      {p3, p1},
				"&status=completed":                    {p2},
				"&currency=eur":                        {p3},
				fmt.Sprintf("&affiliate_id=%d", a.bob): {p3, p2},
				"&search=ALICE":                        {p1},
				"&search=tx-4":                         {p2},
				"&from=2026-11-02":                     {p3},
				"&to=2026-11-01":                       {p2, p1},
				"&from=2026-11-03":                     nil,
			} {
				if got := ids(q); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%q: %v, want %v", q, got, want)
				}
			}
			for _, q := range []string{"status=paid", fmt.Sprintf("affiliate_id=%d", a.otherAff), "from=2026-11-02&to=2026-11-01",
				"from=yesterday", "cursor=zzz", "sort=amount", "currency=US"} {
				e.do("GET", "/v1/payouts?"+q, a.read, nil).expectError(t, 422, "VALIDATION_ERROR", "")
			}
			if n := len(ordItems(e.do("GET", "/v1/payouts", a.otherTok, nil))); n != 0 {
				t.Fatalf("the other workspace sees %d payouts", n)
			}
		})

		t.Run("stats", func(t *testing.T) {
			if _, err := a.e.store.DB().Exec(`INSERT INTO payout_requests (workspace_id, affiliate_id, currency, amount, status,
				created_at, updated_at) VALUES ($1, $2, 'USD', 100, 'pending', 0, 0)`, e.ws.ID, a.alice); err != nil {
				t.Fatal(err)
			}
			r := e.do("GET", "/v1/payouts/stats", a.read, nil)
			d := r.data()
			if r.status != 200 || ordNum(d["pending_count"]) != 2 || ordNum(d["pending_requests"]) != 1 {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			cs := d["currencies"].([]any)
			eur, usd := cs[0].(map[string]any), cs[1].(map[string]any)
			if len(cs) != 2 || eur["currency"] != "EUR" || usd["currency"] != "USD" || ordNum(usd["pending_payouts"]) != 1 ||
				ordNum(usd["completed_this_month_payouts"]) != 1 ||
				!strings.Contains(r.raw, `"pending_amount":9.90`) || !strings.Contains(r.raw, `"pending_amount":63.46`) ||
				!strings.Contains(r.raw, `"completed_this_month":42.00`) || !strings.Contains(r.raw, `"completed_this_month":0.00`) {
				t.Fatalf("currencies: %s", r.raw)
			}
			m := d["month"].(map[string]any)
			if m["timezone"] != "UTC" || m["start"] != "2026-11-01T00:00:00.000000Z" || m["end"] != "2026-12-01T00:00:00.000000Z" {
				t.Fatalf("month: %v", m)
			}
			// The month is the workspace's: in Kiritimati (UTC+14) November
			// starts at 2026-10-31 10:00 UTC.
			tz := "Pacific/Kiritimati" // UTC+14
			if r := e.do("PUT", "/v1/settings/timezone", e.token("settings:write"), map[string]any{"value": tz}); r.status != 200 {
				t.Fatalf("timezone: %d %s", r.status, r.raw)
			}
			r = e.do("GET", "/v1/payouts/stats", a.read, nil)
			m = r.data()["month"].(map[string]any)
			if m["timezone"] != tz || m["start"] != "2026-10-31T10:00:00.000000Z" {
				t.Fatalf("month in %s: %v", tz, m)
			}
			if n := len(e.do("GET", "/v1/payouts/stats", a.otherTok, nil).data()["currencies"].([]any)); n != 0 {
				t.Fatalf("the other workspace sees %d currencies", n)
			}
		})

		t.Run("scopes", func(t *testing.T) {
			for _, p := range []string{"/v1/payouts", "/v1/payouts/stats", "/v1/payouts/export",
				fmt.Sprintf("/v1/payouts/%d", p1), fmt.Sprintf("/v1/payouts/%d/statement", p1)} {
				e.do("GET", p, a.none, nil).expectError(t, 403, "FORBIDDEN", "Insufficient scope.")
			}
		})
	})
}

// getRaw fetches path and returns the response without decoding the body.
func (a *payAPI) getRaw(t *testing.T, path, tok string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", a.e.http.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

// pdfTexts returns the strings drawn by the Tj operators of an uncompressed
// PDF, unescaped: enough to read a statement's amounts without a PDF library.
func pdfTexts(t *testing.T, b []byte) []string {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("%PDF-1.")) || !bytes.Contains(b[max(0, len(b)-32):], []byte("%%EOF")) {
		t.Fatalf("not a PDF: %q…", b[:min(len(b), 32)])
	}
	var out []string
	for _, m := range regexp.MustCompile(`\(((?:\\.|[^\\)])*)\) ?Tj`).FindAllSubmatch(b, -1) {
		out = append(out, strings.NewReplacer(`\(`, "(", `\)`, ")", `\\`, `\`).Replace(string(m[1])))
	}
	return out
}

func TestPayoutExportAndStatement(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		a := paySetupAPI(t, e)
		// Amounts whose cents a float would get wrong (0.1 + 0.2, 1.005, …).
		a.approved(t, a.alice, 10)
		a.approved(t, a.alice, 20)
		a.approved(t, a.alice, 100_005)
		a.approved(t, a.alice, 1)
		p1 := a.payout(t, a.alice, "USD", 10+20+100_005+1)
		a.approved(t, a.bob, 333_333_333)
		if _, err := e.store.CreateAdjustment(context.Background(), e.ws.ID, a.bob,
			heldsway.AdjustmentInput{Amount: 7, Currency: "USD", Reason: "bonus"}); err != nil {
			t.Fatal(err)
		}
		p2 := a.payout(t, a.bob, "USD", 333_333_340)
		a.approvedIn(t, a.bob, 12_345, "EUR")
		p3 := a.payout(t, a.bob, "EUR", 12_345)
		// Formula-looking text in a free-text cell.
		if _, err := e.store.CompletePayout(context.Background(), e.ws.ID, p3, "=HYPERLINK(1)"); err != nil {
			t.Fatal(err)
		}

		// The API's amounts, as text, per payout: the total and each item.
		apiAmounts := map[int64][]string{}
		for _, id := range []int64{p1, p2, p3} {
			r := e.do("GET", fmt.Sprintf("/v1/payouts/%d", id), a.read, nil)
			var body struct {
				Data struct {
					Amount      json.Number `json:"amount"`
					Total       json.Number `json:"commissions_total"`
					Commissions []struct {
						Amount json.Number `json:"amount"`
					} `json:"commissions"`
				} `json:"data"`
			}
			dec := json.NewDecoder(strings.NewReader(r.raw))
			dec.UseNumber()
			if err := dec.Decode(&body); err != nil {
				t.Fatal(err)
			}
			list := []string{body.Data.Amount.String(), body.Data.Total.String()}
			for _, c := range body.Data.Commissions {
				list = append(list, c.Amount.String())
			}
			apiAmounts[id] = list
		}
		if fmt.Sprint(apiAmounts[p1]) != "[1000.36 1000.36 0.10 0.20 1000.05 0.01]" ||
			fmt.Sprint(apiAmounts[p2]) != "[3333333.40 3333333.33 3333333.33]" {
			t.Fatalf("API amounts: %v", apiAmounts)
		}

		t.Run("csv", func(t *testing.T) {
			status, h, b := a.getRaw(t, "/v1/payouts/export?direction=asc", a.read)
			if status != 200 || h.Get("Content-Type") != "text/csv; charset=utf-8" ||
				h.Get("Content-Disposition") != `attachment; filename="payouts-2026-11-01.csv"` {
				t.Fatalf("%d %v %s", status, h, b)
			}
			rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
			if err != nil || len(rows) != 4 || strings.Join(rows[0], ",") != strings.Join(api.PayoutExportColumns, ",") {
				t.Fatalf("csv: %v %q", err, b)
			}
			col := map[string]int{}
			for i, c := range rows[0] {
				col[c] = i
			}
			for i, id := range []int64{p1, p2, p3} {
				row := rows[i+1]
				if row[col["id"]] != strconv.FormatInt(id, 10) || row[col["amount"]] != apiAmounts[id][0] {
					t.Errorf("row %v: amount %s, API %s", row, row[col["amount"]], apiAmounts[id][0])
				}
			}
			if r := rows[3]; r[col["external_reference"]] != "'=HYPERLINK(1)" || r[col["status"]] != "completed" ||
				r[col["currency"]] != "EUR" || r[col["completed_at"]] != "2026-11-01T12:00:00.000000Z" ||
				r[col["affiliate_email"]] != "bobbaker@example.com" {
				t.Errorf("p3 row: %v", r)
			}
			// The list's filters apply.
			_, _, b = a.getRaw(t, "/v1/payouts/export?status=completed", a.read)
			if rows, _ := csv.NewReader(bytes.NewReader(b)).ReadAll(); len(rows) != 2 {
				t.Errorf("status filter: %q", b)
			}
			e.do("GET", fmt.Sprintf("/v1/payouts/export?affiliate_id=%d", a.otherAff), a.read, nil).expectError(t, 422, "VALIDATION_ERROR", "")
			e.do("GET", "/v1/payouts/export?format=xls", a.read, nil).expectError(t, 422, "VALIDATION_ERROR", "")
			_, _, b = a.getRaw(t, "/v1/payouts/export", a.otherTok)
			if rows, _ := csv.NewReader(bytes.NewReader(b)).ReadAll(); len(rows) != 1 {
				t.Errorf("the other workspace exports %q", b)
			}
		})

		t.Run("paypal", func(t *testing.T) {
			status, h, b := a.getRaw(t, "/v1/payouts/export?format=paypal&currency=usd&direction=asc", a.read)
			if status != 200 || h.Get("Content-Disposition") != `attachment; filename="paypal-payouts-USD-2026-11-01.csv"` {
				t.Fatalf("%d %v %s", status, h, b)
			}
			rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
			if err != nil || len(rows) != 2 {
				t.Fatalf("paypal: %v %q", err, b)
			}
			for i, id := range []int64{p1, p2} {
				want := []string{map[int64]string{p1: "aliceable@example.com", p2: "bobbaker@example.com"}[id],
					apiAmounts[id][0], "USD", fmt.Sprintf("payout-%d", id), fmt.Sprintf("Acme %s affiliate payout %d", e.engine, id)}
				if strings.Join(rows[i], "|") != strings.Join(want, "|") {
					t.Errorf("row %d: %q, want %q", i, rows[i], want)
				}
			}
			// Only pending payouts unless processing is asked for; the EUR one is completed anyway.
			_, _, b = a.getRaw(t, "/v1/payouts/export?format=paypal&currency=EUR", a.read)
			if len(b) != 0 {
				t.Errorf("completed payouts in a PayPal file: %q", b)
			}
			for _, q := range []string{"format=paypal", "format=paypal&currency=USD&status=completed",
				"format=paypal&currency=USD&status=failed", "format=paypal&currency=ABC"} {
				e.do("GET", "/v1/payouts/export?"+q, a.read, nil).expectError(t, 422, "VALIDATION_ERROR", "")
			}
		})

		t.Run("statement", func(t *testing.T) {
			for _, id := range []int64{p1, p2, p3} {
				status, h, b := a.getRaw(t, fmt.Sprintf("/v1/payouts/%d/statement", id), a.read)
				if status != 200 || h.Get("Content-Type") != "application/pdf" ||
					h.Get("Content-Disposition") != fmt.Sprintf(`attachment; filename="payout-%d-statement.pdf"`, id) {
					t.Fatalf("%d %v", status, h)
				}
				texts := pdfTexts(t, b)
				joined := strings.Join(texts, "\n")
				for _, amt := range apiAmounts[id] {
					if !slices.Contains(texts, amt) {
						t.Errorf("payout %d: amount %s not in the statement:\n%s", id, amt, joined)
					}
				}
				if !strings.Contains(joined, "Payout statement") || !strings.Contains(joined, fmt.Sprintf("Acme %s", e.engine)) {
					t.Errorf("payout %d statement:\n%s", id, joined)
				}
			}
			// p1 lists every order; p2 shows the bonus it pays on top.
			_, _, b := a.getRaw(t, fmt.Sprintf("/v1/payouts/%d/statement", p1), a.read)
			texts := pdfTexts(t, b)
			for _, want := range []string{"PO-1", "PO-2", "PO-3", "PO-4", "2026-10-01", "Total USD", "Alice Able <aliceable@example.com> (id " + strconv.FormatInt(a.alice, 10) + ")"} {
				if !slices.Contains(texts, want) {
					t.Errorf("%q not in statement: %q", want, texts)
				}
			}
			_, _, b = a.getRaw(t, fmt.Sprintf("/v1/payouts/%d/statement", p2), a.read)
			if texts := pdfTexts(t, b); !slices.Contains(texts, "0.07") {
				t.Errorf("the bonus is not on the statement: %q", texts)
			}
			e.do("GET", fmt.Sprintf("/v1/payouts/%d/statement", p1), a.otherTok, nil).expectError(t, 404, "NOT_FOUND", "")
			e.do("GET", "/v1/payouts/999999/statement", a.read, nil).expectError(t, 404, "NOT_FOUND", "")
		})
	})
}

func TestPayoutTransitions(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		a := paySetupAPI(t, e)
		_, c1 := a.approved(t, a.alice, 2500)
		p1 := a.payout(t, a.alice, "USD", 2500)
		a.approved(t, a.alice, 1000)
		p2 := a.payout(t, a.alice, "USD", 1000)
		a.approved(t, a.bob, 700)
		p3 := a.payout(t, a.bob, "USD", 700)
		// A payout of the other workspace.
		otherPayout := func() int64 {
			t.Helper()
			if _, err := e.store.CreateAdjustment(context.Background(), a.other.ID, a.otherAff,
				heldsway.AdjustmentInput{Amount: 500, Currency: "USD", Reason: "x"}); err != nil {
				t.Fatal(err)
			}
			var rid int64
			if err := e.store.DB().QueryRow(`INSERT INTO payout_requests (workspace_id, affiliate_id, currency, amount, status,
				created_at, updated_at) VALUES ($1, $2, 'USD', 500, 'pending', 0, 0) RETURNING id`, a.other.ID, a.otherAff).Scan(&rid); err != nil {
				t.Fatal(err)
			}
			p, err := e.store.CreatePayoutForRequest(context.Background(), a.other.ID, rid)
			if err != nil {
				t.Fatal(err)
			}
			return p.ID
		}()

		t.Run("processing then complete", func(t *testing.T) {
			r := e.do("POST", fmt.Sprintf("/v1/payouts/%d/processing", p1), a.write, nil)
			if r.status != 200 || r.data()["status"] != "processing" || r.data()["processing_at"] == nil ||
				r.data()["affiliate"].(map[string]any)["name"] != "Alice Able" {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			r = e.do("POST", fmt.Sprintf("/v1/payouts/%d/processing", p1), a.write, nil)
			r.expectError(t, 409, "INVALID_STATUS_TRANSITION", "")
			if d := r.body["error"].(map[string]any)["details"].(map[string]any); d["from"] != "processing" || d["to"] != "processing" {
				t.Fatalf("details: %s", r.raw)
			}
			r = e.do("POST", fmt.Sprintf("/v1/payouts/%d/complete", p1), a.write, map[string]any{"external_reference": "PP-7781"})
			if r.status != 200 || r.data()["status"] != "completed" || r.data()["external_reference"] != "PP-7781" || r.data()["completed_at"] == nil {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			d := e.do("GET", fmt.Sprintf("/v1/payouts/%d", p1), a.read, nil).data()
			if it := d["commissions"].([]any)[0].(map[string]any); ordNum(it["commission_id"]) != c1 || it["status"] != "paid" {
				t.Fatalf("commission after complete: %v", it)
			}
			for _, action := range []string{"complete", "fail", "processing"} {
				e.do("POST", fmt.Sprintf("/v1/payouts/%d/%s", p1, action), a.write, nil).expectError(t, 409, "INVALID_STATUS_TRANSITION", "")
			}
		})

		t.Run("fail returns the amount", func(t *testing.T) {
			before := a.balanceOf(t, a.alice, "USD")
			r := e.do("POST", fmt.Sprintf("/v1/payouts/%d/fail", p2), a.write, map[string]any{"reason": "PayPal account closed"})
			if r.status != 200 || r.data()["status"] != "failed" || r.data()["failure_reason"] != "PayPal account closed" {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			after := a.balanceOf(t, a.alice, "USD")
			if before["in_flight"] != "10.00" || after["in_flight"] != "0.00" || after["available"] != "10.00" || after["paid"] != "25.00" {
				t.Fatalf("balance before %v after %v", before, after)
			}
			l := ordItems(e.do("GET", fmt.Sprintf("/v1/affiliates/%d/ledger", a.alice), a.read, nil))
			if l[0]["kind"] != "payout_returned" || ordNum(l[0]["payout_id"]) != p2 || l[0]["reason"] != "PayPal account closed" {
				t.Fatalf("ledger: %v", l[0])
			}
			e.do("POST", fmt.Sprintf("/v1/payouts/%d/complete", p2), a.write, nil).expectError(t, 409, "INVALID_STATUS_TRANSITION", "")
			// A failed payout still lists what it settled until it failed.
			if d := e.do("GET", fmt.Sprintf("/v1/payouts/%d", p2), a.read, nil).data(); len(d["commissions"].([]any)) != 1 {
				t.Fatalf("failed payout's commissions: %v", d)
			}
			var types string
			if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM events WHERE workspace_id = $1 AND type IN ('payout.sent', 'payout.failed')`,
				e.ws.ID).Scan(&types); err != nil || types != "2" {
				t.Fatalf("events: %s %v", types, err)
			}
		})

		t.Run("validation writes nothing", func(t *testing.T) {
			before := a.writes(t)
			for _, tc := range []struct {
				action string
				body   any
				field  string
			}{
				{"complete", map[string]any{"external_reference": strings.Repeat("x", 256)}, "external_reference"},
				{"complete", map[string]any{"external_reference": 5}, "external_reference"},
				{"fail", map[string]any{"reason": strings.Repeat("x", 1001)}, "reason"},
				{"fail", map[string]any{"why": "x"}, "why"},
			} {
				r := e.do("POST", fmt.Sprintf("/v1/payouts/%d/%s", p3, tc.action), a.write, tc.body)
				r.expectError(t, 422, "VALIDATION_ERROR", "")
				if len(r.details(tc.field)) == 0 && len(r.details("body")) == 0 {
					t.Errorf("%s %v: no detail on %s: %s", tc.action, tc.body, tc.field, r.raw)
				}
			}
			if a.writes(t) != before {
				t.Fatal("a refused transition wrote something")
			}
		})

		t.Run("other workspace", func(t *testing.T) {
			before := a.writes(t)
			for _, action := range []string{"processing", "complete", "fail"} {
				e.do("POST", fmt.Sprintf("/v1/payouts/%d/%s", p3, action), a.otherTok, nil).expectError(t, 404, "NOT_FOUND", "")
				e.do("POST", fmt.Sprintf("/v1/payouts/%d/%s", otherPayout, action), a.write, nil).expectError(t, 404, "NOT_FOUND", "")
			}
			if a.writes(t) != before {
				t.Fatal("another workspace changed a payout")
			}
		})

		t.Run("scopes", func(t *testing.T) {
			for _, action := range []string{"processing", "complete", "fail"} {
				e.do("POST", fmt.Sprintf("/v1/payouts/%d/%s", p3, action), a.read, nil).expectError(t, 403, "FORBIDDEN", "")
			}
			for _, p := range []string{"/v1/payouts/bulk-processing", "/v1/payouts/bulk-complete"} {
				e.do("POST", p, a.read, map[string]any{"ids": []int64{p3}}).expectError(t, 403, "FORBIDDEN", "")
			}
		})

		t.Run("bulk", func(t *testing.T) {
			a.approved(t, a.bob, 300)
			p4 := a.payout(t, a.bob, "USD", 300)
			r := e.do("POST", "/v1/payouts/bulk-processing", a.write, map[string]any{"ids": []int64{p3, p1, 999999, otherPayout, p4}})
			if r.status != 200 || ordNum(r.data()["succeeded"]) != 2 || ordNum(r.data()["failed"]) != 3 {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			items := ordItems(r)
			want := []string{"processing", "INVALID_STATUS_TRANSITION", "NOT_FOUND", "NOT_FOUND", "processing"}
			for i, it := range items {
				got := ""
				if it["success"] == true {
					got = it["payout"].(map[string]any)["status"].(string)
					if it["payout"].(map[string]any)["affiliate"] == nil {
						t.Errorf("bulk payout without affiliate: %v", it)
					}
				} else {
					got = it["error"].(map[string]any)["code"].(string)
				}
				if got != want[i] {
					t.Errorf("item %d: %s, want %s (%v)", i, got, want[i], it)
				}
			}
			r = e.do("POST", "/v1/payouts/bulk-complete", a.write, map[string]any{"ids": []int64{p4, p3}, "external_reference": "BATCH-1"})
			if r.status != 200 || ordNum(r.data()["succeeded"]) != 2 {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			for _, it := range ordItems(r) {
				if p := it["payout"].(map[string]any); p["status"] != "completed" || p["external_reference"] != "BATCH-1" {
					t.Errorf("bulk complete: %v", p)
				}
			}
			if b := a.balanceOf(t, a.bob, "USD"); b["paid"] != "10.00" || b["in_flight"] != "0.00" {
				t.Fatalf("bob: %v", b)
			}

			before := a.writes(t)
			hundredOne := make([]int64, 101)
			for i := range hundredOne {
				hundredOne[i] = int64(i + 1)
			}
			for _, body := range []any{map[string]any{"ids": []int64{}}, map[string]any{"ids": hundredOne},
				map[string]any{"ids": []int64{p3, p3}}, map[string]any{"ids": []int64{0}}, map[string]any{},
				map[string]any{"ids": nil}, map[string]any{"ids": []int64{p3}, "external_reference": "x"}} {
				e.do("POST", "/v1/payouts/bulk-processing", a.write, body).expectError(t, 422, "VALIDATION_ERROR", "")
			}
			r = e.do("POST", "/v1/payouts/bulk-complete", a.write, map[string]any{"ids": []int64{p3, p3}})
			r.expectError(t, 422, "VALIDATION_ERROR", "")
			if len(r.details("ids.1")) == 0 {
				t.Fatalf("duplicate not named: %s", r.raw)
			}
			if a.writes(t) != before {
				t.Fatal("a refused bulk action wrote something")
			}
		})
	})
}

func TestPayoutRequests(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		a := paySetupAPI(t, e)
		a.approved(t, a.alice, 2000)
		a.approved(t, a.alice, 3000)
		reqPath := func(aff int64) string { return fmt.Sprintf("/v1/affiliates/%d/payout-requests", aff) }
		body := func(amount any) map[string]any {
			return map[string]any{"amount": amount, "currency": "USD", "note": "Rent is due"}
		}

		t.Run("disabled by the settings", func(t *testing.T) {
			before := a.writes(t)
			r := e.do("POST", reqPath(a.alice), a.write, body(10))
			r.expectError(t, 409, "CONFLICT", "")
			if !strings.Contains(r.errMessage(), "allow_early_requests") {
				t.Fatalf("message: %s", r.raw)
			}
			if a.writes(t) != before {
				t.Fatal("a refused request wrote something")
			}
			if r := e.do("PUT", "/v1/settings/payouts", e.token("settings:write"), map[string]any{"allow_early_requests": true}); r.status != 200 {
				t.Fatalf("settings: %d %s", r.status, r.raw)
			}
		})

		var r1, r2 int64
		t.Run("create", func(t *testing.T) {
			r := e.do("POST", reqPath(a.alice), a.write, body(30))
			d := r.data()
			if r.status != 201 || d["status"] != "pending" || d["note"] != "Rent is due" || !strings.Contains(r.raw, `"amount":30.00`) ||
				d["affiliate"].(map[string]any)["name"] != "Alice Able" || d["payout_id"] != nil {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			r1 = ordNum(d["id"])
			// 50.00 available, 30.00 already requested: 20.01 is too much.
			before := a.writes(t)
			r = e.do("POST", reqPath(a.alice), a.write, body(20.01))
			r.expectError(t, 409, "CONFLICT", "")
			det := r.body["error"].(map[string]any)["details"].(map[string]any)
			if fmt.Sprint(det["available"]) != "50" || fmt.Sprint(det["requested"]) != "30" || fmt.Sprint(det["requestable"]) != "20" ||
				det["currency"] != "USD" || !strings.Contains(r.raw, `"requestable":20.00`) {
				t.Fatalf("details: %s", r.raw)
			}
			if a.writes(t) != before {
				t.Fatal("a refused request wrote something")
			}
			r = e.do("POST", reqPath(a.alice), a.write, map[string]any{"amount": 20, "currency": "usd"})
			if r.status != 201 || r.data()["note"] != nil || r.data()["currency"] != "USD" {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			r2 = ordNum(r.data()["id"])
			// Nothing moved: the balance is what it was.
			if b := a.balanceOf(t, a.alice, "USD"); b["available"] != "50.00" || b["in_flight"] != "0.00" {
				t.Fatalf("balance: %v", b)
			}
			// No balance in EUR at all.
			e.do("POST", reqPath(a.alice), a.write, map[string]any{"amount": 1, "currency": "EUR"}).expectError(t, 409, "CONFLICT", "")
		})

		t.Run("validation", func(t *testing.T) {
			before := a.writes(t)
			for _, tc := range []struct {
				name  string
				body  any
				field string
			}{
				{"zero", body(0), "amount"},
				{"negative", body(-5), "amount"},
				{"three decimals", body(1.001), "amount"},
				{"absurd", body(1e20), "amount"},
				{"missing currency", map[string]any{"amount": 1}, "currency"},
				{"bad currency", map[string]any{"amount": 1, "currency": "QQQ"}, "currency"},
				{"missing amount", map[string]any{"currency": "USD"}, "amount"},
				{"long note", map[string]any{"amount": 1, "currency": "USD", "note": strings.Repeat("n", 1001)}, "note"},
				{"unknown field", map[string]any{"amount": 1, "currency": "USD", "iban": "x"}, "iban"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					r := e.do("POST", reqPath(a.alice), a.write, tc.body)
					r.expectError(t, 422, "VALIDATION_ERROR", "")
					if len(r.details(tc.field)) == 0 {
						t.Fatalf("no detail on %s: %s", tc.field, r.raw)
					}
				})
			}
			e.do("POST", reqPath(999999), a.write, body(1)).expectError(t, 404, "NOT_FOUND", "")
			e.do("POST", reqPath(a.alice), a.otherTok, body(1)).expectError(t, 404, "NOT_FOUND", "")
			if a.writes(t) != before {
				t.Fatal("a refused request wrote something")
			}
		})

		t.Run("inactive affiliate", func(t *testing.T) {
			a.approved(t, a.bob, 1000)
			if _, err := e.store.TransitionAffiliate(context.Background(), e.ws.ID, a.bob, heldsway.ActionSuspend, ""); err != nil {
				t.Fatal(err)
			}
			r := e.do("POST", reqPath(a.bob), a.write, body(5))
			r.expectError(t, 409, "CONFLICT", "")
			if !strings.Contains(r.errMessage(), "suspended") {
				t.Fatalf("message: %s", r.raw)
			}
		})

		t.Run("list", func(t *testing.T) {
			r := e.do("GET", "/v1/payouts/requests", a.read, nil)
			items := ordItems(r)
			if r.status != 200 || len(items) != 2 || ordNum(items[0]["id"]) != r2 || ordNum(items[1]["id"]) != r1 {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			r = e.do("GET", "/v1/payouts/requests?per_page=1&direction=asc", a.read, nil)
			next := r.data()["meta"].(map[string]any)["next_cursor"].(string)
			r = e.do("GET", "/v1/payouts/requests?per_page=1&direction=asc&cursor="+next, a.read, nil)
			if items := ordItems(r); len(items) != 1 || ordNum(items[0]["id"]) != r2 || r.data()["meta"].(map[string]any)["has_more"] != false {
				t.Fatalf("second page: %s", r.raw)
			}
			if n := len(ordItems(e.do("GET", fmt.Sprintf("/v1/payouts/requests?affiliate_id=%d", a.bob), a.read, nil))); n != 0 {
				t.Fatalf("bob's requests: %d", n)
			}
			if n := len(ordItems(e.do("GET", "/v1/payouts/requests?status=rejected", a.read, nil))); n != 0 {
				t.Fatalf("rejected: %d", n)
			}
			for _, q := range []string{"status=paid", fmt.Sprintf("affiliate_id=%d", a.otherAff), "cursor=x", "affiliate_id=0"} {
				e.do("GET", "/v1/payouts/requests?"+q, a.read, nil).expectError(t, 422, "VALIDATION_ERROR", "")
			}
			if n := len(ordItems(e.do("GET", "/v1/payouts/requests", a.otherTok, nil))); n != 0 {
				t.Fatalf("the other workspace sees %d requests", n)
			}
		})

		t.Run("approve", func(t *testing.T) {
			e.do("POST", fmt.Sprintf("/v1/payouts/requests/%d/approve", r1), a.otherTok, nil).expectError(t, 404, "NOT_FOUND", "")
			r := e.do("POST", fmt.Sprintf("/v1/payouts/requests/%d/approve", r1), a.write, nil)
			d := r.data()
			if r.status != 200 || d["status"] != "pending" || ordNum(d["request_id"]) != r1 || !strings.Contains(r.raw, `"amount":30.00`) ||
				d["affiliate"] == nil {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			payoutID := ordNum(d["id"])
			if b := a.balanceOf(t, a.alice, "USD"); b["available"] != "20.00" || b["in_flight"] != "30.00" {
				t.Fatalf("balance: %v", b)
			}
			items := ordItems(e.do("GET", "/v1/payouts/requests?status=approved", a.read, nil))
			if len(items) != 1 || ordNum(items[0]["payout_id"]) != payoutID || items[0]["decided_at"] == nil {
				t.Fatalf("approved request: %v", items)
			}
			e.do("POST", fmt.Sprintf("/v1/payouts/requests/%d/approve", r1), a.write, nil).expectError(t, 409, "INVALID_STATUS_TRANSITION", "")
			e.do("POST", fmt.Sprintf("/v1/payouts/requests/%d/reject", r1), a.write, nil).expectError(t, 409, "INVALID_STATUS_TRANSITION", "")
			e.do("POST", "/v1/payouts/requests/999999/approve", a.write, nil).expectError(t, 404, "NOT_FOUND", "")
		})

		t.Run("reject", func(t *testing.T) {
			e.do("POST", fmt.Sprintf("/v1/payouts/requests/%d/reject", r2), a.otherTok, nil).expectError(t, 404, "NOT_FOUND", "")
			e.do("POST", fmt.Sprintf("/v1/payouts/requests/%d/reject", r2), a.write,
				map[string]any{"reason": strings.Repeat("r", 1001)}).expectError(t, 422, "VALIDATION_ERROR", "")
			r := e.do("POST", fmt.Sprintf("/v1/payouts/requests/%d/reject", r2), a.write, map[string]any{"reason": "Wait for the monthly run"})
			if r.status != 200 || r.data()["status"] != "rejected" || r.data()["reason"] != "Wait for the monthly run" || r.data()["decided_at"] == nil {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			r = e.do("POST", fmt.Sprintf("/v1/payouts/requests/%d/reject", r2), a.write, nil)
			r.expectError(t, 409, "INVALID_STATUS_TRANSITION", "")
			if d := r.body["error"].(map[string]any)["details"].(map[string]any); d["from"] != "rejected" {
				t.Fatalf("details: %s", r.raw)
			}
			e.do("POST", fmt.Sprintf("/v1/payouts/requests/%d/approve", r2), a.write, nil).expectError(t, 409, "INVALID_STATUS_TRANSITION", "")
			// The rejected amount can be requested again.
			if r := e.do("POST", reqPath(a.alice), a.write, body(20)); r.status != 201 {
				t.Fatalf("request after rejection: %d %s", r.status, r.raw)
			}
			var created, rejected, approved int
			if err := e.store.DB().QueryRow(`SELECT
				SUM(CASE WHEN type = 'payout_request.created' THEN 1 ELSE 0 END),
				SUM(CASE WHEN type = 'payout_request.rejected' THEN 1 ELSE 0 END),
				SUM(CASE WHEN type = 'payout_request.approved' THEN 1 ELSE 0 END)
				FROM events WHERE workspace_id = $1`, e.ws.ID).Scan(&created, &rejected, &approved); err != nil {
				t.Fatal(err)
			}
			if created != 3 || rejected != 1 || approved != 1 {
				t.Fatalf("events: %d created, %d rejected, %d approved", created, rejected, approved)
			}
			var reason string
			if err := e.store.DB().QueryRow(`SELECT changes FROM audit_log WHERE workspace_id = $1 AND action = 'payout_request.reject'`,
				e.ws.ID).Scan(&reason); err != nil || !strings.Contains(reason, "Wait for the monthly run") {
				t.Fatalf("audit: %s %v", reason, err)
			}
		})

		t.Run("scopes", func(t *testing.T) {
			e.do("POST", reqPath(a.alice), a.read, body(1)).expectError(t, 403, "FORBIDDEN", "")
			e.do("GET", "/v1/payouts/requests", a.none, nil).expectError(t, 403, "FORBIDDEN", "")
			e.do("POST", fmt.Sprintf("/v1/payouts/requests/%d/approve", r2), a.read, nil).expectError(t, 403, "FORBIDDEN", "")
			e.do("POST", fmt.Sprintf("/v1/payouts/requests/%d/reject", r2), a.read, nil).expectError(t, 403, "FORBIDDEN", "")
		})
	})
}
