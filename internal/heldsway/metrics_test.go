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

func TestCountsArithmetic(t *testing.T) {
	t.Parallel()
	var a heldsway.Counts
	for i, f := range a.Fields() {
		*f = int64(i + 1)
	}
	b := a
	b.Add(a)
	for i, f := range b.Fields() {
		if *f != 2*int64(i+1) {
			t.Fatalf("Add: field %d = %d", i, *f)
		}
	}
	b.Sub(a)
	if b != a || !(heldsway.Counts{}).IsZero() || a.IsZero() {
		t.Fatalf("Sub: %+v", b)
	}
	if a.Commission() != 12+13+14 || a.CommissionConfirmed() != 13+14 {
		t.Fatalf("commission %d %d", a.Commission(), a.CommissionConfirmed())
	}
}

func TestOrderCounts(t *testing.T) {
	t.Parallel()
	lines := []heldsway.CommissionLine{{Status: "pending", Net: 100}, {Status: "approved", Net: 20}, {Status: "paid", Net: 3},
		{Status: "rejected", Net: 1000}, {Status: "reversed", Net: 0}}
	got := heldsway.OrderCounts("approved", 5000, 1000, lines)
	want := heldsway.Counts{Conversions: 1, Revenue: 4000, CommissionPending: 100, CommissionApproved: 20, CommissionPaid: 3}
	if got != want {
		t.Fatalf("approved: %+v", got)
	}
	for _, st := range []string{"rejected", "cancelled"} {
		if c := heldsway.OrderCounts(st, 5000, 0, lines); !c.IsZero() {
			t.Fatalf("%s counts %+v", st, c)
		}
	}
}

func TestMetricValuesAndChanges(t *testing.T) {
	t.Parallel()
	c := heldsway.Counts{Clicks: 8, Pageviews: 6, Sessions: 4, Conversions: 5, AddToCarts: 2, Revenue: 22000,
		CommissionPending: 400, CommissionApproved: 500, CommissionPaid: 1000}
	for name, want := range map[string]int64{"total_clicks": 8, "pages_per_visit": 150, "conversion_rate": 6250,
		"cart_to_conversion_rate": 25000, "total_commission": 1900, "unique_visitors": 4, "total_revenue": 22000} {
		if got := heldsway.MetricValue(name, c); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	// Nothing to divide by: 0, never NaN or a panic.
	for _, m := range heldsway.MetricNames {
		if v := heldsway.MetricValue(m, heldsway.Counts{}); v != 0 {
			t.Errorf("%s of nothing = %d", m, v)
		}
	}
	for _, c := range []struct{ cur, prev, want int64 }{{8, 1, 70000}, {5, 8, -3750}, {0, 0, 0}, {5, 0, 0}, {0, 5, -10000},
		{2, 3, -3333}, {1, 3, -6667}} {
		if got := heldsway.PercentChange(c.cur, c.prev); got != c.want {
			t.Errorf("PercentChange(%d, %d) = %d, want %d", c.cur, c.prev, got, c.want)
		}
	}
	if _, err := heldsway.ParseMetrics("metrics", "total_clicks,nope"); heldsway.ErrorCode(err) != heldsway.EVALIDATION {
		t.Errorf("unknown metric: %v", err)
	}
	if m, _ := heldsway.ParseMetrics("metrics", " conversion_rate , total_clicks,,total_clicks"); len(m) != 2 ||
		m[0] != "total_clicks" || m[1] != "conversion_rate" {
		t.Errorf("selection %v", m)
	}
}

func TestDaysInTimeZones(t *testing.T) {
	t.Parallel()
	ny, _ := time.LoadLocation("America/New_York")
	d := heldsway.Day(20261101)
	if s, e := d.Start(ny), d.AddDays(1).Start(ny); !s.Equal(time.Date(2026, 11, 1, 4, 0, 0, 0, time.UTC)) ||
		e.Sub(s) != 25*time.Hour {
		t.Errorf("1 November in New York: %v + %v", s, e.Sub(s))
	}
	if s := heldsway.Day(20260308).Start(ny); heldsway.Day(20260309).Start(ny).Sub(s) != 23*time.Hour {
		t.Errorf("8 March in New York is 23 hours")
	}
	// A zone whose clocks skip midnight: the day begins at 01:00.
	havana, _ := time.LoadLocation("America/Havana")
	s := heldsway.Day(20260308).Start(havana)
	if heldsway.DayOf(s, havana) != 20260308 || heldsway.DayOf(s.Add(-time.Second), havana) != 20260307 {
		t.Errorf("Havana 8 March starts at %v", s.In(havana))
	}
	if heldsway.DaysBetween(20261001, 20261031) != 31 || heldsway.Day(20261231).AddDays(1) != 20270101 {
		t.Errorf("day arithmetic")
	}
	f, to := heldsway.PreviousWindow(20261003, 20261102)
	if f != 20260902 || to != 20261002 {
		t.Errorf("previous window %v %v", f, to)
	}
}
