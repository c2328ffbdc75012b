// Refresh sessions on Redis, shared by every process. A session is one hash (its current token's hash) whatever the
// number of rotations, in its own slot of a cluster; a user's set of session ids lives in the user's. No script
// touches both, since a token names its session and not its user; none touches two keys at all, since a slot being
// migrated (`redis-cli --cluster reshard`) has some keys on each node, and a script whose keys are not all on one answers
// TRYAGAIN for as long as the migration lasts. Each script reads or writes one key, atomically, and the writes that need
// two take one script each, in an order that never loses a session:
// - create writes the session, then adds it to its user's set. A session whose add failed is one whose token was
//   never handed out: nobody can present it, and it expires. Past the user's limit, the set names the sessions to end
//   without dropping them; create ends them, then takes them off: one whose end failed stays listed, for endUser (and
//   the next login) to find. Listed, a session has its user's mark of endUser read: one whose login's check began
//   before an endUser of its user began is ended and taken off (endUser may have read the set before it came).
// - rotate reads the session (so learns its user), lengthens the user's set's life, then rotates in one
//   compare-and-set: of two concurrent rotations of one token, on one process or two, exactly one sees `rotated`,
//   and a rotation sent again (its answer lost with its connection) sees `rotated` again.
// - end and endUser end each session in its own script; an id left in a user's set after its session ended is
//   skipped, and goes with the set. endUser takes the user's ids a batch at a time, newest first (the sessions in use;
//   the oldest lapse first anyway), and drops each batch from the set once ended: one that runs out of time has ended
//   some, and the next goes on from there. It marks the user with when it began before it reads a thing; with the
//   clock unread (its node away), it marks nothing and ends them all the same. endUser marks, then reads the set; a
//   login lists, then reads the mark: whichever comes second sees the other, so neither needs the two keys in one
//   script. The keys and their meanings are those of the builds that did both in one script: beside their processes
//   in a rolling deploy, each side still writes before it reads.
// When a check began and when an endUser did are read off one clock, Redis's at one key (`revocationClock`): on one
// server or in a cluster, every process reads the same clock, whatever their own say.
// The user's set is sorted by when each session expires: every change to it drops the ones past, so a user who keeps
// one session alive while others lapse keeps no more ids than live sessions. It lives as long as the longest of its
// sessions, so endUser finds every live one. Keys expire with their sessions (PXAT), so nothing needs sweeping. Every script that changes what a token presented later meets carries
// the write's deadline.
import { refuseLate, refuseLateLua } from '../write-deadline.js'
import { ackedEval } from '../replica-acks.js'
import { redisKeys, type RedisKeys } from '../redis-keys.js'
import type { RedisClient } from '../redis-connection.js'
import type { Identity, PresentedToken, RefreshSession, RotateResult, RotationGrace, SessionStore, TokenLookup } from '../../../types/index.js'

// status, identity JSON, expiresAt (and a previous token's session's current hash) of the token whose hash is `hash`,
// against the session at KEYS[1]: 'current', 'previous', 'reused' or 'unknown'. Previous: the token a rotation with a grace
// replaced, while the grace lasts by Redis's clock and the session is still at the token it was rotated to (a process
// of an earlier build rotates without dropping the fields). Needs `redisNow` (refuseLateLua).
const findLua = `
local function find (hash)
  local session = redis.call('HMGET', KEYS[1], 'tokenHash', 'identity', 'expiresAt', 'previousHash', 'previousNext', 'previousUntil')
  if not session[1] then return 'unknown' end
  if session[1] == hash then return 'current', session[2], session[3] end
  if session[4] == hash and session[5] == session[1] and tonumber(session[6]) > redisNow() then
    return 'previous', session[2], session[3], session[1]
  end
  return 'reused'
end
`

// KEYS: the session. ARGV: deadline, identity JSON, hash, expiresAt.
const createScript = `${refuseLateLua}
refuseLate(ARGV[1])
redis.call('HSET', KEYS[1], 'identity', ARGV[2], 'tokenHash', ARGV[3], 'expiresAt', ARGV[4])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1`

// Redis's clock in microseconds: a check that began at the very time an endUser did counts as before it, and the finer
// the clock, the rarer a login refused so.
const clockLua = `
local function clock ()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000000 + tonumber(time[2])
end
`

// KEYS: the revocation clock (never written: it names the node). When a login's check, or an endUser, begins.
const clockScript = `${clockLua}
return clock()`

// KEYS: the user's set. ARGV: deadline, session id, its expiresAt, how many sessions the user keeps (0: no limit).
// The set lives as long as the longest of its sessions, and forgets the ones past by Redis's clock, which expires
// them (a process's clock running ahead would drop live ones). Past the limit it returns the ids of the sessions that
// expire first (the oldest, or the least used), still listed, for the caller to end and then forget; never the one
// being listed, which expires first once the refresh lifetime was lowered.
const indexScript = `${refuseLateLua}
refuseLate(ARGV[1])
redis.call('ZADD', KEYS[1], 'GT', ARGV[3], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', redisNow())
if redis.call('PEXPIRETIME', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIREAT', KEYS[1], ARGV[3]) end
local keep = tonumber(ARGV[4])
local over = redis.call('ZCARD', KEYS[1]) - keep
local ended = {}
if keep > 0 and over > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, over)) do
    if id ~= ARGV[2] and #ended < over then ended[#ended + 1] = id end
  end
end
return ended`

// KEYS: the session. ARGV: hash.
const lookupScript = `${refuseLateLua}${findLua}
return {find(ARGV[1])}`

// KEYS: the session. ARGV: deadline, hash, next hash, expiresAt, the grace's milliseconds (0: none).
// A session already at the next hash was rotated by this very call, its answer lost: ioredis sends a script again
// when its connection drops before the answer. It gets the first run's answer (reuse would end the session): the next
// hash is of a token made for this call, which no client holds before the answer. It changes nothing: no deadline.
const rotateScript = `${refuseLateLua}${findLua}
local status, identity, expiresAt = find(ARGV[3])
if status == 'current' then return {'rotated', identity, expiresAt} end
refuseLate(ARGV[1])
local found = {find(ARGV[2])}
if found[1] == 'previous' then return found end
if found[1] ~= 'current' then return {found[1]} end
identity = found[2]
redis.call('HSET', KEYS[1], 'tokenHash', ARGV[3], 'expiresAt', ARGV[4])
-- No HDEL (an ACL of a release before lacks it): without a grace, an earlier one's fields stay, inert, their
-- previousNext no longer the session's hash.
if tonumber(ARGV[5]) > 0 then
  redis.call('HSET', KEYS[1], 'previousHash', ARGV[2], 'previousNext', ARGV[3], 'previousUntil', redisNow() + tonumber(ARGV[5]))
end
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return {'rotated', identity, ARGV[4]}`

// KEYS: the session. ARGV: hash, next hash. Whenever it lands: the next hash is of a token nobody was handed. Back at
// its hash, the session leaves the previous token's fields inert (previousNext is not its hash).
const unrotateScript = `
if redis.call('HGET', KEYS[1], 'tokenHash') == ARGV[2] then redis.call('HSET', KEYS[1], 'tokenHash', ARGV[1]) end
return 1`

// KEYS: the session. ARGV: deadline. The ended session's identity JSON, or nil.
const endScript = `${refuseLateLua}
refuseLate(ARGV[1])
local identity = redis.call('HGET', KEYS[1], 'identity')
redis.call('DEL', KEYS[1])
return identity`

// KEYS: when the user's sessions were last ended. ARGV: deadline, when this endUser began, how long the mark of it
// stays. The latest endUser's mark stands.
const markEndedScript = `${refuseLateLua}
refuseLate(ARGV[1])
local ended = redis.call('GET', KEYS[1])
if not ended or tonumber(ended) < tonumber(ARGV[2]) then ended = ARGV[2] end
redis.call('SET', KEYS[1], ended, 'PX', ARGV[3])
return 1`

// KEYS: the user's set. ARGV: deadline, how many. Up to that many ids of sessions not yet past by Redis's clock, the
// newest first, for endUser to end.
const userSessionsScript = `${refuseLateLua}
refuseLate(ARGV[1])
return redis.call('ZRANGE', KEYS[1], '+inf', '(' .. redisNow(), 'BYSCORE', 'REV', 'LIMIT', 0, ARGV[2])`

// KEYS: the plain set the user's set was before it was sorted (what a process of 0.1.0 indexed, until it expires with
// its sessions). ARGV: how many. Up to that many of its ids, read once the sorted set has none left.
const userSessionsBeforeScript = `
if redis.call('TYPE', KEYS[1]).ok ~= 'set' then return {} end
return redis.call('SRANDMEMBER', KEYS[1], ARGV[1])`

// KEYS: the user's set. ARGV: the ids of ended sessions.
const forgetScript = `
redis.call('ZREM', KEYS[1], unpack(ARGV))
return 1`

// KEYS: the plain set before it. ARGV: the ids of ended sessions.
const forgetBeforeScript = `
if redis.call('TYPE', KEYS[1]).ok == 'set' then redis.call('SREM', KEYS[1], unpack(ARGV)) end
return 1`

/**
 * How many sessions endUser ends at a time: each batch is taken out of the user's set once ended, so an endUser that
 * runs out of time has ended some, and the next one goes on from there rather than starting over.
 */
const endUserBatch = 500

/**
 * How long a user's mark of their last endUser stays: far longer than a login takes from its check's start to its
 * session's listing (each step gives up within seconds, and the queue ahead of a check is bounded).
 */
const endedMarkMs = 60 * 60 * 1000

/**
 * The deadlines of a call's writes after its first command: each as long from when it is sent as the call was given
 * (`deadline`, from the call's start), and never later than that much past the call's own, two thirds of the store
 * timeout, as endUser's batches. Counted from the call's start, a Redis pause of a second (a fork, `DEBUG SLEEP 1`) or
 * a stall of this process during its first command left the next none, and a refresh or login whose store answered
 * every command in time was answered 503. A write so sent still acts within a third of the store timeout of being
 * sent, before ioredis's own command timeout (2 s) can answer for it, and a second before the store timeout ends.
 */
function nextWrites (deadline: number): () => number {
  const window = deadline - Date.now()
  return () => Math.min(Date.now() + window, deadline + window)
}

/**
 * status, then for a current (or rotated, or previous) token its identity JSON and expiresAt, and for a previous one
 * the session's current hash.
 */
type Reply = [string, string?, string?, string?]

export class RedisSessionStore implements SessionStore {
  readonly #redis: RedisClient
  readonly #keys: RedisKeys
  /** 0: no limit. */
  readonly #maxSessionsPerUser: number

  /** How many replicas confirm each listing and end of a session, and each mark of `endUser` (`redisReplicaAcks`). */
  readonly #replicaAcks: number

  /**
   * `maxSessionsPerUser`: sessions one user keeps; a new one past it ends those that expire first. `replicaAcks`: how
   * many replicas must confirm each listing and end before it counts.
   */
  constructor (redis: RedisClient, prefix: string, maxSessionsPerUser = Infinity, replicaAcks = 0) {
    this.#redis = redis
    this.#replicaAcks = replicaAcks
    this.#keys = redisKeys(prefix)
    this.#maxSessionsPerUser = maxSessionsPerUser === Infinity ? 0 : maxSessionsPerUser
  }

  /** Redis's clock at `revocationClock`, which endUser marks its user by. */
  async checkBegins (): Promise<number> {
    return await this.#redis.eval(clockScript, 1, this.#keys.revocationClock) as number
  }

  async create (session: RefreshSession, deadline: number, checkBegan?: number): Promise<string[]> {
    const next = nextWrites(deadline)
    await this.#redis.eval(createScript, 1, this.#keys.session(session.id), deadline,
      JSON.stringify(session.identity), session.tokenHash, session.expiresAt)
    const { user } = session.identity
    const over = await this.#index(user, session.id, session.expiresAt, next(), this.#maxSessionsPerUser)
    // Its user's sessions ended after its check began, maybe read before it was listed: it would outlive them. It ends
    // alone, none of the others past the limit.
    const ended = checkBegan !== undefined && await this.#endedSince(user, checkBegan) ? [session.id] : over
    // Each in its own slot: a script of its own each. Ended first, forgotten second: a session whose end failed stays
    // on the set, within reach of endUser. Forgetting is best effort, as in `end`.
    const endsBy = next()
    await Promise.all(ended.map(id => this.#end(id, endsBy)))
    if (ended.length > 0) await this.#forget(user, ended).catch(() => {})
    return ended
  }

  async rotate (token: PresentedToken, nextTokenHash: string, expiresAt: number, deadline: number, grace?: RotationGrace): Promise<RotateResult> {
    const next = nextWrites(deadline)
    const found = await this.#lookup(token)
    if (found[0] === 'previous') return { status: 'previous', session: this.#session(found, token.sessionId, found[3]!) }
    if (found[0] !== 'current') return this.#notCurrent(found, token.sessionId)
    // The user's set first: a rotation that then fails leaves it living longer, never shorter than the session.
    await this.#index((JSON.parse(found[1]!) as Identity).user, token.sessionId, expiresAt, next(), 0)
    const reply = await this.#redis.eval(rotateScript, 1, this.#keys.session(token.sessionId), next(),
      token.tokenHash, nextTokenHash, expiresAt, grace?.ms ?? 0) as Reply
    if (reply[0] === 'rotated') return { status: 'rotated', session: this.#session(reply, token.sessionId, nextTokenHash) }
    // Another rotation with a grace landed between the two reads: two tabs refreshing one session cookie at once.
    if (reply[0] === 'previous') return { status: 'previous', session: this.#session(reply, token.sessionId, reply[3]!) }
    return this.#notCurrent(reply, token.sessionId)
  }

  async unrotate (token: PresentedToken, nextTokenHash: string): Promise<void> {
    await this.#redis.eval(unrotateScript, 1, this.#keys.session(token.sessionId), token.tokenHash, nextTokenHash)
  }

  async lookup (token: PresentedToken): Promise<TokenLookup> {
    const reply = await this.#lookup(token)
    if (reply[0] === 'current') return { status: 'current', session: this.#session(reply, token.sessionId, token.tokenHash) }
    if (reply[0] === 'previous') return { status: 'previous', session: this.#session(reply, token.sessionId, reply[3]!) }
    return this.#notCurrent(reply, token.sessionId)
  }

  async end (sessionId: string, deadline: number): Promise<Identity | null> {
    const ended = await this.#end(sessionId, deadline)
    // Best effort: the session has ended whatever happens here, and an id left behind is skipped by endUser and
    // expires with the set.
    if (ended) await this.#forget(ended.user, [sessionId]).catch(() => {})
    return ended
  }

  async endUser (user: string, deadline: number): Promise<string[]> {
    // Each write, and each batch, gets the time the whole call was given, counted from when it starts (`nextWrites`):
    // a batch started by then acts while its caller still waits, whatever the number of batches before it, or a read
    // of the clock held by a pause.
    const next = nextWrites(deadline)
    // Unread (the clock's node away), the user is not marked: the sessions end all the same, and logins racing this
    // are left to their processes' own guard.
    const began = await this.checkBegins().catch(() => null)
    // Before the set is read: a login listed after that reads the mark.
    if (began !== null) await this.#confirmed(markEndedScript, this.#keys.userSessionsEnded(user), next(), began, endedMarkMs)
    const ended: string[] = []
    for (;;) {
      const batchDeadline = next()
      refuseLate(batchDeadline)
      let before = false
      let ids = await this.#redis.eval(userSessionsScript, 1, this.#keys.userSessions(user), batchDeadline, endUserBatch) as string[]
      if (ids.length === 0) {
        before = true
        ids = await this.#redis.eval(userSessionsBeforeScript, 1, this.#keys.userSessionsBefore(user), endUserBatch) as string[]
      }
      if (ids.length === 0) return ended
      const identities = await Promise.all(ids.map(id => this.#end(id, batchDeadline)))
      if (before) await this.#redis.eval(forgetBeforeScript, 1, this.#keys.userSessionsBefore(user), ...ids)
      else await this.#forget(user, ids)
      ended.push(...ids.filter((_id, i) => identities[i] !== null))
    }
  }

  #lookup ({ sessionId, tokenHash }: PresentedToken): Promise<Reply> {
    return this.#redis.eval(lookupScript, 1, this.#keys.session(sessionId), tokenHash) as Promise<Reply>
  }

  /** Lists the session on its user's set; resolves the ids `keep` (0: no limit) leaves out, still on the set. */
  #index (user: string, sessionId: string, expiresAt: number, deadline: number, keep: number): Promise<string[]> {
    return this.#confirmed(indexScript, this.#keys.userSessions(user), deadline, sessionId, expiresAt, keep) as Promise<string[]>
  }

  /** Whether an endUser of `user` began after `checkBegan`, or in its microsecond. */
  async #endedSince (user: string, checkBegan: number): Promise<boolean> {
    return Number(await this.#redis.get(this.#keys.userSessionsEnded(user)) ?? -1) >= checkBegan
  }

  async #end (sessionId: string, deadline: number): Promise<Identity | null> {
    const identity = await this.#confirmed(endScript, this.#keys.session(sessionId), deadline) as string | null
    return identity ? JSON.parse(identity) as Identity : null
  }

  /**
   * A script whose write a later token or endUser must find, confirmed by the replicas asked for: a session's end or
   * its user's mark lost in a failover, a logged-out or revoked refresh token would work again; a session's listing on
   * its user's set lost (the session kept on another node), endUser would miss it. Not the session nor its rotation:
   * lost, their tokens are refused (the user logs in again), never taken; and a rotation unconfirmed would have to be
   * taken back by another write, which a failover can lose as well (the newest token then counts as reuse). A
   * rotation's listing comes before its compare-and-set: unconfirmed, nothing has rotated.
   */
  #confirmed (script: string, key: string, ...args: Array<string | number>): Promise<unknown> {
    return ackedEval(this.#redis, this.#replicaAcks, script, [key], ...args)
  }

  /** Takes ended sessions out of their user's set. */
  async #forget (user: string, sessionIds: string[]): Promise<void> {
    await this.#redis.eval(forgetScript, 1, this.#keys.userSessions(user), ...sessionIds)
  }

  #session ([, identity, expiresAt]: Reply, id: string, tokenHash: string): RefreshSession {
    return { id, identity: JSON.parse(identity!) as Identity, tokenHash, expiresAt: Number(expiresAt) }
  }

  #notCurrent ([status]: Reply, sessionId: string): { status: 'reused', sessionId: string } | { status: 'unknown' } {
    return status === 'reused' ? { status: 'reused', sessionId } : { status: 'unknown' }
  }
}
