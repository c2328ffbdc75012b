// The default refresh-session store: one process, nothing to set up. One record per session, whatever the number of
// rotations: a token names its session, so a hash that is not the session's current one is reuse. No `checkBegins`:
// every revocation is this process's own, applied before its endUser, and a login checks for it after its create.
import { refuseLate } from '../write-deadline.js'
import { sessionsPerUser } from './per-user-limit.js'
import type { Identity, PresentedToken, RefreshSession, RotateResult, RotationGrace, SessionStore, TokenLookup } from '../../../types/index.js'

/**
 * The token a rotation with a grace replaced: its hash, and until when, by the wall clock and by the monotonic one: it
 * lapses by whichever gets there first, so a wall clock stepped back (NTP) does not lengthen the grace by the step.
 */
interface Previous {
  tokenHash: string
  until: number
  lapsesAt: number
}

export class MemorySessionStore implements SessionStore {
  readonly #sessions = new Map<string, RefreshSession>()
  readonly #previous = new Map<string, Previous>()
  /** Each user's session ids, the least recently created or refreshed first: what the limit ends, and endUser reads. */
  readonly #byUser = new Map<string, Set<string>>()
  readonly #sweepEveryMs: number
  readonly #maxSessionsPerUser: number
  #sweptAt = Date.now()

  /**
   * @param options.sweepEveryMs how often `create` also forgets expired sessions (default one minute)
   * @param options.maxSessionsPerUser sessions one user keeps; a new one past it ends the oldest (default 100, as the plugin's)
   */
  constructor (options: { sweepEveryMs?: number, maxSessionsPerUser?: number } = {}) {
    this.#sweepEveryMs = options.sweepEveryMs ?? 60_000
    this.#maxSessionsPerUser = sessionsPerUser(options.maxSessionsPerUser)
  }

  async create (session: RefreshSession, deadline: number): Promise<string[]> {
    refuseLate(deadline)
    this.#sweep()
    this.#sessions.set(session.id, { ...session })
    const { user } = session.identity
    const ids = this.#byUser.get(user) ?? new Set<string>()
    this.#byUser.set(user, ids.add(session.id))
    const ended: string[] = []
    for (const id of ids) {
      if (ids.size <= this.#maxSessionsPerUser) break
      this.#delete(id)
      ended.push(id)
    }
    return ended
  }

  async rotate (token: PresentedToken, nextTokenHash: string, expiresAt: number, deadline: number, grace?: RotationGrace): Promise<RotateResult> {
    refuseLate(deadline)
    const found = this.#find(token)
    if (found.status !== 'current') return found
    const session = this.#sessions.get(token.sessionId)!
    session.tokenHash = nextTokenHash
    session.expiresAt = expiresAt
    if (grace) this.#previous.set(session.id, { tokenHash: token.tokenHash, until: Date.now() + grace.ms, lapsesAt: performance.now() + grace.ms })
    else this.#previous.delete(session.id)
    // Used now: the last its user's limit ends, as on Redis, where the session that expires first goes first.
    const ids = this.#byUser.get(session.identity.user)!
    ids.delete(session.id)
    ids.add(session.id)
    return { status: 'rotated', session: { ...session } }
  }

  async unrotate (token: PresentedToken, nextTokenHash: string): Promise<void> {
    const session = this.#sessions.get(token.sessionId)
    if (session?.tokenHash !== nextTokenHash) return
    session.tokenHash = token.tokenHash
    this.#previous.delete(session.id)
  }

  async lookup (token: PresentedToken): Promise<TokenLookup> {
    return this.#find(token)
  }

  async end (sessionId: string, deadline: number): Promise<Identity | null> {
    refuseLate(deadline)
    const session = this.#sessions.get(sessionId)
    if (!session) return null
    this.#delete(sessionId)
    return session.identity
  }

  async endUser (user: string, deadline: number): Promise<string[]> {
    refuseLate(deadline)
    const ended = [...this.#byUser.get(user) ?? []]
    for (const id of ended) this.#delete(id)
    return ended
  }

  /** A session and its entry in its user's ids. */
  #delete (sessionId: string): void {
    const session = this.#sessions.get(sessionId)!
    this.#sessions.delete(sessionId)
    this.#previous.delete(sessionId)
    const ids = this.#byUser.get(session.identity.user)!
    ids.delete(sessionId)
    if (ids.size === 0) this.#byUser.delete(session.identity.user)
  }

  /** `lookup` without a turn, so that `rotate` reads and writes in one. */
  #find ({ sessionId, tokenHash }: PresentedToken): TokenLookup {
    const session = this.#sessions.get(sessionId)
    if (!session) return { status: 'unknown' }
    const now = Date.now()
    if (session.expiresAt <= now) {
      this.#delete(sessionId)
      return { status: 'unknown' }
    }
    if (session.tokenHash === tokenHash) return { status: 'current', session: { ...session } }
    const previous = this.#previous.get(sessionId)
    // Every rotation and unrotate sets or drops it: while kept, the session is at the token it was rotated to.
    if (previous?.tokenHash === tokenHash && previous.until > now && previous.lapsesAt > performance.now()) {
      return { status: 'previous', session: { ...session } }
    }
    return { status: 'reused', sessionId }
  }

  // Expired sessions nobody presents again would otherwise stay forever.
  #sweep (): void {
    const now = Date.now()
    if (now - this.#sweptAt < this.#sweepEveryMs) return
    this.#sweptAt = now
    for (const session of this.#sessions.values()) {
      if (session.expiresAt <= now) this.#delete(session.id)
    }
  }
}
