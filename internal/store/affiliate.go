package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

var _ heldsway.AffiliateService = (*Store)(nil)

// newReferralCode draws a referral code; a variable so a test can force
// collisions and see the retry.
var newReferralCode = heldsway.NewReferralCode

// referralCodeAttempts bounds the retries on a generated code that is taken. With
// 36^8 codes a second attempt is already rare; ten failures mean something is wrong.
const referralCodeAttempts = 10

// affiliateCols reads an affiliate with its user. Name and e-mail are the copies
// kept on the affiliate; the phone comes from a subquery by primary key, run
// only for the rows returned. A join would let the planner, once ANALYZE has
// run, drive a list from affiliate_users and sort all of them (seen on SQLite).
const affiliateCols = `a.id, a.workspace_id, a.program_id, a.parent_affiliate_id, a.referral_code, a.status,
	a.commission_rate, a.notes, a.approved_at, a.suspended_at, a.terminated_at, a.created_at, a.updated_at,
	a.affiliate_user_id, a.name, a.email,
	(SELECT u.phone FROM affiliate_users u WHERE u.workspace_id = a.workspace_id AND u.id = a.affiliate_user_id)`

const affiliateFrom = ` FROM affiliates a`

func scanAffiliateRow(sc scanner) (*heldsway.Affiliate, error) {
	var (
		a                         heldsway.Affiliate
		parent, rate              sql.NullInt64
		notes, phone              sql.NullString
		approved, suspended, term sql.NullInt64
		created, updated          int64
	)
	err := sc.Scan(&a.ID, &a.WorkspaceID, &a.ProgramID, &parent, &a.ReferralCode, &a.Status,
		&rate, &notes, &approved, &suspended, &term, &created, &updated,
		&a.User.ID, &a.User.Name, &a.User.Email, &phone)
	if err != nil {
		return nil, err
	}
	a.ParentAffiliateID, a.CommissionRate = fromNullInt(parent), fromNullInt(rate)
	a.Notes, a.User.Phone = affStrOf(notes), affStrOf(phone)
	a.ApprovedAt, a.SuspendedAt, a.TerminatedAt = fromNullTS(approved), fromNullTS(suspended), fromNullTS(term)
	a.CreatedAt, a.UpdatedAt = fromTS(created), fromTS(updated)
	return &a, nil
}

func affStrOf(v sql.NullString) *string {
	if !v.Valid {
		return nil
	}
	s := v.String
	return &s
}

func affNullStr(p *string) sql.NullString {
	if p == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: *p, Valid: true}
}

// affiliateSnap is the audit and event affiliateSnapshot of an affiliate, in the shape of
// the API's affiliate object, so webhook payloads read like API responses.
type affiliateSnap struct {
	ID                int64             `json:"id"`
	ProgramID         int64             `json:"program_id"`
	ParentAffiliateID *int64            `json:"parent_affiliate_id"`
	ReferralCode      string            `json:"referral_code"`
	Status            string            `json:"status"`
	CommissionRate    *string           `json:"commission_rate"`
	Notes             *string           `json:"notes"`
	ApprovedAt        *string           `json:"approved_at"`
	SuspendedAt       *string           `json:"suspended_at"`
	TerminatedAt      *string           `json:"terminated_at"`
	CreatedAt         string            `json:"created_at"`
	AffiliateUser     affiliateUserSnap `json:"affiliate_user"`
}

type affiliateUserSnap struct {
	ID    int64   `json:"id"`
	Name  string  `json:"name"`
	Email string  `json:"email"`
	Phone *string `json:"phone"`
}

const affSnapTime = "2006-01-02T15:04:05.000000Z"

func affiliateSnapshot(a *heldsway.Affiliate) *affiliateSnap {
	if a == nil {
		return nil
	}
	s := &affiliateSnap{ID: a.ID, ProgramID: a.ProgramID, ParentAffiliateID: a.ParentAffiliateID,
		ReferralCode: a.ReferralCode, Status: a.Status, Notes: a.Notes, CreatedAt: a.CreatedAt.UTC().Format(affSnapTime),
		AffiliateUser: affiliateUserSnap{ID: a.User.ID, Name: a.User.Name, Email: a.User.Email, Phone: a.User.Phone}}
	if a.CommissionRate != nil {
		s.CommissionRate = strPtr(money.FormatRate(*a.CommissionRate))
	}
	if a.ApprovedAt != nil {
		s.ApprovedAt = strPtr(a.ApprovedAt.UTC().Format(affSnapTime))
	}
	if a.SuspendedAt != nil {
		s.SuspendedAt = strPtr(a.SuspendedAt.UTC().Format(affSnapTime))
	}
	if a.TerminatedAt != nil {
		s.TerminatedAt = strPtr(a.TerminatedAt.UTC().Format(affSnapTime))
	}
	return s
}

// affiliateSorts whitelists the list sorts. commission_rate is nullable: NULL
// (no override) sorts as -1, below every real rate, so keyset comparisons keep
// those rows. Each sort has an index in (workspace_id, <expr>, id) order (00002,
// 00004).
var affiliateSorts = map[string]sortCol{
	heldsway.AffiliateSortCreatedAt:      {expr: "a.created_at", isInt: true},
	heldsway.AffiliateSortReferralCode:   {expr: "a.referral_code"},
	heldsway.AffiliateSortStatus:         {expr: "a.status"},
	heldsway.AffiliateSortCommissionRate: {expr: "COALESCE(a.commission_rate, -1)", isInt: true},
}

// affLikeEscaper escapes LIKE's wildcards so a search matches them literally.
var affLikeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// ListAffiliates pages a workspace's affiliates with optional filters.
func (s *Store) ListAffiliates(ctx context.Context, wsID int64, f heldsway.AffiliateFilter, o heldsway.ListOptions) (heldsway.PageResult[*heldsway.Affiliate], error) {
	var res heldsway.PageResult[*heldsway.Affiliate]
	if o.Sort == "" {
		o.Sort = heldsway.AffiliateSortCreatedAt
	}
	col, ok := affiliateSorts[o.Sort]
	if !ok {
		return res, heldsway.Invalid("sort", "The selected sort is invalid.")
	}
	where, args := " WHERE a.workspace_id = $1", []any{wsID}
	if f.Status != "" {
		args = append(args, f.Status)
		where += fmt.Sprintf(" AND a.status = $%d", len(args))
	}
	if f.ProgramID != 0 {
		args = append(args, f.ProgramID)
		where += fmt.Sprintf(" AND a.program_id = $%d", len(args))
	}
	var narrow bool
	if f.Search != "" {
		var err error
		if where, args, narrow, err = s.affiliateSearch(ctx, where, args, f.Search); err != nil {
			return res, err
		}
	}
	// A LIKE pattern's selectivity shows only in its value. PostgreSQL plans a
	// cached prepared statement generically after five runs, assuming a default
	// selectivity, and then walked the whole list in order for a search that
	// matches one row (160 ms at 100,000) instead of using the trigram index.
	// Sent as an unnamed statement, a search is planned with its pattern.
	planEach := f.Search != "" && s.Dialect.IsPostgres()
	items, err := s.affiliatePage(ctx, col, o, where, args, narrow, planEach)
	if err != nil {
		return res, err
	}
	return pageOf(items, o, func(a *heldsway.Affiliate) (*string, int64) {
		switch o.Sort {
		case heldsway.AffiliateSortReferralCode:
			return strPtr(a.ReferralCode), a.ID
		case heldsway.AffiliateSortStatus:
			return strPtr(a.Status), a.ID
		case heldsway.AffiliateSortCommissionRate:
			if a.CommissionRate == nil {
				return intStr(-1), a.ID
			}
			return intStr(*a.CommissionRate), a.ID
		}
		return intStr(ts(a.CreatedAt)), a.ID
	}), nil
}

// sparseSearch is the most rows a search may match, in the whole index, for
// SQLite to read its matches from the trigram index and sort them; a search
// that matches more is answered by scanning in list order, where its matches
// are dense enough to fill a page soon. Measured on SQLite at 100,000
// affiliates: a match read from the index and sorted costs about 3 µs, a row
// scanned about 2 µs, and a page needs 101 matches, so the two cost the same
// near 2,500 matches (a search matching 1 row in 40): about 8 ms either way.
const sparseSearch = 2500

// affiliateSearch adds the search filter: a case-insensitive substring of the
// name, the e-mail or the referral code.
//
// PostgreSQL: LIKE on the lower-cased columns (its LIKE is case-sensitive),
// which the pg_trgm index of migration 00040 answers when the planner finds the
// search selective. SQLite: a search of three characters or more that the
// trigram index (affiliates_search, 00040) finds in at most sparseSearch rows
// is read from that index, plus the affiliates still waiting to be indexed
// (searchindex.go), which are few and scanned; any other search is a LIKE scan
// in list order (SQLite's LIKE ignores ASCII case). The index folds the case of
// other letters too, so there a search for "émile" also finds "ÉMILE", which
// the scan does not.
func (s *Store) affiliateSearch(ctx context.Context, where string, args []any, search string) (_ string, _ []any, narrow bool, _ error) {
	pattern := "%" + affLikeEscaper.Replace(strings.ToLower(search)) + "%"
	if !s.Dialect.IsPostgres() && utf8.RuneCountInString(search) >= 3 {
		phrase := `"` + strings.ReplaceAll(search, `"`, `""`) + `"` // an FTS5 string: no operators
		var n int
		limit := sparseSearch
		if s.sparseSearch != 0 {
			limit = max(s.sparseSearch, 0)
		}
		if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM affiliates_search
			WHERE affiliates_search MATCH $1 LIMIT $2)`, phrase, limit+1).Scan(&n); err != nil {
			return "", nil, false, unavailable(err)
		}
		if n <= limit {
			// CROSS JOIN makes SQLite read the waiting rows first and look
			// each up, whatever its statistics say: ANALYZE run while many
			// rows waited (after a bulk import) made it scan every affiliate
			// with the LIKE instead, 70 ms at 100,000.
			args = append(args, phrase, pattern)
			return where + fmt.Sprintf(` AND a.id IN (SELECT rowid FROM affiliates_search WHERE affiliates_search MATCH $%d
				UNION ALL SELECT b.id FROM affiliates_search_pending p CROSS JOIN affiliates b ON b.id = p.affiliate_id WHERE %s)`,
				len(args)-1, affLike("b", len(args))), args, true, nil
		}
	}
	args = append(args, pattern)
	return where + " AND " + affLike("a", len(args)), args, false, nil
}

// affLike is the LIKE condition of a search on the affiliate aliased t, with
// the pattern in parameter n. E-mails are stored lower-cased and codes
// upper-cased; LOWER on every column keeps the match case-insensitive on
// PostgreSQL, whose LIKE is not.
func affLike(t string, n int) string {
	return fmt.Sprintf(`(LOWER(%[1]s.name) LIKE $%[2]d ESCAPE '\' OR %[1]s.email LIKE $%[2]d ESCAPE '\' OR LOWER(%[1]s.referral_code) LIKE $%[2]d ESCAPE '\')`, t, n)
}

// affiliatePage reads up to PerPage+1 rows after the cursor. With a cursor at
// (v, id) it asks two index seeks, "sort = v AND id beyond id" then "sort beyond
// v", instead of one "sort beyond v OR (sort = v AND id beyond id)": neither
// engine turns that OR into an index range (PostgreSQL filtered 80,000 rows for
// a deep page), and SQLite uses only the first column of a row-value
// comparison, which scans a whole tie group (a third of the rows share "no
// rate override"). Each seek is exact on (workspace_id, sort, id).
//
// narrow is for a filter that leaves rows to sort rather than an index to walk
// in order (a search read from the trigram index): the rows are then sorted by
// their ids and sort values only, and the page's columns (with the affiliate
// user's phone, a lookup per row) read for the page's rows alone.
//
// planEach asks PostgreSQL to plan each query with its arguments.
func (s *Store) affiliatePage(ctx context.Context, col sortCol, o heldsway.ListOptions, where string, args []any, narrow, planEach bool) ([]*heldsway.Affiliate, error) {
	query := func(q string, args []any) ([]*heldsway.Affiliate, error) {
		if planEach {
			args = append([]any{pgx.QueryExecModeExec}, args...) // read by pgx, not a parameter
		}
		return s.queryAffiliates(ctx, q, args)
	}
	sel := func(filterAndTail, order string) string {
		if !narrow {
			return `SELECT ` + affiliateCols + affiliateFrom + filterAndTail
		}
		return `SELECT ` + affiliateCols + affiliateFrom + ` WHERE a.id IN (SELECT a.id` + affiliateFrom + filterAndTail +
			`) ORDER BY ` + order
	}
	cmp, dir := ">", "ASC"
	if o.Desc {
		cmp, dir = "<", "DESC"
	}
	if o.After == nil {
		tail, args, err := keyset(col, "a.id", o, where, args)
		if err != nil {
			return nil, err
		}
		return query(sel(tail, col.expr+" "+dir+", a.id "+dir), args)
	}
	c := o.After
	if c.Value == nil {
		return nil, heldsway.Invalid("cursor", "The cursor is invalid.")
	}
	var v any = *c.Value
	if col.isInt {
		n, err := strconv.ParseInt(*c.Value, 10, 64)
		if err != nil {
			return nil, heldsway.Invalid("cursor", "The cursor is invalid.")
		}
		v = n
	}
	want := o.PerPage + 1
	n := len(args)
	ties, err := query(sel(where+
		fmt.Sprintf(" AND %s = $%d AND a.id %s $%d ORDER BY a.id %s LIMIT %d", col.expr, n+1, cmp, n+2, dir, want), "a.id "+dir),
		append(slices.Clip(args), v, c.ID))
	if err != nil || len(ties) == want {
		return ties, err
	}
	rest, err := query(sel(where+
		fmt.Sprintf(" AND %s %s $%d ORDER BY %s %s, a.id %s LIMIT %d", col.expr, cmp, n+1, col.expr, dir, dir, want-len(ties)),
		col.expr+" "+dir+", a.id "+dir),
		append(slices.Clip(args), v))
	return append(ties, rest...), err
}

func (s *Store) queryAffiliates(ctx context.Context, q string, args []any) ([]*heldsway.Affiliate, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var items []*heldsway.Affiliate
	for rows.Next() {
		a, err := scanAffiliateRow(rows)
		if err != nil {
			return nil, unavailable(err)
		}
		items = append(items, a)
	}
	return items, unavailable(rows.Err())
}

// FindAffiliate returns one affiliate of the workspace; ENOTFOUND otherwise.
func (s *Store) FindAffiliate(ctx context.Context, wsID, id int64) (*heldsway.Affiliate, error) {
	a, err := scanAffiliateRow(s.r.QueryRowContext(ctx, `SELECT `+affiliateCols+affiliateFrom+
		` WHERE a.workspace_id = $1 AND a.id = $2`, wsID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, heldsway.NotFound("Affiliate")
	}
	return a, unavailable(err)
}

// readAffiliate reads an affiliate inside a write transaction.
func readAffiliate(ctx context.Context, tx *sql.Tx, wsID, id int64) (*heldsway.Affiliate, error) {
	a, err := scanAffiliateRow(tx.QueryRowContext(ctx, `SELECT `+affiliateCols+affiliateFrom+
		` WHERE a.workspace_id = $1 AND a.id = $2`, wsID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, heldsway.NotFound("Affiliate")
	}
	return a, err
}

// program is what affiliate writes need to know of a program.
type affProgram struct {
	id        int64
	isPercent bool
	value     *int64
}

func affProgramOf(ctx context.Context, tx affQueryer, wsID int64, id *int64) (*affProgram, error) {
	var (
		p     affProgram
		typ   string
		value sql.NullInt64
	)
	q := `SELECT id, commission_type, commission_value FROM programs WHERE workspace_id = $1 AND `
	args := []any{wsID}
	if id == nil {
		q += `is_default`
	} else {
		q += `id = $2`
		args = append(args, *id)
	}
	err := tx.QueryRowContext(ctx, q, args...).Scan(&p.id, &typ, &value)
	if errors.Is(err, sql.ErrNoRows) {
		if id == nil {
			return nil, heldsway.Invalid("program_id", "The workspace has no default program; give a program id.")
		}
		return nil, heldsway.Invalid("program_id", "The selected program id is invalid.")
	}
	if err != nil {
		return nil, err
	}
	p.isPercent, p.value = typ == "percentage", fromNullInt(value)
	return &p, nil
}

// affQueryer is satisfied by *sql.DB and *sql.Tx.
type affQueryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// checkAffiliateParent verifies that parentID is an affiliate of the workspace in program
// programID and, for an existing affiliate selfID, that making it the parent does
// not close a cycle (selfID must not be among parentID's ancestors).
func checkAffiliateParent(ctx context.Context, tx *sql.Tx, wsID, programID, selfID, parentID int64) error {
	if parentID == selfID {
		return heldsway.Invalid("parent_affiliate_id", "An affiliate cannot be its own parent.")
	}
	var prog int64
	err := tx.QueryRowContext(ctx, `SELECT program_id FROM affiliates WHERE workspace_id = $1 AND id = $2`,
		wsID, parentID).Scan(&prog)
	if errors.Is(err, sql.ErrNoRows) {
		return heldsway.Invalid("parent_affiliate_id", "The selected parent affiliate id is invalid.")
	}
	if err != nil {
		return err
	}
	if prog != programID {
		return heldsway.Invalid("parent_affiliate_id", "The parent affiliate must belong to the same program.")
	}
	if selfID == 0 {
		return nil
	}
	// Walk up from the new parent. Chains are short (multi-tier depth), and the
	// walk is bounded in case the data already holds a cycle.
	cur := parentID
	for range 10000 {
		var up sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT parent_affiliate_id FROM affiliates WHERE workspace_id = $1 AND id = $2`,
			wsID, cur).Scan(&up); err != nil {
			return err
		}
		if !up.Valid {
			return nil
		}
		if up.Int64 == selfID {
			return heldsway.Invalid("parent_affiliate_id", "The parent affiliate would create a cycle.")
		}
		cur = up.Int64
	}
	return heldsway.Invalid("parent_affiliate_id", "The parent affiliate would create a cycle.")
}

func affEmailTaken(ctx context.Context, tx *sql.Tx, wsID, programID int64, email string, exceptID int64) (bool, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM affiliates WHERE workspace_id = $1 AND program_id = $2 AND email = $3 AND id <> $4`,
		wsID, programID, email, exceptID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func errAffEmailTaken() error {
	return &heldsway.Error{Code: heldsway.ECONFLICT, Message: "An affiliate with this email already exists in this program.",
		Details: map[string]any{"email": []string{"The email has already been taken in this program."}}}
}

func errAffCodeTaken() error {
	return &heldsway.Error{Code: heldsway.ECONFLICT, Message: "The referral code is already in use in this workspace.",
		Details: map[string]any{"referral_code": []string{"The referral code has already been taken."}}}
}

func errAffUserEmailTaken() error {
	return &heldsway.Error{Code: heldsway.ECONFLICT, Message: "Another affiliate user already has this email.",
		Details: map[string]any{"email": []string{"The email has already been taken."}}}
}

// CreateAffiliate creates an affiliate and, unless the workspace already has an
// affiliate user with that e-mail, its user. An existing user is reused (one
// account per person across programs) and takes the name and phone given here;
// its other affiliates follow, each with its own audit entry.
func (s *Store) CreateAffiliate(ctx context.Context, wsID int64, in *heldsway.AffiliateCreate) (*heldsway.Affiliate, error) {
	in.Normalize()
	if err := in.Validate(); err != nil {
		return nil, err
	}
	status := in.Status
	if status == "" {
		status = heldsway.AffiliateActive
	}
	var out *heldsway.Affiliate
	err := s.tx(ctx, func(tx *sql.Tx) error {
		prog, err := affProgramOf(ctx, tx, wsID, in.ProgramID)
		if err != nil {
			return err
		}
		if in.ParentAffiliateID != nil {
			if err := checkAffiliateParent(ctx, tx, wsID, prog.id, 0, *in.ParentAffiliateID); err != nil {
				return err
			}
		}
		if taken, err := affEmailTaken(ctx, tx, wsID, prog.id, in.Email, 0); err != nil {
			return err
		} else if taken {
			return errAffEmailTaken()
		}
		userID, err := s.upsertAffiliateUser(ctx, tx, wsID, in.Name, in.Email, in.Phone, true, "")
		if err != nil {
			return err
		}
		var approved sql.NullInt64
		if status == heldsway.AffiliateActive {
			approved = sql.NullInt64{Int64: ts(s.Now()), Valid: true}
		}
		id, err := s.insertAffiliate(ctx, tx, wsID, prog.id, userID, in, status, approved)
		if err != nil {
			return err
		}
		if out, err = readAffiliate(ctx, tx, wsID, id); err != nil {
			return err
		}
		return s.record(ctx, tx, wsID, "affiliate.create", "affiliate", id, nil, affiliateSnapshot(out), "affiliate.created")
	})
	return out, err
}

// upsertAffiliateUser returns the id of the workspace's affiliate user with email,
// creating it if there is none. When update is set an existing user takes name
// and phone (phone only when given) and its affiliates are brought in line.
func (s *Store) upsertAffiliateUser(ctx context.Context, tx *sql.Tx, wsID int64, name, email string, phone *string, update bool, passwordHash string) (int64, error) {
	now := ts(s.Now())
	var id int64
	// ON CONFLICT DO NOTHING keeps a concurrent insert of the same e-mail from
	// aborting the transaction on PostgreSQL; the row is then read back.
	err := tx.QueryRowContext(ctx, `INSERT INTO affiliate_users (workspace_id, name, email, phone, password_hash, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT DO NOTHING RETURNING id`,
		wsID, name, email, affNullStr(phone), nullStr(passwordHash), now).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	var (
		oldName  string
		oldPhone sql.NullString
	)
	if err := tx.QueryRowContext(ctx, `SELECT id, name, phone FROM affiliate_users WHERE workspace_id = $1 AND email = $2`,
		wsID, email).Scan(&id, &oldName, &oldPhone); err != nil {
		return 0, err
	}
	if !update {
		return id, nil
	}
	if phone == nil {
		phone = affStrOf(oldPhone)
	}
	return id, s.syncAffiliateUser(ctx, tx, wsID, id, name, email, phone, 0)
}

// syncAffiliateUser writes a user's profile and copies name and e-mail onto its
// affiliates (denormalised for list search and sort). Affiliates other than
// except whose affiliateSnapshot changes get an audit entry and an affiliate.updated event.
func (s *Store) syncAffiliateUser(ctx context.Context, tx *sql.Tx, wsID, userID int64, name, email string, phone *string, except int64) error {
	now := ts(s.Now())
	rows, err := tx.QueryContext(ctx, `SELECT id FROM affiliates WHERE workspace_id = $1 AND affiliate_user_id = $2 AND id <> $3 ORDER BY id`,
		wsID, userID, except)
	if err != nil {
		return err
	}
	var others []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		others = append(others, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	befores := make([]*heldsway.Affiliate, 0, len(others))
	for _, id := range others {
		a, err := readAffiliate(ctx, tx, wsID, id)
		if err != nil {
			return err
		}
		befores = append(befores, a)
	}
	_, err = tx.ExecContext(ctx, `UPDATE affiliate_users SET name = $1, email = $2, phone = $3, updated_at = $4
		WHERE workspace_id = $5 AND id = $6`, name, email, affNullStr(phone), now, wsID, userID)
	if isUniqueViolation(err) {
		return errAffUserEmailTaken()
	}
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE affiliates SET name = $1, email = $2, updated_at = $3
		WHERE workspace_id = $4 AND affiliate_user_id = $5`, name, email, now, wsID, userID)
	if isUniqueViolation(err) {
		return errAffEmailTaken()
	}
	if err != nil {
		return err
	}
	for _, before := range befores {
		after, err := readAffiliate(ctx, tx, wsID, before.ID)
		if err != nil {
			return err
		}
		if len(diff(affiliateSnapshot(before), affiliateSnapshot(after))) == 0 {
			continue
		}
		if err := s.record(ctx, tx, wsID, "affiliate.update", "affiliate", after.ID, affiliateSnapshot(before), affiliateSnapshot(after), "affiliate.updated"); err != nil {
			return err
		}
	}
	return nil
}

// insertAffiliate inserts the row with the given or a generated referral code.
// ON CONFLICT DO NOTHING turns a taken code into "no row" rather than an error,
// which on PostgreSQL would abort the transaction and rule out the retry.
func (s *Store) insertAffiliate(ctx context.Context, tx *sql.Tx, wsID, programID, userID int64, in *heldsway.AffiliateCreate, status string, approved sql.NullInt64) (int64, error) {
	now := ts(s.Now())
	for range referralCodeAttempts {
		code := in.ReferralCode
		if code == "" {
			var err error
			if code, err = newReferralCode(); err != nil {
				return 0, err
			}
		}
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO affiliates (workspace_id, program_id, affiliate_user_id, parent_affiliate_id,
				referral_code, status, commission_rate, notes, name, email, approved_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) ON CONFLICT DO NOTHING RETURNING id`,
			wsID, programID, userID, nullInt(in.ParentAffiliateID), code, status, nullInt(in.CommissionRate),
			affNullStr(in.Notes), in.Name, in.Email, approved, now).Scan(&id)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, err
		}
		// Which unique index refused the row: the program's e-mail (a concurrent
		// create) or the code.
		if taken, err := affEmailTaken(ctx, tx, wsID, programID, in.Email, 0); err != nil {
			return 0, err
		} else if taken {
			return 0, errAffEmailTaken()
		}
		if in.ReferralCode != "" {
			return 0, errAffCodeTaken()
		}
	}
	return 0, fmt.Errorf("no free referral code after %d attempts", referralCodeAttempts)
}

// UpdateAffiliate changes the fields that are set. Name, e-mail and phone live on
// the affiliate user, shared with the person's affiliates in other programs,
// which follow. Moving to another program keeps the tree in one program: the
// parent must be in the new program and the affiliate must have no
// sub-affiliates.
func (s *Store) UpdateAffiliate(ctx context.Context, wsID, id int64, in *heldsway.AffiliateUpdate) (*heldsway.Affiliate, error) {
	in.Normalize()
	if err := in.Validate(); err != nil {
		return nil, err
	}
	var out *heldsway.Affiliate
	err := s.tx(ctx, func(tx *sql.Tx) error {
		before, err := readAffiliate(ctx, tx, wsID, id)
		if err != nil {
			return err
		}
		programID := before.ProgramID
		if in.ProgramID != nil && *in.ProgramID != before.ProgramID {
			prog, err := affProgramOf(ctx, tx, wsID, in.ProgramID)
			if err != nil {
				return err
			}
			var child int64
			err = tx.QueryRowContext(ctx, `SELECT id FROM affiliates WHERE workspace_id = $1 AND parent_affiliate_id = $2 LIMIT 1`,
				wsID, id).Scan(&child)
			if err == nil {
				return heldsway.Invalid("program_id", "An affiliate with sub-affiliates cannot move to another program.")
			} else if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			programID = prog.id
		}
		parent := before.ParentAffiliateID
		if in.SetParent {
			parent = in.ParentAffiliateID
		}
		if parent != nil && (in.SetParent || programID != before.ProgramID) {
			if err := checkAffiliateParent(ctx, tx, wsID, programID, id, *parent); err != nil {
				return err
			}
		}
		name, email, phone := before.User.Name, before.User.Email, before.User.Phone
		if in.Name != nil {
			name = *in.Name
		}
		if in.Email != nil {
			email = *in.Email
		}
		if in.SetPhone {
			phone = in.Phone
		}
		if email != before.User.Email || programID != before.ProgramID {
			if taken, err := affEmailTaken(ctx, tx, wsID, programID, email, id); err != nil {
				return err
			} else if taken {
				return errAffEmailTaken()
			}
		}
		rate, notes, code := before.CommissionRate, before.Notes, before.ReferralCode
		if in.SetCommissionRate {
			rate = in.CommissionRate
		}
		if in.SetNotes {
			notes = in.Notes
		}
		if in.ReferralCode != nil {
			code = *in.ReferralCode
		}
		if code != before.ReferralCode {
			var other int64
			err := tx.QueryRowContext(ctx, `SELECT id FROM affiliates WHERE workspace_id = $1 AND referral_code = $2`, wsID, code).Scan(&other)
			if err == nil {
				return errAffCodeTaken()
			} else if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		if name != before.User.Name || email != before.User.Email || !affSameStr(phone, before.User.Phone) {
			if err := s.syncAffiliateUser(ctx, tx, wsID, before.User.ID, name, email, phone, id); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE affiliates SET program_id = $1, parent_affiliate_id = $2, referral_code = $3,
				commission_rate = $4, notes = $5, name = $6, email = $7, updated_at = $8
			WHERE workspace_id = $9 AND id = $10`,
			programID, nullInt(parent), code, nullInt(rate), affNullStr(notes), name, email, ts(s.Now()), wsID, id)
		if isUniqueViolation(err) {
			return heldsway.Errorf(heldsway.ECONFLICT, "The email or referral code was taken by a concurrent change.")
		}
		if err != nil {
			return err
		}
		if out, err = readAffiliate(ctx, tx, wsID, id); err != nil {
			return err
		}
		return s.record(ctx, tx, wsID, "affiliate.update", "affiliate", id, affiliateSnapshot(before), affiliateSnapshot(out), "affiliate.updated")
	})
	return out, err
}

func affSameStr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// DeleteAffiliate removes an affiliate with its referral links, link batches and
// coupons, each removal audited (links and coupons also get their *.deleted
// event). Sub-affiliates lose their parent. The affiliate user goes too when no
// other affiliate uses it.
func (s *Store) DeleteAffiliate(ctx context.Context, wsID, id int64) (*heldsway.Affiliate, error) {
	var before *heldsway.Affiliate
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if before, err = readAffiliate(ctx, tx, wsID, id); err != nil {
			return err
		}
		// Orders and commissions keep referring to the affiliate (and the
		// ledger is explained by them), so one with conversions is terminated,
		// never deleted. Checked before anything is removed.
		var hasOrders bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM orders WHERE workspace_id = $1 AND affiliate_id = $2)
			OR EXISTS (SELECT 1 FROM commissions WHERE workspace_id = $1 AND affiliate_id = $2)`, wsID, id).Scan(&hasOrders); err != nil {
			return err
		}
		if hasOrders {
			return heldsway.Errorf(heldsway.ECONFLICT, "The affiliate has conversions; terminate it instead.")
		}
		if err := s.deleteAffiliateOwned(ctx, tx, wsID, id, "link", `SELECT id, slug, destination_url, campaign FROM links WHERE workspace_id = $1 AND affiliate_id = $2 ORDER BY id`,
			[]string{"slug", "destination_url", "campaign"}, `DELETE FROM links WHERE workspace_id = $1 AND id = $2`); err != nil {
			return err
		}
		if err := s.deleteAffiliateOwned(ctx, tx, wsID, id, "coupon", `SELECT id, code, discount_type, discount_value FROM coupons WHERE workspace_id = $1 AND affiliate_id = $2 ORDER BY id`,
			[]string{"code", "discount_type", "discount_value"}, `DELETE FROM coupons WHERE workspace_id = $1 AND id = $2`); err != nil {
			return err
		}
		// Batches are a record of work done for the links just removed; they are
		// not a resource of their own in the audit log.
		if _, err := tx.ExecContext(ctx, `DELETE FROM link_batches WHERE workspace_id = $1 AND affiliate_id = $2`, wsID, id); err != nil {
			return err
		}
		if err := s.orphanAffiliateChildren(ctx, tx, wsID, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM affiliates WHERE workspace_id = $1 AND id = $2`, wsID, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM affiliate_users WHERE workspace_id = $1 AND id = $2
			AND NOT EXISTS (SELECT 1 FROM affiliates WHERE workspace_id = $1 AND affiliate_user_id = $2)`, wsID, before.User.ID); err != nil {
			return err
		}
		return s.record(ctx, tx, wsID, "affiliate.delete", "affiliate", id, affiliateSnapshot(before), nil, "affiliate.deleted")
	})
	return before, err
}

// deleteAffiliateOwned deletes the affiliate's rows of one kind one by one, recording each
// as "<kind>.delete" with a affiliateSnapshot of the selected columns.
func (s *Store) deleteAffiliateOwned(ctx context.Context, tx *sql.Tx, wsID, affID int64, kind, query string, cols []string, del string) error {
	rows, err := tx.QueryContext(ctx, query, wsID, affID)
	if err != nil {
		return err
	}
	type owned struct {
		id   int64
		snap map[string]any
	}
	var all []owned
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := []any{new(int64)}
		for i := range vals {
			ptrs = append(ptrs, &vals[i])
		}
		if err := rows.Scan(ptrs...); err != nil {
			rows.Close()
			return err
		}
		o := owned{id: *ptrs[0].(*int64), snap: map[string]any{"affiliate_id": affID}}
		o.snap["id"] = o.id
		for i, c := range cols {
			if b, ok := vals[i].([]byte); ok {
				vals[i] = string(b)
			}
			o.snap[c] = vals[i]
		}
		all = append(all, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, o := range all {
		if _, err := tx.ExecContext(ctx, del, wsID, o.id); err != nil {
			return err
		}
		if err := s.record(ctx, tx, wsID, kind+".delete", kind, o.id, o.snap, nil, kind+".deleted"); err != nil {
			return err
		}
	}
	return nil
}

// orphanAffiliateChildren clears the parent of the affiliate's sub-affiliates.
func (s *Store) orphanAffiliateChildren(ctx context.Context, tx *sql.Tx, wsID, id int64) error {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM affiliates WHERE workspace_id = $1 AND parent_affiliate_id = $2 ORDER BY id`, wsID, id)
	if err != nil {
		return err
	}
	var children []int64
	for rows.Next() {
		var c int64
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return err
		}
		children = append(children, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range children {
		before, err := readAffiliate(ctx, tx, wsID, c)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE affiliates SET parent_affiliate_id = NULL, updated_at = $1 WHERE workspace_id = $2 AND id = $3`,
			ts(s.Now()), wsID, c); err != nil {
			return err
		}
		after, err := readAffiliate(ctx, tx, wsID, c)
		if err != nil {
			return err
		}
		if err := s.record(ctx, tx, wsID, "affiliate.update", "affiliate", c, affiliateSnapshot(before), affiliateSnapshot(after), "affiliate.updated"); err != nil {
			return err
		}
	}
	return nil
}

// TransitionAffiliate applies a status action. The UPDATE is conditional on the
// status read in the same transaction, so of two concurrent transitions from one
// status only one changes the row; the other sees the new status and gets
// INVALID_STATUS_TRANSITION. Timestamps: approve sets approved_at; suspend sets
// suspended_at; reactivate clears suspended_at (it describes the current
// suspension; the audit log keeps the history) and sets approved_at if the
// affiliate was never approved; terminate sets terminated_at. The optional
// reason is kept in the audit entry.
func (s *Store) TransitionAffiliate(ctx context.Context, wsID, id int64, action, reason string) (*heldsway.Affiliate, error) {
	tr, ok := heldsway.AffiliateTransitions[action]
	if !ok {
		return nil, fmt.Errorf("unknown affiliate action %q", action)
	}
	var out *heldsway.Affiliate
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// Each retry follows a concurrent change that won; statuses only move on,
		// so a few rounds settle it.
		for range 5 {
			before, err := readAffiliate(ctx, tx, wsID, id)
			if err != nil {
				return err
			}
			if err := heldsway.CheckTransition(action, before.Status); err != nil {
				return err
			}
			now := ts(s.Now())
			var set string
			switch action {
			case heldsway.ActionApprove:
				set = `approved_at = $1`
			case heldsway.ActionSuspend:
				set = `suspended_at = $1`
			case heldsway.ActionReactivate:
				set = `suspended_at = NULL, approved_at = COALESCE(approved_at, $1)`
			case heldsway.ActionTerminate:
				set = `terminated_at = $1`
			}
			res, err := tx.ExecContext(ctx, `UPDATE affiliates SET status = $2, `+set+`, updated_at = $1
				WHERE workspace_id = $3 AND id = $4 AND status = $5`, now, tr.To, wsID, id, before.Status)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				// A concurrent transition won; check again against its result.
				continue
			}
			if out, err = readAffiliate(ctx, tx, wsID, id); err != nil {
				return err
			}
			audited := struct {
				*affiliateSnap
				Reason *string `json:"reason,omitempty"`
			}{affiliateSnap: affiliateSnapshot(out)}
			if reason != "" {
				audited.Reason = &reason
			}
			if err := s.audit(ctx, tx, wsID, "affiliate."+action, "affiliate", id, affiliateSnapshot(before), audited); err != nil {
				return err
			}
			return s.event(ctx, tx, wsID, tr.Event, "affiliate", id, affiliateSnapshot(out))
		}
		return heldsway.Errorf(heldsway.ECONFLICT, "The affiliate was changed concurrently; retry.")
	})
	return out, err
}

// AffiliateCommission returns the commission view of digest §5.5.
func (s *Store) AffiliateCommission(ctx context.Context, wsID, id int64) (*heldsway.AffiliateCommission, error) {
	a, err := s.FindAffiliate(ctx, wsID, id)
	if err != nil {
		return nil, err
	}
	return s.affiliateCommissionView(ctx, s.r, wsID, a)
}

// affiliateCommissionView: affiliate_rate is the override; business_default_rate the
// default program's percentage; effective_rate the override, else the
// affiliate's own program's percentage, else null (flat programs and programs
// without a value have no percentage to show).
func (s *Store) affiliateCommissionView(ctx context.Context, q affQueryer, wsID int64, a *heldsway.Affiliate) (*heldsway.AffiliateCommission, error) {
	v := &heldsway.AffiliateCommission{AffiliateRate: a.CommissionRate}
	def, err := affProgramOf(ctx, q, wsID, nil)
	if err != nil && heldsway.ErrorCode(err) != heldsway.EVALIDATION {
		return nil, unavailable(err)
	}
	if def != nil && def.isPercent {
		v.BusinessDefaultRate = def.value
	}
	prog, err := affProgramOf(ctx, q, wsID, &a.ProgramID)
	if err != nil {
		return nil, unavailable(err)
	}
	switch {
	case a.CommissionRate != nil:
		v.EffectiveRate = a.CommissionRate
	case prog.isPercent:
		v.EffectiveRate = prog.value
	}
	return v, nil
}

// SetAffiliateCommission sets (or with nil removes) the override.
func (s *Store) SetAffiliateCommission(ctx context.Context, wsID, id int64, rate *int64) (*heldsway.AffiliateCommission, error) {
	if err := heldsway.ValidateRate("commission_rate", rate); err != nil {
		return nil, err
	}
	var out *heldsway.AffiliateCommission
	err := s.tx(ctx, func(tx *sql.Tx) error {
		before, err := readAffiliate(ctx, tx, wsID, id)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE affiliates SET commission_rate = $1, updated_at = $2 WHERE workspace_id = $3 AND id = $4`,
			nullInt(rate), ts(s.Now()), wsID, id); err != nil {
			return err
		}
		after, err := readAffiliate(ctx, tx, wsID, id)
		if err != nil {
			return err
		}
		if err := s.record(ctx, tx, wsID, "affiliate.commission.update", "affiliate", id, affiliateSnapshot(before), affiliateSnapshot(after), "affiliate.updated"); err != nil {
			return err
		}
		out, err = s.affiliateCommissionView(ctx, tx, wsID, after)
		return err
	})
	return out, err
}

// RegisterAffiliate is the public self-registration: a pending affiliate in the
// default program. An e-mail that already has an affiliate user in the
// workspace is refused (409) rather than attached to that account: an
// unauthenticated caller must not be able to join someone else's account or
// set its password.
func (s *Store) RegisterAffiliate(ctx context.Context, slug string, in *heldsway.AffiliateRegistration, passwordHash string) (*heldsway.Affiliate, error) {
	in.Normalize()
	if err := in.Validate(); err != nil {
		return nil, err
	}
	var out *heldsway.Affiliate
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var (
			wsID  int64
			allow bool
		)
		err := tx.QueryRowContext(ctx, `SELECT id FROM workspaces WHERE slug = $1 AND active = $2`, slug, true).Scan(&wsID)
		if errors.Is(err, sql.ErrNoRows) {
			return heldsway.NotFound("Workspace")
		} else if err != nil {
			return err
		}
		var progID int64
		err = tx.QueryRowContext(ctx, `SELECT id, allow_self_registration FROM programs WHERE workspace_id = $1 AND is_default`,
			wsID).Scan(&progID, &allow)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && !allow) {
			return heldsway.Errorf(heldsway.EFORBIDDEN, "Self-registration is not enabled for this program.")
		} else if err != nil {
			return err
		}
		var existing int64
		err = tx.QueryRowContext(ctx, `SELECT id FROM affiliate_users WHERE workspace_id = $1 AND email = $2`, wsID, in.Email).Scan(&existing)
		if err == nil {
			return errAffUserEmailTaken()
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		now := ts(s.Now())
		var userID int64
		err = tx.QueryRowContext(ctx, `INSERT INTO affiliate_users (workspace_id, name, email, phone, password_hash, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT DO NOTHING RETURNING id`,
			wsID, in.Name, in.Email, affNullStr(in.Phone), passwordHash, now).Scan(&userID)
		if errors.Is(err, sql.ErrNoRows) {
			return errAffUserEmailTaken()
		} else if err != nil {
			return err
		}
		create := &heldsway.AffiliateCreate{Name: in.Name, Email: in.Email, Phone: in.Phone}
		id, err := s.insertAffiliate(ctx, tx, wsID, progID, userID, create, heldsway.AffiliatePending, sql.NullInt64{})
		if err != nil {
			return err
		}
		if out, err = readAffiliate(ctx, tx, wsID, id); err != nil {
			return err
		}
		return s.record(ctx, tx, wsID, "affiliate.register", "affiliate", id, nil, affiliateSnapshot(out), "affiliate.created")
	})
	return out, err
}
