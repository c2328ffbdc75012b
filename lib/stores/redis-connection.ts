// The plugin's Redis connections: one for commands, one for subscriptions (a subscribed connection can do nothing
// else). Commands fail at once while Redis is away (no offline queue), so callers fail closed instead of hanging;
// ioredis keeps reconnecting, and everything works again once Redis is back.
import { Redis } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'

export interface RedisConnections {
  commands: Redis
  subscriber: Redis
  /**
   * Calls `onMessage` for every message on `channel`, across reconnects, and `onSubscribed` each time the
   * subscription is (re)established: what was published while it was not is not delivered.
   */
  listen (channel: string, onMessage: (message: string) => void, onSubscribed?: () => void): void
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

/** Resolves once `ready` has, or after `ms`: start-up waits for shared state to load, but never hangs on it. */
export function within (ready: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout
  const timeout = new Promise<void>(resolve => { timer = setTimeout(resolve, ms) })
  return Promise.race([ready, timeout]).finally(() => clearTimeout(timer))
}

/** `redis` is a URL (the plugin owns the connections) or the app's ioredis client (the plugin owns only its duplicate). */
export function connectRedis (redis: string | Redis, log: FastifyBaseLogger): RedisConnections {
  const owned = typeof redis === 'string'
  const commands = owned ? new Redis(redis, commandOptions) : redis
  // A subscription waits for its connection however long Redis is away: no offline-queue limit, no timeout.
  const subscriber = commands.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined })
  if (owned) watch(commands, 'commands', log)
  watch(subscriber, 'subscriber', log)
  const listeners = new Map<string, { onMessage: (message: string) => void, onSubscribed?: () => void }>()
  subscriber.on('message', (channel: string, message: string) => listeners.get(channel)?.onMessage(message))
  const subscribe = (channel: string) => {
    subscriber.subscribe(channel).then(() => listeners.get(channel)?.onSubscribed?.(), () => {})
  }
  // Subscribing again on every (re)connection: a SUBSCRIBE that failed is never lost, and a repeated one is harmless.
  subscriber.on('ready', () => { for (const channel of listeners.keys()) subscribe(channel) })
  return {
    commands,
    subscriber,
    listen (channel, onMessage, onSubscribed) {
      listeners.set(channel, { onMessage, onSubscribed })
      // Not yet connected: the first 'ready' subscribes. A failure is retried at the next 'ready'; outages are logged.
      if (subscriber.status === 'ready') subscribe(channel)
    },
    async close () {
      subscriber.disconnect()
      if (owned) commands.disconnect()
    }
  }
}
