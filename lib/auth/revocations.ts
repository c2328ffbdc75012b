// Sessions whose access tokens must be refused until those tokens have expired on their own.
export class Revocations {
  readonly #until = new Map<string, number>()

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
}
