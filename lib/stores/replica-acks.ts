// Writes that must outlive a failover. Redis replicates asynchronously: a write its master acknowledged and then died
// before sending on is gone once a replica is promoted (a logout's session back, its refresh token working again).
// With `redisReplicaAcks` (n), such a write is followed, on the same connection (so the same node), by `WAIT` for n of
// the master's replicas online (ROLE, sent with the write): it counts once they have it, and one they do not confirm
// in time fails, as a Redis away does (503, the client tries again). A master with fewer replicas online waits for
// those it has, and one with none (its replica promoted, the old master not back yet) for none: no replica of its can
// be promoted without what it was sent (a replica cut off from it still can: README, Replicas and failover).
import type { ChainableCommander, Cluster, Redis } from 'ioredis'
import type { RedisClient } from './redis-connection.js'

/**
 * How long the replicas have to confirm a write: well within the store call's 3 s (a rotation waits twice), and short,
 * since a WAIT holds every command behind it on that connection (the app's own too, on its client) while it waits.
 */
export const replicaWaitMs = 500

export class ReplicasShortError extends Error {
  constructor (acked: number, wanted: number) {
    super(`${acked} of the ${wanted} replicas asked for (redisReplicaAcks) confirmed the write within ${replicaWaitMs} ms`)
    this.name = 'ReplicasShortError'
  }
}

/** Each command's reply; rejects with the first error, a transaction's (among EXEC's replies) included. */
async function run (pipeline: ChainableCommander): Promise<unknown[]> {
  const replies = (await pipeline.exec())!
  const failed = replies.flatMap(([err, result]) => [err, ...Array.isArray(result) ? result : []]).find(reply => reply instanceof Error)
  if (failed) throw failed
  return replies.map(([, result]) => result)
}

/**
 * A script that writes `keys` (of one slot), as `redis.eval`, then, with `replicas` asked for, WAITs for as many of
 * that master's replicas online, on the connection that wrote it. Resolves with the script's reply.
 */
export async function ackedEval (redis: RedisClient, replicas: number, script: string, keys: string[], ...args: Array<string | number>): Promise<unknown> {
  if (replicas === 0) return redis.eval(script, keys.length, ...keys, ...args)
  const write = (pipeline: ChainableCommander, keyPrefix = '') => pipeline.eval(script, keys.length, ...keys.map(key => keyPrefix + key), ...args).role()
  let results: unknown[]
  let wait: (wanted: number) => Promise<number>
  try {
    results = await run(write(redis.pipeline()))
    // On the write's connection: WAIT counts what that connection wrote. A read of the key takes it there on a cluster.
    wait = async wanted => (await run(redis.pipeline().exists(keys[0]!).wait(wanted, replicaWaitMs)))[1] as number
  } catch (err) {
    const to = redirectedTo(redis, err)
    if (to === null) throw err
    // The client's slot map is stale: a pipeline's MOVED never tells it (its own commands' do), so every later write
    // to the slot would be redirected too, until its periodic read of the map (`slotsRefreshInterval`).
    if (!to.ask) (redis as Cluster).refreshSlotsCache()
    // The script did not run: sent again to the node named, with ASKING for ASK (whose reply comes first).
    const pipeline = to.node.pipeline()
    if (to.ask) pipeline.asking()
    results = (await run(write(pipeline, to.keyPrefix))).slice(to.ask ? 1 : 0)
    wait = wanted => to.node.wait(wanted, replicaWaitMs)
  }
  // A master's (the write went through): its replicas online, each with the offset it has confirmed.
  const [, , online] = results.pop() as [string, number, unknown[]]
  const wanted = Math.min(replicas, online.length)
  if (wanted > 0) {
    const confirmed = await wait(wanted)
    if (confirmed < wanted) throw new ReplicasShortError(confirmed, wanted)
  }
  return results[0]
}

/** The parts of ioredis's Cluster (5 and 6) that follow its own redirections: the address as the client reaches it, and its connection. */
interface ClusterRedirections {
  natMapper (nodeKey: string): { host: string, port: number }
  connectionPool: { findOrCreate (node: { host: string, port: number }): Redis }
}

/**
 * The node of a cluster's client that a redirection names: ASK (the key's slot migrating, the key gone to that node)
 * or MOVED (the slot moved, the client's map not yet aware). A client sends a pipeline again on either only when its
 * other commands only read, which ROLE does not: the write answered 503 for as long as the migration lasted.
 */
function redirectedTo (redis: RedisClient, err: unknown): { node: Redis, ask: boolean, keyPrefix: string } | null {
  const redirection = /^(ASK|MOVED) \d+ (.+:\d+)$/.exec((err as Error).message)
  if (redirection === null || !redis.isCluster) return null
  // Found as ioredis finds it for its own commands: through the app's natMap (the address Redis names may be one the
  // client reaches otherwise), and connected to if the client has not met it yet (a master just added, holding no slot
  // until the reshard moves one to it).
  const cluster = redis as unknown as ClusterRedirections
  const node = cluster.connectionPool.findOrCreate(cluster.natMapper(redirection[2]!))
  // The cluster's own keyPrefix, less what its nodes' connections put themselves (it, given in `redisOptions`; else
  // ioredis's default, ''). Another one in `redisOptions` than the cluster's would write other keys: refused instead.
  const [own, nodes] = [(redis as Cluster).options.keyPrefix ?? '', node.options.keyPrefix as string]
  if (!own.startsWith(nodes)) return null
  return { node, ask: redirection[1] === 'ASK', keyPrefix: own.slice(nodes.length) }
}
