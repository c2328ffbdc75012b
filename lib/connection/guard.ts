// The connection guard: the one owner of a socket's accountability and its deadlines. It knows nothing of frames;
// the endpoint adapter tells it what arrived and renders what it decides.
import { AsyncResource } from 'node:async_hooks'
import type { FastifyBaseLogger } from 'fastify'
import type { AuthFailure, AuthSuccess } from '../auth/authenticator.js'
import { authenticatedAccountability, publicAccountability } from './accountability.js'
import { AuthWindows, ExpiryClock, type Authenticating, type Expiring, type ExpiryBucket } from './deadlines.js'
import { ChecksInFlight } from './checks-in-flight.js'
import type { Connection } from './connection.js'
import { Registry } from './registry.js'
import { revokedAt, Revocations } from '../auth/revocations.js'
import type { RequestUsers } from '../auth/jwt.js'
import { RealtimeEvents } from '../events.js'
import type { Accountability, AuthMode, Identity } from '../../types/index.js'

/** handshake: waiting for the first auth; open: serving; reauth: credential gone, a new one due or the socket ends. */
export type GuardPhase = 'handshake' | 'open' | 'reauth' | 'closed'

export type ExpiryCode = 'TOKEN_EXPIRED' | 'AUTH_REVOKED'

export interface GuardEvents {
  /** The credential ran out or was revoked: the guard is public already, and waiting for re-auth. */
  onExpire (code: ExpiryCode): void
  /** Nobody authenticated in time: the adapter says so, and closes unless the mode is public. */
  onAuthTimeout (phase: 'handshake' | 'reauth'): void
}

/** What every guard of an endpoint shares: its mode, its public role, its clocks and where it reports. */
export interface GuardPolicy {
  authMode: AuthMode
  publicRole: string | null
  expiries: ExpiryClock
  authWindows: AuthWindows
  /** The credential checks started and not answered: the app's close waits for them. */
  checks: ChecksInFlight
  /** Told of every authentication, refusal and expiry, for `fastify.realtime.on(...)`. */
  registry: Registry
  /**
   * Whether a socket whose credential ended waits for a new one on it (the JSON endpoints' re-auth window), or is ended
   * by its endpoint as it is told (GraphQL).
   */
  reauthenticates: boolean
  /** What has been revoked: checked again as a socket takes a credential (`authenticate`, `registered`). */
  revocations: Revocations
  /** The app's @fastify/jwt's `request.user`, kept to each socket's credential; none with the plugin's own instance. */
  requestUsers: RequestUsers | null
}

/**
 * `log`: where a socket whose expiry failed is reported (the other sockets expire all the same). `registry`: the
 * plugin's; a guard made on its own reports to one nobody listens to.
 */
export function guardPolicy (authMode: AuthMode, publicRole: string | null, authTimeoutMs: number, log: FastifyBaseLogger,
  registry = new Registry(new RealtimeEvents(log)), revocations = new Revocations(), requestUsers: RequestUsers | null = null): GuardPolicy {
  const expiries = new ExpiryClock((err) => log.error({ err }, 'a socket\'s expiry failed'))
  const authWindows = new AuthWindows(authTimeoutMs)
  const checks = new ChecksInFlight()
  return { authMode, publicRole, expiries, authWindows, checks, registry, reauthenticates: true, revocations, requestUsers }
}

const noContext: Readonly<Record<string, unknown>> = Object.freeze({})

// Every socket keeps one. Its helper methods are `private`, not `#`: #methods give each instance a brand, a field of its
// own (docs/performance.md). It is the socket's async resource too: made as the socket opens, it holds the app's async
// context (its AsyncLocalStorage stores: @fastify/request-context's, an OpenTelemetry span) as the app's hooks left it
// on the upgrade request (Connection.inContext); a resource of its own would be one more object every socket keeps.
export class ConnectionGuard extends AsyncResource implements Expiring, Authenticating {
  readonly #policy: GuardPolicy
  /** What the guard's reports are about, and where its client came from. */
  readonly #connection: Connection
  readonly #events: GuardEvents
  #phase: GuardPhase
  #identity: Identity | null = null
  #session: string | undefined = undefined
  /** Built when first asked for: most sockets are never asked, and every idle one would keep it. */
  #accountability: Accountability | null = null
  /** Where the credential's expiry is scheduled, while it is. */
  #expiry: ExpiryBucket | null = null
  /** When the credential was issued (epoch seconds), and what the app's `onAuthenticate` made of it. */
  #issuedAt = 0
  #context: Readonly<Record<string, unknown>> = noContext

  /** Made by its connection: `upgrade` is reported once the registry has the connection (`registered`). */
  constructor (policy: GuardPolicy, connection: Connection, events: GuardEvents, upgrade: AuthSuccess | null) {
    super('fastify-realtime.socket')
    this.#policy = policy
    this.#connection = connection
    this.#events = events
    if (upgrade) {
      this.#phase = 'open'
      this.adopt(upgrade)
    } else if (policy.authMode === 'public') {
      this.#phase = 'open'
    } else {
      this.#phase = 'handshake'
      this.openAuthWindow()
    }
  }

  get accountability (): Accountability {
    this.#accountability ??= this.#identity
      ? authenticatedAccountability(this.#identity, this.#session, this.#connection)
      : publicAccountability(this.#policy.publicRole, this.#connection)
    return this.#accountability
  }

  /** The accountability's user and session, without building it (the heartbeat and filters read them). */
  get user (): string | null {
    return this.#identity && this.#identity.user
  }

  get session (): string | undefined {
    return this.#session
  }

  get context (): Readonly<Record<string, unknown>> {
    return this.#context
  }

  get phase (): GuardPhase {
    return this.#phase
  }

  /** The registry has the socket: from now on what happens to it is reported, an authentication at the upgrade first. */
  registered (): void {
    if (this.#identity === null) return
    if (this.revokedAsTaken(this.#identity.user, this.#session, this.#issuedAt)) return
    this.#policy.registry.index(this.#connection, this.#identity.user, this.#session)
    this.#policy.registry.authenticated(this.#connection)
  }

  /** A credential was verified: it replaces the accountability and the expiry. */
  authenticate (success: AuthSuccess): void {
    if (this.#phase === 'closed') return
    if (this.revokedAsTaken(success.identity.user, success.session, success.issuedAt)) return
    this.adopt(success)
    this.#policy.registry.authenticated(this.#connection)
  }

  /**
   * A revocation reaches the sockets holding the credential, and one checked before it but taken after (an async hook,
   * a store, the app's own upgrade hooks in between) was not among them: it is revoked now, as it would have been then.
   * The revoked identity is never the socket's: the app's `auth` listeners would act for it (a push to its user).
   */
  private revokedAsTaken (user: string, session: string | undefined, issuedAt: number): boolean {
    if (this.#policy.revocations.revoking(user, session, issuedAt) === null) return false
    this.expire('AUTH_REVOKED')
    return true
  }

  private adopt (success: AuthSuccess): void {
    this.clearDeadlines()
    this.identify(success.identity, success.session)
    this.#policy.requestUsers?.took(this.#connection.request, success.requestUser)
    this.#issuedAt = success.issuedAt
    this.#context = success.context ?? noContext
    this.#accountability = null
    this.#phase = 'open'
    if (success.expiresAt !== null) this.#expiry = this.#policy.expiries.schedule(this, success.expiresAt)
  }

  /**
   * A credential was refused: back to public, unless it was never checked (too many attempts, or the check could not
   * run), which leaves the identity as it was.
   */
  refuse (failure: AuthFailure): void {
    this.#policy.registry.refused(this.#connection.endpoint, failure.code, failure.reason, this.#connection)
    if (failure.code !== 'REQUESTS_EXCEEDED' && failure.code !== 'SERVICE_UNAVAILABLE') this.dropToPublic()
  }

  /**
   * The expiry clock, first, for every socket of a deadline: the credential ran out, public at once (a socket told is
   * nobody's: out of the indexes, sent no more as its user), and the client hears. The guard stays in its bucket until
   * it settles, and one that moves on meanwhile (authenticated anew, closed) leaves it, as before it was told.
   */
  tellExpiry (): void {
    this.forget()
    this.#events.onExpire('TOKEN_EXPIRED')
  }

  /** The expiry clock, once every client of the deadline heard. */
  onExpiry (): void {
    this.#expiry = null
    this.settle('TOKEN_EXPIRED')
  }

  /** The credential ended now (its session or its user was revoked): public, the client hears, the guard settles. */
  expire (code: ExpiryCode): void {
    this.dropToPublic()
    this.#events.onExpire(code)
    this.settle(code)
  }

  /**
   * The re-auth window, then the report. Public mode waits too, only to say when the time ran out: its socket stays
   * open. An endpoint that cannot re-authenticate on the socket ended it as it told it: the guard closes.
   */
  private settle (code: ExpiryCode): void {
    if (this.#policy.reauthenticates) {
      if (this.#policy.authMode !== 'public') this.#phase = 'reauth'
      this.openAuthWindow()
    } else {
      this.close()
    }
    this.#policy.registry.expired(this.#connection, code)
  }

  /** The session behind the socket ended: treated as an expiry with its own code. */
  revoke (): void {
    if (this.#session !== undefined) this.expire('AUTH_REVOKED')
  }

  /** The user was revoked at `at` (epoch milliseconds): a credential it refuses (`revokedAt`) ends as a revoked one. */
  revokeUser (at: number): void {
    if (this.#identity !== null && revokedAt(at, this.#issuedAt, this.#session)) this.expire('AUTH_REVOKED')
  }

  /** The client answered, and its answer waits its turn: its auth window, open now or opened meanwhile, waits for it. */
  waiting (): void {
    this.#policy.authWindows.hold(this)
  }

  /** The answer that waited has run: a window it did not close runs on (its check, if any, holds the window itself). */
  waited (): void {
    if (this.#phase !== 'closed') this.#policy.authWindows.release(this)
  }

  /** The client's answer is being checked: its auth window waits for the check, and so does the app's close. */
  checking (): void {
    this.#policy.authWindows.hold(this)
    this.#policy.checks.start(this)
  }

  /** The check answered: a window it did not close (a refusal that leaves the socket waiting) runs on. */
  checked (): void {
    if (this.#phase === 'closed') return
    this.#policy.authWindows.release(this)
    this.#policy.checks.end(this)
  }

  /** Whether a credential its client sent is being checked: the client answered, the server has not yet. */
  get beingChecked (): boolean {
    return this.#policy.checks.has(this)
  }

  /** Once every check of its client's answers has answered (null: none is in flight): the app's close waits for it. */
  settled (): Promise<void> | null {
    return this.#policy.checks.settled(this)
  }

  /** The auth windows: nobody authenticated in time. */
  onAuthWindowEnd (): void {
    this.#events.onAuthTimeout(this.#phase === 'handshake' ? 'handshake' : 'reauth')
  }

  /** The socket is gone: no deadline outlives it. */
  close (): void {
    this.clearDeadlines()
    this.#policy.authWindows.end(this)
    this.#policy.checks.forget(this)
    if (this.#identity !== null) this.#policy.registry.unindex(this.#connection, this.#identity.user, this.#session)
    this.#phase = 'closed'
  }

  private dropToPublic (): void {
    this.clearDeadlines()
    this.forget()
  }

  /** No identity (and out of the indexes), no context: the public accountability. */
  private forget (): void {
    this.identify(null, undefined)
    this.#policy.requestUsers?.dropped(this.#connection.request)
    this.#context = noContext
    this.#accountability = null
  }

  /** Whose the socket is: the registry finds it by its user and its session. */
  private identify (identity: Identity | null, session: string | undefined): void {
    const registry = this.#policy.registry
    if (this.#identity !== null) registry.unindex(this.#connection, this.#identity.user, this.#session)
    this.#identity = identity
    this.#session = session
    if (identity !== null) registry.index(this.#connection, identity.user, session)
  }

  private openAuthWindow (): void {
    this.#policy.authWindows.open(this)
  }

  private clearDeadlines (): void {
    if (this.#expiry !== null) this.#policy.expiries.cancel(this, this.#expiry)
    this.#policy.authWindows.close(this) // none open: a lookup, where a flag would be a field on every socket
    this.#expiry = null
  }
}
