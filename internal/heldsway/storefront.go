package heldsway

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Storefront events: what the browser SDK reports through POST /v1/track/*,
// the raw material of the analytics metrics of digest §5.8 (clicks and orders
// have their own tables).
const (
	EventPageview       = "pageview"         // total_pageviews, unique_visitors, pages_per_visit
	EventProductView    = "product_view"     // total_product_views
	EventAddToCart      = "add_to_cart"      // total_add_to_carts, cart_to_conversion_rate
	EventRemoveFromCart = "remove_from_cart" // total_remove_from_carts
	EventCheckout       = "checkout"         // the funnel between cart and order
	EventOrder          = "order"            // the session of an order (the order itself is in orders)
	EventThankYou       = "thank_you"        // total_thank_you_views
	EventIdentify       = "identify"         // ties a visitor to a customer e-mail
)

// StorefrontSessionTimeout ends a session: an event without a session_id more
// than this long after the visitor's previous event starts a new session (the
// usual web-analytics definition).
const StorefrontSessionTimeout = 30 * time.Minute

// Limits of storefront event fields. Stored text is cut to these many
// characters by validation, never silently.
const (
	StorefrontIDMaxLen   = 64   // visitor_id, session_id, click_id
	StorefrontURLMaxLen  = 2048 // url, referrer
	StorefrontTextMaxLen = 255  // product, cart and order ids, names, categories
	StorefrontMaxItems   = 100  // items of one cart event
)

// StorefrontEvent is one stored storefront event. Amount is in minor units of
// Currency: a product's unit price, a checkout's cart total or an order's
// total. Empty strings and nil pointers are stored as NULL.
type StorefrontEvent struct {
	ID          int64
	WorkspaceID int64
	Type        string
	VisitorID   string
	SessionID   string
	AffiliateID *int64
	LinkID      *int64
	ProgramID   *int64 // the attributing click's program
	Host        string
	Path        string
	Referrer    string
	UTM         UTM
	ProductID   string
	ProductName string
	Category    string
	Amount      *int64
	Currency    string
	Quantity    *int64
	CartID      string
	OrderID     string
	Email       string
	CustomerID  string
	UserAgent   string
	CreatedAt   time.Time
}

// UTM holds the campaign parameters of a page URL.
type UTM struct {
	Source, Medium, Campaign, Term, Content string
}

// PageURL is a page URL reduced to what is stored: host, path and the UTM
// parameters.
type PageURL struct {
	Host string
	Path string
	UTM  UTM
}

// ParsePageURL reads an absolute http(s) URL. ok is false for anything else.
func ParsePageURL(raw string) (p PageURL, ok bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return PageURL{}, false
	}
	p.Host = strings.ToLower(u.Host)
	p.Path = u.EscapedPath()
	if p.Path == "" {
		p.Path = "/"
	}
	q := u.Query()
	cut := func(s string) string { return truncateRunes(strings.TrimSpace(s), StorefrontTextMaxLen) }
	p.UTM = UTM{Source: cut(q.Get("utm_source")), Medium: cut(q.Get("utm_medium")), Campaign: cut(q.Get("utm_campaign")),
		Term: cut(q.Get("utm_term")), Content: cut(q.Get("utm_content"))}
	return p, true
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// ValidStorefrontID reports whether s can be a visitor, session or click id:
// 1 to 64 letters, digits, dashes and underscores (UUIDs and base64url ids
// both fit), so ids never need escaping in cookies, logs or headers.
func ValidStorefrontID(s string) bool {
	if s == "" || len(s) > StorefrontIDMaxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// CheckStorefrontID adds a field error to fe when a non-empty id is not valid.
func CheckStorefrontID(fe FieldErrors, field, v string) {
	if v != "" && !ValidStorefrontID(v) {
		fe.Add(field, fmt.Sprintf("The %s field must be 1 to %d letters, digits, dashes or underscores.",
			strings.ReplaceAll(field, "_", " "), StorefrontIDMaxLen))
	}
}

// NormalizeOrigin returns the canonical form of a browser origin
// (scheme://host[:port]): lower-cased, the default port of the scheme
// dropped, no trailing slash. ok is false for anything that is not an http(s)
// origin: a path, query, fragment or user info, or the opaque "null" origin.
func NormalizeOrigin(s string) (string, bool) {
	s = strings.TrimSuffix(strings.TrimSpace(s), "/")
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" ||
		u.Opaque != "" || strings.HasSuffix(s, "?") || strings.HasSuffix(s, "#") {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if host == "" || (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6 literal
	}
	if port != "" {
		return scheme + "://" + host + ":" + port, true
	}
	return scheme + "://" + host, true
}

// NormalizeOrigins checks a publishable key's allowed origins, adding a
// detail per bad entry to fe, and returns them normalized and de-duplicated
// (never nil).
func NormalizeOrigins(fe FieldErrors, origins []string) []string {
	out := make([]string, 0, len(origins))
	seen := map[string]bool{}
	for i, o := range origins {
		n, ok := NormalizeOrigin(o)
		if !ok {
			f := fmt.Sprintf("allowed_origins.%d", i)
			fe.Add(f, "The "+f+" field must be an origin: http(s)://host[:port], without a path.")
			continue
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// ClickRef is a stored click as storefront attribution needs it.
type ClickRef struct {
	ClickID      string
	AffiliateID  int64
	LinkID       int64 // 0: a ?ref= landing reported by the SDK, not a referral link
	ProgramID    int64
	ReferralCode string
	CookieDays   int
	CreatedAt    time.Time
}

// InWindow reports whether the click still attributes at time at: it is
// within the program's cookie window.
func (c *ClickRef) InWindow(at time.Time) bool {
	return !at.Before(c.CreatedAt.Add(-ConversionFutureSkew)) &&
		at.Before(c.CreatedAt.Add(time.Duration(c.CookieDays)*24*time.Hour))
}

// StorefrontStore persists storefront events and answers the lookups of the
// ingestion endpoints. Called by the API's /v1/track routes only.
type StorefrontStore interface {
	// InsertStorefrontEvents writes events in one transaction.
	InsertStorefrontEvents(ctx context.Context, events []StorefrontEvent) error
	// LastStorefrontSession returns the session and time of the visitor's
	// latest event; ok false if it has none.
	LastStorefrontSession(ctx context.Context, wsID int64, visitorID string) (sessionID string, at time.Time, ok bool, err error)
	// FindClickRef returns a click of the workspace by its public id; ENOTFOUND
	// if there is none.
	FindClickRef(ctx context.Context, wsID int64, clickID string) (*ClickRef, error)
	// ReferralTarget returns the affiliate with the referral code as a link
	// target without a link (LinkID 0); ENOTFOUND if there is none.
	ReferralTarget(ctx context.Context, wsID int64, code string) (*LinkTarget, error)
	// PublishableOrigins lists the normalized allowed origins of every usable
	// publishable key (not revoked, not expired, active workspace).
	PublishableOrigins(ctx context.Context) ([]string, error)
}
