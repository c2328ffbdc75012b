// Attempt counters on Redis, shared by every process: a client gets no fresh allowance from each process.
import { RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible'
import type { RedisClient } from '../redis-connection.js'
import { redisKeys } from '../redis-keys.js'
import { CountedAttempts, type AttemptLimit, type AttemptLimiter, type ForgetUncounted } from './contract.js'

// KEYS: the counter (rate-limiter-flexible's: the count as an integer). A script: no count between the read and the delete.
const forgetScript = `
local counted = redis.call('GET', KEYS[1])
if counted and tonumber(counted) <= 0 then redis.call('DEL', KEYS[1]) end
return 1`

/** `ForgetUncounted` on Redis. */
export function forgetOnRedis (client: RedisClient): ForgetUncounted {
  return async (limiter: RateLimiterAbstract, key: string) => {
    await client.eval(forgetScript, 1, limiter.getKey(key))
  }
}

export function redisAttempts ({ points, durationSeconds: duration }: AttemptLimit, client: RedisClient, prefix: string): AttemptLimiter {
  return new CountedAttempts(name => new RateLimiterRedis({
    storeClient: client,
    // One key per counter, each read and written alone: any slot of a cluster will do.
    keyPrefix: redisKeys(prefix).attempts(name),
    points,
    duration
    // No inMemoryBlockOnConsumed: a refused attempt gives its point back (contract.ts), and a key blocked in this
    // process would stay refused for the window after the attempts in flight that filled it succeed; nor could the
    // give-back tell a refusal Redis counted from one it never saw.
    // No insuranceLimiter: counting in memory while Redis is away would give every process its own allowance.
    // A store error fails the attempt closed (SERVICE_UNAVAILABLE) instead.
  }), forgetOnRedis(client))
}
