// Sessions whose access tokens must be refused until those tokens have expired on their own. Until the revocation
// feed has loaded the set once, nothing is known of any session: a cold process cannot tell a revoked one.
export class Revocations {
  readonly #until = new Map<string, number>()
  #loaded = false

  /** @param until epoch milliseconds when the session's last access token expires: no token is left to refuse then. */
  add (session: string, until: number): void {
    const now = Date.now()
    // Amortized clean-up: every revocation also forgets the ones whose tokens are all gone.
    for (const [id, deadline] of this.#until) {
      if (deadline <= now) this.#until.delete(id)
    }
    this.#until.set(session, Math.max(until, this.#until.get(session) ?? 0))
  }

  has (session: string): boolean {
    const until = this.#until.get(session)
    return until !== undefined && until > Date.now()
  }

  /** Whether the set has been loaded once; from then on, an outage leaves the process with what it knows. */
  get loaded (): boolean {
    return this.#loaded
  }

  markLoaded (): void {
    this.#loaded = true
  }
}
