package store

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
