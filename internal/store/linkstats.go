package store

import (
	"context"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// LinkStats computes a link's figures over the inclusive days [from, to] of
// the workspace's analytics time zone: clicks, conversions, revenue and
// commission from the daily rollups (the analytics figures with link_id),
// unique visitors from the link's clicks in the range (through clicks_link).
// ENOTFOUND for a link the workspace does not have.
func (s *Store) LinkStats(ctx context.Context, wsID, linkID int64, from, to heldsway.Day) (*heldsway.LinkStats, error) {
	if ok, err := linkExists(ctx, s.r, wsID, linkID); err != nil {
		return nil, unavailable(err)
	} else if !ok {
		return nil, heldsway.NotFound("Link")
	}
	_, loc, err := s.RollupZone(ctx, wsID)
	if err != nil {
		return nil, err
	}
	st := &heldsway.LinkStats{LinkID: linkID, From: from.Date(), To: to.Date(),
		Revenue: []heldsway.CurrencyAmount{}, Commission: []heldsway.CurrencyAmount{}}
	byCur, err := s.AnalyticsByCurrency(ctx, wsID, from, to, heldsway.AnalyticsFilter{LinkID: linkID})
	if err != nil {
		return nil, err
	}
	for _, cc := range byCur {
		st.Clicks += cc.Counts.Clicks
		if cc.Currency == "" || cc.Counts.Conversions == 0 {
			continue
		}
		st.Conversions += cc.Counts.Conversions
		st.Revenue = append(st.Revenue, heldsway.CurrencyAmount{Currency: cc.Currency, Amount: cc.Counts.Revenue})
		st.Commission = append(st.Commission, heldsway.CurrencyAmount{Currency: cc.Currency, Amount: cc.Counts.Commission()})
	}
	if st.UniqueVisitors, err = s.LinkUniqueVisitors(ctx, wsID, linkID, from.Start(loc), to.AddDays(1).Start(loc)); err != nil {
		return nil, err
	}
	st.ConversionRate = heldsway.ConversionRate(st.Conversions, st.Clicks)
	return st, nil
}
