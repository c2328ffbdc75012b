// Sessions whose access tokens must be refused until those tokens have expired on their own.
export class Revocations {
  readonly #until = new Map<string, number>()
  readonly #ttlMs: number

  /** @param ttlMs the longest an access token lives: past it, no token of a revoked session is left to refuse. */
  constructor (ttlMs: number) {
    this.#ttlMs = ttlMs
  }

  add (session: string): void {
    const now = Date.now()
    // Amortized clean-up: every revocation also forgets the ones whose tokens are all gone.
    for (const [id, until] of this.#until) {
      if (until <= now) this.#until.delete(id)
    }
    this.#until.set(session, now + this.#ttlMs)
  }

  has (session: string): boolean {
    const until = this.#until.get(session)
    return until !== undefined && until > Date.now()
  }
}
