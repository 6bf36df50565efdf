package api

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"

	"github.com/danielgtaylor/huma/v2"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

// patchField is a field of a partial update that may be absent, null or a
// value; it converts to heldsway.Nullable.
type patchField[T any] struct {
	Set   bool
	Value *T
}

func (f *patchField[T]) UnmarshalJSON(b []byte) error {
	f.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		f.Value = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	f.Value = &v
	return nil
}

// Schema is T's schema made nullable; the field's tags (minimum, maxLength, …)
// apply to this copy.
func (patchField[T]) Schema(r huma.Registry) *huma.Schema {
	s := *r.Schema(reflect.TypeFor[T](), false, "")
	s.Nullable = true
	return &s
}

// nonNull is an optional request field that must not be null: absent leaves
// the value alone. huma lets null through for optional properties, so Resolve
// refuses it with the message a wrong type gets.
type nonNull[T any] struct {
	Set   bool
	Null  bool
	Value T
}

func (f *nonNull[T]) UnmarshalJSON(b []byte) error {
	f.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		f.Null = true
		return nil
	}
	return json.Unmarshal(b, &f.Value)
}

// Schema is T's schema; the field's tags apply to this copy.
func (nonNull[T]) Schema(r huma.Registry) *huma.Schema {
	s := *r.Schema(reflect.TypeFor[T](), false, "")
	s.Nullable = false
	return &s
}

// Resolve reports a null as a value of the wrong type, keyed by the field.
func (f *nonNull[T]) Resolve(_ huma.Context, prefix *huma.PathBuffer) []error {
	if !f.Null {
		return nil
	}
	typ := "string"
	switch any(f.Value).(type) {
	case int, int64:
		typ = "integer"
	case bool:
		typ = "boolean"
	case Decimal:
		typ = "number"
	}
	return []error{&huma.ErrorDetail{Location: prefix.String(), Message: "expected " + typ}}
}

// ptr is the value sent, or nil when absent.
func (f nonNull[T]) ptr() *T {
	if !f.Set || f.Null {
		return nil
	}
	v := f.Value
	return &v
}

// nullable converts to the domain's form.
func (f patchField[T]) nullable() heldsway.Nullable[T] {
	return heldsway.Nullable[T]{Set: f.Set, Value: f.Value}
}

// decimalPatch converts a decimal field to the domain's decimal text.
func decimalPatch(f patchField[Decimal]) heldsway.Nullable[string] {
	n := heldsway.Nullable[string]{Set: f.Set}
	if f.Value != nil {
		s := string(*f.Value)
		n.Value = &s
	}
	return n
}

// numberValue renders decimal text as a JSON number: a program's
// commission_value is a rate or an amount depending on its type.
type numberValue string

func (n numberValue) MarshalJSON() ([]byte, error) { return []byte(n), nil }

// Schema documents numberValue as a number.
func (numberValue) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: "number", Nullable: true, Examples: []any{10.00}}
}

// ProgramFields are the fields a program create and update share. Exported
// because huma documents and validates only exported embedded structs.
type ProgramFields struct {
	CommissionType   nonNull[string]     `json:"commission_type,omitempty" enum:"percentage,flat" doc:"percentage (default): commission_value is a rate in percent; flat: commission_value is an amount in the program's currency per conversion."`
	CommissionValue  patchField[Decimal] `json:"commission_value,omitempty" minimum:"0" doc:"percentage: 0–100 with at most two decimals; flat: an amount ≥ 0 with the currency's decimals. null (default): inherit the workspace commission tiers, then the platform defaults. Required when commission_type changes on a program that has a value."`
	CommissionBase   nonNull[string]     `json:"commission_base,omitempty" enum:"net,subtotal,total" doc:"What a percentage applies to. net (default): the order subtotal minus discounts, without tax and shipping; subtotal: line items before discounts; total: everything the customer paid, tax and shipping included."`
	Recurring        nonNull[string]     `json:"recurring,omitempty" enum:"off,months,lifetime" doc:"off (default): first order only; months: the referred customer's orders for recurring_months; lifetime: all of the customer's orders."`
	RecurringMonths  patchField[int]     `json:"recurring_months,omitempty" minimum:"1" maximum:"120" doc:"1–120; required when recurring is months, not allowed otherwise (cleared when recurring changes away from months)."`
	CookieDuration   nonNull[int]        `json:"cookie_duration,omitempty" minimum:"1" maximum:"365" doc:"Attribution window in days, 1–365 (default 30)."`
	AttributionModel nonNull[string]     `json:"attribution_model,omitempty" enum:"last_click,first_click" doc:"Which click wins when a visitor clicked several links (default last_click)."`
	TierRate         patchField[Decimal] `json:"tier_rate,omitempty" minimum:"0" maximum:"100" doc:"Multi-tier: percent paid to the parent of the referring affiliate, on the same base; null (default): none."`
	Status           nonNull[string]     `json:"status,omitempty" enum:"active,paused,archived" doc:"Default active. The default program cannot be archived (409)."`

	AllowSelfRegistration nonNull[bool]       `json:"allow_self_registration,omitempty" doc:"Whether affiliates may sign up through the public registration endpoint (default false)."`
	AutoApproveEnabled    nonNull[bool]       `json:"auto_approve_enabled,omitempty" doc:"Auto-approve pending conversions that meet the criteria (default false). Turning it on schedules the pending conversions already waiting too; turning it off unschedules them."`
	AutoApproveDelayDays  nonNull[int]        `json:"auto_approve_delay_days,omitempty" minimum:"0" maximum:"365" doc:"Days to wait before auto-approving, 0–365, counted from each conversion's converted_at (0: on receipt). A change reschedules the pending conversions."`
	AutoApproveMinAmount  patchField[Decimal] `json:"auto_approve_min_amount,omitempty" minimum:"0" doc:"Only auto-approve orders at or above this amount, in the program's currency; null: no lower bound."`
	AutoApproveMaxAmount  patchField[Decimal] `json:"auto_approve_max_amount,omitempty" minimum:"0" doc:"Only auto-approve orders at or below this amount; null: no upper bound. Must not be below the minimum."`
}

func (f *ProgramFields) patch(name, currency *string) heldsway.ProgramPatch {
	return heldsway.ProgramPatch{Name: name, Currency: currency, CommissionType: f.CommissionType.ptr(),
		CommissionValue: decimalPatch(f.CommissionValue), CommissionBase: f.CommissionBase.ptr(), Recurring: f.Recurring.ptr(),
		RecurringMonths: f.RecurringMonths.nullable(), CookieDuration: f.CookieDuration.ptr(),
		AttributionModel: f.AttributionModel.ptr(), TierRate: decimalPatch(f.TierRate), Status: f.Status.ptr(),
		AllowSelfRegistration: f.AllowSelfRegistration.ptr(), AutoApproveEnabled: f.AutoApproveEnabled.ptr(),
		AutoApproveDelayDays: f.AutoApproveDelayDays.ptr(), AutoApproveMinAmount: decimalPatch(f.AutoApproveMinAmount),
		AutoApproveMaxAmount: decimalPatch(f.AutoApproveMaxAmount)}
}

type programCreateInput struct {
	Body struct {
		Name     string `json:"name" minLength:"1" maxLength:"255"`
		Currency string `json:"currency" minLength:"3" maxLength:"3" doc:"ISO 4217 code (case-insensitive), e.g. USD. Every amount of the program is in it."`
		ProgramFields
	}
}

type programUpdateInput struct {
	ID   int64 `path:"id" minimum:"1"`
	Body struct {
		Name     nonNull[string] `json:"name,omitempty" minLength:"1" maxLength:"255"`
		Currency nonNull[string] `json:"currency,omitempty" minLength:"3" maxLength:"3" doc:"Cannot change once the program has affiliates (409). Amounts not sent with the change keep their decimal value; on the default program, commission tiers and the payout minimum follow too."`
		ProgramFields
	}
}

type programListInput struct {
	ListParams
	Status string `query:"status" enum:"active,paused,archived" doc:"Only programs with this status."`
	Sort   string `query:"sort" enum:"created_at,name" default:"created_at" doc:"Sort field; ties are broken by id."`
}

// programView is a program as clients see it.
type programView struct {
	ID               int64        `json:"id"`
	Name             string       `json:"name"`
	Currency         string       `json:"currency" doc:"ISO 4217 code; the program's amounts are in it."`
	CommissionType   string       `json:"commission_type" enum:"percentage,flat"`
	CommissionValue  *numberValue `json:"commission_value" doc:"percentage: percent (10.00); flat: amount per conversion in the program's currency; null: inherit the workspace commission tiers, then the platform defaults."`
	CommissionBase   string       `json:"commission_base" enum:"net,subtotal,total" doc:"net: subtotal minus discounts, without tax and shipping; subtotal: before discounts; total: tax and shipping included."`
	Recurring        string       `json:"recurring" enum:"off,months,lifetime"`
	RecurringMonths  *int         `json:"recurring_months" doc:"Set only when recurring is months."`
	CookieDuration   int          `json:"cookie_duration" doc:"Attribution window in days."`
	AttributionModel string       `json:"attribution_model" enum:"last_click,first_click"`
	TierRate         *Rate        `json:"tier_rate" nullable:"true" doc:"Percent paid to the parent affiliate (multi-tier); null: none."`
	Status           string       `json:"status" enum:"active,paused,archived"`
	IsDefault        bool         `json:"is_default" readOnly:"true" doc:"The workspace's default program, which the settings endpoints configure. Exactly one per workspace; it cannot be deleted or archived."`

	AllowSelfRegistration bool      `json:"allow_self_registration"`
	AutoApproveEnabled    bool      `json:"auto_approve_enabled"`
	AutoApproveDelayDays  int       `json:"auto_approve_delay_days"`
	AutoApproveMinAmount  *Amount   `json:"auto_approve_min_amount" nullable:"true"`
	AutoApproveMaxAmount  *Amount   `json:"auto_approve_max_amount" nullable:"true"`
	CreatedAt             Timestamp `json:"created_at"`
	UpdatedAt             Timestamp `json:"updated_at"`
}

func amountPtr(v *int64, cur money.Currency) *Amount {
	if v == nil {
		return nil
	}
	return &Amount{Minor: *v, Currency: cur}
}

func ratePtr(v *int64) *Rate {
	if v == nil {
		return nil
	}
	r := Rate(*v)
	return &r
}

func programOut(p *heldsway.Program) programView {
	cur := p.Money()
	v := programView{ID: p.ID, Name: p.Name, Currency: p.Currency, CommissionType: p.CommissionType,
		CommissionBase: p.CommissionBase, Recurring: p.Recurring, RecurringMonths: p.RecurringMonths,
		CookieDuration: p.CookieDays, AttributionModel: p.AttributionModel, TierRate: ratePtr(p.TierRate),
		Status: p.Status, IsDefault: p.IsDefault, AllowSelfRegistration: p.AllowSelfRegistration,
		AutoApproveEnabled: p.AutoApproveEnabled, AutoApproveDelayDays: p.AutoApproveDelayDays,
		AutoApproveMinAmount: amountPtr(p.AutoApproveMinAmount, cur), AutoApproveMaxAmount: amountPtr(p.AutoApproveMaxAmount, cur),
		CreatedAt: Timestamp(p.CreatedAt), UpdatedAt: Timestamp(p.UpdatedAt)}
	if c := p.CommissionValue; c != nil {
		n := numberValue(money.FormatRate(*c))
		if p.CommissionType == heldsway.CommissionFlat {
			n = numberValue(money.Format(*c, cur))
		}
		v.CommissionValue = &n
	}
	return v
}

func (s *Server) handleProgramList(ctx context.Context, in *programListInput) (*Out[Page[programView]], error) {
	o, err := in.options(in.Sort)
	if err != nil {
		return nil, err
	}
	res, err := s.Store.ListPrograms(ctx, principal(ctx).Workspace.ID, heldsway.ProgramFilter{Status: in.Status}, o)
	if err != nil {
		return nil, err
	}
	return ok("OK", pageOut(res, in.ListParams, o, programOut)), nil
}

func (s *Server) handleProgramCreate(ctx context.Context, in *programCreateInput) (*Out[programView], error) {
	p, err := s.Store.CreateProgram(ctx, principal(ctx).Workspace.ID, in.Body.patch(&in.Body.Name, &in.Body.Currency))
	if err != nil {
		return nil, err
	}
	return ok("Program created.", programOut(p)), nil
}

func (s *Server) handleProgramGet(ctx context.Context, in *idInput) (*Out[programView], error) {
	p, err := s.Store.FindProgram(ctx, principal(ctx).Workspace.ID, in.ID)
	if err != nil {
		return nil, err
	}
	return ok("OK", programOut(p)), nil
}

func (s *Server) handleProgramUpdate(ctx context.Context, in *programUpdateInput) (*Out[programView], error) {
	p, err := s.Store.UpdateProgram(ctx, principal(ctx).Workspace.ID, in.ID, in.Body.patch(in.Body.Name.ptr(), in.Body.Currency.ptr()))
	if err != nil {
		return nil, err
	}
	s.programLinksChanged(principal(ctx).Workspace.ID, p.ID) // status and cookie_duration reach the redirect
	return ok("Program updated.", programOut(p)), nil
}

type programDeleted struct {
	ID      int64 `json:"id"`
	Deleted bool  `json:"deleted"`
}

func (s *Server) handleProgramDelete(ctx context.Context, in *idInput) (*Out[programDeleted], error) {
	if err := s.Store.DeleteProgram(ctx, principal(ctx).Workspace.ID, in.ID); err != nil {
		return nil, err
	}
	return ok("Program deleted.", programDeleted{ID: in.ID, Deleted: true}), nil
}
