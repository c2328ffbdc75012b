// A subscriber that stays connected, answers its PINGs and hears nothing (README "Scaling out", A subscriber that
// hears nothing): a proxy that lost its own subscription, a cluster node cut off from the others' relays, or removed
// from its cluster and left running alone. Each process probes its own subscription; one that does not hear its probe
// is cut, connects again (to another node of a cluster), and replays what it missed, down to revocations lapsed
// meanwhile. The probes' period runs on a fake clock; what they wait for is on the wire.
import t, { type Test } from 'tap'
import { promisify } from 'node:util'
import { execFile } from 'node:child_process'
import type { FastifyBaseLogger } from 'fastify'
import { Redis, type ClusterOptions } from 'ioredis'
import pino from 'pino'
import type { RealtimeOptions } from '../../lib/index.js'
import { connectRedis, type RedisClient } from '../../lib/stores/redis-connection.js'
import { probeSubscription } from '../../lib/stores/subscription-probe.js'
import { admin, build, connect, fakeClock, until, whoami, within, type Built, type Client } from '../helpers.js'
import { RedisCluster } from '../redis-cluster.js'
import { RedisServer } from '../redis-server.js'
import { replyCuttingProxy } from '../reply-cutting-proxy.js'

// The probes and the health checks run on setInterval: faked, they go out only when the test ticks.
const probeTimers = ['setInterval', 'clearInterval'] as const

// What the README recommends for a Cluster client.
const clientOptions: ClusterOptions = {
  enableOfflineQueue: false, redisOptions: { commandTimeout: 2_000, maxRetriesPerRequest: 1 }, slotsRefreshInterval: 2_000
}

t.test('probeSubscription: a probe every second while subscribed, and the subscriber cut if it has not heard it 2 s after Redis took it', async t => {
  const clock = fakeClock(t, ['Date', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'])
  const turn = () => new Promise(resolve => setImmediate(resolve))
  const start = Date.now()
  let cuts = 0
  const stream = () => ({ bytesRead: 0, destroy () { cuts++ } })
  const connection = { status: 'ready', stream: stream(), ping: () => Promise.resolve() }
  let current: typeof connection | null = null
  const published: { message: string, answer: (taken: boolean) => void }[] = []
  const warnings: string[] = []
  const log = { warn: (line: string) => warnings.push(line) } as unknown as FastifyBaseLogger
  const probe = probeSubscription(() => current, (message) => new Promise((resolve, reject) => {
    published.push({ message, answer: (taken) => taken ? resolve(1) : reject(new Error('Redis is away')) })
  }), log)
  /** Redis answers the last probe: its wait begins once that answer is read. */
  const answer = async (taken = true) => {
    published.at(-1)!.answer(taken)
    await turn()
  }

  probe.subscribed()
  clock.tick(1_000)
  t.equal(published.length, 0, 'no connection: no probe')
  current = connection
  clock.tick(1_000)
  t.equal(published.length, 0, 'a connection the probe\'s channel was not subscribed on: none')
  probe.subscribed()
  clock.tick(1_000) // 3 s
  t.equal(published.length, 1, 'subscribed: a probe')
  clock.tick(1_000)
  t.equal(published.length, 1, 'none more while Redis has not answered the last')
  await answer()
  clock.tick(1_500) // 5.5 s
  t.equal(published.length, 2, 'the next a second later')
  probe.heard(published[0]!.message)
  clock.tick(500)
  await turn()
  t.equal(cuts, 0, 'heard within 2 s of Redis taking it: left alone')
  t.equal(probe.heardUpTo, start + 3_000, 'everything published until that probe went out was heard')

  await answer() // 6 s
  clock.tick(1_999)
  await turn()
  t.equal(cuts, 0)
  t.equal(published.length, 3)
  clock.tick(1)
  await turn()
  t.equal(cuts, 1, 'not heard: cut')
  t.match(warnings, [/did not hear its probe within 2 s: listening again/])
  probe.heard(published[1]!.message)
  t.equal(probe.heardUpTo, start + 3_000, 'heard too late: it proves nothing')
  probe.heard('999')
  t.equal(probe.heardUpTo, start + 3_000, 'nor does a probe never sent')

  connection.stream = stream()
  await answer() // 8 s
  clock.tick(1_000)
  t.equal(published.length, 3, 'made anew: no probe before its channel is subscribed on it')
  clock.tick(1_000)
  await turn()
  t.equal(cuts, 1, 'nor is a connection made anew cut for a probe sent before')
  probe.subscribed()
  clock.tick(1_000) // 11 s
  await answer(false)
  clock.tick(1_000)
  t.equal(published.length, 5, 'one Redis refused goes without a verdict; the next goes out')
  await answer() // 12 s
  connection.status = 'reconnecting'
  clock.tick(2_000)
  await turn()
  t.equal(cuts, 1, 'nor is one gone away meanwhile cut')
  t.equal(published.length, 5, 'nor one away probed')
  connection.status = 'ready'
  probe.stop()
  clock.tick(60_000)
  t.equal(published.length, 5, 'and none once stopped')
})

/** A logger whose lines go to `lines`. */
const linesLog = (lines: string[]) => pino({ level: 'warn' }, { write: (line: string) => { lines.push(line) } })

/** The probes published under `prefix` on `server`, as a listener of the test's own hears them. */
async function probesOn (t: Test, server: RedisServer, prefix: string): Promise<string[]> {
  const heard: string[] = []
  const listener = new Redis(server.port, '127.0.0.1')
  t.teardown(() => listener.disconnect())
  listener.on('pmessage', (_pattern: string, _channel: string, message: string) => heard.push(message))
  await listener.psubscribe(`${prefix}probe:*`)
  return heard
}

/**
 * Connections of `commands` listening on `test:other`, and how many times they subscribed (the first time included):
 * a subscriber cut subscribes again.
 */
async function listening (t: Test, commands: RedisClient, lines: string[]) {
  const connections = connectRedis(commands, 'test:', linesLog(lines))
  t.teardown(() => connections.close())
  let subscriptions = 0
  // Subscribed after the probe's channel, on the same connection: that one is subscribed too by then.
  connections.listen('test:other', () => {}, () => { subscriptions++ })
  await within(until(() => subscriptions === 1), 'subscribed')
  return { subscriptions: () => subscriptions }
}

/** Past a probe's wait (2 s once Redis took it): a subscriber cut by then has been. */
const pastTheWait = () => new Promise(resolve => setTimeout(resolve, 2_500))

t.test('a probe goes out only while the command connection is up, and one heard leaves the subscriber be', async t => {
  const clock = fakeClock(t, [...probeTimers])
  const server = await RedisServer.start(t)
  const probes = await probesOn(t, server, 'test:')
  // An app's own client: the subscriber is its duplicate, up while the client itself is not.
  const commands = new Redis(server.url)
  t.teardown(() => commands.disconnect())
  const lines: string[] = []
  const { subscriptions } = await listening(t, commands, lines)
  commands.disconnect()
  await within(until(() => commands.status === 'end'), 'the command connection closed')
  clock.tick(1_000)
  await commands.connect()
  clock.tick(1_000)
  await within(until(() => probes.length > 0), 'a probe')
  t.same(probes, ['2'], 'none while the command connection was away: the first to go out is the second')
  await pastTheWait()
  t.same(lines, [], 'heard: nothing said')
  t.equal(subscriptions(), 1, 'and the subscriber left alone')
})

t.test('a cluster of one master: the probe goes through the cluster, to the node listened on', async t => {
  const clock = fakeClock(t, [...probeTimers])
  const cluster = await RedisCluster.start(t, { masters: 1 })
  const probes = await probesOn(t, cluster.nodes[0]!, 'test:')
  await listening(t, cluster.client(t, clientOptions), [])
  clock.tick(1_000)
  await within(until(() => probes.length > 0), 'a probe')
  t.same(probes, ['1'], 'published on the one node there is')
})

/** A socket on `built` authenticated by the session cookie `cookie`. */
async function cookieSocket (t: Test, built: Built, cookie: string): Promise<Client> {
  const socket = await connect(built.url('/websocket'), { headers: { cookie: `directus_session_token=${cookie}` } })
  socket.send({ type: 'whoami', uid: 1 })
  t.match(await within(socket.next(), 'whoami'), { type: 'whoami', user: String }, 'the socket acts as the user')
  return socket
}

t.test('a process whose subscriber went deaf behind a proxy connects again, and ends the sockets of the sessions logged out meanwhile, their revocations lapsed', async t => {
  const clock = fakeClock(t, [...probeTimers])
  const redis = await RedisServer.start(t)
  const proxy = await replyCuttingProxy(t, redis.port)
  const options: RealtimeOptions = { users: [admin], authRoutes: true, accessTokenTtl: '1s', heartbeat: { enabled: false }, rest: { handlers: { whoami } } }
  const lines: string[] = []
  const a = await build(t, { ...options, redis: redis.url }, { logger: false })
  const b = await build(t, { ...options, redis: proxy.url }, { logger: { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } } })
  const sessionLogin = async () => (await a.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password, mode: 'session' } }))
    .cookies.find(cookie => cookie.name === 'directus_session_token')!.value
  const logout = async (cookie: string) => {
    const response = await a.app.inject({ method: 'POST', url: '/auth/logout', payload: { mode: 'session' }, headers: { cookie: `directus_session_token=${cookie}` } })
    t.equal(response.statusCode, 204, 'logged out on a')
  }
  const cookie = await sessionLogin()
  const onB = await cookieSocket(t, b, cookie)

  proxy.deafen()
  await logout(cookie)
  // Past the revocation's lapse (one access-token lifetime), and another logout, which sheds the lapsed ones it may.
  const lapsed = Date.now() + 1_000
  while (Date.now() <= lapsed) await new Promise(resolve => setTimeout(resolve, lapsed - Date.now() + 1))
  await logout(await sessionLogin())

  clock.tick(1_000)
  t.match(await within(onB.next(), 'the revocation on b'), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED' } },
    'b\'s probe went unheard: it listened again, and replayed the revocation lapsed meanwhile')
  t.ok(lines.some(line => line.includes('the Redis subscriber did not hear its probe within 2 s: listening again')), 'and said why')
  await onB.close()
})

t.test('on a Redis Cluster', async t => {
  /** A process of the app on `cluster`, with its own Cluster client. */
  const appOn = (t: Test, cluster: RedisCluster) => build(t, {
    users: [admin], authRoutes: true, redis: cluster.client(t, clientOptions), heartbeat: { enabled: false }, rest: { handlers: { whoami } }
  }, { logger: false })
  const login = async (built: Built) => (await built.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } }))
    .json().data as { access_token: string, refresh_token: string }
  const tokenSocket = async (t: Test, built: Built, token: string) => {
    const socket = await connect(built.url('/websocket'))
    socket.send({ type: 'auth', access_token: token })
    t.same(await within(socket.next(), 'the ok'), { type: 'auth', status: 'ok' })
    return socket
  }
  /**
   * A logout on `built`, tried again while the cluster answers 503: a client that asked a node removed from the cluster
   * for the slots is left with none until it has connected again.
   */
  const loggedOut = async (t: Test, built: Built, refreshToken: string) => {
    const logout = () => built.app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: refreshToken } })
    let answer = await logout()
    while (answer.statusCode === 503) {
      await new Promise(resolve => setTimeout(resolve, 100))
      answer = await logout()
    }
    t.equal(answer.statusCode, 204, 'logged out')
  }
  /** How many connections listen on `realtime:revocations` on `node`. */
  const listenersOn = async (cluster: RedisCluster, node: RedisServer) =>
    Number((await cluster.on(node, redis => redis.pubsub('NUMSUB', 'realtime:revocations')))[1])
  /** The node the one process on `nodes` listens on, once it does. */
  const listenedOn = async (cluster: RedisCluster, nodes: RedisServer[]) => {
    for (;;) {
      for (const node of nodes) if (await listenersOn(cluster, node) > 0) return node
      await new Promise(resolve => setTimeout(resolve, 20))
    }
  }

  t.test('a subscriber on a node cut off from the others\' relays moves to another, and hears the logout it missed', async t => {
    const clock = fakeClock(t, [...probeTimers])
    const cluster = await RedisCluster.start(t, { cuttableBus: true })
    // b listens on another node than the revocation set's: one that publishes there is heard there, cut off or not.
    const home = await cluster.nodeOf('realtime:revoked')
    let b: Built
    let deaf: RedisServer
    for (;;) {
      b = await appOn(t, cluster)
      deaf = await within(listenedOn(cluster, cluster.nodes), 'b listening')
      if (deaf !== home) break
      await b.app.close()
    }
    const a = await appOn(t, cluster)
    const tokens = await login(a)
    const onB = await tokenSocket(t, b, tokens.access_token)

    cluster.cutBus(deaf)
    await loggedOut(t, a, tokens.refresh_token)
    clock.tick(1_000)
    t.match(await within(onB.next(), 'the revocation on b'), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED' } },
      'b\'s probe, published on another master, went unheard: b listened elsewhere and replayed the revocation')
    await onB.close()
  })

  t.test('a subscriber on a replica removed from the cluster (redis-cli --cluster del-node) moves to a node still in it', async t => {
    // The probes and health checks stay still: only the cluster's list of nodes moves b.
    fakeClock(t, [...probeTimers])
    const cluster = await RedisCluster.start(t)
    const replica = await cluster.addReplica(t, cluster.nodes[0]!)
    const nodes = [...cluster.nodes, replica]
    const b = await appOn(t, cluster)
    // Cut b's subscriber wherever it listens until it listens on the replica: it moves to the next node each time.
    for (let on = await within(listenedOn(cluster, nodes), 'b listening'); on !== replica; on = await within(listenedOn(cluster, nodes), 'b listening again')) {
      await cluster.on(on, redis => redis.client('KILL', 'TYPE', 'pubsub'))
    }
    const a = await appOn(t, cluster)
    const tokens = await login(a)
    const onB = await tokenSocket(t, b, tokens.access_token)

    await promisify(execFile)('redis-cli', ['--cluster', 'del-node', `127.0.0.1:${cluster.nodes[0]!.port}`, await cluster.idOf(replica)])
    // Left running alone, its connections open; b's client no longer lists it once it reads the cluster's slots again.
    await within((async () => { while (await listenersOn(cluster, replica) > 0) await new Promise(resolve => setTimeout(resolve, 50)) })(), 'b leaving the replica')
    await loggedOut(t, a, tokens.refresh_token)
    t.match(await within(onB.next(), 'the revocation on b'), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED' } },
      'b listens on a node of the cluster: it hears the logout')
    await onB.close()
  })

  t.test('a subscriber whose node is killed (its socket closed, no error) moves to another node and says so, once: the node lost, then the one it listens on', async t => {
    fakeClock(t, [...probeTimers])
    const cluster = await RedisCluster.start(t)
    const lines: Array<{ level: number, msg: string }> = []
    await build(t, { users: [admin], redis: cluster.client(t, clientOptions) },
      { logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
    const killed = await within(listenedOn(cluster, cluster.nodes), 'listening')
    await killed.stop()
    const moved = await within(listenedOn(cluster, cluster.nodes.filter(node => node !== killed)), 'listening on another node')
    const told = () => lines.filter(line => line.msg.startsWith('Redis (subscriber)')).map(({ level, msg }) => ({ level, msg }))
    await within(until(() => told().length === 2), 'the move told')
    t.same(told(), [
      { level: 40, msg: `Redis (subscriber) lost 127.0.0.1:${killed.port}; listening on another node` },
      { level: 30, msg: `Redis (subscriber) connected again, to 127.0.0.1:${moved.port}` }
    ], 'a warning naming the node lost, and the node it listens on now')
  })
})
