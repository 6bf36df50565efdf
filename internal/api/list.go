package api

import (
	"encoding/base64"
	"encoding/json"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// ListParams are the query parameters every list takes. Embed it in a list's
// input next to that list's own sort whitelist and filters.
type ListParams struct {
	PerPage   int    `query:"per_page" minimum:"1" maximum:"100" default:"25" doc:"Items per page (1–100)."`
	Cursor    string `query:"cursor" maxLength:"1024" doc:"Opaque cursor from data.meta.next_cursor of the previous page. Pages are keyset-based, so they stay stable while rows are added or removed."`
	Page      int    `query:"page" minimum:"1" maximum:"100000" doc:"Page number, honoured for compatibility with offset clients when no cursor is given. Prefer cursor."`
	Direction string `query:"direction" enum:"asc,desc" default:"desc" doc:"Sort direction."`
}

// options turns the parameters and the list's sort into store options.
func (l ListParams) options(sort string) (heldsway.ListOptions, error) {
	o := heldsway.ListOptions{PerPage: l.PerPage, Sort: sort, Desc: l.Direction != "asc"}
	if o.PerPage == 0 {
		o.PerPage = 25
	}
	if l.Cursor != "" {
		c, err := decodeCursor(l.Cursor)
		if err != nil {
			return o, err
		}
		if c.Sort != o.Sort || c.Desc != o.Desc {
			return o, heldsway.Invalid("cursor", "The cursor belongs to a different sort or direction.")
		}
		o.After = c
	} else if l.Page > 1 {
		o.Offset = (l.Page - 1) * o.PerPage
	}
	return o, nil
}

// pageOut renders a store page with the documented meta.
func pageOut[T, V any](res heldsway.PageResult[T], l ListParams, o heldsway.ListOptions, view func(T) V) Page[V] {
	p := Page[V]{Items: make([]V, 0, len(res.Items)), Meta: PageMeta{PerPage: o.PerPage, HasMore: res.Next != nil}}
	for _, it := range res.Items {
		p.Items = append(p.Items, view(it))
	}
	if res.Next != nil {
		p.Meta.NextCursor = encodeCursor(res.Next)
	}
	if l.Cursor == "" && l.Page > 0 {
		p.Meta.CurrentPage = l.Page
	}
	return p
}

func encodeCursor(c *heldsway.Cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (*heldsway.Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	var c heldsway.Cursor
	if err != nil || json.Unmarshal(b, &c) != nil || c.ID <= 0 {
		return nil, heldsway.Invalid("cursor", "The cursor is invalid.")
	}
	return &c, nil
}
