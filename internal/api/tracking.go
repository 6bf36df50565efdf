package api

import (
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/heldsway/heldsway/internal/track"
)

// Tracker serves the click redirect GET /r/{slug}; *track.Handler implements it.
// The link, affiliate and program routes tell it about their writes, so this
// node's link cache changes at once (other nodes catch up within seconds).
type Tracker interface {
	http.Handler
	// Invalidate forgets the given slugs (after a link is created, updated —
	// with its old and new slug — or deleted).
	Invalidate(slugs ...string)
	// InvalidateAll forgets every link, for writes that touch many links (an
	// affiliate's status, a program's cookie window or status).
	InvalidateAll()
}

var _ Tracker = (*track.Handler)(nil)

// linksChanged tells the tracker, if any, that links with these slugs changed.
func (s *Server) linksChanged(slugs ...string) {
	if s.Tracker != nil {
		s.Tracker.Invalidate(slugs...)
	}
}

// allLinksChanged tells the tracker, if any, that many links may have changed.
func (s *Server) allLinksChanged() {
	if s.Tracker != nil {
		s.Tracker.InvalidateAll()
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
