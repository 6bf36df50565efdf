package heldsway_test

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/heldsway/heldsway/internal/heldsway"
)

func TestNewSlug(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(`^[a-z0-9]{9}$`)
	seen := map[string]bool{}
	for range 2000 {
		s := heldsway.NewSlug()
		if !re.MatchString(s) {
			t.Fatalf("slug %q", s)
		}
		if seen[s] {
			t.Fatalf("slug %q drawn twice in 2000", s)
		}
		seen[s] = true
	}
}

func TestIsHTTPURL(t *testing.T) {
	t.Parallel()
	for u, want := range map[string]bool{
		"https://shop.example/p/1?x=y#z":     true,
		"http://localhost:8080/":             true,
		"HTTPS://SHOP.EXAMPLE":               true,
		"https://[2001:db8::1]/x":            true,
		"/relative":                          false,
		"shop.example/p":                     false,
		"ftp://shop.example":                 false,
		"javascript:alert(1)":                false,
		"https://":                           false,
		"https:///path":                      false,
		"https://shop.example/a b":           false,
		"https://shop.example/\x00":          false,
		"mailto:someone@example.com":         false,
		"https://shop.example:port/":         false,
		"":                                   false,
		"https://shop.example/\u00e9t\u00e9": true,
	} {
		if got := heldsway.IsHTTPURL(u); got != want {
			t.Errorf("IsHTTPURL(%q) = %v, want %v", u, got, want)
		}
	}
}

func TestValidateLinkBatch(t *testing.T) {
	t.Parallel()
	items := []heldsway.LinkInput{
		{DestinationURL: "https://a.example", Slug: "Same"},
		{DestinationURL: "https://a.example", Slug: "same"},
		{DestinationURL: ""},
		{DestinationURL: "https://a.example", Metadata: json.RawMessage(`"str"`)},
		{DestinationURL: "https://a.example", Slug: "ok-slug", Metadata: json.RawMessage(`null`)},
	}
	err := heldsway.ValidateLinkBatch(items)
	d := err.(*heldsway.Error).Details
	var fields []string
	for k := range d {
		fields = append(fields, k)
	}
	slices.Sort(fields)
	if want := []string{"links.1.slug", "links.2.destination_url", "links.3.metadata"}; !slices.Equal(fields, want) {
		t.Fatalf("fields %v, want %v (%v)", fields, want, d)
	}
	if m := d["links.1.slug"].([]string)[0]; !strings.Contains(m, "links.0") {
		t.Fatalf("duplicate message %q does not name the first item", m)
	}
	if m := d["links.2.destination_url"].([]string)[0]; m != "The links.2.destination_url field is required." {
		t.Fatalf("message %q", m)
	}
	// Normalized in place: slugs lower-cased, null metadata dropped.
	if items[0].Slug != "same" || items[4].Metadata != nil {
		t.Fatalf("not normalized: %+v", items)
	}
	if err := heldsway.ValidateLinkBatch([]heldsway.LinkInput{{DestinationURL: "https://a.example"}}); err != nil {
		t.Fatal(err)
	}
}
