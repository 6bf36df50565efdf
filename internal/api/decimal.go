package api

import (
	"bytes"
	"errors"

	"github.com/danielgtaylor/huma/v2"

	"github.com/heldsway/heldsway/internal/money"
)

// Decimal is a JSON number in a request, kept as its exact text so money is
// never parsed through a float. Convert with Minor or Rate.
type Decimal string

// UnmarshalJSON keeps the number's literal text.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || !(b[0] == '-' || (b[0] >= '0' && b[0] <= '9')) {
		return errors.New("expected number")
	}
	*d = Decimal(b)
	return nil
}

// Schema documents Decimal as a number.
func (Decimal) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: "number", Description: "Decimal amount in the currency's units, e.g. 120.50."}
}

// Minor converts to minor units of c; the error message suits a field detail.
func (d Decimal) Minor(c money.Currency) (int64, error) {
	return money.ParseMinor(string(d), c)
}

// Rate converts a percentage to basis points.
func (d Decimal) Rate() (int64, error) {
	return money.ParseRate(string(d))
}

// Amount renders minor units as a JSON number with exactly the currency's
// decimals (12450.00, 500 for JPY).
type Amount struct {
	Minor    int64
	Currency money.Currency
}

func (a Amount) MarshalJSON() ([]byte, error) {
	return []byte(money.Format(a.Minor, a.Currency)), nil
}

// Schema documents Amount as a number.
func (Amount) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: "number", Description: "Amount in the currency's units with its exact minor-unit decimals.", Examples: []any{12450.00}}
}

// Rate renders basis points as a JSON number with two decimals (10.00).
type Rate int64

func (r Rate) MarshalJSON() ([]byte, error) {
	return []byte(money.FormatRate(int64(r))), nil
}

// Schema documents Rate as a number.
func (Rate) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: "number", Description: "Percentage with two decimals.", Examples: []any{10.00}}
}

// RateString renders basis points as a decimal string ("10.00"), the documented
// type of an affiliate's commission_rate.
type RateString int64

func (r RateString) MarshalJSON() ([]byte, error) {
	return []byte(`"` + money.FormatRate(int64(r)) + `"`), nil
}

// Schema documents RateString as a decimal string.
func (RateString) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: "string", Pattern: `^\d{1,3}\.\d{2}$`, Examples: []any{"10.00"}}
}
