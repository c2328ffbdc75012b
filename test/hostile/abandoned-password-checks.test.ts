// Password checks whose clients left (PROTOCOL.md section 11): a flood of password auths whose sockets close at once, or
// of logins whose requests are aborted, leaves nothing queued to hash for nobody. Each skipped check fails as one that
// could not run (SERVICE_UNAVAILABLE), and its attempt is given back, as for a full queue.
import t, { type Test } from 'tap'
import { request, type ClientRequest } from 'node:http'
import { availableParallelism } from 'node:os'
import type { FastifyInstance } from 'fastify'
import { build, connect, letGoCount, within, type Client } from '../helpers.js'

// As many checks run as there are lanes (a core each but the loop's); `queued` wait; one more is refused at once.
const lanes = Math.max(1, availableParallelism() - 1)
const queued = 20
const victim = 'victim@example.com'

/** An app whose password checks all wait for `release`, counted as they start. */
async function heldChecks (t: Test) {
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  const checks = { started: 0 }
  const built = await build(t, {
    authRoutes: true,
    heartbeat: { enabled: false },
    passwordQueue: { limit: queued, perAddress: queued },
    // Room for every attempt of the flood; once they all count, two more are too many.
    attemptLimit: { points: lanes + queued + 1 },
    verifyCredentials: async () => {
      checks.started++
      await held
      return null
    }
  })
  return { ...built, checks, release }
}

/** The answers of two wrong passwords for the victim, once nothing is queued: the attempts the flood left. */
async function twoMoreAttempts (app: FastifyInstance): Promise<string[]> {
  const codes: string[] = []
  for (let i = 0; i < 2; i++) {
    await app.realtime.login({ email: victim, password: 'wrong' }).catch((err: { code: string }) => codes.push(err.code))
  }
  return codes
}

t.test('a flood of password auths whose sockets close at once: the queued checks never run, and spend no attempts', async t => {
  const { app, url, checks, release } = await heldChecks(t)
  const reasons: string[] = []
  app.realtime.on('authFailed', ({ reason }) => { reasons.push(reason) })
  const gone = letGoCount(app)
  const flood: Client[] = await Promise.all(Array.from({ length: lanes + queued + 1 }, () => connect(url('/websocket'))))
  const refused = new Promise<unknown>(resolve => {
    for (const client of flood) {
      client.send({ type: 'auth', email: victim, password: 'wrong' })
      client.next().then(resolve)
    }
  })
  // One refused at once: every other check runs or waits.
  t.match(await within(refused, 'the full queue\'s refusal'), { error: { code: 'SERVICE_UNAVAILABLE' } })
  t.equal(checks.started, lanes, 'as many checks run as there are lanes')
  for (const client of flood) client.ws.terminate()
  await within(until(() => gone() === flood.length), 'the server to see every client gone')
  release()
  await within(until(() => reasons.length === lanes + queued + 1), 'every login\'s end')
  t.equal(checks.started, lanes, 'no check ran for a client gone')
  t.equal(reasons.filter(reason => reason === 'the client left before its password was checked').length, queued,
    'each queued one failed as unchecked, its client gone')
  t.same(await twoMoreAttempts(app), ['INVALID_CREDENTIALS', 'INVALID_CREDENTIALS'], 'the skipped attempts were given back')
})

t.test('the same over HTTP: a login whose request was aborted is never checked', async t => {
  const { app, checks, release } = await heldChecks(t)
  const { port } = app.server.address() as { port: number }
  const requests: ClientRequest[] = []
  const refused = new Promise<number>(resolve => {
    for (let i = 0; i < lanes + queued + 1; i++) {
      // A connection of its own, closed after its answer: once every request is aborted, the server has none left.
      const login = request({ host: '127.0.0.1', port, method: 'POST', path: '/auth/login', agent: false, headers: { 'content-type': 'application/json' } },
        (res) => { res.resume(); resolve(res.statusCode!) })
      login.on('error', () => {})
      login.end(JSON.stringify({ email: victim, password: 'wrong' }))
      requests.push(login)
    }
  })
  t.equal(await within(refused, 'the full queue\'s refusal'), 503)
  t.equal(checks.started, lanes, 'as many checks run as there are lanes')
  for (const login of requests) login.destroy()
  await within(until(async () => await new Promise<number>((resolve, reject) =>
    app.server.getConnections((err, count) => err ? reject(err) : resolve(count))) === 0), 'the server to see every request gone')
  release()
  // A check after them runs once every one before it has had its turn (refused, SERVICE_UNAVAILABLE, until the queue
  // has room, without being checked): none of theirs ran.
  let code = 'SERVICE_UNAVAILABLE'
  while (code === 'SERVICE_UNAVAILABLE') {
    await new Promise(resolve => setImmediate(resolve))
    code = await app.realtime.login({ email: victim, password: 'wrong' }).then(() => 'OK', (err: { code: string }) => err.code)
  }
  t.equal(code, 'INVALID_CREDENTIALS')
  t.equal(checks.started, lanes + 1, 'no check ran for a request aborted')
})

/** Waits, a turn of the event loop at a time, until `done` holds. */
async function until (done: () => boolean | Promise<boolean>): Promise<void> {
  while (!await done()) await new Promise(resolve => setImmediate(resolve))
}
