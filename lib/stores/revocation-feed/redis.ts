// Revocations across processes: one sorted set of the revocations in force, each scored by when it lapses (so a process
// that starts, or reconnects, later still learns of them), and a pub/sub message (so running processes hear of it at
// once). One key, so it lives in one slot of a cluster; a PUBLISH reaches every node of one.
import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { readRevocation, Revocations } from '../../auth/revocations.js'
import type { RedisConnections } from '../redis-connection.js'
import { Outages } from '../outages.js'
import { ackedEval } from '../replica-acks.js'
import { refuseLateLua } from '../write-deadline.js'
import { channelScope, redisKeys } from '../redis-keys.js'
import type { RevocationFeed, RevokedHandler } from './contract.js'

/**
 * How long a revocation stays in the set once lapsed: a process whose subscriber was deaf or away meanwhile still
 * replays it, for the sockets that outlive access tokens (a session cookie's).
 */
const keptLapsedMs = 60_000
/** How long after a failed replay the next is tried, doubling with each failure up to the longest. */
const firstRetryMs = 250
const longestRetryMs = 5_000

// KEYS: the set. ARGV: the revocation, when it lapses and how long it lasts from now (by the publisher's clock), when
// the oldest kept lapsed, the channel, this feed's id, how long a lapsed one is kept, and for a user's, the user and
// its time. One script, not a MULTI: a cluster client follows a script's ASK and MOVED (a reshard moving the set's
// slot), where a transaction in a pipeline fails whole (EXECABORT) and every logout answered 503. Redis's clock is the
// one every process shares: a revocation lapses by it or by the publisher's, whichever is later, a user's refuses the
// tokens issued up to the later of the two (its id made again, as `revocationId.user` makes it), and what lapsed is
// shed by whichever is behind. A publisher whose clock runs behind (a host off NTP) would otherwise send a lapse before
// the tokens' `exp` by the others' clocks, and a user's time before their latest tokens' `iat`; one ahead would shed
// what the others still refuse. Answers the revocation and the lapse it sent.
const publishScript = `${refuseLateLua}
local now = redisNow()
local lapse = math.max(tonumber(ARGV[2]), now + tonumber(ARGV[3]))
local revoked = ARGV[1]
if ARGV[9] ~= '' then revoked = 'user:' .. string.format('%d', math.max(tonumber(ARGV[9]), now)) .. ':' .. ARGV[8] end
redis.call('ZADD', KEYS[1], 'GT', string.format('%d', lapse), revoked)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', math.min(tonumber(ARGV[4]), now - tonumber(ARGV[7]))))
local expireAt = string.format('%d', lapse + tonumber(ARGV[7]))
redis.call('PEXPIREAT', KEYS[1], expireAt, 'NX')
redis.call('PEXPIREAT', KEYS[1], expireAt, 'GT')
redis.call('PUBLISH', ARGV[5], cjson.encode({ session = revoked, ['until'] = lapse, from = ARGV[6] }))
return { revoked, lapse }`

export class RedisRevocationFeed implements RevocationFeed {
  // This registration's own: what another shares with it comes through Redis.
  readonly revocations = new Revocations()
  readonly #redis: RedisConnections
  readonly #key: string
  readonly #channel: string
  readonly #log: FastifyBaseLogger
  /** Names this feed's own messages, which it has applied as it published them. */
  readonly #id = randomUUID()
  // Set by `start`, which the plugin calls at registration, before anything can be revoked; a feed that only
  // publishes (not started) has no sockets of its own to tell.
  #onRevoked: RevokedHandler | undefined
  /** The next try of a replay that failed. */
  #retry: NodeJS.Timeout | undefined
  #stopped = false

  /** How many replicas confirm a revocation before it counts (`redisReplicaAcks`). */
  readonly #replicaAcks: number

  constructor (redis: RedisConnections, prefix: string, log: FastifyBaseLogger, replicaAcks = 0) {
    const keys = redisKeys(prefix, channelScope(redis.commands))
    this.#replicaAcks = replicaAcks
    this.#redis = redis
    this.#key = keys.revoked
    this.#channel = keys.revocationsChannel
    this.#log = log
  }

  async publish (session: string, until: number): Promise<void> {
    // This process's own sockets hear of it now, whatever Redis answers (one full refuses the write), and not when its
    // subscriber hears it back.
    this.#onRevoked?.(session, until)
    // The set lives as long as its latest revocation is kept (NX sets a first expiry, GT lengthens it), and sheds the
    // ones lapsed for longer than they are kept.
    const now = Date.now()
    const revoked = readRevocation(session)
    const [sent, lapse] = await ackedEval(this.#redis.commands, this.#replicaAcks, publishScript, [this.#key], session, until,
      until - now, now - keptLapsedMs, this.#channel, this.#id, keptLapsedMs,
      'user' in revoked ? revoked.user : '', 'user' in revoked ? revoked.at : '') as [string, number]
    // Later by Redis's clock: the tokens it refuses are refused here too, where another process signed them.
    if (sent !== session || lapse > until) this.#onRevoked?.(sent, lapse)
  }

  start (onRevoked: RevokedHandler, onLoaded: (knownSince: number) => void): void {
    this.#onRevoked = onRevoked
    // Once subscribed (again), whatever was revoked while this process was not listening is still in Redis. A replay
    // that began once subscribed leaves nothing unknown: what came before is in the set, what after is heard.
    let subscriptions = 0
    let replayed = 0
    /** What the replays to come read: the revocations lapsing after then (the earliest of their subscriptions' `since`). */
    let missedSince = Infinity
    // One replay at a time; a reason to replay that comes meanwhile (a new subscription) replays once it is done.
    let replaying = false
    let again = false
    /** Replays failed in a row: the next is tried later each time. */
    let failures = 0
    const outages = new Outages()
    const replay = () => {
      if (replaying) {
        again = true
        return
      }
      replaying = true
      again = false
      clearTimeout(this.#retry)
      const after = subscriptions
      this.#replay(onRevoked, missedSince).then(() => {
        replayed = Math.max(replayed, after)
        if (replayed >= subscriptions) missedSince = Infinity
        if (outages.ended()) this.#log.info(`read the revocations in force from Redis (${this.#key}) after ${failures} failed tries`)
        failures = 0
        // The set outlives every process: what it holds was revoked whenever, by whichever process.
        onLoaded(-Infinity)
      }, (err: unknown) => {
        // Redis refusing the read (an ACL without the key) never passes: retried all the same, an error past 10 s.
        failures++
        outages.failed(this.#log, err as Error, `could not read the revocations in force from Redis (${this.#key}); retrying`)
      }).finally(() => {
        replaying = false
        if (this.#stopped || replayed >= subscriptions) return
        if (again) {
          replay()
          return
        }
        // Not only at the next (re)connection: a Cluster client stays ready through a master's failover, and a
        // connection stays up under a read that timed out (Redis busy), so neither may ever come.
        this.#retry = setTimeout(replay, Math.min(firstRetryMs * 2 ** (failures - 1), longestRetryMs)).unref()
      })
    }
    this.#redis.listen(this.#channel, (message) => {
      try {
        const { session, until, from } = JSON.parse(message) as { session: unknown, until: unknown, from?: unknown }
        if (from === this.#id) return
        if (typeof session === 'string' && typeof until === 'number') onRevoked(session, until)
      } catch {
        this.#log.warn(`ignored a malformed message on ${this.#channel}`)
      }
    }, (since) => {
      subscriptions++
      missedSince = Math.min(missedSince, since)
      replay()
    })
    // The replay needs the command connection too: one that failed while it was away is made again once it is back
    // (sooner than its retry). A subscription replayed already is not (after an outage, both connections come back:
    // the set is read once).
    this.#redis.onCommandsReady(() => { if (replayed < subscriptions) replay() })
  }

  stop (): void {
    this.#stopped = true
    clearTimeout(this.#retry)
  }

  /**
   * Tells `onRevoked` of the revocations in force, and of those lapsed since `since`: this process may have missed them,
   * and its sockets that outlive an access token (a session cookie's) may still be open.
   */
  async #replay (onRevoked: RevokedHandler, since: number): Promise<void> {
    let cursor = '0'
    do {
      const [next, entries] = await this.#redis.commands.zscan(this.#key, cursor, 'COUNT', 500)
      cursor = next
      // Lapsed ones stay in the set until a publish sheds them, a while after they lapse.
      const from = Math.min(since, Date.now())
      for (let i = 0; i < entries.length; i += 2) {
        const until = Number(entries[i + 1])
        if (until > from) onRevoked(entries[i]!, until)
      }
    } while (cursor !== '0')
  }
}
