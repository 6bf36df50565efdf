package store

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// LinkStats computes a link's figures over the inclusive days [from, to]
// (midnight UTC) directly from the clicks and orders tables, with the metric
// definitions of internal/heldsway/metrics.go. ENOTFOUND for a link the
// workspace does not have.
//
// These are scans of the link's raw rows in the range (clicks through the
// clicks_link index, orders through orders_converted); the analytics rollups
// are to take their place without changing a definition.
func (s *Store) LinkStats(ctx context.Context, wsID, linkID int64, from, to time.Time) (*heldsway.LinkStats, error) {
	if ok, err := linkExists(ctx, s.r, wsID, linkID); err != nil {
		return nil, unavailable(err)
	} else if !ok {
		return nil, heldsway.NotFound("Link")
	}
	st := &heldsway.LinkStats{LinkID: linkID, From: from, To: to,
		Revenue: []heldsway.CurrencyAmount{}, Commission: []heldsway.CurrencyAmount{}}
	start, end := ts(from), ts(to.AddDate(0, 0, 1))

	// A click without a visitor id (no hs_vid cookie) is a visitor of its own.
	var distinct, anonymous int64
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*),
			COUNT(DISTINCT CASE WHEN visitor_id <> '' THEN visitor_id END),
			CAST(COALESCE(SUM(CASE WHEN visitor_id = '' THEN 1 ELSE 0 END), 0) AS BIGINT)
		FROM clicks WHERE workspace_id = $1 AND link_id = $2 AND created_at >= $3 AND created_at < $4`,
		wsID, linkID, start, end).Scan(&st.Clicks, &distinct, &anonymous); err != nil {
		return nil, unavailable(err)
	}
	st.UniqueVisitors = distinct + anonymous

	args := []any{wsID, linkID, start, end}
	where := ` WHERE o.workspace_id = $1 AND o.link_id = $2 AND o.converted_at >= $3 AND o.converted_at < $4 AND o.status IN (` +
		placeholders(&args, heldsway.CountedOrderStatuses) + `)`
	// SUM of a BIGINT is NUMERIC on PostgreSQL: cast back so both engines scan an int64.
	rows, err := s.r.QueryContext(ctx, `SELECT o.currency, COUNT(*), CAST(COALESCE(SUM(o.total - o.refunded_amount), 0) AS BIGINT)
		FROM orders o`+where+` GROUP BY o.currency ORDER BY o.currency`, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	idx := map[string]int{}
	for rows.Next() {
		var ca heldsway.CurrencyAmount
		var n int64
		if err := rows.Scan(&ca.Currency, &n, &ca.Amount); err != nil {
			rows.Close()
			return nil, unavailable(err)
		}
		st.Conversions += n
		idx[ca.Currency] = len(st.Revenue)
		st.Revenue = append(st.Revenue, ca)
		st.Commission = append(st.Commission, heldsway.CurrencyAmount{Currency: ca.Currency})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	if len(st.Revenue) > 0 {
		rows, err = s.r.QueryContext(ctx, `SELECT o.currency, CAST(COALESCE(SUM(c.amount - c.reversed_amount), 0) AS BIGINT)
			FROM orders o JOIN commissions c ON c.workspace_id = o.workspace_id AND c.order_id = o.id`+where+
			` AND c.status IN (`+placeholders(&args, heldsway.CountedCommissionStatuses)+`) GROUP BY o.currency`, args...)
		if err != nil {
			return nil, unavailable(err)
		}
		defer rows.Close()
		for rows.Next() {
			var cur string
			var sum int64
			if err := rows.Scan(&cur, &sum); err != nil {
				return nil, unavailable(err)
			}
			if i, ok := idx[cur]; ok {
				st.Commission[i].Amount = sum
			}
		}
		if err := rows.Err(); err != nil {
			return nil, unavailable(err)
		}
	}
	st.ConversionRate = heldsway.ConversionRate(st.Conversions, st.Clicks)
	return st, nil
}

// placeholders appends vs to args and returns their placeholders, "$5, $6".
func placeholders(args *[]any, vs []string) string {
	ph := make([]string, len(vs))
	for i, v := range vs {
		*args = append(*args, v)
		ph[i] = "$" + strconv.Itoa(len(*args))
	}
	return strings.Join(ph, ", ")
}
