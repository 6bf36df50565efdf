// Package track is the click-tracking hot path: GET /r/{slug} resolves a
// referral link from an in-memory cache, records the click through a
// group-commit writer, sets the attribution cookie and redirects.
//
// The redirect answers only after its click has committed, so an acknowledged
// click is never lost; batching many requests' clicks into one transaction is
// what keeps that fast.
package track

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// Names on the wire.
const (
	// CookieRef carries the click id for the program's cookie window; a
	// conversion that names it (or the hs_click parameter) claims the click.
	CookieRef = "hs_ref"
	// CookieVisitor identifies a browser; a request without it is a new visitor.
	CookieVisitor = "hs_vid"
	paramRef      = "ref"
	paramClick    = "hs_click"
)

// Defaults of Options.
const (
	DefaultRefreshInterval = 2 * time.Second
	DefaultDedupWindow     = 30 * time.Second
	// visitorMaxAge is the visitor cookie's lifetime: 400 days, the most
	// browsers honour (Chrome caps longer Max-Age values to it).
	visitorMaxAge = 400 * 24 * 3600
	dedupMax      = 500_000 // entries per 30 s generation, ~40 MB at most
	secretName    = "click_ip_hash"
)

// Stored text is cut to these many bytes: the clicks table must stay narrow.
const (
	maxUserAgent = 512
	maxReferrer  = 1024
	maxLanding   = 1024
)

// Store is what the tracker needs from the database. *store.Store implements it.
type Store interface {
	LinkSource
	// RecordClicks durably records a batch of clicks with fresh click ids
	// and their links' click_count; it returns once they are acknowledged.
	RecordClicks(ctx context.Context, clicks []heldsway.Click) error
	// InstallationSecret returns (creating once) a per-installation secret.
	InstallationSecret(ctx context.Context, name string) ([]byte, error)
}

// Options tune a Handler; zero values take the defaults.
type Options struct {
	// Now is the clock of click times, the dedup window and the cache's change
	// feed; it must agree with the clock that writes updated_at (the store's).
	Now func() time.Time
	// NewID returns a fresh 16-byte random id; click and visitor ids are its
	// base64url form (22 characters).
	NewID           func() [16]byte
	Logger          *slog.Logger
	RefreshInterval time.Duration
	DedupWindow     time.Duration
	MaxBatch        int
	// Writers is how many click batches may be in flight at once; zero takes
	// the store's ClickWriters if it has that method, else 1.
	Writers int
}

// Handler serves GET /r/{slug}. Create it with New and Close it after the HTTP
// server has shut down, so queued clicks are written.
type Handler struct {
	cache  *Cache
	writer *Writer
	dedup  *dedup
	secret []byte
	macs   sync.Pool // of hash.Hash: HMAC-SHA256 keyed with secret
	now    func() time.Time
	newID  func() [16]byte
	log    *slog.Logger

	stop   context.CancelFunc
	bgDone chan struct{}

	counted, repeats, bots, untracked atomic.Int64
}

// New reads the click secret and the custom domains, and starts the click
// writer and the cache refresher.
func New(ctx context.Context, st Store, o Options) (*Handler, error) {
	if o.Now == nil {
		o.Now = func() time.Time { return time.Now().UTC() }
	}
	if o.NewID == nil {
		o.NewID = randomID
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = DefaultRefreshInterval
	}
	if o.DedupWindow <= 0 {
		o.DedupWindow = DefaultDedupWindow
	}
	secret, err := st.InstallationSecret(ctx, secretName)
	if err != nil {
		return nil, err
	}
	cache := NewCache(st, o.Now)
	if err := cache.LoadDomains(ctx); err != nil {
		return nil, err
	}
	h := &Handler{cache: cache, dedup: newDedup(o.DedupWindow, dedupMax), secret: secret,
		now: o.Now, newID: o.NewID, log: o.Logger, bgDone: make(chan struct{})}
	h.macs.New = func() any { return hmac.New(sha256.New, secret) }
	if o.Writers <= 0 {
		o.Writers = 1
		if cw, ok := st.(interface{ ClickWriters() int }); ok {
			o.Writers = cw.ClickWriters()
		}
	}
	h.writer = NewWriter(h.insertLogged(st.RecordClicks), o.MaxBatch, o.Writers)
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	h.stop = stop
	go h.refreshLoop(bg, o.RefreshInterval)
	return h, nil
}

// insertLogged logs a failed batch once, rather than once per waiting request.
func (h *Handler) insertLogged(insert InsertFunc) InsertFunc {
	return func(ctx context.Context, clicks []heldsway.Click) error {
		err := insert(ctx, clicks)
		if err != nil {
			h.log.Error("click batch failed", "clicks", len(clicks), "err", err)
		}
		return err
	}
}

func (h *Handler) refreshLoop(ctx context.Context, every time.Duration) {
	defer close(h.bgDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := h.cache.Refresh(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("link cache refresh", "err", err)
		}
		h.dedup.expire(h.now())
	}
}

// Close stops the refresher and writes every queued click. Call it after the
// HTTP server's Shutdown, which waits for the requests that queued them. Calling
// it again is harmless.
func (h *Handler) Close(ctx context.Context) error {
	h.stop()
	<-h.bgDone
	return h.writer.Close(ctx)
}

// Invalidate forgets slugs on this node at once (see Cache.Invalidate).
func (h *Handler) Invalidate(slugs ...string) { h.cache.Invalidate(slugs...) }

// InvalidateAll forgets every cached link on this node (see Cache.InvalidateAll).
func (h *Handler) InvalidateAll() { h.cache.InvalidateAll() }

// InvalidateLink forgets one link on this node at once (see Cache.InvalidateLink).
func (h *Handler) InvalidateLink(linkID int64, slug string) { h.cache.InvalidateLink(linkID, slug) }

// InvalidateAffiliate forgets one affiliate's links on this node at once.
func (h *Handler) InvalidateAffiliate(workspaceID, affiliateID int64) {
	h.cache.InvalidateAffiliate(workspaceID, affiliateID)
}

// InvalidateProgram forgets the links of one program's affiliates on this node at once.
func (h *Handler) InvalidateProgram(workspaceID, programID int64) {
	h.cache.InvalidateProgram(workspaceID, programID)
}

// InvalidateWorkspace forgets one workspace's links on this node at once.
func (h *Handler) InvalidateWorkspace(workspaceID int64) { h.cache.InvalidateWorkspace(workspaceID) }

// ReloadDomains re-reads the custom domains on this node at once.
func (h *Handler) ReloadDomains(ctx context.Context) error { return h.cache.LoadDomains(ctx) }

// Refresh applies other nodes' changes now instead of at the next tick.
func (h *Handler) Refresh(ctx context.Context) error { return h.cache.Refresh(ctx) }

// Stats counts the redirects served since start: clicks recorded, repeats
// answered with an earlier click, bots, and links that do not track; and the
// transactions (batches) the clicks were written in.
type Stats struct {
	Counted, Repeats, Bots, Untracked int64
	Batches                           int64
}

// Stats returns the redirect counters.
func (h *Handler) Stats() Stats {
	b, _ := h.writer.Stats()
	return Stats{Counted: h.counted.Load(), Repeats: h.repeats.Load(), Bots: h.bots.Load(), Untracked: h.untracked.Load(),
		Batches: b}
}

// ServeHTTP answers GET /r/{slug}:
//   - unknown (or ambiguous) slug: 404 page;
//   - a link that does not track (inactive link; affiliate, program or
//     workspace not active), a bot, or a HEAD request: 302 to the destination
//     as written, with no click, no cookie and no referral parameters;
//   - otherwise: the click is committed, then 302 to the destination with
//     ref=<referral code>&hs_click=<click id> appended (its own query and
//     fragment kept), the hs_ref attribution cookie for the program's cookie
//     window and, for a new visitor, the hs_vid cookie. A repeat by the same
//     visitor on the same link within the dedup window is answered with the
//     earlier click and not counted again.
//   - the click could not be written: 503 page; the client may retry.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("slug")
	if slug == "" {
		slug = r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	}
	slug = strings.ToLower(slug)
	if !validSlug(slug) {
		NotFound(w, r)
		return
	}
	t, err := h.cache.Resolve(r.Context(), normHost(r.Host), slug)
	if err != nil {
		h.log.Warn("link lookup", "slug", slug, "err", err)
		Unavailable(w, r)
		return
	}
	if t == nil {
		NotFound(w, r)
		return
	}
	ua := r.UserAgent()
	switch {
	case !t.Tracks(), r.Method != http.MethodGet:
		h.untracked.Add(1)
		redirect(w, t.DestinationURL)
		return
	case IsBot(ua):
		h.bots.Add(1)
		redirect(w, t.DestinationURL)
		return
	}

	now := h.now()
	var vid [16]byte
	newVisitor := true
	if c, err := r.Cookie(CookieVisitor); err == nil {
		if decodeID(c.Value, &vid) {
			newVisitor = false
		}
	}
	if newVisitor {
		vid = h.newClickID(now) // time-ordered too: new visitors append to clicks_visitor
	}
	clickID := h.encodeID(h.newClickID(now))
	key := dedupKey{visitor: vid, link: t.LinkID}
	if newVisitor {
		// A visitor id made just now has no earlier click and nobody else
		// knows it yet: no repeat to look for, only the click to remember.
		if err := h.writer.Write(context.WithoutCancel(r.Context()), h.click(r, t, clickID, vid, ua, now)); err != nil {
			Unavailable(w, r)
			return
		}
		h.dedup.remember(key, now, clickID)
		h.counted.Add(1)
		h.attribute(w, r, t, clickID, vid, true)
		return
	}
	for attempt := 0; attempt < 2; attempt++ {
		prior, fresh, fl := h.dedup.claim(key, now, clickID)
		if !fresh {
			if prior.wait != nil {
				select {
				case <-prior.wait.done:
				case <-r.Context().Done():
					return
				}
				if prior.wait.err != nil {
					continue // the earlier click failed and was forgotten: count this one
				}
			}
			h.repeats.Add(1)
			h.attribute(w, r, t, prior.click, vid, newVisitor)
			return
		}
		c := h.click(r, t, clickID, vid, ua, now)
		// Once queued, the click is waited for even if the visitor goes away:
		// every committed click then gets its 302 written, so the clicks
		// stored and the 302s served stay equal (the wait is bounded by the
		// writer's transaction timeout).
		err := h.writer.Write(context.WithoutCancel(r.Context()), c)
		h.dedup.settle(key, fl, err)
		if err != nil {
			Unavailable(w, r)
			return
		}
		h.counted.Add(1)
		h.attribute(w, r, t, clickID, vid, newVisitor)
		return
	}
	Unavailable(w, r) // a concurrent repeat's click failed too
}

// click is the row a counted redirect stores.
func (h *Handler) click(r *http.Request, t *target, clickID string, vid [16]byte, ua string, now time.Time) heldsway.Click {
	return heldsway.Click{WorkspaceID: t.WorkspaceID, LinkID: t.LinkID, AffiliateID: t.AffiliateID,
		ProgramID: t.ProgramID, ClickID: clickID, VisitorID: h.encodeID(vid), IPHash: h.ipHash(r),
		UserAgent: clean(ua, maxUserAgent), Referrer: clean(r.Referer(), maxReferrer),
		LandingQuery: clean(r.URL.RawQuery, maxLanding), CreatedAt: now}
}

// attribute sets the cookies and redirects with the referral parameters.
// The Set-Cookie lines are written directly: every part is known to be valid
// (ids are base64url, the attributes fixed per link), so http.SetCookie's
// checks and formatting, a good part of the redirect's own CPU time, are
// not needed.
func (h *Handler) attribute(w http.ResponseWriter, r *http.Request, t *target, clickID string, vid [16]byte, newVisitor bool) {
	secure := ""
	if isTLS(r) {
		secure = "; Secure"
	}
	cookies := make([]string, 1, 2)
	cookies[0] = CookieRef + "=" + clickID + t.refCookie + secure
	if newVisitor {
		cookies = append(cookies, CookieVisitor+"="+h.encodeID(vid)+visitorCookieAttrs+secure)
	}
	hd := w.Header()
	hd["Set-Cookie"] = cookies
	redirect(w, t.attributed(clickID))
}

// cookieAttrs are a first-party cookie's attributes for maxAge seconds.
func cookieAttrs(maxAge int) string {
	return "; Path=/; Max-Age=" + strconv.Itoa(maxAge) + "; HttpOnly; SameSite=Lax"
}

var visitorCookieAttrs = cookieAttrs(visitorMaxAge)

// The redirect's fixed headers, shared: net/http only reads header values.
var (
	// A cached redirect would skip the click and the cookie.
	noStore        = []string{"private, no-store"}
	referrerPolicy = []string{"no-referrer-when-downgrade"}
)

func redirect(w http.ResponseWriter, location string) {
	hd := w.Header()
	hd["Location"] = []string{location}
	hd["Cache-Control"] = noStore
	hd["Referrer-Policy"] = referrerPolicy
	w.WriteHeader(http.StatusFound)
}

// idEncoding writes ids in 22 URL- and cookie-safe characters: base64url with
// its alphabet in ASCII order, so ids that start with a timestamp also sort by
// time as text.
var idEncoding = base64.NewEncoding("-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz").
	WithPadding(base64.NoPadding)

func (h *Handler) encodeID(b [16]byte) string { return idEncoding.EncodeToString(b[:]) }

// decodeID reads a 22-character id into b.
func decodeID(s string, b *[16]byte) bool {
	if len(s) != 22 {
		return false
	}
	n, err := idEncoding.Decode(b[:], []byte(s))
	return err == nil && n == 16
}

// newClickID is a set bit, 47 bits of milliseconds since the epoch, then 80
// random bits. Random ids would land all over the (workspace_id, click_id)
// unique index, so every click of a batch would dirty (and write to the WAL) a
// page of its own; time-ordered ones append to the same few pages. 80 bits
// stay unguessable. The set bit makes the id start with a capital letter ('V'
// until 2109, 'Z' by 2527): with the milliseconds alone it started with '-',
// which a spreadsheet reads as a formula, so CSV exports had to quote every
// one. Ids made before start with '-' and sort before these.
func (h *Handler) newClickID(now time.Time) [16]byte {
	b := h.newID()
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	b[0] |= 0x80
	return b
}

func randomID() [16]byte {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return b
}

// ipHash is HMAC-SHA256 of the peer address under the installation's secret,
// cut to 16 bytes (ample to tell addresses apart, half the bytes per row). The
// peer address is used, as everywhere in HeldSway: behind a proxy, have the
// proxy set it (PROXY protocol) rather than trusting X-Forwarded-For. The
// keyed hashes are pooled: setting one up costs more than hashing an address.
func (h *Handler) ipHash(r *http.Request) []byte {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	m := h.macs.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(ip))
	var sum [sha256.Size]byte
	out := make([]byte, 16)
	copy(out, m.Sum(sum[:0]))
	h.macs.Put(m)
	return out
}

// isTLS reports whether the visitor reached us over HTTPS, directly or through
// a proxy that says so.
func isTLS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	p, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	return strings.EqualFold(strings.TrimSpace(p), "https")
}

// validSlug accepts what a slug can be (lower-case letters, digits, dashes and
// underscores, up to 64), so junk never reaches the cache or the database.
func validSlug(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// clean makes header text safe to store: valid UTF-8 (PostgreSQL rejects
// anything else, which would fail the whole batch), no NUL, at most n bytes
// cut on a character boundary.
func clean(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
