// The upgrade gate: runs before the socket opens (PROTOCOL.md section 3), in this order: origin, connection limit,
// credential on the request, strict mode. It replies with HTTP errors, so a refused client never gets a socket.
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { Authenticator, AuthResult, AuthSuccess } from '../auth/authenticator.js'
import type { CookieConfig, EndpointConfig } from '../config.js'
import { refuseUpgrade } from '../errors.js'
import type { AddressLimit } from './address-limit.js'
import { dropCopies } from '../routes/plugin-cookies.js'
import { pluginCookies, requestCookies } from '../routes/request-cookies.js'
import { authenticatedAccountability, ClientInfo } from '../connection/accountability.js'
import type { Registry } from '../connection/registry.js'
import type { JwtInstance, RealtimeUpgrade } from '../../types/index.js'
import type { RequestUsers } from '../auth/jwt.js'

/** What the gate hands the endpoint: the credential it verified, kept off the public request decoration. */
const upgrades = new WeakMap<FastifyRequest, AuthSuccess>()

/** Taken once, by the socket it opens: the request outlives the upgrade (connection.request), its entry need not. */
export function takeUpgradeCredential (request: FastifyRequest): AuthSuccess | null {
  const credential = upgrades.get(request)
  if (credential === undefined) return null
  upgrades.delete(request)
  return credential
}

/** No Origin (not a browser), the request's own origin (scheme, host and port), or an allowed origin. */
export function originAllowed (request: FastifyRequest, allowed: ReadonlySet<string>): boolean {
  const origin = request.headers.origin
  if (origin === undefined) return true
  let url: URL
  try {
    url = new URL(origin)
  } catch {
    return false
  }
  if (url.origin === 'null' || url.origin !== origin.replace(/\/$/, '')) return false
  // A page served by this server: browsers send the host of the page's URL, so the two spell its origin alike.
  // Under trustProxy, `request.protocol` and `request.host` are the ones the proxy forwarded.
  return allowed.has(url.origin) || url.origin === `${request.protocol}://${request.host}`
}

/** What the gate checks an upgrade against. */
export interface GateOptions {
  authenticator: Authenticator
  /** The @fastify/jwt whose cookie (if any) carries a token. */
  jwt: JwtInstance
  /** Allowed origins besides the request's own. */
  origins: ReadonlySet<string>
  registry: Registry
  /** The session cookie (`SESSION_COOKIE_NAME` and its attributes). */
  sessionCookie: CookieConfig
  /** Open sockets per client, shared by every endpoint. */
  addressLimit: AddressLimit
  /** `request.user` of the app's @fastify/jwt, kept to the socket's credential; null with the plugin's own. */
  requestUsers: RequestUsers | null
}

/**
 * The credential on the upgrade request: the query parameter wins over the session cookie, and that one over the
 * @fastify/jwt cookie. null: one that cannot be a token (empty, repeated, a signed cookie whose signature fails).
 * `copies`: the session cookie sent more than once, no credential (plugin-cookies.ts).
 */
function requestCredential (jwt: JwtInstance, request: FastifyRequest, sessionCookie: string): { token: string | null, session: boolean } | { copies: string[] } | undefined {
  const query = request.query as Record<string, unknown>
  if (query.access_token !== undefined) {
    // Repeated or empty parameters are a bad credential, not a missing one.
    return { token: typeof query.access_token === 'string' && query.access_token !== '' ? query.access_token : null, session: false }
  }
  const sessions = pluginCookies(request, sessionCookie)
  if (sessions.length > 1) return { copies: sessions }
  if (sessions.length === 1) return { token: sessions[0]!, session: true }
  const cookies = requestCookies(request)
  const cookie = jwt.cookie
  if (cookie && cookies?.[cookie.cookieName] !== undefined) {
    try {
      return { token: jwt.lookupToken(request, { onlyCookie: true }), session: false }
    } catch {
      return { token: null, session: false }
    }
  }
  return undefined
}

const tossed = { ok: false, code: 'AUTH_FAILED', reason: 'the session cookie sent more than once' } as const
const unavailable = { ok: false, code: 'SERVICE_UNAVAILABLE', reason: 'session store unavailable' } as const

/** `admitted`: told of every upgrade the gate lets through (the GraphQL route marks its own). */
export function upgradeGate (endpoint: EndpointConfig, options: GateOptions, admitted?: (request: FastifyRequest) => void) {
  const { authenticator, jwt, origins, registry, sessionCookie, addressLimit, requestUsers } = options
  let open = 0
  // Every upgrade without a credential resolves alike: one frozen answer for all of them, not one kept per socket.
  const withoutCredential: RealtimeUpgrade = Object.freeze({ endpoint: endpoint.name, authMode: endpoint.authMode, accountability: null, expiresAt: null })

  /** The credential's verdict: the socket opens with it, or the upgrade is refused as the failure says. */
  function settle (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction, result: AuthResult | null): void {
    if (result !== null && !result.ok) {
      registry.refused(endpoint.name, result.code, result.reason, new ClientInfo(request))
      // Told as it is: an expired token (TOKEN_EXPIRED) or a cold process (SERVICE_UNAVAILABLE, for the client to retry).
      return refuseUpgrade(reply, result)
    }
    if (result === null) {
      // The app's own hooks may have verified a token the socket does not take (an Authorization header): the socket
      // holds none, and `request.user` says so.
      requestUsers?.dropped(request)
      request.realtime = withoutCredential
    } else {
      // The app's later hooks on the upgrade read whose it is, as its routes would.
      requestUsers?.took(request, result.requestUser)
      upgrades.set(request, result)
      request.realtime = Object.freeze({
        endpoint: endpoint.name,
        authMode: endpoint.authMode,
        accountability: authenticatedAccountability(result.identity, result.session, new ClientInfo(request)),
        expiresAt: result.expiresAt
      })
    }
    admitted?.(request)
    done()
  }

  // A callback hook, not an async one: no promise and no extra turn for an upgrade that needs none. A refusal sends
  // its reply and does not call `done`.
  return function gate (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    if (!request.ws) return done() // a plain HTTP request: @fastify/websocket answers it

    if (!originAllowed(request, origins)) return refuseUpgrade(reply, { code: 'FORBIDDEN' })

    // The client's own limit first: a client at it is told so, and takes none of the endpoint's places.
    if (!addressLimit.take(request, reply.raw.socket!)) return refuseUpgrade(reply, { code: 'REQUESTS_EXCEEDED', retryAfterMs: 1000 })
    if (open >= endpoint.connLimit) return refuseUpgrade(reply, { code: 'SERVICE_UNAVAILABLE' })
    // The reservation lives as long as the TCP connection: refused, failed or closed, it is given back once. Without
    // a limit nothing is counted: the listener would be one more thing every open socket keeps.
    if (endpoint.connLimit !== Infinity) {
      open++
      reply.raw.socket!.once('close', () => { open-- })
    }

    const credential = requestCredential(jwt, request, sessionCookie.name)
    if (credential === undefined) {
      if (endpoint.authMode !== 'strict') return settle(request, reply, done, null)
      registry.refused(endpoint.name, 'AUTH_FAILED', 'strict mode: no credential on the upgrade', new ClientInfo(request))
      return refuseUpgrade(reply, { code: 'AUTH_FAILED' })
    }
    if ('copies' in credential) {
      dropCopies(request, reply, sessionCookie, credential.copies, copy => authenticator.endSessionCookie(copy, request))
        .then(dropped => settle(request, reply, done, dropped ? tossed : unavailable), done)
      return
    }
    if (credential.token === null) return settle(request, reply, done, { ok: false, code: 'AUTH_FAILED', reason: 'empty or repeated access_token' })
    const at = { request, source: 'upgrade', endpoint: endpoint.name, ip: null } as const
    // A session cookie is current only while its session's store says so: one lookup.
    const result = credential.session
      ? authenticator.verifySessionToken(credential.token, at)
      : authenticator.verifyAccessToken(credential.token, at)
    if (!(result instanceof Promise)) return settle(request, reply, done, result)
    result.then(result => settle(request, reply, done, result), done)
  }
}
