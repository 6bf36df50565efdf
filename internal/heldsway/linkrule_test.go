package heldsway_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

func lrInt(v int64) *int64 { return &v }

func lrStr(v string) *string { return &v }

func TestLinkRuleMatches(t *testing.T) {
	t.Parallel()
	usd, eur := money.MustCurrency("USD"), money.MustCurrency("EUR")
	items := []heldsway.LineItem{{ProductID: "SKU-1", Category: "Shoes"}, {ProductID: "SKU-2", Category: ""}}
	order := heldsway.LinkRuleOrder{Currency: "USD", Total: 10000, Items: items}
	pct := func(c *heldsway.LinkRuleConditions) heldsway.LinkRule {
		return heldsway.LinkRule{Type: heldsway.LinkRulePercentage, Value: 2000, Currency: usd, IsActive: true, Conditions: c}
	}
	for _, c := range []struct {
		name  string
		rule  heldsway.LinkRule
		order heldsway.LinkRuleOrder
		want  bool
	}{
		{"no conditions", pct(nil), order, true},
		{"inactive", heldsway.LinkRule{Type: heldsway.LinkRulePercentage, Value: 2000, Currency: usd}, order, false},
		{"product listed", pct(&heldsway.LinkRuleConditions{ProductIDs: []string{"SKU-9", "SKU-2"}}), order, true},
		{"product not listed", pct(&heldsway.LinkRuleConditions{ProductIDs: []string{"SKU-9"}}), order, false},
		{"product ids are case-sensitive", pct(&heldsway.LinkRuleConditions{ProductIDs: []string{"sku-1"}}), order, false},
		{"category case-insensitive", pct(&heldsway.LinkRuleConditions{Categories: []string{"SHOES"}}), order, true},
		{"category not listed", pct(&heldsway.LinkRuleConditions{Categories: []string{"Hats"}}), order, false},
		{"an empty category matches nothing", pct(&heldsway.LinkRuleConditions{Categories: []string{""}}), order, false},
		{"no line items", pct(&heldsway.LinkRuleConditions{ProductIDs: []string{"SKU-1"}}), heldsway.LinkRuleOrder{Currency: "USD", Total: 10000}, false},
		{"minimum reached exactly", pct(&heldsway.LinkRuleConditions{MinOrderAmount: lrInt(10000)}), order, true},
		{"minimum missed by a cent", pct(&heldsway.LinkRuleConditions{MinOrderAmount: lrInt(10001)}), order, false},
		{"all conditions hold", pct(&heldsway.LinkRuleConditions{ProductIDs: []string{"SKU-1"}, Categories: []string{"shoes"}, MinOrderAmount: lrInt(5000)}), order, true},
		{"one condition of several fails", pct(&heldsway.LinkRuleConditions{ProductIDs: []string{"SKU-1"}, Categories: []string{"Hats"}, MinOrderAmount: lrInt(5000)}), order, false},
		{"percentage applies in another currency", pct(nil), heldsway.LinkRuleOrder{Currency: "EUR", Total: 10000, Items: items}, true},
		{"a minimum in another currency never holds", pct(&heldsway.LinkRuleConditions{MinOrderAmount: lrInt(0)}), heldsway.LinkRuleOrder{Currency: "EUR", Total: 10000}, false},
		{"flat in the order's currency", heldsway.LinkRule{Type: heldsway.LinkRuleFlat, Value: 500, Currency: eur, IsActive: true}, heldsway.LinkRuleOrder{Currency: "EUR"}, true},
		{"flat in another currency", heldsway.LinkRule{Type: heldsway.LinkRuleFlat, Value: 500, Currency: eur, IsActive: true}, order, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := c.rule.Matches(c.order); got != c.want {
				t.Fatalf("Matches = %v, want %v", got, c.want)
			}
		})
	}
}

func TestFirstMatchingRule(t *testing.T) {
	t.Parallel()
	usd := money.MustCurrency("USD")
	rule := func(id, prio int64, active bool, cats ...string) *heldsway.LinkRule {
		r := &heldsway.LinkRule{ID: id, Type: heldsway.LinkRulePercentage, Value: id * 100, Currency: usd, Priority: prio, IsActive: active}
		if len(cats) > 0 {
			r.Conditions = &heldsway.LinkRuleConditions{Categories: cats}
		}
		return r
	}
	shoes := heldsway.LinkRuleOrder{Currency: "USD", Total: 100, Items: []heldsway.LineItem{{Category: "shoes"}}}
	hats := heldsway.LinkRuleOrder{Currency: "USD", Total: 100, Items: []heldsway.LineItem{{Category: "hats"}}}
	// Given out of order on purpose: the function orders by priority, then id.
	rules := []*heldsway.LinkRule{rule(5, 2, true), rule(4, 1, true, "shoes"), rule(3, 1, true, "shoes"), rule(1, 0, false), rule(2, 5, true, "hats")}
	if got := heldsway.FirstMatchingRule(rules, shoes); got == nil || got.ID != 3 {
		t.Fatalf("shoes: %+v, want rule 3 (priority 1, lower id than 4; rule 1 is inactive)", got)
	}
	if got := heldsway.FirstMatchingRule(rules, hats); got == nil || got.ID != 5 {
		t.Fatalf("hats: %+v, want rule 5 (priority 2 before the hats rule's 5)", got)
	}
	if got := heldsway.FirstMatchingRule(rules[1:4], hats); got != nil {
		t.Fatalf("nothing matches: %+v", got)
	}
	if got := heldsway.FirstMatchingRule(nil, hats); got != nil {
		t.Fatalf("no rules: %+v", got)
	}
}

func TestLinkRuleInput(t *testing.T) {
	t.Parallel()
	usd, jpy := money.MustCurrency("USD"), money.MustCurrency("JPY")
	t.Run("normalized and built", func(t *testing.T) {
		t.Parallel()
		in := heldsway.LinkRuleInput{Type: " Percentage ", Value: "12.5", Priority: lrInt(4),
			Conditions: &heldsway.LinkRuleConditionsInput{ProductIDs: []string{" A ", "B", "A"}, Categories: []string{"Shoes", "SHOES", "hats"},
				MinOrderAmount: lrStr("19.99")}}
		in.Normalize()
		if err := in.Validate(); err != nil {
			t.Fatal(err)
		}
		r, err := in.Rule(1, 2, usd)
		if err != nil {
			t.Fatal(err)
		}
		c := r.Conditions
		if r.Type != "percentage" || r.Value != 1250 || r.Priority != 4 || !r.IsActive || r.Currency != usd || r.LinkID != 2 ||
			!slices.Equal(c.ProductIDs, []string{"A", "B"}) || !slices.Equal(c.Categories, []string{"Shoes", "hats"}) || *c.MinOrderAmount != 1999 {
			t.Fatalf("rule %+v, conditions %+v", r, c)
		}
	})
	t.Run("empty conditions are none", func(t *testing.T) {
		t.Parallel()
		in := heldsway.LinkRuleInput{Type: "flat", Value: "500", Conditions: &heldsway.LinkRuleConditionsInput{ProductIDs: []string{}}}
		in.Normalize()
		r, err := in.Rule(1, 2, jpy)
		if err != nil || r.Conditions != nil || r.Value != 500 {
			t.Fatalf("rule %+v, %v", r, err)
		}
	})
	for _, c := range []struct {
		name  string
		in    heldsway.LinkRuleInput
		cur   money.Currency
		field string
		msg   string
	}{
		{"type", heldsway.LinkRuleInput{Type: "tier", Value: "1"}, usd, "type", "The selected type is invalid. Allowed: percentage, flat."},
		{"value missing", heldsway.LinkRuleInput{Type: "flat"}, usd, "value", "The value field is required."},
		{"percentage above 100", heldsway.LinkRuleInput{Type: "percentage", Value: "100.01"}, usd, "value", "The value field must be between 0 and 100 for a percentage."},
		{"percentage negative", heldsway.LinkRuleInput{Type: "percentage", Value: "-1"}, usd, "value", "The value field must be between 0 and 100 for a percentage."},
		{"percentage 3 decimals", heldsway.LinkRuleInput{Type: "percentage", Value: "1.001"}, usd, "value", "The value field must have at most two decimal places."},
		{"flat JPY decimals", heldsway.LinkRuleInput{Type: "flat", Value: "1.5"}, jpy, "value", "The value field must have at most 0 decimal places for JPY."},
		{"flat negative", heldsway.LinkRuleInput{Type: "flat", Value: "-0.01"}, usd, "value", "The value field must be at least 0."},
		{"priority", heldsway.LinkRuleInput{Type: "flat", Value: "1", Priority: lrInt(-1)}, usd, "priority", "The priority field must be between 0 and 100000."},
		{"minimum negative", heldsway.LinkRuleInput{Type: "flat", Value: "1", Conditions: &heldsway.LinkRuleConditionsInput{MinOrderAmount: lrStr("-1")}},
			usd, "conditions.min_order_amount", "The conditions.min_order_amount field must be at least 0."},
		{"blank product id", heldsway.LinkRuleInput{Type: "flat", Value: "1", Conditions: &heldsway.LinkRuleConditionsInput{ProductIDs: []string{"x", " "}}},
			usd, "conditions.product_ids.1", "The conditions.product_ids.1 field must not be empty."},
		{"101 categories", heldsway.LinkRuleInput{Type: "flat", Value: "1", Conditions: &heldsway.LinkRuleConditionsInput{Categories: manyTexts(101)}},
			usd, "conditions.categories", "The conditions.categories field must not have more than 100 items."},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			in := c.in
			in.Normalize()
			err := in.Validate()
			if err == nil {
				_, err = in.Rule(1, 2, c.cur)
			}
			var he *heldsway.Error
			if !errors.As(err, &he) || he.Code != heldsway.EVALIDATION {
				t.Fatalf("err %v", err)
			}
			if got, _ := he.Details[c.field].([]string); !slices.Contains(got, c.msg) {
				t.Fatalf("details %v, want %s: %q", he.Details, c.field, c.msg)
			}
		})
	}
}

func manyTexts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "c" + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	return out
}

func TestLinkRuleUpdateApply(t *testing.T) {
	t.Parallel()
	usd, eur := money.MustCurrency("USD"), money.MustCurrency("EUR")
	base := func() heldsway.LinkRule {
		return heldsway.LinkRule{Type: heldsway.LinkRuleFlat, Value: 500, Currency: usd, IsActive: true, Priority: 1,
			Conditions: &heldsway.LinkRuleConditions{Categories: []string{"a"}, MinOrderAmount: lrInt(1000)}}
	}
	fails := func(t *testing.T, err error, field, msg string) {
		t.Helper()
		var he *heldsway.Error
		if !errors.As(err, &he) {
			t.Fatalf("err %v", err)
		}
		if got, _ := he.Details[field].([]string); !slices.Contains(got, msg) {
			t.Fatalf("details %v", he.Details)
		}
	}
	t.Run("type change needs a value", func(t *testing.T) {
		r := base()
		u := heldsway.LinkRuleUpdate{Type: lrStr("percentage")}
		fails(t, u.Apply(&r, usd), "value", "The value field is required when the type changes.")
	})
	t.Run("currency change needs the amounts again", func(t *testing.T) {
		r := base()
		err := (&heldsway.LinkRuleUpdate{Priority: lrInt(2)}).Apply(&r, eur)
		fails(t, err, "value", "The value field is required: the link's program currency changed from USD to EUR.")
		fails(t, err, "conditions.min_order_amount", "The conditions.min_order_amount field is required: the link's program currency changed from USD to EUR.")
		r = base()
		u := heldsway.LinkRuleUpdate{Value: lrStr("4"), SetConditions: true}
		if err := u.Apply(&r, eur); err != nil || r.Currency != eur || r.Value != 400 || r.Conditions != nil {
			t.Fatalf("%+v, %v", r, err)
		}
	})
	t.Run("a percentage rule without amounts follows the currency", func(t *testing.T) {
		r := heldsway.LinkRule{Type: heldsway.LinkRulePercentage, Value: 1000, Currency: usd, IsActive: true}
		if err := (&heldsway.LinkRuleUpdate{IsActive: new(bool)}).Apply(&r, eur); err != nil || r.Currency != eur || r.IsActive {
			t.Fatalf("%+v, %v", r, err)
		}
	})
}
