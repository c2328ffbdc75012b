// A production deployment on Sentinel (README: Scaling out, Sentinel, Replicas and failover; a folder of its own: its
// failovers take a minute, run beside the other folders): a master, its replica and three Sentinels, real processes
// all, and two app instances standing for two processes, each with the ioredis client the README recommends. The
// master killed and brought back empty, a master hung and woken, and a planned failover (SENTINEL FAILOVER) with logouts, a revokeUser and
// refreshes in flight: nothing ended comes back, and every socket of an ended session is told.
import t from 'tap'
import type { Test } from 'tap'
import { Redis } from 'ioredis'
import { createServer, type Server } from 'node:net'
import { admin, build, connect, editor, within, type Built, type Client } from '../helpers.js'
import { RedisServer } from '../redis-server.js'
import { SentinelAnnouncements } from '../sentinel-announcements.js'
import type { RealtimeOptions } from '../../lib/index.js'

const whoami = { whoami: (_m: unknown, c: { send: (m: object) => void, accountability: { user: string | null } }) => c.send({ type: 'whoami', user: c.accountability.user }) }
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))
type Tokens = { access_token: string, refresh_token: string }
/** How long a failover's step may take under load: Sentinel's own waits are seconds (10 to 20 s for a rejoin). */
const failoverStepMs = 120_000

/**
 * Holds a killed server's port until it is started again: the Sentinels still watch that address, and would make
 * whatever server another test started there a replica of this set (its data replaced with this one's). A connection
 * to it ends at once, as to a port nobody listens on.
 */
async function holdPort (port: number): Promise<Server> {
  const held = createServer(socket => socket.destroy())
  await new Promise<void>((resolve, reject) => held.once('error', reject).listen(port, '127.0.0.1', resolve))
  return held
}

/** A master with its replica, three Sentinels watching it, and apps on it through the README's Sentinel client. */
async function deployment (t: Test, redis: { minReplicas?: boolean } = {}) {
  const master = await RedisServer.start(t)
  const replica = await RedisServer.replicaOf(t, master)
  const raw = (port: number) => {
    const client = new Redis(port, '127.0.0.1')
    t.teardown(() => client.disconnect())
    return client
  }
  // Redis's own guard against writes a failover would lose (README: Sentinel): on every node, as each may be promoted.
  if (redis.minReplicas) for (const { port } of [master, replica]) await raw(port).config('SET', 'min-replicas-to-write', '1')
  // Above Sentinel's ping period (1 s, or down-after-milliseconds if less): at 1000, a Sentinel took the new master for
  // down 1 s after each +switch-master (its link made anew, the first PING's answer due past the bound), and with a
  // quorum of one that blip was a failover of the new master, back to the old one if it was a replica by then. A
  // quorum of two, as three Sentinels are deployed: one starved Sentinel alone fails nothing over.
  const settings = ['down-after-milliseconds 3000', 'failover-timeout 3000']
  const sentinels: RedisServer[] = []
  for (let i = 0; i < 3; i++) sentinels.push(await RedisServer.sentinel(t, master, 'realtime', settings, 2))
  const announcements = await SentinelAnnouncements.listen(t, sentinels)
  const client = () => {
    const redis = new Redis({
      sentinels: sentinels.map(({ port }) => ({ host: '127.0.0.1', port })),
      name: 'realtime',
      failoverDetector: true,
      enableOfflineQueue: false,
      commandTimeout: 2_000,
      maxRetriesPerRequest: 1
    })
    t.teardown(() => redis.disconnect())
    return redis
  }
  const node = (options: RealtimeOptions = {}) => build(t, {
    users: [admin, editor], authRoutes: true, redis: client(), rest: { handlers: whoami, authTimeout: 600 }, ...options
  }, { logger: { level: 'info', stream: { write () {} } } })
  const asked = sentinels.map(({ port }) => raw(port))
  const sentinel = asked[0]!
  /** Once every Sentinel names the replica as the master. */
  const promoted = async () => {
    for (const each of asked) while (Number((await each.call('SENTINEL', 'get-master-addr-by-name', 'realtime') as string[])[1]) !== replica.port) await sleep(50)
  }
  /** Once the replica is the master, and the old master (running) has become its replica. */
  const settled = async () => {
    await promoted()
    const old = raw(master.port)
    while ((await old.role().catch(() => ['away']))[0] !== 'slave') await sleep(100)
    // Its link up: it holds what the new master holds.
    while (!(await old.info('replication')).includes('master_link_status:up')) await sleep(50)
  }
  /** Failovers tried of the promoted replica, once the new master: none, or the data could go back to the old. */
  const failoversOfTheNew = () => announcements.heard.filter(line => line.includes(' +try-failover ') && line.includes(`realtime 127.0.0.1 ${replica.port} (`))
  return { master, replica, sentinels, announcements, raw, node, sentinel, promoted, settled, failoversOfTheNew }
}

async function login (built: Built, who: { email: string, password: string } = admin): Promise<Tokens> {
  return (await built.app.inject({ method: 'POST', url: '/auth/login', payload: { email: who.email, password: who.password } })).json().data
}

/** A login tried again while it answers 503, as a client does. */
async function loginRetried (built: Built): Promise<Tokens> {
  for (;;) {
    const answer = await built.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
    if (answer.statusCode !== 503) return answer.json().data
    await sleep(100)
  }
}

const post = (built: Built, route: string, refreshToken: string) => built.app.inject({ method: 'POST', url: `/auth/${route}`, payload: { refresh_token: refreshToken } })

/** `route`, tried again while it answers 503, as a client does through a failover. */
async function retried (built: Built, route: string, refreshToken: string) {
  let answer = await post(built, route, refreshToken)
  while (answer.statusCode === 503) {
    await sleep(100)
    answer = await post(built, route, refreshToken)
  }
  return answer
}

/** A socket authenticated with `tokens`, recording every frame it gets from then on. */
async function authenticated (built: Built, tokens: Tokens): Promise<Client & { seen: unknown[] }> {
  const client = await connect(built.url('/websocket'))
  client.send({ type: 'auth', access_token: tokens.access_token })
  const ok = await client.next()
  if ((ok as { status?: string }).status !== 'ok') throw new Error(`not authenticated: ${JSON.stringify(ok)}`)
  const seen: unknown[] = []
  client.ws.on('message', data => seen.push(JSON.parse(data.toString())))
  return Object.assign(client, { seen })
}

const revoked = (socket: { seen: unknown[] }) => socket.seen.some(frame => (frame as { error?: { code?: string } }).error?.code === 'AUTH_REVOKED')

async function whoIs (socket: Client): Promise<unknown> {
  socket.send({ type: 'whoami' })
  let frame: { type?: string, user?: unknown }
  do frame = await socket.next() as typeof frame
  while (frame.type !== 'whoami')
  return frame.user
}

t.test('Sentinel, the master killed (SIGKILL) and brought back empty: a logout reaches both processes, log lines flow between them, the old master rejoins as a replica, and nothing ended comes back', async t => {
  const d = await deployment(t)
  const [a, b] = [await d.node(), await d.node()]
  const [ended, kept] = [await login(a), await login(a)]
  await d.raw(d.master.port).wait(1, 5_000)
  const [onA, onB] = [await authenticated(a, ended), await authenticated(b, ended)]
  const [oldMaster, newMaster] = [`127.0.0.1 ${d.master.port}`, `127.0.0.1 ${d.replica.port}`]

  await d.master.stop()
  const held = await holdPort(d.master.port)
  // Given up only once the Sentinels are gone, should the test end before the master is back.
  t.teardown(async () => {
    for (const sentinel of d.sentinels) await sentinel.stop()
    held.close()
  })
  t.equal((await within(retried(a, 'logout', ended.refresh_token), 'the replica promoted', failoverStepMs)).statusCode, 204, 'a logout, once the replica is promoted')
  await within((async () => { while (!revoked(onA) || !revoked(onB)) await sleep(20) })(), 'AUTH_REVOKED on both processes', failoverStepMs)
  t.same([await whoIs(onA), await whoIs(onB)], [null, null], 'neither socket stays authenticated')

  // The logs subscriber of b follows the new master: a line logged on a reaches it.
  const logs = await connect(b.url('/websocket/logs'))
  logs.send({ type: 'auth', access_token: kept.access_token })
  t.match(await logs.next(), { type: 'auth', status: 'ok' })
  logs.send({ type: 'subscribe', log_level: 'info' })
  t.match(await logs.next(), { type: 'logs', event: 'subscribe' })
  a.app.log.info('a line of a, after the failover')
  let line: { data?: { msg?: string } }
  do line = await within(logs.next(), 'a\'s line on b') as typeof line
  while (line.data?.msg !== 'a line of a, after the failover')
  t.pass('a\'s line reached b\'s logs subscriber')

  // Empty (no persistence), restarted as a master once every Sentinel has moved on (one still naming it would take it
  // for the master back, and make the promoted replica its replica, emptied): Sentinel makes it a replica of the new,
  // once it has reported itself a master for 8 s (Sentinel's own wait), at its next INFO.
  await d.announcements.announced('+switch-master', `${oldMaster} ${newMaster}`, 'every', failoverStepMs)
  await new Promise(resolve => held.close(resolve))
  await d.master.start()
  await d.announcements.announced('+convert-to-slave', `${oldMaster} @ realtime ${newMaster}`, 'one', failoverStepMs)
  // Its copy made: a write to the new master acknowledged by it (WAIT counts replicas only once their sync is done).
  const promoted = d.raw(d.replica.port)
  await promoted.set('written-after-the-restart', 'on the new master')
  t.equal(await within(promoted.wait(1, 0), 'the old master a replica of the new, its sync done', failoverStepMs), 1, 'the old master replicates the new')
  t.equal(await d.raw(d.master.port).get('written-after-the-restart'), 'on the new master', 'and holds what it holds')

  const late = await d.node()
  t.equal((await retried(late, 'refresh', ended.refresh_token)).statusCode, 401, 'the logged-out session stays ended for a process started after')
  t.equal((await retried(late, 'refresh', kept.refresh_token)).statusCode, 200, 'the other refreshes')
  t.same(d.failoversOfTheNew(), [], 'no Sentinel tried a failover of the new master')
  await Promise.all([onA.close(), onB.close(), logs.close()])
})

t.test('Sentinel, the master hung (SIGSTOP): the processes follow the promoted replica, a logout reaches both, a session from before refreshes on the other, and the master woken rejoins as a replica', async t => {
  const d = await deployment(t)
  const [a, b] = [await d.node(), await d.node()]
  const [ended, kept] = [await login(a), await login(a)]
  await d.raw(d.master.port).wait(1, 5_000)
  const [onA, onB] = [await authenticated(a, ended), await authenticated(b, ended)]

  // Its connections stay open and its commands go unanswered: the clients' timeouts, not a refused connection, move them.
  d.master.pause()
  t.teardown(() => d.master.resume())
  await d.announcements.announced('+switch-master', `127.0.0.1 ${d.master.port} 127.0.0.1 ${d.replica.port}`, 'every', failoverStepMs)
  t.equal((await within(retried(a, 'logout', ended.refresh_token), 'a logout on the promoted replica', failoverStepMs)).statusCode, 204, 'a logout, once the replica is promoted')
  await within((async () => { while (!revoked(onA) || !revoked(onB)) await sleep(20) })(), 'AUTH_REVOKED on both processes', failoverStepMs)
  t.same([await whoIs(onA), await whoIs(onB)], [null, null], 'neither socket stays authenticated')
  t.equal((await retried(b, 'refresh', kept.refresh_token)).statusCode, 200, 'a session from before the hang refreshes on the other process')

  // Woken, it still holds the ended session: once Sentinel has made it a replica, it holds the new master's data.
  d.master.resume()
  await within(d.settled(), 'the old master a replica of the new', failoverStepMs)
  t.equal((await retried(a, 'refresh', ended.refresh_token)).statusCode, 401, 'the logged-out session stays ended')
  t.same(d.failoversOfTheNew(), [], 'no Sentinel tried a failover of the new master')
  await Promise.all([onA.close(), onB.close()])
})

t.test('a planned Sentinel failover (SENTINEL FAILOVER) with min-replicas-to-write and redisReplicaAcks: logouts, a revokeUser and refreshes in flight; nothing ended comes back', async t => {
  const d = await deployment(t, { minReplicas: true })
  const [a, b] = [await d.node({ redisReplicaAcks: 1 }), await d.node({ redisReplicaAcks: 1 })]
  const [loggedOut, refreshed, revokedUser] = [[] as Tokens[], [] as Tokens[], [] as Tokens[]]
  for (let i = 0; i < 12; i++) {
    loggedOut.push(await login(a))
    refreshed.push(await login(a))
  }
  for (let i = 0; i < 3; i++) revokedUser.push(await login(a, editor))
  const editorId = a.app.realtime.jwt.decode<{ id: string }>(revokedUser[0]!.access_token)!.id
  const socketsOf = async (tokens: Tokens[]) => [...await Promise.all(tokens.map(each => authenticated(a, each))), ...await Promise.all(tokens.map(each => authenticated(b, each)))]
  const [loggedOutSockets, revokedSockets] = [await socketsOf(loggedOut), await socketsOf(revokedUser)]

  // The Sentinels know the replica a moment after they start: until then, no failover.
  for (let tries = 0; ; tries++) {
    if (tries === 600) throw new Error('no Sentinel could fail over')
    try {
      await d.sentinel.call('SENTINEL', 'FAILOVER', 'realtime')
      break
    } catch {
      await sleep(100)
    }
  }
  // While it runs (the replica promoted, the clients following, the old master demoted): one of each every 100 ms.
  const rotated: Array<{ old: string, answer: Awaited<ReturnType<typeof post>> }> = []
  let revocation: Promise<void> | undefined
  for (let i = 0; i < loggedOut.length; i++) {
    const [logout, refresh] = await Promise.all([retried(a, 'logout', loggedOut[i]!.refresh_token), post(b, 'refresh', refreshed[i]!.refresh_token)])
    t.equal(logout.statusCode, 204, `logout ${i}`)
    rotated.push({ old: refreshed[i]!.refresh_token, answer: refresh })
    if (i === 3) {
      revocation = (async () => {
        for (;;) {
          try {
            return await b.app.realtime.revokeUser(editorId)
          } catch {
            await sleep(100)
          }
        }
      })()
    }
    await sleep(100)
  }
  await within(revocation!, 'revokeUser through the failover', 120_000)
  await within(d.settled(), 'the old master a replica of the new', 120_000)
  t.same(d.failoversOfTheNew(), [], 'no Sentinel tried a failover of the new master')

  // A process started after it all knows what Redis holds, nothing more.
  const late = await d.node()
  for (const [i, tokens] of loggedOut.entries()) t.equal((await retried(late, 'refresh', tokens.refresh_token)).statusCode, 401, `logged-out session ${i} stays ended`)
  for (const [i, tokens] of revokedUser.entries()) t.equal((await retried(late, 'refresh', tokens.refresh_token)).statusCode, 401, `revoked user's session ${i} stays ended`)
  for (const [i, { old, answer }] of rotated.entries()) {
    if (answer.statusCode === 200) {
      // The newest first: the old one is reuse, which would end the session.
      t.equal((await retried(late, 'refresh', answer.json().data.refresh_token)).statusCode, 200, `rotation ${i}: its new token refreshes`)
      t.equal((await retried(late, 'refresh', old)).statusCode, 401, `rotation ${i}: its old token is refused`)
    } else {
      // Refused, nothing rotated: the client keeps its token, and its retry refreshes.
      t.equal(answer.statusCode, 503, `rotation ${i}, refused during the failover`)
      t.equal((await retried(late, 'refresh', old)).statusCode, 200, `rotation ${i}: the token the client kept refreshes`)
    }
  }
  await within((async () => { while (![...loggedOutSockets, ...revokedSockets].every(revoked)) await sleep(20) })(), 'AUTH_REVOKED on every ended socket')
  for (const socket of [...loggedOutSockets, ...revokedSockets]) t.equal(await whoIs(socket), null, 'no ended session\'s socket stays authenticated')
  await Promise.all([...loggedOutSockets, ...revokedSockets].map(socket => socket.close()))
})

t.test('min-replicas-to-write with the replica down: logins, refreshes and logouts answer 503 with Retry-After, a socket\'s login SERVICE_UNAVAILABLE; redisReplicaAcks alone waits for no replica', async t => {
  const master = await RedisServer.start(t)
  const replica = await RedisServer.replicaOf(t, master)
  const redis = new Redis(master.port, '127.0.0.1')
  t.teardown(() => redis.disconnect())
  const app = await build(t, { users: [admin], authRoutes: true, redis: master.url, redisReplicaAcks: 1 }, { logger: false })
  // Retried as a client does: under load the fresh replica may not confirm within redisReplicaAcks' 500 ms (503).
  const [before, other] = [await loginRetried(app), await loginRetried(app)]
  await replica.stop()
  while (((await redis.role()) as [string, number, unknown[]])[2].length > 0) await sleep(20)

  t.equal((await post(app, 'refresh', before.refresh_token)).statusCode, 200, 'with no replica online, redisReplicaAcks waits for none')
  await redis.config('SET', 'min-replicas-to-write', '1')
  const loginAnswer = await app.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  for (const [what, answer] of [['login', loginAnswer], ['refresh', await post(app, 'refresh', other.refresh_token)], ['logout', await post(app, 'logout', other.refresh_token)]] as const) {
    t.equal(answer.statusCode, 503, `${what}: 503`)
    t.equal(answer.headers['retry-after'], '1', `${what}: Retry-After`)
    t.match(answer.json(), { errors: [{ extensions: { code: 'SERVICE_UNAVAILABLE' } }] })
  }
  const socket = await connect(app.url('/websocket'))
  socket.send({ type: 'auth', email: admin.email, password: admin.password })
  t.same(await socket.next(), { type: 'auth', status: 'error', error: { code: 'SERVICE_UNAVAILABLE', message: 'Service unavailable.' } })
  t.equal((await socket.closed).code, 1013, 'the handshake\'s socket closes: try again later')
  await t.rejects(app.app.realtime.revokeUser('someone'), 'revokeUser rejects')

  await redis.config('SET', 'min-replicas-to-write', '0')
  t.equal((await post(app, 'logout', other.refresh_token)).statusCode, 204, 'the refused logout, retried once Redis takes writes')
})
