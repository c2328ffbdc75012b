// Unit tests of lib/auth: the session store, revocations, TOTP, the user directory and the authenticator (the latter
// over a real @fastify/jwt).
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import FakeTimers from '@sinonjs/fake-timers'
import fastifyJwt from '@fastify/jwt'
import { MemorySessionStore } from '../lib/auth/memory-session-store.js'
import { Revocations } from '../lib/auth/revocations.js'
import { TOTP } from 'otpauth'
import { otpKey, totpStep } from '../lib/auth/totp.js'
import { MemoryOtpSteps } from '../lib/auth/otp-steps.js'
import { UserDirectory } from '../lib/auth/user-directory.js'
import { Authenticator, defaultMapClaims, type AuthenticatorOptions, type AuthResult, type AuthSuccess } from '../lib/auth/authenticator.js'
import { hashRefreshToken, newRefreshToken, newSessionId, readRefreshToken } from '../lib/auth/refresh-tokens.js'
import { createAttemptLimiter } from '../lib/auth/attempt-limiter.js'
import { PasswordChecks } from '../lib/auth/password-checks.js'
import type { Identity, RefreshSession, SessionStore } from '../lib/index.js'
import { secret } from './helpers.js'

const alice: Identity = { user: 'alice', role: 'editor', admin: false }
const bob: Identity = { user: 'bob', role: null, admin: true }
const hour = 3_600_000
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

function session (id: string, tokenHash: string, identity: Identity = alice, expiresAt = Date.now() + hour): RefreshSession {
  return { id, identity, tokenHash, expiresAt }
}

// ---------------------------------------------------------------------------------------------------------------
// MemorySessionStore

/** A deadline well ahead, for writes that must act. */
const soon = () => Date.now() + hour
/** The token `tokenHash` of session `sessionId`, as a store sees it. */
const token = (sessionId: string, tokenHash: string) => ({ sessionId, tokenHash })

t.test('MemorySessionStore: create then lookup finds the current session', async (t) => {
  const store = new MemorySessionStore()
  const created = session('s1', 'h1')
  await store.create(created, soon())
  t.same(await store.lookup(token('s1', 'h1')), { status: 'current', session: created })
})

t.test('MemorySessionStore: create keeps its own copy of the session', async (t) => {
  const store = new MemorySessionStore()
  const created = session('s1', 'h1')
  await store.create(created, soon())
  created.tokenHash = 'tampered'
  t.match(await store.lookup(token('s1', 'h1')), { status: 'current', session: { tokenHash: 'h1' } })
})

t.test('MemorySessionStore: rotate replaces the hash and extends the session', async (t) => {
  const store = new MemorySessionStore()
  await store.create(session('s1', 'h1'), soon())
  const later = Date.now() + 2 * hour
  t.same(await store.rotate(token('s1', 'h1'), 'h2', later, soon()), {
    status: 'rotated',
    session: { id: 's1', identity: alice, tokenHash: 'h2', expiresAt: later }
  })
  t.match(await store.lookup(token('s1', 'h2')), { status: 'current', session: { id: 's1', expiresAt: later } })
})

t.test('MemorySessionStore: a rotated token presented again is reused, and so is any other naming the session', async (t) => {
  const store = new MemorySessionStore()
  await store.create(session('s1', 'h1'), soon())
  await store.rotate(token('s1', 'h1'), 'h2', Date.now() + hour, soon())
  t.same(await store.rotate(token('s1', 'h1'), 'h3', Date.now() + hour, soon()), { status: 'reused', sessionId: 's1' })
  t.same(await store.lookup(token('s1', 'h1')), { status: 'reused', sessionId: 's1' })
  t.same(await store.lookup(token('s1', 'forged')), { status: 'reused', sessionId: 's1' })
  t.match(await store.lookup(token('s1', 'h2')), { status: 'current' }, 'reuse alone changes nothing: the caller ends the session')
})

t.test('MemorySessionStore: of two concurrent rotations of one token, exactly one rotates', async (t) => {
  const store = new MemorySessionStore()
  await store.create(session('s1', 'h1'), soon())
  const results = await Promise.all([
    store.rotate(token('s1', 'h1'), 'a', Date.now() + hour, soon()),
    store.rotate(token('s1', 'h1'), 'b', Date.now() + hour, soon())
  ])
  t.same(results.map(r => r.status).sort(), ['reused', 'rotated'])
})

t.test('MemorySessionStore: tokens of unknown sessions are unknown', async (t) => {
  const store = new MemorySessionStore()
  await store.create(session('s1', 'h1'), soon())
  t.same(await store.rotate(token('nope', 'h1'), 'h2', Date.now() + hour, soon()), { status: 'unknown' })
  t.same(await store.lookup(token('nope', 'h1')), { status: 'unknown' })
})

t.test('MemorySessionStore: an expired session is unknown, by its current and its rotated tokens', async (t) => {
  const store = new MemorySessionStore()
  await store.create(session('s1', 'h1'), soon())
  await store.rotate(token('s1', 'h1'), 'h2', Date.now() - 1, soon())
  t.same(await store.lookup(token('s1', 'h2')), { status: 'unknown' })
  t.same(await store.lookup(token('s1', 'h1')), { status: 'unknown' })
  t.same(await store.rotate(token('s1', 'h2'), 'h3', Date.now() + hour, soon()), { status: 'unknown' })
  t.equal(await store.end('s1', soon()), null, 'presenting it forgot it')

  await store.create(session('s2', 'x1', alice, Date.now() - 1), soon())
  t.same(await store.rotate(token('s2', 'x1'), 'x2', Date.now() + hour, soon()), { status: 'unknown' })
})

t.test('MemorySessionStore: writes past their deadline reject and change nothing', async (t) => {
  const store = new MemorySessionStore()
  await store.create(session('s1', 'h1'), soon())
  const passed = Date.now() - 1
  await t.rejects(store.create(session('s2', 'x1'), passed), { name: 'DeadlinePassedError' })
  await t.rejects(store.rotate(token('s1', 'h1'), 'h2', Date.now() + hour, passed), { name: 'DeadlinePassedError' })
  await t.rejects(store.end('s1', passed), { name: 'DeadlinePassedError' })
  await t.rejects(store.endUser('alice', passed), { name: 'DeadlinePassedError' })
  t.match(await store.lookup(token('s1', 'h1')), { status: 'current' })
  t.same(await store.lookup(token('s2', 'x1')), { status: 'unknown' })
})

t.test('MemorySessionStore: end ends a session and resolves its identity', async (t) => {
  const store = new MemorySessionStore()
  await store.create(session('s1', 'h1'), soon())
  await store.rotate(token('s1', 'h1'), 'h2', Date.now() + hour, soon())
  t.same(await store.end('s1', soon()), alice)
  t.same(await store.lookup(token('s1', 'h2')), { status: 'unknown' })
  t.same(await store.lookup(token('s1', 'h1')), { status: 'unknown' }, 'rotated tokens are unknown too')
  t.equal(await store.end('s1', soon()), null)
  t.equal(await store.end('never', soon()), null)
})

t.test('MemorySessionStore: endUser ends every session of that user only', async (t) => {
  const store = new MemorySessionStore()
  await store.create(session('a1', 'ha1', alice), soon())
  await store.create(session('a2', 'ha2', alice), soon())
  await store.create(session('b1', 'hb1', bob), soon())
  t.same((await store.endUser('alice', soon())).sort(), ['a1', 'a2'])
  t.same(await store.lookup(token('a1', 'ha1')), { status: 'unknown' })
  t.same(await store.lookup(token('a2', 'ha2')), { status: 'unknown' })
  t.match(await store.lookup(token('b1', 'hb1')), { status: 'current' })
  t.same(await store.endUser('alice', soon()), [])
})

t.test('MemorySessionStore: create sweeps expired sessions with sweepEveryMs: 0', async (t) => {
  const store = new MemorySessionStore({ sweepEveryMs: 0 })
  await store.create(session('old', 'h-old', alice, Date.now() - 1), soon())
  await store.create(session('live', 'h-live', bob), soon())
  await store.create(session('new', 'h-new', bob), soon())
  t.equal(await store.end('old', soon()), null, 'the expired session was swept')
  t.same(await store.end('live', soon()), bob, 'an unexpired one was kept')
})

t.test('MemorySessionStore: create does not sweep before sweepEveryMs has passed', async (t) => {
  const store = new MemorySessionStore()
  await store.create(session('old', 'h-old', alice, Date.now() - 1), soon())
  await store.create(session('new', 'h-new', bob), soon())
  t.same(await store.end('old', soon()), alice, 'still there: nobody presented it and no sweep ran')
})

// ---------------------------------------------------------------------------------------------------------------
// Revocations

t.test('Revocations: add then has', async (t) => {
  const revocations = new Revocations()
  t.notOk(revocations.has('s1'))
  revocations.add('s1', Date.now() + hour)
  t.ok(revocations.has('s1'))
  t.notOk(revocations.has('s2'))
})

t.test('Revocations: not loaded until the feed says so, then for good', async (t) => {
  const revocations = new Revocations()
  t.notOk(revocations.loaded)
  revocations.markLoaded()
  t.ok(revocations.loaded)
})

t.test('Revocations: an entry expires after the ttl and is pruned by later adds', async (t) => {
  const revocations = new Revocations()
  revocations.add('s1', Date.now() + 20)
  revocations.add('s2', Date.now() + 20)
  t.ok(revocations.has('s1'))
  await sleep(30)
  t.notOk(revocations.has('s1'))
  t.notOk(revocations.has('s2'))
  revocations.add('s3', Date.now() + hour)
  t.ok(revocations.has('s3'))
  revocations.add('s3', Date.now() + 10)
  await sleep(30)
  t.ok(revocations.has('s3'), 'a later deadline is kept over an earlier one')
  t.notOk(revocations.has('s1'))
})

// ---------------------------------------------------------------------------------------------------------------
// TOTP

const rfcSecret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ' // '12345678901234567890', RFC 6238's SHA-1 key
const rfcKey = otpKey(rfcSecret)

t.test('totp: RFC 6238 test vectors (SHA-1, 6 digits) name their step', async (t) => {
  t.equal(Buffer.from(rfcKey.bytes).toString(), '12345678901234567890')
  // RFC 6238 appendix B, last six digits of the 8-digit values.
  const vectors: [number, string][] = [
    [59, '287082'],
    [1111111109, '081804'],
    [1111111111, '050471'],
    [1234567890, '005924'],
    [2000000000, '279037'],
    [20000000000, '353130']
  ]
  for (const [seconds, code] of vectors) {
    t.equal(totpStep(rfcKey, code, seconds * 1000), Math.floor(seconds / 30), `T=${seconds}`)
  }
})

t.test('totp: base32 is case-insensitive and ignores spaces and padding', async (t) => {
  t.same(otpKey('gezd gnbv gy3t qojq gezd gnbv gy3t qojq').bytes, rfcKey.bytes)
  t.equal(Buffer.from(otpKey('MZXW6===').bytes).toString(), 'foo')
  t.equal(Buffer.from(otpKey('MZXW6YQ=').bytes).toString(), 'foob')
})

t.test('totp: bad base32 throws', async (t) => {
  t.throws(() => otpKey('GEZDGNBV1'), { name: 'TypeError', message: 'OTP secret must be base32' })
  t.throws(() => otpKey('GEZD-GNBV'), TypeError)
})

t.test('totp: accepts the neighbouring steps and nothing further, and says which step the code is', async (t) => {
  const code = '081804' // step 37037036: T = 1111111080 .. 1111111109 s
  const step = 37037036
  const start = 1111111080_000
  t.equal(totpStep(rfcKey, code, start), step, 'same step, first ms')
  t.equal(totpStep(rfcKey, code, start + 29_999), step, 'same step, last ms')
  t.equal(totpStep(rfcKey, code, start - 1), step, 'the clock one step behind')
  t.equal(totpStep(rfcKey, code, start - 30_000), step, 'the clock one step behind, first ms')
  t.equal(totpStep(rfcKey, code, start + 59_999), step, 'the clock one step ahead')
  t.equal(totpStep(rfcKey, code, start - 30_001), null, 'two steps behind')
  t.equal(totpStep(rfcKey, code, start + 60_000), null, 'two steps ahead')
})

t.test('totp: wrong codes, wrong lengths and other characters are refused', async (t) => {
  for (const code of ['287083', '28708', '2870820', '', '94287082', '28708x', '２８７０８２', 'éééééé']) {
    t.equal(totpStep(rfcKey, code, 59_000), null, JSON.stringify(code))
  }
})

t.test('totp: totpStep defaults to the current time', async (t) => {
  t.equal(totpStep(rfcKey, TOTP.generate({ secret: rfcKey })), Math.floor(Date.now() / 30_000))
})

t.test('totp: the first step of the epoch has no earlier neighbour to check', async (t) => {
  t.equal(totpStep(rfcKey, TOTP.generate({ secret: rfcKey, timestamp: 0 }), 10_000), 0)
})

t.test('MemoryOtpSteps: a step is claimed once per user, and only when newer than the last', async (t) => {
  const steps = new MemoryOtpSteps()
  t.ok(await steps.claim('alice', 10))
  t.notOk(await steps.claim('alice', 10), 'the same step again: a replay')
  t.notOk(await steps.claim('alice', 9), 'an older step')
  t.ok(await steps.claim('bob', 10), 'another user\'s codes are their own')
  t.ok(await steps.claim('alice', 11))
})

// ---------------------------------------------------------------------------------------------------------------
// UserDirectory

const otpSecret = 'JBSWY3DPEHPK3PXP'

async function directory () {
  const users = new UserDirectory()
  const carol = await users.add({ email: ' Carol@Example.com ', password: 'c4r0l!', role: 'editor' })
  const dave = await users.add({ email: 'dave@example.com', password: 'd4v3!', admin: true, otpSecret })
  return { users, carol, dave }
}

t.test('UserDirectory: add resolves a fresh identity with defaults', async (t) => {
  const users = new UserDirectory()
  const plain = await users.add({ email: 'plain@example.com', password: 'p' })
  t.match(plain, { user: /^[0-9a-f-]{36}$/, role: null, admin: false })
  const other = await users.add({ email: 'other@example.com', password: 'p', role: 'r', admin: true })
  t.match(other, { role: 'r', admin: true })
  t.not(other.user, plain.user)
  t.equal(users.size, 2)
})

t.test('UserDirectory: the right password resolves the identity', async (t) => {
  const { users, carol } = await directory()
  t.same(await users.verifyCredentials({ email: 'carol@example.com', password: 'c4r0l!' }), carol)
  t.same(carol, { user: carol.user, role: 'editor', admin: false })
})

t.test('UserDirectory: a wrong password resolves null', async (t) => {
  const { users } = await directory()
  t.equal(await users.verifyCredentials({ email: 'carol@example.com', password: 'wrong' }), null)
})

t.test('UserDirectory: an unknown email resolves null', async (t) => {
  const { users } = await directory()
  t.equal(await users.verifyCredentials({ email: 'nobody@example.com', password: 'c4r0l!' }), null)
  t.equal(await users.verifyCredentials({ email: 'nobody-else@example.com', password: 'x' }), null, 'twice: the decoy hash is reused')
})

t.test('UserDirectory: emails are case-insensitive and trimmed', async (t) => {
  const { users, carol } = await directory()
  t.same(await users.verifyCredentials({ email: '  CAROL@EXAMPLE.COM', password: 'c4r0l!' }), carol)
  t.equal(users.emailOf(carol.user), 'carol@example.com')
  t.equal(users.emailOf('someone-else'), null)
})

t.test('UserDirectory: an otp is required when the user has an otpSecret', async (t) => {
  const { users, dave } = await directory()
  const now = TOTP.generate({ secret: otpKey(otpSecret) })
  const wrong = String((Number(now) + 500_000) % 1_000_000).padStart(6, '0')
  t.equal(await users.verifyCredentials({ email: 'dave@example.com', password: 'd4v3!' }), null, 'missing')
  t.equal(await users.verifyCredentials({ email: 'dave@example.com', password: 'd4v3!', otp: wrong }), null, 'wrong')
  t.equal(await users.verifyCredentials({ email: 'dave@example.com', password: 'wrong', otp: now }), null, 'right otp, wrong password')
  t.same(await users.verifyCredentials({ email: 'dave@example.com', password: 'd4v3!', otp: now }), dave, 'right')
  t.same(dave, { user: dave.user, role: null, admin: true })
})

t.test('UserDirectory: an otp is accepted once; a wrong password does not use it up', async (t) => {
  const claimed: [string, number][] = []
  const memory = new MemoryOtpSteps()
  const users = new UserDirectory()
  users.useOtpSteps({ claim: (user, step) => { claimed.push([user, step]); return memory.claim(user, step) } })
  const dave = await users.add({ email: 'dave@example.com', password: 'd4v3!', otpSecret })
  const now = TOTP.generate({ secret: otpKey(otpSecret) })
  t.equal(await users.verifyCredentials({ email: 'dave@example.com', password: 'wrong', otp: now }), null)
  t.same(claimed, [], 'the code is claimed only once the password holds')
  t.same(await users.verifyCredentials({ email: 'dave@example.com', password: 'd4v3!', otp: now }), dave)
  t.equal(await users.verifyCredentials({ email: 'dave@example.com', password: 'd4v3!', otp: now }), null, 'replayed')
  t.equal(claimed.length, 2)
})

t.test('UserDirectory: a record of used steps that fails makes the check fail (SERVICE_UNAVAILABLE upstream)', async (t) => {
  const users = new UserDirectory()
  users.useOtpSteps({ claim: () => Promise.reject(new Error('redis down')) })
  await users.add({ email: 'dave@example.com', password: 'd4v3!', otpSecret })
  await t.rejects(users.verifyCredentials({ email: 'dave@example.com', password: 'd4v3!', otp: TOTP.generate({ secret: otpKey(otpSecret) }) }))
})

t.test('UserDirectory: an otp is ignored for a user without otpSecret', async (t) => {
  const { users, carol } = await directory()
  t.same(await users.verifyCredentials({ email: 'carol@example.com', password: 'c4r0l!', otp: '000000' }), carol)
})

t.test('UserDirectory: a bad otpSecret is refused when the user is added', async (t) => {
  await t.rejects(new UserDirectory().add({ email: 'e@example.com', password: 'p', otpSecret: 'not base32!' }), TypeError)
})

t.test('UserDirectory: verifyCredentials returns a copy of the identity', async (t) => {
  const { users, carol } = await directory()
  const first = (await users.verifyCredentials({ email: 'carol@example.com', password: 'c4r0l!' }))!
  first.admin = true
  t.same(await users.verifyCredentials({ email: 'carol@example.com', password: 'c4r0l!' }), carol)
})

// ---------------------------------------------------------------------------------------------------------------
// Refresh tokens

t.test('refresh tokens: the session id then 256 random bits, url-safe, hashed with SHA-256', async (t) => {
  const session = newSessionId()
  t.match(session, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
  const token = newRefreshToken(session)
  t.match(token, /^[A-Za-z0-9_-]{64}$/)
  t.equal(Buffer.from(token, 'base64url').length, 48)
  t.not(newRefreshToken(session), token)
  t.equal(hashRefreshToken(token), hashRefreshToken(token))
  t.not(hashRefreshToken(token), token)
  t.same(readRefreshToken(token), { sessionId: session, tokenHash: hashRefreshToken(token) })
})

t.test('refresh tokens: anything else is no token', async (t) => {
  const token = newRefreshToken(newSessionId())
  for (const other of ['', 'whatever', token.slice(1), `${token}A`, `${token.slice(0, 63)}=`, `${token.slice(0, 63)}!`]) {
    t.equal(readRefreshToken(other), null, JSON.stringify(other))
  }
})

// ---------------------------------------------------------------------------------------------------------------
// Authenticator

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
    verifyToken: (token) => app.jwt.verify(token),
    mapClaims: defaultMapClaims('fastify-realtime'),
    issuer: 'fastify-realtime',
    passwordChecks: new PasswordChecks({ limit: 16, perAddress: 4 }),
    verifyCredentials: async ({ email, password }) => email === 'alice@example.com' && password === 'secret' ? alice : null,
    sessionStore: store,
    revocations,
    accessTokenTtlMs: 15 * 60_000,
    refreshTokenTtlMs: hour,
    revocationFeed: {
      async publish (session, until) {
        ended.push(session)
        revocations.add(session, until)
      },
      start () {}
    },
    storeTimeoutMs: 1_000,
    attemptLimiter: createAttemptLimiter(null),
    ...options
  })
  return { app, authenticator, store, revocations, ended }
}

const credentials = { email: 'alice@example.com', password: 'secret' }

function success (t: Test, result: AuthResult): AuthSuccess {
  t.ok(result.ok, 'succeeded')
  if (!result.ok) throw new Error(`failed: ${result.code} ${result.reason}`)
  return result
}

t.test('defaultMapClaims: id or sub, role, and admin_access only from the plugin\'s own issuer', async (t) => {
  const mapClaims = defaultMapClaims('fastify-realtime')
  t.same(mapClaims({ id: 'u1', role: 'editor', admin_access: true, iss: 'fastify-realtime' }), { user: 'u1', role: 'editor', admin: true })
  t.same(mapClaims({ id: 'u1', admin_access: true }), { user: 'u1', role: null, admin: false }, 'no issuer: not admin')
  t.same(mapClaims({ id: 'u1', admin_access: true, iss: 'elsewhere' }), { user: 'u1', role: null, admin: false }, 'another issuer')
  t.same(mapClaims({ sub: 'u2', admin: true, iss: 'fastify-realtime' }), { user: 'u2', role: null, admin: false }, 'a bare admin claim')
  t.same(mapClaims({ id: 'u3', sub: 'ignored', role: 42, admin_access: 'yes', iss: 'fastify-realtime' }), { user: 'u3', role: null, admin: false })
  t.equal(mapClaims({ id: '' }), null)
  t.equal(mapClaims({ id: 7 }), null)
  t.equal(mapClaims({ role: 'editor' }), null)
})

t.test('Authenticator: verifyAccessToken accepts a valid token', async (t) => {
  const { app, authenticator } = await harness(t)
  const token = app.jwt.sign({ id: 'u1', role: 'editor', admin_access: false }, { expiresIn: '5m' })
  const result = success(t, authenticator.verifyAccessToken(token))
  t.same(result.identity, { user: 'u1', role: 'editor', admin: false })
  t.equal(result.session, undefined, 'a token issued elsewhere has no session')
  t.equal(result.expiresAt, app.jwt.decode<{ exp: number }>(token)!.exp * 1000)
})

t.test('Authenticator: verifyAccessToken of a token without exp never expires', async (t) => {
  const { app, authenticator } = await harness(t)
  const result = success(t, authenticator.verifyAccessToken(app.jwt.sign({ id: 'u1' })))
  t.equal(result.expiresAt, null)
})

t.test('Authenticator: verifyAccessToken of an expired token is TOKEN_EXPIRED', async (t) => {
  const { app, authenticator } = await harness(t)
  const token = app.jwt.sign({ id: 'u1', exp: Math.floor(Date.now() / 1000) - 10 })
  t.match(authenticator.verifyAccessToken(token), { ok: false, code: 'TOKEN_EXPIRED', reason: 'token expired' })
})

t.test('Authenticator: verifyAccessToken of garbage is AUTH_FAILED', async (t) => {
  const { authenticator } = await harness(t)
  for (const token of ['garbage', '', 'a.b.c']) {
    const result = authenticator.verifyAccessToken(token)
    t.match(result, { ok: false, code: 'AUTH_FAILED', reason: /^invalid token/ }, JSON.stringify(token))
    t.notMatch((result as { reason: string }).reason, token || 'never', 'the reason never carries the token')
  }
})

t.test('Authenticator: verifyAccessToken of a token signed with another key is AUTH_FAILED', async (t) => {
  const { authenticator } = await harness(t)
  const other = await jwtApp(t, 'some-other-secret')
  t.match(authenticator.verifyAccessToken(other.jwt.sign({ id: 'u1' })), { ok: false, code: 'AUTH_FAILED' })
})

t.test('Authenticator: verifyAccessToken of a token naming no user is AUTH_FAILED', async (t) => {
  const { app, authenticator } = await harness(t)
  t.match(authenticator.verifyAccessToken(app.jwt.sign({ role: 'editor' })), {
    ok: false, code: 'AUTH_FAILED', reason: 'token names no user'
  })
})

t.test('Authenticator: verifyAccessToken uses the mapClaims it was given', async (t) => {
  const { app, authenticator } = await harness(t, {
    mapClaims: (claims) => typeof claims.uid === 'number' ? { user: `u${claims.uid}`, role: 'mapped', admin: false } : null
  })
  t.match(authenticator.verifyAccessToken(app.jwt.sign({ uid: 7 })), { ok: true, identity: { user: 'u7', role: 'mapped' } })
  t.match(authenticator.verifyAccessToken(app.jwt.sign({ id: 'u1' })), { ok: false, code: 'AUTH_FAILED' })
})

t.test('Authenticator: verifyAccessToken of a revoked session is AUTH_FAILED', async (t) => {
  const { authenticator, revocations } = await harness(t)
  const { access_token: token } = authenticator.signAccessToken(alice, 'sid-1')
  t.match(authenticator.verifyAccessToken(token), { ok: true, session: 'sid-1' })
  revocations.add('sid-1', Date.now() + hour)
  t.match(authenticator.verifyAccessToken(token), { ok: false, code: 'AUTH_FAILED', reason: 'session revoked' })
})

t.test('Authenticator: a non-string sid claim is no session', async (t) => {
  const { app, authenticator, revocations } = await harness(t)
  revocations.add('42', Date.now() + hour)
  t.match(authenticator.verifyAccessToken(app.jwt.sign({ id: 'u1', sid: 42 })), { ok: true, session: undefined })
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
  const result = success(t, await authenticator.login(credentials))
  t.same(result.identity, alice)
  t.match(result.session, /^[0-9a-f-]{36}$/)
  t.match(result.issued, { access_token: String, expires: 15 * 60_000, refresh_token: /^[A-Za-z0-9_-]{64}$/ })
  t.match(app.jwt.decode(result.issued!.access_token), { id: 'alice', sid: result.session })
  t.equal(result.expiresAt, app.jwt.decode<{ exp: number }>(result.issued!.access_token)!.exp * 1000)
  t.match(authenticator.verifyAccessToken(result.issued!.access_token), { ok: true, session: result.session, identity: alice })
  t.match(await store.lookup(readRefreshToken(result.issued!.refresh_token)!), { status: 'current', session: { id: result.session } })
})

t.test('Authenticator: login with wrong credentials is INVALID_CREDENTIALS', async (t) => {
  const { authenticator } = await harness(t)
  t.match(await authenticator.login({ ...credentials, password: 'wrong' }), { ok: false, code: 'INVALID_CREDENTIALS' })
})

t.test('Authenticator: login passes the otp to verifyCredentials', async (t) => {
  const seen: unknown[] = []
  const { authenticator } = await harness(t, { verifyCredentials: async (credential) => { seen.push(credential); return alice } })
  success(t, await authenticator.login({ ...credentials, otp: '123456' }))
  t.same(seen, [{ ...credentials, otp: '123456' }])
})

t.test('Authenticator: verifyCredentials throwing is SERVICE_UNAVAILABLE', async (t) => {
  const { authenticator } = await harness(t, { verifyCredentials: async () => { throw new Error('directory down') } })
  t.match(await authenticator.login(credentials), { ok: false, code: 'SERVICE_UNAVAILABLE' })
})

t.test('Authenticator: refresh rotates the refresh token and keeps the session', async (t) => {
  const { authenticator } = await harness(t)
  const login = success(t, await authenticator.login(credentials))
  const refreshed = success(t, await authenticator.refresh(login.issued!.refresh_token))
  t.equal(refreshed.session, login.session)
  t.same(refreshed.identity, alice)
  t.not(refreshed.issued!.refresh_token, login.issued!.refresh_token)
  t.match(refreshed.issued!.refresh_token, /^[A-Za-z0-9_-]{43,}$/)
  t.match(authenticator.verifyAccessToken(refreshed.issued!.access_token), { ok: true, session: login.session })
  success(t, await authenticator.refresh(refreshed.issued!.refresh_token))
})

t.test('Authenticator: a rotated refresh token used again is reuse and revokes the session', async (t) => {
  const { authenticator, ended, revocations } = await harness(t)
  const login = success(t, await authenticator.login(credentials))
  const refreshed = success(t, await authenticator.refresh(login.issued!.refresh_token))
  t.match(await authenticator.refresh(login.issued!.refresh_token), {
    ok: false, code: 'INVALID_CREDENTIALS', reason: 'refresh token reused; session revoked'
  })
  t.same(ended, [login.session])
  t.ok(revocations.has(login.session!))
  t.match(await authenticator.refresh(refreshed.issued!.refresh_token), { ok: false, code: 'INVALID_CREDENTIALS' },
    'the newest token died with the session')
  t.match(authenticator.verifyAccessToken(refreshed.issued!.access_token), { ok: false, code: 'AUTH_FAILED' })
  t.match(authenticator.verifyAccessToken(login.issued!.access_token), { ok: false, code: 'AUTH_FAILED' })
})

t.test('Authenticator: two concurrent refreshes with one token: one succeeds, the other is reuse', async (t) => {
  const { authenticator, ended } = await harness(t)
  const login = success(t, await authenticator.login(credentials))
  const results = await Promise.all([
    authenticator.refresh(login.issued!.refresh_token),
    authenticator.refresh(login.issued!.refresh_token)
  ])
  t.same(results.map(r => r.ok).sort(), [false, true])
  t.same(ended, [login.session])
})

t.test('Authenticator: refresh with an unknown token is INVALID_CREDENTIALS', async (t) => {
  const { authenticator, ended } = await harness(t)
  t.match(await authenticator.refresh(newRefreshToken(newSessionId())), {
    ok: false, code: 'INVALID_CREDENTIALS', reason: 'unknown or expired refresh token'
  })
  t.match(await authenticator.refresh('not a token'), { ok: false, code: 'INVALID_CREDENTIALS' }, 'nor is what is no token')
  t.same(ended, [])
})

t.test('Authenticator: refresh with an expired session is INVALID_CREDENTIALS', async (t) => {
  const { authenticator } = await harness(t, { refreshTokenTtlMs: 1 })
  const login = success(t, await authenticator.login(credentials))
  await sleep(5)
  t.match(await authenticator.refresh(login.issued!.refresh_token), { ok: false, code: 'INVALID_CREDENTIALS' })
})

t.test('Authenticator: authenticate dispatches the three credential forms', async (t) => {
  const { authenticator } = await harness(t)
  const login = success(t, await authenticator.authenticate(credentials))
  t.ok(login.issued)
  const byRefresh = success(t, await authenticator.authenticate({ refresh_token: login.issued!.refresh_token }))
  t.ok(byRefresh.issued)
  const byToken = authenticator.authenticate({ access_token: byRefresh.issued!.access_token })
  t.notOk(byToken instanceof Promise, 'an access token answers synchronously')
  t.match(byToken, { ok: true, session: login.session, identity: alice })
  t.notOk((byToken as AuthSuccess).issued)
})

t.test('Authenticator: logout ends the session of a current refresh token', async (t) => {
  const { authenticator, ended, revocations } = await harness(t)
  const login = success(t, await authenticator.login(credentials))
  t.same(await authenticator.logout(login.issued!.refresh_token), { ok: true })
  t.same(ended, [login.session])
  t.ok(revocations.has(login.session!))
  t.match(authenticator.verifyAccessToken(login.issued!.access_token), { ok: false, code: 'AUTH_FAILED' })
  t.match(await authenticator.refresh(login.issued!.refresh_token), { ok: false, code: 'INVALID_CREDENTIALS' })
  t.match(await authenticator.logout(login.issued!.refresh_token), { ok: false, code: 'INVALID_CREDENTIALS' })
})

t.test('Authenticator: logout with a rotated refresh token is reuse: the session ends, the caller is refused', async (t) => {
  const { authenticator, ended } = await harness(t)
  const login = success(t, await authenticator.login(credentials))
  const refreshed = success(t, await authenticator.refresh(login.issued!.refresh_token))
  t.match(await authenticator.logout(login.issued!.refresh_token), { ok: false, code: 'INVALID_CREDENTIALS' })
  t.same(ended, [login.session])
  t.match(await authenticator.refresh(refreshed.issued!.refresh_token), { ok: false, code: 'INVALID_CREDENTIALS' })
})

t.test('Authenticator: logout with an unknown refresh token is INVALID_CREDENTIALS', async (t) => {
  const { authenticator, ended } = await harness(t)
  t.match(await authenticator.logout('unknown'), { ok: false, code: 'INVALID_CREDENTIALS' })
  t.same(ended, [])
})

t.test('Authenticator: a store that throws is SERVICE_UNAVAILABLE for login, refresh and logout', async (t) => {
  const { authenticator, ended } = await harness(t, { sessionStore: new BrokenStore() })
  t.match(await authenticator.login(credentials), { ok: false, code: 'SERVICE_UNAVAILABLE', reason: 'session store unavailable' })
  t.match(await authenticator.refresh(newRefreshToken(newSessionId())), { ok: false, code: 'SERVICE_UNAVAILABLE' })
  t.match(await authenticator.logout(newRefreshToken(newSessionId())), { ok: false, code: 'SERVICE_UNAVAILABLE' })
  t.same(ended, [])
})

t.test('Authenticator: a store that fails while ending a reused session is SERVICE_UNAVAILABLE', async (t) => {
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
  const login = success(t, await authenticator.login(credentials))
  success(t, await authenticator.refresh(login.issued!.refresh_token))
  endFails = true
  t.match(await authenticator.refresh(login.issued!.refresh_token), { ok: false, code: 'SERVICE_UNAVAILABLE' })
  t.match(await authenticator.logout(login.issued!.refresh_token), { ok: false, code: 'SERVICE_UNAVAILABLE' })
  t.same(ended, [], 'nothing was reported ended')
})

t.test('Authenticator: endSession ends the session, revokes it and reports it', async (t) => {
  const { authenticator, ended, revocations } = await harness(t)
  const login = success(t, await authenticator.login(credentials))
  await authenticator.endSession(login.session!)
  t.same(ended, [login.session])
  t.ok(revocations.has(login.session!))
  t.match(await authenticator.refresh(login.issued!.refresh_token), { ok: false, code: 'INVALID_CREDENTIALS' })
})

t.test('Authenticator: endUser ends, revokes and reports every session of the user', async (t) => {
  const users: Record<string, Identity> = { alice, bob }
  const { authenticator, ended, revocations } = await harness(t, {
    verifyCredentials: async ({ email }) => users[email] ?? null
  })
  const a1 = success(t, await authenticator.login({ email: 'alice', password: 'x' }))
  const a2 = success(t, await authenticator.login({ email: 'alice', password: 'x' }))
  const b1 = success(t, await authenticator.login({ email: 'bob', password: 'x' }))
  await authenticator.endUser('alice')
  t.same([...ended].sort(), [a1.session, a2.session].sort())
  t.ok(revocations.has(a1.session!))
  t.ok(revocations.has(a2.session!))
  t.notOk(revocations.has(b1.session!))
  t.match(authenticator.verifyAccessToken(a1.issued!.access_token), { ok: false, code: 'AUTH_FAILED' })
  t.match(authenticator.verifyAccessToken(b1.issued!.access_token), { ok: true, identity: bob })
  t.match(await authenticator.refresh(a2.issued!.refresh_token), { ok: false, code: 'INVALID_CREDENTIALS' })
  success(t, await authenticator.refresh(b1.issued!.refresh_token))
  await authenticator.endUser('nobody')
  t.equal(ended.length, 2)
})

t.test('Authenticator: endUser rejects when the store does', async (t) => {
  const { authenticator } = await harness(t, { sessionStore: new BrokenStore() })
  await t.rejects(authenticator.endUser('alice'), { message: 'store down' })
  await t.rejects(authenticator.endSession('sid'), { message: 'store down' })
})

t.test('Authenticator: a session store that hangs fails closed at the deadline', async (t) => {
  const hanging = new MemorySessionStore()
  hanging.rotate = () => new Promise(() => {})
  const { authenticator } = await harness(t, { sessionStore: hanging, storeTimeoutMs: 20 })
  t.match(await authenticator.refresh(newRefreshToken(newSessionId())), { ok: false, code: 'SERVICE_UNAVAILABLE' })
})

t.test('Authenticator: a store write carries a deadline a third of the way into the store timeout', async (t) => {
  const clock = FakeTimers.install({ now: 1_000_000, toFake: ['Date'] })
  t.teardown(() => clock.uninstall())
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
  const login = success(t, await authenticator.login(credentials))
  const refreshed = success(t, await authenticator.refresh(login.issued!.refresh_token))
  await authenticator.logout(refreshed.issued!.refresh_token)
  await authenticator.endUser('alice')
  t.same(deadlines, [1_001_000, 1_001_000, 1_001_000, 1_001_000])
})

t.test('Authenticator: a refresh whose store acts only after the timeout is SERVICE_UNAVAILABLE, and has not rotated', async (t) => {
  const clock = FakeTimers.install({ toFake: ['Date', 'setTimeout', 'clearTimeout'] })
  t.teardown(() => clock.uninstall())
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
  const login = success(t, await authenticator.login(credentials))
  slow = true
  const timedOut = authenticator.refresh(login.issued!.refresh_token)
  await clock.tickAsync(3_000)
  t.match(await timedOut, { ok: false, code: 'SERVICE_UNAVAILABLE' })
  await clock.tickAsync(2_000) // the late rotation reaches the store now, past its deadline
  slow = false
  success(t, await authenticator.refresh(login.issued!.refresh_token))
  t.same(ended, [], 'the retry was no reuse')
})

t.test('Authenticator: until the revocations are loaded, a token with a session is SERVICE_UNAVAILABLE', async (t) => {
  const revocations = new Revocations()
  const { app, authenticator } = await harness(t, { revocations })
  const { access_token: withSession } = authenticator.signAccessToken(alice, 'sid-1')
  t.match(authenticator.verifyAccessToken(withSession), { ok: false, code: 'SERVICE_UNAVAILABLE', reason: 'revocations not loaded yet' })
  t.match(authenticator.verifyAccessToken(app.jwt.sign({ id: 'u1' })), { ok: true, session: undefined }, 'without a session: unaffected')
  revocations.markLoaded()
  t.match(authenticator.verifyAccessToken(withSession), { ok: true, session: 'sid-1' })
})
