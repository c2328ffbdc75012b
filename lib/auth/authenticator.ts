// The one authenticator: turns any credential into an identity with its expiry, or one typed failure.
// Every endpoint and the HTTP routes go through it; nothing else verifies a token.
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { Claims, VerifiedToken, VerifyAccessToken, VerifyWindow } from './jwt.js'
import { hashRefreshToken, newRefreshToken, newSessionId, readRefreshToken, sessionBegan } from './refresh-tokens.js'
import { heldIssuedAt, revocationId, type Revocations } from './revocations.js'
import { RealtimeError } from '../errors.js'
import type { AttemptLimiter } from '../stores/attempts/contract.js'
import { PasswordUnchecked, queueFullReason, type PasswordChecks } from './password-checks.js'
import type { RevocationFeed } from '../stores/revocation-feed/contract.js'
import { isThenable } from '../thenable.js'
import { deadline } from '../deadline.js'
import type { GiveBacks } from '../stores/give-backs.js'
import { RepeatedFailures } from '../repeated-failures.js'
import { Outages } from '../stores/outages.js'
import { normalizeEmail } from './emails.js'
import { maxEmailLength, withinBounds } from './credential-bounds.js'
import { pluginCookies } from '../routes/request-cookies.js'
import type {
  AuthFailureCode, Credential, CredentialSource, EndpointName, Identity, JwtInstance, MapClaims, OnAuthenticate,
  PasswordCredential, PresentedToken, RefreshSession, SessionStore, TokenLookup, VerifyCredentials
} from '../../types/index.js'

export interface AuthSuccess {
  ok: true
  identity: Identity
  /** The refresh session behind the credential (`sid`), when there is one. */
  session: string | undefined
  /** Epoch milliseconds when the access token expires; null when it never does. */
  expiresAt: number | null
  /**
   * Epoch seconds (a token's `iat`) when the credential was issued: a user's revocation ends the sockets of older ones.
   * Whole seconds are small integers, which a guard keeps in place rather than as a number object of their own.
   */
  issuedAt: number
  /** Set when the authentication issued tokens (email/password and refresh-token forms). */
  issued?: { access_token: string, expires: number, refresh_token: string }
  /** What the app's `onAuthenticate` added, for handlers and GraphQL resolvers. */
  context?: Record<string, unknown>
  /**
   * What the app's @fastify/jwt made of the token, for `request.user` once a socket takes it; undefined for a
   * credential it did not verify (a password, a refresh token) and with the plugin's own instance.
   */
  requestUser?: unknown
}

export type AuthFailure =
  | {
    ok: false
    code: Exclude<AuthFailureCode, 'REQUESTS_EXCEEDED'>
    /** Why, for logs and hooks; never contains the credential. */
    reason: string
  }
  | {
    ok: false
    /** Too many failed email/password attempts: refused without checking the password. */
    code: 'REQUESTS_EXCEEDED'
    reason: string
    /** Milliseconds until the client may try again. */
    retryAfterMs: number
  }

export type AuthResult = AuthSuccess | AuthFailure

const fail = (code: Exclude<AuthFailureCode, 'REQUESTS_EXCEEDED'>, reason: string): AuthFailure => ({ ok: false, code, reason })
/** What the app's `mapClaims` gave when it threw. */
const failed = Symbol('mapClaims failed')

/** Where a credential is presented, for the app's `onAuthenticate`; the client's address counts password attempts. */
export interface AuthContext {
  request: FastifyRequest
  source: CredentialSource
  /** The socket's endpoint; null on the HTTP routes. */
  endpoint: EndpointName | null
  /** The client's address, for the attempt limits (email/password only); null counts against the email alone. */
  ip: string | null
  /**
   * Whether the client still waits for the answer. A refresh token whose client left is not rotated: the client would
   * never hear of the next one, and its retry with this one would count as reuse and end the session. A login whose
   * client left makes no session: nobody would hold it, and past the user's limit it would end one somebody does.
   */
  waiting?: () => boolean
}

/** A verdict now, or once a lookup (a session store, an async key, the app's hook) has answered. */
type Pending<T> = T | Promise<T>
type Verified = ({ ok: true } & VerifiedToken) | AuthFailure

const then = <T, U> (value: Pending<T>, next: (value: T) => Pending<U>): Pending<U> =>
  value instanceof Promise ? value.then(next) : next(value)

// Both @fastify/jwt's request verify and fast-jwt say "expired" in their own words.
const expiredCodes = new Set(['FAST_JWT_EXPIRED', 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED'])

// Module-level, as every handshake verifies a token: closures made per call cost each handshake their allocation.
const tokenVerified = ({ claims, requestUser }: VerifiedToken): Verified => ({ ok: true, claims, requestUser })
function tokenRefused (err: unknown): AuthFailure {
  const code = (err as { code?: string }).code
  if (code === undefined) return fail('AUTH_FAILED', 'key lookup failed or took too long')
  return expiredCodes.has(code) ? fail('TOKEN_EXPIRED', 'token expired') : fail('AUTH_FAILED', `invalid token (${code})`)
}

/**
 * The default `mapClaims`: the user is `id` (else `sub`) in a token this plugin issued (`iss`), `sub` (else `id`) in any
 * other, as a provider's token names its user by `sub` and may carry an `id` of its own; `role`; admin only for a
 * token this plugin issued with `admin_access`, so that no other token signed with the same key, for whatever purpose,
 * is an admin's.
 */
export function defaultMapClaims (issuer: string): MapClaims {
  return (claims) => {
    const user = claims.iss === issuer ? claims.id ?? claims.sub : claims.sub ?? claims.id
    if (typeof user !== 'string' || user === '') return null
    return {
      user,
      role: typeof claims.role === 'string' ? claims.role : null,
      admin: claims.iss === issuer && claims.admin_access === true
    }
  }
}

export interface AuthenticatorOptions {
  /** Signs access tokens. */
  jwt: JwtInstance
  /** A token's claims, unverified (the expiry of one just signed). */
  claimsOf: (token: string) => Claims
  /** Verifies them: @fastify/jwt's verify, as the app configured it. */
  verifyToken: VerifyAccessToken
  /** Its verify options' window: a token older than `maxAgeMs` is refused, one past `exp` by its tolerance taken. */
  verifyWindow: VerifyWindow
  /** `verifyToken` is the app's @fastify/jwt, per request: its `trusted` may be `trusts`, called back during it. */
  appVerifies: boolean
  /** The app's check at every authentication. */
  onAuthenticate?: OnAuthenticate
  /** The `iss` of the tokens it signs. */
  issuer: string
  mapClaims: MapClaims
  verifyCredentials: VerifyCredentials
  sessionStore: SessionStore
  revocations: Revocations
  /** Carries an ended session to every process, so its sockets lose it and its tokens are refused. */
  revocationFeed: RevocationFeed
  accessTokenTtlMs: number
  refreshTokenTtlMs: number
  /** Lifetime of a session token (`SESSION_COOKIE_TTL`). */
  sessionTokenTtlMs: number
  /** The session cookie's name: sent more than once, none of its copies is trusted (`trusts`). */
  sessionCookieName: string
  /**
   * How long a session-store (or attempt-counter) call, a key lookup or the app's `onAuthenticate` may take before the
   * auth fails closed (SERVICE_UNAVAILABLE). A session-store write must start acting within the first third of it, or
   * not at all (its `deadline`).
   */
  storeTimeoutMs: number
  /** How long a key lookup may take: the store timeout, or the shortest auth timeout if shorter. */
  keyLookupMs: number
  /** Limits email/password attempts per client IP and per email. */
  attemptLimiter: AttemptLimiter
  /** Where password checks wait for their turn. */
  passwordChecks: PasswordChecks
  /** Where a failed refresh gives its rotation back. */
  giveBacks: GiveBacks
  /** How many sessions whose revocation did not go out are remembered (`maxUnsent` by default). */
  unsentKept?: number
}

/**
 * The claims of what @fastify/jwt hands its `trusted`: the whole token (header, payload, signature) when the app
 * verifies with `complete: true`, else the claims themselves.
 */
function payloadOf (verified: Claims): Claims {
  const { header, payload, signature } = verified
  const complete = typeof header === 'object' && header !== null && typeof payload === 'object' && payload !== null &&
    typeof signature === 'string'
  return complete ? payload as Claims : verified
}

/** The second a token was issued in: NumericDate may carry a fraction, and revocations are whole seconds. */
const issuedAtOf = (claims: Claims): number | undefined => typeof claims.iat === 'number' ? Math.floor(claims.iat) : undefined

/** What a rotation's give-back gives back to: its session. */
const rotationOf = (sessionId: string) => `rotation ${sessionId}`

/**
 * Whether a store's answer is a token its session's holder presents: the current one, or the one a rotation with a
 * grace replaced while the grace lasts (a session cookie another tab refreshed a moment before).
 */
const held = (found: TokenLookup): found is Extract<TokenLookup, { session: RefreshSession }> =>
  found.status === 'current' || found.status === 'previous'

/**
 * How long a rotation's give-back is tried: past it, a store away that long has turned the client's retries away
 * (SERVICE_UNAVAILABLE) and the client has most likely logged in again.
 */
const unrotateForMs = 10 * 60_000

/**
 * How many sessions' revocations this process remembers as not gone out: past it, the oldest is forgotten (a refresh
 * of it then ends it in the store alone, as one whose revocation went out).
 */
const maxUnsent = 10_000

/** A promise handled here as well: a caller that drops it (`trusted(...) && check`) must not crash the process. */
function handled<T> (promise: Promise<T>): Promise<T> {
  promise.catch(() => {})
  return promise
}

export class Authenticator {
  readonly #options: AuthenticatorOptions
  /**
   * The token the plugin is verifying through the app's @fastify/jwt, by request, as its claims' JSON: `trusts` leaves
   * that one to the plugin, and only that one (a handler of the app's may verify another token on the same request
   * meanwhile).
   */
  readonly #verifying = new WeakMap<FastifyRequest, string>()
  readonly #mapClaimsFailures = new RepeatedFailures('mapClaims failed')
  readonly #credentialCheckFailures = new RepeatedFailures('a credential check failed')
  /** The session store's clock unread: retried at every login, so once a minute at most, as a failure any client sets off. */
  readonly #checkBeginsOutages = new Outages(60_000)
  /**
   * Sessions ended here whose revocation did not go out (the feed applies it in this process first): only these are
   * sent again when their tokens come back. Every ended session's would be a publish to every process for each replay
   * of a token its holder kept.
   */
  readonly #unsent = new Set<string>()

  constructor (options: AuthenticatorOptions) {
    this.#options = options
  }

  /**
   * An access token: in the same turn when @fastify/jwt verifies it so (a static key) and the app has no
   * `onAuthenticate`, so a socket authenticated by one never waits a tick.
   */
  verifyAccessToken (token: string, at: AuthContext): Pending<AuthResult> {
    return then(this.#verify(token, at.request), (verified) => {
      if (!verified.ok) return verified
      // A session token counts only while current (`verifySessionToken`).
      if (this.#refreshTokenOf(verified.claims) !== undefined) return fail('AUTH_FAILED', 'a session token is no access token')
      const identified = this.#identify(verified.claims, at.request.log, verified.requestUser)
      return then(this.#inStoreIfOlder(identified, verified.claims), result => this.#admit(result, verified.claims, at))
    })
  }

  /**
   * An access token whose session may have ended before the revocations this process knows (`Revocations.predates`:
   * signed before this process started, with the memory feed) counts only while the store still has its session. Any
   * other is answered as it was, in the same turn.
   */
  #inStoreIfOlder (result: AuthResult, claims: Claims): Pending<AuthResult> {
    if (!result.ok || !this.#predatesRevocations(result.session, claims)) return result
    return this.#sessionInStore(result.session!).then(
      lives => lives ? result : fail('AUTH_FAILED', 'session no longer stored (signed before this process started)'),
      () => fail('SERVICE_UNAVAILABLE', 'session store unavailable'))
  }

  /** Whether a token's session (none: false) may have ended before the revocations this process knows begin. */
  #predatesRevocations (session: string | undefined, claims: Claims): boolean {
    return session !== undefined && this.#options.revocations.predates(session, issuedAtOf(claims))
  }

  /** Whether the store still has the session; rejects when it cannot say. A hash no token has: a live one is `reused`. */
  async #sessionInStore (session: string): Promise<boolean> {
    return (await this.#store(store => store.lookup({ sessionId: session, tokenHash: '' }))).status !== 'unknown'
  }

  /**
   * A session token (the session cookie): verified as an access token is, and current only while the refresh token
   * it carries is its session's current one, so that a cookie replaced by a refresh, or ended by a logout, is refused.
   */
  async verifySessionToken (token: string, at: AuthContext): Promise<AuthResult> {
    const verified = await this.#verify(token, at.request)
    if (!verified.ok) return verified
    const refreshToken = this.#refreshTokenOf(verified.claims)
    if (refreshToken === undefined) return fail('AUTH_FAILED', 'not a session token')
    const { refresh_token: _refreshToken, session: _before, ...claims } = verified.claims
    const result = this.#identify(verified.claims, at.request.log, verified.requestUser)
    if (!result.ok) {
      const sid = this.#sessionOf(verified.claims)
      if (sid !== undefined && this.#options.revocations.has(sid) && !await this.#endAgain(sid)) {
        return fail('SERVICE_UNAVAILABLE', 'session ended here, its revocation not sent')
      }
      return result
    }
    try {
      if (!await this.#isCurrent(refreshToken)) return fail('AUTH_FAILED', 'session token replaced or ended')
    } catch {
      return fail('SERVICE_UNAVAILABLE', 'session store unavailable')
    }
    // The hook sees the claims without the refresh token they carry: a hook that logs them logs no credential.
    return this.#admit(result, claims, at)
  }

  /** The refresh token a session token carries, for the session routes; expired or not ours: null. */
  async sessionTokenRefreshToken (token: string, request: FastifyRequest): Promise<string | null> {
    const verified = await this.#verify(token, request)
    return (verified.ok && this.#refreshTokenOf(verified.claims)) || null
  }

  /**
   * Ends the session a session cookie names, if current (`endCurrentSession`), and tells whether the cookie is the
   * plugin's: signed with its key, expired or not. Another app on the same host shares the cookie's name.
   */
  async endSessionCookie (token: string, request: FastifyRequest): Promise<boolean> {
    const verified = await this.#verify(token, request)
    // fast-jwt checks the signature before `exp`: an expired token was signed with the key.
    if (!verified.ok) return verified.code === 'TOKEN_EXPIRED'
    const refreshToken = this.#refreshTokenOf(verified.claims)
    if (refreshToken !== undefined) await this.endCurrentSession(refreshToken)
    return true
  }

  /**
   * Whether verified claims are still good: no ended session, no revoked user. For @fastify/jwt's `trusted`, so the
   * app's HTTP routes refuse what the sockets refuse. A session token (the session cookie's) lives as long as its
   * session, past any revocation's memory: it is asked of the store, as the plugin's own routes ask, so the answer is
   * then a promise, rejected (503) when the store cannot say.
   */
  trusts (request: FastifyRequest, verified: Claims): boolean | Promise<boolean> {
    const claims = payloadOf(verified)
    // The plugin's own verification, through the app's @fastify/jwt: it makes these checks itself, right after, with
    // its own answers (a store away is a 503, a replaced refresh token is reuse, a session cookie is no access token).
    const verifying = this.#verifying.get(request)
    if (verifying !== undefined && verifying === JSON.stringify(claims)) return true
    // A token that names no user is the app's own business (an unsubscribe link, say): nothing of it is revoked.
    const identity = this.#identityOf(claims, request.log)
    if (identity === null) return true
    if (identity === failed) return false
    // Refused in the same turn where it can be (a revoked session or user, revocations not loaded yet): an app that
    // composes the answer as a boolean, without awaiting it, still refuses those.
    const identified = this.#identify(claims, request.log)
    if (!identified.ok) return false
    const refreshToken = this.#refreshTokenOf(claims)
    const unavailable = () => { throw RealtimeError.of({ code: 'SERVICE_UNAVAILABLE' }) }
    if (refreshToken !== undefined) {
      // The session cookie sent more than once (cookie tossing): the app's cookie parser gave its @fastify/jwt the
      // first copy, maybe a planted one; as at the upgrade and the auth routes, no copy is a credential.
      if (pluginCookies(request, this.#options.sessionCookieName).length > 1) return false
      return handled(this.#isCurrent(refreshToken).catch(unavailable))
    }
    // An access token older than what this process knows of revocations: its session's being in the store says.
    if (this.#predatesRevocations(identified.session, claims)) return handled(this.#sessionInStore(identified.session!).catch(unavailable))
    return true
  }

  /** Whether a session token's refresh token is still its session's current one; rejects when the store cannot say. */
  async #isCurrent (refreshToken: string): Promise<boolean> {
    const presented = readRefreshToken(refreshToken)
    return presented !== null && held(await this.#store(store => store.lookup(presented)))
  }

  /**
   * The refresh token a session token (the session cookie) carries, one this plugin signed: under `session`, or under
   * `refresh_token`, the name a later release signs (a name every log hides), so that a rolling deploy to it keeps
   * every cookie. undefined for any other token (another issuer's claims are its own business). A registration's
   * sharing this one's key and revocations (`#ours`) is one too: taken for an access token there, the session cookie
   * of a day's life opened sockets long after its logout, once the revocation had lapsed.
   */
  #refreshTokenOf (claims: Claims): string | undefined {
    if (!this.#ours(claims)) return undefined
    const carried = claims.refresh_token ?? claims.session
    return typeof carried === 'string' ? carried : undefined
  }

  /**
   * The refresh session a token belongs to: its `sid`, in a token of this plugin's only (`#ours`). A provider's `sid`
   * (Keycloak signs one) names a session of the provider's, which no store here holds: read as one, the token was refused
   * after a restart and answered 503 while the revocations were away.
   */
  #sessionOf (claims: Claims): string | undefined {
    return this.#ours(claims) && typeof claims.sid === 'string' ? claims.sid : undefined
  }

  /** A token of this plugin's: its issuer, or a registration's sharing its revocations (one app @fastify/jwt). */
  #ours (claims: Claims): boolean {
    return claims.iss === this.#options.issuer || this.#options.revocations.namesSessions(claims.iss)
  }

  #verify (token: string, request: FastifyRequest): Pending<Verified> {
    const unmark = this.#options.appVerifies ? this.#mark(token, request) : null
    const verified = this.#verifyToken(token, request)
    if (unmark === null) return verified
    if (verified instanceof Promise) return verified.finally(unmark)
    unmark()
    return verified
  }

  /** Marks a verification of the plugin's own, for `trusts`; a token that does not decode fails before `trusted`. */
  #mark (token: string, request: FastifyRequest): (() => void) | null {
    let key: string
    try {
      key = JSON.stringify(this.#options.claimsOf(token))
    } catch {
      return null
    }
    // One at a time on a request: its socket waits for each of its credentials, paused, and a route has one. Nothing
    // stays once it is done: an upgrade request lives as long as its socket.
    this.#verifying.set(request, key)
    return () => this.#verifying.delete(request)
  }

  #verifyToken (token: string, request: FastifyRequest): Pending<Verified> {
    try {
      const verified = this.#options.verifyToken(token, request)
      // A key lookup that hangs must not hang the client: past the deadline the token counts as unverified.
      if (verified instanceof Promise) return deadline(verified, this.#options.keyLookupMs).then(tokenVerified, tokenRefused)
      return tokenVerified(verified)
    } catch (err) {
      return tokenRefused(err)
    }
  }

  /**
   * The app's `mapClaims` on verified claims. A throw is a token the app cannot read (one of another purpose signed with
   * the same key, a provider's without the claim it expects): refused like one naming no user, never a crash.
   */
  #identityOf (claims: Claims, log: FastifyBaseLogger): Identity | null | typeof failed {
    try {
      return this.#options.mapClaims(claims)
    } catch (err) {
      this.#mapClaimsFailures.log(log, { err })
      return failed
    }
  }

  /** `requestUser`: what the app's @fastify/jwt made of the claims, for `request.user` once a socket takes them. */
  #identify (claims: Claims, log: FastifyBaseLogger, requestUser?: unknown): AuthSuccess | AuthFailure {
    const identity = this.#identityOf(claims, log)
    if (identity === failed) return fail('AUTH_FAILED', 'mapClaims failed')
    if (!identity) return fail('AUTH_FAILED', 'token names no user')
    const { revocations } = this.#options
    const session = this.#sessionOf(claims)
    // A process that has never loaded the revocations cannot tell a revoked session: the client may try again later.
    if (session !== undefined && !revocations.loaded) return fail('SERVICE_UNAVAILABLE', 'revocations not loaded yet')
    const iat = issuedAtOf(claims)
    const revoked = revocations.revoking(identity.user, session, iat)
    if (revoked !== null) return fail('AUTH_FAILED', `${revoked} revoked`)
    const expiresAt = this.#expiryOf(claims)
    if (claims.iss !== this.#options.issuer) this.#lived(expiresAt, iat)
    return { ok: true, identity, session, expiresAt, issuedAt: heldIssuedAt(iat), requestUser }
  }

  /**
   * Another issuer's token, verified (a sibling registration's too): a user's revocation lasts as long as it may live
   * (from its `iat`), at most one refresh-token TTL (`Revocations.tokenLived`). A provider's tokens often live an hour or
   * a day: one access-token TTL of 15 minutes let a revoked user's token in again for the rest of its life.
   */
  #lived (expiresAt: number | null, iat: number | undefined): void {
    const { revocations, refreshTokenTtlMs } = this.#options
    const life = expiresAt === null ? Infinity : expiresAt - (iat === undefined ? Date.now() : iat * 1000)
    if (life > revocations.tokenLifeMs) revocations.tokenLived(Math.min(life, refreshTokenTtlMs))
  }

  /** How long a revocation of a user lasts: one access-token TTL, or the longest life of another issuer's token seen. */
  get #userRevocationMs (): number {
    return Math.max(this.#options.accessTokenTtlMs, this.#options.revocations.tokenLifeMs)
  }

  /**
   * When verified claims stop verifying (epoch milliseconds), so the socket holding them ends then: at `exp` (and its
   * clock tolerance), or once older than `maxAgeMs` (from `iat`, as fast-jwt counts it, with no tolerance, and only for
   * a token with one); null for neither.
   */
  #expiryOf (claims: Claims): number | null {
    const { maxAgeMs, clockToleranceMs } = this.#options.verifyWindow
    const exp = typeof claims.exp === 'number' ? claims.exp * 1000 + clockToleranceMs : Infinity
    const aged = maxAgeMs !== null && typeof claims.iat === 'number' ? claims.iat * 1000 + maxAgeMs : Infinity
    const expiresAt = Math.min(exp, aged)
    return expiresAt === Infinity ? null : expiresAt
  }

  /**
   * The app's `onAuthenticate` on a verified credential: false refuses it (AUTH_FAILED), an object is the context
   * handlers see, a throw is a check that could not run (SERVICE_UNAVAILABLE).
   */
  #admit (result: AuthResult, claims: Claims | null, at: AuthContext): Pending<AuthResult> {
    const hook = this.#options.onAuthenticate
    if (!hook || !result.ok) return result
    const { request, source, endpoint } = at
    return (async () => {
      try {
        const pending = hook({ identity: result.identity, claims, request, source, endpoint })
        // The socket waits for it, paused: a hook that hangs would hold it for good. Any thenable is awaited (a
        // library's promise, another realm's): one taken for a verdict would admit whatever it resolves to.
        const verdict = isThenable(pending) ? await deadline(Promise.resolve(pending), this.#options.storeTimeoutMs) : pending
        if (verdict === false) return fail('AUTH_FAILED', 'refused by onAuthenticate')
        return typeof verdict === 'object' && verdict !== null ? { ...result, context: verdict } : result
      } catch (err) {
        request.log.error({ err }, 'onAuthenticate failed')
        return fail('SERVICE_UNAVAILABLE', 'onAuthenticate failed')
      }
    })()
  }

  /**
   * Any of the three forms. An access token answers synchronously where it can: the frames a client pipelines behind
   * its auth message are then read at once, not held (and counted against the backlog bound) while a promise settles.
   */
  authenticate (credential: Credential, at: AuthContext): Pending<AuthResult> {
    if ('access_token' in credential) return this.verifyAccessToken(credential.access_token, at)
    if ('refresh_token' in credential) return this.refresh(credential.refresh_token, at)
    return this.login(credential, at)
  }

  /** `at`: where the client presented it; null for the application API (no hook, attempts counted per email only). */
  async login (given: PasswordCredential, at: AuthContext | null): Promise<AuthResult> {
    const { attemptLimiter, storeTimeoutMs, sessionStore } = this.#options
    // One spelling, counted and looked up: the app's lookup finds what the counters count, not a fullwidth or
    // decomposed twin with attempts of its own. The bounds hold here for every path (the app's login() too), as sent
    // and as looked up (NFKC makes an email of 254 up to 4,572 long): refused uncounted and unchecked, no user is past
    // them. INVALID_CREDENTIALS: a login's refusal has no code for a bad field (AuthFailureCode).
    const credential = withinBounds(given) ? { ...given, email: normalizeEmail(given.email) } : null
    if (credential === null || credential.email.length > maxEmailLength) return fail('INVALID_CREDENTIALS', 'email or password over its bound')
    const ip = at && at.ip
    const { passwordChecks } = this.#options
    // Refused before anything is counted or asked of a store, as the queue would refuse it after.
    if (!passwordChecks.admit(ip)) return fail('SERVICE_UNAVAILABLE', queueFullReason)
    let checkBegins: Promise<number> | undefined
    let retryAfterMs: number
    // Whatever happens, even an app store's checkBegins throwing as it is called, the room it held is given back.
    try {
      // Asked beside the attempt counters, so that it costs the login no time of its own.
      checkBegins = sessionStore.checkBegins && handled(this.#store(store => store.checkBegins!()))
      try {
        retryAfterMs = await deadline(attemptLimiter.begin(ip, credential.email), storeTimeoutMs)
      } catch {
        // Never a bypass: without the counters the password is not checked.
        return fail('SERVICE_UNAVAILABLE', 'attempt counters unavailable')
      }
    } finally {
      passwordChecks.counted(ip)
    }
    if (retryAfterMs > 0) return { ok: false, code: 'REQUESTS_EXCEEDED', reason: 'too many failed attempts', retryAfterMs }
    let checkBegan: number | undefined
    try {
      checkBegan = await checkBegins
      if (at && this.#checkBeginsOutages.ended()) at.request.log.info('the session store says where a login\'s check began again')
    } catch (err) {
      // The login goes on under this process's own guard, as with a store without `checkBegins`: in a cluster, the one
      // node of the clock being away would otherwise stop every login while the other nodes serve sessions.
      if (at) this.#checkBeginsOutages.failed(at.request.log, err as Error, 'the session store could not say where a login\'s check began: logins are guarded against revocations on other processes only once those are heard')
    }
    // What the check proves holds as of its start: a user revoked while it ran (a password changed, then revokeUser)
    // gets no session from it, and its tokens read as issued then. The store's `checkBegan` says the same where this
    // process has not heard of the revocation yet.
    const checkedFrom = Date.now()
    const heardBefore = this.#options.revocations.heard
    // Aborted once the login has failed for want of something other than the credential, after its check: a one-time
    // code the check used up is given back, for the client's retry (`CredentialCheck`).
    const abandoned = new AbortController()
    let identity: Identity | null
    let verifying: Promise<Identity | null>
    const verify = () => {
      verifying = Promise.resolve().then(() => this.#options.verifyCredentials(credential, { signal: abandoned.signal }))
      // A check that never answers (a directory's connection dropped) gives its lane back at the deadline, or every
      // later login would wait behind it.
      return deadline(verifying, storeTimeoutMs)
    }
    try {
      identity = await passwordChecks.run(ip, verify, at?.waiting)
    } catch (err) {
      if (!(err instanceof PasswordUnchecked)) {
        // The operator's only clue to a directory that is down; any client can set it off again and again.
        if (at) this.#credentialCheckFailures.log(at.request.log, { err })
        // Once the check has ended: one past its deadline may use a code up yet.
        Promise.allSettled([verifying!]).then(() => abandoned.abort())
        return fail('SERVICE_UNAVAILABLE', 'credential check failed')
      }
      await this.#unchecked(ip, credential.email)
      return fail('SERVICE_UNAVAILABLE', err.message)
    }
    if (!identity) return fail('INVALID_CREDENTIALS', 'wrong email, password or otp')
    try {
      const result = await this.#checkedLogin(credential, at, identity, this.#checkStart(identity.user, checkedFrom, heardBefore), checkBegan)
      if (!result.ok && result.code === 'SERVICE_UNAVAILABLE') abandoned.abort()
      return result
    } catch (err) {
      abandoned.abort()
      throw err
    }
  }

  /** A login whose credential was right: the attempt counted as a success, its checks, then its session. */
  async #checkedLogin (credential: PasswordCredential, at: AuthContext | null, identity: Identity, checkedFrom: number,
    checkBegan: number | undefined): Promise<AuthResult> {
    const { attemptLimiter, storeTimeoutMs } = this.#options
    const ip = at && at.ip
    // The password was right: the attempt counts as a success, whether or not the login is then refused.
    const counted = handled(deadline(attemptLimiter.succeeded(ip, credential.email), storeTimeoutMs))
    const session = newSessionId(checkedFrom)
    const refreshToken = newRefreshToken(session)
    const admitted = await this.#admitLogin(identity, session, refreshToken, checkedFrom, at)
    if (!admitted.ok) {
      await Promise.allSettled([counted])
      return admitted
    }
    let ended: string[]
    try {
      [ended] = await Promise.all([
        this.#store(async (store, deadline) => await store.create({
          id: session,
          identity,
          tokenHash: hashRefreshToken(refreshToken),
          expiresAt: Date.now() + this.#options.refreshTokenTtlMs
        }, deadline, checkBegan) ?? []),
        counted
      ])
      // Sessions the store ended, past the user's limit: their sockets end too, and their access tokens are refused.
      await Promise.all(ended.map(id => this.#revokeSession(id)))
    } catch {
      return fail('SERVICE_UNAVAILABLE', 'session store unavailable')
    }
    // This one among them: its user was revoked, on a process that this one has not heard from yet, after its check
    // began, and the revocation may have missed it (`checkBegan`).
    if (ended.includes(session)) return fail('INVALID_CREDENTIALS', 'the user was revoked while the credential was checked')
    // Revoked while the store wrote the session: it ends at once. One revoked later still is refused by the
    // revocation's second stamp (endUser), the tokens reading as issued before.
    if (this.#revokedSince(identity.user, checkedFrom)) {
      await this.endSession(session).catch(() => {})
      return fail('INVALID_CREDENTIALS', 'the user was revoked while the credential was checked')
    }
    return admitted
  }

  /**
   * Every check of a login whose password was right, made before its session is: past the user's limit the store ends
   * their oldest session to make room, and a login refused after that (by the app's hook, say, for a banned address)
   * would let whoever holds the password end the user's sessions one by one. The tokens are signed for a session not
   * made yet, and handed out only once it is.
   */
  async #admitLogin (identity: Identity, session: string, refreshToken: string, checkedFrom: number, at: AuthContext | null): Promise<AuthResult> {
    if (this.#revokedSince(identity.user, checkedFrom)) return fail('INVALID_CREDENTIALS', 'the user was revoked while the credential was checked')
    // An identity no token can carry (verifyCredentials's) throws: the caller tells it as a check that failed
    // unforeseen, logged.
    const issued = this.#issue(identity, session, refreshToken, checkedFrom)
    const admitted = at ? await this.#admit(issued, null, at) : issued
    // A login whose client left makes no session: nobody would hold it, and past the user's limit it would end one
    // somebody does.
    if (admitted.ok && at?.waiting?.() === false) return fail('SERVICE_UNAVAILABLE', 'the client left before its session was made')
    return admitted
  }

  /**
   * A login's attempt whose password was never checked (the queue full, its client gone before its turn, the store
   * away) is given back, or a flood of the queue from anywhere would spend the user's attempts and lock their email
   * out. A check that ran (threw, timed out) keeps counting. Should the counters not answer, it keeps counting too.
   */
  async #unchecked (ip: string | null, email: string): Promise<void> {
    const { attemptLimiter, storeTimeoutMs } = this.#options
    await Promise.allSettled([deadline(attemptLimiter.unchecked(ip, email), storeTimeoutMs)])
  }

  /**
   * Whether `user` was revoked since a credential check began at `checkedFrom`, by this process or another (the
   * revocation feed): what the check proved no longer holds (a password changed, then revokeUser).
   */
  /**
   * When a login's check began, for its user's revocations: a revocation this process had taken in before then, stamped
   * in the same millisecond or later (Redis's clock, ahead of this one: the feed stamps by the later), came before it (a
   * login right after `revokeUser` returned, as an app's password change logs the user in again): the check counts from
   * the millisecond after, or it would be refused as revoked meanwhile.
   */
  #checkStart (user: string, checkedFrom: number, heardBefore: number): number {
    const { revocations } = this.#options
    const revokedAt = revocations.userRevokedAt(user)
    return revokedAt !== undefined && revokedAt >= checkedFrom && revocations.knewOfUser(user, heardBefore) ? revokedAt + 1 : checkedFrom
  }

  #revokedSince (user: string, checkedFrom: number): boolean {
    return (this.#options.revocations.userRevokedAt(user) ?? -Infinity) >= checkedFrom
  }

  /**
   * `graceMs` (a session cookie's refresh, `cookies.session.refreshGrace`): for so long the token this refresh
   * replaces still refreshes, for the tabs that present it at the same time. Such a refresh rotates nothing and
   * issues no token (`issued` unset): the browser keeps the cookie the first one set.
   */
  async refresh (refreshToken: string, at: AuthContext, graceMs = 0): Promise<AuthResult> {
    const presented = readRefreshToken(refreshToken)
    if (!presented) return fail('INVALID_CREDENTIALS', 'unknown or expired refresh token')
    if (this.#options.revocations.has(presented.sessionId)) {
      // Until its end went out, the client keeps its token (503), for the logout's retry to end the session everywhere.
      return await this.#endAgain(presented.sessionId)
        ? fail('INVALID_CREDENTIALS', 'session ended')
        : fail('SERVICE_UNAVAILABLE', 'session ended here, its revocation not sent')
    }
    try {
      // A rotation of this session given back after a failure must have landed, or this one would be taken for reuse.
      // Awaited only when there is one (here as in a logout): with none, the store is called without a tick more.
      const settling = this.#options.giveBacks.settle(rotationOf(presented.sessionId))
      if (settling) await settling
      // The app's hook answers before the token rotates: a hook that cannot answer leaves the client's token good for a
      // retry, where after the rotation the session would have had to end (the client never got the next token).
      let context: Record<string, unknown> | undefined
      if (this.#options.onAuthenticate) {
        const found = await this.#store(store => store.lookup(presented))
        // A replaced token is the holder's only within a session cookie's grace: anywhere else it is reuse, as `#rotate` finds.
        if (found.status === 'previous' && graceMs === 0) return await this.#notCurrent({ status: 'reused', sessionId: presented.sessionId })
        if (!held(found)) return await this.#notCurrent(found)
        const { identity, id } = found.session
        // Not asked of a session a revocation ends (as below, once rotated): the hook never sees a refresh that fails.
        if (this.#endedByRevocation(identity, id)) return await this.#endRevoked(id)
        const admitted = await this.#admit({ ok: true, identity, session: id, expiresAt: null, issuedAt: 0 }, null, at)
        if (!admitted.ok) {
          // Refused by the app: the session ends with it, its sockets and access tokens too.
          if (admitted.code === 'AUTH_FAILED') await this.endSession(id)
          return admitted
        }
        context = admitted.context
      }
      if (at.waiting?.() === false) return fail('SERVICE_UNAVAILABLE', 'the client left before its refresh token rotated')
      const issued = await this.#rotate(presented, at, graceMs)
      return context && issued.ok ? { ...issued, context } : issued
    } catch {
      return fail('SERVICE_UNAVAILABLE', 'session store unavailable')
    }
  }

  /**
   * Rotates the refresh token, and takes the rotation back (`unrotate`) whenever its client does not get the next
   * token: the store answered late or not at all (it may have rotated all the same), the client left meanwhile, the
   * tokens could not be signed. The client then retries with the token it holds, which must still be current.
   */
  async #rotate (presented: PresentedToken, at: AuthContext, graceMs: number): Promise<AuthResult> {
    const grace = graceMs > 0 ? { ms: graceMs } : undefined
    const next = newRefreshToken(presented.sessionId)
    const nextTokenHash = hashRefreshToken(next)
    const issuedAt = Date.now()
    try {
      const rotated = await this.#store((store, deadline) => store.rotate(
        presented, nextTokenHash, Date.now() + this.#options.refreshTokenTtlMs, deadline, grace))
      // Another tab's refresh rotated this token a moment ago: nothing rotates, nothing is issued. Outside a session
      // cookie's refresh, a rotated token is reuse as ever.
      if (rotated.status === 'previous' && grace) return await this.#withinGrace(rotated.session)
      if (rotated.status === 'previous') return await this.#notCurrent({ status: 'reused', sessionId: presented.sessionId })
      if (rotated.status !== 'rotated') return await this.#notCurrent(rotated)
      const { identity, id } = rotated.session
      if (this.#endedByRevocation(identity, id)) return await this.#endRevoked(id)
      if (at.waiting?.() === false) {
        this.#unrotate(presented, nextTokenHash)
        return fail('SERVICE_UNAVAILABLE', 'the client left while its refresh token rotated')
      }
      return this.#issue(identity, id, next, issuedAt)
    } catch (err) {
      this.#unrotate(presented, nextTokenHash)
      throw err
    }
  }

  /** A session whose previous token was presented within its grace: it lives on, with the cookie the rotation set. */
  async #withinGrace ({ identity, id }: RefreshSession): Promise<AuthResult> {
    if (this.#endedByRevocation(identity, id)) return await this.#endRevoked(id)
    return { ok: true, identity, session: id, expiresAt: null, issuedAt: Math.floor(Date.now() / 1000) }
  }

  /**
   * Whether a revocation of its user in force ends the session: its login began before it (its id says when). Its store
   * may not have ended it yet: a revokeUser ends a user's sessions a batch at a time.
   */
  #endedByRevocation (identity: Identity, session: string): boolean {
    const began = sessionBegan(session)
    return began !== undefined && this.#revokedSince(identity.user, began)
  }

  /** Such a session ends here, and yields no token. */
  async #endRevoked (session: string): Promise<AuthFailure> {
    await this.endSession(session)
    return fail('INVALID_CREDENTIALS', 'session ended')
  }

  /** Given back until it lands, for a while: a client may retry at once or minutes later. */
  #unrotate (presented: PresentedToken, nextTokenHash: string): void {
    const { sessionStore, giveBacks } = this.#options
    if (!sessionStore.unrotate) return
    giveBacks.add(rotationOf(presented.sessionId), () => sessionStore.unrotate!(presented, nextTokenHash), unrotateForMs)
  }

  /**
   * Ends again a session this process holds as ended (its revocation is in force), which the store may hold all the
   * same: a Redis restarted from a snapshot older than the logout, or a logout answered 503 whose revocation this process
   * applied but could not send. Then, as `endSession`, the revocation goes out again first: ended in the store alone,
   * the session's sockets elsewhere would keep it, and the client's retried logout would find its token unknown. Ended
   * there again, it stays ended once the revocation lapses. Tells whether what it had to do went through.
   */
  async #endAgain (session: string): Promise<boolean> {
    if (!this.#unsent.has(session)) {
      await Promise.allSettled([this.#store((store, deadline) => store.end(session, deadline))])
      return true
    }
    try {
      await this.endSession(session)
      return true
    } catch {
      return false
    }
  }

  /** A refresh token that is not its session's current one. A rotated one presented again means two holders: the session ends for both. */
  async #notCurrent (found: { status: 'unknown' } | { status: 'reused', sessionId: string }): Promise<AuthFailure> {
    if (found.status === 'unknown') return fail('INVALID_CREDENTIALS', 'unknown or expired refresh token')
    await this.endSession(found.sessionId)
    return fail('INVALID_CREDENTIALS', 'refresh token reused; session revoked')
  }

  /** Ends the session a refresh token belongs to. */
  async logout (refreshToken: string): Promise<AuthFailure | { ok: true }> {
    const presented = readRefreshToken(refreshToken)
    if (!presented) return fail('INVALID_CREDENTIALS', 'unknown or expired refresh token')
    try {
      // The token before a rotation still being given back is the client's own, no reuse.
      const settling = this.#options.giveBacks.settle(rotationOf(presented.sessionId))
      if (settling) await settling
      const found = await this.#store(store => store.lookup(presented))
      // Gone from the store while its revocation has not gone out (a login past the user's limit ended it, then could
      // not send that): sent again, or a 503 to try again.
      if (found.status === 'unknown' && this.#unsent.has(presented.sessionId)) await this.#revokeSession(presented.sessionId)
      // A rotated token is reuse here too: it ends the session, and the caller is told it was not valid.
      if (!held(found)) return await this.#notCurrent(found)
      await this.endSession(found.session.id)
      return { ok: true }
    } catch {
      return fail('SERVICE_UNAVAILABLE', 'session store unavailable')
    }
  }

  /**
   * Ends the session of a refresh token that is its session's current one; any other is left alone. Tells whether the
   * store knows the token (current or rotated): a refresh cookie of the plugin's, not another app's on the same host.
   */
  async endCurrentSession (refreshToken: string): Promise<boolean> {
    const presented = readRefreshToken(refreshToken)
    if (!presented) return false
    // As a logout: a rotation still being given back would bring the session back once it lands, out of reach.
    const settling = this.#options.giveBacks.settle(rotationOf(presented.sessionId))
    if (settling) await settling
    const found = await this.#store(store => store.lookup(presented))
    if (held(found)) await this.endSession(found.session.id)
    return found.status !== 'unknown'
  }

  async endSession (session: string): Promise<void> {
    // The revocation first: ended first, a session whose revocation then failed could not be logged out again (its
    // refresh token unknown), and its sockets would keep it. Revoked first, a retry ends what a failure left.
    await this.#revokeSession(session)
    await this.#store((store, deadline) => store.end(session, deadline))
  }

  /** A session's revocation, remembered while it has not gone out. */
  async #revokeSession (session: string): Promise<void> {
    try {
      await this.#revoke(revocationId.session(session))
      this.#unsent.delete(session)
    } catch (err) {
      const kept = this.#options.unsentKept ?? maxUnsent
      if (!this.#unsent.has(session) && this.#unsent.size === kept) this.#unsent.delete(this.#unsent.values().next().value!)
      this.#unsent.add(session)
      throw err
    }
  }

  /** Ends the user's sessions, and refuses every token of the user issued until now, with a session or without. */
  async endUser (user: string): Promise<void> {
    // The user's revocation goes out first, not after a round trip per session: it ends every socket of the user on
    // every process. A login or refresh meanwhile writes its session before the store ends it, and its token is issued
    // as of before that write (`#issue`): one more revocation of the user, stamped once the store answers, refuses it
    // (one, not one per ended session). Stamped also when the store gave up part-way: the sessions it ended by then
    // are covered. The second gets what is left of one store deadline, not one of its own: the call fails closed in
    // the time any store call does (a hung Redis would otherwise hold it two deadlines); it applies here all the same.
    const until = Date.now() + this.#options.storeTimeoutMs
    const done = await Promise.allSettled([
      this.#revoke(revocationId.user(user, Date.now()), this.#userRevocationMs),
      this.#store((store, deadline) => store.endUser(user, deadline))
    ])
    done.push(...await Promise.allSettled([
      this.#revoke(revocationId.user(user, Date.now()), this.#userRevocationMs, Math.max(0, until - Date.now()))
    ]))
    for (const outcome of done) if (outcome.status === 'rejected') throw outcome.reason
  }

  /** `lastsMs`: how long it refuses tokens; `withinMs`: how long Redis has to take it, a store call's time by default. */
  #revoke (id: string, lastsMs = this.#options.accessTokenTtlMs + this.#options.verifyWindow.clockToleranceMs, withinMs = this.#options.storeTimeoutMs): Promise<void> {
    // Tokens signed from now on for this session (or before now for this user) cannot exist; a session's out there
    // are taken at most one TTL and the clock tolerance (`verify.clockTolerance`, past their `exp`), a user's as long as
    // the longest-lived seen (`#userRevocationMs`). A session token lives longer too, but ends with its session:
    // whoever checks it asks the store (`trusts`).
    // Given up on like a store call: an app's own Redis client may have no command timeout, and a logout would wait
    // as long as Redis does. Given up on, it may still go out: a revocation twice is one.
    return deadline(this.#options.revocationFeed.publish(id, Date.now() + lastsMs + this.#signedLateMs), withinMs)
  }

  /**
   * How much later than a revocation went out a token it refuses may be signed, its life counted from then: a refresh
   * on a process that had not heard of it yet, begun up to two store calls after it (its publish, then the session's
   * end in the store), is answered within one more.
   */
  get #signedLateMs (): number {
    return 3 * this.#options.storeTimeoutMs
  }

  /**
   * A store call, given up on after `storeTimeoutMs`. A write's deadline comes a third of the way in: the two thirds
   * left are the margin for clock skew between this process and the store and for the reply's way back (and for
   * ioredis's own 2 s command timeout), so a write either acts while its answer is still awaited or never.
   */
  #store<T> (call: (store: SessionStore, deadline: number) => Promise<T>): Promise<T> {
    const { sessionStore, storeTimeoutMs } = this.#options
    return deadline(call(sessionStore, Date.now() + storeTimeoutMs / 3), storeTimeoutMs)
  }

  signAccessToken (identity: Identity, session?: string): { access_token: string, expires: number, expiresAt: number } {
    const { token, expires, expiresAt } = this.#sign(identity, session, this.#options.accessTokenTtlMs)
    return { access_token: token, expires, expiresAt }
  }

  /** A session token for `issued`'s session: an access token that lives `sessionTokenTtlMs` and carries its refresh token. */
  signSessionToken (issued: AuthSuccess): { session_token: string, expires: number } {
    const { token, expires } = this.#sign(issued.identity, issued.session, this.#options.sessionTokenTtlMs, issued.issued!.refresh_token)
    return { session_token: token, expires }
  }

  /**
   * `issuedAt`: epoch milliseconds the token reads as issued at (its `iat`), now by default; it lives `ttlMs` from now.
   * One issued after a revocation of its user, in the revocation's second, reads as issued the second after: a
   * revocation refuses its whole second (revocations.ts), and the token would be refused as long as it lasts. So only
   * when its session's login began after the revocation too (its id says when; one that does not, or says a time to
   * come, as if before: `sessionSince`).
   */
  #sign (identity: Identity, session: string | undefined, ttlMs: number, refreshToken?: string, issuedAt = Date.now()) {
    const claims: Record<string, unknown> = { id: identity.user, role: identity.role, admin_access: identity.admin }
    const revokedAt = this.#options.revocations.userRevokedAt(identity.user)
    // One without a session is signed now, after the revocation this process knows of, if in its very millisecond too
    // (`await revokeUser(...)` then `signAccessToken`, on a fast store): a login's session says when it began.
    const after = revokedAt !== undefined && (session === undefined || sessionSince(session, issuedAt) > revokedAt)
    let iat = Math.floor(issuedAt / 1000)
    if (after && iat <= Math.floor(revokedAt / 1000)) iat = Math.floor(revokedAt / 1000) + 1
    claims.iat = iat
    // fast-jwt counts `exp` from the `iat` it is given: the time between them and now is added (taken off, for an iat
    // ahead of now), so the token lives as `expires` says.
    const lifeMs = ttlMs + Date.now() - iat * 1000
    if (session !== undefined) {
      claims.sid = session
      this.#options.revocations.signed(session, iat)
    }
    // Under `session` still: a process of the release before reads no other name, and would take a session token
    // without it for an access token. A later release signs `refresh_token`, a name every log hides.
    if (refreshToken !== undefined) claims.session = refreshToken
    // @fastify/jwt reads a number as seconds and a numeric string as milliseconds. The issuer is an option of the call:
    // one in the claims would lose to the app's instance's own `sign.iss`, and the token its admin access. So is the
    // `iat`'s keeping: the app's `sign.noTimestamp` would drop it, and the revocations read every such token as old.
    const token = this.#options.jwt.sign(claims, { expiresIn: String(lifeMs), iss: this.#options.issuer, noTimestamp: false })
    return { token, expires: ttlMs, expiresAt: this.#expiryOf(this.#options.claimsOf(token))!, iat }
  }

  /**
   * The tokens of a session the store has just written (a refresh's) or is about to (a login's), issued as of
   * `issuedAt`, taken before the write (a login's, before its check): a revokeUser that ended the session after the
   * write stamps its last revocation once it has, so later than that, and refuses the token however long this process
   * stalled between the write and the signing. A socket that takes them holds them as of the token's `iat`, the second
   * after a revocation in the same second: as of `issuedAt`'s, that revocation would end it at once.
   */
  #issue (identity: Identity, session: string, refreshToken: string, issuedAt: number): AuthSuccess {
    const { token: accessToken, expires, expiresAt, iat } = this.#sign(identity, session, this.#options.accessTokenTtlMs, undefined, issuedAt)
    return {
      ok: true,
      identity,
      session,
      expiresAt,
      issuedAt: iat,
      issued: { access_token: accessToken, expires, refresh_token: refreshToken }
    }
  }
}

/**
 * When `session`'s login began, for a token of it issued at `issuedAt` (epoch milliseconds); -Infinity, as if before
 * any revocation, for an id that does not say (an earlier build's, the app's own) or that says after `issuedAt`: its
 * login's process has a clock ahead, so it may have begun before a revocation all the same, and a token of it dated the
 * second after would outlive it.
 */
function sessionSince (session: string, issuedAt: number): number {
  const began = sessionBegan(session)
  return began === undefined || began > issuedAt ? -Infinity : began
}
