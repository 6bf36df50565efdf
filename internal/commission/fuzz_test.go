package commission

import (
	"reflect"
	"testing"

	"github.com/heldsway/heldsway/internal/money"
)

// amountOf maps any int64 into [0, money.MaxMinor].
func amountOf(v int64) int64 {
	v %= money.MaxMinor + 1
	if v < 0 {
		v = -v
	}
	return v
}

// rateOf maps any int64 into [0, MaxRate].
func rateOf(v int64) int64 { return amountOf(v) % (MaxRate + 1) }

// fuzzInput builds a valid Input from fuzzed values: sel's bits choose the
// optional parts, the numbers are folded into their valid ranges.
func fuzzInput(sub, disc, tax, total, a, b, c int64, sel uint32, months uint16, email string) Input {
	bit := func(n uint) bool { return sel>>n&1 == 1 }
	pick := func(n uint, k uint32) uint32 { return sel >> n % k }

	cur := []money.Currency{usd, jpy, kwd}[pick(0, 3)]
	in := Input{
		Order: Order{Currency: cur, Subtotal: amountOf(sub), Discount: amountOf(disc), Tax: amountOf(tax),
			Total: amountOf(total), CustomerEmail: email},
		Program: Program{
			Currency:  cur,
			Type:      []Type{Percentage, Flat}[pick(2, 2)],
			Base:      []Base{"", BaseNet, BaseSubtotal, BaseTotal}[pick(3, 4)],
			Recurring: []Recurring{"", RecurringOff, RecurringMonths, RecurringLifetime}[pick(5, 4)],
		},
		Platform: Platform{BaseRate: rateOf(c)},
	}
	in.Program.RecurringMonths = 1 + int(months%120)
	if bit(7) {
		in.Order.Renewal = &Renewal{MonthsSinceFirst: int(months >> 4)}
	}
	if !bit(8) {
		return in // unattributed
	}
	in.Affiliate = &Affiliate{ID: 1, Email: "a@example.com"}
	if bit(9) {
		in.Affiliate.Rate = p64(rateOf(a))
	}
	if bit(10) {
		in.Affiliate.Parent = &Parent{ID: 2, Email: "p@example.com"}
	}
	if bit(11) {
		v := rateOf(b)
		if in.Program.Type == Flat {
			v = amountOf(b)
		}
		in.Program.Value = &v
	}
	if bit(12) {
		in.Program.TierRate = p64(rateOf(c))
	}
	if bit(13) {
		in.LinkRule = &LinkRule{Type: Percentage, Value: rateOf(a ^ b)}
		if bit(14) {
			in.LinkRule = &LinkRule{Type: Flat, Value: amountOf(a ^ b)}
		}
	}
	// Tiers: bands cut at points derived from a and b, possibly with gaps.
	lo, hi := min(amountOf(a), amountOf(b)), max(amountOf(a), amountOf(b))
	if bit(15) {
		in.Tiers = append(in.Tiers, Tier{Min: lo, Rate: rateOf(c)})
		if hi > lo {
			in.Tiers[0].Max = p64(hi)
			in.Tiers = append(in.Tiers, Tier{Min: hi, Rate: rateOf(a)})
		}
	}
	if bit(16) {
		cut := min(lo+1, money.MaxMinor)
		in.Platform.Tiers = []Tier{{Min: 0, Max: p64(cut), Rate: rateOf(b)}, {Min: cut, Rate: rateOf(c ^ a)}}
	}
	return in
}

// FuzzCalculate: for every valid input the engine returns no error, never
// panics, and pays within [0, base] per line; renewals it does not pay are 0;
// the same input gives the same result. Run: go test -fuzz FuzzCalculate ./internal/commission/
func FuzzCalculate(f *testing.F) {
	f.Add(int64(130_00), int64(5_00), int64(4_50), int64(129_50), int64(1000), int64(500), int64(250), uint32(0xffffffff), uint16(13), "a@example.com")
	f.Add(int64(50), int64(0), int64(0), int64(50), int64(100), int64(100), int64(100), uint32(1<<8|1<<11), uint16(0), "")
	f.Add(int64(-1), int64(1<<62), int64(-1<<63), int64(1<<63-1), int64(-1<<63), int64(1<<63-1), int64(0), uint32(0x1ff00), uint16(65535), " P@EXAMPLE.com ")
	f.Fuzz(func(t *testing.T, sub, disc, tax, total, a, b, c int64, sel uint32, months uint16, email string) {
		in := fuzzInput(sub, disc, tax, total, a, b, c, sel, months, email)
		res, err := Calculate(in)
		if err != nil {
			t.Fatalf("valid input refused: %v\n%+v", err, in)
		}
		if in.Affiliate == nil {
			if len(res.Lines) != 0 {
				t.Fatalf("unattributed order has lines: %+v", res.Lines)
			}
			return
		}
		if res.BaseAmount < 0 || len(res.Lines) < 1 || len(res.Lines) > 2 {
			t.Fatalf("result %+v", res)
		}
		for _, l := range res.Lines {
			if l.Amount < 0 || l.Amount > l.BaseAmount {
				t.Fatalf("line amount %d outside [0, base %d]: %+v", l.Amount, l.BaseAmount, l)
			}
			if l.Explanation == "" {
				t.Fatalf("line without explanation: %+v", l)
			}
			for _, fl := range l.Flags {
				if (fl == FlagRecurringOff || fl == FlagRecurringLimit) && l.Amount != 0 {
					t.Fatalf("unpaid renewal with amount %d", l.Amount)
				}
			}
		}
		if p := res.Payable(); p < 0 || p > 2*res.BaseAmount {
			t.Fatalf("payable %d for base %d", p, res.BaseAmount)
		}
		again, _ := Calculate(in)
		if !reflect.DeepEqual(res, again) {
			t.Fatalf("not deterministic:\n%+v\n%+v", res, again)
		}
	})
}

// FuzzReverse: a reversal is never negative, never exceeds what remains, and a
// refund of the whole order reverses exactly what remains.
func FuzzReverse(f *testing.F) {
	f.Add(int64(1250), int64(313), int64(64_75), int64(129_50))
	f.Add(int64(1), int64(0), int64(1), int64(2))
	f.Add(int64(-1<<63), int64(1<<63-1), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, amount, reversed, refunded, orderAmount int64) {
		amount, refunded, orderAmount = amountOf(amount), amountOf(refunded), amountOf(orderAmount)
		reversed = amountOf(reversed) % (amount + 1)
		got, err := Reverse([]Standing{{amount, reversed}}, refunded, orderAmount)
		if err != nil {
			t.Fatalf("valid input refused: %v", err)
		}
		r := got[0]
		if r < 0 || r > amount-reversed {
			t.Fatalf("Reverse(%d of %d reversed, %d of %d) = %d", reversed, amount, refunded, orderAmount, r)
		}
		if refunded >= orderAmount && refunded > 0 && r != amount-reversed {
			t.Fatalf("full refund reversed %d, remaining %d", r, amount-reversed)
		}
	})
}
