package api

import (
	"context"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/heldsway/heldsway/internal/auth"
	"github.com/heldsway/heldsway/internal/heldsway"
)

type tokenInput struct {
	Body struct {
		APIKey    string `json:"api_key" minLength:"1" maxLength:"64" doc:"Your API key identifier (hs_key_…)."`
		APISecret string `json:"api_secret" minLength:"1" maxLength:"128" doc:"Your API secret (hs_secret_…)."`
	}
}

type tokenData struct {
	AccessToken string   `json:"access_token" doc:"Opaque token; send as Authorization: Bearer <access_token>."`
	TokenType   string   `json:"token_type" enum:"Bearer"`
	ExpiresIn   int      `json:"expires_in" doc:"Lifetime in seconds (14400)." example:"14400"`
	Scopes      []string `json:"scopes"`
}

func (s *Server) handleIssueToken(ctx context.Context, in *tokenInput) (*Out[tokenData], error) {
	token, t, err := s.Auth.IssueToken(ctx, in.Body.APIKey, in.Body.APISecret)
	if err != nil {
		return nil, err
	}
	return ok("Token issued successfully.", tokenData{
		AccessToken: token, TokenType: "Bearer",
		ExpiresIn: int(t.ExpiresAt.Sub(t.CreatedAt).Round(time.Second).Seconds()), Scopes: t.Scopes,
	}), nil
}

type meKey struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	ExpiresAt *Timestamp `json:"expires_at"`
}

type meData struct {
	Workspace string `json:"workspace"`
	Plan      string `json:"plan"`
	Key       meKey  `json:"key"`
}

func (s *Server) handleMe(ctx context.Context, _ *struct{}) (*Out[meData], error) {
	p := principal(ctx)
	return ok("OK", meData{Workspace: p.Workspace.Name, Plan: p.Workspace.Plan,
		Key: meKey{ID: p.Key.ID, Name: p.Key.Name, Scopes: p.Scopes, ExpiresAt: tsPtr(p.Key.ExpiresAt)}}), nil
}

// apiKeyView is an API key as listed: the key masked, never the secret.
type apiKeyView struct {
	ID                      int64      `json:"id"`
	Name                    string     `json:"name"`
	Kind                    string     `json:"kind" enum:"secret,publishable"`
	Key                     string     `json:"key" doc:"Masked key identifier."`
	Scopes                  []string   `json:"scopes"`
	Status                  string     `json:"status" enum:"active,revoked,expired"`
	RateLimit               int        `json:"rate_limit" doc:"Requests per minute for this key."`
	AllowedOrigins          []string   `json:"allowed_origins"`
	ExpiresAt               *Timestamp `json:"expires_at"`
	LastUsedAt              *Timestamp `json:"last_used_at"`
	RevokedAt               *Timestamp `json:"revoked_at"`
	PreviousSecretExpiresAt *Timestamp `json:"previous_secret_expires_at" doc:"Until when the secret before the last rotation still works."`
	CreatedAt               Timestamp  `json:"created_at"`
}

func (s *Server) keyView(k *heldsway.APIKey) apiKeyView {
	limit := k.RateLimit
	if limit == 0 {
		limit = s.KeyRateLimit
	}
	v := apiKeyView{ID: k.ID, Name: k.Name, Kind: k.Kind, Key: auth.MaskKey(k.Key), Scopes: k.Scopes,
		Status: k.Status(s.Auth.Now()), RateLimit: limit, AllowedOrigins: k.AllowedOrigins,
		ExpiresAt: tsPtr(k.ExpiresAt), LastUsedAt: tsPtr(k.LastUsedAt), RevokedAt: tsPtr(k.RevokedAt),
		CreatedAt: Timestamp(k.CreatedAt)}
	if k.PrevSecretExpiresAt != nil && s.Auth.Now().Before(*k.PrevSecretExpiresAt) {
		v.PreviousSecretExpiresAt = tsPtr(k.PrevSecretExpiresAt)
	}
	return v
}

type listInput struct {
	PerPage int    `query:"per_page" minimum:"1" maximum:"100" default:"25" doc:"Items per page (1–100)."`
	Cursor  string `query:"cursor" maxLength:"512" doc:"Opaque cursor from meta.next_cursor of the previous page."`
}

func (s *Server) handleAPIKeyList(ctx context.Context, in *listInput) (*Out[Page[apiKeyView]], error) {
	p := principal(ctx)
	before, err := decodeIDCursor(in.Cursor)
	if err != nil {
		return nil, err
	}
	keys, err := s.Auth.Store.ListAPIKeys(ctx, p.Workspace.ID, before, in.PerPage+1)
	if err != nil {
		return nil, err
	}
	page := Page[apiKeyView]{Items: []apiKeyView{}, Meta: PageMeta{PerPage: in.PerPage}}
	for i, k := range keys {
		if i == in.PerPage {
			page.Meta.HasMore = true
			page.Meta.NextCursor = encodeIDCursor(keys[i-1].ID)
			break
		}
		page.Items = append(page.Items, s.keyView(k))
	}
	return ok("OK", page), nil
}

type apiKeyCreateInput struct {
	Body struct {
		Name           string     `json:"name" minLength:"1" maxLength:"100"`
		Scopes         []Scope    `json:"scopes" minItems:"1" maxItems:"50" doc:"Namespaced scopes or presets: read-only, conversion-write, payout-write, admin."`
		Kind           string     `json:"kind,omitempty" enum:"secret,publishable" doc:"secret (default): exchanged for tokens server-side; publishable: an as_ key for browsers."`
		ExpiresAt      *time.Time `json:"expires_at,omitempty" doc:"RFC 3339; the key stops working at this time."`
		RateLimit      int        `json:"rate_limit,omitempty" minimum:"1" maximum:"1000000" doc:"Requests per minute (default 1000)."`
		AllowedOrigins []string   `json:"allowed_origins,omitempty" maxItems:"20" doc:"Publishable keys: browser origins allowed to use the key."`
	}
}

type apiKeyCreated struct {
	apiKeyView
	APIKey    string `json:"api_key" doc:"The full key identifier."`
	APISecret string `json:"api_secret,omitempty" doc:"Shown once; only a digest is stored."`
}

func (s *Server) handleAPIKeyCreate(ctx context.Context, in *apiKeyCreateInput) (*Out[apiKeyCreated], error) {
	p := principal(ctx)
	k, secret, err := s.Auth.CreateKey(ctx, auth.KeyInput{WorkspaceID: p.Workspace.ID, Name: in.Body.Name,
		Scopes: scopeStrings(in.Body.Scopes), ExpiresAt: in.Body.ExpiresAt, RateLimit: in.Body.RateLimit, Kind: in.Body.Kind,
		AllowedOrigins: in.Body.AllowedOrigins})
	if err != nil {
		return nil, err
	}
	return ok("API key created. Store the secret now: it is not shown again.",
		apiKeyCreated{apiKeyView: s.keyView(k), APIKey: k.Key, APISecret: secret}), nil
}

type idInput struct {
	ID int64 `path:"id" minimum:"1"`
}

func (s *Server) handleAPIKeyRevoke(ctx context.Context, in *idInput) (*Out[apiKeyView], error) {
	p := principal(ctx)
	if err := s.Auth.RevokeKey(ctx, p.Workspace.ID, in.ID); err != nil {
		return nil, err
	}
	k, err := s.Auth.Store.FindAPIKey(ctx, p.Workspace.ID, in.ID)
	if err != nil {
		return nil, err
	}
	return ok("API key revoked.", s.keyView(k)), nil
}

type rotateInput struct {
	ID   int64 `path:"id" minimum:"1"`
	Body *struct {
		GracePeriodSeconds *int `json:"grace_period_seconds,omitempty" minimum:"0" maximum:"604800" doc:"How long the old secret keeps working (default 86400)."`
	} `required:"false"`
}

func (s *Server) handleAPIKeyRotate(ctx context.Context, in *rotateInput) (*Out[apiKeyCreated], error) {
	p := principal(ctx)
	grace := auth.DefaultRotationGrace
	if in.Body != nil && in.Body.GracePeriodSeconds != nil {
		grace = time.Duration(*in.Body.GracePeriodSeconds) * time.Second
		if grace == 0 {
			grace = time.Nanosecond // zero means "now": the old secret stops at once
		}
	}
	k, secret, err := s.Auth.RotateKey(ctx, p.Workspace.ID, in.ID, grace)
	if err != nil {
		return nil, err
	}
	return ok("API key rotated. Store the new secret now: it is not shown again.",
		apiKeyCreated{apiKeyView: s.keyView(k), APIKey: k.Key, APISecret: secret}), nil
}

// Scope is a scope or preset name; the schema lists the allowed values.
type Scope string

// Schema lists every scope and preset as an enum.
func (Scope) Schema(r huma.Registry) *huma.Schema {
	var enum []any
	for _, sc := range heldsway.AllScopes {
		enum = append(enum, sc)
	}
	for _, p := range []string{"read-only", "conversion-write", "payout-write"} {
		enum = append(enum, p)
	}
	return &huma.Schema{Type: "string", Enum: enum}
}

func scopeStrings(in []Scope) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = string(s)
	}
	return out
}
