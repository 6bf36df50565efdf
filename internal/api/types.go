package api

import (
	"encoding/base64"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// Timestamp renders as RFC 3339 UTC with microseconds, as documented
// (2026-04-01T09:00:00.000000Z).
type Timestamp time.Time

const timestampLayout = "2006-01-02T15:04:05.000000Z"

func (t Timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(timestampLayout) + `"`), nil
}

func (t *Timestamp) UnmarshalJSON(b []byte) error {
	var tt time.Time
	if err := tt.UnmarshalJSON(b); err != nil {
		return err
	}
	*t = Timestamp(tt)
	return nil
}

// Schema documents Timestamp as a date-time string.
func (Timestamp) Schema(r huma.Registry) *huma.Schema {
	return &huma.Schema{Type: "string", Format: "date-time", Examples: []any{"2026-04-01T09:00:00.000000Z"}}
}

func tsPtr(t *time.Time) *Timestamp {
	if t == nil {
		return nil
	}
	v := Timestamp(*t)
	return &v
}

// Page is a cursor-paginated list: data.items and data.meta.
type Page[T any] struct {
	Items []T      `json:"items"`
	Meta  PageMeta `json:"meta"`
}

// PageMeta tells the client how to fetch the next page.
type PageMeta struct {
	PerPage    int    `json:"per_page"`
	NextCursor string `json:"next_cursor,omitempty" doc:"Pass as cursor to get the next page; absent on the last page."`
	HasMore    bool   `json:"has_more"`
	// CurrentPage echoes the page parameter when a client pages by number.
	CurrentPage int `json:"current_page,omitempty"`
}

// Cursors are opaque to clients; this one wraps the last id seen.
func encodeIDCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("id:" + strconv.FormatInt(id, 10)))
}

func decodeIDCursor(c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil && len(b) > 3 && string(b[:3]) == "id:" {
		if id, perr := strconv.ParseInt(string(b[3:]), 10, 64); perr == nil && id > 0 {
			return id, nil
		}
	}
	return 0, heldsway.Invalid("cursor", "The cursor is invalid.")
}
