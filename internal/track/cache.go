package track

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// LinkSource is what the link cache reads. *store.Store implements it.
type LinkSource interface {
	// LinkTargetsBySlug returns every link with slug, in any workspace.
	LinkTargetsBySlug(ctx context.Context, slug string) ([]heldsway.LinkTarget, error)
	// CustomDomains maps each custom domain (lower-case) to its workspace.
	CustomDomains(ctx context.Context) (map[string]int64, error)
	// LinkChangesSince lists links whose link, affiliate, program or workspace
	// row changed after since, and whether custom domains may have changed.
	LinkChangesSince(ctx context.Context, since time.Time) (*heldsway.LinkChanges, error)
	// ExistingLinks reports which ids still exist.
	ExistingLinks(ctx context.Context, ids []int64) (map[int64]bool, error)
}

// Cache tuning. The numbers trade memory for database round trips; none is
// visible to clients.
const (
	// refreshMargin re-reads changes this far behind the previous refresh: a
	// transaction may commit a little after the updated_at it wrote, and
	// nodes' clocks differ a little. Re-invalidating a link costs one reload.
	refreshMargin = 10 * time.Second
	// idleAfter drops entries nobody asked for in this long.
	idleAfter = 10 * time.Minute
	// maxEntries bounds the slugs held; negative entries (unknown slugs) stop
	// being cached past it, so a flood of random slugs cannot grow memory.
	maxEntries = 200_000
	// sweepPerRefresh bounds the cached links checked for deletion per
	// refresh: up to this many the whole cache is checked every time.
	sweepPerRefresh = 2000
)

// target is a link as the redirect uses it, with the redirect URL pre-split so
// a click only concatenates.
type target struct {
	heldsway.LinkTarget
	// prefix is the destination up to and including the separator before the
	// referral parameters ("https://shop.example/p?x=1&"); fragment is "#…" or
	// empty. The destination's own query is kept as written, minus any ref or
	// hs_click of its own, which ours replace.
	prefix, fragment string
	maxAge           int // attribution cookie lifetime, seconds
	// refCookie is the hs_ref cookie's attributes after its value
	// ("; Path=/; Max-Age=…; HttpOnly; SameSite=Lax"), built once per link.
	refCookie string
}

func newTarget(t heldsway.LinkTarget) *target {
	tg := &target{LinkTarget: t, maxAge: max(t.CookieDays, 1) * 86400}
	dest := t.DestinationURL
	if i := strings.IndexByte(dest, '#'); i >= 0 {
		dest, tg.fragment = dest[:i], dest[i:]
	}
	base, query, _ := strings.Cut(dest, "?")
	var kept []string
	for _, kv := range strings.Split(query, "&") {
		if kv == "" {
			continue
		}
		k, _, _ := strings.Cut(kv, "=")
		if uk, err := url.QueryUnescape(k); err == nil && (uk == paramRef || uk == paramClick) {
			continue
		}
		kept = append(kept, kv)
	}
	if len(kept) > 0 {
		tg.prefix = base + "?" + strings.Join(kept, "&") + "&"
	} else {
		tg.prefix = base + "?"
	}
	tg.prefix += paramRef + "=" + url.QueryEscape(t.ReferralCode) + "&" + paramClick + "="
	tg.refCookie = cookieAttrs(tg.maxAge)
	return tg
}

// attributed returns the destination with ref and hs_click appended.
func (t *target) attributed(clickID string) string {
	return t.prefix + clickID + t.fragment
}

type entry struct {
	targets []*target // empty: no link has this slug (a negative entry)
	used    atomic.Int64
}

// Cache maps slugs to links in memory. A miss loads the slug with one query.
// Changes reach it three ways: Invalidate on this node at once (the API calls it
// after link writes); every refresh interval, the links whose link, affiliate,
// program or workspace row has a newer updated_at (written by any node); and a
// sweep that drops cached links whose row was deleted.
type Cache struct {
	src LinkSource
	now func() time.Time

	mu      sync.RWMutex
	slugs   map[string]*entry
	byLink  map[int64]string // cached link id → its slug, to drop renamed links
	domains map[string]int64 // custom domain → workspace
	negs    int              // negative entries in slugs
	gen     uint64           // bumped by each invalidation; a load that saw another gen is not kept
	// loads shares one database read among the concurrent misses of a slug
	// in one generation: after a start or an invalidation, the first second
	// of a hot link's traffic was a read per request (~100 on PostgreSQL,
	// each planned on a fresh connection).
	loads singleflight.Group

	refreshMu   sync.Mutex
	lastRefresh time.Time
	sweepFrom   int64
}

// NewCache returns a cache over src; now is its clock (the clock of the
// updated_at columns it compares against).
func NewCache(src LinkSource, now func() time.Time) *Cache {
	return &Cache{src: src, now: now, slugs: map[string]*entry{}, byLink: map[int64]string{},
		domains: map[string]int64{}, lastRefresh: now()}
}

// LoadDomains reads the custom domains; Refresh repeats it when they change.
func (c *Cache) LoadDomains(ctx context.Context) error {
	d, err := c.src.CustomDomains(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.domains = d
	c.mu.Unlock()
	return nil
}

// Resolve finds the link that answers slug on host. A host that is a
// workspace's custom domain answers only that workspace's links. Any other host
// answers a slug that exactly one workspace has; a slug several workspaces
// share is ambiguous there and resolves to nothing (404), since guessing would
// credit the wrong business. nil, nil means no link.
func (c *Cache) Resolve(ctx context.Context, host, slug string) (*target, error) {
	ts, err := c.lookup(ctx, slug)
	if err != nil {
		return nil, err
	}
	c.mu.RLock()
	ws, custom := c.domains[host]
	c.mu.RUnlock()
	if custom {
		for _, t := range ts {
			if t.WorkspaceID == ws {
				return t, nil
			}
		}
		return nil, nil
	}
	if len(ts) == 1 {
		return ts[0], nil
	}
	return nil, nil
}

func (c *Cache) lookup(ctx context.Context, slug string) ([]*target, error) {
	now := c.now().Unix()
	c.mu.RLock()
	e, ok := c.slugs[slug]
	gen := c.gen
	c.mu.RUnlock()
	if ok {
		if e.used.Load() != now {
			e.used.Store(now)
		}
		return e.targets, nil
	}
	rows, err := c.load(ctx, slug, gen)
	if err != nil {
		return nil, err
	}
	e = &entry{targets: make([]*target, len(rows))}
	for i, r := range rows {
		e.targets[i] = newTarget(r)
	}
	e.used.Store(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	// An invalidation that ran while we read may concern what we read: serve
	// the rows to this request but do not keep them.
	if c.gen != gen {
		return e.targets, nil
	}
	if old, ok := c.slugs[slug]; ok { // another request loaded it meanwhile
		return old.targets, nil
	}
	if len(e.targets) == 0 {
		if c.negs >= maxEntries/2 || len(c.slugs) >= maxEntries {
			return e.targets, nil
		}
		c.negs++
	} else if len(c.slugs) >= maxEntries {
		c.dropIdleLocked(now - 60)
		if len(c.slugs) >= maxEntries {
			return e.targets, nil
		}
	}
	c.slugs[slug] = e
	for _, t := range e.targets {
		c.byLink[t.LinkID] = slug
	}
	return e.targets, nil
}

// load reads slug's links, once for all the requests that miss it together
// in generation gen (a request after an invalidation starts a read of its
// own). The read outlives a caller that leaves, bounded by loadTimeout.
func (c *Cache) load(ctx context.Context, slug string, gen uint64) ([]heldsway.LinkTarget, error) {
	ch := c.loads.DoChan(strconv.FormatUint(gen, 36)+"/"+slug, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loadTimeout)
		defer cancel()
		return c.src.LinkTargetsBySlug(lctx, slug)
	})
	select {
	case res := <-ch:
		rows, _ := res.Val.([]heldsway.LinkTarget)
		return rows, res.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// loadTimeout bounds a shared read of a slug's links.
const loadTimeout = 10 * time.Second

// Invalidate forgets slugs on this node at once; the next request reloads them.
// The API calls it after creating, updating or deleting a link (with the old
// and the new slug when a slug changes).
func (c *Cache) Invalidate(slugs ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, s := range slugs {
		c.dropLocked(strings.ToLower(s))
	}
}

// InvalidateAll forgets every slug, for changes that touch many links at once
// (an affiliate's status, a program's cookie window), where the caller does not
// know the slugs. Other nodes catch up at their next refresh.
func (c *Cache) InvalidateAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.slugs = map[string]*entry{}
	c.byLink = map[int64]string{}
	c.negs = 0
}

// InvalidateLink forgets on this node at once the slug the link is cached
// under, whatever it was (an update may have renamed it), and slug, its slug
// now (which may be remembered as unknown).
func (c *Cache) InvalidateLink(linkID int64, slug string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if old, ok := c.byLink[linkID]; ok {
		c.dropLocked(old)
	}
	c.dropLocked(strings.ToLower(slug))
}

// InvalidateAffiliate forgets on this node at once the cached links of one
// affiliate: after its status, referral code or program changes, or it is
// deleted.
func (c *Cache) InvalidateAffiliate(workspaceID, affiliateID int64) {
	c.invalidateMatching(func(t *target) bool { return t.WorkspaceID == workspaceID && t.AffiliateID == affiliateID })
}

// InvalidateProgram forgets on this node at once the cached links whose
// affiliate is in the program: after its status or cookie window changes.
func (c *Cache) InvalidateProgram(workspaceID, programID int64) {
	c.invalidateMatching(func(t *target) bool { return t.WorkspaceID == workspaceID && t.ProgramID == programID })
}

// InvalidateWorkspace forgets on this node at once the cached links of one
// workspace: after a change to it or to its settings.
func (c *Cache) InvalidateWorkspace(workspaceID int64) {
	c.invalidateMatching(func(t *target) bool { return t.WorkspaceID == workspaceID })
}

// invalidateMatching drops every slug one of whose links matches. It walks the
// whole cache under the lock (a few milliseconds at maxEntries) rather than
// keeping an index per affiliate and program: these writes are rare next to
// redirects, and dropping only the matching slugs spares every other
// workspace's links the reload that InvalidateAll would cost them.
func (c *Cache) invalidateMatching(match func(*target) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for s, e := range c.slugs {
		for _, t := range e.targets {
			if match(t) {
				c.dropLocked(s)
				break
			}
		}
	}
}

func (c *Cache) dropLocked(slug string) {
	e, ok := c.slugs[slug]
	if !ok {
		return
	}
	delete(c.slugs, slug)
	if len(e.targets) == 0 {
		c.negs--
	}
	for _, t := range e.targets {
		if c.byLink[t.LinkID] == slug {
			delete(c.byLink, t.LinkID)
		}
	}
}

func (c *Cache) dropIdleLocked(before int64) {
	for s, e := range c.slugs {
		if e.used.Load() < before {
			c.dropLocked(s)
		}
	}
}

// Len reports the slugs held (including unknown ones remembered as such).
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.slugs)
}

// Refresh applies what changed in the database since the previous refresh:
// links whose link, affiliate, program or workspace row was updated (by any
// node) are dropped, custom domains are reloaded if settings changed, cached
// links whose row is gone are dropped, and idle entries expire. Run it every
// couple of seconds (Handler does).
func (c *Cache) Refresh(ctx context.Context) error {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	start := c.now()
	ch, err := c.src.LinkChangesSince(ctx, c.lastRefresh.Add(-refreshMargin))
	if err != nil {
		return err
	}
	if ch.Domains {
		if err := c.LoadDomains(ctx); err != nil {
			return err
		}
	}
	if len(ch.Links) > 0 {
		c.mu.Lock()
		c.gen++
		for _, l := range ch.Links {
			c.dropLocked(l.Slug) // a new link replaces a negative entry
			if old, ok := c.byLink[l.ID]; ok {
				c.dropLocked(old) // the link's previous slug
			}
		}
		c.mu.Unlock()
	}
	if err := c.sweep(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	c.dropIdleLocked(start.Add(-idleAfter).Unix())
	c.mu.Unlock()
	c.lastRefresh = start
	return nil
}

// sweep checks up to sweepPerRefresh cached links, continuing where the previous
// sweep stopped, and drops those whose row no longer exists.
func (c *Cache) sweep(ctx context.Context) error {
	c.mu.RLock()
	ids := make([]int64, 0, len(c.byLink))
	for id := range c.byLink {
		ids = append(ids, id)
	}
	c.mu.RUnlock()
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	i, _ := slices.BinarySearch(ids, c.sweepFrom)
	if i >= len(ids) {
		i = 0
	}
	batch := ids[i:min(len(ids), i+sweepPerRefresh)]
	if len(batch) < sweepPerRefresh && i > 0 {
		batch = append(slices.Clip(batch), ids[:min(i, sweepPerRefresh-len(batch))]...)
	}
	exist, err := c.src.ExistingLinks(ctx, batch)
	if err != nil {
		return err
	}
	c.sweepFrom = batch[len(batch)-1] + 1
	var gone []int64
	for _, id := range batch {
		if !exist[id] {
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 {
		c.mu.Lock()
		c.gen++
		for _, id := range gone {
			if s, ok := c.byLink[id]; ok {
				c.dropLocked(s)
			}
		}
		c.mu.Unlock()
	}
	return nil
}

// normHost lower-cases a Host header and strips its port and trailing dot.
func normHost(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		if _, err := strconv.Atoi(h[i+1:]); err == nil || i == len(h)-1 {
			h = h[:i]
		}
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}
