package store

import (
	"strconv"
	"strings"
)

// valuesRows is the list of rows rows of cols parameters each that follows
// VALUES: numbered ($1, $2, …, row by row), or anonymous (?), which SQLite
// binds by position where it looks numbered ones up by name (in time
// quadratic in a long statement's size).
func valuesRows(rows, cols int, numbered bool) string {
	var b strings.Builder
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteString(", ")
			}
			if numbered {
				b.WriteString("$" + strconv.Itoa(r*cols+c+1))
			} else {
				b.WriteByte('?')
			}
		}
		b.WriteByte(')')
	}
	return b.String()
}
