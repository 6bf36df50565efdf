package store_test

import (
	"context"
	"encoding/binary"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// BenchmarkConversionWALFrames counts, on SQLite, the WAL frames (dirty
// 4 KiB pages) the conversion writer's commits write per conversion, by the
// table or index each page belongs to: the figure both the writer's commit
// and the checkpointer's copying are paid by. It runs b.N conversions from 16
// callers on BenchmarkCreateConversion's data, with the WAL never restarted
// by the checkpointer, then reads the WAL's frame headers and maps their page
// numbers through dbstat. Reported: frames/conversion, and
// <b-tree>-frames/conversion for every b-tree with at least 0.1.
//
//	go test ./internal/store -run '^$' -bench ConversionWALFrames -benchtime 3000x
func BenchmarkConversionWALFrames(b *testing.B) {
	dsn := storetest.DSN(b, "sqlite")
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	store.SetWALRestartPages(st, 1<<40)
	ctx := context.Background()
	ws, clicks, now := seedConversionBench(b, st)
	var seq atomic.Int64
	run := func(n int64) {
		var wg sync.WaitGroup
		end := seq.Load() + n
		for range 16 {
			wg.Go(func() {
				for i := seq.Add(1); i <= end; i = seq.Add(1) {
					if _, err := st.CreateConversion(ctx, ws.ID, benchConversion(i, clicks, now)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	run(5000) // customers, rollup rows and the indexes' upper levels exist, as on a running server
	before := st.ConversionWriterStats()
	b.ResetTimer()
	run(int64(b.N))
	b.StopTimer()
	after := st.ConversionWriterStats()
	batches := int(after.Batches - before.Batches)
	perBatch := float64(after.Conversions-before.Conversions) / float64(batches)

	owner := map[uint32]string{}
	rows, err := st.DB().Query(`SELECT pageno, name FROM dbstat`)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var pg uint32
		var name string
		if err := rows.Scan(&pg, &name); err != nil {
			b.Fatal(err)
		}
		owner[pg] = name
	}
	rows.Close()
	wal, err := os.ReadFile(dsn + "-wal")
	if err != nil {
		b.Fatal(err)
	}
	// The WAL's header, then frames of a 24-byte header and a page; a frame
	// whose salts differ from the header's is left from before a restart.
	page := int(binary.BigEndian.Uint32(wal[8:]))
	salt := string(wal[16:24])
	var txs [][]uint32
	var cur []uint32
	for off := 32; off+24+page <= len(wal) && string(wal[off+8:off+16]) == salt; off += 24 + page {
		cur = append(cur, binary.BigEndian.Uint32(wal[off:]))
		if binary.BigEndian.Uint32(wal[off+4:]) != 0 { // a commit frame
			txs, cur = append(txs, cur), nil
		}
	}
	// The last transactions are the measured batches (the click tailer and
	// the checkpointer write nothing here); fewer if the writer itself
	// started the WAL over meanwhile.
	n := min(batches, len(txs))
	by := map[string]int{}
	total := 0
	for _, tx := range txs[len(txs)-n:] {
		for _, pg := range tx {
			name := owner[pg]
			if name == "" {
				name = "freelist"
			}
			by[name]++
			total++
		}
	}
	convs := float64(n) * perBatch
	b.ReportMetric(float64(total)/convs, "frames/conversion")
	b.ReportMetric(perBatch, "conversions/batch")
	names := make([]string, 0, len(by))
	for name := range by {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return by[names[i]] > by[names[j]] })
	for _, name := range names {
		if v := float64(by[name]) / convs; v >= 0.1 {
			b.ReportMetric(v, strings.ReplaceAll(name, " ", "_")+"-frames/conversion")
		}
	}
}
