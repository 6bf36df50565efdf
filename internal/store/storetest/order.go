package storetest

import (
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"
)

// OrderSeed describes an order to insert by raw SQL, for tests of the review
// API that must not depend on the conversion path. Zero values take sensible
// defaults: status pending, currency USD, attribution by referral code when
// AffiliateID is set (none otherwise), converted at ConvertedAt.
type OrderSeed struct {
	OrderID          string
	Status           string
	Currency         string
	Total, Subtotal  int64
	Discount, Tax    int64
	AffiliateID      int64 // 0: unattributed
	ProgramID        int64 // 0: NULL
	CommissionRate   *int64
	Flags            string
	ConvertedAt      time.Time
	AutoApproveAt    *time.Time
	Lines            []CommissionSeed
	Items            []ItemSeed
	CommissionAmount *int64 // default: the sum of the lines not rejected
}

// CommissionSeed is one commission line of an OrderSeed.
type CommissionSeed struct {
	AffiliateID int64
	Tier        int
	Amount      int64
	Rate        *int64
	Rule        string
	BaseAmount  int64
	Status      string // default pending
	PayoutID    *int64 // a live payout settling the line (payout_items)
	Reversed    int64
}

// ItemSeed is one line item of an OrderSeed.
type ItemSeed struct {
	ProductID, Name, Category string
	Quantity, Price           int64
}

// InsertOrder inserts the order, its items and its commissions in workspace
// wsID and returns the order's internal id and its commissions' ids.
func InsertOrder(t testing.TB, db *sql.DB, wsID int64, o OrderSeed) (int64, []int64) {
	t.Helper()
	if o.Status == "" {
		o.Status = "pending"
	}
	if o.Currency == "" {
		o.Currency = "USD"
	}
	if o.ConvertedAt.IsZero() {
		o.ConvertedAt = time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
	}
	attribution := "none"
	var aff, prog sql.NullInt64
	if o.AffiliateID != 0 {
		attribution, aff = "referral_code", sql.NullInt64{Int64: o.AffiliateID, Valid: true}
	}
	if o.ProgramID != 0 {
		prog = sql.NullInt64{Int64: o.ProgramID, Valid: true}
	}
	var sum int64
	for _, l := range o.Lines {
		if l.Status != "rejected" {
			sum += l.Amount - l.Reversed
		}
	}
	if o.CommissionAmount != nil {
		sum = *o.CommissionAmount
	}
	var rate, autoAt sql.NullInt64
	if o.CommissionRate != nil {
		rate = sql.NullInt64{Int64: *o.CommissionRate, Valid: true}
	}
	if o.AutoApproveAt != nil {
		autoAt = sql.NullInt64{Int64: o.AutoApproveAt.UnixMicro(), Valid: true}
	}
	conv := o.ConvertedAt.UnixMicro()
	var id int64
	err := db.QueryRow(`INSERT INTO orders (workspace_id, order_id, status, currency, total, subtotal, discount, tax,
		commission_amount, commission_rate, affiliate_id, program_id, attribution, flags, converted_at, auto_approve_at,
		created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $15, $15)
		RETURNING id`, wsID, o.OrderID, o.Status, o.Currency, o.Total, o.Subtotal, o.Discount, o.Tax, sum, rate, aff, prog,
		attribution, o.Flags, conv, autoAt).Scan(&id)
	if err != nil {
		t.Fatalf("insert order %s: %v", o.OrderID, err)
	}
	for _, it := range o.Items {
		if _, err := db.Exec(`INSERT INTO order_items (workspace_id, order_id, product_id, name, category, quantity, price)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, wsID, id, it.ProductID, it.Name, it.Category, it.Quantity, it.Price); err != nil {
			t.Fatalf("insert order item: %v", err)
		}
	}
	var ids []int64
	for _, l := range o.Lines {
		if l.Status == "" {
			l.Status = "pending"
		}
		if l.Tier == 0 {
			l.Tier = 1
		}
		if l.Rule == "" {
			l.Rule = "program_rate"
		}
		var lr sql.NullInt64
		if l.Rate != nil {
			lr = sql.NullInt64{Int64: *l.Rate, Valid: true}
		}
		var cid int64
		err := db.QueryRow(`INSERT INTO commissions (workspace_id, order_id, affiliate_id, tier, currency, amount,
			reversed_amount, rate, rule, base_amount, explanation, status, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) RETURNING id`,
			wsID, id, l.AffiliateID, l.Tier, o.Currency, l.Amount, l.Reversed, lr, l.Rule, l.BaseAmount,
			"seeded line", l.Status, conv).Scan(&cid)
		if err != nil {
			t.Fatalf("insert commission: %v", err)
		}
		if l.PayoutID != nil {
			// The live payout that settles the line (payout_items).
			if _, err := db.Exec(`INSERT INTO payout_items (commission_id, payout_id, workspace_id, amount) VALUES ($1, $2, $3, $4)`,
				cid, *l.PayoutID, wsID, l.Amount-l.Reversed); err != nil {
				t.Fatalf("insert payout item: %v", err)
			}
		}
		ids = append(ids, cid)
	}
	return id, ids
}

// SeedAffiliate inserts an active affiliate named name, with its user, in
// program programID of workspace wsID, and returns its id. The referral code
// and e-mail derive from the name, so names must be unique per workspace.
func SeedAffiliate(t testing.TB, db *sql.DB, wsID, programID int64, name string) int64 {
	t.Helper()
	now := time.Now().UnixMicro()
	code := strings.ToUpper(strings.NewReplacer(" ", "", "-", "").Replace(name))
	email := strings.ToLower(code) + "@example.com"
	var userID, id int64
	if err := db.QueryRow(`INSERT INTO affiliate_users (workspace_id, name, email, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4) RETURNING id`, wsID, name, email, now).Scan(&userID); err != nil {
		t.Fatalf("insert affiliate user: %v", err)
	}
	if err := db.QueryRow(`INSERT INTO affiliates (workspace_id, program_id, affiliate_user_id, referral_code, status,
		name, email, created_at, updated_at) VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $7) RETURNING id`,
		wsID, programID, userID, code, name, email, now).Scan(&id); err != nil {
		t.Fatalf("insert affiliate: %v", err)
	}
	return id
}

// DefaultProgram returns the id of the workspace's default program, creating
// a USD one when the workspace has none.
func DefaultProgram(t testing.TB, db *sql.DB, wsID int64) int64 {
	t.Helper()
	var id int64
	err := db.QueryRow(`SELECT id FROM programs WHERE workspace_id = $1 AND is_default`, wsID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = db.QueryRow(`INSERT INTO programs (workspace_id, name, currency, commission_type, is_default, created_at, updated_at)
			VALUES ($1, 'Default', 'USD', 'percentage', $2, 0, 0) RETURNING id`, wsID, true).Scan(&id)
	}
	if err != nil {
		t.Fatalf("default program of workspace %d: %v", wsID, err)
	}
	return id
}
