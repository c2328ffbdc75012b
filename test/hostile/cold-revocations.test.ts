// Revocations and a cold process (PROTOCOL.md section 11): a process that has never loaded the revocation set refuses
// access tokens that carry a session with SERVICE_UNAVAILABLE until it has loaded it; then it refuses the revoked
// ones and accepts the others, and goes on with what it knows when Redis is away again. Redis is reached through a
// proxy the test opens and closes, so "Redis is down" for the cold process while the revocation already sits in it.
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import type { RealtimeOptions } from '../../lib/index.js'
import { referenceSchema } from '../../example/schema.js'
import { build, connect, refusedWith, whoami, within, type Built } from '../helpers.js'
import { RedisCluster } from '../redis-cluster.js'
import { Link } from '../redis-link.js'
import { RedisServer } from '../redis-server.js'

const unavailable = { errors: [{ message: 'Service unavailable.', extensions: { code: 'SERVICE_UNAVAILABLE' } }] }
const identity = { user: 'u1', role: 'editor', admin: false }
const schema = referenceSchema(() => null)

/** Whether an upgrade with `token` opens (the socket is closed again at once), or the HTTP status that refused it. */
async function upgrade (url: string): Promise<number | 'open'> {
  try {
    const client = await connect(url)
    await client.close()
    return 'open'
  } catch (err) {
    return Number((err as Error).message.replace('HTTP ', ''))
  }
}

/** What an upgrade gets once it is no longer 503, tried again for 30 s at least (a cold process warming up). */
async function warmed (url: string): Promise<number | 'open'> {
  let status = await upgrade(url)
  for (let attempt = 0; status === 503 && attempt < 1_200; attempt++) {
    await new Promise(resolve => setTimeout(resolve, 25))
    status = await upgrade(url)
  }
  return status
}

/** A process on `redis`, its log lines (info and up) in `lines`. */
async function logged (t: Test, redis: RealtimeOptions['redis']): Promise<Built & { lines: string[] }> {
  const lines: string[] = []
  const built = await build(t, { redis }, { logger: { level: 'info', stream: { write: (line: string) => { lines.push(line) } } } })
  return { ...built, lines }
}

/** Resolves once one of `lines` says `text`. */
async function said (lines: string[], text: string): Promise<void> {
  while (!lines.some(line => line.includes(text))) await new Promise(resolve => setTimeout(resolve, 20))
}

t.test('a process started while Redis is down refuses session tokens (503) until it has loaded the revocations', async t => {
  const redis = await RedisServer.start(t)
  const issuer = await build(t, { redis: redis.url }, { logger: false })
  await issuer.app.realtime.revokeSession('session-revoked')

  const link = new Link(redis.port)
  await link.up()
  await link.down() // the port is known, and nothing listens on it
  t.teardown(() => link.down())
  const cold = await build(t, {
    redis: `redis://127.0.0.1:${link.port}`, rest: { handlers: { whoami } }, graphql: { schema }
  }, { logger: false })
  const valid = cold.app.realtime.signAccessToken(identity, 'session-valid').access_token
  const revoked = cold.app.realtime.signAccessToken(identity, 'session-revoked').access_token
  const sessionless = cold.app.realtime.signAccessToken(identity).access_token

  const refused = await refusedWith(cold.url(`/websocket?access_token=${valid}`))
  t.same({ status: refused.status, body: JSON.parse(refused.body) }, { status: 503, body: unavailable }, 'at the upgrade: 503')
  t.equal(await upgrade(cold.url(`/websocket?access_token=${revoked}`)), 503, 'the revoked one too: nothing is known yet')
  t.equal(await upgrade(cold.url(`/graphql?access_token=${valid}`)), 503, 'on every endpoint')

  const handshake = await connect(cold.url('/websocket'))
  handshake.send({ type: 'auth', access_token: valid })
  t.same(await handshake.next(), { type: 'auth', status: 'error', error: { code: 'SERVICE_UNAVAILABLE', message: 'Service unavailable.' } })
  t.equal((await handshake.closed).code, 1013, 'as the handshake\'s first message: closed 1013, try again later')

  const later = await connect(cold.url(`/websocket?access_token=${sessionless}`))
  later.send({ type: 'whoami', uid: 1 })
  t.same(await later.next(), { type: 'whoami', uid: 1, user: 'u1' }, 'a token without a session is unaffected')
  later.send({ type: 'auth', access_token: valid, uid: 2 })
  t.same(await later.next(), {
    type: 'auth', status: 'error', error: { code: 'SERVICE_UNAVAILABLE', message: 'Service unavailable.' }, uid: 2
  }, 'a later auth message: SERVICE_UNAVAILABLE, and the socket stays')
  later.send({ type: 'whoami', uid: 3 })
  t.same(await later.next(), { type: 'whoami', uid: 3, user: 'u1' }, 'with the identity it had')
  await later.close()

  const graphql = await connect(cold.url('/graphql'), { protocols: 'graphql-transport-ws' })
  graphql.send({ type: 'connection_init', payload: { access_token: valid } })
  t.same(await graphql.closed, { code: 1013, reason: 'Service unavailable.' }, 'GraphQL connection_init: 1013, to be retried')

  await link.up() // Redis reachable: the cold process subscribes and loads the revocation set
  t.equal(await warmed(cold.url(`/websocket?access_token=${valid}`)), 'open', 'once loaded, a valid session token is accepted')
  t.equal(await upgrade(cold.url(`/websocket?access_token=${revoked}`)), 401, 'and the revoked one refused')

  await link.down() // an outage after the load: the process goes on with what it knows
  t.equal(await upgrade(cold.url(`/websocket?access_token=${valid}`)), 'open', 'during an outage, valid: accepted')
  t.equal(await upgrade(cold.url(`/websocket?access_token=${revoked}`)), 401, 'revoked: refused')
  const init = await connect(cold.url('/graphql'), { protocols: 'graphql-transport-ws' })
  init.send({ type: 'connection_init', payload: { access_token: valid } })
  t.match(await init.next(), { type: 'connection_ack' }, 'GraphQL too')
  await init.close()
})

t.test('a process whose first read of the revocations timed out, Redis up, reads them again by itself', async t => {
  const redis = await RedisServer.start(t)
  const issuer = await build(t, { redis: redis.url }, { logger: false })
  await issuer.app.realtime.revokeSession('session-revoked')

  // Redis busy (a DEBUG SLEEP, a long KEYS) as the process reads the set: the read gives up after 2 s, the connection
  // stays up, so no reconnection comes to read it again.
  const link = new Link(redis.port)
  const busy = link.hold('zscan')
  await link.up()
  t.teardown(() => link.down())
  const cold = await logged(t, `redis://127.0.0.1:${link.port}`)
  await within(said(cold.lines, 'could not read the revocations in force from Redis (realtime:revoked)'), 'the read giving up')
  const valid = cold.app.realtime.signAccessToken(identity, 'session-valid').access_token
  const revoked = cold.app.realtime.signAccessToken(identity, 'session-revoked').access_token
  t.equal(await upgrade(cold.url(`/websocket?access_token=${valid}`)), 503, 'cold: a valid session token is refused')

  busy.release() // Redis answers again, on the same connection
  t.equal(await warmed(cold.url(`/websocket?access_token=${valid}`)), 'open', 'without a restart, a valid session token is accepted')
  t.equal(await upgrade(cold.url(`/websocket?access_token=${revoked}`)), 401, 'and the revoked one refused')
  t.ok(cold.lines.some(line => /read the revocations in force from Redis \(realtime:revoked\) after \d+ failed tries/.test(line)), 'the late read is logged')
})

t.test('on a Redis Cluster, a process that started while the revocations\' slot was not served reads them once it is', async t => {
  const cluster = await RedisCluster.start(t)
  // As while the master holding the set is down with no replica to take over, or before one has: its slot is served by
  // nobody, the others by their masters, and the cluster client stays ready throughout.
  await cluster.onEachNode(node => node.config('SET', 'cluster-require-full-coverage', 'no'))
  const clientOptions = { enableOfflineQueue: false, redisOptions: { commandTimeout: 2_000, maxRetriesPerRequest: 1 } }
  const issuer = await build(t, { redis: cluster.client(t, clientOptions) }, { logger: false })
  await issuer.app.realtime.revokeSession('session-revoked')
  const owner = await cluster.nodeOf('realtime:revoked')
  const [slot] = await cluster.onEachNode(node => node.cluster('KEYSLOT', 'realtime:revoked'))
  await cluster.onEachNode(node => node.cluster('DELSLOTS', slot!))

  const cold = await logged(t, cluster.client(t, clientOptions))
  await within(said(cold.lines, 'could not read the revocations in force from Redis (realtime:revoked)'), 'the read failing')
  const valid = cold.app.realtime.signAccessToken(identity, 'session-valid').access_token
  const revoked = cold.app.realtime.signAccessToken(identity, 'session-revoked').access_token
  t.equal(await upgrade(cold.url(`/websocket?access_token=${valid}`)), 503, 'cold: a valid session token is refused')

  // Served again (the master back), the set still in it.
  const master = new Redis(owner.port, '127.0.0.1')
  await master.cluster('ADDSLOTS', slot!)
  master.disconnect()
  t.equal(await warmed(cold.url(`/websocket?access_token=${valid}`)), 'open', 'without a restart, a valid session token is accepted')
  t.equal(await upgrade(cold.url(`/websocket?access_token=${revoked}`)), 401, 'and the revoked one refused')
})
