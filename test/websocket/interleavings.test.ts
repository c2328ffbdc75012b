// Model-based: random schedules of what races on authenticated JSON sockets (auth messages of every form, checked by
// a slow `verifyCredentials` and a slow `onAuthenticate` the test answers in the order fast-check picks, the token's
// expiry on a fake clock, revocations, handlers that await then send, pushes, closes from either side, a dropped TCP
// connection, the app's close). After every step: no frame meant for one user reaches a socket its client was told
// is someone else's, every auth message gets one answer, in order, with a code the contract gives, no revoked or
// expired credential is held, the registry and its indexes agree with what is open; after the run nothing is left.
// Seeded: INTERLEAVINGS_SEED=<integer> replays a run; INTERLEAVINGS_RUNS=<n> runs more schedules.
import t from 'tap'
import fc from 'fast-check'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import WebSocket from 'ws'
import type { Socket } from 'node:net'
import realtime, { MemorySessionStore, type Identity, type MessageHandler, type PasswordCredential, type SessionStore } from '../../lib/index.js'
import type { Connection } from '../../lib/connection/connection.js'
import { recordCrashes, secret } from '../helpers.js'
import {
  isObject, onFrames, pickOpen, Reached, Run, scheduleSettings, sharedSteps, socketIndex, ttlMs, turns, users, type Opened, type SharedStep
} from '../interleavings.js'

const { seed, numRuns } = scheduleSettings(t, 25)

const crashes = recordCrashes(t)
/** What the schedules reached: answers by code, slow parts answered by kind. */
const reached = new Reached()

const passwords: Record<string, string> = { 'a@example.com': 'pw-a', 'b@example.com': 'pw-b' }
const userOfEmail: Record<string, string> = { 'a@example.com': 'A', 'b@example.com': 'B' }

// --- the schedule ---------------------------------------------------------------------------------------------------

type Cred = 'pwA' | 'pwB' | 'pwWrong' | 'tokA' | 'tokB' | 'refresh' | 'stale' | 'garbage'
type Step =
  | SharedStep
  | { kind: 'auth', socket: number, cred: Cred, verdict: boolean }
  | { kind: 'handler', socket: number }
  | { kind: 'revokeSession', socket: number }
  | { kind: 'push', user: 'A' | 'B' }
  | { kind: 'ping', socket: number }

const step: fc.Arbitrary<Step> = fc.oneof(
  ...sharedSteps(16),
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('auth' as const),
      socket: socketIndex,
      cred: fc.constantFrom<Cred>('pwA', 'pwB', 'pwWrong', 'tokA', 'tokB', 'refresh', 'stale', 'garbage'),
      verdict: fc.nat(3).map(n => n > 0)
    })
  },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('handler' as const), socket: socketIndex }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('revokeSession' as const), socket: socketIndex }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('push' as const), user: fc.constantFrom<'A' | 'B'>('A', 'B') }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('ping' as const), socket: socketIndex }) }
)
const schedule = fc.tuple(fc.constantFrom('public' as const, 'handshake' as const), fc.array(step, { minLength: 20, maxLength: 60 }))

// --- the slow parts -------------------------------------------------------------------------------------------------

/** A slow part the test answers when the schedule says: a password check, an `onAuthenticate`, a handler's await. */
interface Slow {
  what: string
  answer: () => void
}

// --- the client's side ----------------------------------------------------------------------------------------------

interface PendingAuth {
  uid: string
  cred: Cred
  /** Whose the credential is (null: nobody's), and the refresh token sent, for the refresh forms. */
  user: string | null
  refreshToken?: string
  verdict: boolean
  /** Something happened since it was sent that may refuse it (an expiry, a revocation, a refresh token used). */
  excused: boolean
  /** The clock moved since it was sent: a check may have run out of time (SERVICE_UNAVAILABLE). */
  timedOut: boolean
  /** Sent while the socket's handshake was due: its refusal ends the socket. */
  handshake: boolean
}

interface Sock extends Opened {
  index: number
  /** The auth messages sent and not yet answered, in order. */
  pending: PendingAuth[]
  /** Whose the socket is, as its client was told, frame by frame. */
  view: string | null
  /** Whether the client has been told of anything yet (handshake mode: the first message must be an auth). */
  handshakeDone: boolean
  refreshToken: string | null
  /** The form of the credential its client was told it holds: the app's `request.user` shows a token's alone. */
  heldCred: Cred | null
  /** Every auth message sent, and how many of them its server has answered (frames it wrote). */
  sent: PendingAuth[]
  answered: number
  closed: boolean
  errors: string[]
}

// --- one run --------------------------------------------------------------------------------------------------------

async function run (mode: 'public' | 'handshake', steps: Step[]): Promise<void> {
  const world = new Run()
  const { clock } = world
  const slow: Slow[] = []
  /** Answers the slow part that waited longest: false when none waits. */
  const answerOne = () => {
    const part = slow.shift()
    part?.answer()
    return part !== undefined
  }
  const socks: Sock[] = []
  const problems: string[] = []
  const fail = (problem: string) => { problems.push(problem) }
  /** When each user was last revoked (the step), and when each socket took its credential. */
  /** Each user's revocations: the step it began and the second it was in, the step it resolved and the second then. */
  const revocations = new Map<string, { step: number, second: number, ms: number, endStep: number, endSecond: number, endMs: number }[]>()
  /** Each user's revocations as they begin: a process signs by the one it knows of from then, resolved or not. */
  const begun = new Map<string, { step: number, second: number, ms: number }[]>()
  const revoking: Promise<void>[] = []
  const taken = new Map<Connection, { step: number, user: string, expiresAt: number }>()
  const usedRefresh = new Set<string>()
  /** Refresh tokens a refresh answered `ok` with: replaced for good. */
  const rotated = new Set<string>()
  /** Refresh tokens a revocation of their session may have ended. */
  const doubtful = new Set<string>()
  const refreshUser = new Map<string, string>()
  let stepNo = 0
  let app: FastifyInstance | null = null
  try {
    const verifyCredentials = ({ email, password }: PasswordCredential) => new Promise<Identity | null>(resolve => {
      slow.push({ what: `password ${email}`, answer: () => resolve(passwords[email] === password ? users[userOfEmail[email]!]! : null) })
    })
    // One check at a time per socket: the message checked is the first its server has not answered yet.
    const onAuthenticate = ({ request }: { request: FastifyRequest }) => new Promise<boolean>(resolve => {
      const sock = socks.find(s => s.conn.request === request)!
      const verdict = sock.sent[sock.answered]!.verdict
      slow.push({ what: 'onAuthenticate', answer: () => resolve(verdict) })
    })
    const handler: MessageHandler = (message, connection, context) => new Promise<void>(resolve => {
      slow.push({
        what: 'handler',
        answer: () => {
          if (!context.signal.aborted && connection.accountability.user !== context.accountability.user) {
            fail(`a handler's signal had not aborted, its accountability ${context.accountability.user} and the socket's ${connection.accountability.user}`)
          }
          context.send({ type: 'secret', uid: message.uid, for: context.accountability.user })
          connection.send({ type: 'now', uid: message.uid, for: connection.accountability.user })
          resolve()
        }
      })
    })
    // A slow store: a login's session and a refresh's rotation wait for the schedule too.
    const store = new MemorySessionStore()
    const slowly = <A extends unknown[], R>(what: string, call: (...args: A) => Promise<R>) => (...args: A) =>
      new Promise<R>((resolve, reject) => { slow.push({ what, answer: () => { call(...args).then(resolve, reject) } }) })
    const sessionStore: SessionStore = {
      create: slowly('create', store.create.bind(store)),
      rotate: slowly('rotate', store.rotate.bind(store)),
      unrotate: store.unrotate.bind(store),
      lookup: store.lookup.bind(store),
      end: store.end.bind(store),
      endUser: slowly('endUser', store.endUser.bind(store))
    }
    app = Fastify()
    // The app's own @fastify/jwt: `request.user` follows the token the socket holds.
    await app.register(fastifyJwt, { secret })
    await app.register(realtime, {
      env: {},
      secret,
      verifyCredentials,
      onAuthenticate,
      sessionStore,
      attemptLimit: false,
      accessTokenTtl: `${ttlMs}ms`,
      heartbeat: { enabled: false },
      rest: { auth: mode, authTimeout: 2, handlers: { slow: handler } }
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as { port: number }
    const api = app.realtime
    const registry = () => world.registry()!

    const onFrame = (sock: Sock, frame: unknown) => {
      const problem = (what: string) => sock.errors.push(`socket ${sock.index}: ${what} (${JSON.stringify(frame)})`)
      if (!isObject(frame)) return problem('a frame that is no object')
      reached.count(`${String(frame.type)} ${isObject(frame.error) ? String(frame.error.code) : String(frame.status ?? '')}`.trim())
      if (frame.type === 'secret' || frame.type === 'now' || frame.type === 'push') {
        if (frame.for !== sock.view) problem(`a frame for ${String(frame.for)} on a socket its client was told is ${sock.view}'s`)
        return
      }
      if (frame.type === 'pong') return
      if (frame.type !== 'auth') return problem('an unexpected frame')
      if (frame.uid === undefined) {
        // An ended credential, or an auth window that ran out.
        const code = isObject(frame.error) ? frame.error.code : undefined
        if (code === 'TOKEN_EXPIRED' || code === 'AUTH_REVOKED') sock.view = null
        else if (!(code === 'AUTH_TIMEOUT' || (code === 'AUTH_FAILED' && !sock.handshakeDone))) problem('an auth frame without uid')
        return
      }
      const head = sock.pending.shift()
      if (head === undefined) {
        // The handshake's refusal of a first message that was no auth message.
        if (!(mode === 'handshake' && !sock.handshakeDone && isObject(frame.error) && frame.error.code === 'AUTH_FAILED')) problem('an answer to no auth message')
        sock.handshakeDone = true
        return
      }
      if (frame.uid !== head.uid) return problem(`the answer to ${String(frame.uid)} where ${head.uid} was due`)
      sock.handshakeDone = true
      if (frame.status === 'ok') {
        if (head.user === null || !head.verdict) problem(`${head.cred} (verdict ${head.verdict}) accepted`)
        sock.view = head.user
        sock.heldCred = head.cred
        if (head.refreshToken !== undefined) rotated.add(head.refreshToken)
        if (typeof frame.refresh_token === 'string') {
          sock.refreshToken = frame.refresh_token
          refreshUser.set(frame.refresh_token, head.user!)
        }
        return
      }
      const code = isObject(frame.error) ? frame.error.code : undefined
      if (code === 'SERVICE_UNAVAILABLE') {
        if (!head.timedOut) problem(`${head.cred} answered SERVICE_UNAVAILABLE with no time past`)
        return
      }
      if (code !== 'AUTH_FAILED') return problem(`${head.cred} answered ${String(code)}`)
      if (head.user !== null && head.verdict && !head.excused) problem(`${head.cred} refused with nothing to refuse it`)
      sock.view = null
    }

    const open = async () => {
      if (socks.filter(s => !s.closed).length >= 3) return
      const { ws, conn } = await world.open(`ws://127.0.0.1:${port}/websocket`)
      const sock: Sock = { index: socks.length, ws, conn, pending: [], view: null, handshakeDone: mode === 'public', refreshToken: null, heldCred: null, sent: [], answered: 0, closed: false, errors: [] }
      onFrames(ws, frame => { onFrame(sock, frame) })
      ws.on('close', () => { sock.closed = true })
      const send = conn.socket.send.bind(conn.socket) as (data: unknown) => void
      conn.socket.send = ((data: unknown, ...rest: unknown[]) => {
        if (typeof data === 'string' && data.startsWith('{"type":"auth"') && data.includes('"uid":"a')) sock.answered++
        ;(send as (...args: unknown[]) => void)(data, ...rest)
      }) as typeof conn.socket.send
      socks.push(sock)
    }

    const pick = (index: number) => pickOpen(socks, index)

    let uid = 0
    const auth = (sock: Sock, cred: Cred, verdict: boolean) => {
      const id = `a${++uid}`
      let message: Record<string, unknown>
      let user: string | null = null
      let refreshToken: string | undefined
      let usedTwice = false
      switch (cred) {
        case 'pwA': message = { email: 'a@example.com', password: 'pw-a' }; user = 'A'; break
        case 'pwB': message = { email: 'b@example.com', password: 'pw-b' }; user = 'B'; break
        case 'pwWrong': message = { email: 'a@example.com', password: 'nope' }; break
        case 'tokA': message = { access_token: api.signAccessToken(users.A!).access_token }; user = 'A'; break
        case 'tokB': message = { access_token: api.signAccessToken(users.B!).access_token }; user = 'B'; break
        case 'refresh':
        case 'stale': {
          refreshToken = cred === 'refresh' ? sock.refreshToken ?? undefined : [...usedRefresh][0]
          if (refreshToken === undefined) return
          message = { refresh_token: refreshToken }
          // Used before and rotated: refused. Used before with no rotation known yet (in flight, or refused after its
          // rotation, which is then undone for the client that never got the new token): either answer may come.
          user = rotated.has(refreshToken) ? null : refreshUser.get(refreshToken) ?? null
          usedTwice = usedRefresh.has(refreshToken)
          usedRefresh.add(refreshToken)
          break
        }
        default: message = { access_token: 'not.a.token' }
      }
      // A refresh token another auth message is about to use may be refused as used.
      for (const other of socks) for (const p of other.pending) if (refreshToken !== undefined && p.refreshToken === refreshToken) p.excused = true
      const handshake = !sock.handshakeDone && sock.pending.length === 0
      const pending: PendingAuth = { uid: id, cred, user, refreshToken, verdict, excused: usedTwice || (refreshToken !== undefined && doubtful.has(refreshToken)), timedOut: false, handshake }
      sock.pending.push(pending)
      sock.sent.push(pending)
      sock.ws.send(JSON.stringify({ type: 'auth', uid: id, ...message }))
    }

    const quiet = () => world.quiet(socks, () => slow.length, sock => (sock as Sock).closed)

    api.on('auth', ({ connection }) => {
      const conn = connection as Connection
      const user = conn.accountability.user!
      taken.set(conn, { step: stepNo, user, expiresAt: Date.now() + ttlMs })
    })

    const check = () => {
      for (const sock of socks) problems.push(...sock.errors.splice(0))
      const reg = registry()
      if (reg === undefined) return
      // A socket paused with frames waiting behind a check reads nothing, its client's leaving included (inbox.ts): it
      // is seen to go once the check has answered.
      const unread = (conn: Connection) => conn.guard.beingChecked || (conn.socket as WebSocket & { isPaused: boolean }).isPaused
      const open = [...reg.matching()].filter(conn => !unread(conn))
      const live = socks.filter(s => !s.closed && !unread(s.conn))
      if (open.length !== live.length) fail(`${open.length} connections in the registry, ${live.length} sockets open`)
      const usersHeld = new Set<string>()
      const sessions = new Set<string>()
      for (const conn of reg.matching()) {
        const { user, session } = conn.accountability
        if (user !== null) usersHeld.add(user)
        if (session !== undefined) sessions.add(session)
      }
      for (const conn of open) {
        const { user } = conn.accountability
        if (conn.guard.user !== user) fail('the guard and the accountability disagree')
        if (user !== null) {
          const held = taken.get(conn)
          if (held === undefined || held.user !== user) fail(`a socket holds ${user} without an auth event for it`)
          else {
            // A token without a session signed after a revocation, in its second, reads as issued the second after: a
            // second revocation in that same second does not refuse it (README, `trusted` and `revokeUser`).
            const revs = revocations.get(user) ?? []
            const sessionless = conn.accountability.session === undefined
            // A login or refresh that raced a revocation is ended by it, however slow the store was.
            // Nor does a revocation stamped in the very millisecond of one the login knew of, which it counts from the
            // millisecond after (README, `trusted` and `revokeUser`).
            const known = (begun.get(user) ?? []).filter(r0 => r0.step <= held.step)
            const knownMs = (r: { step: number }) => [...known.filter(r0 => r0.step < r.step).map(r0 => r0.ms),
              ...revs.filter(r0 => r0.step < r.step && r0.endStep <= held.step).map(r0 => r0.endMs)]
            const ending = revs.find(r => r.endStep > held.step &&
              !(sessionless && known.some(r0 => r0.second === r.endSecond)) && !knownMs(r).includes(r.endMs))
            if (ending !== undefined) fail(`a socket holds ${user}, revoked at step ${ending.step} after it took it at ${held.step}`)
            if (Date.now() >= held.expiresAt + 1000) fail(`a socket holds ${user}'s credential past its expiry`)
          }
        }
        const sock = socks.find(s => s.conn === conn && !s.closed)
        if (sock !== undefined && sock.view !== user) fail(`socket ${sock.index} is ${user}'s on the server, ${sock.view}'s as its client was told`)
        const requestUser = (conn.request as FastifyRequest & { user?: { id?: string } | null }).user ?? null
        const byToken = user !== null && (sock?.heldCred === 'tokA' || sock?.heldCred === 'tokB')
        if (byToken ? requestUser?.id !== user : requestUser !== null) fail(`request.user is ${JSON.stringify(requestUser)} on a socket of ${user} (${sock?.heldCred})`)
      }
      const { users: indexedUsers, sessions: indexedSessions } = reg.indexed
      if (indexedUsers !== usersHeld.size) fail(`${indexedUsers} users indexed, ${usersHeld.size} held`)
      if (indexedSessions !== sessions.size) fail(`${indexedSessions} sessions indexed, ${sessions.size} held`)
      if (crashes.length > 0) fail(`crashed: ${String(crashes[0])}`)
    }

    // Three sockets to begin with; an `open` step opens another as one goes.
    for (let i = 0; i < 3; i++) await open()
    for (const s of steps) {
      stepNo++
      const sock = 'socket' in s ? pick(s.socket) : undefined
      switch (s.kind) {
        case 'open': await open(); break
        case 'auth': if (sock) auth(sock, s.cred, s.verdict); break
        case 'handler': if (sock) sock.ws.send(JSON.stringify({ type: 'slow', uid: `h${++uid}` })); break
        case 'ping': if (sock) sock.ws.send(JSON.stringify({ type: 'ping', uid: `p${++uid}` })); break
        case 'resolve': {
          const part = slow.splice(s.pick % Math.max(1, slow.length), 1)[0]
          if (part) reached.count(`answered ${part.what.split(' ')[0]!}`)
          part?.answer()
          break
        }
        case 'tick':
          for (const other of socks) for (const p of other.pending) { p.excused = true; p.timedOut = true }
          clock.tick(s.ms)
          break
        case 'revokeUser':
        {
          // Its store call (`endUser`) is slow too: the schedule goes on, and answers it when it says.
          const { user } = s
          const began = { step: stepNo, second: Math.floor(Date.now() / 1000), ms: Date.now() }
          begun.set(user, [...begun.get(user) ?? [], began])
          for (const other of socks) for (const p of other.pending) if (p.user === user) p.excused = true
          for (const [token, owner] of refreshUser) if (owner === user) usedRefresh.add(token)
          const ended = () => {
            revocations.set(user, [...revocations.get(user) ?? [], { ...began, endStep: stepNo, endSecond: Math.floor(Date.now() / 1000), endMs: Date.now() }])
            // Pending ones may have been checked against what is now revoked.
            for (const other of socks) for (const p of other.pending) if (p.user === user) p.excused = true
          }
          // A store that gave up part-way (its deadline on the fake clock) has still stamped the revocation.
          revoking.push(api.revokeUser(user).then(ended, ended))
          break
        }
        case 'revokeSession': {
          const session = sock?.conn.accountability.session
          if (session === undefined) break
          for (const other of socks) for (const p of other.pending) if (p.refreshToken !== undefined) p.excused = true
          for (const token of refreshUser.keys()) doubtful.add(token)
          await api.revokeSession(session)
          break
        }
        case 'push': api.send({ user: s.user }, { type: 'push', for: s.user }); break
        case 'serverClose': if (sock) api.close({ user: sock.conn.accountability.user }, 4000); break
        case 'clientClose': if (sock) sock.ws.close(); break
        case 'drop': if (sock) (sock.ws as unknown as { _socket: Socket })._socket.destroy(); break
      }
      await quiet()
      check()
      if (problems.length > 0) break
    }

    // The app closes with checks still in flight: it waits for them, which the test answers one after the other.
    if (problems.length === 0) {
      await world.close(app, answerOne)
      while (answerOne());
      await Promise.all(revoking)
      await quiet()
      app = null
      check()
      const openSocks = socks.filter(s => !s.closed)
      if (openSocks.length > 0) fail(`${openSocks.length} clients not closed after the app's close`)
      while (answerOne());
      await turns(5)
      for (const left of world.leftovers()) fail(left)
      if (crashes.length > 0) fail(`crashed: ${String(crashes[0])}`)
    }
  } finally {
    for (const s of socks) s.ws.terminate()
    while (answerOne());
    if (app !== null) await world.close(app, answerOne)
    world.end()
  }
  if (problems.length > 0) throw new Error(`${mode}, step ${stepNo} (${JSON.stringify(steps[stepNo - 1])}): ${problems.join('; ')}`)
}

t.test('random schedules on a few authenticated sockets keep every invariant', async t => {
  await fc.assert(fc.asyncProperty(schedule, async ([mode, steps]) => { await run(mode, steps) }), { seed, numRuns })
  t.pass(`${numRuns} schedules`)
  t.comment(String(reached))
})
