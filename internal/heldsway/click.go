package heldsway

import "time"

// Click is one counted visit through a referral link (GET /r/{slug}). ClickID
// is the public id that travels as the hs_click query parameter and in the
// hs_ref cookie; a conversion names it to claim the click.
type Click struct {
	WorkspaceID int64
	LinkID      int64
	AffiliateID int64
	ProgramID   int64
	ClickID     string
	VisitorID   string
	// IPHash is a keyed hash (HMAC-SHA256, truncated) of the client address
	// with a per-installation secret: equal addresses compare equal, and the
	// address itself is never stored.
	IPHash       []byte
	UserAgent    string
	Referrer     string
	LandingQuery string
	CreatedAt    time.Time
}

// LinkTarget is what the redirect needs to know about one link, read in one
// query: the link, its affiliate, the affiliate's program and the workspace.
type LinkTarget struct {
	WorkspaceID     int64
	WorkspaceActive bool
	LinkID          int64
	Slug            string
	DestinationURL  string
	LinkActive      bool
	AffiliateID     int64
	AffiliateStatus string
	ReferralCode    string
	ProgramID       int64
	ProgramStatus   string
	CookieDays      int
}

// Tracks reports whether a visit through the target is recorded and
// attributed: the link is active, the affiliate is active, the program is
// active and the workspace is active. Otherwise the visitor is still sent to
// the destination, without a click, a cookie or referral parameters.
func (t *LinkTarget) Tracks() bool {
	// The literals are AffiliateActive and ProgramActive.
	return t.LinkActive && t.WorkspaceActive && t.AffiliateStatus == "active" && t.ProgramStatus == "active"
}

// LinkRef names a link by id and slug; the link cache invalidates by either.
type LinkRef struct {
	ID   int64
	Slug string
}

// LinkChanges is what changed since a point in time, for the link cache of
// every node: links whose own row, affiliate, program or workspace changed,
// and whether any workspace's custom domain may have changed.
type LinkChanges struct {
	Links   []LinkRef
	Domains bool
}
