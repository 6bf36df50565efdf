package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/store"
	"github.com/heldsway/heldsway/internal/store/storetest"
)

// The conversion half of the OrderService conformance suite, on every engine.
// Attribution and commission cases are tested end to end in internal/api; these
// tests hold the store's own promises: validation before any write, the
// stored order reads back as returned, and concurrency.

type cvFixture struct {
	*bundle
	ws   *heldsway.Workspace
	aff  int64
	code string
}

func cvSetup(t *testing.T, st *store.Store) *cvFixture {
	t.Helper()
	b := setup(t, st)
	f := &cvFixture{bundle: b, ws: b.workspace("Conversions " + t.Name())}
	f.aff = storetest.InsertAffiliate(t, st.DB(), f.ws.ID, "USD", heldsway.AffiliateActive)
	if err := st.DB().QueryRow(`SELECT referral_code FROM affiliates WHERE id = $1`, f.aff).Scan(&f.code); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *cvFixture) input(orderID string) heldsway.ConversionInput {
	return heldsway.ConversionInput{OrderID: orderID, Currency: "USD", Total: 11000, Subtotal: 10000,
		OccurredAt: f.clock.Now().Add(-time.Hour), ReferralCode: f.code}
}

func (f *cvFixture) count(table string) int {
	f.t.Helper()
	var n int
	if err := f.st.DB().QueryRow(`SELECT COUNT(*) FROM `+table+` WHERE workspace_id = $1`, f.ws.ID).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func TestCreateConversionReadsBack(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := cvSetup(t, st)
		in := f.input(" #rb-1 ")
		in.Customer = heldsway.OrderCustomer{Email: " Reader@Example.COM ", ID: "cus-9", Name: "Reader"}
		in.LineItems = []heldsway.LineItem{{ProductID: "p", Name: "Thing", Quantity: 3, Price: 3333}}
		in.Metadata = []byte(`{ "a" : [1, 2] }`)
		in.Discount, in.Tax = 500, 1000
		o, err := st.CreateConversion(f.ctx, f.ws.ID, in)
		if err != nil {
			t.Fatal(err)
		}
		if o.ID == 0 || o.OrderID != "#rb-1" || o.Customer.Email != "reader@example.com" || string(o.Metadata) != `{"a":[1,2]}` ||
			len(o.Commissions) != 1 || o.Commissions[0].ID == 0 || o.CustomerID == nil || o.Attribution != heldsway.AttributionReferralCode {
			t.Fatalf("returned %+v", o)
		}
		got, err := st.FindOrder(f.ctx, f.ws.ID, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		// The response is built without reading the row back: it must say what
		// a later read says.
		for _, c := range []struct {
			name      string
			got, want any
		}{
			{"order_id", got.OrderID, o.OrderID}, {"status", got.Status, o.Status}, {"currency", got.Currency, o.Currency},
			{"total", got.Total, o.Total}, {"subtotal", got.Subtotal, o.Subtotal}, {"discount", got.Discount, o.Discount},
			{"tax", got.Tax, o.Tax}, {"commission_amount", got.CommissionAmount, o.CommissionAmount},
			{"commission_rate", fmt.Sprint(*got.CommissionRate), fmt.Sprint(*o.CommissionRate)},
			{"affiliate", *got.Affiliate, *o.Affiliate}, {"program_id", *got.ProgramID, *o.ProgramID},
			{"customer", got.Customer, o.Customer}, {"customer_id", *got.CustomerID, *o.CustomerID},
			{"attribution", got.Attribution, o.Attribution}, {"flags", fmt.Sprint(got.Flags), fmt.Sprint(o.Flags)},
			{"metadata", string(got.Metadata), string(o.Metadata)}, {"converted_at", got.ConvertedAt, o.ConvertedAt},
			{"created_at", got.CreatedAt, o.CreatedAt}, {"items", fmt.Sprint(got.Items), fmt.Sprint(o.Items)},
			{"commission", fmt.Sprintf("%d %d %d %d %s %s %d", got.Commissions[0].ID, got.Commissions[0].AffiliateID,
				got.Commissions[0].Amount, *got.Commissions[0].Rate, got.Commissions[0].Rule, got.Commissions[0].Status,
				got.Commissions[0].BaseAmount),
				fmt.Sprintf("%d %d %d %d %s %s %d", o.Commissions[0].ID, o.Commissions[0].AffiliateID,
					o.Commissions[0].Amount, *o.Commissions[0].Rate, o.Commissions[0].Rule, o.Commissions[0].Status,
					o.Commissions[0].BaseAmount)},
		} {
			if c.got != c.want {
				t.Errorf("%s: stored %v, returned %v", c.name, c.got, c.want)
			}
		}
	})
}

func TestCreateConversionValidatesBeforeWriting(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := cvSetup(t, st)
		for _, tc := range []struct {
			field string
			mod   func(in *heldsway.ConversionInput)
		}{
			{"order_id", func(in *heldsway.ConversionInput) { in.OrderID = "" }},
			{"currency", func(in *heldsway.ConversionInput) { in.Currency = "US" }},
			{"total", func(in *heldsway.ConversionInput) { in.Total = -1 }},
			{"subtotal", func(in *heldsway.ConversionInput) { in.Subtotal = 1_000_000_000_000_001 }},
			{"occurred_at", func(in *heldsway.ConversionInput) { in.OccurredAt = f.clock.Now().Add(time.Hour) }},
			{"customer.email", func(in *heldsway.ConversionInput) { in.Customer.Email = "Name <a@b.example>" }},
			{"line_items.0.quantity", func(in *heldsway.ConversionInput) { in.LineItems = []heldsway.LineItem{{Quantity: 0}} }},
			{"metadata", func(in *heldsway.ConversionInput) { in.Metadata = []byte(`"text"`) }},
		} {
			in := f.input("#bad")
			tc.mod(&in)
			_, err := st.CreateConversion(f.ctx, f.ws.ID, in)
			var he *heldsway.Error
			if !errors.As(err, &he) || he.Code != heldsway.EVALIDATION || he.Details[tc.field] == nil {
				t.Fatalf("%s: %v", tc.field, err)
			}
		}
		for _, table := range []string{"orders", "customers", "audit_log", "events"} {
			if n := f.count(table); n != 0 {
				t.Fatalf("%s: %d rows after bad input", table, n)
			}
		}
	})
}

// TestCreateConversionConcurrentDuplicates: 20 concurrent creations of one
// order_id make one order; the others get CONFLICT naming it.
func TestCreateConversionConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := cvSetup(t, st)
		const n = 20
		var wg sync.WaitGroup
		orders := make([]*heldsway.Order, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				in := f.input("#same")
				in.Customer.Email = "same@example.com"
				orders[i], errs[i] = st.CreateConversion(f.ctx, f.ws.ID, in)
			}()
		}
		wg.Wait()
		var id int64
		for i := range n {
			if errs[i] == nil {
				if id != 0 {
					t.Fatal("two orders created")
				}
				id = orders[i].ID
			}
		}
		for i := range n {
			if errs[i] == nil {
				continue
			}
			var he *heldsway.Error
			if !errors.As(errs[i], &he) || he.Code != heldsway.ECONFLICT || he.Details["existing_id"] != id {
				t.Fatalf("error %v (details %v), want CONFLICT with existing_id %d", errs[i], he, id)
			}
		}
		for table, want := range map[string]int{"orders": 1, "commissions": 1, "customers": 1, "audit_log": 1, "events": 2} {
			if got := f.count(table); got != want {
				t.Fatalf("%s: %d rows, want %d", table, got, want)
			}
		}
	})
}

// TestCreateConversionDuplicateAcrossWriters: on PostgreSQL several writers
// record batches at once, so a retry can reach one writer while the first
// attempt's batch, on another, has inserted the order and not committed: the
// retry's lookup cannot see it, its insert waits for that commit, and it must
// then answer CONFLICT with the order's id and leave nothing of itself (its
// customer binding included). A trigger holds the first batch open.
func TestCreateConversionDuplicateAcrossWriters(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		if !st.Dialect.IsPostgres() {
			t.Skip("SQLite has one writer: each batch sees the ones before it committed")
		}
		f := cvSetup(t, st)
		for _, q := range []string{`CREATE FUNCTION conv_hold() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN PERFORM pg_sleep(1); RETURN NEW; END $$`,
			`CREATE TRIGGER conv_hold AFTER INSERT ON orders FOR EACH ROW WHEN (NEW.order_id = '#dup') EXECUTE FUNCTION conv_hold()`} {
			if _, err := st.DB().Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		in := func(id string) heldsway.ConversionInput {
			c := f.input(id)
			c.Customer = heldsway.OrderCustomer{Email: id[1:] + "@example.com"}
			return c
		}
		first := make(chan error, 1)
		var firstOrder *heldsway.Order
		go func() {
			var err error
			firstOrder, err = st.CreateConversion(f.ctx, f.ws.ID, in("#dup"))
			first <- err
		}()
		// The retry goes once the first batch sits in the trigger.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			var n int
			if err := st.DB().QueryRow(`SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the first batch never reached the trigger")
			}
		}
		began := time.Now()
		_, retryErr := st.CreateConversion(f.ctx, f.ws.ID, in("#dup"))
		waited := time.Since(began)
		if err := <-first; err != nil {
			t.Fatalf("first attempt: %v", err)
		}
		var he *heldsway.Error
		if !errors.As(retryErr, &he) || he.Code != heldsway.ECONFLICT || he.Details["existing_id"] != firstOrder.ID {
			t.Fatalf("retry: %v (details %v), want CONFLICT with existing_id %d", retryErr, he, firstOrder.ID)
		}
		// It met the first batch's uncommitted order, not a committed one.
		if waited < 300*time.Millisecond {
			t.Fatalf("retry answered in %v: it did not run beside the first batch", waited)
		}
		if _, err := st.CreateConversion(f.ctx, f.ws.ID, in("#next")); err != nil {
			t.Fatalf("a later conversion: %v", err)
		}
		for table, want := range map[string]int{"orders": 2, "commissions": 2, "customers": 2, "audit_log": 2, "events": 4} {
			if got := f.count(table); got != want {
				t.Fatalf("%s: %d rows, want %d", table, got, want)
			}
		}
	})
}

// TestCreateConversionConcurrentNewCustomer: concurrent orders of one new
// customer share one customers row, bound once.
func TestCreateConversionConcurrentNewCustomer(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := cvSetup(t, st)
		if _, err := st.DB().Exec(`UPDATE programs SET recurring = 'lifetime' WHERE id = (SELECT program_id FROM affiliates WHERE id = $1)`, f.aff); err != nil {
			t.Fatal(err)
		}
		const n = 10
		var wg sync.WaitGroup
		errs := make([]error, n)
		custIDs := make([]int64, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				in := f.input(fmt.Sprintf("#cust-%d", i))
				in.Customer = heldsway.OrderCustomer{Email: "new@example.com", ID: "ext-new"}
				o, err := st.CreateConversion(f.ctx, f.ws.ID, in)
				if errs[i] = err; err == nil {
					custIDs[i] = *o.CustomerID
				}
			}()
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("order %d: %v", i, errs[i])
			}
			if custIDs[i] != custIDs[0] {
				t.Fatalf("customer ids %v", custIDs)
			}
		}
		var bound int64
		if err := st.DB().QueryRow(`SELECT affiliate_id FROM customers WHERE workspace_id = $1`, f.ws.ID).Scan(&bound); err != nil || bound != f.aff {
			t.Fatalf("binding %d %v", bound, err)
		}
		if got := f.count("customers"); got != 1 {
			t.Fatalf("customers: %d", got)
		}
	})
}

// TestCreateConversionSpoiledBatch: a conversion that fails once it began
// writing (here a trigger refuses its order) fails alone, with nothing of it
// stored; the conversions group-committed with it are all recorded, once. On
// SQLite the writer runs its batch again without it rather than retrying every
// conversion of the batch in a transaction of its own.
func TestCreateConversionSpoiledBatch(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := cvSetup(t, st)
		db := st.DB()
		trigger := []string{`CREATE TRIGGER conv_refuse BEFORE INSERT ON orders WHEN NEW.order_id = '#bad'
			BEGIN SELECT RAISE(ABORT, 'order refused'); END`}
		if st.Dialect.IsPostgres() {
			trigger = []string{`CREATE FUNCTION conv_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN RAISE EXCEPTION 'order refused'; END $$`,
				`CREATE TRIGGER conv_refuse BEFORE INSERT ON orders FOR EACH ROW WHEN (NEW.order_id = '#bad')
				EXECUTE FUNCTION conv_refuse()`}
		}
		for _, q := range trigger {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		before := st.ConversionWriterStats()
		// On SQLite, holding the writer connection queues the conversions:
		// the first is taken alone and waits for the connection, the others
		// make the next batch, #bad among them.
		hold, err := db.BeginTx(f.ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		const n = 20
		ids := []string{"#first"}
		for i := range n - 2 {
			ids = append(ids, fmt.Sprintf("#ok-%d", i))
			if i == n/2 {
				ids = append(ids, "#bad")
			}
		}
		errs := make([]error, len(ids))
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = st.CreateConversion(f.ctx, f.ws.ID, f.input(id))
			}()
			if i == 0 {
				time.Sleep(100 * time.Millisecond)
			}
		}
		time.Sleep(300 * time.Millisecond)
		if err := hold.Rollback(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		for i, id := range ids {
			if id == "#bad" {
				var he *heldsway.Error
				if errs[i] == nil || errors.As(errs[i], &he) {
					t.Fatalf("#bad: error %v, want the database's refusal", errs[i])
				}
			} else if errs[i] != nil {
				t.Fatalf("%s: %v", id, errs[i])
			}
		}
		for table, want := range map[string]int{"orders": n - 1, "commissions": n - 1, "audit_log": n - 1, "events": 2 * (n - 1)} {
			if got := f.count(table); got != want {
				t.Fatalf("%s: %d rows, want %d", table, got, want)
			}
		}
		var rolled int64
		if err := db.QueryRow(`SELECT COALESCE(SUM(conversions), 0) FROM rollup_totals WHERE workspace_id = $1`, f.ws.ID).
			Scan(&rolled); err != nil || rolled != n-1 {
			t.Fatalf("rollup_totals: %d conversions (%v), want %d", rolled, err, n-1)
		}
		if st.Dialect.IsPostgres() {
			return
		}
		got := st.ConversionWriterStats()
		if d := got.Conversions - before.Conversions; d != n {
			t.Fatalf("writer answered %d conversions, want %d", d, n)
		}
		if reruns, alone := got.Reruns-before.Reruns, got.Alone-before.Alone; reruns != 1 || alone != 1 {
			t.Fatalf("%d reruns and %d conversions retried alone, want 1 and 1 (only #bad alone)", reruns, alone)
		}
	})
}

// seedConversionBench gives st bench/conversions' shape (see
// BenchmarkCreateConversion) and returns the workspace, the clicks and the
// time they lead up to.
func seedConversionBench(b *testing.B, st *store.Store) (*heldsway.Workspace, []heldsway.Click, time.Time) {
	b.Helper()
	ctx := context.Background()
	ws := &heldsway.Workspace{Name: "Bench", Slug: "bench", Plan: "basic", Active: true}
	if err := st.CreateWorkspace(ctx, ws); err != nil {
		b.Fatal(err)
	}
	db := st.DB()
	if _, err := db.Exec(`UPDATE programs SET recurring = 'lifetime', tier_rate = 500 WHERE workspace_id = $1`, ws.ID); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	var clicks []heldsway.Click
	for i := range 1000 {
		aff := storetest.InsertAffiliate(b, db, ws.ID, "USD", heldsway.AffiliateActive)
		var prog, link int64
		if err := db.QueryRow(`SELECT program_id FROM affiliates WHERE id = $1`, aff).Scan(&prog); err != nil {
			b.Fatal(err)
		}
		if err := db.QueryRow(`INSERT INTO links (workspace_id, affiliate_id, slug, destination_url, created_at, updated_at)
			VALUES ($1, $2, $3, 'https://shop.example.com/', $4, $4) RETURNING id`, ws.ID, aff, fmt.Sprintf("b-%d", i), now.UnixMicro()).Scan(&link); err != nil {
			b.Fatal(err)
		}
		for j := range 100 {
			clicks = append(clicks, heldsway.Click{WorkspaceID: ws.ID, LinkID: link, AffiliateID: aff, ProgramID: prog,
				ClickID: fmt.Sprintf("c-%d-%d", i, j), VisitorID: fmt.Sprintf("v-%d", (i*7919+j*104729)%50000),
				CreatedAt: now.Add(-time.Duration(j*5) * time.Hour)})
		}
	}
	if err := st.InsertClicks(ctx, clicks); err != nil {
		b.Fatal(err)
	}
	return ws, clicks, now
}

// benchConversion is conversion n of the benchmarks: a click of clicks, a
// customer of a pool of 200,000, two line items.
func benchConversion(n int64, clicks []heldsway.Click, now time.Time) heldsway.ConversionInput {
	return heldsway.ConversionInput{OrderID: fmt.Sprintf("o-%d", n), Currency: "USD", Total: 12345, Subtotal: 12345,
		OccurredAt: now, ClickID: clicks[int(n*7919)%len(clicks)].ClickID,
		Customer:  heldsway.OrderCustomer{Email: fmt.Sprintf("c%d@example.com", (n*7919)%200000), Name: "Customer"},
		LineItems: []heldsway.LineItem{{ProductID: "sku-1", Name: "Widget", Quantity: 1, Price: 12345}, {ProductID: "sku-2", Quantity: 2}}}
}

// BenchmarkCreateConversion measures the store's conversion path (attribution
// by click id, commission, customer, order, items, audit entry, events) from
// parallel callers, as POST /v1/conversions drives it; on SQLite that is the
// group-commit writer. HELDSWAY_TEST_DATABASE_URL adds PostgreSQL. The data
// have bench/conversions' shape: 1,000 affiliates, 100,000 clicks over 20
// days, visitors with a click or two each, a pool of 200,000 customers, so
// the indexes keyed by affiliate, visitor and e-mail are written all over, as
// in the server's benchmark.
func BenchmarkCreateConversion(b *testing.B) {
	for _, engine := range storetest.Engines() {
		b.Run(engine, func(b *testing.B) {
			st := storetest.Open(b, engine)
			ctx := context.Background()
			ws, clicks, now := seedConversionBench(b, st)
			var seq atomic.Int64
			b.SetParallelism(16) // many callers, as a server under load has
			before := st.ConversionWriterStats()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := st.CreateConversion(ctx, ws.ID, benchConversion(seq.Add(1), clicks, now)); err != nil {
						b.Fatal(err)
					}
				}
			})
			if after := st.ConversionWriterStats(); after.Batches > before.Batches {
				n := float64(after.Conversions - before.Conversions)
				b.ReportMetric(n/float64(after.Batches-before.Batches), "conversions/batch")
				b.ReportMetric(float64((after.Busy-before.Busy).Microseconds())/n, "writer-µs/conversion")
			}
		})
	}
}
