// The real clients on the WebSocket they take in Node 22 and later when the app gives them none: the global one,
// undici's (README "Clients, per mode" and "Testing your app"). graphql-ws works on it as on `ws`. `@directus/sdk` 18
// answers pings, expiries and revocations on it, but loses frames that arrive together, and a refused upgrade ends its
// retries (Node 24 and later) or crashes the process (Node 22's undici 6): the README gives it the `NodeWebSocket` in
// every Node.
import { spawn } from 'node:child_process'
import type { IncomingMessage } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { authentication, createDirectus, realtime } from '@directus/sdk'
import { createClient } from 'graphql-ws'
import type { ExecutionResult } from 'graphql'
import { referenceSchema } from '../../example/schema.js'
import type { Connection } from '../../lib/connection/connection.js'
import { GlobalWebSocket, globalWebSocketName } from '../global-websocket.js'
import realtimePlugin from '../../lib/index.js'
import { admin, build, fakeClock, secret, stoppedDate, until, within } from '../helpers.js'
import { NodeWebSocket } from '../node-websocket.js'

interface Frame { type: string, uid?: string, i?: number, status?: string, error?: { code: string } }

/** An app with the auth routes and the reference schema on `/graphql`; `http` is its base URL for the SDK. */
async function app (t: Test, options: Parameters<typeof build>[1] = {}) {
  const built = await build(t, { users: [admin], authRoutes: true, graphql: { schema: referenceSchema(() => null) }, ...options })
  return { ...built, http: built.url('').replace('ws:', 'http:') }
}

for (const [name, WebSocket] of [[globalWebSocketName, GlobalWebSocket], ['the README\'s NodeWebSocket', NodeWebSocket]] as const) {
  t.test(`the SDK on ${name}: nine frames and a {"type":"ping"} the server sends in one write`, async t => {
    const { app: server, http } = await app(t)
    const client = createDirectus(http, { globals: { WebSocket } }).with(authentication('json')).with(realtime({ reconnect: false }))
    t.teardown(() => { client.stopRefreshing(); client.disconnect() })
    await client.login(admin.email, admin.password)
    const socket = await client.connect()
    const heard: Frame[] = []
    client.onWebSocket('message', (frame: Frame) => { heard.push(frame) })
    const arrived: Frame[] = []
    socket.addEventListener('message', (event: { data: unknown }) => { arrived.push(JSON.parse(String(event.data)) as Frame) })
    const [connection] = server.realtime.connections() as Connection[]
    let pongs = 0
    connection.socket.on('message', (data: Buffer) => { if ((JSON.parse(data.toString()) as Frame).type === 'pong') pongs++ })

    // One write, so one read at the client: the frames arrive together, as broadcasts and a beat's ping may.
    const tcp = (connection.socket as unknown as { _socket: Socket })._socket
    tcp.cork()
    for (let i = 0; i < 9; i++) connection.send({ type: 'burst', i })
    connection.send({ type: 'ping' })
    tcp.uncork()
    await within(until(() => arrived.length === 10), 'the ten frames on the socket')
    // A round trip after them: once the SDK hands on its answer, it has read (and answered) all it will of the ten.
    client.sendMessage({ type: 'ping', uid: 'after' })
    await within(until(() => heard.some(frame => frame.type === 'pong')), 'the answer to the SDK\'s ping')

    const burst = heard.filter(frame => frame.type === 'burst').length
    if (WebSocket === NodeWebSocket) {
      t.equal(burst, 9, 'the SDK hands on every frame: one a turn')
      t.equal(pongs, 1, 'and answers the ping')
    } else {
      t.ok(burst + pongs >= 1 && burst + pongs < 10, `the SDK hands on ${burst} of the nine and answers ${pongs} ping: it reads one frame, and the others go by before it listens again`)
    }
  })
}

t.test(`the SDK on ${globalWebSocketName} answers the heartbeat's JSON pings itself`, async t => {
  const clock = fakeClock(t, ['setInterval', 'clearInterval'])
  const { app: server, http } = await app(t, { heartbeat: { period: 0.2 } })
  const client = createDirectus(http, { globals: { WebSocket: GlobalWebSocket } }).with(authentication('json')).with(realtime({ reconnect: false }))
  t.teardown(() => { client.stopRefreshing(); client.disconnect() })
  await client.login(admin.email, admin.password)
  const socket = await client.connect()
  let closed = false
  socket.addEventListener('close', () => { closed = true })
  const [connection] = server.realtime.connections() as Connection[]
  for (let beat = 1; beat <= 5; beat++) {
    clock.tick(200) // a {"type":"ping"}, and the socket marked unanswered until a frame comes back
    await within(until(() => !connection.unanswered), `the SDK's pong to ping ${beat}`)
  }
  t.equal(closed, false, 'open across five beats')
})

t.test(`the SDK on ${globalWebSocketName}: TOKEN_EXPIRED refreshed and answered, then a logout's AUTH_REVOKED`, async t => {
  // Tokens live a second, on a Date stopped just before the one the first token ends at: it expires when the test
  // ticks the Date, and the tokens after it never do.
  const clock = stoppedDate(t)
  const { http } = await app(t, { accessTokenTtl: '1s' })
  const client = createDirectus(http, { globals: { WebSocket: GlobalWebSocket } }).with(authentication('json')).with(realtime({ reconnect: false }))
  t.teardown(() => { client.stopRefreshing(); client.disconnect() })
  await client.login(admin.email, admin.password)
  const socket = await client.connect()
  const arrived: Frame[] = []
  socket.addEventListener('message', (event: { data: unknown }) => { arrived.push(JSON.parse(String(event.data)) as Frame) })
  const closes: Array<[number, string]> = []
  socket.addEventListener('close', (event: { code: number, reason: string }) => { closes.push([event.code, event.reason]) })
  const auths = () => arrived.filter(frame => frame.type === 'auth').map(frame => frame.status === 'ok' ? 'ok' : frame.error!.code)

  clock.tick(20)
  await within(until(() => auths().length === 2), 'TOKEN_EXPIRED, then the answer to the SDK\'s re-auth')
  t.same(auths(), ['TOKEN_EXPIRED', 'ok'], 'the SDK refreshed over HTTP and sent the new token')

  await client.logout()
  await within(until(() => auths().length === 3), 'AUTH_REVOKED')
  t.same(auths(), ['TOKEN_EXPIRED', 'ok', 'AUTH_REVOKED'])
  t.same(closes, [], 'open throughout: the re-auth windows')
})

t.test(`the SDK on ${globalWebSocketName}: a refused upgrade ends its retries, or its process`, async t => {
  // Strict mode, and the upgrade after `refuse` is set refused with 503 (the connection limit, a server starting).
  const server = Fastify()
  await server.register(realtimePlugin, { env: {}, secret, rest: { auth: 'strict' } })
  let refuse = false
  server.addHook('onRequest', async (request, reply) => {
    if (request.ws && refuse) {
      refuse = false
      return reply.code(503).send()
    }
  })
  await server.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => server.close())
  const { port } = server.server.address() as AddressInfo
  const child = fileURLToPath(new URL(`global-websocket-sdk${import.meta.url.slice(import.meta.url.lastIndexOf('.'))}`, import.meta.url))
  const token = server.realtime.jwt.sign({ id: 'u1' })
  const sdk = spawn(process.execPath, [...process.execArgv, child, `ws://127.0.0.1:${port}/websocket`, token])
  t.teardown(() => { sdk.kill() })
  const events: string[] = []
  let stderr = ''
  sdk.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  let partial = ''
  sdk.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n')
    partial = lines.pop()!
    for (const event of lines) {
      events.push(event)
      // Its first socket open: closed 1013 (try again later), and its retry refused once with 503.
      if (event === 'open' && events.length === 1) {
        refuse = true
        server.realtime.close({ endpoint: 'rest' }, 1013, 'Try again later.')
      }
      // A second open: it got past the refusal.
      if (event === 'open' && events.length > 1) sdk.kill()
    }
  })
  const code = await within(new Promise<number | null>(resolve => sdk.once('close', resolve)), 'the SDK\'s process ending')
  t.notOk(events.slice(1).includes('open'), `it never opened a socket again (${events.slice(0, 5).join(', ')})`)
  if (code === 0) {
    t.same(events, ['open', 'close', 'error', 'close'], 'undici 7 and later: error then close in one turn, and the SDK gives up')
  } else {
    t.match(stderr, /RangeError: Maximum call stack size exceeded/, 'undici 6 (Node 22): its close() on the failed socket fires error again, whose SDK listener calls close()')
  }
})

/** Logs in over HTTP: the access and refresh tokens. */
async function login (http: string): Promise<{ access_token: string, refresh_token: string }> {
  const response = await fetch(`${http}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: admin.email, password: admin.password }) })
  return (await response.json() as { data: { access_token: string, refresh_token: string } }).data
}

t.test(`graphql-ws on ${globalWebSocketName}: handshake, subscription, and a logout's 4403 retried with a fresh token`, async t => {
  const { app: server, url, http } = await app(t)
  const upgrades: Record<string, string | string[] | undefined>[] = []
  server.server.on('upgrade', (request: IncomingMessage) => { upgrades.push(request.headers) })
  let session = await login(http)
  const sockets: WebSocket[] = []
  const closes: Array<[number, string]> = []
  const client = createClient({
    url: url('/graphql'),
    webSocketImpl: GlobalWebSocket,
    shouldRetry: () => true,
    retryWait: async () => {},
    connectionParams: async () => ({ access_token: session.access_token }),
    on: {
      connected: (socket) => { sockets.push(socket as WebSocket) },
      closed: (event) => { closes.push([(event as CloseEvent).code, (event as CloseEvent).reason]) }
    }
  })
  t.teardown(() => client.dispose())
  const ticks = client.iterate({ query: 'subscription { ticks(every: 20) }' })
  const tick = async () => ((await ticks.next()).value as ExecutionResult<{ ticks: number }>).data!.ticks
  t.equal(await tick(), 1)

  const loggedOut = session
  session = await login(http)
  await fetch(`${http}/auth/logout`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: loggedOut.refresh_token }) })
  await within(until(() => sockets.length === 2), 'graphql-ws connected again')
  let next = await tick()
  while (next !== 1) next = await tick() // ticks of the first socket still queued
  t.pass('the subscription started again on the new socket')
  await ticks.return?.()

  t.same(closes, [[4403, 'Forbidden']], 'the close code and reason as the client sees them')
  t.same(sockets.map(socket => [socket.protocol, socket.extensions]), [['graphql-transport-ws', ''], ['graphql-transport-ws', '']],
    'the subprotocol chosen, and no extension: the plugin declines the permessage-deflate offered')
  t.match(upgrades[0], { 'sec-websocket-protocol': 'graphql-transport-ws', 'sec-websocket-extensions': /permessage-deflate/ })
  t.equal(upgrades[0].origin, undefined, 'no Origin: not a browser, and no origin check applies')
})

t.test(`graphql-ws on ${globalWebSocketName} retries a refused upgrade with shouldRetry: () => true`, async t => {
  const { app: server, url } = await app(t, { graphql: { schema: referenceSchema(() => null), auth: 'strict' } })
  const token = server.realtime.jwt.sign({ id: 'u1' })
  let calls = 0
  let errors = 0
  const client = createClient({
    // No token the first time: HTTP 401, which reaches graphql-ws as an error event.
    url: async () => url(`/graphql${calls++ === 0 ? '' : `?access_token=${token}`}`),
    webSocketImpl: GlobalWebSocket,
    shouldRetry: () => true,
    retryWait: async () => {},
    on: { error: () => { errors++ } }
  })
  t.teardown(() => client.dispose())
  const result = await within(new Promise((resolve, reject) => {
    client.subscribe({ query: '{ me { id } }' }, { next: resolve, error: reject, complete: () => {} })
  }), 'the query through the retried socket')
  t.same(result, { data: { me: null } })
  t.equal(calls, 2, 'one refused upgrade, then one that opened')
  t.equal(errors, 1, 'the refusal: an error event')
})

t.test(`${globalWebSocketName} answers /graphql's ping frames itself`, async t => {
  const clock = fakeClock(t, ['setInterval', 'clearInterval'])
  const { app: server, url } = await app(t, { heartbeat: { period: 0.2 } })
  const closes: unknown[] = []
  const client = createClient({
    url: url('/graphql'),
    webSocketImpl: GlobalWebSocket,
    lazy: false,
    retryAttempts: 0,
    connectionParams: { access_token: server.realtime.jwt.sign({ id: 'u1' }) },
    on: { closed: (event) => { closes.push(event) } }
  })
  t.teardown(() => client.dispose())
  await within(new Promise(resolve => client.on('connected', resolve)), 'connection_ack')
  const [connection] = server.realtime.connections() as Connection[]
  for (let beat = 1; beat <= 5; beat++) {
    clock.tick(200) // a ping frame; graphql-ws's keepAlive is off, so only the WebSocket's own pong answers it
    await within(until(() => !connection.unanswered), `the pong to ping ${beat}`)
  }
  t.same(closes, [], 'open across five beats')
})
