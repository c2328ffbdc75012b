// The plugin's Redis connections: one for commands, one for subscriptions (a subscribed connection can do nothing
// else). Commands fail at once while Redis is away (no offline queue), so callers fail closed instead of hanging;
// ioredis keeps reconnecting, and everything works again once Redis is back.
import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { Redis, type Cluster } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import { Outages } from './outages.js'
import { channelScope, redisKeys } from './redis-keys.js'
import { probeSubscription } from './subscription-probe.js'

/** One Redis (a plain ioredis client, Sentinel-managed or not) or a Redis Cluster. */
export type RedisClient = Redis | Cluster

export interface RedisConnections {
  commands: RedisClient
  /**
   * Calls `onMessage` for every message on `channel`, across reconnects, and `onSubscribed` each time the
   * subscription is (re)established: what was published while it was not is not delivered. `since` (epoch
   * milliseconds): what was published from then on may have been missed (the subscriber may have been deaf before it
   * was found out); what before, was heard.
   */
  listen (channel: string, onMessage: (message: string) => void, onSubscribed?: (since: number) => void): void
  /** Calls `listener` every time the command connection is (re)established, until `close`. */
  onCommandsReady (listener: () => void): void
  close (): Promise<void>
}

/**
 * How long after ioredis ended the subscriber it is connected again. ioredis ends a client for good, its retryStrategy
 * unasked, when its Sentinel failover detector hears `+switch-master` while it asks a Sentinel where the master is (its
 * connect rejected: "Connection is closed."); an app's retryStrategy may give up too. Ended, the subscriber would never
 * listen again: every revocation published after it, missed.
 */
const endedRetryMs = 1_000

/** What `listen` needs of its connection: a plain ioredis client has it, a cluster's is a `NodeSubscriber`. */
interface Subscriber extends NodeJS.EventEmitter {
  readonly status: string
  subscribe (channel: string): Promise<unknown>
  disconnect (): void
}

const commandOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  connectTimeout: 2_000,
  commandTimeout: 2_000,
  retryStrategy: (attempt: number) => Math.min(attempt * 100, 1_000)
}

// A subscription waits for its connection however long Redis is away: no offline-queue limit, no timeout. It connects
// at once, even duplicated from an app's client made with `lazyConnect` (nothing else would ever connect it).
const subscriberOptions = { enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined, lazyConnect: false }

/** How often a connection is asked whether it is still there, and how long it has to answer. */
const healthCheckMs = 5_000
const answerWithinMs = 2_000

/** What the health check needs of a connection: ioredis's own. */
export interface Checked {
  readonly status: string
  ping (): Promise<unknown>
  readonly stream: { readonly bytesRead: number, destroy (): void }
}

/**
 * A connection dropped without a word (a NAT or a load balancer forgetting an idle one) looks open for as long as TCP
 * keeps trying, hours for one that only listens: whatever is published meanwhile never arrives. A PING is sent, and a
 * connection that has read nothing at all in the time it has to answer is cut (its socket destroyed, so ioredis, not
 * told to stop, connects again). Bytes read are the sign of life, not the PING's promise: after an event-loop stall
 * ioredis's own command timeout may reject it before the answer that came is read. A connection still in its ready
 * check (`connect`: TCP up, ioredis's INFO unanswered, as from a hung Redis whose kernel still accepts) has to answer
 * that, which ioredis never times out. `current` is the connection to check now (a cluster's subscriber moves between
 * nodes). Returns what stops the checks.
 */
export function checkHealth (current: () => Checked | null): () => void {
  const timer = setInterval(() => {
    const connection = current()
    // One away is ioredis's to bring back; one that seems up, or half up, has to answer.
    if (connection === null || (connection.status !== 'ready' && connection.status !== 'connect')) return
    const { stream, status } = connection
    const read = stream.bytesRead
    if (status === 'ready') connection.ping().catch(() => {})
    // Timers run before the poll for I/O: one turn after the wait, what came during a stall has been read. A connection
    // that went away, moved on or was made anew meanwhile is ioredis's.
    setTimeout(() => setImmediate(() => {
      if (connection.status === status && connection.stream === stream && stream.bytesRead === read) stream.destroy()
    }), answerWithinMs).unref()
  }, healthCheckMs)
  timer.unref()
  return () => clearInterval(timer)
}

/**
 * The database a connection was refused (a URL's past the server's count), as the server said: ioredis logs it as an
 * error and goes on, on database 0.
 */
export function refusedDatabase (err: Error & { command?: { name: string, args: unknown[] } }): string | null {
  return err.command?.name === 'select' ? `database ${String(err.command.args[0])}, which the Redis server refuses (${err.message})` : null
}

/** Logs each outage as `Outages` does (a warning, an error past a failover's length, its end), not every failed reconnect. */
export function watch (redis: NodeJS.EventEmitter, role: string, log: FastifyBaseLogger): void {
  const outages = new Outages()
  redis.on('error', (err: Error) => {
    // No outage: the connection is up, on database 0. Boot fails on it; a Redis that was away at boot is told here.
    const refused = refusedDatabase(err)
    if (refused) return log.error(`the redis option names ${refused}: Redis (${role}) runs on database 0`)
    outages.failed(log, { message: err.message }, `Redis (${role}) unavailable; retrying`)
  })
  // A cluster's subscriber losing its node (`NodeSubscriber`): a node killed closes the socket without an error.
  redis.on('lost', (node: string) => {
    outages.failed(log, { message: `the connection to ${node} ended` }, `Redis (${role}) lost ${node}; listening on another node`)
  })
  redis.on('ready', (node?: string) => {
    if (outages.ended()) log.info(`Redis (${role}) connected again${node ? `, to ${node}` : ''}`)
  })
}

/**
 * Resolves once a connection still opening is up, or has failed once. Start-up waits for it: commands fail at once
 * until the connection is ready, so the first logins would otherwise meet SERVICE_UNAVAILABLE; an unreachable Redis
 * still lets the server start (and ioredis keeps retrying).
 */
export function opened (redis: RedisClient): Promise<void> {
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

/**
 * Warns when Redis may evict the plugin's keys: all of them expire, so any eviction policy but `noeviction` may drop
 * the revocations in force (a logged-out token accepted by a process started later), a user's set of sessions
 * (revokeUser missing some), attempt counters and used one-time codes (the shortest-lived go first under
 * `volatile-ttl`). Says nothing when INFO is refused or Redis is away.
 */
export async function warnIfEvicting (redis: RedisClient, log: FastifyBaseLogger): Promise<void> {
  let info: string
  try {
    info = await redis.info('memory')
  } catch {
    return
  }
  // No limit (maxmemory 0), nothing is ever evicted, whatever the policy.
  const evicting = /^maxmemory:[1-9]/m.test(info) && /^maxmemory_policy:(?!noeviction\s)(\S+)/m.exec(info)
  if (evicting) {
    log.warn(`Redis may evict keys (maxmemory-policy ${evicting[1]}): revocations, sessions, attempt counters and used one-time codes could go. Use noeviction, or a Redis of their own`)
  }
}

/** Resolves once `ready` has, or after `ms`: start-up waits for shared state to load, but never hangs on it. */
export function within (ready: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout
  const timeout = new Promise<void>(resolve => { timer = setTimeout(resolve, ms) })
  return Promise.race([ready, timeout]).finally(() => clearTimeout(timer))
}

/**
 * A cluster's subscriber: one connection to any of its nodes, since a PUBLISH reaches every node. It moves to another
 * node whenever its own is lost (a failed-over master may never answer again: a hung one's kernel still accepts
 * connections, which never get ready) or drops out of the cluster's nodes, and emits `ready` on every connection,
 * wherever: ioredis's own cluster subscriber moves silently, so what was published meanwhile (a revocation) would never
 * be read again. Each connection's end emits `lost`, and each `ready` names its node (`host:port`), for `watch`.
 */
class NodeSubscriber extends EventEmitter implements Subscriber {
  readonly #cluster: Cluster
  #connection: Redis | null = null
  /** The cluster's own connection to the node listened on, which names it. */
  #node: Redis | null = null
  #closed = false
  /** Connections lost in a row: the next node is tried a little later each time, so a cluster away costs no spin. */
  #losses = 0
  /** Where the next connection goes: processes start at random nodes, and spread. */
  #turn = Math.floor(Math.random() * 1_000)
  /** Where the next probe goes, among the other masters. */
  #probes = 0
  /** The wait before the next node is tried, cleared as the subscriber closes. */
  #moving: NodeJS.Timeout | undefined

  readonly #connect = () => {
    const nodes = this.#cluster.nodes()
    if (nodes.length === 0) {
      // The cluster's nodes are known once it is connected. One made with `lazyConnect` is connected here: nothing else
      // would connect it before its first command, and a process that never listens is cold and deaf.
      this.#cluster.once('ready', this.#connect)
      if (this.#cluster.status === 'wait') this.#cluster.connect().catch(() => {})
      return
    }
    // The nodes in turn, from a random one: the next connection goes to the node after the one just lost.
    this.#node = nodes[this.#turn++ % nodes.length]!
    const { host, port } = this.#node.options
    const connection = new Redis({
      ...this.#cluster.options.redisOptions,
      host,
      port,
      ...subscriberOptions,
      // No second try at this node: lost, it ends, and another is tried.
      retryStrategy: () => null
    })
    const node = `${host}:${port}`
    connection.on('error', (err: Error) => this.emit('error', err))
    connection.on('ready', () => {
      this.#losses = 0
      this.emit('ready', node)
    })
    connection.on('message', (channel: string, message: string) => this.emit('message', channel, message))
    connection.once('end', () => {
      // Closed: its connection ended with it.
      if (this.#closed) return
      this.emit('lost', node)
      this.#moving = setTimeout(this.#connect, Math.min(++this.#losses * 100, 1_000)).unref()
    })
    this.#connection = connection
  }

  /**
   * A node the cluster client no longer lists (removed from the cluster, emptied of its slots, failed over) may hear
   * nothing more, and answer all the same: its connection is left for another node's. (The client's own connection to
   * a node lost unlists it too, until the client next reads the slots: a move for nothing, once.)
   */
  readonly #dropped = (node: Redis) => {
    if (node === this.#node) this.#connection!.disconnect()
  }

  constructor (cluster: Cluster) {
    super()
    this.#cluster = cluster
    cluster.on('-node', this.#dropped)
    this.#connect()
  }

  get status (): string {
    return this.#connection?.status ?? 'wait'
  }

  /** Called once `ready`: there is a connection. */
  subscribe (channel: string): Promise<unknown> {
    return this.#connection!.subscribe(channel)
  }

  disconnect (): void {
    this.#closed = true
    clearTimeout(this.#moving)
    this.#cluster.off('ready', this.#connect)
    this.#cluster.off('-node', this.#dropped)
    this.#connection?.disconnect()
  }

  /**
   * Where a probe of the subscription is published: a master other than the node listened on, each in turn, so that a
   * node no longer hearing the others' relays is found whichever it is; the cluster's own choice when there is none
   * (its one master listened on).
   */
  publisher (): RedisClient {
    const others = this.#cluster.nodes('master').filter(node => node !== this.#node)
    return others.length === 0 ? this.#cluster : others[this.#probes++ % others.length]!
  }

  /** The connection to this node, for the health check: cut, it is made again (to another node if need be). */
  get connection (): Redis | null {
    return this.#connection
  }
}

/**
 * `redis` is a URL (the plugin owns the connections) or the app's ioredis client or Cluster (the plugin owns only
 * its subscriber). `prefix` (the `redisPrefix` option) names the channel of the subscription's probe.
 */
export function connectRedis (redis: string | RedisClient, prefix: string, log: FastifyBaseLogger): RedisConnections {
  const owned = typeof redis === 'string'
  const commands = owned ? new Redis(redis, commandOptions) : redis
  const subscriber: Subscriber = commands.isCluster ? new NodeSubscriber(commands as Cluster) : (commands as Redis).duplicate(subscriberOptions)
  if (owned) watch(commands, 'commands', log)
  watch(subscriber, 'subscriber', log)
  // A cluster's subscriber moves to another node by itself; a plain client's is connected again (a failed try ends it
  // again, and is tried again), until the plugin closes it.
  let closed = false
  let reconnect: NodeJS.Timeout | undefined
  if (!(subscriber instanceof NodeSubscriber)) {
    subscriber.on('end', () => {
      if (closed) return
      log.warn(`Redis (subscriber) ended by its client; connecting again in ${endedRetryMs / 1_000} s`)
      // The callback takes a failure too (it ends the subscriber again, to be tried again): no rejection goes unhandled.
      reconnect = setTimeout(() => { (subscriber as Redis).connect(() => {}) }, endedRetryMs).unref()
    })
  }
  const listened = subscriber instanceof NodeSubscriber ? () => subscriber.connection : () => subscriber as Redis
  // The subscriber, and the command connection the plugin owns (an app's client is the app's to watch).
  const checks = [checkHealth(listened)]
  if (owned) checks.push(checkHealth(() => commands as Redis))
  // A channel of this process's own: no other process hears its probes. A probe goes out only while the command
  // connection is up (an app's client may queue commands while Redis is away).
  const probeChannel = redisKeys(prefix, channelScope(commands)).subscriptionProbe(randomUUID())
  const publisher = subscriber instanceof NodeSubscriber ? () => subscriber.publisher() : () => commands
  const probe = probeSubscription(listened, (message) => commands.status === 'ready'
    ? publisher().publish(probeChannel, message)
    : Promise.reject(new Error('Redis is away')), log)
  checks.push(() => probe.stop())
  const commandsReady: (() => void)[] = []
  const listeners = new Map<string, { onMessage: (message: string) => void, onSubscribed?: (since: number) => void }>()
  listeners.set(probeChannel, { onMessage: probe.heard, onSubscribed: probe.subscribed })
  subscriber.on('message', (channel: string, message: string) => listeners.get(channel)?.onMessage(message))
  const subscribe = (channel: string) => {
    // As the subscription is made: a probe heard on it later says nothing of what was missed before.
    const since = probe.heardUpTo
    subscriber.subscribe(channel).then(() => listeners.get(channel)?.onSubscribed?.(since), (err: unknown) => {
      // Retried at the next (re)connection; Redis refusing the channel (an ACL without it) never passes.
      log.error({ err }, `could not subscribe to ${channel} on Redis`)
    })
  }
  // Subscribing again on every (re)connection: a SUBSCRIBE that failed is never lost, and a repeated one is harmless.
  subscriber.on('ready', () => { for (const channel of listeners.keys()) subscribe(channel) })
  return {
    commands,
    listen (channel, onMessage, onSubscribed) {
      listeners.set(channel, { onMessage, onSubscribed })
      // Not yet connected: the first 'ready' subscribes. A failure is retried at the next 'ready'; outages are logged.
      if (subscriber.status === 'ready') subscribe(channel)
    },
    onCommandsReady (listener) {
      commandsReady.push(listener)
      commands.on('ready', listener)
    },
    async close () {
      closed = true
      clearTimeout(reconnect)
      for (const stop of checks) stop()
      // An app's client outlives the plugin: it keeps no listener of a closed instance.
      for (const listener of commandsReady) commands.off('ready', listener)
      subscriber.disconnect()
      if (owned) commands.disconnect()
    }
  }
}
