package api

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"

	"github.com/danielgtaylor/huma/v2"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// affiliateUserView is the affiliate's login account (digest §6.1).
type affiliateUserView struct {
	ID    int64   `json:"id"`
	Name  string  `json:"name"`
	Email string  `json:"email"`
	Phone *string `json:"phone" doc:"E.164, e.g. +14155552671." nullable:"true"`
}

// affiliateView is the documented affiliate object plus program_id and
// parent_affiliate_id.
type affiliateView struct {
	ID                int64             `json:"id"`
	ReferralCode      string            `json:"referral_code" doc:"Unique in the workspace; used in ?ref= links." example:"VYSGOQPD"`
	Status            string            `json:"status" enum:"pending,active,suspended,terminated"`
	CommissionRate    *RateString       `json:"commission_rate" nullable:"true" doc:"Override percentage as a decimal string (\"10.00\"); null inherits the program's rate."`
	Notes             *string           `json:"notes" nullable:"true" doc:"Internal; visible only to the business."`
	ApprovedAt        *Timestamp        `json:"approved_at" nullable:"true"`
	SuspendedAt       *Timestamp        `json:"suspended_at" nullable:"true" doc:"Time of the current suspension; cleared by reactivate (the audit log keeps the history)."`
	TerminatedAt      *Timestamp        `json:"terminated_at" nullable:"true"`
	CreatedAt         Timestamp         `json:"created_at"`
	AffiliateUser     affiliateUserView `json:"affiliate_user"`
	ProgramID         int64             `json:"program_id" doc:"The program the affiliate is enrolled in."`
	ParentAffiliateID *int64            `json:"parent_affiliate_id" nullable:"true" doc:"The recruiting affiliate (multi-tier), in the same program."`
}

func affiliateOut(a *heldsway.Affiliate) affiliateView {
	v := affiliateView{ID: a.ID, ReferralCode: a.ReferralCode, Status: a.Status, Notes: a.Notes,
		ApprovedAt: tsPtr(a.ApprovedAt), SuspendedAt: tsPtr(a.SuspendedAt), TerminatedAt: tsPtr(a.TerminatedAt),
		CreatedAt: Timestamp(a.CreatedAt), ProgramID: a.ProgramID, ParentAffiliateID: a.ParentAffiliateID,
		AffiliateUser: affiliateUserView{ID: a.User.ID, Name: a.User.Name, Email: a.User.Email, Phone: a.User.Phone}}
	if a.CommissionRate != nil {
		r := RateString(*a.CommissionRate)
		v.CommissionRate = &r
	}
	return v
}

// presence is an update body field that remembers whether it was sent, so an update
// tells "absent" (leave it alone) from null (clear it).
type presence[T any] struct {
	Set   bool
	Value *T
}

func (f *presence[T]) UnmarshalJSON(b []byte) error {
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

// Schema is T's schema, nullable. Tags on the field (maxLength, minimum, …)
// apply to this copy; nullable:"false" documents a field whose null is refused
// (huma lets null through for any optional field, so the handler refuses it).
func (presence[T]) Schema(r huma.Registry) *huma.Schema {
	s := *r.Schema(reflect.TypeFor[T](), false, "")
	s.Nullable = true
	return &s
}

type affiliateListInput struct {
	ListParams
	Status    string `query:"status" enum:"pending,active,suspended,terminated" doc:"Only affiliates with this status."`
	Search    string `query:"search" maxLength:"255" doc:"Case-insensitive substring of the name, e-mail or referral code."`
	ProgramID int64  `query:"program_id" minimum:"1" doc:"Only affiliates of this program."`
	Sort      string `query:"sort" enum:"created_at,referral_code,status,commission_rate" default:"created_at" doc:"Sort field; ties are broken by id. Affiliates without a commission override sort below every rate."`
}

func (s *Server) handleAffiliateList(ctx context.Context, in *affiliateListInput) (*Out[Page[affiliateView]], error) {
	p := principal(ctx)
	o, err := in.options(in.Sort)
	if err != nil {
		return nil, err
	}
	res, err := s.Store.ListAffiliates(ctx, p.Workspace.ID,
		heldsway.AffiliateFilter{Status: in.Status, Search: in.Search, ProgramID: in.ProgramID}, o)
	if err != nil {
		return nil, err
	}
	return ok("OK", pageOut(res, in.ListParams, o, affiliateOut)), nil
}

type affiliateIDInput struct {
	ID int64 `path:"id" minimum:"1" doc:"Affiliate id."`
}

func (s *Server) handleAffiliateGet(ctx context.Context, in *affiliateIDInput) (*Out[affiliateView], error) {
	a, err := s.Store.FindAffiliate(ctx, principal(ctx).Workspace.ID, in.ID)
	if err != nil {
		return nil, err
	}
	return ok("OK", affiliateOut(a)), nil
}

type affiliateCreateInput struct {
	Body struct {
		Name              string   `json:"name" minLength:"1" maxLength:"255" doc:"Full name; stored on the affiliate user."`
		Email             string   `json:"email" format:"email" maxLength:"255" doc:"Lower-cased. Unique per program (409 CONFLICT otherwise). The workspace's affiliate user with this e-mail is reused across programs and takes the name and phone given."`
		Phone             *string  `json:"phone,omitempty" nullable:"true" maxLength:"16" doc:"E.164, e.g. +14155552671."`
		CommissionRate    *Decimal `json:"commission_rate,omitempty" nullable:"true" minimum:"0" maximum:"100" doc:"Override percentage, 0–100 with at most two decimals; null or absent inherits the program's rate."`
		Notes             *string  `json:"notes,omitempty" nullable:"true" maxLength:"5000" doc:"Internal notes."`
		ProgramID         *int64   `json:"program_id,omitempty" minimum:"1" doc:"Program to enrol in; the workspace's default program when absent."`
		ParentAffiliateID *int64   `json:"parent_affiliate_id,omitempty" nullable:"true" minimum:"1" doc:"Recruiting affiliate, of this workspace and the same program."`
		ReferralCode      string   `json:"referral_code,omitempty" minLength:"4" maxLength:"32" doc:"4–32 letters or digits, upper-cased; unique in the workspace (409 CONFLICT otherwise). Generated (8 upper-case letters and digits) when absent."`
		Status            string   `json:"status,omitempty" enum:"pending,active" doc:"Initial status. Default active: an affiliate added by the business is approved, and approved_at is set. Send pending to approve later."`
	}
}

func (s *Server) handleAffiliateCreate(ctx context.Context, in *affiliateCreateInput) (*Out[affiliateView], error) {
	b := in.Body
	c := &heldsway.AffiliateCreate{Name: b.Name, Email: b.Email, Phone: b.Phone, Notes: b.Notes,
		ProgramID: b.ProgramID, ParentAffiliateID: b.ParentAffiliateID, ReferralCode: b.ReferralCode, Status: b.Status}
	var err error
	if c.CommissionRate, err = affRateField("commission_rate", b.CommissionRate); err != nil {
		return nil, err
	}
	a, err := s.Store.CreateAffiliate(ctx, principal(ctx).Workspace.ID, c)
	if err != nil {
		return nil, err
	}
	return ok("Affiliate created.", affiliateOut(a)), nil
}

// affRateField converts a percentage to basis points; two decimals at most.
func affRateField(name string, d *Decimal) (*int64, error) {
	if d == nil {
		return nil, nil
	}
	bp, err := d.Rate()
	if err != nil {
		return nil, heldsway.Invalid(name, "The "+human(name)+" field "+err.Error()+".")
	}
	return &bp, nil
}

type affiliateUpdateInput struct {
	ID   int64 `path:"id" minimum:"1" doc:"Affiliate id."`
	Body struct {
		Name              presence[string]  `json:"name,omitempty" nullable:"false" minLength:"1" maxLength:"255"`
		Email             presence[string]  `json:"email,omitempty" nullable:"false" format:"email" maxLength:"255" doc:"Changes the affiliate user's e-mail, for all of that person's affiliates."`
		Phone             presence[string]  `json:"phone,omitempty" maxLength:"16" doc:"E.164; null clears it."`
		CommissionRate    presence[Decimal] `json:"commission_rate,omitempty" minimum:"0" maximum:"100" doc:"Override percentage; null removes the override."`
		Notes             presence[string]  `json:"notes,omitempty" maxLength:"5000" doc:"null clears the notes."`
		ProgramID         presence[int64]   `json:"program_id,omitempty" nullable:"false" minimum:"1" doc:"Moves the affiliate (with its links and coupons) to another program of the workspace. Not allowed while it has sub-affiliates."`
		ParentAffiliateID presence[int64]   `json:"parent_affiliate_id,omitempty" minimum:"1" doc:"Same program; must not create a cycle. null removes the parent."`
		ReferralCode      presence[string]  `json:"referral_code,omitempty" nullable:"false" minLength:"4" maxLength:"32"`
	}
}

func (s *Server) handleAffiliateUpdate(ctx context.Context, in *affiliateUpdateInput) (*Out[affiliateView], error) {
	b := in.Body
	u := &heldsway.AffiliateUpdate{Name: b.Name.Value, Email: b.Email.Value, Phone: b.Phone.Value, SetPhone: b.Phone.Set,
		SetCommissionRate: b.CommissionRate.Set, Notes: b.Notes.Value, SetNotes: b.Notes.Set, ProgramID: b.ProgramID.Value,
		ParentAffiliateID: b.ParentAffiliateID.Value, SetParent: b.ParentAffiliateID.Set, ReferralCode: b.ReferralCode.Value}
	// null means "clear" only for the nullable fields.
	fe := heldsway.FieldErrors{}
	for name, f := range map[string]struct{ set, null bool }{
		"name":          {b.Name.Set, b.Name.Value == nil},
		"email":         {b.Email.Set, b.Email.Value == nil},
		"program_id":    {b.ProgramID.Set, b.ProgramID.Value == nil},
		"referral_code": {b.ReferralCode.Set, b.ReferralCode.Value == nil},
	} {
		if f.set && f.null {
			fe.Add(name, "The "+human(name)+" field must not be null.")
		}
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	var err error
	if u.CommissionRate, err = affRateField("commission_rate", b.CommissionRate.Value); err != nil {
		return nil, err
	}
	a, err := s.Store.UpdateAffiliate(ctx, principal(ctx).Workspace.ID, in.ID, u)
	if err != nil {
		return nil, err
	}
	// The redirect shows the referral code and uses the program's cookie window
	// and status; the other fields do not reach it.
	if u.ReferralCode != nil || u.ProgramID != nil {
		s.affiliateLinksChanged(principal(ctx).Workspace.ID, a.ID)
	}
	return ok("Affiliate updated.", affiliateOut(a)), nil
}

type affiliateDeleted struct {
	ID      int64 `json:"id"`
	Deleted bool  `json:"deleted"`
}

func (s *Server) handleAffiliateDelete(ctx context.Context, in *affiliateIDInput) (*Out[affiliateDeleted], error) {
	a, err := s.Store.DeleteAffiliate(ctx, principal(ctx).Workspace.ID, in.ID)
	if err != nil {
		return nil, err
	}
	s.affiliateLinksChanged(principal(ctx).Workspace.ID, a.ID) // its links went with it
	return ok("Affiliate deleted.", affiliateDeleted{ID: a.ID, Deleted: true}), nil
}

type affiliateActionInput struct {
	ID   int64 `path:"id" minimum:"1" doc:"Affiliate id."`
	Body *struct {
		Reason string `json:"reason,omitempty" maxLength:"1000" doc:"Why; kept in the audit entry."`
	} `required:"false"`
}

func (s *Server) affiliateAction(ctx context.Context, in *affiliateActionInput, action, msg string) (*Out[affiliateView], error) {
	var reason string
	if in.Body != nil {
		reason = in.Body.Reason
	}
	a, err := s.Store.TransitionAffiliate(ctx, principal(ctx).Workspace.ID, in.ID, action, reason)
	if err != nil {
		return nil, err
	}
	s.affiliateLinksChanged(principal(ctx).Workspace.ID, a.ID) // only an active affiliate's links track
	return ok(msg, affiliateOut(a)), nil
}

func (s *Server) handleAffiliateApprove(ctx context.Context, in *affiliateActionInput) (*Out[affiliateView], error) {
	return s.affiliateAction(ctx, in, heldsway.ActionApprove, "Affiliate approved.")
}

func (s *Server) handleAffiliateSuspend(ctx context.Context, in *affiliateActionInput) (*Out[affiliateView], error) {
	return s.affiliateAction(ctx, in, heldsway.ActionSuspend, "Affiliate suspended.")
}

func (s *Server) handleAffiliateReactivate(ctx context.Context, in *affiliateActionInput) (*Out[affiliateView], error) {
	return s.affiliateAction(ctx, in, heldsway.ActionReactivate, "Affiliate reactivated.")
}

func (s *Server) handleAffiliateTerminate(ctx context.Context, in *affiliateActionInput) (*Out[affiliateView], error) {
	return s.affiliateAction(ctx, in, heldsway.ActionTerminate, "Affiliate terminated.")
}

// affiliateCommissionView is digest §5.5's payload.
type affiliateCommissionView struct {
	AffiliateRate       *Rate `json:"affiliate_rate" nullable:"true" doc:"The affiliate's override; null when it inherits."`
	BusinessDefaultRate *Rate `json:"business_default_rate" nullable:"true" doc:"The default program's percentage; null when unset or the program pays a flat amount."`
	EffectiveRate       *Rate `json:"effective_rate" nullable:"true" doc:"The override if set, else the affiliate's program's percentage, else null."`
}

func affiliateCommissionOut(c *heldsway.AffiliateCommission) affiliateCommissionView {
	r := func(bp *int64) *Rate {
		if bp == nil {
			return nil
		}
		v := Rate(*bp)
		return &v
	}
	return affiliateCommissionView{AffiliateRate: r(c.AffiliateRate), BusinessDefaultRate: r(c.BusinessDefaultRate), EffectiveRate: r(c.EffectiveRate)}
}

func (s *Server) handleAffiliateCommissionGet(ctx context.Context, in *affiliateIDInput) (*Out[affiliateCommissionView], error) {
	c, err := s.Store.AffiliateCommission(ctx, principal(ctx).Workspace.ID, in.ID)
	if err != nil {
		return nil, err
	}
	return ok("OK", affiliateCommissionOut(c)), nil
}

type affiliateCommissionInput struct {
	ID   int64 `path:"id" minimum:"1" doc:"Affiliate id."`
	Body struct {
		CommissionRate *Decimal `json:"commission_rate" nullable:"true" minimum:"0" maximum:"100" doc:"Required key: a percentage 0–100 with at most two decimals, or null to remove the override."`
	}
}

func (s *Server) handleAffiliateCommissionPut(ctx context.Context, in *affiliateCommissionInput) (*Out[affiliateCommissionView], error) {
	rate, err := affRateField("commission_rate", in.Body.CommissionRate)
	if err != nil {
		return nil, err
	}
	c, err := s.Store.SetAffiliateCommission(ctx, principal(ctx).Workspace.ID, in.ID, rate)
	if err != nil {
		return nil, err
	}
	return ok("Commission rate updated.", affiliateCommissionOut(c)), nil
}

type affiliateRegisterInput struct {
	WorkspaceSlug string `path:"workspace_slug" maxLength:"100" doc:"The business's workspace slug."`
	Body          struct {
		Name                 string  `json:"name" minLength:"1" maxLength:"255" doc:"Full name."`
		Email                string  `json:"email" format:"email" maxLength:"255"`
		Password             string  `json:"password" minLength:"8" maxLength:"72" doc:"At least 8 characters (at most 72 bytes); stored as a bcrypt hash, never returned."`
		PasswordConfirmation string  `json:"password_confirmation" maxLength:"72" doc:"Must equal password."`
		Phone                *string `json:"phone,omitempty" nullable:"true" maxLength:"16" doc:"E.164, e.g. +14155552671."`
	}
}

func (s *Server) handleAffiliateRegister(ctx context.Context, in *affiliateRegisterInput) (*Out[affiliateView], error) {
	b := in.Body
	r := &heldsway.AffiliateRegistration{Name: b.Name, Email: b.Email, Phone: b.Phone,
		Password: b.Password, PasswordConfirmation: b.PasswordConfirmation}
	// Validate before hashing: bcrypt is deliberately slow, and bad input must
	// not cost it.
	r.Normalize()
	if err := r.Validate(); err != nil {
		return nil, err
	}
	hash, err := heldsway.HashPassword(b.Password)
	if err != nil {
		return nil, err
	}
	a, err := s.Store.RegisterAffiliate(ctx, in.WorkspaceSlug, r, hash)
	if err != nil {
		return nil, err
	}
	return ok("Registration received. The business will review your application.", affiliateOut(a)), nil
}
