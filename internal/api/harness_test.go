package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/api"
	"github.com/heldsway/heldsway/internal/auth"
	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// clock is a settable clock shared by the store and the services of one env.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// env is one server on one engine with one workspace, and helpers to call it.
type env struct {
	t      *testing.T
	engine string
	store  *store.Store
	auth   *auth.Service
	server *api.Server
	http   *httptest.Server
	clock  *clock
	ws     *heldsway.Workspace
}

// eachEnv runs fn on every engine, each with a fresh env.
func eachEnv(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, engine := range storetest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			fn(t, newEnv(t, engine))
		})
	}
}

func newEnv(t *testing.T, engine string) *env {
	t.Helper()
	return newEnvOn(t, engine, storetest.Open(t, engine))
}

// newEnvOn builds a server over an existing store: two envs over one store are
// two nodes sharing a database.
func newEnvOn(t *testing.T, engine string, st *store.Store) *env {
	t.Helper()
	c := &clock{now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	st.Now = c.Now
	svc := auth.NewService(st)
	svc.Now = c.Now
	srv := &api.Server{Auth: svc, DB: st, Idempotency: st, Store: st, Version: "test"}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	e := &env{t: t, engine: engine, store: st, auth: svc, server: srv, http: hs, clock: c}
	ws, err := svc.CreateWorkspace(context.Background(), "Acme "+engine, "basic")
	if err != nil {
		t.Fatalf("create workspace: %v", err)
	}
	e.ws = ws
	return e
}

// newKey creates a key with scopes in workspace ws (the env's when nil).
func (e *env) newKey(ws *heldsway.Workspace, in auth.KeyInput) (*heldsway.APIKey, string) {
	e.t.Helper()
	if ws == nil {
		ws = e.ws
	}
	in.WorkspaceID = ws.ID
	if in.Name == "" {
		in.Name = "test key"
	}
	k, secret, err := e.auth.CreateKey(context.Background(), in)
	if err != nil {
		e.t.Fatalf("create key: %v", err)
	}
	return k, secret
}

// token creates a key with scopes and exchanges it for an access token.
func (e *env) token(scopes ...string) string {
	e.t.Helper()
	k, secret := e.newKey(nil, auth.KeyInput{Scopes: scopes})
	return e.exchange(k.Key, secret)
}

func (e *env) exchange(key, secret string) string {
	e.t.Helper()
	r := e.do("POST", "/v1/auth/token", "", map[string]string{"api_key": key, "api_secret": secret})
	if r.status != 200 {
		e.t.Fatalf("token exchange: %d %s", r.status, r.raw)
	}
	return r.data()["access_token"].(string)
}

// resp is a decoded response.
type resp struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func (r *resp) data() map[string]any {
	d, _ := r.body["data"].(map[string]any)
	return d
}

func (r *resp) errCode() string {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (r *resp) errMessage() string {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["message"].(string)
	return c
}

// details returns the validation messages of field.
func (r *resp) details(field string) []string {
	e, _ := r.body["error"].(map[string]any)
	d, _ := e["details"].(map[string]any)
	l, _ := d[field].([]any)
	out := []string{}
	for _, m := range l {
		out = append(out, m.(string))
	}
	return out
}

// do sends a request. body may be nil, a string (sent raw) or a value (JSON).
// Extra headers come in name, value pairs.
func (e *env) do(method, path, token string, body any, headers ...string) *resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.http.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := &resp{status: res.StatusCode, header: res.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// expectError asserts status, code and (if non-empty) message.
func (r *resp) expectError(t *testing.T, status int, code, message string) {
	t.Helper()
	if r.status != status || r.errCode() != code || (message != "" && r.errMessage() != message) {
		t.Fatalf("want %d %s %q, got %d %s", status, code, message, r.status, r.raw)
	}
	if r.body["success"] != false {
		t.Fatalf("error envelope without success:false: %s", r.raw)
	}
}
