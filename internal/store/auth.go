package store

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

var _ heldsway.AuthStore = (*Store)(nil)

// CreateWorkspace inserts w with its default program and settings row and sets
// its id. ECONFLICT if the slug is taken.
func (s *Store) CreateWorkspace(ctx context.Context, w *heldsway.Workspace) error {
	now := s.Now()
	w.CreatedAt = now
	return s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `
			INSERT INTO workspaces (name, slug, plan, active, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $5) RETURNING id`,
			w.Name, w.Slug, w.Plan, w.Active, ts(now)).Scan(&w.ID)
		if isUniqueViolation(err) {
			return heldsway.Errorf(heldsway.ECONFLICT, "A workspace with slug %q already exists.", w.Slug)
		} else if err != nil {
			return err
		}
		return s.createWorkspaceDefaults(ctx, tx, w, now)
	})
}

const workspaceCols = `w.id, w.name, w.slug, w.plan, w.active, w.created_at`

func scanWorkspace(sc interface{ Scan(...any) error }, w *heldsway.Workspace, extra ...any) error {
	var created int64
	if err := sc.Scan(append([]any{&w.ID, &w.Name, &w.Slug, &w.Plan, &w.Active, &created}, extra...)...); err != nil {
		return err
	}
	w.CreatedAt = fromTS(created)
	return nil
}

// FindWorkspace returns a workspace by id; ENOTFOUND if there is none.
func (s *Store) FindWorkspace(ctx context.Context, id int64) (*heldsway.Workspace, error) {
	var w heldsway.Workspace
	err := scanWorkspace(s.r.QueryRowContext(ctx, `SELECT `+workspaceCols+` FROM workspaces w WHERE w.id = $1`, id), &w)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, heldsway.NotFound("Workspace")
	}
	return &w, unavailable(err)
}

// SetWorkspaceActive activates or deactivates a workspace. Its tokens follow at
// once, because every token lookup reads the workspace's state.
func (s *Store) SetWorkspaceActive(ctx context.Context, id int64, active bool) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE workspaces SET active = $1, updated_at = $2 WHERE id = $3`, active, ts(s.Now()), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return heldsway.NotFound("Workspace")
		}
		return nil
	})
}

// CountWorkspaces returns the number of workspaces, to detect a first start.
func (s *Store) CountWorkspaces(ctx context.Context) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM workspaces`).Scan(&n)
	return n, unavailable(err)
}

// CreateAPIKey inserts k and sets its id and creation time.
func (s *Store) CreateAPIKey(ctx context.Context, k *heldsway.APIKey) error {
	k.CreatedAt = s.Now()
	return s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `
			INSERT INTO api_keys (workspace_id, name, kind, key, secret_hash, scopes, rate_limit,
				allowed_origins, expires_at, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
			k.WorkspaceID, k.Name, k.Kind, k.Key, k.SecretHash, joinList(k.Scopes), k.RateLimit,
			joinList(k.AllowedOrigins), nullTS(k.ExpiresAt), ts(k.CreatedAt)).Scan(&k.ID)
		if isUniqueViolation(err) {
			return heldsway.Errorf(heldsway.ECONFLICT, "API key already exists.")
		} else if err != nil {
			return err
		}
		return s.audit(ctx, tx, k.WorkspaceID, "api_key.create", "api_key", k.ID, nil, keyAudit(k))
	})
}

// keyAudit is what an audit entry shows of a key: never its secret or digest.
func keyAudit(k *heldsway.APIKey) map[string]any {
	return map[string]any{"name": k.Name, "kind": k.Kind, "scopes": k.Scopes, "rate_limit": k.RateLimit,
		"allowed_origins": k.AllowedOrigins, "expires_at": k.ExpiresAt}
}

const apiKeyCols = `k.id, k.workspace_id, k.name, k.kind, k.key, k.secret_hash, k.prev_secret_hash,
	k.prev_secret_expires_at, k.scopes, k.rate_limit, k.allowed_origins, k.expires_at,
	k.revoked_at, k.last_used_at, k.created_at`

func scanAPIKey(sc interface{ Scan(...any) error }, k *heldsway.APIKey, extra ...any) error {
	var prevExp, exp, revoked, used sql.NullInt64
	var scopes, origins string
	var created int64
	dest := []any{&k.ID, &k.WorkspaceID, &k.Name, &k.Kind, &k.Key, &k.SecretHash, &k.PrevSecretHash,
		&prevExp, &scopes, &k.RateLimit, &origins, &exp, &revoked, &used, &created}
	if err := sc.Scan(append(dest, extra...)...); err != nil {
		return err
	}
	k.PrevSecretExpiresAt, k.ExpiresAt = fromNullTS(prevExp), fromNullTS(exp)
	k.RevokedAt, k.LastUsedAt = fromNullTS(revoked), fromNullTS(used)
	k.Scopes, k.AllowedOrigins = splitList(scopes), splitList(origins)
	k.CreatedAt = fromTS(created)
	return nil
}

// FindAPIKeyByKey returns the key with the public identifier key and its
// workspace; ENOTFOUND if there is none.
func (s *Store) FindAPIKeyByKey(ctx context.Context, key string) (*heldsway.APIKey, *heldsway.Workspace, error) {
	var k heldsway.APIKey
	var w heldsway.Workspace
	var wCreated int64
	err := scanAPIKey(s.queryRowHot(ctx, `
		SELECT `+apiKeyCols+`, w.id, w.name, w.slug, w.plan, w.active, w.created_at
		FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id
		WHERE k.key = $1`, key), &k, &w.ID, &w.Name, &w.Slug, &w.Plan, &w.Active, &wCreated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, heldsway.NotFound("API key")
	} else if err != nil {
		return nil, nil, unavailable(err)
	}
	w.CreatedAt = fromTS(wCreated)
	return &k, &w, nil
}

// FindAPIKey returns a key of a workspace; ENOTFOUND if the workspace has no such key.
func (s *Store) FindAPIKey(ctx context.Context, workspaceID, id int64) (*heldsway.APIKey, error) {
	var k heldsway.APIKey
	err := scanAPIKey(s.r.QueryRowContext(ctx, `SELECT `+apiKeyCols+` FROM api_keys k
		WHERE k.workspace_id = $1 AND k.id = $2`, workspaceID, id), &k)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, heldsway.NotFound("API key")
	}
	return &k, unavailable(err)
}

// FindAPIKeyByID returns a key by id in any workspace; for the operator CLI.
func (s *Store) FindAPIKeyByID(ctx context.Context, id int64) (*heldsway.APIKey, error) {
	var k heldsway.APIKey
	err := scanAPIKey(s.r.QueryRowContext(ctx, `SELECT `+apiKeyCols+` FROM api_keys k WHERE k.id = $1`, id), &k)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, heldsway.NotFound("API key")
	}
	return &k, unavailable(err)
}

// ListAPIKeys returns up to limit keys of a workspace with ids below before (0 for
// the first page), newest first.
func (s *Store) ListAPIKeys(ctx context.Context, workspaceID, before int64, limit int) ([]*heldsway.APIKey, error) {
	if before <= 0 {
		before = math.MaxInt64
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+apiKeyCols+` FROM api_keys k
		WHERE k.workspace_id = $1 AND k.id < $2 ORDER BY k.id DESC LIMIT $3`, workspaceID, before, limit)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	keys := []*heldsway.APIKey{}
	for rows.Next() {
		var k heldsway.APIKey
		if err := scanAPIKey(rows, &k); err != nil {
			return nil, err
		}
		keys = append(keys, &k)
	}
	return keys, unavailable(rows.Err())
}

// RevokeAPIKey marks a key revoked. Revoking twice keeps the first time.
func (s *Store) RevokeAPIKey(ctx context.Context, workspaceID, id int64, at time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1)
			WHERE workspace_id = $2 AND id = $3`, ts(at), workspaceID, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return heldsway.NotFound("API key")
		}
		return s.audit(ctx, tx, workspaceID, "api_key.revoke", "api_key", id,
			map[string]any{"status": "active"}, map[string]any{"status": "revoked"})
	})
}

// RotateAPIKeySecret installs a new secret digest and keeps the current one valid
// until prevExpiresAt.
func (s *Store) RotateAPIKeySecret(ctx context.Context, workspaceID, id int64, newHash []byte, prevExpiresAt time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_keys
			SET prev_secret_hash = secret_hash, prev_secret_expires_at = $1, secret_hash = $2
			WHERE workspace_id = $3 AND id = $4 AND revoked_at IS NULL`,
			ts(prevExpiresAt), newHash, workspaceID, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return heldsway.NotFound("API key")
		}
		return s.audit(ctx, tx, workspaceID, "api_key.rotate", "api_key", id, nil,
			map[string]any{"previous_secret_expires_at": fromTS(ts(prevExpiresAt))})
	})
}

// TouchAPIKeys records last-used times, batched by the caller so the hot path
// never writes.
func (s *Store) TouchAPIKeys(ctx context.Context, lastUsed map[int64]time.Time) error {
	if len(lastUsed) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for id, at := range lastUsed {
			if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET last_used_at = $1
				WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)`, ts(at), id); err != nil {
				return err
			}
		}
		return nil
	})
}

// CreateAccessToken stores an issued token's digest and returns once it is
// committed. Concurrent calls share one transaction (group commit, tokenwriter.go):
// on SQLite's single writer a transaction per token capped the exchange rate.
func (s *Store) CreateAccessToken(ctx context.Context, t *heldsway.AccessToken) error {
	return s.tokens.insert(ctx, t)
}

// FindTokenGrant returns a token with the current state of its key and workspace;
// ENOTFOUND for an unknown digest.
func (s *Store) FindTokenGrant(ctx context.Context, hash []byte) (*heldsway.TokenGrant, error) {
	var g heldsway.TokenGrant
	var scopes string
	var exp, created int64
	err := scanAPIKey(s.queryRowHot(ctx, `
		SELECT `+apiKeyCols+`, t.scopes, t.expires_at, t.created_at, `+workspaceCols+`
		FROM access_tokens t
		JOIN api_keys k ON k.id = t.api_key_id AND k.workspace_id = t.workspace_id
		JOIN workspaces w ON w.id = t.workspace_id
		WHERE t.token_hash = $1`, hash), &g.Key, &scopes, &exp, &created,
		&g.Workspace.ID, &g.Workspace.Name, &g.Workspace.Slug, &g.Workspace.Plan, &g.Workspace.Active, new(int64))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, heldsway.NotFound("Access token")
	} else if err != nil {
		return nil, unavailable(err)
	}
	g.Token = heldsway.AccessToken{Hash: hash, WorkspaceID: g.Workspace.ID, APIKeyID: g.Key.ID,
		Scopes: splitList(scopes), ExpiresAt: fromTS(exp), CreatedAt: fromTS(created)}
	return &g, nil
}

// DeleteExpiredTokens removes tokens that expired before the given time.
func (s *Store) DeleteExpiredTokens(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM access_tokens WHERE expires_at < $1`, ts(before))
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}
