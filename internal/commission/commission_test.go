package commission

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/money"
)

var (
	usd = money.MustCurrency("USD")
	jpy = money.MustCurrency("JPY")
	kwd = money.MustCurrency("KWD")
)

func p64(v int64) *int64 { return &v }

// platform mirrors heldsway.PlatformTiers(USD) and PlatformBaseRate.
var platform = Platform{
	Tiers: []Tier{
		{Min: 0, Max: p64(100_00), Rate: 500},
		{Min: 100_00, Max: p64(500_00), Rate: 750},
		{Min: 500_00, Rate: 1000},
	},
	BaseRate: 1000,
}

// baseInput is an attributed USD order of subtotal 130.00, discount 5.00, tax
// 4.50, total 129.50 (net 125.00) in a program with no rate of its own.
func baseInput() Input {
	return Input{
		Order: Order{
			Currency: usd, Subtotal: 130_00, Discount: 5_00, Tax: 4_50, Total: 129_50,
			CustomerEmail: "buyer@example.com",
		},
		Affiliate: &Affiliate{ID: 7, Email: "aff@example.com"},
		Program:   Program{Currency: usd, Type: Percentage, Base: BaseNet, Recurring: RecurringOff},
		Platform:  platform,
	}
}

// want is the part of a Line a table compares; explanations have their own test.
type want struct {
	aff, tier int
	amount    int64
	typ       Type
	value     int64
	rule      Rule
	base      Base
	baseAmt   int64
	flags     []Flag
}

func project(ls []Line) []want {
	var out []want
	for _, l := range ls {
		out = append(out, want{int(l.AffiliateID), l.Tier, l.Amount, l.Type, l.Value, l.Rule, l.Base, l.BaseAmount, l.Flags})
	}
	return out
}

func pct(aff int, amount, bp int64, rule Rule, baseAmt int64, flags ...Flag) want {
	return want{aff, 1, amount, Percentage, bp, rule, BaseNet, baseAmt, flags}
}

func TestCalculate(t *testing.T) {
	t.Parallel()

	// everything sets every precedence level, so each case below removes the
	// levels above the one it tests.
	everything := func(in *Input) {
		in.LinkRule = &LinkRule{Type: Percentage, Value: 2000}
		in.Affiliate.Rate = p64(1500)
		in.Program.Value = p64(1200)
		in.Tiers = []Tier{{Min: 0, Max: p64(100_00), Rate: 300}, {Min: 100_00, Max: p64(200_00), Rate: 400}}
	}
	noLink := func(in *Input) { everything(in); in.LinkRule = nil }
	noOverride := func(in *Input) { noLink(in); in.Affiliate.Rate = nil }
	noProgram := func(in *Input) { noOverride(in); in.Program.Value = nil }
	subtotalBase := func(in *Input, subtotal int64) {
		in.Program.Base = BaseSubtotal
		in.Order.Subtotal, in.Order.Discount, in.Order.Tax, in.Order.Total = subtotal, 0, 0, subtotal
	}
	// bands are given out of order: the engine sorts them by Min.
	bands := []Tier{{Min: 200_00, Rate: 300}, {Min: 0, Max: p64(100_00), Rate: 100}, {Min: 100_00, Max: p64(200_00), Rate: 200}}
	sub := func(amount, bp int64, rule Rule, baseAmt int64) want {
		return want{7, 1, amount, Percentage, bp, rule, BaseSubtotal, baseAmt, nil}
	}

	tests := []struct {
		name   string
		modify func(*Input)
		want   []want
	}{
		// Precedence, one level at a time, on net 125.00.
		{"link rule wins over every level", everything, []want{pct(7, 25_00, 2000, RuleLink, 125_00)}},
		{"link rule flat", func(in *Input) { everything(in); in.LinkRule = &LinkRule{Type: Flat, Value: 7_00} },
			[]want{{7, 1, 7_00, Flat, 7_00, RuleLink, BaseNet, 125_00, nil}}},
		{"affiliate override", noLink, []want{pct(7, 18_75, 1500, RuleAffiliateOverride, 125_00)}},
		{"affiliate override of 0% is a rule", func(in *Input) { noLink(in); in.Affiliate.Rate = p64(0) },
			[]want{pct(7, 0, 0, RuleAffiliateOverride, 125_00)}},
		{"program rate", noOverride, []want{pct(7, 15_00, 1200, RuleProgramRate, 125_00)}},
		{"program rate flat", func(in *Input) { noOverride(in); in.Program.Type, in.Program.Value = Flat, p64(10_00) },
			[]want{{7, 1, 10_00, Flat, 10_00, RuleProgramRate, BaseNet, 125_00, nil}}},
		{"program flat capped at the base", func(in *Input) { noOverride(in); in.Program.Type, in.Program.Value = Flat, p64(200_00) },
			[]want{{7, 1, 125_00, Flat, 200_00, RuleProgramRate, BaseNet, 125_00, nil}}},
		{"program type flat without value inherits tiers", func(in *Input) { noProgram(in); in.Program.Type = Flat },
			[]want{pct(7, 5_00, 400, RuleWorkspaceTier, 125_00)}},
		{"workspace tier", noProgram, []want{pct(7, 5_00, 400, RuleWorkspaceTier, 125_00)}},
		{"workspace tiers without a matching band fall through to platform tiers",
			func(in *Input) { noProgram(in); in.Tiers = []Tier{{Min: 0, Max: p64(50_00), Rate: 300}} },
			[]want{pct(7, 9_38, 750, RulePlatformTier, 125_00)}}, // 9.375 → 9.38
		{"platform tier", func(in *Input) { noProgram(in); in.Tiers = nil }, []want{pct(7, 9_38, 750, RulePlatformTier, 125_00)}},
		{"platform tiers without a matching band fall through to the base rate",
			func(in *Input) { noProgram(in); in.Tiers = nil; in.Platform.Tiers = []Tier{{Min: 1000_00, Rate: 2000}} },
			[]want{pct(7, 12_50, 1000, RulePlatformDefault, 125_00)}},
		{"platform default", func(in *Input) { noProgram(in); in.Tiers = nil; in.Platform.Tiers = nil },
			[]want{pct(7, 12_50, 1000, RulePlatformDefault, 125_00)}},

		// Bases.
		{"net is subtotal minus discount", func(in *Input) { in.Program.Value = p64(1000) },
			[]want{pct(7, 12_50, 1000, RuleProgramRate, 125_00)}},
		{"empty base means net", func(in *Input) { in.Program.Value = p64(1000); in.Program.Base = "" },
			[]want{pct(7, 12_50, 1000, RuleProgramRate, 125_00)}},
		{"subtotal base", func(in *Input) { in.Program.Value = p64(1000); in.Program.Base = BaseSubtotal },
			[]want{{7, 1, 13_00, Percentage, 1000, RuleProgramRate, BaseSubtotal, 130_00, nil}}},
		{"total base", func(in *Input) { in.Program.Value = p64(1000); in.Program.Base = BaseTotal },
			[]want{{7, 1, 12_95, Percentage, 1000, RuleProgramRate, BaseTotal, 129_50, nil}}},
		{"net below zero is floored at zero", func(in *Input) { in.Program.Value = p64(1000); in.Order.Discount = 200_00 },
			[]want{pct(7, 0, 1000, RuleProgramRate, 0)}},
		{"zero order earns zero percentage", func(in *Input) {
			in.Program.Value = p64(1000)
			in.Order.Subtotal, in.Order.Discount, in.Order.Tax, in.Order.Total = 0, 0, 0, 0
		}, []want{pct(7, 0, 1000, RuleProgramRate, 0)}},
		{"zero order earns zero flat", func(in *Input) {
			in.Program.Type, in.Program.Value = Flat, p64(10_00)
			in.Order.Subtotal, in.Order.Discount, in.Order.Tax, in.Order.Total = 0, 0, 0, 0
		}, []want{{7, 1, 0, Flat, 10_00, RuleProgramRate, BaseNet, 0, nil}}},

		// Tier band edges: [min, max), on the base.
		{"band: just below a max", func(in *Input) { noProgram(in); in.Tiers = bands; subtotalBase(in, 99_99) },
			[]want{sub(1_00, 100, RuleWorkspaceTier, 99_99)}},
		{"band: min is inclusive", func(in *Input) { noProgram(in); in.Tiers = bands; subtotalBase(in, 100_00) },
			[]want{sub(2_00, 200, RuleWorkspaceTier, 100_00)}},
		{"band: max is exclusive", func(in *Input) { noProgram(in); in.Tiers = bands; subtotalBase(in, 200_00) },
			[]want{sub(6_00, 300, RuleWorkspaceTier, 200_00)}},
		{"band: no upper bound", func(in *Input) { noProgram(in); in.Tiers = bands; subtotalBase(in, money.MaxMinor) },
			[]want{sub(money.MaxMinor/100*3, 300, RuleWorkspaceTier, money.MaxMinor)}},
		{"band: zero falls in the first band", func(in *Input) { noProgram(in); in.Tiers = bands; subtotalBase(in, 0) },
			[]want{sub(0, 100, RuleWorkspaceTier, 0)}},
		{"band: a gap falls through", func(in *Input) {
			noProgram(in)
			in.Tiers = []Tier{{Min: 100_00, Max: p64(200_00), Rate: 200}}
			subtotalBase(in, 50_00)
		}, []want{sub(2_50, 500, RulePlatformTier, 50_00)}},
		{"band: matched on the base, not the total", func(in *Input) {
			noProgram(in)
			in.Tiers = bands
			in.Order.Subtotal, in.Order.Discount, in.Order.Total = 210_00, 20_00, 190_00 // net 190.00
		}, []want{pct(7, 3_80, 200, RuleWorkspaceTier, 190_00)}},

		// Rounding half-up at the minor unit.
		{"rounding: 0.005 rounds up to 0.01", func(in *Input) { in.Program.Value = p64(100); subtotalBase(in, 50) },
			[]want{sub(1, 100, RuleProgramRate, 50)}},
		{"rounding: 0.0049 rounds down to 0.00", func(in *Input) { in.Program.Value = p64(100); subtotalBase(in, 49) },
			[]want{sub(0, 100, RuleProgramRate, 49)}},
		{"rounding: 12.345 rounds up to 12.35", func(in *Input) { in.Program.Value = p64(1000); subtotalBase(in, 123_45) },
			[]want{sub(12_35, 1000, RuleProgramRate, 123_45)}},
		{"rounding: 12.3449 rounds down to 12.34", func(in *Input) { in.Program.Value = p64(1); subtotalBase(in, 123_449_00) },
			[]want{sub(12_34, 1, RuleProgramRate, 123_449_00)}},
		{"rounding: the largest amount at 100%", func(in *Input) { in.Program.Value = p64(MaxRate); subtotalBase(in, money.MaxMinor) },
			[]want{sub(money.MaxMinor, MaxRate, RuleProgramRate, money.MaxMinor)}},

		// Currencies with other minor units.
		{"JPY: no decimals, ¥100.5 rounds to ¥101", func(in *Input) {
			in.Order = Order{Currency: jpy, Subtotal: 1005, Total: 1005}
			in.Program.Currency, in.Program.Value = jpy, p64(1000)
		}, []want{pct(7, 101, 1000, RuleProgramRate, 1005)}},
		{"JPY: flat in yen", func(in *Input) {
			in.Order = Order{Currency: jpy, Subtotal: 1005, Total: 1005}
			in.Program.Currency, in.Program.Type, in.Program.Value = jpy, Flat, p64(500)
		}, []want{{7, 1, 500, Flat, 500, RuleProgramRate, BaseNet, 1005, nil}}},
		{"KWD: three decimals, 0.1235 rounds to 0.124", func(in *Input) {
			in.Order = Order{Currency: kwd, Subtotal: 1_235, Total: 1_235}
			in.Program.Currency, in.Program.Value = kwd, p64(1000)
		}, []want{pct(7, 124, 1000, RuleProgramRate, 1_235)}},

		// Recurring commissions on renewals.
		{"recurring off: a first order earns", func(in *Input) { in.Program.Value = p64(1000) },
			[]want{pct(7, 12_50, 1000, RuleProgramRate, 125_00)}},
		{"recurring off: a renewal earns nothing", func(in *Input) {
			in.Program.Value = p64(1000)
			in.Order.Renewal = &Renewal{MonthsSinceFirst: 1}
		}, []want{pct(7, 0, 1000, RuleProgramRate, 125_00, FlagRecurringOff)}},
		{"recurring empty means off", func(in *Input) {
			in.Program.Value, in.Program.Recurring = p64(1000), ""
			in.Order.Renewal = &Renewal{MonthsSinceFirst: 1}
		}, []want{pct(7, 0, 1000, RuleProgramRate, 125_00, FlagRecurringOff)}},
		{"recurring months: within the limit", func(in *Input) {
			in.Program.Value, in.Program.Recurring, in.Program.RecurringMonths = p64(1000), RecurringMonths, 12
			in.Order.Renewal = &Renewal{MonthsSinceFirst: 11}
		}, []want{pct(7, 12_50, 1000, RuleProgramRate, 125_00)}},
		{"recurring months: at the limit is beyond", func(in *Input) {
			in.Program.Value, in.Program.Recurring, in.Program.RecurringMonths = p64(1000), RecurringMonths, 12
			in.Order.Renewal = &Renewal{MonthsSinceFirst: 12}
		}, []want{pct(7, 0, 1000, RuleProgramRate, 125_00, FlagRecurringLimit)}},
		{"recurring months: far beyond", func(in *Input) {
			in.Program.Value, in.Program.Recurring, in.Program.RecurringMonths = p64(1000), RecurringMonths, 3
			in.Order.Renewal = &Renewal{MonthsSinceFirst: 40}
		}, []want{pct(7, 0, 1000, RuleProgramRate, 125_00, FlagRecurringLimit)}},
		{"recurring lifetime", func(in *Input) {
			in.Program.Value, in.Program.Recurring = p64(1000), RecurringLifetime
			in.Order.Renewal = &Renewal{MonthsSinceFirst: 120}
		}, []want{pct(7, 12_50, 1000, RuleProgramRate, 125_00)}},
		{"recurring applies whatever rule set the rate", func(in *Input) {
			everything(in)
			in.Order.Renewal = &Renewal{MonthsSinceFirst: 1}
		}, []want{pct(7, 0, 2000, RuleLink, 125_00, FlagRecurringOff)}},

		// Multi-tier.
		{"multi-tier: the parent earns tier_rate of the same base", func(in *Input) {
			in.Program.Value, in.Program.TierRate = p64(1000), p64(500)
			in.Affiliate.Parent = &Parent{ID: 9, Email: "parent@example.com"}
		}, []want{pct(7, 12_50, 1000, RuleProgramRate, 125_00), {9, 2, 6_25, Percentage, 500, RuleTierRate, BaseNet, 125_00, nil}}},
		{"multi-tier: flat tier 1, percentage tier 2", func(in *Input) {
			in.Program.Type, in.Program.Value, in.Program.TierRate = Flat, p64(3_00), p64(250)
			in.Affiliate.Parent = &Parent{ID: 9}
		}, []want{{7, 1, 3_00, Flat, 3_00, RuleProgramRate, BaseNet, 125_00, nil}, {9, 2, 3_13, Percentage, 250, RuleTierRate, BaseNet, 125_00, nil}}},
		{"multi-tier: no tier_rate, no parent line", func(in *Input) {
			in.Program.Value = p64(1000)
			in.Affiliate.Parent = &Parent{ID: 9}
		}, []want{pct(7, 12_50, 1000, RuleProgramRate, 125_00)}},
		{"multi-tier: tier_rate 0, no parent line", func(in *Input) {
			in.Program.Value, in.Program.TierRate = p64(1000), p64(0)
			in.Affiliate.Parent = &Parent{ID: 9}
		}, []want{pct(7, 12_50, 1000, RuleProgramRate, 125_00)}},
		{"multi-tier: no parent, no parent line", func(in *Input) { in.Program.Value, in.Program.TierRate = p64(1000), p64(500) },
			[]want{pct(7, 12_50, 1000, RuleProgramRate, 125_00)}},
		{"multi-tier: a renewal beyond the limit pays neither", func(in *Input) {
			in.Program.Value, in.Program.TierRate = p64(1000), p64(500)
			in.Program.Recurring, in.Program.RecurringMonths = RecurringMonths, 6
			in.Affiliate.Parent = &Parent{ID: 9}
			in.Order.Renewal = &Renewal{MonthsSinceFirst: 6}
		}, []want{pct(7, 0, 1000, RuleProgramRate, 125_00, FlagRecurringLimit), {9, 2, 0, Percentage, 500, RuleTierRate, BaseNet, 125_00, []Flag{FlagRecurringLimit}}}},

		// Self-referral.
		{"self-referral: amount kept, flagged", func(in *Input) {
			in.Program.Value = p64(1000)
			in.Order.CustomerEmail = "  Aff@Example.COM "
		}, []want{pct(7, 12_50, 1000, RuleProgramRate, 125_00, FlagSelfReferral)}},
		{"self-referral by the parent flags both lines", func(in *Input) {
			in.Program.Value, in.Program.TierRate = p64(1000), p64(500)
			in.Affiliate.Parent = &Parent{ID: 9, Email: "parent@example.com"}
			in.Order.CustomerEmail = "PARENT@example.com"
		}, []want{pct(7, 12_50, 1000, RuleProgramRate, 125_00, FlagSelfReferral), {9, 2, 6_25, Percentage, 500, RuleTierRate, BaseNet, 125_00, []Flag{FlagSelfReferral}}}},
		{"self-referral needs an e-mail", func(in *Input) {
			in.Program.Value = p64(1000)
			in.Order.CustomerEmail, in.Affiliate.Email = " ", ""
		}, []want{pct(7, 12_50, 1000, RuleProgramRate, 125_00)}},
		{"self-referral on a renewal not earned: both flags, zero", func(in *Input) {
			in.Program.Value = p64(1000)
			in.Order.CustomerEmail = "aff@example.com"
			in.Order.Renewal = &Renewal{}
		}, []want{pct(7, 0, 1000, RuleProgramRate, 125_00, FlagSelfReferral, FlagRecurringOff)}},

		// Unattributed.
		{"unattributed: no lines", func(in *Input) { in.Affiliate = nil; in.Program = Program{} }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := baseInput()
			tt.modify(&in)
			res, err := Calculate(in)
			if err != nil {
				t.Fatalf("Calculate: %v", err)
			}
			if got := project(res.Lines); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("lines\n got %+v\nwant %+v", got, tt.want)
			}
			var payable int64
			var flags []Flag
			for _, l := range res.Lines {
				if l.Amount < 0 || l.Amount > l.BaseAmount {
					t.Errorf("line %+v: amount outside [0, base]", l)
				}
				if l.Payable() {
					payable += l.Amount
				}
				flags = l.Flags
			}
			if res.Payable() != payable {
				t.Errorf("Payable() = %d, want %d", res.Payable(), payable)
			}
			if len(res.Lines) > 0 && !reflect.DeepEqual(res.Flags, flags) {
				t.Errorf("result flags %v, line flags %v", res.Flags, flags)
			}
		})
	}
}

func TestCalculateExplanation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*Input)
		lines  []string
		result string
	}{
		{"percentage of net", func(in *Input) { in.Affiliate.Rate = p64(1000) },
			[]string{"10.00% of net 125.00 (subtotal 130.00 − discount 5.00) = 12.50 USD, rule: affiliate_override"},
			"1 commission line(s) on net 125.00 (subtotal 130.00 − discount 5.00), payable 12.50 USD"},
		{"net floored", func(in *Input) { in.Program.Value = p64(1000); in.Order.Discount = 140_00 },
			[]string{"10.00% of net 0.00 (subtotal 130.00 − discount 140.00, floored at 0) = 0.00 USD, rule: program_rate"}, ""},
		{"subtotal and half-up", func(in *Input) { in.Program.Value, in.Program.Base = p64(1234), BaseSubtotal },
			[]string{"12.34% of subtotal 130.00 = 16.04 USD, rule: program_rate"}, ""}, // 16.042
		{"total", func(in *Input) { in.Program.Value, in.Program.Base = p64(1000), BaseTotal },
			[]string{"10.00% of total 129.50 = 12.95 USD, rule: program_rate"}, ""},
		{"flat", func(in *Input) { in.LinkRule = &LinkRule{Type: Flat, Value: 5_00} },
			[]string{"flat 5.00 per order = 5.00 USD, rule: link_rule"}, ""},
		{"flat capped", func(in *Input) { in.LinkRule = &LinkRule{Type: Flat, Value: 500_00} },
			[]string{"flat 500.00 per order, capped at net 125.00 (subtotal 130.00 − discount 5.00) = 125.00 USD, rule: link_rule"}, ""},
		{"workspace band", func(in *Input) { in.Tiers = []Tier{{Min: 100_00, Max: p64(200_00), Rate: 400}} },
			[]string{"4.00% of net 125.00 (subtotal 130.00 − discount 5.00) = 5.00 USD, rule: workspace_tier, band [100.00, 200.00)"}, ""},
		{"platform open band", func(in *Input) { in.Platform.Tiers = []Tier{{Min: 100_00, Rate: 800}} },
			[]string{"8.00% of net 125.00 (subtotal 130.00 − discount 5.00) = 10.00 USD, rule: platform_tier, band ≥ 100.00"}, ""},
		{"platform default", func(in *Input) { in.Platform.Tiers = nil },
			[]string{"10.00% of net 125.00 (subtotal 130.00 − discount 5.00) = 12.50 USD, rule: platform_default"}, ""},
		{"multi-tier", func(in *Input) {
			in.Program.Value, in.Program.TierRate = p64(1000), p64(500)
			in.Affiliate.Parent = &Parent{ID: 9}
		}, []string{
			"10.00% of net 125.00 (subtotal 130.00 − discount 5.00) = 12.50 USD, rule: program_rate",
			"5.00% of net 125.00 (subtotal 130.00 − discount 5.00) = 6.25 USD, rule: program_tier_rate, parent of affiliate 7",
		}, "2 commission line(s) on net 125.00 (subtotal 130.00 − discount 5.00), payable 18.75 USD"},
		{"renewal within", func(in *Input) {
			in.Program.Value, in.Program.Recurring, in.Program.RecurringMonths = p64(1000), RecurringMonths, 12
			in.Order.Renewal = &Renewal{MonthsSinceFirst: 3}
		}, []string{"10.00% of net 125.00 (subtotal 130.00 − discount 5.00) = 12.50 USD, rule: program_rate; renewal 3 month(s) after the first order, within the program's 12-month recurring limit"}, ""},
		{"renewal lifetime", func(in *Input) {
			in.Program.Value, in.Program.Recurring = p64(1000), RecurringLifetime
			in.Order.Renewal = &Renewal{MonthsSinceFirst: 30}
		}, []string{"10.00% of net 125.00 (subtotal 130.00 − discount 5.00) = 12.50 USD, rule: program_rate; renewal 30 month(s) after the first order, lifetime recurring"}, ""},
		{"renewal beyond", func(in *Input) {
			in.Program.Value, in.Program.Recurring, in.Program.RecurringMonths = p64(1000), RecurringMonths, 12
			in.Order.Renewal = &Renewal{MonthsSinceFirst: 12}
		}, []string{"10.00% of net 125.00 (subtotal 130.00 − discount 5.00) = 12.50 USD, rule: program_rate; renewal 12 month(s) after the first order is beyond the program's 12-month recurring limit: not earned → 0.00 USD"},
			"1 commission line(s) on net 125.00 (subtotal 130.00 − discount 5.00), payable 0.00 USD, flagged recurring_limit"},
		{"renewal off", func(in *Input) {
			in.Program.Value = p64(1000)
			in.Order.Renewal = &Renewal{MonthsSinceFirst: 1}
		}, []string{"10.00% of net 125.00 (subtotal 130.00 − discount 5.00) = 12.50 USD, rule: program_rate; renewal: the program pays no recurring commission: not earned → 0.00 USD"}, ""},
		{"self-referral", func(in *Input) { in.Program.Value = p64(1000); in.Order.CustomerEmail = "AFF@example.com" },
			[]string{"10.00% of net 125.00 (subtotal 130.00 − discount 5.00) = 12.50 USD, rule: program_rate; self-referral: the customer e-mail is the affiliate's, recorded but not payable"},
			"1 commission line(s) on net 125.00 (subtotal 130.00 − discount 5.00), payable 0.00 USD, flagged self_referral"},
		{"JPY", func(in *Input) {
			in.Order = Order{Currency: jpy, Subtotal: 1005, Discount: 0, Total: 1005}
			in.Program.Currency, in.Program.Value = jpy, p64(1000)
		}, []string{"10.00% of net 1005 (subtotal 1005 − discount 0) = 101 JPY, rule: program_rate"}, ""},
		{"KWD", func(in *Input) {
			in.Order = Order{Currency: kwd, Subtotal: 1_235, Total: 1_235}
			in.Program.Currency, in.Program.Value = kwd, p64(1000)
		}, []string{"10.00% of net 1.235 (subtotal 1.235 − discount 0.000) = 0.124 KWD, rule: program_rate"}, ""},
		{"unattributed", func(in *Input) { in.Affiliate = nil }, nil,
			"unattributed: no affiliate referred this order, commission 0.00 USD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := baseInput()
			tt.modify(&in)
			res, err := Calculate(in)
			if err != nil {
				t.Fatalf("Calculate: %v", err)
			}
			var got []string
			for _, l := range res.Lines {
				got = append(got, l.Explanation)
			}
			if !reflect.DeepEqual(got, tt.lines) {
				t.Errorf("explanations\n got %q\nwant %q", got, tt.lines)
			}
			if tt.result != "" && res.Explanation != tt.result {
				t.Errorf("result explanation\n got %q\nwant %q", res.Explanation, tt.result)
			}
		})
	}
}

func TestCalculateUnattributed(t *testing.T) {
	t.Parallel()
	// The program, rules and tiers of an unattributed order are not read, even
	// when they would be invalid.
	in := Input{Order: Order{Currency: jpy, Subtotal: 500, Total: 500}, LinkRule: &LinkRule{Type: "bogus"}}
	res, err := Calculate(in)
	if err != nil {
		t.Fatalf("Calculate: %v", err)
	}
	if len(res.Lines) != 0 || res.Payable() != 0 || res.Base != "" || res.Currency != jpy || res.Flags != nil {
		t.Errorf("unattributed result %+v", res)
	}
}

func TestCalculateBandIsACopy(t *testing.T) {
	t.Parallel()
	in := baseInput()
	in.Tiers = []Tier{{Min: 0, Max: p64(1000_00), Rate: 400}}
	res, err := Calculate(in)
	if err != nil {
		t.Fatal(err)
	}
	b := res.Lines[0].Band
	if b == nil || b.Min != 0 || *b.Max != 1000_00 || b.Rate != 400 {
		t.Fatalf("band %+v", b)
	}
	*b.Max = 1
	if *in.Tiers[0].Max != 1000_00 {
		t.Error("the result's band aliases the input tiers")
	}
}

func TestLineRateBP(t *testing.T) {
	t.Parallel()
	if r := (Line{Type: Percentage, Value: 750}).RateBP(); r == nil || *r != 750 {
		t.Errorf("percentage RateBP = %v", r)
	}
	if r := (Line{Type: Flat, Value: 750}).RateBP(); r != nil {
		t.Errorf("flat RateBP = %v, want nil", *r)
	}
}

func TestCalculateErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*Input)
		want   error
	}{
		{"negative subtotal", func(in *Input) { in.Order.Subtotal = -1 }, ErrInvalid},
		{"negative discount", func(in *Input) { in.Order.Discount = -1 }, ErrInvalid},
		{"negative tax", func(in *Input) { in.Order.Tax = -1 }, ErrInvalid},
		{"negative total", func(in *Input) { in.Order.Total = -1 }, ErrInvalid},
		{"negative total unattributed", func(in *Input) { in.Affiliate = nil; in.Order.Total = -1 }, ErrInvalid},
		{"amount beyond MaxMinor", func(in *Input) { in.Order.Total = money.MaxMinor + 1 }, ErrInvalid},
		{"no currency", func(in *Input) { in.Order.Currency = money.Currency{} }, ErrInvalid},
		{"absurd scale", func(in *Input) { in.Order.Currency.Scale = 9 }, ErrInvalid},
		{"negative renewal months", func(in *Input) { in.Order.Renewal = &Renewal{MonthsSinceFirst: -1} }, ErrInvalid},
		{"currency mismatch", func(in *Input) { in.Program.Currency = jpy }, ErrCurrencyMismatch},
		{"override above 100%", func(in *Input) { in.Affiliate.Rate = p64(MaxRate + 1) }, ErrInvalid},
		{"negative override", func(in *Input) { in.Affiliate.Rate = p64(-1) }, ErrInvalid},
		{"own parent", func(in *Input) { in.Affiliate.Parent = &Parent{ID: 7} }, ErrInvalid},
		{"program percentage above 100%", func(in *Input) { in.Program.Value = p64(MaxRate + 1) }, ErrInvalid},
		{"program flat negative", func(in *Input) { in.Program.Type, in.Program.Value = Flat, p64(-1) }, ErrInvalid},
		{"program type unknown", func(in *Input) { in.Program.Type, in.Program.Value = "tiered", p64(1) }, ErrInvalid},
		{"program base unknown", func(in *Input) { in.Program.Base = "gross" }, ErrInvalid},
		{"recurring unknown", func(in *Input) { in.Program.Recurring = "weekly" }, ErrInvalid},
		{"recurring months without months", func(in *Input) { in.Program.Recurring = RecurringMonths }, ErrInvalid},
		{"tier rate above 100%", func(in *Input) { in.Program.TierRate = p64(MaxRate + 1) }, ErrInvalid},
		{"link rule type unknown", func(in *Input) { in.LinkRule = &LinkRule{Type: "x"} }, ErrInvalid},
		{"link rule flat beyond MaxMinor", func(in *Input) { in.LinkRule = &LinkRule{Type: Flat, Value: money.MaxMinor + 1} }, ErrInvalid},
		{"tier max not above min", func(in *Input) { in.Tiers = []Tier{{Min: 10, Max: p64(10), Rate: 1}} }, ErrInvalid},
		{"tier negative min", func(in *Input) { in.Tiers = []Tier{{Min: -1, Rate: 1}} }, ErrInvalid},
		{"tier rate negative", func(in *Input) { in.Tiers = []Tier{{Min: 0, Rate: -1}} }, ErrInvalid},
		{"platform tier rate above 100%", func(in *Input) { in.Platform.Tiers = []Tier{{Min: 0, Rate: MaxRate + 1}} }, ErrInvalid},
		{"platform base rate negative", func(in *Input) { in.Platform.BaseRate = -1 }, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := baseInput()
			tt.modify(&in)
			res, err := Calculate(in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !reflect.DeepEqual(res, Result{}) {
				t.Errorf("result on error: %+v", res)
			}
		})
	}
}

func TestMonthsSince(t *testing.T) {
	t.Parallel()
	d := func(y int, m time.Month, day int) time.Time { return time.Date(y, m, day, 12, 0, 0, 0, time.UTC) }
	tokyo := time.FixedZone("JST", 9*3600)
	tests := []struct {
		name        string
		first, then time.Time
		want        int
	}{
		{"same day", d(2025, 1, 15), d(2025, 1, 15), 0},
		{"next month", d(2025, 1, 15), d(2025, 2, 15), 1},
		{"anchor day missing", d(2025, 1, 31), d(2025, 2, 28), 1},
		{"retry a few days late", d(2025, 1, 15), d(2025, 2, 19), 1},
		{"across a year", d(2024, 11, 30), d(2025, 2, 1), 3},
		{"a year later, earlier day", d(2025, 1, 15), d(2026, 1, 10), 12},
		{"before the first order", d(2025, 3, 1), d(2025, 1, 1), -2},
		{"taken in UTC", time.Date(2025, 2, 1, 3, 0, 0, 0, tokyo), d(2025, 2, 1), 1}, // Jan 31 18:00 UTC
	}
	for _, tt := range tests {
		if got := MonthsSince(tt.first, tt.then); got != tt.want {
			t.Errorf("%s: MonthsSince = %d, want %d", tt.name, got, tt.want)
		}
	}
}
