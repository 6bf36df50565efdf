package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

var _ heldsway.IdempotencyStore = (*Store)(nil)

// abandonAfter is when an unfinished claim is taken to belong to a crashed
// process and may be claimed again. Well above any request's run time.
const abandonAfter = 2 * time.Minute

// ClaimIdempotencyKey inserts a claim; on conflict it returns the existing record,
// unless that record has expired or was abandoned, in which case it is re-claimed.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, wsID int64, scope, key string, fp []byte) (*heldsway.IdempotencyRecord, error) {
	var rec *heldsway.IdempotencyRecord
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		rec, err = s.claimIdem(ctx, tx, wsID, scope, key, fp)
		return err
	})
	return rec, err
}

// claimIdem claims the key in tx: nil when claimed, else the record in force.
// The transaction may be the request's own (see Store.tx and
// heldsway.IdempotencyClaim). On PostgreSQL the INSERT of a key another open
// transaction has just inserted waits for that transaction, then finds its row
// (or, if it rolled back, claims the key): two requests never both proceed.
func (s *Store) claimIdem(ctx context.Context, tx *sql.Tx, wsID int64, scope, key string, fp []byte) (*heldsway.IdempotencyRecord, error) {
	now := s.Now()
	res, err := tx.ExecContext(ctx, `INSERT INTO idempotency_keys (workspace_id, scope, key, fingerprint, created_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, wsID, scope, key, fp, ts(now))
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil, nil
	}
	rec, err := findIdem(ctx, tx, wsID, scope, key)
	if err != nil {
		return nil, err
	}
	if inForce(rec, now) {
		return rec, nil
	}
	_, err = tx.ExecContext(ctx, `UPDATE idempotency_keys SET fingerprint = $1, status = NULL, headers = NULL,
		body = NULL, created_at = $2 WHERE workspace_id = $3 AND scope = $4 AND key = $5`, fp, ts(now), wsID, scope, key)
	return nil, err
}

// inForce reports whether rec still answers its key at now: not expired, and
// not a claim abandoned by a crashed process.
func inForce(rec *heldsway.IdempotencyRecord, now time.Time) bool {
	expired := now.Sub(rec.CreatedAt) >= heldsway.IdempotencyTTL
	abandoned := rec.Status == 0 && now.Sub(rec.CreatedAt) >= abandonAfter
	return !expired && !abandoned
}

// PeekIdempotencyKey returns the record in force under the key, or nil. It
// reads from the read pool: a claim committed a moment ago that it misses is
// found by the request's own transaction (claimIdem) instead.
func (s *Store) PeekIdempotencyKey(ctx context.Context, wsID int64, scope, key string) (*heldsway.IdempotencyRecord, error) {
	rec, err := findIdem(ctx, s.r, wsID, scope, key)
	if heldsway.ErrorCode(err) == heldsway.ENOTFOUND {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if !inForce(rec, s.Now()) {
		return nil, nil
	}
	return rec, nil
}

// FinishIdempotencyClaim stores the response of a request that ran with c.
func (s *Store) FinishIdempotencyClaim(ctx context.Context, c *heldsway.IdempotencyClaim, status int, contentType string, body []byte) error {
	if c.Recorded() {
		return s.CompleteIdempotencyKey(ctx, c.WorkspaceID, c.Scope, c.Key, status, contentType, body)
	}
	return s.idem.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO idempotency_keys (workspace_id, scope, key, fingerprint, status, headers, body, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
			c.WorkspaceID, c.Scope, c.Key, c.Fingerprint, status, contentType, body, ts(s.Now()))
		return err
	})
}

func findIdem(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, wsID int64, scope, key string) (*heldsway.IdempotencyRecord, error) {
	var rec heldsway.IdempotencyRecord
	var status sql.NullInt64
	var ct sql.NullString
	var created int64
	err := q.QueryRowContext(ctx, `SELECT fingerprint, status, headers, body, created_at FROM idempotency_keys
		WHERE workspace_id = $1 AND scope = $2 AND key = $3`, wsID, scope, key).
		Scan(&rec.Fingerprint, &status, &ct, &rec.Body, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, heldsway.NotFound("Idempotency key")
	} else if err != nil {
		return nil, unavailable(err)
	}
	rec.Status, rec.ContentType, rec.CreatedAt = int(status.Int64), ct.String, fromTS(created)
	return &rec, nil
}

// FindIdempotencyKey returns the current record; ENOTFOUND if it was released.
func (s *Store) FindIdempotencyKey(ctx context.Context, wsID int64, scope, key string) (*heldsway.IdempotencyRecord, error) {
	// Read through the writer: on SQLite the reader pool could lag a commit made
	// a moment ago by the writer connection only if WAL snapshots were held open,
	// which they are not, but reading the claim row where it was written is simplest.
	return findIdem(ctx, s.w, wsID, scope, key)
}

// CompleteIdempotencyKey stores the response of the claimed request. The
// UPDATE is group-committed with other requests' (groupcommit.go).
func (s *Store) CompleteIdempotencyKey(ctx context.Context, wsID int64, scope, key string, status int, contentType string, body []byte) error {
	return s.idem.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE idempotency_keys SET status = $1, headers = $2, body = $3
			WHERE workspace_id = $4 AND scope = $5 AND key = $6`, status, contentType, body, wsID, scope, key)
		return err
	})
}

// ReleaseIdempotencyKey deletes an unfinished claim.
func (s *Store) ReleaseIdempotencyKey(ctx context.Context, wsID int64, scope, key string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE workspace_id = $1 AND scope = $2 AND key = $3`,
			wsID, scope, key)
		return err
	})
}

// DeleteExpiredIdempotencyKeys removes records older than the TTL.
func (s *Store) DeleteExpiredIdempotencyKeys(ctx context.Context) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE created_at < $1`,
			ts(s.Now().Add(-heldsway.IdempotencyTTL)))
		if err == nil {
			n, _ = res.RowsAffected()
		}
		return err
	})
	return n, err
}
