package store

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// SQLite checkpoints run here, not in the writer's commits.
//
// By default SQLite checkpoints inside the COMMIT that takes the WAL past
// 1,000 pages: that commit copies the pages into the database file and
// fsyncs both files while every queued writer (the click and token batches,
// whose callers are waiting for their answer) waits for it. The writer
// connection therefore runs with wal_autocheckpoint=0, and a checkpointer of
// its own, on its own connection, runs PASSIVE checkpoints in the background:
// they never block the writer or the readers, and the WAL is reused from its
// start once a checkpoint has caught up.

// checkpointEvery is how often the checkpointer looks at the WAL. At the
// redirect's peak (about 20,000 clicks/s, a few dirty pages per batch) the
// WAL grows by a few MB between two checkpoints.
const checkpointEvery = 250 * time.Millisecond

type checkpointer struct {
	db     *sql.DB
	stop   chan struct{}
	done   sync.WaitGroup
	closed sync.Once
	err    error
}

func startCheckpointer(db *sql.DB) *checkpointer {
	c := &checkpointer{db: db, stop: make(chan struct{})}
	c.done.Add(1)
	go c.run()
	return c
}

func (c *checkpointer) run() {
	defer c.done.Done()
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.checkpoint("PASSIVE")
		}
	}
}

func (c *checkpointer) checkpoint(mode string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Errors (SQLITE_BUSY while another process checkpoints, a closed file)
	// are retried at the next tick; nothing depends on one checkpoint.
	var busy, logPages, done int
	_ = c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &logPages, &done)
}

// close stops the loop and checkpoints what is left, so a closed database
// file is complete without its WAL. Closing twice is safe, as Store.Close is.
func (c *checkpointer) close() error {
	c.closed.Do(func() {
		close(c.stop)
		c.done.Wait()
		c.checkpoint("TRUNCATE")
		c.err = c.db.Close()
	})
	return c.err
}
