// A cluster master with a replica that has stopped hearing it (a lagging or cut-off replica: Redis replicates
// asynchronously), then dies, and the replica takes over: what the master acknowledged meanwhile is gone. A logout
// answered 204 then must not come back (its refresh token working on a process that did not hear it), nor a refresh
// answered 200 leave the client with a token the promoted replica takes for reuse. With `redisReplicaAcks`, a write
// is answered once that many replicas have it (WAIT); one they do not confirm is answered 503, and the client's retry
// after the failover does what it asked.
import t, { type Test } from 'tap'
import { Cluster, Redis, type ClusterOptions } from 'ioredis'
import type { RealtimeOptions } from '../../lib/index.js'
import { admin, build, type Built } from '../helpers.js'
import { RedisCluster } from '../redis-cluster.js'
import type { RedisServer } from '../redis-server.js'

const clientOptions: ClusterOptions = {
  enableOfflineQueue: false, redisOptions: { commandTimeout: 2_000, maxRetriesPerRequest: 1 }, slotsRefreshInterval: 2_000
}

/** A master with one replica (every slot on it), and an app on it as the README shows. */
async function replicated (t: Test) {
  const cluster = await RedisCluster.start(t, { masters: 1 })
  const [master] = cluster.nodes as [RedisServer]
  const replica = await cluster.addReplica(t, master)
  /** An app on the cluster, its client told of both nodes (as an app lists several): one started late finds the replica. */
  const app = (options: RealtimeOptions = {}) => {
    const redis = new Cluster([master, replica].map(({ port }) => ({ host: '127.0.0.1', port })), clientOptions)
    t.teardown(() => redis.disconnect())
    return build(t, { users: [admin], authRoutes: true, redis, ...options })
  }
  /** Everything written so far is on the replica: a write of this connection's own, confirmed by it (WAIT). */
  const replicatedSoFar = () => cluster.on(master, async redis => {
    await redis.set('test:mark', '1')
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
    await cluster.on(master, redis => redis.set('test:ballast', Buffer.alloc(40 * 1024 * 1024)))
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
  return { app, replicatedSoFar, lagReplica, failOver }
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

async function login (built: Built): Promise<{ refresh_token: string }> {
  return (await built.app.inject({ method: 'POST', url: '/auth/login', payload: admin })).json().data
}

t.test('a logout and a refresh the master took while its replica lagged, then a failover: what they answered holds', async t => {
  const { app, replicatedSoFar, lagReplica, failOver } = await replicated(t)
  const a = await app({ redisReplicaAcks: 1 })
  const [loggedOut, refreshed] = [await login(a), await login(a)]
  await replicatedSoFar()

  await lagReplica()
  const logout = await post(a, 'logout', loggedOut.refresh_token)
  const refresh = await post(a, 'refresh', refreshed.refresh_token)
  t.same([logout.statusCode, refresh.statusCode], [503, 503], 'unconfirmed by the replica: answered 503, not done as far as the client knows')
  await failOver()

  // The client does what it asked again, once the replica has taken over.
  t.equal((await once503sEnd(a, 'logout', loggedOut.refresh_token)).statusCode, 204, 'the logout, again')
  const again = await once503sEnd(a, 'refresh', refreshed.refresh_token)
  t.equal(again.statusCode, 200, 'the refresh, again, with the token the client holds')
  // A process started after the failover knows what Redis holds, nothing more.
  const late = await app()
  t.equal((await once503sEnd(late, 'refresh', loggedOut.refresh_token)).statusCode, 401, 'the logged-out token is refused')
  t.equal((await once503sEnd(late, 'refresh', again.json().data.refresh_token)).statusCode, 200, 'the newest token refreshes')
})

t.test('without redisReplicaAcks, the same writes are answered at once, and lost with the master', async t => {
  const { app, replicatedSoFar, lagReplica, failOver } = await replicated(t)
  const a = await app()
  const [loggedOut, refreshed] = [await login(a), await login(a)]
  await replicatedSoFar()

  await lagReplica()
  t.equal((await post(a, 'logout', loggedOut.refresh_token)).statusCode, 204, 'the logout')
  const refresh = await post(a, 'refresh', refreshed.refresh_token)
  t.equal(refresh.statusCode, 200, 'the refresh')
  await failOver()

  const late = await app()
  t.equal((await once503sEnd(late, 'refresh', loggedOut.refresh_token)).statusCode, 200, 'the logged-out token works again on a process started after')
  t.equal((await once503sEnd(late, 'refresh', refresh.json().data.refresh_token)).statusCode, 401, 'the newest token counts as reuse')
})
