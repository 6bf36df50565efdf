package store

// SetSlugSource swaps the slug generator and returns a function that restores
// it. Tests using it must not run in parallel with other tests that create links.
func SetSlugSource(fn func() string) (restore func()) {
	old := newSlug
	newSlug = fn
	return func() { newSlug = old }
}
