package heldsway

// ListOptions asks for one page of a list. Lists are keyset-paginated on the sort
// column and the id, so pages stay stable while rows are inserted or deleted.
type ListOptions struct {
	PerPage int
	Sort    string // a whitelisted sort name; "" for the list's default
	Desc    bool
	After   *Cursor // position after which the page starts
	// Offset serves the documented page parameter for compatibility; it is only
	// used when After is nil.
	Offset int
}

// Cursor is the position of the last row of a page: its sort value and id. The
// sort and direction are part of it, so a cursor cannot be replayed against a
// different order.
type Cursor struct {
	Sort  string  `json:"s"`
	Desc  bool    `json:"d"`
	Value *string `json:"v"` // the sort column's value as text; nil for NULL
	ID    int64   `json:"i"`
}

// PageResult is one page of items and the cursor of the next page, if any.
type PageResult[T any] struct {
	Items []T
	Next  *Cursor
}
