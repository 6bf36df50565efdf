package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
)

type statusData struct {
	Status  string `json:"status" example:"ok"`
	Version string `json:"version,omitempty"`
}

func (s *Server) handleHealthz(ctx context.Context, _ *struct{}) (*Out[statusData], error) {
	return ok("OK", statusData{Status: "ok", Version: s.Version}), nil
}

func (s *Server) handleReadyz(ctx context.Context, _ *struct{}) (*Out[statusData], error) {
	if err := s.DB.Ping(ctx); err != nil {
		return nil, err
	}
	return ok("OK", statusData{Status: "ready"}), nil
}

// documentPlainRoutes adds the non-JSON routes to the OpenAPI document, so the
// document lists every route the server answers.
func (s *Server) documentPlainRoutes() {
	text := func(ct, desc string) map[string]*huma.Response {
		return map[string]*huma.Response{"200": {Description: desc,
			Content: map[string]*huma.MediaType{ct: {Schema: &huma.Schema{Type: "string"}}}}}
	}
	oa := s.api.OpenAPI()
	oa.AddOperation(&huma.Operation{OperationID: "metrics", Method: http.MethodGet, Path: "/metrics",
		Tags: []string{"Operations"}, Summary: "Prometheus metrics: request counts and latencies by route and status",
		Security: []map[string][]string{}, Responses: text("text/plain", "Prometheus text exposition format.")})
	for _, p := range []string{"/v1/openapi.json", "/openapi.json"} {
		oa.AddOperation(&huma.Operation{OperationID: "openapi" + map[bool]string{true: "V1", false: ""}[p == "/v1/openapi.json"],
			Method: http.MethodGet, Path: p, Tags: []string{"Operations"}, Summary: "This OpenAPI 3.1 document",
			Security: []map[string][]string{}, Responses: map[string]*huma.Response{"200": {Description: "The document.",
				Content: map[string]*huma.MediaType{"application/vnd.oai.openapi+json": {Schema: &huma.Schema{Type: "object"}}}}}})
	}
}
