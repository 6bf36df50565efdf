package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/track"
)

// Tracker serves the click redirect GET /r/{slug}; *track.Handler implements it.
// Every route whose write changes what a redirect does tells it, after the
// write has committed, so this node's link cache changes at once. Other nodes
// catch up at their next cache refresh (track.DefaultRefreshInterval; see
// docs/tracking.md for the bound).
//
// What a redirect depends on: the link (slug, destination_url, is_active), its
// affiliate (status, referral_code, program), the affiliate's program (status,
// cookie_duration), the workspace (active) and the custom domains. Link rules,
// coupons, commission overrides and the other settings change what a
// conversion earns, not the redirect, so their routes do not call it.
type Tracker interface {
	http.Handler
	// InvalidateLink forgets a link, under the slug it was cached with and
	// under slug, its slug now (after it is created — the slug may be
	// remembered as unknown —, updated or deleted).
	InvalidateLink(linkID int64, slug string)
	// InvalidateAffiliate forgets one affiliate's links (its status, referral
	// code or program changed, or it was deleted).
	InvalidateAffiliate(workspaceID, affiliateID int64)
	// InvalidateProgram forgets the links of a program's affiliates (its status
	// or cookie window changed).
	InvalidateProgram(workspaceID, programID int64)
	// InvalidateWorkspace forgets a workspace's links (a setting of its default
	// program that the redirect uses changed).
	InvalidateWorkspace(workspaceID int64)
	// ReloadDomains re-reads the custom domains (a workspace's changed).
	ReloadDomains(ctx context.Context) error
}

var _ Tracker = (*track.Handler)(nil)

// linkChanged tells the tracker, if any, that a link changed.
func (s *Server) linkChanged(l *heldsway.Link) {
	if s.Tracker != nil {
		s.Tracker.InvalidateLink(l.ID, l.Slug)
	}
}

// affiliateLinksChanged tells the tracker, if any, that an affiliate's links
// redirect differently.
func (s *Server) affiliateLinksChanged(wsID, affID int64) {
	if s.Tracker != nil {
		s.Tracker.InvalidateAffiliate(wsID, affID)
	}
}

// programLinksChanged tells the tracker, if any, that a program's links
// redirect differently.
func (s *Server) programLinksChanged(wsID, programID int64) {
	if s.Tracker != nil {
		s.Tracker.InvalidateProgram(wsID, programID)
	}
}

// workspaceLinksChanged tells the tracker, if any, that a workspace's links
// redirect differently.
func (s *Server) workspaceLinksChanged(wsID int64) {
	if s.Tracker != nil {
		s.Tracker.InvalidateWorkspace(wsID)
	}
}

// domainsChanged tells the tracker, if any, that a custom domain changed. The
// write has committed: a failed reload is logged, and the next refresh retries.
func (s *Server) domainsChanged(ctx context.Context) {
	if s.Tracker == nil {
		return
	}
	if err := s.Tracker.ReloadDomains(context.WithoutCancel(ctx)); err != nil {
		s.Logger.Warn("reload custom domains", "err", err)
	}
}

// handleRedirect is GET /r/{slug}. Without a tracker every slug is unknown.
func (s *Server) handleRedirect(w http.ResponseWriter, r *http.Request) {
	if s.Tracker == nil {
		track.NotFound(w, r)
		return
	}
	s.Tracker.ServeHTTP(w, r)
}

// documentTracking adds GET /r/{slug} to the OpenAPI document: a plain handler,
// so huma does not describe it by itself.
func (s *Server) documentTracking() {
	oa := s.api.OpenAPI()
	oa.Tags = append(oa.Tags, &huma.Tag{Name: "Tracking", Description: "The referral-link redirect and click tracking."})
	str := &huma.Schema{Type: "string"}
	html := func(desc string) *huma.Response {
		return &huma.Response{Description: desc, Content: map[string]*huma.MediaType{"text/html": {Schema: str}}}
	}
	oa.AddOperation(&huma.Operation{OperationID: "followReferralLink", Method: http.MethodGet, Path: "/r/{slug}",
		Tags: []string{"Tracking"}, Summary: "Follow a referral link: record the click and redirect",
		Description: "Public, no token. Resolves the slug (on a workspace's custom domain, that workspace's link; " +
			"on any other host, the one link with the slug — a slug several workspaces share answers 404 there), " +
			"commits the click, then answers 302 to the link's destination_url with `ref=<referral code>` and " +
			"`hs_click=<click id>` appended; the destination's own query and fragment are kept. Sets the attribution " +
			"cookie `hs_ref` (the click id; Max-Age the program's cookie window; HttpOnly, SameSite=Lax, Path=/, " +
			"Secure over HTTPS or X-Forwarded-Proto: https) and, for a new visitor, `hs_vid`.\n\n" +
			"Not counted, redirected to the plain destination without cookies: an inactive link; an affiliate, program " +
			"or workspace that is not active; a known crawler or HTTP library (and an empty User-Agent); a HEAD request. " +
			"A repeat by the same visitor (hs_vid) on the same link within 30 s answers with the earlier click id and " +
			"is counted once.",
		Security: []map[string][]string{},
		Parameters: []*huma.Param{{Name: "slug", In: "path", Required: true, Description: "The link's slug (case-insensitive).",
			Schema: &huma.Schema{Type: "string", Pattern: "^[A-Za-z0-9_-]{1,64}$"}}},
		Responses: map[string]*huma.Response{
			"302": {Description: "Redirect to the destination.", Headers: map[string]*huma.Param{
				"Location": {Description: "destination_url, with ref and hs_click when the click was counted.", Schema: str},
				"Set-Cookie": {Description: "hs_ref=<click id> and, for a new visitor, hs_vid=<visitor id>; " +
					"absent when the click is not counted.", Schema: str},
			}},
			"404": html("Unknown slug, or a slug several workspaces share requested on a shared host: a small HTML page."),
			"503": html("The click could not be recorded (database unavailable): an HTML page with Retry-After; retrying is safe."),
		},
	})
}
