// Shutting down (README, "Shutting down"): `app.close()` closes at once every socket of the plugin with no credential
// check in flight, and a socket whose check is in flight once its client has the answer (within the store timeout): cut
// off, a check may have acted (a refresh token rotated, a session made) for a client that never hears of it. An auth
// message that only waits its turn has started no check: its socket closes at once.
import t from 'tap'
import { Agent, request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import { referenceSchema } from '../../example/schema.js'
import realtime, { MemorySessionStore, type AuthenticateEvent, type CredentialSource, type Identity } from '../../lib/index.js'
import { readRefreshToken } from '../../lib/auth/refresh-tokens.js'
import { handlerLimit } from '../../lib/endpoints/rest.js'
import { admin, build, connect, fakeClock, readByServer, secret, upgradeRefusal, within, type Built, type Client } from '../helpers.js'

/** A step the test holds: `entered` once it has started, and it goes on once the test calls `release`. */
class Held {
  #entered!: () => void
  readonly entered = within(new Promise<void>(resolve => { this.#entered = resolve }), 'the held step to start')
  #release!: () => void
  readonly #released = new Promise<void>(resolve => { this.#release = resolve })

  /** Called by the step: resolves once the test releases it. */
  readonly hold = (): Promise<void> => {
    this.#entered()
    return this.#released
  }

  release (): void {
    this.#release()
  }
}

/** The app's `onAuthenticate`, held for the credentials of `source`. */
const heldFor = (source: CredentialSource, held: Held) => async (event: AuthenticateEvent) => {
  if (event.source === source) await held.hold()
  return true
}

const next = (client: Client, what: string) => within(client.next(), what)
const closed = (client: Client, what: string) => within(client.closed, what)

/**
 * `app.close()`, once it has begun (Fastify runs its hooks a few turns after the call): a socket with no check in
 * flight, opened at `path` for this, has been closed.
 */
async function beginClose (app: FastifyInstance, url: Built['url'], path = '/websocket'): Promise<{ closing: Promise<void> }> {
  const idle = await connect(url(path))
  const closing = app.close()
  await closed(idle, 'an idle socket\'s close')
  return { closing }
}

t.test('a refresh on its way to the store when the app closes: the client gets the rotated token, then the close', async t => {
  const store = new MemorySessionStore()
  const rotate = store.rotate.bind(store)
  const held = new Held()
  // The store has rotated: its answer is on its way back.
  store.rotate = async (...args) => {
    const rotated = await rotate(...args)
    await held.hold()
    return rotated
  }
  const { app, url } = await build(t, { users: [admin], sessionStore: store, heartbeat: { enabled: false } })
  const { refresh_token: token } = await app.realtime.login({ email: admin.email, password: admin.password })
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', refresh_token: token, uid: 'r' })
  await held.entered
  const { closing } = await beginClose(app, url)
  t.equal(client.ws.readyState, client.ws.OPEN, 'the close waits for the check')
  held.release()
  const answer = await next(client, 'the auth answer') as { status: string, uid: string, refresh_token: string }
  t.match(answer, { type: 'auth', status: 'ok', uid: 'r' }, 'answered')
  t.not(answer.refresh_token, token, 'with the rotated token')
  t.equal((await closed(client, 'the close')).code, 1005, 'then closed with the app')
  await within(closing, 'app.close()')
  t.equal((await store.lookup(readRefreshToken(answer.refresh_token)!)).status, 'current', 'the token the client holds is its session\'s')
})

t.test('a password login in flight when the app closes: the client gets its session\'s tokens, then the close', async t => {
  const store = new MemorySessionStore()
  const held = new Held()
  const identity: Identity = { user: 'u1', role: null, admin: false }
  const { app, url } = await build(t, {
    sessionStore: store,
    heartbeat: { enabled: false },
    verifyCredentials: async () => { await held.hold(); return identity }
  })
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', email: 'u1@example.com', password: 'pw' })
  await held.entered
  const { closing } = await beginClose(app, url)
  held.release()
  const answer = await next(client, 'the auth answer') as { status: string, refresh_token: string }
  t.equal(answer.status, 'ok', 'logged in')
  t.equal((await closed(client, 'the close')).code, 1005)
  await within(closing, 'app.close()')
  t.equal((await store.lookup(readRefreshToken(answer.refresh_token)!)).status, 'current', 'the session made is the client\'s')
})

t.test('the JSON, logs and GraphQL endpoints each answer the check in flight before they close', async t => {
  const held = { rest: new Held(), logs: new Held(), graphql: new Held() }
  const { app, url } = await build(t, {
    heartbeat: { enabled: false },
    graphql: { schema: referenceSchema(() => null) },
    onAuthenticate: async ({ endpoint }) => {
      if (endpoint) await held[endpoint].hold()
      return true
    }
  })
  const token = app.realtime.signAccessToken({ user: 'u1', role: 'administrator', admin: true }).access_token
  const json = await connect(url('/websocket'))
  const logs = await connect(url('/websocket/logs'))
  const graphql = await connect(url('/graphql'), { protocols: 'graphql-transport-ws' })
  json.send({ type: 'auth', access_token: token, uid: 'j' })
  logs.send({ type: 'auth', access_token: token, uid: 'l' })
  graphql.send({ type: 'connection_init', payload: { access_token: token } })
  await Promise.all(Object.values(held).map(step => step.entered))
  const { closing } = await beginClose(app, url)
  for (const step of Object.values(held)) step.release()
  t.same(await next(json, 'the JSON answer'), { type: 'auth', status: 'ok', uid: 'j' })
  t.same(await next(logs, 'the logs answer'), { type: 'auth', status: 'ok', uid: 'l' })
  t.same(await next(graphql, 'the GraphQL answer'), { type: 'connection_ack' })
  for (const [client, name] of [[json, 'JSON'], [logs, 'logs'], [graphql, 'GraphQL']] as const) {
    t.equal((await closed(client, `the ${name} close`)).code, 1005, `${name}: answered, then closed`)
  }
  await within(closing, 'app.close()')
})

t.test('thousands of idle sockets close at once, without the wait of a socket whose check is in flight', async t => {
  const held = new Held()
  const { app, url } = await build(t, { heartbeat: { enabled: false }, rest: { auth: 'public' }, onAuthenticate: heldFor('auth', held) })
  const token = app.realtime.signAccessToken({ user: 'u1', role: null, admin: false }).access_token
  const checking = await connect(url('/websocket'))
  // The caps are the test's: a close that waited for its own would never end, and the held check outlasts its store
  // timeout however long the 2,000 sockets take to open.
  fakeClock(t, ['setTimeout', 'clearTimeout'])
  checking.send({ type: 'auth', access_token: token, uid: 'c' })
  await held.entered
  const idle: Client[] = []
  for (let i = 0; i < 2_000; i += 200) idle.push(...await Promise.all(Array.from({ length: 200 }, () => connect(url('/websocket')))))
  const closing = app.close()
  const codes = new Set((await within(Promise.all(idle.map(client => client.closed)), 'the idle sockets\' closes')).map(close => close.code))
  t.same([...codes], [1005], 'every idle socket closed while the check is held')
  held.release()
  t.same(await next(checking, 'the auth answer'), { type: 'auth', status: 'ok', uid: 'c' })
  t.equal((await closed(checking, 'the checked socket\'s close')).code, 1005)
  await within(closing, 'app.close(), without the cap\'s timer')
})

t.test('an auth message waiting behind the app\'s handlers when the app closes holds no close: it goes unread', async t => {
  let free!: () => void
  const busy = new Promise<void>(resolve => { free = resolve })
  t.teardown(() => free())
  let started = 0
  let taken!: () => void
  const allTaken = new Promise<void>(resolve => { taken = resolve })
  const checked: unknown[] = []
  const { app, url } = await build(t, {
    heartbeat: { enabled: false },
    rest: { handlers: { slow: async () => { if (++started === handlerLimit) taken(); await busy } } },
    onAuthenticate: async (event) => { if (event.source === 'auth') checked.push(event); return true }
  })
  const token = app.realtime.signAccessToken({ user: 'u1', role: null, admin: false }).access_token
  const client = await connect(url(`/websocket?access_token=${token}`))
  for (let i = 0; i < handlerLimit; i++) client.send({ type: 'slow' })
  await within(allTaken, 'every handler slot taken')
  // Sent in time: it holds the auth window while it waits, and nothing else.
  client.send({ type: 'auth', access_token: token, uid: 'waiting' })
  await readByServer(app, client)
  // The cap on the wait is the test's: a close that waited for the message would never end.
  fakeClock(t, ['setTimeout', 'clearTimeout'])
  const closing = app.close()
  t.equal((await closed(client, 'the close')).code, 1005, 'closed at once')
  await within(closing, 'app.close(), without the cap\'s timer')
  free()
  await new Promise(resolve => setImmediate(resolve))
  t.same(checked, [], 'the message behind the handlers was never checked')
  t.same(client.frames, [], 'nor answered')
})

t.test('what a client sends while the app closes waiting for its check goes unread: the close waits for that one answer', async t => {
  const held = new Held()
  const checked: string[] = []
  const handled: unknown[] = []
  const store = new MemorySessionStore()
  const { app, url } = await build(t, {
    users: [admin],
    sessionStore: store,
    heartbeat: { enabled: false },
    rest: { handlers: { note: (message) => { handled.push(message.uid) } } },
    onAuthenticate: async (event) => {
      checked.push(event.identity.user)
      if (event.identity.user === 'u1') await held.hold()
      return true
    }
  })
  const { refresh_token: token } = await app.realtime.login({ email: admin.email, password: admin.password })
  checked.length = 0
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: app.realtime.signAccessToken({ user: 'u1', role: null, admin: false }).access_token, uid: 'first' })
  await held.entered
  // The cap on the wait is the test's: a close that waited for a check started behind the first would outlast it.
  fakeClock(t, ['setTimeout', 'clearTimeout'])
  const { closing } = await beginClose(app, url)
  // Behind it, read while the close waits: a refresh that would rotate the client's token, and a message for the app.
  client.send({ type: 'auth', refresh_token: token, uid: 'behind' })
  client.send({ type: 'note', uid: 'behind' })
  await readByServer(app, client)
  held.release()
  t.same(await next(client, 'the first answer'), { type: 'auth', status: 'ok', uid: 'first' })
  t.equal((await closed(client, 'the close')).code, 1005, 'then closed with the app')
  await within(closing, 'app.close(), without the cap\'s timer')
  t.same(checked, ['u1'], 'the refresh behind it was never checked')
  t.same(handled, [], 'nor the message run')
  t.same(client.frames, [], 'nor anything answered')
  t.equal((await store.lookup(readRefreshToken(token)!)).status, 'current', 'the client\'s refresh token still works')
})

t.test('a check still running past the store timeout is cut off by the close, unanswered', async t => {
  const verifying = new Held()
  const admitting = new Held()
  const identity: Identity = { user: 'u1', role: null, admin: false }
  const store = new MemorySessionStore()
  const create = store.create.bind(store)
  let created = 0
  store.create = async (...args) => { created++; return await create(...args) }
  const { app, url } = await build(t, {
    sessionStore: store,
    heartbeat: { enabled: false },
    verifyCredentials: async () => { await verifying.hold(); return identity },
    onAuthenticate: heldFor('auth', admitting)
  })
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', email: 'u1@example.com', password: 'pw' })
  await verifying.entered
  const clock = fakeClock(t, ['setTimeout', 'clearTimeout'])
  const { closing } = await beginClose(app, url)
  // Each step of a check has the store timeout (3 s): two of them outlast the close's wait.
  clock.tick(2_000)
  verifying.release()
  await admitting.entered
  clock.tick(999)
  await new Promise(resolve => setImmediate(resolve))
  t.equal(client.ws.readyState, client.ws.OPEN, 'still waiting for the answer')
  clock.tick(1)
  t.equal((await closed(client, 'the close')).code, 1005, 'closed at the store timeout')
  t.same(client.frames, [], 'unanswered')
  await within(closing, 'app.close()')
  // Its client gone, the login makes no session (`waiting`).
  const failed = new Promise<string>(resolve => app.realtime.on('authFailed', ({ reason }) => resolve(reason)))
  admitting.release()
  t.equal(await within(failed, 'the login\'s end'), 'the client left before its session was made')
  t.equal(created, 0, 'no session made for nobody')
})

t.test('an upgrade still in the gate when the app closes is answered 503', async t => {
  const held = new Held()
  const { app, url } = await build(t, { heartbeat: { enabled: false }, rest: { auth: 'strict' }, onAuthenticate: heldFor('upgrade', held) })
  const token = app.realtime.signAccessToken({ user: 'u1', role: null, admin: false }).access_token
  const refusal = upgradeRefusal(url(`/websocket?access_token=${token}`))
  await held.entered
  const { closing } = await beginClose(app, url, '/websocket/logs')
  held.release()
  t.equal((await within(refusal, 'the upgrade\'s answer')).status, 503)
  await within(closing, 'app.close()')
})

t.test('a socket whose client leaves while its check is in flight no longer holds the close', async t => {
  const held = new Held()
  const { app, url } = await build(t, { heartbeat: { enabled: false }, onAuthenticate: heldFor('auth', held) })
  const token = app.realtime.signAccessToken({ user: 'u1', role: null, admin: false }).access_token
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: token })
  await held.entered
  fakeClock(t, ['setTimeout', 'clearTimeout'])
  const { closing } = await beginClose(app, url)
  t.equal(client.ws.readyState, client.ws.OPEN, 'held by its check')
  client.ws.terminate()
  await within(closing, 'app.close(), without the cap\'s timer')
  held.release()
  t.pass('closed once its client left')
})

t.test("a shutdown notice from the app's preClose hook added before the plugin reaches every client before its close", async t => {
  // README, "Shutting down": the example as written there.
  const app = Fastify()
  app.addHook('preClose', async () => { app.realtime.send({}, { type: 'shutdown' }) })
  await app.register(realtime, { env: {}, secret, rest: { auth: 'public' }, heartbeat: { enabled: false } })
  // Added after the plugin, a hook finds every socket closing: the notice reaches none, and send() says so.
  const late: number[] = []
  app.addHook('preClose', async () => { late.push(app.realtime.send({}, { type: 'too late' })) })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as AddressInfo
  const clients = [await connect(`ws://127.0.0.1:${port}/websocket`), await connect(`ws://127.0.0.1:${port}/websocket`)]
  for (const client of clients) {
    client.send({ type: 'ping' })
    await next(client, 'the pong')
  }
  await within(app.close(), 'app.close()')
  for (const client of clients) {
    t.equal((await closed(client, 'the close')).code, 1005)
    t.same(client.frames, [{ type: 'shutdown' }], 'the notice, then the close')
  }
  // Fastify 5.0.0 runs a hook added after a register once more in each scope made by then (`npm run test:lowest`).
  t.same([...new Set(late)], [0], 'a hook added after the plugin reaches none')
})

t.test('an HTTP login in flight when the server stops listening is answered with Connection: close, so a pooled connection holds no close', async t => {
  // A proxy's pooled connection (HAProxy, nginx's upstream keepalive) or a keep-alive agent: Node closes the idle ones
  // when the server closes, and one busy then stayed open after its answer, holding app.close() for the server's
  // keepAliveTimeout (72 s in Fastify); the reference server's SIGTERM took 75 s in a rolling deploy.
  const held = new Held()
  const identity: Identity = { user: 'u1', role: null, admin: false }
  const { app, url } = await build(t, { authRoutes: true, heartbeat: { enabled: false }, verifyCredentials: async () => { await held.hold(); return identity } })
  const agent = new Agent({ keepAlive: true })
  t.teardown(() => agent.destroy())
  const answer = new Promise<{ status: number, connection: string | undefined, ended: Promise<void>, body: string }>((resolve, reject) => {
    const request = httpRequest(url('/auth/login').replace('ws:', 'http:'), { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, response => {
      const ended = new Promise<void>(resolve => response.socket.once('close', () => resolve()))
      let body = ''
      response.on('data', (chunk: Buffer) => { body += String(chunk) })
      response.on('end', () => resolve({ status: response.statusCode!, connection: response.headers.connection, ended, body }))
    })
    request.on('error', reject)
    request.end(JSON.stringify({ email: 'u1@example.com', password: 'pw', mode: 'json' }))
  })
  await held.entered
  const closing = app.close()
  // Node closes the idle connections as the server stops listening, after the preClose hooks: the login's is busy.
  while (app.server.listening) await new Promise(resolve => setImmediate(resolve))
  held.release()
  const { status, connection, ended, body } = await within(answer, 'the login\'s answer')
  t.equal(status, 200, 'logged in')
  t.ok(JSON.parse(body).data.refresh_token, 'with its tokens')
  t.equal(connection, 'close', 'told the connection closes')
  await within(ended, 'the connection\'s close')
  await within(closing, 'app.close()')
})
