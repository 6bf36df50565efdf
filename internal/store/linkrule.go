package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
	"github.com/heldsway/heldsway/internal/money"
)

// Commission rules of referral links (migration 00014). The conversion path
// reads them through linkRuleFor; everything else here is their CRUD.

var _ heldsway.LinkRuleService = (*Store)(nil)

const linkRuleCols = `r.id, r.workspace_id, r.link_id, r.type, r.value, r.currency, r.product_ids, r.categories,
	r.min_order_amount, r.priority, r.is_active, r.created_at, r.updated_at`

func scanLinkRule(sc scanner) (*heldsway.LinkRule, error) {
	var (
		r                    heldsway.LinkRule
		cur                  string
		products, categories sql.NullString
		minOrder             sql.NullInt64
		created, updated     int64
	)
	if err := sc.Scan(&r.ID, &r.WorkspaceID, &r.LinkID, &r.Type, &r.Value, &cur, &products, &categories, &minOrder,
		&r.Priority, &r.IsActive, &created, &updated); err != nil {
		return nil, err
	}
	var err error
	if r.Currency, err = money.ParseCurrency(cur); err != nil {
		return nil, err
	}
	c := &heldsway.LinkRuleConditions{MinOrderAmount: fromNullInt(minOrder)}
	for _, l := range []struct {
		col sql.NullString
		dst *[]string
	}{{products, &c.ProductIDs}, {categories, &c.Categories}} {
		if l.col.Valid {
			if err := json.Unmarshal([]byte(l.col.String), l.dst); err != nil {
				return nil, fmt.Errorf("link rule %d: %w", r.ID, err)
			}
		}
	}
	if len(c.ProductIDs) > 0 || len(c.Categories) > 0 || c.MinOrderAmount != nil {
		r.Conditions = c
	}
	r.CreatedAt, r.UpdatedAt = fromTS(created), fromTS(updated)
	return &r, nil
}

// linkRuleList is a condition list as stored: a JSON array, NULL when absent.
func linkRuleList(l []string) sql.NullString {
	if len(l) == 0 {
		return sql.NullString{}
	}
	b, _ := json.Marshal(l) // strings always marshal
	return sql.NullString{String: string(b), Valid: true}
}

// linkRuleArgs are the stored columns of r after workspace_id and link_id:
// type, value, currency, product_ids, categories, min_order_amount, priority,
// is_active.
func linkRuleArgs(r *heldsway.LinkRule) []any {
	var products, categories sql.NullString
	var minOrder sql.NullInt64
	if c := r.Conditions; c != nil {
		products, categories, minOrder = linkRuleList(c.ProductIDs), linkRuleList(c.Categories), nullInt(c.MinOrderAmount)
	}
	return []any{r.Type, r.Value, r.Currency.Code, products, categories, minOrder, r.Priority, r.IsActive}
}

// linkRuleSnapshot is a rule as audit entries and events show it: amounts as
// decimal numbers, as the API does.
type linkRuleSnapshot struct {
	ID         int64                       `json:"id"`
	LinkID     int64                       `json:"link_id"`
	Type       string                      `json:"type"`
	Value      json.RawMessage             `json:"value"`
	Currency   string                      `json:"currency"`
	Conditions *linkRuleConditionsSnapshot `json:"conditions"`
	Priority   int64                       `json:"priority"`
	IsActive   bool                        `json:"is_active"`
	CreatedAt  time.Time                   `json:"created_at"`
	UpdatedAt  time.Time                   `json:"updated_at"`
}

type linkRuleConditionsSnapshot struct {
	ProductIDs     []string        `json:"product_ids"`
	Categories     []string        `json:"categories"`
	MinOrderAmount json.RawMessage `json:"min_order_amount"`
}

func snapLinkRule(r *heldsway.LinkRule) *linkRuleSnapshot {
	if r == nil {
		return nil
	}
	v := money.Format(r.Value, r.Currency)
	if r.Type == heldsway.LinkRulePercentage {
		v = money.FormatRate(r.Value)
	}
	s := &linkRuleSnapshot{ID: r.ID, LinkID: r.LinkID, Type: r.Type, Value: json.RawMessage(v), Currency: r.Currency.Code,
		Priority: r.Priority, IsActive: r.IsActive, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if c := r.Conditions; c != nil {
		s.Conditions = &linkRuleConditionsSnapshot{ProductIDs: c.ProductIDs, Categories: c.Categories,
			MinOrderAmount: json.RawMessage("null")}
		if c.MinOrderAmount != nil {
			s.Conditions.MinOrderAmount = json.RawMessage(money.Format(*c.MinOrderAmount, r.Currency))
		}
	}
	return s
}

// linkRuleLink returns the currency of the program of the link's affiliate: the
// currency of a rule's amounts. NOT_FOUND ("Link not found.") when the
// workspace has no such link. lock locks the link row on PostgreSQL (SQLite's
// single writer already serializes the transaction): "FOR UPDATE OF l" so two
// concurrent creations count the link's rules one after the other, and a
// concurrent deletion of the link waits; the affiliate and program rows are
// only read.
func (s *Store) linkRuleLink(ctx context.Context, tx *sql.Tx, wsID, linkID int64, lock bool) (money.Currency, error) {
	q := `SELECT p.currency FROM links l
		JOIN affiliates a ON a.workspace_id = l.workspace_id AND a.id = l.affiliate_id
		JOIN programs p ON p.workspace_id = a.workspace_id AND p.id = a.program_id
		WHERE l.workspace_id = $1 AND l.id = $2`
	if lock && s.Dialect.IsPostgres() {
		q += ` FOR UPDATE OF l`
	}
	var cur string
	err := tx.QueryRowContext(ctx, q, wsID, linkID).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) {
		return money.Currency{}, heldsway.NotFound("Link")
	} else if err != nil {
		return money.Currency{}, err
	}
	return money.ParseCurrency(cur)
}

// linkExists reports whether the workspace has the link.
func linkExists(ctx context.Context, q linkQuerier, wsID, linkID int64) (bool, error) {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM links WHERE workspace_id = $1 AND id = $2`, wsID, linkID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// ruleNotFound is the NOT_FOUND of a rule lookup that found nothing: the
// link's when the link is missing too, so another workspace's link id reads
// exactly like an unknown one.
func ruleNotFound(ctx context.Context, q linkQuerier, wsID, linkID int64) error {
	ok, err := linkExists(ctx, q, wsID, linkID)
	if err != nil {
		return err
	}
	if !ok {
		return heldsway.NotFound("Link")
	}
	return heldsway.NotFound("Commission rule")
}

var errTooManyLinkRules = heldsway.Errorf(heldsway.ECONFLICT,
	"A link can have at most %d commission rules.", heldsway.LinkRuleMaxPerLink)

// CreateLinkRule creates a rule of a link of the workspace, its amounts in the
// currency of the link's affiliate's program.
func (s *Store) CreateLinkRule(ctx context.Context, wsID, linkID int64, in heldsway.LinkRuleInput) (*heldsway.LinkRule, error) {
	in.Normalize()
	if err := in.Validate(); err != nil {
		return nil, err
	}
	var r *heldsway.LinkRule
	err := s.tx(ctx, func(tx *sql.Tx) error {
		cur, err := s.linkRuleLink(ctx, tx, wsID, linkID, true)
		if err != nil {
			return err
		}
		if r, err = in.Rule(wsID, linkID, cur); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM link_rules WHERE workspace_id = $1 AND link_id = $2`,
			wsID, linkID).Scan(&n); err != nil {
			return err
		}
		if n >= heldsway.LinkRuleMaxPerLink {
			return errTooManyLinkRules
		}
		now := s.Now()
		r.CreatedAt, r.UpdatedAt = now, now
		args := append([]any{wsID, linkID}, linkRuleArgs(r)...)
		if err := tx.QueryRowContext(ctx, `INSERT INTO link_rules (workspace_id, link_id, type, value, currency,
			product_ids, categories, min_order_amount, priority, is_active, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING id`,
			append(args, ts(now))...).Scan(&r.ID); err != nil {
			return err
		}
		return s.record(ctx, tx, wsID, "link_rule.create", "link_rule", r.ID, nil, snapLinkRule(r), "link_rule.created")
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// FindLinkRule returns a rule of a link of the workspace.
func (s *Store) FindLinkRule(ctx context.Context, wsID, linkID, id int64) (*heldsway.LinkRule, error) {
	r, err := scanLinkRule(s.r.QueryRowContext(ctx, `SELECT `+linkRuleCols+` FROM link_rules r
		WHERE r.workspace_id = $1 AND r.link_id = $2 AND r.id = $3`, wsID, linkID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, unavailable(ruleNotFound(ctx, s.r, wsID, linkID))
	}
	return r, unavailable(err)
}

var linkRuleSorts = map[string]sortCol{
	"":           {expr: "r.priority", isInt: true},
	"priority":   {expr: "r.priority", isInt: true},
	"created_at": {expr: "r.created_at", isInt: true},
}

// ListLinkRules pages through a link's rules; sorted by priority ascending,
// the rules come in the order a conversion tries them.
func (s *Store) ListLinkRules(ctx context.Context, wsID, linkID int64, o heldsway.ListOptions) (heldsway.PageResult[*heldsway.LinkRule], error) {
	var none heldsway.PageResult[*heldsway.LinkRule]
	col, ok := linkRuleSorts[o.Sort]
	if !ok {
		return none, heldsway.Invalid("sort", "The selected sort is invalid.")
	}
	if ok, err := linkExists(ctx, s.r, wsID, linkID); err != nil {
		return none, unavailable(err)
	} else if !ok {
		return none, heldsway.NotFound("Link")
	}
	q, args, err := keyset(col, "r.id", o, ` WHERE r.workspace_id = $1 AND r.link_id = $2`, []any{wsID, linkID})
	if err != nil {
		return none, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+linkRuleCols+` FROM link_rules r`+q, args...)
	if err != nil {
		return none, unavailable(err)
	}
	defer rows.Close()
	items := []*heldsway.LinkRule{}
	for rows.Next() {
		r, err := scanLinkRule(rows)
		if err != nil {
			return none, unavailable(err)
		}
		items = append(items, r)
	}
	if err := rows.Err(); err != nil {
		return none, unavailable(err)
	}
	return pageOf(items, o, func(r *heldsway.LinkRule) (*string, int64) {
		if o.Sort == "created_at" {
			return intStr(ts(r.CreatedAt)), r.ID
		}
		return intStr(r.Priority), r.ID
	}), nil
}

// lockLinkRule reads a rule of a link of the workspace for a change.
func (s *Store) lockLinkRule(ctx context.Context, tx *sql.Tx, wsID, linkID, id int64) (*heldsway.LinkRule, error) {
	r, err := scanLinkRule(tx.QueryRowContext(ctx, `SELECT `+linkRuleCols+` FROM link_rules r
		WHERE r.workspace_id = $1 AND r.link_id = $2 AND r.id = $3`+s.forUpdate(), wsID, linkID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ruleNotFound(ctx, tx, wsID, linkID)
	}
	return r, err
}

// UpdateLinkRule applies u to a rule of a link of the workspace. An update
// that changes nothing writes nothing.
func (s *Store) UpdateLinkRule(ctx context.Context, wsID, linkID, id int64, u heldsway.LinkRuleUpdate) (*heldsway.LinkRule, error) {
	u.Normalize()
	if err := u.Validate(); err != nil {
		return nil, err
	}
	var out *heldsway.LinkRule
	err := s.tx(ctx, func(tx *sql.Tx) error {
		before, err := s.lockLinkRule(ctx, tx, wsID, linkID, id)
		if err != nil {
			return err
		}
		cur, err := s.linkRuleLink(ctx, tx, wsID, linkID, false)
		if err != nil {
			return err
		}
		after := *before
		if err := u.Apply(&after, cur); err != nil {
			return err
		}
		if len(diff(snapLinkRule(before), snapLinkRule(&after))) == 0 {
			out = before
			return nil
		}
		after.UpdatedAt = s.Now()
		args := append(linkRuleArgs(&after), ts(after.UpdatedAt), wsID, linkID, id)
		if _, err := tx.ExecContext(ctx, `UPDATE link_rules SET type = $1, value = $2, currency = $3, product_ids = $4,
			categories = $5, min_order_amount = $6, priority = $7, is_active = $8, updated_at = $9
			WHERE workspace_id = $10 AND link_id = $11 AND id = $12`, args...); err != nil {
			return err
		}
		out = &after
		return s.record(ctx, tx, wsID, "link_rule.update", "link_rule", id, snapLinkRule(before), snapLinkRule(&after), "link_rule.updated")
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteLinkRule deletes a rule of a link of the workspace and returns it as
// it was.
func (s *Store) DeleteLinkRule(ctx context.Context, wsID, linkID, id int64) (*heldsway.LinkRule, error) {
	var out *heldsway.LinkRule
	err := s.tx(ctx, func(tx *sql.Tx) error {
		r, err := s.lockLinkRule(ctx, tx, wsID, linkID, id)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM link_rules WHERE workspace_id = $1 AND link_id = $2 AND id = $3`,
			wsID, linkID, id); err != nil {
			return err
		}
		out = r
		return s.record(ctx, tx, wsID, "link_rule.delete", "link_rule", id, snapLinkRule(r), nil, "link_rule.deleted")
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// qConvLinkRules reads the active rules of the link a conversion came
// through, in the order they are tried (index link_rules_link).
const qConvLinkRules = `SELECT ` + linkRuleCols + ` FROM link_rules r
	WHERE r.workspace_id = $1 AND r.link_id = $2 AND r.is_active
	ORDER BY r.priority, r.id`

// linkRuleFor returns the rule of link linkID that applies to the order, nil
// when none does. rows runs qConvLinkRules in the conversion's transaction.
func linkRuleFor(rows func(query string, args ...any) (*sql.Rows, error), wsID, linkID int64, o heldsway.LinkRuleOrder) (*heldsway.LinkRule, error) {
	rs, err := rows(qConvLinkRules, wsID, linkID)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var rules []*heldsway.LinkRule
	for rs.Next() {
		r, err := scanLinkRule(rs)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	if err := rs.Err(); err != nil {
		return nil, err
	}
	return heldsway.FirstMatchingRule(rules, o), nil
}
