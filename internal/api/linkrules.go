package api

import (
	"context"
	"reflect"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

// Commission rules of a referral link (digest §5.5, "Commission rules for a
// link") and the link's statistics.

// linkRuleValue renders a rule's value: a percentage with two decimals
// (20.00) or an amount with the currency's decimals (4.50).
type linkRuleValue struct {
	r *heldsway.LinkRule
}

func (v linkRuleValue) MarshalJSON() ([]byte, error) {
	if v.r.Type == heldsway.LinkRulePercentage {
		return []byte(money.FormatRate(v.r.Value)), nil
	}
	return []byte(money.Format(v.r.Value, v.r.Currency)), nil
}

// Schema documents the value as a number.
func (linkRuleValue) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: "number", Examples: []any{20.00},
		Description: "percentage: the percent of the commission base (20.00 = 20 %). flat: the amount per order in the rule's currency."}
}

// linkRuleConditionsView is the conditions object of a rule. Its schema is
// inline (see Schema): huma supports nullable only on schemas that are not refs.
type linkRuleConditionsView linkRuleConditionsFieldsView

// Schema inlines the object's schema so the field holding it may be nullable.
func (linkRuleConditionsView) Schema(r huma.Registry) *huma.Schema {
	return huma.SchemaFromType(r, reflect.TypeFor[linkRuleConditionsFieldsView]())
}

type linkRuleConditionsFieldsView struct {
	ProductIDs     []string `json:"product_ids" nullable:"true" doc:"Holds when a line item's product_id is one of these (exact match); null: not a condition."`
	Categories     []string `json:"categories" nullable:"true" doc:"Holds when a line item's category is one of these (case-insensitive); null: not a condition."`
	MinOrderAmount *Amount  `json:"min_order_amount" nullable:"true" doc:"Holds when the order total is at least this, in the rule's currency; null: not a condition."`
}

// linkRuleView is the commission rule object.
type linkRuleView struct {
	ID         int64                   `json:"id"`
	LinkID     int64                   `json:"link_id"`
	Type       string                  `json:"type" enum:"percentage,flat"`
	Value      linkRuleValue           `json:"value"`
	Currency   string                  `json:"currency" example:"USD" doc:"The currency of the link's affiliate's program when the rule was written: flat values and min_order_amount are in it. A rule with an amount in a currency other than the order's does not apply."`
	Conditions *linkRuleConditionsView `json:"conditions" nullable:"true" doc:"All given conditions must hold for the rule to apply; null: the rule applies to every order through the link."`
	Priority   int64                   `json:"priority" doc:"Rules are tried from the lowest priority up (ties by id); the first that applies sets the commission."`
	IsActive   bool                    `json:"is_active" doc:"Inactive rules are never tried."`
	CreatedAt  Timestamp               `json:"created_at"`
	UpdatedAt  Timestamp               `json:"updated_at"`
}

func viewLinkRule(r *heldsway.LinkRule) linkRuleView {
	v := linkRuleView{ID: r.ID, LinkID: r.LinkID, Type: r.Type, Value: linkRuleValue{r}, Currency: r.Currency.Code,
		Priority: r.Priority, IsActive: r.IsActive, CreatedAt: Timestamp(r.CreatedAt), UpdatedAt: Timestamp(r.UpdatedAt)}
	if c := r.Conditions; c != nil {
		v.Conditions = &linkRuleConditionsView{ProductIDs: c.ProductIDs, Categories: c.Categories}
		if c.MinOrderAmount != nil {
			v.Conditions.MinOrderAmount = &Amount{Minor: *c.MinOrderAmount, Currency: r.Currency}
		}
	}
	return v
}

// linkRuleConditionsBody is the conditions object of a request, with an inline
// schema like linkRuleConditionsView's.
type linkRuleConditionsBody linkRuleConditionsFields

// Schema inlines the object's schema so the field holding it may be nullable.
func (linkRuleConditionsBody) Schema(r huma.Registry) *huma.Schema {
	return huma.SchemaFromType(r, reflect.TypeFor[linkRuleConditionsFields]())
}

type linkRuleConditionsFields struct {
	ProductIDs     []string `json:"product_ids,omitempty" maxItems:"100" nullable:"true" doc:"Up to 100 product ids; the rule applies when a line item has one of them. Empty or null: not a condition."`
	Categories     []string `json:"categories,omitempty" maxItems:"100" nullable:"true" doc:"Up to 100 categories, matched case-insensitively against the line items'. Empty or null: not a condition."`
	MinOrderAmount *Decimal `json:"min_order_amount,omitempty" minimum:"0" nullable:"true" doc:"The order total must be at least this, in the currency of the link's affiliate's program. null: not a condition."`
}

func (b *linkRuleConditionsBody) input() *heldsway.LinkRuleConditionsInput {
	if b == nil {
		return nil
	}
	return &heldsway.LinkRuleConditionsInput{ProductIDs: b.ProductIDs, Categories: b.Categories,
		MinOrderAmount: decimalText(b.MinOrderAmount)}
}

// linkRuleListInput takes the list parameters with the rule list's own
// defaults: by priority ascending, the order rules are tried in.
type linkRuleListInput struct {
	ID        int64  `path:"id" minimum:"1" doc:"Link id."`
	PerPage   int    `query:"per_page" minimum:"1" maximum:"100" default:"25" doc:"Items per page (1–100)."`
	Cursor    string `query:"cursor" maxLength:"1024" doc:"Opaque cursor from data.meta.next_cursor of the previous page."`
	Page      int    `query:"page" minimum:"1" maximum:"100000" doc:"Page number, honoured for compatibility when no cursor is given. Prefer cursor."`
	Sort      string `query:"sort" enum:"priority,created_at" default:"priority" doc:"priority: the order rules are tried in (ties by id)."`
	Direction string `query:"direction" enum:"asc,desc" default:"asc" doc:"Sort direction; ascending by default so the list reads in evaluation order."`
}

func (s *Server) handleLinkRuleList(ctx context.Context, in *linkRuleListInput) (*Out[Page[linkRuleView]], error) {
	lp := ListParams{PerPage: in.PerPage, Cursor: in.Cursor, Page: in.Page, Direction: in.Direction}
	o, err := lp.options(in.Sort)
	if err != nil {
		return nil, err
	}
	res, err := s.Store.ListLinkRules(ctx, principal(ctx).Workspace.ID, in.ID, o)
	if err != nil {
		return nil, err
	}
	return ok("OK", pageOut(res, lp, o, viewLinkRule)), nil
}

type linkRuleCreateInput struct {
	ID   int64 `path:"id" minimum:"1" doc:"Link id."`
	Body struct {
		Type       string                  `json:"type" enum:"percentage,flat"`
		Value      Decimal                 `json:"value" minimum:"0" doc:"percentage: 0 to 100 with at most two decimals. flat: an amount of at least 0 per order in the currency of the link's affiliate's program (capped at the order's commission base). 0 is allowed: matching orders then earn nothing."`
		Conditions *linkRuleConditionsBody `json:"conditions,omitempty" nullable:"true" doc:"Optional; null or absent: the rule applies to every order through the link."`
		Priority   *int64                  `json:"priority,omitempty" minimum:"0" maximum:"100000" doc:"Lower is tried first; default 0. Ties are broken by id (older first)."`
		IsActive   *bool                   `json:"is_active,omitempty" doc:"Default true."`
	}
}

func (s *Server) handleLinkRuleCreate(ctx context.Context, in *linkRuleCreateInput) (*Out[linkRuleView], error) {
	b := in.Body
	r, err := s.Store.CreateLinkRule(ctx, principal(ctx).Workspace.ID, in.ID, heldsway.LinkRuleInput{Type: b.Type,
		Value: string(b.Value), Conditions: b.Conditions.input(), Priority: b.Priority, IsActive: b.IsActive})
	if err != nil {
		return nil, err
	}
	return ok("Commission rule created.", viewLinkRule(r)), nil
}

type linkRuleIDInput struct {
	ID     int64 `path:"id" minimum:"1" doc:"Link id."`
	RuleID int64 `path:"rule_id" minimum:"1" doc:"Commission rule id."`
}

func (s *Server) handleLinkRuleGet(ctx context.Context, in *linkRuleIDInput) (*Out[linkRuleView], error) {
	r, err := s.Store.FindLinkRule(ctx, principal(ctx).Workspace.ID, in.ID, in.RuleID)
	if err != nil {
		return nil, err
	}
	return ok("OK", viewLinkRule(r)), nil
}

type linkRuleUpdateInput struct {
	ID     int64 `path:"id" minimum:"1" doc:"Link id."`
	RuleID int64 `path:"rule_id" minimum:"1" doc:"Commission rule id."`
	Body   struct {
		Type       nullableField[string]                 `json:"type,omitempty" enum:"percentage,flat" doc:"Changing it requires value."`
		Value      nullableField[Decimal]                `json:"value,omitempty" minimum:"0"`
		Conditions nullableField[linkRuleConditionsBody] `json:"conditions,omitempty" nullable:"true" doc:"Replaces the whole conditions object; null removes every condition."`
		Priority   nullableField[int64]                  `json:"priority,omitempty" minimum:"0" maximum:"100000"`
		IsActive   nullableField[bool]                   `json:"is_active,omitempty"`
	}
}

func (s *Server) handleLinkRuleUpdate(ctx context.Context, in *linkRuleUpdateInput) (*Out[linkRuleView], error) {
	b := in.Body
	fe := heldsway.FieldErrors{}
	u := heldsway.LinkRuleUpdate{Type: b.Type.value(fe, "type"), Value: decimalText(b.Value.value(fe, "value")),
		Priority: b.Priority.value(fe, "priority"), IsActive: b.IsActive.value(fe, "is_active"),
		SetConditions: b.Conditions.Sent}
	if c := b.Conditions.ptr(); c != nil && b.Conditions.Sent {
		u.Conditions = c.input()
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	r, err := s.Store.UpdateLinkRule(ctx, principal(ctx).Workspace.ID, in.ID, in.RuleID, u)
	if err != nil {
		return nil, err
	}
	return ok("Commission rule updated.", viewLinkRule(r)), nil
}

func (s *Server) handleLinkRuleDelete(ctx context.Context, in *linkRuleIDInput) (*Out[linkRuleView], error) {
	r, err := s.Store.DeleteLinkRule(ctx, principal(ctx).Workspace.ID, in.ID, in.RuleID)
	if err != nil {
		return nil, err
	}
	return ok("Commission rule deleted.", viewLinkRule(r)), nil
}

// Link statistics.

type currencyAmountView struct {
	Currency string `json:"currency" example:"USD"`
	Amount   Amount `json:"amount"`
}

type linkStatsView struct {
	LinkID         int64                `json:"link_id"`
	Clicks         int64                `json:"clicks" doc:"Clicks recorded through the link in the range (bots and 30-second repeats are never recorded)."`
	UniqueVisitors int64                `json:"unique_visitors" doc:"Distinct visitors (hs_vid cookie) among those clicks; a click without the cookie is a visitor of its own."`
	Conversions    int64                `json:"conversions" doc:"Orders attributed through the link (by click) and converted in the range, pending or approved; rejected and cancelled orders do not count."`
	Revenue        []currencyAmountView `json:"revenue" nullable:"false" doc:"Per currency (by code), the totals of the counted orders net of refunds. Empty when there are none."`
	Commission     []currencyAmountView `json:"commission" nullable:"false" doc:"Per currency, the commissions of the counted orders (every tier) that are pending, approved or paid, net of refund reversals; the same currencies as revenue."`
	ConversionRate Rate                 `json:"conversion_rate" doc:"conversions ÷ clicks × 100, half-up to two decimals; 0 when there are no clicks. May exceed 100 when clicks lead to several orders."`
	From           string               `json:"from" format:"date" example:"2026-10-02" doc:"First day of the range (the workspace's analytics time zone), inclusive."`
	To             string               `json:"to" format:"date" example:"2026-11-01" doc:"Last day of the range, inclusive."`
}

type linkStatsInput struct {
	ID int64 `path:"id" minimum:"1" doc:"Link id."`
	DateRange
}

func (s *Server) handleLinkStats(ctx context.Context, in *linkStatsInput) (*Out[linkStatsView], error) {
	// The analytics range rules and time zone: the figures are the analytics
	// figures with link_id, so both endpoints agree.
	sc, err := s.scope(ctx, in.From, in.To, "", heldsway.AnalyticsFilter{}, true)
	if err != nil {
		return nil, err
	}
	st, err := s.Store.LinkStats(ctx, sc.ws, in.ID, sc.from, sc.to)
	if err != nil {
		return nil, err
	}
	v := linkStatsView{LinkID: st.LinkID, Clicks: st.Clicks, UniqueVisitors: st.UniqueVisitors, Conversions: st.Conversions,
		Revenue: make([]currencyAmountView, 0, len(st.Revenue)), Commission: make([]currencyAmountView, 0, len(st.Commission)),
		ConversionRate: Rate(st.ConversionRate), From: st.From.Format(time.DateOnly), To: st.To.Format(time.DateOnly)}
	for _, l := range []struct {
		in  []heldsway.CurrencyAmount
		out *[]currencyAmountView
	}{{st.Revenue, &v.Revenue}, {st.Commission, &v.Commission}} {
		for _, ca := range l.in {
			cur, err := money.ParseCurrency(ca.Currency)
			if err != nil {
				return nil, err
			}
			*l.out = append(*l.out, currencyAmountView{Currency: cur.Code, Amount: Amount{Minor: ca.Amount, Currency: cur}})
		}
	}
	return ok("OK", v), nil
}
