package storetest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

// InsertAffiliate inserts an affiliate of workspace wsID, with its affiliate
// user, by raw SQL, in a program of currency cur: the workspace's default
// program when it has that currency, else a program made for it. Tests of the
// resources that belong to affiliates (links, coupons) use it so they do not
// depend on the affiliate API. It returns the affiliate's id.
func InsertAffiliate(t testing.TB, db *sql.DB, wsID int64, cur, status string) int64 {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	tag := hex.EncodeToString(b[:])
	now := time.Now().UnixMicro()

	var programID int64
	err := db.QueryRow(`SELECT id FROM programs WHERE workspace_id = $1 AND currency = $2 ORDER BY id LIMIT 1`,
		wsID, cur).Scan(&programID)
	if errors.Is(err, sql.ErrNoRows) {
		err = db.QueryRow(`INSERT INTO programs (workspace_id, name, currency, commission_type, created_at, updated_at)
			VALUES ($1, $2, $3, 'percentage', $4, $4) RETURNING id`, wsID, "Program "+cur, cur, now).Scan(&programID)
	}
	if err != nil {
		t.Fatalf("program for affiliate: %v", err)
	}
	name, email := "Affiliate "+tag, "aff-"+tag+"@example.com"
	var userID, id int64
	if err := db.QueryRow(`INSERT INTO affiliate_users (workspace_id, name, email, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4) RETURNING id`, wsID, name, email, now).Scan(&userID); err != nil {
		t.Fatalf("insert affiliate user: %v", err)
	}
	if err := db.QueryRow(`INSERT INTO affiliates (workspace_id, program_id, affiliate_user_id, referral_code, status,
		name, email, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id`,
		wsID, programID, userID, strings.ToUpper(tag), status, name, email, now).Scan(&id); err != nil {
		t.Fatalf("insert affiliate: %v", err)
	}
	return id
}

// AffiliateName returns the name and e-mail of an affiliate, for search tests.
func AffiliateName(t testing.TB, db *sql.DB, id int64) (name, email string) {
	t.Helper()
	if err := db.QueryRow(`SELECT name, email FROM affiliates WHERE id = $1`, id).Scan(&name, &email); err != nil {
		t.Fatalf("affiliate %d: %v", id, err)
	}
	return name, email
}
