// The plugin's Redis connections: one for commands, one for subscriptions (a subscribed connection can do nothing
// else). Commands fail at once while Redis is away (no offline queue), so callers fail closed instead of hanging;
// ioredis keeps reconnecting, and everything works again once Redis is back.
import { Redis } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'

export interface RedisConnections {
  commands: Redis
  subscriber: Redis
  close (): Promise<void>
}

const commandOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  connectTimeout: 2_000,
  commandTimeout: 2_000,
  retryStrategy: (attempt: number) => Math.min(attempt * 100, 1_000)
}

/** Logs the first error of each outage and the recovery, not every failed reconnect. */
export function watch (redis: NodeJS.EventEmitter, role: string, log: FastifyBaseLogger): void {
  let healthy = true
  redis.on('error', (err: Error) => {
    if (!healthy) return
    healthy = false
    log.error({ err: { message: err.message } }, `Redis (${role}) unavailable; retrying`)
  })
  redis.on('ready', () => {
    if (healthy) return
    healthy = true
    log.info(`Redis (${role}) connected again`)
  })
}

/**
 * Resolves once a connection still opening is up, or has failed once. Start-up waits for it: commands fail at once
 * until the connection is ready, so the first logins would otherwise meet SERVICE_UNAVAILABLE; an unreachable Redis
 * still lets the server start (and ioredis keeps retrying).
 */
export function opened (redis: Redis): Promise<void> {
  if (redis.status !== 'connecting' && redis.status !== 'connect') return Promise.resolve()
  return new Promise(resolve => {
    const done = () => {
      redis.off('ready', done)
      redis.off('error', done)
      resolve()
    }
    redis.on('ready', done)
    redis.on('error', done)
  })
}

/** `redis` is a URL (the plugin owns the connections) or the app's ioredis client (the plugin owns only its duplicate). */
export function connectRedis (redis: string | Redis, log: FastifyBaseLogger): RedisConnections {
  const owned = typeof redis === 'string'
  const commands = owned ? new Redis(redis, commandOptions) : redis
  // Subscriptions are queued while disconnected: ioredis replays them on every reconnect.
  const subscriber = commands.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null })
  if (owned) watch(commands, 'commands', log)
  watch(subscriber, 'subscriber', log)
  return {
    commands,
    subscriber,
    async close () {
      subscriber.disconnect()
      if (owned) commands.disconnect()
    }
  }
}
