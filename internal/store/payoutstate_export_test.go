package store

import (
	"context"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// ReadPayoutForTest reads a payout with the commissions it settles.
func ReadPayoutForTest(s *Store, wsID, id int64) (*heldsway.Payout, error) {
	return readPayout(context.Background(), s.r, wsID, id, true)
}

// SetRunChunkForTest makes payout runs pay n affiliates per transaction.
func SetRunChunkForTest(s *Store, n int) { s.runChunkSize = n }
