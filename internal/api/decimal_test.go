package api

import (
	"encoding/json"
	"testing"

	"github.com/heldsway/heldsway/internal/money"
)

func TestDecimalRoundTrip(t *testing.T) {
	t.Parallel()
	var in struct {
		Total Decimal `json:"total"`
	}
	if err := json.Unmarshal([]byte(`{"total": 120.10}`), &in); err != nil {
		t.Fatal(err)
	}
	usd := money.MustCurrency("USD")
	m, err := in.Total.Minor(usd)
	if err != nil || m != 12010 {
		t.Fatalf("minor = %d, %v", m, err)
	}
	if err := json.Unmarshal([]byte(`{"total": "12"}`), &in); err == nil {
		t.Fatal("string accepted as a number")
	}
	out, _ := json.Marshal(map[string]any{"a": Amount{12010, usd}, "j": Amount{500, money.MustCurrency("JPY")},
		"r": Rate(1050), "s": RateString(1000)})
	if string(out) != `{"a":120.10,"j":500,"r":10.50,"s":"10.00"}` {
		t.Fatalf("marshal: %s", out)
	}
}
