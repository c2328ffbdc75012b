// Attempt counters in this process.
import { RateLimiterMemory } from 'rate-limiter-flexible'
import { CountedAttempts, type AttemptLimit, type AttemptLimiter } from './contract.js'

export function memoryAttempts ({ points, durationSeconds: duration }: AttemptLimit): AttemptLimiter {
  return new CountedAttempts(name => new RateLimiterMemory({ keyPrefix: `attempts:${name}`, points, duration }))
}
