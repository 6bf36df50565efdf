package heldsway

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // time zone names validate the same on every host, with or without /usr/share/zoneinfo

	"github.com/heldsway/heldsway/internal/money"
)

// Setting keys of digest §5.6, plus the workspace time zone. Each maps onto a
// column of the workspace's default program (timezone onto workspace_settings).
const (
	SettingCommissionRate        = "commission_rate"
	SettingCookieDuration        = "cookie_duration"
	SettingAutoApproveEnabled    = "auto_approve_enabled"
	SettingAutoApproveDelayDays  = "auto_approve_delay_days"
	SettingAutoApproveMinAmount  = "auto_approve_min_amount"
	SettingAutoApproveMaxAmount  = "auto_approve_max_amount"
	SettingAllowSelfRegistration = "allow_self_registration"
	SettingTimezone              = "timezone"
)

// SettingKeys lists every setting key in the documented order.
var SettingKeys = []string{SettingCommissionRate, SettingCookieDuration, SettingAutoApproveEnabled,
	SettingAutoApproveDelayDays, SettingAutoApproveMinAmount, SettingAutoApproveMaxAmount,
	SettingAllowSelfRegistration, SettingTimezone}

// IsSettingKey reports whether key names a setting.
func IsSettingKey(key string) bool {
	for _, k := range SettingKeys {
		if k == key {
			return true
		}
	}
	return false
}

// DefaultTimezone is a new workspace's time zone.
const DefaultTimezone = "UTC"

// Settings is the documented settings object: a view of the default program
// plus the workspace time zone. Amounts are minor units of Currency; the rate
// is basis points.
type Settings struct {
	// CommissionRate is the default program's rate; nil when it inherits the
	// tiers and platform defaults, or pays a flat amount.
	CommissionRate        *int64 `json:"commission_rate"`
	CookieDuration        int    `json:"cookie_duration"`
	AutoApproveEnabled    bool   `json:"auto_approve_enabled"`
	AutoApproveDelayDays  int    `json:"auto_approve_delay_days"`
	AutoApproveMinAmount  *int64 `json:"auto_approve_min_amount"`
	AutoApproveMaxAmount  *int64 `json:"auto_approve_max_amount"`
	AllowSelfRegistration bool   `json:"allow_self_registration"`
	Timezone              string `json:"timezone"`
	Currency              string `json:"currency"`
}

// SettingsOf returns the settings view of the default program p.
func SettingsOf(p *Program, timezone string) *Settings {
	s := &Settings{CookieDuration: p.CookieDays, AutoApproveEnabled: p.AutoApproveEnabled,
		AutoApproveDelayDays: p.AutoApproveDelayDays, AutoApproveMinAmount: p.AutoApproveMinAmount,
		AutoApproveMaxAmount: p.AutoApproveMaxAmount, AllowSelfRegistration: p.AllowSelfRegistration,
		Timezone: timezone, Currency: p.Currency}
	if p.CommissionType == CommissionPercentage {
		s.CommissionRate = p.CommissionValue
	}
	return s
}

// SettingsPatch changes some settings; nil and unset fields are left alone.
// Rates and amounts are decimal text.
type SettingsPatch struct {
	CommissionRate        Nullable[string]
	CookieDuration        *int
	AutoApproveEnabled    *bool
	AutoApproveDelayDays  *int
	AutoApproveMinAmount  Nullable[string]
	AutoApproveMaxAmount  Nullable[string]
	AllowSelfRegistration *bool
	Timezone              *string
}

// Empty reports whether the patch changes nothing.
func (s SettingsPatch) Empty() bool {
	return !s.CommissionRate.Set && s.CookieDuration == nil && s.AutoApproveEnabled == nil &&
		s.AutoApproveDelayDays == nil && !s.AutoApproveMinAmount.Set && !s.AutoApproveMaxAmount.Set &&
		s.AllowSelfRegistration == nil && s.Timezone == nil
}

// Validate checks what does not depend on stored state: bounds, rate decimals
// and the time zone name. Amounts (the currency's decimals, ≥ 0, min ≤ max) are
// checked against the default program when the patch is applied.
// Errors: EVALIDATION, keyed by setting name.
func (s SettingsPatch) Validate() error {
	c := fieldCheck{FieldErrors{}}
	if v := s.CommissionRate.Value; v != nil {
		c.rate(SettingCommissionRate, *v)
	}
	if v := s.CookieDuration; v != nil {
		c.between(SettingCookieDuration, *v, MinCookieDays, MaxCookieDays)
	}
	if v := s.AutoApproveDelayDays; v != nil {
		c.between(SettingAutoApproveDelayDays, *v, 0, MaxAutoApproveDelay)
	}
	if v := s.Timezone; v != nil && !ValidTimezone(*v) {
		c.addf(SettingTimezone, "must be a valid IANA time zone name, such as Europe/Berlin.")
	}
	return c.Err()
}

// ProgramPatch is the change s makes to the default program. Setting a
// commission_rate makes the default program a percentage program.
func (s SettingsPatch) ProgramPatch() ProgramPatch {
	p := ProgramPatch{CookieDuration: s.CookieDuration, AutoApproveEnabled: s.AutoApproveEnabled,
		AutoApproveDelayDays: s.AutoApproveDelayDays, AutoApproveMinAmount: s.AutoApproveMinAmount,
		AutoApproveMaxAmount: s.AutoApproveMaxAmount, AllowSelfRegistration: s.AllowSelfRegistration}
	if s.CommissionRate.Set {
		typ := CommissionPercentage
		p.CommissionType, p.CommissionValue = &typ, s.CommissionRate
	}
	return p
}

// ValidTimezone reports whether name is an IANA time zone name.
func ValidTimezone(name string) bool {
	// LoadLocation also accepts "" and "Local", which mean the server's zone.
	if name == "" || name == "Local" || len(name) > 64 {
		return false
	}
	_, err := time.LoadLocation(name)
	return err == nil
}

// Branding is how the affiliate portal looks. Every field is optional.
type Branding struct {
	BrandName      *string `json:"brand_name"`
	PrimaryColor   *string `json:"primary_color"`
	SecondaryColor *string `json:"secondary_color"`
	LogoURL        *string `json:"logo_url"`
	CustomDomain   *string `json:"custom_domain"`
}

// BrandingPatch changes some branding fields; null clears one.
type BrandingPatch struct {
	BrandName      Nullable[string]
	PrimaryColor   Nullable[string]
	SecondaryColor Nullable[string]
	LogoURL        Nullable[string]
	CustomDomain   Nullable[string]
}

// Branding bounds.
const (
	MaxBrandNameLength = 100
	MaxLogoURLLength   = 2048
)

var brandColor = regexp.MustCompile(`^#[0-9A-Fa-f]{6}$`)

// Apply validates in, normalises it (colours upper-case, domains lower-case)
// and changes b. Errors: EVALIDATION.
func (b *Branding) Apply(in BrandingPatch) error {
	c := fieldCheck{FieldErrors{}}
	set := func(dst **string, f Nullable[string], norm func(string) (string, bool)) {
		if !f.Set {
			return
		}
		if f.Value == nil {
			*dst = nil
			return
		}
		if v, ok := norm(*f.Value); ok {
			*dst = &v
		}
	}
	set(&b.BrandName, in.BrandName, func(s string) (string, bool) { return c.text("brand_name", s, MaxBrandNameLength) })
	color := func(field string) func(string) (string, bool) {
		return func(s string) (string, bool) {
			if !brandColor.MatchString(s) {
				c.addf(field, "must be a colour in #RRGGBB form.")
				return "", false
			}
			return strings.ToUpper(s), true
		}
	}
	set(&b.PrimaryColor, in.PrimaryColor, color("primary_color"))
	set(&b.SecondaryColor, in.SecondaryColor, color("secondary_color"))
	set(&b.LogoURL, in.LogoURL, func(s string) (string, bool) {
		u, err := url.Parse(s)
		switch {
		case len(s) > MaxLogoURLLength:
			c.addf("logo_url", "must not be greater than %d characters.", MaxLogoURLLength)
		case err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || strings.ContainsAny(s, " \t\r\n"):
			c.addf("logo_url", "must be an absolute https URL.")
		default:
			return s, true
		}
		return "", false
	})
	set(&b.CustomDomain, in.CustomDomain, func(s string) (string, bool) {
		h := strings.TrimSuffix(strings.ToLower(s), ".")
		if !validCustomDomain(h) {
			c.addf("custom_domain", "must be a host name such as affiliates.example.com, without scheme, port or path.")
			return "", false
		}
		return h, true
	})
	return c.Err()
}

// Validate checks in on its own: branding has no cross-field rules.
func (in BrandingPatch) Validate() error { return (&Branding{}).Apply(in) }

// CustomDomainAllowed reports whether a workspace on plan may use a custom
// portal domain: from the basic plan up (digest §14).
func CustomDomainAllowed(plan string) bool { return plan != "nano" }

// validCustomDomain accepts a DNS name of at least two labels whose last label is
// not numeric, so IP addresses, "localhost" and URLs are refused.
func validCustomDomain(h string) bool {
	if len(h) > 253 {
		return false
	}
	labels := strings.Split(h, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return strings.IndexFunc(labels[len(labels)-1], func(r rune) bool { return r >= 'a' && r <= 'z' }) >= 0
}

// Payout frequencies.
const (
	PayoutWeekly   = "weekly"
	PayoutBiweekly = "biweekly"
	PayoutMonthly  = "monthly"
	PayoutManual   = "manual"
)

// PayoutSettings say when affiliates are paid. MinimumAmount is minor units of
// Currency, the default program's currency.
type PayoutSettings struct {
	Frequency          string `json:"frequency"`
	MinimumAmount      int64  `json:"minimum_amount"`
	AllowEarlyRequests bool   `json:"allow_early_requests"`
	Currency           string `json:"currency"`
}

// PayoutSettingsPatch changes some payout settings.
type PayoutSettingsPatch struct {
	Frequency          *string
	MinimumAmount      *string // decimal, currency units
	AllowEarlyRequests *bool
}

// Apply validates in against p's currency and changes p. Errors: EVALIDATION.
func (p *PayoutSettings) Apply(in PayoutSettingsPatch) error {
	c := fieldCheck{FieldErrors{}}
	if in.Frequency != nil && c.enum("frequency", *in.Frequency, PayoutWeekly, PayoutBiweekly, PayoutMonthly, PayoutManual) {
		p.Frequency = *in.Frequency
	}
	if in.MinimumAmount != nil {
		if cur, err := money.ParseCurrency(p.Currency); err == nil {
			if m, ok := c.amount("minimum_amount", *in.MinimumAmount, cur); ok {
				p.MinimumAmount = m
			}
		}
	}
	if in.AllowEarlyRequests != nil {
		p.AllowEarlyRequests = *in.AllowEarlyRequests
	}
	return c.Err()
}

// MaxCommissionTiers bounds a workspace's tiers, so the list needs no paging.
const MaxCommissionTiers = 100

// CommissionTier is a rate for orders whose amount falls in [MinAmount,
// MaxAmount) (MaxAmount nil: no upper bound), in minor units of the default
// program's currency. A workspace's tiers never overlap.
type CommissionTier struct {
	ID          int64     `json:"id,omitempty"`
	WorkspaceID int64     `json:"-"`
	MinAmount   int64     `json:"min_amount"`
	MaxAmount   *int64    `json:"max_amount"`
	Rate        int64     `json:"rate"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// TierPatch creates or partly updates a tier. Amounts and the rate are decimal text.
type TierPatch struct {
	MinAmount *string
	MaxAmount Nullable[string] // null or absent on create: no upper bound
	Rate      *string
}

// NewCommissionTier validates a create request. min_amount and rate are
// required. Errors: EVALIDATION.
func NewCommissionTier(in TierPatch, cur money.Currency) (*CommissionTier, error) {
	t := &CommissionTier{}
	err := t.Apply(in, cur)
	fe := FieldErrors{}
	if in.MinAmount == nil {
		fe.Add("min_amount", "The min amount field is required.")
	}
	if in.Rate == nil {
		fe.Add("rate", "The rate field is required.")
	}
	if len(fe) == 0 {
		if err != nil {
			return nil, err
		}
		return t, nil
	}
	if he, ok := err.(*Error); ok {
		for k, v := range he.Details {
			fe[k] = append(fe[k], v.([]string)...)
		}
	}
	return nil, fe.Err()
}

// Apply validates in and changes t: amounts ≥ 0, max > min, rate 0–100.
// Errors: EVALIDATION.
func (t *CommissionTier) Apply(in TierPatch, cur money.Currency) error {
	c := fieldCheck{FieldErrors{}}
	if in.MinAmount != nil {
		if m, ok := c.amount("min_amount", *in.MinAmount, cur); ok {
			t.MinAmount = m
		}
	}
	if in.MaxAmount.Set {
		t.MaxAmount = nil
		if v := in.MaxAmount.Value; v != nil {
			if m, ok := c.amount("max_amount", *v, cur); ok {
				t.MaxAmount = &m
			}
		}
	}
	if in.Rate != nil {
		if bp, ok := c.rate("rate", *in.Rate); ok {
			t.Rate = bp
		}
	}
	if t.MaxAmount != nil && *t.MaxAmount <= t.MinAmount && c.FieldErrors["min_amount"] == nil && c.FieldErrors["max_amount"] == nil {
		c.addf("max_amount", "must be greater than the min amount.")
	}
	return c.Err()
}

// Overlaps reports whether the bands [min, max) of t and o share an amount.
func (t *CommissionTier) Overlaps(o *CommissionTier) bool {
	below := func(a int64, max *int64) bool { return max == nil || a < *max }
	return below(t.MinAmount, o.MaxAmount) && below(o.MinAmount, t.MaxAmount)
}

// SettingsStore persists a workspace's settings, commission tiers, branding
// and payout settings. Every method is scoped to one workspace. Called by the API.
type SettingsStore interface {
	// Settings returns the settings object. Errors: ENOTFOUND (no default program).
	Settings(ctx context.Context, wsID int64) (*Settings, error)
	// UpdateSettings applies all of in or nothing. Errors: EVALIDATION.
	UpdateSettings(ctx context.Context, wsID int64, in SettingsPatch) (*Settings, error)

	// CommissionTiers returns the workspace's tiers by min_amount and the
	// currency they are in (the default program's); so do the tier writes.
	CommissionTiers(ctx context.Context, wsID int64) ([]*CommissionTier, money.Currency, error)
	// CreateCommissionTier errors: EVALIDATION (bad values, overlap, too many tiers).
	CreateCommissionTier(ctx context.Context, wsID int64, in TierPatch) (*CommissionTier, money.Currency, error)
	// UpdateCommissionTier errors: ENOTFOUND, EVALIDATION.
	UpdateCommissionTier(ctx context.Context, wsID, id int64, in TierPatch) (*CommissionTier, money.Currency, error)
	// DeleteCommissionTier errors: ENOTFOUND.
	DeleteCommissionTier(ctx context.Context, wsID, id int64) error
	// ResetCommissionTiers replaces the workspace's tiers with PlatformTiers.
	ResetCommissionTiers(ctx context.Context, wsID int64) ([]*CommissionTier, money.Currency, error)

	Branding(ctx context.Context, wsID int64) (*Branding, error)
	// UpdateBranding errors: EVALIDATION; ECONFLICT when another workspace uses
	// the custom domain. The plan check is the caller's (CustomDomainAllowed).
	UpdateBranding(ctx context.Context, wsID int64, in BrandingPatch) (*Branding, error)

	PayoutSettings(ctx context.Context, wsID int64) (*PayoutSettings, error)
	// UpdatePayoutSettings errors: EVALIDATION.
	UpdatePayoutSettings(ctx context.Context, wsID int64, in PayoutSettingsPatch) (*PayoutSettings, error)
}
