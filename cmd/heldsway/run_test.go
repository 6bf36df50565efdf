package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/auth"
	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// cliEnv is the environment a command sees: only what the test sets.
type cliEnv map[string]string

func (e cliEnv) get(k string) string { return e[k] }

// result is what one run produced.
type result struct {
	err            error
	stdout, stderr string
}

func runCLI(t *testing.T, env cliEnv, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, env.get, &stdout, &stderr)
	return result{err, stdout.String(), stderr.String()}
}

// runJSON runs a command that must succeed and decodes its JSON output.
func runJSON(t *testing.T, env cliEnv, out any, args ...string) {
	t.Helper()
	r := runCLI(t, env, args...)
	if r.err != nil {
		t.Fatalf("heldsway %s: %v\n%s", strings.Join(args, " "), r.err, r.stderr)
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("heldsway %s printed %q: %v", strings.Join(args, " "), r.stdout, err)
	}
}

// eachEngine runs fn on every engine with a fresh, empty database address.
func eachEngine(t *testing.T, fn func(t *testing.T, engine, dsn string)) {
	t.Helper()
	for _, engine := range storetest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			fn(t, engine, storetest.DSN(t, engine))
		})
	}
}

// openStore opens dsn to check what a command wrote.
func openStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

type wsOut struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Slug string `json:"slug"`
	Plan string `json:"plan"`
}

type keyOut struct {
	ID        int64    `json:"id"`
	APIKey    string   `json:"api_key"`
	APISecret string   `json:"api_secret"`
	Scopes    []string `json:"scopes"`
}

var (
	reKey    = regexp.MustCompile(`^hs_key_[A-Za-z0-9]{24}$`)
	reSecret = regexp.MustCompile(`^hs_secret_[A-Za-z0-9]{48}$`)
)

func TestWorkspaceAndKeyCommands(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, engine, dsn string) {
		ctx := context.Background()
		env := cliEnv{}

		var ws wsOut
		runJSON(t, env, &ws, "workspace", "create", "--name", "Acme Outfitters", "--plan", "standard", "--json", "--db", dsn)
		if ws.ID <= 0 || ws.Name != "Acme Outfitters" || ws.Slug != "acme-outfitters" || ws.Plan != "standard" {
			t.Fatalf("workspace create: %+v", ws)
		}
		var def wsOut
		runJSON(t, env, &def, "workspace", "create", "--name", "Acme Outfitters", "--json", "--db", dsn)
		if def.Plan != "basic" || def.ID == ws.ID || def.Slug == ws.Slug || !strings.HasPrefix(def.Slug, "acme-outfitters-") {
			t.Fatalf("second workspace of the same name: %+v", def)
		}

		var key keyOut
		runJSON(t, env, &key, "key", "create", "--workspace", fmt.Sprint(ws.ID), "--name", "server",
			"--scopes", "payout-write, orders:write", "--expires-at", "2099-01-02T03:04:05Z", "--json", "--db", dsn)
		if key.ID <= 0 || !reKey.MatchString(key.APIKey) || !reSecret.MatchString(key.APISecret) ||
			!slices.Equal(key.Scopes, []string{"orders:write", "payouts:read", "payouts:write"}) {
			t.Fatalf("key create: %+v", key)
		}

		st := openStore(t, dsn)
		svc := auth.NewService(st)
		k, _, err := st.FindAPIKeyByKey(ctx, key.APIKey)
		if err != nil || k.Name != "server" || k.WorkspaceID != ws.ID || k.ExpiresAt == nil ||
			!k.ExpiresAt.Equal(time.Date(2099, 1, 2, 3, 4, 5, 0, time.UTC)) {
			t.Fatalf("stored key: %+v, %v", k, err)
		}
		if _, _, err := svc.IssueToken(ctx, key.APIKey, key.APISecret); err != nil {
			t.Fatalf("the printed credentials do not work: %v", err)
		}

		t.Run("deactivate and activate", func(t *testing.T) {
			var out struct {
				ID     int64 `json:"id"`
				Active bool  `json:"active"`
			}
			runJSON(t, env, &out, "workspace", "deactivate", "--id", fmt.Sprint(ws.ID), "--json", "--db", dsn)
			if out.ID != ws.ID || out.Active {
				t.Fatalf("deactivate: %+v", out)
			}
			_, _, err := svc.IssueToken(ctx, key.APIKey, key.APISecret)
			if heldsway.ErrorCode(err) != heldsway.EFORBIDDEN || heldsway.ErrorMessage(err) != auth.MsgWorkspaceInactive {
				t.Fatalf("exchange in a deactivated workspace: %v", err)
			}
			if w, _ := st.FindWorkspace(ctx, def.ID); !w.Active {
				t.Fatal("deactivate changed another workspace")
			}
			runJSON(t, env, &out, "workspace", "activate", "--id", fmt.Sprint(ws.ID), "--json", "--db", dsn)
			if out.ID != ws.ID || !out.Active {
				t.Fatalf("activate: %+v", out)
			}
			if _, _, err := svc.IssueToken(ctx, key.APIKey, key.APISecret); err != nil {
				t.Fatalf("exchange after activate: %v", err)
			}
		})
		t.Run("revoke", func(t *testing.T) {
			var other keyOut
			runJSON(t, env, &other, "key", "create", "--workspace", fmt.Sprint(def.ID), "--name", "other",
				"--scopes", "read-only", "--json", "--db", dsn)
			var out struct {
				ID      int64 `json:"id"`
				Revoked bool  `json:"revoked"`
			}
			runJSON(t, env, &out, "key", "revoke", "--id", fmt.Sprint(key.ID), "--json", "--db", dsn)
			if out.ID != key.ID || !out.Revoked {
				t.Fatalf("revoke: %+v", out)
			}
			_, _, err := svc.IssueToken(ctx, key.APIKey, key.APISecret)
			if heldsway.ErrorCode(err) != heldsway.EUNAUTHORIZED || heldsway.ErrorMessage(err) != auth.MsgKeyInactive {
				t.Fatalf("exchange of a revoked key: %v", err)
			}
			if _, _, err := svc.IssueToken(ctx, other.APIKey, other.APISecret); err != nil {
				t.Fatalf("revoke stopped another key: %v", err)
			}
		})
		t.Run("text output", func(t *testing.T) {
			r := runCLI(t, env, "workspace", "create", "--name", "Plain", "--db", dsn)
			if r.err != nil || !regexp.MustCompile(`^workspace \d+ created: Plain \(slug plain, plan basic\)\n$`).MatchString(r.stdout) {
				t.Fatalf("text output %q, %v", r.stdout, r.err)
			}
			r = runCLI(t, env, "key", "create", "--workspace", fmt.Sprint(ws.ID), "--name", "t", "--scopes", "admin", "--db", dsn)
			if r.err != nil || !regexp.MustCompile(`(?m)^api_key: +hs_key_\w+$`).MatchString(r.stdout) ||
				!regexp.MustCompile(`(?m)^api_secret: +hs_secret_\w+$`).MatchString(r.stdout) {
				t.Fatalf("text output %q, %v", r.stdout, r.err)
			}
		})
		t.Run("application errors", func(t *testing.T) {
			tests := []struct {
				name string
				args []string
				want string // in the error
			}{
				{"unknown plan", []string{"workspace", "create", "--name", "X", "--plan", "gold"}, "plan"},
				{"blank name", []string{"workspace", "create", "--name", "  "}, "The name field is required."},
				{"unknown workspace to deactivate", []string{"workspace", "deactivate", "--id", "999999"}, "Workspace not found."},
				{"key in unknown workspace", []string{"key", "create", "--workspace", "999999", "--name", "x", "--scopes", "admin"},
					"Workspace not found."},
				{"unknown scope", []string{"key", "create", "--workspace", fmt.Sprint(ws.ID), "--name", "x", "--scopes", "root"},
					`The scope \"root\" is invalid.`},
				{"no scopes", []string{"key", "create", "--workspace", fmt.Sprint(ws.ID), "--name", "x"}, "The scopes field is required."},
				{"past expiry", []string{"key", "create", "--workspace", fmt.Sprint(ws.ID), "--name", "x", "--scopes", "admin",
					"--expires-at", "2001-01-01T00:00:00Z"}, "expires_at"},
				{"unknown key to revoke", []string{"key", "revoke", "--id", "999999"}, "API key not found."},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					r := runCLI(t, env, append(tc.args, "--db", dsn)...)
					if r.err == nil || exitCode(r.err) != 1 || !strings.Contains(r.err.Error(), tc.want) {
						t.Fatalf("want exit 1 with %q, got %v (exit %d)", tc.want, r.err, exitCode(r.err))
					}
					if r.stdout != "" {
						t.Fatalf("failed command printed %q", r.stdout)
					}
				})
			}
		})
	})
}

// TestDatabaseFlagOverridesEnvironment: --db wins over HELDSWAY_DATABASE_URL,
// which wins over the default ./heldsway.db.
func TestDatabaseFlagOverridesEnvironment(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, engine, envDSN string) {
		flagDSN := storetest.DSN(t, engine)
		env := cliEnv{"HELDSWAY_DATABASE_URL": envDSN}

		var inFlag, inEnv wsOut
		runJSON(t, env, &inFlag, "workspace", "create", "--name", "Flagged", "--json", "--db", flagDSN)
		runJSON(t, env, &inEnv, "workspace", "create", "--name", "From env", "--json")

		count := func(dsn string) int {
			n, err := openStore(t, dsn).CountWorkspaces(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n := count(flagDSN); n != 1 {
			t.Fatalf("--db database has %d workspaces, want 1", n)
		}
		if n := count(envDSN); n != 1 {
			t.Fatalf("HELDSWAY_DATABASE_URL database has %d workspaces, want 1", n)
		}
		w, err := openStore(t, flagDSN).FindWorkspace(context.Background(), inFlag.ID)
		if err != nil || w.Name != "Flagged" {
			t.Fatalf("--db database holds %+v, %v", w, err)
		}

		var m struct {
			Migrated bool   `json:"migrated"`
			Dialect  string `json:"dialect"`
		}
		runJSON(t, env, &m, "migrate", "--json", "--db", flagDSN)
		if !m.Migrated || m.Dialect != engine {
			t.Fatalf("migrate: %+v", m)
		}
	})
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	dsn := filepath.Join(t.TempDir(), "never-created.db")
	tests := []struct {
		name string
		args []string
		want string // in the error
	}{
		{"no command", nil, "no command"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"workspace without subcommand", []string{"workspace"}, "workspace: expected"},
		{"unknown workspace subcommand", []string{"workspace", "delete", "--db", dsn}, `unknown subcommand "delete"`},
		{"unknown flag", []string{"workspace", "create", "--name", "x", "--colour", "red", "--db", dsn}, "colour"},
		{"stray argument", []string{"workspace", "create", "--name", "x", "extra", "--db", dsn}, `unexpected argument "extra"`},
		{"deactivate without id", []string{"workspace", "deactivate", "--db", dsn}, "--id is required"},
		{"activate with a bad id", []string{"workspace", "activate", "--id", "seven", "--db", dsn}, "id"},
		{"key without subcommand", []string{"key"}, "key: expected"},
		{"unknown key subcommand", []string{"key", "rotate", "--db", dsn}, `unknown subcommand "rotate"`},
		{"key create without workspace", []string{"key", "create", "--name", "x", "--scopes", "admin", "--db", dsn}, "--workspace is required"},
		{"key create with a bad expiry", []string{"key", "create", "--workspace", "1", "--name", "x", "--scopes", "admin",
			"--expires-at", "next week", "--db", dsn}, "RFC 3339"},
		{"key revoke without id", []string{"key", "revoke", "--db", dsn}, "--id is required"},
		{"serve with a stray argument", []string{"serve", "now", "--db", dsn}, `unexpected argument "now"`},
		{"version with a bad flag", []string{"version", "--db", dsn}, "db"},
	}
	t.Run("cases", func(t *testing.T) { // returns when every parallel case is done
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				r := runCLI(t, cliEnv{}, tc.args...)
				var ue usageError
				if !errors.As(r.err, &ue) || exitCode(r.err) != 2 || !strings.Contains(r.err.Error(), tc.want) {
					t.Fatalf("want a usage error (exit 2) with %q, got %v", tc.want, r.err)
				}
				if r.stdout != "" {
					t.Fatalf("printed %q on a usage error", r.stdout)
				}
			})
		}
	})
	t.Run("usage errors touch no database", func(t *testing.T) {
		if _, err := os.Stat(dsn); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s was created (%v)", dsn, err)
		}
	})
	t.Run("usage text", func(t *testing.T) {
		r := runCLI(t, cliEnv{}, "frobnicate")
		if !strings.Contains(r.stderr, "Usage: heldsway") {
			t.Fatalf("no usage on stderr: %q", r.stderr)
		}
		r = runCLI(t, cliEnv{}, "help")
		if r.err != nil || !strings.Contains(r.stdout, "Usage: heldsway") {
			t.Fatalf("help: %v %q", r.err, r.stdout)
		}
	})
	t.Run("version", func(t *testing.T) {
		var v struct {
			Version string `json:"version"`
		}
		runJSON(t, cliEnv{}, &v, "version", "--json")
		if v.Version == "" {
			t.Fatal("empty version")
		}
		if r := runCLI(t, cliEnv{}, "version"); r.err != nil || r.stdout != "heldsway "+v.Version+"\n" {
			t.Fatalf("version: %q %v", r.stdout, r.err)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for the server goroutine to write while the
// test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serving is a `serve` running in this process.
type serving struct {
	addr           string
	stdout, stderr *syncBuffer
	stop           func() error
}

// startServe runs serve until stop is called, and waits for its listening line.
func startServe(t *testing.T, env cliEnv, args ...string) *serving {
	t.Helper()
	s := &serving{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"serve"}, args...), env.get, s.stdout, s.stderr) }()
	var once sync.Once
	var stopErr error
	s.stop = func() error {
		once.Do(func() { cancel(); stopErr = <-done })
		return stopErr
	}
	t.Cleanup(func() { _ = s.stop() })
	deadline := time.Now().Add(30 * time.Second)
	for s.addr == "" {
		select {
		case err := <-done:
			t.Fatalf("serve exited early: %v\n%s", err, s.stderr.String())
		default:
		}
		for _, line := range strings.Split(s.stderr.String(), "\n") {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				s.addr = rec.Addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", s.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s
}

func (s *serving) post(t *testing.T, path, body string) (int, map[string]any) {
	t.Helper()
	res, err := http.Post("http://"+s.addr+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, out
}

// TestServeBootstrap: the first start on an empty database creates a workspace
// and an admin key and prints api_key and api_secret once, on stdout; a second
// start prints nothing; the logs never carry the secret.
func TestServeBootstrap(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, engine, dsn string) {
		// HELDSWAY_ADDR names a port nothing listens on; --addr overrides it, as
		// --db overrides HELDSWAY_DATABASE_URL (a path in a missing directory).
		env := cliEnv{"HELDSWAY_ADDR": "256.0.0.1:1", "HELDSWAY_DATABASE_URL": "/nonexistent/dir/heldsway.db"}
		first := startServe(t, env, "--addr", "127.0.0.1:0", "--db", dsn)
		out := first.stdout.String()
		key := regexp.MustCompile(`(?m)^api_key: +(hs_key_[A-Za-z0-9]+)$`).FindStringSubmatch(out)
		secret := regexp.MustCompile(`(?m)^api_secret: +(hs_secret_[A-Za-z0-9]+)$`).FindStringSubmatch(out)
		if key == nil || secret == nil {
			t.Fatalf("first start printed no credentials:\n%s", out)
		}

		status, body := first.post(t, "/v1/auth/token", fmt.Sprintf(`{"api_key":%q,"api_secret":%q}`, key[1], secret[1]))
		data, _ := body["data"].(map[string]any)
		if status != 200 || !slices.Contains(strsOf(data["scopes"]), "admin") {
			t.Fatalf("exchanging the bootstrap key: %d %v", status, body)
		}
		if err := first.stop(); err != nil {
			t.Fatalf("serve: %v", err)
		}
		logs := first.stderr.String()
		if strings.Contains(logs, secret[1]) || strings.Contains(logs, data["access_token"].(string)) {
			t.Fatalf("the log carries a secret or token:\n%s", logs)
		}
		if !strings.Contains(logs, `"db":"`+engine+`"`) {
			t.Fatalf("serve did not use the --db %s database:\n%s", engine, logs)
		}

		second := startServe(t, env, "--addr", "127.0.0.1:0", "--db", dsn, "--json")
		if err := second.stop(); err != nil {
			t.Fatalf("second serve: %v", err)
		}
		if got := second.stdout.String(); got != "" {
			t.Fatalf("second start printed %q", got)
		}
		n, err := openStore(t, dsn).CountWorkspaces(context.Background())
		if err != nil || n != 1 {
			t.Fatalf("%d workspaces after two starts, %v", n, err)
		}
	})
}

func TestServeBootstrapJSON(t *testing.T) {
	t.Parallel()
	dsn := storetest.DSN(t, "sqlite")
	s := startServe(t, cliEnv{}, "--addr", "127.0.0.1:0", "--db", dsn, "--json", "--access-log=false")
	var boot struct {
		WorkspaceID int64  `json:"workspace_id"`
		APIKey      string `json:"api_key"`
		APISecret   string `json:"api_secret"`
	}
	dec := json.NewDecoder(strings.NewReader(s.stdout.String()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&boot); err != nil || boot.WorkspaceID <= 0 || !reKey.MatchString(boot.APIKey) ||
		!reSecret.MatchString(boot.APISecret) {
		t.Fatalf("bootstrap JSON %q: %v", s.stdout.String(), err)
	}
	if status, _ := s.post(t, "/v1/auth/token", fmt.Sprintf(`{"api_key":%q,"api_secret":%q}`, boot.APIKey, boot.APISecret)); status != 200 {
		t.Fatalf("exchange: %d", status)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s.stderr.String(), boot.APISecret) {
		t.Fatal("the log carries the secret")
	}
}

func strsOf(v any) []string {
	l, _ := v.([]any)
	out := []string{}
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestServeGCPercent: serve raises the GC target when GOGC is unset and
// leaves the runtime's setting alone when it is set.
func TestServeGCPercent(t *testing.T) {
	// Not parallel: the GC percent is the process's.
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })

	setGCPercent(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != serveGCPercent {
		t.Fatalf("GOGC unset: GC percent %d, want %d", got, serveGCPercent)
	}
	setGCPercent(func(k string) string {
		if k == "GOGC" {
			return "100"
		}
		return ""
	})
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC=100: GC percent %d, want it left at 100", got)
	}
}

// TestServeClickJournal: on PostgreSQL serve acknowledges clicks through the
// journal file it is given; "off", another process holding it, or the
// default path not being writable leave it committing batches directly, and
// an unusable path given explicitly stops the start.
func TestServeClickJournal(t *testing.T) {
	t.Parallel()
	if os.Getenv(storetest.EnvPostgres) == "" {
		t.Skipf("%s is not set: the click journal of serve is PostgreSQL's", storetest.EnvPostgres)
	}
	ctx := context.Background()
	dsn := storetest.DSN(t, "postgres")
	open := func() *store.Store {
		st, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	dir := t.TempDir()

	if err := openClickJournal(ctx, open(), "off", false, log); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("--click-journal off created %v", entries)
	}

	path := filepath.Join(dir, "heldsway.clicks")
	if err := openClickJournal(ctx, open(), path, false, log); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || !bytes.HasPrefix(b, []byte("heldsway click journal 1 ")) {
		t.Fatalf("journal file %q %v", b, err)
	}
	logs.Reset()
	if err := openClickJournal(ctx, open(), path, false, log); err != nil || !strings.Contains(logs.String(), "held by another process") {
		t.Fatalf("a held journal: %v, log %s", err, logs.String())
	}

	// A path under a file cannot be created.
	bad := filepath.Join(path, "x")
	logs.Reset()
	if err := openClickJournal(ctx, open(), bad, true, log); err != nil || !strings.Contains(logs.String(), "no click journal") {
		t.Fatalf("an unusable default path: %v, log %s", err, logs.String())
	}
	if err := openClickJournal(ctx, open(), bad, false, log); err == nil {
		t.Fatal("an unusable --click-journal was accepted")
	}
}
