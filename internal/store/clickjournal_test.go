package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
)

// The click journal (SQLite): RecordClicks acknowledges a batch once it is
// appended to <db>-clicks; the clicks reach the database after it, exactly
// once, and every read sees them first.

type journalEnv struct {
	path           string
	ws, prog, aff  int64
	link, other    int64
	seeded, closed bool
}

// openJournalEnv opens a store on a new file and seeds a workspace with two
// links.
func openJournalEnv(t *testing.T) (*store.Store, *journalEnv) {
	t.Helper()
	e := &journalEnv{path: filepath.Join(t.TempDir(), "heldsway.db")}
	st := openAt(t, e.path)
	s := &clickSeed{t: t, st: st, now: t0}
	e.ws, e.prog, e.aff = s.workspace("one", "ALICE")
	e.link = s.link(e.ws, e.aff, "a", "https://one.example/")
	e.other = s.link(e.ws, e.aff, "b", "https://one.example/")
	return st, e
}

// openAt opens a store on path (a SQLite file or a postgres:// URL), closed
// when t ends.
func openAt(t *testing.T, path string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func (e *journalEnv) clicks(link int64, ids ...string) []heldsway.Click {
	out := make([]heldsway.Click, len(ids))
	for i, id := range ids {
		out[i] = newClick(e.ws, e.prog, e.aff, link, id, t0.Add(time.Duration(i)*time.Second))
		out[i].IPHash = []byte("0123456789abcdef")
		out[i].Referrer = "https://blog.example/" + id
	}
	return out
}

// rawDB reads the file through a connection of its own, as another process
// would: it sees only what is in the database, not the journal.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func rawInt(t *testing.T, db *sql.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func journalSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path + "-clicks")
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestClickJournalReadsSeeAcknowledgedClicks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, e := openJournalEnv(t)
	if !store.HasClickJournal(st) {
		t.Fatal("a store on a file of its own has no click journal")
	}
	if err := st.RecordClicks(ctx, e.clicks(e.link, "j1", "j2", "j3")); err != nil {
		t.Fatal(err)
	}
	// The batch went to the journal (it is emptied only past 16 MiB).
	if n := journalSize(t, e.path); n == 0 {
		t.Fatal("the journal is empty after RecordClicks")
	}
	// Each read ingests first, whatever the background ingester has done.
	if n, err := st.LinkClickCount(ctx, e.link); err != nil || n != 3 {
		t.Fatalf("click_count %d %v right after RecordClicks, want 3", n, err)
	}
	if err := st.RecordClicks(ctx, e.clicks(e.other, "j4")); err != nil {
		t.Fatal(err)
	}
	ref, err := st.FindClickRef(ctx, e.ws, "j4")
	if err != nil || ref.LinkID != e.other {
		t.Fatalf("FindClickRef right after RecordClicks: %+v %v", ref, err)
	}
	if err := st.RecordClicks(ctx, e.clicks(e.other, "j5")); err != nil {
		t.Fatal(err)
	}
	l, err := st.FindLink(ctx, e.ws, e.other)
	if err != nil || l.ClickCount != 2 {
		t.Fatalf("FindLink right after RecordClicks: %+v %v, want 2 clicks", l, err)
	}
	recent, err := st.RecentClicks(ctx, e.ws, t0.Add(-time.Hour), t0.Add(time.Hour), heldsway.AnalyticsFilter{}, 10, 0)
	if err != nil || len(recent) != 5 {
		t.Fatalf("RecentClicks: %d clicks %v, want 5", len(recent), err)
	}
	// The row holds every field of the click.
	var ref2, ip string
	if err := st.DB().QueryRow(`SELECT referrer, ip_hash FROM clicks WHERE click_id = 'j2'`).Scan(&ref2, &ip); err != nil ||
		ref2 != "https://blog.example/j2" || ip != "0123456789abcdef" {
		t.Fatalf("stored row: referrer %q ip %q %v", ref2, ip, err)
	}
	if err := st.SyncClickRollups(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rawClicks(t, st.DB(), e.ws); n != 5 {
		t.Fatalf("rollups hold %d of 5 clicks", n)
	}
}

func TestClickJournalIngestedInBackground(t *testing.T) {
	t.Parallel()
	st, e := openJournalEnv(t)
	if err := st.RecordClicks(context.Background(), e.clicks(e.link, "b1", "b2")); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, e.path)
	deadline := time.Now().Add(5 * time.Second)
	for rawInt(t, db, `SELECT click_count FROM links WHERE id = $1`, e.link) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the journal was not ingested within 5 s without a read")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := rawInt(t, db, `SELECT COUNT(*) FROM clicks`); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
}

// TestClickJournalRecovery: what a process left in the journal is ingested
// when the next one opens the database: whole records after the cursor,
// once, and a torn last record (a write the process died in, never
// acknowledged) is dropped.
func TestClickJournalRecovery(t *testing.T) {
	t.Parallel()
	st, e := openJournalEnv(t)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if n := journalSize(t, e.path); n != 0 {
		t.Fatalf("a closed store left %d bytes of journal", n)
	}
	var data []byte
	data = append(data, store.EncodeJournalRecord(1, e.clicks(e.link, "r1", "r2"))...)
	data = append(data, store.EncodeJournalRecord(2, e.clicks(e.link, "r3", "r4", "r5"))...)
	data = append(data, store.EncodeJournalRecord(3, e.clicks(e.other, "r6"))...)
	torn := store.EncodeJournalRecord(4, e.clicks(e.other, "r7"))
	data = append(data, torn[:len(torn)-3]...)
	if err := os.WriteFile(e.path+"-clicks", data, 0o600); err != nil {
		t.Fatal(err)
	}
	// Record 1 was ingested before the crash (its cursor moved with it).
	db := rawDB(t, e.path)
	if _, err := db.Exec(`UPDATE rollup_cursors SET last_id = 1 WHERE name = 'click_journal'`); err != nil {
		t.Fatal(err)
	}

	st = openAt(t, e.path)
	if n := journalSize(t, e.path); n != 0 {
		t.Fatalf("the recovered journal still holds %d bytes", n)
	}
	if n := rawInt(t, db, `SELECT COUNT(*) FROM clicks`); n != 4 {
		t.Fatalf("%d clicks after recovery, want 4 (records 2 and 3)", n)
	}
	if n := rawInt(t, db, `SELECT COUNT(*) FROM clicks WHERE click_id IN ('r1', 'r2', 'r7')`); n != 0 {
		t.Fatalf("%d clicks of the ingested or torn records were stored again", n)
	}
	if a, b := rawInt(t, db, `SELECT click_count FROM links WHERE id = $1`, e.link),
		rawInt(t, db, `SELECT click_count FROM links WHERE id = $1`, e.other); a != 3 || b != 1 {
		t.Fatalf("click_count %d and %d, want 3 and 1", a, b)
	}
	// Sequence numbers go on after the recovered ones, so the cursor keeps
	// moving forward.
	ctx := context.Background()
	if err := st.RecordClicks(ctx, e.clicks(e.other, "r8")); err != nil {
		t.Fatal(err)
	}
	if n, err := st.LinkClickCount(ctx, e.other); err != nil || n != 2 {
		t.Fatalf("click_count %d %v after a new batch, want 2", n, err)
	}
	if c := rawInt(t, db, `SELECT last_id FROM rollup_cursors WHERE name = 'click_journal'`); c != 4 {
		t.Fatalf("journal cursor %d, want 4", c)
	}
	// Another restart ingests nothing twice.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	openAt(t, e.path)
	if n := rawInt(t, db, `SELECT COUNT(*) FROM clicks`); n != 5 {
		t.Fatalf("%d clicks after a second restart, want 5", n)
	}
}

func TestClickJournalCloseIngests(t *testing.T) {
	t.Parallel()
	st, e := openJournalEnv(t)
	for i := range 20 {
		if err := st.RecordClicks(context.Background(), e.clicks(e.link, fmt.Sprint("c", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, e.path)
	if n, c := rawInt(t, db, `SELECT COUNT(*) FROM clicks`), rawInt(t, db, `SELECT click_count FROM links WHERE id = $1`, e.link); n != 20 || c != 20 {
		t.Fatalf("after Close: %d rows, click_count %d; want 20", n, c)
	}
	if n := journalSize(t, e.path); n != 0 {
		t.Fatalf("Close left %d bytes of journal", n)
	}
}

// TestClickJournalRefusedClick: a click the database refuses cannot hold
// back the clicks journaled after it.
func TestClickJournalRefusedClick(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, e := openJournalEnv(t)
	if err := st.InsertClicks(ctx, e.clicks(e.link, "dup")); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordClicks(ctx, e.clicks(e.link, "ok1", "dup", "ok2")); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordClicks(ctx, e.clicks(e.link, "ok3")); err != nil {
		t.Fatal(err)
	}
	if n, err := st.LinkClickCount(ctx, e.link); err != nil || n != 4 {
		t.Fatalf("click_count %d %v, want 4 (the duplicate dropped)", n, err)
	}
	if n := rawInt(t, st.DB(), `SELECT COUNT(*) FROM clicks`); n != 4 {
		t.Fatalf("%d rows, want 4", n)
	}
	if js := st.ClickJournalStats(); js.Dropped != 1 || js.Pending != 0 {
		t.Fatalf("journal stats %+v, want 1 dropped, none pending", js)
	}
}

// TestClickJournalOneOwner: a second store on the same file (another
// process) does not share the journal; its clicks go straight into the
// database.
func TestClickJournalOneOwner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, e := openJournalEnv(t)
	second := openAt(t, e.path)
	if store.HasClickJournal(second) {
		t.Fatal("two stores hold one journal")
	}
	if err := second.RecordClicks(ctx, e.clicks(e.link, "s1")); err != nil {
		t.Fatal(err)
	}
	if n := rawInt(t, rawDB(t, e.path), `SELECT COUNT(*) FROM clicks WHERE click_id = 's1'`); n != 1 {
		t.Fatal("the second store's click is not in the database when acknowledged")
	}
	if err := st.RecordClicks(ctx, e.clicks(e.link, "s2")); err != nil {
		t.Fatal(err)
	}
	if n, err := second.LinkClickCount(ctx, e.link); err != nil || n > 2 {
		t.Fatalf("click_count %d %v", n, err)
	}
	if n, err := st.LinkClickCount(ctx, e.link); err != nil || n != 2 {
		t.Fatalf("click_count %d %v through the journal's owner, want 2", n, err)
	}
}

func TestClickJournalTrimmed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, e := openJournalEnv(t)
	store.SetClickJournalTrimAt(st, 1)
	if err := st.RecordClicks(ctx, e.clicks(e.link, "t1", "t2")); err != nil {
		t.Fatal(err)
	}
	if n := journalSize(t, e.path); n == 0 {
		t.Fatal("nothing journaled")
	}
	if _, err := st.LinkClickCount(ctx, e.link); err != nil {
		t.Fatal(err)
	}
	if n := journalSize(t, e.path); n != 0 {
		t.Fatalf("an ingested journal past its limit holds %d bytes", n)
	}
	// Appends go on at the new end.
	if err := st.RecordClicks(ctx, e.clicks(e.link, "t3")); err != nil {
		t.Fatal(err)
	}
	if n, err := st.LinkClickCount(ctx, e.link); err != nil || n != 3 {
		t.Fatalf("click_count %d %v, want 3", n, err)
	}
}

// TestClickJournalOfAnotherDatabase: a journal left beside a database that
// never had one (the file was replaced) is not ingested into it.
func TestClickJournalOfAnotherDatabase(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "heldsway.db")
	rec := store.EncodeJournalRecord(1, []heldsway.Click{newClick(1, 1, 1, 1, "stray", t0)})
	if err := os.WriteFile(path+"-clicks", rec, 0o600); err != nil {
		t.Fatal(err)
	}
	st := openAt(t, path)
	if n := rawInt(t, st.DB(), `SELECT COUNT(*) FROM clicks`); n != 0 {
		t.Fatalf("%d clicks of another database's journal were stored", n)
	}
	if n := journalSize(t, path); n != 0 {
		t.Fatalf("the stray journal still holds %d bytes", n)
	}
}
