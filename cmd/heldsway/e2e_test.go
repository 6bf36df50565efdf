package main_test

// The end-to-end test: the real binary, driven the way a new user drives it.
// It builds cmd/heldsway, starts `heldsway serve`, creates a workspace and a key
// with the CLI, exchanges the key for a token, calls /v1/me, and stops the server
// with SIGTERM while a request is in flight. It runs on SQLite always and on
// PostgreSQL when HELDSWAY_TEST_DATABASE_URL is set.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/store/storetest"
)

const e2eVersion = "e2e-test"

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	for _, engine := range storetest.Engines() {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			testEndToEnd(t, bin, engine, storetest.DSN(t, engine))
		})
	}
}

// buildBinary builds cmd/heldsway (the package this test is in) into a temporary
// directory, with the version stamped the way a release build stamps it.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "heldsway")
	cmd := exec.Command("go", "build", "-o", bin, "-ldflags", "-X main.version="+e2eVersion, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func testEndToEnd(t *testing.T, bin, engine, db string) {
	srv := startServer(t, bin, db)
	if want := fmt.Sprintf(`"db":%q`, engine); !strings.Contains(srv.stderr.String(), want) {
		t.Fatalf("server log lacks %s:\n%s", want, srv.stderr.String())
	}

	// /healthz answers with the version the binary was built with.
	var health struct {
		Success bool `json:"success"`
		Data    struct {
			Status  string `json:"status"`
			Version string `json:"version"`
		} `json:"data"`
	}
	if code := srv.call(t, http.MethodGet, "/healthz", "", nil, &health); code != http.StatusOK {
		t.Fatalf("GET /healthz: status %d", code)
	}
	if !health.Success || health.Data.Status != "ok" || health.Data.Version != e2eVersion {
		t.Errorf("GET /healthz = %+v, want success, status ok, version %s", health, e2eVersion)
	}

	// The operator creates a workspace and a read-only key with the CLI, while
	// the server runs on the same database.
	var ws struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
		Slug string `json:"slug"`
		Plan string `json:"plan"`
	}
	cli(t, bin, db, &ws, "workspace", "create", "--name", "Acme Outfitters", "--json")
	if ws.ID <= 0 || ws.Name != "Acme Outfitters" || ws.Plan != "basic" || ws.Slug == "" {
		t.Fatalf("workspace create --json = %+v", ws)
	}
	var key struct {
		ID        int64    `json:"id"`
		APIKey    string   `json:"api_key"`
		APISecret string   `json:"api_secret"`
		Scopes    []string `json:"scopes"`
	}
	cli(t, bin, db, &key, "key", "create", "--workspace", fmt.Sprint(ws.ID), "--name", "reporting", "--scopes", "read-only", "--json")
	if key.ID <= 0 || !strings.HasPrefix(key.APIKey, "hs_key_") || !strings.HasPrefix(key.APISecret, "hs_secret_") {
		t.Fatalf("key create --json = %+v", key)
	}
	// The preset expands to namespaced read scopes, and to no write scope.
	if !slices.Contains(key.Scopes, "affiliates:read") || !slices.Contains(key.Scopes, "orders:read") {
		t.Errorf("read-only key scopes = %v, want affiliates:read and orders:read among them", key.Scopes)
	}
	for _, s := range key.Scopes {
		if strings.HasSuffix(s, ":write") || s == "admin" {
			t.Errorf("read-only key has scope %q", s)
		}
	}

	// Exchange the key for a token.
	creds := fmt.Sprintf(`{"api_key":%q,"api_secret":%q}`, key.APIKey, key.APISecret)
	var tok struct {
		Success bool   `json:"success"`
		Message string `json:"message"`
		Data    struct {
			AccessToken string   `json:"access_token"`
			TokenType   string   `json:"token_type"`
			ExpiresIn   int      `json:"expires_in"`
			Scopes      []string `json:"scopes"`
		} `json:"data"`
	}
	if code := srv.call(t, http.MethodPost, "/v1/auth/token", "", strings.NewReader(creds), &tok); code != http.StatusOK {
		t.Fatalf("POST /v1/auth/token: status %d", code)
	}
	if !tok.Success || tok.Message != "Token issued successfully." || tok.Data.TokenType != "Bearer" ||
		tok.Data.ExpiresIn != 14400 || !slices.Equal(tok.Data.Scopes, key.Scopes) {
		t.Errorf("token response = %+v", tok)
	}
	// Opaque, alphanumeric, at least 256 bits: 43 base-62 characters or more.
	if !regexp.MustCompile(`^[A-Za-z0-9]{43,}$`).MatchString(tok.Data.AccessToken) {
		t.Errorf("access_token %q is not a long alphanumeric string", tok.Data.AccessToken)
	}
	bearer := "Bearer " + tok.Data.AccessToken

	// GET /v1/me, on both route prefixes: {"success":true,"data":{"workspace","plan","key":{id,name,scopes,expires_at}}}.
	for _, path := range []string{"/v1/me", "/api/v1/me"} {
		var me struct {
			Success bool `json:"success"`
			Data    struct {
				Workspace string `json:"workspace"`
				Plan      string `json:"plan"`
				Key       struct {
					ID        int64           `json:"id"`
					Name      string          `json:"name"`
					Scopes    []string        `json:"scopes"`
					ExpiresAt json.RawMessage `json:"expires_at"`
				} `json:"key"`
			} `json:"data"`
		}
		if code := srv.call(t, http.MethodGet, path, bearer, nil, &me); code != http.StatusOK {
			t.Fatalf("GET %s: status %d", path, code)
		}
		k := me.Data.Key
		if !me.Success || me.Data.Workspace != ws.Name || me.Data.Plan != ws.Plan ||
			k.ID != key.ID || k.Name != "reporting" || !slices.Equal(k.Scopes, key.Scopes) || string(k.ExpiresAt) != "null" {
			t.Errorf("GET %s = %+v (expires_at %s)", path, me, k.ExpiresAt)
		}
	}
	// Without a token, and with a scope the key lacks.
	var e errEnvelope
	if code := srv.call(t, http.MethodGet, "/v1/me", "", nil, &e); code != http.StatusUnauthorized || e.Success || e.Error.Code != "UNAUTHORIZED" {
		t.Errorf("GET /v1/me without a token: %d %+v, want 401 UNAUTHORIZED", code, e)
	}
	e = errEnvelope{}
	if code := srv.call(t, http.MethodGet, "/v1/api-keys", bearer, nil, &e); code != http.StatusForbidden ||
		e.Error.Code != "FORBIDDEN" || e.Error.Message != "Insufficient scope." {
		t.Errorf("GET /v1/api-keys with a read-only token: %d %+v, want 403 FORBIDDEN Insufficient scope.", code, e)
	}

	// Graceful shutdown: a slow client is half-way through uploading its token
	// request when SIGTERM arrives. The server stops accepting connections, lets
	// that request finish, answers it, and exits 0.
	conn, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	half := len(creds) / 2
	fmt.Fprintf(conn, "POST /v1/auth/token HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		srv.addr, len(creds), creds[:half])
	time.Sleep(300 * time.Millisecond) // the server has read the headers and waits for the body
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New connections are refused once shutdown has begun.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", srv.addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still accepts connections 5 s after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := io.WriteString(conn, creds[half:]); err != nil {
		t.Fatalf("sending the rest of the in-flight request: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request got no response: %v\nserver log:\n%s", err, srv.stderr.String())
	}
	var late struct {
		Success bool `json:"success"`
		Data    struct {
			AccessToken string `json:"access_token"`
		} `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&late)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || !late.Success || late.Data.AccessToken == "" {
		t.Errorf("in-flight request during shutdown: status %d, %+v, decode error %v", resp.StatusCode, late, err)
	}
	if err := srv.wait(t, 30*time.Second); err != nil {
		t.Fatalf("heldsway serve after SIGTERM: %v (want exit status 0)\nserver log:\n%s", err, srv.stderr.String())
	}
	logs := srv.stderr.String()
	for _, msg := range []string{`"msg":"shutting down"`, `"msg":"stopped"`} {
		if !strings.Contains(logs, msg) {
			t.Errorf("server log lacks %s:\n%s", msg, logs)
		}
	}

	// The first start printed the bootstrap admin credentials once, on stdout;
	// no secret or token ever reaches the log.
	var boot struct {
		WorkspaceID int64  `json:"workspace_id"`
		APIKey      string `json:"api_key"`
		APISecret   string `json:"api_secret"`
	}
	if err := json.Unmarshal(srv.stdout.Bytes(), &boot); err != nil || boot.WorkspaceID <= 0 ||
		!strings.HasPrefix(boot.APIKey, "hs_key_") || !strings.HasPrefix(boot.APISecret, "hs_secret_") {
		t.Errorf("bootstrap output %q (%v), want workspace_id, api_key and api_secret", srv.stdout.String(), err)
	}
	for _, secret := range []string{boot.APISecret, key.APISecret, tok.Data.AccessToken, late.Data.AccessToken} {
		if secret != "" && strings.Contains(logs, secret) {
			t.Errorf("server log contains a secret or token")
		}
	}
}

type errEnvelope struct {
	Success bool `json:"success"`
	Error   struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// server is a running `heldsway serve`.
type server struct {
	cmd    *exec.Cmd
	addr   string
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan error
}

// startServer runs `heldsway serve` on a port the kernel picks (--addr
// 127.0.0.1:0, so no other test can take it in between), reads the address from
// the "listening" log line and waits until /healthz answers. The server is killed
// when t ends if it is still running.
func startServer(t *testing.T, bin, db string) *server {
	t.Helper()
	s := &server{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--db", db, "--json")
	s.cmd.Dir = t.TempDir()
	s.cmd.Env = cleanEnv()
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	var lastErr error
	for {
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("heldsway serve exited before it was ready: %v\n%s", err, s.stderr.String())
		default:
		}
		if s.addr == "" {
			s.addr = listeningAddr(s.stderr.String())
		}
		if s.addr != "" {
			resp, err := http.Get("http://" + s.addr + "/healthz")
			if lastErr = err; err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return s
				}
				lastErr = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz not ready after 30 s (address %q, last error %v)\n%s", s.addr, lastErr, s.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// listeningAddr finds the address in the server's JSON log line
// {"msg":"listening","addr":…}, or returns "".
func listeningAddr(log string) string {
	for _, line := range strings.Split(log, "\n") {
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
			return rec.Addr
		}
	}
	return ""
}

// wait waits for the server to exit and returns its exit error.
func (s *server) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(timeout):
		return errors.New("did not exit in time")
	}
}

// call sends a request with an optional bearer and JSON body, decodes the JSON
// answer into out and returns the status. Every response must carry X-Request-Id.
func (s *server) call(t *testing.T, method, path, bearer string, body io.Reader, out any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+s.addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("%s %s: no X-Request-Id", method, path)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s %s: status %d, body is not JSON: %v\n%s", method, path, resp.StatusCode, err, b)
	}
	return resp.StatusCode
}

// cli runs one heldsway command against db and decodes its JSON output into out.
func cli(t *testing.T, bin, db string, out any, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, append(args, "--db", db)...)
	cmd.Dir = t.TempDir()
	cmd.Env = cleanEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("heldsway %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("heldsway %s printed no JSON: %v\n%s", strings.Join(args, " "), err, stdout.String())
	}
}

// cleanEnv is this process's environment without HeldSway's own settings, so the
// flags the test passes are the whole configuration.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HELDSWAY_") {
			env = append(env, kv)
		}
	}
	return env
}

// syncBuffer is a bytes.Buffer safe for the writer goroutine exec starts and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.buf.Bytes())
}
