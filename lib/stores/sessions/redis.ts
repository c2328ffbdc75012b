// Refresh sessions on Redis, shared by every process. Each method is one Lua script, so Redis runs it atomically:
// of two concurrent rotations of one token, on one process or two, exactly one sees `rotated`. A session is one hash
// (its current token's hash) whatever the number of rotations, and a set per user; keys expire with their session
// (PXAT), so nothing needs sweeping. The key names live in the scripts' shared preamble only.
import type { Redis } from 'ioredis'
import { refuseLateLua } from '../write-deadline.js'
import type { Identity, PresentedToken, RefreshSession, RotateResult, SessionStore, TokenLookup } from '../../../types/index.js'

// ARGV[1] is always the key prefix; the writes' ARGV[2] their deadline.
const preamble = `${refuseLateLua}
local p = ARGV[1]
local function sessionKey (id) return p .. 'session:' .. id end
local function userKey (user) return p .. 'user-sessions:' .. user end
-- The user's set lives as long as the longest of its sessions.
local function keepUser (user, expiresAt)
  if redis.call('PEXPIRETIME', userKey(user)) < tonumber(expiresAt) then redis.call('PEXPIREAT', userKey(user), expiresAt) end
end
-- status, identity JSON, expiresAt of a presented token: 'current', 'reused' or 'unknown'.
local function find (id, hash)
  local session = redis.call('HMGET', sessionKey(id), 'tokenHash', 'identity', 'expiresAt')
  if not session[1] then return 'unknown' end
  if session[1] ~= hash then return 'reused' end
  return 'current', session[2], session[3]
end
local function endSession (id)
  local identity = redis.call('HGET', sessionKey(id), 'identity')
  redis.call('DEL', sessionKey(id))
  if identity then redis.call('SREM', userKey(cjson.decode(identity).user), id) end
  return identity
end
`

// ARGV: prefix, deadline, id, identity JSON, hash, expiresAt, user.
const createScript = `${preamble}
refuseLate(ARGV[2])
redis.call('HSET', sessionKey(ARGV[3]), 'identity', ARGV[4], 'tokenHash', ARGV[5], 'expiresAt', ARGV[6])
redis.call('PEXPIREAT', sessionKey(ARGV[3]), ARGV[6])
redis.call('SADD', userKey(ARGV[7]), ARGV[3])
keepUser(ARGV[7], ARGV[6])
return 1`

// ARGV: prefix, id, hash.
const lookupScript = `${preamble}
local status, identity, expiresAt = find(ARGV[2], ARGV[3])
return {status, identity, expiresAt}`

// ARGV: prefix, deadline, id, hash, next hash, expiresAt.
const rotateScript = `${preamble}
refuseLate(ARGV[2])
local status, identity = find(ARGV[3], ARGV[4])
if status ~= 'current' then return {status} end
redis.call('HSET', sessionKey(ARGV[3]), 'tokenHash', ARGV[5], 'expiresAt', ARGV[6])
redis.call('PEXPIREAT', sessionKey(ARGV[3]), ARGV[6])
keepUser(cjson.decode(identity).user, ARGV[6])
return {'rotated', identity, ARGV[6]}`

// ARGV: prefix, deadline, id. The ended session's identity JSON, or nil.
const endScript = `${preamble}
refuseLate(ARGV[2])
return endSession(ARGV[3])`

// ARGV: prefix, deadline, user. The ids of the sessions it ended.
const endUserScript = `${preamble}
refuseLate(ARGV[2])
local ended = {}
for _, id in ipairs(redis.call('SMEMBERS', userKey(ARGV[3]))) do
  if endSession(id) then table.insert(ended, id) end
end
redis.call('DEL', userKey(ARGV[3]))
return ended`

/** status, then for a current (or rotated) token its identity JSON and expiresAt. */
type Reply = [string, string?, string?]

export class RedisSessionStore implements SessionStore {
  readonly #redis: Redis
  readonly #prefix: string

  constructor (redis: Redis, prefix: string) {
    this.#redis = redis
    this.#prefix = prefix
  }

  async create (session: RefreshSession, deadline: number): Promise<void> {
    await this.#redis.eval(createScript, 0, this.#prefix, deadline,
      session.id, JSON.stringify(session.identity), session.tokenHash, session.expiresAt, session.identity.user)
  }

  async rotate (token: PresentedToken, nextTokenHash: string, expiresAt: number, deadline: number): Promise<RotateResult> {
    const reply = await this.#redis.eval(rotateScript, 0, this.#prefix, deadline, token.sessionId, token.tokenHash, nextTokenHash, expiresAt) as Reply
    if (reply[0] === 'rotated') return { status: 'rotated', session: this.#session(reply, token.sessionId, nextTokenHash) }
    return this.#notCurrent(reply, token.sessionId)
  }

  async lookup (token: PresentedToken): Promise<TokenLookup> {
    const reply = await this.#redis.eval(lookupScript, 0, this.#prefix, token.sessionId, token.tokenHash) as Reply
    if (reply[0] === 'current') return { status: 'current', session: this.#session(reply, token.sessionId, token.tokenHash) }
    return this.#notCurrent(reply, token.sessionId)
  }

  async end (sessionId: string, deadline: number): Promise<Identity | null> {
    const identity = await this.#redis.eval(endScript, 0, this.#prefix, deadline, sessionId) as string | null
    return identity ? JSON.parse(identity) as Identity : null
  }

  async endUser (user: string, deadline: number): Promise<string[]> {
    return await this.#redis.eval(endUserScript, 0, this.#prefix, deadline, user) as string[]
  }

  #session ([, identity, expiresAt]: Reply, id: string, tokenHash: string): RefreshSession {
    return { id, identity: JSON.parse(identity!) as Identity, tokenHash, expiresAt: Number(expiresAt) }
  }

  #notCurrent ([status]: Reply, sessionId: string): { status: 'reused', sessionId: string } | { status: 'unknown' } {
    return status === 'reused' ? { status: 'reused', sessionId } : { status: 'unknown' }
  }
}
