package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// Recording writes the audit entry and the event of a change in the caller's
// transaction, so the business row, its audit entry and its event commit together.

// audit appends an audit entry for action on a resource. before and after are
// snapshots (structs or maps with JSON tags); only fields that differ are kept.
// A nil before records a creation, a nil after a deletion.
func (s *Store) audit(ctx context.Context, tx *sql.Tx, wsID int64, action, resType string, resID int64, before, after any) error {
	changes := diff(before, after)
	b, err := json.Marshal(changes)
	if err != nil {
		return err
	}
	a := heldsway.ActorFrom(ctx)
	var actorID sql.NullInt64
	if a.ID != 0 {
		actorID = sql.NullInt64{Int64: a.ID, Valid: true}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_log
		(workspace_id, actor_type, actor_id, action, resource_type, resource_id, changes, request_id, ip, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		wsID, a.Type, actorID, action, resType, nullID(resID), string(b), nullStr(a.RequestID), nullStr(a.IP), ts(s.Now()))
	return err
}

// event appends an event of type typ with a snapshot of the resource.
func (s *Store) event(ctx context.Context, tx *sql.Tx, wsID int64, typ, resType string, resID int64, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO events (workspace_id, type, resource_type, resource_id, data, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, wsID, typ, resType, nullID(resID), string(b), ts(s.Now()))
	return err
}

// record writes both the audit entry and, if typ is not empty, the event.
func (s *Store) record(ctx context.Context, tx *sql.Tx, wsID int64, action, resType string, resID int64, before, after any, typ string) error {
	if err := s.audit(ctx, tx, wsID, action, resType, resID, before, after); err != nil {
		return err
	}
	if typ == "" {
		return nil
	}
	snap := after
	if snap == nil {
		snap = before
	}
	return s.event(ctx, tx, wsID, typ, resType, resID, snap)
}

// diff returns the fields whose JSON values differ between before and after.
func diff(before, after any) map[string]heldsway.Change {
	b, a := toMap(before), toMap(after)
	out := map[string]heldsway.Change{}
	for k, av := range a {
		bv, ok := b[k]
		if !ok || !reflect.DeepEqual(av, bv) {
			out[k] = heldsway.Change{Before: bv, After: av}
		}
	}
	for k, bv := range b {
		if _, ok := a[k]; !ok {
			out[k] = heldsway.Change{Before: bv, After: nil}
		}
	}
	return out
}

func toMap(v any) map[string]any {
	if v == nil || (reflect.ValueOf(v).Kind() == reflect.Pointer && reflect.ValueOf(v).IsNil()) {
		return map[string]any{}
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return map[string]any{}
	}
	m := map[string]any{}
	_ = json.Unmarshal(raw, &m)
	return m
}

func nullID(id int64) sql.NullInt64 {
	return sql.NullInt64{Int64: id, Valid: id != 0}
}

func nullStr(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}

func nullInt(p *int64) sql.NullInt64 {
	if p == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: *p, Valid: true}
}

func fromNullInt(v sql.NullInt64) *int64 {
	if !v.Valid {
		return nil
	}
	x := v.Int64
	return &x
}

// recordItem is one resource of recordMany: its id and its snapshot after the
// change (a creation).
type recordItem struct {
	id    int64
	after any
}

// maxRowsPerInsert is how many rows of cols parameters one INSERT may carry:
// both engines bound the parameters of a statement (SQLite 32,766,
// PostgreSQL 65,535).
func maxRowsPerInsert(cols int) int { return 30000 / cols }

// recordMany writes the audit entries and events of many creations of one
// kind in a few multi-row INSERTs: a payout run creates thousands of payouts,
// and a statement per entry would be most of its time.
func (s *Store) recordMany(ctx context.Context, tx *sql.Tx, wsID int64, action, resType, typ string, items []recordItem) error {
	a := heldsway.ActorFrom(ctx)
	var actorID sql.NullInt64
	if a.ID != 0 {
		actorID = sql.NullInt64{Int64: a.ID, Valid: true}
	}
	now := ts(s.Now())
	const auditCols, eventCols = 3, 3
	for start := 0; start < len(items); start += maxRowsPerInsert(auditCols) {
		part := items[start:min(len(items), start+maxRowsPerInsert(auditCols))]
		var q strings.Builder
		q.WriteString(`INSERT INTO audit_log (workspace_id, actor_type, actor_id, action, resource_type, resource_id, changes,
			request_id, ip, created_at) VALUES `)
		args := []any{wsID, a.Type, actorID, action, resType, nullStr(a.RequestID), nullStr(a.IP), now}
		for i, it := range part {
			b, err := json.Marshal(diff(nil, it.after))
			if err != nil {
				return err
			}
			if i > 0 {
				q.WriteString(", ")
			}
			k := len(args)
			fmt.Fprintf(&q, "($1, $2, $3, $4, $5, $%d, $%d, $6, $7, $8)", k+1, k+2)
			args = append(args, nullID(it.id), string(b))
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
	}
	if typ == "" {
		return nil
	}
	for start := 0; start < len(items); start += maxRowsPerInsert(eventCols) {
		part := items[start:min(len(items), start+maxRowsPerInsert(eventCols))]
		var q strings.Builder
		q.WriteString(`INSERT INTO events (workspace_id, type, resource_type, resource_id, data, created_at) VALUES `)
		args := []any{wsID, typ, resType, now}
		for i, it := range part {
			b, err := json.Marshal(it.after)
			if err != nil {
				return err
			}
			if i > 0 {
				q.WriteString(", ")
			}
			k := len(args)
			fmt.Fprintf(&q, "($1, $2, $3, $%d, $%d, $4)", k+1, k+2)
			args = append(args, nullID(it.id), string(b))
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
	}
	return nil
}
