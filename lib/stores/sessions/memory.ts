// The default refresh-session store: one process, nothing to set up. One record per session, whatever the number of
// rotations: a token names its session, so a hash that is not the session's current one is reuse.
import { refuseLate } from '../write-deadline.js'
import type { Identity, PresentedToken, RefreshSession, RotateResult, SessionStore, TokenLookup } from '../../../types/index.js'

export class MemorySessionStore implements SessionStore {
  readonly #sessions = new Map<string, RefreshSession>()
  readonly #sweepEveryMs: number
  #sweptAt = Date.now()

  /** @param options.sweepEveryMs how often `create` also forgets expired sessions (default one minute) */
  constructor (options: { sweepEveryMs?: number } = {}) {
    this.#sweepEveryMs = options.sweepEveryMs ?? 60_000
  }

  async create (session: RefreshSession, deadline: number): Promise<void> {
    refuseLate(deadline)
    this.#sweep()
    this.#sessions.set(session.id, { ...session })
  }

  async rotate (token: PresentedToken, nextTokenHash: string, expiresAt: number, deadline: number): Promise<RotateResult> {
    refuseLate(deadline)
    const found = this.#find(token)
    if (found.status !== 'current') return found
    const session = this.#sessions.get(token.sessionId)!
    session.tokenHash = nextTokenHash
    session.expiresAt = expiresAt
    return { status: 'rotated', session: { ...session } }
  }

  async lookup (token: PresentedToken): Promise<TokenLookup> {
    return this.#find(token)
  }

  async end (sessionId: string, deadline: number): Promise<Identity | null> {
    refuseLate(deadline)
    const session = this.#sessions.get(sessionId)
    if (!session) return null
    this.#sessions.delete(sessionId)
    return session.identity
  }

  async endUser (user: string, deadline: number): Promise<string[]> {
    refuseLate(deadline)
    const ended: string[] = []
    for (const session of this.#sessions.values()) {
      if (session.identity.user === user) {
        this.#sessions.delete(session.id)
        ended.push(session.id)
      }
    }
    return ended
  }

  /** `lookup` without a turn, so that `rotate` reads and writes in one. */
  #find ({ sessionId, tokenHash }: PresentedToken): TokenLookup {
    const session = this.#sessions.get(sessionId)
    if (!session) return { status: 'unknown' }
    if (session.expiresAt <= Date.now()) {
      this.#sessions.delete(sessionId)
      return { status: 'unknown' }
    }
    if (session.tokenHash !== tokenHash) return { status: 'reused', sessionId }
    return { status: 'current', session: { ...session } }
  }

  // Expired sessions nobody presents again would otherwise stay forever.
  #sweep (): void {
    const now = Date.now()
    if (now - this.#sweptAt < this.#sweepEveryMs) return
    this.#sweptAt = now
    for (const session of this.#sessions.values()) {
      if (session.expiresAt <= now) this.#sessions.delete(session.id)
    }
  }
}
