package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// The click journal on PostgreSQL.
//
// A batch committed in PostgreSQL before its 302 made the redirect wait for
// a round trip, five B-trees, the rollup and count upserts and a WAL flush
// per batch of ~24 clicks, with PostgreSQL's backend and the server sharing
// the CPU: about a third of a bare handler's throughput on 2 cores. As on
// SQLite (clickjournal.go), a server may instead acknowledge a batch once it
// is appended to a journal file on its own disk, and move the journaled
// clicks into the database every clickRollupEvery, a few hundred per
// transaction. The guarantee is the SQLite journal's: an acknowledged click
// survives the server process dying and the database being unreachable (the
// redirect keeps answering, the journal keeps the clicks until it is back),
// not the loss of the server's disk (or power) before the clicks are moved,
// a window of clickRollupEvery while the database is up.
//
// Several servers share a database, each with its own journal: a journal is
// named by a random id written in its header when it is created, and its
// click_journals row holds the last record stored, moved in the storing
// transaction (exactly once). A journal whose id the database does not know
// belongs to another database: it is set aside, not read.
//
// Every read of clicks or click counts on this server first stores what its
// journal holds (syncClicks); another server sees a click up to
// clickRollupEvery after its 302.

// journalPGMagic starts a PostgreSQL journal's header, followed by its id
// (32 hex digits) and a newline.
const journalPGMagic = "heldsway click journal 1 "

const journalPGHeader = len(journalPGMagic) + 32 + 1

// ErrClickJournalBusy is returned by OpenClickJournal when another process
// holds the journal.
var ErrClickJournalBusy = errors.New("store: the click journal is held by another process")

// OpenClickJournal makes this store acknowledge RecordClicks' batches through
// the journal file at path (PostgreSQL; SQLite's journal is opened with the
// database). It creates the file, or stores what a previous process left in
// it. A journal of another database is renamed aside (strayed names the new
// path) and a new one started. ErrClickJournalBusy if another process holds
// it: clicks are then committed to the database directly.
func (s *Store) OpenClickJournal(ctx context.Context, path string) (strayed string, err error) {
	if !s.Dialect.IsPostgres() {
		return "", errors.New("store: SQLite keeps its click journal next to the database")
	}
	if s.journal != nil {
		return "", errors.New("store: a click journal is already open")
	}
	for {
		j, stray, err := s.openJournalPG(ctx, path)
		if err != nil {
			return strayed, err
		}
		if j == nil {
			// Set aside: path is free for a new journal.
			strayed = stray
			continue
		}
		s.journal = j
		s.startClickTailer()
		return strayed, nil
	}
}

// openJournalPG opens the journal at path and recovers it; or, if it belongs
// to another database (or its header is damaged), renames it aside and
// returns the new name with a nil journal.
func (s *Store) openJournalPG(ctx context.Context, path string) (*clickJournal, string, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("click journal: %w", err)
	}
	locked, err := lockFile(f)
	if err != nil || !locked {
		f.Close()
		if err == nil {
			err = ErrClickJournalBusy
		}
		return nil, "", err
	}
	j := &clickJournal{s: s, f: f, trimAt: clickJournalTrimAt, maxWaiting: clickJournalMaxWaiting, base: int64(journalPGHeader)}
	head := make([]byte, journalPGHeader)
	n, err := io.ReadFull(io.NewSectionReader(f, 0, int64(journalPGHeader)), head)
	switch {
	case n == 0 && errors.Is(err, io.EOF):
		if err := j.create(ctx); err != nil {
			f.Close()
			return nil, "", fmt.Errorf("click journal: %w", err)
		}
	case err == nil && bytes.HasPrefix(head, []byte(journalPGMagic)) && head[journalPGHeader-1] == '\n' && isHex(head[len(journalPGMagic):journalPGHeader-1]):
		j.id = string(head[len(journalPGMagic) : journalPGHeader-1])
		if _, err := j.cursor(ctx); errors.Is(err, sql.ErrNoRows) {
			return j.setAside(path)
		} else if err != nil {
			f.Close()
			return nil, "", err
		}
	default:
		return j.setAside(path)
	}
	if err := j.recover(ctx); err != nil {
		f.Close()
		return nil, "", fmt.Errorf("click journal: %w", err)
	}
	return j, "", nil
}

// create gives an empty journal file its id: first the row, then the header,
// so a header is never written for a row that does not exist.
func (j *clickJournal) create(ctx context.Context) error {
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return err
	}
	id := hex.EncodeToString(raw[:])
	if _, err := j.s.w.ExecContext(ctx, `INSERT INTO click_journals (id, last_seq, created_at) VALUES ($1, 0, $2)`,
		id, ts(j.s.Now())); err != nil {
		return unavailable(err)
	}
	if _, err := j.f.Write([]byte(journalPGMagic + id + "\n")); err != nil {
		return err
	}
	j.id = id
	return nil
}

// setAside renames the journal file at path, which this database cannot
// read, to path.stray-<time>, for an operator to look at.
func (j *clickJournal) setAside(path string) (*clickJournal, string, error) {
	defer j.f.Close()
	to := path + ".stray-" + time.Now().UTC().Format("20060102T150405.000000000")
	if err := os.Rename(path, to); err != nil {
		return nil, "", fmt.Errorf("click journal: %s is not this database's and cannot be set aside: %w", path, err)
	}
	return nil, to, nil
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// ingestClicksPG stores the records' clicks with their rollups and link
// counts (in a shard of its own, as InsertClicks does) and moves the
// journal's cursor past them, in one transaction. With salvage, clicks whose
// click id is already stored are skipped and counted in journalDropped.
func (s *Store) ingestClicksPG(ctx context.Context, id string, recs []journalRecord, salvage bool) error {
	clicks := clicksOf(recs)
	shard, pooled := s.takeClickShard()
	if pooled {
		defer func() { s.clickShards <- shard }()
	}
	var dropped int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		stored := clicks
		if salvage {
			var err error
			if stored, err = insertClicksSkippingPG(ctx, tx, clicks); err != nil {
				return err
			}
			dropped = int64(len(clicks) - len(stored))
		} else if err := insertClickArrays(ctx, tx, clicks); err != nil {
			return err
		}
		if err := s.countStoredClicksPG(ctx, tx, stored, linkCounts(stored), shard); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE click_journals SET last_seq = $1 WHERE id = $2`, int64(recs[len(recs)-1].seq), id)
		return err
	})
	if err == nil {
		s.journalDropped.Add(dropped)
	}
	return err
}

// insertClicksSkippingPG inserts clicks but those whose click id the
// workspace already has, and returns the ones it stored.
func insertClicksSkippingPG(ctx context.Context, tx *sql.Tx, clicks []heldsway.Click) ([]heldsway.Click, error) {
	rows, err := tx.QueryContext(ctx, insertClicksPG+` ON CONFLICT (workspace_id, click_id) DO NOTHING RETURNING workspace_id, click_id`,
		clickArrays(clicks)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type key struct {
		ws  int64
		cid string
	}
	in := map[key]bool{}
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.ws, &k.cid); err != nil {
			return nil, err
		}
		in[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var stored []heldsway.Click
	for _, c := range clicks {
		if k := (key{c.WorkspaceID, c.ClickID}); in[k] {
			stored = append(stored, c)
			delete(in, k) // a click id twice in the batch was stored once
		}
	}
	return stored, nil
}
