// Failures of Redis (or a store) that the plugin retries and that end by themselves: a reconnect, a replay of the
// revocations, the next login's read of the clock. A failover fails calls for a few seconds (4 to 7 s measured on a
// Redis Cluster with replicas), so one rule for all: an outage's start is a warning, its end is told at info, and only
// one that outlasts a failover is an error.
import type { FastifyBaseLogger } from 'fastify'

/** How long an outage lasts before it is more than a failover: its first failure past it is logged as an error, once. */
export const outlastsFailoverMs = 10_000

export class Outages {
  readonly #quietMs: number
  /** When the outage going on began (epoch milliseconds); null between outages. */
  #since: number | null = null
  /** Whether the outage going on has been logged: its end is then told too. */
  #told = false
  #erred = false
  #quietUntil = 0
  /** Outages begun within `quietMs` of the last one logged, not logged themselves. */
  #unlogged = 0

  /**
   * `quietMs`: an outage beginning sooner after the last one logged is counted for the next warning instead, where
   * something every client does meets the failure (a login's read, on a store that fails now and then).
   */
  constructor (quietMs = 0) {
    this.#quietMs = quietMs
  }

  /**
   * One failure: the first of an outage is logged as a warning (with the error's message: its stack says nothing of a
   * failover), the first 10 s or more after it as an error, with the whole error.
   */
  failed (log: FastifyBaseLogger, err: { message: string }, message: string): void {
    const now = Date.now()
    if (this.#since === null) {
      this.#since = now
      this.#erred = false
      this.#told = now >= this.#quietUntil
      if (!this.#told) {
        this.#unlogged++
        return
      }
      this.#quietUntil = now + this.#quietMs
      const fields = { err: { message: err.message } }
      log.warn(this.#unlogged > 0 ? { ...fields, unlogged: this.#unlogged } : fields, message)
      this.#unlogged = 0
      return
    }
    const lasted = now - this.#since
    if (this.#erred || lasted < outlastsFailoverMs) return
    this.#erred = true
    this.#told = true
    log.error({ err }, `${message} (failing for ${Math.floor(lasted / 1_000)} s, longer than a failover)`)
  }

  /** A success: ends the outage going on. Tells whether one was logged, whose end is then to be logged at info. */
  ended (): boolean {
    if (this.#since === null) return false
    this.#since = null
    return this.#told
  }
}
