package heldsway

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// Affiliate statuses (digest §6.1, §7.1).
const (
	AffiliatePending    = "pending"
	AffiliateActive     = "active"
	AffiliateSuspended  = "suspended"
	AffiliateTerminated = "terminated"
)

// AffiliateStatuses lists every status in the documented order.
var AffiliateStatuses = []string{AffiliatePending, AffiliateActive, AffiliateSuspended, AffiliateTerminated}

// Affiliate status actions: the POST /v1/affiliates/{id}/<action> routes.
const (
	ActionApprove    = "approve"
	ActionSuspend    = "suspend"
	ActionReactivate = "reactivate"
	ActionTerminate  = "terminate"
)

// AffiliateTransition is one action of the status machine: the statuses it may
// start from, the status it leads to and the event it writes.
type AffiliateTransition struct {
	From  []string
	To    string
	Event string
}

// AffiliateTransitions is the table of digest §7.1, exactly: pending → active,
// suspended or terminated; active → suspended or terminated; suspended → active
// or terminated; terminated is final. (The page's diagram omits
// pending → suspended; the table wins.)
var AffiliateTransitions = map[string]AffiliateTransition{
	ActionApprove:    {From: []string{AffiliatePending}, To: AffiliateActive, Event: "affiliate.approved"},
	ActionSuspend:    {From: []string{AffiliatePending, AffiliateActive}, To: AffiliateSuspended, Event: "affiliate.suspended"},
	ActionReactivate: {From: []string{AffiliateSuspended}, To: AffiliateActive, Event: "affiliate.reactivated"},
	ActionTerminate:  {From: []string{AffiliatePending, AffiliateActive, AffiliateSuspended}, To: AffiliateTerminated, Event: "affiliate.terminated"},
}

// CheckTransition returns nil if action may move an affiliate out of status
// from, or an INVALID_STATUS_TRANSITION error naming both statuses.
func CheckTransition(action, from string) error {
	tr, ok := AffiliateTransitions[action]
	if !ok {
		return Errorf(EINTERNAL, "unknown affiliate action %q", action)
	}
	for _, f := range tr.From {
		if f == from {
			return nil
		}
	}
	return &Error{Code: ETRANSITION,
		Message: fmt.Sprintf("Cannot %s an affiliate whose status is %s: %s → %s is not allowed.", action, from, from, tr.To),
		Details: map[string]any{"from": from, "to": tr.To}}
}

// AffiliateUser is the affiliate's login account: one per workspace and e-mail,
// shared by that person's affiliates in several programs.
type AffiliateUser struct {
	ID    int64
	Name  string
	Email string
	Phone *string
}

// Affiliate is a person enrolled in one program. CommissionRate is an override in
// basis points (10.00% = 1000); nil inherits the program's rate.
type Affiliate struct {
	ID                int64
	WorkspaceID       int64
	ProgramID         int64
	ParentAffiliateID *int64
	ReferralCode      string
	Status            string
	CommissionRate    *int64
	Notes             *string
	ApprovedAt        *time.Time
	SuspendedAt       *time.Time
	TerminatedAt      *time.Time
	CreatedAt         time.Time
	UpdatedAt         time.Time
	User              AffiliateUser
}

// AffiliateFilter selects affiliates in a list; zero fields do not filter.
type AffiliateFilter struct {
	Status    string
	Search    string // case-insensitive substring of name, e-mail or referral code
	ProgramID int64
}

// Affiliate list sorts (digest §5.3).
const (
	AffiliateSortCreatedAt      = "created_at"
	AffiliateSortReferralCode   = "referral_code"
	AffiliateSortStatus         = "status"
	AffiliateSortCommissionRate = "commission_rate"
)

// AffiliateCreate is an admin's new affiliate. Optional fields are nil when absent.
type AffiliateCreate struct {
	Name              string
	Email             string
	Phone             *string
	CommissionRate    *int64
	Notes             *string
	ProgramID         *int64 // nil: the workspace's default program
	ParentAffiliateID *int64
	ReferralCode      string // "": generated
	Status            string // "": active (an admin adding someone has approved them)
}

// AffiliateUpdate changes the fields that are set: a nil pointer leaves a field
// alone, and for the nullable fields SetX with a nil value clears it.
type AffiliateUpdate struct {
	Name              *string
	Email             *string
	Phone             *string
	SetPhone          bool
	CommissionRate    *int64
	SetCommissionRate bool
	Notes             *string
	SetNotes          bool
	ProgramID         *int64
	ParentAffiliateID *int64
	SetParent         bool
	ReferralCode      *string
}

// AffiliateRegistration is a public self-registration (digest §5.3: full name,
// e-mail, password and its confirmation, optional phone).
type AffiliateRegistration struct {
	Name                 string
	Email                string
	Phone                *string
	Password             string
	PasswordConfirmation string
}

// AffiliateCommission is the commission view of digest §5.5, rates in basis points.
type AffiliateCommission struct {
	AffiliateRate       *int64
	BusinessDefaultRate *int64
	EffectiveRate       *int64
}

// Limits of affiliate fields.
const (
	MaxNameLen         = 255
	MaxEmailLen        = 255
	MaxNotesLen        = 5000
	MinPasswordLen     = 8
	MaxPasswordBytes   = 72 // bcrypt ignores anything past 72 bytes; refuse rather than truncate
	ReferralCodeLength = 8  // generated codes, like the documented VYSGOQPD
	maxRate            = 10000
)

var (
	rePhone        = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
	reReferralCode = regexp.MustCompile(`^[A-Z0-9]{4,32}$`)
)

// NormalizeEmail trims and lower-cases an address.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// NormalizeReferralCode trims and upper-cases a code.
func NormalizeReferralCode(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

func validName(f FieldErrors, v string) {
	switch {
	case strings.TrimSpace(v) == "":
		f.Add("name", "The name field is required.")
	case utf8.RuneCountInString(v) > MaxNameLen:
		f.Add("name", fmt.Sprintf("The name field must not be greater than %d characters.", MaxNameLen))
	}
}

// validEmail accepts a bare address only: net/mail alone would take
// "Name <a@b.example>", which is not an e-mail field's value.
func validEmail(f FieldErrors, v string) {
	if strings.TrimSpace(v) == "" {
		f.Add("email", "The email field is required.")
		return
	}
	if utf8.RuneCountInString(v) > MaxEmailLen {
		f.Add("email", fmt.Sprintf("The email field must not be greater than %d characters.", MaxEmailLen))
		return
	}
	a, err := mail.ParseAddress(v)
	if err != nil || a.Name != "" || a.Address != v {
		f.Add("email", "The email field must be a valid email address.")
	}
}

func validPhone(f FieldErrors, v *string) {
	if v != nil && !rePhone.MatchString(*v) {
		f.Add("phone", "The phone field must be an E.164 phone number such as +14155552671.")
	}
}

func validRate(f FieldErrors, field string, v *int64) {
	if v != nil && (*v < 0 || *v > maxRate) {
		f.Add(field, fmt.Sprintf("The %s field must be between 0 and 100.", strings.ReplaceAll(field, "_", " ")))
	}
}

func validNotes(f FieldErrors, v *string) {
	if v != nil && utf8.RuneCountInString(*v) > MaxNotesLen {
		f.Add("notes", fmt.Sprintf("The notes field must not be greater than %d characters.", MaxNotesLen))
	}
}

func validReferralCode(f FieldErrors, v string) {
	if !reReferralCode.MatchString(v) {
		f.Add("referral_code", "The referral code field must be 4 to 32 letters or digits.")
	}
}

func validID(f FieldErrors, field string, v *int64) {
	if v != nil && *v <= 0 {
		f.Add(field, fmt.Sprintf("The selected %s is invalid.", strings.ReplaceAll(field, "_", " ")))
	}
}

// Normalize lower-cases the e-mail, upper-cases the referral code and trims the name.
func (in *AffiliateCreate) Normalize() {
	in.Name = strings.TrimSpace(in.Name)
	in.Email = NormalizeEmail(in.Email)
	in.ReferralCode = NormalizeReferralCode(in.ReferralCode)
}

// Validate checks the fields' formats; references (program, parent) are the
// store's to check, inside its transaction.
func (in *AffiliateCreate) Validate() error {
	f := FieldErrors{}
	validName(f, in.Name)
	validEmail(f, in.Email)
	validPhone(f, in.Phone)
	validRate(f, "commission_rate", in.CommissionRate)
	validNotes(f, in.Notes)
	validID(f, "program_id", in.ProgramID)
	validID(f, "parent_affiliate_id", in.ParentAffiliateID)
	if in.ReferralCode != "" {
		validReferralCode(f, in.ReferralCode)
	}
	if in.Status != "" && in.Status != AffiliatePending && in.Status != AffiliateActive {
		f.Add("status", "The selected status is invalid. Allowed: pending, active.")
	}
	return f.Err()
}

// Normalize lower-cases the e-mail, upper-cases the referral code and trims the name.
func (in *AffiliateUpdate) Normalize() {
	if in.Name != nil {
		*in.Name = strings.TrimSpace(*in.Name)
	}
	if in.Email != nil {
		*in.Email = NormalizeEmail(*in.Email)
	}
	if in.ReferralCode != nil {
		*in.ReferralCode = NormalizeReferralCode(*in.ReferralCode)
	}
}

// Validate checks the formats of the fields that are set.
func (in *AffiliateUpdate) Validate() error {
	f := FieldErrors{}
	if in.Name != nil {
		validName(f, *in.Name)
	}
	if in.Email != nil {
		validEmail(f, *in.Email)
	}
	validPhone(f, in.Phone)
	validRate(f, "commission_rate", in.CommissionRate)
	validNotes(f, in.Notes)
	validID(f, "program_id", in.ProgramID)
	validID(f, "parent_affiliate_id", in.ParentAffiliateID)
	if in.ReferralCode != nil {
		validReferralCode(f, *in.ReferralCode)
	}
	return f.Err()
}

// Normalize lower-cases the e-mail and trims the name.
func (in *AffiliateRegistration) Normalize() {
	in.Name = strings.TrimSpace(in.Name)
	in.Email = NormalizeEmail(in.Email)
}

// Validate checks a self-registration, including that the password is at least
// 8 characters and that its confirmation matches.
func (in *AffiliateRegistration) Validate() error {
	f := FieldErrors{}
	validName(f, in.Name)
	validEmail(f, in.Email)
	validPhone(f, in.Phone)
	switch {
	case in.Password == "":
		f.Add("password", "The password field is required.")
	case utf8.RuneCountInString(in.Password) < MinPasswordLen:
		f.Add("password", fmt.Sprintf("The password field must be at least %d characters.", MinPasswordLen))
	case len(in.Password) > MaxPasswordBytes:
		f.Add("password", fmt.Sprintf("The password field must not be greater than %d bytes.", MaxPasswordBytes))
	}
	if in.PasswordConfirmation != in.Password {
		f.Add("password_confirmation", "The password confirmation does not match.")
	}
	return f.Err()
}

// ValidateRate checks a commission override in basis points.
func ValidateRate(field string, v *int64) error {
	f := FieldErrors{}
	validRate(f, field, v)
	return f.Err()
}

// HashPassword returns the bcrypt hash of an affiliate's password.
func HashPassword(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	return string(h), err
}

// CheckPassword reports whether pw matches a hash made by HashPassword.
func CheckPassword(hash, pw string) bool {
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

const referralAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// NewReferralCode returns ReferralCodeLength random upper-case letters and
// digits (36^8 ≈ 2.8e12 codes), drawn without modulo bias.
func NewReferralCode() (string, error) {
	b := make([]byte, ReferralCodeLength)
	buf := make([]byte, 16)
	for i := 0; i < len(b); {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, c := range buf {
			// 252 = 7 × 36: bytes at or above it would favour the first letters.
			if c < 252 && i < len(b) {
				b[i] = referralAlphabet[c%36]
				i++
			}
		}
	}
	return string(b), nil
}

// AffiliateService manages a workspace's affiliates. Every method takes the
// workspace id and never sees another workspace's rows: an id of another
// workspace is ENOTFOUND. Writes record an audit entry and an event in their
// transaction. Callers: the API (affiliates:read / affiliates:write; Register is
// public).
type AffiliateService interface {
	// ListAffiliates pages affiliates by created_at (default), referral_code,
	// status or commission_rate. EVALIDATION for a bad cursor.
	ListAffiliates(ctx context.Context, wsID int64, f AffiliateFilter, o ListOptions) (PageResult[*Affiliate], error)
	// FindAffiliate: ENOTFOUND.
	FindAffiliate(ctx context.Context, wsID, id int64) (*Affiliate, error)
	// CreateAffiliate: EVALIDATION (bad field, unknown program or parent),
	// ECONFLICT (e-mail taken in the program, referral code taken).
	CreateAffiliate(ctx context.Context, wsID int64, in *AffiliateCreate) (*Affiliate, error)
	// UpdateAffiliate: ENOTFOUND, EVALIDATION (including a parent cycle), ECONFLICT.
	UpdateAffiliate(ctx context.Context, wsID, id int64, in *AffiliateUpdate) (*Affiliate, error)
	// DeleteAffiliate removes the affiliate with its links and coupons: ENOTFOUND.
	DeleteAffiliate(ctx context.Context, wsID, id int64) (*Affiliate, error)
	// TransitionAffiliate applies approve, suspend, reactivate or terminate:
	// ENOTFOUND, ETRANSITION.
	TransitionAffiliate(ctx context.Context, wsID, id int64, action, reason string) (*Affiliate, error)
	// AffiliateCommission and SetAffiliateCommission: ENOTFOUND.
	AffiliateCommission(ctx context.Context, wsID, id int64) (*AffiliateCommission, error)
	SetAffiliateCommission(ctx context.Context, wsID, id int64, rate *int64) (*AffiliateCommission, error)
	// RegisterAffiliate creates a pending affiliate in the default program of the
	// workspace with that slug: ENOTFOUND (no such active workspace), EFORBIDDEN
	// (self-registration off), ECONFLICT (e-mail already has an account).
	RegisterAffiliate(ctx context.Context, workspaceSlug string, in *AffiliateRegistration, passwordHash string) (*Affiliate, error)
}
