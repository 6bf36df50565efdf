package track

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormHost(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Go.Shop.Example":      "go.shop.example",
		"go.shop.example:8443": "go.shop.example",
		"go.shop.example.":     "go.shop.example",
		"go.shop.example:":     "go.shop.example",
		"[::1]:8080":           "[::1]",
		"[::1]":                "[::1]",
		"":                     "",
	} {
		if got := normHost(in); got != want {
			t.Errorf("normHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClean(t *testing.T) {
	t.Parallel()
	if got := clean("a\xffb\x00c", 100); got != "a\uFFFDbc" {
		t.Fatalf("clean: %q", got)
	}
	long := strings.Repeat("é", 600) // 1200 bytes
	got := clean(long, 513)
	if len(got) != 512 || !utf8.ValidString(got) {
		t.Fatalf("cut to %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
}

func TestValidSlug(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{"6pharbyoh": true, "spring-sale_2": true, "": false, "a b": false,
		"Ab": false, strings.Repeat("a", 64): true, strings.Repeat("a", 65): false, "é": false} {
		if validSlug(s) != want {
			t.Errorf("validSlug(%q) != %v", s, want)
		}
	}
}
