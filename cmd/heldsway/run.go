package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/heldsway/heldsway/internal/api"
	"github.com/heldsway/heldsway/internal/auth"
	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/track"
	"github.com/heldsway/heldsway/internal/worker"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

const usage = `Usage: heldsway <command> [flags]

Commands:
  serve      [--addr A] [--db URL] [--click-journal PATH|off] [--cpuprofile FILE]
                                          run the API server
  migrate    [--db URL]                   apply database migrations
  workspace  create --name N [--plan P]   create a workspace
  workspace  deactivate|activate --id N   deactivate or reactivate a workspace
  key        create --workspace ID --name N --scopes s1,s2 [--expires-at RFC3339] [--rate-limit N]
  key        revoke --id N
  rollups    rebuild [--workspace ID]     recompute analytics rollups from raw events (all
                                          workspaces by default), in each workspace's time zone
  openapi                                 print the OpenAPI 3.1 document
  version                                 print the version

serve, migrate, workspace, key and rollups take --db (a postgres:// URL or a SQLite file
path; default $HELDSWAY_DATABASE_URL, else ./heldsway.db) and --json; version
takes --json; openapi always prints JSON.
`

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// run is the whole program, callable from tests.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, rest, getenv, stdout)
	case "workspace":
		return runWorkspace(ctx, rest, getenv, stdout)
	case "key":
		return runKey(ctx, rest, getenv, stdout)
	case "rollups":
		return runRollups(ctx, rest, getenv, stdout)
	case "version", "--version", "-v":
		fs := newFlags("version")
		asJSON := fs.Bool("json", false, "print JSON")
		if err := parse(fs, rest); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, map[string]string{"version": buildVersion()})
		}
		fmt.Fprintln(stdout, "heldsway", buildVersion())
		return nil
	case "openapi":
		if err := parse(newFlags("openapi"), rest); err != nil {
			return err
		}
		// The document is generated from the routes; no database is needed.
		return printJSON(stdout, (&api.Server{Version: buildVersion()}).OpenAPI())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Sprintf("%s: %v", fs.Name(), err)}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

// dbFlag adds --db, defaulting to $HELDSWAY_DATABASE_URL and then ./heldsway.db.
// Flags override the environment.
func dbFlag(fs *flag.FlagSet, getenv func(string) string) *string {
	def := getenv("HELDSWAY_DATABASE_URL")
	if def == "" {
		def = "heldsway.db"
	}
	return fs.String("db", def, "postgres:// URL or SQLite file path")
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlags("migrate")
	db := dbFlag(fs, getenv)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := store.Open(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	if *asJSON {
		return printJSON(stdout, map[string]any{"migrated": true, "dialect": st.Dialect.Name})
	}
	fmt.Fprintln(stdout, "migrations applied ("+st.Dialect.Name+")")
	return nil
}

func runWorkspace(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{"workspace: expected create, activate or deactivate"}
	}
	sub := args[0]
	fs := newFlags("workspace " + sub)
	db := dbFlag(fs, getenv)
	asJSON := fs.Bool("json", false, "print JSON")
	switch sub {
	case "create":
		name := fs.String("name", "", "workspace name")
		plan := fs.String("plan", "basic", "plan: "+strings.Join(heldsway.Plans, ", "))
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		return withAuth(ctx, *db, func(svc *auth.Service) error {
			w, err := svc.CreateWorkspace(ctx, *name, *plan)
			if err != nil {
				return cliError(err)
			}
			out := map[string]any{"id": w.ID, "name": w.Name, "slug": w.Slug, "plan": w.Plan}
			if *asJSON {
				return printJSON(stdout, out)
			}
			fmt.Fprintf(stdout, "workspace %d created: %s (slug %s, plan %s)\n", w.ID, w.Name, w.Slug, w.Plan)
			return nil
		})
	case "activate", "deactivate":
		id := fs.Int64("id", 0, "workspace id")
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		if *id <= 0 {
			return usageError{"workspace " + sub + ": --id is required"}
		}
		return withAuth(ctx, *db, func(svc *auth.Service) error {
			if err := svc.SetWorkspaceActive(ctx, *id, sub == "activate"); err != nil {
				return cliError(err)
			}
			if *asJSON {
				return printJSON(stdout, map[string]any{"id": *id, "active": sub == "activate"})
			}
			fmt.Fprintf(stdout, "workspace %d %sd\n", *id, sub)
			return nil
		})
	}
	return usageError{fmt.Sprintf("workspace: unknown subcommand %q", sub)}
}

func runKey(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{"key: expected create or revoke"}
	}
	sub := args[0]
	fs := newFlags("key " + sub)
	db := dbFlag(fs, getenv)
	asJSON := fs.Bool("json", false, "print JSON")
	switch sub {
	case "create":
		ws := fs.Int64("workspace", 0, "workspace id")
		name := fs.String("name", "", "key name")
		scopes := fs.String("scopes", "", "comma-separated scopes or presets")
		expires := fs.String("expires-at", "", "RFC 3339 expiry")
		rate := fs.Int("rate-limit", 0, "requests per minute (default 1000)")
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		if *ws <= 0 {
			return usageError{"key create: --workspace is required"}
		}
		in := auth.KeyInput{WorkspaceID: *ws, Name: *name, RateLimit: *rate}
		for _, s := range strings.Split(*scopes, ",") {
			if s = strings.TrimSpace(s); s != "" {
				in.Scopes = append(in.Scopes, s)
			}
		}
		if *expires != "" {
			t, err := time.Parse(time.RFC3339, *expires)
			if err != nil {
				return usageError{"key create: --expires-at must be RFC 3339, e.g. 2027-01-02T15:04:05Z"}
			}
			in.ExpiresAt = &t
		}
		return withAuth(ctx, *db, func(svc *auth.Service) error {
			if _, err := svc.Store.FindWorkspace(ctx, *ws); err != nil {
				return cliError(err)
			}
			k, secret, err := svc.CreateKey(ctx, in)
			if err != nil {
				return cliError(err)
			}
			if *asJSON {
				return printJSON(stdout, map[string]any{"id": k.ID, "api_key": k.Key, "api_secret": secret, "scopes": k.Scopes})
			}
			fmt.Fprintf(stdout, "key %d created\napi_key:    %s\napi_secret: %s\nscopes:     %s\n(the secret is shown once)\n",
				k.ID, k.Key, secret, strings.Join(k.Scopes, " "))
			return nil
		})
	case "revoke":
		id := fs.Int64("id", 0, "key id")
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		if *id <= 0 {
			return usageError{"key revoke: --id is required"}
		}
		return withAuth(ctx, *db, func(svc *auth.Service) error {
			k, err := svc.Store.FindAPIKeyByID(ctx, *id)
			if err != nil {
				return cliError(err)
			}
			if err := svc.RevokeKey(ctx, k.WorkspaceID, k.ID); err != nil {
				return cliError(err)
			}
			if *asJSON {
				return printJSON(stdout, map[string]any{"id": k.ID, "revoked": true})
			}
			fmt.Fprintf(stdout, "key %d revoked\n", k.ID)
			return nil
		})
	}
	return usageError{fmt.Sprintf("key: unknown subcommand %q", sub)}
}

// cliError renders an application error with its field details.
func cliError(err error) error {
	var he *heldsway.Error
	if !errors.As(err, &he) || len(he.Details) == 0 {
		return err
	}
	b, _ := json.Marshal(he.Details)
	return fmt.Errorf("%s: %s", he.Message, b)
}

func withAuth(ctx context.Context, dsn string, fn func(*auth.Service) error) error {
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(auth.NewService(st))
}

// serveGCPercent is serve's garbage-collection target when GOGC is not set.
// With Go's default of 100 the collector took 6-8% of the CPU of a
// conversion under load (issue 4), while the server's live heap is a few tens
// of MB: collecting four times less often costs that heap's size a few times
// over in memory, and GOGC (or GOMEMLIMIT) still decides when it is set.
const serveGCPercent = 400

// setGCPercent applies serveGCPercent unless GOGC is set.
func setGCPercent(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
}

// defaultClickJournal is serve's click journal on PostgreSQL: in the working
// directory, as SQLite's default database is.
const defaultClickJournal = "heldsway.clicks"

// openClickJournal opens the PostgreSQL click journal at path (not "off").
// Another process holding it, or the default path not being writable, leaves
// the server committing each click batch to the database (the journal is a
// speed-up, not a requirement); any other failure stops the start, since a
// journal that could not be read back may hold acknowledged clicks.
func openClickJournal(ctx context.Context, st *store.Store, path string, isDefault bool, log *slog.Logger) error {
	if !st.Dialect.IsPostgres() || path == "off" || path == "" {
		return nil
	}
	strayed, err := st.OpenClickJournal(ctx, path)
	if strayed != "" {
		log.Warn("a click journal of another database was set aside", "path", strayed)
	}
	var pe *fs.PathError
	switch {
	case errors.Is(err, store.ErrClickJournalBusy):
		log.Warn("the click journal is held by another process; click batches are committed to the database", "path", path)
	case errors.As(err, &pe) && isDefault:
		log.Warn("no click journal; click batches are committed to the database", "err", err)
	case err != nil:
		return err
	default:
		log.Info("click journal", "path", path)
	}
	return nil
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("serve")
	defAddr := getenv("HELDSWAY_ADDR")
	if defAddr == "" {
		defAddr = "127.0.0.1:8080"
	}
	addr := fs.String("addr", defAddr, "listen address")
	db := dbFlag(fs, getenv)
	asJSON := fs.Bool("json", false, "print the bootstrap credentials as JSON")
	accessLog := fs.Bool("access-log", getenv("HELDSWAY_ACCESS_LOG") != "0", "log every request")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file until shutdown (for benchmarks)")
	defJournal := getenv("HELDSWAY_CLICK_JOURNAL")
	if defJournal == "" {
		defJournal = defaultClickJournal
	}
	clickJournal := fs.String("click-journal", defJournal, "PostgreSQL: the file that acknowledges the redirect's clicks until they are in the database; off: commit each batch first")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	setGCPercent(getenv)
	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	slog.SetDefault(logger)

	st, err := store.Open(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := openClickJournal(ctx, st, *clickJournal, *clickJournal == defaultClickJournal, logger); err != nil {
		return err
	}
	svc := auth.NewService(st)
	svc.Logger = logger
	if err := bootstrap(ctx, svc, stdout, *asJSON); err != nil {
		return err
	}

	// The click redirect GET /r/{slug}: its link cache and group-commit writer.
	topts := track.Options{Logger: logger}
	if v := getenv("HELDSWAY_CLICK_WRITERS"); v != "" && st.Dialect.IsPostgres() {
		if topts.Writers, err = strconv.Atoi(v); err != nil || topts.Writers < 1 {
			return usageError{"HELDSWAY_CLICK_WRITERS must be a positive integer"}
		}
	}
	tr, err := track.New(ctx, st, topts)
	if err != nil {
		return err
	}
	defer tr.Close(context.Background()) // for early returns; Close is idempotent
	srv := &api.Server{Auth: svc, DB: st, Idempotency: st, Store: st, Tracker: tr, Logger: logger, AccessLog: *accessLog, Version: buildVersion()}
	if v := getenv("HELDSWAY_KEY_RATE_LIMIT"); v != "" {
		if srv.KeyRateLimit, err = strconv.Atoi(v); err != nil || srv.KeyRateLimit < 1 {
			return usageError{"HELDSWAY_KEY_RATE_LIMIT must be a positive integer"}
		}
	}
	// The token endpoint's per-IP throttle stays at the documented 120/min unless
	// an operator (or the benchmark in bench/auth.sh) raises it explicitly.
	if v := getenv("HELDSWAY_TOKEN_IP_LIMIT"); v != "" {
		if srv.TokenIPLimit, err = strconv.Atoi(v); err != nil || srv.TokenIPLimit < 1 {
			return usageError{"HELDSWAY_TOKEN_IP_LIMIT must be a positive integer"}
		}
	}
	if url := getenv("HELDSWAY_REDIS_URL"); url != "" {
		// Several nodes share one rate-limit budget per key through Redis.
		rl, rdb, err := api.NewRedisLimiter(url)
		if err != nil {
			return usageError{"HELDSWAY_REDIS_URL: " + err.Error()}
		}
		defer rdb.Close()
		srv.Limiter = rl
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	bgCtx, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	// Background work: auth bookkeeping, queued link batches, auto-approval, the
	// payout scheduler. It stops after the HTTP server has drained, so in-flight
	// requests still see it.
	var bg sync.WaitGroup
	bg.Add(4)
	go func() { defer bg.Done(); svc.Run(bgCtx, 5*time.Second) }()
	go func() { defer bg.Done(); _ = (&worker.Runner{Batches: st, Logger: logger}).Run(bgCtx) }()
	// Auto-approval's schedule is the persisted auto_approve_at, so it resumes
	// after a restart; every node may run it (approvals are conditional updates).
	go func() {
		defer bg.Done()
		_ = (&worker.AutoApprover{Orders: st, Now: st.Now, Logger: logger}).Run(bgCtx)
	}()
	// A period's run is claimed in the database, so every node may run the
	// scheduler; a run cut off by shutdown is resumed once its lease expires.
	go func() {
		defer bg.Done()
		_ = (&worker.PayoutScheduler{Runs: st, Now: st.Now, Logger: logger}).Run(bgCtx)
	}()
	bgDone := make(chan struct{})
	go func() { bg.Wait(); close(bgDone) }()

	logger.Info("listening", "addr", ln.Addr().String(), "db", st.Dialect.Name, "version", buildVersion())
	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()
	select {
	case err := <-errc:
		stopBG()
		<-bgDone
		return err
	case <-ctx.Done():
	}
	// Graceful shutdown: stop accepting, let in-flight requests finish.
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = httpSrv.Shutdown(sctx)
	// No request waits on a click any more: write what is still queued.
	err = errors.Join(err, tr.Close(sctx))
	stopBG()
	<-bgDone
	if err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}

// bootstrap creates a workspace and an admin key on first start with an empty
// database and prints the credentials once, to stdout, never to the log.
func bootstrap(ctx context.Context, svc *auth.Service, stdout io.Writer, asJSON bool) error {
	n, err := svc.Store.CountWorkspaces(ctx)
	if err != nil || n > 0 {
		return err
	}
	w, err := svc.CreateWorkspace(ctx, "Default", "basic")
	if err != nil {
		return err
	}
	k, secret, err := svc.CreateKey(ctx, auth.KeyInput{WorkspaceID: w.ID, Name: "admin (bootstrap)", Scopes: []string{"admin"}})
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(stdout, map[string]any{"workspace_id": w.ID, "api_key": k.Key, "api_secret": secret})
	}
	fmt.Fprintf(stdout, "HeldSway first start: created workspace %d (%s) and an admin API key.\n"+
		"api_key:    %s\napi_secret: %s\nStore the secret now: it is shown only once.\n", w.ID, w.Name, k.Key, secret)
	return nil
}
