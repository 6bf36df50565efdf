// Package auth issues and verifies credentials: API keys and their secrets, the
// token exchange, and bearer-token authentication with a short-lived cache.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// TokenTTL is the documented lifetime of an access token (expires_in: 14400).
const TokenTTL = 4 * time.Hour

// DefaultRotationGrace is how long a rotated-out secret keeps working.
const DefaultRotationGrace = 24 * time.Hour

// DefaultCacheTTL bounds how long a node trusts a cached token check. Changes made
// on another node (revocation, deactivation) take effect within this time; the
// documented bound is 5 s.
const DefaultCacheTTL = 2 * time.Second

// Key and secret prefixes, as in the documentation's examples.
const (
	KeyPrefix         = "hs_key_"
	SecretPrefix      = "hs_secret_"
	PublishablePrefix = "as_"
)

// Messages of the token exchange, exactly as documented.
const (
	MsgInvalidCredentials = "Invalid API credentials."
	MsgKeyInactive        = "API key is inactive or expired."
	MsgWorkspaceInactive  = "The business associated with this API key is inactive."
	MsgInvalidToken       = "Invalid or missing access token."
)

// Service implements credential handling over an AuthStore.
type Service struct {
	Store heldsway.AuthStore
	// Now and Rand are injected so tests control time and randomness.
	Now      func() time.Time
	Rand     io.Reader
	CacheTTL time.Duration
	Logger   *slog.Logger

	mu    sync.RWMutex
	cache map[string]cacheEntry // by token digest

	usedMu sync.Mutex
	used   map[int64]time.Time // key id → last use, flushed in batches
}

type cacheEntry struct {
	p         *heldsway.Principal
	checkedAt time.Time
}

// NewService returns a Service with the real clock and crypto/rand.
func NewService(store heldsway.AuthStore) *Service {
	return &Service{
		Store:    store,
		Now:      func() time.Time { return time.Now().UTC() },
		Rand:     rand.Reader,
		CacheTTL: DefaultCacheTTL,
		Logger:   slog.Default(),
		cache:    map[string]cacheEntry{},
		used:     map[int64]time.Time{},
	}
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomString returns n characters drawn uniformly from alphabet (at most 256
// symbols), by rejection sampling over bytes from s.Rand.
func (s *Service) randomString(n int, alphabet string) (string, error) {
	limit := 256 - 256%len(alphabet) // bytes at or above limit would bias the draw
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/2)
	for len(out) < n {
		if _, err := io.ReadFull(s.Rand, buf); err != nil {
			return "", err
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}

// Digest is the stored form of a secret or token. SHA-256 suffices: both are
// ≥256-bit random strings, so a slow password hash would only add latency.
func Digest(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

var slugRE = regexp.MustCompile(`[^a-z0-9]+`)

// Slugify turns a name into a URL-safe workspace slug.
func Slugify(name string) string {
	s := strings.Trim(slugRE.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(s) > 48 {
		s = strings.Trim(s[:48], "-")
	}
	if s == "" {
		s = "workspace"
	}
	return s
}

// CreateWorkspace validates and creates a workspace. The slug is derived from the
// name, with a random suffix if it is taken.
func (s *Service) CreateWorkspace(ctx context.Context, name, plan string) (*heldsway.Workspace, error) {
	fe := heldsway.FieldErrors{}
	name = strings.TrimSpace(name)
	if name == "" {
		fe.Add("name", "The name field is required.")
	} else if utf8.RuneCountInString(name) > 200 {
		fe.Add("name", "The name field must not be greater than 200 characters.")
	}
	if plan == "" {
		plan = "basic"
	}
	if !contains(heldsway.Plans, plan) {
		fe.Add("plan", "The selected plan is invalid. Allowed: "+strings.Join(heldsway.Plans, ", ")+".")
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	w := &heldsway.Workspace{Name: name, Slug: Slugify(name), Plan: plan, Active: true}
	for attempt := 0; ; attempt++ {
		err := s.Store.CreateWorkspace(ctx, w)
		if heldsway.ErrorCode(err) != heldsway.ECONFLICT || attempt == 5 {
			return w, err
		}
		suffix, rerr := s.randomString(6, "abcdefghijklmnopqrstuvwxyz0123456789")
		if rerr != nil {
			return nil, rerr
		}
		w.Slug = Slugify(name) + "-" + suffix
	}
}

// SetWorkspaceActive activates or deactivates a workspace; on this node its
// tokens are re-checked at once.
func (s *Service) SetWorkspaceActive(ctx context.Context, id int64, active bool) error {
	if err := s.Store.SetWorkspaceActive(ctx, id, active); err != nil {
		return err
	}
	s.invalidate()
	return nil
}

// KeyInput is what creating a key takes.
type KeyInput struct {
	WorkspaceID    int64
	Name           string
	Scopes         []string
	ExpiresAt      *time.Time
	RateLimit      int
	Kind           string
	AllowedOrigins []string
}

// MaxRateLimit bounds a key's per-minute budget.
const MaxRateLimit = 1_000_000

// CreateKey validates in and creates a key. The secret is returned once and only
// its digest is stored. Publishable keys have no secret.
func (s *Service) CreateKey(ctx context.Context, in KeyInput) (*heldsway.APIKey, string, error) {
	fe := heldsway.FieldErrors{}
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" {
		fe.Add("name", "The name field is required.")
	} else if utf8.RuneCountInString(in.Name) > 100 {
		fe.Add("name", "The name field must not be greater than 100 characters.")
	}
	if in.Kind == "" {
		in.Kind = heldsway.KeyKindSecret
	}
	scopes, bad := heldsway.ExpandScopes(in.Scopes)
	if len(in.Scopes) == 0 {
		fe.Add("scopes", "The scopes field is required.")
	}
	for _, b := range bad {
		fe.Add("scopes", "The scope \""+b+"\" is invalid.")
	}
	if in.ExpiresAt != nil && !in.ExpiresAt.After(s.Now()) {
		fe.Add("expires_at", "The expires at field must be a date in the future.")
	}
	if in.RateLimit < 0 || in.RateLimit > MaxRateLimit {
		fe.Add("rate_limit", "The rate limit field must be between 1 and 1000000.")
	}
	origins := heldsway.NormalizeOrigins(fe, in.AllowedOrigins) // compared exactly with a browser's Origin
	if err := fe.Err(); err != nil {
		return nil, "", err
	}
	k := &heldsway.APIKey{WorkspaceID: in.WorkspaceID, Name: in.Name, Kind: in.Kind, Scopes: scopes,
		RateLimit: in.RateLimit, ExpiresAt: in.ExpiresAt, AllowedOrigins: origins}
	var secret string
	var err error
	if in.Kind == heldsway.KeyKindPublishable {
		if k.Key, err = s.randomString(32, alnum); err != nil {
			return nil, "", err
		}
		k.Key = PublishablePrefix + k.Key
	} else {
		if k.Key, err = s.randomString(24, alnum); err != nil {
			return nil, "", err
		}
		k.Key = KeyPrefix + k.Key
		if secret, err = s.newSecret(); err != nil {
			return nil, "", err
		}
		k.SecretHash = Digest(secret)
	}
	if err := s.Store.CreateAPIKey(ctx, k); err != nil {
		return nil, "", err
	}
	return k, secret, nil
}

// newSecret returns hs_secret_ plus 48 base62 characters (285 bits).
func (s *Service) newSecret() (string, error) {
	r, err := s.randomString(48, alnum)
	return SecretPrefix + r, err
}

// RevokeKey revokes a key of a workspace; its tokens stop at once on this node.
func (s *Service) RevokeKey(ctx context.Context, workspaceID, id int64) error {
	if err := s.Store.RevokeAPIKey(ctx, workspaceID, id, s.Now()); err != nil {
		return err
	}
	s.invalidate()
	return nil
}

// RotateKey issues a new secret for a key. The old secret keeps working for grace
// (DefaultRotationGrace if zero), so clients can switch without downtime.
func (s *Service) RotateKey(ctx context.Context, workspaceID, id int64, grace time.Duration) (*heldsway.APIKey, string, error) {
	k, err := s.Store.FindAPIKey(ctx, workspaceID, id)
	if err != nil {
		return nil, "", err
	}
	if k.Kind != heldsway.KeyKindSecret {
		return nil, "", heldsway.Errorf(heldsway.ECONFLICT, "Publishable keys have no secret to rotate.")
	}
	if k.Status(s.Now()) != "active" {
		return nil, "", heldsway.Errorf(heldsway.ECONFLICT, "Only an active API key can be rotated.")
	}
	if grace == 0 {
		grace = DefaultRotationGrace
	}
	secret, err := s.newSecret()
	if err != nil {
		return nil, "", err
	}
	if err := s.Store.RotateAPIKeySecret(ctx, workspaceID, id, Digest(secret), s.Now().Add(grace)); err != nil {
		return nil, "", err
	}
	k, err = s.Store.FindAPIKey(ctx, workspaceID, id)
	return k, secret, err
}

// dummyDigest is compared against when a key is unknown, so an unknown key and a
// wrong secret take the same path.
var dummyDigest = Digest("hs_secret_dummy")

// IssueToken exchanges a key and secret for a bearer token. Errors, exactly as
// documented: EUNAUTHORIZED MsgInvalidCredentials for an unknown key or wrong
// secret; EUNAUTHORIZED MsgKeyInactive for a revoked or expired key; EFORBIDDEN
// MsgWorkspaceInactive for a deactivated workspace; EUNAVAILABLE if the store is down.
func (s *Service) IssueToken(ctx context.Context, apiKey, apiSecret string) (string, *heldsway.AccessToken, error) {
	now := s.Now()
	k, w, err := s.Store.FindAPIKeyByKey(ctx, apiKey)
	if err != nil && heldsway.ErrorCode(err) != heldsway.ENOTFOUND {
		return "", nil, err
	}
	got := Digest(apiSecret)
	want, prev := dummyDigest, dummyDigest
	if k != nil && k.Kind == heldsway.KeyKindSecret {
		want = k.SecretHash
		if k.PrevSecretHash != nil && k.PrevSecretExpiresAt != nil && now.Before(*k.PrevSecretExpiresAt) {
			prev = k.PrevSecretHash
		}
	}
	// Both comparisons always run, so timing does not tell which one matched.
	okCur := subtle.ConstantTimeCompare(got, want)
	okPrev := subtle.ConstantTimeCompare(got, prev)
	if k == nil || k.Kind != heldsway.KeyKindSecret || okCur|okPrev != 1 {
		return "", nil, heldsway.Errorf(heldsway.EUNAUTHORIZED, MsgInvalidCredentials)
	}
	if k.Status(now) != "active" {
		return "", nil, heldsway.Errorf(heldsway.EUNAUTHORIZED, MsgKeyInactive)
	}
	if !w.Active {
		return "", nil, heldsway.Errorf(heldsway.EFORBIDDEN, MsgWorkspaceInactive)
	}
	token, err := s.randomString(64, alnum) // 64 × log2(62) ≈ 381 bits
	if err != nil {
		return "", nil, err
	}
	exp := now.Add(TokenTTL)
	if k.ExpiresAt != nil && k.ExpiresAt.Before(exp) {
		exp = *k.ExpiresAt // a token never outlives its key
	}
	t := &heldsway.AccessToken{Hash: Digest(token), WorkspaceID: w.ID, APIKeyID: k.ID, Scopes: k.Scopes,
		ExpiresAt: exp, CreatedAt: now}
	if err := s.Store.CreateAccessToken(ctx, t); err != nil {
		return "", nil, err
	}
	s.markUsed(k.ID, now)
	return token, t, nil
}

// Authenticate resolves a bearer token to its principal. EUNAUTHORIZED for an
// unknown, expired or revoked token; EFORBIDDEN MsgWorkspaceInactive for a
// deactivated workspace; EUNAVAILABLE if the store is down.
func (s *Service) Authenticate(ctx context.Context, token string) (*heldsway.Principal, error) {
	if token == "" || len(token) > 256 {
		return nil, heldsway.Errorf(heldsway.EUNAUTHORIZED, MsgInvalidToken)
	}
	now := s.Now()
	h := Digest(token)
	key := string(h)
	s.mu.RLock()
	e, ok := s.cache[key]
	s.mu.RUnlock()
	if !ok || now.Sub(e.checkedAt) >= s.CacheTTL || now.Before(e.checkedAt) {
		g, err := s.Store.FindTokenGrant(ctx, h)
		if heldsway.ErrorCode(err) == heldsway.ENOTFOUND {
			return nil, heldsway.Errorf(heldsway.EUNAUTHORIZED, MsgInvalidToken)
		} else if err != nil {
			return nil, err
		}
		e = cacheEntry{p: &heldsway.Principal{Workspace: g.Workspace, Key: g.Key, Scopes: g.Token.Scopes,
			ExpiresAt: g.Token.ExpiresAt}, checkedAt: now}
		s.mu.Lock()
		if s.cache == nil {
			s.cache = map[string]cacheEntry{}
		}
		s.cache[key] = e
		s.mu.Unlock()
	}
	p := e.p
	switch {
	case !now.Before(p.ExpiresAt):
		return nil, heldsway.Errorf(heldsway.EUNAUTHORIZED, MsgInvalidToken)
	case p.Key.Status(now) != "active":
		return nil, heldsway.Errorf(heldsway.EUNAUTHORIZED, MsgKeyInactive)
	case !p.Workspace.Active:
		return nil, heldsway.Errorf(heldsway.EFORBIDDEN, MsgWorkspaceInactive)
	}
	s.markUsed(p.Key.ID, now)
	return p, nil
}

// invalidate drops every cached token check, so a local change is seen at once.
// Revocations are rare; clearing all is simpler than indexing by key.
func (s *Service) invalidate() {
	s.mu.Lock()
	s.cache = map[string]cacheEntry{}
	s.mu.Unlock()
}

func (s *Service) markUsed(id int64, at time.Time) {
	s.usedMu.Lock()
	if s.used == nil {
		s.used = map[int64]time.Time{}
	}
	s.used[id] = at
	s.usedMu.Unlock()
}

// Flush writes batched last-used times and prunes the cache and expired tokens.
func (s *Service) Flush(ctx context.Context) error {
	s.usedMu.Lock()
	used := s.used
	s.used = map[int64]time.Time{}
	s.usedMu.Unlock()
	now := s.Now()
	s.mu.Lock()
	for k, e := range s.cache {
		if now.Sub(e.checkedAt) >= s.CacheTTL {
			delete(s.cache, k)
		}
	}
	s.mu.Unlock()
	_, derr := s.Store.DeleteExpiredTokens(ctx, now.Add(-time.Hour))
	return errors.Join(s.Store.TouchAPIKeys(ctx, used), derr)
}

// Run flushes every interval until ctx ends, then once more.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.Flush(fctx); err != nil {
				s.Logger.Error("auth flush", "err", err)
			}
			return
		case <-t.C:
			if err := s.Flush(ctx); err != nil {
				s.Logger.Warn("auth flush", "err", err)
			}
		}
	}
}

// MaskKey shows a key's prefix and last four characters only.
func MaskKey(key string) string {
	prefix := KeyPrefix
	if strings.HasPrefix(key, PublishablePrefix) {
		prefix = PublishablePrefix
	}
	if len(key) <= len(prefix)+4 {
		return prefix + "****"
	}
	return prefix + strings.Repeat("*", 8) + key[len(key)-4:]
}

func contains(l []string, v string) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}
