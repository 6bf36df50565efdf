package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/heldsway/heldsway/internal/heldsway"
)

var _ heldsway.LinkService = (*Store)(nil)

// slugAttempts bounds the retries of a generated slug that collides. With 36^9
// possible slugs a second attempt is already astronomically rare.
const slugAttempts = 8

// newSlug draws a generated slug; a variable so tests can force collisions.
var newSlug = heldsway.NewSlug

// linkCols are the columns scanLink reads, of links l.
func (d Dialect) linkCols() string {
	return `l.id, l.workspace_id, l.affiliate_id, l.slug, l.destination_url, l.campaign, l.is_active,
	` + d.clickCount() + `, l.metadata, l.created_at, l.updated_at`
}

// clickCount is the click count of links l. SQLite keeps it in
// links.click_count. PostgreSQL's concurrent click batches add to shard rows
// of link_clicks instead (migration 00042), so the count is the column (what it
// held before that migration) plus the link's rows there, read in the one
// statement so that it equals the link's rows in clicks at any snapshot.
func (d Dialect) clickCount() string {
	if d.IsPostgres() {
		return `(l.click_count + COALESCE((SELECT SUM(lc.clicks) FROM link_clicks lc
		WHERE lc.workspace_id = l.workspace_id AND lc.link_id = l.id), 0))::bigint`
	}
	return `l.click_count`
}

func scanLink(sc scanner) (*heldsway.Link, error) {
	var l heldsway.Link
	var campaign, metadata sql.NullString
	var created, updated int64
	if err := sc.Scan(&l.ID, &l.WorkspaceID, &l.AffiliateID, &l.Slug, &l.DestinationURL, &campaign, &l.IsActive,
		&l.ClickCount, &metadata, &created, &updated); err != nil {
		return nil, err
	}
	if campaign.Valid {
		l.Campaign = &campaign.String
	}
	if metadata.Valid {
		l.Metadata = json.RawMessage(metadata.String)
	}
	l.CreatedAt, l.UpdatedAt = fromTS(created), fromTS(updated)
	return &l, nil
}

// querier is what the lookups shared by reads and transactions need.
type linkQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// forShare locks the affiliate row a link or coupon is written for, so a
// concurrent termination or deletion waits for the write. PostgreSQL only:
// SQLite has one writer, so the transaction is already serialized.
func (s *Store) forShare() string {
	if s.Dialect.IsPostgres() {
		return " FOR SHARE"
	}
	return ""
}

// forUpdate locks a row read before it is changed (PostgreSQL; see forShare).
func (s *Store) forUpdate() string {
	if s.Dialect.IsPostgres() {
		return " FOR UPDATE"
	}
	return ""
}

// linkAffiliateStatus returns the status of an affiliate of the workspace, or
// NOT_FOUND with the documented message.
func (s *Store) linkAffiliateStatus(ctx context.Context, q linkQuerier, wsID, affID int64, lock bool) (string, error) {
	query := `SELECT status FROM affiliates WHERE workspace_id = $1 AND id = $2`
	if lock {
		query += s.forShare()
	}
	var status string
	err := q.QueryRowContext(ctx, query, wsID, affID).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return "", heldsway.Errorf(heldsway.ENOTFOUND, heldsway.MsgAffiliateNotFound)
	}
	return status, err
}

// checkLinkAffiliate is the affiliate check of every link creation: the
// affiliate must be the workspace's and not terminated.
func (s *Store) checkLinkAffiliate(ctx context.Context, tx *sql.Tx, wsID, affID int64) error {
	status, err := s.linkAffiliateStatus(ctx, tx, wsID, affID, true)
	if err != nil {
		return err
	}
	if status == heldsway.AffiliateTerminated {
		return heldsway.Errorf(heldsway.ECONFLICT, "Links cannot be created for a terminated affiliate.")
	}
	return nil
}

func slugTaken(field string) error {
	return &heldsway.Error{Code: heldsway.ECONFLICT, Message: "The slug has already been taken.",
		Details: map[string]any{field: []string{"The slug has already been taken."}}}
}

// CreateLink creates a link for an affiliate of the workspace, generating the
// slug when none is given.
func (s *Store) CreateLink(ctx context.Context, wsID, affID int64, in heldsway.LinkInput) (*heldsway.Link, error) {
	in.Normalize()
	if err := in.Validate(); err != nil {
		return nil, err
	}
	l := in.Link(wsID, affID)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.checkLinkAffiliate(ctx, tx, wsID, affID); err != nil {
			return err
		}
		created, err := s.insertLink(ctx, tx, l)
		if err != nil {
			return err
		}
		if !created {
			return slugTaken("slug")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// insertLink inserts l and records it. It reports false, writing nothing, when
// l's given slug is taken; a generated slug that collides is drawn again. ON
// CONFLICT DO NOTHING rather than catching the violation keeps a PostgreSQL
// transaction usable, which a batch chunk relies on.
func (s *Store) insertLink(ctx context.Context, tx *sql.Tx, l *heldsway.Link) (bool, error) {
	generate := l.Slug == ""
	now := s.Now()
	l.CreatedAt, l.UpdatedAt = now, now
	l.Metadata = compactJSON(l.Metadata)
	for attempt := 0; ; attempt++ {
		if generate {
			l.Slug = newSlug()
		}
		err := tx.QueryRowContext(ctx, `
			INSERT INTO links (workspace_id, affiliate_id, slug, destination_url, campaign, is_active,
				click_count, metadata, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $8)
			ON CONFLICT (workspace_id, slug) DO NOTHING RETURNING id`,
			l.WorkspaceID, l.AffiliateID, l.Slug, l.DestinationURL, nullStrPtr(l.Campaign), l.IsActive,
			nullJSON(l.Metadata), ts(now)).Scan(&l.ID)
		if errors.Is(err, sql.ErrNoRows) {
			if generate && attempt+1 < slugAttempts {
				continue
			}
			if generate {
				return false, fmt.Errorf("no free slug after %d attempts", slugAttempts)
			}
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return true, s.record(ctx, tx, l.WorkspaceID, "link.create", "link", l.ID, nil, l, "link.created")
	}
}

// FindLink returns a link of the workspace.
func (s *Store) FindLink(ctx context.Context, wsID, id int64) (*heldsway.Link, error) {
	if err := s.syncClicks(ctx); err != nil {
		return nil, err
	}
	l, err := scanLink(s.r.QueryRowContext(ctx, `SELECT `+s.Dialect.linkCols()+` FROM links l
		WHERE l.workspace_id = $1 AND l.id = $2`, wsID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, heldsway.NotFound("Link")
	}
	return l, unavailable(err)
}

// linkSorts maps the documented sorts to columns. campaign is nullable: NULL
// sorts as the empty string.
var linkSorts = map[string]sortCol{
	"":                {expr: "l.created_at", isInt: true},
	"created_at":      {expr: "l.created_at", isInt: true},
	"slug":            {expr: "l.slug"},
	"click_count":     {expr: "l.click_count", isInt: true},
	"destination_url": {expr: "l.destination_url"},
	"campaign":        {expr: "COALESCE(l.campaign, '')"},
}

func linkSortValue(sort string, l *heldsway.Link) *string {
	switch sort {
	case "slug":
		return strPtr(l.Slug)
	case "click_count":
		return intStr(l.ClickCount)
	case "destination_url":
		return strPtr(l.DestinationURL)
	case "campaign":
		if l.Campaign == nil {
			return strPtr("")
		}
		return strPtr(*l.Campaign)
	}
	return intStr(ts(l.CreatedAt))
}

// ListLinks pages through the workspace's links.
func (s *Store) ListLinks(ctx context.Context, wsID int64, f heldsway.LinkFilter, o heldsway.ListOptions) (heldsway.PageResult[*heldsway.Link], error) {
	if err := s.syncClicks(ctx); err != nil {
		return heldsway.PageResult[*heldsway.Link]{}, err
	}
	col, ok := linkSorts[o.Sort]
	if !ok {
		return heldsway.PageResult[*heldsway.Link]{}, heldsway.Invalid("sort", "The selected sort is invalid.")
	}
	if o.Sort == "click_count" {
		col.expr = s.Dialect.clickCount()
	}
	if f.RequireAffiliate {
		if _, err := s.linkAffiliateStatus(ctx, s.r, wsID, f.AffiliateID, false); err != nil {
			return heldsway.PageResult[*heldsway.Link]{}, unavailable(err)
		}
	}
	from := `FROM links l`
	where, args := ` WHERE l.workspace_id = $1`, []any{wsID}
	if f.AffiliateID != 0 {
		args = append(args, f.AffiliateID)
		where += " AND l.affiliate_id = $" + strconv.Itoa(len(args))
	}
	if f.IsActive != nil {
		args = append(args, *f.IsActive)
		where += " AND l.is_active = $" + strconv.Itoa(len(args))
	}
	if q := strings.TrimSpace(f.Search); q != "" {
		// The affiliate's name and e-mail are denormalised onto affiliates, so
		// one join within the workspace serves the search.
		from += ` JOIN affiliates a ON a.workspace_id = l.workspace_id AND a.id = l.affiliate_id`
		args = append(args, containsLike(strings.ToLower(q)))
		n := "$" + strconv.Itoa(len(args))
		where += ` AND (LOWER(l.slug) LIKE ` + n + ` ESCAPE '\' OR LOWER(l.destination_url) LIKE ` + n + ` ESCAPE '\'` +
			` OR LOWER(COALESCE(l.campaign, '')) LIKE ` + n + ` ESCAPE '\' OR LOWER(a.name) LIKE ` + n + ` ESCAPE '\'` +
			` OR LOWER(a.email) LIKE ` + n + ` ESCAPE '\')`
	}
	q, args, err := keyset(col, "l.id", o, where, args)
	if err != nil {
		return heldsway.PageResult[*heldsway.Link]{}, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+s.Dialect.linkCols()+` `+from+q, args...)
	if err != nil {
		return heldsway.PageResult[*heldsway.Link]{}, unavailable(err)
	}
	defer rows.Close()
	items := []*heldsway.Link{}
	for rows.Next() {
		l, err := scanLink(rows)
		if err != nil {
			return heldsway.PageResult[*heldsway.Link]{}, unavailable(err)
		}
		items = append(items, l)
	}
	if err := rows.Err(); err != nil {
		return heldsway.PageResult[*heldsway.Link]{}, unavailable(err)
	}
	return pageOf(items, o, func(l *heldsway.Link) (*string, int64) { return linkSortValue(o.Sort, l), l.ID }), nil
}

// UpdateLink applies u to a link of the workspace. An update that changes
// nothing writes nothing (no audit entry, no event).
func (s *Store) UpdateLink(ctx context.Context, wsID, id int64, u heldsway.LinkUpdate) (*heldsway.Link, error) {
	if err := s.syncClicks(ctx); err != nil {
		return nil, err
	}
	if err := u.Validate(); err != nil {
		return nil, err
	}
	var out *heldsway.Link
	err := s.tx(ctx, func(tx *sql.Tx) error {
		before, err := scanLink(tx.QueryRowContext(ctx, `SELECT `+s.Dialect.linkCols()+` FROM links l
			WHERE l.workspace_id = $1 AND l.id = $2`+s.forUpdate(), wsID, id))
		if errors.Is(err, sql.ErrNoRows) {
			return heldsway.NotFound("Link")
		} else if err != nil {
			return err
		}
		after := *before
		u.Apply(&after)
		after.Metadata = compactJSON(after.Metadata)
		if len(diff(before, &after)) == 0 {
			out = before
			return nil
		}
		after.UpdatedAt = s.Now()
		_, err = tx.ExecContext(ctx, `UPDATE links SET slug = $1, destination_url = $2, campaign = $3, is_active = $4,
			metadata = $5, updated_at = $6 WHERE workspace_id = $7 AND id = $8`,
			after.Slug, after.DestinationURL, nullStrPtr(after.Campaign), after.IsActive, nullJSON(after.Metadata),
			ts(after.UpdatedAt), wsID, id)
		if isUniqueViolation(err) {
			return slugTaken("slug")
		} else if err != nil {
			return err
		}
		out = &after
		return s.record(ctx, tx, wsID, "link.update", "link", id, before, &after, "link.updated")
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteLink deletes a link of the workspace and returns it as it was.
func (s *Store) DeleteLink(ctx context.Context, wsID, id int64) (*heldsway.Link, error) {
	if err := s.syncClicks(ctx); err != nil {
		return nil, err
	}
	var out *heldsway.Link
	err := s.tx(ctx, func(tx *sql.Tx) error {
		l, err := scanLink(tx.QueryRowContext(ctx, `SELECT `+s.Dialect.linkCols()+` FROM links l
			WHERE l.workspace_id = $1 AND l.id = $2`+s.forUpdate(), wsID, id))
		if errors.Is(err, sql.ErrNoRows) {
			return heldsway.NotFound("Link")
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM links WHERE workspace_id = $1 AND id = $2`, wsID, id); err != nil {
			return err
		}
		out = l
		return s.record(ctx, tx, wsID, "link.delete", "link", id, l, nil, "link.deleted")
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// TrackingDomain returns the workspace's custom domain for tracking links, or
// "" when it has none.
func (s *Store) TrackingDomain(ctx context.Context, wsID int64) (string, error) {
	var d sql.NullString
	err := s.r.QueryRowContext(ctx, `SELECT custom_domain FROM workspace_settings WHERE workspace_id = $1`, wsID).Scan(&d)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return strings.TrimSpace(d.String), unavailable(err)
}

// Link batches.

// batchChunk is how many items one transaction of a batch creates: large
// enough to amortise the commit, small enough that the single SQLite writer is
// never held for long.
const batchChunk = 100

// BatchLease is how long a batch may sit in processing without progress before
// another worker may take it over (its worker is presumed dead).
const BatchLease = 5 * time.Minute

// batchRequest is the stored request of a batch: the validated items and who
// asked, so the links' audit entries name the API key even though a worker
// creates them.
type batchRequest struct {
	Actor heldsway.Actor       `json:"actor"`
	Items []heldsway.LinkInput `json:"items"`
}

// CreateLinkBatch validates a bulk request and queues it.
func (s *Store) CreateLinkBatch(ctx context.Context, wsID, affID int64, items []heldsway.LinkInput) (*heldsway.LinkBatch, error) {
	if err := heldsway.ValidateLinkBatch(items); err != nil {
		return nil, err
	}
	for i := range items {
		items[i].Metadata = compactJSON(items[i].Metadata)
	}
	req, err := json.Marshal(batchRequest{Actor: heldsway.ActorFrom(ctx), Items: items})
	if err != nil {
		return nil, err
	}
	now := s.Now()
	b := &heldsway.LinkBatch{WorkspaceID: wsID, AffiliateID: affID, Status: heldsway.BatchPending,
		TotalItems: len(items), Items: items, Results: []heldsway.LinkBatchResult{}, CreatedAt: now, UpdatedAt: now}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.checkLinkAffiliate(ctx, tx, wsID, affID); err != nil {
			return err
		}
		if err := s.checkBatchSlugs(ctx, tx, wsID, items); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO link_batches (workspace_id, affiliate_id, status, total_items,
			request, results, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, '[]', $6, $6) RETURNING id`,
			wsID, affID, b.Status, b.TotalItems, string(req), ts(now)).Scan(&b.ID); err != nil {
			return err
		}
		return s.record(ctx, tx, wsID, "link_batch.create", "link_batch", b.ID, nil,
			map[string]any{"affiliate_id": affID, "status": b.Status, "total_items": b.TotalItems}, "")
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// checkBatchSlugs reports the given slugs already taken in the workspace, per item.
func (s *Store) checkBatchSlugs(ctx context.Context, tx *sql.Tx, wsID int64, items []heldsway.LinkInput) error {
	args := []any{wsID}
	var ph []string
	for _, it := range items {
		if it.Slug != "" {
			args = append(args, it.Slug)
			ph = append(ph, "$"+strconv.Itoa(len(args)))
		}
	}
	if len(ph) == 0 {
		return nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT slug FROM links WHERE workspace_id = $1 AND slug IN (`+
		strings.Join(ph, ", ")+`)`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	taken := map[string]bool{}
	for rows.Next() {
		var slug string
		if err := rows.Scan(&slug); err != nil {
			return err
		}
		taken[slug] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	fe := heldsway.FieldErrors{}
	for i, it := range items {
		if taken[it.Slug] {
			fe.Add(fmt.Sprintf("links.%d.slug", i), "The slug has already been taken.")
		}
	}
	return fe.Err()
}

const batchCols = `id, workspace_id, affiliate_id, status, total_items, processed_items, failed_items, request,
	results, created_at, updated_at, completed_at`

func scanBatch(sc scanner) (*heldsway.LinkBatch, heldsway.Actor, error) {
	var b heldsway.LinkBatch
	var req, results string
	var created, updated int64
	var completed sql.NullInt64
	if err := sc.Scan(&b.ID, &b.WorkspaceID, &b.AffiliateID, &b.Status, &b.TotalItems, &b.ProcessedItems,
		&b.FailedItems, &req, &results, &created, &updated, &completed); err != nil {
		return nil, heldsway.Actor{}, err
	}
	var r batchRequest
	if err := json.Unmarshal([]byte(req), &r); err != nil {
		return nil, heldsway.Actor{}, fmt.Errorf("link batch %d: request: %w", b.ID, err)
	}
	b.Items = r.Items
	if err := json.Unmarshal([]byte(results), &b.Results); err != nil {
		return nil, heldsway.Actor{}, fmt.Errorf("link batch %d: results: %w", b.ID, err)
	}
	if b.Results == nil {
		b.Results = []heldsway.LinkBatchResult{}
	}
	b.CreatedAt, b.UpdatedAt, b.CompletedAt = fromTS(created), fromTS(updated), fromNullTS(completed)
	return &b, r.Actor, nil
}

// FindLinkBatch returns a batch of an affiliate of the workspace.
func (s *Store) FindLinkBatch(ctx context.Context, wsID, affID, id int64) (*heldsway.LinkBatch, error) {
	if _, err := s.linkAffiliateStatus(ctx, s.r, wsID, affID, false); err != nil {
		return nil, unavailable(err)
	}
	b, _, err := scanBatch(s.r.QueryRowContext(ctx, `SELECT `+batchCols+` FROM link_batches
		WHERE workspace_id = $1 AND affiliate_id = $2 AND id = $3`, wsID, affID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, heldsway.NotFound("Link batch")
	}
	return b, unavailable(err)
}

// errLeaseLost stops a worker whose batch another worker has taken over.
var errLeaseLost = errors.New("link batch taken over by another worker")

// ProcessLinkBatches claims up to limit batches that are pending, or processing
// without progress for BatchLease, and creates their links. Two workers never
// both take a batch: the claim is a conditional UPDATE, and every chunk
// re-checks the claim (updated_at is the lease token) in its transaction. It
// returns the number of batches it finished.
func (s *Store) ProcessLinkBatches(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		limit = 10
	}
	// This is the one query across workspaces: the worker serves them all.
	stale := ts(s.Now().Add(-BatchLease))
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM link_batches
		WHERE status = 'pending' OR (status = 'processing' AND updated_at < $1) ORDER BY id LIMIT $2`, stale, limit)
	if err != nil {
		return 0, unavailable(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, unavailable(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, unavailable(err)
	}
	done := 0
	for _, id := range ids {
		lease, ok, err := s.claimLinkBatch(ctx, id)
		if err != nil {
			return done, err
		}
		if !ok {
			continue
		}
		switch err := s.runLinkBatch(ctx, id, lease); {
		case errors.Is(err, errLeaseLost):
		case err != nil:
			return done, fmt.Errorf("link batch %d: %w", id, err)
		default:
			done++
		}
	}
	return done, nil
}

// claimLinkBatch takes a batch if it is still claimable and returns the lease
// token (the updated_at it set).
func (s *Store) claimLinkBatch(ctx context.Context, id int64) (int64, bool, error) {
	now := s.Now()
	lease := ts(now)
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE link_batches SET status = 'processing', updated_at = $1
			WHERE id = $2 AND (status = 'pending' OR (status = 'processing' AND updated_at < $3))`,
			lease, id, ts(now.Add(-BatchLease)))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return lease, n == 1, err
}

// runLinkBatch creates the remaining links of a claimed batch, one chunk per
// transaction. Each chunk commits its links, their audit entries and events and
// the batch's progress together, so a restart resumes exactly where it stopped.
func (s *Store) runLinkBatch(ctx context.Context, id, lease int64) error {
	b, actor, err := scanBatch(s.r.QueryRowContext(ctx, `SELECT `+batchCols+` FROM link_batches WHERE id = $1`, id))
	if err != nil {
		return unavailable(err)
	}
	// The links are the requester's doing: their audit entries name the key.
	actx := heldsway.WithActor(ctx, actor)
	for b.ProcessedItems < b.TotalItems {
		end := min(b.ProcessedItems+batchChunk, b.TotalItems)
		err := s.tx(actx, func(tx *sql.Tx) error {
			now := s.Now()
			next := ts(now)
			if next <= lease {
				next = lease + 1 // the token must change even if the clock has not moved
			}
			res, err := tx.ExecContext(actx, `UPDATE link_batches SET updated_at = $1
				WHERE id = $2 AND status = 'processing' AND updated_at = $3`, next, id, lease)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return errLeaseLost
			}
			results, failed, err := s.createBatchChunk(actx, tx, b, b.ProcessedItems, end)
			if err != nil {
				return err
			}
			b.Results = append(b.Results, results...)
			b.ProcessedItems, b.FailedItems = end, b.FailedItems+failed
			var completed sql.NullInt64
			if end == b.TotalItems {
				b.Status = heldsway.BatchCompleted
				if b.FailedItems == b.TotalItems {
					b.Status = heldsway.BatchFailed
				}
				b.CompletedAt = &now
				completed = nullTS(&now)
			}
			rb, err := json.Marshal(b.Results)
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(actx, `UPDATE link_batches SET status = $1, processed_items = $2, failed_items = $3,
				results = $4, completed_at = $5, updated_at = $6 WHERE id = $7`,
				b.Status, b.ProcessedItems, b.FailedItems, string(rb), completed, next, id)
			lease = next
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// createBatchChunk creates items [from, end) of b. An item fails, without
// failing the chunk, when its slug was taken since the batch was queued or the
// affiliate is gone or terminated.
func (s *Store) createBatchChunk(ctx context.Context, tx *sql.Tx, b *heldsway.LinkBatch, from, end int) ([]heldsway.LinkBatchResult, int, error) {
	var results []heldsway.LinkBatchResult
	failed := 0
	affErr := s.checkLinkAffiliate(ctx, tx, b.WorkspaceID, b.AffiliateID)
	if affErr != nil && heldsway.ErrorCode(affErr) == heldsway.EINTERNAL {
		return nil, 0, affErr
	}
	for i := from; i < end; i++ {
		in := b.Items[i]
		r := heldsway.LinkBatchResult{Index: i}
		if affErr != nil {
			r.Status, r.Error = heldsway.BatchItemFailed, heldsway.ErrorMessage(affErr)
			results, failed = append(results, r), failed+1
			continue
		}
		l := in.Link(b.WorkspaceID, b.AffiliateID)
		created, err := s.insertLink(ctx, tx, l)
		if err != nil {
			return nil, 0, err
		}
		if created {
			r.Status, r.LinkID, r.Slug = heldsway.BatchItemCreated, l.ID, l.Slug
		} else {
			r.Status, r.Slug, r.Error = heldsway.BatchItemFailed, in.Slug, "The slug has already been taken."
			failed++
		}
		results = append(results, r)
	}
	return results, failed, nil
}

// Helpers shared by links and coupons.

func nullStrPtr(p *string) sql.NullString {
	if p == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: *p, Valid: true}
}

func nullJSON(v json.RawMessage) sql.NullString {
	if v == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: string(v), Valid: true}
}

// compactJSON stores metadata without insignificant whitespace, so its size is
// what was validated.
func compactJSON(v json.RawMessage) json.RawMessage {
	if v == nil {
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		return v
	}
	return b.Bytes()
}

// containsLike returns a LIKE pattern (used with ESCAPE '\') matching s anywhere.
func containsLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%"
}

// LinkClickCount returns a link's click count, as the API shows it, by id
// alone: for tools and tests that check it against the link's rows in clicks.
func (s *Store) LinkClickCount(ctx context.Context, linkID int64) (int64, error) {
	if err := s.syncClicks(ctx); err != nil {
		return 0, err
	}
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT `+s.Dialect.clickCount()+` FROM links l WHERE l.id = $1`, linkID).Scan(&n)
	return n, unavailable(err)
}
