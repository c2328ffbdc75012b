// fastify.realtime.revokeUser for every token of the user, with a session or without (signAccessToken without a
// session id, the app's own jwt.sign): its sockets get AUTH_REVOKED, its tokens issued up to the revocation's second
// are refused for as long as they may live, on every process; and fastify.realtime.trusted, so that the app's HTTP routes
// refuse what the sockets refuse.
import { createHmac, randomUUID } from 'node:crypto'
import { createServer, type AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyJwt, { type FastifyJWTOptions } from '@fastify/jwt'
import { buildSchema } from 'graphql'
import realtime, { MemorySessionStore, type Identity, type PresentedToken, type RealtimeOptions, type RefreshSession, type RotateResult } from '../../lib/index.js'
import { admin, build, connect, directoryOf, fakeClock, recordCrashes, refusedWith, secret, stoppedDate, whoami, within, type Built, type Client } from '../helpers.js'
import FakeTimers from '@sinonjs/fake-timers'
import { Redis } from 'ioredis'
import { RedisServer } from '../redis-server.js'
import { RedisSessionStore } from '../../lib/stores/sessions/redis.js'
import { hashRefreshToken, newRefreshToken, newSessionId, readRefreshToken } from '../../lib/auth/refresh-tokens.js'

const protocol = 'graphql-transport-ws'
const sessionRevoked = { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } }
const handshakeFailed = { type: 'auth', status: 'error', error: { code: 'AUTH_FAILED', message: 'Authentication handshake failed.' } }
const authFailedBody = JSON.stringify({ errors: [{ message: 'Authentication failed.', extensions: { code: 'AUTH_FAILED' } }] })

const alice: Identity = { user: 'alice', role: 'editor', admin: false }
const bob: Identity = { user: 'bob', role: 'editor', admin: false }

const next = (client: Client, what: string) => within(client.next(), what)

/** An HS256 token with exactly these claims, as another issuer may sign it (fast-jwt's signer rounds `iat` down). */
function signedAsIs (claims: object): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const input = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
}

/** Asks for the socket's user; the answer also shows what arrived before it. */
async function whoIs (client: Client, uid: string): Promise<unknown> {
  client.send({ type: 'whoami', uid })
  return next(client, 'the whoami answer')
}

/** A socket authenticated by an auth message with `token`. */
async function authenticated (url: string, token: string): Promise<Client> {
  const client = await connect(url)
  client.send({ type: 'auth', access_token: token })
  const answer = await next(client, 'the auth answer')
  if ((answer as { status?: string }).status !== 'ok') throw new Error(`not authenticated: ${JSON.stringify(answer)}`)
  return client
}

/** A new socket's handshake with `token` is refused as a bad credential, and the socket closed 4401. */
async function refusedOnAuth (t: Test, url: string, token: string, what: string): Promise<void> {
  const client = await connect(url)
  client.send({ type: 'auth', access_token: token })
  t.same(await next(client, 'the auth answer'), handshakeFailed, `${what}: refused in an auth message`)
  t.equal((await within(client.closed, 'the close')).code, 4401, `${what}: closed 4401`)
}

const upgradeRefused = { status: 401, body: authFailedBody }

t.test('revokeUser revokes the sockets of tokens without a session, and refuses those tokens afterwards', async t => {
  const { app, url } = await build(t, { rest: { handlers: { whoami }, authTimeout: 5 } })
  const signed = app.realtime.signAccessToken(alice).access_token
  t.equal(app.realtime.jwt.decode<{ sid?: string }>(signed)!.sid, undefined, 'a token without a session')
  const own = app.realtime.jwt.sign({ id: 'alice' })
  const bobs = app.realtime.signAccessToken(bob).access_token

  const bySigned = await authenticated(url('/websocket'), signed)
  const byOwn = await authenticated(url('/websocket'), own)
  const byUrl = await connect(url(`/websocket?access_token=${signed}`))
  const bobSocket = await authenticated(url('/websocket'), bobs)

  await app.realtime.revokeUser('alice')
  for (const [client, what] of [[bySigned, 'signAccessToken'], [byOwn, 'the app\'s jwt.sign'], [byUrl, 'at the upgrade']] as const) {
    client.send({ type: 'whoami', uid: 'after' })
    t.same(await next(client, 'AUTH_REVOKED'), sessionRevoked, `${what}: AUTH_REVOKED, before anything sent after the revocation`)
    t.same(await next(client, 'the whoami answer'), { type: 'whoami', uid: 'after', user: null }, `${what}: public now`)
  }
  t.same(await whoIs(bobSocket, 'bob'), { type: 'whoami', uid: 'bob', user: 'bob' }, 'another user\'s socket is untouched')

  for (const [token, what] of [[signed, 'signAccessToken'], [own, 'the app\'s jwt.sign']] as const) {
    await refusedOnAuth(t, url('/websocket'), token, what)
    t.same(await refusedWith(url(`/websocket?access_token=${token}`)), upgradeRefused, `${what}: 401 at the upgrade`)
  }
  // The revoked socket, in its re-auth window, cannot come back with its old token either.
  bySigned.send({ type: 'auth', access_token: signed, uid: 'back' })
  t.same(await next(bySigned, 'the auth answer'), {
    type: 'auth', status: 'error', error: { code: 'AUTH_FAILED', message: 'Authentication failed.' }, uid: 'back'
  })
  t.equal((await within(bySigned.closed, 'the close')).code, 4401)

  const bobAgain = await authenticated(url('/websocket'), bobs)
  t.same(await whoIs(bobAgain, 'b2'), { type: 'whoami', uid: 'b2', user: 'bob' }, 'another user\'s token works on a new socket')
  await Promise.all([byOwn, byUrl, bobSocket, bobAgain].map(client => client.close()))
})

/** A memory store that answers endUser only once released: a revokeUser's revocation is in force, its sessions not ended. */
function slowToEndUsers (): { sessionStore: MemorySessionStore, release: () => void } {
  let release!: () => void
  const answered = new Promise<void>(resolve => { release = resolve })
  class SlowStore extends MemorySessionStore {
    override async endUser (user: string, deadline: number): Promise<string[]> {
      await answered
      return super.endUser(user, deadline)
    }
  }
  return { sessionStore: new SlowStore(), release }
}

t.test('revokeUser reaches the user\'s sockets before the session store has ended their sessions', async t => {
  // The revocation must not wait for the store (a round trip per session, once).
  const { sessionStore, release } = slowToEndUsers()
  const { app, url } = await build(t, { sessionStore, rest: { handlers: { whoami } } })
  const client = await authenticated(url('/websocket'), app.realtime.signAccessToken(alice).access_token)
  const revoked = app.realtime.revokeUser('alice')
  t.same(await next(client, 'AUTH_REVOKED'), sessionRevoked, 'revoked while the store has not answered')
  release()
  await revoked
  await client.close()
})

t.test('a login or refresh whose process stalls between its store write and its signing, while revokeUser ends its session: its token is refused', async t => {
  // Only the Date is fake: the stall is the test's to make as long as it likes, sockets and timers run in real time.
  const clock = fakeClock(t, ['Date'])
  let stall: { reached: () => void, over: Promise<void> } | null = null
  const stalled = async () => {
    if (!stall) return
    stall.reached()
    await stall.over
  }
  class StallingStore extends MemorySessionStore {
    override async create (session: RefreshSession, deadline: number): Promise<string[]> {
      const ended = await super.create(session, deadline)
      await stalled()
      return ended
    }

    override async rotate (token: PresentedToken, nextTokenHash: string, expiresAt: number, deadline: number): Promise<RotateResult> {
      const rotated = await super.rotate(token, nextTokenHash, expiresAt, deadline)
      await stalled()
      return rotated
    }
  }
  const sessionStore = new StallingStore()
  const { app, url } = await build(t, { sessionStore, users: [admin], authRoutes: true, rest: { handlers: { whoami } } })
  const loggedIn = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  const { access_token: first, refresh_token: refreshToken } = loggedIn.json().data
  const user = app.realtime.jwt.decode<{ id: string }>(first)!.id
  const requests = {
    refresh: () => app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refreshToken } }),
    login: () => app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  }
  for (const [what, request] of Object.entries(requests)) {
    let release!: () => void
    const reached = new Promise<void>(resolve => { stall = { reached: resolve, over: new Promise(resolve => { release = resolve }) } })
    const answer = request()
    await reached
    stall = null
    await app.realtime.revokeUser(user)
    clock.tick(2_000) // the process stalls past the revocation's second, and the next
    release()
    const response = await answer
    // A login: its user was revoked after its credential check began, it makes no session (see the test below). A
    // refresh: its session's login began before the revocation, which ended it.
    t.equal(response.statusCode, 401, `${what}: refused`)
  }
  // A session an earlier build made (a UUIDv4 says not when its login began) refreshes: its token, issued as of before
  // the store's write, is refused by the revocation the process did not wait for, however long the stall.
  clock.tick(1_000)
  const earlier = newRefreshToken(randomUUID())
  await sessionStore.create({ id: readRefreshToken(earlier)!.sessionId, identity: { user, role: admin.role, admin: true }, tokenHash: hashRefreshToken(earlier), expiresAt: Date.now() + 60_000 }, Date.now() + 1_000)
  {
    let release!: () => void
    const reached = new Promise<void>(resolve => { stall = { reached: resolve, over: new Promise(resolve => { release = resolve }) } })
    const answer = app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: earlier } })
    await reached
    stall = null
    await app.realtime.revokeUser(user)
    clock.tick(2_000)
    release()
    const response = await answer
    t.equal(response.statusCode, 200, "an earlier build's session: answered with tokens")
    await refusedOnAuth(t, url('/websocket'), response.json().data.access_token, "an earlier build's session: its access token")
  }
  // Without a revocation, a refresh that stalled so answers with tokens living as long as `expires` says, from its answer.
  clock.tick(1_000)
  const relogged = (await requests.login()).json().data.refresh_token
  let release!: () => void
  const reached = new Promise<void>(resolve => { stall = { reached: resolve, over: new Promise(resolve => { release = resolve }) } })
  const answer = app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: relogged } })
  await reached
  stall = null
  clock.tick(2_000)
  release()
  const response = await answer
  t.equal(response.statusCode, 200, 'a refresh stalled without a revocation: answered with tokens')
  const { access_token: accessToken, expires } = response.json().data
  t.ok(app.realtime.jwt.decode<{ exp: number }>(accessToken)!.exp * 1000 > Date.now() + expires - 1_000, 'living from its answer')
})

t.test('a login whose password check runs while revokeUser ends the user (a password changed, then revoked everywhere): no session, 401', async t => {
  const clock = fakeClock(t, ['Date'])
  let release: (() => void) | null = null
  let reached!: () => void
  const checking = new Promise<void>(resolve => { reached = resolve })
  const sessionStore = new MemorySessionStore()
  const { app } = await build(t, {
    sessionStore,
    authRoutes: true,
    verifyCredentials: async ({ email }) => {
      if (release === null) {
        reached()
        await new Promise<void>(resolve => { release = resolve })
      }
      return { user: email, role: null, admin: false }
    }
  })
  const answer = app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'u1', password: 'old password' } })
  await checking
  await app.realtime.revokeUser('u1')
  clock.tick(2_000) // the check ends seconds after the revocation
  release!()
  const response = await answer
  t.same([response.statusCode, response.json().errors[0].extensions.code], [401, 'INVALID_CREDENTIALS'], 'refused')
  t.same(await sessionStore.endUser('u1', Date.now() + 1000), [], 'and no session of it is left')
  const after = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'u1', password: 'new password' } })
  t.equal(after.statusCode, 200, 'a login begun after the revocation works')
})

t.test('a login right after revokeUser, in the same second (a password changed, then revoked, then the new one used): its token works', async t => {
  const clock = stoppedDate(t, 900) // 100 ms into a second
  const { app, url } = await build(t, { users: [admin], authRoutes: true, rest: { handlers: { whoami } } })
  const user = app.realtime.jwt.decode<{ id: string }>((await app.inject({ method: 'POST', url: '/auth/login', payload: admin })).json().data.access_token)!.id
  await app.realtime.revokeUser(user)
  clock.tick(300)
  const response = await app.inject({ method: 'POST', url: '/auth/login', payload: admin })
  t.equal(response.statusCode, 200, 'the login')
  const token = response.json().data.access_token
  const client = await authenticated(url('/websocket'), token)
  // An AUTH_REVOKED the socket was told as it took the token would come before the answer.
  t.same(await whoIs(client, 'w1'), { type: 'whoami', uid: 'w1', user }, 'its access token is no revoked one: the socket keeps it')
  const byUrl = await connect(url(`/websocket?access_token=${token}`))
  t.same(await whoIs(byUrl, 'w2'), { type: 'whoami', uid: 'w2', user }, 'at the upgrade too')
  await Promise.all([client.close(), byUrl.close()])
})

t.test('revokeUser closes a sessionless GraphQL socket 4403', async t => {
  const { app, url } = await build(t, { graphql: { schema: buildSchema('type Query { hello: String }') } })
  const socket = await connect(url('/graphql'), { protocols: protocol })
  socket.send({ type: 'connection_init', payload: { access_token: app.realtime.signAccessToken(alice).access_token } })
  t.same(await next(socket, 'connection_ack'), { type: 'connection_ack' })
  const bobs = await connect(url(`/graphql?access_token=${app.realtime.signAccessToken(bob).access_token}`), { protocols: protocol })
  bobs.send({ type: 'connection_init' })
  t.same(await next(bobs, 'connection_ack'), { type: 'connection_ack' })
  await app.realtime.revokeUser('alice')
  t.same(await within(socket.closed, 'the 4403 close'), { code: 4403, reason: 'Forbidden' })
  bobs.send({ type: 'ping' })
  t.same(await next(bobs, 'pong'), { type: 'pong' }, 'another user\'s socket is open')
  await bobs.close()
})

t.test('a token of the user signed in a later second than the revocation works', async t => {
  // Only the Date is fake: the revocation's second and the tokens' `iat` are the test's to choose; sockets, timers
  // and the expiry clock run in real time.
  const clock = fakeClock(t, ['Date'])
  const { app, url } = await build(t, { rest: { handlers: { whoami }, authTimeout: 5 } })
  const before = app.realtime.signAccessToken(alice).access_token
  const client = await authenticated(url('/websocket'), before)
  client.send({ type: 'ping', uid: 'fake-date' })
  t.same(await next(client, 'pong'), { type: 'pong', uid: 'fake-date' }, 'sockets work under a fake Date')

  await app.realtime.revokeUser('alice')
  t.same(await next(client, 'AUTH_REVOKED'), sessionRevoked)
  // Signed by a process that had not heard of the revocation (the app's jwt.sign): signAccessToken here knows of it.
  const sameSecond = app.realtime.jwt.sign({ id: 'alice' })
  t.equal(app.realtime.jwt.decode<{ iat: number }>(sameSecond)!.iat, app.realtime.jwt.decode<{ iat: number }>(before)!.iat, 'the Date has not moved')
  await refusedOnAuth(t, url('/websocket'), sameSecond, 'signed after the revocation, in its second')
  // NumericDate may carry a fraction: the token was still issued in the revocation's second.
  const claims = app.realtime.jwt.decode<{ iat: number }>(before)!
  await refusedOnAuth(t, url('/websocket'), signedAsIs({ ...claims, iat: claims.iat + 0.5 }), 'an iat with a fraction, in its second')

  clock.tick(1_000)
  const later = app.realtime.signAccessToken(alice).access_token
  const laterOwn = app.realtime.jwt.sign({ id: 'alice' })
  client.send({ type: 'auth', access_token: later, uid: 'later' })
  t.same(await next(client, 'the auth answer'), { type: 'auth', status: 'ok', uid: 'later' }, 'the revoked socket comes back with a new token')
  t.same(await whoIs(client, 'w1'), { type: 'whoami', uid: 'w1', user: 'alice' })
  const byUrl = await connect(url(`/websocket?access_token=${later}`))
  t.same(await whoIs(byUrl, 'w2'), { type: 'whoami', uid: 'w2', user: 'alice' }, 'at the upgrade')
  const byOwn = await authenticated(url('/websocket'), laterOwn)
  t.same(await whoIs(byOwn, 'w3'), { type: 'whoami', uid: 'w3', user: 'alice' }, 'the app\'s own jwt.sign')
  t.same(await refusedWith(url(`/websocket?access_token=${before}`)), upgradeRefused, 'the old token stays refused')
  await Promise.all([client, byUrl, byOwn].map(socket => socket.close()))
})

t.test('a token from an issuer whose clock runs ahead (its iat later than now) is revoked all the same', async t => {
  const { app, url } = await build(t, { rest: { handlers: { whoami }, authTimeout: 5 } })
  const now = Math.floor(Date.now() / 1000)
  // fast-jwt's signer takes a payload's own `iat`: an issuer 30 s ahead, as a provider's clock may be.
  const ahead = app.realtime.jwt.sign({ id: 'alice', iat: now + 30 })
  const bobAhead = app.realtime.jwt.sign({ id: 'bob', iat: now + 30 })
  const client = await authenticated(url('/websocket'), ahead)
  const byUrl = await connect(url(`/websocket?access_token=${ahead}`))
  t.same(await whoIs(byUrl, 'w'), { type: 'whoami', uid: 'w', user: 'alice' }, 'accepted while its user is not revoked')

  await app.realtime.revokeUser('alice')
  for (const [socket, what] of [[client, 'by an auth message'], [byUrl, 'at the upgrade']] as const) {
    t.same(await next(socket, 'AUTH_REVOKED'), sessionRevoked, `${what}: its socket is revoked`)
  }
  await refusedOnAuth(t, url('/websocket'), ahead, 'the same token afterwards')
  t.same(await refusedWith(url(`/websocket?access_token=${ahead}`)), upgradeRefused, 'the same token afterwards: 401 at the upgrade')
  const bobs = await authenticated(url('/websocket'), bobAhead)
  t.same(await whoIs(bobs, 'b'), { type: 'whoami', uid: 'b', user: 'bob' }, 'another user\'s token from that issuer works')
  await Promise.all([client, byUrl, bobs].map(socket => socket.close()))
})

/** What a revocation lasts past the tokens it refuses: three store calls' time (3 s each), for a token signed late. */
const signedLate = 9_000

t.test('the user\'s older tokens are refused for one access-token TTL, and the time a token may be signed late', async t => {
  const clock = fakeClock(t, ['Date'])
  const { app, url } = await build(t, { accessTokenTtl: '1m', rest: { handlers: { whoami } } })
  // The app's own token, longer-lived than the plugin's: refused while the plugin's could still be out there.
  const longLived = app.realtime.jwt.sign({ id: 'alice' }, { expiresIn: '1h' })
  await app.realtime.revokeUser('alice')
  t.same(await refusedWith(url(`/websocket?access_token=${longLived}`)), upgradeRefused)
  clock.tick(59_999 + signedLate)
  t.same(await refusedWith(url(`/websocket?access_token=${longLived}`)), upgradeRefused, 'a millisecond before it is over')
  clock.tick(1)
  const client = await connect(url(`/websocket?access_token=${longLived}`))
  t.same(await whoIs(client, 'w'), { type: 'whoami', uid: 'w', user: 'alice' }, 'one TTL on, the revocation is forgotten')
  await client.close()
})

t.test('a provider\'s tokens living longer than the plugin\'s: a user\'s revocation lasts the longest life verified here, at most one refresh-token TTL', async t => {
  const clock = fakeClock(t, ['Date'])
  const app = Fastify()
  t.teardown(() => app.close())
  // The provider's key: the app's own @fastify/jwt, which takes any issuer.
  await app.register(fastifyJwt, { secret })
  await app.register(realtime, { env: {}, accessTokenTtl: '1m', refreshTokenTtl: '2h', rest: { handlers: { whoami } } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = (path: string) => `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}${path}`
  const provider = (user: string, expiresIn?: string) =>
    app.jwt.sign({ sub: user, iss: 'https://id.example.com/' }, expiresIn === undefined ? {} : { expiresIn })
  const seen = async (token: string, user: string) => {
    const client = await connect(url(`/websocket?access_token=${token}`))
    t.same(await whoIs(client, user), { type: 'whoami', uid: user, user }, `${user}'s token accepted`)
    await client.close()
  }

  // An hour-long token, shown once: the user's revocation outlives the plugin's 1 m TTL, to the token's end.
  const hourLong = provider('alice', '1h')
  await seen(hourLong, 'alice')
  await app.realtime.revokeUser('alice')
  clock.tick(60_001)
  t.same(await refusedWith(url(`/websocket?access_token=${hourLong}`)), upgradeRefused, 'past one access-token TTL, still refused')
  clock.tick(3_600_000 - 60_001 - 1_000)
  t.same(await refusedWith(url(`/websocket?access_token=${hourLong}`)), upgradeRefused, 'a second before the token\'s own end')

  // A token without exp (or of ten days) is held to the refresh-token TTL: the revocation lapses after 2 h.
  const endless = provider('bob')
  await seen(endless, 'bob')
  await app.realtime.revokeUser('bob')
  clock.tick(7_200_000 + signedLate - 1)
  t.same(await refusedWith(url(`/websocket?access_token=${endless}`)), upgradeRefused, 'a millisecond before one refresh-token TTL (and the time a token may be signed late)')
  clock.tick(1)
  await seen(endless, 'bob')

  // A token without `iat`: its life counts from when it is shown.
  const undated = app.jwt.sign({ sub: 'carol', iss: 'https://id.example.com/' }, { expiresIn: '3h', noTimestamp: true })
  await seen(undated, 'carol')
  await app.realtime.revokeUser('carol')
  clock.tick(7_200_000 - 1)
  t.same(await refusedWith(url(`/websocket?access_token=${undated}`)), upgradeRefused, 'refused up to one refresh-token TTL')
})

/**
 * An app with its own @fastify/jwt, registered first with the plugin's check as its `trusted`, the plugin, and a route
 * verifying the bearer token, as apps do.
 */
async function appWithRoutes (t: Test, options: RealtimeOptions = {}, jwtOptions: Partial<FastifyJWTOptions> = {}): Promise<Built> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, { secret, trusted: (request, claims) => app.realtime.trusted(request, claims), ...jwtOptions })
  await app.register(realtime, { env: {}, authRoutes: true, rest: { handlers: { whoami }, authTimeout: 5 }, users: await directoryOf([admin]), ...options })
  app.get('/me', async (request) => {
    await request.jwtVerify()
    return request.user
  })
  // The check on its own, on claims decoded without verifying them.
  app.get('/trusted', async (request) => {
    const claims = app.realtime.jwt.decode<Record<string, unknown>>(request.headers.authorization!.slice('Bearer '.length))!
    return { trusted: await app.realtime.trusted(request, claims) }
  })
  // Composed as a boolean, the check's promise is dropped: wrong (it must be awaited), but no crash.
  app.get('/composed', async (request) => {
    const claims = app.realtime.jwt.decode<Record<string, unknown>>(request.headers.authorization!.slice('Bearer '.length))!
    return { trusted: app.realtime.trusted(request, claims) && true }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  return { app, url: (path) => `ws://127.0.0.1:${port}${path}` }
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const me = (app: FastifyInstance, token: string) => app.inject({ url: '/me', headers: bearer(token) })
async function trusted (app: FastifyInstance, token: string): Promise<boolean> {
  return (await app.inject({ url: '/trusted', headers: bearer(token) })).json().trusted
}
async function login (t: Test, app: FastifyInstance) {
  const response = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  t.equal(response.statusCode, 200, 'logged in')
  return response.json().data as { access_token: string, refresh_token: string }
}
const untrusted = { statusCode: 401, code: 'FST_JWT_AUTHORIZATION_TOKEN_UNTRUSTED' }

t.test('the app\'s @fastify/jwt with fastify.realtime.trusted refuses, on its routes, a logged-out session\'s and a revoked user\'s tokens', async t => {
  const { app } = await appWithRoutes(t)
  const tokens = await login(t, app)
  const other = await login(t, app)
  const fresh = await me(app, tokens.access_token)
  t.equal(fresh.statusCode, 200, 'a fresh login token')
  t.match(fresh.json(), { id: String, sid: String })
  t.equal(await trusted(app, tokens.access_token), true)

  const logout = await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: tokens.refresh_token } })
  t.equal(logout.statusCode, 204)
  const loggedOut = await me(app, tokens.access_token)
  t.equal(loggedOut.statusCode, 401, 'the logged-out session\'s token')
  t.match(loggedOut.json(), untrusted)
  t.equal(await trusted(app, tokens.access_token), false)
  t.equal((await me(app, other.access_token)).statusCode, 200, 'another session of the same user')

  const sessionless = app.realtime.signAccessToken(alice).access_token
  const own = app.realtime.jwt.sign({ id: 'alice' })
  const bobs = app.realtime.signAccessToken(bob).access_token
  for (const token of [sessionless, own, bobs]) t.equal((await me(app, token)).statusCode, 200)
  await app.realtime.revokeUser('alice')
  for (const [token, what] of [[sessionless, 'signAccessToken'], [own, 'the app\'s jwt.sign']] as const) {
    const refused = await me(app, token)
    t.equal(refused.statusCode, 401, `${what}: a revoked user's token without a session`)
    t.match(refused.json(), untrusted)
    t.equal(await trusted(app, token), false)
  }
  t.equal((await me(app, bobs)).statusCode, 200, 'another user\'s token')
  t.equal(await trusted(app, bobs), true)
  t.equal((await me(app, other.access_token)).statusCode, 200, 'another user\'s session')
})

/** A session-mode login: the session token its cookie carries. */
async function sessionLogin (t: Test, app: FastifyInstance): Promise<string> {
  const response = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password, mode: 'session' } })
  t.equal(response.statusCode, 200, 'logged in, session mode')
  return response.cookies.find(cookie => cookie.name === 'directus_session_token')!.value
}
const sessionCookie = (token: string) => ({ cookie: `directus_session_token=${token}` })
const sessionRoute = (app: FastifyInstance, route: 'refresh' | 'logout', token: string) =>
  app.inject({ method: 'POST', url: `/auth/${route}`, payload: { mode: 'session' }, headers: sessionCookie(token) })
const cookieOf = (response: { cookies: Array<{ name: string, value: string }> }) =>
  response.cookies.find(cookie => cookie.name === 'directus_session_token')!.value

t.test('a replaced session cookie, within its grace, after a revokeUser whose store has not ended the session yet: no new cookie, and the session ends', async t => {
  const { sessionStore, release } = slowToEndUsers()
  const { app } = await build(t, { sessionStore, users: [admin], authRoutes: true })
  const first = await sessionLogin(t, app)
  const second = cookieOf(await sessionRoute(app, 'refresh', first))
  const user = app.realtime.jwt.decode<{ id: string }>(second)!.id
  const revoked = app.realtime.revokeUser(user)
  const again = await sessionRoute(app, 'refresh', first)
  t.same([again.statusCode, again.json().errors[0].extensions.code], [401, 'INVALID_CREDENTIALS'], 'the replaced cookie gets no new one')
  t.equal(again.cookies.find(cookie => cookie.name === 'directus_session_token' && cookie.value !== ''), undefined)
  const { sessionId } = readRefreshToken(app.realtime.jwt.decode<{ session: string }>(second)!.session)!
  t.same(await sessionStore.lookup({ sessionId, tokenHash: '' }), { status: 'unknown' }, 'the session has ended')
  release()
  await revoked
})

t.test('a session token lives as long as its session on the app\'s routes: refused once logged out, past any access-token TTL, and once replaced', async t => {
  // Only the Date is fake: a day-long session token outlives the logout's revocation (one access-token TTL).
  const clock = fakeClock(t, ['Date'])
  const { app, url } = await appWithRoutes(t, { accessTokenTtl: '1m' })
  const token = await sessionLogin(t, app)
  t.equal((await me(app, token)).statusCode, 200, 'a fresh session token')
  t.equal(await trusted(app, token), true)
  t.equal((await sessionRoute(app, 'logout', token)).statusCode, 204)
  t.match((await me(app, token)).json(), untrusted, 'logged out')
  clock.tick(61_000)
  t.match((await me(app, token)).json(), untrusted, 'still, past the access-token TTL that the logout\'s revocation lasts')
  t.equal(await trusted(app, token), false)

  // Replaced by a refresh: the old cookie is trusted on the app's routes for the refresh grace (10 s) and refused
  // after, the new one trusted, and the plugin's own routes then see the old one as reuse, which ends the session.
  const first = await sessionLogin(t, app)
  const refreshed = await sessionRoute(app, 'refresh', first)
  t.equal(refreshed.statusCode, 200, 'refreshed by the session cookie, with the app\'s `trusted` wired')
  const second = cookieOf(refreshed)
  t.equal((await me(app, first)).statusCode, 200, 'the replaced session token, within the grace')
  clock.tick(10_001)
  t.match((await me(app, first)).json(), untrusted, 'the replaced session token, past the grace')
  t.equal((await me(app, second)).statusCode, 200, 'its replacement')
  const socket = await connect(url('/websocket'), { headers: sessionCookie(second) })
  t.match(await whoIs(socket, 'w'), { type: 'whoami', uid: 'w', user: String }, 'the upgrade takes the current cookie')
  const reused = await sessionRoute(app, 'refresh', first)
  t.same([reused.statusCode, reused.json().errors[0].extensions.code], [401, 'INVALID_CREDENTIALS'], 'the replaced cookie, replayed')
  t.match((await me(app, second)).json(), untrusted, 'reuse ended the session: its current token too')
  t.same(await next(socket, 'AUTH_REVOKED'), sessionRevoked, 'and its socket')
  await socket.close()
})

/** A memory store whose lookups it counts, and which fails them while `down`. */
class FlakyStore extends MemorySessionStore {
  down = false
  lookups = 0
  override async lookup (token: Parameters<MemorySessionStore['lookup']>[0]) {
    this.lookups++
    if (this.down) throw new Error('store down')
    return super.lookup(token)
  }
}

t.test('a session token on the app\'s routes while the session store cannot answer: 503, and the plugin\'s own routes say so too', async t => {
  const crashes = recordCrashes(t)
  const store = new FlakyStore()
  const { app, url } = await appWithRoutes(t, { sessionStore: store })
  const token = await sessionLogin(t, app)
  const loggedOut = await sessionLogin(t, app)
  t.equal((await sessionRoute(app, 'logout', loggedOut)).statusCode, 204)
  const access = (await login(t, app)).access_token
  store.down = true
  const answer = await me(app, token)
  t.same([answer.statusCode, answer.json().code], [503, 'SERVICE_UNAVAILABLE'], 'the app\'s route')
  t.equal((await me(app, access)).statusCode, 200, 'an access token needs no store')
  const logout = await sessionRoute(app, 'logout', token)
  t.same([logout.statusCode, logout.json().errors[0].extensions.code], [503, 'SERVICE_UNAVAILABLE'], 'the plugin\'s logout')
  t.notOk(logout.cookies.some(cookie => cookie.name === 'directus_session_token'), 'which keeps the cookie')
  t.same(await refusedWith(url('/websocket'), { headers: sessionCookie(token) }), {
    status: 503, body: JSON.stringify({ errors: [{ message: 'Service unavailable.', extensions: { code: 'SERVICE_UNAVAILABLE' } }] })
  }, 'the upgrade with the session cookie')
  t.same(await refusedWith(url('/websocket'), { headers: sessionCookie(loggedOut) }), upgradeRefused,
    'a logged-out session cookie: refused (401) by its revocation, not sent to try again')
  t.equal((await app.inject({ url: '/composed', headers: bearer(token) })).statusCode, 200)
  await new Promise(resolve => setImmediate(resolve))
  t.same(crashes, [], 'a dropped answer rejects no promise unhandled')
  store.down = false
  t.equal((await me(app, token)).statusCode, 200, 'the session lived through the outage')
})

t.test('a session token offered as an access token is refused without asking the store', async t => {
  const store = new FlakyStore()
  const { app, url } = await appWithRoutes(t, { sessionStore: store })
  const token = await sessionLogin(t, app)
  store.lookups = 0
  await refusedOnAuth(t, url('/websocket'), token, 'a session token in an auth message')
  t.same(await refusedWith(url(`/websocket?access_token=${token}`)), upgradeRefused, 'and in the upgrade\'s URL')
  t.equal(store.lookups, 0, 'no lookup')
})

t.test('a process that has not loaded the revocations: a session cookie is untrusted on the app\'s routes, 503 on the plugin\'s', async t => {
  // Nothing listens on the port: the revocations never load.
  const port = await new Promise<number>(resolve => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
  const store = new MemorySessionStore()
  const { app } = await appWithRoutes(t, { redis: `redis://127.0.0.1:${port}`, sessionStore: store })
  const session = newSessionId()
  const refreshToken = newRefreshToken(session)
  const identity = { user: 'u1', role: null, admin: false }
  await store.create({ id: session, identity, tokenHash: hashRefreshToken(refreshToken), expiresAt: Date.now() + 60_000 }, Date.now() + 1_000)
  const claims = { id: 'u1', iss: app.realtime.jwt.decode<{ iss: string }>(app.realtime.signAccessToken(identity).access_token)!.iss }
  const token = app.realtime.jwt.sign({ ...claims, sid: session, session: refreshToken })
  t.match((await me(app, token)).json(), untrusted, 'the app\'s route: refused in the same turn, as before the store is asked')
  const logout = await sessionRoute(app, 'logout', token)
  t.equal(logout.statusCode, 503, 'the plugin\'s logout')
  t.notOk(logout.cookies.some(cookie => cookie.name === 'directus_session_token'), 'which keeps the cookie')
  t.equal((await me(app, app.realtime.jwt.sign(claims))).statusCode, 200, 'a token without a session is unaffected')
})

t.test('an app verifying with `complete: true` hands `trusted` the whole token: its claims are still checked', async t => {
  const { app } = await appWithRoutes(t, {}, { verify: { complete: true } })
  const own = app.realtime.jwt.sign({ id: 'alice' })
  t.match((await me(app, own)).json(), { payload: { id: 'alice' } }, 'the whole token')
  await app.realtime.revokeUser('alice')
  t.match((await me(app, own)).json(), untrusted, 'a revoked user\'s')
})

t.test('the trusted check refuses only ended sessions and revoked users: a token naming no user is the app\'s business', async t => {
  const { app } = await appWithRoutes(t)
  // Signed with the same @fastify/jwt for a purpose of the app's own: no `id` or `sub`, never a socket credential.
  const purpose = app.realtime.jwt.sign({ purpose: 'unsubscribe', list: 'news' })
  const answer = await me(app, purpose)
  t.equal(answer.statusCode, 200, 'the app\'s route verifies it as before the plugin wired `trusted`')
  t.match(answer.json(), { purpose: 'unsubscribe' })
  t.equal(await trusted(app, purpose), true)
})

t.test('an app\'s own @fastify/jwt, registered first, takes fastify.realtime.trusted as its `trusted`', async t => {
  const { app, url } = await appWithRoutes(t)
  // A logged-out session: its socket is revoked, its token refused by the socket and by the app's route.
  const tokens = await login(t, app)
  t.equal((await me(app, tokens.access_token)).statusCode, 200)
  const ofSession = await authenticated(url('/websocket'), tokens.access_token)
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: tokens.refresh_token } })).statusCode, 204)
  t.same(await next(ofSession, 'AUTH_REVOKED'), sessionRevoked)
  t.match((await me(app, tokens.access_token)).json(), untrusted)
  t.same(await refusedWith(url(`/websocket?access_token=${tokens.access_token}`)), upgradeRefused)

  // A revoked user's token of the app's own signing.
  const own = app.realtime.jwt.sign({ id: 'alice' })
  const bobs = app.realtime.jwt.sign({ id: 'bob' })
  t.equal((await me(app, own)).statusCode, 200)
  const bySocket = await authenticated(url('/websocket'), own)
  await app.realtime.revokeUser('alice')
  bySocket.send({ type: 'whoami', uid: 'after' })
  t.same(await next(bySocket, 'AUTH_REVOKED'), sessionRevoked)
  t.same(await next(bySocket, 'the whoami answer'), { type: 'whoami', uid: 'after', user: null })
  t.match((await me(app, own)).json(), untrusted)
  t.same(await refusedWith(url(`/websocket?access_token=${own}`)), upgradeRefused)
  await refusedOnAuth(t, url('/websocket'), own, 'the app\'s token')
  t.equal((await me(app, bobs)).statusCode, 200, 'another user\'s token')
  const bobSocket = await authenticated(url('/websocket'), bobs)
  await Promise.all([ofSession.close(), bySocket.close(), bobSocket.close()])
})

t.test('across processes on one Redis: revokeUser on one reaches a sessionless socket on another, which then refuses the token', async t => {
  const server = await RedisServer.start(t)
  const node = () => build(t, { redis: server.url, rest: { handlers: { whoami }, authTimeout: 5 } }, { logger: false })
  const [a, b] = [await node(), await node()]
  const token = b.app.realtime.signAccessToken(alice).access_token
  const onB = await authenticated(b.url('/websocket'), token)
  const byUrlOnB = await connect(b.url(`/websocket?access_token=${a.app.realtime.jwt.sign({ id: 'alice' })}`))
  const bobOnB = await authenticated(b.url('/websocket'), b.app.realtime.signAccessToken(bob).access_token)

  await a.app.realtime.revokeUser('alice')
  t.same(await next(onB, 'AUTH_REVOKED on b'), sessionRevoked, 'signAccessToken, on the other process')
  t.same(await next(byUrlOnB, 'AUTH_REVOKED on b'), sessionRevoked, 'the app\'s jwt.sign at the upgrade, on the other process')
  t.same(await whoIs(onB, 'w'), { type: 'whoami', uid: 'w', user: null })
  t.same(await whoIs(bobOnB, 'b'), { type: 'whoami', uid: 'b', user: 'bob' }, 'another user\'s socket is untouched')

  t.same(await refusedWith(b.url(`/websocket?access_token=${token}`)), upgradeRefused, 'b refuses the old token at the upgrade')
  await refusedOnAuth(t, b.url('/websocket'), token, 'on b')
  t.same(await refusedWith(a.url(`/websocket?access_token=${token}`)), upgradeRefused, 'and a')
  const c = await node()
  t.same(await refusedWith(c.url(`/websocket?access_token=${token}`)), upgradeRefused, 'a process started afterwards learns it from Redis')
  await Promise.all([onB.close(), byUrlOnB.close(), bobOnB.close()])
})

t.test('on Redis, revokeUser ends many sessions a batch at a time, newest first: one that runs out of time has ended some, the next goes on from there', async t => {
  // The store's own deadline check reads Date: the test jumps it once the first batch is done. Redis checks the
  // scripts' deadlines against its own clock, which the generous deadlines below leave far behind, however slow the
  // machine.
  const clock = FakeTimers.install({ now: Date.now(), toFake: ['Date'], shouldAdvanceTime: true, advanceTimeDelta: 5 })
  t.teardown(() => clock.uninstall())
  const server = await RedisServer.start(t)
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  const deadline = () => Date.now() + 60_000
  let runOut = true
  const slow = new Proxy(redis, {
    get (target, name) {
      const value = Reflect.get(target, name) as unknown
      if (name !== 'eval') return typeof value === 'function' ? value.bind(target) : value
      return async (script: string, ...args: (string | number)[]) => {
        const reply = await (target as unknown as { eval: (...args: unknown[]) => Promise<unknown> }).eval(script, ...args)
        // The first batch is out of the user's set: the call's time has run out.
        if (runOut && script.includes("'ZREM'")) { runOut = false; clock.tick(120_000) }
        return reply
      }
    }
  })
  const store = new RedisSessionStore(slow, 'realtime:')
  // Made by the store, not by logins: 1,200 password checks would take minutes.
  const refreshTokens = Array.from({ length: 1_200 }, () => newRefreshToken(newSessionId()))
  const tokens = refreshTokens.map(token => readRefreshToken(token)!)
  await Promise.all(tokens.map(({ sessionId, tokenHash }, i) =>
    store.create({ id: sessionId, identity: alice, tokenHash, expiresAt: Date.now() + 3_600_000 + i }, deadline())))
  const { app } = await build(t, { redis: server.url, sessionStore: store, authRoutes: true }, { logger: false })
  const current = async () => (await Promise.all(tokens.map(async token => (await store.lookup(token)).status === 'current')))

  await t.rejects(store.endUser('alice', deadline()), { name: 'DeadlinePassedError' }, 'out of time after its first batch: it fails')
  const left = await current()
  t.same([left.indexOf(false), left.lastIndexOf(true)], [700, 699], 'it has ended the newest 500, and no other')
  t.equal(await redis.zcard('realtime:{u:alice}:session-expiries'), 700, 'and taken them out of the user\'s set')

  t.equal((await store.endUser('alice', deadline())).length, 700, 'the next one ends the rest')
  t.same((await current()).filter(Boolean), [], 'none is left')
  for (const token of refreshTokens) {
    const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: token } })
    if (refreshed.statusCode !== 401) t.fail(`a refresh token still refreshes: ${refreshed.statusCode}`)
  }
})

t.test('a session id of the app\'s that reads like a user\'s revocation is revoked as a session, and revokes no user', async t => {
  const { app, url } = await build(t, { rest: { handlers: { whoami } } })
  // signAccessToken and revokeSession take any session id; a user's revocation travels the same feed as `user:<at>:<user>`.
  const session = 'user:1:bob'
  const ofSession = await authenticated(url('/websocket'), app.realtime.signAccessToken(alice, session).access_token)
  const bobSocket = await authenticated(url('/websocket'), app.realtime.jwt.sign({ id: 'bob' }, { noTimestamp: true }))
  await app.realtime.revokeSession(session)
  ofSession.send({ type: 'whoami', uid: 'after' })
  t.same(await next(ofSession, 'AUTH_REVOKED'), sessionRevoked, 'the session\'s socket is revoked')
  t.same(await whoIs(bobSocket, 'bob'), { type: 'whoami', uid: 'bob', user: 'bob' }, 'bob is not revoked')
  await Promise.all([ofSession.close(), bobSocket.close()])
})

t.test('a login right after revokeUser returned (an app\'s password change logging the user in again) gets a session whose tokens work', async t => {
  // Stamped in the same millisecond as the login's check began, the revocation read as made during the check: 126 of
  // 200 such logins were refused (INVALID_CREDENTIALS), in memory, where nothing else takes a millisecond.
  const { app } = await build(t, { users: [admin], authRoutes: true, attemptLimit: { points: 1_000 } })
  const user = (app.realtime.jwt.decode((await app.realtime.login(admin)).access_token) as { id: string }).id
  let refused = 0
  let untrusted = 0
  for (let i = 0; i < 100; i++) {
    await app.realtime.revokeUser(user)
    const issued = await app.realtime.login(admin).catch(() => null)
    if (issued === null) refused++
    else if (app.realtime.trusted({ log: app.log } as never, app.realtime.jwt.verify(issued.access_token)) !== true) untrusted++
    const refreshed = issued && await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: issued.refresh_token } })
    if (refreshed && refreshed.statusCode !== 200) untrusted++
  }
  t.equal(refused, 0, 'none refused')
  t.equal(untrusted, 0, 'and every access token is trusted, every refresh token refreshes')
})

t.test('a revokeUser stamped in the millisecond a login\'s check began, made while it ran: the login is refused', async t => {
  // The Date stopped: every stamp is the same millisecond. Known before the check began counts it after; made during
  // it, the check proves nothing past it.
  stoppedDate(t, 500)
  const { app } = await build(t, {
    authRoutes: true,
    verifyCredentials: async () => {
      await app.realtime.revokeUser(alice.user)
      return alice
    }
  })
  await t.rejects(app.realtime.login({ email: 'alice@example.com', password: 'p' }), { code: 'INVALID_CREDENTIALS' })
})
