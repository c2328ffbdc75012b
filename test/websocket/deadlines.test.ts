// The guards' clocks: a handful of timers for every socket's expiry and auth window.
import t, { type Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { AuthWindows, ExpiryClock } from '../../lib/connection/deadlines.js'
import { fakeClock } from '../helpers.js'
import type { WebSocket } from 'ws'
import { guardPolicy, type ConnectionGuard, type GuardEvents } from '../../lib/connection/guard.js'
import { Connection } from '../../lib/connection/connection.js'
import { Outbound } from '../../lib/connection/outbound.js'
import { Registry } from '../../lib/connection/registry.js'
import { RealtimeEvents } from '../../lib/events.js'
import type { AuthSuccess } from '../../lib/auth/authenticator.js'

const timers = () => process.getActiveResourcesInfo().filter(kind => kind === 'Timeout').length
const unexpected = (err: unknown) => { throw new Error(`no target should throw: ${String(err)}`) }
/** A target of the expiry clock that does nothing when told, and `settle` when it settles. */
const settling = (settle: () => void) => ({ tellExpiry: () => {}, onExpiry: settle })

t.test('expiries sharing a deadline share one timer, which goes with the last of them', async t => {
  const clock = new ExpiryClock(unexpected)
  const baseline = timers()
  const expired: number[] = []
  const targets = Array.from({ length: 100 }, (_v, i) => settling(() => expired.push(i)))
  const deadline = Date.now() + 60_000
  const buckets = new Set(targets.map(target => clock.schedule(target, deadline)))
  t.equal(buckets.size, 1, 'one bucket per deadline')
  const [bucket] = buckets
  const later = clock.schedule(targets[0], deadline + 1000)
  t.equal(timers(), baseline + 2, 'one timer per deadline')
  for (const target of targets) clock.cancel(target, bucket)
  t.equal(timers(), baseline + 1, 'the emptied deadline has no timer left')
  clock.cancel(targets[0], later)
  clock.cancel(targets[0], later) // twice, or never scheduled: nothing happens
  clock.cancel(targets[1], later)
  t.equal(timers(), baseline)
  t.same(expired, [])
})

t.test('every target of a deadline is told once, at the deadline; one that schedules again meanwhile starts anew', async t => {
  const clock = new ExpiryClock(unexpected)
  const told: string[] = []
  const deadline = Date.now() + 20
  const again = settling(() => { told.push(`again at ${Date.now() >= deadline}`); if (told.length < 3) clock.schedule(again, deadline) })
  clock.schedule(settling(() => told.push(`first at ${Date.now() >= deadline}`)), deadline)
  clock.schedule(again, deadline)
  while (told.length < 3) await sleep(5)
  t.same(told, ['first at true', 'again at true', 'again at true'])
})

t.test('cancelling a bucket that fired leaves the bucket scheduled again for its deadline', async t => {
  const clock = new ExpiryClock(unexpected)
  const told: string[] = []
  const deadline = Date.now() + 10
  const target = settling(() => {
    told.push('told')
    if (told.length > 1) return
    // As a guard authenticated anew for the same second, while its old bucket fires.
    const fired = first
    clock.schedule(target, deadline)
    clock.cancel(target, fired)
  })
  const first = clock.schedule(target, deadline)
  while (told.length < 2) await sleep(5)
  t.same(told, ['told', 'told'])
})

t.test('a timer that fires before the wall clock reaches the deadline waits again', async t => {
  let behind = 0
  const now = () => Date.now() - behind
  const clock = new ExpiryClock(unexpected, now)
  const deadline = now() + 20
  const told: number[] = []
  clock.schedule(settling(() => told.push(now())), deadline)
  behind = 40 // the clock falls behind after the timer was set: it fires 40 ms early by that clock
  while (told.length === 0) await sleep(5)
  t.ok(told[0] >= deadline, `told ${told[0] - deadline} ms after the deadline, never before`)
})

t.test('a wall clock stepped forward while a deadline waits (NTP, a resume from suspend): told within a minute of the step', async t => {
  const clock = fakeClock(t)
  let ahead = 0
  const expiries = new ExpiryClock(unexpected, () => Date.now() + ahead)
  const told: number[] = []
  expiries.schedule(settling(() => told.push(Date.now())), Date.now() + 15 * 60_000)
  const stepped = Date.now()
  ahead = 20 * 60_000 // the wall clock jumps 20 minutes: the token has expired by it
  clock.tick(60_000)
  t.equal(told.length, 1, 'told at the next hop')
  t.ok(told[0]! - stepped <= 60_000, 'a minute after the step at most, not the 15 minutes the first timer was set for')
})

t.test('auth windows end in the order they opened; their timer never holds the process', async t => {
  const windows = new AuthWindows(40)
  const baseline = timers()
  const ended: string[] = []
  const target = (name: string) => ({ onAuthWindowEnd: () => ended.push(name) })
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(target)
  windows.open(a)
  await sleep(10)
  windows.open(b)
  windows.open(c)
  windows.open(d)
  t.equal(timers(), baseline, 'unref\'d: only open sockets keep a process alive')
  windows.close(a) // the oldest closes early: the timer wakes at its end and waits for the next
  windows.close(c)
  windows.open(b) // opened again: it starts again, after d
  while (ended.length < 2) await sleep(5)
  t.same(ended, ['d', 'b'])
  windows.open(a)
  windows.close(a)
  windows.close(a) // twice, or never opened: nothing happens
  await sleep(60)
  t.same(ended, ['d', 'b'], 'a window closed before its end never ends')
})

t.test('a window opened after all closed, while the timer of an earlier one is pending, ends on time', async t => {
  const windows = new AuthWindows(30)
  const early = { onAuthWindowEnd: () => t.fail('closed before its end') }
  windows.open(early)
  windows.close(early) // the queue is empty; the timer stays, due at early's end
  await sleep(15)
  const opened = performance.now()
  const endedAfter: number[] = []
  windows.open({ onAuthWindowEnd: () => endedAfter.push(performance.now() - opened) })
  while (endedAfter.length === 0) await sleep(5)
  t.ok(endedAfter[0] >= 29, `ended ${endedAfter[0].toFixed(1)} ms after it opened, not at the earlier window's end`)
})

t.test('a target that opens a window while told its end gets a timer of its own', async t => {
  const windows = new AuthWindows(20)
  const ended: string[] = []
  const again = { onAuthWindowEnd: () => { ended.push('again'); if (ended.length < 3) windows.open(again) } }
  windows.open({ onAuthWindowEnd: () => ended.push('first') })
  await sleep(2)
  windows.open(again)
  windows.open({ onAuthWindowEnd: () => ended.push('later') })
  while (ended.length < 4) await sleep(5)
  t.same(ended, ['first', 'again', 'later', 'again'])
})

t.test('every target of a deadline is told before any settles', async t => {
  const clock = new ExpiryClock(unexpected)
  const steps: string[] = []
  const deadline = Date.now() + 10
  for (const name of ['a', 'b', 'c']) {
    clock.schedule({ tellExpiry: () => steps.push(`told ${name}`), onExpiry: () => steps.push(`settled ${name}`) }, deadline)
  }
  while (steps.length < 6) await sleep(5)
  t.same(steps, ['told a', 'told b', 'told c', 'settled a', 'settled b', 'settled c'])
})

t.test('a target that throws is reported; the rest of its bucket expires all the same, and it settles all the same', async t => {
  const errors: unknown[] = []
  const clock = new ExpiryClock((err) => errors.push(err))
  const steps: string[] = []
  const deadline = Date.now() + 10
  clock.schedule({ tellExpiry: () => { steps.push('told a'); throw new Error('told') }, onExpiry: () => steps.push('settled a') }, deadline)
  clock.schedule({ tellExpiry: () => steps.push('told b'), onExpiry: () => { steps.push('settled b'); throw new Error('settled') } }, deadline)
  clock.schedule({ tellExpiry: () => steps.push('told c'), onExpiry: () => steps.push('settled c') }, deadline)
  while (steps.length < 6) await sleep(5)
  t.same(steps, ['told a', 'told b', 'told c', 'settled a', 'settled b', 'settled c'])
  t.match(errors, [{ message: 'told' }, { message: 'settled' }])
})

t.test('a guard closed or authenticated anew while its bucket fires is not told the old deadline', async t => {
  const policy = guardPolicy('handshake', null, 10_000, { error: () => t.fail('no expiry fails') } as unknown as FastifyBaseLogger)
  const request = { headers: {}, raw: { socket: null } } as unknown as FastifyRequest
  const outbound = new Outbound(1024)
  const expiresAt = Date.now() + 20
  const success = (user: string, at: number): AuthSuccess => ({ ok: true, identity: { user, role: null, admin: false }, session: undefined, expiresAt: at, issuedAt: 0 })
  const expired: string[] = []
  const guards: ConnectionGuard[] = []
  const events = (name: string, act: () => void): GuardEvents => ({
    onExpire: () => { expired.push(name); act() },
    onAuthTimeout: () => {}
  })
  // The first to be told closes the second and authenticates the third anew, before either of them is told.
  const guard = (name: string, act: () => void) =>
    new Connection('rest', {} as WebSocket, request, outbound, policy, events(name, act), success(name, expiresAt)).guard
  guards.push(guard('first', () => { guards[1].close(); guards[2].authenticate(success('third', Date.now() + 60_000)) }))
  guards.push(guard('second', () => {}))
  guards.push(guard('third', () => {}))
  while (expired.length === 0) await sleep(5)
  await sleep(20)
  t.same(expired, ['first'])
  t.equal(guards[2].phase, 'open')
  t.equal(guards[2].user, 'third')
  for (const guard of guards) guard.close()
})

/**
 * Sockets in one registry whose credentials, each with a user and a session, end at one deadline, 20 ms from now;
 * `graphql`: their endpoint ends a socket whose credential ended, as GraphQL does.
 */
function sameDeadline (t: Test) {
  const log = { error: () => t.fail('no expiry fails') } as unknown as FastifyBaseLogger
  const registry = new Registry(new RealtimeEvents(log))
  const policy = guardPolicy('handshake', null, 10_000, log, registry)
  const request = { headers: {}, raw: { socket: null } } as unknown as FastifyRequest
  const expiresAt = Date.now() + 20
  const success = (user: string, at = expiresAt): AuthSuccess =>
    ({ ok: true, identity: { user, role: null, admin: false }, session: `session of ${user}`, expiresAt: at, issuedAt: 0 })
  const connect = (user: string, events: GuardEvents, graphql = false): Connection => {
    const connection = new Connection(graphql ? 'graphql' : 'rest', {} as WebSocket, request, new Outbound(1024),
      graphql ? { ...policy, reauthenticates: false } : policy, events, success(user))
    registry.add(connection)
    return connection
  }
  return { registry, connect, success }
}

t.test('the sockets of one deadline are each public as they are told, and all told before any settles', async t => {
  const { registry, connect } = sameDeadline(t)
  const steps: string[] = []
  const connections: Connection[] = []
  const users = () => connections.map(({ guard }) => guard.user ?? '-').join(' ')
  const indexed = () => `${registry.indexed.users} users, ${registry.indexed.sessions} sessions indexed`
  const windows = () => connections.map(({ guard }) => guard.phase).join(' ')
  registry.on('expire', ({ connection, code }) => steps.push(`${code} reported as ${connection.accountability.user}: ${windows()}`))
  for (const [name, graphql] of [['a', false], ['b', true], ['c', false]] as const) {
    connections.push(connect(name, { onExpire: () => steps.push(`${name} told: ${users()}, ${indexed()}`), onAuthTimeout: () => {} }, graphql))
  }
  while (steps.length < 6) await sleep(5)
  t.same(steps, [
    'a told: - b c, 2 users, 2 sessions indexed',
    'b told: - - c, 1 users, 1 sessions indexed',
    'c told: - - -, 0 users, 0 sessions indexed',
    // b, on an endpoint that ends the socket, settles closed: no re-auth window.
    'TOKEN_EXPIRED reported as null: reauth open open',
    'TOKEN_EXPIRED reported as null: reauth closed open',
    'TOKEN_EXPIRED reported as null: reauth closed reauth'
  ])
  for (const { guard } of connections) guard.close()
})

t.test('a socket told its expiry is nobody\'s: what an expire listener does to its user before it settles misses it', async t => {
  const { registry, connect } = sameDeadline(t)
  const steps: string[] = []
  const connections: Connection[] = []
  // As an `expire` listener might: the first socket's report revokes the second's user, who was told already.
  registry.on('expire', ({ connection, code }) => {
    steps.push(`${connection === connections[0] ? 'a' : 'b'} ${code}`)
    if (steps.length === 3) connections[1].guard.revokeUser(Date.now())
  })
  for (const name of ['a', 'b']) {
    connections.push(connect(name, { onExpire: (code) => steps.push(`${name} told ${code}`), onAuthTimeout: () => {} }))
  }
  while (steps.length < 4) await sleep(5)
  await sleep(20)
  t.same(steps, ['a told TOKEN_EXPIRED', 'b told TOKEN_EXPIRED', 'a TOKEN_EXPIRED', 'b TOKEN_EXPIRED'])
  t.same(connections.map(({ guard }) => [guard.phase, guard.user]), [['reauth', null], ['reauth', null]])
  for (const { guard } of connections) guard.close()
})

t.test('a socket told its expiry and authenticated anew before it settles keeps its new credential', async t => {
  const { registry, connect, success } = sameDeadline(t)
  const steps: string[] = []
  const connections: Connection[] = []
  registry.on('expire', ({ connection, code }) => {
    steps.push(`${connection === connections[0] ? 'a' : 'b'} ${code}`)
    connections[1].guard.authenticate(success('b again', Date.now() + 60_000))
  })
  for (const name of ['a', 'b']) {
    connections.push(connect(name, { onExpire: (code) => steps.push(`${name} told ${code}`), onAuthTimeout: () => {} }))
  }
  while (steps.length < 3) await sleep(5)
  await sleep(20)
  t.same(steps, ['a told TOKEN_EXPIRED', 'b told TOKEN_EXPIRED', 'a TOKEN_EXPIRED'])
  t.same(connections.map(({ guard }) => [guard.phase, guard.user]), [['reauth', null], ['open', 'b again']])
  t.same(registry.indexed, { users: 1, sessions: 1 })
  for (const { guard } of connections) guard.close()
  t.same(registry.indexed, { users: 0, sessions: 0 }, 'nothing left in the indexes once the sockets are gone')
})

t.test('a window held for two answers runs on once both have settled, with the time it had left', async t => {
  const clock = fakeClock(t)
  const windows = new AuthWindows(1_000)
  let ended = 0
  const target = { onAuthWindowEnd: () => { ended++ } }
  windows.open(target)
  clock.tick(400)
  windows.hold(target) // an auth message waiting behind other frames
  windows.hold(target) // and another
  clock.tick(5_000)
  windows.release(target) // the first settled nothing: the second still waits
  clock.tick(5_000)
  t.equal(ended, 0, 'held while one answer is left')
  windows.release(target)
  clock.tick(599)
  t.equal(ended, 0, 'the 600 ms it had left run again')
  clock.tick(1)
  t.equal(ended, 1)
})

t.test('a wall clock stepped while a window runs leaves it, held then released, the time it had left, no more, no less', async t => {
  const clock = fakeClock(t)
  const windows = new AuthWindows(1_000)
  let ended = 0
  const target = { onAuthWindowEnd: () => { ended++ } }
  for (const stepMs of [-3_600_000, 3_600_000]) {
    ended = 0
    windows.open(target)
    clock.tick(200)
    // NTP stepping the clock back an hour (or a resume stepping it forward) before the client answers: timers keep time.
    clock.setSystemTime(Date.now() + stepMs)
    clock.tick(200)
    windows.hold(target)
    clock.tick(100)
    windows.release(target) // the check answered SERVICE_UNAVAILABLE: the window runs on
    clock.tick(599)
    t.equal(ended, 0, `stepped ${stepMs / 60_000} minutes: still open 599 ms on`)
    clock.tick(1)
    t.equal(ended, 1, `stepped ${stepMs / 60_000} minutes: ended with the 600 ms it had left`)
  }
})
