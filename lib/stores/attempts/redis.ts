// Attempt counters on Redis, shared by every process: a client gets no fresh allowance from each process.
import type { Redis } from 'ioredis'
import { RateLimiterRedis } from 'rate-limiter-flexible'
import { CountedAttempts, type AttemptLimit, type AttemptLimiter } from './contract.js'

export function redisAttempts ({ points, durationSeconds: duration }: AttemptLimit, client: Redis, prefix: string): AttemptLimiter {
  return new CountedAttempts(name => new RateLimiterRedis({
    storeClient: client,
    keyPrefix: `${prefix}attempts:${name}`,
    points,
    duration,
    // A refused key stays refused in this process until its window ends: hammering it costs Redis nothing.
    inMemoryBlockOnConsumed: points + 1
    // No insuranceLimiter: counting in memory while Redis is away would give every process its own allowance.
    // A store error fails the attempt closed (SERVICE_UNAVAILABLE) instead.
  }))
}
