// What must be refused until the tokens it concerns have expired on their own: ended sessions (every token carrying
// the session), and revoked users (every token of the user issued up to the revocation). Until the revocation feed
// has loaded the set once, nothing is known: a cold process cannot tell a revoked session. A feed that does not outlive
// its process (memory) knows the revocations made since it started only (`predates`).
import { sessionBegan } from './refresh-tokens.js'

export class Revocations {
  readonly #until = new Map<string, number>()
  readonly #users = new Map<string, { at: number, until: number, heard: number }>()
  /** How many user revocations this process has taken in: what a login's check knew of as it began. */
  #heard = 0
  /** How many entries the last clean-up kept: the next one waits until there are twice as many. */
  #kept = 0
  /** When the last of those has lapsed (epoch milliseconds): the next clean-up waits no longer. */
  #keptLapseAt = -Infinity
  #loaded = false
  /** The second (epoch seconds) from which every revocation made is known; -Infinity: all of them. */
  #firstSecond = -Infinity
  /**
   * Sessions this process signed a token for in `#firstSecond`: an earlier process may have signed one in that second
   * too (a restart within it), and `iat`, in whole seconds, cannot tell the two apart. Filled in that second only.
   */
  readonly #signedInFirstSecond = new Set<string>()
  /** The longest life of another issuer's token verified by a registration using this set (`tokenLived`). */
  #tokenLifeMs = 0
  /** The issuers of the registrations using this set (in memory, several share one), each as often as registered. */
  readonly #issuers = new Map<string, number>()

  /** A registration signing as `issuer` uses this set: its tokens' sessions are among those it names, until released. */
  useIssuer (issuer: string): () => void {
    this.#issuers.set(issuer, (this.#issuers.get(issuer) ?? 0) + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      const left = this.#issuers.get(issuer)! - 1
      if (left === 0) this.#issuers.delete(issuer)
      else this.#issuers.set(issuer, left)
    }
  }

  /** Whether a token of `issuer` names, by its `sid`, a session of a registration using this set. */
  namesSessions (issuer: unknown): boolean {
    return typeof issuer === 'string' && this.#issuers.has(issuer)
  }

  /** @param until epoch milliseconds when the session's last access token expires: no token is left to refuse then. */
  add (session: string, until: number): void {
    this.#forgetPast()
    this.#until.set(session, Math.max(until, this.#until.get(session) ?? 0))
  }

  has (session: string): boolean {
    const until = this.#until.get(session)
    return until !== undefined && until > Date.now()
  }

  /** The user's tokens issued at or before `at` (epoch milliseconds) are refused until `until`. */
  addUser (user: string, at: number, until: number): void {
    this.#forgetPast()
    // One that has lapsed, not forgotten yet, counts for nothing: its time is not merged into the new one.
    const known = this.#users.get(user)
    const live = known !== undefined && known.until > Date.now() ? known : undefined
    this.#users.set(user, { at: Math.max(at, live?.at ?? 0), until: Math.max(until, at + this.#tokenLifeMs, live?.until ?? 0), heard: ++this.#heard })
  }

  /** A mark of the user revocations taken in so far, for `knewOfUser`. */
  get heard (): number {
    return this.#heard
  }

  /** Whether the revocation in force of `user` (`userRevokedAt`) was taken in, as it stands, by the time `heard` was read. */
  knewOfUser (user: string, heard: number): boolean {
    return this.#users.get(user)!.heard <= heard
  }

  /** How long a revocation of a user lasts at least, from its `at`: the longest token life `tokenLived` was told. */
  get tokenLifeMs (): number {
    return this.#tokenLifeMs
  }

  /**
   * A token of another issuer's, verified, that lives `lifeMs` from its issue: every revocation of a user, in force or to
   * come, refuses the user's older tokens that long, whichever registration or process made it and whatever it said.
   */
  tokenLived (lifeMs: number): void {
    if (lifeMs <= this.#tokenLifeMs) return
    this.#tokenLifeMs = lifeMs
    const now = Date.now()
    for (const revoked of this.#users.values()) {
      if (revoked.until > now) revoked.until = Math.max(revoked.until, revoked.at + lifeMs)
    }
  }

  /**
   * Whether a token of `user` issued at `issuedAt` (epoch seconds, a token's `iat`; none: as old as can be) is refused.
   * A whole second counts: a token of the revocation's own second is refused too. So is one ahead of the clock
   * (`aheadOfClock`): it may have been issued before the revocation all the same. A token of a `session` whose id says
   * when its login began is refused by that instead of its second (`revokedAt`), to the millisecond.
   */
  revokesUser (user: string, issuedAt: number | undefined, session?: string): boolean {
    const revoked = this.#users.get(user)
    const now = Date.now()
    if (revoked === undefined || revoked.until <= now) return false
    return revokedAt(revoked.at, issuedAt, session) || (issuedAt !== undefined && aheadOfClock(issuedAt, now))
  }

  /** When `user` was last revoked (epoch milliseconds), while that revocation lasts; undefined otherwise. */
  userRevokedAt (user: string): number | undefined {
    const revoked = this.#users.get(user)
    return revoked !== undefined && revoked.until > Date.now() ? revoked.at : undefined
  }

  /**
   * What revokes a credential of `user` (and `session`) issued at `issuedAt` (as for `revokesUser`), if anything: the one
   * check, made as a credential is verified and again as a socket takes it.
   */
  revoking (user: string, session: string | undefined, issuedAt: number | undefined): 'session' | 'user' | null {
    if (session !== undefined && this.has(session)) return 'session'
    return this.revokesUser(user, issuedAt, session) ? 'user' : null
  }

  /**
   * Forgets the revocations whose tokens are all gone, once the entries have doubled since the last time (a replay of
   * the whole set adds each entry once, and pays for one pass over them all, not one per entry), or once all it kept
   * then have lapsed (the pass forgets at least half of what it reads): what a burst left (a logout wave, a replay)
   * goes at the first revocation past its lapse, not after as many new ones. `has` and `revokesUser` check the time
   * themselves, so what waits to be forgotten refuses nothing.
   */
  #forgetPast (): void {
    const now = Date.now()
    if (this.#until.size + this.#users.size <= 2 * this.#kept && now < this.#keptLapseAt) return
    let lapseAt = -Infinity
    for (const [id, deadline] of this.#until) {
      if (deadline <= now) this.#until.delete(id)
      else lapseAt = Math.max(lapseAt, deadline)
    }
    for (const [user, { until }] of this.#users) {
      if (until <= now) this.#users.delete(user)
      else lapseAt = Math.max(lapseAt, until)
    }
    this.#kept = this.#until.size + this.#users.size
    this.#keptLapseAt = lapseAt
  }

  /** Whether the set has been loaded once; from then on, an outage leaves the process with what it knows. */
  get loaded (): boolean {
    return this.#loaded
  }

  /** `knownSince`: epoch milliseconds from which the feed knows every revocation made; -Infinity for all of them. */
  markLoaded (knownSince = -Infinity): void {
    this.#loaded = true
    this.#firstSecond = Math.floor(knownSince / 1000)
  }

  /** This process signed a token of `session` issued at `issuedAt` (epoch seconds, its `iat`). */
  signed (session: string, issuedAt: number): void {
    if (issuedAt === this.#firstSecond) this.#signedInFirstSecond.add(session)
  }

  /**
   * Whether a token of `session` issued at `issuedAt` (epoch seconds; none: as old as can be) may have been revoked
   * before the revocations known here begin: by a process before this one, with the memory feed. Its session's being
   * in the session store then says whether it was ended.
   */
  predates (session: string, issuedAt: number | undefined): boolean {
    if (this.#firstSecond === -Infinity) return false
    const at = issuedAt ?? -Infinity
    return at < this.#firstSecond || (at === this.#firstSecond && !this.#signedInFirstSecond.has(session))
  }
}

/**
 * Whether a user's revocation at `at` (epoch milliseconds) refuses a credential of `session` issued at `issuedAt` (a
 * token's `iat`, epoch seconds; none: as old as can be). A session whose id says when its login began is refused if it
 * began by then, whatever its tokens' `iat`: every token of one begun after was issued after (a login on a process that
 * had not heard of the revocation yet, in its second, is not refused), and a token signed after an earlier revocation,
 * in its second, reads as issued the second after, which a second revocation in that second must refuse all the same.
 * Any other credential (a provider's, a session id of another kind or dated after the token) is refused if issued up to
 * the revocation's second.
 */
export function revokedAt (at: number, issuedAt: number | undefined, session: string | undefined): boolean {
  const began = sessionBegan(session)
  // An id dated after its token's second tells nothing (its login's process has a clock ahead): the second decides.
  if (began !== undefined && (issuedAt === undefined || began < (issuedAt + 1) * 1000)) return began <= at
  return issuedAt === undefined || issuedAt <= Math.floor(at / 1000)
}

/**
 * Whether a token's `iat` (epoch seconds) is more than a second later than the clock: its issuer's clock runs ahead of
 * this one. The second spares the milliseconds between two processes' clocks, and a token signed after a revocation in
 * the revocation's second, which reads as issued the next (authenticator.ts).
 */
function aheadOfClock (issuedAt: number, now: number): boolean {
  return issuedAt > Math.floor(now / 1000) + 1
}

/**
 * The second a socket that takes a credential issued at `issuedAt` (a token's `iat`; none: as old as can be) holds it as
 * issued in, for the user's later revocations: the second it says, unless that is ahead of the clock; then this one, as
 * it was issued by the time the socket took it, or an issuer whose clock runs ahead would outlive every revocation.
 */
export function heldIssuedAt (issuedAt: number | undefined): number {
  if (issuedAt === undefined) return 0
  const now = Date.now()
  return aheadOfClock(issuedAt, now) ? Math.floor(now / 1000) : issuedAt
}

/**
 * What travels the revocation feed: `session:<id>` for an ended session, `user:<at>:<user>` for a revoked user. Ids
 * without either prefix are sessions (as an earlier version published them).
 */
export const revocationId = {
  session: (session: string): string => `session:${session}`,
  user: (user: string, at: number): string => `user:${at}:${user}`
}

export type Revoked = { session: string } | { user: string, at: number }

export function readRevocation (id: string): Revoked {
  if (id.startsWith('session:')) return { session: id.slice('session:'.length) }
  const match = /^user:(\d+):/.exec(id)
  return match ? { user: id.slice(match[0].length), at: Number(match[1]) } : { session: id }
}
