// The Directus-compatible HTTP auth routes (PROTOCOL.md section 7) and the auth part of the `fastify.realtime` API.
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import realtime, { MemorySessionStore, RealtimeError, type RealtimeOptions, type SessionStore } from '../../lib/index.js'
import { Secret, TOTP } from 'otpauth'
import { admin, build, connect, directoryOf, editor, refusedWith, secret } from '../helpers.js'

const otpSecret = 'JBSWY3DPEHPK3PXP'
const guarded = { email: 'guarded@example.com', password: 'gu4rd3d!', otpSecret }
const users = [admin, editor, guarded]

const invalidCredentials = {
  errors: [{ message: 'Invalid user credentials.', extensions: { code: 'INVALID_CREDENTIALS' } }]
}
const invalidPayload = { errors: [{ message: 'Invalid payload.', extensions: { code: 'INVALID_PAYLOAD' } }] }
const serviceUnavailable = {
  errors: [{ message: 'Service unavailable.', extensions: { code: 'SERVICE_UNAVAILABLE' } }]
}
const refreshTokenPattern = /^[A-Za-z0-9_-]{43,}$/

interface Tokens {
  access_token: string
  expires: number
  refresh_token: string
}

async function withRoutes (t: Test, options: RealtimeOptions = {}) {
  return build(t, { authRoutes: true, users, ...options })
}

function post (app: FastifyInstance, url: string, payload?: unknown) {
  return app.inject({ method: 'POST', url, ...(payload === undefined ? {} : { payload: payload as object }) })
}

async function login (t: Test, app: FastifyInstance, credentials: object = admin, prefix = '/auth'): Promise<Tokens> {
  const response = await post(app, `${prefix}/login`, credentials)
  t.equal(response.statusCode, 200, 'logged in')
  return response.json<{ data: Tokens }>().data
}

function sid (app: FastifyInstance, token: string): string {
  return app.realtime.jwt.decode<{ sid: string }>(token)!.sid
}

function assertTokens (t: Test, response: LightMyRequestResponse) {
  t.equal(response.statusCode, 200)
  t.match(response.headers['content-type'], /^application\/json/)
  const body = response.json()
  t.same(Object.keys(body), ['data'])
  t.same(Object.keys(body.data).sort(), ['access_token', 'expires', 'refresh_token'])
  t.type(body.data.access_token, 'string')
  t.equal(body.data.expires, 15 * 60_000, 'expires in milliseconds')
  t.match(body.data.refresh_token, refreshTokenPattern, 'refresh token of at least 256 bits')
  return body.data as Tokens
}

/** A store whose every method fails, as an unreachable backend would. */
const brokenStore: SessionStore = {
  create: () => Promise.reject(new Error('store down')),
  rotate: () => Promise.reject(new Error('store down')),
  lookup: () => Promise.reject(new Error('store down')),
  end: () => Promise.reject(new Error('store down')),
  endUser: () => Promise.reject(new Error('store down'))
}

t.test('POST /auth/login answers the Directus token shape', async (t) => {
  const { app } = await withRoutes(t)
  const tokens = assertTokens(t, await post(app, '/auth/login', { email: admin.email, password: admin.password }))
  t.match(app.realtime.jwt.verify(tokens.access_token), {
    id: String, role: 'administrator', admin_access: true, sid: /^[0-9a-f-]{36}$/
  })
})

t.test('POST /auth/login accepts mode json', async (t) => {
  const { app } = await withRoutes(t)
  assertTokens(t, await post(app, '/auth/login', { email: editor.email, password: editor.password, mode: 'json' }))
})

t.test('POST /auth/login matches emails case-insensitively', async (t) => {
  const { app } = await withRoutes(t)
  assertTokens(t, await post(app, '/auth/login', { email: editor.email.toUpperCase(), password: editor.password }))
})

t.test('POST /auth/login gives every login its own session', async (t) => {
  const { app } = await withRoutes(t)
  const first = await login(t, app)
  const second = await login(t, app)
  t.not(sid(app, first.access_token), sid(app, second.access_token))
  t.not(first.refresh_token, second.refresh_token)
})

t.test('POST /auth/login with a wrong password is 401 INVALID_CREDENTIALS', async (t) => {
  const { app } = await withRoutes(t)
  const response = await post(app, '/auth/login', { email: admin.email, password: 'wrong' })
  t.equal(response.statusCode, 401)
  t.same(response.json(), invalidCredentials)
})

t.test('POST /auth/login with an unknown email is the same 401', async (t) => {
  const { app } = await withRoutes(t)
  const response = await post(app, '/auth/login', { email: 'nobody@example.com', password: admin.password })
  t.equal(response.statusCode, 401)
  t.same(response.json(), invalidCredentials)
})

t.test('POST /auth/login requires the otp of a user with one', async (t) => {
  const { app } = await withRoutes(t)
  const missing = await post(app, '/auth/login', { email: guarded.email, password: guarded.password })
  t.equal(missing.statusCode, 401)
  t.same(missing.json(), invalidCredentials)
  const wrong = await post(app, '/auth/login', { email: guarded.email, password: guarded.password, otp: 'abcdef' })
  t.equal(wrong.statusCode, 401)
  const otp = TOTP.generate({ secret: Secret.fromBase32(otpSecret) })
  assertTokens(t, await post(app, '/auth/login', { email: guarded.email, password: guarded.password, otp }))
})

t.test('POST /auth/login is 503 SERVICE_UNAVAILABLE when the credential check fails', async (t) => {
  const { app } = await withRoutes(t, { verifyCredentials: async () => { throw new Error('directory down') } })
  const response = await post(app, '/auth/login', { email: admin.email, password: admin.password })
  t.equal(response.statusCode, 503)
  t.same(response.json(), serviceUnavailable)
})

t.test('POST /auth/refresh rotates the refresh token within the same session', async (t) => {
  const { app } = await withRoutes(t)
  const first = await login(t, app)
  const second = assertTokens(t, await post(app, '/auth/refresh', { refresh_token: first.refresh_token, mode: 'json' }))
  t.not(second.refresh_token, first.refresh_token)
  t.equal(sid(app, second.access_token), sid(app, first.access_token))
  t.match(app.realtime.jwt.verify(second.access_token), { role: 'administrator', admin_access: true })
  const third = assertTokens(t, await post(app, '/auth/refresh', { refresh_token: second.refresh_token }))
  t.equal(sid(app, third.access_token), sid(app, first.access_token))
})

t.test('POST /auth/refresh with a rotated token is 401 and revokes the session', async (t) => {
  const { app, url } = await withRoutes(t)
  const first = await login(t, app)
  const second = assertTokens(t, await post(app, '/auth/refresh', { refresh_token: first.refresh_token }))

  const reused = await post(app, '/auth/refresh', { refresh_token: first.refresh_token })
  t.equal(reused.statusCode, 401)
  t.same(reused.json(), invalidCredentials)

  const newest = await post(app, '/auth/refresh', { refresh_token: second.refresh_token })
  t.equal(newest.statusCode, 401, 'the newest token died with the session')
  t.same(newest.json(), invalidCredentials)
  t.equal((await refusedWith(url(`/websocket?access_token=${second.access_token}`))).status, 401,
    "the session's access tokens are refused")
})

t.test('POST /auth/refresh with an unknown token is 401 INVALID_CREDENTIALS', async (t) => {
  const { app } = await withRoutes(t)
  const response = await post(app, '/auth/refresh', { refresh_token: 'not-a-token-anybody-issued' })
  t.equal(response.statusCode, 401)
  t.same(response.json(), invalidCredentials)
})

t.test('POST /auth/refresh with an expired session is 401 INVALID_CREDENTIALS', async (t) => {
  const { app } = await withRoutes(t, { refreshTokenTtl: 1 })
  const tokens = await login(t, app)
  await new Promise(resolve => setTimeout(resolve, 5))
  const response = await post(app, '/auth/refresh', { refresh_token: tokens.refresh_token })
  t.equal(response.statusCode, 401)
  t.same(response.json(), invalidCredentials)
})

t.test('POST /auth/logout is 204, then the token is 401 for refresh and logout', async (t) => {
  const { app } = await withRoutes(t)
  const tokens = await login(t, app)
  const response = await post(app, '/auth/logout', { refresh_token: tokens.refresh_token })
  t.equal(response.statusCode, 204)
  t.equal(response.body, '')

  const refreshed = await post(app, '/auth/refresh', { refresh_token: tokens.refresh_token })
  t.equal(refreshed.statusCode, 401)
  t.same(refreshed.json(), invalidCredentials)
  const again = await post(app, '/auth/logout', { refresh_token: tokens.refresh_token })
  t.equal(again.statusCode, 401)
  t.same(again.json(), invalidCredentials)
})

t.test('POST /auth/logout revokes the sockets and access tokens of the session', async (t) => {
  const { app, url } = await withRoutes(t)
  const tokens = await login(t, app)
  const other = await login(t, app)
  const client = await connect(url(`/websocket?access_token=${tokens.access_token}`))
  const bystander = await connect(url(`/websocket?access_token=${other.access_token}`))
  t.equal((await post(app, '/auth/logout', { refresh_token: tokens.refresh_token })).statusCode, 204)
  t.same(await client.next(), {
    type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' }
  })
  t.equal((await refusedWith(url(`/websocket?access_token=${tokens.access_token}`))).status, 401)
  bystander.send({ type: 'ping', uid: 1 })
  t.same(await bystander.next(), { type: 'pong', uid: 1 }, 'another session of the same user is untouched')
  await Promise.all([client.close(), bystander.close()])
})

t.test('POST /auth/logout with a rotated token is 401 and ends the session', async (t) => {
  const { app } = await withRoutes(t)
  const first = await login(t, app)
  const second = assertTokens(t, await post(app, '/auth/refresh', { refresh_token: first.refresh_token }))
  const response = await post(app, '/auth/logout', { refresh_token: first.refresh_token })
  t.equal(response.statusCode, 401)
  t.same(response.json(), invalidCredentials)
  t.equal((await post(app, '/auth/refresh', { refresh_token: second.refresh_token })).statusCode, 401)
})

t.test('POST /auth/logout with an unknown token is 401 INVALID_CREDENTIALS', async (t) => {
  const { app } = await withRoutes(t)
  const response = await post(app, '/auth/logout', { refresh_token: 'never-issued' })
  t.equal(response.statusCode, 401)
  t.same(response.json(), invalidCredentials)
})

t.test('POST /auth/login, /auth/refresh and /auth/logout are 503 when the session store fails', async (t) => {
  const { app } = await withRoutes(t, { sessionStore: brokenStore })
  for (const route of ['login', 'refresh', 'logout']) {
    const payload = route === 'login' ? { email: admin.email, password: admin.password } : { refresh_token: 'anything'.padEnd(64, 'A') }
    const response = await post(app, `/auth/${route}`, payload)
    t.equal(response.statusCode, 503, route)
    t.same(response.json(), serviceUnavailable, route)
  }
})

t.test('bad bodies are 400 INVALID_PAYLOAD in the Directus error shape', async (t) => {
  const { app } = await withRoutes(t)
  const cases: [string, unknown][] = [
    ['login', {}],
    ['login', { email: admin.email }],
    ['login', { password: admin.password }],
    ['login', { email: admin.email, password: admin.password, mode: 'token' }],
    ['login', []],
    ['login', undefined],
    ['refresh', { refresh_token: 'x', mode: 'token' }],
    ['logout', []],
    ['refresh', undefined],
    ['logout', undefined]
  ]
  for (const [route, payload] of cases) {
    const response = await post(app, `/auth/${route}`, payload)
    t.equal(response.statusCode, 400, `${route} ${JSON.stringify(payload)}`)
    t.same(response.json(), invalidPayload, `${route} ${JSON.stringify(payload)}`)
  }
  // No refresh token in the body, nor a cookie for the mode (a session refresh names its mode, or it is json's).
  const noToken = { errors: [{ message: 'The refresh token is required in either the payload or cookie.', extensions: { code: 'INVALID_PAYLOAD' } }] }
  for (const [route, payload] of [['refresh', {}], ['refresh', { refresh_token: 'x', mode: 'session' }], ['logout', {}], ['logout', { mode: 'cookie' }]] as const) {
    const response = await post(app, `/auth/${route}`, payload)
    t.same([response.statusCode, response.json()], [400, noToken], `${route} ${JSON.stringify(payload)}`)
  }
})

t.test('a string field of another type or empty is 400 INVALID_PAYLOAD naming it, whatever the app\'s Ajv coerces', async (t) => {
  const { email, password } = admin
  const cases: [string, object, string][] = [
    ['login', { email: [email], password: [password] }, '"email" must be a non-empty string.'],
    ['login', { email, password: [password] }, '"password" must be a non-empty string.'],
    ['login', { email: { $ne: null }, password }, '"email" must be a non-empty string.'],
    ['login', { email: '', password }, '"email" must be a non-empty string.'],
    ['login', { email, password: '' }, '"password" must be a non-empty string.'],
    ['login', { email, password, otp: 123456 }, '"otp" must be a non-empty string.'],
    ['login', { email, password, otp: '' }, '"otp" must be a non-empty string.'],
    ['login', { email, password, mode: ['json'] }, '"mode" must be a string.'],
    ['refresh', { refresh_token: 123 }, '"refresh_token" must be a non-empty string.'],
    ['refresh', { refresh_token: ['x'] }, '"refresh_token" must be a non-empty string.'],
    ['refresh', { refresh_token: '' }, '"refresh_token" must be a non-empty string.'],
    ['logout', { refresh_token: null }, '"refresh_token" must be a non-empty string.'],
    ['logout', { refresh_token: true }, '"refresh_token" must be a non-empty string.']
  ]
  // Fastify's default (`coerceTypes: 'array'`) turns `["pw"]` into "pw" and 123 into "123"; an app may choose otherwise.
  for (const ajv of [undefined, { customOptions: { coerceTypes: true } }, { customOptions: { coerceTypes: false } }]) {
    const { app } = await build(t, { authRoutes: true, users }, ajv === undefined ? {} : { ajv })
    for (const [route, payload, message] of cases) {
      const response = await post(app, `/auth/${route}`, payload)
      t.same([response.statusCode, response.json()], [400, { errors: [{ message, extensions: { code: 'INVALID_PAYLOAD' } }] }],
      `${route} ${JSON.stringify(payload)}, Ajv ${JSON.stringify(ajv ?? 'default')}`)
    }
  }
})

t.test('a body that is not JSON is 400 INVALID_PAYLOAD', async (t) => {
  const { app } = await withRoutes(t)
  for (const route of ['login', 'refresh', 'logout']) {
    const response = await app.inject({
      method: 'POST', url: `/auth/${route}`, headers: { 'content-type': 'application/json' }, payload: '{"email":'
    })
    t.equal(response.statusCode, 400, route)
    t.match(response.json(), { errors: [{ message: String, extensions: { code: 'INVALID_PAYLOAD' } }] }, route)
    t.equal(response.json().errors.length, 1)
  }
})

t.test('a body that is not JSON is 400 INVALID_PAYLOAD with the JSON parser of Fastify before 5.5', async (t) => {
  // Fastify 5.0 to 5.4's default JSON parser, which the routes take (the peer range admits 5.0): JSON.parse's
  // SyntaxError with statusCode 400, no FST_ERR_CTP_ code (FST_ERR_CTP_INVALID_JSON_BODY came in 5.5).
  const app = Fastify()
  t.teardown(() => app.close())
  app.getDefaultJsonParser = () => (_request, body, done) => {
    if (body.length === 0) return done(Object.assign(new Error('empty'), { code: 'FST_ERR_CTP_EMPTY_JSON_BODY', statusCode: 400 }), undefined)
    try {
      done(null, JSON.parse(body as string))
    } catch (error) {
      (error as { statusCode?: number }).statusCode = 400
      done(error as Error, undefined)
    }
  }
  await app.register(realtime, { env: {}, secret, authRoutes: true, users: await directoryOf([admin]) })
  for (const route of ['login', 'refresh', 'logout']) {
    const response = await app.inject({
      method: 'POST', url: `/auth/${route}`, headers: { 'content-type': 'application/json' }, payload: '{"email":'
    })
    t.equal(response.statusCode, 400, route)
    t.match(response.json(), { errors: [{ message: /JSON/, extensions: { code: 'INVALID_PAYLOAD' } }] }, route)
    t.equal(response.json().errors.length, 1)
  }
  // JSON.parse's message quotes the body around the fault: a client's unquoted password or refresh token, sent back in
  // the answer (to its error reporting, its logs). The answer says what Fastify 5.5 and later say.
  for (const [route, payload] of [['login', `{"email":"${admin.email}","password":hunter2-secret}`], ['refresh', '{"refresh_token":Zq3kL9x0sT4vW8yB2nM6cR1dF5gH7jK0pQ2sU4wY6aC}']]) {
    const response = await app.inject({ method: 'POST', url: `/auth/${route}`, headers: { 'content-type': 'application/json' }, payload })
    t.same([response.statusCode, response.json()], [400, {
      errors: [{ message: 'Body is not valid JSON but content-type is set to \'application/json\'', extensions: { code: 'INVALID_PAYLOAD' } }]
    }], `${route}: no part of the body in the answer`)
  }
  t.equal((await post(app, '/auth/login', admin)).statusCode, 200, 'a JSON body still logs in')
})

t.test('a SyntaxError with statusCode 400 from the app\'s own hook is the app\'s to answer, not INVALID_PAYLOAD', async (t) => {
  // Only the routes' JSON parser's errors are the body's fault: one from an app's hook (a JSON header it parses) goes
  // to the app's error handler, as every other error of its hooks does.
  const app = Fastify()
  t.teardown(() => app.close())
  app.setErrorHandler((error, _request, reply) => reply.code(400).send({ app: (error as Error).message }))
  app.addHook('onRequest', async (request) => {
    try {
      JSON.parse(request.headers['x-client-context'] as string)
    } catch (error) {
      throw Object.assign(error as Error, { statusCode: 400 })
    }
  })
  await app.register(realtime, { env: {}, secret, authRoutes: true, users: await directoryOf([admin]) })
  const response = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'x-client-context': '{"tenant":' }, payload: admin })
  t.equal(response.statusCode, 400)
  t.match(response.json(), { app: /JSON/ }, 'the app\'s error handler answered')
})

t.test('an unsupported content type is refused in the Directus error shape', async (t) => {
  const { app } = await withRoutes(t)
  const response = await app.inject({
    method: 'POST', url: '/auth/login', headers: { 'content-type': 'application/xml' }, payload: '<login/>'
  })
  t.equal(response.statusCode, 415)
  t.match(response.json(), { errors: [{ message: String, extensions: { code: String } }] })
})

t.test('the auth routes take JSON alone, whatever the app parses: a form body is 415 (no login or logout by a form of another site)', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  // What @fastify/formbody and a text parser of the app's register: bodies a cross-site form or a simple fetch sends.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)))
  })
  app.addContentTypeParser('text/plain', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, JSON.parse(body as string))
    } catch (err) {
      done(err as Error)
    }
  })
  await app.register(realtime, { env: {}, secret, authRoutes: true, users: await directoryOf(users) })
  app.post('/form', async (request) => request.body)
  const form = `email=${encodeURIComponent(admin.email)}&password=${encodeURIComponent(admin.password)}&mode=session`
  const json = JSON.stringify({ email: admin.email, password: admin.password, mode: 'session' })
  for (const [type, payload] of [['application/x-www-form-urlencoded', form], ['text/plain', json]]) {
    for (const route of ['login', 'refresh', 'logout']) {
      const response = await app.inject({ method: 'POST', url: `/auth/${route}`, headers: { 'content-type': type }, payload })
      t.equal(response.statusCode, 415, `${route}, ${type}`)
      t.match(response.json(), { errors: [{ message: String, extensions: { code: 'INVALID_PAYLOAD' } }] })
      t.notOk(response.cookies.length, 'no cookie set or cleared')
    }
  }
  const login = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'content-type': 'application/json' }, payload: json })
  t.equal(login.statusCode, 200, 'JSON logs in')
  const poisoned = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'content-type': 'application/json' }, payload: '{"__proto__":{"admin":true}}' })
  t.equal(poisoned.statusCode, 400, 'a poisoned JSON body is refused, as Fastify\'s own parser refuses it')
  t.same((await app.inject({ method: 'POST', url: '/form', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'a=1' })).json(), { a: '1' },
    'the app\'s own routes keep its parsers')
})

t.test('errors from the app\'s own hooks (a rate limit\'s 429, a failure) are answered by the app\'s error handler', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.addHook('onRequest', async (request) => {
    if (request.headers['x-limited'] !== undefined) throw Object.assign(new Error('Rate limit exceeded, retry in 1 minute'), { statusCode: 429 })
  })
  app.addHook('preHandler', async (request) => {
    if (request.headers['x-fail'] !== undefined) throw new Error('down')
  })
  app.setErrorHandler((error: { statusCode?: number, message: string }, _request, reply) => reply.code(error.statusCode ?? 500).send({ mine: error.message }))
  await app.register(realtime, { env: {}, secret, authRoutes: true, users })
  const response = await app.inject({
    method: 'POST', url: '/auth/login', headers: { 'x-limited': '1' }, payload: { email: admin.email, password: admin.password }
  })
  t.same([response.statusCode, response.json()], [429, { mine: 'Rate limit exceeded, retry in 1 minute' }])
  const failed = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'x-fail': '1' }, payload: { email: admin.email, password: admin.password } })
  t.same([failed.statusCode, failed.json()], [500, { mine: 'down' }])
  const bad = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email } })
  t.same([bad.statusCode, bad.json()], [400, invalidPayload], 'a bad body is still the plugin\'s to answer')
})

t.test('authRoutes: { prefix } mounts the routes under it', async (t) => {
  const { app } = await withRoutes(t, { authRoutes: { prefix: '/api/auth' } })
  const tokens = await login(t, app, admin, '/api/auth')
  assertTokens(t, await post(app, '/api/auth/refresh', { refresh_token: tokens.refresh_token }))
  t.equal((await post(app, '/api/auth/logout', { refresh_token: 'x' })).statusCode, 401)
  t.equal((await post(app, '/auth/login', { email: admin.email, password: admin.password })).statusCode, 404)
})

t.test('no auth routes unless authRoutes is set', async (t) => {
  const { app } = await build(t, { users })
  t.equal((await post(app, '/auth/login', { email: admin.email, password: admin.password })).statusCode, 404)
})

t.test('fastify.realtime.login issues tokens of a new session', async (t) => {
  const { app } = await withRoutes(t)
  const tokens = await app.realtime.login({ email: editor.email, password: editor.password })
  t.same(Object.keys(tokens).sort(), ['access_token', 'expires', 'refresh_token'])
  t.equal(tokens.expires, 15 * 60_000)
  t.match(tokens.refresh_token, refreshTokenPattern)
  t.match(app.realtime.jwt.verify(tokens.access_token), { role: 'editor', admin_access: false, sid: String })
  assertTokens(t, await post(app, '/auth/refresh', { refresh_token: tokens.refresh_token }))
})

t.test('fastify.realtime.login with wrong credentials throws INVALID_CREDENTIALS', async (t) => {
  const { app } = await withRoutes(t)
  await t.rejects(app.realtime.login({ email: editor.email, password: 'wrong' }), new RealtimeError('INVALID_CREDENTIALS', 'Invalid user credentials.'))
  await t.rejects(app.realtime.login({ email: editor.email, password: 'wrong' }), { name: 'RealtimeError', code: 'INVALID_CREDENTIALS' })
})

t.test('fastify.realtime.login throws SERVICE_UNAVAILABLE when the check cannot run', async (t) => {
  const { app } = await build(t, { verifyCredentials: async () => { throw new Error('directory down') } })
  await t.rejects(app.realtime.login({ email: editor.email, password: editor.password }), {
    name: 'RealtimeError', code: 'SERVICE_UNAVAILABLE', message: 'Service unavailable.'
  })
  const store = await build(t, { users, sessionStore: brokenStore })
  await t.rejects(store.app.realtime.login({ email: editor.email, password: editor.password }), { code: 'SERVICE_UNAVAILABLE' })
})

t.test('fastify.realtime.revokeSession ends one session and revokes its sockets', async (t) => {
  const { app, url } = await withRoutes(t)
  const tokens = await login(t, app)
  const other = await login(t, app)
  const client = await connect(url(`/websocket?access_token=${tokens.access_token}`))
  await app.realtime.revokeSession(sid(app, tokens.access_token))
  t.same(await client.next(), {
    type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' }
  })
  t.equal((await post(app, '/auth/refresh', { refresh_token: tokens.refresh_token })).statusCode, 401)
  t.equal((await refusedWith(url(`/websocket?access_token=${tokens.access_token}`))).status, 401)
  assertTokens(t, await post(app, '/auth/refresh', { refresh_token: other.refresh_token }))
  await app.realtime.revokeSession('no-such-session')
  await client.close()
})

t.test('fastify.realtime.revokeUser ends every session of one user', async (t) => {
  const { app, url } = await withRoutes(t)
  const first = await login(t, app, admin)
  const second = await login(t, app, admin)
  const someoneElse = await login(t, app, editor)
  const user = app.realtime.jwt.decode<{ id: string }>(first.access_token)!.id
  const client = await connect(url(`/websocket?access_token=${second.access_token}`))
  await app.realtime.revokeUser(user)
  t.match(await client.next(), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED' } })
  for (const tokens of [first, second]) {
    t.equal((await post(app, '/auth/refresh', { refresh_token: tokens.refresh_token })).statusCode, 401)
  }
  assertTokens(t, await post(app, '/auth/refresh', { refresh_token: someoneElse.refresh_token }))
  await client.close()
})

t.test('fastify.realtime.signAccessToken signs a token the sockets accept', async (t) => {
  const { app, url } = await withRoutes(t)
  const identity = { user: 'external-user', role: 'viewer', admin: false }
  const signed = app.realtime.signAccessToken(identity)
  t.same(Object.keys(signed).sort(), ['access_token', 'expires'])
  t.equal(signed.expires, 15 * 60_000)
  const claims = app.realtime.jwt.verify<Record<string, unknown>>(signed.access_token)
  t.match(claims, { id: 'external-user', role: 'viewer', admin_access: false })
  t.notOk('sid' in claims)
  const client = await connect(url(`/websocket?access_token=${signed.access_token}`))
  client.send({ type: 'ping', uid: 'p' })
  t.same(await client.next(), { type: 'pong', uid: 'p' })
  await client.close()
})

t.test('fastify.realtime.signAccessToken with a session id is revoked with that session', async (t) => {
  const { app, url } = await withRoutes(t)
  const tokens = await login(t, app, editor)
  const session = sid(app, tokens.access_token)
  const signed = app.realtime.signAccessToken({ user: 'u', role: null, admin: false }, session)
  t.equal(sid(app, signed.access_token), session)
  await app.realtime.revokeSession(session)
  t.equal((await refusedWith(url(`/websocket?access_token=${signed.access_token}`))).status, 401)
})

t.test('the plugin registers without authRoutes or users', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, { env: {}, secret })
  await app.ready()
  await t.rejects(app.realtime.login({ email: admin.email, password: admin.password }), { code: 'INVALID_CREDENTIALS' })
})

t.test('maxSessionsPerUser: a login past it ends the user\'s oldest session, its socket and its refresh token', async (t) => {
  const { app, url } = await withRoutes(t, { maxSessionsPerUser: 2 })
  const first = await login(t, app)
  const socket = await connect(url('/websocket'))
  socket.send({ type: 'auth', access_token: first.access_token })
  t.same(await socket.next(), { type: 'auth', status: 'ok' })
  const second = await login(t, app)
  await login(t, app, editor) // another user's count is its own
  t.equal((await post(app, '/auth/refresh', { refresh_token: second.refresh_token })).statusCode, 200, 'within the limit')
  await login(t, app)
  t.match(await socket.next(), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED' } }, 'the oldest session\'s socket')
  t.same((await post(app, '/auth/refresh', { refresh_token: first.refresh_token })).json(), invalidCredentials, 'and its refresh token')
  t.equal((await refusedWith(url(`/websocket?access_token=${first.access_token}`))).status, 401, 'and its access token')
  await socket.close()
})

t.test('MAX_SESSIONS_PER_USER: 100 by default, from the environment, and a bad value fails boot', async (t) => {
  const { resolveConfig } = await import('../../lib/config.js')
  t.equal((await resolveConfig({ env: {} })).maxSessionsPerUser, 100)
  t.equal((await resolveConfig({ env: { MAX_SESSIONS_PER_USER: '5' } })).maxSessionsPerUser, 5)
  t.equal((await resolveConfig({ env: { MAX_SESSIONS_PER_USER: '5' }, maxSessionsPerUser: 7 })).maxSessionsPerUser, 7, 'the option wins')
  await t.rejects(resolveConfig({ env: { MAX_SESSIONS_PER_USER: '0' } }), { code: 'FST_REALTIME_INVALID_CONFIG', message: /MAX_SESSIONS_PER_USER must be >= 1/ })
})

t.test('a login whose identity no token can carry (verifyCredentials\'s): 503 in Directus\'s shape, logged, and no session left behind', async t => {
  const errors: string[] = []
  const sessionStore = new MemorySessionStore()
  const app = Fastify({ logger: { level: 'error', stream: { write: (line: string) => { errors.push(JSON.parse(line).msg) } } } })
  t.teardown(() => app.close())
  await app.register(realtime, {
    env: {}, secret, authRoutes: true, sessionStore, verifyCredentials: async () => ({ user: 'u1', role: 10n as unknown as string, admin: false })
  })
  const response = await post(app, '/auth/login', { email: 'u1', password: 'p' })
  t.same([response.statusCode, response.json()], [503, serviceUnavailable])
  t.same(errors, ['an auth check failed'])
  t.same(await sessionStore.endUser('u1', Date.now() + 1000), [], 'the session it had made has ended')
})
