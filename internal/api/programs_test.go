package api_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/auth"
)

// progCounts counts the rows a program or settings write touches in the env's
// workspace, so a test can assert that bad input wrote nothing.
func progCounts(t *testing.T, e *env) string {
	t.Helper()
	var out []string
	for _, table := range []string{"programs", "commission_tiers", "audit_log", "events"} {
		var n int
		if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM `+table+` WHERE workspace_id = $1`, e.ws.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s=%d", table, n))
	}
	// The updated_at of the settings row and of every program change on any write.
	var stamp int64
	if err := e.store.DB().QueryRow(`SELECT (SELECT COALESCE(SUM(updated_at), 0) FROM programs WHERE workspace_id = $1) +
		(SELECT updated_at FROM workspace_settings WHERE workspace_id = $1)`, e.ws.ID).Scan(&stamp); err != nil {
		t.Fatal(err)
	}
	return strings.Join(append(out, fmt.Sprintf("stamp=%d", stamp)), " ")
}

// progCreate creates a program through the API and returns its object.
func progCreate(t *testing.T, e *env, tok string, body map[string]any) map[string]any {
	t.Helper()
	r := e.do("POST", "/v1/programs", tok, body)
	if r.status != 201 {
		t.Fatalf("create program: %d %s", r.status, r.raw)
	}
	return r.data()
}

func progID(p map[string]any) int64 { return int64(p["id"].(float64)) }

// progDefault returns the default program through the API.
func progDefault(t *testing.T, e *env, tok string) map[string]any {
	t.Helper()
	r := e.do("GET", "/v1/programs?per_page=100", tok, nil)
	if r.status != 200 {
		t.Fatalf("list programs: %d %s", r.status, r.raw)
	}
	var found map[string]any
	for _, it := range r.data()["items"].([]any) {
		if p := it.(map[string]any); p["is_default"] == true {
			if found != nil {
				t.Fatalf("two default programs: %s", r.raw)
			}
			found = p
		}
	}
	if found == nil {
		t.Fatalf("no default program: %s", r.raw)
	}
	return found
}

// progAddAffiliate enrols an affiliate in a program with raw SQL, so these
// tests do not depend on the affiliate endpoints.
func progAddAffiliate(t *testing.T, e *env, programID int64) {
	t.Helper()
	var userID int64
	email := fmt.Sprintf("a%d-%d@example.com", programID, time.Now().UnixNano())
	if err := e.store.DB().QueryRow(`INSERT INTO affiliate_users (workspace_id, name, email, created_at, updated_at)
		VALUES ($1, 'Ann', $2, 0, 0) RETURNING id`, e.ws.ID, email).Scan(&userID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.DB().Exec(`INSERT INTO affiliates (workspace_id, program_id, affiliate_user_id, referral_code,
		status, name, email, created_at, updated_at) VALUES ($1, $2, $3, $4, 'active', 'Ann', $5, 0, 0)`,
		e.ws.ID, programID, userID, fmt.Sprintf("C%d", time.Now().UnixNano()), email); err != nil {
		t.Fatal(err)
	}
}

func TestProgramDefault(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		tok := e.token("settings:read")
		p := progDefault(t, e, tok)
		want := map[string]any{"name": e.ws.Name + " program", "currency": "USD", "commission_type": "percentage",
			"commission_value": nil, "commission_base": "net", "recurring": "off", "recurring_months": nil,
			"cookie_duration": float64(30), "attribution_model": "last_click", "tier_rate": nil, "status": "active",
			"is_default": true, "allow_self_registration": false, "auto_approve_enabled": false,
			"auto_approve_delay_days": float64(0), "auto_approve_min_amount": nil, "auto_approve_max_amount": nil}
		for k, v := range want {
			if p[k] != v {
				t.Errorf("%s = %#v, want %#v", k, p[k], v)
			}
		}
		keys := sortedKeysOf(p)
		wantKeys := []string{"allow_self_registration", "attribution_model", "auto_approve_delay_days",
			"auto_approve_enabled", "auto_approve_max_amount", "auto_approve_min_amount", "commission_base",
			"commission_type", "commission_value", "cookie_duration", "created_at", "currency", "id", "is_default",
			"name", "recurring", "recurring_months", "status", "tier_rate", "updated_at"}
		if !slices.Equal(keys, wantKeys) {
			t.Errorf("keys %v, want %v", keys, wantKeys)
		}
		if !reTimestamp.MatchString(p["created_at"].(string)) {
			t.Errorf("created_at %v", p["created_at"])
		}

		// A second workspace gets its own default program in the same transaction.
		ws2, err := e.auth.CreateWorkspace(context.Background(), "Other", "basic")
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM programs WHERE workspace_id = $1 AND is_default = $2`,
			ws2.ID, true).Scan(&n); err != nil || n != 1 {
			t.Fatalf("second workspace default programs = %d (%v)", n, err)
		}
		if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM workspace_settings WHERE workspace_id = $1`, ws2.ID).Scan(&n); err != nil || n != 1 {
			t.Fatalf("second workspace settings rows = %d (%v)", n, err)
		}
	})
}

func TestProgramCRUD(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		tok := e.token("settings:read", "settings:write", "audit:read")
		before := progCounts(t, e)
		p := progCreate(t, e, tok, map[string]any{"name": "  EU partners ", "currency": "eur", "commission_type": "flat",
			"commission_value": 12.5, "recurring": "months", "recurring_months": 12, "cookie_duration": 60,
			"attribution_model": "first_click", "tier_rate": 2.5, "commission_base": "subtotal",
			"auto_approve_enabled": true, "auto_approve_delay_days": 14, "auto_approve_min_amount": 10,
			"auto_approve_max_amount": 1000.5, "allow_self_registration": true})
		if before == progCounts(t, e) {
			t.Fatal("create wrote nothing")
		}
		want := map[string]any{"name": "EU partners", "currency": "EUR", "commission_type": "flat",
			"commission_value": 12.5, "recurring": "months", "recurring_months": float64(12),
			"cookie_duration": float64(60), "attribution_model": "first_click", "tier_rate": 2.5,
			"commission_base": "subtotal", "status": "active", "is_default": false, "auto_approve_enabled": true,
			"auto_approve_delay_days": float64(14), "auto_approve_min_amount": float64(10),
			"auto_approve_max_amount": 1000.5, "allow_self_registration": true}
		for k, v := range want {
			if p[k] != v {
				t.Errorf("created %s = %#v, want %#v", k, p[k], v)
			}
		}
		id := progID(p)
		r := e.do("POST", "/v1/programs", tok, map[string]any{"name": "Raw", "currency": "USD", "commission_value": 7.5})
		if !strings.Contains(r.raw, `"commission_value":7.50`) || !strings.Contains(r.raw, `"tier_rate":null`) {
			t.Errorf("rates are not rendered with two decimals: %s", r.raw)
		}
		r = e.do("POST", "/v1/programs", tok, map[string]any{"name": "Raw", "currency": "EUR", "commission_type": "flat", "commission_value": 3})
		if !strings.Contains(r.raw, `"commission_value":3.00`) {
			t.Errorf("flat amounts are not rendered with the currency's decimals: %s", r.raw)
		}

		r = e.do("GET", fmt.Sprintf("/v1/programs/%d", id), tok, nil)
		if r.status != 200 || r.data()["name"] != "EU partners" {
			t.Fatalf("get: %d %s", r.status, r.raw)
		}

		// PUT changes only what is sent; null clears.
		e.clock.Advance(time.Second)
		r = e.do("PUT", fmt.Sprintf("/v1/programs/%d", id), tok, map[string]any{"name": "EU", "tier_rate": nil,
			"recurring": "lifetime", "auto_approve_max_amount": nil, "status": "paused"})
		if r.status != 200 {
			t.Fatalf("update: %d %s", r.status, r.raw)
		}
		got := r.data()
		for k, v := range map[string]any{"name": "EU", "tier_rate": nil, "recurring": "lifetime", "recurring_months": nil,
			"auto_approve_max_amount": nil, "status": "paused", "commission_value": 12.5, "cookie_duration": float64(60),
			"auto_approve_min_amount": float64(10), "currency": "EUR", "created_at": p["created_at"]} {
			if got[k] != v {
				t.Errorf("updated %s = %#v, want %#v", k, got[k], v)
			}
		}
		if got["updated_at"] == p["updated_at"] {
			t.Error("updated_at did not move")
		}

		// An update that changes nothing writes nothing.
		same := progCounts(t, e)
		if r := e.do("PUT", fmt.Sprintf("/v1/programs/%d", id), tok, map[string]any{"name": "EU"}); r.status != 200 {
			t.Fatalf("no-op update: %d %s", r.status, r.raw)
		}
		if same != progCounts(t, e) {
			t.Error("a no-op update wrote")
		}

		// Changing the type needs a value; a new value is read in the new type.
		r = e.do("PUT", fmt.Sprintf("/v1/programs/%d", id), tok, map[string]any{"commission_type": "percentage"})
		r.expectError(t, 422, "VALIDATION_ERROR", "")
		if d := r.details("commission_value"); len(d) != 1 || !strings.Contains(d[0], "required when the commission type changes") {
			t.Errorf("details %v", d)
		}
		r = e.do("PUT", fmt.Sprintf("/v1/programs/%d", id), tok, map[string]any{"commission_type": "percentage", "commission_value": 15})
		if r.status != 200 || r.data()["commission_value"] != float64(15) || r.data()["commission_type"] != "percentage" {
			t.Fatalf("type change: %d %s", r.status, r.raw)
		}

		// Audit entries and events of each write.
		var actions []string
		rows, err := e.store.DB().Query(`SELECT action FROM audit_log WHERE workspace_id = $1 AND resource_id = $2 ORDER BY id`, e.ws.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var a string
			_ = rows.Scan(&a)
			actions = append(actions, a)
		}
		rows.Close()
		if !slices.Equal(actions, []string{"program.create", "program.update", "program.update"}) {
			t.Errorf("audit actions %v", actions)
		}

		r = e.do("DELETE", fmt.Sprintf("/v1/programs/%d", id), tok, nil)
		if r.status != 200 || r.data()["deleted"] != true {
			t.Fatalf("delete: %d %s", r.status, r.raw)
		}
		e.do("GET", fmt.Sprintf("/v1/programs/%d", id), tok, nil).expectError(t, 404, "NOT_FOUND", "Program not found.")
		e.do("DELETE", fmt.Sprintf("/v1/programs/%d", id), tok, nil).expectError(t, 404, "NOT_FOUND", "")
		var events []string
		rows, err = e.store.DB().Query(`SELECT type FROM events WHERE workspace_id = $1 AND resource_id = $2 ORDER BY id`, e.ws.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var a string
			_ = rows.Scan(&a)
			events = append(events, a)
		}
		rows.Close()
		if !slices.Equal(events, []string{"program.created", "program.updated", "program.updated", "program.deleted"}) {
			t.Errorf("events %v", events)
		}
	})
}

func TestProgramValidation(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		tok := e.token("settings:read", "settings:write")
		base := func(kv ...any) map[string]any {
			m := map[string]any{"name": "P", "currency": "USD"}
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i+1] == "<absent>" {
					delete(m, kv[i].(string))
					continue
				}
				m[kv[i].(string)] = kv[i+1]
			}
			return m
		}
		long := strings.Repeat("x", 256)
		tests := []struct {
			name  string
			body  any
			field string
			msg   string
		}{
			{"missing name", base("name", "<absent>"), "name", "The name field is required."},
			{"blank name", base("name", "   "), "name", "The name field is required."},
			{"long name", base("name", long), "name", "The name field must not be greater than 255 characters."},
			{"name wrong type", base("name", 5), "name", "The name field must be a string."},
			{"missing currency", base("currency", "<absent>"), "currency", "The currency field is required."},
			{"unknown currency", base("currency", "XYZ"), "currency", "The currency field must be a valid ISO 4217 currency code."},
			{"currency length", base("currency", "USDD"), "currency", ""},
			{"bad type", base("commission_type", "tiered"), "commission_type", "The selected commission type is invalid. Allowed: percentage, flat."},
			{"rate over 100", base("commission_value", 100.01), "commission_value", "The commission value field must be between 0 and 100."},
			{"rate precision", base("commission_value", 10.125), "commission_value", "The commission value field must have at most 2 decimal places."},
			{"negative rate", base("commission_value", -1), "commission_value", ""},
			{"value as string", base("commission_value", "10"), "commission_value", "The commission value field must be a number."},
			{"flat precision", base("commission_type", "flat", "currency", "JPY", "commission_value", 10.5), "commission_value", "The commission value field must be a whole number for JPY."},
			{"flat negative", base("commission_type", "flat", "commission_value", -5), "commission_value", ""},
			{"flat absurd", base("commission_type", "flat", "commission_value", 1e20), "commission_value", "The commission value field is out of range."},
			{"bad base", base("commission_base", "gross"), "commission_base", ""},
			{"months missing", base("recurring", "months"), "recurring_months", "The recurring months field is required when recurring is months."},
			{"months without months", base("recurring_months", 3), "recurring_months", "The recurring months field is only allowed when recurring is months."},
			{"months too many", base("recurring", "months", "recurring_months", 121), "recurring_months", ""},
			{"months zero", base("recurring", "months", "recurring_months", 0), "recurring_months", ""},
			{"bad recurring", base("recurring", "forever"), "recurring", ""},
			{"cookie zero", base("cookie_duration", 0), "cookie_duration", "The cookie duration field must be at least 1."},
			{"cookie 366", base("cookie_duration", 366), "cookie_duration", "The cookie duration field must not be greater than 365."},
			{"cookie fraction", base("cookie_duration", 1.5), "cookie_duration", ""},
			{"cookie null", base("cookie_duration", nil), "cookie_duration", ""},
			{"bad attribution", base("attribution_model", "linear"), "attribution_model", ""},
			{"tier rate over", base("tier_rate", 101), "tier_rate", ""},
			{"bad status", base("status", "deleted"), "status", ""},
			{"delay over", base("auto_approve_delay_days", 366), "auto_approve_delay_days", ""},
			{"negative min", base("auto_approve_min_amount", -1), "auto_approve_min_amount", ""},
			{"min above max", base("auto_approve_min_amount", 100, "auto_approve_max_amount", 99.99), "auto_approve_min_amount",
				"The auto approve min amount must not be greater than the auto approve max amount."},
			{"amount precision", base("auto_approve_max_amount", 1.001), "auto_approve_max_amount", "The auto approve max amount field must have at most 2 decimal places for USD."},
			{"bool as string", base("allow_self_registration", "yes"), "allow_self_registration", ""},
			{"is_default read-only", base("is_default", true), "is_default", "The is default field is not allowed."},
			{"unknown field", base("colour", "red"), "colour", "The colour field is not allowed."},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := progCounts(t, e)
				r := e.do("POST", "/v1/programs", tok, tc.body)
				r.expectError(t, 422, "VALIDATION_ERROR", "")
				d := r.details(tc.field)
				if len(d) == 0 || (tc.msg != "" && !slices.Contains(d, tc.msg)) {
					t.Fatalf("details[%s] = %v, want %q: %s", tc.field, d, tc.msg, r.raw)
				}
				if after := progCounts(t, e); after != before {
					t.Fatalf("bad input wrote: %s → %s", before, after)
				}
			})
		}

		p := progCreate(t, e, tok, base("recurring", "months", "recurring_months", 6))
		path := fmt.Sprintf("/v1/programs/%d", progID(p))
		updates := []struct {
			name  string
			body  any
			field string
			msg   string
		}{
			{"null name", map[string]any{"name": nil}, "name", "The name field must be a string."},
			{"null status", map[string]any{"status": nil}, "status", ""},
			{"months off recurring", map[string]any{"recurring": "off", "recurring_months": 3}, "recurring_months", ""},
			{"clear months of months", map[string]any{"recurring_months": nil}, "recurring_months", "The recurring months field is required when recurring is months."},
			{"min above stored max", map[string]any{"auto_approve_max_amount": 5, "auto_approve_min_amount": 6}, "auto_approve_min_amount", ""},
			{"is_default", map[string]any{"is_default": true}, "is_default", ""},
			{"id in body", map[string]any{"id": 5}, "id", ""},
			{"not an object", "[1,2]", "body", ""},
			{"malformed", `{"name":`, "body", ""},
		}
		for _, tc := range updates {
			t.Run("update "+tc.name, func(t *testing.T) {
				before := progCounts(t, e)
				r := e.do("PUT", path, tok, tc.body)
				r.expectError(t, 422, "VALIDATION_ERROR", "")
				d := r.details(tc.field)
				if len(d) == 0 || (tc.msg != "" && !slices.Contains(d, tc.msg)) {
					t.Fatalf("details[%s] = %v, want %q: %s", tc.field, d, tc.msg, r.raw)
				}
				if after := progCounts(t, e); after != before {
					t.Fatalf("bad input wrote: %s → %s", before, after)
				}
			})
		}
		e.do("GET", "/v1/programs/abc", tok, nil).expectError(t, 422, "VALIDATION_ERROR", "")
		e.do("GET", "/v1/programs?status=deleted", tok, nil).expectError(t, 422, "VALIDATION_ERROR", "")
		e.do("GET", "/v1/programs?sort=currency", tok, nil).expectError(t, 422, "VALIDATION_ERROR", "")
	})
}

func TestProgramConflicts(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		tok := e.token("settings:read", "settings:write")
		def := progDefault(t, e, tok)
		defPath := fmt.Sprintf("/v1/programs/%d", progID(def))

		before := progCounts(t, e)
		e.do("DELETE", defPath, tok, nil).expectError(t, 409, "CONFLICT", "The default program cannot be deleted.")
		e.do("PUT", defPath, tok, map[string]any{"status": "archived"}).expectError(t, 409, "CONFLICT", "The default program cannot be archived.")
		if after := progCounts(t, e); after != before {
			t.Fatalf("a refused write wrote: %s → %s", before, after)
		}
		if r := e.do("PUT", defPath, tok, map[string]any{"status": "paused"}); r.status != 200 {
			t.Fatalf("pausing the default program: %d %s", r.status, r.raw)
		}
		if r := e.do("PUT", defPath, tok, map[string]any{"is_default": false}); r.status != 422 {
			t.Fatalf("is_default is writable: %d %s", r.status, r.raw)
		}

		p := progCreate(t, e, tok, map[string]any{"name": "With affiliates", "currency": "USD"})
		path := fmt.Sprintf("/v1/programs/%d", progID(p))
		progAddAffiliate(t, e, progID(p))
		before = progCounts(t, e)
		e.do("DELETE", path, tok, nil).expectError(t, 409, "CONFLICT", "")
		e.do("PUT", path, tok, map[string]any{"currency": "EUR"}).expectError(t, 409, "CONFLICT",
			"The currency of a program with affiliates cannot change.")
		if after := progCounts(t, e); after != before {
			t.Fatalf("a refused write wrote: %s → %s", before, after)
		}
		// Other fields still change, and re-sending the same currency is no change.
		if r := e.do("PUT", path, tok, map[string]any{"currency": "usd", "status": "archived"}); r.status != 200 || r.data()["status"] != "archived" {
			t.Fatalf("archive: %d %s", r.status, r.raw)
		}
		e.do("GET", path, tok, nil)
	})
}

func TestProgramCurrencyChange(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		tok := e.token("settings:read", "settings:write")
		p := progCreate(t, e, tok, map[string]any{"name": "P", "currency": "USD", "commission_type": "flat",
			"commission_value": 12.5, "auto_approve_min_amount": 10, "auto_approve_max_amount": 20.25})
		path := fmt.Sprintf("/v1/programs/%d", progID(p))

		// To JPY: 12.50 and 20.25 cannot be expressed; nothing changes.
		before := progCounts(t, e)
		r := e.do("PUT", path, tok, map[string]any{"currency": "JPY"})
		r.expectError(t, 422, "VALIDATION_ERROR", "")
		if len(r.details("commission_value")) != 1 || len(r.details("auto_approve_max_amount")) != 1 || len(r.details("auto_approve_min_amount")) != 0 {
			t.Fatalf("details: %s", r.raw)
		}
		if after := progCounts(t, e); after != before {
			t.Fatalf("refused currency change wrote: %s → %s", before, after)
		}
		// Sent with the change, they are read in the new currency.
		r = e.do("PUT", path, tok, map[string]any{"currency": "JPY", "commission_value": 1250, "auto_approve_max_amount": 2000})
		if r.status != 200 {
			t.Fatalf("to JPY: %d %s", r.status, r.raw)
		}
		if !strings.Contains(r.raw, `"commission_value":1250,`) || !strings.Contains(r.raw, `"auto_approve_min_amount":10,`) ||
			!strings.Contains(r.raw, `"auto_approve_max_amount":2000,`) {
			t.Fatalf("amounts in JPY: %s", r.raw)
		}
		// To KWD (three decimals): values keep their decimal value.
		r = e.do("PUT", path, tok, map[string]any{"currency": "KWD"})
		if r.status != 200 || !strings.Contains(r.raw, `"commission_value":1250.000,`) || !strings.Contains(r.raw, `"auto_approve_min_amount":10.000,`) {
			t.Fatalf("to KWD: %d %s", r.status, r.raw)
		}
	})
}

func TestProgramDefaultCurrencyMovesTiersAndPayouts(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		tok := e.token("settings:read", "settings:write")
		defPath := fmt.Sprintf("/v1/programs/%d", progID(progDefault(t, e, tok)))
		if r := e.do("POST", "/v1/settings/commission-tiers", tok, map[string]any{"min_amount": 0, "max_amount": 99.5, "rate": 5}); r.status != 201 {
			t.Fatalf("tier: %d %s", r.status, r.raw)
		}
		before := progCounts(t, e)
		r := e.do("PUT", defPath, tok, map[string]any{"currency": "JPY"})
		r.expectError(t, 422, "VALIDATION_ERROR", "")
		if d := r.details("currency"); len(d) != 1 || !strings.Contains(d[0], "99.50") {
			t.Fatalf("details: %s", r.raw)
		}
		if after := progCounts(t, e); after != before {
			t.Fatalf("refused currency change wrote: %s → %s", before, after)
		}
		if r := e.do("PUT", defPath, tok, map[string]any{"currency": "EUR"}); r.status != 200 {
			t.Fatalf("to EUR: %d %s", r.status, r.raw)
		}
		r = e.do("GET", "/v1/settings/commission-tiers", tok, nil)
		if r.data()["currency"] != "EUR" || !strings.Contains(r.raw, `"max_amount":99.50`) {
			t.Fatalf("tiers after the change: %s", r.raw)
		}
		r = e.do("GET", "/v1/settings/payouts", tok, nil)
		if r.data()["currency"] != "EUR" || !strings.Contains(r.raw, `"minimum_amount":50.00`) {
			t.Fatalf("payout settings after the change: %s", r.raw)
		}
		if r := e.do("PUT", defPath, tok, map[string]any{"currency": "BHD"}); r.status != 200 {
			t.Fatalf("to BHD: %d %s", r.status, r.raw)
		}
		r = e.do("GET", "/v1/settings/commission-tiers", tok, nil)
		if !strings.Contains(r.raw, `"max_amount":99.500`) || !strings.Contains(r.raw, `"min_amount":500.000`) {
			t.Fatalf("tiers in BHD: %s", r.raw)
		}
	})
}

func TestProgramList(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		tok := e.token("settings:read", "settings:write")
		names := []string{"delta", "alpha", "echo", "charlie", "bravo", "foxtrot", "golf"}
		ids := map[string]int64{}
		for i, n := range names {
			// Two programs share each creation time, so ties are broken by id.
			if i%2 == 0 {
				e.clock.Advance(time.Second)
			}
			status := "active"
			if i%3 == 0 {
				status = "paused"
			}
			ids[n] = progID(progCreate(t, e, tok, map[string]any{"name": n, "currency": "USD", "status": status}))
		}
		walk := func(query string) []string {
			t.Helper()
			var out []string
			cursor := ""
			for page := 0; ; page++ {
				if page > 20 {
					t.Fatal("no last page")
				}
				r := e.do("GET", "/v1/programs?per_page=2&"+query+cursor, tok, nil)
				if r.status != 200 {
					t.Fatalf("list %s: %d %s", query, r.status, r.raw)
				}
				for _, it := range r.data()["items"].([]any) {
					out = append(out, it.(map[string]any)["name"].(string))
				}
				meta := r.data()["meta"].(map[string]any)
				if meta["has_more"] != true {
					if _, ok := meta["next_cursor"]; ok {
						t.Fatalf("last page has a cursor: %s", r.raw)
					}
					return out
				}
				cursor = "&cursor=" + meta["next_cursor"].(string)
			}
		}
		def := e.ws.Name + " program"
		byName := walk("sort=name&direction=asc")
		want := append([]string{def}, names...)
		// SQLite and PostgreSQL may collate the upper-case default name differently; check the rest.
		slices.Sort(want[1:])
		if got := slices.DeleteFunc(slices.Clone(byName), func(s string) bool { return s == def }); !slices.Equal(got, want[1:]) || len(byName) != len(want) {
			t.Errorf("by name: %v", byName)
		}
		newest := walk("")
		// By creation time, then id: each second saw two programs.
		wantNewest := []string{"golf", "foxtrot", "bravo", "charlie", "echo", "alpha", "delta", def}
		if !slices.Equal(newest, wantNewest) {
			t.Errorf("newest first: %v, want %v", newest, wantNewest)
		}
		oldest := walk("direction=asc")
		slices.Reverse(wantNewest)
		if !slices.Equal(oldest, wantNewest) {
			t.Errorf("oldest first: %v, want %v", oldest, wantNewest)
		}
		paused := walk("status=paused&sort=name&direction=asc")
		if !slices.Equal(paused, []string{"charlie", "delta", "golf"}) {
			t.Errorf("paused: %v", paused)
		}
		// A cursor of one sort cannot be replayed against another.
		r := e.do("GET", "/v1/programs?per_page=1", tok, nil)
		c := r.data()["meta"].(map[string]any)["next_cursor"].(string)
		e.do("GET", "/v1/programs?per_page=1&sort=name&cursor="+c, tok, nil).expectError(t, 422, "VALIDATION_ERROR", "")
		e.do("GET", "/v1/programs?cursor=garbage", tok, nil).expectError(t, 422, "VALIDATION_ERROR", "")
		// Compatibility page parameter.
		r = e.do("GET", "/v1/programs?per_page=3&page=2", tok, nil)
		var page2 []string
		for _, it := range r.data()["items"].([]any) {
			page2 = append(page2, it.(map[string]any)["name"].(string))
		}
		if !slices.Equal(page2, []string{"charlie", "echo", "alpha"}) {
			t.Errorf("page 2: %v", page2)
		}
	})
}

func TestProgramIsolationAndScopes(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		tok := e.token("settings:read", "settings:write")
		p := progCreate(t, e, tok, map[string]any{"name": "Mine", "currency": "USD"})
		path := fmt.Sprintf("/v1/programs/%d", progID(p))
		def := fmt.Sprintf("/v1/programs/%d", progID(progDefault(t, e, tok)))

		ws2, err := e.auth.CreateWorkspace(context.Background(), "Intruder", "basic")
		if err != nil {
			t.Fatal(err)
		}
		k, secret := e.newKey(ws2, auth.KeyInput{Scopes: []string{"admin"}})
		other := e.exchange(k.Key, secret)
		before := progCounts(t, e)
		for _, pp := range []string{path, def} {
			e.do("GET", pp, other, nil).expectError(t, 404, "NOT_FOUND", "")
			e.do("PUT", pp, other, map[string]any{"name": "Stolen"}).expectError(t, 404, "NOT_FOUND", "")
			e.do("DELETE", pp, other, nil).expectError(t, 404, "NOT_FOUND", "")
		}
		r := e.do("GET", "/v1/programs", other, nil)
		if items := r.data()["items"].([]any); len(items) != 1 || items[0].(map[string]any)["name"] != "Intruder program" {
			t.Fatalf("the other workspace sees: %s", r.raw)
		}
		if after := progCounts(t, e); after != before {
			t.Fatalf("another workspace changed this one: %s → %s", before, after)
		}

		read := e.token("settings:read")
		none := e.token("affiliates:read", "affiliates:write")
		before = progCounts(t, e)
		cases := []struct {
			method, path, token string
			body                any
		}{
			{"GET", "/v1/programs", none, nil},
			{"GET", path, none, nil},
			{"POST", "/v1/programs", read, map[string]any{"name": "x", "currency": "USD"}},
			{"PUT", path, read, map[string]any{"name": "x"}},
			{"DELETE", path, read, nil},
		}
		for _, c := range cases {
			e.do(c.method, c.path, c.token, c.body).expectError(t, 403, "FORBIDDEN", "Insufficient scope.")
			e.do(c.method, c.path, "", c.body).expectError(t, 401, "UNAUTHORIZED", "")
		}
		if after := progCounts(t, e); after != before {
			t.Fatalf("forbidden writes wrote: %s → %s", before, after)
		}
		if r := e.do("GET", "/api/v1/programs/"+fmt.Sprint(progID(p)), read, nil); r.status != 200 {
			t.Fatalf("/api/v1: %d %s", r.status, r.raw)
		}
	})
}
