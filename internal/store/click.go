package store

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// The click-tracking queries: the redirect's link lookup, the link cache's change
// feed, the click secret and the batched click insert.

// linkTargetCols reads a link with its affiliate, program and workspace. Every
// join stays inside the link's workspace.
const linkTargetCols = `l.workspace_id, w.active, l.id, l.slug, l.destination_url, l.is_active,
	a.id, a.status, a.referral_code, p.id, p.status, p.cookie_days`

const linkTargetFrom = `FROM links l
	JOIN affiliates a ON a.workspace_id = l.workspace_id AND a.id = l.affiliate_id
	JOIN programs p ON p.workspace_id = a.workspace_id AND p.id = a.program_id
	JOIN workspaces w ON w.id = l.workspace_id`

// LinkTargetsBySlug returns every link with the slug, in any workspace (slugs
// are unique per workspace only), ordered by workspace. It reads through the
// links_slug_global index.
func (s *Store) LinkTargetsBySlug(ctx context.Context, slug string) ([]heldsway.LinkTarget, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+linkTargetCols+` `+linkTargetFrom+`
		WHERE l.slug = $1 ORDER BY l.workspace_id`, slug)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []heldsway.LinkTarget
	for rows.Next() {
		var t heldsway.LinkTarget
		if err := rows.Scan(&t.WorkspaceID, &t.WorkspaceActive, &t.LinkID, &t.Slug, &t.DestinationURL, &t.LinkActive,
			&t.AffiliateID, &t.AffiliateStatus, &t.ReferralCode, &t.ProgramID, &t.ProgramStatus, &t.CookieDays); err != nil {
			return nil, unavailable(err)
		}
		out = append(out, t)
	}
	return out, unavailable(rows.Err())
}

// CustomDomains maps every workspace's custom domain (lower-cased) to the
// workspace. The set is small (one per workspace at most), so the redirect
// holds all of it rather than asking per Host header.
func (s *Store) CustomDomains(ctx context.Context) (map[string]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT custom_domain, workspace_id FROM workspace_settings
		WHERE custom_domain IS NOT NULL AND custom_domain <> ''`)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var d string
		var ws int64
		if err := rows.Scan(&d, &ws); err != nil {
			return nil, unavailable(err)
		}
		out[strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))] = ws
	}
	return out, unavailable(rows.Err())
}

// LinkChangesSince lists the links whose row, affiliate, program or workspace has
// updated_at after since, and whether workspace_settings changed. Each branch of
// the UNION starts from its own table's updated_at, so the work is proportional
// to what changed, not to the number of links.
func (s *Store) LinkChangesSince(ctx context.Context, since time.Time) (*heldsway.LinkChanges, error) {
	rows, err := s.r.QueryContext(ctx, `
		SELECT l.id, l.slug FROM links l WHERE l.updated_at > $1
		UNION
		SELECT l.id, l.slug FROM affiliates a
			JOIN links l ON l.workspace_id = a.workspace_id AND l.affiliate_id = a.id
			WHERE a.updated_at > $1
		UNION
		SELECT l.id, l.slug FROM programs p
			JOIN affiliates a ON a.workspace_id = p.workspace_id AND a.program_id = p.id
			JOIN links l ON l.workspace_id = a.workspace_id AND l.affiliate_id = a.id
			WHERE p.updated_at > $1
		UNION
		SELECT l.id, l.slug FROM workspaces w
			JOIN links l ON l.workspace_id = w.id
			WHERE w.updated_at > $1`, ts(since))
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	ch := &heldsway.LinkChanges{}
	for rows.Next() {
		var r heldsway.LinkRef
		if err := rows.Scan(&r.ID, &r.Slug); err != nil {
			return nil, unavailable(err)
		}
		ch.Links = append(ch.Links, r)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM workspace_settings WHERE updated_at > $1`,
		ts(since)).Scan(&n); err != nil {
		return nil, unavailable(err)
	}
	ch.Domains = n > 0
	return ch, nil
}

// ExistingLinks returns which of ids still name a link. The link cache asks
// about the links it holds, because a deleted row leaves no updated_at behind.
func (s *Store) ExistingLinks(ctx context.Context, ids []int64) (map[int64]bool, error) {
	out := make(map[int64]bool, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), 500)
		var b strings.Builder
		args := make([]any, n)
		b.WriteString(`SELECT id FROM links WHERE id IN (`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("$" + strconv.Itoa(i+1))
			args[i] = ids[i]
		}
		b.WriteByte(')')
		rows, err := s.r.QueryContext(ctx, b.String(), args...)
		if err != nil {
			return nil, unavailable(err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, unavailable(err)
			}
			out[id] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, unavailable(err)
		}
		ids = ids[n:]
	}
	return out, nil
}

// InstallationSecret returns the installation's secret called name, creating a
// random 32-byte one if there is none yet. Several nodes may race to create it:
// the first insert wins and everyone reads the winner's value.
func (s *Store) InstallationSecret(ctx context.Context, name string) ([]byte, error) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	var secret []byte
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO installation_secrets (name, secret, created_at)
			VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`, name, b[:], ts(s.Now())); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT secret FROM installation_secrets WHERE name = $1`, name).Scan(&secret)
	})
	if err != nil {
		return nil, err
	}
	if len(secret) < 16 {
		return nil, errors.New("installation secret " + name + " is too short")
	}
	return secret, nil
}

// clickCols is the column list of one clicks row, in insert order.
const clickCols = 11

// clickInsertMax caps the rows of one INSERT statement: 11 parameters a row stay
// far below SQLite's and PostgreSQL's parameter limits (32766, 65535).
const clickInsertMax = 512

var clickInsertSQL sync.Map // rows → statement text

func clickInsert(n int) string {
	if q, ok := clickInsertSQL.Load(n); ok {
		return q.(string)
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO clicks (workspace_id, link_id, affiliate_id, program_id, click_id, visitor_id,
		ip_hash, user_agent, referrer, landing_query, created_at) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for j := range clickCols {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString("$" + strconv.Itoa(i*clickCols+j+1))
		}
		b.WriteByte(')')
	}
	q := b.String()
	clickInsertSQL.Store(n, q)
	return q
}

// InsertClicks writes clicks in one transaction: multi-row INSERTs and one
// click_count increment per link, so links.click_count always equals the rows
// of that link. The click writer calls it with a whole batch (group commit).
func (s *Store) InsertClicks(ctx context.Context, clicks []heldsway.Click) error {
	if len(clicks) == 0 {
		return nil
	}
	type linkKey struct{ ws, id int64 }
	counts := map[linkKey]int64{}
	for i := range clicks {
		counts[linkKey{clicks[i].WorkspaceID, clicks[i].LinkID}]++
	}
	keys := make([]linkKey, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	// One lock order for every batch on every node: no deadlock between
	// concurrent batches that touch the same links.
	slices.SortFunc(keys, func(a, b linkKey) int { return cmp.Or(cmp.Compare(a.ws, b.ws), cmp.Compare(a.id, b.id)) })
	return s.tx(ctx, func(tx *sql.Tx) error {
		for rest := clicks; len(rest) > 0; {
			n := min(len(rest), clickInsertMax)
			args := make([]any, 0, n*clickCols)
			for i := range rest[:n] {
				c := &rest[i]
				var ip any
				if len(c.IPHash) > 0 {
					ip = c.IPHash
				}
				args = append(args, c.WorkspaceID, c.LinkID, c.AffiliateID, c.ProgramID, c.ClickID, c.VisitorID,
					ip, nullStr(c.UserAgent), nullStr(c.Referrer), nullStr(c.LandingQuery), ts(c.CreatedAt))
			}
			if _, err := tx.ExecContext(ctx, clickInsert(n), args...); err != nil {
				return err
			}
			rest = rest[n:]
		}
		// click_count only: updated_at is the link cache's change marker and a
		// click is not a change of the link.
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `UPDATE links SET click_count = click_count + $1
				WHERE workspace_id = $2 AND id = $3`, counts[k], k.ws, k.id); err != nil {
				return err
			}
		}
		return nil
	})
}
