// Lines any client can set off (a refused token, a wrong password), at debug: at most a few a minute, or a flood of
// refused clients would fill the logs. The lines held back are counted on the next one.
import type { FastifyBaseLogger } from 'fastify'

const windowMs = 60_000

export class RateLimitedLog {
  readonly #message: string
  readonly #perMinute: number
  #windowFrom = -Infinity
  #logged = 0
  #unlogged = 0

  constructor (message: string, perMinute = 20) {
    this.#message = message
    this.#perMinute = perMinute
  }

  debug (log: FastifyBaseLogger, fields: Record<string, unknown>): void {
    const now = Date.now()
    if (now - this.#windowFrom >= windowMs) {
      this.#windowFrom = now
      this.#logged = 0
    }
    if (this.#logged === this.#perMinute) {
      this.#unlogged++
      return
    }
    this.#logged++
    const unlogged = this.#unlogged
    this.#unlogged = 0
    log.debug(unlogged > 0 ? { ...fields, unlogged } : fields, this.#message)
  }
}
