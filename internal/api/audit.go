package api

import (
	"context"
	"encoding/json"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

type auditActor struct {
	Type string `json:"type" enum:"api_key,public,system" doc:"api_key: an API key (id is its id); public: an unauthenticated request; system: background work."`
	ID   *int64 `json:"id"`
}

type auditView struct {
	ID           int64                      `json:"id"`
	Actor        auditActor                 `json:"actor"`
	Action       string                     `json:"action" doc:"e.g. affiliate.approve"`
	ResourceType string                     `json:"resource_type"`
	ResourceID   *int64                     `json:"resource_id"`
	Changes      map[string]heldsway.Change `json:"changes" doc:"Each changed field with its before and after values."`
	RequestID    string                     `json:"request_id"`
	IP           string                     `json:"ip"`
	CreatedAt    Timestamp                  `json:"created_at"`
}

// DateRange is the from/to filter of lists: inclusive UTC days, to ≥ from.
type DateRange struct {
	From string `query:"from" format:"date" doc:"YYYY-MM-DD, inclusive."`
	To   string `query:"to" format:"date" doc:"YYYY-MM-DD, inclusive; not before from."`
}

// bounds returns the range as times: from at 00:00, to at the last microsecond.
func (d DateRange) bounds() (*time.Time, *time.Time, error) {
	fe := heldsway.FieldErrors{}
	var from, to *time.Time
	if d.From != "" {
		t, err := time.Parse(time.DateOnly, d.From)
		if err != nil {
			fe.Add("from", "The from field must be a date in YYYY-MM-DD format.")
		} else {
			from = &t
		}
	}
	if d.To != "" {
		t, err := time.Parse(time.DateOnly, d.To)
		if err != nil {
			fe.Add("to", "The to field must be a date in YYYY-MM-DD format.")
		} else {
			end := t.Add(24*time.Hour - time.Microsecond)
			to = &end
		}
	}
	if from != nil && to != nil && to.Before(*from) {
		fe.Add("to", "The to field must be a date after or equal to from.")
	}
	return from, to, fe.Err()
}

type auditListInput struct {
	ListParams
	DateRange
	ResourceType string `query:"resource_type" maxLength:"64"`
	ResourceID   int64  `query:"resource_id" minimum:"1"`
	ActorType    string `query:"actor_type" enum:"api_key,public,system"`
	ActorID      int64  `query:"actor_id" minimum:"1" doc:"API key id."`
	Action       string `query:"action" maxLength:"64"`
}

func (s *Server) handleAuditList(ctx context.Context, in *auditListInput) (*Out[Page[auditView]], error) {
	p := principal(ctx)
	from, to, err := in.DateRange.bounds()
	if err != nil {
		return nil, err
	}
	o, err := in.options("id")
	if err != nil {
		return nil, err
	}
	res, err := s.Store.ListAuditEntries(ctx, p.Workspace.ID, heldsway.AuditFilter{ResourceType: in.ResourceType,
		ResourceID: in.ResourceID, ActorType: in.ActorType, ActorID: in.ActorID, Action: in.Action, From: from, To: to}, o)
	if err != nil {
		return nil, err
	}
	return ok("OK", pageOut(res, in.ListParams, o, func(e *heldsway.AuditEntry) auditView {
		return auditView{ID: e.ID, Actor: auditActor{Type: e.ActorType, ID: e.ActorID}, Action: e.Action,
			ResourceType: e.ResourceType, ResourceID: e.ResourceID, Changes: e.Changes, RequestID: e.RequestID,
			IP: e.IP, CreatedAt: Timestamp(e.CreatedAt)}
	})), nil
}

type eventView struct {
	ID           int64           `json:"id"`
	Type         string          `json:"type" doc:"e.g. affiliate.created"`
	ResourceType string          `json:"resource_type"`
	ResourceID   *int64          `json:"resource_id"`
	Data         json.RawMessage `json:"data" doc:"The resource as it was after the change."`
	CreatedAt    Timestamp       `json:"created_at"`
}

func viewEvent(e *heldsway.Event) eventView {
	return eventView{ID: e.ID, Type: e.Type, ResourceType: e.ResourceType, ResourceID: e.ResourceID,
		Data: e.Data, CreatedAt: Timestamp(e.CreatedAt)}
}

type eventListInput struct {
	ListParams
	DateRange
	Type         string `query:"type" maxLength:"64"`
	ResourceType string `query:"resource_type" maxLength:"64"`
	ResourceID   int64  `query:"resource_id" minimum:"1"`
}

func (s *Server) handleEventList(ctx context.Context, in *eventListInput) (*Out[Page[eventView]], error) {
	p := principal(ctx)
	from, to, err := in.DateRange.bounds()
	if err != nil {
		return nil, err
	}
	o, err := in.options("id")
	if err != nil {
		return nil, err
	}
	res, err := s.Store.ListEvents(ctx, p.Workspace.ID, heldsway.EventFilter{Type: in.Type,
		ResourceType: in.ResourceType, ResourceID: in.ResourceID, From: from, To: to}, o)
	if err != nil {
		return nil, err
	}
	return ok("OK", pageOut(res, in.ListParams, o, viewEvent)), nil
}

func (s *Server) handleEventGet(ctx context.Context, in *idInput) (*Out[eventView], error) {
	e, err := s.Store.FindEvent(ctx, principal(ctx).Workspace.ID, in.ID)
	if err != nil {
		return nil, err
	}
	return ok("OK", viewEvent(e)), nil
}
