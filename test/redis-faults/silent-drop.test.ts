// Redis connections dropped without a word (PROTOCOL.md section 7): a NAT or a load balancer between a process and
// Redis forgets its connections, and neither side hears of it. The process finds out by a PING left unanswered,
// connects again, and catches up on what was revoked meanwhile; and an app's own lazily connecting client still gets
// its subscriber.
import t, { type Test } from 'tap'
import net from 'node:net'
import { Redis } from 'ioredis'
import { checkHealth } from '../../lib/stores/redis-connection.js'
import { admin, build, connect, fakeClock, within } from '../helpers.js'
import { RedisServer } from '../redis-server.js'

/** A TCP proxy to `port` that can go silent on the connections it carries, as a forgetful NAT does. */
async function proxyTo (t: Test, port: number) {
  const carried = new Set<{ silent: boolean }>()
  let hung = false
  let accepted = 0
  const server = net.createServer((client) => {
    accepted++
    const upstream = net.connect(port, '127.0.0.1')
    const link = { silent: hung }
    carried.add(link)
    client.on('data', (chunk) => { if (!link.silent) upstream.write(chunk) })
    upstream.on('data', (chunk) => { if (!link.silent) client.write(chunk) })
    const end = () => { carried.delete(link); client.destroy(); upstream.destroy() }
    client.on('close', end)
    upstream.on('close', end)
    client.on('error', () => {})
    upstream.on('error', () => {})
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  return {
    url: `redis://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    /** Every connection carried now passes nothing more, either way, and is never closed; new ones work. */
    forget: () => { for (const link of carried) link.silent = true },
    /** As a hung Redis: what is carried goes silent, and so do new connections, accepted all the same, until `recover`. */
    hang: () => {
      hung = true
      for (const link of carried) link.silent = true
    },
    /** New connections pass again (as to a promoted replica); the ones made while hung stay silent for good. */
    recover: () => { hung = false },
    /** Connections accepted so far. */
    get accepted () { return accepted }
  }
}

/**
 * Two processes on one Redis, b's connections through a proxy; a user logged in on a, whose socket is authenticated
 * on b.
 */
async function twoProcesses (t: Test) {
  const redis = await RedisServer.start(t)
  const proxy = await proxyTo(t, redis.port)
  const options = { users: [admin], authRoutes: true }
  const a = await build(t, { ...options, redis: redis.url }, { logger: false })
  const b = await build(t, { ...options, redis: proxy.url }, { logger: false })
  const login = await a.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  const { access_token: accessToken, refresh_token: refreshToken } = login.json().data
  const onB = await connect(b.url('/websocket'))
  onB.send({ type: 'auth', access_token: accessToken })
  t.same(await within(onB.next(), 'the ok'), { type: 'auth', status: 'ok' })
  return { a, b, proxy, refreshToken: refreshToken as string, onB }
}

t.test('checkHealth: a connection that seems up is PINGed every 5 s, and cut when it reads nothing in the next 2 s', async t => {
  const clock = fakeClock(t, ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'])
  const turn = () => new Promise(resolve => setImmediate(resolve))
  let cuts = 0
  const stream = () => ({ bytesRead: 0, destroy () { cuts++ } })
  let timeOut: (() => void) | null = null
  const connection = {
    status: 'connecting',
    pings: 0,
    stream: stream(),
    ping () {
      this.pings++
      return new Promise<void>((_resolve, reject) => { timeOut = () => reject(new Error('Command timed out')) })
    }
  }
  let current: typeof connection | null = null
  const stop = checkHealth(() => current)
  clock.tick(5_000)
  current = connection
  clock.tick(5_000)
  t.equal(connection.pings, 0, 'none yet, or one away, is left to ioredis')
  connection.status = 'ready'
  clock.tick(5_000)
  t.equal(connection.pings, 1)
  connection.stream.bytesRead += 7 // +PONG
  clock.tick(2_000)
  await turn()
  t.equal(cuts, 0, 'it read something: alive')
  clock.tick(3_000)
  // A loop held past the wait: ioredis's own timeout rejects the PING first, then the answer that came is read.
  clock.tick(2_000)
  timeOut!()
  connection.stream.bytesRead += 7
  await turn()
  t.equal(cuts, 0, 'an answer read just after the wait ran out, its PING rejected all the same')
  clock.tick(3_000)
  t.equal(connection.pings, 3)
  clock.tick(1_999)
  await turn()
  t.equal(cuts, 0)
  clock.tick(1)
  await turn()
  t.equal(cuts, 1, 'cut when nothing at all came')
  clock.tick(3_000)
  connection.stream = stream() // made anew meanwhile: ioredis's
  clock.tick(2_000)
  await turn()
  t.equal(cuts, 1, 'a connection made anew meanwhile is not cut')
  clock.tick(3_000)
  connection.status = 'reconnecting'
  clock.tick(2_000)
  await turn()
  t.equal(cuts, 1, 'nor one that went away meanwhile')
  stop()
  clock.tick(60_000)
  t.equal(connection.pings, 5, 'and no more checks once stopped')
})

t.test('a process whose Redis connections went silent connects again, and its sockets hear the logout made meanwhile', async t => {
  const { a, b, proxy, refreshToken, onB } = await twoProcesses(t)

  proxy.forget()
  const logout = await a.app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: refreshToken } })
  t.equal(logout.statusCode, 204)
  // b's subscriber heard nothing: its next PING goes unanswered, it connects again and reads what it missed.
  t.match(await within(onB.next(), 'the revocation on b', 20_000), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED' } })
  const relogin = await b.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  t.equal(relogin.statusCode, 200, 'and b\'s command connection works again')
  await onB.close()
})

t.test('checkHealth: a connection stuck in its ready check (TCP up, INFO unanswered, a hung Redis) is cut 2 s after a check finds it', async t => {
  const clock = fakeClock(t, ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'])
  const turn = () => new Promise(resolve => setImmediate(resolve))
  let cuts = 0
  const connection = { status: 'connect', pings: 0, stream: { bytesRead: 0, destroy () { cuts++ } }, ping () { this.pings++; return Promise.resolve() } }
  const stop = checkHealth(() => connection)
  clock.tick(5_000)
  connection.status = 'ready' // its INFO answered in time
  connection.stream.bytesRead += 3_000
  clock.tick(2_000)
  await turn()
  t.equal(cuts, 0, 'it got ready: not cut')
  connection.status = 'connect'
  clock.tick(3_000)
  clock.tick(2_000)
  await turn()
  t.equal(cuts, 1, 'nothing read in its ready check: cut')
  t.equal(connection.pings, 0, 'no PING is sent to a connection not ready (ioredis would queue or refuse it)')
  stop()
})

t.test('a process whose Redis hung (connections accepted, never answered) listens again once a reachable one takes over', async t => {
  const { a, proxy, refreshToken, onB } = await twoProcesses(t)

  const before = proxy.accepted
  proxy.hang()
  // The health check cuts b's silent connections; ioredis connects again, and those hang in their ready check.
  while (proxy.accepted < before + 2) await new Promise(resolve => setTimeout(resolve, 100))
  proxy.recover()
  const logout = await a.app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: refreshToken } })
  t.equal(logout.statusCode, 204)
  t.match(await within(onB.next(), 'the revocation on b', 20_000), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED' } })
  await onB.close()
})

t.test('an app\'s own client made with lazyConnect: the plugin\'s subscriber connects all the same', async t => {
  const redis = await RedisServer.start(t)
  const client = new Redis(redis.url, { lazyConnect: true })
  t.teardown(() => client.disconnect())
  const a = await build(t, { users: [admin], authRoutes: true, redis: redis.url }, { logger: false })
  const b = await build(t, { users: [admin], authRoutes: true, redis: client }, { logger: false })
  const login = await a.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  const { access_token: accessToken, refresh_token: refreshToken } = login.json().data
  // b's client connects on its first command: registration does not wait for it, and b is cold until its subscriber
  // has read the revocations (SERVICE_UNAVAILABLE, for the client to try again).
  const admitted = async () => {
    for (;;) {
      const client = await connect(b.url('/websocket'))
      client.send({ type: 'auth', access_token: accessToken })
      if ((await client.next() as { status: string }).status === 'ok') return client
      await client.closed
    }
  }
  const onB = await within(admitted(), 'b loading the revocations', 20_000)
  t.pass('b has loaded the revocations: a token with a session is let in')
  await a.app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: refreshToken } })
  t.match(await within(onB.next(), 'the revocation on b'), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED' } })
  await onB.close()
})

t.test('closed, the plugin leaves no listener on the app\'s own client', async t => {
  const redis = await RedisServer.start(t)
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  const before = client.listenerCount('ready')
  for (let i = 0; i < 3; i++) {
    const { app } = await build(t, { redis: client }, { logger: false })
    await app.close()
  }
  t.equal(client.listenerCount('ready'), before)
})

t.test('a logout revokes the process\'s own sockets at once, even while its subscriber cannot connect', async t => {
  const redis = await RedisServer.start(t)
  const operator = new Redis(redis.url)
  t.teardown(() => operator.disconnect())
  const { app, url } = await build(t, { users: [admin], authRoutes: true, redis: redis.url }, { logger: false })
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  const { access_token: accessToken, refresh_token: refreshToken } = login.json().data
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: accessToken })
  t.same(await within(client.next(), 'the ok'), { type: 'auth', status: 'ok' })
  // Redis takes no new connection, and the plugin's subscriber is cut: only its command connection (and ours) is left.
  const connected = Number(/connected_clients:(\d+)/.exec(await operator.info('clients'))![1])
  await operator.config('SET', 'maxclients', String(connected - 1))
  t.teardown(() => operator.config('SET', 'maxclients', '10000'))
  await operator.client('KILL', 'TYPE', 'pubsub')
  const logout = await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: refreshToken } })
  t.equal(logout.statusCode, 204)
  t.match(await within(client.next(), 'the revocation'), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED' } })
  await client.close()
})
