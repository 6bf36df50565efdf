package heldsway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heldsway/heldsway/internal/money"
)

// Link commission rules: the first level of the commission rate precedence
// (link rule → affiliate override → program rate → workspace tiers → platform
// defaults). A rule belongs to one referral link and applies to an order
// attributed through that link (by click) when all of its given conditions hold
// (Matches). Orders attributed by coupon, referral code or customer binding
// carry no link, so link rules never apply to them.

// Link rule types: how Value reads.
const (
	LinkRulePercentage = "percentage" // Value is basis points of the commission base
	LinkRuleFlat       = "flat"       // Value is a fixed amount per order, minor units of Currency
)

// Limits of a link rule.
const (
	LinkRuleMaxConditionItems = 100 // product ids, and categories, per rule
	LinkRuleMaxPerLink        = 100 // rules per link: every click-attributed conversion reads them all
	LinkRuleMaxPriority       = 100_000
	LinkRuleTextMaxLen        = ConversionTextMaxLen // a product id or category, as long as a line item's
)

// LinkRule is a commission rule of a referral link. Amounts (a flat Value and
// Conditions.MinOrderAmount) are minor units of Currency: the currency of the
// link's affiliate's program when the rule was written.
type LinkRule struct {
	ID          int64
	WorkspaceID int64
	LinkID      int64
	Type        string
	Value       int64
	Currency    money.Currency
	Conditions  *LinkRuleConditions // nil: no conditions, the rule applies to every order through the link
	Priority    int64               // lower is tried first; ties by ID
	IsActive    bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// LinkRuleConditions restrict a rule to some orders. A nil field (or empty
// list) is not a condition; the given ones must all hold.
type LinkRuleConditions struct {
	// ProductIDs holds when some line item's product_id is one of them
	// (exact, case-sensitive: product ids are identifiers).
	ProductIDs []string
	// Categories holds when some line item's category is one of them,
	// compared case-insensitively ("Shoes" = "shoes").
	Categories []string
	// MinOrderAmount holds when the order total (what the customer paid, as
	// the order's order_total) is at least this, in minor units of the rule's
	// Currency.
	MinOrderAmount *int64
}

// empty reports whether no condition is given.
func (c *LinkRuleConditions) empty() bool {
	return c == nil || (len(c.ProductIDs) == 0 && len(c.Categories) == 0 && c.MinOrderAmount == nil)
}

// LinkRuleOrder is what a rule's conditions look at: the order as reported.
type LinkRuleOrder struct {
	Currency string // ISO 4217 code
	Total    int64  // minor units of Currency
	Items    []LineItem
}

// Matches reports whether the rule applies to the order: it is active and all
// its given conditions hold. A rule that carries an amount (a flat value or a
// minimum order amount) in a currency other than the order's never matches:
// amounts are not converted. A percentage rule without a minimum applies in
// any currency. Matches is pure.
func (r *LinkRule) Matches(o LinkRuleOrder) bool {
	if !r.IsActive {
		return false
	}
	c := r.Conditions
	hasAmount := r.Type == LinkRuleFlat || (c != nil && c.MinOrderAmount != nil)
	if hasAmount && r.Currency.Code != o.Currency {
		return false
	}
	if c == nil {
		return true
	}
	if c.MinOrderAmount != nil && o.Total < *c.MinOrderAmount {
		return false
	}
	if len(c.ProductIDs) > 0 && !slices.ContainsFunc(o.Items, func(it LineItem) bool {
		return it.ProductID != "" && slices.Contains(c.ProductIDs, it.ProductID)
	}) {
		return false
	}
	if len(c.Categories) > 0 && !slices.ContainsFunc(o.Items, func(it LineItem) bool {
		return it.Category != "" && slices.ContainsFunc(c.Categories, func(cat string) bool { return strings.EqualFold(cat, it.Category) })
	}) {
		return false
	}
	return true
}

// FirstMatchingRule returns the rule that applies to the order: among those
// that match, the lowest Priority, ties broken by the lowest ID; nil when none
// matches. The rules may come in any order.
func FirstMatchingRule(rules []*LinkRule, o LinkRuleOrder) *LinkRule {
	var best *LinkRule
	for _, r := range rules {
		if !r.Matches(o) {
			continue
		}
		if best == nil || r.Priority < best.Priority || (r.Priority == best.Priority && r.ID < best.ID) {
			best = r
		}
	}
	return best
}

// LinkRuleConditionsInput is the conditions object of a request; the minimum
// is decimal text, parsed in the rule's currency.
type LinkRuleConditionsInput struct {
	ProductIDs     []string
	Categories     []string
	MinOrderAmount *string
}

// LinkRuleInput creates a rule. Value is decimal text ("20", "4.50") as the
// client sent it: a flat amount's precision depends on the currency of the
// link's affiliate's program, which the store learns in its transaction.
type LinkRuleInput struct {
	Type       string
	Value      string
	Conditions *LinkRuleConditionsInput // nil: none
	Priority   *int64                   // nil: 0
	IsActive   *bool                    // nil: active
}

// Normalize trims the type and the condition texts, drops empty lists and
// repeated entries (keeping the first).
func (in *LinkRuleInput) Normalize() {
	in.Type = strings.ToLower(strings.TrimSpace(in.Type))
	in.Value = strings.TrimSpace(in.Value)
	in.Conditions.normalize()
}

func (c *LinkRuleConditionsInput) normalize() {
	if c == nil {
		return
	}
	c.ProductIDs = normTexts(c.ProductIDs, false)
	c.Categories = normTexts(c.Categories, true)
}

// normTexts trims each entry and drops repeats (case-insensitively when fold);
// an empty entry is kept so Validate can name it.
func normTexts(in []string, fold bool) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, 0, len(in))
	for _, v := range in {
		v = strings.TrimSpace(v)
		if v != "" && slices.ContainsFunc(out, func(o string) bool { return o == v || (fold && strings.EqualFold(o, v)) }) {
			continue
		}
		out = append(out, v)
	}
	return out
}

// Validate checks everything that does not depend on the currency. Errors:
// EVALIDATION with details per field.
func (in *LinkRuleInput) Validate() error {
	fe := FieldErrors{}
	validateLinkRuleType(fe, in.Type)
	if in.Value == "" {
		fe.Add("value", "The value field is required.")
	} else if in.Type == LinkRulePercentage {
		parseLinkRuleValue(fe, in.Type, in.Value, money.Currency{})
	}
	in.Conditions.validate(fe)
	if in.Priority != nil {
		validateLinkRulePriority(fe, *in.Priority)
	}
	return fe.Err()
}

// Rule builds the rule of link linkID in cur, the currency of the link's
// affiliate's program. EVALIDATION if an amount does not fit the currency.
func (in *LinkRuleInput) Rule(wsID, linkID int64, cur money.Currency) (*LinkRule, error) {
	fe := FieldErrors{}
	r := &LinkRule{WorkspaceID: wsID, LinkID: linkID, Type: in.Type, Currency: cur, IsActive: true}
	r.Value = parseLinkRuleValue(fe, in.Type, in.Value, cur)
	r.Conditions = in.Conditions.build(fe, cur)
	if in.Priority != nil {
		r.Priority = *in.Priority
	}
	if in.IsActive != nil {
		r.IsActive = *in.IsActive
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	return r, nil
}

// LinkRuleUpdate changes the fields it sets. SetConditions with nil
// Conditions removes them; with a value it replaces the whole conditions
// object (conditions are not merged field by field).
type LinkRuleUpdate struct {
	Type          *string
	Value         *string
	SetConditions bool
	Conditions    *LinkRuleConditionsInput
	Priority      *int64
	IsActive      *bool
}

// Normalize trims the type, the value and the condition texts.
func (u *LinkRuleUpdate) Normalize() {
	if u.Type != nil {
		v := strings.ToLower(strings.TrimSpace(*u.Type))
		u.Type = &v
	}
	if u.Value != nil {
		v := strings.TrimSpace(*u.Value)
		u.Value = &v
	}
	u.Conditions.normalize()
}

// Validate checks the set fields that do not depend on the rule or its
// currency.
func (u *LinkRuleUpdate) Validate() error {
	fe := FieldErrors{}
	if u.Type != nil {
		validateLinkRuleType(fe, *u.Type)
	}
	if u.Value != nil && *u.Value == "" {
		fe.Add("value", "The value field is required.")
	}
	if u.SetConditions {
		u.Conditions.validate(fe)
	}
	if u.Priority != nil {
		validateLinkRulePriority(fe, *u.Priority)
	}
	return fe.Err()
}

// Apply applies the update to r; cur is the currency of the link's
// affiliate's program now. Amounts are not converted: when cur differs from
// the rule's currency, a flat rule needs its value again and a minimum order
// amount needs the conditions again, else EVALIDATION names the field. A
// percentage rule without amounts simply moves to cur.
func (u *LinkRuleUpdate) Apply(r *LinkRule, cur money.Currency) error {
	fe := FieldErrors{}
	oldType, oldCur := r.Type, r.Currency
	if u.Type != nil {
		r.Type = *u.Type
	}
	switch {
	case u.Value != nil:
		r.Value = parseLinkRuleValue(fe, r.Type, *u.Value, cur)
	case r.Type != oldType:
		fe.Add("value", "The value field is required when the type changes.")
	case r.Type == LinkRuleFlat && cur != oldCur:
		fe.Add("value", fmt.Sprintf("The value field is required: the link's program currency changed from %s to %s.", oldCur.Code, cur.Code))
	}
	switch {
	case u.SetConditions:
		r.Conditions = u.Conditions.build(fe, cur)
	case r.Conditions != nil && r.Conditions.MinOrderAmount != nil && cur != oldCur:
		fe.Add("conditions.min_order_amount", fmt.Sprintf("The conditions.min_order_amount field is required: the link's program currency changed from %s to %s.", oldCur.Code, cur.Code))
	}
	r.Currency = cur
	if u.Priority != nil {
		r.Priority = *u.Priority
	}
	if u.IsActive != nil {
		r.IsActive = *u.IsActive
	}
	return fe.Err()
}

// LinkRuleService manages the commission rules of referral links. Every write
// records an audit entry (link_rule.create, link_rule.update,
// link_rule.delete) and an event (link_rule.created, link_rule.updated,
// link_rule.deleted) in its transaction. A link of another workspace is
// ENOTFOUND ("Link not found."), as is a rule of another link.
type LinkRuleService interface {
	// CreateLinkRule: ENOTFOUND, EVALIDATION, ECONFLICT (the link has
	// LinkRuleMaxPerLink rules).
	CreateLinkRule(ctx context.Context, wsID, linkID int64, in LinkRuleInput) (*LinkRule, error)
	// FindLinkRule: ENOTFOUND.
	FindLinkRule(ctx context.Context, wsID, linkID, id int64) (*LinkRule, error)
	// ListLinkRules pages through a link's rules: ENOTFOUND, EVALIDATION for
	// a bad sort or cursor.
	ListLinkRules(ctx context.Context, wsID, linkID int64, o ListOptions) (PageResult[*LinkRule], error)
	// UpdateLinkRule: ENOTFOUND, EVALIDATION. An update that changes nothing
	// writes nothing.
	UpdateLinkRule(ctx context.Context, wsID, linkID, id int64, u LinkRuleUpdate) (*LinkRule, error)
	// DeleteLinkRule returns the rule as it was: ENOTFOUND.
	DeleteLinkRule(ctx context.Context, wsID, linkID, id int64) (*LinkRule, error)
}

// LinkRuleSorts are the sorts of a link's rule list: priority is the order
// the rules are tried in.
var LinkRuleSorts = []string{"priority", "created_at"}

func validateLinkRuleType(fe FieldErrors, t string) {
	if t == "" {
		fe.Add("type", "The type field is required.")
	} else if t != LinkRulePercentage && t != LinkRuleFlat {
		fe.Add("type", "The selected type is invalid. Allowed: percentage, flat.")
	}
}

func validateLinkRulePriority(fe FieldErrors, p int64) {
	if p < 0 || p > LinkRuleMaxPriority {
		fe.Add("priority", fmt.Sprintf("The priority field must be between 0 and %d.", LinkRuleMaxPriority))
	}
}

// parseLinkRuleValue converts a rule's value: a percentage from 0 to 100 with
// at most two decimals to basis points, or a flat amount of at least 0 to
// minor units of cur. A rule of 0 is allowed: it pays nothing on the orders
// it matches, ahead of every other level. Messages go to fe.
func parseLinkRuleValue(fe FieldErrors, typ, v string, cur money.Currency) int64 {
	switch typ {
	case LinkRulePercentage:
		bp, err := money.ParseRate(v)
		switch {
		case err != nil:
			fe.Add("value", "The value field "+err.Error()+".")
		case bp < 0 || bp > 10000:
			fe.Add("value", "The value field must be between 0 and 100 for a percentage.")
		default:
			return bp
		}
	case LinkRuleFlat:
		m, err := money.ParseMinor(v, cur)
		switch {
		case errors.Is(err, money.ErrPrecision):
			fe.Add("value", fmt.Sprintf("The value field must have at most %d decimal places for %s.", cur.Scale, cur.Code))
		case err != nil:
			fe.Add("value", "The value field "+err.Error()+".")
		case m < 0:
			fe.Add("value", "The value field must be at least 0.")
		default:
			return m
		}
	}
	return 0
}

// validate checks the lists; the minimum is checked by build, in the currency.
func (c *LinkRuleConditionsInput) validate(fe FieldErrors) {
	if c == nil {
		return
	}
	list := func(field string, vs []string) {
		if len(vs) > LinkRuleMaxConditionItems {
			fe.Add(field, fmt.Sprintf("The %s field must not have more than %d items.", field, LinkRuleMaxConditionItems))
			return
		}
		for i, v := range vs {
			f := field + "." + strconv.Itoa(i)
			switch {
			case v == "":
				fe.Add(f, "The "+f+" field must not be empty.")
			case !utf8.ValidString(v):
				fe.Add(f, "The "+f+" field must be valid UTF-8.")
			case utf8.RuneCountInString(v) > LinkRuleTextMaxLen:
				fe.Add(f, fmt.Sprintf("The %s field must not be greater than %d characters.", f, LinkRuleTextMaxLen))
			}
		}
	}
	list("conditions.product_ids", c.ProductIDs)
	list("conditions.categories", c.Categories)
	if c.MinOrderAmount != nil && strings.TrimSpace(*c.MinOrderAmount) == "" {
		fe.Add("conditions.min_order_amount", "The conditions.min_order_amount field must be a number.")
	}
}

// build parses the conditions in cur; nil when none is given.
func (c *LinkRuleConditionsInput) build(fe FieldErrors, cur money.Currency) *LinkRuleConditions {
	if c == nil {
		return nil
	}
	out := &LinkRuleConditions{ProductIDs: c.ProductIDs, Categories: c.Categories}
	if c.MinOrderAmount != nil {
		const f = "conditions.min_order_amount"
		m, err := money.ParseMinor(strings.TrimSpace(*c.MinOrderAmount), cur)
		switch {
		case errors.Is(err, money.ErrPrecision):
			fe.Add(f, fmt.Sprintf("The %s field must have at most %d decimal places for %s.", f, cur.Scale, cur.Code))
		case err != nil:
			fe.Add(f, "The "+f+" field "+err.Error()+".")
		case m < 0:
			fe.Add(f, "The "+f+" field must be at least 0.")
		default:
			out.MinOrderAmount = &m
		}
	}
	if out.empty() {
		return nil
	}
	return out
}
