// Credential-attempt limits (PROTOCOL.md section 8): email/password attempts limited per client IP and per email,
// over a socket and over POST /auth/login, in memory or shared on Redis, failing closed when Redis is away.
import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { once } from 'node:events'
import { availableParallelism } from 'node:os'
import { Redis } from 'ioredis'
import Fastify from 'fastify'
import realtime, { MemorySessionStore, RealtimeError, type RealtimeOptions, type RefreshSession } from '../../lib/index.js'
import { resolveConfig } from '../../lib/config.js'
import { admin, adminLookup, build, connect, directoryOf, editor, fakeClock, secret, type Built, type Client } from '../helpers.js'
import { RedisServer } from '../redis-server.js'

const whoami = { whoami: (_m: unknown, c: { send: (m: object) => void, accountability: { user: string | null } }) => c.send({ type: 'whoami', user: c.accountability.user }) }
const silent = { logger: false } as const
const retryAfterPattern = /^Too many requests, retry after (\d+)ms\.$/
const invalidCredentials = { errors: [{ message: 'Invalid user credentials.', extensions: { code: 'INVALID_CREDENTIALS' } }] }
const serviceUnavailable = { errors: [{ message: 'Service unavailable.', extensions: { code: 'SERVICE_UNAVAILABLE' } }] }

function limited (t: Test, options: RealtimeOptions = {}, redis?: RedisServer): Promise<Built> {
  return build(t, {
    users: [admin, editor],
    authRoutes: true,
    rest: { handlers: whoami },
    ...(redis ? { redis: redis.url } : {}),
    ...options
  }, silent)
}

function login (app: FastifyInstance, credentials: { email: string, password: string }, remoteAddress = '127.0.0.1') {
  return app.inject({ method: 'POST', url: '/auth/login', payload: credentials, remoteAddress })
}

const wrong = (email: string) => ({ email, password: 'not-the-password' })

/** The retry-after milliseconds of a REQUESTS_EXCEEDED message, checked to lie inside the window. */
function retryAfterOf (t: Test, message: string, windowMs = 60_000): number {
  const match = retryAfterPattern.exec(message)
  t.ok(match, `"${message}" names the retry-after`)
  const ms = Number(match![1])
  t.ok(ms > 0 && ms <= windowMs, `${ms} ms lies inside the window`)
  return ms
}

/** A 429 with Directus's body (exactly) and Retry-After in seconds; resolves the retry-after milliseconds. */
function tooMany (t: Test, response: LightMyRequestResponse, windowMs?: number): number {
  t.equal(response.statusCode, 429)
  const body = response.json()
  const ms = retryAfterOf(t, body.errors[0].message, windowMs)
  t.same(body, { errors: [{ message: `Too many requests, retry after ${ms}ms.`, extensions: { code: 'REQUESTS_EXCEEDED' } }] })
  t.equal(response.headers['retry-after'], String(Math.ceil(ms / 1000)), 'Retry-After in seconds')
  return ms
}

/** The exact REQUESTS_EXCEEDED frame (with its uid); resolves the retry-after milliseconds. */
async function exceededFrame (t: Test, client: Client, uid?: string | number): Promise<number> {
  const frame = await client.next() as { error: { message: string } }
  const ms = retryAfterOf(t, frame.error.message)
  const error = { code: 'REQUESTS_EXCEEDED', message: `Too many requests, retry after ${ms}ms.` }
  t.same(frame, uid === undefined ? { type: 'auth', status: 'error', error } : { type: 'auth', status: 'error', error, uid })
  return ms
}

async function failHandshake (t: Test, url: string, email: string): Promise<void> {
  const client = await connect(url)
  client.send({ type: 'auth', ...wrong(email) })
  t.match(await client.next(), { error: { code: 'AUTH_FAILED' } })
  t.equal((await client.closed).code, 4401)
}

t.test('per IP on a socket: after 10 failures the handshake gets REQUESTS_EXCEEDED and 4429, a later auth leaves the socket as it was', async t => {
  const { app, url } = await limited(t)
  for (let i = 0; i < 10; i++) await failHandshake(t, url('/websocket'), `nobody${i}@example.com`)

  const refused = await connect(url('/websocket'))
  refused.send({ type: 'auth', email: admin.email, password: admin.password, uid: 'h' })
  await exceededFrame(t, refused, 'h')
  t.equal((await refused.closed).code, 4429, 'the right password was not even checked')

  // Access tokens are not limited; a later password attempt is refused and changes nothing.
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: app.realtime.signAccessToken({ user: 'u1', role: null, admin: false }).access_token })
  t.same(await client.next(), { type: 'auth', status: 'ok' })
  client.send({ type: 'auth', email: admin.email, password: admin.password, uid: 7 })
  await exceededFrame(t, client, 7)
  client.send({ type: 'whoami' })
  t.same(await client.next(), { type: 'whoami', user: 'u1' }, 'the identity stayed and the socket is open')
  client.send({ type: 'auth', email: editor.email, password: editor.password })
  await exceededFrame(t, client)
  await client.close()

  // The socket's failures count for POST /auth/login from the same IP.
  tooMany(t, await login(app, admin))
})

t.test('per IP over HTTP: after 10 failures the next login is 429 with Retry-After; other IPs go on', async t => {
  const { app } = await limited(t)
  for (let i = 0; i < 10; i++) {
    const response = await login(app, wrong(`nobody${i}@example.com`), '10.0.0.1')
    t.same([response.statusCode, response.json()], [401, invalidCredentials], `failure ${i + 1}`)
  }
  tooMany(t, await login(app, admin, '10.0.0.1'))
  tooMany(t, await login(app, wrong(editor.email), '10.0.0.1'))
  t.equal((await login(app, admin, '10.0.0.2')).statusCode, 200, 'another IP')
})

t.test('per IP over HTTP, an IPv6 client is its /64 and an IPv4-mapped address is its IPv4', async t => {
  const { app } = await limited(t)
  // Ten failures from ten addresses of one /64: a client holding it could rotate through 2^64.
  for (let i = 0; i < 10; i++) t.equal((await login(app, wrong(`nobody${i}@example.com`), `2001:db8:1:2:${i + 1}::1`)).statusCode, 401)
  tooMany(t, await login(app, admin, '2001:db8:1:2:ffff:ffff:ffff:ffff'))
  tooMany(t, await login(app, admin, '2001:0db8:0001:0002::abcd'))
  t.equal((await login(app, admin, '2001:db8:1:3::1')).statusCode, 200, 'another /64 goes on')

  // A dual-stack socket sees an IPv4 client as ::ffff:a.b.c.d: both spellings share the IPv4's counter.
  for (let i = 0; i < 5; i++) {
    t.equal((await login(app, wrong(`v4-${i}@example.com`), '10.0.30.1')).statusCode, 401)
    t.equal((await login(app, wrong(`mapped-${i}@example.com`), '::ffff:10.0.30.1')).statusCode, 401)
  }
  tooMany(t, await login(app, editor, '10.0.30.1'))
  tooMany(t, await login(app, editor, '::ffff:10.0.30.1'))
  t.equal((await login(app, editor, '::ffff:10.0.30.2')).statusCode, 200, 'another IPv4 goes on')
})

t.test('per IP behind a proxy: a forwarded address counts by itself, whatever port the proxy writes beside it', async t => {
  // Azure Application Gateway forwards `192.0.2.10:5678`: every new source port is the same client.
  const { url } = await build(t, { users: [admin, editor], authRoutes: true }, { logger: false, trustProxy: '127.0.0.1' })
  const http = url('/auth/login').replace(/^ws/, 'http')
  const loginFrom = (forwardedFor: string, credentials: { email: string, password: string }) => fetch(http, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': forwardedFor }, body: JSON.stringify(credentials)
  })
  for (let i = 0; i < 10; i++) t.equal((await loginFrom(`192.0.2.10:${2000 + i}`, wrong(`port${i}@example.com`))).status, 401)
  t.equal((await loginFrom('192.0.2.10:3000', admin)).status, 429, 'a new port: the same client, refused')
  t.equal((await loginFrom('192.0.2.10', admin)).status, 429, 'no port: the same client')
  for (let i = 0; i < 10; i++) t.equal((await loginFrom(`[2001:db8:5::${i + 1}]:${2000 + i}`, wrong(`v6-${i}@example.com`))).status, 401)
  t.equal((await loginFrom('[2001:db8:5::ffff]:3000', admin)).status, 429, 'an IPv6 client with a port, by its /64')
  t.equal((await loginFrom('192.0.2.11:2000', admin)).status, 200, 'another client goes on')
})

t.test('per email over HTTP: 10 failures from 10 IPs refuse the email from any IP; other emails go on', async t => {
  const { app } = await limited(t)
  for (let i = 0; i < 10; i++) t.equal((await login(app, wrong(admin.email), `10.0.1.${i}`)).statusCode, 401)
  tooMany(t, await login(app, admin, '10.0.2.1'))
  // Case and spaces make no new email.
  tooMany(t, await login(app, { email: ' Admin@Example.COM', password: admin.password }, '10.0.2.2'))
  t.equal((await login(app, editor, '10.0.2.1')).statusCode, 200, 'another email from the same IP')
})

t.test('per email: the spellings a lookup folds together (fullwidth letters, case, spaces) are one counter, and verifyCredentials gets that one', async t => {
  // As an app's lookup that folds NFKC and case would find its user.
  const { handed, verifyCredentials } = adminLookup()
  const { app, url } = await limited(t, { users: undefined, verifyCredentials })
  // Ten spellings of admin@example.com, one fullwidth letter each, from ten addresses.
  const spellings = Array.from({ length: 10 }, (_, i) =>
    admin.email.slice(0, i) + String.fromCharCode(admin.email.charCodeAt(i) + 0xfee0) + admin.email.slice(i + 1))
  for (const [i, email] of spellings.entries()) t.equal((await login(app, wrong(email), `10.0.8.${i}`)).statusCode, 401, email)
  tooMany(t, await login(app, admin, '10.0.9.1'))
  tooMany(t, await login(app, { email: ` \uff21${admin.email.slice(1).toUpperCase()}`, password: admin.password }, '10.0.9.2'))
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', email: spellings[3], password: admin.password })
  await exceededFrame(t, client)
  await client.closed
  t.same(handed, Array(10).fill(admin.email), 'handed the one spelling, and asked no more once it was refused')
})

t.test('per email on a socket: an email refused after failures from other IPs gets REQUESTS_EXCEEDED and 4429', async t => {
  const { app, url } = await limited(t)
  for (let i = 0; i < 10; i++) await login(app, wrong(editor.email), `10.0.3.${i}`)
  const refused = await connect(url('/websocket'))
  refused.send({ type: 'auth', email: editor.email, password: editor.password })
  await exceededFrame(t, refused)
  t.equal((await refused.closed).code, 4429)

  const other = await connect(url('/websocket'))
  other.send({ type: 'auth', email: admin.email, password: admin.password })
  t.match(await other.next(), { type: 'auth', status: 'ok' }, 'another email from the same IP')
  await other.close()
})

t.test('successful logins do not count, and forget the email\'s failures', async t => {
  const { app } = await limited(t)
  for (let i = 0; i < 9; i++) t.equal((await login(app, wrong(admin.email), '10.0.4.1')).statusCode, 401)
  for (let i = 0; i < 5; i++) t.equal((await login(app, editor, '10.0.4.1')).statusCode, 200, 'successes from the same IP')
  t.equal((await login(app, wrong(editor.email), '10.0.4.1')).statusCode, 401, 'the 10th failure is still checked')
  tooMany(t, await login(app, editor, '10.0.4.1'))

  // The admin email had 9 failures (from 10.0.4.1); a success forgets them.
  t.equal((await login(app, admin, '10.0.5.1')).statusCode, 200)
  for (let i = 0; i < 10; i++) t.equal((await login(app, wrong(admin.email), `10.0.6.${i}`)).statusCode, 401, `failure ${i + 1} after the success`)
  tooMany(t, await login(app, admin, '10.0.5.1'))
})

t.test('a burst of correct logins from one address on Redis, more than the limit at once: those past it are refused, and count nothing', async t => {
  // One address's users logging in at once (an office, a proxy whose addresses Fastify does not trust; a deploy whose
  // clients log in again): each counts until answered. The refused ones counted too and were never given back, and
  // the address stayed refused for the minute without one wrong password. (In memory, the password queue's share per
  // address answers the burst 503 before it passes the limit: on Redis the counting waits on the round trip.)
  const redis = await RedisServer.start(t)
  // The checks let through are held until the others are answered: the 30 are in flight together.
  let answered = 0
  let release!: () => void
  const released = new Promise<void>(resolve => { release = resolve })
  const verifyCredentials = async ({ email }: { email: string }) => {
    await released
    return { user: email, role: null, admin: false }
  }
  const { app } = await limited(t, { verifyCredentials }, redis)
  const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => login(app, { email: `u${i}@example.com`, password: 'pw' }, '10.0.7.1')
    .then(response => {
      if (++answered === 20) release()
      return response
    })))
  const codes = burst.map(response => response.statusCode)
  t.equal(codes.filter(code => code === 429).length, 20, 'past the limit, refused')
  t.ok(codes.every(code => code === 200 || code === 429 || code === 503), 'the others let in (or the password queue full)')
  t.equal((await login(app, { email: 'late@example.com', password: 'pw' }, '10.0.7.1')).statusCode, 200, 'then the address logs in')
})

t.test('the window passes: attempts are checked again', async t => {
  // The counters' window ends by the Date (their own timers only forget them later).
  const clock = fakeClock(t, ['Date'])
  const { app, url } = await limited(t, { attemptLimit: { points: 2, durationSeconds: 1 } })
  await login(app, wrong(admin.email))
  await failHandshake(t, url('/websocket'), admin.email)
  const retryAfterMs = tooMany(t, await login(app, admin), 1_000)
  const refused = await connect(url('/websocket'))
  refused.send({ type: 'auth', email: admin.email, password: admin.password })
  await exceededFrame(t, refused)
  await refused.closed

  clock.tick(retryAfterMs)
  t.equal((await login(app, admin)).statusCode, 200, 'after the window')
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', email: admin.email, password: admin.password })
  t.match(await client.next(), { type: 'auth', status: 'ok' })
  await client.close()
})

t.test('the application API counts against the email: it rejects with REQUESTS_EXCEEDED', async t => {
  const { app } = await limited(t)
  for (let i = 0; i < 10; i++) {
    await t.rejects(app.realtime.login(wrong(admin.email)), { code: 'INVALID_CREDENTIALS' })
  }
  const error = await app.realtime.login(admin).then(() => null, (err: RealtimeError) => err)
  t.ok(error instanceof RealtimeError)
  t.equal(error!.code, 'REQUESTS_EXCEEDED')
  retryAfterOf(t, error!.message)
  t.equal((await login(app, editor, '10.0.7.1')).statusCode, 200, 'other emails go on')
})

t.test('the application API given the request of the app\'s own login route counts its address as /auth/login does', async t => {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  const seen: string[] = []
  await app.register(realtime, {
    env: {},
    secret,
    users: await directoryOf([admin, editor]),
    onAuthenticate: ({ source, request }) => { seen.push(`${source} ${request.ip}`) }
  })
  // As the README's RealtimeError example writes it: a refusal answers with its status.
  app.post<{ Body: { email: string, password: string } }>('/my-login', (request) => app.realtime.login(request.body, request))
  const myLogin = (credentials: { email: string, password: string }, remoteAddress: string) =>
    app.inject({ method: 'POST', url: '/my-login', payload: credentials, remoteAddress })
  for (let i = 0; i < 10; i++) t.equal((await myLogin(wrong(`user-${i}@example.com`), '10.0.9.1')).statusCode, 401)
  const refused = await myLogin(admin, '10.0.9.1')
  t.equal(refused.statusCode, 429, 'its address refused, as at /auth/login')
  t.match(refused.json(), { code: 'REQUESTS_EXCEEDED' })
  t.equal((await myLogin(admin, '10.0.9.2')).statusCode, 200, 'another address logs in')
  t.same(seen, ['login 10.0.9.2'], 'onAuthenticate told of it, with its request')
})

t.test('a login refused because the password queue is full does not count: flooding the queue locks no user out', async t => {
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  const directory = await directoryOf([admin, editor])
  const { app, url } = await limited(t, {
    attemptLimit: { points: 2, durationSeconds: 60 },
    passwordQueue: { limit: 1, perAddress: 1 },
    verifyCredentials: async credential => {
      if (credential.password === 'hold') await held
      return directory.verifyCredentials(credential)
    }
  })
  // The attacker fills the queue from addresses of its own: every lane busy, one check waiting, the next refused.
  const lanes = Math.max(1, availableParallelism() - 1)
  const flood = Array.from({ length: lanes + 2 }, (_, i) => login(app, { email: `flood${i}@example.com`, password: 'hold' }, `10.0.20.${i}`))
  t.equal((await Promise.race(flood)).statusCode, 503, 'the queue is full')

  // The user, from an address of their own, is refused more times than the limit allows failures: unchecked each time.
  for (let i = 0; i < 3; i++) {
    const response = await login(app, admin, '10.0.21.1')
    t.same([response.statusCode, response.json(), response.headers['retry-after']], [503, serviceUnavailable, '1'], `login ${i + 1}: 503, not 429`)
  }
  const socket = await connect(url('/websocket'))
  socket.send({ type: 'auth', email: admin.email, password: admin.password })
  t.match(await socket.next(), { type: 'auth', status: 'error', error: { code: 'SERVICE_UNAVAILABLE' } })
  t.equal((await socket.closed).code, 1013, 'over a socket too')
  await t.rejects(app.realtime.login(admin), { code: 'SERVICE_UNAVAILABLE' }, 'and from the application API')

  release()
  t.same((await Promise.all(flood)).map(response => response.statusCode).sort(), [...Array(lanes + 1).fill(401), 503])
  t.equal((await login(app, admin, '10.0.21.1')).statusCode, 200, 'once the flood has passed, the user logs in: no refusal counted')
})

t.test('a login whose session store cannot say where its check begins (checkBegins) goes on under the process\'s own guard, logged', async t => {
  const clock = fakeClock(t, ['Date'])
  let down = true
  const handedBack: Array<number | undefined> = []
  class OrderedStore extends MemorySessionStore {
    async checkBegins (): Promise<number> {
      if (down) throw new Error('store away')
      return 7
    }

    override async create (session: RefreshSession, deadline: number, checkBegan?: number): Promise<string[]> {
      handedBack.push(checkBegan)
      return super.create(session, deadline)
    }
  }
  const logged: Array<{ level: number, msg: string }> = []
  const { app } = await build(t, {
    users: [admin, editor], authRoutes: true, attemptLimit: { points: 2, durationSeconds: 60 }, sessionStore: new OrderedStore()
  }, { logger: { level: 'info', stream: { write: (line: string) => { logged.push(JSON.parse(line)) } } } })
  /** The levels of the lines about the clock so far. */
  const told = () => logged.filter(line => line.msg.includes('where a login\'s check')).map(line => line.level)
  t.equal((await login(app, admin, '10.0.23.1')).statusCode, 200, 'the clock away: the user logs in all the same')
  for (let i = 0; i < 2; i++) t.equal((await login(app, wrong(editor.email), '10.0.23.1')).statusCode, 401, 'a wrong password is one')
  t.equal((await login(app, wrong(editor.email), '10.0.23.1')).statusCode, 429, 'and counts')
  t.same(told(), [40], 'logged once, as a warning: a failover\'s length')
  clock.tick(10_000)
  t.ok((await app.realtime.login({ email: admin.email, password: admin.password })).refresh_token, 'the app\'s own login too')
  t.same(told(), [40], 'the app\'s own login has no request to log on')
  t.equal((await login(app, admin, '10.0.23.3')).statusCode, 200)
  t.equal((await login(app, admin, '10.0.23.4')).statusCode, 200)
  t.same(told(), [40, 50], 'still failing 10 s on: an error, once')
  down = false
  t.equal((await login(app, admin, '10.0.23.2')).statusCode, 200)
  t.same(told(), [40, 50, 30], 'and its end told')
  t.same(handedBack, [undefined, undefined, undefined, undefined, 7], 'the store gets back what it answered, and nothing when it could not')
})

t.test('a password check that ran counts, even when it threw: failing closed', async t => {
  const { app } = await limited(t, {
    attemptLimit: { points: 2, durationSeconds: 60 },
    verifyCredentials: async () => { throw new Error('directory down') }
  })
  for (let i = 0; i < 2; i++) t.equal((await login(app, admin, '10.0.22.1')).statusCode, 503)
  tooMany(t, await login(app, admin, '10.0.22.1'))
  tooMany(t, await login(app, admin, '10.0.22.2'))
})

t.test('the longest window accepted still limits: its timer fits setTimeout', async t => {
  const { app } = await limited(t, { attemptLimit: { points: 2, durationSeconds: 2147483 } })
  for (let i = 0; i < 2; i++) t.equal((await login(app, wrong(admin.email))).statusCode, 401)
  // A timer past setTimeout's limit runs after 1 ms: this wait would have reset the counters.
  await new Promise(resolve => setTimeout(resolve, 20))
  tooMany(t, await login(app, admin), 2147483 * 1000)
})

t.test('attemptLimit: false turns the limits off', async t => {
  const { app } = await limited(t, { attemptLimit: false })
  for (let i = 0; i < 15; i++) t.equal((await login(app, wrong(admin.email))).statusCode, 401)
  t.equal((await login(app, admin)).statusCode, 200)
})

t.test('attemptLimit is resolved with its defaults and checked at boot', async t => {
  t.same((await resolveConfig({ env: {} })).attemptLimit, { points: 10, durationSeconds: 60 })
  t.same((await resolveConfig({ env: {}, attemptLimit: { points: 3 } })).attemptLimit, { points: 3, durationSeconds: 60 })
  t.same((await resolveConfig({ env: {}, attemptLimit: { durationSeconds: 5 } })).attemptLimit, { points: 10, durationSeconds: 5 })
  t.equal((await resolveConfig({ env: {}, attemptLimit: false })).attemptLimit, null)
  await t.rejects(resolveConfig({ env: {}, attemptLimit: { points: 0 } }), {
    code: 'FST_REALTIME_INVALID_CONFIG', message: 'Invalid configuration: attemptLimit.points must be a positive integer (got 0)'
  })
  await t.rejects(resolveConfig({ env: {}, attemptLimit: { durationSeconds: 1.5 } }), {
    message: 'Invalid configuration: attemptLimit.durationSeconds must be a positive integer (got 1.5)'
  })
  // Past setTimeout's limit the memory store's window ended after 1 ms: no login was ever limited.
  await t.rejects(resolveConfig({ env: {}, attemptLimit: { durationSeconds: 30 * 24 * 3600 } }), {
    message: 'Invalid configuration: attemptLimit.durationSeconds must be at most 2147483 (about 24 days; got 2592000)'
  })
  t.same((await resolveConfig({ env: {}, attemptLimit: { durationSeconds: 2147483 } })).attemptLimit, { points: 10, durationSeconds: 2147483 })
})

t.test('on Redis the counters are shared by every process', async t => {
  const server = await RedisServer.start(t)
  // b is given the app's own client, already connected.
  const appClient = new Redis(server.url)
  t.teardown(() => appClient.disconnect())
  await once(appClient, 'ready')
  const [a, b] = [await limited(t, {}, server), await limited(t, { redis: appClient })]
  for (let i = 0; i < 5; i++) {
    t.equal((await login(a.app, wrong(`a${i}@example.com`), '10.0.8.1')).statusCode, 401)
    t.equal((await login(b.app, wrong(`b${i}@example.com`), '10.0.8.1')).statusCode, 401)
  }
  // Per IP, on either process.
  tooMany(t, await login(a.app, admin, '10.0.8.1'))
  tooMany(t, await login(b.app, admin, '10.0.8.1'))

  for (let i = 0; i < 5; i++) {
    await login(a.app, wrong(editor.email), `10.0.9.${i}`)
    await login(b.app, wrong(editor.email), `10.0.10.${i}`)
  }
  // Per email, on b and on a socket of a.
  tooMany(t, await login(b.app, editor, '10.0.11.1'))
  const refused = await connect(a.url('/websocket'))
  refused.send({ type: 'auth', email: editor.email, password: editor.password, uid: 1 })
  await exceededFrame(t, refused, 1)
  t.equal((await refused.closed).code, 4429)

  const keys = await appClient.keys('realtime:attempts:*')
  t.ok(keys.includes('realtime:attempts:ip:10.0.8.1'), 'counters live under the plugin\'s prefix')
  t.notOk(keys.some(key => key.includes('@')), 'no email address is stored')
})

t.test('Redis away: password auth fails closed with SERVICE_UNAVAILABLE, never unlimited, and recovers', async t => {
  const server = await RedisServer.start(t)
  // Sessions in memory: only the attempt counters need Redis, so a 503 here is theirs.
  const { app, url } = await limited(t, { sessionStore: new MemorySessionStore() }, server)
  for (let i = 0; i < 10; i++) await login(app, wrong(admin.email), `10.0.12.${i}`)
  tooMany(t, await login(app, admin, '10.0.12.10'))
  await server.stop()

  const started = Date.now()
  for (const [credentials, from] of [[admin, '10.0.13.1'], [editor, '10.0.13.2'], [wrong(editor.email), '10.0.13.3']] as const) {
    const response = await login(app, credentials, from)
    t.same([response.statusCode, response.json()], [503, serviceUnavailable], `${credentials.email} from ${from}`)
  }
  const handshake = await connect(url('/websocket'))
  handshake.send({ type: 'auth', email: editor.email, password: editor.password, uid: 'd' })
  t.same(await handshake.next(), {
    type: 'auth', status: 'error', error: { code: 'SERVICE_UNAVAILABLE', message: 'Service unavailable.' }, uid: 'd'
  })
  t.equal((await handshake.closed).code, 1013)
  t.ok(Date.now() - started < 5_000, 'within 5 s')

  await server.start() // empty: the counters are gone with the old server
  let back = await login(app, editor, '10.0.13.2')
  for (let attempt = 0; back.statusCode !== 200 && attempt < 200; attempt++) {
    await new Promise(resolve => setTimeout(resolve, 25))
    back = await login(app, editor, '10.0.13.2')
  }
  t.equal(back.statusCode, 200, 'works again without a restart')
})
