// A cluster master whose replica lags (Redis replicates asynchronously), then dies, and the replica takes over: what the
// master acknowledged meanwhile is gone. A logout or revokeUser answered done must not come back (a refresh token it
// ended working on a process that did not hear it): with `redisReplicaAcks`, each is answered once that many replicas
// have its writes (WAIT), and one they do not confirm fails (503), for the client to retry once the failover is over.
// A rotation lost leaves the client a token the promoted replica takes for reuse, with the option or without.
import t, { type Test } from 'tap'
import { Cluster, Redis, type ClusterOptions } from 'ioredis'
import type { RealtimeOptions } from '../../lib/index.js'
import { admin, build, editor, type Built } from '../helpers.js'
import { RedisCluster } from '../redis-cluster.js'
import { RedisServer } from '../redis-server.js'
import { readRefreshToken } from '../../lib/auth/refresh-tokens.js'
import { redisKeys } from '../../lib/stores/redis-keys.js'

const clientOptions: ClusterOptions = {
  enableOfflineQueue: false, redisOptions: { commandTimeout: 2_000, maxRetriesPerRequest: 1 }, slotsRefreshInterval: 2_000
}

/**
 * A cluster whose master `replicated` picks (by default its one master, every slot on it) has a replica, and an app on
 * it as the README shows.
 */
async function replicated (t: Test, masters: 1 | 3 = 1, pick = async (cluster: RedisCluster) => cluster.nodes[0]!) {
  const cluster = await RedisCluster.start(t, { masters })
  const master = await pick(cluster)
  const replica = await cluster.addReplica(t, master)
  // A key of the master's own slots, for what the test writes there itself.
  let own = ''
  for (let i = 0; own === ''; i++) if (await cluster.nodeOf(`test:{${i}}`) === master) own = `test:{${i}}`
  /** An app on the cluster, its client told of both nodes (as an app lists several): one started late finds the replica. */
  const app = (options: RealtimeOptions = {}) => {
    const redis = new Cluster([...cluster.nodes, replica].map(({ port }) => ({ host: '127.0.0.1', port })), clientOptions)
    t.teardown(() => redis.disconnect())
    return build(t, { users: [admin, editor], authRoutes: true, redis, ...options })
  }
  /** Everything written so far is on the replica: a write of this connection's own, confirmed by it (WAIT). */
  const replicatedSoFar = () => cluster.on(master, async redis => {
    await redis.set(own, '1')
    t.equal(await redis.wait(1, 5_000), 1, 'the replica has it all')
  })
  /**
   * The replica lags: stopped, and sent more than the kernel holds for it (a 40 MB value), so what the master takes
   * next waits in the master's own memory, its replica still online. (Cut off, a replica is no longer online: a master
   * waits for none, and what it takes is lost all the same if the replica is promoted. README: Replicas and failover.)
   */
  const lagReplica = async () => {
    replica.pause()
    t.teardown(() => { if (replica.running) replica.resume() })
    await cluster.on(master, redis => redis.set(own, Buffer.alloc(40 * 1024 * 1024)))
  }
  /** The master dies and the replica takes its slots over, with what it has. */
  const failOver = async () => {
    await master.stop()
    replica.resume()
    const promoted = new Redis(replica.port, '127.0.0.1')
    t.teardown(() => promoted.disconnect())
    await promoted.cluster('FAILOVER', 'TAKEOVER')
    while ((await promoted.role())[0] !== 'master') await new Promise(resolve => setTimeout(resolve, 20))
  }
  return { cluster, app, replicatedSoFar, lagReplica, failOver }
}

function post (built: Built, route: string, refreshToken: string) {
  return built.app.inject({ method: 'POST', url: `/auth/${route}`, payload: { refresh_token: refreshToken } })
}

/** `route` tried again while the cluster fails over (503). */
async function once503sEnd (built: Built, route: string, refreshToken: string) {
  let answer = await post(built, route, refreshToken)
  while (answer.statusCode === 503) {
    await new Promise(resolve => setTimeout(resolve, 100))
    answer = await post(built, route, refreshToken)
  }
  return answer
}

async function loginAs (built: Built, who: { email: string, password: string } = admin): Promise<{ access_token: string, refresh_token: string }> {
  return (await built.app.inject({ method: 'POST', url: '/auth/login', payload: who })).json().data
}

/** A user's id, as the tokens of `tokens` name it. */
function userOf (built: Built, tokens: { access_token: string }): string {
  return built.app.realtime.jwt.decode<{ id: string }>(tokens.access_token)!.id
}

t.test('a logout and a revokeUser the master took while its replica lagged, then a failover: none is answered done until the replica has it', async t => {
  const { app, replicatedSoFar, lagReplica, failOver } = await replicated(t)
  const a = await app({ redisReplicaAcks: 1 })
  const [loggedOut, revoked] = [await loginAs(a), await loginAs(a, editor)]
  await replicatedSoFar()

  await lagReplica()
  t.equal((await post(a, 'logout', loggedOut.refresh_token)).statusCode, 503, 'the logout, unconfirmed by the replica: 503, for the client to retry')
  await t.rejects(a.app.realtime.revokeUser(userOf(a, revoked)), 'so does revokeUser')
  await failOver()

  // What they asked, again, once the replica has taken over.
  t.equal((await once503sEnd(a, 'logout', loggedOut.refresh_token)).statusCode, 204, 'the logout, again')
  for (;;) {
    try {
      await a.app.realtime.revokeUser(userOf(a, revoked))
      break
    } catch {
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }
  // A process started after the failover knows what Redis holds, nothing more.
  const late = await app()
  t.equal((await once503sEnd(late, 'refresh', loggedOut.refresh_token)).statusCode, 401, 'the logged-out token is refused')
  t.equal((await once503sEnd(late, 'refresh', revoked.refresh_token)).statusCode, 401, 'so is the revoked user\'s')
})

t.test('without redisReplicaAcks, the same writes are answered at once, and lost with the master; a rotation is, either way', async t => {
  const { app, replicatedSoFar, lagReplica, failOver } = await replicated(t)
  const a = await app()
  const [loggedOut, revoked, refreshed] = [await loginAs(a), await loginAs(a, editor), await loginAs(a)]
  await replicatedSoFar()

  await lagReplica()
  t.equal((await post(a, 'logout', loggedOut.refresh_token)).statusCode, 204, 'the logout')
  await a.app.realtime.revokeUser(userOf(a, revoked))
  const refresh = await post(a, 'refresh', refreshed.refresh_token)
  t.equal(refresh.statusCode, 200, 'the refresh')
  await failOver()

  const late = await app()
  t.equal((await once503sEnd(late, 'refresh', loggedOut.refresh_token)).statusCode, 200, 'the logged-out token works again on a process started after')
  t.equal((await once503sEnd(late, 'refresh', revoked.refresh_token)).statusCode, 200, 'so does the revoked user\'s')
  t.equal((await once503sEnd(late, 'refresh', refresh.json().data.refresh_token)).statusCode, 401, 'the newest token counts as reuse: the user logs in again')
})

t.test('a login whose session\'s listing on its user\'s set (another master) was lost: revokeUser would miss the session; with redisReplicaAcks, such a login answers 503', async t => {
  // The admin's id, as every process derives it from the email.
  const user = userOf(await build(t, { users: [admin], authRoutes: true }), await loginAs(await build(t, { users: [admin], authRoutes: true })))
  const keys = redisKeys('realtime:')
  const { cluster, app, replicatedSoFar, lagReplica, failOver } = await replicated(t, 3, cluster => cluster.nodeOf(keys.userSessions(user)))
  const a = await app({ redisReplicaAcks: 1 })
  await loginAs(a)
  await replicatedSoFar()
  const userNode = await cluster.nodeOf(keys.userSessions(user))

  await lagReplica()
  // Logins until one's session lives on another master than its user's set (each, two times in three).
  const logins = []
  for (let i = 0; i < 3; i++) logins.push(await a.app.inject({ method: 'POST', url: '/auth/login', payload: admin }))
  t.same(logins.map(login => login.statusCode), [503, 503, 503], 'each unconfirmed: no token handed out')
  const elsewhere: string[] = []
  for (const login of logins) {
    if (login.statusCode !== 200) continue
    const session = keys.session(readRefreshToken(login.json().data.refresh_token)!.sessionId)
    if (await cluster.nodeOf(session) !== userNode) elsewhere.push(session)
  }
  await failOver()

  // What a login answered 200 would have left, had it been: a session revokeUser cannot find.
  for (;;) {
    try {
      await a.app.realtime.revokeUser(user)
      break
    } catch {
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }
  const left = (await cluster.keys('realtime:{s:*}:session')).filter(key => elsewhere.includes(key))
  t.same(left, [], 'no session handed out is left in Redis after revokeUser')
})

t.test('on one Redis with a replica (as Sentinel runs them): a logout waits for the replica, and answers 503 while it lags', async t => {
  const master = await RedisServer.start(t)
  const replica = await RedisServer.replicaOf(t, master)
  const onMaster = new Redis(master.port, '127.0.0.1')
  t.teardown(() => onMaster.disconnect())
  const a = await build(t, { users: [admin], authRoutes: true, redis: master.url, redisReplicaAcks: 1 })
  const [kept, unconfirmed] = [await loginAs(a), await loginAs(a)]
  t.equal((await post(a, 'logout', kept.refresh_token)).statusCode, 204, 'confirmed by the replica')
  replica.pause()
  t.teardown(() => { if (replica.running) replica.resume() })
  await onMaster.set('test:ballast', Buffer.alloc(40 * 1024 * 1024))
  t.equal((await post(a, 'logout', unconfirmed.refresh_token)).statusCode, 503, 'not confirmed: 503')
})
