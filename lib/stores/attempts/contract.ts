// Credential-attempt limits (PROTOCOL.md section 8): email/password attempts counted per client IP and per email,
// in this process or on Redis so that every process shares the counters. The counting is rate-limiter-flexible's:
// a fixed window that opens with the first counted attempt; the backends differ only in where the counters live.
import { createHash } from 'node:crypto'
import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible'
import { clientNetwork } from '../../client-network.js'
import { normalizeEmail } from '../../auth/emails.js'

/** The resolved `attemptLimit` option. */
export interface AttemptLimit {
  /** Failures allowed per IP and per email inside one window. */
  points: number
  durationSeconds: number
}

/** `ip` is the client's address; an IPv6 one counts for its whole /64 (see `clientNetwork`). */
export interface AttemptLimiter {
  /**
   * Counts an attempt before its password is checked, so parallel attempts cannot slip past the limit between a
   * check and a count. Resolves 0 when it may go on, or the milliseconds until its IP or email may try again.
   * Rejects when the counters cannot be reached, and the caller fails closed.
   */
  begin (ip: string | null, email: string): Promise<number>
  /** The attempt succeeded: it stops counting against the IP, and the email's failures are forgotten. */
  succeeded (ip: string | null, email: string): Promise<void>
  /**
   * The attempt's password was never checked (the password queue was full): it stops counting against the IP and the
   * email, so that a flood of the queue cannot spend a user's attempts. Never for a check that ran, even one that
   * threw or timed out.
   */
  unchecked (ip: string | null, email: string): Promise<void>
}

/** The limiter of `attemptLimit: false`. */
export const unlimited: AttemptLimiter = {
  begin: async () => 0,
  succeeded: async () => {},
  unchecked: async () => {}
}

// As `verifyCredentials` is handed it (normalizeEmail), so the spellings of one email share one counter; hashed, so a
// key stays small and no email address sits in Redis.
function emailKey (email: string): string {
  return createHash('sha256').update(normalizeEmail(email)).digest('base64url')
}

/**
 * Drops `key`'s counter on `limiter` if it counts no attempt (0 or below), in one step no other attempt's count can come
 * between (another attempt's point would go with it).
 */
export type ForgetUncounted = (limiter: RateLimiterAbstract, key: string) => Promise<void>

/** Two counters, per IP and per email, each a rate-limiter-flexible limiter named `ip` or `email`. */
export class CountedAttempts implements AttemptLimiter {
  readonly #byIp: RateLimiterAbstract
  readonly #byEmail: RateLimiterAbstract
  readonly #forget: ForgetUncounted

  constructor (limiter: (name: 'ip' | 'email') => RateLimiterAbstract, forget: ForgetUncounted) {
    this.#byIp = limiter('ip')
    this.#byEmail = limiter('email')
    this.#forget = forget
  }

  async begin (ip: string | null, email: string): Promise<number> {
    // Without a client address (the application API) only the email is counted.
    const network = ip === null ? null : clientNetwork(ip)
    const key = emailKey(email)
    // The counters this attempt has counted on, the one that refused it included (a refusal counts too), each with the
    // time its window ends.
    const counted: Counted[] = []
    try {
      // A counter at its limit refuses before either counts: the other opens no window for an attempt that goes no
      // further (a flood for one email from an IPv6 network's /64s would leave a counter per /64).
      const [byIp, byEmail] = await Promise.all([network === null ? null : this.#byIp.get(network), this.#byEmail.get(key)])
      const spent = [byIp, byEmail].filter(counter => counter !== null && counter.consumedPoints >= this.#byEmail.points && counter.msBeforeNext > 0)
      if (spent.length > 0) return Math.max(1, ...spent.map(counter => Math.ceil(counter!.msBeforeNext)))
      // Counted all the same: attempts begun together pass the reads, and the counters refuse past the limit.
      if (network !== null) await count(counted, this.#byIp, network)
      await count(counted, this.#byEmail, key)
      return 0
    } catch (err) {
      // The library refuses with its result; anything else is the store failing.
      if (!(err instanceof RateLimiterRes)) throw err
      // Refused, the password is never checked: its points go back, or a burst of correct logins at once (one
      // address's users, more than `points` in flight) kept the address refused for the rest of the window.
      await Promise.all(counted.map(([limiter, key, windowEnds]) => giveBack(limiter, key, this.#forget, windowEnds)))
      return Math.max(1, Math.ceil(err.msBeforeNext))
    }
  }

  async succeeded (ip: string | null, email: string): Promise<void> {
    // The address's point goes back as an unchecked attempt's does: its window may have ended during the check.
    await Promise.all([
      ip === null ? null : giveBack(this.#byIp, clientNetwork(ip), this.#forget),
      this.#byEmail.delete(emailKey(email))
    ])
  }

  async unchecked (ip: string | null, email: string): Promise<void> {
    await Promise.all([
      ip === null ? null : giveBack(this.#byIp, clientNetwork(ip), this.#forget),
      giveBack(this.#byEmail, emailKey(email), this.#forget)
    ])
  }
}

/** A point counted: its counter, key, and when its window ends (this process's clock). */
type Counted = [RateLimiterAbstract, string, number]

/** Counts one point on `limiter`, noted in `counted` whether or not the counter refuses it. */
async function count (counted: Counted[], limiter: RateLimiterAbstract, key: string): Promise<void> {
  try {
    counted.push([limiter, key, Date.now() + (await limiter.consume(key)).msBeforeNext])
  } catch (err) {
    if (err instanceof RateLimiterRes) counted.push([limiter, key, Date.now() + err.msBeforeNext])
    throw err
  }
}

/**
 * One point back on a counter. rate-limiter-flexible's `reward` on a counter whose window has ended meanwhile opens a
 * new window at -1 (one attempt more than `points`): that point is taken back. So is one that landed in a later window
 * than the point's (its end `windowEnds`: a later one ends a whole window after it, the same one then give or take a
 * round trip), which would take a point another attempt counted there, one more password checked. A counter left
 * counting nothing goes: kept for the rest of its window, a client sending passwords for new emails and leaving before
 * their checks (each given back) left one per email, in memory or on Redis, without bound.
 */
async function giveBack (limiter: RateLimiterAbstract, key: string, forget: ForgetUncounted, windowEnds?: number): Promise<void> {
  const { consumedPoints, msBeforeNext } = await limiter.reward(key)
  const later = windowEnds !== undefined && Date.now() + msBeforeNext - windowEnds > limiter.duration * 500
  if (consumedPoints < 0 || later) await limiter.penalty(key)
  if (consumedPoints <= 0 && !later) await forget(limiter, key)
}
