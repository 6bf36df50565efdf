package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

// settingsView is the settings object of digest §5.6, plus timezone. It maps
// onto the workspace's default program.
type settingsView struct {
	CommissionRate        *Rate   `json:"commission_rate" nullable:"true" doc:"Default commission percentage for all affiliates; null: the commission tiers, then the platform defaults, apply. A per-affiliate rate wins. This is the default program's commission_value, and is null while that program pays a flat amount."`
	CookieDuration        int     `json:"cookie_duration" minimum:"1" maximum:"365" doc:"Attribution window in days (default 30)."`
	AutoApproveEnabled    bool    `json:"auto_approve_enabled" doc:"Auto-approve pending conversions that meet the criteria (default false). Turning it on schedules the pending conversions already waiting too; turning it off unschedules them."`
	AutoApproveDelayDays  int     `json:"auto_approve_delay_days" minimum:"0" maximum:"365" doc:"Days to wait before auto-approving, counted from each conversion's converted_at (0: on receipt). A change reschedules the pending conversions."`
	AutoApproveMinAmount  *Amount `json:"auto_approve_min_amount" nullable:"true" doc:"Only auto-approve at or above this order amount, in the default program's currency."`
	AutoApproveMaxAmount  *Amount `json:"auto_approve_max_amount" nullable:"true" doc:"Only auto-approve at or below this order amount."`
	AllowSelfRegistration bool    `json:"allow_self_registration" doc:"Enables public affiliate sign-up (default false)."`
	Timezone              string  `json:"timezone" doc:"IANA time zone of the workspace, e.g. Europe/Berlin (default UTC)."`
}

func settingsOut(st *heldsway.Settings) settingsView {
	cur := money.MustCurrency(st.Currency)
	return settingsView{CommissionRate: ratePtr(st.CommissionRate), CookieDuration: st.CookieDuration,
		AutoApproveEnabled: st.AutoApproveEnabled, AutoApproveDelayDays: st.AutoApproveDelayDays,
		AutoApproveMinAmount: amountPtr(st.AutoApproveMinAmount, cur), AutoApproveMaxAmount: amountPtr(st.AutoApproveMaxAmount, cur),
		AllowSelfRegistration: st.AllowSelfRegistration, Timezone: st.Timezone}
}

// settingData is one setting.
type settingData struct {
	Key   string          `json:"key" enum:"commission_rate,cookie_duration,auto_approve_enabled,auto_approve_delay_days,auto_approve_min_amount,auto_approve_max_amount,allow_self_registration,timezone"`
	Value json.RawMessage `json:"value" doc:"The setting's value, of the type GET /v1/settings shows for it."`
}

// settingOf picks key out of the rendered settings object, so a single
// setting renders exactly as it does in the whole object.
func settingOf(v settingsView, key string) (settingData, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return settingData{}, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return settingData{}, err
	}
	return settingData{Key: key, Value: m[key]}, nil
}

func unknownSetting() error {
	return heldsway.Errorf(heldsway.ENOTFOUND, "Setting not found. Known keys: %s.", strings.Join(heldsway.SettingKeys, ", "))
}

func (s *Server) handleSettingsGet(ctx context.Context, _ *struct{}) (*Out[settingsView], error) {
	st, err := s.Store.Settings(ctx, principal(ctx).Workspace.ID)
	if err != nil {
		return nil, err
	}
	return ok("OK", settingsOut(st)), nil
}

type settingKeyInput struct {
	Key string `path:"key" doc:"One of commission_rate, cookie_duration, auto_approve_enabled, auto_approve_delay_days, auto_approve_min_amount, auto_approve_max_amount, allow_self_registration, timezone. Any other key is 404 NOT_FOUND."`
}

func (s *Server) handleSettingGet(ctx context.Context, in *settingKeyInput) (*Out[settingData], error) {
	if !heldsway.IsSettingKey(in.Key) {
		return nil, unknownSetting()
	}
	st, err := s.Store.Settings(ctx, principal(ctx).Workspace.ID)
	if err != nil {
		return nil, err
	}
	d, err := settingOf(settingsOut(st), in.Key)
	if err != nil {
		return nil, err
	}
	return ok("OK", d), nil
}

type settingsUpdateInput struct {
	Body struct {
		CommissionRate        patchField[Decimal] `json:"commission_rate,omitempty" minimum:"0" maximum:"100" doc:"0–100 with at most two decimals, or null. A number makes the default program a percentage program."`
		CookieDuration        nonNull[int]        `json:"cookie_duration,omitempty" minimum:"1" maximum:"365"`
		AutoApproveEnabled    nonNull[bool]       `json:"auto_approve_enabled,omitempty"`
		AutoApproveDelayDays  nonNull[int]        `json:"auto_approve_delay_days,omitempty" minimum:"0" maximum:"365"`
		AutoApproveMinAmount  patchField[Decimal] `json:"auto_approve_min_amount,omitempty" minimum:"0" doc:"≥ 0 with the currency's decimals, or null; not above the maximum."`
		AutoApproveMaxAmount  patchField[Decimal] `json:"auto_approve_max_amount,omitempty" minimum:"0" doc:"≥ 0 with the currency's decimals, or null; not below the minimum."`
		AllowSelfRegistration nonNull[bool]       `json:"allow_self_registration,omitempty"`
		Timezone              nonNull[string]     `json:"timezone,omitempty" minLength:"1" maxLength:"64" doc:"IANA time zone name."`
	}
}

func (s *Server) handleSettingsUpdate(ctx context.Context, in *settingsUpdateInput) (*Out[settingsView], error) {
	b := in.Body
	patch := heldsway.SettingsPatch{CommissionRate: decimalPatch(b.CommissionRate), CookieDuration: b.CookieDuration.ptr(),
		AutoApproveEnabled: b.AutoApproveEnabled.ptr(), AutoApproveDelayDays: b.AutoApproveDelayDays.ptr(),
		AutoApproveMinAmount: decimalPatch(b.AutoApproveMinAmount), AutoApproveMaxAmount: decimalPatch(b.AutoApproveMaxAmount),
		AllowSelfRegistration: b.AllowSelfRegistration.ptr(), Timezone: b.Timezone.ptr()}
	if patch.Empty() {
		return nil, heldsway.Invalid("body", "The request must contain at least one setting.")
	}
	st, err := s.Store.UpdateSettings(ctx, principal(ctx).Workspace.ID, patch)
	if err != nil {
		return nil, err
	}
	s.settingsChanged(ctx, patch)
	return ok("Settings updated.", settingsOut(st)), nil
}

// settingsChanged tells the tracker about a settings write that reaches the
// redirect: cookie_duration is the default program's cookie window. The
// workspace's links are forgotten rather than the default program's, which the
// patch does not name; settings writes are rare.
func (s *Server) settingsChanged(ctx context.Context, patch heldsway.SettingsPatch) {
	if patch.CookieDuration != nil {
		s.workspaceLinksChanged(principal(ctx).Workspace.ID)
	}
}

type settingUpdateInput struct {
	Key  string `path:"key" doc:"A key of GET /v1/settings; any other key is 404 NOT_FOUND."`
	Body struct {
		Value json.RawMessage `json:"value" doc:"The new value, of the setting's type (number, integer, boolean or string; null where the setting allows it)."`
	}
}

func (s *Server) handleSettingUpdate(ctx context.Context, in *settingUpdateInput) (*Out[settingData], error) {
	if !heldsway.IsSettingKey(in.Key) {
		return nil, unknownSetting()
	}
	patch, err := decodeSetting(in.Key, in.Body.Value)
	if err != nil {
		return nil, err
	}
	st, err := s.Store.UpdateSettings(ctx, principal(ctx).Workspace.ID, patch)
	if err != nil {
		return nil, asValueError(err)
	}
	s.settingsChanged(ctx, patch)
	d, err := settingOf(settingsOut(st), in.Key)
	if err != nil {
		return nil, err
	}
	return ok("Setting updated.", d), nil
}

// decodeSetting reads a single setting's raw JSON value with the type of its key.
func decodeSetting(key string, raw json.RawMessage) (heldsway.SettingsPatch, error) {
	var p heldsway.SettingsPatch
	raw = bytes.TrimSpace(raw)
	null := string(raw) == "null"
	// The body is valid JSON, so a value starting like a number is one.
	number := len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9')
	text := string(raw)
	nullableNumber := func(dst *heldsway.Nullable[string]) error {
		switch {
		case null:
			*dst = heldsway.SetNull[string]()
		case number:
			*dst = heldsway.SetTo(text)
		default:
			return heldsway.Invalid("value", "The value field must be a number or null.")
		}
		return nil
	}
	integer := func(dst **int) error {
		n, err := strconv.Atoi(text)
		if !number || err != nil {
			return heldsway.Invalid("value", "The value field must be an integer.")
		}
		*dst = &n
		return nil
	}
	boolean := func(dst **bool) error {
		if text != "true" && text != "false" {
			return heldsway.Invalid("value", "The value field must be true or false.")
		}
		v := text == "true"
		*dst = &v
		return nil
	}
	var err error
	switch key {
	case heldsway.SettingCommissionRate:
		err = nullableNumber(&p.CommissionRate)
	case heldsway.SettingAutoApproveMinAmount:
		err = nullableNumber(&p.AutoApproveMinAmount)
	case heldsway.SettingAutoApproveMaxAmount:
		err = nullableNumber(&p.AutoApproveMaxAmount)
	case heldsway.SettingCookieDuration:
		err = integer(&p.CookieDuration)
	case heldsway.SettingAutoApproveDelayDays:
		err = integer(&p.AutoApproveDelayDays)
	case heldsway.SettingAutoApproveEnabled:
		err = boolean(&p.AutoApproveEnabled)
	case heldsway.SettingAllowSelfRegistration:
		err = boolean(&p.AllowSelfRegistration)
	case heldsway.SettingTimezone:
		var tz string
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &tz) != nil {
			return p, heldsway.Invalid("value", "The value field must be a string.")
		}
		p.Timezone = &tz
	}
	return p, err
}

// asValueError keys a single setting's validation messages by "value", the
// field the client sent.
func asValueError(err error) error {
	var he *heldsway.Error
	if !errors.As(err, &he) || he.Code != heldsway.EVALIDATION {
		return err
	}
	var msgs []string
	for _, v := range he.Details {
		if l, ok := v.([]string); ok {
			msgs = append(msgs, l...)
		}
	}
	return &heldsway.Error{Code: he.Code, Message: he.Message, Details: map[string]any{"value": msgs}}
}

// Commission tiers.

type tierView struct {
	ID        int64     `json:"id"`
	MinAmount Amount    `json:"min_amount" doc:"Lower bound, inclusive, in the default program's currency."`
	MaxAmount *Amount   `json:"max_amount" nullable:"true" doc:"Upper bound, exclusive; null: no upper bound."`
	Rate      Rate      `json:"rate" doc:"Commission percentage for orders in the band."`
	CreatedAt Timestamp `json:"created_at"`
	UpdatedAt Timestamp `json:"updated_at"`
}

type platformTierView struct {
	MinAmount Amount  `json:"min_amount"`
	MaxAmount *Amount `json:"max_amount" nullable:"true"`
	Rate      Rate    `json:"rate"`
}

type tiersData struct {
	Currency         string             `json:"currency" doc:"The default program's currency; every tier amount is in it."`
	Items            []tierView         `json:"items" doc:"The workspace's tiers by min_amount (at most 100; not paginated). Bands are [min_amount, max_amount) and never overlap."`
	PlatformDefaults []platformTierView `json:"platform_defaults" doc:"Read-only platform default tiers, which apply to orders no workspace tier covers. POST /v1/settings/commission-tiers/reset copies them into the workspace."`
}

func tierOut(t *heldsway.CommissionTier, cur money.Currency) tierView {
	return tierView{ID: t.ID, MinAmount: Amount{Minor: t.MinAmount, Currency: cur}, MaxAmount: amountPtr(t.MaxAmount, cur),
		Rate: Rate(t.Rate), CreatedAt: Timestamp(t.CreatedAt), UpdatedAt: Timestamp(t.UpdatedAt)}
}

func tiersOut(tiers []*heldsway.CommissionTier, cur money.Currency) tiersData {
	d := tiersData{Currency: cur.Code, Items: make([]tierView, 0, len(tiers)), PlatformDefaults: []platformTierView{}}
	for _, t := range tiers {
		d.Items = append(d.Items, tierOut(t, cur))
	}
	for _, t := range heldsway.PlatformTiers(cur) {
		d.PlatformDefaults = append(d.PlatformDefaults, platformTierView{MinAmount: Amount{Minor: t.MinAmount, Currency: cur},
			MaxAmount: amountPtr(t.MaxAmount, cur), Rate: Rate(t.Rate)})
	}
	return d
}

func (s *Server) handleTierList(ctx context.Context, _ *struct{}) (*Out[tiersData], error) {
	tiers, cur, err := s.Store.CommissionTiers(ctx, principal(ctx).Workspace.ID)
	if err != nil {
		return nil, err
	}
	return ok("OK", tiersOut(tiers, cur)), nil
}

type tierCreateInput struct {
	Body struct {
		MinAmount Decimal             `json:"min_amount" minimum:"0" doc:"Lower bound, inclusive, ≥ 0, in the default program's currency."`
		MaxAmount patchField[Decimal] `json:"max_amount,omitempty" minimum:"0" doc:"Upper bound, exclusive, greater than min_amount; null or absent: no upper bound."`
		Rate      Decimal             `json:"rate" minimum:"0" maximum:"100" doc:"Percentage, 0–100 with at most two decimals."`
	}
}

func (s *Server) handleTierCreate(ctx context.Context, in *tierCreateInput) (*Out[tierView], error) {
	lo, rate := string(in.Body.MinAmount), string(in.Body.Rate)
	t, cur, err := s.Store.CreateCommissionTier(ctx, principal(ctx).Workspace.ID, heldsway.TierPatch{MinAmount: &lo, MaxAmount: decimalPatch(in.Body.MaxAmount), Rate: &rate})
	if err != nil {
		return nil, err
	}
	return ok("Commission tier created.", tierOut(t, cur)), nil
}

type tierUpdateInput struct {
	ID   int64 `path:"id" minimum:"1"`
	Body struct {
		MinAmount nonNull[Decimal]    `json:"min_amount,omitempty" minimum:"0"`
		MaxAmount patchField[Decimal] `json:"max_amount,omitempty" minimum:"0" doc:"null: no upper bound."`
		Rate      nonNull[Decimal]    `json:"rate,omitempty" minimum:"0" maximum:"100"`
	}
}

func (s *Server) handleTierUpdate(ctx context.Context, in *tierUpdateInput) (*Out[tierView], error) {
	patch := heldsway.TierPatch{MaxAmount: decimalPatch(in.Body.MaxAmount)}
	if d := in.Body.MinAmount.ptr(); d != nil {
		v := string(*d)
		patch.MinAmount = &v
	}
	if d := in.Body.Rate.ptr(); d != nil {
		v := string(*d)
		patch.Rate = &v
	}
	t, cur, err := s.Store.UpdateCommissionTier(ctx, principal(ctx).Workspace.ID, in.ID, patch)
	if err != nil {
		return nil, err
	}
	return ok("Commission tier updated.", tierOut(t, cur)), nil
}

type tierDeleted struct {
	ID      int64 `json:"id"`
	Deleted bool  `json:"deleted"`
}

func (s *Server) handleTierDelete(ctx context.Context, in *idInput) (*Out[tierDeleted], error) {
	if err := s.Store.DeleteCommissionTier(ctx, principal(ctx).Workspace.ID, in.ID); err != nil {
		return nil, err
	}
	return ok("Commission tier deleted.", tierDeleted{ID: in.ID, Deleted: true}), nil
}

func (s *Server) handleTierReset(ctx context.Context, _ *struct{}) (*Out[tiersData], error) {
	tiers, cur, err := s.Store.ResetCommissionTiers(ctx, principal(ctx).Workspace.ID)
	if err != nil {
		return nil, err
	}
	return ok("Commission tiers reset to the platform defaults.", tiersOut(tiers, cur)), nil
}

// Branding.

type brandingView struct {
	BrandName      *string `json:"brand_name" nullable:"true" doc:"Name shown in the affiliate portal."`
	PrimaryColor   *string `json:"primary_color" nullable:"true" doc:"#RRGGBB."`
	SecondaryColor *string `json:"secondary_color" nullable:"true" doc:"#RRGGBB."`
	LogoURL        *string `json:"logo_url" nullable:"true" doc:"Absolute https URL of the logo."`
	CustomDomain   *string `json:"custom_domain" nullable:"true" doc:"Host name of the affiliate portal, e.g. affiliates.example.com."`
}

func brandingOut(b *heldsway.Branding) brandingView {
	return brandingView{BrandName: b.BrandName, PrimaryColor: b.PrimaryColor, SecondaryColor: b.SecondaryColor,
		LogoURL: b.LogoURL, CustomDomain: b.CustomDomain}
}

func (s *Server) handleBrandingGet(ctx context.Context, _ *struct{}) (*Out[brandingView], error) {
	b, err := s.Store.Branding(ctx, principal(ctx).Workspace.ID)
	if err != nil {
		return nil, err
	}
	return ok("OK", brandingOut(b)), nil
}

type brandingUpdateInput struct {
	Body struct {
		BrandName      patchField[string] `json:"brand_name,omitempty" minLength:"1" maxLength:"100" doc:"At most 100 characters; null clears it."`
		PrimaryColor   patchField[string] `json:"primary_color,omitempty" pattern:"^#[0-9A-Fa-f]{6}$" doc:"#RRGGBB (stored upper-case); null clears it."`
		SecondaryColor patchField[string] `json:"secondary_color,omitempty" pattern:"^#[0-9A-Fa-f]{6}$" doc:"#RRGGBB; null clears it."`
		LogoURL        patchField[string] `json:"logo_url,omitempty" maxLength:"2048" doc:"Absolute https URL; null clears it."`
		CustomDomain   patchField[string] `json:"custom_domain,omitempty" maxLength:"253" doc:"Host name only (no scheme, port or path), stored lower-case; unique across workspaces (409 CONFLICT). From the Basic plan up: a Nano workspace gets 403 FORBIDDEN. null removes it."`
	}
}

func (s *Server) handleBrandingUpdate(ctx context.Context, in *brandingUpdateInput) (*Out[brandingView], error) {
	p := principal(ctx)
	b := in.Body
	patch := heldsway.BrandingPatch{BrandName: b.BrandName.nullable(), PrimaryColor: b.PrimaryColor.nullable(),
		SecondaryColor: b.SecondaryColor.nullable(), LogoURL: b.LogoURL.nullable(), CustomDomain: b.CustomDomain.nullable()}
	if err := patch.Validate(); err != nil {
		return nil, err
	}
	if patch.CustomDomain.Value != nil && !heldsway.CustomDomainAllowed(p.Workspace.Plan) {
		return nil, heldsway.Errorf(heldsway.EFORBIDDEN,
			"Custom domains are available from the Basic plan up; this workspace is on the %s plan.", p.Workspace.Plan)
	}
	out, err := s.Store.UpdateBranding(ctx, p.Workspace.ID, patch)
	if err != nil {
		return nil, err
	}
	if patch.CustomDomain.Set {
		s.domainsChanged(ctx) // a custom domain picks the workspace whose link a shared slug means
	}
	return ok("Branding updated.", brandingOut(out)), nil
}

// Payout settings.

type payoutSettingsView struct {
	Frequency          string `json:"frequency" enum:"weekly,biweekly,monthly,manual" doc:"How often payouts are made (default monthly); manual: only when the business triggers them."`
	MinimumAmount      Amount `json:"minimum_amount" doc:"Balances below this wait for the next payout (default 50.00), in the default program's currency."`
	AllowEarlyRequests bool   `json:"allow_early_requests" doc:"Whether affiliates may request a payout before the schedule (default false)."`
	Currency           string `json:"currency" readOnly:"true" doc:"The default program's currency, which minimum_amount is in."`
}

func payoutSettingsOut(p *heldsway.PayoutSettings) payoutSettingsView {
	return payoutSettingsView{Frequency: p.Frequency, MinimumAmount: Amount{Minor: p.MinimumAmount, Currency: money.MustCurrency(p.Currency)},
		AllowEarlyRequests: p.AllowEarlyRequests, Currency: p.Currency}
}

func (s *Server) handlePayoutSettingsGet(ctx context.Context, _ *struct{}) (*Out[payoutSettingsView], error) {
	p, err := s.Store.PayoutSettings(ctx, principal(ctx).Workspace.ID)
	if err != nil {
		return nil, err
	}
	return ok("OK", payoutSettingsOut(p)), nil
}

type payoutSettingsUpdateInput struct {
	Body struct {
		Frequency          nonNull[string]  `json:"frequency,omitempty" enum:"weekly,biweekly,monthly,manual"`
		MinimumAmount      nonNull[Decimal] `json:"minimum_amount,omitempty" minimum:"0" doc:"≥ 0 with the currency's decimals."`
		AllowEarlyRequests nonNull[bool]    `json:"allow_early_requests,omitempty"`
	}
}

func (s *Server) handlePayoutSettingsUpdate(ctx context.Context, in *payoutSettingsUpdateInput) (*Out[payoutSettingsView], error) {
	patch := heldsway.PayoutSettingsPatch{Frequency: in.Body.Frequency.ptr(), AllowEarlyRequests: in.Body.AllowEarlyRequests.ptr()}
	if d := in.Body.MinimumAmount.ptr(); d != nil {
		v := string(*d)
		patch.MinimumAmount = &v
	}
	p, err := s.Store.UpdatePayoutSettings(ctx, principal(ctx).Workspace.ID, patch)
	if err != nil {
		return nil, err
	}
	return ok("Payout settings updated.", payoutSettingsOut(p)), nil
}
