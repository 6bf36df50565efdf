package money

import "testing"

func TestParseFormat(t *testing.T) {
	t.Parallel()
	usd, jpy, kwd := MustCurrency("usd"), MustCurrency("JPY"), MustCurrency("KWD")
	if usd.Scale != 2 || jpy.Scale != 0 || kwd.Scale != 3 {
		t.Fatalf("scales: %d %d %d", usd.Scale, jpy.Scale, kwd.Scale)
	}
	tests := []struct {
		in      string
		c       Currency
		want    int64
		wantErr bool
		out     string
	}{
		{"120.50", usd, 12050, false, "120.50"},
		{"120.5", usd, 12050, false, "120.50"},
		{"0", usd, 0, false, "0.00"},
		{"1e2", usd, 10000, false, "100.00"},
		{"0.001", usd, 0, true, ""},
		{"500", jpy, 500, false, "500"},
		{"500.5", jpy, 0, true, ""},
		{"1.234", kwd, 1234, false, "1.234"},
		{"-3.10", usd, -310, false, "-3.10"},
		{"abc", usd, 0, true, ""},
		{"100000000000000000", usd, 0, true, ""},
	}
	for _, tt := range tests {
		got, err := ParseMinor(tt.in, tt.c)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseMinor(%q, %s) = %d, %v", tt.in, tt.c.Code, got, err)
			continue
		}
		if !tt.wantErr && Format(got, tt.c) != tt.out {
			t.Errorf("Format(%d, %s) = %q, want %q", got, tt.c.Code, Format(got, tt.c), tt.out)
		}
	}
	if _, err := ParseCurrency("XYZ"); err == nil {
		t.Error("XYZ accepted")
	}
}

func TestApplyRateHalfUp(t *testing.T) {
	t.Parallel()
	tests := []struct{ amount, bp, want int64 }{
		{10000, 1000, 1000}, // 10% of 100.00
		{1005, 1000, 101},   // 10.05 × 10% = 1.005 → 1.01 (half up)
		{1004, 1000, 100},   // 1.004 → 1.00
		{1, 5000, 1},        // 0.005 → 0.01
		{1, 4999, 0},
		{-1005, 1000, -101}, // reversals round symmetrically
		{MaxMinor, 10000, MaxMinor},
		{333, 3333, 111}, // 333 × 0.3333 = 110.99 → 111
	}
	for _, tt := range tests {
		if got := ApplyRate(tt.amount, tt.bp); got != tt.want {
			t.Errorf("ApplyRate(%d, %d) = %d, want %d", tt.amount, tt.bp, got, tt.want)
		}
	}
}

func TestRate(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"10": 1000, "12.5": 1250, "0.01": 1, "100.00": 10000} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v", in, got, err)
		}
	}
	if _, err := ParseRate("1.001"); err == nil {
		t.Error("three decimals accepted")
	}
	if FormatRate(1250) != "12.50" {
		t.Error(FormatRate(1250))
	}
}
