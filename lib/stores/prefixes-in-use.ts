// The Redis prefixes the plugin's instances in this process use, and the prefixes of the stores adapted by
// fromFastifySessionStore. Whatever is under a prefix is one app's (README, "One app per prefix"): two instances of one
// process on one Redis and prefix (two tenants, say) share their sessions, revocations and log lines, two on one
// adapted store and prefix their sessions; boot warns of it, once.
import type { Cluster, Redis } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import type { RedisClient } from './redis-connection.js'

interface InUse {
  instances: number
  warned: boolean
}

// Keyed by where the keys go: the Redis (or the Cluster client) and the whole prefix, the client's `keyPrefix` first.
const inUse = new Map<string, InUse>()
// An adapted store's own object stands for where its keys go: its client's options are its own business.
const storesInUse = new WeakMap<object, Map<string, InUse>>()
// A Cluster's nodes are not in its options for good: its client stands for it.
const clusters = new WeakMap<Cluster, number>()
let clustersSeen = 0

/** Where the keys of `prefix` on `redis` go, as far as the client's options say. */
function placeOf (redis: RedisClient, prefix: string): string {
  if (redis.isCluster) {
    const cluster = redis as Cluster
    if (!clusters.has(cluster)) clusters.set(cluster, ++clustersSeen)
    return `cluster ${clusters.get(cluster)!} ${cluster.options.redisOptions?.keyPrefix ?? ''}${prefix}`
  }
  // ioredis fills in `db` and `keyPrefix` (0 and '') and leaves `path` and `sentinels` out unless given.
  const { host, port, path, db, sentinels, name, keyPrefix } = (redis as Redis).options
  const server = sentinels ? `sentinel ${name} ${sentinels.map(s => `${s.host}:${s.port}`).join(',')}` : path ?? `${host}:${port}`
  return `${server}/${db} ${keyPrefix}${prefix}`
}

/**
 * Records that an instance uses `prefix` on `redis`, and warns on `log` the first time another instance of this
 * process uses it too. Returns what removes the record, once the instance closes.
 */
export function usePrefix (redis: RedisClient, prefix: string, log: FastifyBaseLogger): () => void {
  return use(inUse, placeOf(redis, prefix), () => {
    log.warn(`another fastify-realtime in this process uses redisPrefix "${prefix}" on the same Redis: the two share their sessions, revocations and log lines (a refresh token of one refreshes on the other). Unless they are one app, give each its own redisPrefix`)
  })
}

/** The same for a store adapted by fromFastifySessionStore: one store object, one `prefix`. */
export function useStorePrefix (store: object, prefix: string, log: FastifyBaseLogger): () => void {
  const prefixes = storesInUse.get(store) ?? new Map<string, InUse>()
  storesInUse.set(store, prefixes)
  return use(prefixes, prefix, () => {
    log.warn(`another fastify-realtime in this process uses the same store with prefix "${prefix}" (fromFastifySessionStore): the two share their sessions (a refresh token of one refreshes on the other). Unless they are one app, give each its own prefix`)
  })
}

function use (places: Map<string, InUse>, place: string, warn: () => void): () => void {
  const use = places.get(place) ?? { instances: 0, warned: false }
  places.set(place, use)
  if (++use.instances > 1 && !use.warned) {
    use.warned = true
    warn()
  }
  return () => {
    if (--use.instances === 0) places.delete(place)
  }
}
