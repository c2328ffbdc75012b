// The `cookie` and `session` login modes (PROTOCOL.md section 7) and the session cookie at the upgrade (section 3):
// Directus's cookie names and attributes, rotation and reuse detection through the cookie, logout clearing it and
// revoking the sockets it opened, and a browser keeping one login cookie at most. What only a browser shows (SameSite,
// the origin check with a real cookie jar) is in test/browser/.
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance, type FastifyServerOptions, type LightMyRequestResponse } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import { MemoryStore } from '@fastify/session'
import realtime, { fromFastifySessionStore, MemorySessionStore, type RealtimeOptions } from '../../lib/index.js'
import { resolveConfig } from '../../lib/config.js'
import { redactLogObject } from '../../lib/redaction.js'
import { admin, build, connect, directoryOf, editor, refusedWith, routerOptions, secret, stoppedDate, upgradeRefusal, whoami, type Built } from '../helpers.js'
import { GraphqlSocket } from '../hostile/graphql-socket.js'
import { referenceSchema } from '../../example/schema.js'

const invalidCredentials = { errors: [{ message: 'Invalid user credentials.', extensions: { code: 'INVALID_CREDENTIALS' } }] }

const me = ({ user, role, admin }: { user: string | null, role: string | null, admin: boolean }) => user === null ? null : { id: user, email: null, role, admin }

function modes (t: Test, options: RealtimeOptions = {}): Promise<Built> {
  return build(t, {
    users: [admin],
    authRoutes: true,
    rest: { handlers: { whoami } },
    graphql: { schema: referenceSchema(me) },
    ...options
  }, { logger: false })
}

function post (app: FastifyInstance, route: string, payload: object, cookie?: string) {
  return app.inject({ method: 'POST', url: `/auth/${route}`, payload, ...(cookie ? { headers: { cookie } } : {}) })
}

const login = (app: FastifyInstance, mode: 'json' | 'cookie' | 'session') => post(app, 'login', { email: admin.email, password: admin.password, mode })

/** The one Set-Cookie header of a response. */
function setCookie (response: LightMyRequestResponse): string {
  const header = response.headers['set-cookie']
  if (typeof header !== 'string') throw new Error(`one Set-Cookie expected, got ${JSON.stringify(header)}`)
  return header
}

/** `name=value` of a Set-Cookie header: what the browser sends back. */
const sent = (header: string) => header.split(';')[0]!
const wsUrl = (built: Built, path = '/websocket') => built.url(path)

t.test('cookie mode: the refresh token goes to an HttpOnly cookie with Directus\'s attributes, not the body', async t => {
  const { app } = await modes(t)
  const response = await login(app, 'cookie')
  t.equal(response.statusCode, 200)
  const body = response.json()
  t.same(Object.keys(body.data).sort(), ['access_token', 'expires'])
  t.equal(body.data.expires, 900_000)
  t.match(setCookie(response), /^directus_refresh_token=[A-Za-z0-9_-]{64}; Max-Age=604800; Path=\/; HttpOnly; SameSite=Lax$/)
})

t.test('cookie mode: refresh with the cookie alone rotates it; the old cookie is then refused, and its reuse ends the session', async t => {
  const built = await modes(t)
  const { app } = built
  const first = await login(app, 'cookie')
  const cookie = sent(setCookie(first))
  const client = await connect(wsUrl(built))
  client.send({ type: 'auth', access_token: first.json().data.access_token })
  t.match(await client.next(), { type: 'auth', status: 'ok' })

  const refreshed = await post(app, 'refresh', { mode: 'cookie' }, cookie)
  t.equal(refreshed.statusCode, 200)
  t.same(Object.keys(refreshed.json().data).sort(), ['access_token', 'expires'])
  const rotated = sent(setCookie(refreshed))
  t.not(rotated, cookie, 'a new cookie')

  const reused = await post(app, 'refresh', { mode: 'cookie' }, cookie)
  t.same([reused.statusCode, reused.json()], [401, invalidCredentials], 'the old cookie: 401')
  t.match(await client.next(), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED' } }, 'and its reuse revoked the session\'s sockets')
  t.equal((await post(app, 'refresh', { mode: 'cookie' }, rotated)).statusCode, 401, 'the new cookie died with the session')
})

t.test('cookie mode: logout with the cookie clears it and revokes the session\'s sockets', async t => {
  const built = await modes(t)
  const { app } = built
  const response = await login(app, 'cookie')
  const cookie = sent(setCookie(response))
  const client = await connect(wsUrl(built))
  client.send({ type: 'auth', access_token: response.json().data.access_token })
  await client.next()
  const logout = await post(app, 'logout', { mode: 'cookie' }, cookie)
  t.equal(logout.statusCode, 204)
  t.equal(setCookie(logout), 'directus_refresh_token=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax')
  t.match(await client.next(), { error: { code: 'AUTH_REVOKED' } })
  t.equal((await post(app, 'refresh', { mode: 'cookie' }, cookie)).statusCode, 401, 'the cookie is refused from then on')
  t.equal((await post(app, 'logout', { mode: 'cookie' }, cookie)).statusCode, 401, 'and cannot log out twice')
})

t.test('with no mode, a token in the body is json and the cookie alone is cookie mode, as Directus does', async t => {
  const { app } = await modes(t)
  const cookie = sent(setCookie(await login(app, 'cookie')))
  // A browser refreshing with its cookie and an empty body: the cookie rotates, nothing goes to the body.
  const refreshed = await post(app, 'refresh', {}, cookie)
  t.equal(refreshed.statusCode, 200)
  t.same(Object.keys(refreshed.json().data).sort(), ['access_token', 'expires'])
  const rotated = sent(setCookie(refreshed))
  t.not(rotated, cookie, 'the cookie rotated')
  const again = await post(app, 'refresh', {}, rotated)
  t.equal(again.statusCode, 200, 'and the rotated one refreshes again')
  const fromBody = await post(app, 'refresh', { refresh_token: (await login(app, 'json')).json().data.refresh_token })
  t.same(Object.keys(fromBody.json().data).sort(), ['access_token', 'expires', 'refresh_token'], 'a token in the body: json')
  t.equal(fromBody.headers['set-cookie'], undefined)
})

t.test('each mode reads its token from its own place alone, as Directus does: json the body, cookie the cookie', async t => {
  const { app } = await modes(t)
  const cookie = sent(setCookie(await login(app, 'cookie')))
  // A page's script asking for json with the HttpOnly cookie alone would get a refresh token it can read, and the
  // browser's own next refresh would be taken for a reuse.
  for (const route of ['refresh', 'logout']) {
    const asJson = await post(app, route, { mode: 'json' }, cookie)
    t.equal(asJson.statusCode, 400, `${route}: json reads no cookie`)
    t.same(asJson.json(), { errors: [{ message: 'The refresh token is required in either the payload or cookie.', extensions: { code: 'INVALID_PAYLOAD' } }] })
    t.equal(asJson.headers['set-cookie'], undefined, 'the cookie is left alone')
  }
  // Cookie mode takes the cookie's token, not one in the body.
  const other = (await login(app, 'json')).json().data.refresh_token
  const asCookie = await post(app, 'refresh', { mode: 'cookie', refresh_token: other }, cookie)
  t.equal(asCookie.statusCode, 200, 'the cookie, still current, refreshes')
  t.equal((await post(app, 'refresh', { refresh_token: other })).statusCode, 200, 'the body\'s token was not used')
  t.equal((await post(app, 'refresh', { mode: 'cookie', refresh_token: other })).statusCode, 400, 'no cookie: nothing to refresh')
})

t.test('a logout that could not run (503) keeps the cookie, so that it can be tried again', async t => {
  let storeDown = false
  const sessionStore = new MemorySessionStore()
  const lookup = sessionStore.lookup.bind(sessionStore)
  sessionStore.lookup = (token) => storeDown ? Promise.reject(new Error('store down')) : lookup(token)
  const { app } = await modes(t, { sessionStore })
  for (const mode of ['cookie', 'session'] as const) {
    const cookie = sent(setCookie(await login(app, mode)))
    storeDown = true
    const failed = await post(app, 'logout', { mode }, cookie)
    t.equal(failed.statusCode, 503, `${mode}: the store is away`)
    t.equal(failed.headers['set-cookie'], undefined, `${mode}: the cookie is kept`)
    storeDown = false
    const retried = await post(app, 'logout', { mode }, cookie)
    t.equal(retried.statusCode, 204, `${mode}: the retry logs out`)
    t.match(setCookie(retried), /Max-Age=0/, `${mode}: and clears the cookie`)
    const again = await post(app, 'logout', { mode }, cookie)
    t.equal(again.statusCode, 401, `${mode}: a logged-out cookie is refused`)
    t.match(setCookie(again), /Max-Age=0/, `${mode}: and cleared all the same`)
  }
})

t.test('session mode: the session token goes to an HttpOnly cookie, and the body says only when it expires', async t => {
  const { app } = await modes(t)
  const response = await login(app, 'session')
  t.same(response.json(), { data: { expires: 86_400_000 } })
  t.match(setCookie(response), /^directus_session_token=[\w-]+\.[\w-]+\.[\w-]+; Max-Age=86400; Path=\/; HttpOnly; SameSite=Lax$/)
})

t.test('the session cookie authenticates the upgrade on every endpoint and in every mode', async t => {
  for (const auth of ['public', 'handshake', 'strict'] as const) {
    const built = await modes(t, { rest: { auth, handlers: { whoami } }, graphql: { auth, schema: referenceSchema(me) }, logs: { auth } })
    const cookie = sent(setCookie(await login(built.app, 'session')))
    const client = await connect(wsUrl(built), { headers: { cookie } })
    client.send({ type: 'whoami', uid: 1 })
    t.match(await client.next(), { type: 'whoami', uid: 1, user: String }, `${auth}: /websocket opens authenticated`)
    const graphql = await GraphqlSocket.open(wsUrl(built, '/graphql'), { cookie })
    t.match(await graphql.result('me', '{ me { id } }'), [{ type: 'next', payload: { data: { me: { id: String } } } }, { type: 'complete' }], `${auth}: /graphql`)
    const logs = await connect(wsUrl(built, '/websocket/logs'), { headers: { cookie } })
    logs.send({ type: 'subscribe', log_level: 'info' })
    t.same(await logs.next(), { type: 'logs', event: 'subscribe', log_level: 'info' }, `${auth}: /websocket/logs, as the admin`)
    await Promise.all([client.close(), graphql.client.close(), logs.close()])
  }
})

t.test('the query token wins over the session cookie, and the refresh cookie is never a socket credential', async t => {
  const built = await modes(t, { rest: { auth: 'strict', handlers: { whoami } } })
  const session = sent(setCookie(await login(built.app, 'session')))
  const refresh = sent(setCookie(await login(built.app, 'cookie')))
  const token = built.app.realtime.signAccessToken({ user: 'from-the-query', role: null, admin: false }).access_token
  const client = await connect(`${wsUrl(built)}?access_token=${token}`, { headers: { cookie: session } })
  client.send({ type: 'whoami' })
  t.match(await client.next(), { user: 'from-the-query' })
  await client.close()
  t.equal((await refusedWith(wsUrl(built), { headers: { cookie: refresh } })).status, 401, 'strict: the refresh cookie alone is no credential')
})

t.test('only a session token of this plugin is a session cookie', async t => {
  const built = await modes(t)
  const { app } = built
  const identity = { id: 'u1', role: null, admin_access: false, iss: 'fastify-realtime', sid: '9b2f6c1e-0d3a-4b5c-8d7e-6f5a4b3c2d1e' }
  const cookies = {
    'an access token': app.realtime.signAccessToken({ user: 'u1', role: null, admin: false }).access_token,
    'a token whose session claim is no refresh token': app.realtime.jwt.sign({ ...identity, session: 'not-a-refresh-token' }),
    'another issuer\'s token with a session claim': app.realtime.jwt.sign({ ...identity, iss: 'elsewhere', session: 'x'.repeat(64) }),
    garbage: 'not-a-jwt'
  }
  for (const [what, token] of Object.entries(cookies)) {
    const cookie = `directus_session_token=${token}`
    t.equal((await refusedWith(wsUrl(built), { headers: { cookie } })).status, 401, `${what}: no socket`)
    const refresh = await post(app, 'refresh', { mode: 'session' }, cookie)
    t.same([refresh.statusCode, refresh.json()], [401, invalidCredentials], `${what}: no refresh`)
  }
})

t.test('a session token is no access token: an auth message carrying one fails', async t => {
  const built = await modes(t)
  const cookie = sent(setCookie(await login(built.app, 'session')))
  const client = await connect(wsUrl(built))
  client.send({ type: 'auth', access_token: cookie.split('=')[1] })
  t.match(await client.next(), { type: 'auth', status: 'error', error: { code: 'AUTH_FAILED' } })
})

/** The refresh token a session cookie (`name=token`) carries. */
const carried = (cookie: string) => (JSON.parse(Buffer.from(cookie.split('=')[1]!.split('.')[1]!, 'base64url').toString()) as { session: string }).session

t.test('session mode: refresh replaces the cookie; the old one works for the grace (10 s), then is refused at the upgrade, and refreshing with it ends the session', async t => {
  const clock = stoppedDate(t)
  const built = await modes(t)
  const { app } = built
  const old = sent(setCookie(await login(app, 'session')))
  t.same((await post(app, 'refresh', {}, old)).json().errors[0].extensions.code, 'INVALID_PAYLOAD', 'without the mode: no refresh token')
  const refreshed = await post(app, 'refresh', { mode: 'session' }, old)
  t.same([refreshed.statusCode, refreshed.json()], [200, { data: { expires: 86_400_000 } }])
  const current = sent(setCookie(refreshed))
  t.not(carried(current), carried(old))
  const during = await connect(wsUrl(built), { headers: { cookie: old } })
  during.send({ type: 'whoami' })
  t.match(await during.next(), { user: String }, 'within the grace, the replaced cookie still opens a socket')
  const again = await post(app, 'refresh', { mode: 'session' }, old)
  t.same([again.statusCode, again.json()], [200, { data: { expires: 86_400_000 } }], 'and refreshes')
  t.equal(again.headers['set-cookie'], undefined, 'setting no cookie and clearing none: the browser keeps the one the first refresh set')

  clock.tick(10_001)
  t.equal((await refusedWith(wsUrl(built), { headers: { cookie: old } })).status, 401, 'past the grace, the replaced cookie opens no socket')
  const client = await connect(wsUrl(built), { headers: { cookie: current } })
  client.send({ type: 'whoami' })
  t.match(await client.next(), { user: String }, 'the new one does')

  const reused = await post(app, 'refresh', { mode: 'session' }, old)
  t.same([reused.statusCode, reused.json()], [401, invalidCredentials])
  t.match(await client.next(), { error: { code: 'AUTH_REVOKED' } }, 'reuse of the old cookie revoked the session')
  t.match(await during.next(), { error: { code: 'AUTH_REVOKED' } }, 'the socket the old cookie opened too')
  t.equal((await refusedWith(wsUrl(built), { headers: { cookie: current } })).status, 401)
})

t.test('session mode: tabs refreshing one cookie at once all succeed, one of them setting the new cookie, and the session lives on', async t => {
  const built = await modes(t)
  const { app } = built
  const old = sent(setCookie(await login(app, 'session')))
  const tabs = await Promise.all([1, 2, 3].map(() => post(app, 'refresh', { mode: 'session' }, old)))
  t.same(tabs.map(tab => tab.statusCode), [200, 200, 200])
  const cookies = tabs.map(tab => tab.headers['set-cookie']).filter(header => header !== undefined)
  t.equal(cookies.length, 1, 'one answer sets a cookie, whichever the browser reads last')
  const current = sent(cookies[0] as string)
  const client = await connect(wsUrl(built), { headers: { cookie: current } })
  client.send({ type: 'whoami' })
  t.match(await client.next(), { user: String }, 'it opens a socket')
  const next = await post(app, 'refresh', { mode: 'session' }, current)
  t.equal(next.statusCode, 200, 'and refreshes on')
})

t.test('session mode with SESSION_REFRESH_GRACE_PERIOD=0: the replaced cookie is refused at once, and two refreshes at once are reuse', async t => {
  const built = await modes(t, { env: { SESSION_REFRESH_GRACE_PERIOD: '0' } })
  const { app } = built
  const old = sent(setCookie(await login(app, 'session')))
  const current = sent(setCookie(await post(app, 'refresh', { mode: 'session' }, old)))
  t.equal((await refusedWith(wsUrl(built), { headers: { cookie: old } })).status, 401, 'the replaced cookie opens no socket')
  const both = await Promise.all([post(app, 'refresh', { mode: 'session' }, current), post(app, 'refresh', { mode: 'session' }, current)])
  t.same(both.map(tab => tab.statusCode).sort(), [200, 401], 'of two refreshes at once, one is reuse')
  const after = sent(setCookie(both.find(tab => tab.statusCode === 200)!))
  t.equal((await refusedWith(wsUrl(built), { headers: { cookie: after } })).status, 401, 'which ended the session')
})

t.test('the cookie a refresh replaced, within its grace: its refresh token in a JSON refresh is reuse (the grace is the session cookie\'s alone), and a logout with it ends the session', async t => {
  const uses: Record<string, (app: FastifyInstance, old: string) => Promise<void>> = {
    'a JSON refresh with its refresh token': async (app, old) => {
      const json = await post(app, 'refresh', { refresh_token: carried(old) })
      t.same([json.statusCode, json.json()], [401, invalidCredentials])
    },
    'a logout with it': async (app, old) => { t.equal((await post(app, 'logout', { mode: 'session' }, old)).statusCode, 204) }
  }
  for (const [what, use] of Object.entries(uses)) {
    const built = await modes(t)
    const old = sent(setCookie(await login(built.app, 'session')))
    const current = sent(setCookie(await post(built.app, 'refresh', { mode: 'session' }, old)))
    await use(built.app, old)
    t.equal((await refusedWith(wsUrl(built), { headers: { cookie: current } })).status, 401, `${what} ended the session`)
  }
})

t.test('session mode: logout clears the cookie, and every socket it opened gets AUTH_REVOKED (4403 on GraphQL)', async t => {
  const built = await modes(t)
  const { app } = built
  const cookie = sent(setCookie(await login(app, 'session')))
  const client = await connect(wsUrl(built), { headers: { cookie } })
  const graphql = await GraphqlSocket.open(wsUrl(built, '/graphql'), { cookie })
  const logout = await post(app, 'logout', { mode: 'session' }, cookie)
  t.equal(logout.statusCode, 204)
  t.equal(setCookie(logout), 'directus_session_token=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax')
  t.same(await client.next(), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } })
  t.equal((await graphql.client.closed).code, 4403)
  t.equal((await refusedWith(wsUrl(built), { headers: { cookie } })).status, 401, 'the old cookie opens nothing')
  const again = await post(app, 'logout', { mode: 'session' }, cookie)
  t.same([again.statusCode, again.json()], [401, invalidCredentials], 'nor logs out twice')
  const forged = await post(app, 'logout', { mode: 'session' }, 'directus_session_token=not-a-token')
  t.same([forged.statusCode, forged.json()], [401, invalidCredentials], 'a cookie that is no session token: 401')
})

t.test('a session-cookie socket expires at the session token\'s exp like any other', async t => {
  const clock = stoppedDate(t)
  const built = await modes(t, { cookies: { session: { ttl: '1s' } } })
  const cookie = sent(setCookie(await login(built.app, 'session')))
  const client = await connect(wsUrl(built), { headers: { cookie } })
  clock.tick(2_000)
  t.same(await client.next(), { type: 'auth', status: 'error', error: { code: 'TOKEN_EXPIRED', message: 'Token expired.' } })
  t.equal((await refusedWith(wsUrl(built), { headers: { cookie } })).status, 401, 'and the expired cookie opens nothing')
})

t.test('with the session store away, a session cookie gets 503 at the upgrade, never a socket', async t => {
  const memory = new MemoryStore()
  let down = false
  const store = {
    get: (id: string, callback: (err: unknown, session?: unknown) => void) => down ? callback(new Error('store down')) : memory.get(id, callback as never),
    set: memory.set.bind(memory),
    destroy: memory.destroy.bind(memory)
  }
  const built = await modes(t, { sessionStore: fromFastifySessionStore(store) })
  const cookie = sent(setCookie(await login(built.app, 'session')))
  down = true
  t.equal((await refusedWith(wsUrl(built), { headers: { cookie } })).status, 503)
})

t.test('a page of another origin cannot open a socket with the user\'s session cookie', async t => {
  const built = await modes(t)
  const cookie = sent(setCookie(await login(built.app, 'session')))
  const refused = await refusedWith(wsUrl(built), { headers: { cookie, origin: 'http://evil.example' } })
  t.equal(refused.status, 403)
})

t.test('the cookies\' names and attributes come from Directus\'s variables or the options', async t => {
  const { app } = await modes(t, {
    env: {
      REFRESH_TOKEN_COOKIE_NAME: 'rt',
      REFRESH_TOKEN_COOKIE_SECURE: 'true',
      REFRESH_TOKEN_COOKIE_SAME_SITE: 'Strict',
      REFRESH_TOKEN_COOKIE_DOMAIN: 'example.com',
      SESSION_COOKIE_TTL: '2h'
    },
    cookies: { session: { name: 'st', sameSite: 'none', secure: true } }
  })
  t.match(setCookie(await login(app, 'cookie')), /^rt=[\w-]{64}; Max-Age=604800; Domain=example.com; Path=\/; HttpOnly; Secure; SameSite=Strict$/)
  const session = await login(app, 'session')
  t.match(setCookie(session), /^st=[\w.-]+; Max-Age=7200; Path=\/; HttpOnly; Secure; SameSite=None$/)
  t.same(session.json(), { data: { expires: 7_200_000 } })

  // Partitioned, for an app in a frame of another site: set so, and cleared so (a clearing without it misses the cookie).
  const framed = await modes(t, { env: { SESSION_COOKIE_PARTITIONED: 'TRUE', SESSION_COOKIE_SECURE: 'true', SESSION_COOKIE_SAME_SITE: 'none' }, cookies: { refresh: { secure: true, partitioned: true } } })
  const partitioned = setCookie(await login(framed.app, 'session'))
  t.match(partitioned, /^directus_session_token=[\w.-]+; Max-Age=86400; Path=\/; HttpOnly; Secure; Partitioned; SameSite=None$/)
  t.match(setCookie(await login(framed.app, 'cookie')), /^directus_refresh_token=[\w-]{64}; Max-Age=604800; Path=\/; HttpOnly; Secure; Partitioned; SameSite=Lax$/)
  const logout = await post(framed.app, 'logout', { mode: 'session' }, sent(partitioned))
  // And the unpartitioned copy too, one set before the app turned the option on: a browser keeps both kinds side by side.
  t.match(setCookies(logout.headers), [
    /^directus_session_token=; Max-Age=0; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=None$/,
    /^directus_session_token=; Max-Age=0; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; Partitioned; SameSite=None$/
  ])
  t.equal(setCookies(logout.headers).length, 2)
})

t.test('bad cookie settings fail boot, naming the variable and the option', async t => {
  await t.rejects(resolveConfig({ env: { SESSION_COOKIE_SAME_SITE: 'none' } }), {
    code: 'FST_REALTIME_INVALID_CONFIG',
    message: 'Invalid configuration: SESSION_COOKIE_SAME_SITE none needs SESSION_COOKIE_SECURE true: browsers refuse a SameSite=None cookie that is not Secure'
  })
  await t.rejects(resolveConfig({ env: {}, cookies: { refresh: { sameSite: 'none' } } }), {
    message: /REFRESH_TOKEN_COOKIE_SAME_SITE \(option cookies.refresh.sameSite\) none needs REFRESH_TOKEN_COOKIE_SECURE true/
  })
  await t.rejects(resolveConfig({ env: { REFRESH_TOKEN_COOKIE_SAME_SITE: 'sometimes' } }), {
    message: /REFRESH_TOKEN_COOKIE_SAME_SITE must be equal to one of the allowed values: one of lax, strict, none/
  })
  await t.rejects(resolveConfig({ env: {}, cookies: { session: { name: 'a b' } } }), { message: /SESSION_COOKIE_NAME \(option cookies.session.name\) must match pattern/ })
  await t.rejects(resolveConfig({ env: { SESSION_COOKIE_TTL: 'soon' } }), { message: /SESSION_COOKIE_TTL must be a positive duration/ })
  await t.rejects(resolveConfig({ env: { SESSION_COOKIE_PARTITIONED: 'true' } }), {
    message: 'Invalid configuration: SESSION_COOKIE_PARTITIONED needs SESSION_COOKIE_SECURE true: browsers refuse a Partitioned cookie that is not Secure'
  })
  await t.rejects(resolveConfig({ env: {}, cookies: { refresh: { partitioned: true } } }), {
    message: /REFRESH_TOKEN_COOKIE_PARTITIONED \(option cookies.refresh.partitioned\) needs REFRESH_TOKEN_COOKIE_SECURE true/
  })
  await t.rejects(resolveConfig({ env: { REFRESH_TOKEN_COOKIE_PARTITIONED: 'maybe' } }), { message: /REFRESH_TOKEN_COOKIE_PARTITIONED must be boolean/ })
  // Partitioned without SameSite=None boots (harmless at the top level), and says what it does not do.
  t.same((await resolveConfig({ env: { SESSION_COOKIE_PARTITIONED: 'true', SESSION_COOKIE_SECURE: 'true' } })).warnings, [
    'SESSION_COOKIE_PARTITIONED is set with SESSION_COOKIE_SAME_SITE lax: a frame of another site drops such a cookie (the login answers 200 and keeps nothing); set it to none'
  ])
  t.same((await resolveConfig({ env: {}, cookies: { refresh: { partitioned: true, secure: true, sameSite: 'strict' } } })).warnings, [
    'REFRESH_TOKEN_COOKIE_PARTITIONED (option cookies.refresh.partitioned) is set with REFRESH_TOKEN_COOKIE_SAME_SITE (option cookies.refresh.sameSite) strict: a frame of another site drops such a cookie (the login answers 200 and keeps nothing); set it to none'
  ])
  t.same((await resolveConfig({ env: { SESSION_COOKIE_PARTITIONED: 'true', SESSION_COOKIE_SECURE: 'true', SESSION_COOKIE_SAME_SITE: 'none' } })).warnings, [], 'with none, nothing to say')
})

t.test('the app\'s own @fastify/cookie is used, registered before the plugin', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCookie)
  await app.register(realtime, { env: {}, secret, users: await directoryOf([admin]), authRoutes: true })
  const response = await login(app, 'cookie')
  t.match(setCookie(response), /^directus_refresh_token=/)
})

t.test('an app\'s @fastify/cookie that signs its cookies by default: the plugin\'s are unsigned, and every mode works', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCookie, { secret: 'a-cookie-secret', parseOptions: { signed: true } })
  await app.register(realtime, { env: {}, secret, users: await directoryOf([admin]), authRoutes: true })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  const refresh = sent(setCookie(await login(app, 'cookie')))
  t.notMatch(refresh, /\.[\w+/-]{20,}$/, 'no signature appended')
  t.equal((await post(app, 'refresh', {}, refresh)).statusCode, 200, 'the refresh cookie refreshes')
  const session = sent(setCookie(await login(app, 'session')))
  const client = await connect(`ws://127.0.0.1:${port}/websocket`, { headers: { cookie: session } })
  await client.close()
  t.equal((await post(app, 'logout', { mode: 'session' }, session)).statusCode, 204, 'the session cookie logs out')
})

t.test('an app\'s @fastify/cookie without its parsing hook: the plugin reads its own cookies with the app\'s parser', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCookie, { hook: false })
  await app.register(realtime, { env: {}, secret, users: await directoryOf([admin]), authRoutes: true, rest: { auth: 'strict', handlers: { whoami } } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const refresh = sent(setCookie(await login(app, 'cookie')))
  const refreshed = await post(app, 'refresh', {}, refresh)
  t.equal(refreshed.statusCode, 200, 'the refresh cookie refreshes')
  t.equal((await post(app, 'logout', {}, sent(setCookie(refreshed)))).statusCode, 204, 'and logs out')
  const session = sent(setCookie(await login(app, 'session')))
  const client = await connect(`ws://127.0.0.1:${(app.server.address() as { port: number }).port}/websocket`, { headers: { cookie: session } })
  client.send({ type: 'whoami' })
  t.match(await client.next(), { type: 'whoami', user: String }, 'the session cookie authenticates at the upgrade')
  await client.close()
  t.equal((await post(app, 'logout', { mode: 'session' }, session)).statusCode, 204, 'and logs out')
})

t.test('an app whose @fastify/cookie parses in a later hook: the session and @fastify/jwt cookies still authenticate at the upgrade', async t => {
  const fastifyJwt = (await import('@fastify/jwt')).default
  for (const hook of ['preParsing', 'preValidation', 'preHandler'] as const) {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(fastifyCookie, { hook })
    await app.register(fastifyJwt, { secret, cookie: { cookieName: 'token', signed: false } })
    await app.register(realtime, { env: {}, authRoutes: true, users: await directoryOf([admin]), rest: { auth: 'strict', handlers: { whoami } } })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const built = { app, url: (path: string) => `ws://127.0.0.1:${(app.server.address() as { port: number }).port}${path}` }
    const cookies = {
      session: sent(setCookie(await login(app, 'session'))),
      '@fastify/jwt': `token=${app.jwt.sign({ id: 'u2' })}`
    }
    for (const [which, cookie] of Object.entries(cookies)) {
      const client = await connect(wsUrl(built), { headers: { cookie } })
      client.send({ type: 'whoami' })
      t.match(await client.next(), { type: 'whoami', user: which === 'session' ? String : 'u2' }, `${hook}: the ${which} cookie`)
      await client.close()
    }
    t.equal((await refusedWith(wsUrl(built))).status, 401, `${hook}: no cookie, no socket in strict mode`)
  }
})

/** Every Set-Cookie header of a response. */
function setCookies (headers: { 'set-cookie'?: string | string[] | undefined }): string[] {
  const header = headers['set-cookie']
  return header === undefined ? [] : typeof header === 'string' ? [header] : header
}

/** The copies a response clears, as `domain path` (host-only: `-`), sorted. */
const cleared = (headers: { 'set-cookie'?: string | string[] | undefined }, name: string) => setCookies(headers)
  .filter(header => header.startsWith(`${name}=;`) && /Max-Age=0/.test(header))
  .map(header => `${/Domain=([^;]+)/.exec(header)?.[1] ?? '-'} ${/Path=([^;]+)/.exec(header)![1]}`).sort()

/** Every domain and path a browser at app.realtime.test could have sent a copy with, for `paths`. */
const everyCopy = (paths: string[]) => ['-', 'app.realtime.test', 'realtime.test'].flatMap(domain => paths.map(path => `${domain} ${path}`)).sort()
const host = 'app.realtime.test'

t.test('a cookie of the plugin\'s sent twice (another one planted by a sibling subdomain for the whole site): no credential, every copy dropped, each session named ended', async t => {
  const built = await modes(t, { rest: { auth: 'strict', handlers: { whoami } } })
  const { app } = built
  const inject = (route: string, payload: object, cookie: string) => app.inject({ method: 'POST', url: `/auth/${route}`, payload, headers: { cookie, host } })
  const sessions = async () => [sent(setCookie(await login(app, 'session'))), sent(setCookie(await login(app, 'session')))]
  const refreshes = async () => [sent(setCookie(await login(app, 'cookie'))), sent(setCookie(await login(app, 'cookie')))]
  const ended = async (mode: 'cookie' | 'session', cookies: string[], what: string) => {
    for (const cookie of cookies) t.equal((await post(app, 'refresh', { mode }, cookie)).statusCode, 401, `${what}: the session of each copy has ended`)
  }

  // As the browser sends them: the planted one, on the longer path, first.
  let [victim, attacker] = await sessions()
  const upgrade = await upgradeRefusal(wsUrl(built), { headers: { cookie: `${attacker}; ${victim}`, host } })
  t.equal(upgrade.status, 401, 'the upgrade is refused')
  t.same(cleared(upgrade.headers, 'directus_session_token'), everyCopy(['/', '/websocket']), 'and the browser told to drop every copy it could have sent there')
  await ended('session', [victim!, attacker!], 'the upgrade')

  ;[victim, attacker] = await sessions()
  const refreshed = await inject('refresh', { mode: 'session' }, `${attacker}; ${victim}`)
  t.same([refreshed.statusCode, refreshed.json()], [401, invalidCredentials], 'a session refresh: 401')
  t.same(cleared(refreshed.headers, 'directus_session_token'), everyCopy(['/', '/auth', '/auth/', '/auth/refresh']), 'every copy dropped')
  await ended('session', [victim!, attacker!], 'a session refresh')

  let [victimRefresh, attackerRefresh] = await refreshes()
  const both = `${attackerRefresh}; ${victimRefresh}`
  const refreshedCookie = await inject('refresh', { mode: 'cookie' }, both)
  t.equal(refreshedCookie.statusCode, 401, 'a cookie refresh: 401')
  t.same(cleared(refreshedCookie.headers, 'directus_refresh_token'), everyCopy(['/', '/auth', '/auth/', '/auth/refresh']), 'every copy dropped')
  await ended('cookie', [victimRefresh!, attackerRefresh!], 'a cookie refresh')

  ;[victimRefresh, attackerRefresh] = await refreshes()
  const loggedOut = await inject('logout', { mode: 'cookie' }, `${attackerRefresh}; ${victimRefresh}`)
  t.equal(loggedOut.statusCode, 204, 'a logout logs out of both')
  t.same(cleared(loggedOut.headers, 'directus_refresh_token'), everyCopy(['/', '/auth', '/auth/', '/auth/logout']), 'every copy dropped')
  await ended('cookie', [victimRefresh!, attackerRefresh!], 'a logout')

  ;[victim, attacker] = await sessions()
  const loggedIn = await inject('login', { email: admin.email, password: admin.password, mode: 'session' }, `${attacker}; ${victim}`)
  t.equal(loggedIn.statusCode, 200, 'a login')
  const headers = setCookies(loggedIn.headers)
  const own = headers.filter(header => !/Max-Age=0/.test(header))
  t.equal(own.length, 1, 'sets its own cookie')
  t.match(own[0], /^directus_session_token=[^;]+; Max-Age=\d+; Path=\/; HttpOnly; SameSite=Lax$/, 'host-only, on /')
  t.same(cleared(loggedIn.headers, 'directus_session_token'), everyCopy(['/', '/auth', '/auth/', '/auth/login']).filter(copy => copy !== '- /'),
    'and drops every other copy (the one it sets replaces the host-only copy on /)')
  await ended('session', [victim!, attacker!], 'a login')
  t.equal((await post(app, 'refresh', { mode: 'session' }, sent(own[0]!))).statusCode, 200, 'the new session works')
})

t.test('cookies sent twice with the session store away: 503, and every copy kept to try again', async t => {
  let storeDown = false
  const sessionStore = new MemorySessionStore()
  const lookup = sessionStore.lookup.bind(sessionStore)
  sessionStore.lookup = (token) => storeDown ? Promise.reject(new Error('store down')) : lookup(token)
  const built = await modes(t, { sessionStore })
  const { app } = built
  const session = [sent(setCookie(await login(app, 'session'))), sent(setCookie(await login(app, 'session')))].join('; ')
  const refresh = [sent(setCookie(await login(app, 'cookie'))), sent(setCookie(await login(app, 'cookie')))].join('; ')
  storeDown = true
  const upgrade = await upgradeRefusal(wsUrl(built), { headers: { cookie: session } })
  t.same([upgrade.status, setCookies(upgrade.headers)], [503, []], 'the upgrade')
  for (const route of ['refresh', 'logout']) {
    const answer = await post(app, route, { mode: 'cookie' }, refresh)
    t.same([answer.statusCode, setCookies(answer.headers)], [503, []], route)
  }
  storeDown = false
  t.equal((await post(app, 'logout', { mode: 'cookie' }, refresh)).statusCode, 204, 'a retry logs out')
})

t.test('copies dropped on a host the client made up: host-only alone for what cannot be a domain, eight parents at most', async t => {
  const { app } = await modes(t)
  const twice = async () => [sent(setCookie(await login(app, 'cookie'))), sent(setCookie(await login(app, 'cookie')))].join('; ')
  const domains = async (host: string, url = '/auth/refresh') => {
    const answer = await app.inject({ method: 'POST', url, payload: { mode: 'cookie' }, headers: { cookie: await twice(), host } })
    t.equal(answer.statusCode, 401, host.slice(-40))
    return [...new Set(cleared(answer.headers, 'directus_refresh_token').map(copy => copy.split(' ')[0]))]
  }
  t.same(await domains('127.0.0.1:3000'), ['-'], 'an address')
  t.same(await domains('[::1]:3000'), ['-'], 'an IPv6 address')
  t.same(await domains('localhost'), ['-'], 'one label')
  t.same(await domains('ev!l.realtime.test'), ['-'], 'no host name')
  const deep = `${'a.'.repeat(300)}realtime.test`
  t.equal((await domains(deep)).length, 9, 'host-only and eight parents of a host of 302 labels')
  const answer = await app.inject({ method: 'POST', url: '/auth/refresh?x=<;>', payload: { mode: 'cookie' }, headers: { cookie: await twice(), host } })
  t.same(cleared(answer.headers, 'directus_refresh_token'), everyCopy(['/', '/auth', '/auth/', '/auth/refresh']), 'the query is no path')
})

t.test('a path of thousands of slashes (a router that ignores duplicate ones) clears on / alone; a pair without a value is no copy', async t => {
  const { app } = await build(t, { users: [admin], authRoutes: true }, { logger: false, ...routerOptions({ ignoreDuplicateSlashes: true }) })
  const twice = [sent(setCookie(await login(app, 'cookie'))), sent(setCookie(await login(app, 'cookie')))].join('; ')
  const answer = await app.inject({ method: 'POST', url: `/auth${'/'.repeat(7000)}logout`, payload: { mode: 'cookie' }, headers: { cookie: twice, host: 'a.b.c.d.e.f.g.h.i.example.com' } })
  t.equal(answer.statusCode, 204)
  t.equal(setCookies(answer.headers).length, 9, 'host-only and eight parents, on / alone')
  // A browser keeps `document.cookie = 'directus_refresh_token'` as a cookie without a name, and sends it as the bare word.
  const own = sent(setCookie(await login(app, 'cookie')))
  const refreshed = await post(app, 'refresh', { mode: 'cookie' }, `directus_refresh_token; ${own}`)
  t.equal(refreshed.statusCode, 200, 'the cookie without a name beside the own one: the own one refreshes')
})

t.test('a cookie whose name starts with a no-break space is another cookie (the parser\'s, the browser\'s): no copy of the own one', async t => {
  // Chromium keeps a 0xA0 byte a sibling subdomain's Set-Cookie puts before the name (test/browser/cookie-tossing.test.ts);
  // the cookie parser trims spaces and tabs alone. Counted as a copy, it ended the own session at every request, for good.
  const built = await modes(t)
  const { app } = built
  const planted = (name: string) => `\xa0${name}=planted`
  const refresh = sent(setCookie(await login(app, 'cookie')))
  const refreshed = await post(app, 'refresh', { mode: 'cookie' }, `${refresh}; ${planted('directus_refresh_token')}`)
  t.equal(refreshed.statusCode, 200, 'cookie mode: the own refresh cookie refreshes')
  const session = sent(setCookie(await login(app, 'session')))
  const beside = `${session}; ${planted('directus_session_token')}`
  const client = await connect(wsUrl(built), { headers: { cookie: beside } })
  client.send({ type: 'whoami', uid: 'w' })
  t.match(await client.next(), { type: 'whoami', uid: 'w', user: String }, 'the upgrade opens as the user')
  await client.close()
  t.equal((await post(app, 'refresh', { mode: 'session' }, beside)).statusCode, 200, 'session mode: the own session cookie refreshes, its session alive')
})

t.test('copies dropped: the configured domain too; a path no browser sends is only /; a session cookie that is no session token among them', async t => {
  const { app } = await build(t, { users: [admin], authRoutes: true, env: { SESSION_COOKIE_DOMAIN: 'realtime.test', REFRESH_TOKEN_COOKIE_DOMAIN: 'realtime.test' } },
    { logger: false, ...routerOptions({ useSemicolonDelimiter: true } as NonNullable<FastifyServerOptions['routerOptions']>) })
  const session = sent(setCookie(await login(app, 'session')))
  const answer = await app.inject({ method: 'POST', url: '/auth/refresh;x=<>', payload: { mode: 'session' }, headers: { cookie: `directus_session_token=garbage; ${session}`, host: 'localhost' } })
  t.equal(answer.statusCode, 401)
  t.same(cleared(answer.headers, 'directus_session_token'), ['- /', 'realtime.test /'], 'host-only and the configured domain, on /')
  t.equal((await post(app, 'refresh', { mode: 'session' }, session)).statusCode, 401, 'the session the valid copy named has ended')
})

t.test('under the app\'s rewriteUrl (the app served under /api): copies are dropped on the paths of the URL the browser sent', async t => {
  const built = await build(t, { users: [admin], authRoutes: true, rest: { auth: 'strict' } },
    { logger: false, rewriteUrl: (request) => request.url!.replace(/^\/api(?=\/)/, '') })
  const { app } = built
  const twice = async (mode: 'cookie' | 'session') => [sent(setCookie(await login(app, mode))), sent(setCookie(await login(app, mode)))].join('; ')
  const refreshed = await app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { mode: 'cookie' }, headers: { cookie: await twice('cookie'), host } })
  t.equal(refreshed.statusCode, 401, 'a refresh carrying two copies')
  t.same(cleared(refreshed.headers, 'directus_refresh_token'), everyCopy(['/', '/api', '/api/', '/api/auth', '/api/auth/', '/api/auth/refresh']),
    'every copy the browser could have sent to /api/auth/refresh')
  const upgrade = await upgradeRefusal(wsUrl(built, '/api/websocket'), { headers: { cookie: await twice('session'), host } })
  t.equal(upgrade.status, 401, 'an upgrade carrying two copies')
  t.same(cleared(upgrade.headers, 'directus_session_token'), everyCopy(['/', '/api', '/api/', '/api/websocket']),
    'every copy the browser could have sent to /api/websocket')
})

t.test('a session cookie carrying its refresh token as `refresh_token` (the name a later release signs, which every log hides) works as one carrying it as `session`', async t => {
  const built = await modes(t, { rest: { auth: 'strict', handlers: { whoami } } })
  const { app } = built
  const cookie = sent(setCookie(await login(app, 'session')))
  t.match(app.realtime.jwt.decode<Record<string, unknown>>(cookie.slice(cookie.indexOf('=') + 1)), { session: /^[A-Za-z0-9_-]{64}$/ },
    'signed as the release before reads it')
  t.equal((redactLogObject({ user: { refresh_token: 'x' } }) as { user: Record<string, unknown> }).user.refresh_token, '[redacted]')

  const json = (await post(app, 'login', { email: admin.email, password: admin.password })).json().data
  const { sid, id, role, admin_access: adminAccess } = app.realtime.jwt.decode<Record<string, unknown>>(json.access_token)!
  const later = app.realtime.jwt.sign({ id, role, admin_access: adminAccess, sid, refresh_token: json.refresh_token }, { expiresIn: '1h' })
  const socket = await connect(wsUrl(built), { headers: { cookie: `directus_session_token=${later}` } })
  socket.send({ type: 'whoami', uid: 'w' })
  t.match(await socket.next(), { type: 'whoami', uid: 'w', user: id }, 'a cookie of the later shape opens its socket')
  await socket.close()
  t.equal((await refusedWith(`${wsUrl(built)}?access_token=${later}`)).status, 401, 'and is no access token')
  t.equal((await post(app, 'refresh', { mode: 'session' }, `directus_session_token=${later}`)).statusCode, 200, 'and refreshes')
})

for (const mode of ['cookie', 'session'] as const) {
  t.test(`${mode} mode: a login over the browser's cookie ends the session it replaces, and its sockets`, async t => {
    const built = await modes(t)
    const { app } = built
    const first = await login(app, mode)
    const cookie = sent(setCookie(first))
    const client = mode === 'session' ? await connect(wsUrl(built), { headers: { cookie } }) : await connect(wsUrl(built))
    if (mode === 'cookie') {
      client.send({ type: 'auth', access_token: first.json().data.access_token })
      t.match(await client.next(), { type: 'auth', status: 'ok' })
    }
    client.send({ type: 'whoami', uid: 'w' })
    t.match(await client.next(), { type: 'whoami', uid: 'w', user: String }, 'the first session\'s socket')
    const again = await post(app, 'login', { email: admin.email, password: admin.password, mode }, cookie)
    t.equal(again.statusCode, 200, 'the second login')
    t.match(await client.next(), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED' } }, 'the first session\'s socket is revoked')
    t.equal((await post(app, 'refresh', { mode }, cookie)).statusCode, 401, 'and its cookie refused')
    t.equal((await post(app, 'refresh', { mode }, sent(setCookie(again)))).statusCode, 200, 'the new one works')
    await client.close()
  })
}

t.test('a login over a cookie that is no current session\'s (garbage, or rotated since) ends nothing', async t => {
  const { app } = await modes(t)
  t.equal((await post(app, 'login', { email: admin.email, password: admin.password, mode: 'cookie' }, 'directus_refresh_token=garbage')).statusCode, 200)
  const cookie = sent(setCookie(await login(app, 'cookie')))
  const rotated = sent(setCookie(await post(app, 'refresh', { mode: 'cookie' }, cookie)))
  t.equal((await post(app, 'login', { email: admin.email, password: admin.password, mode: 'cookie' }, cookie)).statusCode, 200, 'over the rotated-away one')
  t.equal((await post(app, 'refresh', { mode: 'cookie' }, rotated)).statusCode, 200, 'the session it named lives on (its reuse is no login\'s business)')
})

const revoked = { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED' } }

t.test('a shared computer: a cookie-mode login over another user\'s session cookie ends that session and clears its cookie, so no later socket there is theirs', async t => {
  const built = await modes(t, { users: [admin, editor], rest: { auth: 'public', handlers: { whoami } } })
  const { app } = built
  // The admin logs in in session mode, opens a socket, and walks away.
  const session = sent(setCookie(await post(app, 'login', { email: admin.email, password: admin.password, mode: 'session' })))
  const adminSocket = await connect(wsUrl(built), { headers: { cookie: session } })
  adminSocket.send({ type: 'whoami', uid: 'w' })
  const { user: adminId } = await adminSocket.next() as { user: string }
  // The editor logs in in cookie mode in the same browser, which sends the admin's cookie along.
  const editorLogin = await post(app, 'login', { email: editor.email, password: editor.password, mode: 'cookie' }, session)
  t.equal(editorLogin.statusCode, 200)
  t.same(cleared(editorLogin.headers, 'directus_session_token'), ['- /'], 'the admin\'s session cookie is cleared')
  const refresh = setCookies(editorLogin.headers).filter(header => header.startsWith('directus_refresh_token='))
  t.match(refresh, [/^directus_refresh_token=[\w-]{64}; Max-Age=604800;/], 'beside the editor\'s refresh cookie')
  t.match(await adminSocket.next(), revoked, 'the admin\'s socket is revoked')
  t.equal((await post(app, 'refresh', { mode: 'session' }, session)).statusCode, 401, 'and the admin\'s session has ended')
  t.equal((await refusedWith(wsUrl(built), { headers: { cookie: session } })).status, 401, 'a socket opened with the cookie kept from before is refused')

  const logout = await post(app, 'logout', { mode: 'cookie' }, sent(refresh[0]!))
  t.same([logout.statusCode, cleared(logout.headers, 'directus_refresh_token')], [204, ['- /']], 'the editor logs out')
  const client = await connect(wsUrl(built))
  client.send({ type: 'whoami', uid: 'w' })
  const after = await client.next() as { user: string | null }
  t.not(after.user, adminId, 'the next socket opened there is not the admin\'s')
  t.equal(after.user, null, 'it is public')
  await client.close()
})

t.test('a session-mode login over a refresh cookie ends its session and clears it; a session cookie that is no session token is left alone', async t => {
  const built = await modes(t)
  const { app } = built
  const cookieLogin = await login(app, 'cookie')
  const refresh = sent(setCookie(cookieLogin))
  const client = await connect(wsUrl(built))
  client.send({ type: 'auth', access_token: cookieLogin.json().data.access_token })
  t.match(await client.next(), { type: 'auth', status: 'ok' })
  const loggedIn = await post(app, 'login', { email: admin.email, password: admin.password, mode: 'session' }, refresh)
  t.equal(loggedIn.statusCode, 200)
  t.same(cleared(loggedIn.headers, 'directus_refresh_token'), ['- /'], 'the refresh cookie is cleared')
  t.match(await client.next(), revoked, 'the refresh cookie\'s session\'s socket is revoked')
  t.equal((await post(app, 'refresh', { mode: 'cookie' }, refresh)).statusCode, 401, 'and its session has ended')

  const overGarbage = await post(app, 'login', { email: admin.email, password: admin.password, mode: 'cookie' }, 'directus_session_token=not-a-token')
  t.equal(overGarbage.statusCode, 200)
  t.same(cleared(overGarbage.headers, 'directus_session_token'), [], 'a cookie-mode login leaves a session cookie that is no session token of its own')
})

for (const mode of ['json', 'cookie', 'session'] as const) {
  t.test(`${mode} logout: each of the plugin's login cookies the request carries has its session ended and is cleared`, async t => {
    const built = await modes(t)
    const { app } = built
    // Both cookies, as a browser held them before a login cleared the other mode's (or when the store could not end it).
    const session = sent(setCookie(await login(app, 'session')))
    const refresh = sent(setCookie(await login(app, 'cookie')))
    const body = (await login(app, 'json')).json().data.refresh_token
    const socket = await connect(wsUrl(built), { headers: { cookie: session } })
    const logout = await post(app, 'logout', mode === 'json' ? { refresh_token: body } : { mode }, `${session}; ${refresh}`)
    t.equal(logout.statusCode, 204)
    t.equal(setCookies(logout.headers).length, 2, 'two clearings')
    t.same([cleared(logout.headers, 'directus_refresh_token'), cleared(logout.headers, 'directus_session_token')], [['- /'], ['- /']], 'both cookies cleared')
    t.match(await socket.next(), revoked, 'the session cookie\'s socket is revoked')
    t.equal((await post(app, 'refresh', { mode: 'session' }, session)).statusCode, 401, 'the session cookie\'s session has ended')
    t.equal((await post(app, 'refresh', { mode: 'cookie' }, refresh)).statusCode, 401, 'the refresh cookie\'s too')
    if (mode === 'json') t.equal((await post(app, 'refresh', { refresh_token: body })).statusCode, 401, 'and the body\'s')
  })
}

t.test('a login or logout drops every copy of the other mode\'s cookie sent twice, and ends each session they name', async t => {
  const { app } = await modes(t)
  const inject = (route: string, payload: object, cookie: string) => app.inject({ method: 'POST', url: `/auth/${route}`, payload, headers: { cookie, host } })
  // As the browser sends them: the planted one, on the longer path, first.
  const twice = async () => [sent(setCookie(await login(app, 'session'))), sent(setCookie(await login(app, 'session')))].reverse()
  const ended = async (cookies: string[], what: string) => {
    for (const cookie of cookies) t.equal((await post(app, 'refresh', { mode: 'session' }, cookie)).statusCode, 401, `${what}: the session of each copy has ended`)
  }

  let copies = await twice()
  const refresh = sent(setCookie(await login(app, 'cookie')))
  const loggedOut = await inject('logout', { mode: 'cookie' }, `${copies.join('; ')}; ${refresh}`)
  t.equal(loggedOut.statusCode, 204, 'a cookie-mode logout')
  t.same(cleared(loggedOut.headers, 'directus_session_token'), everyCopy(['/', '/auth', '/auth/', '/auth/logout']), 'every copy of the session cookie dropped')
  t.same(cleared(loggedOut.headers, 'directus_refresh_token'), ['- /', 'app.realtime.test /', 'realtime.test /'], 'and its own cookie cleared, wherever it was set')
  await ended(copies, 'a cookie-mode logout')

  copies = await twice()
  const loggedIn = await inject('login', { email: admin.email, password: admin.password, mode: 'cookie' }, copies.join('; '))
  t.equal(loggedIn.statusCode, 200, 'a cookie-mode login')
  t.same(cleared(loggedIn.headers, 'directus_session_token'), everyCopy(['/', '/auth', '/auth/', '/auth/login']), 'every copy of the session cookie dropped')
  await ended(copies, 'a cookie-mode login')
})

t.test('a json logout ends the body\'s session and each cookie\'s, and drops every copy of a refresh cookie sent twice', async t => {
  const { app } = await modes(t)
  // As the browser sends them: the planted one, on the longer path, first.
  const copies = [sent(setCookie(await login(app, 'cookie'))), sent(setCookie(await login(app, 'cookie')))].reverse()
  const body = (await login(app, 'json')).json().data.refresh_token
  const loggedOut = await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: body }, headers: { cookie: copies.join('; '), host } })
  t.equal(loggedOut.statusCode, 204)
  t.same(cleared(loggedOut.headers, 'directus_refresh_token'), everyCopy(['/', '/auth', '/auth/', '/auth/logout']), 'every copy dropped, none left the browser\'s only one')
  for (const cookie of copies) t.equal((await post(app, 'refresh', { mode: 'cookie' }, cookie)).statusCode, 401, 'the session of each copy has ended')
  t.equal((await post(app, 'refresh', { refresh_token: body })).statusCode, 401, 'and the body\'s')
})

t.test('the other mode\'s cookie whose session the store cannot end is kept: a login still logs in, a logout answers 503 having done nothing, and its retry ends both', async t => {
  const unreachable = new Set<string>()
  const sessionStore = new MemorySessionStore()
  const lookup = sessionStore.lookup.bind(sessionStore)
  sessionStore.lookup = (token) => unreachable.has(token.sessionId) ? Promise.reject(new Error('store down')) : lookup(token)
  const built = await modes(t, { sessionStore })
  const { app } = built
  const session = sent(setCookie(await login(app, 'session')))
  unreachable.add(app.realtime.jwt.decode<{ sid: string }>(session.slice(session.indexOf('=') + 1))!.sid)

  const loggedIn = await post(app, 'login', { email: admin.email, password: admin.password, mode: 'cookie' }, session)
  t.equal(loggedIn.statusCode, 200, 'the login')
  const refresh = sent(setCookie(loggedIn)) // its own cookie alone: the session cookie is not cleared
  const failed = await post(app, 'logout', { mode: 'cookie' }, `${session}; ${refresh}`)
  t.same([failed.statusCode, setCookies(failed.headers)], [503, []], 'the logout: 503, both cookies kept')
  const refreshed = await post(app, 'refresh', { mode: 'cookie' }, refresh)
  t.equal(refreshed.statusCode, 200, 'its own session not ended either')
  const current = sent(setCookie(refreshed))

  unreachable.clear()
  const socket = await connect(wsUrl(built), { headers: { cookie: session } })
  const retried = await post(app, 'logout', { mode: 'cookie' }, `${session}; ${current}`)
  t.same([retried.statusCode, cleared(retried.headers, 'directus_refresh_token'), cleared(retried.headers, 'directus_session_token')], [204, ['- /'], ['- /']], 'the retry logs out and clears both')
  t.match(await socket.next(), revoked, 'the session cookie\'s socket is revoked')
  t.equal((await post(app, 'refresh', { mode: 'session' }, session)).statusCode, 401, 'its session has ended')
})

/** A session store whose lookups of the sessions in `unreachable` fail, as a Redis Cluster node of their slot away. */
function partlyReachable (): { sessionStore: MemorySessionStore, unreachable: Set<string>, lookups: () => number } {
  const unreachable = new Set<string>()
  const sessionStore = new MemorySessionStore()
  const lookup = sessionStore.lookup.bind(sessionStore)
  let count = 0
  sessionStore.lookup = (token) => {
    count++
    return unreachable.has(token.sessionId) ? Promise.reject(new Error('node away')) : lookup(token)
  }
  return { sessionStore, unreachable, lookups: () => count }
}

/** The session a refresh token names, as its first 16 bytes spell it. */
function sessionOf (refreshToken: string): string {
  const hex = Buffer.from(refreshToken, 'base64url').toString('hex', 0, 16)
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

t.test('a json logout ends the body\'s session first and answers for it alone; a cookie whose session the store cannot end is kept for a later logout', async t => {
  const { sessionStore, unreachable } = partlyReachable()
  const { app } = await modes(t, { sessionStore })
  const refresh = sent(setCookie(await login(app, 'cookie')))
  const session = sent(setCookie(await login(app, 'session')))
  let body = (await login(app, 'json')).json().data.refresh_token as string
  unreachable.add(sessionOf(refresh.slice(refresh.indexOf('=') + 1)))

  const loggedOut = await post(app, 'logout', { refresh_token: body, mode: 'json' }, `${refresh}; ${session}`)
  t.equal(loggedOut.statusCode, 204, 'the body\'s logout answers')
  t.equal((await post(app, 'refresh', { refresh_token: body })).statusCode, 401, 'the body\'s session has ended')
  t.same([cleared(loggedOut.headers, 'directus_refresh_token'), cleared(loggedOut.headers, 'directus_session_token')], [[], ['- /']],
    'the session cookie, ended, is cleared; the refresh cookie the store could not end is kept')
  t.equal((await post(app, 'refresh', { mode: 'session' }, session)).statusCode, 401, 'the session cookie\'s session has ended')

  unreachable.clear()
  body = (await login(app, 'json')).json().data.refresh_token
  unreachable.add(sessionOf(body))
  const bodyAway = await post(app, 'logout', { refresh_token: body }, refresh)
  t.equal(bodyAway.statusCode, 503, 'the body\'s session the store cannot end: 503')
  t.same(cleared(bodyAway.headers, 'directus_refresh_token'), ['- /'], 'the kept refresh cookie is ended and cleared all the same')
  t.equal((await post(app, 'refresh', { mode: 'cookie' }, refresh)).statusCode, 401, 'its session has ended')
})

t.test('another app on the same host (another port, a Directus behind the same proxy) shares the cookie names: a lone cookie of the other mode\'s name the plugin cannot show is its own is left alone', async t => {
  const { app } = await modes(t, { users: [admin, editor] })
  const { app: other } = await modes(t, { secret: 'the-other-app-s-secret-long-enough' })
  const otherSession = sent(setCookie(await login(other, 'session')))
  const otherRefresh = sent(setCookie(await login(other, 'cookie')))
  const keeps = async (route: string, payload: object, cookie: string, what: string, clears: string[] = []) => {
    const answer = await post(app, route, payload, cookie)
    t.ok(answer.statusCode < 300, `${what}: ${answer.statusCode}`)
    t.same(setCookies(answer.headers).filter(header => /Max-Age=0/.test(header)).map(header => header.split('=', 1)[0]), clears, `${what}: the other app's cookie kept`)
  }

  const body = async () => (await login(app, 'json')).json().data.refresh_token as string
  await keeps('logout', { refresh_token: await body() }, `${otherSession}; ${otherRefresh}`, 'a json logout')
  await keeps('login', { email: admin.email, password: admin.password, mode: 'cookie' }, otherSession, 'a cookie-mode login')
  await keeps('login', { email: admin.email, password: admin.password, mode: 'session' }, otherRefresh, 'a session-mode login')
  await keeps('logout', { mode: 'cookie' }, `${otherSession}; ${sent(setCookie(await login(app, 'cookie')))}`, 'a cookie-mode logout', ['directus_refresh_token'])
  await keeps('logout', { mode: 'session' }, `${otherRefresh}; ${sent(setCookie(await login(app, 'session')))}`, 'a session-mode logout', ['directus_session_token'])
  t.equal((await post(other, 'refresh', { mode: 'session' }, otherSession)).statusCode, 200, 'the other app\'s session lives on')
  t.equal((await post(other, 'refresh', { mode: 'cookie' }, otherRefresh)).statusCode, 200, 'and its refresh cookie\'s')

  // The plugin's own, though no longer current: a session token past its exp, a refresh cookie rotated since.
  const { sid, id, role, admin_access: adminAccess } = app.realtime.jwt.decode<Record<string, unknown>>((await login(app, 'json')).json().data.access_token)!
  const expired = app.realtime.jwt.sign({ id, role, admin_access: adminAccess, sid, session: await body(), iss: 'fastify-realtime', exp: Math.floor(Date.now() / 1000) - 60 })
  t.ok(app.realtime.jwt.decode<{ exp: number }>(expired)!.exp * 1000 < Date.now(), 'a session token past its exp')
  const rotated = sent(setCookie(await login(app, 'cookie')))
  t.equal((await post(app, 'refresh', { mode: 'cookie' }, rotated)).statusCode, 200, 'a refresh cookie rotated since')
  const ownOld = await post(app, 'logout', { refresh_token: await body() }, `directus_session_token=${expired}; ${rotated}`)
  t.equal(ownOld.statusCode, 204, 'a json logout')
  t.same([cleared(ownOld.headers, 'directus_refresh_token'), cleared(ownOld.headers, 'directus_session_token')], [['- /'], ['- /']],
    'the plugin\'s own expired session cookie and rotated refresh cookie are cleared')
  const accessToken = app.realtime.signAccessToken({ user: 'u1', role: null, admin: false }).access_token
  const signed = await post(app, 'logout', { refresh_token: await body() }, `directus_session_token=${accessToken}`)
  t.same(cleared(signed.headers, 'directus_session_token'), ['- /'], 'and so is a token of its signing in the session cookie, though no session token')
})

t.test('a cookie sent 150 times costs eight store lookups, the browser\'s own copy (on /, sent last) among them, and every copy is dropped', async t => {
  const { sessionStore, lookups } = partlyReachable()
  const { app } = await modes(t, { sessionStore })
  const own = sent(setCookie(await login(app, 'cookie')))
  // Planted on longer paths, each a token of the plugin's shape the store must be asked about.
  const planted = Array.from({ length: 150 }, (_, i) => `directus_refresh_token=${Buffer.alloc(48, i).toString('base64url')}`)
  const before = lookups()
  const loggedOut = await app.inject({ method: 'POST', url: '/auth/logout', payload: { mode: 'cookie' }, headers: { cookie: [...planted, own].join('; '), host } })
  t.equal(loggedOut.statusCode, 204, 'the logout')
  t.equal(lookups() - before, 8, 'eight lookups')
  t.same(cleared(loggedOut.headers, 'directus_refresh_token'), everyCopy(['/', '/auth', '/auth/', '/auth/logout']), 'every copy dropped')
  t.equal((await post(app, 'refresh', { mode: 'cookie' }, own)).statusCode, 401, 'the browser\'s own copy\'s session has ended')
})

t.test('the app\'s cookie domain changed under the browser (added, removed): the one copy a refresh, login or logout replaces or drops goes on every domain of the host, and the new one is set last', async t => {
  // Two apps on one session store and secret: the same deployment before and after its setting changed.
  const sessionStore = new MemorySessionStore()
  const before = await modes(t, { sessionStore })
  const after = await modes(t, { sessionStore, cookies: { refresh: { domain: 'realtime.test' }, session: { domain: 'realtime.test' } } })
  const inject = (app: FastifyInstance, route: string, payload: object, cookie: string) => app.inject({ method: 'POST', url: `/auth/${route}`, payload, headers: { cookie, host } })
  const onEveryDomain = ['- /', 'app.realtime.test /', 'realtime.test /']
  for (const [from, to, setAt] of [[before, after, 'Domain=realtime.test; '], [after, before, '']] as const) {
    for (const [mode, name] of [['cookie', 'directus_refresh_token'], ['session', 'directus_session_token']] as const) {
      const copy = async () => sent(setCookies((await inject(from.app, 'login', { email: admin.email, password: admin.password, mode }, '')).headers)[0]!)
      const refreshed = await inject(to.app, 'refresh', { mode }, await copy())
      t.equal(refreshed.statusCode, 200, `${mode}: refreshed`)
      const headers = setCookies(refreshed.headers)
      t.same(cleared(refreshed.headers, name), onEveryDomain.filter(copy => copy !== (setAt ? 'realtime.test /' : '- /')), `${mode} refresh: the copy goes wherever it was set`)
      t.match(headers.filter(header => header.startsWith(`${name}=`)).at(-1), new RegExp(`^${name}=[^;]+; Max-Age=\\d+; ${setAt}Path=/; HttpOnly; SameSite=Lax$`), `${mode} refresh: the new one set last`)
      const again = await inject(to.app, 'login', { email: admin.email, password: admin.password, mode }, await copy())
      t.match(setCookies(again.headers).filter(header => header.startsWith(`${name}=`)).at(-1), new RegExp(`^${name}=[^;]+; Max-Age=\\d+; ${setAt}Path=/;`), `${mode} login: the new one set last`)
      t.same(cleared(again.headers, name).length, 2, `${mode} login: the copy goes wherever it was set`)
      const logout = await inject(to.app, 'logout', { mode }, await copy())
      t.same([logout.statusCode, cleared(logout.headers, name)], [204, onEveryDomain], `${mode} logout: the copy goes wherever it was set`)
    }
  }
  // A __Host- cookie has no other domain to be on.
  const prefixed = await modes(t, { cookies: { refresh: { name: '__Host-refresh', secure: true } } })
  const copy = sent(setCookie(await login(prefixed.app, 'cookie')))
  const logout = await inject(prefixed.app, 'logout', { mode: 'cookie' }, copy)
  // Secure, so of either kind, Partitioned or not: the app may have turned the option on or off since.
  t.same([logout.statusCode, cleared(logout.headers, '__Host-refresh')], [204, ['- /', '- /']], 'a __Host- cookie is cleared host-only alone')
  t.same(setCookies(logout.headers).map(header => header.includes('; Partitioned')), [true, false], 'of either kind')
})
