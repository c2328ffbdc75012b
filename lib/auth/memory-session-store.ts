// The default refresh-session store: one process, nothing to set up.
import type { Identity, RefreshSession, RotateResult, SessionStore, TokenLookup } from '../../types/index.js'

interface Stored {
  session: RefreshSession
  /** Every hash the session has had: the current one and the rotated ones (for reuse detection). */
  hashes: Set<string>
}

export class MemorySessionStore implements SessionStore {
  readonly #sessions = new Map<string, Stored>()
  readonly #byHash = new Map<string, string>()
  readonly #sweepEveryMs: number
  #sweptAt = Date.now()

  /** @param options.sweepEveryMs how often `create` also forgets expired sessions (default one minute) */
  constructor (options: { sweepEveryMs?: number } = {}) {
    this.#sweepEveryMs = options.sweepEveryMs ?? 60_000
  }

  async create (session: RefreshSession): Promise<void> {
    this.#sweep()
    this.#sessions.set(session.id, { session: { ...session }, hashes: new Set([session.tokenHash]) })
    this.#byHash.set(session.tokenHash, session.id)
  }

  async rotate (tokenHash: string, nextTokenHash: string, expiresAt: number): Promise<RotateResult> {
    const stored = this.#live(tokenHash)
    if (!stored) return { status: 'unknown' }
    if (stored.session.tokenHash !== tokenHash) return { status: 'reused', sessionId: stored.session.id }
    stored.session.tokenHash = nextTokenHash
    stored.session.expiresAt = expiresAt
    stored.hashes.add(nextTokenHash)
    this.#byHash.set(nextTokenHash, stored.session.id)
    return { status: 'rotated', session: { ...stored.session } }
  }

  async lookup (tokenHash: string): Promise<TokenLookup> {
    const stored = this.#live(tokenHash)
    if (!stored) return { status: 'unknown' }
    if (stored.session.tokenHash !== tokenHash) return { status: 'reused', sessionId: stored.session.id }
    return { status: 'current', session: { ...stored.session } }
  }

  async end (sessionId: string): Promise<Identity | null> {
    const stored = this.#sessions.get(sessionId)
    if (!stored) return null
    this.#drop(stored)
    return stored.session.identity
  }

  async endUser (user: string): Promise<string[]> {
    const ended: string[] = []
    for (const stored of this.#sessions.values()) {
      if (stored.session.identity.user === user) {
        this.#drop(stored)
        ended.push(stored.session.id)
      }
    }
    return ended
  }

  /** The unexpired session a hash (current or rotated) belongs to. */
  #live (tokenHash: string): Stored | null {
    const id = this.#byHash.get(tokenHash)
    const stored = id === undefined ? undefined : this.#sessions.get(id)
    if (!stored) return null
    if (stored.session.expiresAt <= Date.now()) {
      this.#drop(stored)
      return null
    }
    return stored
  }

  #drop (stored: Stored): void {
    this.#sessions.delete(stored.session.id)
    for (const hash of stored.hashes) this.#byHash.delete(hash)
  }

  // Expired sessions nobody presents again would otherwise stay forever.
  #sweep (): void {
    const now = Date.now()
    if (now - this.#sweptAt < this.#sweepEveryMs) return
    this.#sweptAt = now
    for (const stored of this.#sessions.values()) {
      if (stored.session.expiresAt <= now) this.#drop(stored)
    }
  }
}
