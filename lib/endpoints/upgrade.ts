// The upgrade gate: runs before the socket opens (PROTOCOL.md section 3), in this order: origin, connection limit,
// credential on the request, strict mode. It replies with HTTP errors, so a refused client never gets a socket.
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { Authenticator, AuthSuccess } from '../auth/authenticator.js'
import type { EndpointConfig } from '../config.js'
import { refuseUpgrade } from '../errors.js'
import { authenticatedAccountability, ClientInfo } from '../connection/accountability.js'
import type { Registry } from '../connection/registry.js'

/** What the gate hands the endpoint: the credential it verified, kept off the public request decoration. */
const upgrades = new WeakMap<FastifyRequest, AuthSuccess>()

export function upgradeCredential (request: FastifyRequest): AuthSuccess | null {
  return upgrades.get(request) ?? null
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

/** The access token on the upgrade request: the query parameter wins over the @fastify/jwt cookie. */
function requestToken (fastify: FastifyInstance, request: FastifyRequest): string | null | undefined {
  const query = request.query as Record<string, unknown>
  if (query.access_token !== undefined) {
    // Repeated or empty parameters are a bad credential, not a missing one.
    return typeof query.access_token === 'string' && query.access_token !== '' ? query.access_token : null
  }
  const cookie = fastify.jwt.cookie
  const cookies = (request as { cookies?: Record<string, string | undefined> }).cookies
  if (cookie && cookies?.[cookie.cookieName] !== undefined) {
    try {
      return fastify.jwt.lookupToken(request, { onlyCookie: true })
    } catch {
      return null // a signed cookie whose signature does not hold
    }
  }
  return undefined
}

/** `admitted`: told of every upgrade the gate lets through (the GraphQL route marks its own). */
export function upgradeGate (fastify: FastifyInstance, endpoint: EndpointConfig, authenticator: Authenticator, origins: ReadonlySet<string>, registry: Registry, admitted?: (request: FastifyRequest) => void) {
  let open = 0

  // A callback hook, not an async one: no promise and no extra turn for every upgrade. A refusal sends its reply and
  // does not call `done`.
  return function gate (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    if (!request.ws) return done() // a plain HTTP request: @fastify/websocket answers it

    if (!originAllowed(request, origins)) return refuseUpgrade(reply, { code: 'FORBIDDEN' })

    if (open >= endpoint.connLimit) return refuseUpgrade(reply, { code: 'SERVICE_UNAVAILABLE' })
    // The reservation lives as long as the TCP connection: refused, failed or closed, it is given back once. Without
    // a limit nothing is counted: the listener would be one more thing every open socket keeps.
    if (endpoint.connLimit !== Infinity) {
      open++
      reply.raw.socket!.once('close', () => { open-- })
    }

    const token = requestToken(fastify, request)
    let upgrade: AuthSuccess | null = null
    if (token !== undefined) {
      const result = token === null ? null : authenticator.verifyAccessToken(token)
      if (!result?.ok) {
        const failure = result ?? { ok: false, code: 'AUTH_FAILED', reason: 'empty or repeated access_token' }
        registry.refused(endpoint.name, failure.code, failure.reason, new ClientInfo(request))
        // Told as it is: an expired token (TOKEN_EXPIRED) or a cold process (SERVICE_UNAVAILABLE, for the client to retry).
        return refuseUpgrade(reply, failure)
      }
      upgrade = result
      upgrades.set(request, result)
    } else if (endpoint.authMode === 'strict') {
      registry.refused(endpoint.name, 'AUTH_FAILED', 'strict mode: no credential on the upgrade', new ClientInfo(request))
      return refuseUpgrade(reply, { code: 'AUTH_FAILED' })
    }

    request.realtime = {
      endpoint: endpoint.name,
      authMode: endpoint.authMode,
      accountability: upgrade && authenticatedAccountability(upgrade.identity, upgrade.session, new ClientInfo(request)),
      expiresAt: upgrade?.expiresAt ?? null
    }
    admitted?.(request)
    done()
  }
}
