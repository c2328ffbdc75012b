// Attempt counters in this process.
import { RateLimiterMemory, type RateLimiterAbstract, type RateLimiterRes } from 'rate-limiter-flexible'
import { CountedAttempts, type AttemptLimit, type AttemptLimiter } from './contract.js'

/** rate-limiter-flexible's store behind a RateLimiterMemory: read and written in the same turn, no other count between. */
interface MemoryStorage {
  get (key: string): RateLimiterRes | null
  delete (key: string): boolean
}

/** `ForgetUncounted` in this process: a read and a delete in one turn. */
export async function forgetInMemory (limiter: RateLimiterAbstract, key: string): Promise<void> {
  const storage = (limiter as RateLimiterAbstract & { _memoryStorage: MemoryStorage })._memoryStorage
  const stored = limiter.getKey(key)
  if ((storage.get(stored)?.consumedPoints ?? 1) <= 0) storage.delete(stored)
}

export function memoryAttempts ({ points, durationSeconds: duration }: AttemptLimit): AttemptLimiter {
  return new CountedAttempts(name => new RateLimiterMemory({ keyPrefix: `attempts:${name}`, points, duration }), forgetInMemory)
}
