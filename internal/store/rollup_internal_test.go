package store

import (
	"math/rand/v2"
	"testing"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// blocks covers a range exactly, each block aligned and inside the range.
func TestBlocksCoverRanges(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		from := heldsway.Day(20260101).AddDays(rng.IntN(800))
		to := from.AddDays(rng.IntN(400))
		next := from
		for _, b := range blocks(from, to) {
			if b.start != next || spanStart(b.start, b.span) != b.start {
				t.Fatalf("[%s, %s]: block %+v, want one aligned at %s", from, to, b, next)
			}
			next = b.start.AddDays(b.span)
		}
		if next != to.AddDays(1) {
			t.Fatalf("[%s, %s] covered up to %s", from, to, next)
		}
		// At most 3 blocks of each smaller span at either end, and the
		// 64-day blocks between.
		if n := len(blocks(from, to)); n > 2*3*3+heldsway.DaysBetween(from, to)/64 {
			t.Fatalf("[%s, %s]: %d blocks", from, to, n)
		}
	}
	if n := len(blocks(20261003, 20261231)); n > 12 {
		t.Errorf("90 days in %d blocks", n)
	}
}
