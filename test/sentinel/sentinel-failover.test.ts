// A production deployment on Sentinel (README: Scaling out, Sentinel, Replicas and failover; a folder of its own: its
// failovers take half a minute, run beside the other folders): a master, its replica and three Sentinels, real
// processes all, and two app instances standing for two processes, each with the ioredis client the README recommends.
// A planned failover (SENTINEL FAILOVER) with logouts, a revokeUser and refreshes in flight: nothing ended comes back,
// and every socket of an ended session is told.
import t from 'tap'
import type { Test } from 'tap'
import { Redis } from 'ioredis'
import { admin, build, connect, editor, within, type Built, type Client } from '../helpers.js'
import { RedisServer } from '../redis-server.js'
import type { RealtimeOptions } from '../../lib/index.js'

const whoami = { whoami: (_m: unknown, c: { send: (m: object) => void, accountability: { user: string | null } }) => c.send({ type: 'whoami', user: c.accountability.user }) }
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))
type Tokens = { access_token: string, refresh_token: string }

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
  const settings = ['down-after-milliseconds 1000', 'failover-timeout 3000']
  const sentinels: RedisServer[] = []
  for (let i = 0; i < 3; i++) sentinels.push(await RedisServer.sentinel(t, master, 'realtime', settings))
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
  return { master, replica, sentinels, raw, node, sentinel, promoted, settled }
}

async function login (built: Built, who: { email: string, password: string } = admin): Promise<Tokens> {
  return (await built.app.inject({ method: 'POST', url: '/auth/login', payload: { email: who.email, password: who.password } })).json().data
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
  const [before, other] = [await login(app), await login(app)]
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
