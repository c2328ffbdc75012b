// Directus-compatible HTTP auth routes (PROTOCOL.md section 7) in its three modes: `json` (tokens in the body, what
// the SDK uses outside browsers), `cookie` (the refresh token in an HttpOnly cookie) and `session` (the whole session
// in an HttpOnly cookie, which also authenticates sockets at the upgrade). A refresh token is one session whether it
// is used over HTTP or on a socket.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { AuthContext, Authenticator, AuthFailure, AuthResult } from '../auth/authenticator.js'
import type { Config, CookieConfig } from '../config.js'
import { refusal, replyWithFailure } from '../errors.js'
import { bodyFields, type BodyField } from './body-fields.js'
import { maxEmailLength, maxPasswordLength } from '../auth/credential-bounds.js'
import { clearOnlyCopy, cookieAttributes, dropCopies } from './plugin-cookies.js'
import { insecureCookieWarning } from './insecure-cookies.js'
import { pluginCookies } from './request-cookies.js'

type Mode = 'json' | 'cookie' | 'session'
const modes: Mode[] = ['json', 'cookie', 'session']

const loginBody: BodyField[] = [
  { name: 'email', required: true, nonEmpty: true, maxLength: maxEmailLength },
  { name: 'password', required: true, nonEmpty: true, maxLength: maxPasswordLength },
  // Directus's schema (Joi's `string()`) refuses an empty code before any check: 400, not a wrong code's 401.
  { name: 'otp', nonEmpty: true },
  { name: 'mode', oneOf: modes }
]

// The token may come from the body or from a cookie, so the body may be an empty object; a POST with no JSON body at
// all is refused (400), as no cross-site form or fetch can send JSON without a CORS preflight.
const tokenBody: BodyField[] = [
  { name: 'refresh_token', nonEmpty: true },
  { name: 'mode', oneOf: modes }
]

// The routes' own body limit, whatever the app's `bodyLimit`: the largest login (a full email and password, every
// character escaped as `\uXXXX`) is under 8 KiB, a refresh or logout body under 200 B. A larger one is refused (413)
// before it is read whole, parsed or hashed.
const authBodyLimit = 16 * 1024

interface TokenBody { refresh_token?: string, mode?: Mode }

async function noStore (_request: FastifyRequest, reply: FastifyReply): Promise<void> {
  reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
}

// FST_ERR_CTP_INVALID_JSON_BODY's message (Fastify 5.5 and later).
const notJson = "Body is not valid JSON but content-type is set to 'application/json'"
const noRefreshToken = 'The refresh token is required in either the payload or cookie.'
const invalidSessionToken: AuthFailure = { ok: false, code: 'INVALID_CREDENTIALS', reason: 'invalid session token' }
const tossed: AuthFailure = { ok: false, code: 'INVALID_CREDENTIALS', reason: 'a cookie of the plugin sent more than once' }
const unavailable: AuthFailure = { ok: false, code: 'SERVICE_UNAVAILABLE', reason: 'session store unavailable' }

/** As Directus: the mode asked for, else `json` for a token in the body and `cookie` for one in the cookie. */
const modeOf = (body: TokenBody | undefined): Mode => body?.mode ?? (body?.refresh_token === undefined ? 'cookie' : 'json')

function sendFailure (reply: FastifyReply, failure: AuthFailure) {
  return replyWithFailure(reply, refusal(failure, 'INVALID_CREDENTIALS'))
}

/**
 * Where an HTTP request presents a password or a refresh token: the client's address for the attempt limits and its
 * share of the password queue, and whether it still waits for the answer. The app's own routes calling
 * `fastify.realtime.login(credential, request)` are counted as the plugin's `/auth/login` is.
 */
export function routeContext (request: FastifyRequest, source: 'login' | 'refresh'): AuthContext {
  return { request, source, endpoint: null, ip: request.ip, waiting: () => !request.raw.socket.destroyed }
}

export function authRoutes (fastify: FastifyInstance, authenticator: Authenticator, config: Pick<Config, 'cookies' | 'refreshTokenTtlMs'> & { prefix: string }): void {
  const { refresh: refreshCookie, session: sessionCookie } = config.cookies
  // Directus's shape for bad bodies too: 400 with INVALID_PAYLOAD, not Fastify's default.
  // The errors of the routes' JSON parser: the body's fault, whatever their kind.
  const parseErrors = new WeakSet<object>()
  const errorHandler = (error: { statusCode?: number, code?: string, message: string }, _request: FastifyRequest, reply: FastifyReply) => {
    // Fastify before 5.5 (the peer range has 5.0) throws a body that is not JSON as JSON.parse's SyntaxError, no code:
    // the routes' parser marks its errors, as an app's hook may throw a SyntaxError with statusCode 400 of its own.
    if (error.code?.startsWith('FST_ERR_CTP_') || parseErrors.has(error)) {
      // The body's fault (wrong content type, too large, not JSON): say what, with Fastify's status. JSON.parse's own
      // message quotes the body around the fault (`..."password":hunter2-se"...`): Fastify 5.5's fixed words instead.
      const problem = error.code === undefined ? notJson : error.message
      return replyWithFailure(reply, { code: 'INVALID_PAYLOAD', problem, status: error.statusCode })
    }
    // Any other error is the app's, from its own hooks (a rate limit's 429, its auth's 401, a failure): its error
    // handler answers it, as on every other route.
    throw error
  }

  const warnIfInsecure = insecureCookieWarning(fastify.log, config.cookies)

  /** The body for a successful login or refresh in `mode`, with the cookie that mode sets. */
  function sendIssued (reply: FastifyReply, result: AuthResult, mode: Mode) {
    if (!result.ok) return sendFailure(reply, result)
    const { issued } = result
    // A session cookie a refresh replaced, presented within its grace (another tab's refresh at once): no new cookie,
    // and none cleared, so the browser keeps the one that refresh set, whichever answer comes last.
    if (!issued) return reply.send({ data: { expires: sessionCookie.ttlMs } })
    if (mode === 'json') return reply.send({ data: issued })
    const cookie = cookieOf(mode)
    warnIfInsecure(reply.request, cookie)
    // The copy replaced (a refresh's, or the one a login ended) goes wherever it was set, before the new one is.
    if (pluginCookies(reply.request, cookie.name).length === 1) clearOnlyCopy(reply.request, reply, cookie)
    if (mode === 'cookie') {
      reply.setCookie(refreshCookie.name, issued.refresh_token, cookieAttributes(refreshCookie, config.refreshTokenTtlMs))
      return reply.send({ data: { access_token: issued.access_token, expires: issued.expires } })
    }
    const { session_token: sessionToken, expires } = authenticator.signSessionToken(result)
    reply.setCookie(sessionCookie.name, sessionToken, cookieAttributes(sessionCookie, expires))
    return reply.send({ data: { expires } })
  }

  const cookieOf = (mode: Mode) => mode === 'session' ? sessionCookie : refreshCookie
  // One for each cookie mode; a browser holds one of them at most.
  const loginCookies = [refreshCookie, sessionCookie]
  const otherCookie = (cookie: CookieConfig) => cookie === sessionCookie ? refreshCookie : sessionCookie

  /**
   * What a request presents in `mode`, from the one place that mode keeps it, as Directus reads them: `json` the body's
   * refresh token, the others each copy of the mode's cookie (more than one: a cookie tossed beside the browser's own,
   * plugin-cookies.ts). A `json` refresh never reads the HttpOnly cookie, or a page's script could trade it for a
   * refresh token it can read. None at all: 400.
   */
  function presented (request: FastifyRequest<{ Body?: TokenBody | undefined }>, mode: Mode): string[] {
    if (mode === 'json') {
      const inBody = request.body?.refresh_token
      return inBody === undefined ? [] : [inBody]
    }
    return pluginCookies(request, cookieOf(mode).name)
  }

  /** The refresh token of what a request presents: a session cookie's is the one its token carries (null for none valid). */
  const refreshTokenOf = async (request: FastifyRequest, mode: Mode, token: string): Promise<string | null> =>
    mode === 'session' ? authenticator.sessionTokenRefreshToken(token, request) : token

  /**
   * Ends the session of each copy of `cookie` the request carries and has the browser drop them (plugin-cookies.ts),
   * but for a single copy of `cookie` the plugin cannot show is its own, with `oursOnly`. False when the store could
   * not end one: the cookie stays, to try again.
   */
  const dropCookie = (request: FastifyRequest, reply: FastifyReply, cookie: CookieConfig, oursOnly: boolean) =>
    dropCopies(request, reply, cookie, pluginCookies(request, cookie.name), cookie === sessionCookie
      ? (copy) => authenticator.endSessionCookie(copy, request)
      : (copy) => authenticator.endCurrentSession(copy), oursOnly)

  /** A check that failed unforeseen (an identity no token can carry) is told as one that could not run, and logged. */
  const checked = (request: FastifyRequest, pending: Promise<AuthResult>): Promise<AuthResult> => pending.catch((err: unknown) => {
    request.log.error({ err }, 'an auth check failed')
    return unavailable
  })

  fastify.register(async (routes) => {
    routes.setErrorHandler(errorHandler)
    // Every answer may carry a token or set or clear a credential cookie, errors included (the app's own hooks' too):
    // no cache, the browser's, a proxy's or a CDN's, may keep one to hand out again (RFC 6749 5.1, Pragma for HTTP/1.0
    // ones). Last of the onSend hooks, over whatever the app's own set for every route: a route's own hooks run after
    // the app's, and this scope's onRoute after the app's, so it comes after any an app's onRoute hook gives each route.
    routes.addHook('onRoute', (route) => {
      route.onSend = [...[route.onSend ?? []].flat(), noStore]
    })
    // JSON alone, whatever the app parses (@fastify/formbody, @fastify/multipart): a form from another site needs no
    // CORS preflight, and would log a browser in as the form's author (login CSRF), or out.
    routes.removeAllContentTypeParsers()
    const parseJson = routes.getDefaultJsonParser('error', 'error')
    routes.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body: string, done) => {
      parseJson(request, body, (error, value) => {
        if (error) parseErrors.add(error)
        done(error, value)
      })
    })

    const tokenFields = bodyFields(tokenBody)
    routes.post<{ Body: { email: string, password: string, otp?: string, mode?: Mode } }>('/login', { bodyLimit: authBodyLimit, preValidation: bodyFields(loginBody) },
      async (request, reply) => {
        const { email, password, otp, mode = 'json' } = request.body
        const credential = otp === undefined ? { email, password } : { email, password, otp }
        const result = await checked(request, authenticator.login(credential, routeContext(request, 'login')))
        if (result.ok && mode !== 'json') {
          // The cookie this login replaces, and the other mode's, were the browser's only hold on their sessions: those
          // end, and their sockets with them, or no logout could reach them, and the browser keeps the new login alone
          // (on a shared computer, no socket opened there after its logout is an earlier user's). Copies beside the own
          // one go too, before the new one is set (plugin-cookies.ts). A lone cookie of the other mode's name may be
          // another app's on the same host: it goes only if the plugin's.
          const own = cookieOf(mode)
          await dropCookie(request, reply, own, false)
          await dropCookie(request, reply, otherCookie(own), true)
        }
        return sendIssued(reply, result, mode)
      })

    routes.post<{ Body: TokenBody | undefined }>('/refresh', { bodyLimit: authBodyLimit, preValidation: tokenFields }, async (request, reply) => {
      const mode = modeOf(request.body)
      const tokens = presented(request, mode)
      if (tokens.length === 0) return replyWithFailure(reply, { code: 'INVALID_PAYLOAD', problem: noRefreshToken })
      if (tokens.length > 1) return sendFailure(reply, await dropCookie(request, reply, cookieOf(mode), false) ? tossed : unavailable)
      const token = await refreshTokenOf(request, mode, tokens[0]!)
      if (token === null) return sendFailure(reply, invalidSessionToken)
      const graceMs = mode === 'session' ? sessionCookie.refreshGraceMs : 0
      return sendIssued(reply, await checked(request, authenticator.refresh(token, routeContext(request, 'refresh'), graceMs)), mode)
    })

    routes.post<{ Body: TokenBody | undefined }>('/logout', { bodyLimit: authBodyLimit, preValidation: tokenFields }, async (request, reply) => {
      const mode = modeOf(request.body)
      const tokens = presented(request, mode)
      if (tokens.length === 0) return replyWithFailure(reply, { code: 'INVALID_PAYLOAD', problem: noRefreshToken })
      if (mode === 'json') {
        // The body's session first, and the answer is its logout's, as Directus's. Then the browser's login cookies end
        // and go too, as Directus 12 clears both, but a lone one the plugin cannot show is its own (another app's on the
        // same host), and one the store could not end: a later logout reaches it.
        const result = await authenticator.logout(tokens[0]!)
        for (const cookie of loginCookies) await dropCookie(request, reply, cookie, true)
        return result.ok ? reply.code(204).send() : sendFailure(reply, result)
      }
      const own = cookieOf(mode)
      // The browser's other login cookie ends and goes too, as Directus 12 clears both: the browser keeps no login after
      // a logout, nor a cookie whose session lives on out of any logout's reach; a lone one the plugin cannot show is
      // its own stays (another app's on the same host). One the store could not end stays, and the logout goes no
      // further (503): its retry does the rest.
      if (!await dropCookie(request, reply, otherCookie(own), true)) return sendFailure(reply, unavailable)
      // Logged out of every session the copies named, and rid of them all.
      if (tokens.length > 1) return await dropCookie(request, reply, own, false) ? reply.code(204).send() : sendFailure(reply, unavailable)
      const token = await refreshTokenOf(request, mode, tokens[0]!)
      const result = token === null ? invalidSessionToken : await authenticator.logout(token)
      // The browser forgets the cookie, logged out or never valid, but for a logout that could not run: it keeps the
      // cookie to try again, or the session would outlive the only credential that can end it.
      if (result.ok || result.code !== 'SERVICE_UNAVAILABLE') clearOnlyCopy(request, reply, own)
      return result.ok ? reply.code(204).send() : sendFailure(reply, result)
    })
  }, { prefix: config.prefix })
}
