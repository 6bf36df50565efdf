package api_test

import (
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/heldsway/heldsway/internal/auth"
)

// affDefaultProgram returns the workspace's default program, creating one for a
// workspace made without it.
func affDefaultProgram(t *testing.T, e *env, wsID int64) int64 {
	t.Helper()
	var id int64
	err := e.store.DB().QueryRow(`SELECT id FROM programs WHERE workspace_id = $1 AND is_default`, wsID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return affInsertProgram(t, e, wsID, "Default", true)
	}
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func affInsertProgram(t *testing.T, e *env, wsID int64, name string, isDefault bool) int64 {
	t.Helper()
	var id int64
	if err := e.store.DB().QueryRow(`INSERT INTO programs (workspace_id, name, currency, commission_type, commission_value, is_default, created_at, updated_at)
		VALUES ($1, $2, 'USD', 'percentage', 1000, $3, 0, 0) RETURNING id`, wsID, name, isDefault).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// affCounts counts the rows an affiliate write touches in the env's workspace.
func affCounts(t *testing.T, e *env) string {
	t.Helper()
	var out []string
	for _, table := range []string{"affiliates", "affiliate_users", "audit_log", "events"} {
		var n int
		if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM `+table+` WHERE workspace_id = $1`, e.ws.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s=%d", table, n))
	}
	return strings.Join(out, " ")
}

// affCreate creates an affiliate through the API and returns its object.
func affCreate(t *testing.T, e *env, tok string, body map[string]any) map[string]any {
	t.Helper()
	r := e.do("POST", "/v1/affiliates", tok, body)
	if r.status != 201 {
		t.Fatalf("create affiliate: %d %s", r.status, r.raw)
	}
	return r.data()
}

func affID(a map[string]any) int64 { return int64(a["id"].(float64)) }

var reTimestamp = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

func sortedKeysOf(m map[string]any) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	slices.Sort(k)
	return k
}

func TestAffiliateCRUD(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		def := affDefaultProgram(t, e, e.ws.ID)
		tok := e.token("affiliates:read", "affiliates:write")

		r := e.do("POST", "/v1/affiliates", tok, map[string]any{"name": "Ada Lovelace", "email": "Ada@Example.com",
			"phone": "+14155552671", "commission_rate": 12.5, "notes": "met at a conference"})
		if r.status != 201 || r.body["message"] != "Affiliate created." {
			t.Fatalf("create: %d %s", r.status, r.raw)
		}
		a := r.data()
		want := []string{"affiliate_user", "approved_at", "commission_rate", "created_at", "id", "notes", "parent_affiliate_id",
			"program_id", "referral_code", "status", "suspended_at", "terminated_at"}
		if got := sortedKeysOf(a); !slices.Equal(got, want) {
			t.Fatalf("affiliate keys %v, want %v", got, want)
		}
		u := a["affiliate_user"].(map[string]any)
		if got := sortedKeysOf(u); !slices.Equal(got, []string{"email", "id", "name", "phone"}) {
			t.Fatalf("affiliate_user keys %v", got)
		}
		if a["commission_rate"] != "12.50" || a["status"] != "active" || a["notes"] != "met at a conference" ||
			a["program_id"] != float64(def) || a["parent_affiliate_id"] != nil || a["suspended_at"] != nil || a["terminated_at"] != nil {
			t.Fatalf("created %s", r.raw)
		}
		if !strings.Contains(r.raw, `"commission_rate":"12.50"`) {
			t.Fatalf("commission_rate is not the decimal string: %s", r.raw)
		}
		if u["email"] != "ada@example.com" || u["name"] != "Ada Lovelace" || u["phone"] != "+14155552671" {
			t.Fatalf("user %v", u)
		}
		if !regexp.MustCompile(`^[A-Z0-9]{8}$`).MatchString(a["referral_code"].(string)) {
			t.Fatalf("referral code %v", a["referral_code"])
		}
		for _, k := range []string{"approved_at", "created_at"} {
			if s, _ := a[k].(string); !reTimestamp.MatchString(s) {
				t.Fatalf("%s = %v", k, a[k])
			}
		}
		id := affID(a)
		path := fmt.Sprintf("/v1/affiliates/%d", id)

		g := e.do("GET", path, tok, nil)
		if g.status != 200 || g.data()["referral_code"] != a["referral_code"] {
			t.Fatalf("get: %d %s", g.status, g.raw)
		}

		t.Run("update is partial; null clears", func(t *testing.T) {
			p := e.do("PUT", path, tok, map[string]any{"notes": nil, "name": "Ada King", "referral_code": "ada2026"})
			d := p.data()
			if p.status != 200 || d["notes"] != nil || d["referral_code"] != "ADA2026" || d["commission_rate"] != "12.50" ||
				d["affiliate_user"].(map[string]any)["name"] != "Ada King" || d["affiliate_user"].(map[string]any)["phone"] != "+14155552671" {
				t.Fatalf("update: %d %s", p.status, p.raw)
			}
			p = e.do("PUT", path, tok, map[string]any{"commission_rate": nil, "phone": nil})
			if d := p.data(); p.status != 200 || d["commission_rate"] != nil || d["affiliate_user"].(map[string]any)["phone"] != nil {
				t.Fatalf("clear: %d %s", p.status, p.raw)
			}
			p = e.do("PUT", path, tok, map[string]any{})
			if p.status != 200 || p.data()["referral_code"] != "ADA2026" {
				t.Fatalf("empty update: %d %s", p.status, p.raw)
			}
		})
		t.Run("parent and program", func(t *testing.T) {
			alt := affInsertProgram(t, e, e.ws.ID, "Alt", false)
			child := affCreate(t, e, tok, map[string]any{"name": "Kid", "email": "kid@example.com", "parent_affiliate_id": id, "status": "pending"})
			if child["parent_affiliate_id"] != float64(id) || child["status"] != "pending" || child["approved_at"] != nil {
				t.Fatalf("child %v", child)
			}
			e.do("PUT", path, tok, map[string]any{"parent_affiliate_id": affID(child)}).expectError(t, 422, "VALIDATION_ERROR", "")
			other := affCreate(t, e, tok, map[string]any{"name": "Other", "email": "other@example.com", "program_id": alt})
			if other["program_id"] != float64(alt) {
				t.Fatalf("program %v", other["program_id"])
			}
			r := e.do("PUT", fmt.Sprintf("/v1/affiliates/%d", affID(child)), tok, map[string]any{"parent_affiliate_id": affID(other)})
			r.expectError(t, 422, "VALIDATION_ERROR", "")
			if d := r.details("parent_affiliate_id"); len(d) != 1 || d[0] != "The parent affiliate must belong to the same program." {
				t.Fatalf("details %v", d)
			}
		})
		t.Run("delete", func(t *testing.T) {
			x := affCreate(t, e, tok, map[string]any{"name": "Gone", "email": "gone@example.com"})
			xp := fmt.Sprintf("/v1/affiliates/%d", affID(x))
			d := e.do("DELETE", xp, tok, nil)
			if d.status != 200 || d.data()["deleted"] != true || d.data()["id"] != x["id"] {
				t.Fatalf("delete: %d %s", d.status, d.raw)
			}
			e.do("GET", xp, tok, nil).expectError(t, 404, "NOT_FOUND", "Affiliate not found.")
			e.do("DELETE", xp, tok, nil).expectError(t, 404, "NOT_FOUND", "Affiliate not found.")
		})
		t.Run("idempotent create", func(t *testing.T) {
			body := map[string]any{"name": "Idem", "email": "idem@example.com"}
			before := affCounts(t, e)
			r1 := e.do("POST", "/v1/affiliates", tok, body, "Idempotency-Key", "aff-1")
			r2 := e.do("POST", "/v1/affiliates", tok, body, "Idempotency-Key", "aff-1")
			if r1.status != 201 || r2.status != 201 || r1.raw != r2.raw || r2.header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("%d %d %s", r1.status, r2.status, r2.raw)
			}
			var n int
			_ = e.store.DB().QueryRow(`SELECT COUNT(*) FROM affiliates WHERE workspace_id = $1 AND email = 'idem@example.com'`, e.ws.ID).Scan(&n)
			if n != 1 || affCounts(t, e) == before {
				t.Fatalf("%d rows", n)
			}
		})
	})
}

func TestAffiliateValidation(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		affDefaultProgram(t, e, e.ws.ID)
		tok := e.token("affiliates:read", "affiliates:write")
		ws2, err := e.auth.CreateWorkspace(t.Context(), "Second "+e.engine, "basic")
		if err != nil {
			t.Fatal(err)
		}
		otherProg := affInsertProgram(t, e, ws2.ID, "Theirs", false)
		var otherAff int64
		if err := e.store.DB().QueryRow(`INSERT INTO affiliate_users (workspace_id, name, email, created_at, updated_at)
			VALUES ($1, 'X', 'x@example.com', 0, 0) RETURNING id`, ws2.ID).Scan(&otherAff); err != nil {
			t.Fatal(err)
		}
		if err := e.store.DB().QueryRow(`INSERT INTO affiliates (workspace_id, program_id, affiliate_user_id, referral_code, status, name, email, created_at, updated_at)
			VALUES ($1, $2, $3, 'THEIRS01', 'active', 'X', 'x@example.com', 0, 0) RETURNING id`, ws2.ID, otherProg, otherAff).Scan(&otherAff); err != nil {
			t.Fatal(err)
		}
		existing := affCreate(t, e, tok, map[string]any{"name": "Taken", "email": "taken@example.com", "referral_code": "TAKEN1"})
		base := func(kv ...any) map[string]any {
			m := map[string]any{"name": "Valid", "email": "valid@example.com"}
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i+1] == "<absent>" {
					delete(m, kv[i].(string))
				} else {
					m[kv[i].(string)] = kv[i+1]
				}
			}
			return m
		}
		cases := []struct {
			name   string
			body   any
			field  string
			msg    string
			status int
		}{
			{"name missing", base("name", "<absent>"), "name", "The name field is required.", 422},
			{"name empty", base("name", ""), "name", "The name field is required.", 422},
			{"name blank", base("name", "   "), "name", "The name field is required.", 422},
			{"name too long", base("name", strings.Repeat("n", 256)), "name", "The name field must not be greater than 255 characters.", 422},
			{"name wrong type", base("name", 42), "name", "The name field must be a string.", 422},
			{"email missing", base("email", "<absent>"), "email", "The email field is required.", 422},
			{"email invalid", base("email", "not-an-email"), "email", "The email field must be a valid email address.", 422},
			{"email with display name", base("email", "Ada <ada@example.com>"), "email", "The email field must be a valid email address.", 422},
			{"email too long", base("email", strings.Repeat("e", 250)+"@example.com"), "email", "The email field must not be greater than 255 characters.", 422},
			{"phone not E.164", base("phone", "415-555-2671"), "phone", "The phone field must be an E.164 phone number such as +14155552671.", 422},
			{"rate above 100", base("commission_rate", 100.01), "commission_rate", "The commission rate field must not be greater than 100.", 422},
			{"rate negative", base("commission_rate", -1), "commission_rate", "The commission rate field must be at least 0.", 422},
			{"rate three decimals", base("commission_rate", 12.345), "commission_rate", "The commission rate field must have at most two decimal places.", 422},
			{"rate as string", base("commission_rate", "10"), "commission_rate", "The commission rate field must be a number.", 422},
			{"notes too long", base("notes", strings.Repeat("x", 5001)), "notes", "The notes field must not be greater than 5000 characters.", 422},
			{"program of another workspace", base("program_id", otherProg), "program_id", "The selected program id is invalid.", 422},
			{"program zero", base("program_id", 0), "program_id", "The program id field must be at least 1.", 422},
			{"parent of another workspace", base("parent_affiliate_id", otherAff), "parent_affiliate_id", "The selected parent affiliate id is invalid.", 422},
			{"code too short", base("referral_code", "AB1"), "referral_code", "The referral code field must be at least 4 characters.", 422},
			{"code too long", base("referral_code", strings.Repeat("A", 33)), "referral_code", "The referral code field must not be greater than 32 characters.", 422},
			{"code with symbols", base("referral_code", "AB-12"), "referral_code", "The referral code field must be 4 to 32 letters or digits.", 422},
			{"status not allowed", base("status", "terminated"), "status", "The selected status is invalid. Allowed: pending, active.", 422},
			{"unknown field", base("password", "secret123"), "password", "The password field is not allowed.", 422},
			{"email taken in program", base("email", "TAKEN@example.com"), "email", "The email has already been taken in this program.", 409},
			{"code taken", base("referral_code", "taken1"), "referral_code", "The referral code has already been taken.", 409},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := affCounts(t, e)
				r := e.do("POST", "/v1/affiliates", tok, c.body)
				code := "VALIDATION_ERROR"
				if c.status == 409 {
					code = "CONFLICT"
				}
				r.expectError(t, c.status, code, "")
				if d := r.details(c.field); !slices.Contains(d, c.msg) {
					t.Fatalf("details for %s: %v; want %q (%s)", c.field, d, c.msg, r.raw)
				}
				if after := affCounts(t, e); after != before {
					t.Fatalf("rejected create wrote: %s → %s", before, after)
				}
			})
		}

		path := fmt.Sprintf("/v1/affiliates/%d", affID(existing))
		updates := []struct {
			name  string
			body  any
			field string
			msg   string
		}{
			{"name null", map[string]any{"name": nil}, "name", "The name field must not be null."},
			{"email null", map[string]any{"email": nil}, "email", "The email field must not be null."},
			{"email invalid", map[string]any{"email": "nope"}, "email", "The email field must be a valid email address."},
			{"status is not updatable", map[string]any{"status": "active"}, "status", "The status field is not allowed."},
			{"rate above 100", map[string]any{"commission_rate": 101}, "commission_rate", "The commission rate field must not be greater than 100."},
			{"self as parent", map[string]any{"parent_affiliate_id": affID(existing)}, "parent_affiliate_id", "An affiliate cannot be its own parent."},
			{"program of another workspace", map[string]any{"program_id": otherProg}, "program_id", "The selected program id is invalid."},
			{"notes wrong type", map[string]any{"notes": 5}, "notes", "The notes field must be a string."},
		}
		for _, c := range updates {
			t.Run("update "+c.name, func(t *testing.T) {
				before := affCounts(t, e)
				r := e.do("PUT", path, tok, c.body)
				r.expectError(t, 422, "VALIDATION_ERROR", "")
				if d := r.details(c.field); !slices.Contains(d, c.msg) {
					t.Fatalf("details for %s: %v; want %q (%s)", c.field, d, c.msg, r.raw)
				}
				if after := affCounts(t, e); after != before {
					t.Fatalf("rejected update wrote: %s → %s", before, after)
				}
			})
		}
		t.Run("bad path id", func(t *testing.T) {
			e.do("GET", "/v1/affiliates/abc", tok, nil).expectError(t, 422, "VALIDATION_ERROR", "")
			e.do("GET", "/v1/affiliates/999999", tok, nil).expectError(t, 404, "NOT_FOUND", "Affiliate not found.")
		})
		t.Run("bad list parameters", func(t *testing.T) {
			for q, field := range map[string]string{"status=gone": "status", "sort=name": "sort", "direction=up": "direction",
				"per_page=101": "per_page", "program_id=x": "program_id", "cursor=%21": "cursor"} {
				r := e.do("GET", "/v1/affiliates?"+q, tok, nil)
				r.expectError(t, 422, "VALIDATION_ERROR", "")
				if len(r.details(field)) == 0 {
					t.Fatalf("%s: no details on %s: %s", q, field, r.raw)
				}
			}
		})
	})
}

func TestAffiliateList(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		affDefaultProgram(t, e, e.ws.ID)
		tok := e.token("affiliates:read", "affiliates:write")
		ids := map[float64]bool{}
		for i := range 11 {
			body := map[string]any{"name": fmt.Sprintf("Member %02d", i), "email": fmt.Sprintf("m%02d@example.com", i)}
			if i%3 == 0 {
				body["status"] = "pending"
			}
			if i%2 == 0 {
				body["commission_rate"] = float64(i)
			}
			ids[affCreate(t, e, tok, body)["id"].(float64)] = true
		}
		affCreate(t, e, tok, map[string]any{"name": "50%_discount", "email": "promo@example.com"})
		for _, sort := range []string{"created_at", "referral_code", "status", "commission_rate"} {
			for _, dir := range []string{"asc", "desc"} {
				t.Run(sort+" "+dir, func(t *testing.T) {
					seen := map[float64]bool{}
					cursor := ""
					for pages := 0; ; pages++ {
						q := fmt.Sprintf("/v1/affiliates?per_page=5&sort=%s&direction=%s", sort, dir)
						if cursor != "" {
							q += "&cursor=" + cursor
						}
						r := e.do("GET", q, tok, nil)
						if r.status != 200 {
							t.Fatalf("%d %s", r.status, r.raw)
						}
						meta := r.data()["meta"].(map[string]any)
						for _, it := range r.data()["items"].([]any) {
							id := it.(map[string]any)["id"].(float64)
							if seen[id] {
								t.Fatalf("duplicate %v", id)
							}
							seen[id] = true
						}
						if meta["per_page"] != float64(5) {
							t.Fatalf("meta %v", meta)
						}
						if meta["has_more"] != true {
							if meta["next_cursor"] != nil {
								t.Fatalf("last page with a cursor: %v", meta)
							}
							break
						}
						cursor = meta["next_cursor"].(string)
						if pages > 5 {
							t.Fatal("too many pages")
						}
					}
					if len(seen) != 12 {
						t.Fatalf("paged %d affiliates, want 12", len(seen))
					}
				})
			}
		}
		t.Run("cursor of another sort", func(t *testing.T) {
			r := e.do("GET", "/v1/affiliates?per_page=2&sort=status", tok, nil)
			c := r.data()["meta"].(map[string]any)["next_cursor"].(string)
			e.do("GET", "/v1/affiliates?per_page=2&cursor="+c, tok, nil).expectError(t, 422, "VALIDATION_ERROR", "")
		})
		t.Run("filters", func(t *testing.T) {
			for q, n := range map[string]int{"status=pending": 4, "status=active": 8, "search=member%200": 10, "search=M07%40EXAMPLE": 1,
				"search=%25_": 1, "search=nobody": 0, "status=pending&search=member": 4} {
				r := e.do("GET", "/v1/affiliates?per_page=100&"+q, tok, nil)
				if got := len(r.data()["items"].([]any)); r.status != 200 || got != n {
					t.Fatalf("%s: %d items, want %d (%s)", q, got, n, r.raw)
				}
			}
		})
		t.Run("page parameter", func(t *testing.T) {
			r := e.do("GET", "/v1/affiliates?per_page=5&page=3", tok, nil)
			if r.status != 200 || len(r.data()["items"].([]any)) != 2 || r.data()["meta"].(map[string]any)["current_page"] != float64(3) {
				t.Fatalf("%d %s", r.status, r.raw)
			}
		})
	})
}

func TestAffiliateStatusActions(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		affDefaultProgram(t, e, e.ws.ID)
		tok := e.token("affiliates:read", "affiliates:write")
		a := affCreate(t, e, tok, map[string]any{"name": "Flow", "email": "flow@example.com", "status": "pending"})
		base := fmt.Sprintf("/v1/affiliates/%d/", affID(a))
		steps := []struct {
			action, body string
			status       int
			want         string // resulting status, or the error message
		}{
			{"reactivate", "", 409, "Cannot reactivate an affiliate whose status is pending: pending → active is not allowed."},
			{"approve", `{"reason":"documents checked"}`, 200, "active"},
			{"approve", "", 409, "Cannot approve an affiliate whose status is active: active → active is not allowed."},
			{"suspend", `{"reason":"fraud review"}`, 200, "suspended"},
			{"suspend", "", 409, "Cannot suspend an affiliate whose status is suspended: suspended → suspended is not allowed."},
			{"reactivate", "{}", 200, "active"},
			{"terminate", "", 200, "terminated"},
			{"reactivate", "", 409, "Cannot reactivate an affiliate whose status is terminated: terminated → active is not allowed."},
			{"approve", "", 409, "Cannot approve an affiliate whose status is terminated: terminated → active is not allowed."},
		}
		for i, s := range steps {
			before := affCounts(t, e)
			var body any
			if s.body != "" {
				body = s.body
			}
			r := e.do("POST", base+s.action, tok, body)
			if s.status != 200 {
				r.expectError(t, s.status, "INVALID_STATUS_TRANSITION", s.want)
				if affCounts(t, e) != before {
					t.Fatalf("step %d: refused transition wrote rows", i)
				}
				continue
			}
			if r.status != 200 || r.data()["status"] != s.want {
				t.Fatalf("step %d %s: %d %s", i, s.action, r.status, r.raw)
			}
		}
		final := e.do("GET", base[:len(base)-1], tok, nil).data()
		for _, k := range []string{"approved_at", "terminated_at"} {
			if s, _ := final[k].(string); !reTimestamp.MatchString(s) {
				t.Fatalf("%s = %v", k, final[k])
			}
		}
		if final["suspended_at"] != nil {
			t.Fatalf("suspended_at after reactivation: %v", final["suspended_at"])
		}
		var changes, actor string
		if err := e.store.DB().QueryRow(`SELECT changes, actor_type FROM audit_log WHERE workspace_id = $1 AND action = 'affiliate.suspend'`,
			e.ws.ID).Scan(&changes, &actor); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(changes, `"fraud review"`) || actor != "api_key" {
			t.Fatalf("audit %s %s", actor, changes)
		}
		var types []string
		rows, _ := e.store.DB().Query(`SELECT type FROM events WHERE workspace_id = $1 AND resource_id = $2 ORDER BY id`, e.ws.ID, affID(a))
		for rows.Next() {
			var s string
			_ = rows.Scan(&s)
			types = append(types, s)
		}
		rows.Close()
		wantTypes := []string{"affiliate.created", "affiliate.approved", "affiliate.suspended", "affiliate.reactivated", "affiliate.terminated"}
		if !slices.Equal(types, wantTypes) {
			t.Fatalf("events %v, want %v", types, wantTypes)
		}
		t.Run("bad body", func(t *testing.T) {
			b := affCreate(t, e, tok, map[string]any{"name": "B", "email": "b@example.com", "status": "pending"})
			p := fmt.Sprintf("/v1/affiliates/%d/approve", affID(b))
			r := e.do("POST", p, tok, map[string]any{"reason": strings.Repeat("r", 1001)})
			r.expectError(t, 422, "VALIDATION_ERROR", "")
			e.do("POST", p, tok, map[string]any{"why": "x"}).expectError(t, 422, "VALIDATION_ERROR", "")
			if g := e.do("GET", fmt.Sprintf("/v1/affiliates/%d", affID(b)), tok, nil); g.data()["status"] != "pending" {
				t.Fatalf("rejected approve changed status: %s", g.raw)
			}
		})
	})
}

func TestAffiliateCommissionOverride(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		def := affDefaultProgram(t, e, e.ws.ID)
		if _, err := e.store.DB().Exec(`UPDATE programs SET commission_type = 'percentage', commission_value = 1000 WHERE id = $1`, def); err != nil {
			t.Fatal(err)
		}
		tok := e.token("affiliates:read", "affiliates:write")
		a := affCreate(t, e, tok, map[string]any{"name": "Rate", "email": "rate@example.com"})
		path := fmt.Sprintf("/v1/affiliates/%d/commission", affID(a))
		r := e.do("GET", path, tok, nil)
		if r.status != 200 || !strings.Contains(r.raw, `"data":{"affiliate_rate":null,"business_default_rate":10.00,"effective_rate":10.00}`) {
			t.Fatalf("get: %d %s", r.status, r.raw)
		}
		r = e.do("PUT", path, tok, map[string]any{"commission_rate": 12.5})
		if r.status != 200 || !strings.Contains(r.raw, `"data":{"affiliate_rate":12.50,"business_default_rate":10.00,"effective_rate":12.50}`) {
			t.Fatalf("put: %d %s", r.status, r.raw)
		}
		if g := e.do("GET", fmt.Sprintf("/v1/affiliates/%d", affID(a)), tok, nil); g.data()["commission_rate"] != "12.50" {
			t.Fatalf("affiliate after override: %s", g.raw)
		}
		for _, c := range []struct {
			name string
			body any
			msg  string
		}{
			{"missing key", map[string]any{}, "The commission rate field is required."},
			{"above 100", map[string]any{"commission_rate": 100.5}, "The commission rate field must not be greater than 100."},
			{"negative", map[string]any{"commission_rate": -0.01}, "The commission rate field must be at least 0."},
			{"three decimals", map[string]any{"commission_rate": 1.234}, "The commission rate field must have at most two decimal places."},
			{"string", map[string]any{"commission_rate": "5"}, "The commission rate field must be a number."},
			{"unknown field", map[string]any{"commission_rate": 5, "rate": 5}, ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				before := affCounts(t, e)
				r := e.do("PUT", path, tok, c.body)
				r.expectError(t, 422, "VALIDATION_ERROR", "")
				if c.msg != "" && !slices.Contains(r.details("commission_rate"), c.msg) {
					t.Fatalf("details %s", r.raw)
				}
				if affCounts(t, e) != before {
					t.Fatal("rejected override wrote rows")
				}
			})
		}
		r = e.do("PUT", path, tok, map[string]any{"commission_rate": nil})
		if r.status != 200 || !strings.Contains(r.raw, `"data":{"affiliate_rate":null,"business_default_rate":10.00,"effective_rate":10.00}`) {
			t.Fatalf("remove: %d %s", r.status, r.raw)
		}
		r = e.do("PUT", path, tok, map[string]any{"commission_rate": 0})
		if r.status != 200 || !strings.Contains(r.raw, `"affiliate_rate":0.00,`) || !strings.Contains(r.raw, `"effective_rate":0.00}`) {
			t.Fatalf("zero override: %d %s", r.status, r.raw)
		}
	})
}

// TestAffiliateIsolation: another workspace's token sees none of these
// affiliates and changes none of them.
func TestAffiliateIsolation(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		affDefaultProgram(t, e, e.ws.ID)
		tok := e.token("affiliates:read", "affiliates:write")
		a := affCreate(t, e, tok, map[string]any{"name": "Mine", "email": "mine@example.com", "status": "pending"})
		ws2, err := e.auth.CreateWorkspace(t.Context(), "Intruder "+e.engine, "basic")
		if err != nil {
			t.Fatal(err)
		}
		affDefaultProgram(t, e, ws2.ID)
		k, secret := e.newKey(ws2, auth.KeyInput{Scopes: []string{"admin"}})
		intruder := e.exchange(k.Key, secret)
		id := affID(a)
		before := affCounts(t, e)
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/v1/affiliates/%d", nil},
			{"PUT", "/v1/affiliates/%d", map[string]any{"notes": "mine now"}},
			{"DELETE", "/v1/affiliates/%d", nil},
			{"POST", "/v1/affiliates/%d/approve", nil},
			{"POST", "/v1/affiliates/%d/suspend", nil},
			{"POST", "/v1/affiliates/%d/reactivate", nil},
			{"POST", "/v1/affiliates/%d/terminate", nil},
			{"GET", "/v1/affiliates/%d/commission", nil},
			{"PUT", "/v1/affiliates/%d/commission", map[string]any{"commission_rate": 50}},
		} {
			e.do(c.method, fmt.Sprintf(c.path, id), intruder, c.body).expectError(t, 404, "NOT_FOUND", "Affiliate not found.")
		}
		r := e.do("GET", "/v1/affiliates", intruder, nil)
		if r.status != 200 || len(r.data()["items"].([]any)) != 0 {
			t.Fatalf("intruder's list: %s", r.raw)
		}
		r = e.do("POST", "/v1/affiliates", intruder, map[string]any{"name": "X", "email": "x@example.com", "parent_affiliate_id": id})
		r.expectError(t, 422, "VALIDATION_ERROR", "")
		if affCounts(t, e) != before {
			t.Fatalf("intruder changed the workspace: %s → %s", before, affCounts(t, e))
		}
		if g := e.do("GET", fmt.Sprintf("/v1/affiliates/%d", id), tok, nil); g.data()["status"] != "pending" || g.data()["notes"] != nil {
			t.Fatalf("affiliate changed: %s", g.raw)
		}
	})
}

func TestAffiliateScopes(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		affDefaultProgram(t, e, e.ws.ID)
		rw := e.token("affiliates:read", "affiliates:write")
		read := e.token("affiliates:read")
		write := e.token("affiliates:write")
		none := e.token("orders:read")
		a := affCreate(t, e, rw, map[string]any{"name": "S", "email": "s@example.com", "status": "pending"})
		p := fmt.Sprintf("/v1/affiliates/%d", affID(a))
		routes := []struct {
			method, path string
			body         any
			scope        string
		}{
			{"GET", "/v1/affiliates", nil, "read"},
			{"POST", "/v1/affiliates", map[string]any{"name": "N", "email": "n@example.com"}, "write"},
			{"GET", p, nil, "read"},
			{"PUT", p, map[string]any{"notes": "x"}, "write"},
			{"DELETE", p, nil, "write"},
			{"POST", p + "/approve", nil, "write"},
			{"POST", p + "/suspend", nil, "write"},
			{"POST", p + "/reactivate", nil, "write"},
			{"POST", p + "/terminate", nil, "write"},
			{"GET", p + "/commission", nil, "read"},
			{"PUT", p + "/commission", map[string]any{"commission_rate": 5}, "write"},
		}
		for _, rt := range routes {
			t.Run(rt.method+" "+rt.path, func(t *testing.T) {
				before := affCounts(t, e)
				e.do(rt.method, rt.path, "", rt.body).expectError(t, 401, "UNAUTHORIZED", "")
				e.do(rt.method, rt.path, none, rt.body).expectError(t, 403, "FORBIDDEN", "Insufficient scope.")
				wrong := write
				if rt.scope == "write" {
					wrong = read
				}
				e.do(rt.method, rt.path, wrong, rt.body).expectError(t, 403, "FORBIDDEN", "Insufficient scope.")
				if affCounts(t, e) != before {
					t.Fatal("a refused request wrote rows")
				}
			})
		}
	})
}

func TestAffiliateSelfRegistration(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *env) {
		def := affDefaultProgram(t, e, e.ws.ID)
		path := "/v1/public/" + e.ws.Slug + "/affiliates"
		sent := 0 // requests to the throttled endpoint so far
		register := func(body any) *resp {
			t.Helper()
			sent++
			return e.do("POST", path, "", body)
		}
		body := func(kv ...string) map[string]any {
			m := map[string]any{"name": "Jo Joiner", "email": "Jo@Example.com", "password": "s3cret-pass", "password_confirmation": "s3cret-pass"}
			for i := 0; i+1 < len(kv); i += 2 {
				m[kv[i]] = kv[i+1]
			}
			return m
		}
		before := affCounts(t, e)
		register(body()).expectError(t, 403, "FORBIDDEN", "Self-registration is not enabled for this program.")
		sent++
		e.do("POST", "/v1/public/no-such-business/affiliates", "", body()).expectError(t, 404, "NOT_FOUND", "")
		if affCounts(t, e) != before {
			t.Fatal("refused registration wrote rows")
		}
		if _, err := e.store.DB().Exec(`UPDATE programs SET allow_self_registration = $1 WHERE id = $2`, true, def); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name, field, msg string
			body             map[string]any
		}{
			{"mismatch", "password_confirmation", "The password confirmation does not match.", body("password_confirmation", "s3cret-pasS")},
			{"short", "password", "The password field must be at least 8 characters.", body("password", "short", "password_confirmation", "short")},
			{"bad email", "email", "The email field must be a valid email address.", body("email", "jo")},
			{"bad phone", "phone", "The phone field must be an E.164 phone number such as +14155552671.", body("phone", "12")},
		} {
			r := register(c.body)
			r.expectError(t, 422, "VALIDATION_ERROR", "")
			if !slices.Contains(r.details(c.field), c.msg) {
				t.Fatalf("%s: %s", c.name, r.raw)
			}
		}
		if affCounts(t, e) != before {
			t.Fatal("invalid registration wrote rows")
		}
		r := register(body("phone", "+14155552671"))
		if r.status != 201 {
			t.Fatalf("register: %d %s", r.status, r.raw)
		}
		a := r.data()
		if a["status"] != "pending" || a["approved_at"] != nil || a["program_id"] != float64(def) ||
			a["affiliate_user"].(map[string]any)["email"] != "jo@example.com" || strings.Contains(r.raw, "password") || strings.Contains(r.raw, "$2a$") {
			t.Fatalf("registered %s", r.raw)
		}
		var hash, actor string
		_ = e.store.DB().QueryRow(`SELECT password_hash FROM affiliate_users WHERE workspace_id = $1 AND email = 'jo@example.com'`, e.ws.ID).Scan(&hash)
		_ = e.store.DB().QueryRow(`SELECT actor_type FROM audit_log WHERE workspace_id = $1 AND action = 'affiliate.register'`, e.ws.ID).Scan(&actor)
		if !strings.HasPrefix(hash, "$2") || strings.Contains(hash, "s3cret") || actor != "public" {
			t.Fatalf("hash %q actor %q", hash, actor)
		}
		register(body()).expectError(t, 409, "CONFLICT", "")

		t.Run("10 per minute per IP", func(t *testing.T) {
			for ; sent < 10; sent++ {
				if r := e.do("POST", path, "", body("email", fmt.Sprintf("r%d@example.com", sent))); r.status == 429 {
					t.Fatalf("throttled at request %d", sent+1)
				}
			}
			r := e.do("POST", path, "", body("email", "late@example.com"))
			r.expectError(t, 429, "RATE_LIMITED", "")
			if r.header.Get("Retry-After") == "" {
				t.Fatal("no Retry-After")
			}
		})
	})
}
