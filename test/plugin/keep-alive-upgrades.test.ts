// An upgrade on a reused HTTP keep-alive connection (a GET answered first: a `ws` client on a keep-alive http.Agent,
// a proxy's pooled connection) is routed as one on a fresh connection: answered, its checks run, its connection closed
// once refused. Node leaves `socket._httpMessage` null after a keep-alive answer, where a fresh socket has none.
import t, { type Test } from 'tap'
import { EventEmitter } from 'node:events'
import { Agent, get, type IncomingMessage } from 'node:http'
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import { buildSchema } from 'graphql'
import realtime from '../../lib/index.js'
import { closeIfLeft, routeWatched } from '../../lib/routes/answered-upgrades.js'
import { connect, noTcpConnections, secret, within, type Client } from '../helpers.js'

// Whose @fastify/websocket routes the upgrades: the plugin's own (the app has none), the app's, or the app's in a
// scope of its own (both listen to the server then).
const websockets = ['none', 'the app\'s', 'the app\'s in a scope of its own'] as const
type AppsWebsocket = typeof websockets[number]

/** An app with a `/ping` route and the plugin (JSON and GraphQL endpoints public, two sockets an address). */
async function boot (t: Test, websocket: AppsWebsocket): Promise<{ app: FastifyInstance, port: number }> {
  const app = Fastify()
  t.teardown(() => app.close())
  if (websocket === 'the app\'s') await app.register(fastifyWebsocket)
  if (websocket === 'the app\'s in a scope of its own') await app.register(async (scope) => { await scope.register(fastifyWebsocket) })
  app.get('/ping', async () => 'pong')
  await app.register(realtime, {
    env: {},
    secret,
    rest: { auth: 'public' },
    graphql: { auth: 'public', schema: buildSchema('type Query { hello: String }') },
    origins: ['https://app.example.com'],
    connLimitPerAddress: 2,
    heartbeat: { enabled: false }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, port: (app.server.address() as AddressInfo).port }
}

const upgrade = (path: string, headers = '') => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n` +
  `Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${headers}\r\n`
const ping = 'GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'

/** A raw TCP connection: what the server sent on it, and whether the server has closed it. */
class RawConnection {
  readonly socket: Socket
  received = ''
  readonly closed: Promise<void>
  #waiters: (() => void)[] = []

  constructor (port: number) {
    this.socket = createConnection({ host: '127.0.0.1', port })
    this.socket.on('data', (chunk) => {
      this.received += chunk.toString('latin1')
      for (const waiter of this.#waiters.splice(0)) waiter()
    })
    this.closed = new Promise(resolve => this.socket.on('close', () => resolve()))
    this.socket.on('error', () => {})
  }

  /** Resolves once what the server sent matches `pattern`. */
  async until (pattern: RegExp): Promise<void> {
    while (!pattern.test(this.received)) await new Promise<void>(resolve => this.#waiters.push(resolve))
  }

  /** The status lines the server sent, in order. */
  statuses (): string[] {
    return this.received.match(/HTTP\/1\.1 \d+/g) ?? []
  }
}

/** The GET answered on a fresh connection, then `second` written on it: the reused connection. */
async function afterPing (port: number, second: string): Promise<RawConnection> {
  const connection = new RawConnection(port)
  connection.socket.write(ping)
  await within(connection.until(/\r\n\r\npong$/), 'the answer to the GET')
  connection.socket.write(second)
  return connection
}

/** A `ws` client sharing a keep-alive agent with a GET answered just before: its upgrade reuses that connection. */
async function connectAfterGet (t: Test, port: number, path: string, protocols?: string): Promise<Client> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const used = await new Promise<number>((resolve, reject) => {
    get(`http://127.0.0.1:${port}/ping`, { agent }, (response) => {
      const { localPort } = response.socket
      response.resume()
      response.on('end', () => resolve(localPort!))
    }).on('error', reject)
  })
  const client = await within(connect(`ws://127.0.0.1:${port}${path}`, { agent, ...(protocols ? { protocols } : {}) }), `the upgrade to ${path}`)
  t.equal((client.ws as unknown as { _socket: Socket })._socket.localPort, used, `${path}: on the GET's connection`)
  return client
}

for (const websocket of websockets) {
  t.test(`${websocket}: a ws client on a keep-alive agent opens the JSON and GraphQL endpoints on the GET's connection`, async t => {
    const { app, port } = await boot(t, websocket)
    const json = await connectAfterGet(t, port, '/websocket')
    json.send({ type: 'ping', uid: 1 })
    t.same(await json.next(), { type: 'pong', uid: 1 })
    const graphql = await connectAfterGet(t, port, '/graphql', 'graphql-transport-ws')
    graphql.send({ type: 'connection_init' })
    t.match(await graphql.next(), { type: 'connection_ack' })
    await Promise.all([json.close(), graphql.close()])
    await within(noTcpConnections(app), 'the connections closing')
    await within(app.close(), 'app.close()')
  })

  t.test(`${websocket}: on a reused connection a stray upgrade gets 404, a foreign Origin 403, one past the address limit 429; each connection is closed`, async t => {
    const { app, port } = await boot(t, websocket)
    const stray = await afterPing(port, upgrade('/nothing'))
    await within(stray.closed, 'the 404\'s connection closing')
    t.same(stray.statuses(), ['HTTP/1.1 200', 'HTTP/1.1 404'], 'a stray upgrade')
    const foreign = await afterPing(port, upgrade('/websocket', 'Origin: https://evil.example.com\r\n'))
    await within(foreign.closed, 'the 403\'s connection closing')
    t.same(foreign.statuses(), ['HTTP/1.1 200', 'HTTP/1.1 403'], 'a foreign Origin')
    const open = [await connect(`ws://127.0.0.1:${port}/websocket`), await connect(`ws://127.0.0.1:${port}/graphql`, { protocols: 'graphql-transport-ws' })]
    const third = await afterPing(port, upgrade('/websocket'))
    await within(third.closed, 'the 429\'s connection closing')
    t.same(third.statuses(), ['HTTP/1.1 200', 'HTTP/1.1 429'], 'a third socket from 127.0.0.1')
    await Promise.all(open.map(client => client.close()))
    await within(noTcpConnections(app), 'the connections closing')
    await within(app.close(), 'app.close()')
  })

  t.test(`${websocket}: an upgrade accepted on a reused connection leaves nothing open once its client leaves`, async t => {
    const { app, port } = await boot(t, websocket)
    const accepted = await afterPing(port, upgrade('/websocket'))
    await within(accepted.until(/HTTP\/1\.1 101 /), 'the 101')
    t.same(accepted.statuses(), ['HTTP/1.1 200', 'HTTP/1.1 101'])
    accepted.socket.destroy()
    await within(noTcpConnections(app), 'the connection closing')
    await within(app.close(), 'app.close()')
  })
}

// The app's own @fastify/websocket fails one: it routes the upgrade while the earlier request's response holds the
// socket (ERR_HTTP_SOCKET_ASSIGNED), and leaves it unanswered. The plugin's listener (with none of the app's at the root)
// routes the plugin's paths once those responses are sent, and alone on the server, the stray ones too. With the app's
// at the root, the plugin closes the connection once those responses are sent: not held for good.
t.test('an upgrade pipelined behind GETs in one write is answered after them', async t => {
  for (const websocket of ['none', 'the app\'s in a scope of its own'] as const) {
    const { app, port } = await boot(t, websocket)
    const accepted = new RawConnection(port)
    accepted.socket.write(ping + ping + upgrade('/websocket'))
    await within(accepted.until(/HTTP\/1\.1 101 /), 'the 101')
    t.same(accepted.statuses(), ['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 101'], websocket)
    accepted.socket.destroy()
    if (websocket === 'none') {
      const stray = new RawConnection(port)
      stray.socket.write(ping + upgrade('/nothing'))
      await within(stray.closed, 'the 404\'s connection closing')
      t.same(stray.statuses(), ['HTTP/1.1 200', 'HTTP/1.1 404'], 'a stray upgrade')
    }
    await within(noTcpConnections(app), 'the connections closing')
    await within(app.close(), 'app.close()')
  }
})

t.test('an upgrade pipelined behind a GET, the app\'s @fastify/websocket at the root: closed once the GET is answered', async t => {
  for (const order of ['before', 'after'] as const) {
    const app = Fastify()
    t.teardown(() => app.close())
    if (order === 'before') await app.register(fastifyWebsocket)
    app.get('/ping', async () => 'pong')
    await app.register(realtime, { env: {}, secret, rest: { auth: 'public' }, heartbeat: { enabled: false } })
    if (order === 'after') await app.register(fastifyWebsocket)
    await app.listen({ host: '127.0.0.1', port: 0 })
    const port = (app.server.address() as AddressInfo).port
    const pipelined = new RawConnection(port)
    pipelined.socket.write(ping + upgrade('/websocket'))
    await within(pipelined.closed, 'the connection closing')
    t.same(pipelined.statuses(), ['HTTP/1.1 200'], `the app's registered ${order} the plugin`)
    await within(noTcpConnections(app), 'no connection held')
    // A fresh connection's upgrade is the app's @fastify/websocket's to route, as before.
    const client = await connect(`ws://127.0.0.1:${port}/websocket`)
    client.send({ type: 'ping' })
    t.same(await within(client.next(), 'the pong'), { type: 'pong' })
    client.ws.terminate()
    await within(app.close(), 'app.close()')
  }
})

/** A plain TCP server's side of a connection to it, and the client's; both closed at the end of the test. */
async function serverSide (t: Test): Promise<{ socket: Socket, client: Socket }> {
  const server = createServer()
  t.teardown(() => server.close())
  const taken = new Promise<Socket>(resolve => server.on('connection', resolve))
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const client = createConnection({ host: '127.0.0.1', port: (server.address() as AddressInfo).port })
  t.teardown(() => client.destroy())
  return { socket: await taken, client }
}

t.test('an upgrade no listener took is closed', async t => {
  const { socket, client } = await serverSide(t)
  routeWatched(socket, () => {})
  await within(new Promise(resolve => client.on('close', resolve)), 'the connection closing')
  t.ok(socket.destroyed)
})

t.test('a pipelined upgrade something took once the request before it was answered is left to it', async t => {
  const { socket } = await serverSide(t)
  const before = new EventEmitter()
  ;(socket as Socket & { _httpMessage: unknown })._httpMessage = before
  closeIfLeft({} as IncomingMessage, socket)
  before.emit('finish')
  socket.on('data', () => {}) // what an upgrade reading the connection adds
  await new Promise(resolve => setImmediate(resolve))
  t.notOk(socket.destroyed)
})
