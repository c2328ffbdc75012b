// The app's own client of ioredis 6 as the `redis` option: what `npm i ioredis` installs now, while the plugin's own
// connections (to a URL) are of ioredis 5. ioredis 6 speaks RESP3 where the server does: the subscriber hears pushes,
// and with `replyMapping: 'resp3'` replies come as RESP3 shapes. A plain client and a Cluster each carry sessions,
// revocations, log lines and attempt counters between two processes, and a plain client's subscriber hears again once
// Redis is back from a restart. Type-checked too: the option takes the clients of either major.
import t, { type Test } from 'tap'
import { Cluster, Redis, type ClusterOptions } from 'ioredis-6'
import type { RealtimeOptions } from '../../lib/index.js'
import { admin, build, connect, editor, fakeClock, whoami, within, type Built, type Client } from '../helpers.js'
import { RedisCluster } from '../redis-cluster.js'
import { RedisServer } from '../redis-server.js'
import { replyCuttingProxy } from '../reply-cutting-proxy.js'

// Log lines at info reach the logs endpoint; none is written anywhere.
const quiet = { logger: { level: 'info', stream: { write () {} } } }

async function login (built: Built, credentials: { email: string, password: string } = admin, remoteAddress = '127.0.0.1') {
  return built.app.inject({ method: 'POST', url: '/auth/login', payload: credentials, remoteAddress })
}

const pause = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

function refresh (built: Built, refreshToken: string) {
  return built.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refreshToken } })
}

/** A socket on `built` authenticated by `accessToken`. */
async function socket (t: Test, built: Built, accessToken: string): Promise<Client> {
  const client = await connect(built.url('/websocket'))
  client.send({ type: 'auth', access_token: accessToken })
  t.same(await within(client.next(), 'the auth'), { type: 'auth', status: 'ok' })
  return client
}

/** Logs out on `a`, and sees the socket on the other process told. */
async function loggedOutEverywhere (t: Test, a: Built, refreshToken: string, onB: Client): Promise<void> {
  t.equal((await a.app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: refreshToken } })).statusCode, 204, 'logged out on a')
  t.same(await within(onB.next(), 'the revocation on b'), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } },
    'the socket on b is told')
  await onB.close()
}

/** Two processes, each with the client `clientOf` makes (`which`: 0 or 1), under `redisPrefix`. */
async function twoProcesses (t: Test, clientOf: (which: number) => RealtimeOptions['redis'], redisPrefix: string): Promise<void> {
  const node = (which: number) => build(t, {
    users: [admin, editor], authRoutes: true, redis: clientOf(which), redisPrefix, rest: { handlers: { whoami } }, heartbeat: { enabled: false }
  }, quiet)
  const [a, b] = [await node(0), await node(1)]

  const tokens = (await login(a)).json().data as { access_token: string, refresh_token: string }
  const rotated = await refresh(b, tokens.refresh_token)
  t.equal(rotated.statusCode, 200, 'a refresh token from a rotates on b')
  t.equal((await refresh(b, tokens.refresh_token)).statusCode, 401, 'and its reuse is refused')
  const next = (await login(a)).json().data as { access_token: string, refresh_token: string }
  await loggedOutEverywhere(t, a, next.refresh_token, await socket(t, b, next.access_token))

  const token = b.app.realtime.signAccessToken({ user: 'ops', role: null, admin: true }).access_token
  const logs = await connect(b.url('/websocket/logs'))
  logs.send({ type: 'auth', access_token: token })
  await logs.next()
  logs.send({ type: 'subscribe', log_level: 'info' })
  t.same(await logs.next(), { type: 'logs', event: 'subscribe', log_level: 'info' })
  // The subscription to Redis may still be on its way: log until a line comes through.
  const arrived = (async () => {
    for (;;) {
      const frame = await logs.next() as { type: string, data?: { msg?: string } }
      if (frame.type === 'logs' && frame.data?.msg === 'from a') return true
    }
  })()
  await within((async () => {
    do a.app.log.info('from a')
    while (!await Promise.race([arrived, pause(50).then(() => false)]))
  })(), 'a log line of a on b')
  t.pass('a log line of a reaches a subscriber on b')
  await logs.close()

  // Ten failed logins from one address, five on each: the eleventh is refused on either.
  const wrong = (email: string) => ({ email, password: 'not-the-password' })
  for (let i = 0; i < 5; i++) {
    t.equal((await login(a, wrong(`a${i}@example.com`), '10.0.8.1')).statusCode, 401)
    t.equal((await login(b, wrong(`b${i}@example.com`), '10.0.8.1')).statusCode, 401)
  }
  t.equal((await login(b, admin, '10.0.8.1')).statusCode, 429, 'the attempt counters are shared')
  t.equal((await login(a, admin, '10.0.8.1')).statusCode, 429)
}

t.test('an ioredis 6 client on each of two processes: sessions, revocations, log lines and attempt counters are shared, RESP3 replies or not', async t => {
  const server = await RedisServer.start(t)
  const clients = [new Redis(server.url), new Redis(server.url, { replyMapping: 'resp3' })]
  t.teardown(() => { for (const client of clients) client.disconnect() })
  t.match(await clients[0]!.client('INFO'), /resp=3/, 'the client speaks RESP3')
  await twoProcesses(t, which => clients[which], 'plain:')
})

t.test('an ioredis 6 client\'s subscriber hears again once Redis is back from a restart', async t => {
  const server = await RedisServer.start(t)
  const clients = [new Redis(server.url), new Redis(server.url)]
  t.teardown(() => { for (const client of clients) client.disconnect() })
  for (const client of clients) client.on('error', () => {})
  const [a, b] = [
    await build(t, { users: [admin], authRoutes: true, redis: clients[0], heartbeat: { enabled: false } }, { logger: false }),
    await build(t, { users: [admin], authRoutes: true, redis: clients[1], heartbeat: { enabled: false } }, { logger: false })
  ]
  await server.stop()
  await server.start() // empty
  // ioredis 6 backs off up to 5 s between tries; the plugin's subscriber, a duplicate of the app's client, as well.
  const loggedIn = async () => {
    for (;;) {
      const response = await login(a)
      if (response.statusCode === 200) return response
      await pause(100)
    }
  }
  const back = await within(loggedIn(), 'a login once Redis is back')
  const tokens = back.json().data as { access_token: string, refresh_token: string }
  await loggedOutEverywhere(t, a, tokens.refresh_token, await socket(t, b, tokens.access_token))
})

t.test('an ioredis 6 client\'s subscriber gone deaf behind a proxy is cut by its probe, listens again and hears the logout it missed', async t => {
  // The probes run on setInterval: faked, they go out only when the test ticks.
  const clock = fakeClock(t, ['setInterval', 'clearInterval'])
  const server = await RedisServer.start(t)
  const proxy = await replyCuttingProxy(t, server.port)
  const clients = [new Redis(server.url), new Redis(proxy.url)]
  t.teardown(() => { for (const client of clients) client.disconnect() })
  const lines: string[] = []
  const options: RealtimeOptions = { users: [admin], authRoutes: true, heartbeat: { enabled: false } }
  const a = await build(t, { ...options, redis: clients[0] }, { logger: false })
  const b = await build(t, { ...options, redis: clients[1] }, { logger: { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } } })
  const tokens = (await login(a)).json().data as { access_token: string, refresh_token: string }
  const onB = await socket(t, b, tokens.access_token)

  proxy.deafen()
  const logout = await a.app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: tokens.refresh_token } })
  t.equal(logout.statusCode, 204, 'logged out on a, unheard on b')
  clock.tick(1_000)
  t.same(await within(onB.next(), 'the revocation on b'), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } },
    'b\'s probe went unheard: it listened again, and replayed the revocation')
  t.ok(lines.some(line => line.includes('the Redis subscriber did not hear its probe within 2 s: listening again')), 'and said why')
  await onB.close()
})

t.test('an ioredis 6 Cluster on each of two processes: sessions, revocations, log lines and attempt counters are shared', async t => {
  const cluster = await RedisCluster.start(t)
  // What the README recommends for a Cluster client.
  const options: ClusterOptions = {
    enableOfflineQueue: false, redisOptions: { commandTimeout: 2_000, maxRetriesPerRequest: 1 }, slotsRefreshInterval: 2_000
  }
  await twoProcesses(t, () => {
    const client = new Cluster([{ host: '127.0.0.1', port: cluster.nodes[0]!.port }], options)
    t.teardown(() => client.disconnect())
    return client
  }, 'cluster:')
})
