// The one authenticator: turns any credential into an identity with its expiry, or one typed failure.
// Every endpoint and the HTTP routes go through it; nothing else verifies a token.
import type { JWT } from '@fastify/jwt'
import { hashRefreshToken, newRefreshToken, newSessionId, readRefreshToken } from './refresh-tokens.js'
import type { Revocations } from './revocations.js'
import type { AttemptLimiter } from '../stores/attempts/contract.js'
import { PasswordQueueFull, type PasswordChecks } from './password-checks.js'
import type { RevocationFeed } from '../stores/revocation-feed/contract.js'
import type {
  AuthFailureCode, Credential, Identity, MapClaims, PasswordCredential, SessionStore, VerifyCredentials
} from '../../types/index.js'

export interface AuthSuccess {
  ok: true
  identity: Identity
  /** The refresh session behind the credential (`sid`), when there is one. */
  session: string | undefined
  /** Epoch milliseconds when the access token expires; null when it never does. */
  expiresAt: number | null
  /** Set when the authentication issued tokens (email/password and refresh-token forms). */
  issued?: { access_token: string, expires: number, refresh_token: string }
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

/** Verified claims, or a throw with fast-jwt's error code (`FAST_JWT_EXPIRED`, ...): `@fastify/jwt`'s verify. */
export type VerifyAccessToken = (token: string) => Record<string, unknown>

/**
 * The default `mapClaims`: `id` or `sub`, `role`; admin only for a token this plugin issued (`iss`) with
 * `admin_access`, so that no other token signed with the same key, for whatever purpose, is an admin's.
 */
export function defaultMapClaims (issuer: string): MapClaims {
  return (claims) => {
    const user = claims.id ?? claims.sub
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
  jwt: JWT
  /** Verifies them: @fastify/jwt's verify. */
  verifyToken: VerifyAccessToken
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
  /**
   * How long a session-store (or attempt-counter) call may take before the auth fails closed (SERVICE_UNAVAILABLE).
   * A session-store write must start acting within the first third of it, or not at all (its `deadline`).
   */
  storeTimeoutMs: number
  /** Limits email/password attempts per client IP and per email. */
  attemptLimiter: AttemptLimiter
  /** Where password checks wait for their turn. */
  passwordChecks: PasswordChecks
}

/** A store that hangs must not hang the client: past the deadline it counts as unavailable. */
function deadline<T> (work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`store took more than ${ms} ms`)), ms)
  })
  return Promise.race([work, expired]).finally(() => clearTimeout(timer))
}

export class Authenticator {
  readonly #options: AuthenticatorOptions

  constructor (options: AuthenticatorOptions) {
    this.#options = options
  }

  /** Synchronous, so a socket authenticated by access token never waits a tick. */
  verifyAccessToken (token: string): AuthSuccess | AuthFailure {
    const verified = this.#verify(token)
    if (!verified.ok) return verified
    // A session token counts only while current (`verifySessionToken`).
    if (this.#isSessionToken(verified.claims)) return fail('AUTH_FAILED', 'a session token is no access token')
    return this.#identify(verified.claims)
  }

  /**
   * A session token (the session cookie): verified as an access token is, and current only while the refresh token
   * it carries is its session's current one, so that a cookie replaced by a refresh, or ended by a logout, is refused.
   */
  async verifySessionToken (token: string): Promise<AuthResult> {
    const verified = this.#verify(token)
    if (!verified.ok) return verified
    const presented = this.#isSessionToken(verified.claims) ? readRefreshToken(verified.claims.session) : null
    if (!presented) return fail('AUTH_FAILED', 'not a session token')
    const result = this.#identify(verified.claims)
    if (!result.ok) return result
    try {
      const found = await this.#store(store => store.lookup(presented))
      return found.status === 'current' ? result : fail('AUTH_FAILED', 'session token replaced or ended')
    } catch {
      return fail('SERVICE_UNAVAILABLE', 'session store unavailable')
    }
  }

  /** The refresh token a session token carries, for the session routes; expired or not ours: null. */
  sessionTokenRefreshToken (token: string): string | null {
    const verified = this.#verify(token)
    return verified.ok && this.#isSessionToken(verified.claims) ? verified.claims.session : null
  }

  /** One this plugin signed with its session's refresh token (another issuer's `session` claim is its own business). */
  #isSessionToken (claims: Record<string, unknown>): claims is { session: string } {
    return claims.iss === this.#options.issuer && typeof claims.session === 'string'
  }

  #verify (token: string): { ok: true, claims: Record<string, unknown> } | AuthFailure {
    try {
      return { ok: true, claims: this.#options.verifyToken(token) }
    } catch (err) {
      const code = (err as { code?: string }).code
      return code === 'FAST_JWT_EXPIRED' ? fail('TOKEN_EXPIRED', 'token expired') : fail('AUTH_FAILED', `invalid token (${code})`)
    }
  }

  #identify (claims: Record<string, unknown>): AuthSuccess | AuthFailure {
    const identity = this.#options.mapClaims(claims)
    if (!identity) return fail('AUTH_FAILED', 'token names no user')
    const session = typeof claims.sid === 'string' ? claims.sid : undefined
    // A process that has never loaded the revocations cannot tell a revoked session: the client may try again later.
    if (session !== undefined && !this.#options.revocations.loaded) return fail('SERVICE_UNAVAILABLE', 'revocations not loaded yet')
    if (session !== undefined && this.#options.revocations.has(session)) return fail('AUTH_FAILED', 'session revoked')
    const expiresAt = typeof claims.exp === 'number' ? claims.exp * 1000 : null
    return { ok: true, identity, session, expiresAt }
  }

  /**
   * Any of the three forms. `ip` is the client's, for the attempt limits. An access token answers synchronously: the
   * frames a client pipelines behind its auth message are then read at once, not held (and counted against the
   * backlog bound) while a promise settles.
   */
  authenticate (credential: Credential, ip: string | null = null): AuthResult | Promise<AuthResult> {
    if ('access_token' in credential) return this.verifyAccessToken(credential.access_token)
    if ('refresh_token' in credential) return this.refresh(credential.refresh_token)
    return this.login(credential, ip)
  }

  /** `ip` is the client's address; null (the application API) counts the attempt against the email only. */
  async login (credential: PasswordCredential, ip: string | null = null): Promise<AuthResult> {
    const { attemptLimiter, storeTimeoutMs } = this.#options
    let retryAfterMs: number
    try {
      retryAfterMs = await deadline(attemptLimiter.begin(ip, credential.email), storeTimeoutMs)
    } catch {
      // Never a bypass: without the counters the password is not checked.
      return fail('SERVICE_UNAVAILABLE', 'attempt counters unavailable')
    }
    if (retryAfterMs > 0) return { ok: false, code: 'REQUESTS_EXCEEDED', reason: 'too many failed attempts', retryAfterMs }
    let identity: Identity | null
    try {
      identity = await this.#options.passwordChecks.run(ip, () => this.#options.verifyCredentials(credential))
    } catch (err) {
      return fail('SERVICE_UNAVAILABLE', err instanceof PasswordQueueFull ? 'too many password checks waiting' : 'credential check failed')
    }
    if (!identity) return fail('INVALID_CREDENTIALS', 'wrong email, password or otp')
    const session = newSessionId()
    const refreshToken = newRefreshToken(session)
    try {
      await Promise.all([
        this.#store((store, deadline) => store.create({
          id: session,
          identity,
          tokenHash: hashRefreshToken(refreshToken),
          expiresAt: Date.now() + this.#options.refreshTokenTtlMs
        }, deadline)),
        deadline(attemptLimiter.succeeded(ip, credential.email), storeTimeoutMs)
      ])
    } catch {
      return fail('SERVICE_UNAVAILABLE', 'session store unavailable')
    }
    return this.#issue(identity, session, refreshToken)
  }

  async refresh (refreshToken: string): Promise<AuthResult> {
    const presented = readRefreshToken(refreshToken)
    if (!presented) return fail('INVALID_CREDENTIALS', 'unknown or expired refresh token')
    const next = newRefreshToken(presented.sessionId)
    try {
      const rotated = await this.#store((store, deadline) => store.rotate(
        presented, hashRefreshToken(next), Date.now() + this.#options.refreshTokenTtlMs, deadline))
      if (rotated.status === 'unknown') return fail('INVALID_CREDENTIALS', 'unknown or expired refresh token')
      if (rotated.status === 'reused') {
        // A rotated token presented again means two holders: end the session for both.
        await this.endSession(rotated.sessionId)
        return fail('INVALID_CREDENTIALS', 'refresh token reused; session revoked')
      }
      return this.#issue(rotated.session.identity, rotated.session.id, next)
    } catch {
      return fail('SERVICE_UNAVAILABLE', 'session store unavailable')
    }
  }

  /** Ends the session a refresh token belongs to. */
  async logout (refreshToken: string): Promise<AuthFailure | { ok: true }> {
    const presented = readRefreshToken(refreshToken)
    if (!presented) return fail('INVALID_CREDENTIALS', 'unknown or expired refresh token')
    try {
      const found = await this.#store(store => store.lookup(presented))
      if (found.status === 'current') {
        await this.endSession(found.session.id)
        return { ok: true }
      }
      // A rotated token is reuse here too: it ends the session, and the caller is told it was not valid.
      if (found.status === 'reused') await this.endSession(found.sessionId)
    } catch {
      return fail('SERVICE_UNAVAILABLE', 'session store unavailable')
    }
    return fail('INVALID_CREDENTIALS', 'unknown or expired refresh token')
  }

  async endSession (session: string): Promise<void> {
    await this.#store((store, deadline) => store.end(session, deadline))
    await this.#revoke(session)
  }

  async endUser (user: string): Promise<void> {
    for (const session of await this.#store((store, deadline) => store.endUser(user, deadline))) await this.#revoke(session)
  }

  #revoke (session: string): Promise<void> {
    // Tokens signed from now on for this session cannot exist; the ones out there live at most one TTL.
    return this.#options.revocationFeed.publish(session, Date.now() + this.#options.accessTokenTtlMs)
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

  #sign (identity: Identity, session: string | undefined, ttlMs: number, refreshToken?: string) {
    const claims: Record<string, unknown> = { id: identity.user, role: identity.role, admin_access: identity.admin, iss: this.#options.issuer }
    if (session !== undefined) claims.sid = session
    if (refreshToken !== undefined) claims.session = refreshToken
    // @fastify/jwt reads a number as seconds and a numeric string as milliseconds.
    const token = this.#options.jwt.sign(claims, { expiresIn: String(ttlMs) })
    const { exp } = this.#options.jwt.decode<{ exp: number }>(token)!
    return { token, expires: ttlMs, expiresAt: exp * 1000 }
  }

  #issue (identity: Identity, session: string, refreshToken: string): AuthSuccess {
    const { access_token: accessToken, expires, expiresAt } = this.signAccessToken(identity, session)
    return {
      ok: true,
      identity,
      session,
      expiresAt,
      issued: { access_token: accessToken, expires, refresh_token: refreshToken }
    }
  }
}
