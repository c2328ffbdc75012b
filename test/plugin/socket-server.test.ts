// The plugin's limits are its routes' alone: its sockets come from a ws server of its own (socket-server.ts), whichever
// @fastify/websocket routes the upgrade, and the app's own WebSocket routes keep what the app configured.
import t, { type Test } from 'tap'
import net from 'node:net'
import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyWebsocket, { type WebsocketPluginOptions } from '@fastify/websocket'
import realtime, { type RealtimeOptions } from '../../lib/index.js'
import { referenceSchema } from '../../example/schema.js'
import type { Connection } from '../../lib/connection/connection.js'
import { connect, fakeClock, secret, until, within } from '../helpers.js'

type Order = 'none' | 'before' | 'after'

interface Booted {
  app: FastifyInstance
  port: number
  url: (path: string) => string
  /** Error-level log lines. */
  errors: string[]
}

/**
 * An app with the plugin (JSON endpoint public) and, unless `order` is none, its own @fastify/websocket registered
 * before or after it with `websocket`, serving `/echo` (answers each frame with its length).
 */
async function boot (t: Test, order: Order, options: RealtimeOptions = {}, websocket: WebsocketPluginOptions = {}): Promise<Booted> {
  const errors: string[] = []
  const app = Fastify({ logger: { level: 'error', stream: { write: (line: string) => { errors.push(line) } } } })
  t.teardown(() => app.close())
  if (order === 'before') await app.register(fastifyWebsocket, websocket)
  await app.register(realtime, { env: {}, secret, rest: { auth: 'public' }, heartbeat: { enabled: false }, ...options })
  if (order === 'after') await app.register(fastifyWebsocket, websocket)
  if (order !== 'none') {
    app.get('/echo', { websocket: true }, (socket) => {
      socket.on('message', (data: Buffer) => socket.send(String(data.byteLength)))
    })
  }
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as net.AddressInfo
  return { app, port, url: (path) => `ws://127.0.0.1:${port}${path}`, errors }
}

/** Sends a frame of `bytes` bytes: `echoed N` (what `/echo` answers: the length it read), or `closed CODE`. */
async function echo (url: string, bytes: number): Promise<string> {
  const client = await connect(url)
  client.ws.send(Buffer.alloc(bytes, 'x'))
  const answer = await Promise.race([client.next().then(frame => `echoed ${frame}`), client.closed.then(closed => `closed ${closed.code}`)])
  client.ws.terminate()
  return answer
}

/** A raw upgraded TCP socket: for a frame header that announces more than it sends, which no client library writes. */
function rawUpgrade (port: number, path: string): Promise<{ socket: net.Socket, status: number }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
    })
    let head = Buffer.alloc(0)
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk])
      const end = head.indexOf('\r\n\r\n')
      if (end === -1) return
      socket.off('data', onData)
      socket.pause()
      const rest = head.subarray(end + 4)
      if (rest.length > 0) socket.unshift(rest)
      resolve({ socket, status: Number(/^HTTP\/1\.1 (\d+)/.exec(head.toString('latin1'))![1]) })
    }
    socket.on('data', onData)
    socket.on('error', reject)
  })
}

/** The header of a masked text frame announcing `length` payload bytes (mask key 0: the payload goes as it is). */
function frameHeader (length: number): Buffer {
  const header = Buffer.alloc(14)
  header[0] = 0x81
  header[1] = 0x80 | 127
  header.writeBigUInt64BE(BigInt(length), 2)
  return header
}

/**
 * The code of the server's close frame, or 'open' when none came within `ms` (ws waits for the rest of the frame), or
 * 'ended' when the connection ended without one.
 */
function closeCode (socket: net.Socket, ms = 1_000): Promise<number | 'open' | 'ended'> {
  return new Promise(resolve => {
    let received = Buffer.alloc(0)
    const timer = setTimeout(() => resolve('open'), ms)
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      // The server's frames are unmasked and short here: a 2-byte header, then the payload.
      while (received.length >= 2 && received.length >= 2 + (received[1] & 0x7f)) {
        const opcode = received[0] & 0x0f
        const length = received[1] & 0x7f
        if (opcode === 0x8) {
          clearTimeout(timer)
          resolve(received.readUInt16BE(2))
          return
        }
        received = received.subarray(2 + length)
      }
    })
    socket.on('close', () => { clearTimeout(timer); resolve('ended') })
    socket.on('error', () => {})
    socket.resume()
  })
}

for (const order of ['before', 'after'] as const) {
  t.test(`the app's @fastify/websocket registered ${order} the plugin keeps ws's defaults for the app's routes`, async t => {
    const { port, url } = await boot(t, order)
    t.equal(await echo(url('/echo'), 1024 * 1024), 'echoed 1048576', "a 1 MiB frame on the app's route")
    t.equal(await echo(url('/websocket'), 65536 + 1), 'closed 1009', "one byte past the plugin's 64 KiB on its route")
    const plugin = await rawUpgrade(port, '/websocket')
    plugin.socket.write(frameHeader(65536 + 1))
    t.equal(await closeCode(plugin.socket), 1009, 'refused by ws at the header, not read to the end first')
    plugin.socket.destroy()
  })
}

t.test("the plugin's routes are capped at its maxPayload by ws, whatever the app's @fastify/websocket allows", async t => {
  const { port, url, errors } = await boot(t, 'before', {}, { options: { maxPayload: 4 * 1024 * 1024 } })
  // The header alone is refused: nothing of the announced megabyte is read, let alone buffered.
  const plugin = await rawUpgrade(port, '/websocket')
  t.equal(plugin.status, 101)
  plugin.socket.write(frameHeader(1024 * 1024))
  t.equal(await closeCode(plugin.socket), 1009, 'closed at the header')
  plugin.socket.destroy()
  // The app's route waits for the rest of the frame its limit allows.
  const own = await rawUpgrade(port, '/echo')
  own.socket.write(frameHeader(1024 * 1024))
  t.equal(await closeCode(own.socket, 200), 'open', "the app's route reads on")
  own.socket.destroy()
  t.equal(await echo(url('/echo'), 1024 * 1024), 'echoed 1048576')
  t.same(errors, [], "a refused frame is the client's fault: no error under the app's default errorHandler")
})

t.test("the plugin's routes take what its maxPayload allows past a smaller limit of the app's", async t => {
  const { url } = await boot(t, 'before', { maxPayload: 65536 }, { options: { maxPayload: 1024 } })
  const client = await connect(url('/websocket'))
  client.send({ type: 'ping', uid: 'x'.repeat(10_000) })
  t.same(await Promise.race([client.next(), client.closed]), { type: 'pong', uid: 'x'.repeat(10_000) }, 'a 10 kB frame on the plugin route')
  await client.close()
  t.equal(await echo(url('/echo'), 2048), 'closed 1009', "the app's 1 KiB holds on its own route")
})

t.test('a frame the plugin refuses closes 1009 and 1007 under the app\'s default errorHandler too', async t => {
  const { url, errors } = await boot(t, 'before', { maxPayload: 1024 })
  for (const [code, refused] of [[1009, 'x'.repeat(2048)], [1007, Buffer.from([0xff])]] as const) {
    const client = await connect(url('/websocket'))
    client.ws.send(refused, { binary: false })
    for (let i = 0; i < 20; i++) client.send({ type: 'ping', uid: 'y'.repeat(i * 50) })
    t.equal((await client.closed).code, code)
  }
  t.same(errors, [])
})

t.test("the plugin's routes never negotiate permessage-deflate, whatever the app's @fastify/websocket offers", async t => {
  // Inflated frames would cost zlib's CPU and memory before the max payload could refuse them (a decompression bomb).
  const { url } = await boot(t, 'before', {}, { options: { perMessageDeflate: true } })
  const own = await connect(url('/echo'), { perMessageDeflate: true })
  t.equal(own.ws.extensions, 'permessage-deflate', "the app's route negotiates it, as the app asked")
  await own.close()
  const plugin = await connect(url('/websocket'), { perMessageDeflate: true })
  t.equal(plugin.ws.extensions, '', 'not the plugin\'s')
  // A frame marked compressed (RSV1) anyway: a protocol error.
  ;(plugin.ws as unknown as { _socket: net.Socket })._socket.write(Buffer.from([0xc1, 0x81, 0, 0, 0, 0, 0x7b]))
  t.equal((await plugin.closed).code, 1002)
})

t.test("the plugin's sockets are its own server's, never the app's @fastify/websocket's", async t => {
  // What breaks if @fastify/websocket ever stops upgrading through `websocketServer.handleUpgrade`.
  const { app, url } = await boot(t, 'before')
  const plugin = await connect(url('/websocket'))
  t.equal(app.websocketServer.clients.size, 0, "not among the app's sockets")
  const own = await connect(url('/echo'))
  t.equal(app.websocketServer.clients.size, 1, "the app's route: the app's server")
  await own.close()
  // Closing the app closes the plugin's sockets as @fastify/websocket closes its own.
  await app.close()
  t.equal((await plugin.closed).code, 1005)
})

t.test('without a @fastify/websocket of the app, the plugin leaves none on the app', async t => {
  const { app, port, url } = await boot(t, 'none')
  t.notOk(app.hasDecorator('websocketServer'), 'no websocketServer')
  t.notOk(app.hasDecorator('injectWS'), 'no injectWS')
  t.notOk(app.hasRequestDecorator('ws'), 'no request.ws')
  const plugin = await rawUpgrade(port, '/websocket')
  plugin.socket.write(frameHeader(1024 * 1024))
  t.equal(await closeCode(plugin.socket), 1009, "the plugin's own cap")
  plugin.socket.destroy()
  // An upgrade to a path the plugin does not serve gets Fastify's 404, and its socket is ended.
  const stray = await rawUpgrade(port, '/elsewhere')
  t.equal(stray.status, 404)
  t.equal(await closeCode(stray.socket), 'ended')
  const client = await connect(url('/websocket'))
  await app.close()
  t.equal((await client.closed).code, 1005, 'closed with the app')
})

t.test('every plugin socket shares its listeners: an idle socket keeps no closure of its own for its events', async t => {
  const { app, url } = await boot(t, 'none', { graphql: { schema: referenceSchema(() => null) } })
  const json = [await connect(url('/websocket')), await connect(url('/websocket'))]
  const graphql = [
    await connect(url('/graphql'), { protocols: 'graphql-transport-ws' }),
    await connect(url('/graphql'), { protocols: 'graphql-transport-ws' })
  ]
  await until(() => app.realtime.connections().length === 4)
  const sockets = (app.realtime.connections() as Connection[]).map(connection => connection.socket)
  for (const event of ['message', 'close', 'error', 'pong'] as const) {
    const listeners = new Set(sockets.flatMap(socket => socket.listeners(event)))
    t.ok(listeners.size <= 1, `one '${event}' listener for every socket, not one each (${listeners.size})`)
  }
  t.equal(sockets[0].listenerCount('pong'), 0, 'a JSON socket has no pong listener: its heartbeat answers are frames')
  await Promise.all([...json, ...graphql].map(client => client.close()))
})

t.test('app.close() cuts a socket whose client never answers the close, a second on, and reads a paused one\'s answer', async t => {
  let open!: () => void
  const gate = new Promise<void>(resolve => { open = resolve })
  t.teardown(() => open())
  let started = 0
  let allRunning!: () => void
  const limitReached = new Promise<void>(resolve => { allRunning = resolve })
  const app = Fastify()
  await app.register(realtime, {
    env: {},
    secret,
    heartbeat: { enabled: false },
    rest: { auth: 'public', handlers: { job: async () => { if (++started === 100) allRunning(); await gate } } }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `ws://127.0.0.1:${(app.server.address() as net.AddressInfo).port}/websocket`
  // An honest client whose server socket is paused, its frames waiting for a handler slot ...
  const busy = await connect(url)
  for (let i = 0; i < 110; i++) busy.send({ type: 'job' })
  await limitReached
  // ... and one that reads nothing more, and never answers.
  const silent = await connect(url)
  ;(silent.ws as unknown as { _socket: net.Socket })._socket.pause()
  // ws's own 30 s wait, and the plugin's grace, are the test's to end.
  const clock = fakeClock(t, ['setTimeout', 'clearTimeout'])
  let closed = false
  const closing = app.close().then(() => { closed = true })
  t.equal((await within(busy.closed, 'the busy client\'s close')).code, 1005, 'the paused socket read its client\'s answer')
  await new Promise(resolve => setImmediate(resolve))
  t.notOk(closed, 'the silent one holds the close until the grace ends')
  clock.tick(1_000)
  await within(closing, 'app.close()')
  t.ok(closed, 'then it is cut')
  silent.ws.terminate()
})
