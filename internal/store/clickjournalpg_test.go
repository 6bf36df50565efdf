package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// The click journal on PostgreSQL (OpenClickJournal): as on SQLite, a batch
// is acknowledged once appended to the journal file and reaches the database
// after it, exactly once; each journal is named by the id in its header and
// keeps its cursor in click_journals. These tests need PostgreSQL
// (HELDSWAY_TEST_DATABASE_URL, set by CI).

type pgJournalEnv struct {
	journalEnv
	dsn     string
	journal string // the journal file
}

func openPGJournalEnv(t *testing.T) (*store.Store, *pgJournalEnv) {
	t.Helper()
	if os.Getenv(storetest.EnvPostgres) == "" {
		t.Skipf("%s is not set: the PostgreSQL click journal needs PostgreSQL", storetest.EnvPostgres)
	}
	e := &pgJournalEnv{dsn: storetest.DSN(t, "postgres"), journal: filepath.Join(t.TempDir(), "heldsway.clicks")}
	st := e.open(t)
	s := &clickSeed{t: t, st: st, now: t0}
	e.ws, e.prog, e.aff = s.workspace("one", "ALICE")
	e.link = s.link(e.ws, e.aff, "a", "https://one.example/")
	e.other = s.link(e.ws, e.aff, "b", "https://one.example/")
	return st, e
}

// open opens a store on the env's database with the env's journal.
func (e *pgJournalEnv) open(t *testing.T) *store.Store {
	t.Helper()
	st := openAt(t, e.dsn)
	strayed, err := st.OpenClickJournal(context.Background(), e.journal)
	if err != nil || strayed != "" {
		t.Fatalf("OpenClickJournal: strayed %q, %v", strayed, err)
	}
	return st
}

// raw reads the database through a connection of its own, as another
// server would: it sees only what is in the database, not the journal.
func (e *pgJournalEnv) raw(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// header is the journal file's header: its magic and id (58 bytes).
func header(t *testing.T, path string) []byte {
	t.Helper()
	b := readFile(t, path)
	if len(b) < 58 || !strings.HasPrefix(string(b), "heldsway click journal 1 ") || b[57] != '\n' {
		t.Fatalf("journal header %q", b[:min(len(b), 58)])
	}
	return b[:58]
}

func TestClickJournalPGReadsSeeAcknowledgedClicks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, e := openPGJournalEnv(t)
	if !store.HasClickJournal(st) {
		t.Fatal("OpenClickJournal opened no journal")
	}
	db := e.raw(t)
	id := string(header(t, e.journal)[25:57])
	if n := rawInt(t, db, `SELECT COUNT(*) FROM click_journals WHERE id = $1 AND last_seq = 0`, id); n != 1 {
		t.Fatalf("no click_journals row for the new journal %s", id)
	}
	if err := st.RecordClicks(ctx, e.clicks(e.link, "j1", "j2", "j3")); err != nil {
		t.Fatal(err)
	}
	if n := len(readFile(t, e.journal)); n <= 58 {
		t.Fatal("the batch is not in the journal file")
	}
	// Each read stores what is pending first.
	if n, err := st.LinkClickCount(ctx, e.link); err != nil || n != 3 {
		t.Fatalf("click_count %d %v right after RecordClicks, want 3", n, err)
	}
	if err := st.RecordClicks(ctx, e.clicks(e.other, "j4")); err != nil {
		t.Fatal(err)
	}
	if ref, err := st.FindClickRef(ctx, e.ws, "j4"); err != nil || ref.LinkID != e.other {
		t.Fatalf("FindClickRef right after RecordClicks: %+v %v", ref, err)
	}
	if err := st.RecordClicks(ctx, e.clicks(e.other, "j5")); err != nil {
		t.Fatal(err)
	}
	if l, err := st.FindLink(ctx, e.ws, e.other); err != nil || l.ClickCount != 2 {
		t.Fatalf("FindLink right after RecordClicks: %+v %v, want 2 clicks", l, err)
	}
	// A conversion right after its click is attributed by the click id.
	j6 := e.clicks(e.link, "j6")
	j6[0].VisitorID = "v-j6" // the visitor's only click
	if err := st.RecordClicks(ctx, j6); err != nil {
		t.Fatal(err)
	}
	o, err := st.CreateConversion(ctx, e.ws, heldsway.ConversionInput{OrderID: "o-j6", Currency: "USD", Total: 1000, Subtotal: 1000,
		OccurredAt: t0.Add(time.Minute), ClickID: "j6", Customer: heldsway.OrderCustomer{Email: "c@example.com"}})
	if err != nil || o.LinkID == nil || *o.LinkID != e.link || o.ClickID != "j6" {
		t.Fatalf("conversion right after its click: %+v %v, want it attributed to link %d", o, err, e.link)
	}
	var ref string
	var ip []byte
	if err := db.QueryRow(`SELECT referrer, ip_hash FROM clicks WHERE click_id = 'j2'`).Scan(&ref, &ip); err != nil ||
		ref != "https://blog.example/j2" || string(ip) != "0123456789abcdef" {
		t.Fatalf("stored row: referrer %q ip %q %v", ref, ip, err)
	}
	if n := rawClicks(t, db, e.ws); n != 6 {
		t.Fatalf("rollups hold %d of 6 clicks", n)
	}
	if n := rawInt(t, db, `SELECT last_seq FROM click_journals WHERE id = $1`, id); n != 4 {
		t.Fatalf("journal cursor %d after four batches, want 4", n)
	}
}

func TestClickJournalPGStoredInBackground(t *testing.T) {
	t.Parallel()
	st, e := openPGJournalEnv(t)
	if err := st.RecordClicks(context.Background(), e.clicks(e.link, "b1", "b2")); err != nil {
		t.Fatal(err)
	}
	db := e.raw(t)
	deadline := time.Now().Add(5 * time.Second)
	for rawInt(t, db, `SELECT COUNT(*) FROM clicks`) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the journal was not stored within 5 s without a read")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := rawInt(t, db, `SELECT CAST(SUM(clicks) AS BIGINT) FROM link_clicks WHERE link_id = $1`, e.link); n != 2 {
		t.Fatalf("link_clicks counts %d, want 2", n)
	}
}

// TestClickJournalPGRecovery: what a server left in its journal is stored
// when the next one opens it: whole records after the cursor, once; a torn
// last record is dropped.
func TestClickJournalPGRecovery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, e := openPGJournalEnv(t)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	head := header(t, e.journal)
	if n := len(readFile(t, e.journal)); n != 58 {
		t.Fatalf("a closed store left %d bytes of journal, want the 58-byte header", n)
	}
	data := append([]byte{}, head...)
	data = append(data, store.EncodeJournalRecord(1, e.clicks(e.link, "r1", "r2"))...)
	data = append(data, store.EncodeJournalRecord(2, e.clicks(e.link, "r3", "r4", "r5"))...)
	data = append(data, store.EncodeJournalRecord(3, e.clicks(e.other, "r6"))...)
	torn := store.EncodeJournalRecord(4, e.clicks(e.other, "r7"))
	data = append(data, torn[:len(torn)-3]...)
	if err := os.WriteFile(e.journal, data, 0o600); err != nil {
		t.Fatal(err)
	}
	db := e.raw(t)
	// Record 1 was stored before the crash (its cursor moved with it).
	if _, err := db.Exec(`UPDATE click_journals SET last_seq = 1 WHERE id = $1`, string(head[25:57])); err != nil {
		t.Fatal(err)
	}

	st = e.open(t)
	if n := len(readFile(t, e.journal)); n != 58 {
		t.Fatalf("the recovered journal holds %d bytes, want the header's 58", n)
	}
	if n := rawInt(t, db, `SELECT COUNT(*) FROM clicks`); n != 4 {
		t.Fatalf("%d clicks after recovery, want 4 (records 2 and 3)", n)
	}
	if n := rawInt(t, db, `SELECT COUNT(*) FROM clicks WHERE click_id IN ('r1', 'r2', 'r7')`); n != 0 {
		t.Fatalf("%d clicks of the stored or torn records were stored again", n)
	}
	for link, want := range map[int64]int64{e.link: 3, e.other: 1} {
		if n, err := st.LinkClickCount(ctx, link); err != nil || n != want {
			t.Fatalf("link %d: click_count %d %v, want %d", link, n, err, want)
		}
	}
	// Sequence numbers go on after the recovered ones.
	if err := st.RecordClicks(ctx, e.clicks(e.other, "r8")); err != nil {
		t.Fatal(err)
	}
	if n, err := st.LinkClickCount(ctx, e.other); err != nil || n != 2 {
		t.Fatalf("click_count %d %v after a new batch, want 2", n, err)
	}
	if c := rawInt(t, db, `SELECT last_seq FROM click_journals WHERE id = $1`, string(head[25:57])); c != 4 {
		t.Fatalf("journal cursor %d, want 4", c)
	}
	// Another restart stores nothing twice.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	e.open(t)
	if n := rawInt(t, db, `SELECT COUNT(*) FROM clicks`); n != 5 {
		t.Fatalf("%d clicks after a second restart, want 5", n)
	}
	if n := rawClicks(t, db, e.ws); n != 5 {
		t.Fatalf("rollups hold %d of 5 clicks", n)
	}
}

// TestClickJournalPGOfAnotherDatabase: a journal whose id this database does
// not know, or whose header is damaged, is renamed aside, not read, and a
// new journal starts.
func TestClickJournalPGOfAnotherDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, e := openPGJournalEnv(t)
	for name, head := range map[string]string{
		"unknown id":     "heldsway click journal 1 00112233445566778899aabbccddeeff\n",
		"damaged header": "not a journal",
	} {
		path := filepath.Join(t.TempDir(), "heldsway.clicks")
		data := append([]byte(head), store.EncodeJournalRecord(1, e.clicks(e.link, "stray"))...)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		st := openAt(t, e.dsn)
		strayed, err := st.OpenClickJournal(ctx, path)
		if err != nil || !strings.HasPrefix(strayed, path+".stray-") {
			t.Fatalf("%s: strayed %q, %v", name, strayed, err)
		}
		if got := readFile(t, strayed); string(got) != string(data) {
			t.Fatalf("%s: the stray journal was changed", name)
		}
		if n := rawInt(t, e.raw(t), `SELECT COUNT(*) FROM clicks WHERE click_id = 'stray'`); n != 0 {
			t.Fatalf("%s: a stray journal's click was stored", name)
		}
		header(t, path) // a new journal in its place
		if err := st.RecordClicks(ctx, e.clicks(e.link, "new-"+strings.ReplaceAll(name, " ", "-"))); err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n := rawInt(t, e.raw(t), `SELECT COUNT(*) FROM clicks`); n != 2 {
		t.Fatalf("%d clicks, want the 2 recorded through the new journals", n)
	}
}

// TestClickJournalPGOneOwner: a journal file has one owner; a second store
// given it commits its batches directly. Two servers with journals of their
// own share a database without mixing their cursors.
func TestClickJournalPGOneOwner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, e := openPGJournalEnv(t)
	second := openAt(t, e.dsn)
	if _, err := second.OpenClickJournal(ctx, e.journal); !errors.Is(err, store.ErrClickJournalBusy) {
		t.Fatalf("a second OpenClickJournal on a held journal: %v, want ErrClickJournalBusy", err)
	}
	if err := second.RecordClicks(ctx, e.clicks(e.link, "direct")); err != nil {
		t.Fatal(err)
	}
	db := e.raw(t)
	if n := rawInt(t, db, `SELECT COUNT(*) FROM clicks WHERE click_id = 'direct'`); n != 1 {
		t.Fatal("the journal-less store's click is not in the database when acknowledged")
	}

	third := openAt(t, e.dsn)
	if _, err := third.OpenClickJournal(ctx, filepath.Join(t.TempDir(), "heldsway.clicks")); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := st.RecordClicks(ctx, e.clicks(e.link, fmt.Sprint("first-", i))); err != nil {
			t.Fatal(err)
		}
		if err := third.RecordClicks(ctx, e.clicks(e.link, fmt.Sprint("third-", i), fmt.Sprint("third-", i, "b"))); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []*store.Store{st, third} {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n := rawInt(t, db, `SELECT COUNT(*) FROM clicks`); n != 31 {
		t.Fatalf("%d clicks, want 31", n)
	}
	if n := rawInt(t, db, `SELECT COUNT(*) FROM click_journals WHERE last_seq = 10`); n != 2 {
		t.Fatalf("%d journals at cursor 10, want 2 (one per server)", n)
	}
	if n, err := second.LinkClickCount(ctx, e.link); err != nil || n != 31 {
		t.Fatalf("click_count %d %v, want 31", n, err)
	}
}

// TestClickJournalPGRefusedClick: a click the database refuses cannot hold
// back the clicks journaled after it.
func TestClickJournalPGRefusedClick(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, e := openPGJournalEnv(t)
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
	if n := rawInt(t, e.raw(t), `SELECT COUNT(*) FROM clicks`); n != 4 {
		t.Fatalf("%d rows, want 4", n)
	}
	if n := rawClicks(t, e.raw(t), e.ws); n != 4 {
		t.Fatalf("rollups hold %d clicks, want 4", n)
	}
	if js := st.ClickJournalStats(); js.Dropped != 1 || js.Pending != 0 {
		t.Fatalf("journal stats %+v, want 1 dropped, none pending", js)
	}
}

// The journal holds clicks while the database is away: the redirect keeps
// acknowledging, and they are stored once it is back.
func TestClickJournalPGDatabaseAway(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, e := openPGJournalEnv(t)
	db := e.raw(t)
	// A lock on the journal cursors stands for a database that does not answer.
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`LOCK TABLE click_journals IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		start := time.Now()
		err := st.RecordClicks(ctx, e.clicks(e.link, "w1", "w2"))
		if err == nil && time.Since(start) > time.Second {
			err = fmt.Errorf("RecordClicks waited %v for the database", time.Since(start))
		}
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // ingestion ticks, and waits on the lock
	if n := rawInt(t, db, `SELECT COUNT(*) FROM clicks`); n != 0 {
		t.Fatalf("%d clicks stored past the lock", n)
	}
	// The journal holds a bounded number of clicks for the database: past
	// it the batch is refused (the redirect answers 503) and not journaled.
	store.SetClickJournalMaxWaiting(st, 3)
	err = st.RecordClicks(ctx, e.clicks(e.link, "w3", "w4"))
	if he, ok := errors.AsType[*heldsway.Error](err); !ok || he.Code != heldsway.EUNAVAILABLE {
		t.Fatalf("RecordClicks past the journal's bound: %v, want EUNAVAILABLE", err)
	}
	if err := st.RecordClicks(ctx, e.clicks(e.link, "w5")); err != nil {
		t.Fatalf("RecordClicks within the bound: %v", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n, err := st.LinkClickCount(ctx, e.link); err != nil || n != 3 {
		t.Fatalf("click_count %d %v once the database is back, want 3", n, err)
	}
}
