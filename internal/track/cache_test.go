package track

import (
	"net/url"
	"strings"
	"testing"
	"time"
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

func TestClickIDsSortByTime(t *testing.T) {
	t.Parallel()
	h := &Handler{newID: randomID}
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	prev := ""
	for i := range 2000 {
		id := h.encodeID(h.newClickID(t0.Add(time.Duration(i) * time.Millisecond)))
		var back [16]byte
		if len(id) != 22 || !decodeID(id, &back) || h.encodeID(back) != id {
			t.Fatalf("id %q does not round-trip", id)
		}
		if id <= prev {
			t.Fatalf("%q after %q: not in time order", id, prev)
		}
		// Exports quote a cell that starts like a formula (=, +, -, @).
		if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZ", rune(id[0])) {
			t.Fatalf("id %q does not start with a letter", id)
		}
		prev = id
	}
	// After the ids of the earlier layout (the milliseconds alone, so '-').
	if old := "-P8FOSJSCNQX4wNMEhKNL-"; prev <= old {
		t.Fatalf("%q sorts before the earlier layout's %q", prev, old)
	}
	if url.QueryEscape(prev) != prev {
		t.Fatalf("%q needs escaping in a URL", prev)
	}
}
