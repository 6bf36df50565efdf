package heldsway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of a referral link's fields.
const (
	SlugMinLen         = 3
	SlugMaxLen         = 64
	GeneratedSlugLen   = 9 // documented: 9 lower-case alphanumerics, e.g. 6pharbyoh
	DestinationMaxLen  = 2048
	CampaignMaxLen     = 100
	LinkMetadataMaxLen = 4096 // bytes of compact JSON
	LinkBatchMaxItems  = 1000
)

// Link batch statuses: pending → processing → completed | failed.
const (
	BatchPending    = "pending"
	BatchProcessing = "processing"
	BatchCompleted  = "completed"
	BatchFailed     = "failed"
)

// Per-item results of a link batch.
const (
	BatchItemCreated = "created"
	BatchItemFailed  = "failed"
)

// MsgAffiliateNotFound is the documented 404 message of the link routes under an affiliate.
const MsgAffiliateNotFound = "Affiliate not found for this business."

// Link is a referral link: /r/{slug} redirects to DestinationURL and credits
// AffiliateID. The JSON tags name the fields as the API does, so audit entries
// and events read like the API object.
type Link struct {
	ID             int64           `json:"id"`
	WorkspaceID    int64           `json:"-"`
	AffiliateID    int64           `json:"affiliate_id"`
	Slug           string          `json:"slug"`
	DestinationURL string          `json:"destination_url"`
	Campaign       *string         `json:"campaign"`
	IsActive       bool            `json:"is_active"`
	ClickCount     int64           `json:"click_count"`
	Metadata       json.RawMessage `json:"metadata"` // a JSON object, or nil
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
}

// LinkInput creates a link. An empty Slug asks for a generated one; a nil
// IsActive means active.
type LinkInput struct {
	DestinationURL string          `json:"destination_url"`
	Slug           string          `json:"slug,omitempty"`
	Campaign       *string         `json:"campaign,omitempty"`
	IsActive       *bool           `json:"is_active,omitempty"`
	Metadata       json.RawMessage `json:"metadata,omitempty"`
}

// Normalize lower-cases the slug and turns an empty campaign into none.
func (in *LinkInput) Normalize() {
	in.Slug = strings.ToLower(strings.TrimSpace(in.Slug))
	in.DestinationURL = strings.TrimSpace(in.DestinationURL)
	in.Campaign = normCampaign(in.Campaign)
	if isJSONNull(in.Metadata) {
		in.Metadata = nil
	}
}

// Validate checks a normalized input. Errors: EVALIDATION with field details.
func (in *LinkInput) Validate() error {
	fe := FieldErrors{}
	in.validateInto(fe, "")
	return fe.Err()
}

func (in *LinkInput) validateInto(fe FieldErrors, prefix string) {
	validateDestination(fe, prefix+"destination_url", in.DestinationURL)
	if in.Slug != "" {
		validateSlug(fe, prefix+"slug", in.Slug)
	}
	validateCampaign(fe, prefix+"campaign", in.Campaign)
	validateMetadata(fe, prefix+"metadata", in.Metadata)
}

// Link returns the new link the input describes, for the workspace and affiliate.
func (in *LinkInput) Link(wsID, affiliateID int64) *Link {
	l := &Link{WorkspaceID: wsID, AffiliateID: affiliateID, Slug: in.Slug, DestinationURL: in.DestinationURL,
		Campaign: in.Campaign, IsActive: true, Metadata: in.Metadata}
	if in.IsActive != nil {
		l.IsActive = *in.IsActive
	}
	return l
}

// LinkUpdate changes the fields it sets; the rest stay. Campaign and Metadata
// are nullable, so each has a Set flag: set with a nil value clears the field.
type LinkUpdate struct {
	DestinationURL *string
	Slug           *string
	SetCampaign    bool
	Campaign       *string
	IsActive       *bool
	SetMetadata    bool
	Metadata       json.RawMessage
}

// Validate checks the fields the update sets, after normalizing them.
func (u *LinkUpdate) Validate() error {
	fe := FieldErrors{}
	if u.DestinationURL != nil {
		v := strings.TrimSpace(*u.DestinationURL)
		u.DestinationURL = &v
		validateDestination(fe, "destination_url", v)
	}
	if u.Slug != nil {
		v := strings.ToLower(strings.TrimSpace(*u.Slug))
		u.Slug = &v
		validateSlug(fe, "slug", v)
	}
	if u.SetCampaign {
		u.Campaign = normCampaign(u.Campaign)
		validateCampaign(fe, "campaign", u.Campaign)
	}
	if u.SetMetadata {
		if isJSONNull(u.Metadata) {
			u.Metadata = nil
		}
		validateMetadata(fe, "metadata", u.Metadata)
	}
	return fe.Err()
}

// Apply copies the set fields onto l.
func (u *LinkUpdate) Apply(l *Link) {
	if u.DestinationURL != nil {
		l.DestinationURL = *u.DestinationURL
	}
	if u.Slug != nil {
		l.Slug = *u.Slug
	}
	if u.SetCampaign {
		l.Campaign = u.Campaign
	}
	if u.IsActive != nil {
		l.IsActive = *u.IsActive
	}
	if u.SetMetadata {
		l.Metadata = u.Metadata
	}
}

// ValidateLinkBatch normalizes and checks every item of a bulk request and the
// batch as a whole (size, slugs repeated within it). Details are keyed by item:
// "links.3.destination_url".
func ValidateLinkBatch(items []LinkInput) error {
	fe := FieldErrors{}
	switch {
	case len(items) == 0:
		fe.Add("links", "The links field must contain at least one link.")
	case len(items) > LinkBatchMaxItems:
		fe.Add("links", fmt.Sprintf("The links field must not have more than %d items.", LinkBatchMaxItems))
	}
	first := map[string]int{}
	for i := range items {
		in := &items[i]
		in.Normalize()
		prefix := fmt.Sprintf("links.%d.", i)
		in.validateInto(fe, prefix)
		if in.Slug == "" {
			continue
		}
		if j, dup := first[in.Slug]; dup {
			fe.Add(prefix+"slug", fmt.Sprintf("The slug %q is repeated in this batch (first at links.%d).", in.Slug, j))
		} else {
			first[in.Slug] = i
		}
	}
	return fe.Err()
}

// LinkBatch is a bulk link creation, processed in the background.
type LinkBatch struct {
	ID             int64
	WorkspaceID    int64
	AffiliateID    int64
	Status         string
	TotalItems     int
	ProcessedItems int
	FailedItems    int
	Items          []LinkInput
	Results        []LinkBatchResult
	CreatedAt      time.Time
	UpdatedAt      time.Time
	CompletedAt    *time.Time
}

// LinkBatchResult is the outcome of one item of a batch.
type LinkBatchResult struct {
	Index  int    `json:"index"`
	Status string `json:"status"` // created | failed
	LinkID int64  `json:"link_id,omitempty"`
	Slug   string `json:"slug,omitempty"`
	Error  string `json:"error,omitempty"`
}

// LinkFilter selects links; zero fields do not filter.
type LinkFilter struct {
	AffiliateID int64
	IsActive    *bool
	// Search matches slug, destination URL, campaign and the affiliate's name
	// and e-mail, case-insensitively.
	Search string
	// RequireAffiliate makes an AffiliateID outside the workspace ENOTFOUND
	// (MsgAffiliateNotFound) rather than an empty list: the list under
	// /v1/affiliates/{id}/links.
	RequireAffiliate bool
}

// Link sorts (the documented whitelist).
var LinkSorts = []string{"created_at", "slug", "click_count", "destination_url", "campaign"}

// LinkService manages referral links. Every write records an audit entry and an
// event (link.created, link.updated, link.deleted) in its transaction.
type LinkService interface {
	// CreateLink creates a link for an affiliate. ENOTFOUND (MsgAffiliateNotFound)
	// for an affiliate not in the workspace; ECONFLICT for a terminated affiliate
	// or a slug already taken in the workspace.
	CreateLink(ctx context.Context, wsID, affiliateID int64, in LinkInput) (*Link, error)
	// FindLink returns a link of the workspace; ENOTFOUND otherwise.
	FindLink(ctx context.Context, wsID, id int64) (*Link, error)
	// ListLinks pages through the workspace's links. EVALIDATION for a bad cursor.
	ListLinks(ctx context.Context, wsID int64, f LinkFilter, o ListOptions) (PageResult[*Link], error)
	// UpdateLink applies u. ENOTFOUND; ECONFLICT for a slug already taken.
	UpdateLink(ctx context.Context, wsID, id int64, u LinkUpdate) (*Link, error)
	// DeleteLink deletes a link and returns it as it was. ENOTFOUND.
	DeleteLink(ctx context.Context, wsID, id int64) (*Link, error)

	// CreateLinkBatch queues validated items for an affiliate. ENOTFOUND
	// (MsgAffiliateNotFound); ECONFLICT for a terminated affiliate; EVALIDATION
	// with per-item details for slugs already taken in the workspace.
	CreateLinkBatch(ctx context.Context, wsID, affiliateID int64, items []LinkInput) (*LinkBatch, error)
	// FindLinkBatch returns a batch of the affiliate; ENOTFOUND otherwise.
	FindLinkBatch(ctx context.Context, wsID, affiliateID, id int64) (*LinkBatch, error)
	// ProcessLinkBatches claims up to limit pending (or abandoned) batches and
	// processes them; it returns how many it processed. Called by the worker.
	ProcessLinkBatches(ctx context.Context, limit int) (int, error)
}

// NewSlug returns a random slug of GeneratedSlugLen lower-case alphanumerics.
func NewSlug() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, GeneratedSlugLen)
	// 252 is the largest multiple of 36 below 256: rejecting bytes above it
	// keeps every character equally likely.
	var buf [32]byte
	for n := 0; n < len(b); {
		_, _ = rand.Read(buf[:])
		for _, c := range buf {
			if c < 252 && n < len(b) {
				b[n] = alphabet[int(c)%len(alphabet)]
				n++
			}
		}
	}
	return string(b)
}

func validateDestination(fe FieldErrors, field, v string) {
	label := msgField(field)
	switch {
	case v == "":
		fe.Add(field, fmt.Sprintf("The %s field is required.", label))
		return
	case utf8.RuneCountInString(v) > DestinationMaxLen:
		fe.Add(field, fmt.Sprintf("The %s field must not be greater than %d characters.", label, DestinationMaxLen))
		return
	}
	if !IsHTTPURL(v) {
		fe.Add(field, fmt.Sprintf("The %s field must be an absolute http or https URL.", label))
	}
}

// IsHTTPURL reports whether v is an absolute http(s) URL with a host and no
// spaces or control characters.
func IsHTTPURL(v string) bool {
	for _, r := range v {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || u.Hostname() == "" || u.Opaque != "" {
		return false
	}
	s := strings.ToLower(u.Scheme)
	return s == "http" || s == "https"
}

func validateSlug(fe FieldErrors, field, v string) {
	label := msgField(field)
	n := len(v)
	switch {
	case n < SlugMinLen:
		fe.Add(field, fmt.Sprintf("The %s field must be at least %d characters.", label, SlugMinLen))
	case n > SlugMaxLen:
		fe.Add(field, fmt.Sprintf("The %s field must not be greater than %d characters.", label, SlugMaxLen))
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			fe.Add(field, fmt.Sprintf("The %s field may only contain letters, numbers and dashes.", label))
			return
		}
	}
}

func validateCampaign(fe FieldErrors, field string, v *string) {
	if v != nil && utf8.RuneCountInString(*v) > CampaignMaxLen {
		fe.Add(field, fmt.Sprintf("The %s field must not be greater than %d characters.", msgField(field), CampaignMaxLen))
	}
}

func validateMetadata(fe FieldErrors, field string, v json.RawMessage) {
	if v == nil {
		return
	}
	t := bytes.TrimSpace(v)
	if len(t) == 0 || t[0] != '{' || !json.Valid(t) {
		fe.Add(field, fmt.Sprintf("The %s field must be an object.", msgField(field)))
		return
	}
	var c bytes.Buffer
	if err := json.Compact(&c, t); err != nil || c.Len() > LinkMetadataMaxLen {
		fe.Add(field, fmt.Sprintf("The %s field must not be larger than %d bytes of JSON.", msgField(field), LinkMetadataMaxLen))
	}
}

// normCampaign trims a campaign tag; an empty one means none.
func normCampaign(v *string) *string {
	if v == nil {
		return nil
	}
	t := strings.TrimSpace(*v)
	if t == "" {
		return nil
	}
	return &t
}

func isJSONNull(v json.RawMessage) bool {
	return v != nil && string(bytes.TrimSpace(v)) == "null"
}

// msgField renders a field the way the documented messages do: "api_key" →
// "api key"; item paths such as "links.3.slug" stay as they are.
func msgField(field string) string {
	if strings.Contains(field, ".") {
		return field
	}
	return strings.ReplaceAll(field, "_", " ")
}
