// A user's slot being migrated on a Redis Cluster (MIGRATING on its source, IMPORTING on its target), as
// `redis-cli --cluster reshard` leaves it while it moves the slot's keys, or for good when it is interrupted, until
// `--cluster fix`: some of the user's keys on one node, some on the other, or none yet on the node that will hold them.
// And the slot of the set of revocations, which every logout and revokeUser writes and publishes beside.
import { once } from 'node:events'
import t, { type Test } from 'tap'
import { Redis, type ClusterOptions } from 'ioredis'
import { admin, build, connect, editor, within, type Built, type Client } from '../helpers.js'
import { RedisCluster } from '../redis-cluster.js'
import { ackedEval } from '../../lib/stores/replica-acks.js'
import type { RedisServer } from '../redis-server.js'

// What the README recommends: commands fail at once while the cluster is away, and give up after 2 s.
const clientOptions: ClusterOptions = {
  enableOfflineQueue: false, redisOptions: { commandTimeout: 2_000, maxRetriesPerRequest: 1 }, slotsRefreshInterval: 2_000
}

/** Runs `command` on `node` alone, with a connection of its own. */
async function on<T> (node: RedisServer, command: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(node.port, '127.0.0.1')
  try {
    return await command(redis)
  } finally {
    redis.disconnect()
  }
}

/**
 * Puts the slot of `key` in migration from its node to `targetOf(source)` (another master by default), as a reshard
 * does: IMPORTING on the target, then MIGRATING on the source.
 */
async function migration (cluster: RedisCluster, key: string, targetOf = (source: RedisServer) => cluster.nodes.find(node => node !== source)!) {
  const source = await cluster.nodeOf(key)
  const target = targetOf(source)
  const slot = await on(source, redis => redis.cluster('KEYSLOT', key)) as number
  const [sourceId, targetId] = await Promise.all([source, target].map(node => cluster.idOf(node)))
  await on(target, redis => redis.cluster('SETSLOT', slot, 'IMPORTING', sourceId))
  await on(source, redis => redis.cluster('SETSLOT', slot, 'MIGRATING', targetId))
  return {
    source,
    target,
    slot,
    /** Moves `keys` to the target, as the reshard does a batch at a time. */
    move: (keys: string[]) => on(source, redis => redis.migrate('127.0.0.1', target.port, '', 0, 5_000, 'KEYS', ...keys)),
    /** Ends the migration, the slot the target's (`moved`) or back on the source's, told to the nodes concerned first. */
    end: async (moved: boolean) => {
      for (const node of [target, source, ...cluster.nodes.filter(node => node !== source && node !== target)]) {
        await on(node, redis => redis.cluster('SETSLOT', slot, 'NODE', moved ? targetId : sourceId))
      }
    }
  }
}

/** The editor's login on `app` (answered 200), a refresh or logout's status, and the user of an access token. */
function editorFlows (t: Test, { app }: Built) {
  return {
    login: async () => {
      const reply = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: editor.email, password: editor.password } })
      t.equal(reply.statusCode, 200, 'login')
      return reply.json().data as { access_token: string, refresh_token: string }
    },
    post: async (route: 'refresh' | 'logout', token: string) =>
      (await app.inject({ method: 'POST', url: `/auth/${route}`, payload: { refresh_token: token } })).statusCode,
    userOf: (accessToken: string) => (app.realtime.jwt.decode(accessToken) as { id: string }).id
  }
}

t.test('logins, refreshes and revokeUser of a user whose slot is being migrated', async t => {
  const cluster = await RedisCluster.start(t)
  const a: Built = await build(t, { users: [admin, editor], authRoutes: true, redis: cluster.client(t, clientOptions), redisPrefix: 'm:' })
  const login = async (t: Test, who: { email: string, password: string }) => {
    const reply = await a.app.inject({ method: 'POST', url: '/auth/login', payload: { email: who.email, password: who.password } })
    t.equal(reply.statusCode, 200, 'login')
    return reply.json().data as { access_token: string, refresh_token: string }
  }
  const refresh = async (token: string) =>
    (await a.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: token } })).statusCode
  const userOf = (token: string) => (a.app.realtime.jwt.decode(token) as { id: string }).id

  /** Puts the slot of `user`'s keys in migration from its node to another; ends it at the test's end. */
  async function migrating (t: Test, user: string) {
    const key = (name: string) => `m:{u:${user}}:${name}`
    const { source, target, slot, move, end } = await migration(cluster, key('session-expiries'))
    t.teardown(() => end(true))
    return {
      key,
      /**
       * The user's keys of the slot that `node` holds. A session's key may hash to the same slot (1 in 16,384 each, so
       * about one run in a thousand): not the user's.
       */
      keysOn: async (node: RedisServer) => (await on(node, redis => redis.cluster('GETKEYSINSLOT', slot, 100)) as string[])
        .filter(name => name.startsWith(key(''))),
      move,
      source,
      target
    }
  }

  t.test('its set on the source, no mark of an endUser anywhere (the usual case)', async t => {
    const tokens = [await login(t, editor), await login(t, editor)]
    const user = userOf(tokens[0]!.access_token)
    const slot = await migrating(t, user)
    t.same(await slot.keysOn(slot.source), [slot.key('session-expiries')])
    tokens.push(await login(t, editor))
    t.equal(await refresh(tokens[0]!.refresh_token), 200, 'refresh')
    await a.app.realtime.revokeUser(user)
    for (const token of tokens.slice(1)) t.equal(await refresh(token.refresh_token), 401, 'revokeUser ended every session of the user')
    t.same(await slot.keysOn(slot.target), [slot.key('sessions-ended-at')], 'its mark went to the target')
  })

  t.test('its set on the source, the mark of its last endUser moved; then both moved', async t => {
    const user = userOf((await login(t, admin)).access_token)
    await a.app.realtime.revokeUser(user)
    const tokens = [await login(t, admin), await login(t, admin), await login(t, admin)]
    const slot = await migrating(t, user)
    await slot.move([slot.key('sessions-ended-at')])
    t.same([await slot.keysOn(slot.source), await slot.keysOn(slot.target)],
      [[slot.key('session-expiries')], [slot.key('sessions-ended-at')]], 'the user\'s keys are split between the nodes')
    tokens.push(await login(t, admin))
    t.equal(await refresh(tokens[0]!.refresh_token), 200, 'refresh')
    await a.app.realtime.revokeUser(user)
    for (const token of tokens.slice(1)) t.equal(await refresh(token.refresh_token), 401, 'revokeUser ended every session of the user')

    const again = [await login(t, admin), await login(t, admin)]
    t.same([await slot.keysOn(slot.source), (await slot.keysOn(slot.target)).sort()],
      [[], [slot.key('session-expiries'), slot.key('sessions-ended-at')]], 'every key of the user on the target')
    t.equal(await refresh(again[0]!.refresh_token), 200, 'refresh')
    await a.app.realtime.revokeUser(user)
    t.equal(await refresh(again[1]!.refresh_token), 401, 'revokeUser ended every session of the user')
  })
})

t.test('logouts and revokeUser while the slot of the set of revocations moves: each answered, reaching the other process', async t => {
  const cluster = await RedisCluster.start(t)
  // The slot map read once, at connection: the client learns the move from the MOVED it gets, not from a periodic read
  // that could come between the move and the logout.
  const options: ClusterOptions = { ...clientOptions, slotsRefreshInterval: 600_000 }
  const node = () => build(t, { users: [admin, editor], authRoutes: true, redis: cluster.client(t, options), redisPrefix: 'v:' })
  const [a, b] = [await node(), await node()]
  const login = async () => (await a.app.inject({ method: 'POST', url: '/auth/login', payload: { email: editor.email, password: editor.password } })).json().data as { access_token: string, refresh_token: string }
  const logout = async (token: string) =>
    (await a.app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: token } })).statusCode
  /** A socket on the other process, authenticated with the session's access token. */
  const onB = async (accessToken: string): Promise<Client> => {
    const client = await connect(b.url('/websocket'))
    client.send({ type: 'auth', access_token: accessToken })
    t.same(await client.next(), { type: 'auth', status: 'ok' })
    return client
  }
  const revoked = async (client: Client, what: string) => {
    t.same(await within(client.next(), what, 10_000), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } }, what)
    await client.close()
  }
  t.equal(await logout((await login()).refresh_token), 204, 'a first logout writes the set')

  const slot = await migration(cluster, 'v:revoked')
  await slot.move(['v:revoked'])

  // The set on the target, the slot still the source's: Redis answers its commands ASK.
  let session = await login()
  let socket = await onB(session.access_token)
  t.equal(await logout(session.refresh_token), 204, 'a logout while the slot migrates')
  await revoked(socket, 'the logout on the other process')
  session = await login()
  socket = await onB(session.access_token)
  await t.resolves(a.app.realtime.revokeUser((a.app.realtime.jwt.decode(session.access_token) as { id: string }).id), 'revokeUser while the slot migrates')
  await revoked(socket, 'the revokeUser on the other process')

  // The move done: the clients still send the set's commands to the source, which answers MOVED.
  await slot.end(true)
  session = await login()
  socket = await onB(session.access_token)
  t.equal(await logout(session.refresh_token), 204, 'a logout once the slot has moved')
  await revoked(socket, 'that logout on the other process')
  const entries = (await on(slot.target, redis => redis.zrange('v:revoked', 0, -1))).map(entry => entry.split(':')[0])
  t.same(entries.sort(), ['session', 'session', 'session', 'user', 'user'], 'every revocation in the set, on its new node: the logouts\' and revokeUser\'s (marked as it begins and as it ends)')
})

t.test('with redisReplicaAcks, logins, a logout and revokeUser of a user whose slot is being migrated, then just moved', async t => {
  const cluster = await RedisCluster.start(t)
  // The writes wait for the replica of the node they land on (added before a migration: redis-cli refuses one then).
  for (const node of cluster.nodes) await cluster.addReplica(t, node)
  // The client's own keyPrefix (a Cluster's, which its nodes' connections lack), and none.
  for (const keyPrefix of [undefined, 'p:']) {
    await t.test(`keyPrefix ${String(keyPrefix)}`, async t => {
      const redis = cluster.client(t, { ...clientOptions, slotsRefreshInterval: 600_000, keyPrefix })
      const a = await build(t, { users: [admin, editor], authRoutes: true, redis, redisPrefix: 'a:', redisReplicaAcks: 1 })
      const { login, post, userOf } = editorFlows(t, a)
      const first = await login()
      const user = userOf(first.access_token)
      const setKey = `${keyPrefix ?? ''}a:{u:${user}}:session-expiries`
      const slot = await migration(cluster, setKey)
      await slot.move([setKey])

      // The user's keys on the target, the slot still the source's: Redis answers ASK.
      const second = await login()
      await a.app.realtime.revokeUser(user)
      for (const tokens of [first, second]) t.equal(await post('refresh', tokens.refresh_token), 401, 'revokeUser ended every session of the user')
      const third = await login()
      t.equal(await post('logout', third.refresh_token), 204, 'logout')

      // The move done: the client still sends the user's keys to the source, which answers MOVED.
      await slot.end(true)
      const fourth = await login()
      t.equal(await post('refresh', fourth.refresh_token), 200, 'refresh')
      t.same(await on(slot.target, redis => redis.zcard(setKey)), 1, 'the user\'s set on the target lists the live session')
    })
  }

  t.test('a Cluster whose keyPrefix its nodes\' connections do not begin with (another in redisOptions): a redirected write is refused, never written under the wrong keys', async t => {
    const redis = cluster.client(t, { ...clientOptions, slotsRefreshInterval: 600_000, keyPrefix: 'p:', redisOptions: { ...clientOptions.redisOptions, keyPrefix: 'q:' } })
    const a = await build(t, { users: [admin, editor], authRoutes: true, redis, redisPrefix: 'w:', redisReplicaAcks: 1 })
    const login = () => a.app.inject({ method: 'POST', url: '/auth/login', payload: { email: editor.email, password: editor.password } })
    const first = await login()
    t.equal(first.statusCode, 200, 'login')
    const user = (a.app.realtime.jwt.decode(first.json().data.access_token) as { id: string }).id
    const setKey = `p:w:{u:${user}}:session-expiries`
    const slot = await migration(cluster, setKey)
    t.teardown(() => slot.end(false))
    await slot.move([setKey])
    t.equal((await login()).statusCode, 503, 'the login refused, as before redirected writes were sent again')
    t.same(await cluster.keys('q:*'), [], 'nothing written under the nodes\' own prefix')
  })

  t.test('a write redirected by MOVED has the client read the slot map again: the writes after it go to the slot\'s node', async t => {
    // The slot map read once, at connection, as above: the client learns the move from the MOVED it gets.
    const redis = cluster.client(t, { ...clientOptions, slotsRefreshInterval: 600_000 })
    await new Promise(resolve => redis.once('ready', resolve))
    const key = 'a:moved-writes'
    const script = "return redis.call('INCR', KEYS[1])"
    await ackedEval(redis, 1, script, [key])
    const slot = await migration(cluster, key)
    await slot.move([key])
    await slot.end(true)
    const redirections = () => on(slot.source, async redis => Number(/errorstat_MOVED:count=(\d+)/.exec(await redis.info('errorstats'))?.[1] ?? 0))
    const before = await redirections()
    const refreshed = once(redis, 'refresh')
    t.equal(await ackedEval(redis, 1, script, [key]), 2, 'the first write after the move, redirected')
    await within(refreshed, 'the slot map read again')
    const counts: unknown[] = []
    for (let i = 0; i < 10; i++) counts.push(await ackedEval(redis, 1, script, [key]))
    t.same(counts, [3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 'ten more writes')
    t.equal(await redirections() - before, 1, 'one redirection, not one per write until the map is read again on its own')
  })

  t.test('a write refused for another reason than a redirection is not sent again: it fails as it was refused', async t => {
    const script = "redis.call('INCR', KEYS[1]); return redis.error_reply('refused')"
    const redis = cluster.client(t, clientOptions)
    await new Promise(resolve => redis.once('ready', resolve))
    await t.rejects(ackedEval(redis, 1, script, ['a:refused']), { message: 'refused' })
    t.equal(await on(await cluster.nodeOf('a:refused'), redis => redis.get('a:refused')), '1', 'run once')
  })
})

t.test('with redisReplicaAcks, a write redirected to a node the client names otherwise (natMap) or has not met (a master just added)', async t => {
  const cluster = await RedisCluster.start(t)
  for (const node of cluster.nodes) await cluster.addReplica(t, node)
  const added = await cluster.addMaster(t)
  // The cluster's addresses reach this client under other names, as behind a NAT (here `localhost`, the same loopback).
  const natMap = Object.fromEntries([...cluster.nodes, added].map(({ port }) => [`127.0.0.1:${port}`, { host: 'localhost', port }]))
  const cases: Array<[string, ClusterOptions, (source: RedisServer) => RedisServer]> = [
    ['natMap, to another master', { natMap }, source => cluster.nodes.find(node => node !== source)!],
    ['to a master just added, holding no slot yet', {}, () => added]
  ]
  for (const [i, [name, options, targetOf]] of cases.entries()) {
    await t.test(name, async t => {
      const redis = cluster.client(t, { ...clientOptions, ...options, slotsRefreshInterval: 600_000 })
      const a = await build(t, { users: [admin, editor], authRoutes: true, redis, redisPrefix: `n${i}:`, redisReplicaAcks: 1 })
      const { login, post, userOf } = editorFlows(t, a)
      const first = await login()
      const user = userOf(first.access_token)
      const setKey = `n${i}:{u:${user}}:session-expiries`
      const slot = await migration(cluster, setKey, targetOf)
      t.teardown(() => slot.end(false))
      await slot.move([setKey])

      // The user's keys on the target, the slot still the source's: Redis answers ASK, naming the target.
      const second = await login()
      await a.app.realtime.revokeUser(user)
      for (const tokens of [first, second]) t.equal(await post('refresh', tokens.refresh_token), 401, 'revokeUser ended every session of the user')
      t.equal(await post('logout', (await login()).refresh_token), 204, 'logout')
      await login()
      t.ok((await on(slot.target, redis => redis.cluster('GETKEYSINSLOT', slot.slot, 100)) as string[]).includes(setKey), 'the user\'s set on the target, listing the live session')
    })
  }
})
