// One-time codes (PROTOCOL.md section 11): a TOTP code is accepted once per user; its replay inside its window fails
// exactly like a wrong code, on one process and across two processes on one Redis. The clock is a fake one (only
// `Date`), so the steps turn when the test says.
import t, { type Test } from 'tap'
import FakeTimers from '@sinonjs/fake-timers'
import { Secret, TOTP } from 'otpauth'
import { MemorySessionStore, UserDirectory } from '../../lib/index.js'
import { admin, build, type Built } from '../helpers.js'
import { RedisServer } from '../redis-server.js'
import { replyCuttingProxy } from '../reply-cutting-proxy.js'

const otpSecret = 'JBSWY3DPEHPK3PXP'
const user = { ...admin, otpSecret }
const step = 30_000

/** The code an authenticator app shows at `at`. */
const code = (at: number) => TOTP.generate({ secret: Secret.fromBase32(otpSecret), timestamp: at })

function login (built: Built, otp: string) {
  return built.app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: user.password, otp } })
}

/**
 * A Date that moves only when told, from the middle of a step a minute or so ahead: ahead of Redis's clock, never
 * behind it (Redis refuses a write whose deadline its own clock has passed).
 */
function fakeDate (t: Test) {
  const clock = FakeTimers.install({ now: (Math.floor(Date.now() / step) + 2.5) * step, toFake: ['Date'] })
  t.teardown(() => clock.uninstall())
  return clock
}

t.test('one process: a code is accepted once, and its replay fails like a wrong code', async t => {
  const clock = fakeDate(t)
  const app = await build(t, { users: [user], authRoutes: true }, { logger: false })
  const now = code(Date.now())
  const wrong = await login(app, String((Number(now) + 1) % 1_000_000).padStart(6, '0'))
  t.equal(wrong.statusCode, 401)

  t.equal((await login(app, now)).statusCode, 200, 'the code, once')
  const replay = await login(app, now)
  t.same({ status: replay.statusCode, body: replay.json() }, { status: wrong.statusCode, body: wrong.json() },
    'its replay: exactly a wrong code')
  t.equal((await login(app, code(Date.now() - step))).statusCode, 401, 'the previous step\'s code, still in the window, is older: refused')

  clock.tick(step)
  t.equal((await login(app, code(Date.now()))).statusCode, 200, 'the next step\'s code is accepted')
  t.equal((await login(app, now)).statusCode, 401, 'the first code, still inside its window (a step behind), is refused')
})

t.test('two processes on one Redis: a code accepted by one is refused by the other; of two at once, one wins', async t => {
  const clock = fakeDate(t)
  const redis = await RedisServer.start(t)
  const a = await build(t, { users: [user], authRoutes: true, redis: redis.url }, { logger: false })
  // b's users are a directory the app made itself (as the reference server does): its codes are shared all the same.
  const directory = new UserDirectory()
  await directory.add(user)
  const b = await build(t, { users: directory, authRoutes: true, redis: redis.url }, { logger: false })
  const now = code(Date.now())
  t.equal((await login(a, now)).statusCode, 200, 'accepted on a')
  const replay = await login(b, now)
  t.equal(replay.statusCode, 401, 'replayed on b: refused')
  t.same(replay.json(), { errors: [{ message: 'Invalid user credentials.', extensions: { code: 'INVALID_CREDENTIALS' } }] })

  clock.tick(step)
  const next = code(Date.now())
  const both = await Promise.all([login(a, next), login(b, next)])
  t.same(both.map(response => response.statusCode).sort(), [200, 401], 'the same code on both at once: exactly one login')
})

/** A session store whose next `create` fails once (a Redis blip), then works. */
function storeMissingOneWrite () {
  const store = new MemorySessionStore()
  const create = store.create.bind(store)
  let failNext = true
  store.create = (...args) => {
    if (!failNext) return create(...args)
    failNext = false
    return Promise.reject(new Error('connection lost'))
  }
  return store
}

t.test('a login answered 503 after its code was checked (the session store missed a write) leaves the code good for the retry', async t => {
  fakeDate(t)
  const app = await build(t, { users: [user], authRoutes: true, sessionStore: storeMissingOneWrite() }, { logger: false })
  const now = code(Date.now())
  t.equal((await login(app, now)).statusCode, 503, 'try again, says the answer')
  t.equal((await login(app, now)).statusCode, 200, 'and the retry with the same code works')
  t.equal((await login(app, now)).statusCode, 401, 'once: it is used up by the login that went through')
})

t.test('on Redis too, and a login the app\'s onAuthenticate could not check (it threw) gives its code back as well', async t => {
  fakeDate(t)
  const redis = await RedisServer.start(t)
  let hookFails = true
  const app = await build(t, {
    users: [user],
    authRoutes: true,
    redis: redis.url,
    onAuthenticate: () => { if (hookFails) throw new Error('the app\'s database is away') }
  }, { logger: false })
  const now = code(Date.now())
  t.equal((await login(app, now)).statusCode, 503)
  hookFails = false
  t.equal((await login(app, now)).statusCode, 200, 'the retry with the same code works')
  t.equal((await login(app, now)).statusCode, 401, 'once')
})

t.test('on Redis, a code whose give-back met Redis away is given back once it is back: the retry works', async t => {
  fakeDate(t)
  const redis = await RedisServer.start(t)
  const proxy = await replyCuttingProxy(t, redis.port)
  let first = true
  const app = await build(t, {
    users: [user],
    authRoutes: true,
    redis: proxy.url,
    // The first login's hook loses Redis (the plugin's connection cut, and none let through) and then fails: the login
    // answers 503 and gives its code back with no connection to Redis.
    onAuthenticate: async () => {
      if (!first) return
      first = false
      proxy.cutAll()
      await new Promise(resolve => setTimeout(resolve, 50))
      throw new Error('the app\'s database is away too')
    }
  }, { logger: false })
  const now = code(Date.now())
  t.equal((await login(app, now)).statusCode, 503)
  proxy.accept()
  let retried
  do retried = await login(app, now)
  while (retried.statusCode === 503)
  t.equal(retried.statusCode, 200, 'once Redis is back, the retry with the same code works')
  t.equal((await login(app, now)).statusCode, 401, 'once')
})

t.test('on Redis, a Redis restarted empty: the process that accepted a code still refuses its replay', async t => {
  fakeDate(t)
  const redis = await RedisServer.start(t)
  const app = await build(t, { users: [user], authRoutes: true, redis: redis.url }, { logger: false })
  const now = code(Date.now())
  t.equal((await login(app, now)).statusCode, 200)
  await redis.stop()
  await redis.start()
  let replay
  do replay = await login(app, now)
  while (replay.statusCode === 503)
  t.equal(replay.statusCode, 401, 'its replay once Redis is back, empty, fails like a wrong code')
})
