package store

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// The SQLite search indexer.
//
// New affiliates wait in affiliates_search_pending (migration 00040) rather
// than going into the trigram index in the transaction that creates them: FTS5
// writes and merges a segment per transaction, which cost a third of POST
// /v1/affiliates. The indexer moves them into the index in batches, one
// transaction (one segment) per batch, off the request path; searches read the
// few rows still waiting by scanning them, so nothing is missing meanwhile.

const (
	// searchIndexEvery is how often the indexer looks for waiting affiliates.
	searchIndexEvery = 500 * time.Millisecond
	// searchIndexBatch bounds a batch, so one transaction holds the writer
	// for a few milliseconds at most.
	searchIndexBatch = 1000
)

type searchIndexer struct {
	stop   chan struct{}
	done   sync.WaitGroup
	closed sync.Once
}

// startSearchIndexer runs the indexer until close (SQLite only).
func (s *Store) startSearchIndexer() {
	ix := &searchIndexer{stop: make(chan struct{})}
	ix.done.Add(1)
	go func() {
		defer ix.done.Done()
		t := time.NewTicker(searchIndexEvery)
		defer t.Stop()
		for {
			select {
			case <-ix.stop:
				return
			case <-t.C:
			}
			// Errors (the database briefly unavailable) are retried at the
			// next tick: the waiting rows are searched by scanning meanwhile.
			for {
				n, err := s.indexPendingAffiliates(context.Background())
				if err != nil || n < searchIndexBatch {
					break
				}
			}
		}
	}()
	s.search = ix
}

func (ix *searchIndexer) close() {
	ix.closed.Do(func() {
		close(ix.stop)
		ix.done.Wait()
	})
}

// indexPendingAffiliates moves up to searchIndexBatch waiting affiliates into
// the trigram index and returns how many it moved.
func (s *Store) indexPendingAffiliates(ctx context.Context) (int, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO affiliates_search (rowid, name, email, referral_code)
			SELECT a.id, a.name, a.email, a.referral_code FROM affiliates a
			WHERE a.id IN (SELECT affiliate_id FROM affiliates_search_pending ORDER BY affiliate_id LIMIT $1)`, searchIndexBatch)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM affiliates_search_pending WHERE affiliate_id IN
			(SELECT affiliate_id FROM affiliates_search_pending ORDER BY affiliate_id LIMIT $1)`, searchIndexBatch)
		return err
	})
	return int(n), err
}
