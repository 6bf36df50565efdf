package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/heldsway/heldsway/internal/auth"
)

func TestSettingsGet(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		tok := e.token("settings:read")
		r := e.do("GET", "/v1/settings", tok, nil)
		if r.status != 200 || r.body["success"] != true {
			t.Fatalf("get: %d %s", r.status, r.raw)
		}
		want := map[string]any{"commission_rate": nil, "cookie_duration": float64(30), "auto_approve_enabled": false,
			"auto_approve_delay_days": float64(0), "auto_approve_min_amount": nil, "auto_approve_max_amount": nil,
			"allow_self_registration": false, "timezone": "UTC"}
		d := r.data()
		if !slices.Equal(sortedKeysOf(d), sortedKeysOf(want)) {
			t.Fatalf("keys %v", sortedKeysOf(d))
		}
		for k, v := range want {
			if d[k] != v {
				t.Errorf("%s = %#v, want %#v", k, d[k], v)
			}
			r := e.do("GET", "/v1/settings/"+k, tok, nil)
			if r.status != 200 || r.data()["key"] != k || r.data()["value"] != v {
				t.Errorf("GET /v1/settings/%s: %d %s", k, r.status, r.raw)
			}
		}
		for _, k := range []string{"nope", "COOKIE_DURATION", "commission-rate", "currency"} {
			e.do("GET", "/v1/settings/"+k, tok, nil).expectError(t, 404, "NOT_FOUND", "")
		}
	})
}

func TestSettingUpdate(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		tok := e.token("settings:read", "settings:write")
		ok := []struct {
			key  string
			body string // raw {"value":…}
			want string // the value as GET renders it
		}{
			{"commission_rate", `12.5`, `12.50`},
			{"commission_rate", `0`, `0.00`},
			{"commission_rate", `100`, `100.00`},
			{"commission_rate", `null`, `null`},
			{"cookie_duration", `1`, `1`},
			{"cookie_duration", `365`, `365`},
			{"auto_approve_enabled", `true`, `true`},
			{"auto_approve_delay_days", `0`, `0`},
			{"auto_approve_delay_days", `365`, `365`},
			{"auto_approve_min_amount", `25.5`, `25.50`},
			{"auto_approve_max_amount", `1000`, `1000.00`},
			{"auto_approve_max_amount", `null`, `null`},
			{"auto_approve_min_amount", `null`, `null`},
			{"allow_self_registration", `true`, `true`},
			{"timezone", `"Europe/Berlin"`, `"Europe/Berlin"`},
			{"timezone", `"America/Argentina/Buenos_Aires"`, `"America/Argentina/Buenos_Aires"`},
		}
		for _, c := range ok {
			r := e.do("PUT", "/v1/settings/"+c.key, tok, `{"value":`+c.body+`}`)
			if r.status != 200 || r.data()["key"] != c.key {
				t.Fatalf("PUT %s %s: %d %s", c.key, c.body, r.status, r.raw)
			}
			if !strings.Contains(r.raw, `"value":`+c.want+`}`) {
				t.Errorf("PUT %s %s answered %s", c.key, c.body, r.raw)
			}
			if g := e.do("GET", "/v1/settings/"+c.key, tok, nil); !strings.Contains(g.raw, `"value":`+c.want+`}`) {
				t.Errorf("GET %s after %s: %s", c.key, c.body, g.raw)
			}
		}

		// The settings are the default program's columns.
		e.do("PUT", "/v1/settings/commission_rate", tok, `{"value":7.25}`)
		e.do("PUT", "/v1/settings/cookie_duration", tok, `{"value":45}`)
		def := progDefault(t, e, tok)
		if def["commission_value"] != 7.25 || def["commission_type"] != "percentage" || def["cookie_duration"] != float64(45) ||
			def["allow_self_registration"] != true || def["auto_approve_enabled"] != true {
			t.Fatalf("default program: %v", def)
		}
		// A flat default program shows no commission rate; setting one makes it a percentage program.
		defPath := fmt.Sprintf("/v1/programs/%d", progID(def))
		if r := e.do("PUT", defPath, tok, map[string]any{"commission_type": "flat", "commission_value": 5}); r.status != 200 {
			t.Fatalf("flat: %d %s", r.status, r.raw)
		}
		if r := e.do("GET", "/v1/settings/commission_rate", tok, nil); r.data()["value"] != nil {
			t.Fatalf("flat program's commission_rate: %s", r.raw)
		}
		e.do("PUT", "/v1/settings/commission_rate", tok, `{"value":3}`)
		if d := progDefault(t, e, tok); d["commission_type"] != "percentage" || d["commission_value"] != float64(3) {
			t.Fatalf("after commission_rate: %v", d)
		}

		// min ≤ max against the stored other bound.
		e.do("PUT", "/v1/settings/auto_approve_max_amount", tok, `{"value":100}`)
		bad := []struct {
			key, body, msg string
		}{
			{"commission_rate", `"10"`, "The value field must be a number or null."},
			{"commission_rate", `true`, "The value field must be a number or null."},
			{"commission_rate", `100.01`, "The commission rate field must be between 0 and 100."},
			{"commission_rate", `-0.01`, "The commission rate field must be between 0 and 100."},
			{"commission_rate", `10.001`, "The commission rate field must have at most 2 decimal places."},
			{"commission_rate", `1e400`, ""},
			{"cookie_duration", `0`, "The cookie duration field must be between 1 and 365."},
			{"cookie_duration", `366`, "The cookie duration field must be between 1 and 365."},
			{"cookie_duration", `30.5`, "The value field must be an integer."},
			{"cookie_duration", `null`, "The value field must be an integer."},
			{"cookie_duration", `"30"`, "The value field must be an integer."},
			{"cookie_duration", `99999999999999999999`, "The value field must be an integer."},
			{"auto_approve_delay_days", `-1`, "The auto approve delay days field must be between 0 and 365."},
			{"auto_approve_delay_days", `366`, ""},
			{"auto_approve_enabled", `1`, "The value field must be true or false."},
			{"auto_approve_enabled", `null`, "The value field must be true or false."},
			{"allow_self_registration", `"true"`, "The value field must be true or false."},
			{"auto_approve_min_amount", `-1`, "The auto approve min amount field must be at least 0."},
			{"auto_approve_min_amount", `1.005`, "The auto approve min amount field must have at most 2 decimal places for USD."},
			{"auto_approve_min_amount", `100.01`, "The auto approve min amount must not be greater than the auto approve max amount."},
			{"auto_approve_min_amount", `{}`, "The value field must be a number or null."},
			{"timezone", `"Mars/Olympus"`, "The timezone field must be a valid IANA time zone name, such as Europe/Berlin."},
			{"timezone", `"Local"`, ""},
			{"timezone", `""`, ""},
			{"timezone", `"../../etc/passwd"`, ""},
			{"timezone", `null`, "The value field must be a string."},
			{"timezone", `3`, "The value field must be a string."},
		}
		for _, c := range bad {
			before := progCounts(t, e)
			r := e.do("PUT", "/v1/settings/"+c.key, tok, `{"value":`+c.body+`}`)
			if c.body == `1e400` {
				// Not representable as JSON a float: huma refuses the body itself.
				if r.status != 422 {
					t.Errorf("1e400: %d %s", r.status, r.raw)
				}
				continue
			}
			r.expectError(t, 422, "VALIDATION_ERROR", "")
			d := r.details("value")
			if len(d) == 0 || (c.msg != "" && !slices.Contains(d, c.msg)) {
				t.Errorf("PUT %s %s: details %v, want %q (%s)", c.key, c.body, d, c.msg, r.raw)
			}
			if after := progCounts(t, e); after != before {
				t.Errorf("PUT %s %s wrote: %s → %s", c.key, c.body, before, after)
			}
		}
		before := progCounts(t, e)
		e.do("PUT", "/v1/settings/unknown_key", tok, `{"value":1}`).expectError(t, 404, "NOT_FOUND", "")
		r := e.do("PUT", "/v1/settings/cookie_duration", tok, `{}`)
		r.expectError(t, 422, "VALIDATION_ERROR", "")
		if d := r.details("value"); !slices.Equal(d, []string{"The value field is required."}) {
			t.Errorf("missing value: %s", r.raw)
		}
		e.do("PUT", "/v1/settings/cookie_duration", tok, `{"value":30,"extra":1}`).expectError(t, 422, "VALIDATION_ERROR", "")
		if after := progCounts(t, e); after != before {
			t.Errorf("refused writes wrote: %s → %s", before, after)
		}
	})
}

func TestSettingsBulkUpdate(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		tok := e.token("settings:read", "settings:write", "audit:read")
		before := progCounts(t, e)
		r := e.do("PUT", "/v1/settings", tok, `{"commission_rate":15,"cookie_duration":90,"auto_approve_enabled":true,
			"auto_approve_delay_days":7,"auto_approve_min_amount":5,"auto_approve_max_amount":500.5,
			"allow_self_registration":true,"timezone":"Asia/Tokyo"}`)
		if r.status != 200 || r.errCode() != "" {
			t.Fatalf("bulk: %d %s", r.status, r.raw)
		}
		for _, frag := range []string{`"commission_rate":15.00`, `"cookie_duration":90`, `"auto_approve_enabled":true`,
			`"auto_approve_delay_days":7`, `"auto_approve_min_amount":5.00`, `"auto_approve_max_amount":500.50`,
			`"allow_self_registration":true`, `"timezone":"Asia/Tokyo"`} {
			if !strings.Contains(r.raw, frag) {
				t.Errorf("bulk answer lacks %s: %s", frag, r.raw)
			}
		}
		if g := e.do("GET", "/v1/settings", tok, nil); !strings.Contains(g.raw, `"timezone":"Asia/Tokyo"`) || !strings.Contains(g.raw, `"commission_rate":15.00`) {
			t.Errorf("GET after bulk: %s", g.raw)
		}
		// One audit entry and one settings.updated event carry the changed fields.
		var n int
		var changes string
		if err := e.store.DB().QueryRow(`SELECT COUNT(*), MAX(changes) FROM audit_log WHERE workspace_id = $1 AND action = 'settings.update'`,
			e.ws.ID).Scan(&n, &changes); err != nil || n != 1 {
			t.Fatalf("audit entries %d (%v)", n, err)
		}
		var diff map[string]any
		_ = json.Unmarshal([]byte(changes), &diff)
		if _, ok := diff["timezone"]; !ok {
			t.Errorf("audit changes lack timezone: %s", changes)
		}
		if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM events WHERE workspace_id = $1 AND type = 'settings.updated'`,
			e.ws.ID).Scan(&n); err != nil || n != 1 {
			t.Fatalf("settings.updated events %d (%v)", n, err)
		}
		if progCounts(t, e) == before {
			t.Fatal("bulk wrote nothing")
		}

		// All or nothing: one bad value refuses every key.
		bad := []struct {
			name, body, field, msg string
		}{
			{"unknown key", `{"cookie_duration":10,"bogus":1}`, "bogus", "The bogus field is not allowed."},
			{"bad cookie", `{"commission_rate":1,"cookie_duration":0}`, "cookie_duration", "The cookie duration field must be at least 1."},
			{"wrong type", `{"commission_rate":"ten"}`, "commission_rate", "The commission rate field must be a number."},
			{"rate precision", `{"commission_rate":1.234,"timezone":"UTC"}`, "commission_rate", "The commission rate field must have at most 2 decimal places."},
			{"min above max", `{"auto_approve_min_amount":600}`, "auto_approve_min_amount", ""},
			{"max below min", `{"auto_approve_max_amount":4}`, "auto_approve_max_amount", ""},
			{"both bad", `{"auto_approve_min_amount":10,"auto_approve_max_amount":9}`, "auto_approve_min_amount", ""},
			{"bad timezone", `{"cookie_duration":10,"timezone":"Nowhere"}`, "timezone", ""},
			{"null cookie", `{"cookie_duration":null}`, "cookie_duration", ""},
			{"empty", `{}`, "body", "The request must contain at least one setting."},
			{"array", `[]`, "body", ""},
		}
		for _, c := range bad {
			t.Run(c.name, func(t *testing.T) {
				before := progCounts(t, e)
				r := e.do("PUT", "/v1/settings", tok, c.body)
				r.expectError(t, 422, "VALIDATION_ERROR", "")
				if d := r.details(c.field); len(d) == 0 || (c.msg != "" && !slices.Contains(d, c.msg)) {
					t.Fatalf("details[%s] = %v, want %q: %s", c.field, d, c.msg, r.raw)
				}
				if after := progCounts(t, e); after != before {
					t.Fatalf("wrote: %s → %s", before, after)
				}
			})
		}
		if g := e.do("GET", "/v1/settings", tok, nil); !strings.Contains(g.raw, `"cookie_duration":90`) {
			t.Errorf("a refused bulk update changed settings: %s", g.raw)
		}
		// Clearing both bounds at once is fine.
		if r := e.do("PUT", "/v1/settings", tok, `{"auto_approve_min_amount":null,"auto_approve_max_amount":null,"commission_rate":null}`); r.status != 200 ||
			!strings.Contains(r.raw, `"auto_approve_min_amount":null`) || !strings.Contains(r.raw, `"commission_rate":null`) {
			t.Fatalf("clear: %d %s", r.status, r.raw)
		}
	})
}

func TestSettingsLiteralRoutes(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		tok := e.token("settings:read")
		// ServeMux prefers /v1/settings/branding to /v1/settings/{key}; without
		// that these would be 404 "unknown setting".
		for _, prefix := range []string{"/v1", "/api/v1"} {
			for path, key := range map[string]string{"/settings/branding": "custom_domain", "/settings/payouts": "frequency",
				"/settings/commission-tiers": "platform_defaults"} {
				r := e.do("GET", prefix+path, tok, nil)
				if _, ok := r.data()[key]; r.status != 200 || !ok {
					t.Errorf("GET %s%s: %d %s", prefix, path, r.status, r.raw)
				}
			}
		}
		routes := map[string]string{}
		for _, rt := range e.server.Routes() {
			if strings.HasPrefix(rt.Path, "/v1/settings") || strings.HasPrefix(rt.Path, "/v1/programs") {
				routes[rt.Method+" "+rt.Path] = rt.Scope
			}
		}
		want := map[string]string{
			"GET /v1/programs": "settings:read", "POST /v1/programs": "settings:write",
			"GET /v1/programs/{id}": "settings:read", "PUT /v1/programs/{id}": "settings:write", "DELETE /v1/programs/{id}": "settings:write",
			"GET /v1/settings": "settings:read", "PUT /v1/settings": "settings:write",
			"GET /v1/settings/{key}": "settings:read", "PUT /v1/settings/{key}": "settings:write",
			"GET /v1/settings/commission-tiers": "settings:read", "POST /v1/settings/commission-tiers": "settings:write",
			"PUT /v1/settings/commission-tiers/{id}": "settings:write", "DELETE /v1/settings/commission-tiers/{id}": "settings:write",
			"POST /v1/settings/commission-tiers/reset": "settings:write",
			"GET /v1/settings/branding":                "settings:read", "PUT /v1/settings/branding": "settings:write",
			"GET /v1/settings/payouts": "settings:read", "PUT /v1/settings/payouts": "settings:write",
		}
		for k, v := range want {
			if routes[k] != v {
				t.Errorf("route %s scope %q, want %q", k, routes[k], v)
			}
		}
		if len(routes) != len(want) {
			t.Errorf("routes %v", routes)
		}
	})
}

func TestSettingsScopesAndIsolation(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		read := e.token("settings:read")
		none := e.token("affiliates:read", "affiliates:write")
		write := e.token("settings:read", "settings:write")
		tier := e.do("POST", "/v1/settings/commission-tiers", write, map[string]any{"min_amount": 0, "rate": 5})
		tierPath := fmt.Sprintf("/v1/settings/commission-tiers/%d", int64(tier.data()["id"].(float64)))
		before := progCounts(t, e)
		reads := []string{"/v1/settings", "/v1/settings/cookie_duration", "/v1/settings/commission-tiers", "/v1/settings/branding", "/v1/settings/payouts"}
		for _, p := range reads {
			e.do("GET", p, none, nil).expectError(t, 403, "FORBIDDEN", "Insufficient scope.")
		}
		writes := []struct {
			method, path string
			body         any
		}{
			{"PUT", "/v1/settings", map[string]any{"cookie_duration": 5}},
			{"PUT", "/v1/settings/cookie_duration", map[string]any{"value": 5}},
			{"POST", "/v1/settings/commission-tiers", map[string]any{"min_amount": 1000, "rate": 5}},
			{"PUT", tierPath, map[string]any{"rate": 6}},
			{"DELETE", tierPath, nil},
			{"POST", "/v1/settings/commission-tiers/reset", nil},
			{"PUT", "/v1/settings/branding", map[string]any{"brand_name": "X"}},
			{"PUT", "/v1/settings/payouts", map[string]any{"frequency": "weekly"}},
		}
		for _, w := range writes {
			e.do(w.method, w.path, read, w.body).expectError(t, 403, "FORBIDDEN", "Insufficient scope.")
		}
		if after := progCounts(t, e); after != before {
			t.Fatalf("forbidden writes wrote: %s → %s", before, after)
		}

		// Another workspace has its own settings and cannot reach this one's tiers.
		ws2, err := e.auth.CreateWorkspace(context.Background(), "Second", "basic")
		if err != nil {
			t.Fatal(err)
		}
		k, secret := e.newKey(ws2, auth.KeyInput{Scopes: []string{"admin"}})
		other := e.exchange(k.Key, secret)
		e.do("PUT", tierPath, other, map[string]any{"rate": 6}).expectError(t, 404, "NOT_FOUND", "")
		e.do("DELETE", tierPath, other, nil).expectError(t, 404, "NOT_FOUND", "")
		if r := e.do("PUT", "/v1/settings", other, map[string]any{"cookie_duration": 7, "timezone": "Europe/Paris"}); r.status != 200 {
			t.Fatalf("other settings: %d %s", r.status, r.raw)
		}
		if r := e.do("GET", "/v1/settings/commission-tiers", other, nil); len(r.data()["items"].([]any)) != 0 {
			t.Fatalf("other workspace sees tiers: %s", r.raw)
		}
		if after := progCounts(t, e); after != before {
			t.Fatalf("another workspace changed this one: %s → %s", before, after)
		}
		if r := e.do("GET", "/v1/settings", read, nil); r.data()["cookie_duration"] != float64(30) || r.data()["timezone"] != "UTC" {
			t.Fatalf("settings leaked across workspaces: %s", r.raw)
		}
	})
}

func TestCommissionTiers(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		tok := e.token("settings:read", "settings:write")
		r := e.do("GET", "/v1/settings/commission-tiers", tok, nil)
		wantDefaults := `"platform_defaults":[{"min_amount":0.00,"max_amount":100.00,"rate":5.00},` +
			`{"min_amount":100.00,"max_amount":500.00,"rate":7.50},{"min_amount":500.00,"max_amount":null,"rate":10.00}]`
		if r.status != 200 || len(r.data()["items"].([]any)) != 0 || !strings.Contains(r.raw, wantDefaults) || r.data()["currency"] != "USD" {
			t.Fatalf("initial: %d %s", r.status, r.raw)
		}

		create := func(body any) *resp {
			t.Helper()
			return e.do("POST", "/v1/settings/commission-tiers", tok, body)
		}
		a := create(map[string]any{"min_amount": 0, "max_amount": 100, "rate": 5})
		b := create(map[string]any{"min_amount": 100, "max_amount": 250.5, "rate": 7.25})
		c := create(map[string]any{"min_amount": 1000, "rate": 12})
		for _, x := range []*resp{a, b, c} {
			if x.status != 201 {
				t.Fatalf("create: %d %s", x.status, x.raw)
			}
		}
		if !strings.Contains(b.raw, `"min_amount":100.00,"max_amount":250.50,"rate":7.25`) || !strings.Contains(c.raw, `"max_amount":null`) {
			t.Errorf("tier rendering: %s %s", b.raw, c.raw)
		}
		idOf := func(x *resp) int64 { return int64(x.data()["id"].(float64)) }

		bad := []struct {
			name   string
			body   any
			fields []string
			msg    string
		}{
			{"overlaps below", map[string]any{"min_amount": 50, "max_amount": 150, "rate": 1}, []string{"min_amount", "max_amount"},
				fmt.Sprintf("The band from 50.00 to 150.00 overlaps commission tier %d (from 0.00 to 100.00).", idOf(a))},
			{"inside", map[string]any{"min_amount": 120, "max_amount": 130, "rate": 1}, []string{"min_amount", "max_amount"},
				fmt.Sprintf("commission tier %d", idOf(b))},
			{"unbounded overlaps unbounded", map[string]any{"min_amount": 2000, "rate": 1}, []string{"min_amount", "max_amount"},
				fmt.Sprintf("The band from 2000.00 up overlaps commission tier %d (from 1000.00 up).", idOf(c))},
			{"unbounded overlaps bounded", map[string]any{"min_amount": 900, "rate": 1}, []string{"min_amount"}, ""},
			{"max equals min", map[string]any{"min_amount": 300, "max_amount": 300, "rate": 1}, []string{"max_amount"},
				"The max amount field must be greater than the min amount."},
			{"max below min", map[string]any{"min_amount": 300, "max_amount": 299, "rate": 1}, []string{"max_amount"}, ""},
			{"missing rate", map[string]any{"min_amount": 300}, []string{"rate"}, "The rate field is required."},
			{"missing min", map[string]any{"rate": 3}, []string{"min_amount"}, "The min amount field is required."},
			{"rate over 100", map[string]any{"min_amount": 300, "rate": 100.5}, []string{"rate"}, ""},
			{"rate precision", map[string]any{"min_amount": 300, "rate": 1.001}, []string{"rate"}, ""},
			{"negative min", map[string]any{"min_amount": -1, "rate": 1}, []string{"min_amount"}, ""},
			{"amount precision", map[string]any{"min_amount": 300.001, "rate": 1}, []string{"min_amount"}, ""},
			{"min as string", map[string]any{"min_amount": "300", "rate": 1}, []string{"min_amount"}, "The min amount field must be a number."},
			{"unknown field", map[string]any{"min_amount": 300, "rate": 1, "currency": "EUR"}, []string{"currency"}, ""},
		}
		for _, tc := range bad {
			t.Run(tc.name, func(t *testing.T) {
				before := progCounts(t, e)
				r := create(tc.body)
				r.expectError(t, 422, "VALIDATION_ERROR", "")
				for _, f := range tc.fields {
					d := r.details(f)
					if len(d) == 0 || (tc.msg != "" && !strings.Contains(d[0], tc.msg)) {
						t.Fatalf("details[%s] = %v, want %q", f, d, tc.msg)
					}
				}
				if after := progCounts(t, e); after != before {
					t.Fatalf("wrote: %s → %s", before, after)
				}
			})
		}
		// Adjacent bands touch without overlapping: [250.50, 1000).
		if r := create(map[string]any{"min_amount": 250.5, "max_amount": 1000, "rate": 9}); r.status != 201 {
			t.Fatalf("adjacent: %d %s", r.status, r.raw)
		}

		r = e.do("GET", "/v1/settings/commission-tiers", tok, nil)
		var mins []float64
		for _, it := range r.data()["items"].([]any) {
			mins = append(mins, it.(map[string]any)["min_amount"].(float64))
		}
		if !slices.Equal(mins, []float64{0, 100, 250.5, 1000}) {
			t.Fatalf("order by min_amount: %v", mins)
		}

		// Update: partial, re-checked against the others but not itself.
		bPath := fmt.Sprintf("/v1/settings/commission-tiers/%d", idOf(b))
		if r := e.do("PUT", bPath, tok, map[string]any{"rate": 8}); r.status != 200 || !strings.Contains(r.raw, `"min_amount":100.00,"max_amount":250.50,"rate":8.00`) {
			t.Fatalf("update rate: %d %s", r.status, r.raw)
		}
		before := progCounts(t, e)
		r = e.do("PUT", bPath, tok, map[string]any{"max_amount": nil})
		r.expectError(t, 422, "VALIDATION_ERROR", "")
		if d := r.details("max_amount"); len(d) == 0 || !strings.Contains(d[0], "overlaps commission tier") {
			t.Fatalf("update overlap: %s", r.raw)
		}
		e.do("PUT", bPath, tok, map[string]any{"min_amount": 300}).expectError(t, 422, "VALIDATION_ERROR", "")
		e.do("PUT", bPath, tok, map[string]any{"rate": nil}).expectError(t, 422, "VALIDATION_ERROR", "")
		e.do("PUT", "/v1/settings/commission-tiers/999999", tok, map[string]any{"rate": 1}).expectError(t, 404, "NOT_FOUND", "")
		if after := progCounts(t, e); after != before {
			t.Fatalf("refused updates wrote: %s → %s", before, after)
		}

		aPath := fmt.Sprintf("/v1/settings/commission-tiers/%d", idOf(a))
		if r := e.do("DELETE", aPath, tok, nil); r.status != 200 || r.data()["deleted"] != true {
			t.Fatalf("delete: %d %s", r.status, r.raw)
		}
		e.do("DELETE", aPath, tok, nil).expectError(t, 404, "NOT_FOUND", "")
		// The freed band can be taken again.
		if r := create(map[string]any{"min_amount": 10, "max_amount": 100, "rate": 2}); r.status != 201 {
			t.Fatalf("re-create in freed band: %d %s", r.status, r.raw)
		}

		r = e.do("POST", "/v1/settings/commission-tiers/reset", tok, nil)
		if r.status != 200 || !strings.Contains(r.raw, wantDefaults) {
			t.Fatalf("reset: %d %s", r.status, r.raw)
		}
		items := r.data()["items"].([]any)
		if len(items) != 3 || !strings.Contains(r.raw, `"max_amount":100.00,"rate":5.00`) {
			t.Fatalf("reset items: %s", r.raw)
		}
		var n int
		if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM commission_tiers WHERE workspace_id = $1`, e.ws.ID).Scan(&n); err != nil || n != 3 {
			t.Fatalf("rows after reset %d (%v)", n, err)
		}
		var events []string
		rows, err := e.store.DB().Query(`SELECT type FROM events WHERE workspace_id = $1 AND resource_type = 'commission_tier' ORDER BY id`, e.ws.ID)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			_ = rows.Scan(&s)
			events = append(events, s)
		}
		rows.Close()
		want := []string{"commission_tier.created", "commission_tier.created", "commission_tier.created", "commission_tier.created",
			"commission_tier.updated", "commission_tier.deleted", "commission_tier.created", "commission_tiers.reset"}
		if !slices.Equal(events, want) {
			t.Errorf("events %v", events)
		}
	})
}

func TestCommissionTierLimit(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		tok := e.token("settings:read", "settings:write")
		for i := range 100 {
			if r := e.do("POST", "/v1/settings/commission-tiers", tok, map[string]any{"min_amount": i, "max_amount": i + 1, "rate": 1}); r.status != 201 {
				t.Fatalf("tier %d: %d %s", i, r.status, r.raw)
			}
		}
		r := e.do("POST", "/v1/settings/commission-tiers", tok, map[string]any{"min_amount": 500, "rate": 1})
		r.expectError(t, 422, "VALIDATION_ERROR", "")
		if d := r.details("min_amount"); len(d) != 1 || !strings.Contains(d[0], "at most 100") {
			t.Fatalf("limit: %s", r.raw)
		}
	})
}

func TestBranding(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		tok := e.token("settings:read", "settings:write")
		r := e.do("GET", "/v1/settings/branding", tok, nil)
		if r.status != 200 || strings.TrimSpace(r.raw) != `{"success":true,"message":"OK","data":{"brand_name":null,"primary_color":null,"secondary_color":null,"logo_url":null,"custom_domain":null}}` {
			t.Fatalf("initial: %d %s", r.status, r.raw)
		}
		r = e.do("PUT", "/v1/settings/branding", tok, map[string]any{"brand_name": " Acme Partners ", "primary_color": "#ff8800",
			"secondary_color": "#00AA11", "logo_url": "https://cdn.example.com/logo.png", "custom_domain": "Affiliates.Example.COM."})
		want := map[string]any{"brand_name": "Acme Partners", "primary_color": "#FF8800", "secondary_color": "#00AA11",
			"logo_url": "https://cdn.example.com/logo.png", "custom_domain": "affiliates.example.com"}
		for k, v := range want {
			if r.data()[k] != v {
				t.Errorf("%s = %v, want %v (%s)", k, r.data()[k], v, r.raw)
			}
		}
		// Partial: only sent fields change; null clears.
		r = e.do("PUT", "/v1/settings/branding", tok, map[string]any{"logo_url": nil, "brand_name": "Acme"})
		if r.status != 200 || r.data()["logo_url"] != nil || r.data()["brand_name"] != "Acme" || r.data()["primary_color"] != "#FF8800" {
			t.Fatalf("partial: %d %s", r.status, r.raw)
		}
		if g := e.do("GET", "/v1/settings/branding", tok, nil); g.data()["custom_domain"] != "affiliates.example.com" || g.data()["logo_url"] != nil {
			t.Fatalf("GET after update: %s", g.raw)
		}

		bad := []struct {
			name  string
			body  any
			field string
		}{
			{"short colour", map[string]any{"primary_color": "#FFF"}, "primary_color"},
			{"named colour", map[string]any{"secondary_color": "red"}, "secondary_color"},
			{"http logo", map[string]any{"logo_url": "http://cdn.example.com/logo.png"}, "logo_url"},
			{"relative logo", map[string]any{"logo_url": "/logo.png"}, "logo_url"},
			{"logo with credentials", map[string]any{"logo_url": "https://u:p@cdn.example.com/x.png"}, "logo_url"},
			{"long brand", map[string]any{"brand_name": strings.Repeat("b", 101)}, "brand_name"},
			{"blank brand", map[string]any{"brand_name": "  "}, "brand_name"},
			{"domain with scheme", map[string]any{"custom_domain": "https://affiliates.example.com"}, "custom_domain"},
			{"domain with port", map[string]any{"custom_domain": "affiliates.example.com:8443"}, "custom_domain"},
			{"single label", map[string]any{"custom_domain": "localhost"}, "custom_domain"},
			{"ip address", map[string]any{"custom_domain": "10.0.0.1"}, "custom_domain"},
			{"bad label", map[string]any{"custom_domain": "-bad.example.com"}, "custom_domain"},
			{"underscore", map[string]any{"custom_domain": "a_b.example.com"}, "custom_domain"},
			{"wrong type", map[string]any{"brand_name": 3}, "brand_name"},
			{"unknown field", map[string]any{"font": "Inter"}, "font"},
		}
		for _, tc := range bad {
			t.Run(tc.name, func(t *testing.T) {
				before := progCounts(t, e)
				r := e.do("PUT", "/v1/settings/branding", tok, tc.body)
				r.expectError(t, 422, "VALIDATION_ERROR", "")
				if len(r.details(tc.field)) == 0 {
					t.Fatalf("no details for %s: %s", tc.field, r.raw)
				}
				if after := progCounts(t, e); after != before {
					t.Fatalf("wrote: %s → %s", before, after)
				}
			})
		}

		// Custom domains are unique across workspaces, and need the Basic plan.
		nano, err := e.auth.CreateWorkspace(context.Background(), "Tiny", "nano")
		if err != nil {
			t.Fatal(err)
		}
		k, secret := e.newKey(nano, auth.KeyInput{Scopes: []string{"admin"}})
		nanoTok := e.exchange(k.Key, secret)
		r = e.do("PUT", "/v1/settings/branding", nanoTok, map[string]any{"custom_domain": "tiny.example.com"})
		r.expectError(t, 403, "FORBIDDEN", "Custom domains are available from the Basic plan up; this workspace is on the nano plan.")
		if r := e.do("PUT", "/v1/settings/branding", nanoTok, map[string]any{"brand_name": "Tiny", "custom_domain": nil}); r.status != 200 {
			t.Fatalf("nano without a domain: %d %s", r.status, r.raw)
		}
		basic, err := e.auth.CreateWorkspace(context.Background(), "Rival", "standard")
		if err != nil {
			t.Fatal(err)
		}
		k, secret = e.newKey(basic, auth.KeyInput{Scopes: []string{"admin"}})
		rival := e.exchange(k.Key, secret)
		e.do("PUT", "/v1/settings/branding", rival, map[string]any{"custom_domain": "AFFILIATES.example.com"}).
			expectError(t, 409, "CONFLICT", "The custom domain affiliates.example.com is already used by another workspace.")
		if r := e.do("PUT", "/v1/settings/branding", rival, map[string]any{"custom_domain": "rival.example.com"}); r.status != 200 {
			t.Fatalf("rival domain: %d %s", r.status, r.raw)
		}
		// Released, the domain can be taken.
		e.do("PUT", "/v1/settings/branding", tok, map[string]any{"custom_domain": nil})
		if r := e.do("PUT", "/v1/settings/branding", rival, map[string]any{"custom_domain": "affiliates.example.com"}); r.status != 200 {
			t.Fatalf("released domain: %d %s", r.status, r.raw)
		}
	})
}

func TestPayoutSettings(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		tok := e.token("settings:read", "settings:write")
		r := e.do("GET", "/v1/settings/payouts", tok, nil)
		if r.status != 200 || !strings.Contains(r.raw, `"data":{"frequency":"monthly","minimum_amount":50.00,"allow_early_requests":false,"currency":"USD"}`) {
			t.Fatalf("defaults: %d %s", r.status, r.raw)
		}
		r = e.do("PUT", "/v1/settings/payouts", tok, map[string]any{"frequency": "biweekly", "minimum_amount": 25.5, "allow_early_requests": true})
		if r.status != 200 || !strings.Contains(r.raw, `{"frequency":"biweekly","minimum_amount":25.50,"allow_early_requests":true,"currency":"USD"}`) {
			t.Fatalf("update: %d %s", r.status, r.raw)
		}
		r = e.do("PUT", "/v1/settings/payouts", tok, map[string]any{"minimum_amount": 0})
		if r.status != 200 || r.data()["frequency"] != "biweekly" || r.data()["minimum_amount"] != float64(0) {
			t.Fatalf("partial: %d %s", r.status, r.raw)
		}
		var n int
		if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM events WHERE workspace_id = $1 AND type = 'payout_settings.updated'`, e.ws.ID).Scan(&n); err != nil || n != 2 {
			t.Fatalf("events %d (%v)", n, err)
		}
		bad := []struct {
			name  string
			body  any
			field string
		}{
			{"frequency", map[string]any{"frequency": "daily"}, "frequency"},
			{"negative", map[string]any{"minimum_amount": -1}, "minimum_amount"},
			{"precision", map[string]any{"minimum_amount": 10.001}, "minimum_amount"},
			{"null minimum", map[string]any{"minimum_amount": nil}, "minimum_amount"},
			{"string minimum", map[string]any{"minimum_amount": "10"}, "minimum_amount"},
			{"bool", map[string]any{"allow_early_requests": "yes"}, "allow_early_requests"},
			{"unknown", map[string]any{"method": "paypal"}, "method"},
		}
		for _, tc := range bad {
			t.Run(tc.name, func(t *testing.T) {
				before := progCounts(t, e)
				r := e.do("PUT", "/v1/settings/payouts", tok, tc.body)
				r.expectError(t, 422, "VALIDATION_ERROR", "")
				if len(r.details(tc.field)) == 0 {
					t.Fatalf("no details for %s: %s", tc.field, r.raw)
				}
				if after := progCounts(t, e); after != before {
					t.Fatalf("wrote: %s → %s", before, after)
				}
			})
		}
	})
}
