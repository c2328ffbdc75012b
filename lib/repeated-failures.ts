// A failure any client can set off again and again (a token the app's mapClaims cannot read, a listener that throws
// on every event): logged at most once a minute, with how many went unlogged since, or one client would fill the
// app's logs, and every process's logs stream with them.
import type { FastifyBaseLogger } from 'fastify'

const quietMs = 60_000

export class RepeatedFailures {
  readonly #message: string
  #quietUntil = 0
  #unlogged = 0

  constructor (message: string) {
    this.#message = message
  }

  /** Logs `err` at error, unless one was logged less than a minute ago: then it is counted for the next line. */
  log (log: FastifyBaseLogger, fields: Record<string, unknown>): void {
    const now = Date.now()
    if (now < this.#quietUntil) {
      this.#unlogged++
      return
    }
    this.#quietUntil = now + quietMs
    const unlogged = this.#unlogged
    this.#unlogged = 0
    log.error(unlogged > 0 ? { ...fields, unlogged } : fields, this.#message)
  }
}
