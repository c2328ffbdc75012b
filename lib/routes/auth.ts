// Directus-compatible HTTP auth routes (PROTOCOL.md section 7) in its three modes: `json` (tokens in the body, what
// the SDK uses outside browsers), `cookie` (the refresh token in an HttpOnly cookie) and `session` (the whole session
// in an HttpOnly cookie, which also authenticates sockets at the upgrade). A refresh token is one session whether it
// is used over HTTP or on a socket.
import type { CookieSerializeOptions } from '@fastify/cookie'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Authenticator, AuthFailure, AuthResult } from '../auth/authenticator.js'
import type { Config, CookieConfig } from '../config.js'
import { refusal, replyWithFailure } from '../errors.js'
import { bodyFields, type BodyField } from './body-fields.js'
import { pluginCookie, requestCookies } from './request-cookies.js'

type Mode = 'json' | 'cookie' | 'session'
const modes: Mode[] = ['json', 'cookie', 'session']

const loginBody: BodyField[] = [
  { name: 'email', required: true, nonEmpty: true },
  { name: 'password', required: true, nonEmpty: true },
  { name: 'otp' },
  { name: 'mode', oneOf: modes }
]

// The token may come from the body or from a cookie, so the body may be an empty object; a POST with no JSON body at
// all is refused (400), as no cross-site form or fetch can send JSON without a CORS preflight.
const tokenBody: BodyField[] = [
  { name: 'refresh_token', nonEmpty: true },
  { name: 'mode', oneOf: modes }
]

interface TokenBody { refresh_token?: string, mode?: Mode }

const noRefreshToken = 'The refresh token is required in either the payload or cookie.'

/** As Directus: the mode asked for, else `json` for a token in the body and `cookie` for one in the cookie. */
const modeOf = (body: TokenBody | undefined): Mode => body?.mode ?? (body?.refresh_token === undefined ? 'cookie' : 'json')

function sendFailure (reply: FastifyReply, failure: AuthFailure) {
  return replyWithFailure(reply, refusal(failure, 'INVALID_CREDENTIALS'))
}

export function authRoutes (fastify: FastifyInstance, authenticator: Authenticator, config: Pick<Config, 'cookies' | 'refreshTokenTtlMs'> & { prefix: string }): void {
  const { refresh: refreshCookie, session: sessionCookie } = config.cookies
  // Directus's shape for bad bodies too: 400 with INVALID_PAYLOAD, not Fastify's default.
  const errorHandler = (error: { statusCode?: number, code?: string, message: string }, _request: FastifyRequest, reply: FastifyReply) => {
    if (error.code?.startsWith('FST_ERR_CTP_')) {
      // The body's fault (wrong content type, too large, not JSON): say what, with Fastify's status.
      return replyWithFailure(reply, { code: 'INVALID_PAYLOAD', problem: error.message, status: error.statusCode })
    }
    // Any other error is the app's, from its own hooks (a rate limit's 429, its auth's 401, a failure): its error
    // handler answers it, as on every other route.
    throw error
  }

  const attributes = (cookie: CookieConfig, maxAgeMs?: number): CookieSerializeOptions => ({
    // Never signed, whatever the app's @fastify/cookie signs by default: the plugin reads its cookies as it set them.
    signed: false,
    path: '/',
    httpOnly: true,
    sameSite: cookie.sameSite,
    secure: cookie.secure,
    ...(cookie.domain === undefined ? {} : { domain: cookie.domain }),
    ...(maxAgeMs === undefined ? {} : { maxAge: Math.floor(maxAgeMs / 1000) })
  })

  /** The body for a successful login or refresh in `mode`, with the cookie that mode sets. */
  function sendIssued (reply: FastifyReply, result: AuthResult, mode: Mode) {
    if (!result.ok) return sendFailure(reply, result)
    const issued = result.issued!
    if (mode === 'json') return reply.send({ data: issued })
    if (mode === 'cookie') {
      reply.setCookie(refreshCookie.name, issued.refresh_token, attributes(refreshCookie, config.refreshTokenTtlMs))
      return reply.send({ data: { access_token: issued.access_token, expires: issued.expires } })
    }
    const { session_token: sessionToken, expires } = authenticator.signSessionToken(result)
    reply.setCookie(sessionCookie.name, sessionToken, attributes(sessionCookie, expires))
    return reply.send({ data: { expires } })
  }

  /**
   * The refresh token a request presents in `mode`: the body's or the refresh cookie's, or the one the session cookie
   * carries. undefined: none at all (400); null: a session cookie that is no valid session token, or a cookie of the
   * plugin's sent twice (401).
   */
  async function presentedRefreshToken (request: FastifyRequest<{ Body?: TokenBody | undefined }>, mode: Mode): Promise<string | null | undefined> {
    if (mode === 'session') {
      const token = pluginCookie(request, sessionCookie.name)
      return token == null ? token : authenticator.sessionTokenRefreshToken(token, request)
    }
    return request.body?.refresh_token ?? pluginCookie(request, refreshCookie.name)
  }

  /** Whether the client of `request` still waits for the answer (`AuthContext.waiting`). */
  const waitingOf = (request: FastifyRequest) => () => !request.raw.socket.destroyed

  fastify.register(async (routes) => {
    routes.setErrorHandler(errorHandler)
    // JSON alone, whatever the app parses (@fastify/formbody, @fastify/multipart): a form from another site needs no
    // CORS preflight, and would log a browser in as the form's author (login CSRF), or out.
    routes.removeAllContentTypeParsers()
    routes.addContentTypeParser('application/json', { parseAs: 'string' }, routes.getDefaultJsonParser('error', 'error'))

    const tokenFields = bodyFields(tokenBody)
    routes.post<{ Body: { email: string, password: string, otp?: string, mode?: Mode } }>('/login', { preValidation: bodyFields(loginBody) },
      async (request, reply) => {
        const { email, password, otp, mode = 'json' } = request.body
        const credential = otp === undefined ? { email, password } : { email, password, otp }
        const result = await authenticator.login(credential, { request, source: 'login', endpoint: null, ip: request.ip, waiting: waitingOf(request) })
        if (result.ok && mode !== 'json') {
          // The cookie this login replaces was the browser's only hold on its session: that session ends, and its
          // sockets with it, or no logout could reach them.
          const replaced = await presentedRefreshToken(request, mode)
          if (replaced) await authenticator.endCurrentSession(replaced).catch(() => {})
        }
        return sendIssued(reply, result, mode)
      })

    routes.post<{ Body: TokenBody | undefined }>('/refresh', { preValidation: tokenFields }, async (request, reply) => {
      const mode = modeOf(request.body)
      const token = await presentedRefreshToken(request, mode)
      if (token === undefined) return replyWithFailure(reply, { code: 'INVALID_PAYLOAD', problem: noRefreshToken })
      if (token === null) return sendFailure(reply, { ok: false, code: 'INVALID_CREDENTIALS', reason: 'invalid session token' })
      return sendIssued(reply, await authenticator.refresh(token, { request, source: 'refresh', endpoint: null, ip: request.ip, waiting: waitingOf(request) }), mode)
    })

    routes.post<{ Body: TokenBody | undefined }>('/logout', { preValidation: tokenFields }, async (request, reply) => {
      const mode = modeOf(request.body)
      const token = await presentedRefreshToken(request, mode)
      if (token === undefined) return replyWithFailure(reply, { code: 'INVALID_PAYLOAD', problem: noRefreshToken })
      const result = token === null
        ? { ok: false as const, code: 'INVALID_CREDENTIALS' as const, reason: 'invalid session token' }
        : await authenticator.logout(token)
      // The browser forgets the cookie, logged out or never valid, but for a logout that could not run: it keeps the
      // cookie to try again, or the session would outlive the only credential that can end it.
      if (result.ok || result.code !== 'SERVICE_UNAVAILABLE') {
        if (mode === 'session') reply.clearCookie(sessionCookie.name, attributes(sessionCookie))
        else if (requestCookies(request)?.[refreshCookie.name] !== undefined) reply.clearCookie(refreshCookie.name, attributes(refreshCookie))
      }
      return result.ok ? reply.code(204).send() : sendFailure(reply, result)
    })
  }, { prefix: config.prefix })
}
