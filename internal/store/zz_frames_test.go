package store_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
)

func TestZZFrames(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.db")
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	at := time.Now().UnixMicro()
	row := func(q string, args ...any) int64 {
		var id int64
		if err := st.DB().QueryRow(q+` RETURNING id`, args...).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	ws := row(`INSERT INTO workspaces (name, slug, plan, active, created_at, updated_at) VALUES ('b', 'b', 'basic', $1, $2, $2)`, true, at)
	prog := row(`INSERT INTO programs (workspace_id, name, currency, commission_type, cookie_days, created_at, updated_at)
				VALUES ($1, 'Default', 'USD', 'percentage', 45, $2, $2)`, ws, at)
	user := row(`INSERT INTO affiliate_users (workspace_id, name, email, created_at, updated_at) VALUES ($1, 'A', 'a@example.com', $2, $2)`, ws, at)
	aff := row(`INSERT INTO affiliates (workspace_id, program_id, affiliate_user_id, referral_code, status, name, email, created_at, updated_at)
				VALUES ($1, $2, $3, 'BENCH', 'active', 'A', 'a@example.com', $4, $4)`, ws, prog, user, at)
	link := row(`INSERT INTO links (workspace_id, affiliate_id, slug, destination_url, is_active, created_at, updated_at)
				VALUES ($1, $2, 'bench', 'https://shop.example/', $3, $4, $4)`, ws, aff, true, at)
	n := 0
	run := func(batches int) {
		clicks := make([]heldsway.Click, 15)
		for range batches {
			now := time.Now()
			for j := range clicks {
				n++
				clicks[j] = heldsway.Click{WorkspaceID: ws, LinkID: link, AffiliateID: aff, ProgramID: prog,
					ClickID: fmt.Sprintf("%016x%06d", now.UnixMilli(), n), VisitorID: fmt.Sprintf("%016xv%06d", now.UnixMilli(), n),
					IPHash:    []byte("0123456789abcdef"),
					UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
					CreatedAt: now}
			}
			if err := st.InsertClicks(context.Background(), clicks); err != nil {
				t.Fatal(err)
			}
		}
	}
	var psz int
	st.DB().QueryRow(`PRAGMA page_size`).Scan(&psz)
	t.Logf("page size %d", psz)
	run(3000)
	time.Sleep(600 * time.Millisecond)
	run(1) // restart WAL
	run(60)
	b, err := os.ReadFile(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	salt1 := binary.BigEndian.Uint32(b[16:])
	pages := map[uint32]int{}
	var seq []uint32
	frames, commits := 0, 0
	for off := 32; off+24+16384 <= len(b); off += 24 + 16384 {
		h := b[off:]
		if binary.BigEndian.Uint32(h[8:]) != salt1 {
			break
		}
		frames++
		pages[binary.BigEndian.Uint32(h[0:])]++
		seq = append(seq, binary.BigEndian.Uint32(h[0:]))
		if binary.BigEndian.Uint32(h[4:]) != 0 {
			seq = append(seq, 0)
			commits++
		}
	}
	t.Logf("frames %d commits %d per commit %.1f", frames, commits, float64(frames)/float64(commits))
	names := map[uint32]string{}
	rows, err := st.DB().Query(`SELECT pageno, name, pagetype FROM dbstat`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var p uint32
		var nm, ty string
		rows.Scan(&p, &nm, &ty)
		names[p] = nm + "/" + ty
	}
	line := ""
	for i, p := range seq {
		if p == 0 {
			if i < 200 {
				t.Log(line)
			}
			line = ""
			continue
		}
		line += fmt.Sprintf("%d:%s ", p, names[p])
	}
	agg := map[string]int{}
	for p, c := range pages {
		agg[names[p]] += c
	}
	for k, v := range agg {
		t.Logf("%-40s %d", k, v)
	}
}
