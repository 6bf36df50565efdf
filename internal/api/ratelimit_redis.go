package api

import (
	"context"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// RedisLimiter keeps budgets in Redis, so every node sharing it enforces one
// budget per key. It uses GCRA (redis_rate): a budget of limit per minute with a
// burst of limit, which refills continuously rather than at window edges.
type RedisLimiter struct {
	limiter *redis_rate.Limiter
	prefix  string
}

// NewRedisLimiter connects to the Redis server at url (redis://host:port/db).
func NewRedisLimiter(url string) (*RedisLimiter, *redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, nil, err
	}
	rdb := redis.NewClient(opt)
	return &RedisLimiter{limiter: redis_rate.NewLimiter(rdb), prefix: "heldsway:rl:"}, rdb, nil
}

func (l *RedisLimiter) Take(ctx context.Context, key string, limit uint64) (uint64, uint64, uint64, bool, error) {
	res, err := l.limiter.Allow(ctx, l.prefix+key, redis_rate.PerMinute(int(limit)))
	if err != nil {
		return 0, 0, 0, false, err
	}
	now := time.Now()
	reset := now.Add(res.ResetAfter)
	if res.Allowed == 0 {
		reset = now.Add(res.RetryAfter)
	}
	return limit, uint64(max(res.Remaining, 0)), uint64(reset.UnixNano()), res.Allowed > 0, nil
}
