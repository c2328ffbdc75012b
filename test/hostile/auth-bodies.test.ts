// Oversized auth bodies and credentials: the auth routes keep a body limit of their own (16 KiB, 413) whatever the
// app's `bodyLimit`, and an email over 254 characters or a password over 1024 is refused (400 INVALID_PAYLOAD naming
// it, over HTTP and in a socket's auth message) before its attempt is counted or its password hashed.
import t from 'tap'
import { admin, adminLookup, build, connect } from '../helpers.js'

const silent = { logger: false } as const
// An app that raised its own limit for uploads: the auth routes keep theirs.
const bigBodies = { logger: false, bodyLimit: 100 * 1024 * 1024 } as const
const longEmail = `${'a'.repeat(243)}@example.com` // 255 characters
const longPassword = 'p'.repeat(1025)
const problem = (message: string) => ({ errors: [{ message, extensions: { code: 'INVALID_PAYLOAD' } }] })

t.test('the auth routes refuse a body over 16 KiB with 413, whatever the app\'s bodyLimit', async t => {
  const { app } = await build(t, { users: [admin], authRoutes: true }, bigBodies)
  const pad = 'x'.repeat(16 * 1024)
  for (const [url, payload] of [
    ['/auth/login', { email: admin.email, password: admin.password, pad }],
    ['/auth/refresh', { refresh_token: 'r', mode: 'json', pad }],
    ['/auth/logout', { refresh_token: 'r', mode: 'json', pad }]
  ] as const) {
    const response = await app.inject({ method: 'POST', url, payload })
    t.equal(response.statusCode, 413, url)
    t.same(response.json(), problem('Request body is too large'), url)
  }
  // The largest login the bounds allow, every character escaped, still fits.
  const escaped = (text: string) => text.replace(/./g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  const email = `${'a'.repeat(242)}@example.com`
  const payload = `{"email":"${escaped(email)}","password":"${escaped('p'.repeat(1024))}","otp":"123456","mode":"session"}`
  t.ok(payload.length < 16 * 1024 && payload.length > 7 * 1024, `${payload.length} B`)
  const largest = await app.inject({ method: 'POST', url: '/auth/login', payload, headers: { 'content-type': 'application/json' } })
  t.equal(largest.statusCode, 401, 'checked: a wrong password')
})

t.test('an email over 254 characters or a password over 1024 is 400 naming it, uncounted; at the bounds it is checked', async t => {
  const { app } = await build(t, { users: [admin], authRoutes: true }, silent)
  const login = (email: string, password: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } })
  for (let i = 0; i < 12; i++) {
    const tooLongEmail = await login(longEmail, 'wrong')
    t.same([tooLongEmail.statusCode, tooLongEmail.json()], [400, problem('"email" must be at most 254 characters.')])
    const tooLongPassword = await login(admin.email, longPassword)
    t.same([tooLongPassword.statusCode, tooLongPassword.json()], [400, problem('"password" must be at most 1024 characters.')])
  }
  // 24 refusals from one address for one email counted nothing: the right password still logs in.
  t.equal((await login(admin.email, admin.password)).statusCode, 200)
  t.equal((await login(longEmail.slice(1), 'p'.repeat(1024))).statusCode, 401, 'at the bounds: checked')
})

t.test('a socket\'s auth message over the bounds: INVALID_PAYLOAD naming the field after the handshake, AUTH_FAILED in it, uncounted', async t => {
  const { url } = await build(t, { users: [admin], rest: { auth: 'public', handlers: {} } }, silent)
  const client = await connect(url('/websocket'))
  for (let i = 0; i < 12; i++) {
    client.send({ type: 'auth', email: longEmail, password: 'wrong', uid: i })
    t.same(await client.next(), { type: 'auth', status: 'error', error: { code: 'INVALID_PAYLOAD', message: '"email" must be at most 254 characters.' }, uid: i })
    client.send({ type: 'auth', email: admin.email, password: longPassword, uid: i })
    t.same(await client.next(), { type: 'auth', status: 'error', error: { code: 'INVALID_PAYLOAD', message: '"password" must be at most 1024 characters.' }, uid: i })
  }
  client.send({ type: 'auth', email: admin.email, password: admin.password, uid: 'right' })
  t.match(await client.next(), { type: 'auth', status: 'ok', uid: 'right' }, 'nothing was counted')
  await client.close()

  const { url: handshakeUrl } = await build(t, { users: [admin] }, silent)
  const handshake = await connect(handshakeUrl('/websocket'))
  handshake.send({ type: 'auth', email: admin.email, password: longPassword })
  t.same(await handshake.next(), { type: 'auth', status: 'error', error: { code: 'AUTH_FAILED', message: 'Authentication handshake failed.' } })
  t.equal((await handshake.closed).code, 4401)
})

t.test('the bounds hold on every path: the app\'s login(), and an email within them that NFKC makes longer, refused unchecked and uncounted', async t => {
  const { handed, verifyCredentials } = adminLookup()
  const { app, url } = await build(t, { verifyCredentials, authRoutes: true }, silent)
  // 253 U+FDFA and `@a`: 255 characters, 4,556 once normalised (18 each).
  const expanding = `${'\ufdfa'.repeat(253)}@a`
  t.ok(expanding.length > 254, 'over the bound as sent, for login()')
  const withinAsSent = `${'\ufdfa'.repeat(13)}@example.com${'a'.repeat(9)}` // 34 characters, 255 once normalised
  const invalid = { code: 'INVALID_CREDENTIALS', statusCode: 401 }
  for (let i = 0; i < 12; i++) {
    await t.rejects(app.realtime.login({ email: longEmail, password: 'wrong' }), invalid, 'an email over 254')
    await t.rejects(app.realtime.login({ email: admin.email, password: longPassword }), invalid, 'a password over 1024')
    await t.rejects(app.realtime.login({ email: expanding, password: 'wrong' }), invalid, 'an email NFKC makes 4,556 long')
    await t.rejects(app.realtime.login({ email: withinAsSent, password: 'wrong' }), invalid, 'within the bound as sent, over it once normalised')
    const response = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: withinAsSent, password: 'wrong' } })
    t.same([response.statusCode, response.json()], [401, { errors: [{ message: 'Invalid user credentials.', extensions: { code: 'INVALID_CREDENTIALS' } }] }])
  }
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', email: withinAsSent, password: 'wrong' })
  t.same(await client.next(), { type: 'auth', status: 'error', error: { code: 'AUTH_FAILED', message: 'Authentication handshake failed.' } })
  t.equal((await client.closed).code, 4401)
  t.same(handed, [], 'verifyCredentials was handed none of them')
  // 61 refusals counted nothing: the right password still logs in, through login() and the route.
  t.type((await app.realtime.login(admin)).access_token, 'string')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })).statusCode, 200)
  t.same(handed, [admin.email, admin.email])
})
