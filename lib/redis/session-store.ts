// Refresh sessions on Redis, shared by every process. Each method is one Lua script, so Redis runs it atomically:
// of two concurrent rotations of one token, on one process or two, exactly one sees `rotated`. Keys expire with
// their session (PXAT), so nothing needs sweeping. The key names live in the scripts' shared preamble only.
import type { Redis } from 'ioredis'
import type { Identity, RefreshSession, RotateResult, SessionStore, TokenLookup } from '../../types/index.js'

// ARGV[1] is always the key prefix.
const preamble = `
local p = ARGV[1]
local function sessionKey (id) return p .. 'session:' .. id end
local function tokensKey (id) return p .. 'session-tokens:' .. id end
local function tokenKey (hash) return p .. 'token:' .. hash end
local function userKey (user) return p .. 'user-sessions:' .. user end
local function addToken (id, hash, expiresAt)
  redis.call('SET', tokenKey(hash), id, 'PXAT', expiresAt)
  redis.call('SADD', tokensKey(id), hash)
  redis.call('PEXPIREAT', tokensKey(id), expiresAt)
end
local function find (hash)
  local id = redis.call('GET', tokenKey(hash))
  if not id then return nil end
  local session = redis.call('HMGET', sessionKey(id), 'tokenHash', 'identity', 'expiresAt')
  if not session[1] then return nil end
  return id, session
end
local function endSession (id)
  local identity = redis.call('HGET', sessionKey(id), 'identity')
  for _, hash in ipairs(redis.call('SMEMBERS', tokensKey(id))) do redis.call('DEL', tokenKey(hash)) end
  redis.call('DEL', sessionKey(id), tokensKey(id))
  if identity then redis.call('SREM', userKey(cjson.decode(identity).user), id) end
  return identity
end
`

// ARGV: prefix, id, identity JSON, hash, expiresAt, user.
const createScript = `${preamble}
redis.call('HSET', sessionKey(ARGV[2]), 'identity', ARGV[3], 'tokenHash', ARGV[4], 'expiresAt', ARGV[5])
redis.call('PEXPIREAT', sessionKey(ARGV[2]), ARGV[5])
addToken(ARGV[2], ARGV[4], ARGV[5])
redis.call('SADD', userKey(ARGV[6]), ARGV[2])
if redis.call('PEXPIRETIME', userKey(ARGV[6])) < tonumber(ARGV[5]) then redis.call('PEXPIREAT', userKey(ARGV[6]), ARGV[5]) end
return 1`

// ARGV: prefix, hash.
const lookupScript = `${preamble}
local id, session = find(ARGV[2])
if not id then return {'unknown'} end
if session[1] ~= ARGV[2] then return {'reused', id} end
return {'current', id, session[2], session[3]}`

// ARGV: prefix, hash, next hash, expiresAt.
const rotateScript = `${preamble}
local id, session = find(ARGV[2])
if not id then return {'unknown'} end
if session[1] ~= ARGV[2] then return {'reused', id} end
redis.call('HSET', sessionKey(id), 'tokenHash', ARGV[3], 'expiresAt', ARGV[4])
redis.call('PEXPIREAT', sessionKey(id), ARGV[4])
addToken(id, ARGV[3], ARGV[4])
return {'rotated', id, session[2], ARGV[4]}`

// ARGV: prefix, id. The ended session's identity JSON, or nil.
const endScript = `${preamble}
return endSession(ARGV[2])`

// ARGV: prefix, user. The ids of the sessions it ended.
const endUserScript = `${preamble}
local ended = {}
for _, id in ipairs(redis.call('SMEMBERS', userKey(ARGV[2]))) do
  if endSession(id) then table.insert(ended, id) end
end
redis.call('DEL', userKey(ARGV[2]))
return ended`

type Reply = [string, string?, string?, string?]

export class RedisSessionStore implements SessionStore {
  readonly #redis: Redis
  readonly #prefix: string

  constructor (redis: Redis, prefix: string) {
    this.#redis = redis
    this.#prefix = prefix
  }

  async create (session: RefreshSession): Promise<void> {
    await this.#redis.eval(createScript, 0, this.#prefix,
      session.id, JSON.stringify(session.identity), session.tokenHash, session.expiresAt, session.identity.user)
  }

  async rotate (tokenHash: string, nextTokenHash: string, expiresAt: number): Promise<RotateResult> {
    const reply = await this.#redis.eval(rotateScript, 0, this.#prefix, tokenHash, nextTokenHash, expiresAt) as Reply
    if (reply[0] === 'rotated') return { status: 'rotated', session: this.#session(reply, nextTokenHash) }
    return this.#notCurrent(reply)
  }

  async lookup (tokenHash: string): Promise<TokenLookup> {
    const reply = await this.#redis.eval(lookupScript, 0, this.#prefix, tokenHash) as Reply
    if (reply[0] === 'current') return { status: 'current', session: this.#session(reply, tokenHash) }
    return this.#notCurrent(reply)
  }

  async end (sessionId: string): Promise<Identity | null> {
    const identity = await this.#redis.eval(endScript, 0, this.#prefix, sessionId) as string | null
    return identity ? JSON.parse(identity) as Identity : null
  }

  async endUser (user: string): Promise<string[]> {
    return await this.#redis.eval(endUserScript, 0, this.#prefix, user) as string[]
  }

  #session ([, id, identity, expiresAt]: Reply, tokenHash: string): RefreshSession {
    return { id: id!, identity: JSON.parse(identity!) as Identity, tokenHash, expiresAt: Number(expiresAt) }
  }

  #notCurrent ([status, id]: Reply): { status: 'reused', sessionId: string } | { status: 'unknown' } {
    return status === 'reused' ? { status: 'reused', sessionId: id! } : { status: 'unknown' }
  }
}
