//go:build linux

package store

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// After the WAL starts over, the writer rewrites blocks written long before,
// which the kernel may have dropped from the page cache; the checkpointer
// reads them back ahead of it (warmWAL), whether the RESTART checkpoint began
// the WAL again or the writer did on its own. Pages are dropped here with
// posix_fadvise DONTNEED and looked for with mincore.
func TestCheckpointerWarmsTheWALAheadOfTheWriter(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hs.db")
	wal := path + "-wal"
	st, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// The test ticks a checkpointer of its own; the store's would tick too.
	if err := st.ckpt.close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	c := &checkpointer{db: db, w: st.w, dir: filepath.Dir(path), wal: wal, frameSize: walFrameHeader + 4096}
	c.restartAt.Store(1 << 30)

	exec := func(q string) {
		t.Helper()
		if _, err := st.w.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	exec(`CREATE TABLE filler (b BLOB)`)
	fill := func() { // ~1,500 pages of WAL in one transaction
		exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500) INSERT INTO filler SELECT randomblob(3000) FROM n`)
	}

	// The writer begins the WAL again itself: every frame copied back, no
	// reader in it.
	fill()
	c.tick()
	size := fileSize(t, wal)
	if size < 1500*c.frameSize {
		t.Fatalf("WAL of %d bytes after the fill", size)
	}
	exec(`INSERT INTO filler VALUES (randomblob(10))`)
	dropCache(t, wal)
	if n := resident(t, wal, 0, size); n != 0 {
		t.Fatalf("%d pages of the WAL still cached after DONTNEED", n)
	}
	c.tick()
	pos := walHeader + 8*c.frameSize // past the small write's frames
	if n, want := resident(t, wal, pos, size), pages(pos, size); n != want {
		t.Errorf("after a tick, %d of the %d pages past the writer are cached", n, want)
	}

	// A RESTART checkpoint: the WAL is read from its start before it. (The
	// checkpoints read the frames they copy: these are copied first.)
	fill()
	c.tick()
	size = fileSize(t, wal)
	dropCache(t, wal)
	c.restartAt.Store(100)
	c.tick()
	if n, want := resident(t, wal, 0, size), pages(0, size); n != want {
		t.Errorf("after a restart, %d of the WAL's %d pages are cached", n, want)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func pages(from, to int64) int {
	ps := int64(os.Getpagesize())
	return int((to+ps-1)/ps - from/ps)
}

// dropCache writes the file's dirty pages out and drops its cached ones.
func dropCache(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
}

// resident counts the file's pages in [from, to) that are in the page cache.
func resident(t *testing.T, path string, from, to int64) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, int(to), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, pages(0, to))
	// mincore(2); x/sys/unix has no wrapper.
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, v := range vec[from/int64(os.Getpagesize()):] {
		n += int(v & 1)
	}
	return n
}
