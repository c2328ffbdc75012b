// A client that never answers the server's close (PROTOCOL.md section 11): the socket is cut a second on, not after
// ws's own 30 s, so a silent flood holds its places under the connection limits for the auth window and that second.
// A client still reading what came before the app's close is not cut: it gets the close.
import t, { type Test } from 'tap'
import { connect as connectTcp, createServer, type AddressInfo, type Socket } from 'node:net'
import { buildSchema } from 'graphql'
import type { WebSocket } from 'ws'
import type { Connection } from '../../lib/connection/connection.js'
import type { Clock } from '@sinonjs/fake-timers'
import { build, connect, fakeClock, refusedWith, within, type Built, type Client } from '../helpers.js'

const realSetTimeout = setTimeout

/** Waits in real time (the test's clock is fake) until `done` holds, failing after 30 s. */
async function eventually (done: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !done(); waited += 10) {
    if (waited > 30_000) throw new Error(`${what}: not within 30 s`)
    await new Promise(resolve => realSetTimeout(resolve, 10))
  }
}

/** A client that reads nothing more from now on: the server's close frame is never answered. */
function silence (client: Client): void {
  ;(client.ws as unknown as { _socket: Socket })._socket.pause()
}

/**
 * The server side of `app`'s one socket, taken while it is open: `connections()` lists the open sockets alone. It is
 * gone, its place free, once CLOSED (ws sets it as it emits the close the plugin lets the socket go at).
 */
const serverSocket = (app: Built['app']): WebSocket => (app.realtime.connections()[0] as Connection).socket

/**
 * The server has closed `socket` (or is about to): once it is closing, a tick of the grace cuts it, and a new client
 * takes its place.
 */
async function cutAndReplaced (t: Test, socket: WebSocket, clock: Clock, url: string, options: { protocols?: string } = {}): Promise<void> {
  await eventually(() => socket.readyState === socket.CLOSING, 'the close')
  clock.tick(1_000)
  await eventually(() => socket.readyState === socket.CLOSED, 'the socket cut')
  const next = await connect(url, options)
  t.pass('a new client takes the place')
  await next.close()
}

for (const endpoint of ['websocket', 'graphql'] as const) {
  t.test(`/${endpoint}: a silent client closed at the end of its auth window frees its place a second on`, async t => {
    // The auth window and the close grace run on the fake clock; sockets in real time.
    const clock = fakeClock(t)
    const { app, url } = await build(t, {
      heartbeat: { enabled: false },
      rest: { auth: 'handshake', authTimeout: 1, connLimit: 1 },
      graphql: { schema: buildSchema('type Query { hello: String }'), authTimeout: 1, connLimit: 1 }
    })
    const protocols = endpoint === 'graphql' ? { protocols: 'graphql-transport-ws' } : {}
    const silent = await connect(url(`/${endpoint}`), protocols)
    const socket = serverSocket(app)
    t.teardown(() => silent.ws.terminate())
    silence(silent)
    t.equal((await refusedWith(url(`/${endpoint}`))).status, 503, 'the one place is taken')
    clock.tick(1_000) // the auth window ends
    await cutAndReplaced(t, socket, clock, url(`/${endpoint}`), protocols)
  })
}

t.test('a client whose handshake failed (a first frame that is no auth), then silent, frees its place a second on', async t => {
  const clock = fakeClock(t)
  const { app, url } = await build(t, { heartbeat: { enabled: false }, rest: { auth: 'handshake', connLimit: 1 } })
  const client = await connect(url('/websocket'))
  const socket = serverSocket(app)
  t.teardown(() => client.ws.terminate())
  silence(client)
  client.send({ type: 'hello' })
  await cutAndReplaced(t, socket, clock, url('/websocket'))
})

t.test('/graphql: a client whose connection_init was refused, then silent, frees its place a second on', async t => {
  const clock = fakeClock(t)
  const { app, url } = await build(t, {
    heartbeat: { enabled: false },
    graphql: { schema: buildSchema('type Query { hello: String }'), auth: 'handshake', connLimit: 1 }
  })
  const client = await connect(url('/graphql'), { protocols: 'graphql-transport-ws' })
  const socket = serverSocket(app)
  t.teardown(() => client.ws.terminate())
  silence(client)
  client.send({ type: 'connection_init', payload: { access_token: 'not a token' } })
  await cutAndReplaced(t, socket, clock, url('/graphql'), { protocols: 'graphql-transport-ws' })
})

t.test('public mode: the re-auth window that runs out leaves the socket open and public, past the grace', async t => {
  const clock = fakeClock(t)
  const { app, url } = await build(t, { heartbeat: { enabled: false }, rest: { auth: 'public', authTimeout: 1 } })
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: app.realtime.signAccessToken({ user: 'u', role: null, admin: false }).access_token })
  await within(client.next(), 'the auth answer')
  await app.realtime.revokeUser('u')
  t.match(await within(client.next(), 'AUTH_REVOKED'), { error: { code: 'AUTH_REVOKED' } })
  clock.tick(1_000)
  t.match(await within(client.next(), 'AUTH_TIMEOUT'), { error: { code: 'AUTH_TIMEOUT' } })
  clock.tick(2_000)
  client.send({ type: 'ping', uid: 'later' })
  t.same(await within(client.next(), 'the pong'), { type: 'pong', uid: 'later' }, 'still open')
  await client.close()
})

t.test('a client whose frames queued behind a pending check passed the max payload, then silent, is cut a second on', async t => {
  const clock = fakeClock(t)
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  t.teardown(() => release())
  const { app, url } = await build(t, {
    heartbeat: { enabled: false },
    attemptLimit: false,
    rest: { connLimit: 1 },
    maxPayload: 1024,
    verifyCredentials: async () => { await held; return null }
  })
  const client = await connect(url('/websocket'))
  const socket = serverSocket(app)
  t.teardown(() => client.ws.terminate())
  silence(client)
  client.send({ type: 'auth', email: 'someone@example.com', password: 'wrong' })
  for (let i = 0; i < 20; i++) client.send({ type: 'ping', uid: 'x'.repeat(100) })
  await eventually(() => socket.readyState === socket.CLOSING, 'the 1008 close')
  clock.tick(1_000)
  await eventually(() => socket.readyState === socket.CLOSED, 'the socket cut')
})

t.test('a dead peer the heartbeat closes frees its place a second on', async t => {
  const clock = fakeClock(t, ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'])
  const { app, url } = await build(t, { heartbeat: { period: 5 }, rest: { auth: 'public', connLimit: 1 } })
  const silent = await connect(url('/websocket'))
  const socket = serverSocket(app)
  t.teardown(() => silent.ws.terminate())
  silence(silent)
  t.equal((await refusedWith(url('/websocket'))).status, 503, 'the one place is taken')
  clock.tick(5_000) // pinged
  clock.tick(5_000) // unanswered: closed
  await cutAndReplaced(t, socket, clock, url('/websocket'))
})

/**
 * A TCP proxy to `port` whose way back to the client is slow: it reads the server's bytes a chunk every 20 ms.
 */
async function slowLink (t: Test, port: number) {
  const link = { port: 0 }
  const proxy = createServer(client => {
    const server = connectTcp(port, '127.0.0.1')
    client.pipe(server)
    server.on('data', chunk => {
      client.write(chunk)
      server.pause()
      realSetTimeout(() => server.resume(), 20)
    })
    const end = () => { client.destroy(); server.destroy() }
    client.on('close', end).on('error', end)
    server.on('close', end).on('error', end)
  })
  await new Promise<void>(resolve => proxy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => proxy.close())
  link.port = (proxy.address() as AddressInfo).port
  return link
}

t.test('a slow client still reading what was sent before the app\'s close gets all of it, and the close', async t => {
  const { app, url } = await build(t, { heartbeat: { enabled: false }, rest: { auth: 'public' }, maxBufferedBytes: 64 * 1024 * 1024 })
  const link = await slowLink(t, Number(new URL(url('/')).port))
  const client = await connect(`ws://127.0.0.1:${link.port}/websocket`)
  const socket = serverSocket(app)
  const part = 'p'.repeat(256 * 1024)
  let sent = 0
  // Until the process itself holds 4 MB: the kernel's buffers are full, and more waits behind them. At the link's
  // pace the client reads it all over seconds, well past the close grace.
  while (socket.bufferedAmount < 4 * 1024 * 1024) {
    app.realtime.send({}, { type: 'part', n: sent++, part })
    await new Promise(resolve => setImmediate(resolve))
  }
  app.realtime.close({}, 4000, 'moved elsewhere')
  t.same(await within(client.closed, 'the close'), { code: 4000, reason: 'moved elsewhere' }, 'the close came')
  t.equal(client.frames.filter(frame => (frame as { type?: string }).type === 'part').length, sent, `every part came (${sent})`)
})
