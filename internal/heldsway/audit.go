package heldsway

import (
	"context"
	"encoding/json"
	"time"
)

// Actor types of audit entries.
const (
	ActorAPIKey = "api_key"
	ActorPublic = "public"
	ActorSystem = "system"
)

// Actor is who makes a change, with the request it came in on. It travels on the
// context so every store write can record it in its audit entry.
type Actor struct {
	Type      string
	ID        int64 // API key id for ActorAPIKey
	RequestID string
	IP        string
}

type actorKey struct{}

// WithActor returns ctx carrying a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor on ctx; the system when there is none (background work).
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok {
		return a
	}
	return Actor{Type: ActorSystem}
}

// Change is one field's before and after values.
type Change struct {
	Before any `json:"before"`
	After  any `json:"after"`
}

// AuditEntry is one append-only record of a write.
type AuditEntry struct {
	ID           int64
	WorkspaceID  int64
	ActorType    string
	ActorID      *int64
	Action       string
	ResourceType string
	ResourceID   *int64
	Changes      map[string]Change
	RequestID    string
	IP           string
	CreatedAt    time.Time
}

// Event is a state change, the outbox webhooks will deliver.
type Event struct {
	ID           int64
	WorkspaceID  int64
	Type         string
	ResourceType string
	ResourceID   *int64
	Data         json.RawMessage
	CreatedAt    time.Time
}

// AuditFilter selects audit entries; zero fields do not filter.
type AuditFilter struct {
	ResourceType string
	ResourceID   int64
	ActorType    string
	ActorID      int64
	Action       string
	From, To     *time.Time // inclusive bounds on created_at
}

// EventFilter selects events.
type EventFilter struct {
	Type         string
	ResourceType string
	ResourceID   int64
	From, To     *time.Time
}
