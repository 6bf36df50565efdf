package api

import (
	"net/http"

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
	s.routesCoupons()
	s.routesAudit()
}

// routesPrograms: programs (scope affiliates:* for reads/writes of program config).
func (s *Server) routesPrograms() {
}

// routesSettings: workspace settings, commission tiers, branding, payout settings.
func (s *Server) routesSettings() {
}

// routesAffiliates: affiliates, status actions, commission override, self-registration.
func (s *Server) routesAffiliates() {
}

// routesLinks: referral links and bulk link batches.
func (s *Server) routesLinks() {
}

// routesCoupons: coupons.
func (s *Server) routesCoupons() {
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
