package commission

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/heldsway/heldsway/internal/money"
)

func TestReverse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		lines             []Standing
		refunded, ordered int64
		want              []int64
	}{
		{"nothing refunded", []Standing{{1250, 0}}, 0, 129_50, []int64{0}},
		{"full refund", []Standing{{1250, 0}, {625, 0}}, 129_50, 129_50, []int64{1250, 625}},
		{"half refund", []Standing{{1250, 0}, {625, 0}}, 64_75, 129_50, []int64{625, 313}}, // 312.5 → 313
		{"rounds half-up", []Standing{{1, 0}}, 1, 2, []int64{1}},                           // 0.5 → 1
		{"rounds down below half", []Standing{{1, 0}}, 49, 100, []int64{0}},                // 0.49 → 0
		{"second partial: only the difference", []Standing{{625, 313}}, 97_12, 129_50, []int64{156}},
		{"final partial reverses exactly the rest", []Standing{{625, 469}}, 129_50, 129_50, []int64{156}},
		{"over-refund reverses the rest, no more", []Standing{{1250, 1000}}, 500_00, 129_50, []int64{250}},
		{"already fully reversed", []Standing{{1250, 1250}}, 129_50, 129_50, []int64{0}},
		{"reversed by other means above the target", []Standing{{1250, 900}}, 64_75, 129_50, []int64{0}},
		{"zero line", []Standing{{0, 0}}, 10_00, 129_50, []int64{0}},
		{"zero-amount order refunded", []Standing{{5_00, 0}}, 1, 0, []int64{5_00}},
		{"zero-amount order, nothing refunded", []Standing{{5_00, 0}}, 0, 0, []int64{0}},
		{"no lines", nil, 10, 100, []int64{}},
		{"JPY", []Standing{{101, 0}}, 335, 1005, []int64{34}}, // 33.67 → 34
		{"largest amounts", []Standing{{money.MaxMinor, 0}}, money.MaxMinor - 1, money.MaxMinor, []int64{money.MaxMinor - 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Reverse(tt.lines, tt.refunded, tt.ordered)
			if err != nil {
				t.Fatalf("Reverse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Reverse = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReverseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		lines             []Standing
		refunded, ordered int64
	}{
		{"negative refunded", []Standing{{100, 0}}, -1, 100},
		{"negative order amount", []Standing{{100, 0}}, 1, -1},
		{"refunded beyond MaxMinor", []Standing{{100, 0}}, money.MaxMinor + 1, 100},
		{"negative line", []Standing{{-1, 0}}, 1, 100},
		{"negative reversed", []Standing{{100, -1}}, 1, 100},
		{"reversed above amount", []Standing{{100, 101}}, 1, 100},
	}
	for _, tt := range tests {
		if got, err := Reverse(tt.lines, tt.refunded, tt.ordered); !errors.Is(err, ErrInvalid) || got != nil {
			t.Errorf("%s: Reverse = %v, %v; want ErrInvalid", tt.name, got, err)
		}
	}
}

// TestReversePartialsSumToFull splits a full refund into random partial refunds,
// in many ways, and checks that the reversals add up to each line's amount
// exactly, that no step over-reverses, and that the running reversal after
// every step is the rounded proportion of the refunded share: no drift.
func TestReversePartialsSumToFull(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(4, 2025))
	for range 20000 {
		var orderAmount int64
		switch rng.IntN(4) {
		case 0:
			orderAmount = rng.Int64N(10) // tiny orders: rounding dominates
		case 1:
			orderAmount = rng.Int64N(100_000_00)
		case 2:
			orderAmount = money.MaxMinor - rng.Int64N(1000)
		default:
			orderAmount = rng.Int64N(money.MaxMinor + 1)
		}
		lines := make([]Standing, 1+rng.IntN(3))
		for i := range lines {
			lines[i].Amount = rng.Int64N(orderAmount + 1) // a commission is at most its base
		}
		// The refund is split into 1–12 parts; a part may be zero.
		parts := 1 + rng.IntN(12)
		cuts := make([]int64, parts-1)
		for i := range cuts {
			cuts[i] = rng.Int64N(orderAmount + 1)
		}
		cuts = append(cuts, orderAmount)
		slices.Sort(cuts)

		for _, refunded := range cuts {
			got, err := Reverse(lines, refunded, orderAmount)
			if err != nil {
				t.Fatalf("Reverse(%v, %d, %d): %v", lines, refunded, orderAmount, err)
			}
			for i, r := range got {
				l := &lines[i]
				if r < 0 || r > l.Amount-l.Reversed {
					t.Fatalf("line %+v: reversal %d outside [0, remaining]", *l, r)
				}
				l.Reversed += r
				want := l.Amount
				if refunded < orderAmount {
					want = money.MulDivHalfUp(l.Amount, refunded, orderAmount)
				}
				if l.Reversed != want {
					t.Fatalf("after refunding %d of %d: line reversed %d, want %d", refunded, orderAmount, l.Reversed, want)
				}
			}
		}
		for _, l := range lines {
			if l.Reversed != l.Amount {
				t.Fatalf("full refund in %d parts of %d: reversed %d of %d", parts, orderAmount, l.Reversed, l.Amount)
			}
		}
	}
}

// TestReverseCalculatedLines runs Calculate's lines through three refunds.
func TestReverseCalculatedLines(t *testing.T) {
	t.Parallel()
	in := baseInput()
	in.Program.Value, in.Program.TierRate = p64(1234), p64(333)
	in.Affiliate.Parent = &Parent{ID: 9}
	res, err := Calculate(in)
	if err != nil {
		t.Fatal(err)
	}
	st := make([]Standing, len(res.Lines))
	for i, l := range res.Lines {
		st[i] = Standing{Amount: l.Amount}
	}
	total := in.Order.Total // refunds are measured against what the customer paid
	for _, refunded := range []int64{33_33, 100_00, total} {
		rev, err := Reverse(st, refunded, total)
		if err != nil {
			t.Fatal(err)
		}
		for i := range st {
			st[i].Reversed += rev[i]
		}
	}
	for i, l := range res.Lines {
		if st[i].Reversed != l.Amount {
			t.Errorf("line %d: reversed %d of %d", i, st[i].Reversed, l.Amount)
		}
	}
}
