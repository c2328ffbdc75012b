// The shapes of Fastify server an app deploys the plugin on: TLS (`https`), HTTP/2 with HTTP/1.1 beside it, a server
// of the app's own (`serverFactory`), a unix socket, IPv6, `forceCloseConnections`, `return503OnClosing: false`, and
// Node's connection timeouts. Sockets open and close with the app in each, and what an HTTP/2 client sends is answered.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, request as httpRequest } from 'node:http'
import { connect as http2Connect, constants as http2Constants, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2'
import { createConnection, type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { Duplex } from 'node:stream'
import { join } from 'node:path'
import Fastify, { type FastifyInstance, type FastifyListenOptions, type FastifyServerOptions } from 'fastify'
import t, { type Test } from 'tap'
import fastifyWebsocket from '@fastify/websocket'
import realtime from '../../lib/index.js'
import { refuseUpgradeOn } from '../../lib/errors.js'
import { admin, connect, directoryOf, fakeClock, secret, upgradeRefusal, within, type Client } from '../helpers.js'

function certificate (t: Test): { key: Buffer, cert: Buffer } {
  const dir = t.testdir({})
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' })
  return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }
}

/** The app in `server`'s shape, listening as `listen` says, the plugin on it with its auth routes. */
async function boot (t: Test, server: FastifyServerOptions, listen: FastifyListenOptions = { host: '127.0.0.1', port: 0 }): Promise<FastifyInstance> {
  const app = Fastify(server) as unknown as FastifyInstance
  t.teardown(() => app.close())
  app.get('/ping', async () => 'pong')
  await app.register(realtime, { env: {}, secret, users: await directoryOf([admin]), authRoutes: true, rest: { auth: 'public' }, heartbeat: { enabled: false } })
  await app.listen(listen)
  return app
}

/** A socket that answers a ping: open, and read. */
async function answers (client: Client): Promise<unknown> {
  client.send({ type: 'ping', uid: 1 })
  return within(client.next(), 'the pong')
}

const shapes: [string, (t: Test) => FastifyServerOptions, FastifyListenOptions | null, (app: FastifyInstance) => string][] = [
  ['https', t => ({ https: certificate(t) }) as FastifyServerOptions, null, app => `wss://127.0.0.1:${(app.server.address() as AddressInfo).port}/websocket`],
  ['http2 with allowHTTP1', t => ({ http2: true, https: { ...certificate(t), allowHTTP1: true } }) as FastifyServerOptions, null,
    app => `wss://127.0.0.1:${(app.server.address() as AddressInfo).port}/websocket`],
  ['serverFactory', () => ({ serverFactory: (handler) => createServer(handler) }), null, app => `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/websocket`],
  ['a unix socket', () => ({}), { path: 'unix' }, app => `ws+unix://${app.server.address() as string}:/websocket`],
  ['IPv6 ::1', () => ({}), { host: '::1', port: 0 }, app => `ws://[::1]:${(app.server.address() as AddressInfo).port}/websocket`],
  ['forceCloseConnections: true', () => ({ forceCloseConnections: true }), null, app => `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/websocket`],
  ["forceCloseConnections: 'idle'", () => ({ forceCloseConnections: 'idle' }), null, app => `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/websocket`]
]

for (const [name, server, listen, url] of shapes) {
  t.test(`${name}: a socket opens, and app.close() closes it (1005) and resolves`, async t => {
    let at = listen ?? undefined
    if (listen?.path) {
      const dir = mkdtempSync(join(tmpdir(), 'server-shapes-'))
      t.teardown(() => rmSync(dir, { recursive: true, force: true }))
      at = { path: join(dir, 'app.sock') }
    }
    const app = await boot(t, server(t), at)
    const client = await within(connect(url(app), { rejectUnauthorized: false }), 'the socket to open')
    t.same(await answers(client), { type: 'pong', uid: 1 })
    await within(app.close(), 'app.close()')
    t.equal((await within(client.closed, 'the close')).code, 1005)
  })
}

/** A request on an HTTP/2 session: its status, its headers and its body. */
function h2Request (session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string): Promise<{ status: number, headers: Record<string, unknown>, body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers)
    let text = ''
    let answer: Record<string, unknown> = {}
    stream.on('response', (got) => { answer = got })
    stream.on('data', (chunk: Buffer) => { text += String(chunk) })
    stream.on('end', () => resolve({ status: answer[':status'] as number, headers: answer, body: text }))
    stream.on('error', reject)
    stream.end(body)
  })
}

t.test('http2 with allowHTTP1: an HTTP/2 client logs in; a WebSocket over HTTP/2 (RFC 8441 extended CONNECT) is refused, the session unharmed', async t => {
  // The app let extended CONNECT be asked for (Node's HTTP/2 server does not offer it by default): still no socket there.
  const app = await boot(t, { http2: true, https: { ...certificate(t), allowHTTP1: true, settings: { enableConnectProtocol: true } } } as FastifyServerOptions)
  const session = http2Connect(`https://127.0.0.1:${(app.server.address() as AddressInfo).port}`, { rejectUnauthorized: false })
  t.teardown(() => session.destroy())
  const login = await within(h2Request(session, { ':method': 'POST', ':path': '/auth/login', 'content-type': 'application/json' },
    JSON.stringify({ email: admin.email, password: admin.password, mode: 'session' })), 'the login')
  t.equal(login.status, 200)
  t.match(login.headers['set-cookie'], [/^directus_session_token=/], 'its session cookie')
  t.equal(login.headers.connection, undefined, 'no connection header: HTTP/2 has none')
  t.equal(session.remoteSettings.enableConnectProtocol, true)
  const tunnel = await within(h2Request(session, { ':method': 'CONNECT', ':protocol': 'websocket', ':path': '/websocket', ':scheme': 'https', 'sec-websocket-version': '13' }), 'the extended CONNECT')
  t.equal(tunnel.status, 405, 'refused')
  const plain = await within(h2Request(session, { ':method': 'GET', ':path': '/websocket' }), 'an HTTP/2 GET of the endpoint')
  t.equal(plain.status, 404, 'no socket over HTTP/2')
  t.equal((await within(h2Request(session, { ':method': 'GET', ':path': '/ping' }), 'the app\'s route')).body, 'pong', 'the session still serves')
  session.destroy()
  await within(app.close(), 'app.close()')
})

/** A text frame as a client sends it (masked, under 126 bytes). */
function clientFrame (text: string): Buffer {
  const payload = Buffer.from(text)
  const mask = Buffer.from([1, 2, 3, 4])
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, payload.map((byte, i) => byte ^ mask[i % 4]!)])
}

/** A raw TCP connection to `port`: what the server sent on it, read as text. */
function rawConnection (t: Test, port: number): { socket: Socket, until: (pattern: RegExp) => Promise<string> } {
  const socket = createConnection({ host: '127.0.0.1', port })
  t.teardown(() => socket.destroy())
  let received = ''
  const waiters: (() => void)[] = []
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('latin1')
    for (const waiter of waiters.splice(0)) waiter()
  })
  socket.on('error', () => {})
  socket.on('close', () => { for (const waiter of waiters.splice(0)) waiter() })
  const until = async (pattern: RegExp): Promise<string> => {
    while (!pattern.test(received)) {
      if (socket.destroyed) throw new Error(`closed, having sent ${JSON.stringify(received)}`)
      await new Promise<void>(resolve => waiters.push(resolve))
    }
    return received
  }
  return { socket, until }
}

const upgrade = 'GET /websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
  'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'
const ping = 'GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'

t.test("Node's timeouts, shorter than a socket's life, cut no socket, fresh or upgraded on a keep-alive connection", async t => {
  // Each timeout checked every 50 ms: the sockets outlive every one of them several times over before they are read.
  const app = await boot(t, {
    connectionTimeout: 200,
    keepAliveTimeout: 200,
    requestTimeout: 200,
    maxRequestsPerSocket: 2,
    http: { connectionsCheckingInterval: 50, headersTimeout: 150 }
  } as FastifyServerOptions)
  const { port } = app.server.address() as AddressInfo
  const fresh = rawConnection(t, port)
  fresh.socket.write(upgrade)
  // The GET answered first, the upgrade written on the same connection at once: a wait there would race the keep-alive
  // timeout on a loaded machine, which may end an idle connection, as it should.
  const reused = rawConnection(t, port)
  reused.socket.write(ping)
  await within(reused.until(/\r\n\r\npong$/), 'the answer to the GET')
  reused.socket.write(upgrade)
  for (const connection of [fresh, reused]) await within(connection.until(/ 101 Switching Protocols\r\n[^]*\r\n\r\n$/), 'the upgrade')
  await new Promise(resolve => setTimeout(resolve, 1_000))
  for (const connection of [fresh, reused]) {
    connection.socket.write(clientFrame(JSON.stringify({ type: 'ping', uid: 1 })))
    t.match(await within(connection.until(/\{"type":"pong","uid":1\}$/), 'the pong'), /101 Switching Protocols/)
  }
})

/**
 * Credential checks that start and wait to be released, each answering `answer(i)`: while one is held, the app's close
 * waits for it. `started(i)` resolves once the i-th has started.
 */
function heldChecks<T> (answer: (i: number) => T) {
  const entered: (() => void)[] = []
  const release: (() => void)[] = []
  const starts: Promise<void>[] = []
  const releases: Promise<void>[] = []
  const of = (i: number) => {
    starts[i] ??= new Promise<void>(resolve => { entered[i] = resolve })
    releases[i] ??= new Promise<void>(resolve => { release[i] = resolve })
  }
  let checks = 0
  return {
    started: (i = 0) => { of(i); return starts[i]! },
    release: (i = 0) => { of(i); release[i]!() },
    verifyCredentials: async () => {
      const check = checks++
      of(check)
      entered[check]!()
      await releases[check]
      return answer(check)
    }
  }
}

/** The plugin on `app`, its password checks `checks`'s, listening on loopback: the port. */
async function listening (app: FastifyInstance, checks: { verifyCredentials: () => Promise<unknown> }, authRoutes = false): Promise<number> {
  await app.register(realtime, { env: {}, secret, authRoutes, heartbeat: { enabled: false }, verifyCredentials: checks.verifyCredentials as never })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return (app.server.address() as AddressInfo).port
}

/**
 * Begins the app's close once the plugin's preClose hook runs (an idle socket closed 1005: Fastify's cut, with
 * forceCloseConnections, would come right after): the close under way, in an object (a promise returned would be awaited).
 */
async function closeBegun (t: Test, app: FastifyInstance, port: number): Promise<{ closing: Promise<undefined> }> {
  const idle = await connect(`ws://127.0.0.1:${port}/websocket`)
  const closing = app.close()
  t.equal((await within(idle.closed, 'the idle socket\'s close')).code, 1005)
  return { closing }
}

/** A socket whose password check is held (it holds the close open): the socket. */
async function checkedSocket (port: number, checks: { started: () => Promise<void> }): Promise<Client> {
  const checked = await connect(`ws://127.0.0.1:${port}/websocket`)
  checked.send({ type: 'auth', email: admin.email, password: 'wrong' })
  await within(checks.started(), 'the check to start')
  return checked
}

for (const websocket of ['the plugin\'s', 'the app\'s']) {
  t.test(`return503OnClosing: false, ${websocket} @fastify/websocket: an upgrade reaching the app while it closes is answered 503, a plain request as before`, async t => {
    // Fastify routes what comes once the app closes, and @fastify/websocket no longer listens for upgrades then: Node
    // routes the upgrade as a plain request, which the endpoint would answer 404.
    const checks = heldChecks(() => null)
    const app = Fastify({ return503OnClosing: false })
    t.teardown(() => app.close())
    if (websocket === 'the app\'s') await app.register(fastifyWebsocket)
    const port = await listening(app, checks)
    // A check in flight holds the close open; an idle socket closes as it begins.
    const checked = await checkedSocket(port, checks)
    const { closing } = await closeBegun(t, app, port)
    const refusal = await within(upgradeRefusal(`ws://127.0.0.1:${port}/websocket`), 'the upgrade\'s answer')
    t.equal(refusal.status, 503)
    t.same(JSON.parse(refusal.body), { errors: [{ message: 'Service unavailable.', extensions: { code: 'SERVICE_UNAVAILABLE' } }] })
    t.equal(refusal.headers.connection, 'close')
    const plain = await within(new Promise<number>((resolve, reject) => {
      httpRequest({ host: '127.0.0.1', port, path: '/websocket', agent: false }, (response) => { response.resume(); resolve(response.statusCode!) })
        .on('error', reject).end()
    }), 'the plain request\'s answer')
    t.equal(plain, 404, 'a plain GET of the endpoint, as while the app runs')
    checks.release()
    t.match(await within(checked.next(), 'the check\'s answer'), { type: 'auth', status: 'error' })
    await within(closing, 'app.close()')
  })
}

// The session closed by the server ends an HTTP/2 client's wait: Node before 24 leaves open sessions to
// `http2SessionTimeout` (72 s) on close unless Fastify's `forceCloseConnections` is true (README, Deploying).
t.test('http2 with forceCloseConnections: true: app.close() with an HTTP/2 session open resolves', async t => {
  const app = await boot(t, { http2: true, forceCloseConnections: true, https: { ...certificate(t), allowHTTP1: true } } as FastifyServerOptions)
  const session = http2Connect(`https://127.0.0.1:${(app.server.address() as AddressInfo).port}`, { rejectUnauthorized: false })
  t.teardown(() => session.destroy())
  const goaway = new Promise<number>(resolve => session.once('goaway', resolve))
  t.equal((await within(h2Request(session, { ':method': 'GET', ':path': '/ping' }), 'the app\'s route')).body, 'pong')
  await within(app.close(), 'app.close()')
  t.equal(await within(goaway, 'the session\'s GOAWAY'), http2Constants.NGHTTP2_NO_ERROR)
})

/** A login posted on a connection of its own: its status and body, or the error that ended it. */
function postLogin (port: number, body: string | null): Promise<{ status: number, body: string } | { error: string }> {
  return new Promise(resolve => {
    const login = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/auth/login', agent: false, headers: { 'content-type': 'application/json', 'content-length': 200 } }, (response) => {
      let text = ''
      response.on('data', (chunk: Buffer) => { text += String(chunk) })
      response.on('end', () => resolve({ status: response.statusCode!, body: text }))
    })
    login.on('error', (err: Error) => resolve({ error: err.message }))
    // `null`: the headers alone, the body never sent.
    if (body === null) login.flushHeaders()
    else login.end(body.padEnd(200))
  })
}

t.test('forceCloseConnections: true: an HTTP login in flight when the app closes gets its answer before Fastify cuts every connection', async t => {
  // Fastify cuts the busy connections too once the preClose hooks are done: the login's session was made for a client
  // that never heard of it.
  const checks = heldChecks(() => ({ user: 'u1', role: null, admin: false }))
  const app = Fastify({ forceCloseConnections: true })
  t.teardown(() => app.close())
  const port = await listening(app, checks, true)
  const login = postLogin(port, JSON.stringify({ email: 'u1@example.com', password: 'pw', mode: 'json' }))
  await within(checks.started(), 'the check to start')
  const { closing } = await closeBegun(t, app, port)
  checks.release()
  const answer = await within(login, 'the login\'s answer')
  t.match(answer, { status: 200 })
  t.ok(JSON.parse((answer as { body: string }).body).data.refresh_token, 'with its tokens')
  await within(closing, 'app.close()')
})

t.test('forceCloseConnections: true, return503OnClosing: false: a login that reaches the app while it closes gets its answer too', async t => {
  // Fastify routes it (no 503), and the plugin checks it: cut once the preClose hooks are done, its session was made
  // for a client that never heard of it, as one in flight when the close began.
  const checks = heldChecks(i => ({ user: `u${i}`, role: null, admin: false }))
  const app = Fastify({ forceCloseConnections: true, return503OnClosing: false })
  t.teardown(() => app.close())
  const port = await listening(app, checks, true)
  const first = postLogin(port, JSON.stringify({ email: 'u0@example.com', password: 'pw', mode: 'json' }))
  await within(checks.started(0), 'the first check to start')
  const { closing } = await closeBegun(t, app, port)
  // The close under way (the plugin's preClose hook waits for the first login): a second one comes, and waits for the
  // first's turn to end (one check at a time).
  const arrived = new Promise(resolve => app.server.once('request', resolve))
  const second = postLogin(port, JSON.stringify({ email: 'u1@example.com', password: 'pw', mode: 'json' }))
  await within(arrived, 'the second request')
  await new Promise(resolve => setImmediate(resolve))
  checks.release(0)
  t.match(await within(first, 'the first login\'s answer'), { status: 200 })
  await within(checks.started(1), 'the second check to start')
  checks.release(1)
  const answer = await within(second, 'the second login\'s answer')
  t.match(answer, { status: 200 })
  await within(closing, 'app.close()')
})

t.test('an app\'s own upgrade listener beside the plugin: an upgrade of the plugin\'s reaching the app while it closes is answered 503, and app.close() resolves', async t => {
  const checks = heldChecks(() => null)
  const app = Fastify()
  t.teardown(() => app.close())
  const port = await listening(app, checks)
  // The app's own upgrades (a ws server of its own, `noServer`), which leaves the other paths to other listeners.
  const own = (request: { url?: string }, socket: Socket) => { if (request.url === '/own') socket.end('HTTP/1.1 501 Not Implemented\r\n\r\n') }
  app.server.on('upgrade', own)
  const checked = await checkedSocket(port, checks)
  const { closing } = await closeBegun(t, app, port)
  const late = rawConnection(t, port)
  late.socket.write(upgrade)
  const answer = await within(late.until(/\r\n\r\n\{.*\}$/), 'the late upgrade\'s answer')
  t.match(answer, /^HTTP\/1\.1 503 Service Unavailable\r\n/)
  t.match(answer, /\r\nConnection: close\r\n/)
  t.same(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)), { errors: [{ message: 'Service unavailable.', extensions: { code: 'SERVICE_UNAVAILABLE' } }] })
  checks.release()
  t.match(await within(checked.next(), 'the check\'s answer'), { type: 'auth', status: 'error' })
  await within(closing, 'app.close()')
  t.same(app.server.listeners('upgrade'), [own], 'the app\'s own listener alone stays on its server')
})

t.test('an upgrade refused on its connection while the app closes: a client that reset it is no uncaught error', async t => {
  // Node takes its error listener off a socket it hands to the 'upgrade' listeners.
  const reset = new Duplex({ read () {}, write (_chunk, _encoding, done) { done(new Error('read ECONNRESET')) } })
  refuseUpgradeOn(reset, { code: 'SERVICE_UNAVAILABLE' })
  await new Promise(resolve => reset.once('close', resolve))
  t.ok(reset.destroyed, 'its connection ended')
})

t.test('forceCloseConnections: true: a request that is never answered holds the close for the store timeout, then is cut', async t => {
  const app = await boot(t, { forceCloseConnections: true })
  const { port } = app.server.address() as AddressInfo
  // Its body never comes: the route never answers.
  const arrived = new Promise(resolve => app.server.once('request', resolve))
  const login = postLogin(port, null)
  await within(arrived, 'the request')
  // Its hooks run as Node hands it over: it is in flight a turn later.
  await new Promise(resolve => setImmediate(resolve))
  const clock = fakeClock(t, ['setTimeout', 'clearTimeout'])
  let closed = false
  const closing = app.close().then(() => { closed = true })
  await clock.tickAsync(2_999)
  t.notOk(closed, 'held')
  await clock.tickAsync(1)
  await within(closing, 'app.close()')
  t.match(await within(login, 'the cut'), { error: /socket hang up|ECONNRESET/ })
})
