package auth

import (
	"context"
	"strings"

	"github.com/heldsway/heldsway/internal/heldsway"
)

// MsgInvalidPublishableKey answers an unknown publishable key.
const MsgInvalidPublishableKey = "Invalid publishable key."

// maxKeyLen bounds a presented key before any lookup.
const maxKeyLen = 128

// LookupPublishable resolves a publishable key (as_…) to its principal, through
// the same short-lived cache as bearer tokens, so a revocation on this node is
// seen at once (RevokeKey empties the cache) and on other nodes within
// CacheTTL. It does not judge the key: the caller checks Key.Status, the
// workspace and the origin, and can still answer CORS for a key it refuses.
// Errors: EUNAUTHORIZED MsgInvalidPublishableKey for an unknown key or a
// secret key's identifier; EUNAVAILABLE if the store is down.
func (s *Service) LookupPublishable(ctx context.Context, key string) (*heldsway.Principal, error) {
	if !strings.HasPrefix(key, PublishablePrefix) || len(key) > maxKeyLen {
		return nil, heldsway.Errorf(heldsway.EUNAUTHORIZED, MsgInvalidPublishableKey)
	}
	now := s.Now()
	// Keys are public identifiers, not secrets: the cache holds them under a
	// prefix no token digest (32 raw bytes) can equal.
	ck := "publishable\x00" + key
	s.mu.RLock()
	e, ok := s.cache[ck]
	s.mu.RUnlock()
	if !ok || now.Sub(e.checkedAt) >= s.CacheTTL || now.Before(e.checkedAt) {
		k, w, err := s.Store.FindAPIKeyByKey(ctx, key)
		if heldsway.ErrorCode(err) == heldsway.ENOTFOUND || (err == nil && k.Kind != heldsway.KeyKindPublishable) {
			return nil, heldsway.Errorf(heldsway.EUNAUTHORIZED, MsgInvalidPublishableKey)
		} else if err != nil {
			return nil, err
		}
		e = cacheEntry{p: &heldsway.Principal{Workspace: *w, Key: *k, Scopes: k.Scopes}, checkedAt: now}
		s.mu.Lock()
		if s.cache == nil {
			s.cache = map[string]cacheEntry{}
		}
		s.cache[ck] = e
		s.mu.Unlock()
	}
	return e.p, nil
}

// MarkUsed records a use of key id for its last_used_at (written in batches).
func (s *Service) MarkUsed(id int64) { s.markUsed(id, s.Now()) }
