package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
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
// they never block the writer or the readers.
//
// A PASSIVE checkpoint alone hardly ever lets the WAL start over under a
// steady stream of writes: the writer restarts the WAL only if, when it
// begins a transaction, every frame has been copied back and no reader still
// reads from the WAL, and with commits every few milliseconds and readers
// overlapping that moment rarely comes. The WAL grew to 2.3 GB over 40 s of
// the conversion benchmark, on disk, and a lookup of a page not in it
// searches the WAL index's every 4,096-frame segment. So once the WAL holds
// more than walRestartPages, the checkpointer runs a RESTART checkpoint (see
// restart): it holds writers off while it copies what the PASSIVE ones left
// (little) and syncs, and waits at most walRestartWait for readers to leave
// the WAL, after which the next write starts it from the beginning.
// journal_size_limit (store.go) then cuts the file back.

// checkpointEvery is how often the checkpointer looks at the WAL. At the
// redirect's peak (about 20,000 clicks/s, a few dirty pages per batch) the
// WAL grows by a few MB between two checkpoints.
const checkpointEvery = 250 * time.Millisecond

// walRestartPages is the WAL size, in pages, past which the checkpointer
// restarts the WAL (256 MiB: at the conversion writer's peak, one restart
// every few seconds, and a page lookup searches at most 16 index segments).
const walRestartPages = 65536

// The writer rewrites the WAL from its start after each restart, and a
// frame (a page and its 24-byte header) covers file blocks in part: where
// such a block's page is no longer in the page cache, the writer's pwrite
// reads it from disk first, inside the commit. Page cache not touched for a
// few seconds is reclaimed (on the benchmark machine, with 22 GB free, the
// host takes it back; anywhere, under memory pressure), and a restart
// rewrites blocks last written seconds before: perf (block:block_rq_issue)
// showed ~700 such reads in 15 s of the conversion benchmark, each in a
// writer's pwrite (ext4_block_write_begin → ext4_read_bh_lock), stalling
// commits 10–15 ms at a time. So the checkpointer reads the WAL ahead of the
// writer (warmWAL), and the writer finds its blocks cached. posix_fadvise
// WILLNEED did not do it: on that machine the pages stayed out; a read
// brings them in, and from the cache costs a copy (~0.2 ms per MB).

// walWarm is how far ahead of the writer the WAL is read: at the conversion
// writer's peak (~45 MB/s of frames) about three quarters of a second, three
// ticks.
const walWarm = 32 << 20

// walRestartWait bounds how long a RESTART checkpoint waits for readers (and
// so how long it can hold writers off): a long read makes it give up, and the
// next tick tries again.
const walRestartWait = 20 * time.Millisecond

type checkpointer struct {
	db *sql.DB // the checkpointer's own connection
	w  *sql.DB // the writer's (restart)
	// dir holds the database; restart flushes its file system first.
	dir string
	// wal is the WAL's path, frameSize a frame's size in it, and warmed the
	// offset up to which warmWAL has read it since the writer last began it
	// again.
	wal       string
	frameSize int64
	warmed    int64
	lastPos   int64
	buf       []byte
	// restartAt is walRestartPages; tests lower it.
	restartAt atomic.Int64
	stop      chan struct{}
	done      sync.WaitGroup
	closed    sync.Once
	err       error
}

func startCheckpointer(db, w *sql.DB, path string) *checkpointer {
	c := &checkpointer{db: db, w: w, dir: filepath.Dir(path), wal: path + "-wal", stop: make(chan struct{})}
	c.restartAt.Store(walRestartPages)
	c.done.Add(1)
	go c.run()
	return c
}

func (c *checkpointer) run() {
	defer c.done.Done()
	c.optimize("=0x10002")
	pageSize := int64(4096)
	_ = c.db.QueryRow(`PRAGMA page_size`).Scan(&pageSize)
	c.frameSize = walFrameHeader + pageSize
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	opt := time.NewTicker(optimizeEvery)
	defer opt.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.tick()
		case <-opt.C:
			c.optimize("")
		}
	}
}

// tick checkpoints, then restarts the WAL if it is past its limit, or reads
// it ahead of the writer.
func (c *checkpointer) tick() {
	if frames := c.checkpoint("PASSIVE"); int64(frames) > c.restartAt.Load() {
		c.restart()
	} else {
		c.warmWAL(walHeader + int64(frames)*c.frameSize)
	}
}

// Planner statistics are kept here too. The benchmarks analyse their
// databases after seeding them, but nothing analysed a user's: its queries ran
// on the planner's guesses (sqlite_stat1 missing), not on the plans measured.
// SQLite's advice for a long-lived process: PRAGMA optimize=0x10002 when it
// opens the database (0x10000: every table, not only those this connection
// used), then PRAGMA optimize now and then; each analyses only the tables
// whose size changed enough since their last analysis, and analysis_limit
// makes it read a sample of each index, so a run takes milliseconds. It runs
// on the writer's connection (ANALYZE writes sqlite_stat1), between its
// transactions.

// optimizeEvery is how often the statistics are brought up to date.
const optimizeEvery = time.Hour

// analysisLimit is the rows of each index ANALYZE reads.
const analysisLimit = 1000

func (c *checkpointer) optimize(mask string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := c.w.Conn(ctx)
	if err != nil {
		return // closing, or the writer busy for a minute: the next run catches up
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA analysis_limit = %d`, analysisLimit)); err != nil {
		return
	}
	_, _ = conn.ExecContext(ctx, `PRAGMA optimize`+mask)
}

// The WAL file's layout (sqlite.org/fileformat.html, "WAL File Format"): a
// header, then frames of a header and a page each.
const (
	walHeader      = 32
	walFrameHeader = 24
)

// checkpoint runs a checkpoint and returns the WAL's size in pages (0 if it
// failed).
func (c *checkpointer) checkpoint(mode string) (logPages int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Errors (SQLITE_BUSY while another process checkpoints, a closed file)
	// are retried at the next tick; nothing depends on one checkpoint.
	var busy, done int
	_ = c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &logPages, &done)
	return logPages
}

// warmWAL reads the WAL from pos, the writer's position, to pos+walWarm,
// skipping what it read at the previous ticks, so that the writer finds the
// blocks it rewrites in the page cache. Errors and the file's end stop it:
// nothing depends on it, and past the end the writer needs no read.
func (c *checkpointer) warmWAL(pos int64) {
	if pos < c.lastPos || c.warmed < pos { // the writer began the WAL again, or went past
		c.warmed = pos
	}
	c.lastPos = pos
	end := pos + walWarm
	if c.warmed >= end {
		return
	}
	f, err := os.Open(c.wal) // SQLite takes no locks on the WAL: closing this drops none
	if err != nil {
		return
	}
	defer f.Close()
	if c.buf == nil {
		c.buf = make([]byte, 1<<20)
	}
	for c.warmed < end {
		n, err := f.ReadAt(c.buf[:min(int64(len(c.buf)), end-c.warmed)], c.warmed)
		c.warmed += int64(n)
		if err != nil {
			return
		}
	}
}

// restart has the WAL start over. It first runs a PASSIVE checkpoint and
// flushes the file system (syncFS) without holding anyone off, then takes the
// writer's connection (the pool holds one: every writer waits for it there
// and gets it the moment the restart ends) and runs the RESTART checkpoint on
// it, with a busy timeout of walRestartWait for the readers. Then the
// blocking part copies and syncs only what was written since the PASSIVE one.
// Run cold, as it was, it took 22–55 ms under the conversion benchmark (most
// of it syncing what the PASSIVE checkpoints had copied since the previous
// restart), while the writers, blocked inside SQLite, slept in their busy
// handler's growing steps; now 4–11 ms. A busy answer is fine: the next tick
// tries again.
func (c *checkpointer) restart() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.warmWAL(0) // where the writer goes on after it
	// Twice: what the writer wrote during the first round (tens of ms of
	// syncing) is copied and synced in the second, so the RESTART's own
	// copy and fsyncs, which hold the writer, and the first commit after it
	// (it fsyncs the WAL), find little left: 5–13 ms held instead of 12–28,
	// 3–4 ms for that commit instead of 10–15 (timed under the conversion
	// benchmark).
	for range 2 {
		c.checkpoint("PASSIVE")
		_ = syncFS(c.dir) // an optimisation: the RESTART syncs what it needs itself
	}
	conn, err := c.w.Conn(ctx)
	if err != nil {
		return
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, walRestartWait.Milliseconds())); err != nil {
		return
	}
	var busy, logPages, done int
	_ = conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(RESTART)`).Scan(&busy, &logPages, &done)
	if _, err := conn.ExecContext(context.Background(), `PRAGMA busy_timeout = 10000`); err != nil {
		// A writer must not inherit the short timeout: the pool drops this
		// connection and opens a new one with the DSN's.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
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
