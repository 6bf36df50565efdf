package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// ListAuditEntries returns a workspace's audit entries matching f, newest first
// unless o says otherwise. There is no method to change or delete an entry.
func (s *Store) ListAuditEntries(ctx context.Context, wsID int64, f heldsway.AuditFilter, o heldsway.ListOptions) (heldsway.PageResult[*heldsway.AuditEntry], error) {
	where, args := `WHERE workspace_id = $1`, []any{wsID}
	add := func(cond string, v any) {
		args = append(args, v)
		where += " AND " + cond + " $" + strconv.Itoa(len(args))
	}
	if f.ResourceType != "" {
		add("resource_type =", f.ResourceType)
	}
	if f.ResourceID != 0 {
		add("resource_id =", f.ResourceID)
	}
	if f.ActorType != "" {
		add("actor_type =", f.ActorType)
	}
	if f.ActorID != 0 {
		add("actor_id =", f.ActorID)
	}
	if f.Action != "" {
		add("action =", f.Action)
	}
	if f.From != nil {
		add("created_at >=", ts(*f.From))
	}
	if f.To != nil {
		add("created_at <=", ts(*f.To))
	}
	q, args, err := keyset(sortCol{expr: "id", isInt: true}, "id", o, where, args)
	if err != nil {
		return heldsway.PageResult[*heldsway.AuditEntry]{}, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, workspace_id, actor_type, actor_id, action, resource_type,
		resource_id, changes, request_id, ip, created_at FROM audit_log `+q, args...)
	if err != nil {
		return heldsway.PageResult[*heldsway.AuditEntry]{}, unavailable(err)
	}
	defer rows.Close()
	var items []*heldsway.AuditEntry
	for rows.Next() {
		var e heldsway.AuditEntry
		var actorID, resID sql.NullInt64
		var changes string
		var reqID, ip sql.NullString
		var created int64
		if err := rows.Scan(&e.ID, &e.WorkspaceID, &e.ActorType, &actorID, &e.Action, &e.ResourceType, &resID,
			&changes, &reqID, &ip, &created); err != nil {
			return heldsway.PageResult[*heldsway.AuditEntry]{}, err
		}
		e.ActorID, e.ResourceID = fromNullInt(actorID), fromNullInt(resID)
		e.RequestID, e.IP, e.CreatedAt = reqID.String, ip.String, fromTS(created)
		if err := json.Unmarshal([]byte(changes), &e.Changes); err != nil {
			return heldsway.PageResult[*heldsway.AuditEntry]{}, err
		}
		items = append(items, &e)
	}
	if err := rows.Err(); err != nil {
		return heldsway.PageResult[*heldsway.AuditEntry]{}, unavailable(err)
	}
	return pageOf(items, o, func(e *heldsway.AuditEntry) (*string, int64) { return intStr(e.ID), e.ID }), nil
}

const eventCols = `id, workspace_id, type, resource_type, resource_id, data, created_at`

func scanEvent(sc scanner) (*heldsway.Event, error) {
	var e heldsway.Event
	var resID sql.NullInt64
	var data string
	var created int64
	if err := sc.Scan(&e.ID, &e.WorkspaceID, &e.Type, &e.ResourceType, &resID, &data, &created); err != nil {
		return nil, err
	}
	e.ResourceID, e.Data, e.CreatedAt = fromNullInt(resID), json.RawMessage(data), fromTS(created)
	return &e, nil
}

// ListEvents returns a workspace's events matching f.
func (s *Store) ListEvents(ctx context.Context, wsID int64, f heldsway.EventFilter, o heldsway.ListOptions) (heldsway.PageResult[*heldsway.Event], error) {
	where, args := `WHERE workspace_id = $1`, []any{wsID}
	add := func(cond string, v any) {
		args = append(args, v)
		where += " AND " + cond + " $" + strconv.Itoa(len(args))
	}
	if f.Type != "" {
		add("type =", f.Type)
	}
	if f.ResourceType != "" {
		add("resource_type =", f.ResourceType)
	}
	if f.ResourceID != 0 {
		add("resource_id =", f.ResourceID)
	}
	if f.From != nil {
		add("created_at >=", ts(*f.From))
	}
	if f.To != nil {
		add("created_at <=", ts(*f.To))
	}
	q, args, err := keyset(sortCol{expr: "id", isInt: true}, "id", o, where, args)
	if err != nil {
		return heldsway.PageResult[*heldsway.Event]{}, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+eventCols+` FROM events `+q, args...)
	if err != nil {
		return heldsway.PageResult[*heldsway.Event]{}, unavailable(err)
	}
	defer rows.Close()
	var items []*heldsway.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return heldsway.PageResult[*heldsway.Event]{}, err
		}
		items = append(items, e)
	}
	if err := rows.Err(); err != nil {
		return heldsway.PageResult[*heldsway.Event]{}, unavailable(err)
	}
	return pageOf(items, o, func(e *heldsway.Event) (*string, int64) { return intStr(e.ID), e.ID }), nil
}

// FindEvent returns one event of a workspace; ENOTFOUND otherwise.
func (s *Store) FindEvent(ctx context.Context, wsID, id int64) (*heldsway.Event, error) {
	e, err := scanEvent(s.r.QueryRowContext(ctx, `SELECT `+eventCols+` FROM events WHERE workspace_id = $1 AND id = $2`, wsID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, heldsway.NotFound("Event")
	}
	return e, unavailable(err)
}

// CountAuditEntries counts a workspace's audit entries; tests use it to prove a
// rejected request wrote nothing.
func (s *Store) CountAuditEntries(ctx context.Context, wsID int64) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log WHERE workspace_id = $1`, wsID).Scan(&n)
	return n, unavailable(err)
}
