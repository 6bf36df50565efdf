package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// Storefront event ingestion (POST /v1/track/*): the event insert and the
// lookups the endpoints make before it.

var _ heldsway.StorefrontStore = (*Store)(nil)

// sfCols is the column count of one storefront_events row, in insert order.
const sfCols = 27

// sfInsertMax caps the rows of one INSERT: a cart event has at most
// heldsway.StorefrontMaxItems rows; 26 parameters a row stays far below both
// engines' parameter limits.
const sfInsertMax = 500

var sfInsertSQL sync.Map // rows → statement text

func sfInsert(n int) string {
	if q, ok := sfInsertSQL.Load(n); ok {
		return q.(string)
	}
	q := `INSERT INTO storefront_events (workspace_id, type, visitor_id, session_id, affiliate_id, link_id,
		host, path, referrer, utm_source, utm_medium, utm_campaign, utm_term, utm_content,
		product_id, product_name, category, amount, currency, quantity, cart_id, order_id, email, customer_id,
		user_agent, created_at, program_id) VALUES ` + valuesRows(n, sfCols, true)
	sfInsertSQL.Store(n, q)
	return q
}

// InsertStorefrontEvents writes events in one transaction, with their daily
// rollups. Events are telemetry, not changes of a resource: they get no audit
// entry or event (like clicks).
func (s *Store) InsertStorefrontEvents(ctx context.Context, events []heldsway.StorefrontEvent) error {
	if len(events) == 0 {
		return nil
	}
	prepared, err := s.rollupStmts(ctx)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		r := s.newRollup(ctx, tx, prepared)
		for i := range events {
			if err := r.event(&events[i]); err != nil {
				return err
			}
		}
		for rest := events; len(rest) > 0; {
			n := min(len(rest), sfInsertMax)
			args := make([]any, 0, n*sfCols)
			for i := range rest[:n] {
				e := &rest[i]
				args = append(args, e.WorkspaceID, e.Type, e.VisitorID, e.SessionID, nullInt(e.AffiliateID), nullInt(e.LinkID),
					nullStr(e.Host), nullStr(e.Path), nullStr(e.Referrer), nullStr(e.UTM.Source), nullStr(e.UTM.Medium),
					nullStr(e.UTM.Campaign), nullStr(e.UTM.Term), nullStr(e.UTM.Content),
					nullStr(e.ProductID), nullStr(e.ProductName), nullStr(e.Category), nullInt(e.Amount), nullStr(e.Currency),
					nullInt(e.Quantity), nullStr(e.CartID), nullStr(e.OrderID), nullStr(e.Email), nullStr(e.CustomerID),
					nullStr(e.UserAgent), ts(e.CreatedAt), nullInt(e.ProgramID))
			}
			if _, err := tx.ExecContext(ctx, sfInsert(n), args...); err != nil {
				return err
			}
			rest = rest[n:]
		}
		return r.flush()
	})
}

// LastStorefrontSession returns the session and time of the visitor's latest
// event, through the storefront_events_visitor index.
func (s *Store) LastStorefrontSession(ctx context.Context, wsID int64, visitorID string) (string, time.Time, bool, error) {
	var (
		session string
		at      int64
	)
	err := s.queryRowHot(ctx, `SELECT session_id, created_at FROM storefront_events
		WHERE workspace_id = $1 AND visitor_id = $2 ORDER BY created_at DESC LIMIT 1`, wsID, visitorID).Scan(&session, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, false, nil
	} else if err != nil {
		return "", time.Time{}, false, unavailable(err)
	}
	return session, fromTS(at), true, nil
}

// FindClickRef returns a click of the workspace by its public id with its
// affiliate's referral code and its program's cookie window.
func (s *Store) FindClickRef(ctx context.Context, wsID int64, clickID string) (*heldsway.ClickRef, error) {
	if err := s.syncClicks(ctx); err != nil {
		return nil, err
	}
	var (
		c       heldsway.ClickRef
		created int64
	)
	err := s.queryRowHot(ctx, `SELECT c.click_id, c.affiliate_id, c.link_id, c.program_id, a.referral_code, p.cookie_days, c.created_at
		FROM clicks c
		JOIN affiliates a ON a.workspace_id = c.workspace_id AND a.id = c.affiliate_id
		JOIN programs p ON p.workspace_id = c.workspace_id AND p.id = c.program_id
		WHERE c.workspace_id = $1 AND c.click_id = $2`, wsID, clickID).
		Scan(&c.ClickID, &c.AffiliateID, &c.LinkID, &c.ProgramID, &c.ReferralCode, &c.CookieDays, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, heldsway.NotFound("Click")
	} else if err != nil {
		return nil, unavailable(err)
	}
	c.CreatedAt = fromTS(created)
	return &c, nil
}

// ReferralTarget returns the affiliate with the (normalized) referral code,
// with its program and workspace, as a link target without a link: LinkID 0.
func (s *Store) ReferralTarget(ctx context.Context, wsID int64, code string) (*heldsway.LinkTarget, error) {
	var t heldsway.LinkTarget
	err := s.queryRowHot(ctx, `SELECT a.workspace_id, w.active, a.id, a.status, a.referral_code, p.id, p.status, p.cookie_days
		FROM affiliates a
		JOIN programs p ON p.workspace_id = a.workspace_id AND p.id = a.program_id
		JOIN workspaces w ON w.id = a.workspace_id
		WHERE a.workspace_id = $1 AND a.referral_code = $2`, wsID, heldsway.NormalizeReferralCode(code)).
		Scan(&t.WorkspaceID, &t.WorkspaceActive, &t.AffiliateID, &t.AffiliateStatus, &t.ReferralCode, &t.ProgramID,
			&t.ProgramStatus, &t.CookieDays)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, heldsway.NotFound("Referral code")
	} else if err != nil {
		return nil, unavailable(err)
	}
	// No link: the target tracks when the affiliate, program and workspace
	// are active.
	t.LinkActive = true
	return &t, nil
}

// PublishableOrigins lists the allowed origins of every usable publishable key
// of every workspace, normalized. CORS preflights carry no key, so they are
// answered for this set; the key's own list is checked on the request itself.
// Publishable keys are few (a handful per workspace), so this reads them all.
func (s *Store) PublishableOrigins(ctx context.Context) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT k.allowed_origins FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id
		WHERE k.kind = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $2)
		AND w.active = $3 AND k.allowed_origins <> ''`, heldsway.KeyKindPublishable, ts(s.Now()), true)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	out := []string{}
	for rows.Next() {
		var list string
		if err := rows.Scan(&list); err != nil {
			return nil, unavailable(err)
		}
		for _, o := range splitList(list) {
			if n, ok := heldsway.NormalizeOrigin(o); ok && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out, unavailable(rows.Err())
}
