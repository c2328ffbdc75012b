// Lets a store written for @fastify/session (connect-redis, a database store, ...) keep refresh sessions.
// Its limit: such stores have only get/set/destroy, so `rotate` is read-then-write, not atomic. Within a process a
// session's rotations and its logout take turns, and a rotation writes in its user's turn, where endUser and the user's
// limit end sessions; across processes two concurrent uses of one refresh token may both succeed: use the built-in
// Redis store where that matters. A user's list of sessions is updated one change at a time within a process, not
// across processes. It lists each session with its expiry (moved on by a refresh), so that it holds the live ones only:
// each change drops the ended and the past, and a login past the user's limit ends the sessions that expire first
// (created or refreshed longest ago). No `checkBegins`: get/set/destroy order nothing across processes, so a login
// whose check began before a revokeUser on another process, listed after that revokeUser read the list, is refused
// only once its process hears the revocation. No `unrotate` either: read-then-write, one landing after a logout read
// the session would bring it back.
import type { FastifyBaseLogger } from 'fastify'
import { useStorePrefix } from '../prefixes-in-use.js'
import { refuseLate } from '../write-deadline.js'
import { CallbackCalls } from './callback-calls.js'
import { sessionsPerUser } from './per-user-limit.js'
import { Turns } from './turns.js'
import type { Identity, PresentedToken, RefreshSession, RotateResult, SessionStore, TokenLookup } from '../../../types/index.js'

type Callback = (err?: unknown) => void

/**
 * What the plugin calls on an adapted store as it registers, with its logger: resolves what to call as it closes.
 * Global, so that the ES module and the CommonJS copy of the package know each other's stores.
 */
export const onRegistration = Symbol.for('fastify-realtime.fromFastifySessionStore.onRegistration')

/** A session store that may want to hear of its registrations. */
export type RegisteredSessionStore = SessionStore & { [onRegistration]?: (log: FastifyBaseLogger) => () => void }

/** The callback contract of @fastify/session stores. */
export interface CallbackSessionStore {
  set (sessionId: string, session: object, callback: Callback): void
  get (sessionId: string, callback: (err: unknown, session?: unknown) => void): void
  destroy (sessionId: string, callback: Callback): void
}

/**
 * How many sessions endUser ends at a time, newest first: the list is written back after each batch, so an endUser that
 * runs out of time has ended some, and the next goes on from there.
 */
const endUserBatch = 50

/** A session on its user's list, with when it expires, so that the list forgets it then. */
interface ListedSession {
  id: string
  expiresAt: number
}

/** A user's list as stored: plain ids are what 0.1.0 wrote, and expire with the list. */
interface UserRecord {
  sessions: (string | ListedSession)[]
  cookie: { expires: string }
}

/** One record per session, whatever the number of rotations: a token names its session. */
interface SessionRecord {
  identity: Identity
  tokenHash: string
  expiresAt: number
  /** The token a rotation with a grace replaced: its hash, and until when. Every write sets or drops it. */
  previous?: { tokenHash: string, until: number } | undefined
}

// Stores such as connect-redis take a record's lifetime from `cookie.expires`; memorystore, better-sqlite3-session-store
// and connect-memcached from `cookie.maxAge`, as express-session's Cookie has it, and a day without it.
function lifetime (expiresAt: number) {
  const maxAge = expiresAt - Date.now()
  return { cookie: { expires: new Date(expiresAt).toISOString(), originalMaxAge: maxAge, maxAge } }
}

/**
 * @param options.prefix what the keys start with (default `realtime:`)
 * @param options.maxSessionsPerUser sessions one user keeps; a new one past it ends those that expire first (default
 * 100, as the plugin's own stores)
 */
export function fromFastifySessionStore (store: CallbackSessionStore, options: { prefix?: string, maxSessionsPerUser?: number } = {}): SessionStore {
  const calls = new CallbackCalls(store)
  const adapted = adapt(calls, options)
  // Not enumerable: the store's shape is the contract's.
  Object.defineProperty(adapted, onRegistration, {
    value: (log: FastifyBaseLogger) => {
      calls.logTo(log)
      return useStorePrefix(store, options.prefix ?? 'realtime:', log)
    }
  })
  return adapted
}

function adapt (calls: CallbackCalls, options: { prefix?: string, maxSessionsPerUser?: number }): SessionStore {
  const prefix = options.prefix ?? 'realtime:'
  const maxSessionsPerUser = sessionsPerUser(options.maxSessionsPerUser)
  const get = (id: string) => calls.get(id)
  const setNow = (id: string, record: object) => calls.set(id, record)
  const destroyNow = (id: string) => calls.destroy(id)
  // Not atomic: the deadline is checked before each write, so no write starts once the caller has given up.
  const set = (deadline: number, id: string, record: object) => { refuseLate(deadline); return setNow(id, record) }
  const destroy = (deadline: number, id: string) => { refuseLate(deadline); return destroyNow(id) }
  const sessionKey = (id: string) => `${prefix}session:${id}`
  const userKey = (user: string) => `${prefix}user-sessions:${user}`

  async function find (sessionId: string): Promise<SessionRecord | null> {
    const record = await get(sessionKey(sessionId)) as SessionRecord | null | undefined
    if (!record) return null
    // Not every store expires records (@fastify/session's MemoryStore keeps them until told): the expiry is checked
    // here too, and a lapsed one destroyed, best effort, without keeping the caller waiting.
    if (record.expiresAt > Date.now()) return record
    sessionChanges.take(sessionId, Date.now(), () => destroyIfLapsed(sessionId)).catch(() => {})
    return null
  }

  // Read again in the session's turn: a rotation may have written the record since the read that saw it lapsed.
  async function destroyIfLapsed (sessionId: string): Promise<void> {
    const record = await get(sessionKey(sessionId)) as SessionRecord | null | undefined
    if (record && record.expiresAt <= Date.now()) await destroyNow(sessionKey(sessionId))
  }

  // Each change of a user's list waits for the one before: two logins at once would each write back the list as it was
  // before the other's, and one session would be missing from it, out of reach of `endUser` (revokeUser). A store that
  // never answers holds the user's next change a minute, not for good.
  const listChanges = new Turns()
  const changeList = <T>(user: string, deadline: number, change: () => Promise<T>) => listChanges.take(user, deadline, change)
  // Each rotation or end of a session waits for the one before, so that of two uses of one token at once in this
  // process one rotates and the other is reuse, and a rotation does not write back a session a logout has just ended.
  // Ends by endUser and the user's limit are made in the user's turn instead: a rotation writes in that turn too, and
  // reads the session again there. Across processes, read-then-write cannot promise it.
  const sessionChanges = new Turns()

  // Async, so that one past its deadline rejects rather than throws: the list written beside it is waited for too.
  const save = async (deadline: number, id: string, record: SessionRecord) => {
    const { identity, tokenHash, expiresAt, previous } = record
    await set(deadline, sessionKey(id), { identity, tokenHash, expiresAt, ...previous && { previous }, ...lifetime(expiresAt) })
  }

  const toSession = (id: string, record: SessionRecord): RefreshSession =>
    ({ id, identity: record.identity, tokenHash: record.tokenHash, expiresAt: record.expiresAt })

  /** The user's listed sessions not yet past. */
  async function listed (user: string): Promise<ListedSession[]> {
    const list = await get(userKey(user)) as UserRecord | null | undefined
    if (!list) return []
    const lapsesAt = Date.parse(list.cookie.expires)
    const now = Date.now()
    const sessions = list.sessions.map(listedSession => typeof listedSession === 'string' ? { id: listedSession, expiresAt: lapsesAt } : listedSession)
    // The lapsed ones' records are read, not destroyed blindly: one refreshed on another process, whose list write was
    // lost, lives on. `find` destroys those past.
    for (const lapsed of sessions.filter(listedSession => listedSession.expiresAt <= now)) find(lapsed.id).catch(() => {})
    return sessions.filter(listedSession => listedSession.expiresAt > now)
  }

  /** Writes the list back; it lives as long as the longest of its sessions, and goes once it has none. */
  async function relist (user: string, sessions: ListedSession[], deadline: number): Promise<void> {
    if (sessions.length === 0) return await destroy(deadline, userKey(user))
    await set(deadline, userKey(user), { sessions, ...lifetime(Math.max(...sessions.map(listedSession => listedSession.expiresAt))) })
  }

  /** The user's listed sessions but this one, the ones that expire first first. */
  const othersListed = async (user: string, id: string) =>
    (await listed(user)).filter(listedSession => listedSession.id !== id).sort((a, b) => a.expiresAt - b.expiresAt)

  /**
   * Sets (or drops, with expiresAt null) one session on its user's list, and forgets the ones past. Past `keep`, the
   * ones that expire first are ended, then left off: resolves their ids. Ended first, or one whose end failed would be
   * live and listed nowhere, out of reach of endUser.
   */
  const listSession = (user: string, id: string, expiresAt: number | null, deadline: number, keep = Infinity) => changeList(user, deadline, async () => {
    // Past `keep`, the others that expire first go. Never this one, which would expire first once the refresh lifetime
    // was lowered: its login would hand out the tokens of a session it had just ended.
    const others = await othersListed(user, id)
    const over = others.splice(0, Math.max(0, others.length + (expiresAt === null ? 0 : 1) - keep))
    const sessions = expiresAt === null ? others : [...others, { id, expiresAt }]
    await Promise.all(over.map(listedSession => endAlone(listedSession.id, deadline)))
    await relist(user, sessions, deadline)
    return over.map(listedSession => listedSession.id)
  })

  async function lookup ({ sessionId, tokenHash }: PresentedToken): Promise<TokenLookup> {
    const record = await find(sessionId)
    if (!record) return { status: 'unknown' }
    if (record.tokenHash === tokenHash) return { status: 'current', session: toSession(sessionId, record) }
    const { previous } = record
    if (previous?.tokenHash === tokenHash && previous.until > Date.now()) return { status: 'previous', session: toSession(sessionId, record) }
    return { status: 'reused', sessionId }
  }

  /** Ends the session alone; its user's list is the caller's to change. */
  async function endAlone (sessionId: string, deadline: number): Promise<Identity | null> {
    const record = await find(sessionId)
    if (!record) return null
    await destroy(deadline, sessionKey(sessionId))
    return record.identity
  }

  return {
    async create (session, deadline) {
      await save(deadline, session.id, session)
      return await listSession(session.identity.user, session.id, session.expiresAt, deadline, maxSessionsPerUser)
    },

    rotate: (token, nextTokenHash, expiresAt, deadline, grace) => sessionChanges.take(token.sessionId, deadline, async (): Promise<RotateResult> => {
      // Read first to know whose turn to take; read again in it, with the list, as endUser and the user's limit end
      // sessions in that turn: one that read the record before they destroyed it would write it back.
      const first = await lookup(token)
      if (first.status !== 'current') return first
      const user = first.session.identity.user
      return await changeList(user, deadline, async () => {
        const [again, others] = await Promise.all([lookup(token), othersListed(user, token.sessionId)])
        if (again.status !== 'current') return again
        // The list and the record at once, so that the last write starts two calls in, not three: a store answering
        // in under half the write deadline (500 ms) a call can rotate. One that lands while the other fails leaves the
        // session listed shorter than it lives only where the rotation answered 503: nobody holds its next token, and
        // the retry with the one before is reuse, which ends it.
        const session = { ...again.session, tokenHash: nextTokenHash, expiresAt }
        const previous = grace && { tokenHash: token.tokenHash, until: Date.now() + grace.ms }
        await Promise.all([relist(user, [...others, { id: token.sessionId, expiresAt }], deadline), save(deadline, token.sessionId, { ...session, previous })])
        return { status: 'rotated', session }
      })
    }),

    lookup,

    end: (sessionId, deadline) => sessionChanges.take(sessionId, deadline, async () => {
      const identity = await endAlone(sessionId, deadline)
      // Best effort: the session has ended whatever happens here, and an id left on the list is skipped by endUser.
      if (identity) await listSession(identity.user, sessionId, null, deadline).catch(() => {})
      return identity
    }),

    endUser: (user, deadline) => changeList(user, deadline, async () => {
      // Each batch gets the time the whole call was given, counted from when it starts, as on Redis.
      const window = deadline - Date.now()
      const sessions = (await listed(user)).sort((a, b) => b.expiresAt - a.expiresAt)
      const ended: string[] = []
      do {
        refuseLate(deadline)
        const batchDeadline = Date.now() + window
        const batch = sessions.splice(0, endUserBatch)
        const identities = await Promise.all(batch.map(listedSession => endAlone(listedSession.id, batchDeadline)))
        ended.push(...batch.filter((_listedSession, i) => identities[i] !== null).map(listedSession => listedSession.id))
        await relist(user, sessions, batchDeadline)
      } while (sessions.length > 0)
      return ended
    })
  }
}
