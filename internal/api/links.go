package api

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// nullableField is a body field of an update that may be absent (leave the
// value alone), null (clear it) or a value.
type nullableField[T any] struct {
	Sent  bool
	Null  bool
	Value T
}

func (n *nullableField[T]) UnmarshalJSON(b []byte) error {
	n.Sent = true
	if string(bytes.TrimSpace(b)) == "null" {
		n.Null = true
		return nil
	}
	return json.Unmarshal(b, &n.Value)
}

// Schema is the value's schema; the field's nullable tag adds null.
func (nullableField[T]) Schema(r huma.Registry) *huma.Schema {
	return r.Schema(reflect.TypeFor[T](), true, "")
}

// value is the field of an update that may be absent but not null: the value,
// or nil when absent; null adds a message to fe. (huma skips the schema of an
// optional property sent as null, so a non-nullable field checks it here.)
func (n nullableField[T]) value(fe heldsway.FieldErrors, field string) *T {
	if n.Null {
		fe.Add(field, "The "+human(field)+" field must not be null.")
	}
	if !n.Sent || n.Null {
		return nil
	}
	v := n.Value
	return &v
}

// ptr returns the value, or nil when null; only meaningful when Sent.
func (n nullableField[T]) ptr() *T {
	if n.Null {
		return nil
	}
	v := n.Value
	return &v
}

// jsonObject is a free-form JSON object kept byte for byte (numbers are not
// rounded through float64). Absent is nil; null is the literal null.
type jsonObject json.RawMessage

func (j *jsonObject) UnmarshalJSON(b []byte) error {
	*j = append(jsonObject(nil), b...)
	return nil
}

func (j jsonObject) MarshalJSON() ([]byte, error) {
	if len(j) == 0 {
		return []byte("null"), nil
	}
	return j, nil
}

// Schema documents a free-form object.
func (jsonObject) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: "object", AdditionalProperties: true,
		Description: "Free-form JSON object of at most 4096 bytes (compact JSON)."}
}

// LinkOrigin resolves the scheme and host a request was sent to, from which
// tracking URLs are built. It honours X-Forwarded-Proto (http or https only) so
// a server behind a TLS-terminating proxy hands out https links.
type LinkOrigin struct {
	origin string
}

// Resolve implements huma.Resolver.
func (o *LinkOrigin) Resolve(ctx huma.Context) []error {
	scheme := "http"
	if ctx.TLS() != nil {
		scheme = "https"
	}
	if p := strings.ToLower(strings.TrimSpace(ctx.Header("X-Forwarded-Proto"))); p == "http" || p == "https" {
		scheme = p
	}
	o.origin = scheme + "://" + ctx.Host()
	return nil
}

// trackingBase returns the origin tracking URLs start with: the workspace's
// custom domain (always https) when it has one, else the request's.
func (s *Server) trackingBase(ctx context.Context, wsID int64, o LinkOrigin) (string, error) {
	d, err := s.Store.TrackingDomain(ctx, wsID)
	if err != nil {
		return "", err
	}
	switch {
	case d == "":
		return o.origin, nil
	case strings.Contains(d, "://"):
		return strings.TrimRight(d, "/"), nil
	}
	return "https://" + strings.TrimRight(d, "/"), nil
}

// linkView is the referral link object (digest §6.2).
type linkView struct {
	ID             int64      `json:"id"`
	AffiliateID    int64      `json:"affiliate_id"`
	Slug           string     `json:"slug" example:"6pharbyoh"`
	DestinationURL string     `json:"destination_url" example:"https://shop.example/products/42"`
	Campaign       *string    `json:"campaign" doc:"Campaign tag, or null."`
	IsActive       bool       `json:"is_active" doc:"Inactive links stop tracking clicks and conversions."`
	ClickCount     int64      `json:"click_count"`
	TrackingURL    string     `json:"tracking_url" doc:"The URL to share: the workspace's custom domain (https) or the host this request was sent to, then /r/{slug}." example:"https://acme.heldsway.com/r/6pharbyoh"`
	Metadata       jsonObject `json:"metadata" nullable:"true"`
	CreatedAt      Timestamp  `json:"created_at"`
	UpdatedAt      Timestamp  `json:"updated_at"`
}

func viewLink(base string, l *heldsway.Link) linkView {
	return linkView{ID: l.ID, AffiliateID: l.AffiliateID, Slug: l.Slug, DestinationURL: l.DestinationURL,
		Campaign: l.Campaign, IsActive: l.IsActive, ClickCount: l.ClickCount, TrackingURL: base + "/r/" + l.Slug,
		Metadata: jsonObject(l.Metadata), CreatedAt: Timestamp(l.CreatedAt), UpdatedAt: Timestamp(l.UpdatedAt)}
}

// LinkListParams are the parameters of both link lists. (Exported because huma
// only reads the parameters of exported embedded structs.)
type LinkListParams struct {
	ListParams
	LinkOrigin
	IsActive string `query:"is_active" enum:"1,0,true,false" doc:"1: active links only; 0: inactive only."`
	Search   string `query:"search" maxLength:"255" doc:"Matches slug, destination URL, campaign and the affiliate's name and e-mail (case-insensitive)."`
	Sort     string `query:"sort" enum:"created_at,slug,click_count,destination_url,campaign" default:"created_at"`
}

func (f LinkListParams) filter() heldsway.LinkFilter {
	out := heldsway.LinkFilter{Search: f.Search}
	if f.IsActive != "" {
		v := f.IsActive == "1" || f.IsActive == "true"
		out.IsActive = &v
	}
	return out
}

type linkListInput struct {
	LinkListParams
	AffiliateID int64 `query:"affiliate_id" minimum:"1" doc:"Only this affiliate's links."`
}

type affiliateLinkListInput struct {
	LinkListParams
	ID int64 `path:"id" minimum:"1" doc:"Affiliate id."`
}

func (s *Server) listLinks(ctx context.Context, f LinkListParams, lf heldsway.LinkFilter) (*Out[Page[linkView]], error) {
	p := principal(ctx)
	o, err := f.options(f.Sort)
	if err != nil {
		return nil, err
	}
	base, err := s.trackingBase(ctx, p.Workspace.ID, f.LinkOrigin)
	if err != nil {
		return nil, err
	}
	res, err := s.Store.ListLinks(ctx, p.Workspace.ID, lf, o)
	if err != nil {
		return nil, err
	}
	return ok("OK", pageOut(res, f.ListParams, o, func(l *heldsway.Link) linkView { return viewLink(base, l) })), nil
}

func (s *Server) handleLinkList(ctx context.Context, in *linkListInput) (*Out[Page[linkView]], error) {
	lf := in.filter()
	lf.AffiliateID = in.AffiliateID
	return s.listLinks(ctx, in.LinkListParams, lf)
}

func (s *Server) handleAffiliateLinkList(ctx context.Context, in *affiliateLinkListInput) (*Out[Page[linkView]], error) {
	lf := in.filter()
	lf.AffiliateID, lf.RequireAffiliate = in.ID, true
	return s.listLinks(ctx, in.LinkListParams, lf)
}

type linkCreateInput struct {
	LinkOrigin
	ID   int64 `path:"id" minimum:"1" doc:"Affiliate id."`
	Body struct {
		DestinationURL string     `json:"destination_url" maxLength:"2048" doc:"Absolute http or https URL the link redirects to."`
		Slug           string     `json:"slug,omitempty" minLength:"3" maxLength:"64" doc:"3–64 letters, digits and dashes, stored lower-cased; unique in the workspace. Generated (9 lower-case alphanumerics) when absent."`
		Campaign       *string    `json:"campaign,omitempty" maxLength:"100" doc:"Campaign tag; null or empty for none."`
		IsActive       *bool      `json:"is_active,omitempty" doc:"Default true."`
		Metadata       jsonObject `json:"metadata,omitempty" nullable:"true"`
	}
}

func (s *Server) handleAffiliateLinkCreate(ctx context.Context, in *linkCreateInput) (*Out[linkView], error) {
	p := principal(ctx)
	b := in.Body
	l, err := s.Store.CreateLink(ctx, p.Workspace.ID, in.ID, heldsway.LinkInput{DestinationURL: b.DestinationURL,
		Slug: b.Slug, Campaign: b.Campaign, IsActive: b.IsActive, Metadata: json.RawMessage(b.Metadata)})
	if err != nil {
		return nil, err
	}
	s.linkChanged(l) // its slug may be remembered as unknown
	base, err := s.trackingBase(ctx, p.Workspace.ID, in.LinkOrigin)
	if err != nil {
		return nil, err
	}
	return ok("Link created.", viewLink(base, l)), nil
}

type linkIDInput struct {
	LinkOrigin
	ID int64 `path:"id" minimum:"1"`
}

func (s *Server) handleLinkGet(ctx context.Context, in *linkIDInput) (*Out[linkView], error) {
	p := principal(ctx)
	l, err := s.Store.FindLink(ctx, p.Workspace.ID, in.ID)
	if err != nil {
		return nil, err
	}
	base, err := s.trackingBase(ctx, p.Workspace.ID, in.LinkOrigin)
	if err != nil {
		return nil, err
	}
	return ok("OK", viewLink(base, l)), nil
}

type linkUpdateInput struct {
	LinkOrigin
	ID   int64 `path:"id" minimum:"1"`
	Body struct {
		DestinationURL nullableField[string] `json:"destination_url,omitempty" maxLength:"2048" doc:"Absolute http or https URL."`
		Slug           nullableField[string] `json:"slug,omitempty" minLength:"3" maxLength:"64" doc:"3–64 letters, digits and dashes, stored lower-cased."`
		Campaign       nullableField[string] `json:"campaign,omitempty" nullable:"true" maxLength:"100" doc:"null or empty clears it."`
		IsActive       nullableField[bool]   `json:"is_active,omitempty"`
		Metadata       jsonObject            `json:"metadata,omitempty" nullable:"true" doc:"Replaces the metadata; null clears it."`
	}
}

func (s *Server) handleLinkUpdate(ctx context.Context, in *linkUpdateInput) (*Out[linkView], error) {
	p := principal(ctx)
	b := in.Body
	fe := heldsway.FieldErrors{}
	u := heldsway.LinkUpdate{DestinationURL: b.DestinationURL.value(fe, "destination_url"), Slug: b.Slug.value(fe, "slug"),
		IsActive: b.IsActive.value(fe, "is_active"), SetCampaign: b.Campaign.Sent, Campaign: b.Campaign.ptr(),
		SetMetadata: b.Metadata != nil, Metadata: json.RawMessage(b.Metadata)}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	l, err := s.Store.UpdateLink(ctx, p.Workspace.ID, in.ID, u)
	if err != nil {
		return nil, err
	}
	s.linkChanged(l)
	base, err := s.trackingBase(ctx, p.Workspace.ID, in.LinkOrigin)
	if err != nil {
		return nil, err
	}
	return ok("Link updated.", viewLink(base, l)), nil
}

func (s *Server) handleLinkDelete(ctx context.Context, in *linkIDInput) (*Out[linkView], error) {
	p := principal(ctx)
	l, err := s.Store.DeleteLink(ctx, p.Workspace.ID, in.ID)
	if err != nil {
		return nil, err
	}
	s.linkChanged(l)
	base, err := s.trackingBase(ctx, p.Workspace.ID, in.LinkOrigin)
	if err != nil {
		return nil, err
	}
	return ok("Link deleted.", viewLink(base, l)), nil
}

// Bulk creation.

type linkBulkItem struct {
	DestinationURL string     `json:"destination_url" maxLength:"2048" doc:"Absolute http or https URL."`
	Slug           string     `json:"slug,omitempty" minLength:"3" maxLength:"64" doc:"Optional; generated when absent. Must be unique in the workspace and within the batch."`
	Campaign       *string    `json:"campaign,omitempty" maxLength:"100"`
	IsActive       *bool      `json:"is_active,omitempty" doc:"Default true."`
	Metadata       jsonObject `json:"metadata,omitempty" nullable:"true"`
}

type linkBulkInput struct {
	ID   int64 `path:"id" minimum:"1" doc:"Affiliate id."`
	Body struct {
		Links []linkBulkItem `json:"links" minItems:"1" maxItems:"1000" nullable:"false" doc:"1 to 1000 links. The whole batch is validated before anything is queued."`
	}
}

type linkBatchQueued struct {
	BatchID    int64  `json:"batch_id"`
	Status     string `json:"status" enum:"pending"`
	TotalItems int    `json:"total_items"`
	StatusURL  string `json:"status_url" example:"/v1/affiliates/42/link-batches/7" doc:"Poll this for progress and per-item results."`
}

func batchURL(affID, batchID int64) string {
	return "/v1/affiliates/" + strconv.FormatInt(affID, 10) + "/link-batches/" + strconv.FormatInt(batchID, 10)
}

func (s *Server) handleLinkBulk(ctx context.Context, in *linkBulkInput) (*Out[linkBatchQueued], error) {
	p := principal(ctx)
	items := make([]heldsway.LinkInput, len(in.Body.Links))
	for i, it := range in.Body.Links {
		items[i] = heldsway.LinkInput{DestinationURL: it.DestinationURL, Slug: it.Slug, Campaign: it.Campaign,
			IsActive: it.IsActive, Metadata: json.RawMessage(it.Metadata)}
	}
	b, err := s.Store.CreateLinkBatch(ctx, p.Workspace.ID, in.ID, items)
	if err != nil {
		return nil, err
	}
	return ok("Bulk creation queued.", linkBatchQueued{BatchID: b.ID, Status: b.Status, TotalItems: b.TotalItems,
		StatusURL: batchURL(in.ID, b.ID)}), nil
}

type linkBatchResultView struct {
	Index  int    `json:"index" doc:"Position of the item in the request's links array."`
	Status string `json:"status" enum:"created,failed"`
	LinkID int64  `json:"link_id,omitempty" doc:"The created link."`
	Slug   string `json:"slug,omitempty"`
	Error  string `json:"error,omitempty" doc:"Why the item failed."`
}

type linkBatchView struct {
	BatchID        int64                 `json:"batch_id"`
	AffiliateID    int64                 `json:"affiliate_id"`
	Status         string                `json:"status" enum:"pending,processing,completed,failed" doc:"completed once every item is processed (some may have failed); failed when no item could be created."`
	TotalItems     int                   `json:"total_items"`
	ProcessedItems int                   `json:"processed_items"`
	FailedItems    int                   `json:"failed_items"`
	Results        []linkBatchResultView `json:"results" nullable:"false" doc:"One entry per processed item, in order."`
	StatusURL      string                `json:"status_url"`
	CreatedAt      Timestamp             `json:"created_at"`
	CompletedAt    *Timestamp            `json:"completed_at"`
}

type linkBatchInput struct {
	ID      int64 `path:"id" minimum:"1" doc:"Affiliate id."`
	BatchID int64 `path:"batch_id" minimum:"1"`
}

func (s *Server) handleLinkBatchGet(ctx context.Context, in *linkBatchInput) (*Out[linkBatchView], error) {
	b, err := s.Store.FindLinkBatch(ctx, principal(ctx).Workspace.ID, in.ID, in.BatchID)
	if err != nil {
		return nil, err
	}
	v := linkBatchView{BatchID: b.ID, AffiliateID: b.AffiliateID, Status: b.Status, TotalItems: b.TotalItems,
		ProcessedItems: b.ProcessedItems, FailedItems: b.FailedItems, Results: make([]linkBatchResultView, 0, len(b.Results)),
		StatusURL: batchURL(b.AffiliateID, b.ID), CreatedAt: Timestamp(b.CreatedAt), CompletedAt: tsPtr(b.CompletedAt)}
	for _, r := range b.Results {
		v.Results = append(v.Results, linkBatchResultView(r))
	}
	return ok("OK", v), nil
}
