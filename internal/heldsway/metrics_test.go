package heldsway_test

import (
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

func TestConversionRate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		conversions, clicks, want int64
	}{
		{0, 0, 0},
		{5, 0, 0}, // no clicks: 0, never a division by zero
		{0, 10, 0},
		{1, 4, 2500},
		{1, 3, 3333},  // 33.333… → 33.33
		{2, 3, 6667},  // 66.666… → 66.67
		{1, 8, 1250},  // exact 12.50
		{1, 80000, 0}, // 0.00125% → 0.00
		{1, 20000, 1}, // 0.005% → 0.01: half-up
		{3, 2, 15000}, // more orders than clicks: 150.00
		{-1, 10, 0},
	} {
		if got := heldsway.ConversionRate(c.conversions, c.clicks); got != c.want {
			t.Errorf("ConversionRate(%d, %d) = %d, want %d", c.conversions, c.clicks, got, c.want)
		}
	}
}

func TestMetricsRange(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 1, 15, 30, 0, 0, time.UTC)
	day := func(s string) time.Time {
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	p := func(s string) *time.Time { d := day(s); return &d }
	for _, c := range []struct {
		name               string
		from, to           *time.Time
		wantFrom, wantTo   string
		wantStart, wantEnd time.Time
	}{
		{"defaults", nil, nil, "2026-10-02", "2026-11-01", day("2026-10-02"), day("2026-11-02")},
		{"to only", nil, p("2026-06-30"), "2026-05-31", "2026-06-30", day("2026-05-31"), day("2026-07-01")},
		{"from only", p("2026-10-20"), nil, "2026-10-20", "2026-11-01", day("2026-10-20"), day("2026-11-02")},
		{"one day", p("2026-10-20"), p("2026-10-20"), "2026-10-20", "2026-10-20", day("2026-10-20"), day("2026-10-21")},
	} {
		f, to, start, end := heldsway.MetricsRange(c.from, c.to, now)
		if f.Format(time.DateOnly) != c.wantFrom || to.Format(time.DateOnly) != c.wantTo || !start.Equal(c.wantStart) || !end.Equal(c.wantEnd) {
			t.Errorf("%s: %v %v [%v, %v)", c.name, f, to, start, end)
		}
	}
}
