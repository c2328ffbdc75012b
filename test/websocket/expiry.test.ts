// Expiry, revocation and the re-auth window on /websocket (PROTOCOL.md section 4).
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import type { RealtimeConnection, RealtimeMessage } from '../../lib/index.js'
import { admin, build, connect, fakeClock, type Client } from '../helpers.js'

const whoami = { whoami: (_m: RealtimeMessage, c: RealtimeConnection) => c.send({ type: 'whoami', user: c.accountability.user }) }
const tokenExpired = { type: 'auth', status: 'error', error: { code: 'TOKEN_EXPIRED', message: 'Token expired.' } }
const sessionRevoked = { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } }
const authTimedOut = { type: 'auth', status: 'error', error: { code: 'AUTH_TIMEOUT', message: 'Authentication timed out.' } }

/** A token for `user` that expires in one to two seconds (exp is in whole seconds), on the test's fake clock. */
function shortToken (app: FastifyInstance, user: string) {
  const exp = Math.floor(Date.now() / 1000) + 2
  return { token: app.realtime.jwt.sign({ id: user, exp }), exp }
}

t.test('at exp, TOKEN_EXPIRED arrives to the second and the socket drops to public', async t => {
  const clock = fakeClock(t)
  const { app, url } = await build(t, { rest: { handlers: whoami } })
  const { token, exp } = shortToken(app, 'u1')
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: token })
  t.same(await client.next(), { type: 'auth', status: 'ok' })
  clock.tick(exp * 1000 - Date.now() - 1)
  client.send({ type: 'ping', uid: 'before-exp' })
  t.same(await client.next(), { type: 'pong', uid: 'before-exp' }, 'nothing a millisecond before exp')
  clock.tick(1)
  t.same(await client.next(), tokenExpired)
  t.ok(Date.now() >= exp * 1000, 'not before exp')
  client.send({ type: 'whoami' })
  t.same(await client.next(), { type: 'whoami', user: null }, 'public in the re-auth window')
  client.send({ type: 'ping', uid: 'after-expiry' })
  t.same(await client.next(), { type: 'pong', uid: 'after-expiry' })
  await client.close()
})

t.test('without re-auth in the window: AUTH_TIMEOUT and 4408', async t => {
  const clock = fakeClock(t)
  const { app, url } = await build(t, { rest: { authTimeout: 0.2 } })
  const client = await connect(url('/websocket'))
  const { token, exp } = shortToken(app, 'u1')
  client.send({ type: 'auth', access_token: token })
  await client.next()
  clock.tick(exp * 1000 - Date.now())
  t.same(await client.next(), tokenExpired)
  clock.tick(200)
  t.same(await client.next(), authTimedOut)
  t.equal((await client.closed).code, 4408)
})

t.test('re-auth in the window restores an identity and a new expiry, again and again', async t => {
  const clock = fakeClock(t)
  const { app, url } = await build(t, { rest: { handlers: whoami, authTimeout: 5 }, users: [admin], accessTokenTtl: 1000 })
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', email: admin.email, password: admin.password })
  let { refresh_token: refreshToken } = await client.next() as { refresh_token: string }
  for (let round = 0; round < 2; round++) {
    clock.tick(1_000) // the token's lifetime
    t.same(await client.next(), tokenExpired, `round ${round}: expired`)
    client.send({ type: 'auth', refresh_token: refreshToken, uid: 're' })
    const ok = await client.next() as { refresh_token: string }
    t.match(ok, { type: 'auth', status: 'ok', uid: 're', refresh_token: String })
    refreshToken = ok.refresh_token
    client.send({ type: 'whoami' })
    t.match(await client.next(), { type: 'whoami', user: String }, 'authenticated again')
  }
  clock.tick(1_000)
  t.same(await client.next(), tokenExpired, 'third expiry')
  client.send({ type: 'auth', access_token: app.realtime.jwt.sign({ id: 'long' }) })
  t.same(await client.next(), { type: 'auth', status: 'ok' })
  await client.close()
})

t.test('a failed re-auth in the window closes 4401', async t => {
  const clock = fakeClock(t)
  const { app, url } = await build(t)
  const client = await connect(url('/websocket'))
  const { token, exp } = shortToken(app, 'u1')
  client.send({ type: 'auth', access_token: token })
  await client.next()
  clock.tick(exp * 1000 - Date.now())
  t.same(await client.next(), tokenExpired)
  client.send({ type: 'auth', access_token: 'bad', uid: 'x' })
  t.match(await client.next(), { error: { code: 'AUTH_FAILED', message: 'Authentication failed.' }, uid: 'x' })
  t.equal((await client.closed).code, 4401)
})

/** Asks for the socket's user: the answer also shows the socket is still open, and what came before it. */
async function whoIs (client: Client): Promise<unknown> {
  client.send({ type: 'whoami' })
  return client.next()
}

/** A socket authenticated by email and password, so that its session can be revoked. */
async function loggedIn (path: string, url: (path: string) => string): Promise<Client> {
  const client = await connect(url(path))
  client.send({ type: 'auth', email: admin.email, password: admin.password })
  await client.next()
  return client
}

t.test('public mode: TOKEN_EXPIRED, then AUTH_TIMEOUT once the window passes, and the socket stays open as public', async t => {
  const clock = fakeClock(t)
  const { app, url } = await build(t, { rest: { auth: 'public', handlers: whoami, authTimeout: 0.1 } })
  const client = await connect(url('/websocket'))
  const { token, exp } = shortToken(app, 'u1')
  client.send({ type: 'auth', access_token: token })
  t.same(await client.next(), { type: 'auth', status: 'ok' })
  clock.tick(exp * 1000 - Date.now())
  t.same(await client.next(), tokenExpired)
  clock.tick(100)
  t.same(await client.next(), authTimedOut, 'the window ran out')
  t.same(await whoIs(client), { type: 'whoami', user: null }, 'open, public, and no close came with it')
  client.send({ type: 'auth', access_token: app.realtime.jwt.sign({ id: 'back' }) })
  t.same(await client.next(), { type: 'auth', status: 'ok' }, 'it may still authenticate')
  t.same(await whoIs(client), { type: 'whoami', user: 'back' })
  await client.close()
})

t.test('public mode: AUTH_REVOKED, then AUTH_TIMEOUT, on /websocket and /websocket/logs alike', async t => {
  const { app, url } = await build(t, {
    users: [admin],
    rest: { auth: 'public', handlers: whoami, authTimeout: 0.1 },
    logs: { auth: 'public', authTimeout: 0.1 }
  })
  const rest = await loggedIn('/websocket', url)
  const logs = await loggedIn('/websocket/logs', url)
  const { user } = await whoIs(rest) as { user: string }
  await app.realtime.revokeUser(user)
  for (const client of [rest, logs]) {
    t.same(await client.next(), sessionRevoked)
    t.same(await client.next(), authTimedOut)
    client.send({ type: 'ping', uid: 'still-open' })
    t.same(await client.next(), { type: 'pong', uid: 'still-open' })
  }
  t.same(await whoIs(rest), { type: 'whoami', user: null })
  logs.send({ type: 'subscribe', log_level: 'info' })
  t.match(await logs.next(), { type: 'subscribe', error: { code: 'FORBIDDEN' } }, 'public: no admin any more')
  await Promise.all([rest.close(), logs.close()])
})

t.test('public mode: an auth message inside the window ends it, accepted or refused: no AUTH_TIMEOUT', async t => {
  const { app, url } = await build(t, { users: [admin], rest: { auth: 'public', handlers: whoami, authTimeout: 0.1 } })
  const accepted = await loggedIn('/websocket', url)
  const refused = await loggedIn('/websocket', url)
  const { user } = await whoIs(accepted) as { user: string }
  // Nothing on the wire tells that a window ended unheard: the windows' clock is a fake one, from before they open.
  const clock = fakeClock(t, ['setTimeout', 'clearTimeout', 'performance'])
  await app.realtime.revokeUser(user)
  t.same(await accepted.next(), sessionRevoked)
  t.same(await refused.next(), sessionRevoked)
  accepted.send({ type: 'auth', access_token: app.realtime.jwt.sign({ id: 'again' }), uid: 'a' })
  t.same(await accepted.next(), { type: 'auth', status: 'ok', uid: 'a' })
  refused.send({ type: 'auth', access_token: 'bad', uid: 'r' })
  t.same(await refused.next(), { type: 'auth', status: 'error', error: { code: 'AUTH_FAILED', message: 'Authentication failed.' }, uid: 'r' })
  clock.tick(1_000) // ten windows' time
  clock.uninstall()
  t.same(await whoIs(accepted), { type: 'whoami', user: 'again' }, 'nothing came before the answer')
  t.same(await whoIs(refused), { type: 'whoami', user: null }, 'nothing came before the answer, and it stays open')
  await Promise.all([accepted.close(), refused.close()])
})

t.test('public mode: a window that no auth message ends is told even when another ended early', async t => {
  const { app, url } = await build(t, { users: [admin], rest: { auth: 'public', handlers: whoami, authTimeout: 0.1 } })
  const early = await loggedIn('/websocket', url)
  const late = await loggedIn('/websocket', url)
  const { user } = await whoIs(early) as { user: string }
  await app.realtime.revokeUser(user)
  t.same(await early.next(), sessionRevoked)
  early.send({ type: 'auth', access_token: app.realtime.jwt.sign({ id: 'again' }) })
  t.same(await early.next(), { type: 'auth', status: 'ok' })
  t.same(await late.next(), sessionRevoked)
  t.same(await late.next(), authTimedOut)
  t.same(await whoIs(early), { type: 'whoami', user: 'again' })
  await Promise.all([early.close(), late.close()])
})

t.test('a URL token expires like any other', async t => {
  const clock = fakeClock(t)
  const { app, url } = await build(t, { rest: { authTimeout: 0.2 } })
  const { token, exp } = shortToken(app, 'u1')
  const client = await connect(url(`/websocket?access_token=${token}`))
  clock.tick(exp * 1000 - Date.now())
  t.same(await client.next(), tokenExpired)
  clock.tick(200)
  t.same(await client.next(), authTimedOut)
  t.equal((await client.closed).code, 4408)
})

t.test('a token without exp never expires the socket', async t => {
  const { app, url } = await build(t, { rest: { handlers: whoami } })
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: app.realtime.jwt.sign({ id: 'forever' }, { expiresIn: undefined }) })
  t.same(await client.next(), { type: 'auth', status: 'ok' })
  client.send({ type: 'whoami' })
  t.same(await client.next(), { type: 'whoami', user: 'forever' })
  await client.close()
})

t.test('a deadline beyond what one timer can hold is reached in hops', async t => {
  const clock = fakeClock(t)
  const { app, url } = await build(t, { rest: { handlers: whoami } })
  const exp = Math.floor(Date.now() / 1000) + 60 * 60 * 24 * 365
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: app.realtime.jwt.sign({ id: 'far', exp }) })
  t.same(await client.next(), { type: 'auth', status: 'ok' })
  client.send({ type: 'whoami' })
  t.same(await client.next(), { type: 'whoami', user: 'far' })
  clock.tick(exp * 1000 - Date.now() - 1) // fifteen timers' longest
  client.send({ type: 'whoami' })
  t.same(await client.next(), { type: 'whoami', user: 'far' }, 'a millisecond before exp, a year on')
  clock.tick(1)
  t.same(await client.next(), tokenExpired)
  await client.close()
})

t.test('logout revokes the session: AUTH_REVOKED, public, re-auth window; its tokens are refused', async t => {
  const clock = fakeClock(t)
  const { app, url } = await build(t, { rest: { handlers: whoami, authTimeout: 0.3 }, users: [admin], authRoutes: true })
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  const { access_token: accessToken, refresh_token: refreshToken } = login.json().data
  const byToken = await connect(url('/websocket'))
  byToken.send({ type: 'auth', access_token: accessToken })
  await byToken.next()
  const byUrl = await connect(url(`/websocket?access_token=${accessToken}`))
  const other = await connect(url('/websocket'))
  other.send({ type: 'auth', email: admin.email, password: admin.password })
  await other.next()

  const logout = await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: refreshToken } })
  t.equal(logout.statusCode, 204)
  t.same(await byToken.next(), sessionRevoked)
  t.same(await byUrl.next(), sessionRevoked)
  byToken.send({ type: 'whoami' })
  t.same(await byToken.next(), { type: 'whoami', user: null })
  clock.tick(300)
  t.same(await byToken.next(), authTimedOut)
  t.equal((await byToken.closed).code, 4408)

  const again = await connect(url('/websocket'))
  again.send({ type: 'auth', access_token: accessToken })
  t.match(await again.next(), { error: { code: 'AUTH_FAILED' } }, 'the session\'s access token is refused')
  other.send({ type: 'whoami' })
  t.match(await other.next(), { type: 'whoami', user: String }, 'another session is untouched')
  await Promise.all([other.close(), byUrl.closed])
})

t.test('revokeUser ends every session of the user, and the sockets of its tokens issued elsewhere (no sid)', async t => {
  const { app, url } = await build(t, { rest: { auth: 'public', handlers: whoami }, users: [admin] })
  const a = await connect(url('/websocket'))
  a.send({ type: 'auth', email: admin.email, password: admin.password })
  await a.next()
  a.send({ type: 'whoami' })
  const { user } = await a.next() as { user: string }
  const foreign = await connect(url('/websocket'))
  foreign.send({ type: 'auth', access_token: app.realtime.jwt.sign({ id: user }) })
  await foreign.next()

  await app.realtime.revokeUser(user)
  t.same(await a.next(), sessionRevoked)
  t.same(await foreign.next(), sessionRevoked, 'no sid: revoked all the same')
  await Promise.all([a.close(), foreign.close()])
})
