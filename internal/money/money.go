// Package money converts between decimal amounts as clients write them ("120.50")
// and integer minor units, and does the integer arithmetic of rates. Money is
// never a float.
package money

import (
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/shopspring/decimal"
	"golang.org/x/text/currency"
)

// Currency is an ISO 4217 code with its number of minor-unit digits.
type Currency struct {
	Code  string
	Scale int32 // digits after the decimal point: USD 2, JPY 0, KWD 3
}

// ParseCurrency validates an ISO 4217 code (case-insensitive) and returns it with
// its minor-unit scale.
func ParseCurrency(code string) (Currency, error) {
	if len(code) != 3 {
		return Currency{}, errors.New("must be a 3-letter ISO 4217 code")
	}
	u, err := currency.ParseISO(strings.ToUpper(code))
	if err != nil {
		return Currency{}, errors.New("must be a valid ISO 4217 currency code")
	}
	scale, _ := currency.Standard.Rounding(u)
	return Currency{Code: u.String(), Scale: int32(scale)}, nil
}

// MustCurrency is ParseCurrency for codes known to be valid.
func MustCurrency(code string) Currency {
	c, err := ParseCurrency(code)
	if err != nil {
		panic(err)
	}
	return c
}

// MaxMinor bounds any stored amount (about 10^15 minor units: ten trillion
// dollars), so sums of many amounts and rate products stay far from overflow.
const MaxMinor = 1_000_000_000_000_000

// ErrPrecision is returned for amounts with more decimals than the currency has.
var ErrPrecision = errors.New("has more decimal places than the currency allows")

// ParseMinor converts a decimal string ("120.50") to minor units of c, exactly.
// More decimals than the currency has, or an amount beyond MaxMinor, is an error.
func ParseMinor(s string, c Currency) (int64, error) {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return 0, errors.New("must be a number")
	}
	m := d.Shift(c.Scale)
	if !m.IsInteger() {
		return 0, ErrPrecision
	}
	if m.Abs().GreaterThan(decimal.NewFromInt(MaxMinor)) {
		return 0, errors.New("is out of range")
	}
	return m.IntPart(), nil
}

// Format renders minor units of c as a decimal string with exactly c.Scale
// decimals: 12345 USD → "123.45", 500 JPY → "500".
func Format(minor int64, c Currency) string {
	return decimal.New(minor, -c.Scale).StringFixed(c.Scale)
}

// Rates are basis points: hundredths of a percent. 10.00% = 1000.

// ParseRate converts a percentage with at most two decimals ("12.5") to basis points.
func ParseRate(s string) (int64, error) {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return 0, errors.New("must be a number")
	}
	bp := d.Shift(2)
	if !bp.IsInteger() {
		return 0, errors.New("must have at most two decimal places")
	}
	return bp.IntPart(), nil
}

// FormatRate renders basis points as a percentage with two decimals: 1000 → "10.00".
func FormatRate(bp int64) string {
	return decimal.New(bp, -2).StringFixed(2)
}

// ApplyRate returns amount × bp / 10000 rounded half-up (away from zero on ties),
// in exact integer arithmetic.
func ApplyRate(amount, bp int64) int64 {
	return MulDivHalfUp(amount, bp, 10000)
}

// MulDivHalfUp returns a × b / d rounded half away from zero. d must be positive.
func MulDivHalfUp(a, b, d int64) int64 {
	if d <= 0 {
		panic(fmt.Sprintf("money: MulDivHalfUp with divisor %d", d))
	}
	p := new(big.Int).Mul(big.NewInt(a), big.NewInt(b))
	neg := p.Sign() < 0
	p.Abs(p)
	q, r := new(big.Int).QuoRem(p, big.NewInt(d), new(big.Int))
	if r.Mul(r, big.NewInt(2)).Cmp(big.NewInt(d)) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if neg {
		q.Neg(q)
	}
	return q.Int64()
}
