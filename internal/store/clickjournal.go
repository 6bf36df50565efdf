package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// The click journal: how SQLite acknowledges a click batch.
//
// A redirect answers only once its click is durable. A SQLite transaction per
// batch made that the serial cost of every click: five B-trees (the table
// and four indexes), the link's count, and a commit writing each changed
// page to the WAL with two system calls per page, about 24 µs of the one
// writer per click at the redirect's batch of 14. Instead the batch is
// appended to a journal file next to the database, as one write(2) of a
// checksummed record, and acknowledged; the journal is as durable as a WAL
// commit under synchronous=NORMAL (the store's setting): it survives the
// process crashing, not the machine losing power before the kernel writes
// it back. An ingester then moves the journaled clicks into the database in
// transactions of up to clickIngestChunk clicks (the clicks, links.click_count
// and the journal cursor in one transaction), every clickRollupEvery with the
// rollup tailer, so a commit is shared by hundreds of clicks.
//
// Exactly once: every record carries a sequence number, and
// rollup_cursors('click_journal') holds the last one ingested, moved in the
// ingesting transaction. On open the journal is read back, a torn tail (the
// write the process died in, never acknowledged) is cut off, and the records
// after the cursor are ingested before the store is used; after that the file
// is emptied. The journal is truncated whenever it is fully ingested and has
// grown past clickJournalTrimAt.
//
// Reads see every acknowledged click: each read of clicks or click counts
// (analytics, links, attribution, the storefront's click lookup) first
// ingests what is pending (syncClicks), which costs an atomic load when
// nothing is. One process owns the journal, under an exclusive lock on the
// file; another process opening the same database (a CLI command, a second
// server) writes its clicks straight into the database as before.
type clickJournal struct {
	s *Store
	f *os.File
	// id names a PostgreSQL journal: its header and its click_journals row
	// (clickjournalpg.go); empty on SQLite.
	id string
	// base is the header's length: the journal is emptied down to it.
	base int64

	mu     sync.Mutex // appends, pending and the file's size
	seq    uint64     // the last record written
	size   int64      // bytes in the file
	trimAt int64      // clickJournalTrimAt; tests lower it
	// maxWaiting is clickJournalMaxWaiting; tests lower it.
	maxWaiting int64
	pending    []journalRecord
	buf        []byte
	// waiting counts the clicks appended and not yet ingested: the read
	// paths' fast check.
	waiting atomic.Int64

	ingest sync.Mutex // one ingestion at a time
}

// journalRecord is one acknowledged batch.
type journalRecord struct {
	seq    uint64
	clicks []heldsway.Click
}

const (
	clickJournalSuffix = "-clicks"
	// clickJournalTrimAt is the size past which a fully ingested journal is
	// emptied (checked after each ingestion).
	clickJournalTrimAt = 16 << 20
	// clickJournalMaxWaiting bounds the clicks acknowledged and not yet in
	// the database (kept in memory as well as in the file, about 0.5 KB
	// each): past it, while the database stays away, RecordClicks fails and
	// the redirect answers 503, as it would without a journal.
	clickJournalMaxWaiting = 250_000
	// clickIngestChunk bounds one ingesting transaction, so a backlog (after
	// a restart, say) never holds the writer for long.
	clickIngestChunk = 2000
	// journalHeader is a record's length and CRC-32C of its payload.
	journalHeader = 8
	// journalMaxRecord bounds a record read back: anything larger is damage.
	journalMaxRecord = 64 << 20
	journalCursor    = "click_journal"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errJournalFull: the database has not taken the journal's clicks for so
// long that clickJournalMaxWaiting of them wait.
var errJournalFull = errors.New("click journal: too many clicks waiting for the database")

// openClickJournal opens (creating it) the journal of the SQLite database at
// path, ingests what a previous process left in it, and sets s.journal. If
// another process holds the journal, s.journal stays nil and clicks are
// written straight into the database.
func (s *Store) openClickJournal(ctx context.Context, path string) error {
	f, err := os.OpenFile(path+clickJournalSuffix, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("click journal: %w", err)
	}
	if locked, err := lockFile(f); err != nil || !locked {
		f.Close()
		return err
	}
	j := &clickJournal{s: s, f: f, trimAt: clickJournalTrimAt, maxWaiting: clickJournalMaxWaiting}
	if err := j.recover(ctx); err != nil {
		f.Close()
		return fmt.Errorf("click journal: %w", err)
	}
	s.journal = j
	return nil
}

// recover reads the journal back, keeps its whole records after the cursor
// and ingests them, then empties the file.
func (j *clickJournal) recover(ctx context.Context) error {
	cursor, err := j.cursor(ctx)
	if errors.Is(err, sql.ErrNoRows) && j.id == "" {
		// The database has never had a journal: whatever the file holds
		// belongs to another database that was at this path.
		if _, err := j.s.w.ExecContext(ctx, `INSERT INTO rollup_cursors (name, last_id) VALUES ($1, 0)`, journalCursor); err != nil {
			return err
		}
		return j.f.Truncate(0)
	} else if err != nil {
		return err
	}
	data, err := io.ReadAll(io.NewSectionReader(j.f, j.base, 1<<62))
	if err != nil {
		return err
	}
	j.seq = cursor
	for off := 0; ; {
		rec, n, ok := decodeJournalRecord(data[off:])
		if !ok {
			break // the end, or a torn write that was never acknowledged
		}
		off += n
		if rec.seq > j.seq {
			j.seq = rec.seq
		}
		if rec.seq > cursor {
			j.pending = append(j.pending, rec)
			j.waiting.Add(int64(len(rec.clicks)))
		}
	}
	if err := j.drain(ctx); err != nil {
		return err
	}
	j.size = j.base
	return j.f.Truncate(j.base)
}

// cursor reads the last record ingested: rollup_cursors('click_journal') on
// SQLite, the journal's click_journals row on PostgreSQL.
func (j *clickJournal) cursor(ctx context.Context) (uint64, error) {
	var last int64
	var err error
	if j.id != "" {
		err = j.s.w.QueryRowContext(ctx, `SELECT last_seq FROM click_journals WHERE id = $1`, j.id).Scan(&last)
	} else {
		err = j.s.w.QueryRowContext(ctx, `SELECT last_id FROM rollup_cursors WHERE name = $1`, journalCursor).Scan(&last)
	}
	return uint64(last), err
}

// append writes clicks to the journal as one record; once it returns nil
// they are acknowledged.
func (j *clickJournal) append(clicks []heldsway.Click) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.waiting.Load()+int64(len(clicks)) > j.maxWaiting {
		return &heldsway.Error{Code: heldsway.EUNAVAILABLE, Message: "The service is temporarily unavailable. Please retry.", Err: errJournalFull}
	}
	seq := j.seq + 1
	j.buf = encodeJournalRecord(j.buf[:0], seq, clicks)
	if n, err := j.f.Write(j.buf); err != nil {
		if n > 0 { // no torn record may stay ahead of the next one
			_ = j.f.Truncate(j.size)
		}
		return unavailable(fmt.Errorf("click journal: %w", err))
	}
	j.seq = seq
	j.size += int64(len(j.buf))
	// The caller may reuse its slice: the record keeps copies.
	j.pending = append(j.pending, journalRecord{seq: seq, clicks: slices.Clone(clicks)})
	j.waiting.Add(int64(len(clicks)))
	return nil
}

// drain ingests every record acknowledged before it was called (not those
// appended meanwhile, so a steady stream of clicks cannot hold a reader).
func (j *clickJournal) drain(ctx context.Context) error {
	if j.waiting.Load() == 0 {
		return nil
	}
	j.ingest.Lock()
	defer j.ingest.Unlock()
	j.mu.Lock()
	upTo := j.seq
	j.mu.Unlock()
	for {
		j.mu.Lock()
		var take []journalRecord
		n := 0
		for _, r := range j.pending {
			if r.seq > upTo || len(take) > 0 && n+len(r.clicks) > clickIngestChunk {
				break
			}
			take = append(take, r)
			n += len(r.clicks)
		}
		j.mu.Unlock()
		if len(take) == 0 {
			return nil
		}
		if err := j.store(ctx, take, false); err != nil {
			// If the commit went through after all, the cursor says so.
			cur, cerr := j.cursor(ctx)
			switch {
			case cerr == nil && cur >= take[len(take)-1].seq:
			case isConstraintViolation(err):
				// A click the database refuses (a duplicate click id, say)
				// must not hold every later one back: the records go in
				// without the refused rows, which are counted as dropped.
				if err := j.store(ctx, take, true); err != nil {
					return err
				}
			default:
				return err // transient (busy, I/O): left pending, tried again
			}
		}
		j.mu.Lock()
		j.pending = slices.Delete(j.pending, 0, len(take))
		if len(j.pending) == 0 {
			j.pending = nil // let the clicks be collected
			if j.size > j.trimAt {
				// Everything written is in the database: the records are
				// no longer needed (O_APPEND writes continue at the new end).
				if err := j.f.Truncate(j.base); err == nil {
					j.size = j.base
				}
			}
		}
		j.mu.Unlock()
		j.waiting.Add(-int64(n))
	}
}

// store puts records in the database with the cursor moved past them,
// in one transaction.
func (j *clickJournal) store(ctx context.Context, recs []journalRecord, salvage bool) error {
	if j.id != "" {
		return j.s.ingestClicksPG(ctx, j.id, recs, salvage)
	}
	return j.s.ingestClicks(ctx, recs, salvage)
}

// close ingests what is pending and releases the journal.
func (j *clickJournal) close(ctx context.Context) error {
	err := j.drain(ctx)
	if err == nil {
		err = j.f.Truncate(j.base)
	}
	return errors.Join(err, j.f.Close())
}

// syncClicks puts every acknowledged click in the database (SQLite's
// journal; a no-op on PostgreSQL and when nothing is pending). Every read of
// clicks or click counts calls it first.
func (s *Store) syncClicks(ctx context.Context) error {
	if s.journal == nil {
		return nil
	}
	return s.journal.drain(ctx)
}

// RecordClicks acknowledges a batch of clicks whose click ids the caller
// has just generated (random, so never already stored): the redirect's
// writer. On SQLite, when this process holds the click journal, the batch is
// durable once appended to it and reaches the database within
// clickRollupEvery; every read of clicks sees it before that. Otherwise, and
// on PostgreSQL, it is InsertClicks.
func (s *Store) RecordClicks(ctx context.Context, clicks []heldsway.Click) error {
	if len(clicks) == 0 {
		return nil
	}
	// A request's Idempotency-Key is claimed in the clicks' own transaction,
	// so such a batch skips the journal.
	if s.journal != nil && heldsway.IdempotencyClaimFrom(ctx) == nil {
		return s.journal.append(clicks)
	}
	return s.InsertClicks(ctx, clicks)
}

// ClickJournalStats describes SQLite's click journal (all zero without one).
type ClickJournalStats struct {
	Pending int64 // clicks acknowledged and not yet in the database
	// Dropped counts the journaled clicks the database refused at ingestion
	// (see drain): zero unless a caller of RecordClicks broke its contract.
	Dropped int64
}

// ClickJournalStats returns the click journal's figures.
func (s *Store) ClickJournalStats() ClickJournalStats {
	out := ClickJournalStats{Dropped: s.journalDropped.Load()}
	if s.journal != nil {
		out.Pending = s.journal.waiting.Load()
	}
	return out
}

// ingestClicks inserts the records' clicks, adds them to their links'
// click_count and to the rollups, and moves the journal cursor past them, in
// one transaction.
// With salvage, rows the database refuses are skipped (INSERT OR IGNORE, one
// row at a time) and counted in journalDropped.
func (s *Store) ingestClicks(ctx context.Context, recs []journalRecord, salvage bool) error {
	clicks := clicksOf(recs)
	stmts, err := s.preparedSet(ctx, "clicks", clickQueries)
	if err != nil {
		return err
	}
	var dropped int64
	err = s.tx(ctx, func(tx *sql.Tx) error {
		// The clicks are counted in the rollups here, with the tailer's
		// backlog (clicks InsertClicks wrote) first, and the tailer's cursor
		// moves past them: it never has to read them back.
		if err := s.catchUpClicks(ctx, tx); err != nil {
			return err
		}
		stored := clicks
		if !salvage {
			if err := insertClickRows(ctx, tx, stmts, clicks); err != nil {
				return err
			}
		} else {
			stored, dropped = nil, 0
			for i := range clicks {
				c := &clicks[i]
				res, err := tx.ExecContext(ctx, insertClickOrIgnore, clickArgs(nil, c)...)
				if err != nil {
					return err
				}
				if n, _ := res.RowsAffected(); n == 1 {
					stored = append(stored, *c)
				} else {
					dropped++
				}
			}
		}
		if err := countLinkClicksSQLite(ctx, tx, stmts, stored); err != nil {
			return err
		}
		r := s.newRollup(ctx, tx, nil)
		for i := range stored {
			if err := r.click(&stored[i]); err != nil {
				return err
			}
		}
		if err := r.flush(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE rollup_cursors SET last_id = (SELECT COALESCE(MAX(id), 0) FROM clicks)
			WHERE name = 'clicks'`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE rollup_cursors SET last_id = $1 WHERE name = $2`,
			int64(recs[len(recs)-1].seq), journalCursor)
		return err
	})
	if err == nil {
		s.journalDropped.Add(dropped)
	}
	return err
}

// clicksOf returns the records' clicks, in order.
func clicksOf(recs []journalRecord) []heldsway.Click {
	if len(recs) == 1 {
		return recs[0].clicks
	}
	var clicks []heldsway.Click
	for _, r := range recs {
		clicks = append(clicks, r.clicks...)
	}
	return clicks
}

// insertClickOrIgnore is the one-row click INSERT that skips a row SQLite
// refuses (ingestClicks' salvage).
var insertClickOrIgnore = strings.Replace(insertClicksSQL[1], "INSERT", "INSERT OR IGNORE", 1)

// isConstraintViolation reports whether the database refused a statement for
// a constraint (unique, not null, check, or a SQLite trigger's RAISE(ABORT)).
func isConstraintViolation(err error) bool {
	var se *sqlite.Error
	var pe *pgconn.PgError
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT ||
		errors.As(err, &pe) && strings.HasPrefix(pe.Code, "23") // class 23: integrity constraint violation
}

// countLinkClicksSQLite adds clicks to their links' click_count, one UPDATE
// per link.
func countLinkClicksSQLite(ctx context.Context, tx *sql.Tx, stmts map[string]*sql.Stmt, clicks []heldsway.Click) error {
	upd := tx.StmtContext(ctx, stmts[countClicksSQL])
	defer upd.Close()
	for _, c := range linkCounts(clicks) {
		if _, err := upd.ExecContext(ctx, c.n, c.ws, c.id); err != nil {
			return err
		}
	}
	return nil
}

// linkCounts counts clicks per link, sorted by workspace and link: one lock
// order for every batch on every node, so concurrent batches that touch the
// same links cannot deadlock.
func linkCounts(clicks []heldsway.Click) []linkCount {
	type key struct{ ws, id int64 }
	counts := map[key]int64{}
	for i := range clicks {
		counts[key{clicks[i].WorkspaceID, clicks[i].LinkID}]++
	}
	out := make([]linkCount, 0, len(counts))
	for k, n := range counts {
		out = append(out, linkCount{k.ws, k.id, n})
	}
	slices.SortFunc(out, func(a, b linkCount) int { return cmp.Or(cmp.Compare(a.ws, b.ws), cmp.Compare(a.id, b.id)) })
	return out
}

// A record is: payload length (uint32 LE), CRC-32C of the payload (uint32
// LE), then the payload: seq, the click count, and per click its ids and
// time as varints and its texts as length-prefixed bytes (empty: NULL, as
// insertClickRows stores them).
func encodeJournalRecord(b []byte, seq uint64, clicks []heldsway.Click) []byte {
	b = append(b, make([]byte, journalHeader)...)
	b = binary.AppendUvarint(b, seq)
	b = binary.AppendUvarint(b, uint64(len(clicks)))
	for i := range clicks {
		c := &clicks[i]
		b = binary.AppendVarint(b, c.WorkspaceID)
		b = binary.AppendVarint(b, c.LinkID)
		b = binary.AppendVarint(b, c.AffiliateID)
		b = binary.AppendVarint(b, c.ProgramID)
		b = binary.AppendVarint(b, ts(c.CreatedAt))
		for _, s := range [...]string{c.ClickID, c.VisitorID, c.UserAgent, c.Referrer, c.LandingQuery} {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
		b = binary.AppendUvarint(b, uint64(len(c.IPHash)))
		b = append(b, c.IPHash...)
	}
	payload := b[journalHeader:]
	binary.LittleEndian.PutUint32(b[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[4:8], crc32.Checksum(payload, castagnoli))
	return b
}

// decodeJournalRecord reads the record at the start of data; ok is false at
// the end of the data or at a damaged or incomplete record.
func decodeJournalRecord(data []byte) (rec journalRecord, n int, ok bool) {
	if len(data) < journalHeader {
		return rec, 0, false
	}
	size := binary.LittleEndian.Uint32(data[0:4])
	if size > journalMaxRecord || int(size) > len(data)-journalHeader {
		return rec, 0, false
	}
	p := data[journalHeader : journalHeader+int(size)]
	if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(data[4:8]) {
		return rec, 0, false
	}
	d := journalDecoder{p: p}
	rec.seq = d.uvarint()
	count := d.uvarint()
	if d.bad || count > uint64(len(p)) {
		return rec, 0, false
	}
	rec.clicks = make([]heldsway.Click, count)
	for i := range rec.clicks {
		c := &rec.clicks[i]
		c.WorkspaceID, c.LinkID, c.AffiliateID, c.ProgramID = d.varint(), d.varint(), d.varint(), d.varint()
		c.CreatedAt = fromTS(d.varint())
		c.ClickID, c.VisitorID, c.UserAgent, c.Referrer, c.LandingQuery = d.str(), d.str(), d.str(), d.str(), d.str()
		if ip := d.bytes(); len(ip) > 0 {
			c.IPHash = slices.Clone(ip)
		}
	}
	if d.bad || len(d.p) != 0 {
		return rec, 0, false
	}
	return rec, journalHeader + int(size), true
}

type journalDecoder struct {
	p   []byte
	bad bool
}

// skip consumes n bytes of a varint read (n <= 0: damaged) and reports
// whether it could.
func (d *journalDecoder) skip(n int) bool {
	if n <= 0 {
		d.bad, d.p = true, nil
		return false
	}
	d.p = d.p[n:]
	return true
}

func (d *journalDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.p)
	if !d.skip(n) {
		return 0
	}
	return v
}

func (d *journalDecoder) varint() int64 {
	v, n := binary.Varint(d.p)
	if !d.skip(n) {
		return 0
	}
	return v
}

func (d *journalDecoder) bytes() []byte {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.p)) {
		d.bad, d.p = true, nil
		return nil
	}
	b := d.p[:n]
	d.p = d.p[n:]
	return b
}

func (d *journalDecoder) str() string { return string(d.bytes()) }
