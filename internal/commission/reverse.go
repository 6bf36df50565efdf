package commission

import "github.com/heldsway/heldsway/internal/money"

// Standing is a commission line as a refund finds it: the commissions row's
// amount and reversed_amount.
type Standing struct {
	Amount   int64 // as calculated, ≥ 0
	Reversed int64 // reversed by earlier refunds, in [0, Amount]
}

// Reverse returns, for each line, the amount a refund reverses now.
//
// refunded is the order's refunded amount so far, this refund included (the
// orders.refunded_amount after it), and orderAmount is what refunds are measured
// against: the same measure as refunded (the order total, when refunds are
// amounts the merchant paid back). Taking the cumulative figure rather than this
// refund alone is what keeps repeated partial refunds exact: each line's
// cumulative reversal is Amount × refunded / orderAmount rounded half-up, and
// this call returns that target minus what is already Reversed. Rounding errors
// therefore never accumulate, the reversals of any sequence of partial refunds
// add up to the reversal of their sum, and once refunded reaches orderAmount
// the line is reversed to exactly its Amount.
//
// A reversal is never negative and never exceeds Amount − Reversed, so no
// sequence of calls over-reverses, even a refund above the order amount or a
// line reversed by other means. A refund of a zero-amount order reverses its
// lines in full. Reverse does not look at flags or status: the caller passes
// the lines that are still owed or paid (not rejected ones), and records a
// reversal of a paid line as a negative balance entry.
//
// Errors: ErrInvalid for a negative amount, Reversed outside [0, Amount], or
// refunded or orderAmount outside [0, money.MaxMinor].
func Reverse(lines []Standing, refunded, orderAmount int64) ([]int64, error) {
	if err := checkAmount("refunded", refunded); err != nil {
		return nil, err
	}
	if err := checkAmount("order amount", orderAmount); err != nil {
		return nil, err
	}
	out := make([]int64, len(lines))
	for i, l := range lines {
		if err := checkAmount("line amount", l.Amount); err != nil {
			return nil, err
		}
		if l.Reversed < 0 || l.Reversed > l.Amount {
			return nil, invalid("line %d reversed %d is outside [0, %d]", i, l.Reversed, l.Amount)
		}
		var target int64
		switch {
		case refunded == 0:
			target = 0
		case refunded >= orderAmount:
			target = l.Amount
		default:
			target = money.MulDivHalfUp(l.Amount, refunded, orderAmount)
		}
		out[i] = min(max(target-l.Reversed, 0), l.Amount-l.Reversed)
	}
	return out, nil
}
