package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
	"github.com/heldsway/heldsway/internal/track"
)

// Storefront ingestion (digest §5.12): what the browser SDK calls. Every event
// names its visitor (the SDK's first-party visitor id) and may name its
// session and the visitor's click (click_id: the cookie_token of POST
// /v1/track/click, or the hs_click of the redirect). The click attributes the
// event to its affiliate while it is inside the program's cookie window; an
// unknown or expired click_id is not an error (cookies go stale), the event is
// simply stored unattributed.
//
// Sessions: the SDK's session_id when sent; otherwise the visitor's previous
// session continues if its last event is less than 30 minutes old, and a new
// one starts otherwise. The answer returns the session used, so the SDK can
// send it from then on. Two first events of a visitor at the same instant may
// derive two sessions; the SDK avoids that by sending session_id.
//
// Events from known bots (the redirect's list) are acknowledged and not
// stored. Events are telemetry: no audit entry or outbox event (like clicks).
// The order event is the exception: it records a conversion through the very
// path of POST /v1/conversions, with its audit entry and events.

// storefront holds the state of the storefront routes.
type storefront struct {
	s       *Server
	origins originSet
}

// clickRecorder records SDK clicks through the redirect's click writer;
// *track.Handler implements it.
type clickRecorder interface {
	RecordClick(ctx context.Context, r *http.Request, c heldsway.Click) (string, bool, error)
}

var _ clickRecorder = (*track.Handler)(nil)

// TrackContext is what every storefront event carries. Exported only because
// huma flattens embedded structs of exported types alone.
type TrackContext struct {
	VisitorID string `json:"visitor_id" minLength:"1" maxLength:"64" doc:"The SDK's visitor id (a first-party cookie): 1–64 letters, digits, - or _."`
	SessionID string `json:"session_id,omitempty" nullable:"true" maxLength:"64" doc:"The SDK's session id; when absent the visitor's session continues if its last event is under 30 minutes old, else a new one starts."`
	ClickID   string `json:"click_id,omitempty" nullable:"true" maxLength:"64" doc:"The visitor's attribution token: cookie_token from POST /v1/track/click or hs_click from the redirect. Attributes the event to the click's affiliate inside the cookie window; unknown or expired tokens are ignored."`
	URL       string `json:"url,omitempty" nullable:"true" maxLength:"2048" doc:"The page's absolute http(s) URL; its host, path and utm_source/medium/campaign/term/content are stored, not the rest of its query."`
	Referrer  string `json:"referrer,omitempty" nullable:"true" maxLength:"2048" doc:"document.referrer: an absolute URL."`
	UserAgent string `json:"user_agent,omitempty" nullable:"true" maxLength:"512" doc:"Bearer-token (server) calls only: the visitor's User-Agent. With a publishable key the request's own header is used and this field is ignored."`
}

// check adds the context's problems to fe.
func (tc *TrackContext) check(fe heldsway.FieldErrors) {
	heldsway.CheckStorefrontID(fe, "visitor_id", tc.VisitorID)
	heldsway.CheckStorefrontID(fe, "session_id", tc.SessionID)
	heldsway.CheckStorefrontID(fe, "click_id", tc.ClickID)
	if tc.URL != "" {
		if _, ok := heldsway.ParsePageURL(tc.URL); !ok {
			fe.Add("url", "The url field must be a valid absolute http(s) URL.")
		}
	}
	if tc.Referrer != "" {
		if u, err := url.Parse(tc.Referrer); err != nil || u.Scheme == "" {
			fe.Add("referrer", "The referrer field must be a valid absolute URL.")
		}
	}
}

// eventAck answers a storefront event.
type eventAck struct {
	Type        string `json:"type" enum:"pageview,product_view,add_to_cart,remove_from_cart,checkout,order,thank_you,identify"`
	Recorded    int    `json:"recorded" doc:"Rows stored: 1, or one per item for cart events; 0 when the user agent is a known bot."`
	VisitorID   string `json:"visitor_id"`
	SessionID   string `json:"session_id" doc:"The session the event counts in: the one sent, or the derived one (send it with later events)."`
	AffiliateID *int64 `json:"affiliate_id" nullable:"true" doc:"The affiliate the click_id attributes the visitor to; null when none does."`
}

// userAgent is the visitor's User-Agent: the request's with a publishable key
// (a browser), the body's for a bearer-token call (a server reporting).
func userAgent(ctx context.Context, r *http.Request, tc *TrackContext) string {
	if publishable(ctx) {
		return r.UserAgent()
	}
	return tc.UserAgent
}

// isBot: a browser call is judged by its User-Agent (empty counts as a bot,
// as on the redirect); a server call only by the user_agent it reports.
func isBot(ctx context.Context, ua string) bool {
	if !publishable(ctx) && ua == "" {
		return false
	}
	return track.IsBot(ua)
}

// record stores evs (each with its type and own fields) with the context of
// tc filled in, and acknowledges them.
func (sf *storefront) record(ctx context.Context, typ string, tc *TrackContext, evs ...heldsway.StorefrontEvent) (*Out[eventAck], error) {
	ack, base, skip, err := sf.prepare(ctx, typ, tc)
	if err != nil || skip {
		return ack, err
	}
	for i := range evs {
		e := &evs[i]
		e.WorkspaceID, e.Type, e.VisitorID, e.SessionID = base.WorkspaceID, typ, base.VisitorID, base.SessionID
		if typ != heldsway.EventOrder { // an order row carries the order's own attribution
			e.AffiliateID, e.LinkID, e.ProgramID = base.AffiliateID, base.LinkID, base.ProgramID
		}
		e.Host, e.Path, e.Referrer, e.UTM = base.Host, base.Path, base.Referrer, base.UTM
		e.UserAgent, e.CreatedAt = base.UserAgent, base.CreatedAt
	}
	if err := sf.s.Store.InsertStorefrontEvents(ctx, evs); err != nil {
		return nil, err
	}
	ack.Body.Data.Recorded = len(evs)
	return ack, nil
}

// prepare resolves the context of an event: bots, attribution, session and
// page. skip means a bot: ack is the answer and nothing is stored.
func (sf *storefront) prepare(ctx context.Context, typ string, tc *TrackContext) (*Out[eventAck], heldsway.StorefrontEvent, bool, error) {
	ws := principal(ctx).Workspace.ID
	now := sf.s.Store.Now().UTC()
	ua := userAgent(ctx, requestOf(ctx), tc)
	ack := ok("Event recorded.", eventAck{Type: typ, VisitorID: tc.VisitorID, SessionID: tc.SessionID})
	if isBot(ctx, ua) {
		ack.Body.Message = "Event from a known bot: not recorded."
		return ack, heldsway.StorefrontEvent{}, true, nil
	}
	base := heldsway.StorefrontEvent{WorkspaceID: ws, VisitorID: tc.VisitorID, SessionID: tc.SessionID,
		Referrer: tc.Referrer, UserAgent: truncateBytes(ua, 512), CreatedAt: now}
	if p, ok := heldsway.ParsePageURL(tc.URL); ok {
		base.Host, base.Path, base.UTM = p.Host, truncateBytes(p.Path, 1024), p.UTM
	}
	if tc.ClickID != "" {
		c, err := sf.s.Store.FindClickRef(ctx, ws, tc.ClickID)
		switch {
		case heldsway.ErrorCode(err) == heldsway.ENOTFOUND:
		case err != nil:
			return nil, base, false, err
		case c.InWindow(now):
			base.AffiliateID, base.ProgramID = &c.AffiliateID, &c.ProgramID
			if c.LinkID != 0 {
				base.LinkID = &c.LinkID
			}
		}
	}
	if base.SessionID == "" {
		id, at, found, err := sf.s.Store.LastStorefrontSession(ctx, ws, tc.VisitorID)
		if err != nil {
			return nil, base, false, err
		}
		if found && now.Sub(at) < heldsway.StorefrontSessionTimeout && !at.After(now) {
			base.SessionID = id
		} else {
			base.SessionID = newSessionID()
		}
	}
	ack.Body.Data.SessionID = base.SessionID
	ack.Body.Data.AffiliateID = base.AffiliateID
	return ack, base, false, nil
}

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// truncateBytes cuts s to at most n bytes on a character boundary.
func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && (s[n]&0xC0) == 0x80 {
		n--
	}
	return s[:n]
}

type requestKey struct{}

// withRequest is a huma middleware that makes the request reachable from the
// handler: the storefront handlers need its User-Agent and peer address.
func withRequest(ctx huma.Context, next func(huma.Context)) {
	r, _ := humago.Unwrap(ctx)
	next(huma.WithContext(ctx, context.WithValue(ctx.Context(), requestKey{}, r)))
}

func requestOf(ctx context.Context) *http.Request {
	r, _ := ctx.Value(requestKey{}).(*http.Request)
	if r == nil {
		r = &http.Request{Header: http.Header{}}
	}
	return r
}

// currency resolves an event's currency: the one sent, else the workspace's
// default program's. A bad code is a field error on field.
func (sf *storefront) currency(ctx context.Context, fe heldsway.FieldErrors, field, code string) (money.Currency, bool, error) {
	if code != "" {
		c, err := money.ParseCurrency(code)
		if err != nil {
			fe.Add(field, fmt.Sprintf("The %s field must be a valid ISO 4217 currency code.", field))
			return money.Currency{}, false, nil
		}
		return c, true, nil
	}
	p, err := sf.s.Store.FindDefaultProgram(ctx, principal(ctx).Workspace.ID)
	if err != nil {
		return money.Currency{}, false, err
	}
	c, err := money.ParseCurrency(p.Currency)
	return c, err == nil, nil
}

// minor parses an amount of field in cur into fe.
func minor(fe heldsway.FieldErrors, field string, d *Decimal, cur money.Currency) *int64 {
	if d == nil {
		return nil
	}
	m, err := d.Minor(cur)
	switch {
	case err != nil:
		fe.Add(field, fmt.Sprintf("The %s field %s.", human(field), err.Error()))
		return nil
	case m < 0:
		fe.Add(field, fmt.Sprintf("The %s field must be at least 0.", human(field)))
		return nil
	}
	return &m
}

// mergeValidation adds a VALIDATION_ERROR's details to fe; any other error is
// returned.
func mergeValidation(fe heldsway.FieldErrors, err error) error {
	var he *heldsway.Error
	if err == nil {
		return nil
	}
	if !errors.As(err, &he) || he.Code != heldsway.EVALIDATION {
		return err
	}
	for k, v := range he.Details {
		if msgs, ok := v.([]string); ok {
			for _, m := range msgs {
				if !containsStr(fe[k], m) {
					fe.Add(k, m)
				}
			}
		}
	}
	return nil
}

func containsStr(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
