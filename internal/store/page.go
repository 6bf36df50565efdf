package store

import (
	"database/sql"
	"fmt"
	"strconv"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// sortCol is a whitelisted sort: the SQL expression ordered on and whether it is
// an integer. Nullable columns are wrapped in COALESCE so NULLs order and compare
// like values (keyset comparisons with NULL would drop rows).
type sortCol struct {
	expr  string
	isInt bool
}

// keyset appends to where/args the condition that selects rows after o.After and
// returns the ORDER BY and LIMIT/OFFSET clause. idCol is the table's id column.
func keyset(col sortCol, idCol string, o heldsway.ListOptions, where string, args []any) (string, []any, error) {
	cmp, dir := ">", "ASC"
	if o.Desc {
		cmp, dir = "<", "DESC"
	}
	if c := o.After; c != nil {
		var v any
		if c.Value == nil {
			return "", nil, heldsway.Invalid("cursor", "The cursor is invalid.")
		}
		v = *c.Value
		if col.isInt {
			n, err := strconv.ParseInt(*c.Value, 10, 64)
			if err != nil {
				return "", nil, heldsway.Invalid("cursor", "The cursor is invalid.")
			}
			v = n
		}
		n := len(args)
		// The leading "col <= v" (or >=) is implied by the rest; it is there so
		// both planners turn the condition into an index range seek instead of
		// reading every row before the cursor.
		where += fmt.Sprintf(" AND %s %s= $%d AND (%s %s $%d OR (%s = $%d AND %s %s $%d))",
			col.expr, cmp, n+1, col.expr, cmp, n+1, col.expr, n+1, idCol, cmp, n+2)
		args = append(args, v, c.ID)
	}
	tail := fmt.Sprintf(" ORDER BY %s %s, %s %s LIMIT %d", col.expr, dir, idCol, dir, o.PerPage+1)
	if o.After == nil && o.Offset > 0 {
		tail += fmt.Sprintf(" OFFSET %d", o.Offset)
	}
	return where + tail, args, nil
}

// pageOf trims the extra row fetched to detect a next page and builds its cursor
// from the last item kept. sortVal returns an item's sort value and id.
func pageOf[T any](items []T, o heldsway.ListOptions, sortVal func(T) (*string, int64)) heldsway.PageResult[T] {
	if len(items) <= o.PerPage {
		return heldsway.PageResult[T]{Items: items}
	}
	items = items[:o.PerPage]
	v, id := sortVal(items[len(items)-1])
	return heldsway.PageResult[T]{Items: items, Next: &heldsway.Cursor{Sort: o.Sort, Desc: o.Desc, Value: v, ID: id}}
}

func strPtr(s string) *string { return &s }

func intStr(n int64) *string { return strPtr(strconv.FormatInt(n, 10)) }

// scanner is satisfied by *sql.Row and *sql.Rows.
type scanner interface{ Scan(...any) error }

var _ scanner = (*sql.Row)(nil)
