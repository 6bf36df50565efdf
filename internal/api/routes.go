package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// routesInit registers every route. The whole API surface, with each route's
// required scope, reads from this one function.
func (s *Server) routesInit() {
	// Operations.
	register(s, huma.Operation{OperationID: "healthz", Method: http.MethodGet, Path: "/healthz", Tags: []string{"Operations"},
		Summary: "Liveness: the process is up"}, ScopePublic, s.handleHealthz)
	register(s, huma.Operation{OperationID: "readyz", Method: http.MethodGet, Path: "/readyz", Tags: []string{"Operations"},
		Summary: "Readiness: the database can be reached"}, ScopePublic, s.handleReadyz)
	s.handle(http.MethodGet, "/metrics", s.metrics.handler().ServeHTTP)
	s.handle(http.MethodGet, "/v1/openapi.json", s.serveOpenAPI)
	s.handle(http.MethodGet, "/openapi.json", s.serveOpenAPI)
	s.documentPlainRoutes()

	// Auth.
	register(s, huma.Operation{OperationID: "issueToken", Method: http.MethodPost, Path: "/v1/auth/token", Tags: []string{"Auth"},
		Summary:     "Exchange an API key and secret for an access token",
		Description: "Throttled at 120 requests per minute per IP address.",
		Middlewares: huma.Middlewares{s.limitByIP("token", s.TokenIPLimit)},
		Errors:      []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests}}, ScopePublic, s.handleIssueToken)
	register(s, huma.Operation{OperationID: "getMe", Method: http.MethodGet, Path: "/v1/me", Tags: []string{"Auth"},
		Summary: "The workspace, plan and key behind the token"}, ScopeAuthenticated, s.handleMe)

	// API keys.
	register(s, huma.Operation{OperationID: "listAPIKeys", Method: http.MethodGet, Path: "/v1/api-keys", Tags: []string{"Auth"},
		Summary: "List API keys (masked)"}, heldsway.ScopeAdmin, s.handleAPIKeyList)
	register(s, huma.Operation{OperationID: "createAPIKey", Method: http.MethodPost, Path: "/v1/api-keys", Tags: []string{"Auth"},
		Summary: "Create an API key; the secret is shown once", DefaultStatus: http.StatusCreated}, heldsway.ScopeAdmin, s.handleAPIKeyCreate)
	register(s, huma.Operation{OperationID: "revokeAPIKey", Method: http.MethodPost, Path: "/v1/api-keys/{id}/revoke", Tags: []string{"Auth"},
		Summary: "Revoke an API key; its tokens stop at once", Errors: []int{http.StatusNotFound}}, heldsway.ScopeAdmin, s.handleAPIKeyRevoke)
	register(s, huma.Operation{OperationID: "rotateAPIKey", Method: http.MethodPost, Path: "/v1/api-keys/{id}/rotate", Tags: []string{"Auth"},
		Summary: "Issue a new secret; the old one keeps working for a grace period",
		Errors:  []int{http.StatusNotFound, http.StatusConflict}}, heldsway.ScopeAdmin, s.handleAPIKeyRotate)

	s.routesPrograms()
	s.routesSettings()
	s.routesAffiliates()
	s.routesLinks()
	s.routesLinkRules()
	s.routesCoupons()
	s.routesAudit()
	s.routesTracking()
	s.routesConversions()
	s.routesOrders()
	s.routesStorefront()
	s.routesPayouts()
	s.routesPayoutRuns()
	s.routesAnalytics()
	s.routesReports()
}

// routesPrograms: programs. Program configuration is settings, so the scopes
// are settings:read and settings:write.
func (s *Server) routesPrograms() {
	s.api.OpenAPI().Tags = append(s.api.OpenAPI().Tags, &huma.Tag{Name: "Programs",
		Description: "Affiliate programs: commission structure, cookie window, currency. Every workspace has one default program, " +
			"which the settings endpoints configure."})
	tags := []string{"Programs"}
	read, write := heldsway.ScopeSettingsRead, heldsway.ScopeSettingsWrite
	register(s, huma.Operation{OperationID: "listPrograms", Method: http.MethodGet, Path: "/v1/programs", Tags: tags,
		Summary: "List programs", Description: "Cursor-paginated; filter status; sort created_at (default) or name."},
		read, s.handleProgramList)
	register(s, huma.Operation{OperationID: "createProgram", Method: http.MethodPost, Path: "/v1/programs", Tags: tags,
		Summary: "Create a program", DefaultStatus: http.StatusCreated,
		Description: "name and currency are required; every other field has the default its description gives."},
		write, s.handleProgramCreate)
	register(s, huma.Operation{OperationID: "getProgram", Method: http.MethodGet, Path: "/v1/programs/{id}", Tags: tags,
		Summary: "Get a program", Errors: []int{http.StatusNotFound}}, read, s.handleProgramGet)
	register(s, huma.Operation{OperationID: "updateProgram", Method: http.MethodPut, Path: "/v1/programs/{id}", Tags: tags,
		Summary: "Update a program",
		Description: "Partial: only the fields sent change; null clears a nullable field. 409 CONFLICT when the currency of a " +
			"program with affiliates would change or the default program would be archived. is_default is read-only.",
		Errors: []int{http.StatusNotFound, http.StatusConflict}}, write, s.handleProgramUpdate)
	register(s, huma.Operation{OperationID: "deleteProgram", Method: http.MethodDelete, Path: "/v1/programs/{id}", Tags: tags,
		Summary:     "Delete a program",
		Description: "409 CONFLICT for the default program and for a program with affiliates (archive it instead).",
		Errors:      []int{http.StatusNotFound, http.StatusConflict}}, write, s.handleProgramDelete)
}

// routesSettings: workspace settings, commission tiers, branding, payout settings.
// The literal paths (/branding, /payouts, /commission-tiers) take precedence over
// /v1/settings/{key}: ServeMux prefers the more specific pattern.
func (s *Server) routesSettings() {
	s.api.OpenAPI().Tags = append(s.api.OpenAPI().Tags, &huma.Tag{Name: "Settings",
		Description: "Workspace settings (digest §5.6, mapped onto the default program), commission tiers, branding and payout settings."})
	tags := []string{"Settings"}
	read, write := heldsway.ScopeSettingsRead, heldsway.ScopeSettingsWrite
	register(s, huma.Operation{OperationID: "getSettings", Method: http.MethodGet, Path: "/v1/settings", Tags: tags,
		Summary: "Get the settings object"}, read, s.handleSettingsGet)
	register(s, huma.Operation{OperationID: "updateSettings", Method: http.MethodPut, Path: "/v1/settings", Tags: tags,
		Summary: "Update several settings",
		Description: "An object of setting keys and values; all are applied or none. An unknown key is 422 naming it. " +
			"Answers the whole settings object."}, write, s.handleSettingsUpdate)
	register(s, huma.Operation{OperationID: "getSetting", Method: http.MethodGet, Path: "/v1/settings/{key}", Tags: tags,
		Summary: "Get one setting", Description: "data = {key, value}.", Errors: []int{http.StatusNotFound}}, read, s.handleSettingGet)
	register(s, huma.Operation{OperationID: "updateSetting", Method: http.MethodPut, Path: "/v1/settings/{key}", Tags: tags,
		Summary:     "Update one setting",
		Description: `Body {"value": …} of the setting's type; validation messages are keyed "value". data = {key, value}.`,
		Errors:      []int{http.StatusNotFound}}, write, s.handleSettingUpdate)

	register(s, huma.Operation{OperationID: "listCommissionTiers", Method: http.MethodGet, Path: "/v1/settings/commission-tiers", Tags: tags,
		Summary:     "List commission tiers and the platform defaults",
		Description: "data = {currency, items: the workspace's tiers, platform_defaults: the read-only platform tiers}."},
		read, s.handleTierList)
	register(s, huma.Operation{OperationID: "createCommissionTier", Method: http.MethodPost, Path: "/v1/settings/commission-tiers", Tags: tags,
		Summary: "Create a commission tier", DefaultStatus: http.StatusCreated,
		Description: "Bands are [min_amount, max_amount); one that overlaps another tier is 422 with details on min_amount and " +
			"max_amount naming the tier."}, write, s.handleTierCreate)
	register(s, huma.Operation{OperationID: "resetCommissionTiers", Method: http.MethodPost, Path: "/v1/settings/commission-tiers/reset", Tags: tags,
		Summary: "Replace the workspace's tiers with the platform defaults"}, write, s.handleTierReset)
	register(s, huma.Operation{OperationID: "updateCommissionTier", Method: http.MethodPut, Path: "/v1/settings/commission-tiers/{id}", Tags: tags,
		Summary: "Update a commission tier", Description: "Partial; the band must still not overlap another tier.",
		Errors: []int{http.StatusNotFound}}, write, s.handleTierUpdate)
	register(s, huma.Operation{OperationID: "deleteCommissionTier", Method: http.MethodDelete, Path: "/v1/settings/commission-tiers/{id}", Tags: tags,
		Summary: "Delete a commission tier", Errors: []int{http.StatusNotFound}}, write, s.handleTierDelete)

	register(s, huma.Operation{OperationID: "getBranding", Method: http.MethodGet, Path: "/v1/settings/branding", Tags: tags,
		Summary: "Get the affiliate portal branding"}, read, s.handleBrandingGet)
	register(s, huma.Operation{OperationID: "updateBranding", Method: http.MethodPut, Path: "/v1/settings/branding", Tags: tags,
		Summary: "Update the affiliate portal branding", Description: "Partial; null clears a field.",
		Errors: []int{http.StatusForbidden, http.StatusConflict}}, write, s.handleBrandingUpdate)

	register(s, huma.Operation{OperationID: "getPayoutSettings", Method: http.MethodGet, Path: "/v1/settings/payouts", Tags: tags,
		Summary: "Get the payout settings"}, read, s.handlePayoutSettingsGet)
	register(s, huma.Operation{OperationID: "updatePayoutSettings", Method: http.MethodPut, Path: "/v1/settings/payouts", Tags: tags,
		Summary: "Update the payout settings", Description: "Partial."}, write, s.handlePayoutSettingsUpdate)
}

// routesAffiliates: affiliates, status actions, commission override, self-registration.
func (s *Server) routesAffiliates() {
	s.api.OpenAPI().Tags = append(s.api.OpenAPI().Tags, &huma.Tag{Name: "Affiliates",
		Description: "Affiliates, their status machine (pending, active, suspended, terminated), commission overrides and public self-registration."})
	tags := []string{"Affiliates"}
	notFound := []int{http.StatusNotFound}
	register(s, huma.Operation{OperationID: "listAffiliates", Method: http.MethodGet, Path: "/v1/affiliates", Tags: tags,
		Summary: "List affiliates", Description: "Cursor-paginated; filters status, search (name, e-mail, referral code) and program_id."},
		heldsway.ScopeAffiliatesRead, s.handleAffiliateList)
	register(s, huma.Operation{OperationID: "createAffiliate", Method: http.MethodPost, Path: "/v1/affiliates", Tags: tags,
		Summary: "Create an affiliate", DefaultStatus: http.StatusCreated,
		Description: "Creates the affiliate and, unless the workspace already has one with this e-mail, its affiliate user. " +
			"A taken e-mail in the program or a taken referral code is 409 CONFLICT with details on the field.",
		Errors: []int{http.StatusConflict}, Metadata: claimInTx()}, heldsway.ScopeAffiliatesWrite, s.handleAffiliateCreate)
	register(s, huma.Operation{OperationID: "getAffiliate", Method: http.MethodGet, Path: "/v1/affiliates/{id}", Tags: tags,
		Summary: "Get an affiliate", Errors: notFound}, heldsway.ScopeAffiliatesRead, s.handleAffiliateGet)
	register(s, huma.Operation{OperationID: "updateAffiliate", Method: http.MethodPut, Path: "/v1/affiliates/{id}", Tags: tags,
		Summary: "Update an affiliate", Description: "Partial: only the fields sent change; null clears a nullable field. " +
			"Status changes go through the approve, suspend, reactivate and terminate actions.",
		Errors: []int{http.StatusNotFound, http.StatusConflict}, Metadata: claimInTx()}, heldsway.ScopeAffiliatesWrite, s.handleAffiliateUpdate)
	register(s, huma.Operation{OperationID: "deleteAffiliate", Method: http.MethodDelete, Path: "/v1/affiliates/{id}", Tags: tags,
		Summary: "Delete an affiliate",
		Description: "Removes the affiliate with its referral links and coupons (each removal audited); sub-affiliates lose their parent. " +
			"An affiliate with conversions cannot be deleted (409 CONFLICT): terminate it instead.",
		Errors: []int{http.StatusNotFound, http.StatusConflict}, Metadata: claimInTx()}, heldsway.ScopeAffiliatesWrite, s.handleAffiliateDelete)
	for _, a := range []struct {
		action, summary string
		h               func(context.Context, *affiliateActionInput) (*Out[affiliateView], error)
	}{
		{heldsway.ActionApprove, "Approve a pending affiliate (pending → active; sets approved_at)", s.handleAffiliateApprove},
		{heldsway.ActionSuspend, "Suspend an affiliate (pending or active → suspended; sets suspended_at)", s.handleAffiliateSuspend},
		{heldsway.ActionReactivate, "Reactivate a suspended affiliate (suspended → active; clears suspended_at)", s.handleAffiliateReactivate},
		{heldsway.ActionTerminate, "Terminate an affiliate (pending, active or suspended → terminated, final; sets terminated_at)", s.handleAffiliateTerminate},
	} {
		register(s, huma.Operation{OperationID: a.action + "Affiliate", Method: http.MethodPost, Path: "/v1/affiliates/{id}/" + a.action,
			Tags: tags, Summary: a.summary,
			Description: "Follows the status machine; any other transition is 409 INVALID_STATUS_TRANSITION naming both statuses.",
			Errors:      []int{http.StatusNotFound, http.StatusConflict}, Metadata: claimInTx()}, heldsway.ScopeAffiliatesWrite, a.h)
	}
	register(s, huma.Operation{OperationID: "getAffiliateCommission", Method: http.MethodGet, Path: "/v1/affiliates/{id}/commission", Tags: tags,
		Summary: "Get an affiliate's commission rates", Errors: notFound}, heldsway.ScopeAffiliatesRead, s.handleAffiliateCommissionGet)
	register(s, huma.Operation{OperationID: "setAffiliateCommission", Method: http.MethodPut, Path: "/v1/affiliates/{id}/commission", Tags: tags,
		Summary: "Set or remove an affiliate's commission override", Errors: notFound, Metadata: claimInTx()},
		heldsway.ScopeAffiliatesWrite, s.handleAffiliateCommissionPut)
	register(s, huma.Operation{OperationID: "registerAffiliate", Method: http.MethodPost, Path: "/v1/public/{workspace_slug}/affiliates", Tags: tags,
		Summary: "Self-register as an affiliate (public)", DefaultStatus: http.StatusCreated,
		Description: "No token. Only when the default program's allow_self_registration is on (403 FORBIDDEN otherwise); " +
			"throttled at 10 requests per minute per IP. Creates a pending affiliate in the default program. " +
			"An e-mail that already has an affiliate account in the workspace is 409 CONFLICT.",
		Middlewares: huma.Middlewares{s.limitByIP("register", 10)},
		Errors:      []int{http.StatusForbidden, http.StatusNotFound, http.StatusConflict, http.StatusTooManyRequests}},
		ScopePublic, s.handleAffiliateRegister)
}

// routesLinks: referral links and bulk link batches.
func (s *Server) routesLinks() {
	s.api.OpenAPI().Tags = append(s.api.OpenAPI().Tags, &huma.Tag{Name: "Links",
		Description: "Referral links (/r/{slug}) of affiliates, and bulk creation in background batches."})
	tags := []string{"Links"}
	read, write := heldsway.ScopeAffiliatesRead, heldsway.ScopeAffiliatesWrite
	listDoc := "Cursor-paginated; filters is_active and search (slug, destination URL, campaign, affiliate name and e-mail); " +
		"sort created_at, slug, click_count, destination_url or campaign."
	register(s, huma.Operation{OperationID: "listLinks", Method: http.MethodGet, Path: "/v1/links", Tags: tags,
		Summary: "List referral links", Description: listDoc + " affiliate_id filters by affiliate.",
		Errors: []int{http.StatusUnprocessableEntity}}, read, s.handleLinkList)
	register(s, huma.Operation{OperationID: "listAffiliateLinks", Method: http.MethodGet, Path: "/v1/affiliates/{id}/links", Tags: tags,
		Summary: "List an affiliate's referral links", Description: listDoc,
		Errors: []int{http.StatusNotFound, http.StatusUnprocessableEntity}}, read, s.handleAffiliateLinkList)
	register(s, huma.Operation{OperationID: "createAffiliateLink", Method: http.MethodPost, Path: "/v1/affiliates/{id}/links", Tags: tags,
		Summary: "Create a referral link", DefaultStatus: http.StatusCreated,
		Description: "A slug already taken in the workspace is 409 CONFLICT with details on slug; " +
			"a terminated affiliate cannot get links (409 CONFLICT).",
		Errors: []int{http.StatusNotFound, http.StatusConflict}}, write, s.handleAffiliateLinkCreate)
	register(s, huma.Operation{OperationID: "createLinkBatch", Method: http.MethodPost, Path: "/v1/affiliates/{id}/links/bulk", Tags: tags,
		Summary: "Create up to 1000 referral links in the background", DefaultStatus: http.StatusAccepted,
		Description: "The whole batch is validated first: an empty array, a missing or invalid destination_url, a slug repeated " +
			"in the batch or already taken in the workspace is 422 VALIDATION_ERROR with details per item " +
			"(links.3.destination_url) and nothing is queued. Otherwise 202 with the batch id and status_url; " +
			"links are created in the background and each item's outcome appears in the batch's results.",
		Errors: []int{http.StatusNotFound, http.StatusConflict}}, write, s.handleLinkBulk)
	register(s, huma.Operation{OperationID: "getLinkBatch", Method: http.MethodGet, Path: "/v1/affiliates/{id}/link-batches/{batch_id}", Tags: tags,
		Summary: "Progress and per-item results of a bulk link creation", Errors: []int{http.StatusNotFound}}, read, s.handleLinkBatchGet)
	register(s, huma.Operation{OperationID: "getLink", Method: http.MethodGet, Path: "/v1/links/{id}", Tags: tags,
		Summary: "Get a referral link", Errors: []int{http.StatusNotFound}}, read, s.handleLinkGet)
	register(s, huma.Operation{OperationID: "updateLink", Method: http.MethodPut, Path: "/v1/links/{id}", Tags: tags,
		Summary: "Update a referral link",
		Description: "Partial: only the fields sent change; null clears campaign or metadata. is_active false deactivates the link. " +
			"A slug already taken is 409 CONFLICT.",
		Errors: []int{http.StatusNotFound, http.StatusConflict}}, write, s.handleLinkUpdate)
	register(s, huma.Operation{OperationID: "deleteLink", Method: http.MethodDelete, Path: "/v1/links/{id}", Tags: tags,
		Summary: "Delete a referral link", Description: "Answers with the link as it was.",
		Errors: []int{http.StatusNotFound}}, write, s.handleLinkDelete)
}

// routesLinkRules: the commission rules of a referral link (the first level of
// the rate precedence) and the link's statistics.
func (s *Server) routesLinkRules() {
	tags := []string{"Links"}
	read, write := heldsway.ScopeAffiliatesRead, heldsway.ScopeAffiliatesWrite
	notFound := []int{http.StatusNotFound}
	rulesDoc := "A link's commission rules come first in the commission rate precedence (link rule → affiliate override → " +
		"program rate → workspace tiers → platform defaults). When an order is attributed through the link (its click id " +
		"leads to the link), the link's active rules are tried by priority, lowest first (ties by id), and the first whose " +
		"conditions all hold sets the referring affiliate's rate or flat amount (rule \"link_rule\" in the order's " +
		"commission breakdown); when none holds the precedence continues with the affiliate override. Orders attributed " +
		"by coupon, referral code or customer binding have no link, so link rules never apply to them. Conditions: " +
		"product_ids (a line item has one of them), categories (a line item's category is one of them, " +
		"case-insensitively), min_order_amount (the order total is at least it). Amounts are in the currency of the " +
		"link's affiliate's program; a rule with an amount never applies to an order in another currency. " +
		"Another workspace's link is 404."
	register(s, huma.Operation{OperationID: "listLinkCommissionRules", Method: http.MethodGet, Path: "/v1/links/{id}/commission-rules",
		Tags: tags, Summary: "List a link's commission rules",
		Description: rulesDoc + " Cursor-paginated; by default sorted by priority ascending, the order rules are tried in.",
		Errors:      notFound}, read, s.handleLinkRuleList)
	register(s, huma.Operation{OperationID: "createLinkCommissionRule", Method: http.MethodPost, Path: "/v1/links/{id}/commission-rules",
		Tags: tags, Summary: "Create a commission rule for a link", DefaultStatus: http.StatusCreated,
		Description: rulesDoc + " A link holds at most 100 rules (409 CONFLICT beyond). Event link_rule.created.",
		Errors:      []int{http.StatusNotFound, http.StatusConflict}}, write, s.handleLinkRuleCreate)
	register(s, huma.Operation{OperationID: "getLinkCommissionRule", Method: http.MethodGet, Path: "/v1/links/{id}/commission-rules/{rule_id}",
		Tags: tags, Summary: "Get a commission rule of a link", Errors: notFound}, read, s.handleLinkRuleGet)
	register(s, huma.Operation{OperationID: "updateLinkCommissionRule", Method: http.MethodPut, Path: "/v1/links/{id}/commission-rules/{rule_id}",
		Tags: tags, Summary: "Update a commission rule of a link",
		Description: "Partial: only the fields sent change; conditions is replaced whole, null removes it. Changing type " +
			"requires value. When the link's affiliate has moved to a program in another currency, a flat value and a " +
			"min_order_amount must be given again (amounts are not converted). Event link_rule.updated.",
		Errors: notFound}, write, s.handleLinkRuleUpdate)
	register(s, huma.Operation{OperationID: "deleteLinkCommissionRule", Method: http.MethodDelete, Path: "/v1/links/{id}/commission-rules/{rule_id}",
		Tags: tags, Summary: "Delete a commission rule of a link",
		Description: "Answers with the rule as it was. Deleting the link deletes its rules. Event link_rule.deleted.",
		Errors:      notFound}, write, s.handleLinkRuleDelete)

	register(s, huma.Operation{OperationID: "getLinkStats", Method: http.MethodGet, Path: "/v1/links/{id}/stats", Tags: tags,
		Summary: "A link's clicks, visitors, conversions, revenue and commission over a range of days",
		Description: "from and to are inclusive UTC days: to defaults to today and may not be after it; from defaults to 30 " +
			"days before to and may not be after it (the defaults of the analytics endpoint). Figures are computed from the " +
			"link's clicks and the orders attributed through it, with the analytics metric definitions; amounts are per " +
			"currency, never added across currencies.",
		Errors: notFound}, read, s.handleLinkStats)
}

// routesCoupons: coupons.
func (s *Server) routesCoupons() {
	s.api.OpenAPI().Tags = append(s.api.OpenAPI().Tags, &huma.Tag{Name: "Coupons",
		Description: "Discount codes that attribute orders to an affiliate."})
	tags := []string{"Coupons"}
	read, write := heldsway.ScopeAffiliatesRead, heldsway.ScopeAffiliatesWrite
	register(s, huma.Operation{OperationID: "listCoupons", Method: http.MethodGet, Path: "/v1/coupons", Tags: tags,
		Summary: "List coupons", Description: "Cursor-paginated; filters affiliate_id, is_active and search (code); sort created_at or code.",
		Errors: []int{http.StatusUnprocessableEntity}}, read, s.handleCouponList)
	register(s, huma.Operation{OperationID: "createCoupon", Method: http.MethodPost, Path: "/v1/coupons", Tags: tags,
		Summary: "Create a coupon", DefaultStatus: http.StatusCreated,
		Description: "The code is unique in the workspace regardless of case (409 CONFLICT with details on code). " +
			"Amounts are in the currency of the affiliate's program; a terminated affiliate cannot get coupons (409 CONFLICT).",
		Errors: []int{http.StatusConflict}}, write, s.handleCouponCreate)
	register(s, huma.Operation{OperationID: "getCoupon", Method: http.MethodGet, Path: "/v1/coupons/{id}", Tags: tags,
		Summary: "Get a coupon", Errors: []int{http.StatusNotFound}}, read, s.handleCouponGet)
	register(s, huma.Operation{OperationID: "updateCoupon", Method: http.MethodPut, Path: "/v1/coupons/{id}", Tags: tags,
		Summary: "Update a coupon", Description: "Partial: only the fields sent change; null clears a nullable field.",
		Errors: []int{http.StatusNotFound, http.StatusConflict}}, write, s.handleCouponUpdate)
	register(s, huma.Operation{OperationID: "deleteCoupon", Method: http.MethodDelete, Path: "/v1/coupons/{id}", Tags: tags,
		Summary: "Delete a coupon", Description: "Answers with the coupon as it was.",
		Errors: []int{http.StatusNotFound}}, write, s.handleCouponDelete)
}

// routesAudit: the audit log and the event outbox. Neither has a write route.
func (s *Server) routesAudit() {
	register(s, huma.Operation{OperationID: "listAuditLog", Method: http.MethodGet, Path: "/v1/audit-log", Tags: []string{"Audit"},
		Summary: "List audit entries (append-only)"}, heldsway.ScopeAuditRead, s.handleAuditList)
	register(s, huma.Operation{OperationID: "listEvents", Method: http.MethodGet, Path: "/v1/events", Tags: []string{"Audit"},
		Summary: "List events, the outbox webhooks deliver from"}, heldsway.ScopeWebhooksRead, s.handleEventList)
	register(s, huma.Operation{OperationID: "getEvent", Method: http.MethodGet, Path: "/v1/events/{id}", Tags: []string{"Audit"},
		Summary: "Get an event", Errors: []int{http.StatusNotFound}}, heldsway.ScopeWebhooksRead, s.handleEventGet)
}

// routesTracking: the click redirect, a plain handler outside /v1 (no token).
func (s *Server) routesTracking() {
	s.handle(http.MethodGet, "/r/{slug}", s.handleRedirect)
	s.documentTracking()
}

// routesConversions: recording conversions (orders) reported by a merchant's
// server.
func (s *Server) routesConversions() {
	s.api.OpenAPI().Tags = append(s.api.OpenAPI().Tags, &huma.Tag{Name: "Conversions",
		Description: "Orders reported by the merchant, attributed to an affiliate, with their commission breakdown."})
	register(s, huma.Operation{OperationID: "createConversion", Method: http.MethodPost, Path: "/v1/conversions",
		Tags: []string{"Conversions"}, Summary: "Record a conversion (order)", DefaultStatus: http.StatusCreated,
		Description: "Attributes the order by the first evidence that holds: click_id (within the program's cookie window; " +
			"the program's attribution_model picks the first or last click of that visitor), coupon_code (active and in its " +
			"window), referral_code, then the customer's binding from an earlier order (recurring and lifetime programs). " +
			"Only active affiliates in active programs are credited; evidence that does not hold (unknown, expired, another " +
			"workspace's) is skipped. With none the order is stored unattributed (attribution none, commission 0). " +
			"Commissions follow the rate precedence affiliate override → program rate → workspace tiers → platform default, " +
			"plus a tier-2 line for an active parent when the program has a tier_rate. A self-referral (customer e-mail is " +
			"the affiliate's or its parent's) is recorded pending with flag self_referral and its commissions rejected. " +
			"An order_id already recorded in the workspace is 409 CONFLICT with details {\"order_id\": [message], " +
			"\"existing_id\": <id>} and nothing is written, also for concurrent retries without an Idempotency-Key. " +
			"An attributed order in a currency other than its program's is 422 with details on currency. " +
			"Answers 201 with the order object.",
		Errors: []int{http.StatusConflict}}, heldsway.ScopeConversionsWrite, s.handleConversionCreate)
}

// routesOrders: reviewing orders (digest §5.7) and commissions. GET
// /v1/conversions and /v1/conversions/{id} are aliases of the order list and
// detail: the same handlers, the same resource.
func (s *Server) routesOrders() {
	s.api.OpenAPI().Tags = append(s.api.OpenAPI().Tags, &huma.Tag{Name: "Orders",
		Description: "Orders (conversions) under review: list, statistics, CSV export, approve, reject, refund; and their commissions."})
	tags := []string{"Orders"}
	read, write := heldsway.ScopeOrdersRead, heldsway.ScopeOrdersWrite
	listDoc := "Cursor-paginated (page is honoured for compatibility). Filters: search (merchant order id or affiliate name), " +
		"status, affiliate_id (one of this workspace's affiliates, else 422), from/to (YYYY-MM-DD, UTC, inclusive, on " +
		"converted_at; to ≥ from). Sort order_id, order_total, commission_amount, converted_at (default) or status. Each " +
		"item is the order object with its commission breakdown; line_items only on the detail."
	notFound := []int{http.StatusNotFound}
	register(s, huma.Operation{OperationID: "listOrders", Method: http.MethodGet, Path: "/v1/orders", Tags: tags,
		Summary: "List orders", Description: listDoc}, read, s.handleOrderList)
	register(s, huma.Operation{OperationID: "getOrderStats", Method: http.MethodGet, Path: "/v1/orders/stats", Tags: tags,
		Summary: "Order statistics per currency",
		Description: "The dashboard's five figures over the orders the list's filters select, one entry per currency: " +
			"total_orders, total_revenue (sum of subtotals), total_commission (pending + approved), pending (commission " +
			"awaiting approval) and approved (commission confirmed for payout, paid included); commission figures are net " +
			"of refund reversals."}, read, s.handleOrderStats)
	register(s, huma.Operation{OperationID: "exportOrders", Method: http.MethodGet, Path: "/v1/orders/export", Tags: tags,
		Summary: "Export orders as CSV",
		Description: "The filtered list as text/csv (attachment), streamed, with the list's filters, sort and direction. " +
			"Columns: " + orderExportColumnsDoc() + ". Amounts carry the currency's exact decimals, as in " +
			"the API; rates two decimals; times RFC 3339 UTC with microseconds; absent values are empty. Free-text cells " +
			"starting with =, +, -, @ get a leading apostrophe (CSV injection). Throttled at 30 requests per minute per API key.",
		Middlewares: huma.Middlewares{s.limitExport},
		Responses: map[string]*huma.Response{"200": {Description: "CSV, one header row then one row per order.",
			Headers: map[string]*huma.Param{"Content-Disposition": {Description: `attachment; filename="orders-YYYY-MM-DD.csv"`,
				Schema: &huma.Schema{Type: "string"}}},
			Content: map[string]*huma.MediaType{"text/csv": {Schema: &huma.Schema{Type: "string"}}}}}},
		read, s.handleOrderExport)
	register(s, huma.Operation{OperationID: "getOrder", Method: http.MethodGet, Path: "/v1/orders/{id}", Tags: tags,
		Summary: "Get an order with its commission breakdown", Description: "Each commission line says which rule set its " +
			"rate, the rate, the base it applied to, an explanation, what refunds reversed and its status.",
		Errors: notFound}, read, s.handleOrderGet)
	review := "Only from pending: any other status is 409 INVALID_STATUS_TRANSITION naming it (also for the loser of two " +
		"concurrent reviews). Optional body {reason}, kept in the audit entry. "
	register(s, huma.Operation{OperationID: "approveOrder", Method: http.MethodPost, Path: "/v1/orders/{id}/approve", Tags: tags,
		Summary: "Approve a pending order",
		Description: review + "Sets approved_at and approves the order's pending commissions; lines rejected at conversion " +
			"(self-referral, unpaid renewal) stay rejected. Events conversion.approved and commission.approved.",
		Errors: []int{http.StatusNotFound, http.StatusConflict}}, write, s.handleOrderApprove)
	register(s, huma.Operation{OperationID: "rejectOrder", Method: http.MethodPost, Path: "/v1/orders/{id}/reject", Tags: tags,
		Summary: "Reject a pending order",
		Description: review + "Sets rejected_at, rejects the pending commissions and sets commission_amount to 0. Events " +
			"conversion.rejected and commission.rejected.",
		Errors: []int{http.StatusNotFound, http.StatusConflict}}, write, s.handleOrderReject)
	bulk := `Body {"ids": [1–100 distinct internal ids], "reason"?}. Each id is reviewed on its own, so one failure does ` +
		"not undo the others; the answer is 200 with one result per id: {id, success, status} or {id, success: false, " +
		"error {code, message}} (NOT_FOUND, INVALID_STATUS_TRANSITION)."
	register(s, huma.Operation{OperationID: "bulkApproveOrders", Method: http.MethodPost, Path: "/v1/orders/bulk-approve", Tags: tags,
		Summary: "Approve many orders", Description: bulk}, write, s.handleOrderBulkApprove)
	register(s, huma.Operation{OperationID: "bulkRejectOrders", Method: http.MethodPost, Path: "/v1/orders/bulk-reject", Tags: tags,
		Summary: "Reject many orders", Description: bulk}, write, s.handleOrderBulkReject)
	register(s, huma.Operation{OperationID: "refundOrder", Method: http.MethodPost, Path: "/v1/orders/{id}/refund", Tags: tags,
		Summary: "Record a full or partial refund",
		Description: "Body {amount?, reason?}: without amount the whole unrefunded total; with it, > 0 and at most the " +
			"unrefunded total, in the order's currency. Commissions are reversed cumulatively in proportion to the refunded " +
			"share of the order total (half-up), so partial refunds add up exactly to a full reversal; a line fully reversed " +
			"becomes reversed (a paid line's reversal is carried to the affiliate's next payout as a negative balance). " +
			"commission_amount drops by what was reversed; a full refund cancels the order (a rejected order stays " +
			"rejected). A cancelled order is 409 INVALID_STATUS_TRANSITION. Events conversion.refunded and " +
			"commission.reversed per line.",
		Errors: []int{http.StatusNotFound, http.StatusConflict}}, write, s.handleOrderRefund)

	alias := " Alias of the order routes: the same resource and handler."
	register(s, huma.Operation{OperationID: "listConversions", Method: http.MethodGet, Path: "/v1/conversions",
		Tags: []string{"Conversions"}, Summary: "List conversions (orders)", Description: listDoc + alias}, read, s.handleOrderList)
	register(s, huma.Operation{OperationID: "getConversion", Method: http.MethodGet, Path: "/v1/conversions/{id}",
		Tags: []string{"Conversions"}, Summary: "Get a conversion (order)", Description: "See GET /v1/orders/{id}." + alias,
		Errors: notFound}, read, s.handleOrderGet)

	register(s, huma.Operation{OperationID: "listCommissions", Method: http.MethodGet, Path: "/v1/commissions", Tags: tags,
		Summary: "List commissions",
		Description: "Every commission of the workspace with its order's internal id (conversion_id) and merchant id " +
			"(order_id). Cursor-paginated. Filters: affiliate_id (one of this workspace's, else 422), status (pending, " +
			"approved, rejected, reversed, paid), from/to on created_at. Sort created_at (default) or amount."},
		read, s.handleCommissionList)
}

// routesStorefront: what the browser SDK calls (digest §5.12), with a
// publishable key from an allowed origin or a bearer token (publishable.go);
// each POST route answers its CORS preflight.
func (s *Server) routesStorefront() {
	s.api.OpenAPI().Tags = append(s.api.OpenAPI().Tags, &huma.Tag{Name: "Storefront",
		Description: "Event ingestion for the browser SDK. Browser code sends its publishable key as `X-HeldSway-Key: as_…` " +
			"(or `Authorization: Bearer as_…`) from one of the key's allowed origins; a request without Origin, or from " +
			"another origin, is 403. Servers may call the same routes with a bearer token. Budgets: the key's rate limit " +
			"and 600 requests a minute per key and origin (the key's rate_limit when set); 429 with Retry-After past " +
			"either. Every event carries visitor_id, and optionally session_id, click_id (the attribution token), url " +
			"and referrer; events are stored for the analytics metrics (clicks and orders in their own tables)."})
	s.documentTrackAuth()
	sf := &storefront{s: s}
	sf.origins.load = func(ctx context.Context) ([]string, error) { return s.Store.PublishableOrigins(ctx) }
	tags := []string{"Storefront"}
	created := http.StatusCreated
	notFound := []int{http.StatusNotFound}
	event := func(name, opID, summary, desc, scope string, h func(context.Context, *cartInput) (*Out[eventAck], error)) {
		registerTrack(s, huma.Operation{OperationID: opID, Method: http.MethodPost, Path: "/v1/track/" + name, Tags: tags,
			Summary: summary, Description: desc, DefaultStatus: created}, scope, h)
	}
	pv := heldsway.ScopePageviewsWrite
	registerTrack(s, huma.Operation{OperationID: "trackPageview", Method: http.MethodPost, Path: "/v1/track/pageview", Tags: tags,
		Summary: "Record a page view", DefaultStatus: created,
		Description: "Feeds total_pageviews, unique_visitors and pages_per_visit."}, pv, sf.handlePageview)
	registerTrack(s, huma.Operation{OperationID: "trackClick", Method: http.MethodPost, Path: "/v1/track/click", Tags: tags,
		Summary: "Record a referral landing (?ref=CODE) as a click",
		Description: "For a landing with ?ref=CODE: records a click for the affiliate with the code, through the redirect's " +
			"click writer (committed before the answer; a repeat by the same visitor within 30 s answers the earlier " +
			"click, counted false). Such a click has no referral link (link_id 0 in the clicks table, no link's " +
			"click_count changes). A landing through the redirect (?ref=CODE&hs_click=ID) sends click_id: the recorded " +
			"click answers, counted false, and nothing is recorded twice. Answers the click id as cookie_token with the " +
			"cookie window. Unknown code: 404. An affiliate, program or workspace that is not active, or a known bot: " +
			"200 with click_id null, nothing recorded. Feeds total_clicks."},
		heldsway.ScopeClicksWrite, sf.handleClick)
	registerTrack(s, huma.Operation{OperationID: "trackProductView", Method: http.MethodPost, Path: "/v1/track/product-view",
		Tags: tags, Summary: "Record a product detail view", DefaultStatus: created,
		Description: "Feeds total_product_views."}, pv, sf.handleProductView)
	event("add-to-cart", "trackAddToCart", "Record items added to a cart",
		"One row per item. Feeds total_add_to_carts and cart_to_conversion_rate.", pv, sf.handleCart(heldsway.EventAddToCart))
	event("remove-from-cart", "trackRemoveFromCart", "Record items removed from a cart",
		"One row per item. Feeds total_remove_from_carts.", pv, sf.handleCart(heldsway.EventRemoveFromCart))
	registerTrack(s, huma.Operation{OperationID: "trackCheckout", Method: http.MethodPost, Path: "/v1/track/checkout", Tags: tags,
		Summary: "Record a checkout reached", DefaultStatus: created,
		Description: "The funnel step between cart and order."}, pv, sf.handleCheckout)
	registerTrack(s, huma.Operation{OperationID: "trackOrder", Method: http.MethodPost, Path: "/v1/track/order", Tags: tags,
		Summary: "Record an order (trackOrder)", DefaultStatus: created,
		Description: "Records the conversion through the same path as POST /v1/conversions — attribution by click_id (the " +
			"visitor's cookie_token) then coupon_code, commissions, audit entry and events — and an order row among the " +
			"visitor's events. Referral codes are not accepted from browsers: a ?ref= landing becomes a click first. " +
			"An order_id already recorded is the same 409 CONFLICT as POST /v1/conversions, with existing_id. Answers " +
			"{conversion_id, commission_amount, affiliate_id}. Feeds total_conversions, total_revenue, total_commission.",
		Errors: []int{http.StatusConflict}}, heldsway.ScopeConversionsWrite, sf.handleOrder)
	registerTrack(s, huma.Operation{OperationID: "trackThankYou", Method: http.MethodPost, Path: "/v1/track/thank-you", Tags: tags,
		Summary: "Record a thank-you page view", DefaultStatus: created,
		Description: "Feeds total_thank_you_views."}, pv, sf.handleThankYou)
	registerTrack(s, huma.Operation{OperationID: "trackIdentify", Method: http.MethodPost, Path: "/v1/track/identify", Tags: tags,
		Summary: "Identify the visitor (after login or signup)", DefaultStatus: created,
		Description: "Ties the visitor to a customer e-mail (stored lower-cased) and user id."}, pv, sf.handleIdentify)
	registerTrack(s, huma.Operation{OperationID: "getTrackDiscount", Method: http.MethodGet, Path: "/v1/track/discount", Tags: tags,
		Summary: "Look up a discount code (getDiscount)",
		Description: "The coupon as the SDK shows it (digest §6.9). 404 for an unknown code and for one that is inactive " +
			"or outside its validity window.", Errors: notFound}, heldsway.ScopeSDKInit, sf.handleDiscount)
	registerTrack(s, huma.Operation{OperationID: "validateTrackDiscount", Method: http.MethodPost, Path: "/v1/track/discount/validate",
		Tags: tags, Summary: "Check a discount code against a cart total (validateDiscount)",
		Description: "Always 200 for a well-formed request: is_valid with discount_amount, or is_valid false with reason " +
			"(not_found, inactive, not_started, expired, below_minimum, currency_mismatch). Nothing is written."},
		heldsway.ScopeSDKInit, sf.handleDiscountValidate)
	registerTrack(s, huma.Operation{OperationID: "getTrackInit", Method: http.MethodGet, Path: "/v1/track/init", Tags: tags,
		Summary: "The SDK's configuration (init)"}, heldsway.ScopeSDKInit, sf.handleInit)

	for _, rt := range []struct{ path, method, opID string }{
		{"pageview", http.MethodPost, "trackPageview"}, {"click", http.MethodPost, "trackClick"},
		{"product-view", http.MethodPost, "trackProductView"}, {"add-to-cart", http.MethodPost, "trackAddToCart"},
		{"remove-from-cart", http.MethodPost, "trackRemoveFromCart"}, {"checkout", http.MethodPost, "trackCheckout"},
		{"order", http.MethodPost, "trackOrder"}, {"thank-you", http.MethodPost, "trackThankYou"},
		{"identify", http.MethodPost, "trackIdentify"}, {"discount", http.MethodGet, "getTrackDiscount"},
		{"discount/validate", http.MethodPost, "validateTrackDiscount"}, {"init", http.MethodGet, "getTrackInit"},
	} {
		path := "/v1/track/" + rt.path
		s.handle(http.MethodOptions, path, sf.handleTrackPreflight(rt.method))
		s.documentPreflight(path, rt.method, rt.opID)
	}
}

// routesPayouts: balances, the ledger and adjustments of affiliates; payouts
// and their status machine (digest §7.3), export and statement; payout
// requests (§7.4). Reads need payouts:read, changes payouts:write.
func (s *Server) routesPayouts() {
	s.api.OpenAPI().Tags = append(s.api.OpenAPI().Tags, &huma.Tag{Name: "Payouts",
		Description: "Affiliate balances derived from an append-only ledger, manual adjustments, payouts (pending → " +
			"processing → completed, or failed), their runs, CSV export and PDF statement, and affiliates' early payout requests."})
	tags := []string{"Payouts"}
	read, write := heldsway.ScopePayoutsRead, heldsway.ScopePayoutsWrite
	notFound := []int{http.StatusNotFound}

	register(s, huma.Operation{OperationID: "getAffiliateBalance", Method: http.MethodGet, Path: "/v1/affiliates/{id}/balance", Tags: tags,
		Summary: "An affiliate's balances, one per currency",
		Description: "available = the sum of the affiliate's ledger entries; pending = commission not yet approved; in_flight = " +
			"payouts pending or processing; paid = payouts completed. For every currency, approved commission − reversals + " +
			"adjustments = paid + in_flight + available.",
		Errors: notFound}, read, s.handleBalanceGet)
	register(s, huma.Operation{OperationID: "listAffiliateLedger", Method: http.MethodGet, Path: "/v1/affiliates/{id}/ledger", Tags: tags,
		Summary: "An affiliate's ledger entries",
		Description: "Append-only: every movement of the balance with what caused it (commission, payout, adjustment reason). " +
			"Cursor-paginated by id, newest first by default; filters currency and kind.",
		Errors: notFound}, read, s.handleLedgerList)
	register(s, huma.Operation{OperationID: "createAffiliateAdjustment", Method: http.MethodPost, Path: "/v1/affiliates/{id}/adjustments", Tags: tags,
		Summary: "Adjust an affiliate's balance by hand", DefaultStatus: http.StatusCreated,
		Description: "Appends an adjustment entry to the ledger (a debit may take the balance below zero; later payouts net it " +
			"off). Audit entry ledger.adjust and event balance.adjusted. Answers 201 with the ledger entry.",
		Errors: notFound}, write, s.handleAdjustmentCreate)

	filters := "Filters: status, affiliate_id (one of this workspace's affiliates, else 422), currency, search (affiliate " +
		"name or e-mail, external reference), from/to (YYYY-MM-DD, UTC, inclusive, on created_at; to ≥ from)."
	register(s, huma.Operation{OperationID: "listPayouts", Method: http.MethodGet, Path: "/v1/payouts", Tags: tags,
		Summary: "List payouts", Description: "Cursor-paginated by created_at then id (page is honoured for compatibility). " +
			filters + " Items carry their affiliate; the commissions are only on the detail."},
		read, s.handlePayoutList)
	register(s, huma.Operation{OperationID: "getPayoutStats", Method: http.MethodGet, Path: "/v1/payouts/stats", Tags: tags,
		Summary: "Payout statistics",
		Description: "The dashboard's figures: per currency, pending_amount (payouts pending or processing) and " +
			"completed_this_month (completed in the current calendar month of the workspace's time zone); pending_count, " +
			"the number of affiliates with a payout pending or processing; pending_requests, the payout requests awaiting " +
			"a decision."}, read, s.handlePayoutStats)
	register(s, huma.Operation{OperationID: "exportPayouts", Method: http.MethodGet, Path: "/v1/payouts/export", Tags: tags,
		Summary: "Export payouts as CSV",
		Description: "Every payout the filters select, as text/csv (attachment), streamed, newest first unless direction=asc. " +
			filters + " format=csv (default): a header row, then the columns " + strings.Join(PayoutExportColumns, ", ") +
			". format=paypal: PayPal's mass-payment file without a header row, one payout a line: recipient e-mail (the " +
			"affiliate's), amount, currency, unique id (payout-<id>), note. It needs currency (a PayPal file holds one " +
			"currency) and lists pending payouts unless status=processing is given; completed or failed is 422. Amounts " +
			"carry the currency's exact decimals, exactly as the API renders them. Free-text cells starting with =, +, -, @ " +
			"get a leading apostrophe (CSV injection). Throttled at 30 requests per minute per API key.",
		Middlewares: huma.Middlewares{s.limitExport},
		Responses: map[string]*huma.Response{"200": {Description: "CSV, streamed.",
			Headers: map[string]*huma.Param{"Content-Disposition": {Description: `attachment; filename="payouts-YYYY-MM-DD.csv"`,
				Schema: &huma.Schema{Type: "string"}}},
			Content: map[string]*huma.MediaType{"text/csv": {Schema: &huma.Schema{Type: "string"}}}}}},
		read, s.handlePayoutExport)
	register(s, huma.Operation{OperationID: "getPayout", Method: http.MethodGet, Path: "/v1/payouts/{id}", Tags: tags,
		Summary: "Get a payout with the commissions it settles", Errors: notFound}, read, s.handlePayoutGet)
	register(s, huma.Operation{OperationID: "getPayoutStatement", Method: http.MethodGet, Path: "/v1/payouts/{id}/statement", Tags: tags,
		Summary: "A payout's statement as PDF",
		Description: "application/pdf (attachment): the affiliate, the payout, each commission it settles (order date, order " +
			"id, commission id, status, amount) and the total, with the amounts of GET /v1/payouts/{id} to the cent.",
		Errors: notFound,
		Responses: map[string]*huma.Response{"200": {Description: "The statement.",
			Headers: map[string]*huma.Param{"Content-Disposition": {Description: `attachment; filename="payout-<id>-statement.pdf"`,
				Schema: &huma.Schema{Type: "string"}}},
			Content: map[string]*huma.MediaType{"application/pdf": {Schema: &huma.Schema{Type: "string", Format: "binary"}}}}}},
		read, s.handlePayoutStatement)

	machine := " Follows the status machine (pending → processing; pending or processing → completed or failed); any other " +
		"transition is 409 INVALID_STATUS_TRANSITION naming both statuses (also for the loser of two concurrent changes)."
	conflict := []int{http.StatusNotFound, http.StatusConflict}
	register(s, huma.Operation{OperationID: "markPayoutProcessing", Method: http.MethodPost, Path: "/v1/payouts/{id}/processing", Tags: tags,
		Summary: "Mark a pending payout processing (sets processing_at)", Description: "Audit entry payout.processing." + machine,
		Errors: conflict}, write, s.handlePayoutProcessing)
	register(s, huma.Operation{OperationID: "completePayout", Method: http.MethodPost, Path: "/v1/payouts/{id}/complete", Tags: tags,
		Summary: "Complete a pending or processing payout",
		Description: `Optional body {"external_reference"} (≤ 255 characters). Sets completed_at and marks the commissions ` +
			"it settles paid; the amount moves from in_flight to paid. Event payout.sent." + machine,
		Errors: conflict}, write, s.handlePayoutComplete)
	register(s, huma.Operation{OperationID: "failPayout", Method: http.MethodPost, Path: "/v1/payouts/{id}/fail", Tags: tags,
		Summary: "Fail a pending or processing payout",
		Description: `Optional body {"reason"} (≤ 1000 characters). Sets failed_at, returns the amount to the affiliate's ` +
			"available balance (ledger payout_returned) and releases its commissions for a later payout. Event payout.failed." + machine,
		Errors: conflict}, write, s.handlePayoutFail)
	bulk := `Body {"ids": [1–100 distinct payout ids]}. Each id changes in its own transaction, so one failure does not undo ` +
		"the others; the answer is 200 with one result per id: {id, success: true, payout} or {id, success: false, error " +
		"{code, message}} (NOT_FOUND, INVALID_STATUS_TRANSITION)."
	register(s, huma.Operation{OperationID: "bulkMarkPayoutsProcessing", Method: http.MethodPost, Path: "/v1/payouts/bulk-processing", Tags: tags,
		Summary: "Mark many payouts processing", Description: bulk}, write, s.handlePayoutBulkProcessing)
	register(s, huma.Operation{OperationID: "bulkCompletePayouts", Method: http.MethodPost, Path: "/v1/payouts/bulk-complete", Tags: tags,
		Summary: "Complete many payouts", Description: bulk + ` An optional "external_reference" is kept on every payout completed.`},
		write, s.handlePayoutBulkComplete)

	register(s, huma.Operation{OperationID: "createPayoutRequest", Method: http.MethodPost, Path: "/v1/affiliates/{id}/payout-requests", Tags: tags,
		Summary: "Request an early payout for an affiliate", DefaultStatus: http.StatusCreated,
		Description: "Body {amount, currency, note?}. 404 for another workspace's affiliate; 409 CONFLICT when the payout " +
			"settings do not allow early requests (allow_early_requests), when the affiliate is not active, or when amount " +
			"exceeds the available balance less the affiliate's pending requests in the currency (details available, " +
			"requested, requestable). Nothing moves until the request is approved. Event payout_request.created. " +
			"Answers 201 with the request.",
		Errors: conflict}, write, s.handlePayoutRequestCreate)
	register(s, huma.Operation{OperationID: "listPayoutRequests", Method: http.MethodGet, Path: "/v1/payouts/requests", Tags: tags,
		Summary: "List payout requests",
		Description: "Cursor-paginated by created_at then id, newest first by default; filters status and affiliate_id " +
			"(one of this workspace's affiliates, else 422)."}, read, s.handlePayoutRequestList)
	register(s, huma.Operation{OperationID: "approvePayoutRequest", Method: http.MethodPost, Path: "/v1/payouts/requests/{id}/approve", Tags: tags,
		Summary: "Approve a pending payout request; creates its payout",
		Description: "Creates a pending payout of exactly the requested amount (ledger payout entry) settling the affiliate's " +
			"approved commissions it fully covers, oldest first, and answers with the payout. 409 INVALID_STATUS_TRANSITION " +
			"when the request is not pending; 409 CONFLICT when the affiliate is not active or the amount now exceeds the " +
			"available balance. Events payout.scheduled and payout_request.approved.",
		Errors: conflict}, write, s.handlePayoutRequestApprove)
	register(s, huma.Operation{OperationID: "rejectPayoutRequest", Method: http.MethodPost, Path: "/v1/payouts/requests/{id}/reject", Tags: tags,
		Summary: "Reject a pending payout request",
		Description: `Optional body {"reason"} (≤ 1000 characters). 409 INVALID_STATUS_TRANSITION when the request is not ` +
			"pending. Event payout_request.rejected.",
		Errors: conflict}, write, s.handlePayoutRequestReject)
}
