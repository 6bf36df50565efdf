package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

func TestRollupsRebuildCommand(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, engine, dsn string) {
		ctx := context.Background()
		env := cliEnv{}
		var ws wsOut
		runJSON(t, env, &ws, "workspace", "create", "--name", "Rollups", "--json", "--db", dsn)
		st := openStore(t, dsn)
		var prog, aff int64
		if err := st.DB().QueryRow(`SELECT id FROM programs WHERE workspace_id = $1`, ws.ID).Scan(&prog); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UnixMicro()
		user := int64(0)
		if err := st.DB().QueryRow(`INSERT INTO affiliate_users (workspace_id, name, email, created_at, updated_at)
			VALUES ($1, 'A', 'a@example.com', $2, $2) RETURNING id`, ws.ID, now).Scan(&user); err != nil {
			t.Fatal(err)
		}
		if err := st.DB().QueryRow(`INSERT INTO affiliates (workspace_id, program_id, affiliate_user_id, referral_code, status,
			name, email, created_at, updated_at) VALUES ($1, $2, $3, 'RB', 'active', 'A', 'a@example.com', $4, $4) RETURNING id`,
			ws.ID, prog, user, now).Scan(&aff); err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 3, 8, 3, 30, 0, 0, time.UTC) // 22:30 on 7 March in New York
		if err := st.InsertClicks(ctx, []heldsway.Click{{WorkspaceID: ws.ID, AffiliateID: aff, ProgramID: prog,
			ClickID: "c1", VisitorID: "v", CreatedAt: at}}); err != nil {
			t.Fatal(err)
		}
		day := func() (d int) {
			t.Helper()
			if err := st.SyncClickRollups(ctx); err != nil { // SQLite counts clicks after their batch
				t.Fatal(err)
			}
			if err := st.DB().QueryRow(`SELECT day FROM rollup_totals WHERE workspace_id = $1 AND clicks = 1`, ws.ID).Scan(&d); err != nil {
				t.Fatal(err)
			}
			return d
		}
		if d := day(); d != 20260308 {
			t.Fatalf("click counted on %d, want 20260308 (UTC)", d)
		}
		// A new time zone applies at the rebuild.
		if _, err := st.DB().Exec(`UPDATE workspace_settings SET timezone = 'America/New_York' WHERE workspace_id = $1`, ws.ID); err != nil {
			t.Fatal(err)
		}
		var out struct {
			Rebuilt []struct {
				WorkspaceID int64   `json:"workspace_id"`
				Timezone    string  `json:"timezone"`
				From        string  `json:"from"`
				To          string  `json:"to"`
				Days        int     `json:"days"`
				Clicks      int64   `json:"clicks"`
				Events      int64   `json:"events"`
				Orders      int64   `json:"orders"`
				Seconds     float64 `json:"seconds"`
			} `json:"rebuilt"`
		}
		runJSON(t, env, &out, "rollups", "rebuild", "--workspace", fmt.Sprint(ws.ID), "--json", "--db", dsn)
		if len(out.Rebuilt) != 1 || out.Rebuilt[0].Timezone != "America/New_York" || out.Rebuilt[0].Clicks != 1 ||
			out.Rebuilt[0].From != "2026-03-06" || out.Rebuilt[0].To != "2026-03-08" {
			t.Fatalf("rebuild: %+v", out)
		}
		if d := day(); d != 20260307 {
			t.Fatalf("after the rebuild the click is on %d, want 20260307 (New York)", d)
		}
		r := runCLI(t, env, "rollups", "rebuild", "--db", dsn)
		if r.err != nil || !strings.Contains(r.stdout, fmt.Sprintf("workspace %d: rollups rebuilt in America/New_York", ws.ID)) {
			t.Fatalf("rebuild all: %v %q", r.err, r.stdout)
		}
		if r := runCLI(t, env, "rollups", "rebuild", "--workspace", "999999", "--db", dsn); r.err == nil || !strings.Contains(r.err.Error(), "not found") {
			t.Fatalf("unknown workspace: %v", r.err)
		}
		if r := runCLI(t, env, "rollups", "frobnicate", "--db", dsn); exitCode(r.err) != 2 {
			t.Fatalf("unknown subcommand: %v", r.err)
		}
	})
}
