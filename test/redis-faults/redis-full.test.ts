// A Redis full under `noeviction` refuses writes but lets deletes through: a logout whose revocation it refused (503)
// is ended in the store only once the revocation goes out, so the client's retry still finds the session, and ends it
// on every process (README "Scaling out").
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { admin, build, connect, refusedWith, whoami, within, type Built } from '../helpers.js'
import { RedisServer } from '../redis-server.js'

async function node (t: Test, server: RedisServer): Promise<Built> {
  return build(t, { users: [admin], authRoutes: true, redis: server.url, heartbeat: { enabled: false }, rest: { handlers: { whoami } } }, { logger: false })
}

const post = (built: Built, url: string, payload: object, headers: Record<string, string> = {}) =>
  built.app.inject({ method: 'POST', url, payload, headers })

/** The sessions Redis holds. */
const sessionsIn = (redis: Redis) => redis.keys('realtime:{s:*}:session')

/** Fills Redis: from now on it refuses a write (a revocation's), and still deletes (a session's end). */
async function fill (t: Test, redis: Redis): Promise<void> {
  await redis.config('SET', 'maxmemory-policy', 'noeviction')
  await redis.config('SET', 'maxmemory', '1')
  await t.rejects(redis.zadd('probe', 1, 'probe'), /OOM/, 'a write is refused')
  t.equal(await redis.del('probe'), 0, 'a delete goes through')
}

async function serverWithClient (t: Test): Promise<{ server: RedisServer, redis: Redis }> {
  const server = await RedisServer.start(t)
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  return { server, redis }
}

t.test('a logout Redis full refused, then its refresh token on the same process: the session stays for the retried logout, which reaches the other process', async t => {
  const { server, redis } = await serverWithClient(t)
  const [a, b] = [await node(t, server), await node(t, server)]
  const tokens = (await post(a, '/auth/login', { email: admin.email, password: admin.password })).json().data
  const onB = await connect(b.url('/websocket'))
  onB.send({ type: 'auth', access_token: tokens.access_token })
  t.same(await within(onB.next(), 'auth on b'), { type: 'auth', status: 'ok' })

  await fill(t, redis)
  t.equal((await post(a, '/auth/logout', { refresh_token: tokens.refresh_token })).statusCode, 503, 'the logout: its revocation refused')
  // The client's other tab, or its SDK's auto-refresh, meanwhile: this process holds the session ended.
  t.equal((await post(a, '/auth/refresh', { refresh_token: tokens.refresh_token })).statusCode, 503,
    'the refresh: the end could not go out, the client keeps its token')
  t.equal((await sessionsIn(redis)).length, 1, 'the session is still in Redis')

  await redis.config('SET', 'maxmemory', '0')
  t.equal((await post(a, '/auth/logout', { refresh_token: tokens.refresh_token })).statusCode, 204, 'the retried logout ends it')
  t.same(await within(onB.next(), 'AUTH_REVOKED on b'),
    { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } }, 'and reaches b\'s socket')
  const again = await connect(b.url('/websocket'))
  again.send({ type: 'auth', access_token: tokens.access_token })
  t.match(await within(again.next(), 'auth on b'), { type: 'auth', status: 'error', error: { code: 'AUTH_FAILED' } },
    'b refuses its access token')
  t.same(await sessionsIn(redis), [])
  await Promise.all([onB.close(), again.close()])
})

t.test('a session-mode logout Redis full refused, then the browser\'s socket to the same process with its cookie: the retried logout reaches the other process', async t => {
  const { server, redis } = await serverWithClient(t)
  const [a, b] = [await node(t, server), await node(t, server)]
  const login = await post(a, '/auth/login', { email: admin.email, password: admin.password, mode: 'session' })
  const cookie = { cookie: `directus_session_token=${login.cookies.find(cookie => cookie.name === 'directus_session_token')!.value}` }
  const onB = await connect(b.url('/websocket'), { headers: cookie })
  onB.send({ type: 'whoami' })
  t.match(await within(onB.next(), 'whoami on b'), { type: 'whoami', user: String })

  await fill(t, redis)
  t.equal((await post(a, '/auth/logout', { mode: 'session' }, cookie)).statusCode, 503, 'the logout: its revocation refused')
  t.equal((await refusedWith(a.url('/websocket'), { headers: cookie })).status, 503,
    'the page\'s socket reconnecting to the same process: the end could not go out')
  t.equal((await sessionsIn(redis)).length, 1, 'the session is still in Redis')

  await redis.config('SET', 'maxmemory', '0')
  t.equal((await post(a, '/auth/logout', { mode: 'session' }, cookie)).statusCode, 204, 'the retried logout ends it')
  t.same(await within(onB.next(), 'AUTH_REVOKED on b'),
    { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } }, 'and reaches b\'s socket')
  t.equal((await refusedWith(a.url('/websocket'), { headers: cookie })).status, 401, 'the cookie opens no socket')
  await onB.close()
})
