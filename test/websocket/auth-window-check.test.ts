// An auth message that arrives inside its auth window is answered by its check, however long the check takes: the
// window waits for it (PROTOCOL.md section 4, AUTH_TIMEOUT only without an auth message). And a refresh token whose
// client left before the check answered is not rotated: the client keeps a token that works for its retry.
import { request as httpRequest } from 'node:http'
import t, { type Test } from 'tap'
import { buildSchema } from 'graphql'
import type { FastifyInstance } from 'fastify'
import type { AuthenticateEvent, CredentialSource, RealtimeOptions } from '../../lib/index.js'
import { admin, build, connect, directoryOf, fakeClock, letGoCount, until, within, type Client } from '../helpers.js'

const authTimedOut = { type: 'auth', status: 'error', error: { code: 'AUTH_TIMEOUT', message: 'Authentication timed out.' } }
const sessionRevoked = { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } }
const unavailable = (uid: string) => ({ type: 'auth', status: 'error', error: { code: 'SERVICE_UNAVAILABLE', message: 'Service unavailable.' }, uid })

const next = (client: Client, what: string) => within(client.next(), what)

/** The app's `onAuthenticate` held, for the credentials of `source`, until the test lets it answer. */
class HeldCheck {
  #entered: (event: AuthenticateEvent) => void = () => {}
  #answer: (verdict: boolean | Error) => void = () => {}
  readonly source: CredentialSource

  constructor (source: CredentialSource) {
    this.source = source
  }

  /** The check has started: its event. */
  entered (): Promise<AuthenticateEvent> {
    return within(new Promise(resolve => { this.#entered = resolve }), 'the check to start')
  }

  readonly hook = async (event: AuthenticateEvent): Promise<boolean> => {
    if (event.source !== this.source) return true
    this.#entered(event)
    const verdict = await new Promise<boolean | Error>(resolve => { this.#answer = resolve })
    if (verdict instanceof Error) throw verdict
    return verdict
  }

  answer (verdict: boolean | Error): void {
    this.#answer(verdict)
  }
}

const windowed = { authTimeout: 0.5 }

async function appWithHeldCheck (t: Test, source: CredentialSource, options: RealtimeOptions = {}) {
  const check = new HeldCheck(source)
  const built = await build(t, { users: [admin], authRoutes: true, onAuthenticate: check.hook, rest: windowed, ...options })
  return { ...built, check }
}

async function login (t: Test, app: FastifyInstance): Promise<string> {
  const response = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  t.equal(response.statusCode, 200, 'logged in')
  return response.json().data.refresh_token
}

/** Four windows' time passes while the check of `second`'s auth message (uid `r`) is held; then it answers, and is heard. */
async function answeredPastTheWindow (t: Test, client: Client, check: HeldCheck, clock: ReturnType<typeof fakeClock>) {
  clock.tick(2_000)
  check.answer(true)
  t.same(await next(client, 'the auth answer'), { type: 'auth', status: 'ok', uid: 'r' }, 'answered by its check, no AUTH_TIMEOUT')
  clock.uninstall()
  client.send({ type: 'whoami' })
  t.same(await next(client, 'whoami'), { type: 'whoami', user: 'second' })
  await client.close()
}

const refreshOverHttp = (app: FastifyInstance, token: string) =>
  app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: token } })

t.test('handshake: a refresh token checked past the window is answered by its check, with the rotated token', async t => {
  const { app, url, check } = await appWithHeldCheck(t, 'auth')
  const token = await login(t, app)
  // The windows' clock is a fake one from before the socket opens: the window's end is the test's to choose.
  const clock = fakeClock(t)
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', refresh_token: token, uid: 'h' })
  await check.entered()
  clock.tick(2_000) // four windows' time while the check runs (the check's own deadline is 3 s)
  check.answer(true)
  const answer = await next(client, 'the auth answer') as { status: string, uid: string, refresh_token: string }
  t.match(answer, { type: 'auth', status: 'ok', uid: 'h', refresh_token: String }, 'the check\'s answer, no AUTH_TIMEOUT')
  clock.uninstall()
  client.send({ type: 'ping', uid: 'p' })
  t.same(await next(client, 'pong'), { type: 'pong', uid: 'p' }, 'the socket stays open')
  t.equal((await refreshOverHttp(app, answer.refresh_token)).statusCode, 200, 'the rotated token is the session\'s')
  await client.close()
})

t.test('re-auth: an auth message inside the window, checked past it, is answered by its check', async t => {
  const { app, url, check } = await appWithHeldCheck(t, 'auth', {
    rest: { ...windowed, handlers: { whoami: (_message, c) => c.send({ type: 'whoami', user: c.accountability.user }) } }
  })
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: app.realtime.jwt.sign({ id: 'first' }) })
  // The first check is held too: let it through.
  await check.entered()
  check.answer(true)
  t.same(await next(client, 'the first answer'), { type: 'auth', status: 'ok' })
  const clock = fakeClock(t, ['setTimeout', 'clearTimeout', 'performance'])
  await app.realtime.revokeUser('first')
  t.same(await next(client, 'AUTH_REVOKED'), sessionRevoked)
  client.send({ type: 'auth', access_token: app.realtime.jwt.sign({ id: 'second' }), uid: 'r' })
  await check.entered()
  await answeredPastTheWindow(t, client, check, clock)
})

t.test('re-auth sent just before the credential ends: the window that opens during its check waits for it too', async t => {
  const { app, url, check } = await appWithHeldCheck(t, 'auth', {
    rest: { ...windowed, handlers: { whoami: (_message, c) => c.send({ type: 'whoami', user: c.accountability.user }) } }
  })
  const client = await connect(url(`/websocket?access_token=${app.realtime.jwt.sign({ id: 'first' })}`))
  const clock = fakeClock(t, ['setTimeout', 'clearTimeout', 'performance'])
  // The client authenticates anew (as the SDK does before its token expires) ...
  client.send({ type: 'auth', access_token: app.realtime.jwt.sign({ id: 'second' }), uid: 'r' })
  await check.entered()
  // ... and its credential ends while that answer is checked.
  await app.realtime.revokeUser('first')
  t.same(await next(client, 'AUTH_REVOKED'), sessionRevoked)
  await answeredPastTheWindow(t, client, check, clock)
})

t.test('re-auth: a check that settles nothing (SERVICE_UNAVAILABLE) leaves the window running where it stopped', async t => {
  const { app, url, check } = await appWithHeldCheck(t, 'auth')
  const client = await connect(url(`/websocket?access_token=${app.realtime.jwt.sign({ id: 'u' })}`))
  const clock = fakeClock(t)
  await app.realtime.revokeUser('u')
  t.same(await next(client, 'AUTH_REVOKED'), sessionRevoked)
  clock.tick(300) // of the window's 500 ms
  client.send({ type: 'auth', access_token: app.realtime.jwt.sign({ id: 'u2' }), uid: 'a' })
  await check.entered()
  clock.tick(2_000)
  check.answer(new Error('the app\'s database is away'))
  t.same(await next(client, 'the auth answer'), unavailable('a'), 'the check\'s answer, not AUTH_TIMEOUT')
  client.send({ type: 'ping', uid: 'p' })
  t.same(await next(client, 'pong'), { type: 'pong', uid: 'p' }, 'still open, waiting')
  clock.tick(199)
  client.send({ type: 'ping', uid: 'q' })
  t.same(await next(client, 'pong'), { type: 'pong', uid: 'q' }, 'a millisecond of the window left')
  clock.tick(1)
  t.same(await next(client, 'AUTH_TIMEOUT'), authTimedOut)
  t.equal((await within(client.closed, 'the close')).code, 4408)
})

t.test('a client that leaves while its refresh token is checked keeps a token that works', async t => {
  const { app, url, check } = await appWithHeldCheck(t, 'auth')
  const token = await login(t, app)
  const client = await connect(url('/websocket'))
  // The check's own deadline stays away: the socket's leaving is seen while the check is still pending.
  fakeClock(t, ['setTimeout', 'clearTimeout'])
  client.send({ type: 'auth', refresh_token: token })
  const { request } = await check.entered()
  const gone = new Promise(resolve => request.raw.socket.once('close', resolve))
  const closing = client.close()
  await within(gone, 'the server to see the socket go')
  await closing
  check.answer(true)
  // The refusal the check ends in reaches nobody; the refresh token was not rotated.
  const refreshed = await refreshOverHttp(app, token)
  t.equal(refreshed.statusCode, 200, 'the token the client holds refreshes: the session lives')
})

t.test('an HTTP refresh whose client left before the check answered does not rotate the token', async t => {
  const { app, check } = await appWithHeldCheck(t, 'refresh')
  const token = await login(t, app)
  const { port } = app.server.address() as { port: number }
  const body = JSON.stringify({ refresh_token: token })
  const sent = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/auth/refresh', headers: { 'content-type': 'application/json' } })
  sent.on('error', () => {}) // the abort, below
  sent.end(body)
  const { request } = await check.entered()
  const gone = new Promise(resolve => request.raw.socket.once('close', resolve))
  sent.destroy()
  await within(gone, 'the server to see the request go')
  check.answer(true)
  // The check's next refresh is let through at once.
  const refreshed = await (async () => {
    const pending = refreshOverHttp(app, token)
    await check.entered()
    check.answer(true)
    return pending
  })()
  t.equal(refreshed.statusCode, 200, 'the client\'s retry with the token it holds works')
})

t.test('a client that leaves while its password is checked makes no session: the user\'s own sessions stay', async t => {
  // The password is checked, then held: the client leaves meanwhile. One session a user, so one made for nobody would
  // end the user's own.
  const directory = await directoryOf([admin])
  let held: Promise<void> | null = null
  let entered!: () => void
  const { app, url } = await build(t, {
    users: directory,
    authRoutes: true,
    maxSessionsPerUser: 1,
    verifyCredentials: async (credential) => {
      const identity = await directory.verifyCredentials(credential)
      if (held) {
        entered()
        await held
      }
      return identity
    }
  })
  const token = await login(t, app)
  let release!: () => void
  held = new Promise(resolve => { release = resolve })
  const checking = new Promise<void>(resolve => { entered = resolve })
  const gone = letGoCount(app)
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', email: admin.email, password: admin.password })
  await within(checking, 'the password check')
  await client.close()
  await within(until(() => gone() === 1), 'the server to see the socket go')
  release()
  // What follows the check is in memory, without I/O or timers: done within this turn's promises, before the next.
  await new Promise(resolve => setImmediate(resolve))
  t.equal((await refreshOverHttp(app, token)).statusCode, 200, 'the session the user holds lives')
})

t.test('GraphQL: a connection_init checked past the window is answered by its check', async t => {
  const { app, url, check } = await appWithHeldCheck(t, 'connection_init', { graphql: { schema: buildSchema('type Query { a: String }'), auth: 'handshake', ...windowed } })
  const clock = fakeClock(t, ['setTimeout', 'clearTimeout', 'performance'])
  const client = await connect(url('/graphql'), { protocols: 'graphql-transport-ws' })
  client.send({ type: 'connection_init', payload: { access_token: app.realtime.jwt.sign({ id: 'g' }) } })
  await check.entered()
  clock.tick(2_000)
  check.answer(true)
  t.same(await next(client, 'connection_ack'), { type: 'connection_ack' }, 'no 4408')
  await client.close()
})

t.test('a check that fails unforeseen (an identity no token can carry) is told as one that could not run, and logged', async t => {
  const logged: string[] = []
  const { url } = await build(t, {
    // The app's check answers with an identity the token cannot carry (a BigInt id): signing its token throws.
    verifyCredentials: async () => ({ user: 7n as unknown as string, role: null, admin: false })
  }, { logger: { level: 'error', stream: { write: (line: string) => { logged.push(line) } } } })
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', email: admin.email, password: admin.password })
  t.same(await next(client, 'the answer'), { type: 'auth', status: 'error', error: { code: 'SERVICE_UNAVAILABLE', message: 'Service unavailable.' } })
  t.equal((await client.closed).code, 1013, 'the handshake ends as a cold process\'s does, not held open for good')
  t.ok(logged.some(line => line.includes('an auth check failed')), 'logged')
})
