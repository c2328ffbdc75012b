// Lets a store written for @fastify/session (connect-redis, a database store, ...) keep refresh sessions.
// Its limit: such stores have only get/set/destroy, so `rotate` is read-then-write, not atomic. Two concurrent
// uses of one refresh token may both succeed; use the built-in Redis store where that matters.
import { promisify } from 'node:util'
import type { Identity, RefreshSession, RotateResult, SessionStore, TokenLookup } from '../../types/index.js'

type Callback = (err?: unknown) => void

/** The callback contract of @fastify/session stores. */
export interface CallbackSessionStore {
  set (sessionId: string, session: object, callback: Callback): void
  get (sessionId: string, callback: (err: unknown, session?: unknown) => void): void
  destroy (sessionId: string, callback: Callback): void
}

interface SessionRecord {
  identity: Identity
  tokenHash: string
  expiresAt: number
  /** Every hash the session has had, for reuse detection and for deleting them with it. */
  tokenHashes: string[]
}

// Stores such as connect-redis take a record's lifetime from `cookie.expires`.
const lifetime = (expiresAt: number) => ({ cookie: { expires: new Date(expiresAt).toISOString(), originalMaxAge: expiresAt - Date.now() } })

export function fromFastifySessionStore (store: CallbackSessionStore, options: { prefix?: string } = {}): SessionStore {
  const prefix = options.prefix ?? 'realtime:'
  const get = promisify(store.get.bind(store)) as (id: string) => Promise<unknown>
  const set = promisify(store.set.bind(store)) as (id: string, record: object) => Promise<void>
  const destroy = promisify(store.destroy.bind(store)) as (id: string) => Promise<void>
  const sessionKey = (id: string) => `${prefix}session:${id}`
  const tokenKey = (hash: string) => `${prefix}token:${hash}`
  const userKey = (user: string) => `${prefix}user-sessions:${user}`

  async function find (tokenHash: string): Promise<{ id: string, record: SessionRecord } | null> {
    const token = await get(tokenKey(tokenHash)) as { sessionId: string } | null | undefined
    if (!token) return null
    const record = await get(sessionKey(token.sessionId)) as SessionRecord | null | undefined
    // Not every store honours `cookie.expires`: the expiry is checked here too.
    if (!record || record.expiresAt <= Date.now()) return null
    return { id: token.sessionId, record }
  }

  async function save (id: string, record: SessionRecord): Promise<void> {
    await set(sessionKey(id), { ...record, ...lifetime(record.expiresAt) })
    await set(tokenKey(record.tokenHash), { sessionId: id, ...lifetime(record.expiresAt) })
  }

  const toSession = (id: string, record: SessionRecord): RefreshSession =>
    ({ id, identity: record.identity, tokenHash: record.tokenHash, expiresAt: record.expiresAt })

  async function end (sessionId: string): Promise<Identity | null> {
    const record = await get(sessionKey(sessionId)) as SessionRecord | null | undefined
    if (!record) return null
    for (const hash of record.tokenHashes) await destroy(tokenKey(hash))
    await destroy(sessionKey(sessionId))
    return record.identity
  }

  return {
    async create (session) {
      await save(session.id, { identity: session.identity, tokenHash: session.tokenHash, expiresAt: session.expiresAt, tokenHashes: [session.tokenHash] })
      const user = await get(userKey(session.identity.user)) as { sessions: string[] } | null | undefined
      await set(userKey(session.identity.user), { sessions: [...(user?.sessions ?? []), session.id], ...lifetime(session.expiresAt) })
    },

    async rotate (tokenHash, nextTokenHash, expiresAt): Promise<RotateResult> {
      const found = await find(tokenHash)
      if (!found) return { status: 'unknown' }
      if (found.record.tokenHash !== tokenHash) return { status: 'reused', sessionId: found.id }
      const record = { ...found.record, tokenHash: nextTokenHash, expiresAt, tokenHashes: [...found.record.tokenHashes, nextTokenHash] }
      await save(found.id, record)
      return { status: 'rotated', session: toSession(found.id, record) }
    },

    async lookup (tokenHash): Promise<TokenLookup> {
      const found = await find(tokenHash)
      if (!found) return { status: 'unknown' }
      if (found.record.tokenHash !== tokenHash) return { status: 'reused', sessionId: found.id }
      return { status: 'current', session: toSession(found.id, found.record) }
    },

    end,

    async endUser (user) {
      const sessions = (await get(userKey(user)) as { sessions: string[] } | null | undefined)?.sessions ?? []
      const ended: string[] = []
      for (const id of sessions) {
        if (await end(id)) ended.push(id)
      }
      await destroy(userKey(user))
      return ended
    }
  }
}
