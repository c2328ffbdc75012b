// Logins whose clients leave before their checks (PROTOCOL.md section 11) give their attempts back, and leave no attempt
// counter behind: one client sending passwords for ever new emails, each socket closed at once, kept a counter per email
// for the rest of the window, in memory or on Redis, at the rate it could open sockets, not the rate of password checks.
import t, { type Test } from 'tap'
import { availableParallelism } from 'node:os'
import WebSocket from 'ws'
import { Redis } from 'ioredis'
import { build, letGoCount, until, within } from '../helpers.js'
import { RedisServer } from '../redis-server.js'
import { instancesOf } from './gc.js'

// As many checks run as there are lanes (a core each but the loop's); the others wait their turn.
const lanes = Math.max(1, availableParallelism() - 1)

/**
 * The application's own logins held in the queue, each check held until the flood's clients are gone (or given up on
 * after the 3 s a check has, its lane then going to the next of them): a lane never frees while the flood comes.
 */
const held = 20 * lanes

/**
 * An app whose lanes are all taken by checks held until the flood's clients are gone: `abandon(count)` sends `count`
 * passwords from one address, each for an email of its own on a socket closed at once, and resolves once every one of
 * them has been answered (unheard), its turn come after its client left. Each held login counts against its email.
 */
async function heldLanes (t: Test, redis?: string) {
  let release!: () => void
  let checking = 0
  const released = new Promise<void>(resolve => { release = resolve })
  const { app, url } = await build(t, {
    redis,
    heartbeat: { enabled: false },
    passwordQueue: { limit: 10_000, perAddress: 10_000 },
    // The flood waits here all at once, each login holding its point on the address until its turn: the address's
    // limit would refuse most of it. A flood whose logins are given back as they come (lanes free) never adds up there.
    attemptLimit: { points: 10_000 },
    verifyCredentials: async () => {
      checking++
      await released
      return null
    }
  })
  const gone = letGoCount(app)
  let answered = 0
  app.realtime.on('authFailed', () => { answered++ })
  // The application's own logins, without an address: each counts against its email alone, and holds a lane in turn.
  const running = Array.from({ length: held }, (_, i) => app.realtime.login({ email: `held-${i}@example.com`, password: 'wrong' }).catch(() => {}))
  await within(until(() => checking === lanes), 'every lane taken')
  const abandon = async (count: number): Promise<void> => {
    for (let i = 0; i < count; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, count - i) }, (_, j) => new Promise<void>((resolve, reject) => {
        const socket = new WebSocket(url('/websocket'))
        socket.once('error', reject)
        socket.once('open', () => {
          socket.send(JSON.stringify({ type: 'auth', email: `gone-${i + j}@example.com`, password: 'wrong' }))
          socket.terminate()
        })
        socket.once('close', () => resolve())
      })))
    }
    await within(until(() => gone() === count), 'the server to see every client gone')
    release()
    await Promise.all(running)
    await within(until(() => answered === count), 'every login answered')
  }
  return abandon
}

t.test('on Redis: no counter left by 600 abandoned logins', async t => {
  const server = await RedisServer.start(t)
  const keys = new Redis(server.url)
  t.teardown(() => keys.disconnect())
  const abandon = await heldLanes(t, server.url)
  await abandon(600)
  t.equal((await keys.keys('realtime:attempts:*')).length, held,
    'the held logins\' counters alone (before: 601 more, one per email and the address\'s, each kept 60 s)')
})

t.test('in memory: no counter left by 1,000 abandoned logins', async t => {
  const abandon = await heldLanes(t)
  await abandon(1000)
  // rate-limiter-flexible keeps each counter in memory as a `Record`.
  t.equal(await instancesOf('Record'), held, 'the held logins\' counters alone (before: 1,001 more, one per email and the address\'s, each kept 60 s)')
})
