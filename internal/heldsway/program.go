package heldsway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heldsway/heldsway/internal/money"
)

// Commission types of a program.
const (
	CommissionPercentage = "percentage" // commission_value is a rate in basis points
	CommissionFlat       = "flat"       // commission_value is an amount in minor units of the program's currency
)

// Commission bases: the part of an order a percentage commission applies to. An
// order reports its subtotal (line items before discounts, tax and shipping), its
// discount, its tax and its total (what the customer paid, tax and shipping
// included).
const (
	// BaseNet is the subtotal minus discounts: what the merchant keeps from the
	// goods, without tax or shipping. The default, and what the Paddle page calls
	// "the net-of-tax amount remitted".
	BaseNet = "net"
	// BaseSubtotal is the subtotal before discounts, as the dashboard shows it.
	BaseSubtotal = "subtotal"
	// BaseTotal is everything the customer paid, tax and shipping included.
	BaseTotal = "total"
)

// Recurring commission modes: a commission on the first order only, on the
// referred customer's orders for a number of months, or for the customer's lifetime.
const (
	RecurringOff      = "off"
	RecurringMonths   = "months"
	RecurringLifetime = "lifetime"
)

// Attribution models: which click wins when a visitor clicked several links.
const (
	AttributionLastClick  = "last_click"
	AttributionFirstClick = "first_click"
)

// Program statuses.
const (
	ProgramActive   = "active"
	ProgramPaused   = "paused"
	ProgramArchived = "archived"
)

// Bounds and defaults of program fields (digest §5.6 for the cookie window and
// the auto-approval delay).
const (
	DefaultCurrency       = "USD"
	DefaultCookieDays     = 30
	MinCookieDays         = 1
	MaxCookieDays         = 365
	MaxAutoApproveDelay   = 365
	MinRecurringMonths    = 1
	MaxRecurringMonths    = 120
	MaxProgramNameLength  = 255
	maxRateBP             = 10000 // 100.00%
	defaultProgramNameSfx = " program"
)

// PlatformBaseRate is the rate of last resort, in basis points (10.00%): it
// applies when no affiliate rate, program rate, workspace tier or platform tier
// does. Rate precedence, highest first (digest §8): affiliate override → program
// commission value → workspace commission tiers → PlatformTiers → PlatformBaseRate.
const PlatformBaseRate int64 = 1000

// platformTierBands are the read-only platform default tiers, in whole units of
// the default program's currency: [0, 100) 5.00%, [100, 500) 7.50%, [500, ∞) 10.00%.
var platformTierBands = []struct{ min, max, rate int64 }{
	{0, 100, 500},
	{100, 500, 750},
	{500, -1, 1000},
}

// PlatformTiers returns the platform default tiers expressed in minor units of
// cur. They have no ids: they are not rows of any workspace.
func PlatformTiers(cur money.Currency) []CommissionTier {
	unit := int64(1)
	for range cur.Scale {
		unit *= 10
	}
	out := make([]CommissionTier, 0, len(platformTierBands))
	for _, b := range platformTierBands {
		t := CommissionTier{MinAmount: b.min * unit, Rate: b.rate}
		if b.max >= 0 {
			m := b.max * unit
			t.MaxAmount = &m
		}
		out = append(out, t)
	}
	return out
}

// Nullable is a field of a partial update that may be absent (Set false), sent
// as null (Set, Value nil) or sent with a value.
type Nullable[T any] struct {
	Set   bool
	Value *T
}

// SetTo returns a Nullable sent with v.
func SetTo[T any](v T) Nullable[T] { return Nullable[T]{Set: true, Value: &v} }

// SetNull returns a Nullable sent as null.
func SetNull[T any]() Nullable[T] { return Nullable[T]{Set: true} }

// Program is a workspace's affiliate program: its commission structure, cookie
// window and currency. Money is in minor units of Currency, rates in basis
// points. Every workspace has exactly one default program; the documented
// workspace settings (§5.6) are its columns.
type Program struct {
	ID          int64  `json:"id"`
	WorkspaceID int64  `json:"-"`
	Name        string `json:"name"`
	Currency    string `json:"currency"`
	// CommissionType is CommissionPercentage or CommissionFlat; CommissionValue is
	// basis points or minor units accordingly, nil to inherit the workspace tiers
	// and the platform defaults.
	CommissionType   string `json:"commission_type"`
	CommissionValue  *int64 `json:"commission_value"`
	CommissionBase   string `json:"commission_base"`
	Recurring        string `json:"recurring"`
	RecurringMonths  *int   `json:"recurring_months"`
	CookieDays       int    `json:"cookie_duration"`
	AttributionModel string `json:"attribution_model"`
	// TierRate is what the parent of a multi-tier affiliate earns, in basis
	// points of the same base; nil: no multi-tier commission.
	TierRate              *int64    `json:"tier_rate"`
	Status                string    `json:"status"`
	IsDefault             bool      `json:"is_default"`
	AllowSelfRegistration bool      `json:"allow_self_registration"`
	AutoApproveEnabled    bool      `json:"auto_approve_enabled"`
	AutoApproveDelayDays  int       `json:"auto_approve_delay_days"`
	AutoApproveMinAmount  *int64    `json:"auto_approve_min_amount"`
	AutoApproveMaxAmount  *int64    `json:"auto_approve_max_amount"`
	CreatedAt             time.Time `json:"created_at"`
	UpdatedAt             time.Time `json:"updated_at"`
}

// DefaultProgramFor returns the default program a new workspace starts with.
func DefaultProgramFor(w *Workspace) *Program {
	name := w.Name + defaultProgramNameSfx
	if utf8.RuneCountInString(name) > MaxProgramNameLength {
		name = string([]rune(name)[:MaxProgramNameLength])
	}
	p := newProgram()
	p.WorkspaceID, p.Name, p.Currency, p.IsDefault = w.ID, name, DefaultCurrency, true
	return p
}

func newProgram() *Program {
	return &Program{CommissionType: CommissionPercentage, CommissionBase: BaseNet, Recurring: RecurringOff,
		CookieDays: DefaultCookieDays, AttributionModel: AttributionLastClick, Status: ProgramActive}
}

// ProgramPatch is a create or a partial update of a program: nil and unset
// fields are left alone. Amounts and rates are decimal text as the client wrote
// it ("7.5"), converted exactly once the program's currency is known.
type ProgramPatch struct {
	Name             *string
	Currency         *string
	CommissionType   *string
	CommissionValue  Nullable[string] // percent (0–100) or currency units, by type
	CommissionBase   *string
	Recurring        *string
	RecurringMonths  Nullable[int]
	CookieDuration   *int
	AttributionModel *string
	TierRate         Nullable[string] // percent, 0–100
	Status           *string

	AllowSelfRegistration *bool
	AutoApproveEnabled    *bool
	AutoApproveDelayDays  *int
	AutoApproveMinAmount  Nullable[string] // currency units, ≥ 0
	AutoApproveMaxAmount  Nullable[string]
}

// NewProgram validates a create request and returns the program it describes.
// name and currency are required. Errors: EVALIDATION.
func NewProgram(in ProgramPatch) (*Program, error) {
	fe := FieldErrors{}
	if in.Name == nil {
		fe.Add("name", "The name field is required.")
	}
	if in.Currency == nil {
		fe.Add("currency", "The currency field is required.")
	}
	p := newProgram()
	err := p.Apply(in)
	var he *Error
	if errors.As(err, &he) {
		for k, v := range he.Details {
			if _, dup := fe[k]; !dup {
				fe[k] = append(fe[k], v.([]string)...)
			}
		}
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

// Apply validates in against p and changes p. On error p may be partly changed:
// apply to a copy. Amounts not sent with a currency change keep their decimal
// value ("50.00 USD" becomes "50.00 EUR"). Errors: EVALIDATION.
func (p *Program) Apply(in ProgramPatch) error {
	c := fieldCheck{FieldErrors{}}
	old := *p
	if in.Name != nil {
		if n, ok := c.text("name", *in.Name, MaxProgramNameLength); ok {
			p.Name = n
		}
	}
	oldCur, _ := money.ParseCurrency(old.Currency)
	cur, curOK := oldCur, old.Currency != ""
	if in.Currency != nil {
		if nc, err := money.ParseCurrency(*in.Currency); err != nil {
			c.Add("currency", "The currency field must be a valid ISO 4217 currency code.")
			curOK = false
		} else {
			cur, curOK, p.Currency = nc, true, nc.Code
		}
	}
	curChanged := curOK && old.Currency != "" && cur != oldCur

	typeOK := true
	if in.CommissionType != nil {
		typeOK = c.enum("commission_type", *in.CommissionType, CommissionPercentage, CommissionFlat)
		if typeOK {
			p.CommissionType = *in.CommissionType
		}
	}
	switch v := in.CommissionValue; {
	case v.Set && v.Value == nil:
		p.CommissionValue = nil
	case v.Set && typeOK && p.CommissionType == CommissionPercentage:
		if bp, ok := c.rate("commission_value", *v.Value); ok {
			p.CommissionValue = &bp
		}
	case v.Set && typeOK && curOK:
		if m, ok := c.amount("commission_value", *v.Value, cur); ok {
			p.CommissionValue = &m
		}
	case !v.Set && p.CommissionType != old.CommissionType && old.CommissionValue != nil:
		c.Add("commission_value", "The commission value field is required when the commission type changes.")
	case !v.Set && curChanged && p.CommissionType == CommissionFlat && p.CommissionValue != nil:
		p.CommissionValue = c.carry("commission_value", *p.CommissionValue, oldCur, cur)
	}

	if in.CommissionBase != nil && c.enum("commission_base", *in.CommissionBase, BaseNet, BaseSubtotal, BaseTotal) {
		p.CommissionBase = *in.CommissionBase
	}
	if in.Recurring != nil && c.enum("recurring", *in.Recurring, RecurringOff, RecurringMonths, RecurringLifetime) {
		p.Recurring = *in.Recurring
	}
	switch m := in.RecurringMonths; {
	case m.Set && m.Value != nil && p.Recurring != RecurringMonths:
		c.Add("recurring_months", "The recurring months field is only allowed when recurring is months.")
	case m.Set && m.Value != nil:
		if c.between("recurring_months", *m.Value, MinRecurringMonths, MaxRecurringMonths) {
			p.RecurringMonths = m.Value
		}
	case m.Set || p.Recurring != RecurringMonths:
		p.RecurringMonths = nil
	}
	if p.Recurring == RecurringMonths && p.RecurringMonths == nil && c.FieldErrors["recurring_months"] == nil {
		c.Add("recurring_months", "The recurring months field is required when recurring is months.")
	}
	if in.CookieDuration != nil && c.between("cookie_duration", *in.CookieDuration, MinCookieDays, MaxCookieDays) {
		p.CookieDays = *in.CookieDuration
	}
	if in.AttributionModel != nil && c.enum("attribution_model", *in.AttributionModel, AttributionLastClick, AttributionFirstClick) {
		p.AttributionModel = *in.AttributionModel
	}
	if t := in.TierRate; t.Set {
		p.TierRate = nil
		if t.Value != nil {
			if bp, ok := c.rate("tier_rate", *t.Value); ok {
				p.TierRate = &bp
			}
		}
	}
	if in.Status != nil && c.enum("status", *in.Status, ProgramActive, ProgramPaused, ProgramArchived) {
		p.Status = *in.Status
	}
	if in.AllowSelfRegistration != nil {
		p.AllowSelfRegistration = *in.AllowSelfRegistration
	}
	if in.AutoApproveEnabled != nil {
		p.AutoApproveEnabled = *in.AutoApproveEnabled
	}
	if in.AutoApproveDelayDays != nil && c.between("auto_approve_delay_days", *in.AutoApproveDelayDays, 0, MaxAutoApproveDelay) {
		p.AutoApproveDelayDays = *in.AutoApproveDelayDays
	}
	p.AutoApproveMinAmount = c.optAmount("auto_approve_min_amount", in.AutoApproveMinAmount, p.AutoApproveMinAmount, oldCur, cur, curOK, curChanged)
	p.AutoApproveMaxAmount = c.optAmount("auto_approve_max_amount", in.AutoApproveMaxAmount, p.AutoApproveMaxAmount, oldCur, cur, curOK, curChanged)
	if lo, hi := p.AutoApproveMinAmount, p.AutoApproveMaxAmount; lo != nil && hi != nil && *lo > *hi &&
		c.FieldErrors["auto_approve_min_amount"] == nil && c.FieldErrors["auto_approve_max_amount"] == nil {
		field := "auto_approve_min_amount"
		if in.AutoApproveMaxAmount.Set && !in.AutoApproveMinAmount.Set {
			field = "auto_approve_max_amount"
		}
		c.Add(field, "The auto approve min amount must not be greater than the auto approve max amount.")
	}
	return c.Err()
}

// Money returns the program's currency.
func (p *Program) Money() money.Currency {
	cur, err := money.ParseCurrency(p.Currency)
	if err != nil {
		// Stored currencies were validated on the way in.
		panic(fmt.Sprintf("program %d has invalid currency %q", p.ID, p.Currency))
	}
	return cur
}

// ProgramFilter selects programs in a list; zero fields do not filter.
type ProgramFilter struct {
	Status string
}

// Program list sorts.
const (
	ProgramSortCreatedAt = "created_at"
	ProgramSortName      = "name"
)

// ProgramStore persists programs. Every method is scoped to one workspace; a
// program of another workspace is ENOTFOUND. Called by the API.
type ProgramStore interface {
	// CreateProgram validates in and inserts a non-default program.
	// Errors: EVALIDATION.
	CreateProgram(ctx context.Context, wsID int64, in ProgramPatch) (*Program, error)
	// FindProgram errors: ENOTFOUND.
	FindProgram(ctx context.Context, wsID, id int64) (*Program, error)
	// FindDefaultProgram returns the workspace's default program. Errors: ENOTFOUND.
	FindDefaultProgram(ctx context.Context, wsID int64) (*Program, error)
	// ListPrograms sorts by ProgramSortCreatedAt (default) or ProgramSortName.
	ListPrograms(ctx context.Context, wsID int64, f ProgramFilter, o ListOptions) (PageResult[*Program], error)
	// UpdateProgram applies a partial update. Errors: ENOTFOUND; EVALIDATION;
	// ECONFLICT when the currency of a program with affiliates would change or
	// the default program would be archived.
	UpdateProgram(ctx context.Context, wsID, id int64, in ProgramPatch) (*Program, error)
	// DeleteProgram errors: ENOTFOUND; ECONFLICT for the default program or a
	// program with affiliates.
	DeleteProgram(ctx context.Context, wsID, id int64) error
}

// RescaleMinor re-expresses an amount of minor units of from in minor units of
// to, keeping its decimal value (5000 USD cents → 50 JPY). ok is false when the
// value has more decimals than to allows or leaves the amount range.
func RescaleMinor(minor int64, from, to money.Currency) (int64, bool) {
	v, err := money.ParseMinor(money.Format(minor, from), to)
	return v, err == nil
}

// fieldCheck collects field errors with messages in the documented style.
type fieldCheck struct{ FieldErrors }

// human renders a field name as the documented messages do: "cookie_duration" → "cookie duration".
func (fieldCheck) human(field string) string { return strings.ReplaceAll(field, "_", " ") }

func (c fieldCheck) addf(field, format string, args ...any) {
	c.Add(field, fmt.Sprintf("The %s field ", c.human(field))+fmt.Sprintf(format, args...))
}

// text trims s and checks it is not empty and at most max characters.
func (c fieldCheck) text(field, s string, max int) (string, bool) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		c.addf(field, "is required.")
	case !utf8.ValidString(s):
		c.addf(field, "must be valid UTF-8.")
	case utf8.RuneCountInString(s) > max:
		c.addf(field, "must not be greater than %d characters.", max)
	default:
		return s, true
	}
	return "", false
}

func (c fieldCheck) enum(field, v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	c.Add(field, fmt.Sprintf("The selected %s is invalid. Allowed: %s.", c.human(field), strings.Join(allowed, ", ")))
	return false
}

func (c fieldCheck) between(field string, v, lo, hi int) bool {
	if v < lo || v > hi {
		c.addf(field, "must be between %d and %d.", lo, hi)
		return false
	}
	return true
}

// rate converts a percentage (0–100, at most two decimals) to basis points.
func (c fieldCheck) rate(field, s string) (int64, bool) {
	bp, err := money.ParseMinor(s, money.Currency{Scale: 2})
	switch {
	case errors.Is(err, money.ErrPrecision):
		c.addf(field, "must have at most 2 decimal places.")
	case err != nil && err.Error() == "must be a number":
		c.addf(field, "must be a number.")
	case err != nil || bp < 0 || bp > maxRateBP:
		c.addf(field, "must be between 0 and 100.")
	default:
		return bp, true
	}
	return 0, false
}

// amount converts a non-negative decimal amount to minor units of cur.
func (c fieldCheck) amount(field, s string, cur money.Currency) (int64, bool) {
	m, err := money.ParseMinor(s, cur)
	switch {
	case errors.Is(err, money.ErrPrecision) && cur.Scale == 0:
		c.addf(field, "must be a whole number for %s.", cur.Code)
	case errors.Is(err, money.ErrPrecision):
		c.addf(field, "must have at most %d decimal places for %s.", cur.Scale, cur.Code)
	case err != nil:
		c.addf(field, "%s.", err.Error())
	case m < 0:
		c.addf(field, "must be at least 0.")
	default:
		return m, true
	}
	return 0, false
}

// carry re-expresses a stored amount after a currency change.
func (c fieldCheck) carry(field string, minor int64, from, to money.Currency) *int64 {
	v, ok := RescaleMinor(minor, from, to)
	if !ok {
		c.addf(field, "value %s %s cannot be expressed in %s; send it again with the currency change.",
			money.Format(minor, from), from.Code, to.Code)
		return nil
	}
	return &v
}

// optAmount applies a nullable amount field of the program's currency.
func (c fieldCheck) optAmount(field string, in Nullable[string], cur *int64, oldCur, newCur money.Currency, curOK, curChanged bool) *int64 {
	switch {
	case in.Set && in.Value == nil:
		return nil
	case in.Set && curOK:
		if m, ok := c.amount(field, *in.Value, newCur); ok {
			return &m
		}
		return cur
	case !in.Set && curChanged && cur != nil:
		return c.carry(field, *cur, oldCur, newCur)
	}
	return cur
}
