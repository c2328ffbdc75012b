// A Redis Cluster that fails over, as managed cluster-mode Redis does: three masters with a replica each, and a master
// that dies (SIGKILL) or hangs (SIGSTOP) under two processes of the app, each with its own ioredis Cluster client. The
// master killed is the one a process's subscriber listens on, holding sessions and attempt counters: once the cluster
// has promoted its replica (as its own nodes tell), logouts and revokeUser reach the other process, log lines too,
// logins, refreshes and attempt limits work; the old master rejoins as a replica, and what was ended stays ended.
import t, { type Test } from 'tap'
import type { ClusterOptions } from 'ioredis'
import type { RealtimeOptions } from '../../lib/index.js'
import { readRefreshToken } from '../../lib/auth/refresh-tokens.js'
import { redisKeys } from '../../lib/stores/redis-keys.js'
import { admin, build, connect, editor, recordCrashes, whoami, within, type Built, type Client } from '../helpers.js'
import { RedisCluster } from '../redis-cluster.js'
import type { RedisServer } from '../redis-server.js'

// What the README recommends for a Cluster client.
const clientOptions: ClusterOptions = {
  enableOfflineQueue: false, redisOptions: { commandTimeout: 2_000, maxRetriesPerRequest: 1 }, slotsRefreshInterval: 2_000
}
const keys = redisKeys('realtime:')
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

type Tokens = { access_token: string, refresh_token: string }

/** A process of the app on `cluster`, with its own Cluster client; every write confirmed by a replica (as the README says). */
function appOn (t: Test, cluster: RedisCluster, options: RealtimeOptions = {}, logger: object | false = false): Promise<Built> {
  return build(t, {
    users: [admin, editor], authRoutes: true, redis: cluster.client(t, clientOptions), redisReplicaAcks: 1, rest: { handlers: { whoami } }, ...options
  }, { logger } as never)
}

/** An HTTP call tried again while the cluster answers 503 (a master failing over). */
async function once503sEnd (call: () => Promise<{ statusCode: number }>) {
  let answer = await call()
  while (answer.statusCode === 503) {
    await sleep(100)
    answer = await call()
  }
  return answer
}

const post = (built: Built, route: string, payload: object, remoteAddress = '127.0.0.1') =>
  built.app.inject({ method: 'POST', url: `/auth/${route}`, payload, remoteAddress })

/** `call` (revokeSession, revokeUser) tried again while it rejects (a master failing over). */
async function onceDone (call: () => Promise<void>) {
  for (;;) {
    try {
      return await call()
    } catch {
      await sleep(100)
    }
  }
}

async function socketOn (t: Test, built: Built, accessToken: string): Promise<Client> {
  const socket = await connect(built.url('/websocket'))
  socket.send({ type: 'auth', access_token: accessToken })
  t.same(await within(socket.next(), 'the ok'), { type: 'auth', status: 'ok' })
  return socket
}

const revokedFrame = { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } }

/** Connections listening on the revocations' channel on `node`. */
const listenersOn = (cluster: RedisCluster, node: RedisServer) =>
  cluster.on(node, async redis => Number((await redis.pubsub('NUMSUB', keys.revocationsChannel))[1]))

/** The node the one process listening on `cluster` listens on, once it does. */
async function listenedOn (cluster: RedisCluster): Promise<RedisServer> {
  for (;;) {
    for (const node of [...cluster.nodes, ...cluster.replicas]) if (node.running && await listenersOn(cluster, node) > 0) return node
    await sleep(20)
  }
}

/**
 * A cluster with replicas, `b` listening on the master `pick` picks (its subscriber cut wherever else it listens: it
 * moves on), and `a` started after, so that b's is the only subscriber the test moves. Sessions of `admin`, logged in
 * on a, kept on that master's slots, and an IP whose attempt counter lives there.
 */
async function failingOver (t: Test, pick: (cluster: RedisCluster) => Promise<RedisServer>) {
  const cluster = await RedisCluster.start(t, { replicated: true })
  const master = await pick(cluster)
  const lines: string[] = []
  const b = await appOn(t, cluster, {}, { level: 'info', stream: { write: (line: string) => { lines.push(line) } } })
  for (let on = await within(listenedOn(cluster), 'b listening'); on !== master; on = await within(listenedOn(cluster), 'b listening again')) {
    await cluster.on(on, redis => redis.client('KILL', 'TYPE', 'pubsub'))
  }
  const a = await appOn(t, cluster, {}, { level: 'info', stream: { write () {} } })
  /** A session of `who`'s (admin's), logged in on `on`, whose key lives on `node` (by default the master b listens on). */
  const sessionThere = async (on: Built, node = master, who: { email: string, password: string } = admin): Promise<Tokens> => {
    for (;;) {
      const tokens = (await once503sEnd(() => post(on, 'login', who)) as unknown as { json (): { data: Tokens } }).json().data
      if (await cluster.nodeOf(keys.session(readRefreshToken(tokens.refresh_token)!.sessionId)) === node) return tokens
    }
  }
  let ip = ''
  for (let i = 1; ip === ''; i++) if (await cluster.nodeOf(`${keys.attempts('ip')}:10.0.0.${i}`) === master) ip = `10.0.0.${i}`
  return { cluster, a, b, master, lines, sessionThere, ip }
}

/** The admin's id, as the tokens name it. */
const userOf = (built: Built, tokens: Tokens) => built.app.realtime.jwt.decode<{ id: string }>(tokens.access_token)!.id

/** A logs subscriber on `built`, and the wait for a line logged on `from` to reach it. */
async function logsSubscriber (t: Test, built: Built) {
  const client = await connect(built.url('/websocket/logs'))
  client.send({ type: 'auth', access_token: built.app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token })
  await client.next()
  client.send({ type: 'subscribe', log_level: 'info' })
  t.same(await client.next(), { type: 'logs', event: 'subscribe', log_level: 'info' })
  t.teardown(() => client.close())
  /** Logs `message` on `from` until it comes through (a subscription or the feed's listeners may be on their way). */
  return async (from: Built, message: string) => {
    let got = false
    const arrived = (async () => {
      for (;;) {
        const frame = await client.next() as { data?: { msg?: string } }
        if (frame.data?.msg === message) return true
      }
    })()
    for (let attempt = 0; !got && attempt < 300; attempt++) {
      from.app.log.info(message)
      got = await Promise.race([arrived, sleep(100).then(() => false)])
    }
    return got
  }
}

t.test('a Redis Cluster failing over under two processes', async t => {
  const crashes = recordCrashes(t)

  t.test('a master killed (SIGKILL), the one a process listens on: once its replica is promoted, everything reaches every process; it rejoins as a replica', async t => {
    // The revocations' set lives there too: every logout waits for the promotion.
    const { cluster, a, b, master, sessionThere, ip } = await failingOver(t, cluster => cluster.nodeOf(keys.revoked))
    const logLine = await logsSubscriber(t, b)
    const [loggedOut, ended, revoked, kept] = [await sessionThere(a), await sessionThere(a), await sessionThere(a), await sessionThere(a)]
    const [onBLoggedOut, onBEnded, onBRevoked] = await Promise.all([loggedOut, ended, revoked].map(tokens => socketOn(t, b, tokens.access_token)))
    const editors = await sessionThere(a, master, editor)
    const onBEditor = await socketOn(t, b, editors.access_token)
    const wrong = { email: 'nobody@example.com', password: 'not-the-password' }
    const [c, d] = [await appOn(t, cluster, { attemptLimit: { points: 2 } }), await appOn(t, cluster, { attemptLimit: { points: 2 } })]
    t.equal((await post(c, 'login', wrong, ip)).statusCode, 401, 'a failed attempt, counted on the master\'s slots')

    await master.stop()
    const promoted = await within(cluster.failedOver(master), 'the replica promoted')

    t.equal((await once503sEnd(() => post(a, 'logout', { refresh_token: loggedOut.refresh_token }))).statusCode, 204, 'a logout on a')
    t.same(await within(onBLoggedOut.next(), 'the logout on b'), revokedFrame, 'reaches its socket on b')
    await onceDone(() => a.app.realtime.revokeSession(readRefreshToken(ended.refresh_token)!.sessionId))
    t.same(await within(onBEnded.next(), 'revokeSession on b'), revokedFrame, 'so does revokeSession')
    await onceDone(() => a.app.realtime.revokeUser(userOf(a, revoked)))
    t.same(await within(onBRevoked.next(), 'revokeUser on b'), revokedFrame, 'so does revokeUser')
    // Its revocation came in one message: had it named the editor's socket, that would have been told before it answers.
    onBEditor.send({ type: 'whoami', uid: 1 })
    t.match(await within(onBEditor.next(), 'the other user\'s socket'), { type: 'whoami', uid: 1, user: String }, 'and no other user\'s')
    t.ok(await logLine(a, 'after the failover'), 'a line logged on a reaches the logs subscriber on b')

    t.equal((await once503sEnd(() => post(b, 'refresh', { refresh_token: kept.refresh_token }))).statusCode, 401,
      'a session of the user revoked stays ended')
    const refreshed = await once503sEnd(() => post(b, 'refresh', { refresh_token: editors.refresh_token }))
    t.equal(refreshed.statusCode, 200, 'another user\'s session from before the kill, kept by the replica, refreshes on the other process')
    const fresh = (await once503sEnd(() => post(b, 'login', admin)) as unknown as { json (): { data: Tokens } }).json().data
    t.equal((await once503sEnd(() => post(a, 'refresh', { refresh_token: fresh.refresh_token }))).statusCode, 200, 'a new login refreshes on the other process')
    t.equal((await once503sEnd(() => post(d, 'login', wrong, ip))).statusCode, 401, 'the second failed attempt')
    t.equal((await once503sEnd(() => post(c, 'login', admin, ip))).statusCode, 429, 'the counter from before the kill, kept by the replica, still holds')

    await master.start()
    await within(cluster.rejoinedAsReplica(master, promoted), 'the old master a replica')
    for (const refreshToken of [loggedOut.refresh_token, ended.refresh_token, revoked.refresh_token]) {
      t.equal((await once503sEnd(() => post(b, 'refresh', { refresh_token: refreshToken }))).statusCode, 401, 'an ended session stays ended')
    }
    const late = await appOn(t, cluster)
    t.equal((await once503sEnd(() => post(late, 'refresh', { refresh_token: loggedOut.refresh_token }))).statusCode, 401,
      'on a process started after too')
    const again = await sessionThere(a, promoted)
    const onB = await socketOn(t, b, again.access_token)
    t.equal((await once503sEnd(() => post(a, 'logout', { refresh_token: again.refresh_token }))).statusCode, 204)
    t.same(await within(onB.next(), 'a logout after the rejoin'), revokedFrame, 'a logout after the rejoin reaches b')
    for (const socket of [onB, onBLoggedOut, onBEnded, onBRevoked, onBEditor]) await socket.close()
  })

  t.test('a master frozen (SIGSTOP), the one a process listens on: the process moves on and hears the logout; thawed (SIGCONT), it rejoins as a replica', async t => {
    // Not the revocations' set's: a logout of a session kept elsewhere is done while b's subscriber is deaf.
    const { cluster, a, b, master, lines, sessionThere } = await failingOver(t, async cluster => {
      const home = await cluster.nodeOf(keys.revoked)
      return cluster.nodes.find(node => node !== home)!
    })
    const [loggedOut, later] = [await sessionThere(a), await sessionThere(a)]
    const elsewhere = await sessionThere(a, await cluster.nodeOf(keys.revoked))
    const [onB, onBElsewhere] = [await socketOn(t, b, loggedOut.access_token), await socketOn(t, b, elsewhere.access_token)]
    master.pause()
    t.teardown(() => { if (master.running) master.resume() })
    t.equal((await post(a, 'logout', { refresh_token: elsewhere.refresh_token })).statusCode, 204, 'a logout of a session kept elsewhere, at once')
    t.same(await within(onBElsewhere.next(), 'the logout on b, deaf'), revokedFrame, 'reaches b once it listens again')
    const promoted = await within(cluster.failedOver(master), 'the replica promoted')

    t.equal((await once503sEnd(() => post(a, 'logout', { refresh_token: loggedOut.refresh_token }))).statusCode, 204, 'a logout on a')
    t.same(await within(onB.next(), 'the logout on b'), revokedFrame, 'reaches its socket on b, whose subscriber was on the frozen master')
    t.ok(lines.some(line => line.includes(`Redis (subscriber) lost 127.0.0.1:${master.port}`)), 'b said it lost the frozen master')

    master.resume()
    await within(cluster.rejoinedAsReplica(master, promoted), 'the old master a replica')
    t.equal((await once503sEnd(() => post(b, 'refresh', { refresh_token: loggedOut.refresh_token }))).statusCode, 401, 'the logged-out session stays ended')
    const onBLater = await socketOn(t, b, later.access_token)
    t.equal((await once503sEnd(() => post(a, 'logout', { refresh_token: later.refresh_token }))).statusCode, 204)
    t.same(await within(onBLater.next(), 'a logout after the thaw'), revokedFrame, 'a logout after the thaw reaches b')
    for (const socket of [onB, onBLater, onBElsewhere]) await socket.close()
  })

  t.test('nothing crashed, no rejection went unhandled', async t => {
    t.same(crashes, [])
  })
})
