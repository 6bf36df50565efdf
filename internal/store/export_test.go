package store

import "github.com/heldsway/heldsway/internal/heldsway"

// CachedRollupZone returns the rollup time zone s holds for a workspace (see
// Store.rollupZones), so tests can tell which path a click batch takes.
func CachedRollupZone(s *Store, ws int64) (string, bool) {
	tz, ok := s.rollupZones.Load(ws)
	if !ok {
		return "", false
	}
	return tz.(string), true
}

// EncodeJournalRecord is a click journal record as RecordClicks writes it.
func EncodeJournalRecord(seq uint64, clicks []heldsway.Click) []byte {
	return encodeJournalRecord(nil, seq, clicks)
}

// SetClickJournalTrimAt changes the size past which s's ingested journal is
// emptied.
func SetClickJournalTrimAt(s *Store, n int64) {
	s.journal.mu.Lock()
	s.journal.trimAt = n
	s.journal.mu.Unlock()
}

// HasClickJournal reports whether s acknowledges clicks through a journal.
func HasClickJournal(s *Store) bool { return s.journal != nil }

// SetClickJournalMaxWaiting changes how many clicks s's journal holds for
// the database at most.
func SetClickJournalMaxWaiting(s *Store, n int64) {
	s.journal.mu.Lock()
	s.journal.maxWaiting = n
	s.journal.mu.Unlock()
}

// SetWALRestartPages changes the WAL size past which s's checkpointer
// restarts the WAL (SQLite).
func SetWALRestartPages(s *Store, n int64) { s.ckpt.restartAt.Store(n) }
