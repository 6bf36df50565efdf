// Package commission computes what an order earns its affiliates, and what a
// refund takes back. Calculate is a pure function: it reads no clock, store or
// network, so one input always gives the same lines, and every line carries an
// explanation of its figure that the order's commission breakdown shows.
//
// Money is int64 minor units of the order's currency and rates are basis points
// (10.00% = 1000), as everywhere in HeldSway. Arithmetic is exact integer;
// rounding is half-up (away from zero) to the currency's minor unit through
// money.ApplyRate, so JPY (no decimals) and KWD (three) need nothing special.
package commission

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/heldsway/heldsway/internal/money"
)

// Type says how a rule's Value reads.
type Type string

const (
	Percentage Type = "percentage" // Value is basis points of the base
	Flat       Type = "flat"       // Value is a fixed amount per order, in minor units
)

// Base names the part of an order a commission is computed on. An order reports
// its subtotal (line items before discount, tax and shipping), its discount, its
// tax and its total (what the customer paid, tax and shipping included).
type Base string

const (
	// BaseNet is subtotal − discount, floored at 0: the goods net of discount,
	// and of tax because the subtotal is before tax. The default, matching the
	// program's commission_base vocabulary in internal/heldsway.
	BaseNet Base = "net"
	// BaseSubtotal is the subtotal as reported, before discount.
	BaseSubtotal Base = "subtotal"
	// BaseTotal is the total as reported, tax and shipping included.
	BaseTotal Base = "total"
)

// Recurring is a program's policy for subscription renewals.
type Recurring string

const (
	RecurringOff      Recurring = "off"      // renewals earn nothing
	RecurringMonths   Recurring = "months"   // renewals earn within Program.RecurringMonths of the first order
	RecurringLifetime Recurring = "lifetime" // every renewal earns
)

// Rule names the precedence level that set a line's rate: the "rule" of the
// order's commission breakdown.
type Rule string

// Rate precedence for the referring affiliate (tier 1), first that applies wins.
const (
	RuleLink              Rule = "link_rule"          // a rule of the link the order came through
	RuleAffiliateOverride Rule = "affiliate_override" // the affiliate's own commission_rate
	RuleProgramRate       Rule = "program_rate"       // the program's commission_value
	RuleWorkspaceTier     Rule = "workspace_tier"     // the workspace's band holding the base
	RulePlatformTier      Rule = "platform_tier"      // the platform default band holding the base
	RulePlatformDefault   Rule = "platform_default"   // the platform base rate
	// RuleTierRate is the rule of every tier-2 line: the program's tier_rate,
	// paid to the parent of the referring affiliate.
	RuleTierRate Rule = "program_tier_rate"
)

// Flag marks a line that must not be paid. The amount is kept (or is zero) so
// the record explains itself; the caller stores a flagged line as rejected.
type Flag string

const (
	// FlagSelfReferral: the customer's e-mail is the referring affiliate's or
	// its parent's. The amount is computed and kept for the record; the caller
	// rejects the order and all its lines.
	FlagSelfReferral Flag = "self_referral"
	// FlagRecurringOff: a renewal in a program without recurring commissions.
	// The amount is 0.
	FlagRecurringOff Flag = "recurring_off"
	// FlagRecurringLimit: a renewal beyond the program's recurring_months. The
	// amount is 0.
	FlagRecurringLimit Flag = "recurring_limit"
)

// MaxRate is 100.00% in basis points: no percentage may exceed it.
const MaxRate = 10000

var (
	// ErrInvalid wraps every error about an input out of its documented range.
	ErrInvalid = errors.New("commission: invalid input")
	// ErrCurrencyMismatch: the order's currency is not its program's. Flat
	// amounts and tier bands are in the program's currency and the engine does
	// no exchange, so the caller must refuse (or convert) such an order.
	ErrCurrencyMismatch = errors.New("commission: order currency differs from the program's")
)

// Order is the conversion as the engine needs it. Amounts are minor units of
// Currency, each in [0, money.MaxMinor].
type Order struct {
	Currency      money.Currency
	Total         int64
	Subtotal      int64
	Discount      int64
	Tax           int64
	CustomerEmail string
	// Renewal is set for a subscription renewal: an order whose subscription_id
	// the workspace has seen on an earlier order. nil: a one-off or first order.
	Renewal *Renewal
}

// Renewal places a renewal order in its subscription.
type Renewal struct {
	// MonthsSinceFirst is the number of calendar months from the subscription's
	// first order to this one (see MonthsSince), ≥ 0.
	MonthsSinceFirst int
}

// Affiliate is the attributed affiliate.
type Affiliate struct {
	ID    int64
	Email string
	// Rate is the affiliate's commission_rate override in basis points; nil
	// inherits. A set 0 is an override to 0%, not an absence.
	Rate *int64
	// Parent is the affiliate's parent in a multi-tier program; nil: none.
	Parent *Parent
}

// Parent is the affiliate one tier up.
type Parent struct {
	ID    int64
	Email string
}

// Program is the commission structure of the affiliate's program.
type Program struct {
	Currency money.Currency
	// Type and Value are commission_type and commission_value: basis points or
	// minor units of Currency; Value nil inherits the tiers and platform
	// defaults, and Type is then ignored. A set 0 is a rule paying nothing.
	Type  Type
	Value *int64
	Base  Base // "" means BaseNet, the schema default
	// Recurring "" means RecurringOff, the schema default. RecurringMonths (≥ 1)
	// is read only with RecurringMonths.
	Recurring       Recurring
	RecurringMonths int
	// TierRate is the parent's rate in basis points of the same base; nil or 0:
	// no tier-2 line.
	TierRate *int64
}

// LinkRule is a commission rule of the link the order came through. The caller
// decides whether the rule's conditions hold for this order and passes only a
// rule that applies. A flat Value is in minor units of the program's currency.
type LinkRule struct {
	Type  Type
	Value int64
}

// Tier is a rate band: it holds a base amount in [Min, Max) (Max nil: no upper
// bound), in minor units of the order's currency.
type Tier struct {
	Min  int64
	Max  *int64
	Rate int64 // basis points
}

// Platform holds the platform defaults, the last two precedence levels. The
// values live in internal/heldsway (PlatformTiers, PlatformBaseRate); the
// caller passes them so this package depends on nothing but money.
type Platform struct {
	Tiers    []Tier
	BaseRate int64 // basis points
}

// Input is everything Calculate reads.
type Input struct {
	Order Order
	// Affiliate is the attributed affiliate; nil: the order is unattributed and
	// earns nothing, and the other fields are not read.
	Affiliate *Affiliate
	Program   Program
	LinkRule  *LinkRule // nil: no link rule applies
	// Tiers are the workspace's commission tiers, in the order's currency. They
	// are stored in the default program's currency: a caller whose program has
	// another currency passes none.
	Tiers    []Tier
	Platform Platform
}

// Line is one beneficiary's commission on an order.
type Line struct {
	AffiliateID int64
	Tier        int // 1: the referring affiliate; 2: its parent
	// Amount is in minor units of the order's currency, ≥ 0. For a renewal the
	// program does not pay, 0; for a self-referral, the amount it would earn.
	Amount int64
	Type   Type
	// Value is the rate in basis points (Percentage) or the flat amount in minor
	// units (Flat) that produced Amount.
	Value      int64
	Rule       Rule
	Base       Base
	BaseAmount int64
	// Band is the tier band that set the rate, for the tier rules; nil otherwise.
	Band        *Tier
	Flags       []Flag
	Explanation string
}

// Payable reports whether the line may be paid: it carries no flag.
func (l Line) Payable() bool { return len(l.Flags) == 0 }

// RateBP returns the line's rate in basis points, or nil for a flat amount: the
// commissions.rate column.
func (l Line) RateBP() *int64 {
	if l.Type != Percentage {
		return nil
	}
	v := l.Value
	return &v
}

// Result is an order's commission breakdown.
type Result struct {
	Currency   money.Currency
	Base       Base  // "" when unattributed
	BaseAmount int64 // 0 when unattributed
	// Lines holds the tier-1 line, then the tier-2 line if any; none when
	// unattributed.
	Lines []Line
	// Flags is the union of the lines' flags, in a fixed order: the orders.flags
	// column.
	Flags []Flag
	// Explanation is one sentence for the whole order.
	Explanation string
}

// Payable returns the sum of the payable lines.
func (r Result) Payable() int64 {
	var sum int64
	for _, l := range r.Lines {
		if l.Payable() {
			sum += l.Amount
		}
	}
	return sum
}

// Calculate returns the commissions an order earns. It is pure and total over
// valid input: it never panics, and every amount is ≥ 0. Errors: ErrInvalid for
// an input out of range, ErrCurrencyMismatch.
//
// Decisions, in the order they apply:
//
//   - Unattributed (no Affiliate): no lines, zero commission, an explanation.
//   - Base: the program's Base (BaseNet by default), computed once for the order;
//     net below 0 (a discount above the subtotal) is floored at 0.
//   - Tier-1 rate, first level that applies: link rule → affiliate override →
//     program rate (commission_value set) → workspace tier → platform tier →
//     platform base rate. A tier level applies when one of its bands holds the
//     base amount; bands are tried in ascending Min (input order on ties) and
//     none matching falls through to the next level. Bands are matched on the
//     base, not the order total, so the band and the rate speak of one amount.
//   - Percentage: base × rate, rounded half-up to the minor unit.
//   - Flat: a fixed amount per order, capped at the base: no order pays one
//     affiliate more than its commissionable amount, so a free (zero-base)
//     order earns nothing. The explanation says when the cap bit.
//   - Tier 2: if the program has a TierRate > 0 and the affiliate a parent, the
//     parent earns base × TierRate on the same base, as its own line. Tier-1 and
//     tier-2 amounts are not capped together.
//   - Renewals: earn if the program's recurring is lifetime, or months and
//     MonthsSinceFirst < RecurringMonths (a 12-month program pays the first
//     order and the renewals of months 1–11; the renewal at month 12 starts the
//     13th). Otherwise every line is kept with amount 0 and FlagRecurringOff or
//     FlagRecurringLimit, so the record says why.
//   - Self-referral: the customer e-mail (trimmed, case-insensitive, non-empty)
//     equals the affiliate's or the parent's. Every line keeps its amount and is
//     flagged FlagSelfReferral: the order is one self-dealing act, so the
//     caller rejects it whole.
func Calculate(in Input) (Result, error) {
	if err := in.validate(); err != nil {
		return Result{}, err
	}
	cur := in.Order.Currency
	if in.Affiliate == nil {
		return Result{
			Currency:    cur,
			Explanation: fmt.Sprintf("unattributed: no affiliate referred this order, commission %s", amountText(0, cur)),
		}, nil
	}
	a, p := in.Affiliate, in.Program
	b := base(in.Order, p.Base)
	res := Result{Currency: cur, Base: b.kind, BaseAmount: b.amount}

	var orderFlags []Flag
	var selfNote string
	switch email := normEmail(in.Order.CustomerEmail); {
	case email == "":
	case email == normEmail(a.Email):
		selfNote = "self-referral: the customer e-mail is the affiliate's, recorded but not payable"
	case a.Parent != nil && email == normEmail(a.Parent.Email):
		selfNote = "self-referral: the customer e-mail is the parent affiliate's, recorded but not payable"
	}
	if selfNote != "" {
		orderFlags = append(orderFlags, FlagSelfReferral)
	}
	earned, recFlag, recNote := recurring(in.Order.Renewal, p)
	if recFlag != "" {
		orderFlags = append(orderFlags, recFlag)
	}
	finish := func(l Line) Line {
		l.Flags = slices.Clone(orderFlags)
		if recNote != "" {
			l.Explanation += "; " + recNote
		}
		if !earned {
			l.Amount = 0
			l.Explanation += " → " + amountText(0, cur)
		}
		if selfNote != "" {
			l.Explanation += "; " + selfNote
		}
		return l
	}

	r := resolve(in, b.amount)
	l1 := Line{AffiliateID: a.ID, Tier: 1, Type: r.typ, Value: r.value, Rule: r.rule, Base: b.kind, BaseAmount: b.amount, Band: r.band}
	var calc string
	l1.Amount, calc = apply(r.typ, r.value, b, cur)
	l1.Explanation = calc + ", rule: " + string(r.rule)
	if r.band != nil {
		l1.Explanation += ", band " + bandText(*r.band, cur)
	}
	res.Lines = append(res.Lines, finish(l1))

	if a.Parent != nil && p.TierRate != nil && *p.TierRate > 0 {
		l2 := Line{AffiliateID: a.Parent.ID, Tier: 2, Type: Percentage, Value: *p.TierRate, Rule: RuleTierRate, Base: b.kind, BaseAmount: b.amount}
		l2.Amount, calc = apply(Percentage, *p.TierRate, b, cur)
		l2.Explanation = fmt.Sprintf("%s, rule: %s, parent of affiliate %d", calc, RuleTierRate, a.ID)
		res.Lines = append(res.Lines, finish(l2))
	}

	res.Flags = orderFlags
	res.Explanation = fmt.Sprintf("%d commission line(s) on %s, payable %s", len(res.Lines), b.desc, amountText(res.Payable(), cur))
	if len(orderFlags) > 0 {
		fs := make([]string, len(orderFlags))
		for i, f := range orderFlags {
			fs[i] = string(f)
		}
		res.Explanation += ", flagged " + strings.Join(fs, " ")
	}
	return res, nil
}

// MonthsSince returns the calendar months from first to t, both taken in UTC:
// the difference of their year×12+month, whatever the day. A monthly
// subscription renews in the next calendar month even when its anchor day does
// not exist there (Jan 31 → Feb 28) or a retry lands a few days late, so the
// n-th monthly renewal is month n. Negative when t is before first.
func MonthsSince(first, t time.Time) int {
	f, u := first.UTC(), t.UTC()
	return (u.Year()-f.Year())*12 + int(u.Month()) - int(f.Month())
}

// baseAmount is the resolved base with its description for explanations.
type baseAmount struct {
	kind   Base
	amount int64
	desc   string // "net 125.00 (subtotal 130.00 − discount 5.00)"
}

func base(o Order, kind Base) baseAmount {
	c := o.Currency
	switch kind {
	case BaseSubtotal:
		return baseAmount{BaseSubtotal, o.Subtotal, "subtotal " + money.Format(o.Subtotal, c)}
	case BaseTotal:
		return baseAmount{BaseTotal, o.Total, "total " + money.Format(o.Total, c)}
	}
	net := o.Subtotal - o.Discount
	floor := ""
	if net < 0 {
		net, floor = 0, ", floored at 0"
	}
	return baseAmount{BaseNet, net, fmt.Sprintf("net %s (subtotal %s − discount %s%s)",
		money.Format(net, c), money.Format(o.Subtotal, c), money.Format(o.Discount, c), floor)}
}

type resolution struct {
	typ   Type
	value int64
	rule  Rule
	band  *Tier
}

// resolve walks the precedence list for the tier-1 line.
func resolve(in Input, amount int64) resolution {
	if lr := in.LinkRule; lr != nil {
		return resolution{lr.Type, lr.Value, RuleLink, nil}
	}
	if r := in.Affiliate.Rate; r != nil {
		return resolution{Percentage, *r, RuleAffiliateOverride, nil}
	}
	if v := in.Program.Value; v != nil {
		return resolution{in.Program.Type, *v, RuleProgramRate, nil}
	}
	if t, ok := band(in.Tiers, amount); ok {
		return resolution{Percentage, t.Rate, RuleWorkspaceTier, &t}
	}
	if t, ok := band(in.Platform.Tiers, amount); ok {
		return resolution{Percentage, t.Rate, RulePlatformTier, &t}
	}
	return resolution{Percentage, in.Platform.BaseRate, RulePlatformDefault, nil}
}

// band returns the first tier, in ascending Min, whose [Min, Max) holds amount.
func band(tiers []Tier, amount int64) (Tier, bool) {
	sorted := slices.Clone(tiers)
	slices.SortStableFunc(sorted, func(a, b Tier) int {
		switch {
		case a.Min < b.Min:
			return -1
		case a.Min > b.Min:
			return 1
		}
		return 0
	})
	for _, t := range sorted {
		if amount >= t.Min && (t.Max == nil || amount < *t.Max) {
			if t.Max != nil {
				m := *t.Max
				t.Max = &m // the caller's slice stays unaliased
			}
			return t, true
		}
	}
	return Tier{}, false
}

// apply computes a line's amount and the arithmetic part of its explanation.
func apply(typ Type, value int64, b baseAmount, cur money.Currency) (int64, string) {
	if typ == Flat {
		if value > b.amount {
			return b.amount, fmt.Sprintf("flat %s per order, capped at %s = %s",
				money.Format(value, cur), b.desc, amountText(b.amount, cur))
		}
		return value, fmt.Sprintf("flat %s per order = %s", money.Format(value, cur), amountText(value, cur))
	}
	amt := money.ApplyRate(b.amount, value)
	return amt, fmt.Sprintf("%s%% of %s = %s", money.FormatRate(value), b.desc, amountText(amt, cur))
}

// recurring decides whether a renewal earns, with its flag and a note.
func recurring(r *Renewal, p Program) (earned bool, flag Flag, note string) {
	if r == nil {
		return true, "", ""
	}
	m := r.MonthsSinceFirst
	switch p.Recurring {
	case RecurringLifetime:
		return true, "", fmt.Sprintf("renewal %d month(s) after the first order, lifetime recurring", m)
	case RecurringMonths:
		if m < p.RecurringMonths {
			return true, "", fmt.Sprintf("renewal %d month(s) after the first order, within the program's %d-month recurring limit", m, p.RecurringMonths)
		}
		return false, FlagRecurringLimit, fmt.Sprintf("renewal %d month(s) after the first order is beyond the program's %d-month recurring limit: not earned", m, p.RecurringMonths)
	}
	return false, FlagRecurringOff, "renewal: the program pays no recurring commission: not earned"
}

func normEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func amountText(minor int64, c money.Currency) string {
	return money.Format(minor, c) + " " + c.Code
}

func bandText(t Tier, c money.Currency) string {
	if t.Max == nil {
		return "≥ " + money.Format(t.Min, c)
	}
	return "[" + money.Format(t.Min, c) + ", " + money.Format(*t.Max, c) + ")"
}

// maxScale bounds a currency's minor-unit digits: ISO 4217 has none above 4.
const maxScale = 4

func (in Input) validate() error {
	o := in.Order
	if len(o.Currency.Code) != 3 || o.Currency.Scale < 0 || o.Currency.Scale > maxScale {
		return invalid("order currency %q with scale %d", o.Currency.Code, o.Currency.Scale)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"total", o.Total}, {"subtotal", o.Subtotal}, {"discount", o.Discount}, {"tax", o.Tax}} {
		if err := checkAmount("order."+f.name, f.v); err != nil {
			return err
		}
	}
	if o.Renewal != nil && o.Renewal.MonthsSinceFirst < 0 {
		return invalid("renewal months since first %d is negative", o.Renewal.MonthsSinceFirst)
	}
	a := in.Affiliate
	if a == nil {
		return nil
	}
	p := in.Program
	if p.Currency != o.Currency {
		return fmt.Errorf("%w: order %s, program %s", ErrCurrencyMismatch, o.Currency.Code, p.Currency.Code)
	}
	if a.Rate != nil {
		if err := checkRate("affiliate.rate", *a.Rate); err != nil {
			return err
		}
	}
	if a.Parent != nil && a.Parent.ID == a.ID {
		return invalid("affiliate %d is its own parent", a.ID)
	}
	if p.Value != nil {
		if err := checkRule("program", p.Type, *p.Value); err != nil {
			return err
		}
	}
	switch p.Base {
	case "", BaseNet, BaseSubtotal, BaseTotal:
	default:
		return invalid("program.base %q", p.Base)
	}
	switch p.Recurring {
	case "", RecurringOff, RecurringLifetime:
	case RecurringMonths:
		if p.RecurringMonths < 1 {
			return invalid("program.recurring_months %d with recurring months", p.RecurringMonths)
		}
	default:
		return invalid("program.recurring %q", p.Recurring)
	}
	if p.TierRate != nil {
		if err := checkRate("program.tier_rate", *p.TierRate); err != nil {
			return err
		}
	}
	if lr := in.LinkRule; lr != nil {
		if err := checkRule("link_rule", lr.Type, lr.Value); err != nil {
			return err
		}
	}
	if err := checkTiers("tiers", in.Tiers); err != nil {
		return err
	}
	if err := checkTiers("platform.tiers", in.Platform.Tiers); err != nil {
		return err
	}
	return checkRate("platform.base_rate", in.Platform.BaseRate)
}

func checkRule(field string, t Type, v int64) error {
	switch t {
	case Percentage:
		return checkRate(field+".value", v)
	case Flat:
		return checkAmount(field+".value", v)
	}
	return invalid("%s.type %q", field, t)
}

func checkTiers(field string, ts []Tier) error {
	for i, t := range ts {
		if err := checkAmount(fmt.Sprintf("%s[%d].min", field, i), t.Min); err != nil {
			return err
		}
		if t.Max != nil && (*t.Max <= t.Min || *t.Max > money.MaxMinor) {
			return invalid("%s[%d].max %d with min %d", field, i, *t.Max, t.Min)
		}
		if err := checkRate(fmt.Sprintf("%s[%d].rate", field, i), t.Rate); err != nil {
			return err
		}
	}
	return nil
}

func checkAmount(field string, v int64) error {
	if v < 0 || v > money.MaxMinor {
		return invalid("%s %d is outside [0, %d]", field, v, int64(money.MaxMinor))
	}
	return nil
}

func checkRate(field string, bp int64) error {
	if bp < 0 || bp > MaxRate {
		return invalid("%s %d bp is outside [0, %d]", field, bp, MaxRate)
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}
