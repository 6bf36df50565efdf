package track

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"net/http"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// RecordClick records a click the storefront SDK reports (POST
// /v1/track/click, a ?ref=CODE landing) the way the redirect records its own:
// through the same group-commit writer, so it is returned only once committed
// and links.click_count stays equal to the link's rows, with the same 30 s
// dedup per visitor. c carries the workspace, link (0 for a landing without a
// referral link), affiliate, program, the SDK's visitor id and the texts;
// RecordClick sets the click id, the IP hash (of r's peer) and the time, and
// cuts the texts as the redirect does.
//
// It returns the click id, and counted false when the visitor's click on the
// same link (or, without a link, for the same affiliate) within the window
// answers instead. A bot's click is not recorded: "" and counted false. An
// empty user agent is not a bot's here: a browser always sends one (the API
// answers a browser call without it before this), and a server reporting a
// landing may not know it.
func (h *Handler) RecordClick(ctx context.Context, r *http.Request, c heldsway.Click) (clickID string, counted bool, err error) {
	if c.UserAgent != "" && IsBot(c.UserAgent) {
		h.bots.Add(1)
		return "", false, nil
	}
	// SDK visitor ids are the storefront's, not hs_vid: hash them (with the
	// workspace) into the dedup key's 16 bytes. Landings without a link key on
	// the negated affiliate id, which no link id can equal.
	sum := sha256.New()
	var ws [8]byte
	binary.BigEndian.PutUint64(ws[:], uint64(c.WorkspaceID))
	sum.Write(ws[:])
	sum.Write([]byte(c.VisitorID))
	var vid [16]byte
	copy(vid[:], sum.Sum(nil))
	key := dedupKey{visitor: vid, link: c.LinkID}
	if c.LinkID == 0 {
		key.link = -c.AffiliateID
	}
	now := h.now()
	c.ClickID = h.encodeID(h.newClickID(now)) // time-ordered, as the redirect's
	c.IPHash = h.ipHash(r)
	c.CreatedAt = now
	c.UserAgent = clean(c.UserAgent, maxUserAgent)
	c.Referrer = clean(c.Referrer, maxReferrer)
	c.LandingQuery = clean(c.LandingQuery, maxLanding)
	for attempt := 0; attempt < 2; attempt++ {
		prior, fresh, fl := h.dedup.claim(key, now, c.ClickID)
		if !fresh {
			if prior.wait != nil {
				select {
				case <-prior.wait.done:
				case <-ctx.Done():
					return "", false, ctx.Err()
				}
				if prior.wait.err != nil {
					continue // the earlier click failed and was forgotten: count this one
				}
			}
			h.repeats.Add(1)
			return prior.click, false, nil
		}
		// As in the redirect: once queued, the click is waited for even if the
		// caller goes away, so an acknowledged click is a committed one.
		err := h.writer.Write(context.WithoutCancel(ctx), c)
		h.dedup.settle(key, fl, err)
		if err != nil {
			return "", false, err
		}
		h.counted.Add(1)
		return c.ClickID, true, nil
	}
	// A concurrent repeat's click failed, and so did the retry's wait.
	return "", false, heldsway.Errorf(heldsway.EUNAVAILABLE, "The click could not be recorded. Please retry.")
}
