// Attempt counters on Redis, shared by every process: a client gets no fresh allowance from each process.
import { RateLimiterRedis } from 'rate-limiter-flexible'
import type { RedisClient } from '../redis-connection.js'
import { redisKeys } from '../redis-keys.js'
import { CountedAttempts, type AttemptLimit, type AttemptLimiter } from './contract.js'

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
  }))
}
