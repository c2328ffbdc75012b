// No cache keeps what the auth routes answer (RFC 6749 5.1): each answer may carry a token, or set or clear a login
// cookie, errors included. Real requests over TCP, in each login mode, through the app's own hooks too.
import t, { type Test } from 'tap'
import Fastify, { type FastifyReply } from 'fastify'
import realtime, { type RealtimeOptions, type SessionStore } from '../../lib/index.js'
import { admin, directoryOf, secret } from '../helpers.js'

interface Answer { status: number, cacheControl: string | null, pragma: string | null, setCookie: string[] }

const storeDown = () => Promise.reject(new Error('store down'))
const brokenStore: SessionStore = { create: storeDown, rotate: storeDown, lookup: storeDown, end: storeDown, endUser: storeDown }

/**
 * An app with the auth routes, whose own hooks refuse `x-limited` requests and mark every answer cacheable; `perRoute`:
 * marked by a hook each route is given as it is added (an `onRoute` hook), not by one of the app's.
 */
async function app (t: Test, options: RealtimeOptions = {}, perRoute = false) {
  const app = Fastify()
  t.teardown(() => app.close())
  app.addHook('onRequest', async (request) => {
    if (request.headers['x-limited'] !== undefined) throw Object.assign(new Error('Rate limit exceeded'), { statusCode: 429 })
  })
  // An app that has every answer cached for ten minutes (its pages, its API) unless told otherwise.
  const cacheable = async (_request: unknown, reply: FastifyReply) => { reply.header('cache-control', 'public, max-age=600') }
  if (perRoute) app.addHook('onRoute', route => { route.onSend = [...[route.onSend ?? []].flat(), cacheable] })
  else app.addHook('onSend', cacheable)
  app.get('/page', async () => 'cacheable')
  await app.register(realtime, { env: {}, secret, authRoutes: true, users: await directoryOf([admin]), ...options })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const origin = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  return async function request (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer & { json: () => unknown }> {
    const response = await fetch(`${origin}${path}`, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) })
    })
    const text = await response.text()
    return {
      status: response.status,
      cacheControl: response.headers.get('cache-control'),
      pragma: response.headers.get('pragma'),
      setCookie: response.headers.getSetCookie(),
      json: () => JSON.parse(text)
    }
  }
}

/** `name=value` of the first cookie a response set: what the browser sends back. */
const sent = (answer: Answer) => answer.setCookie[0]!.split(';')[0]!

function noStore (t: Test, answer: Answer, what: string, status: number) {
  t.same({ status: answer.status, cacheControl: answer.cacheControl, pragma: answer.pragma },
    { status, cacheControl: 'no-store', pragma: 'no-cache' }, what)
}

t.test('every answer of the auth routes says no-store, in each mode, errors and the app\'s own refusals included', async t => {
  const request = await app(t)
  const credentials = { email: admin.email, password: admin.password }

  const json = await request('POST', '/auth/login', credentials)
  noStore(t, json, 'json login', 200)
  const { refresh_token: refreshToken } = (json.json() as { data: { refresh_token: string } }).data
  const refreshed = await request('POST', '/auth/refresh', { refresh_token: refreshToken })
  noStore(t, refreshed, 'json refresh', 200)
  noStore(t, await request('POST', '/auth/refresh', { refresh_token: refreshToken }), 'json refresh, rotated token', 401)
  const again = await request('POST', '/auth/login', credentials)
  noStore(t, await request('POST', '/auth/logout', { refresh_token: (again.json() as { data: { refresh_token: string } }).data.refresh_token }), 'json logout', 204)

  for (const mode of ['cookie', 'session']) {
    const login = await request('POST', '/auth/login', { ...credentials, mode })
    noStore(t, login, `${mode} login`, 200)
    t.equal(login.setCookie.length, 1, `${mode} login sets its cookie`)
    const refresh = await request('POST', '/auth/refresh', { mode }, { cookie: sent(login) })
    noStore(t, refresh, `${mode} refresh`, 200)
    const logout = await request('POST', '/auth/logout', { mode }, { cookie: sent(refresh) })
    noStore(t, logout, `${mode} logout`, 204)
    t.match(logout.setCookie, [/=; Max-Age=0; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax$/], `${mode} logout clears its cookie`)
  }

  noStore(t, await request('POST', '/auth/login', { ...credentials, password: 'wrong' }), 'wrong password', 401)
  noStore(t, await request('POST', '/auth/login', { email: admin.email }), 'bad body', 400)
  noStore(t, await request('POST', '/auth/refresh', '{"refresh_token":', {}), 'not JSON', 400)
  noStore(t, await request('POST', '/auth/logout', 'refresh_token=x', { 'content-type': 'application/x-www-form-urlencoded' }), 'a form', 415)
  noStore(t, await request('POST', '/auth/login', { ...credentials, otp: 'x'.repeat(20_000) }), 'too large', 413)
  noStore(t, await request('POST', '/auth/login', credentials, { 'x-limited': '1' }), 'the app\'s rate limit', 429)

  t.equal((await request('GET', '/page')).cacheControl, 'public, max-age=600', 'the app\'s own routes keep its caching')
})

t.test('an app whose onRoute hook gives every route its caching hook: the auth routes still say no-store', async t => {
  const request = await app(t, {}, true)
  const login = await request('POST', '/auth/login', { email: admin.email, password: admin.password, mode: 'session' })
  noStore(t, login, 'login', 200)
  noStore(t, await request('POST', '/auth/refresh', { mode: 'session' }, { cookie: sent(login) }), 'refresh', 200)
  noStore(t, await request('POST', '/auth/login', { email: admin.email, password: admin.password }, { 'x-limited': '1' }), 'the app\'s rate limit', 429)
  t.equal((await request('GET', '/page')).cacheControl, 'public, max-age=600', 'the app\'s own routes keep its caching')
})

t.test('a login, refresh or logout the store could not answer (503) says no-store', async t => {
  const request = await app(t, { sessionStore: brokenStore })
  noStore(t, await request('POST', '/auth/login', { email: admin.email, password: admin.password }), 'login', 503)
  noStore(t, await request('POST', '/auth/refresh', { refresh_token: 'A'.repeat(64) }), 'refresh', 503)
  noStore(t, await request('POST', '/auth/logout', { refresh_token: 'A'.repeat(64) }), 'logout', 503)
})

t.test('other methods on the auth paths: 404, no cookie set or cleared, the session still alive', async t => {
  const request = await app(t)
  const login = await request('POST', '/auth/login', { email: admin.email, password: admin.password, mode: 'session' })
  for (const method of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'PATCH']) {
    for (const route of ['login', 'refresh', 'logout']) {
      const answer = await request(method, `/auth/${route}`, undefined, { cookie: sent(login) })
      t.same([answer.status, answer.setCookie], [404, []], `${method} /auth/${route}`)
    }
  }
  t.equal((await request('POST', '/auth/refresh', { mode: 'session' }, { cookie: sent(login) })).status, 200, 'the session cookie still refreshes')
})
