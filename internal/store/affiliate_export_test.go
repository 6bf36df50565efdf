package store

import "context"

// SetReferralCodeSource swaps the referral code generator and returns a function
// that restores it. Tests using it must not run in parallel with other tests
// that create affiliates.
func SetReferralCodeSource(fn func() (string, error)) (restore func()) {
	old := newReferralCode
	newReferralCode = fn
	return func() { newReferralCode = old }
}

// SetSparseSearch sets the most matches for which a SQLite search reads the
// trigram index (see sparseSearch); negative: never.
func SetSparseSearch(s *Store, n int) { s.sparseSearch = n }

// IndexPendingAffiliates runs the SQLite search indexer until nothing waits
// (nothing on PostgreSQL).
func (s *Store) IndexPendingAffiliates(ctx context.Context) error {
	for !s.Dialect.IsPostgres() {
		n, err := s.indexPendingAffiliates(ctx)
		if err != nil || n == 0 {
			return err
		}
	}
	return nil
}

// StopSearchIndexer stops the background indexer, so that a test decides when
// affiliates are indexed.
func (s *Store) StopSearchIndexer() {
	if s.search != nil {
		s.search.close()
	}
}
