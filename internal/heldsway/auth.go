package heldsway

import (
	"context"
	"time"
)

// Plans a workspace can be on.
var Plans = []string{"nano", "basic", "standard", "custom"}

// Workspace is a tenant: one business running affiliate programs. Nothing crosses
// workspaces.
type Workspace struct {
	ID        int64
	Name      string
	Slug      string
	Plan      string
	Active    bool
	CreatedAt time.Time
}

// API key kinds.
const (
	KeyKindSecret      = "secret"      // hs_key_ + hs_secret_, exchanged for a token
	KeyKindPublishable = "publishable" // as_…, safe in browsers, bound to origins
)

// APIKey is a programmatic credential. Its secret is never stored: only the SHA-256
// digest of it, and during a rotation's grace period the digest of the previous one.
type APIKey struct {
	ID          int64
	WorkspaceID int64
	Name        string
	Kind        string
	// Key is the public identifier, "hs_key_…".
	Key        string
	SecretHash []byte
	// PrevSecretHash stays valid until PrevSecretExpiresAt, so clients can rotate
	// without downtime.
	PrevSecretHash      []byte
	PrevSecretExpiresAt *time.Time
	Scopes              []string
	// RateLimit is requests per minute; 0 means the server default.
	RateLimit      int
	AllowedOrigins []string
	ExpiresAt      *time.Time
	RevokedAt      *time.Time
	LastUsedAt     *time.Time
	CreatedAt      time.Time
}

// Status is "active", "revoked" or "expired" at time now.
func (k *APIKey) Status(now time.Time) string {
	switch {
	case k.RevokedAt != nil:
		return "revoked"
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return "expired"
	}
	return "active"
}

// AccessToken is an issued bearer token, stored only as a digest.
type AccessToken struct {
	Hash        []byte
	WorkspaceID int64
	APIKeyID    int64
	Scopes      []string
	ExpiresAt   time.Time
	CreatedAt   time.Time
}

// Principal is who a request acts as: resolved from a bearer token on every call.
type Principal struct {
	Workspace Workspace
	Key       APIKey
	Scopes    []string
	ExpiresAt time.Time
}

// TokenGrant is what a token lookup yields: the token and the current state of its
// key and workspace, read together so revocation and deactivation are seen at once.
type TokenGrant struct {
	Token     AccessToken
	Key       APIKey
	Workspace Workspace
}

// AuthStore persists workspaces, keys and tokens. Errors: ENOTFOUND for unknown ids
// and keys; ECONFLICT for a duplicate workspace slug. Called by the auth service and
// the CLI only.
type AuthStore interface {
	CreateWorkspace(ctx context.Context, w *Workspace) error
	FindWorkspace(ctx context.Context, id int64) (*Workspace, error)
	SetWorkspaceActive(ctx context.Context, id int64, active bool) error
	CountWorkspaces(ctx context.Context) (int, error)

	CreateAPIKey(ctx context.Context, k *APIKey) error
	FindAPIKeyByKey(ctx context.Context, key string) (*APIKey, *Workspace, error)
	FindAPIKey(ctx context.Context, workspaceID, id int64) (*APIKey, error)
	// FindAPIKeyByID finds a key in any workspace; for the operator CLI only.
	FindAPIKeyByID(ctx context.Context, id int64) (*APIKey, error)
	ListAPIKeys(ctx context.Context, workspaceID, before int64, limit int) ([]*APIKey, error)
	RevokeAPIKey(ctx context.Context, workspaceID, id int64, at time.Time) error
	RotateAPIKeySecret(ctx context.Context, workspaceID, id int64, newHash []byte, prevExpiresAt time.Time) error
	TouchAPIKeys(ctx context.Context, lastUsed map[int64]time.Time) error

	CreateAccessToken(ctx context.Context, t *AccessToken) error
	FindTokenGrant(ctx context.Context, hash []byte) (*TokenGrant, error)
	DeleteExpiredTokens(ctx context.Context, before time.Time) (int64, error)

	Ping(ctx context.Context) error
}
