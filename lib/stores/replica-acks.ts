// Writes that must outlive a failover. Redis replicates asynchronously: a write its master acknowledged and then died
// before sending on is gone once a replica is promoted (a logout's session back, its refresh token working again).
// With `redisReplicaAcks` (n), such a write is followed, on the same connection (so the same node), by `WAIT` for n of
// the master's replicas online (ROLE, sent with the write): it counts once they have it, and one they do not confirm
// in time fails, as a Redis away does (503, the client tries again). A master with fewer replicas online waits for
// those it has, and one with none (its replica promoted, the old master not back yet) for none: no replica of its can
// be promoted without what it was sent (a replica cut off from it still can: README, Replicas and failover).
import type { ChainableCommander } from 'ioredis'
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
 * Runs `write`'s commands, all on `key`'s node (a pipeline goes to one), then, with `replicas` asked for, WAITs for as
 * many of that master's replicas online. Resolves with each command's reply.
 */
export async function acked (redis: RedisClient, replicas: number, key: string, write: (pipeline: ChainableCommander) => ChainableCommander): Promise<unknown[]> {
  if (replicas === 0) return run(write(redis.pipeline()))
  const results = await run(write(redis.pipeline()).role())
  // A master's (the write went through): its replicas online, each with the offset it has confirmed.
  const [, , online] = results.pop() as [string, number, unknown[]]
  const wanted = Math.min(replicas, online.length)
  if (wanted === 0) return results
  // On the write's connection: WAIT counts what that connection wrote. A read of the key takes it there on a cluster.
  const [, confirmed] = await run(redis.pipeline().exists(key).wait(wanted, replicaWaitMs)) as [number, number]
  if (confirmed < wanted) throw new ReplicasShortError(confirmed, wanted)
  return results
}

/** A script that writes `keys` (of one slot), as `redis.eval`, confirmed by `replicas`. */
export async function ackedEval (redis: RedisClient, replicas: number, script: string, keys: string[], ...args: Array<string | number>): Promise<unknown> {
  if (replicas === 0) return redis.eval(script, keys.length, ...keys, ...args)
  const [reply] = await acked(redis, replicas, keys[0]!, pipeline => pipeline.eval(script, keys.length, ...keys, ...args))
  return reply
}
