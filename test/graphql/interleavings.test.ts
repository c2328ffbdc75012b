// Model-based: random schedules of what races on GraphQL sockets (a `connection_init` checked by a slow
// `onAuthenticate` the test answers when fast-check says, subscriptions whose events the test pushes, the token's
// expiry on a fake clock, `revokeUser`, closes from either side, a dropped TCP connection, the app's close). After
// every step: every `next` a socket gets is computed for the user it was acknowledged as, a socket whose credential
// ended is closed 4403, every `connection_init` is answered once (an ack, or the close the table gives), the registry
// agrees with what is open; after the run nothing is left. Seeded: INTERLEAVINGS_SEED=<integer> replays a run;
// INTERLEAVINGS_RUNS=<n> runs more schedules.
import t from 'tap'
import fc from 'fast-check'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import type { Socket } from 'node:net'
import { EventEmitter, on } from 'node:events'
import { GraphQLObjectType, GraphQLSchema, GraphQLString } from 'graphql'
import realtime, { type GraphqlContext } from '../../lib/index.js'
import type { Connection } from '../../lib/connection/connection.js'
import { recordCrashes, secret } from '../helpers.js'
import {
  isObject, onFrames, pickOpen, Reached, Run, scheduleSettings, sharedSteps, socketIndex, ttlMs, turns, users, type Opened, type SharedStep
} from '../interleavings.js'

const { seed, numRuns } = scheduleSettings(t, 20)

const crashes = recordCrashes(t)
const reached = new Reached()

type Cred = 'tokA' | 'tokB' | 'garbage'
type Step =
  | SharedStep
  | { kind: 'init', socket: number, cred: Cred, verdict: boolean }
  | { kind: 'subscribe', socket: number }
  | { kind: 'emit' }

const step: fc.Arbitrary<Step> = fc.oneof(
  ...sharedSteps(8),
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('init' as const),
      socket: socketIndex,
      cred: fc.constantFrom<Cred>('tokA', 'tokB', 'garbage'),
      verdict: fc.nat(3).map(n => n > 0)
    })
  },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('subscribe' as const), socket: socketIndex }) },
  { weight: 5, arbitrary: fc.constant({ kind: 'emit' as const }) }
)
const schedule = fc.array(step, { minLength: 20, maxLength: 50 })

interface Sock extends Opened {
  index: number
  /** The init sent and not answered: whose credential, and what the app's hook answers. */
  init: { user: string | null, verdict: boolean, excused: boolean } | null
  initSent: boolean
  /** Whose the socket is, as its client was told (its ack). */
  acked: string | null
  /** The close that ended it, once the client has it. */
  closed: number | null
  errors: string[]
}

async function run (steps: Step[]): Promise<void> {
  const world = new Run()
  const { clock } = world
  const slow: (() => void)[] = []
  /** Answers the slow part that waited longest: false when none waits. */
  const answerOne = () => {
    const answer = slow.shift()
    answer?.()
    return answer !== undefined
  }
  const socks: Sock[] = []
  const problems: string[] = []
  const fail = (problem: string) => { problems.push(problem) }
  const bus = new EventEmitter()
  bus.setMaxListeners(0)
  /** When each user was last revoked (the step), and when each socket took its credential. */
  const revocations = new Map<string, { step: number, second: number }[]>()
  const taken = new Map<Connection, { step: number, user: string, expiresAt: number }>()
  let stepNo = 0
  let app: FastifyInstance | null = null
  try {
    const onAuthenticate = ({ request }: { request: FastifyRequest }) => new Promise<boolean>(resolve => {
      const sock = socks.find(s => s.conn.request === request)!
      const verdict = sock.init?.verdict ?? true
      slow.push(() => resolve(verdict))
    })
    const schema = new GraphQLSchema({
      query: new GraphQLObjectType({ name: 'Query', fields: { hello: { type: GraphQLString } } }),
      subscription: new GraphQLObjectType({
        name: 'Subscription',
        fields: {
          feed: {
            type: GraphQLString,
            subscribe: async function * (_root: unknown, _args: unknown, { signal, accountability }: GraphqlContext) {
              const events = on(bus, 'event', { signal })
              while (!(await events.next()).done) yield { feed: accountability.user }
            }
          }
        }
      })
    })
    app = Fastify()
    await app.register(realtime, {
      env: {},
      secret,
      onAuthenticate,
      accessTokenTtl: `${ttlMs}ms`,
      heartbeat: { enabled: false },
      rest: false,
      graphql: { schema, auth: 'handshake', authTimeout: 2 }
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as { port: number }
    const api = app.realtime
    const registry = () => world.registry()

    const onFrame = (sock: Sock, frame: unknown) => {
      const problem = (what: string) => sock.errors.push(`socket ${sock.index}: ${what} (${JSON.stringify(frame)})`)
      if (!isObject(frame)) return problem('a frame that is no object')
      reached.count(String(frame.type))
      if (frame.type === 'connection_ack') {
        const init = sock.init
        if (init === null) return problem('an ack of no connection_init')
        if (init.user === null || !init.verdict) problem('a credential the check refuses acknowledged')
        sock.acked = init.user
        sock.init = null
        return
      }
      if (frame.type === 'next') {
        const data = isObject(frame.payload) && isObject(frame.payload.data) ? frame.payload.data : {}
        if (data.feed !== sock.acked) problem(`an event for ${String(data.feed)} on a socket acknowledged as ${sock.acked}`)
        return
      }
      if (frame.type === 'complete' || frame.type === 'error') return
      problem('an unexpected frame')
    }

    const open = async () => {
      if (socks.filter(s => s.closed === null).length >= 3) return
      const { ws, conn } = await world.open(`ws://127.0.0.1:${port}/graphql`, 'graphql-transport-ws')
      const sock: Sock = { index: socks.length, ws, conn, init: null, initSent: false, acked: null, closed: null, errors: [] }
      onFrames(ws, frame => { onFrame(sock, frame) })
      ws.on('close', (code) => {
        sock.closed = code
        reached.count(`close ${code}`)
        const { init } = sock
        if (init !== null && code === 4403 && init.user !== null && init.verdict && !init.excused) {
          sock.errors.push(`socket ${sock.index}: a connection_init of ${init.user} refused with nothing to refuse it`)
        }
      })
      socks.push(sock)
    }

    const pick = (index: number) => pickOpen(socks, index)

    let ids = 0
    const quiet = () => world.quiet(socks, () => slow.length, sock => (sock as Sock).closed)

    api.on('auth', ({ connection }) => {
      const conn = connection as Connection
      taken.set(conn, { step: stepNo, user: conn.accountability.user!, expiresAt: Date.now() + ttlMs })
    })

    const check = () => {
      for (const sock of socks) problems.push(...sock.errors.splice(0))
      const reg = registry()
      if (reg === undefined) return
      const open = [...reg.matching()]
      const live = socks.filter(s => s.closed === null)
      if (open.length !== live.length) fail(`${open.length} connections in the registry, ${live.length} sockets open`)
      const usersHeld = new Set<string>()
      for (const conn of open) {
        const { user } = conn.accountability
        if (user === null) continue
        usersHeld.add(user)
        const held = taken.get(conn)
        if (held === undefined || held.user !== user) fail(`a socket holds ${user} without an auth event for it`)
        else {
          // A token without a session signed after a revocation, in its second, reads as issued the second after: a
          // second revocation in that same second does not refuse it (README, `trusted` and `revokeUser`).
          const revs = revocations.get(user) ?? []
          const ending = revs.find(r => r.step > held.step && !revs.some(r0 => r0.step <= held.step && r0.second === r.second))
          if (ending !== undefined) fail(`a socket holds ${user}, revoked at step ${ending.step} after it took it at ${held.step}`)
          if (Date.now() >= held.expiresAt + 1000) fail(`a socket holds ${user}'s credential past its expiry`)
        }
        const sock = socks.find(s => s.conn === conn)
        if (sock !== undefined && sock.acked !== user) fail(`socket ${sock.index} is ${user}'s on the server, ${sock.acked}'s as its client was told`)
      }
      if (reg.indexed.users !== usersHeld.size) fail(`${reg.indexed.users} users indexed, ${usersHeld.size} held`)
      if (crashes.length > 0) fail(`crashed: ${String(crashes[0])}`)
    }

    for (let i = 0; i < 3; i++) await open()
    for (const s of steps) {
      stepNo++
      const sock = 'socket' in s ? pick(s.socket) : undefined
      switch (s.kind) {
        case 'open': await open(); break
        case 'init': {
          // A second connection_init closes the socket 4429: a client library sends one.
          if (!sock || sock.initSent) break
          const user = s.cred === 'garbage' ? null : s.cred === 'tokA' ? 'A' : 'B'
          const token = user === null ? 'not.a.token' : api.signAccessToken(users[user]!).access_token
          sock.init = { user, verdict: s.verdict, excused: false }
          sock.initSent = true
          sock.ws.send(JSON.stringify({ type: 'connection_init', payload: { access_token: token } }))
          break
        }
        case 'subscribe':
          if (sock && sock.acked !== null) sock.ws.send(JSON.stringify({ id: `s${++ids}`, type: 'subscribe', payload: { query: 'subscription { feed }' } }))
          break
        case 'emit': bus.emit('event', stepNo); break
        case 'resolve': if (slow.length > 0) slow.splice(s.pick % slow.length, 1)[0]!(); break
        case 'tick':
          for (const other of socks) if (other.init !== null) other.init.excused = true
          clock.tick(s.ms)
          break
        case 'revokeUser':
          revocations.set(s.user, [...revocations.get(s.user) ?? [], { step: stepNo, second: Math.floor(Date.now() / 1000) }])
          for (const other of socks) if (other.init?.user === s.user) other.init.excused = true
          await api.revokeUser(s.user)
          break
        case 'serverClose': if (sock) sock.conn.close(4000); break
        case 'clientClose': if (sock) sock.ws.close(); break
        case 'drop': if (sock) (sock.ws as unknown as { _socket: Socket })._socket.destroy(); break
      }
      await quiet()
      check()
      if (problems.length > 0) break
    }

    if (problems.length === 0) {
      await world.close(app, answerOne)
      await quiet()
      app = null
      check()
      if (socks.some(s => s.closed === null)) fail('clients not closed after the app\'s close')
      if (bus.listenerCount('event') !== 0) fail(`${bus.listenerCount('event')} subscriptions left listening`)
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
  if (problems.length > 0) throw new Error(`step ${stepNo} (${JSON.stringify(steps[stepNo - 1])}): ${problems.join('; ')}`)
}

t.test('random schedules on a few GraphQL sockets keep every invariant', async t => {
  await fc.assert(fc.asyncProperty(schedule, async steps => { await run(steps) }), { seed, numRuns })
  t.pass(`${numRuns} schedules`)
  t.comment(String(reached))
})
