// Registrations of the plugin in one process without Redis (two tenants, two prefixes of one app) that verify with one
// key take each other's tokens, so they share one set of revocations: a logout or revocation at one reaches the other's
// sockets and tokens. With a key each, nothing is shared.
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import realtime, { type Identity, type RealtimeOptions } from '../../lib/index.js'
import { admin, build, connect, directoryOf, fakeClock, refusedWith, secret, whoami, within, type Client } from '../helpers.js'

const sessionRevoked = { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } }
const upgradeRefused = { status: 401, body: JSON.stringify({ errors: [{ message: 'Authentication failed.', extensions: { code: 'AUTH_FAILED' } }] }) }
const alice: Identity = { user: 'alice', role: 'editor', admin: false }

const next = (client: Client, what: string) => within(client.next(), what)

async function whoIs (client: Client, uid: string): Promise<unknown> {
  client.send({ type: 'whoami', uid })
  return next(client, 'the whoami answer')
}

/** A socket at `url` authenticated at the upgrade with `token`, and the user it holds. */
async function opened (url: string, token: string): Promise<{ client: Client, user: unknown }> {
  const client = await connect(`${url}?access_token=${token}`)
  const { user } = await whoIs(client, 'first') as { user: unknown }
  return { client, user }
}

/** The socket is told AUTH_REVOKED before anything sent after it, and is public from then on. */
async function revoked (t: Test, client: Client, what: string): Promise<void> {
  client.send({ type: 'whoami', uid: 'after' })
  t.same(await next(client, 'AUTH_REVOKED'), sessionRevoked, `${what}: AUTH_REVOKED`)
  t.same(await next(client, 'the whoami answer'), { type: 'whoami', uid: 'after', user: null }, `${what}: no user any more`)
}

const post = (url: string, body: object) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

const httpOf = (app: FastifyInstance) => `http://127.0.0.1:${(app.server.address() as { port: number }).port}`

async function login (t: Test, base: string): Promise<{ access_token: string, refresh_token: string }> {
  const response = await post(`${base}/auth/login`, { email: admin.email, password: admin.password })
  t.equal(response.status, 200, 'logged in')
  return (await response.json() as { data: { access_token: string, refresh_token: string } }).data
}

const tenant: RealtimeOptions = { users: [admin], authRoutes: true, rest: { handlers: { whoami } } }

t.test('one secret, two apps: a logout at one ends the token\'s sockets at the other, which refuses it afterwards', async t => {
  const clock = fakeClock(t, ['Date'])
  const a = await build(t, tenant)
  const b = await build(t, tenant)
  // Signed in a later second than either started: each takes it, whatever revocations it knows.
  clock.tick(1_000)
  const tokens = await login(t, httpOf(a.app))
  const atB = await opened(b.url('/websocket'), tokens.access_token)
  t.not(atB.user, null, 'the other app takes the token (one secret)')

  t.equal((await post(`${httpOf(a.app)}/auth/logout`, { refresh_token: tokens.refresh_token })).status, 204, 'logged out at the first')
  await revoked(t, atB.client, 'the socket at the other app')
  t.same(await refusedWith(b.url(`/websocket?access_token=${tokens.access_token}`)), upgradeRefused, 'the other app refuses the token afterwards')
  await atB.client.close()
})

t.test('one secret, two apps: one started after a login takes its token, and a logout before it started is refused', async t => {
  const a = await build(t, tenant)
  const live = await login(t, httpOf(a.app))
  const ended = await login(t, httpOf(a.app))
  t.equal((await post(`${httpOf(a.app)}/auth/logout`, { refresh_token: ended.refresh_token })).status, 204, 'one logged out')
  // Its revocations begin with the first app's: a token signed before it started is no older than what it knows.
  const b = await build(t, tenant)
  const atB = await opened(b.url('/websocket'), live.access_token)
  t.not(atB.user, null, 'the live session\'s token is taken')
  t.same(await refusedWith(b.url(`/websocket?access_token=${ended.access_token}`)), upgradeRefused, 'the ended one\'s is refused')
  await atB.client.close()
})

t.test('one secret, two apps: revokeUser at one reaches the user\'s sockets at the other', async t => {
  const a = await build(t, { rest: { handlers: { whoami } } })
  const b = await build(t, { rest: { handlers: { whoami } } })
  const ownToken = b.app.realtime.signAccessToken(alice).access_token
  const othersToken = a.app.realtime.signAccessToken(alice).access_token
  const own = await opened(b.url('/websocket'), ownToken)
  const others = await opened(b.url('/websocket'), othersToken)
  t.equal(own.user, 'alice')

  await a.app.realtime.revokeUser('alice')
  await revoked(t, own.client, 'a socket with the other app\'s own token')
  await revoked(t, others.client, 'a socket with the first app\'s token')
  for (const token of [ownToken, othersToken]) {
    t.same(await refusedWith(b.url(`/websocket?access_token=${token}`)), upgradeRefused, 'refused at the other app afterwards')
  }
  await Promise.all([own.client.close(), others.client.close()])
})

t.test('one secret, one app, two prefixes: a logout under one ends the token\'s socket under the other', async t => {
  const clock = fakeClock(t, ['Date'])
  const app = Fastify()
  t.teardown(() => app.close())
  const users = await directoryOf([admin])
  for (const prefix of ['/a', '/b']) {
    await app.register(async (scope) => {
      const cookies = { session: { name: `${prefix.slice(1)}_session` }, refresh: { name: `${prefix.slice(1)}_refresh` } }
      await scope.register(realtime, { env: {}, secret, users, authRoutes: true, cookies, rest: { handlers: { whoami } }, prefix })
    })
  }
  await app.listen({ host: '127.0.0.1', port: 0 })
  clock.tick(1_000)
  const http = httpOf(app)
  const tokens = await login(t, `${http}/a`)
  const atB = await opened(`ws${http.slice(4)}/b/websocket`, tokens.access_token)
  t.not(atB.user, null, 'taken under the other prefix')

  t.equal((await post(`${http}/a/auth/logout`, { refresh_token: tokens.refresh_token })).status, 204, 'logged out under the first')
  await revoked(t, atB.client, 'the socket under the other prefix')
  t.same(await refusedWith(`ws${http.slice(4)}/b/websocket?access_token=${tokens.access_token}`), upgradeRefused, 'refused there afterwards')
  await atB.client.close()
})

/** One app's @fastify/jwt, and a registration under each prefix with `options` of its own; their APIs. */
async function underPrefixes (t: Test, options: Record<string, RealtimeOptions>): Promise<{ apis: FastifyInstance['realtime'][], ws: string }> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, { secret })
  const apis: FastifyInstance['realtime'][] = []
  for (const [prefix, own] of Object.entries(options)) {
    await app.register(async (scope) => {
      await scope.register(realtime, { env: {}, rest: { handlers: { whoami } }, prefix, ...own })
      apis.push(scope.realtime)
    })
  }
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { apis, ws: `ws${httpOf(app).slice(4)}` }
}

t.test('one app\'s @fastify/jwt for two registrations: what one revokes, the other refuses', async t => {
  const { apis, ws } = await underPrefixes(t, { '/a': {}, '/b': {} })
  const token = apis[0]!.signAccessToken(alice).access_token
  const atB = await opened(`${ws}/b/websocket`, token)
  t.equal(atB.user, 'alice')
  await apis[0]!.revokeUser('alice')
  await revoked(t, atB.client, 'the socket under the other prefix')
  await atB.client.close()
})

t.test('one app\'s @fastify/jwt, two registrations of two issuers: a session one ends is ended at the other', async t => {
  const clock = fakeClock(t, ['Date'])
  const { apis, ws } = await underPrefixes(t, { '/a': { issuer: 'tenant-a' }, '/b': { issuer: 'tenant-b' } })
  clock.tick(1_000)
  const token = apis[0]!.signAccessToken(alice, 'a-session').access_token
  const atB = await opened(`${ws}/b/websocket`, token)
  t.equal(atB.user, 'alice', 'the other registration takes the token (one key)')
  await apis[0]!.revokeSession('a-session')
  await revoked(t, atB.client, 'the socket under the other prefix')
  t.same(await refusedWith(`${ws}/b/websocket?access_token=${token}`), upgradeRefused, 'the other registration refuses the token afterwards')
  await atB.client.close()
})

t.test('one app\'s @fastify/jwt, two registrations: a user revoked at one is refused at the other as long as a provider\'s token seen there lives', async t => {
  const clock = fakeClock(t, ['Date'])
  const { apis, ws } = await underPrefixes(t, { '/a': { accessTokenTtl: '1m' }, '/b': { accessTokenTtl: '1m' } })
  const provider = Fastify()
  await provider.register(fastifyJwt, { secret })
  await provider.ready()
  const hourLong = provider.jwt.sign({ sub: 'alice', iss: 'https://id.example.com/' }, { expiresIn: '1h' })
  await provider.close()
  const atA = await opened(`${ws}/a/websocket`, hourLong)
  t.equal(atA.user, 'alice', 'the provider\'s token, shown under the first prefix')
  await apis[1]!.revokeUser('alice')
  await revoked(t, atA.client, 'its socket, revoked from the other registration')
  clock.tick(60_001)
  t.same(await refusedWith(`${ws}/a/websocket?access_token=${hourLong}`), upgradeRefused, 'refused past the revoking registration\'s access-token TTL')
  clock.tick(3_600_000 - 60_001 - 1_000)
  t.same(await refusedWith(`${ws}/b/websocket?access_token=${hourLong}`), upgradeRefused, 'at either prefix, to the token\'s end')
  await atA.client.close()
})

for (const issuers of [{}, { a: 'tenant-a', b: 'tenant-b' }] as const) {
  const of = (name: 'a' | 'b'): RealtimeOptions => 'a' in issuers ? { issuer: issuers[name] } : {}
  t.test(`one app's @fastify/jwt, two registrations ${'a' in issuers ? 'of two issuers' : 'of one issuer'} with access tokens of 1 m and 1 h: a user revoked at the first is refused the other's tokens for their hour`, async t => {
    const clock = fakeClock(t, ['Date'])
    const { apis, ws } = await underPrefixes(t, { '/a': { accessTokenTtl: '1m', ...of('a') }, '/b': { accessTokenTtl: '1h', ...of('b') } })
    const hourLong = apis[1]!.signAccessToken(alice).access_token
    await apis[0]!.revokeUser('alice')
    clock.tick(60_001)
    for (const prefix of ['/a', '/b']) {
      t.same(await refusedWith(`${ws}${prefix}/websocket?access_token=${hourLong}`), upgradeRefused, `${prefix}: refused past the revoking registration's TTL`)
    }
    clock.tick(3_600_000 - 60_001 - 1_000)
    t.same(await refusedWith(`${ws}/a/websocket?access_token=${hourLong}`), upgradeRefused, 'to the token\'s end')
  })
}

t.test('a secret each: a revocation at one is not seen at the other', async t => {
  const a = await build(t, { rest: { handlers: { whoami } } })
  const b = await build(t, { secret: `${secret}-of-the-other-tenant`, rest: { handlers: { whoami } } })
  const atA = await opened(a.url('/websocket'), a.app.realtime.signAccessToken(alice).access_token)
  const token = b.app.realtime.signAccessToken(alice).access_token
  const atB = await opened(b.url('/websocket'), token)
  t.same([atA.user, atB.user], ['alice', 'alice'])

  await a.app.realtime.revokeUser('alice')
  await revoked(t, atA.client, 'the socket at the app that revoked')
  t.same(await whoIs(atB.client, 'untouched'), { type: 'whoami', uid: 'untouched', user: 'alice' }, 'the other tenant\'s socket of a user of the same id keeps it')
  const again = await opened(b.url('/websocket'), token)
  t.equal(again.user, 'alice', 'and its token still opens sockets there')
  await Promise.all([atA.client.close(), atB.client.close(), again.client.close()])
})

t.test('one app\'s @fastify/jwt, two registrations of two issuers: the session cookie of one is no access token at the other, before its logout or after', async t => {
  const clock = fakeClock(t, ['Date'])
  const { ws } = await underPrefixes(t, {
    '/a': { issuer: 'tenant-a', users: await directoryOf([admin]), authRoutes: true },
    '/b': { issuer: 'tenant-b', cookies: { session: { name: 'b_session' }, refresh: { name: 'b_refresh' } } }
  })
  const http = `http${ws.slice(2)}`
  clock.tick(1_000)
  const login = await post(`${http}/a/auth/login`, { email: admin.email, password: admin.password, mode: 'session' })
  const cookie = login.headers.getSetCookie().find(line => line.startsWith('directus_session_token='))!.split(';')[0]!
  const sessionToken = cookie.slice(cookie.indexOf('=') + 1)
  t.same(await refusedWith(`${ws}/a/websocket?access_token=${sessionToken}`), upgradeRefused, 'its own registration takes it for no access token')
  t.same(await refusedWith(`${ws}/b/websocket?access_token=${sessionToken}`), upgradeRefused, 'nor does the other')
  const atB = await connect(`${ws}/b/websocket`)
  atB.send({ type: 'auth', access_token: sessionToken, uid: 'in-band' })
  t.match(await next(atB, 'the auth answer'), { type: 'auth', status: 'error', error: { code: 'AUTH_FAILED' }, uid: 'in-band' }, 'in an auth message either')
  await atB.close()

  const logout = await fetch(`${http}/a/auth/logout`, { method: 'POST', headers: { 'content-type': 'application/json', cookie }, body: JSON.stringify({ mode: 'session' }) })
  t.equal(logout.status, 204, 'logged out')
  // Past what the logout's revocation covers (an access token's life), well within the session token's day.
  clock.tick(60 * 60_000)
  t.same(await refusedWith(`${ws}/b/websocket?access_token=${sessionToken}`), upgradeRefused, 'the other refuses it once its session is over too')
})
