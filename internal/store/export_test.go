package store

// CachedRollupZone returns the rollup time zone s holds for a workspace (see
// Store.rollupZones), so tests can tell which path a click batch takes.
func CachedRollupZone(s *Store, ws int64) (string, bool) {
	tz, ok := s.rollupZones.Load(ws)
	if !ok {
		return "", false
	}
	return tz.(string), true
}
