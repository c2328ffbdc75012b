// The authenticator (lib/auth/authenticator.ts) over a real @fastify/jwt: every credential form to one result or one
// typed failure, refresh-token rotation and reuse, sessions ended and revoked, and a store that fails or hangs.
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import { MemorySessionStore } from '../../lib/stores/sessions/memory.js'
import { readRevocation, Revocations } from '../../lib/auth/revocations.js'
import { Authenticator, defaultMapClaims, type AuthContext, type AuthenticatorOptions, type AuthResult, type AuthSuccess } from '../../lib/auth/authenticator.js'
import { hashRefreshToken, newRefreshToken, newSessionId, readRefreshToken } from '../../lib/auth/refresh-tokens.js'
import { unlimited } from '../../lib/stores/attempts/contract.js'
import { PasswordChecks, PasswordLanes } from '../../lib/auth/password-checks.js'
import { GiveBacks } from '../../lib/stores/give-backs.js'
import type { Identity, RefreshSession, SessionStore } from '../../lib/index.js'
import { fakeClock } from '../clock.js'
import { RedisServer } from '../redis-server.js'
import { connectRedis, opened } from '../../lib/stores/redis-connection.js'
import { redisAttempts } from '../../lib/stores/attempts/redis.js'
import { silentLog } from '../stores/silent-log.js'
import { secret } from '../helpers.js'

const alice: Identity = { user: 'alice', role: 'editor', admin: false }
const bob: Identity = { user: 'bob', role: null, admin: true }
const hour = 3_600_000

/** A store whose every method fails, as an unreachable backend would. */
class BrokenStore implements SessionStore {
  create (): Promise<void> { return Promise.reject(new Error('store down')) }
  rotate (): Promise<never> { return Promise.reject(new Error('store down')) }
  lookup (): Promise<never> { return Promise.reject(new Error('store down')) }
  end (): Promise<never> { return Promise.reject(new Error('store down')) }
  endUser (): Promise<never> { return Promise.reject(new Error('store down')) }
}

async function jwtApp (t: Test, key = secret): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, { secret: key })
  await app.ready()
  return app
}

interface Harness {
  app: FastifyInstance
  authenticator: Authenticator
  store: SessionStore
  revocations: Revocations
  /** Sessions published as revoked, in order. */
  ended: string[]
}

function stoppedAtTeardown (t: Test, giveBacks: GiveBacks): GiveBacks {
  t.teardown(() => giveBacks.stop())
  return giveBacks
}

/** Revocations as a process that has loaded them has them. */
function loadedRevocations (): Revocations {
  const revocations = new Revocations()
  revocations.markLoaded()
  return revocations
}

async function harness (t: Test, options: Partial<AuthenticatorOptions> = {}): Promise<Harness> {
  const app = await jwtApp(t)
  const ended: string[] = []
  const store = options.sessionStore ?? new MemorySessionStore()
  const revocations = options.revocations ?? loadedRevocations()
  const authenticator = new Authenticator({
    jwt: app.jwt,
    verifyToken: (token) => ({ claims: app.jwt.verify(token) }),
    verifyWindow: { maxAgeMs: null, clockToleranceMs: 0 },
    appVerifies: false,
    claimsOf: (token) => app.jwt.decode(token)!,
    mapClaims: defaultMapClaims('fastify-realtime'),
    issuer: 'fastify-realtime',
    passwordChecks: new PasswordChecks({ limit: 16, perAddress: 4 }),
    verifyCredentials: async ({ email, password }) => email === 'alice@example.com' && password === 'secret' ? alice : null,
    sessionStore: store,
    revocations,
    accessTokenTtlMs: 15 * 60_000,
    refreshTokenTtlMs: hour,
    sessionTokenTtlMs: 24 * hour,
    sessionCookieName: 'directus_session_token',
    revocationFeed: {
      revocations,
      async publish (id, until) {
        const revoked = readRevocation(id)
        if ('user' in revoked) {
          ended.push(`user:${revoked.user}`)
          revocations.addUser(revoked.user, revoked.at, until)
        } else {
          ended.push(revoked.session)
          revocations.add(revoked.session, until)
        }
      },
      start () {},
      stop () {}
    },
    storeTimeoutMs: 1_000,
    keyLookupMs: 1_000,
    attemptLimiter: unlimited,
    giveBacks: stoppedAtTeardown(t, new GiveBacks(1_000)),
    ...options
  })
  return { app, authenticator, store, revocations, ended }
}

const credentials = { email: 'alice@example.com', password: 'secret' }

/** Where the test presents its credentials: a socket's auth message, from no address. */
const at: AuthContext = { request: { log: { error () {} } } as unknown as FastifyRequest, source: 'auth', endpoint: 'rest', ip: null }

/** A verdict the authenticator gave in the same turn (a promise where the test awaited none fails). */
function success (t: Test, result: AuthResult | Promise<AuthResult>): AuthSuccess {
  if (result instanceof Promise) throw new Error('answered with a promise')
  t.ok(result.ok, 'succeeded')
  if (!result.ok) throw new Error(`failed: ${result.code} ${result.reason}`)
  return result
}

t.test('defaultMapClaims: id then sub from the plugin\'s own issuer, sub then id from any other, role, and admin_access only from its own', async (t) => {
  const mapClaims = defaultMapClaims('fastify-realtime')
  t.same(mapClaims({ id: 'u1', role: 'editor', admin_access: true, iss: 'fastify-realtime' }), { user: 'u1', role: 'editor', admin: true })
  t.same(mapClaims({ id: 'u1', admin_access: true }), { user: 'u1', role: null, admin: false }, 'no issuer: not admin')
  t.same(mapClaims({ id: 'u1', admin_access: true, iss: 'elsewhere' }), { user: 'u1', role: null, admin: false }, 'another issuer')
  t.same(mapClaims({ sub: 'u2', admin: true, iss: 'fastify-realtime' }), { user: 'u2', role: null, admin: false }, 'a bare admin claim')
  t.same(mapClaims({ id: 'u3', sub: 'ignored', role: 42, admin_access: 'yes', iss: 'fastify-realtime' }), { user: 'u3', role: null, admin: false })
  t.equal(mapClaims({ id: '' }), null)
  t.equal(mapClaims({ id: 7 }), null)
  t.equal(mapClaims({ role: 'editor' }), null)
  // A provider's token names its user by `sub`: an `id` beside it (one the provider lets users set) names nobody.
  t.same(mapClaims({ sub: 'mallory', id: 'the-admins-id', iss: 'https://id.example.com/' }), { user: 'mallory', role: null, admin: false })
  t.same(mapClaims({ id: 'u4', iss: 'https://id.example.com/' }), { user: 'u4', role: null, admin: false }, 'an `id` alone still names its user')
  t.same(mapClaims({ sub: 'u5', iss: 'fastify-realtime' }), { user: 'u5', role: null, admin: false }, 'and a `sub` alone, whoever issued it')
})

t.test('Authenticator: verifyAccessToken accepts a valid token', async (t) => {
  const { app, authenticator } = await harness(t)
  const token = app.jwt.sign({ id: 'u1', role: 'editor', admin_access: false }, { expiresIn: '5m' })
  const result = success(t, authenticator.verifyAccessToken(token, at))
  t.same(result.identity, { user: 'u1', role: 'editor', admin: false })
  t.equal(result.session, undefined, 'a token issued elsewhere has no session')
  t.equal(result.expiresAt, app.jwt.decode<{ exp: number }>(token)!.exp * 1000)
})

t.test('Authenticator: verifyAccessToken of a token without exp never expires', async (t) => {
  const { app, authenticator } = await harness(t)
  const result = success(t, authenticator.verifyAccessToken(app.jwt.sign({ id: 'u1' }), at))
  t.equal(result.expiresAt, null)
})

t.test('Authenticator: verifyAccessToken of an expired token is TOKEN_EXPIRED', async (t) => {
  const { app, authenticator } = await harness(t)
  const token = app.jwt.sign({ id: 'u1', exp: Math.floor(Date.now() / 1000) - 10 })
  t.match(authenticator.verifyAccessToken(token, at), { ok: false, code: 'TOKEN_EXPIRED', reason: 'token expired' })
})

t.test('Authenticator: verifyAccessToken of garbage is AUTH_FAILED', async (t) => {
  const { authenticator } = await harness(t)
  for (const token of ['garbage', '', 'a.b.c']) {
    const result = authenticator.verifyAccessToken(token, at)
    t.match(result, { ok: false, code: 'AUTH_FAILED', reason: /^invalid token/ }, JSON.stringify(token))
    t.notMatch((result as { reason: string }).reason, token || 'never', 'the reason never carries the token')
  }
})

t.test('Authenticator: verifyAccessToken of a token signed with another key is AUTH_FAILED', async (t) => {
  const { authenticator } = await harness(t)
  const other = await jwtApp(t, 'some-other-secret')
  t.match(authenticator.verifyAccessToken(other.jwt.sign({ id: 'u1' }), at), { ok: false, code: 'AUTH_FAILED' })
})

t.test('Authenticator: verifyAccessToken of a token naming no user is AUTH_FAILED', async (t) => {
  const { app, authenticator } = await harness(t)
  t.match(authenticator.verifyAccessToken(app.jwt.sign({ role: 'editor' }), at), {
    ok: false, code: 'AUTH_FAILED', reason: 'token names no user'
  })
})

t.test('Authenticator: verifyAccessToken uses the mapClaims it was given', async (t) => {
  const { app, authenticator } = await harness(t, {
    mapClaims: (claims) => typeof claims.uid === 'number' ? { user: `u${claims.uid}`, role: 'mapped', admin: false } : null
  })
  t.match(authenticator.verifyAccessToken(app.jwt.sign({ uid: 7 }), at), { ok: true, identity: { user: 'u7', role: 'mapped' } })
  t.match(authenticator.verifyAccessToken(app.jwt.sign({ id: 'u1' }), at), { ok: false, code: 'AUTH_FAILED' })
})

t.test('Authenticator: verifyAccessToken of a revoked session is AUTH_FAILED', async (t) => {
  const { authenticator, revocations } = await harness(t)
  const { access_token: token } = authenticator.signAccessToken(alice, 'sid-1')
  t.match(authenticator.verifyAccessToken(token, at), { ok: true, session: 'sid-1' })
  revocations.add('sid-1', Date.now() + hour)
  t.match(authenticator.verifyAccessToken(token, at), { ok: false, code: 'AUTH_FAILED', reason: 'session revoked' })
})

/** Revocations as the memory feed has them: this process's own, from now on. */
function revocationsFromNow (): Revocations {
  const revocations = new Revocations()
  revocations.markLoaded(Date.now())
  return revocations
}

t.test('Authenticator: revocations known from the process\'s start: a token signed here answers in the same turn, one signed before counts while its session is stored', async (t) => {
  fakeClock(t, ['Date'])
  const store = new MemorySessionStore()
  const { app, authenticator } = await harness(t, { revocations: revocationsFromNow(), sessionStore: store })
  const login = success(t, await authenticator.login(credentials, at))
  success(t, authenticator.verifyAccessToken(login.issued!.access_token, at))
  const request = at.request
  t.equal(authenticator.trusts(request, app.jwt.verify(login.issued!.access_token)), true, 'trusted in the same turn too')

  // Signed in this second by another process with the same key (one before a restart), for a session of the store
  // this one signed nothing for: the store is asked.
  const earlier = newSessionId()
  await store.create({ id: earlier, identity: alice, tokenHash: 'h', expiresAt: Date.now() + hour }, Date.now() + 1_000)
  const before = app.jwt.sign({ id: 'alice', iss: 'fastify-realtime', sid: earlier })
  t.match(await authenticator.verifyAccessToken(before, at), { ok: true, session: earlier }, 'its session is stored')
  t.equal(await authenticator.trusts(request, app.jwt.verify(before)), true)
  await store.end(earlier, Date.now() + 1_000)
  t.match(await authenticator.verifyAccessToken(before, at), { ok: false, code: 'AUTH_FAILED', reason: 'session no longer stored (signed before this process started)' })
  t.equal(await authenticator.trusts(request, app.jwt.verify(before)), false)
  t.match(authenticator.verifyAccessToken(app.jwt.sign({ id: 'alice', iss: 'fastify-realtime' }), at), { ok: true }, 'a token without a session: not asked')
})

t.test('Authenticator: a token signed before the process started, its store away, is SERVICE_UNAVAILABLE', async (t) => {
  const { app, authenticator } = await harness(t, { revocations: revocationsFromNow(), sessionStore: new BrokenStore() })
  const before = app.jwt.sign({ id: 'alice', iss: 'fastify-realtime', sid: 'sid-1', iat: Math.floor(Date.now() / 1000) - 60 })
  t.match(await authenticator.verifyAccessToken(before, at), { ok: false, code: 'SERVICE_UNAVAILABLE' })
  await t.rejects(Promise.resolve(authenticator.trusts(at.request, app.jwt.verify(before))), { code: 'SERVICE_UNAVAILABLE', statusCode: 503 })
})

t.test('Authenticator: a non-string sid claim is no session', async (t) => {
  const { app, authenticator, revocations } = await harness(t)
  revocations.add('42', Date.now() + hour)
  t.match(authenticator.verifyAccessToken(app.jwt.sign({ id: 'u1', sid: 42 }), at), { ok: true, session: undefined })
})

t.test('Authenticator: signAccessToken puts the identity and the session in the claims', async (t) => {
  const { app, authenticator } = await harness(t)
  const withSession = authenticator.signAccessToken(alice, 'sid-1')
  t.equal(withSession.expires, 15 * 60_000)
  const decoded = app.jwt.decode<Record<string, unknown>>(withSession.access_token)!
  t.match(decoded, { id: 'alice', role: 'editor', admin_access: false, sid: 'sid-1' })
  t.equal(withSession.expiresAt, (decoded.exp as number) * 1000)
  const without = app.jwt.decode<Record<string, unknown>>(authenticator.signAccessToken(bob).access_token)!
  t.notOk('sid' in without)
  t.match(without, { id: 'bob', role: null, admin_access: true })
})

t.test('Authenticator: login issues tokens carrying the session id', async (t) => {
  const { app, authenticator, store } = await harness(t)
  const result = success(t, await authenticator.login(credentials, at))
  t.same(result.identity, alice)
  t.match(result.session, /^[0-9a-f-]{36}$/)
  t.match(result.issued, { access_token: String, expires: 15 * 60_000, refresh_token: /^[A-Za-z0-9_-]{64}$/ })
  t.match(app.jwt.decode(result.issued!.access_token), { id: 'alice', sid: result.session })
  t.equal(result.expiresAt, app.jwt.decode<{ exp: number }>(result.issued!.access_token)!.exp * 1000)
  t.match(authenticator.verifyAccessToken(result.issued!.access_token, at), { ok: true, session: result.session, identity: alice })
  t.match(await store.lookup(readRefreshToken(result.issued!.refresh_token)!), { status: 'current', session: { id: result.session } })
})

t.test('Authenticator: login with a store of the app\'s whose create resolves nothing (it keeps no per-user count)', async (t) => {
  const memory = new MemorySessionStore()
  const store: SessionStore = {
    create: async (session, deadline) => { await memory.create(session, deadline) },
    rotate: (...args) => memory.rotate(...args),
    lookup: (token) => memory.lookup(token),
    end: (...args) => memory.end(...args),
    endUser: (...args) => memory.endUser(...args)
  }
  const { authenticator, ended } = await harness(t, { sessionStore: store })
  const result = success(t, await authenticator.login(credentials, at))
  t.match(await store.lookup(readRefreshToken(result.issued!.refresh_token)!), { status: 'current' }, 'the session is made')
  t.same(ended, [], 'and no other is revoked')
})

t.test('Authenticator: login with wrong credentials is INVALID_CREDENTIALS', async (t) => {
  const { authenticator } = await harness(t)
  t.match(await authenticator.login({ ...credentials, password: 'wrong' }, at), { ok: false, code: 'INVALID_CREDENTIALS' })
})

t.test('Authenticator: login passes the otp to verifyCredentials', async (t) => {
  const seen: unknown[] = []
  const { authenticator } = await harness(t, { verifyCredentials: async (credential) => { seen.push(credential); return alice } })
  success(t, await authenticator.login({ ...credentials, otp: '123456' }, at))
  t.same(seen, [{ ...credentials, otp: '123456' }])
})

t.test('Authenticator: verifyCredentials throwing is SERVICE_UNAVAILABLE, and logged once a minute', async (t) => {
  const logged: Array<[unknown, string]> = []
  const request = { log: { error: (fields: unknown, message: string) => { logged.push([fields, message]) } } } as unknown as FastifyRequest
  const { authenticator } = await harness(t, { verifyCredentials: async () => { throw new Error('directory down') } })
  for (let i = 0; i < 3; i++) t.match(await authenticator.login(credentials, { ...at, request }), { ok: false, code: 'SERVICE_UNAVAILABLE' })
  t.match(logged, [[{ err: { message: 'directory down' } }, 'a credential check failed']], 'the cause, once for three')
  t.match(await authenticator.login(credentials, null), { ok: false, code: 'SERVICE_UNAVAILABLE' }, 'the app\'s own login: told to the app')
})

t.test('Authenticator: a login the full queue refuses is SERVICE_UNAVAILABLE before its attempt is counted or the store asked', async (t) => {
  const counted: string[] = []
  let checkBegins = 0
  let release!: () => void
  const held = new Promise<null>(resolve => { release = () => resolve(null) })
  const { authenticator } = await harness(t, {
    passwordChecks: new PasswordChecks({ limit: 1, perAddress: 1 }, new PasswordLanes(1)),
    verifyCredentials: () => held,
    sessionStore: Object.assign(new MemorySessionStore(), { checkBegins: async () => { checkBegins++; return 0 } }),
    attemptLimiter: {
      begin: async (ip, email) => { counted.push(`${ip} ${email}`); return 0 },
      succeeded: async () => {},
      unchecked: async (ip, email) => { counted.push(`given back ${ip} ${email}`) }
    }
  })
  const from = (n: number) => ({ ...at, ip: `192.0.2.${n}` })
  const checked = [authenticator.login({ email: 'one@example.com', password: 'x' }, from(1)), authenticator.login({ email: 'two@example.com', password: 'x' }, from(2))]
  await new Promise(resolve => setImmediate(resolve))
  for (let n = 3; n < 23; n++) {
    t.match(await authenticator.login({ email: `flood-${n}@example.com`, password: 'x' }, from(n)),
      { ok: false, code: 'SERVICE_UNAVAILABLE', reason: 'too many password checks waiting' })
  }
  t.same(counted, ['192.0.2.1 one@example.com', '192.0.2.2 two@example.com'], 'the one checked and the one waiting were counted; no other')
  t.equal(checkBegins, 2)
  release()
  t.match(await Promise.all(checked), [{ ok: false, code: 'INVALID_CREDENTIALS' }, { ok: false, code: 'INVALID_CREDENTIALS' }])
})

t.test('Authenticator: one address\'s flood of logins, counted on Redis, takes its share of the queue and no more: another address\'s login waits its turn', async (t) => {
  const server = await RedisServer.start(t)
  const redis = connectRedis(server.url, 'flood:', silentLog)
  t.teardown(() => redis.close())
  await opened(redis.commands)
  let release!: () => void
  const held = new Promise<null>(resolve => { release = () => resolve(null) })
  let busy!: () => void
  const laneBusy = new Promise<void>(resolve => { busy = resolve })
  const { authenticator } = await harness(t, {
    passwordChecks: new PasswordChecks({ limit: 256, perAddress: 4 }, new PasswordLanes(1)),
    verifyCredentials: async ({ email, password }) => {
      if (email === 'alice@example.com' && password === 'secret') return alice
      busy()
      return await held
    },
    attemptLimiter: redisAttempts({ points: 10, durationSeconds: 60 }, redis.commands, 'flood:')
  })
  const running = authenticator.login({ email: 'busy@example.com', password: 'x' }, { ...at, ip: '192.0.2.1' })
  await laneBusy
  // Sent at once, as a pipelined flood is read: every one is admitted or refused before Redis answers the first.
  const flood = Array.from({ length: 300 }, (_, n) => authenticator.login({ email: `flood-${n}@example.com`, password: 'x' }, { ...at, ip: '203.0.113.9' }))
  const legitimate = authenticator.login(credentials, { ...at, ip: '198.51.100.7' })
  release()
  t.match(await legitimate, { ok: true, identity: alice }, 'the other address\'s login waited its turn (main: SERVICE_UNAVAILABLE, too many password checks waiting)')
  const refused = (await Promise.all(flood)).filter(result => !result.ok && result.code === 'SERVICE_UNAVAILABLE').length
  t.equal(refused, 296, 'the flooding address had its share, 4 (main: 256 admitted to be counted)')
  t.match(await running, { ok: false, code: 'INVALID_CREDENTIALS' })
})

t.test('Authenticator: a store whose checkBegins throws as it is called fails the login, and the room it held in the queue is free again', async (t) => {
  let throws = true
  let release!: () => void
  const held = new Promise<null>(resolve => { release = () => resolve(null) })
  const { authenticator } = await harness(t, {
    passwordChecks: new PasswordChecks({ limit: 1, perAddress: 1 }, new PasswordLanes(1)),
    verifyCredentials: () => held,
    sessionStore: Object.assign(new MemorySessionStore(), {
      checkBegins: () => {
        if (throws) throw new Error('not a promise')
        return Promise.resolve(0)
      }
    })
  })
  await t.rejects(async () => { await authenticator.login(credentials, at) }, { message: 'not a promise' })
  throws = false
  const running = authenticator.login(credentials, { ...at, ip: '192.0.2.1' })
  await new Promise(resolve => setImmediate(resolve))
  const waiting = authenticator.login(credentials, { ...at, ip: '192.0.2.2' })
  await new Promise(resolve => setImmediate(resolve))
  release()
  t.match(await Promise.all([running, waiting]), [{ ok: false, code: 'INVALID_CREDENTIALS' }, { ok: false, code: 'INVALID_CREDENTIALS' }],
    'the login after it waited its turn: the queue had room')
})

t.test('Authenticator: a verifyCredentials that never answers is SERVICE_UNAVAILABLE at the deadline, and frees its lane', async (t) => {
  const clock = fakeClock(t, ['setTimeout', 'clearTimeout'])
  const { authenticator } = await harness(t, {
    passwordChecks: new PasswordChecks({ limit: 16, perAddress: 4 }, new PasswordLanes(1)),
    verifyCredentials: async ({ email }) => email === 'stuck@example.com' ? new Promise<null>(() => {}) : alice
  })
  const stuck = authenticator.login({ email: 'stuck@example.com', password: 'x' }, at)
  const next = authenticator.login(credentials, at)
  await new Promise(resolve => setImmediate(resolve))
  clock.tick(1_000) // the store deadline of this harness
  t.match(await stuck, { ok: false, code: 'SERVICE_UNAVAILABLE', reason: 'credential check failed' })
  t.match(await next, { ok: true, identity: alice }, 'the next login had its turn')
})

t.test('Authenticator: refresh rotates the refresh token and keeps the session', async (t) => {
  const { authenticator } = await harness(t)
  const login = success(t, await authenticator.login(credentials, at))
  const refreshed = success(t, await authenticator.refresh(login.issued!.refresh_token, at))
  t.equal(refreshed.session, login.session)
  t.same(refreshed.identity, alice)
  t.not(refreshed.issued!.refresh_token, login.issued!.refresh_token)
  t.match(refreshed.issued!.refresh_token, /^[A-Za-z0-9_-]{43,}$/)
  t.match(authenticator.verifyAccessToken(refreshed.issued!.access_token, at), { ok: true, session: login.session })
  success(t, await authenticator.refresh(refreshed.issued!.refresh_token, at))
})

t.test('Authenticator: a rotated refresh token used again is reuse and revokes the session', async (t) => {
  const { authenticator, ended, revocations } = await harness(t)
  const login = success(t, await authenticator.login(credentials, at))
  const refreshed = success(t, await authenticator.refresh(login.issued!.refresh_token, at))
  t.match(await authenticator.refresh(login.issued!.refresh_token, at), {
    ok: false, code: 'INVALID_CREDENTIALS', reason: 'refresh token reused; session revoked'
  })
  t.same(ended, [login.session])
  t.ok(revocations.has(login.session!))
  t.match(await authenticator.refresh(refreshed.issued!.refresh_token, at), { ok: false, code: 'INVALID_CREDENTIALS' },
    'the newest token died with the session')
  t.match(authenticator.verifyAccessToken(refreshed.issued!.access_token, at), { ok: false, code: 'AUTH_FAILED' })
  t.match(authenticator.verifyAccessToken(login.issued!.access_token, at), { ok: false, code: 'AUTH_FAILED' })
})

t.test('Authenticator: two concurrent refreshes with one token: one succeeds, the other is reuse', async (t) => {
  const { authenticator, ended } = await harness(t)
  const login = success(t, await authenticator.login(credentials, at))
  const results = await Promise.all([
    authenticator.refresh(login.issued!.refresh_token, at),
    authenticator.refresh(login.issued!.refresh_token, at)
  ])
  t.same(results.map(r => r.ok).sort(), [false, true])
  t.same(ended, [login.session])
})

t.test('Authenticator: refresh with an unknown token is INVALID_CREDENTIALS', async (t) => {
  const { authenticator, ended } = await harness(t)
  t.match(await authenticator.refresh(newRefreshToken(newSessionId()), at), {
    ok: false, code: 'INVALID_CREDENTIALS', reason: 'unknown or expired refresh token'
  })
  t.match(await authenticator.refresh('not a token', at), { ok: false, code: 'INVALID_CREDENTIALS' }, 'nor is what is no token')
  t.same(ended, [])
})

t.test('Authenticator: refresh with an expired session is INVALID_CREDENTIALS', async (t) => {
  const clock = fakeClock(t, ['Date'])
  const { authenticator } = await harness(t, { refreshTokenTtlMs: 60_000 })
  const login = success(t, await authenticator.login(credentials, at))
  clock.tick(60_000)
  t.match(await authenticator.refresh(login.issued!.refresh_token, at), { ok: false, code: 'INVALID_CREDENTIALS' })
})

t.test('Authenticator: authenticate dispatches the three credential forms', async (t) => {
  const { authenticator } = await harness(t)
  const login = success(t, await authenticator.authenticate(credentials, at))
  t.ok(login.issued)
  const byRefresh = success(t, await authenticator.authenticate({ refresh_token: login.issued!.refresh_token }, at))
  t.ok(byRefresh.issued)
  const byToken = authenticator.authenticate({ access_token: byRefresh.issued!.access_token }, at)
  t.notOk(byToken instanceof Promise, 'an access token answers synchronously')
  t.match(byToken, { ok: true, session: login.session, identity: alice })
  t.notOk((byToken as AuthSuccess).issued)
})

t.test('Authenticator: logout ends the session of a current refresh token', async (t) => {
  const { authenticator, ended, revocations } = await harness(t)
  const login = success(t, await authenticator.login(credentials, at))
  t.same(await authenticator.logout(login.issued!.refresh_token), { ok: true })
  t.same(ended, [login.session])
  t.ok(revocations.has(login.session!))
  t.match(authenticator.verifyAccessToken(login.issued!.access_token, at), { ok: false, code: 'AUTH_FAILED' })
  t.match(await authenticator.refresh(login.issued!.refresh_token, at), { ok: false, code: 'INVALID_CREDENTIALS' })
  t.match(await authenticator.logout(login.issued!.refresh_token), { ok: false, code: 'INVALID_CREDENTIALS' })
})

t.test('Authenticator: logout with a rotated refresh token is reuse: the session ends, the caller is refused', async (t) => {
  const { authenticator, ended } = await harness(t)
  const login = success(t, await authenticator.login(credentials, at))
  const refreshed = success(t, await authenticator.refresh(login.issued!.refresh_token, at))
  t.match(await authenticator.logout(login.issued!.refresh_token), { ok: false, code: 'INVALID_CREDENTIALS' })
  t.same(ended, [login.session])
  t.match(await authenticator.refresh(refreshed.issued!.refresh_token, at), { ok: false, code: 'INVALID_CREDENTIALS' })
})

t.test('Authenticator: logout with an unknown refresh token is INVALID_CREDENTIALS', async (t) => {
  const { authenticator, ended } = await harness(t)
  t.match(await authenticator.logout('unknown'), { ok: false, code: 'INVALID_CREDENTIALS' })
  t.same(ended, [])
})

t.test('Authenticator: a store that throws is SERVICE_UNAVAILABLE for login, refresh and logout', async (t) => {
  const { authenticator, ended } = await harness(t, { sessionStore: new BrokenStore() })
  t.match(await authenticator.login(credentials, at), { ok: false, code: 'SERVICE_UNAVAILABLE', reason: 'session store unavailable' })
  t.match(await authenticator.refresh(newRefreshToken(newSessionId()), at), { ok: false, code: 'SERVICE_UNAVAILABLE' })
  t.match(await authenticator.logout(newRefreshToken(newSessionId())), { ok: false, code: 'SERVICE_UNAVAILABLE' })
  t.same(ended, [])
})

t.test('Authenticator: a store that fails while ending a reused session is SERVICE_UNAVAILABLE, after the revocation went out', async (t) => {
  const memory = new MemorySessionStore()
  let endFails = false
  // The memory store, except that `end` fails once asked to.
  const store: SessionStore = {
    create: (s, d) => memory.create(s, d),
    rotate: (a, b, c, d) => memory.rotate(a, b, c, d),
    lookup: (h) => memory.lookup(h),
    end: (id, d) => endFails ? Promise.reject(new Error('store down')) : memory.end(id, d),
    endUser: (u, d) => memory.endUser(u, d)
  }
  const { authenticator, ended } = await harness(t, { sessionStore: store })
  const login = success(t, await authenticator.login(credentials, at))
  success(t, await authenticator.refresh(login.issued!.refresh_token, at))
  endFails = true
  t.match(await authenticator.refresh(login.issued!.refresh_token, at), { ok: false, code: 'SERVICE_UNAVAILABLE' })
  t.match(await authenticator.logout(login.issued!.refresh_token), { ok: false, code: 'SERVICE_UNAVAILABLE' })
  // The revocation goes out before the store is asked: each call told the session's sockets, and a retry ends it.
  t.same(ended, [login.session, login.session], 'its sockets were told each time')
  endFails = false
  t.match(await authenticator.logout(login.issued!.refresh_token), { ok: false, code: 'INVALID_CREDENTIALS' },
    'the retry ends the session, as reuse')
  t.match(await authenticator.refresh(login.issued!.refresh_token, at), { ok: false, code: 'INVALID_CREDENTIALS' })
})

/**
 * A feed that, as Redis's, applies a revocation in this process before it writes it, and whose write fails while `down`
 * says so (a full Redis, the revocation set's node failing over).
 */
function failingFeed (revocations: Revocations, down: { on: boolean }, sent: string[]): AuthenticatorOptions['revocationFeed'] {
  return {
    revocations,
    async publish (id, until) {
      const revoked = readRevocation(id)
      if ('session' in revoked) revocations.add(revoked.session, until)
      if (down.on) throw new Error('OOM command not allowed')
      sent.push(id)
    },
    start () {},
    stop () {}
  }
}

t.test('Authenticator: a session held ended here whose revocation could not go out is not ended in the store by a refresh until it does', async (t) => {
  const revocations = loadedRevocations()
  const down = { on: false }
  const sent: string[] = []
  const { authenticator, store } = await harness(t, { revocations, revocationFeed: failingFeed(revocations, down, sent) })
  const login = success(t, await authenticator.login(credentials, at))
  const presented = readRefreshToken(login.issued!.refresh_token)!
  down.on = true
  t.match(await authenticator.logout(login.issued!.refresh_token), { ok: false, code: 'SERVICE_UNAVAILABLE' })
  t.ok(revocations.has(login.session!), 'this process holds it ended: its sockets here are revoked')
  t.match(await authenticator.refresh(login.issued!.refresh_token, at), { ok: false, code: 'SERVICE_UNAVAILABLE' },
    'a refresh here: the client keeps its token')
  t.match(await store.lookup(presented), { status: 'current' }, 'the store still holds the session, for the logout\'s retry')
  down.on = false
  t.same(await authenticator.logout(login.issued!.refresh_token), { ok: true }, 'the retry ends it everywhere')
  t.same(sent, [`session:${login.session}`])
  for (let i = 0; i < 20; i++) {
    t.match(await authenticator.refresh(login.issued!.refresh_token, at), { ok: false, code: 'INVALID_CREDENTIALS' })
    t.match(await authenticator.logout(login.issued!.refresh_token), { ok: false, code: 'INVALID_CREDENTIALS' })
  }
  t.same(sent, [`session:${login.session}`], 'gone out, it is not sent again: a replayed token publishes nothing')
  t.match(await store.lookup(presented), { status: 'unknown' })
})

t.test('Authenticator: past the sessions whose revocation did not go out that it keeps, the oldest is forgotten', async (t) => {
  const revocations = loadedRevocations()
  const down = { on: false }
  const sent: string[] = []
  const { authenticator } = await harness(t, { revocations, revocationFeed: failingFeed(revocations, down, sent), unsentKept: 1 })
  const first = success(t, await authenticator.login(credentials, at))
  const second = success(t, await authenticator.login(credentials, at))
  down.on = true
  for (const login of [first, second, second]) {
    t.match(await authenticator.logout(login.issued!.refresh_token), { ok: false, code: 'SERVICE_UNAVAILABLE' })
  }
  down.on = false
  t.match(await authenticator.refresh(first.issued!.refresh_token, at), { ok: false, code: 'INVALID_CREDENTIALS' })
  t.same(sent, [], 'the first forgotten: its session ended in the store alone')
  t.match(await authenticator.refresh(second.issued!.refresh_token, at), { ok: false, code: 'INVALID_CREDENTIALS' })
  t.same(sent, [`session:${second.session}`], 'the second kept (once, though its logout failed twice): sent again')
})

t.test('Authenticator: a token of a session logged out here, replayed, publishes nothing and ends it in the store again', async (t) => {
  const revocations = loadedRevocations()
  const down = { on: false }
  const sent: string[] = []
  const restored = new MemorySessionStore()
  const { authenticator } = await harness(t, { revocations, revocationFeed: failingFeed(revocations, down, sent), sessionStore: restored })
  const login = success(t, await authenticator.login(credentials, at))
  const presented = readRefreshToken(login.issued!.refresh_token)!
  const { session } = await restored.lookup(presented) as { session: RefreshSession }
  t.same(await authenticator.logout(login.issued!.refresh_token), { ok: true })
  // A Redis restarted from a snapshot older than the logout: the session is back.
  await restored.create(session, Date.now() + 60_000)
  t.match(await authenticator.refresh(login.issued!.refresh_token, at), { ok: false, code: 'INVALID_CREDENTIALS' })
  t.match(await restored.lookup(presented), { status: 'unknown' }, 'ended in the store again')
  t.same(sent, [`session:${login.session}`], 'its revocation went out once')
})

t.test('Authenticator: a logout of a session gone from the store that this process holds ended sends its revocation again', async (t) => {
  const revocations = loadedRevocations()
  const down = { on: false }
  const sent: string[] = []
  const { authenticator } = await harness(t, {
    revocations,
    revocationFeed: failingFeed(revocations, down, sent),
    sessionStore: new MemorySessionStore({ maxSessionsPerUser: 1 })
  })
  const first = success(t, await authenticator.login(credentials, at))
  down.on = true
  // Past the user's limit, the store ends the first session; its revocation could not go out.
  t.match(await authenticator.login(credentials, at), { ok: false, code: 'SERVICE_UNAVAILABLE' })
  t.match(await authenticator.logout(first.issued!.refresh_token), { ok: false, code: 'SERVICE_UNAVAILABLE' },
    'its logout cannot send it either: the client is to try again')
  down.on = false
  t.match(await authenticator.logout(first.issued!.refresh_token), { ok: false, code: 'INVALID_CREDENTIALS' })
  t.same(sent, [`session:${first.session}`], 'sent by the logout that found its token unknown')
  t.match(await authenticator.logout(newRefreshToken(newSessionId())), { ok: false, code: 'INVALID_CREDENTIALS' })
  t.same(sent, [`session:${first.session}`], 'a token of a session not held ended sends nothing')
})

t.test('Authenticator: endSession ends the session, revokes it and reports it', async (t) => {
  const { authenticator, ended, revocations } = await harness(t)
  const login = success(t, await authenticator.login(credentials, at))
  await authenticator.endSession(login.session!)
  t.same(ended, [login.session])
  t.ok(revocations.has(login.session!))
  t.match(await authenticator.refresh(login.issued!.refresh_token, at), { ok: false, code: 'INVALID_CREDENTIALS' })
})

t.test('Authenticator: endUser ends, revokes and reports every session of the user', async (t) => {
  const users: Record<string, Identity> = { alice, bob }
  const { authenticator, ended, revocations } = await harness(t, {
    verifyCredentials: async ({ email }) => users[email] ?? null
  })
  const a1 = success(t, await authenticator.login({ email: 'alice', password: 'x' }, at))
  const a2 = success(t, await authenticator.login({ email: 'alice', password: 'x' }, at))
  const b1 = success(t, await authenticator.login({ email: 'bob', password: 'x' }, at))
  await authenticator.endUser('alice')
  t.same(ended, ['user:alice', 'user:alice'], 'the user as the store is asked, and again once it has answered: no revocation per session')
  t.notOk(revocations.has(b1.session!))
  t.match(authenticator.verifyAccessToken(a1.issued!.access_token, at), { ok: false, code: 'AUTH_FAILED' })
  t.match(authenticator.verifyAccessToken(a2.issued!.access_token, at), { ok: false, code: 'AUTH_FAILED' })
  t.match(authenticator.verifyAccessToken(b1.issued!.access_token, at), { ok: true, identity: bob })
  t.match(await authenticator.refresh(a2.issued!.refresh_token, at), { ok: false, code: 'INVALID_CREDENTIALS' })
  success(t, await authenticator.refresh(b1.issued!.refresh_token, at))
  await authenticator.endUser('nobody')
  t.same(ended.slice(2), ['user:nobody', 'user:nobody'], 'a user without sessions is revoked all the same')
})

/** A store whose endUser answers once the test lets it (`ending`): meanwhile the test refreshes. */
class EndingStore extends MemorySessionStore {
  ending: (() => void) | undefined
  override async endUser (user: string, deadline: number): Promise<string[]> {
    await new Promise<void>(resolve => { this.ending = resolve })
    return await super.endUser(user, deadline)
  }
}

t.test('Authenticator: a refresh while endUser\'s store ends the sessions, of a session begun before it: refused, the session ended', async (t) => {
  const clock = fakeClock(t, ['Date'])
  const sessionStore = new EndingStore()
  const { authenticator, revocations } = await harness(t, { sessionStore, storeTimeoutMs: 60_000 })
  const login = success(t, await authenticator.login(credentials, at))
  const revoked = authenticator.endUser('alice')
  await new Promise(resolve => setImmediate(resolve))
  clock.tick(2_000)
  t.match(await authenticator.refresh(login.issued!.refresh_token, at), { ok: false, code: 'INVALID_CREDENTIALS', reason: 'session ended' })
  t.ok(revocations.has(login.session!), 'its session revoked')
  t.match(await sessionStore.lookup(readRefreshToken(login.issued!.refresh_token)!), { status: 'unknown' }, 'and ended')
  sessionStore.ending!()
  await revoked
})

t.test('Authenticator: endUser refuses a token that a refresh issued in a later second while the store was ending the sessions', async (t) => {
  const clock = fakeClock(t, ['Date'])
  const sessionStore = new EndingStore()
  const { authenticator, revocations } = await harness(t, { sessionStore, storeTimeoutMs: 60_000 })
  // A session an earlier build made: its id (a UUIDv4) says not when it began, and it refreshes.
  const session = randomUUID()
  const refreshToken = newRefreshToken(session)
  await sessionStore.create({ id: session, identity: alice, tokenHash: hashRefreshToken(refreshToken), expiresAt: Date.now() + 60_000 }, Date.now() + 1_000)
  const revoked = authenticator.endUser('alice')
  await new Promise(resolve => setImmediate(resolve))
  clock.tick(2_000)
  const meanwhile = success(t, await authenticator.refresh(refreshToken, at))
  t.match(authenticator.verifyAccessToken(meanwhile.issued!.access_token, at), { ok: true }, 'issued after the first revocation, it works')
  sessionStore.ending!()
  await revoked
  t.match(authenticator.verifyAccessToken(meanwhile.issued!.access_token, at), { ok: false, code: 'AUTH_FAILED' }, 'refused once the store has answered')
  t.notOk(revocations.has(session), 'by the user\'s revocation, with no revocation of the session')
})

t.test('Authenticator: a refresh signed late, on a process that had not heard of its session\'s end, is refused as long as its token lives', async (t) => {
  const clock = fakeClock(t, ['Date', 'setTimeout', 'clearTimeout'])
  const store = new MemorySessionStore()
  // Process B's rotation acts at once; its answer comes back when the test lets it (a slow store, within its deadline).
  let answer!: () => void
  const slow: SessionStore = Object.assign(Object.create(store) as SessionStore, {
    rotate: async (...args: Parameters<SessionStore['rotate']>) => {
      const rotated = await store.rotate(...args)
      await new Promise<void>(resolve => { answer = resolve })
      return rotated
    }
  })
  // Process A's revocations go out to B once the test hands them over.
  const published: [string, number][] = []
  const a = await harness(t, {
    sessionStore: store,
    revocationFeed: { revocations: loadedRevocations(), async publish (id, until) { published.push([id, until]) }, start () {}, stop () {} }
  })
  const b = await harness(t, { sessionStore: slow })
  const login = success(t, await a.authenticator.login(credentials, at))
  const refreshing = b.authenticator.refresh(login.issued!.refresh_token, at)
  await new Promise(resolve => setImmediate(resolve))
  await a.authenticator.endSession(login.session!)
  clock.tick(900)
  answer()
  const refreshed = success(t, await refreshing)
  t.equal(published.length, 1, 'the session\'s end went out')
  const [[id, until]] = published
  b.revocations.add((readRevocation(id!) as { session: string }).session, until!)
  const { exp } = b.app.jwt.decode<{ exp: number }>(refreshed.issued!.access_token)!
  clock.setSystemTime(exp * 1000 - 100)
  t.match(b.authenticator.verifyAccessToken(refreshed.issued!.access_token, at), { ok: false, code: 'AUTH_FAILED' }, 'refused until its exp')
})

t.test('Authenticator: endUser rejects when the store does', async (t) => {
  const { authenticator } = await harness(t, { sessionStore: new BrokenStore() })
  await t.rejects(authenticator.endUser('alice'), { message: 'store down' })
  await t.rejects(authenticator.endSession('sid'), { message: 'store down' })
})

t.test('Authenticator: endUser with a revocation feed that hangs rejects at one store deadline, both revocations applied here', async (t) => {
  const clock = fakeClock(t, ['Date', 'setTimeout', 'clearTimeout'])
  const revocations = loadedRevocations()
  const stamped: string[] = []
  // A hung Redis: this process applies each revocation at once, and the write to Redis never answers.
  const revocationFeed = {
    revocations,
    publish (id: string, until: number): Promise<void> {
      const revoked = readRevocation(id) as { user: string, at: number }
      stamped.push(revoked.user)
      revocations.addUser(revoked.user, revoked.at, until)
      return new Promise<void>(() => {})
    },
    start () {},
    stop () {}
  }
  const { authenticator } = await harness(t, { revocations, revocationFeed, storeTimeoutMs: 3_000 })
  const rejected = { at: 0 }
  const started = Date.now()
  const revoked = authenticator.endUser('alice').catch((err: Error) => { rejected.at = Date.now() - started; return err })
  while (rejected.at === 0) await clock.tickAsync(100)
  const rejectedAt = rejected.at
  // The second revocation's wait, with no time left, is a timer's shortest: a millisecond.
  t.ok(rejectedAt <= 3_001, `rejected 3 s in, as a store call that hangs (${rejectedAt} ms)`)
  t.match(await revoked, { message: 'no answer within 3000 ms' })
  t.same(stamped, ['alice', 'alice'], 'the second revocation, once the store has answered, still applied in this process')
})

t.test('Authenticator: a session store that hangs fails closed at the deadline', async (t) => {
  const clock = fakeClock(t, ['setTimeout', 'clearTimeout'])
  const hanging = new MemorySessionStore()
  hanging.rotate = () => new Promise(() => {})
  const { authenticator } = await harness(t, { sessionStore: hanging, storeTimeoutMs: 3_000 })
  const refreshed = authenticator.refresh(newRefreshToken(newSessionId()), at)
  clock.tick(3_000)
  t.match(await refreshed, { ok: false, code: 'SERVICE_UNAVAILABLE' })
})

t.test('Authenticator: a store write carries a deadline a third of the way into the store timeout', async (t) => {
  fakeClock(t, ['Date'], 1_000_000)
  const memory = new MemorySessionStore()
  const deadlines: number[] = []
  const store: SessionStore = {
    create: (s, d) => { deadlines.push(d); return memory.create(s, d) },
    rotate: (a, b, c, d) => { deadlines.push(d); return memory.rotate(a, b, c, d) },
    lookup: (h) => memory.lookup(h),
    end: (id, d) => { deadlines.push(d); return memory.end(id, d) },
    endUser: (u, d) => { deadlines.push(d); return memory.endUser(u, d) }
  }
  const { authenticator } = await harness(t, { sessionStore: store, storeTimeoutMs: 3_000 })
  const login = success(t, await authenticator.login(credentials, at))
  const refreshed = success(t, await authenticator.refresh(login.issued!.refresh_token, at))
  await authenticator.logout(refreshed.issued!.refresh_token)
  await authenticator.endUser('alice')
  t.same(deadlines, [1_001_000, 1_001_000, 1_001_000, 1_001_000])
})

t.test('Authenticator: a refresh whose store acts only after the timeout is SERVICE_UNAVAILABLE, and has not rotated', async (t) => {
  const clock = fakeClock(t, ['Date', 'setTimeout', 'clearTimeout'])
  const memory = new MemorySessionStore()
  let slow = false
  // The memory store, except that a slow rotation reaches it only after the caller has given up.
  const store: SessionStore = {
    create: (s, d) => memory.create(s, d),
    rotate: (a, b, c, d) => slow
      ? new Promise((resolve, reject) => setTimeout(() => memory.rotate(a, b, c, d).then(resolve, reject), 5_000))
      : memory.rotate(a, b, c, d),
    lookup: (h) => memory.lookup(h),
    end: (id, d) => memory.end(id, d),
    endUser: (u, d) => memory.endUser(u, d)
  }
  const { authenticator, ended } = await harness(t, { sessionStore: store, storeTimeoutMs: 3_000 })
  const login = success(t, await authenticator.login(credentials, at))
  slow = true
  const timedOut = authenticator.refresh(login.issued!.refresh_token, at)
  await clock.tickAsync(3_000)
  t.match(await timedOut, { ok: false, code: 'SERVICE_UNAVAILABLE' })
  await clock.tickAsync(2_000) // the late rotation reaches the store now, past its deadline
  slow = false
  success(t, await authenticator.refresh(login.issued!.refresh_token, at))
  t.same(ended, [], 'the retry was no reuse')
})

/** The memory store, whose rotations act and then answer as `answer` says: lost (rejected), or late (never here). */
function rotatingStore (answer: { lost: boolean }, unrotates = { fail: false }): SessionStore {
  const memory = new MemorySessionStore()
  return {
    create: (s, d) => memory.create(s, d),
    rotate: async (a, b, c, d) => {
      const rotated = await memory.rotate(a, b, c, d)
      if (answer.lost) throw new Error('connection reset before the answer')
      return rotated
    },
    unrotate: (a, b) => unrotates.fail ? Promise.reject(new Error('store away')) : memory.unrotate(a, b),
    lookup: (h) => memory.lookup(h),
    end: (id, d) => memory.end(id, d),
    endUser: (u, d) => memory.endUser(u, d)
  }
}

t.test('Authenticator: a refresh whose rotation acted but whose answer was lost is SERVICE_UNAVAILABLE, its rotation taken back', async (t) => {
  const answer = { lost: false }
  const { authenticator, ended } = await harness(t, { sessionStore: rotatingStore(answer) })
  const login = success(t, await authenticator.login(credentials, at))
  answer.lost = true
  t.match(await authenticator.refresh(login.issued!.refresh_token, at), { ok: false, code: 'SERVICE_UNAVAILABLE' })
  answer.lost = false
  const retried = success(t, await authenticator.refresh(login.issued!.refresh_token, at))
  t.same(ended, [], 'the retry with the token the client holds is no reuse')
  success(t, await authenticator.refresh(retried.issued!.refresh_token, at))
})

t.test('Authenticator: while a rotation\'s give-back has not landed, a refresh of its session is SERVICE_UNAVAILABLE, and rotates nothing', async (t) => {
  const answer = { lost: false }
  const unrotates = { fail: true }
  const { authenticator, ended } = await harness(t, { sessionStore: rotatingStore(answer, unrotates) })
  const login = success(t, await authenticator.login(credentials, at))
  const other = success(t, await authenticator.login(credentials, at))
  answer.lost = true
  t.match(await authenticator.refresh(login.issued!.refresh_token, at), { ok: false, code: 'SERVICE_UNAVAILABLE' })
  answer.lost = false
  t.match(await authenticator.refresh(login.issued!.refresh_token, at), { ok: false, code: 'SERVICE_UNAVAILABLE' },
    'the store away still: the retry waits, it is not taken for reuse')
  success(t, await authenticator.refresh(other.issued!.refresh_token, at))
  unrotates.fail = false
  success(t, await authenticator.refresh(login.issued!.refresh_token, at))
  t.same(ended, [])
})

t.test('Authenticator: a logout with the token before a rotation still being given back waits for it: no reuse', async (t) => {
  const answer = { lost: false }
  const unrotates = { fail: true }
  const { authenticator, ended } = await harness(t, { sessionStore: rotatingStore(answer, unrotates) })
  const login = success(t, await authenticator.login(credentials, at))
  answer.lost = true
  t.match(await authenticator.refresh(login.issued!.refresh_token, at), { ok: false, code: 'SERVICE_UNAVAILABLE' })
  t.match(await authenticator.logout(login.issued!.refresh_token), { ok: false, code: 'SERVICE_UNAVAILABLE' },
    'not yet given back: the logout waits, as for a store away')
  await t.rejects(authenticator.endCurrentSession(login.issued!.refresh_token), 'and so does ending it from a cookie')
  t.same(ended, [], 'nothing taken for reuse')
  unrotates.fail = false
  t.same(await authenticator.logout(login.issued!.refresh_token), { ok: true }, 'given back: the logout ends the session')
  t.same(ended, [login.session])
})

t.test('Authenticator: a refresh whose client left while its token rotated takes the rotation back', async (t) => {
  const { authenticator, ended } = await harness(t)
  const login = success(t, await authenticator.login(credentials, at))
  let asked = 0
  // Still there when the refresh begins; gone by the time the store has answered.
  const leaving: AuthContext = { ...at, waiting: () => ++asked === 1 }
  t.match(await authenticator.refresh(login.issued!.refresh_token, leaving), {
    ok: false, code: 'SERVICE_UNAVAILABLE', reason: 'the client left while its refresh token rotated'
  })
  success(t, await authenticator.refresh(login.issued!.refresh_token, at))
  t.same(ended, [])
})

t.test('Authenticator: with a store of the app\'s that cannot take a rotation back, a lost answer\'s rotation stands', async (t) => {
  const answer = { lost: false }
  const { unrotate: _unrotate, ...store } = rotatingStore(answer)
  const { authenticator, ended } = await harness(t, { sessionStore: store })
  const login = success(t, await authenticator.login(credentials, at))
  answer.lost = true
  t.match(await authenticator.refresh(login.issued!.refresh_token, at), { ok: false, code: 'SERVICE_UNAVAILABLE' })
  answer.lost = false
  t.match(await authenticator.refresh(login.issued!.refresh_token, at), { ok: false, code: 'INVALID_CREDENTIALS' }, 'the retry is reuse')
  t.same(ended, [login.session])
})

t.test('Authenticator: until the revocations are loaded, a token with a session is SERVICE_UNAVAILABLE', async (t) => {
  const revocations = new Revocations()
  const { app, authenticator } = await harness(t, { revocations })
  const { access_token: withSession } = authenticator.signAccessToken(alice, 'sid-1')
  t.match(authenticator.verifyAccessToken(withSession, at), { ok: false, code: 'SERVICE_UNAVAILABLE', reason: 'revocations not loaded yet' })
  t.match(authenticator.verifyAccessToken(app.jwt.sign({ id: 'u1' }), at), { ok: true, session: undefined }, 'without a session: unaffected')
  const provider = app.jwt.sign({ sub: 'kc-user', iss: 'https://id.example.com/realms/app', sid: 'a-keycloak-session' })
  t.match(authenticator.verifyAccessToken(provider, at), { ok: true, session: undefined }, 'a provider\'s `sid` is no session here: unaffected')
  revocations.markLoaded()
  t.match(authenticator.verifyAccessToken(withSession, at), { ok: true, session: 'sid-1' })
})
