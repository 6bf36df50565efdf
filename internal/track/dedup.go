package track

import (
	"sync"
	"time"
)

// dedup remembers, per visitor and link, the click counted last, so a repeat
// within the window is answered with that click instead of a new one.
//
// It lives in this node's memory. Behind a load balancer without session
// affinity a visitor's repeat may reach another node and be counted there; the
// database-agnostic fix, if that matters, is a unique row per (workspace, link,
// visitor, window bucket) inserted with ON CONFLICT DO NOTHING in the click
// batch, at the cost of a second index write per click. Clicks ~30 s apart
// from one visitor are rare enough that this is left out for now.
//
// Two generations of maps make expiry O(1): every window the current map
// becomes the previous one and the old previous one is dropped, so an entry
// lives between one and two windows and lookups check both. Their keys and
// values hold no pointers (the click id is kept as its 16 bytes), so the garbage
// collector does not scan them however many visitors there are; clicks still
// being written sit in a small map of their own.
type dedup struct {
	window time.Duration
	max    int // entries per generation; past it repeats are simply counted

	mu      sync.Mutex
	cur     map[dedupKey]dedupEntry
	prev    map[dedupKey]dedupEntry
	pending map[dedupKey]*inflight
	rotated time.Time
}

type dedupKey struct {
	visitor [16]byte
	link    int64
}

type dedupEntry struct {
	at    int64 // unix nanoseconds of the counted click
	click [16]byte
}

// dedupVal is the click counted for a key.
type dedupVal struct {
	at    int64
	click string
	// wait is set while the counted click's batch is being written; a repeat
	// waits for it, so it never acknowledges a click that then fails.
	wait *inflight
}

type inflight struct {
	done chan struct{}
	err  error
	val  dedupVal
}

func newDedup(window time.Duration, max int) *dedup {
	return &dedup{window: window, max: max, cur: map[dedupKey]dedupEntry{}, prev: map[dedupKey]dedupEntry{},
		pending: map[dedupKey]*inflight{}}
}

// claim returns the click counted for k within the window (fresh false), or
// records clickID as k's counted click (fresh true) and returns the inflight
// the caller must settle once its write is done.
func (d *dedup) claim(k dedupKey, now time.Time, clickID string) (prior dedupVal, fresh bool, fl *inflight) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rotateLocked(now)
	if p, ok := d.pending[k]; ok {
		return p.val, false, nil
	}
	n := now.UnixNano()
	for _, m := range [2]map[dedupKey]dedupEntry{d.cur, d.prev} {
		if e, ok := m[k]; ok && n-e.at < int64(d.window) && n >= e.at {
			return dedupVal{at: e.at, click: idEncoding.EncodeToString(e.click[:])}, false, nil
		}
	}
	fl = &inflight{done: make(chan struct{})}
	fl.val = dedupVal{at: n, click: clickID, wait: fl}
	d.pending[k] = fl
	return dedupVal{}, true, fl
}

// settle records the outcome of the counted click's write. A failed click is
// forgotten, so the visitor's retry counts.
func (d *dedup) settle(k dedupKey, fl *inflight, err error) {
	d.mu.Lock()
	fl.err = err
	if d.pending[k] == fl {
		delete(d.pending, k)
	}
	var e dedupEntry
	if err == nil && len(d.cur) < d.max && decodeID(fl.val.click, &e.click) {
		e.at = fl.val.at
		d.cur[k] = e
	}
	d.mu.Unlock()
	close(fl.done)
}

// remember records clickID as k's counted click, committed: the path of a
// new visitor, whose key no one else can be claiming.
func (d *dedup) remember(k dedupKey, now time.Time, clickID string) {
	var e dedupEntry
	if !decodeID(clickID, &e.click) {
		return
	}
	e.at = now.UnixNano()
	d.mu.Lock()
	d.rotateLocked(now)
	if len(d.cur) < d.max {
		d.cur[k] = e
	}
	d.mu.Unlock()
}

// expire rotates the generations if a window has passed; claim does it too,
// this lets an idle node free memory.
func (d *dedup) expire(now time.Time) {
	d.mu.Lock()
	d.rotateLocked(now)
	d.mu.Unlock()
}

func (d *dedup) rotateLocked(now time.Time) {
	if now.Sub(d.rotated) < d.window {
		return
	}
	if now.Sub(d.rotated) >= 2*d.window {
		d.prev = map[dedupKey]dedupEntry{}
	} else {
		d.prev = d.cur
	}
	d.cur = map[dedupKey]dedupEntry{}
	d.rotated = now
}
