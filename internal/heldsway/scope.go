package heldsway

import (
	"slices"
	"sort"
	"strings"
)

// Namespaced scopes, as the documentation names them. ScopeAdmin is both a preset
// and a scope of its own: managing API keys requires it.
const (
	ScopeAffiliatesRead   = "affiliates:read"
	ScopeAffiliatesWrite  = "affiliates:write"
	ScopeOrdersRead       = "orders:read"
	ScopeOrdersWrite      = "orders:write"
	ScopeConversionsRead  = "conversions:read"
	ScopeConversionsWrite = "conversions:write"
	ScopePayoutsRead      = "payouts:read"
	ScopePayoutsWrite     = "payouts:write"
	ScopeSettingsRead     = "settings:read"
	ScopeSettingsWrite    = "settings:write"
	ScopeReportsRead      = "reports:read"
	ScopeWebhooksRead     = "webhooks:read"
	ScopeWebhooksWrite    = "webhooks:write"
	ScopeAuditRead        = "audit:read"
	ScopeClicksRead       = "clicks:read"
	ScopeClicksWrite      = "clicks:write"
	ScopeCommissionsRead  = "commissions:read"
	ScopePageviewsWrite   = "pageviews:write"
	ScopeSDKInit          = "sdk:init"
	ScopeAdmin            = "admin"
)

// AllScopes lists every namespaced scope (not the presets) in a stable order.
var AllScopes = []string{
	ScopeAffiliatesRead, ScopeAffiliatesWrite,
	ScopeOrdersRead, ScopeOrdersWrite,
	ScopeConversionsRead, ScopeConversionsWrite,
	ScopePayoutsRead, ScopePayoutsWrite,
	ScopeSettingsRead, ScopeSettingsWrite,
	ScopeReportsRead,
	ScopeWebhooksRead, ScopeWebhooksWrite,
	ScopeAuditRead,
	ScopeClicksRead, ScopeClicksWrite,
	ScopeCommissionsRead,
	ScopePageviewsWrite, ScopeSDKInit,
	ScopeAdmin,
}

// ScopePresets are the coarse presets of the REST API page; each expands to
// namespaced scopes when a key is created.
var ScopePresets = map[string][]string{
	"read-only": {
		ScopeAffiliatesRead, ScopeOrdersRead, ScopeConversionsRead, ScopePayoutsRead,
		ScopeSettingsRead, ScopeReportsRead, ScopeWebhooksRead, ScopeAuditRead,
		ScopeClicksRead, ScopeCommissionsRead,
	},
	// Server-side order and click reporting, the integration use case.
	"conversion-write": {ScopeConversionsWrite, ScopeClicksWrite, ScopePageviewsWrite},
	"payout-write":     {ScopePayoutsRead, ScopePayoutsWrite},
	"admin":            AllScopes,
}

// ExpandScopes validates the requested scopes and presets and returns the sorted,
// de-duplicated set of namespaced scopes they grant. Unknown names are returned in bad.
func ExpandScopes(requested []string) (scopes []string, bad []string) {
	set := map[string]bool{}
	for _, s := range requested {
		s = strings.TrimSpace(s)
		if p, ok := ScopePresets[s]; ok {
			for _, x := range p {
				set[x] = true
			}
			if s == ScopeAdmin {
				set[ScopeAdmin] = true
			}
			continue
		}
		if !slices.Contains(AllScopes, s) {
			bad = append(bad, s)
			continue
		}
		set[s] = true
	}
	for s := range set {
		scopes = append(scopes, s)
	}
	sort.Strings(scopes)
	return scopes, bad
}

// HasScope reports whether granted includes want. Admin grants everything.
func HasScope(granted []string, want string) bool {
	if want == "" {
		return true
	}
	for _, g := range granted {
		if g == want || g == ScopeAdmin {
			return true
		}
	}
	return false
}
