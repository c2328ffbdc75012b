// Slow readers (PROTOCOL.md section 11): a client that stops reading can make the server hold at most
// WEBSOCKETS_MAX_BUFFERED_BYTES for it, whatever it makes the server send, and is closed 1008 then cut off.
import t from 'tap'
import type { WebSocket } from 'ws'
import type { Connection } from '../../lib/connection/connection.js'
import { admin, build, connect, type Client } from '../helpers.js'

const uid = 'u'.repeat(60 * 1024)
const cap = 1024 * 1024

/** Sends `count` pings with a 60 KB uid, each once the last has left, or until the connection is gone. */
async function flood (client: Client, count: number): Promise<void> {
  const frame = JSON.stringify({ type: 'ping', uid })
  for (let sent = 0; sent < count; sent++) {
    if (await new Promise<Error | undefined>(resolve => client.ws.send(frame, resolve))) return
  }
}

/** The server's side of the one open socket of `app`. */
function serverSocket (app: Awaited<ReturnType<typeof build>>['app']): WebSocket {
  return (app.realtime.connections()[0] as Connection).socket
}

t.test('a client that stops reading its pongs is cut off after at most the cap, in public mode with no login', async t => {
  const { app, url } = await build(t, { rest: { auth: 'public' }, heartbeat: { enabled: false } })
  const closed = new Promise<void>(resolve => app.realtime.on('close', () => resolve()))
  const client = await connect(url('/websocket'))
  const socket = serverSocket(app)
  client.ws.pause() // reads nothing more: the server's pongs pile up behind TCP back-pressure
  let peak = 0
  const sample = setInterval(() => { peak = Math.max(peak, socket.bufferedAmount) }, 5)
  const rssBefore = process.memoryUsage().rss
  await flood(client, 2000) // 120 MB of pongs, were they all kept
  await closed
  clearInterval(sample)
  const grown = process.memoryUsage().rss - rssBefore
  t.ok(peak <= cap + uid.length + 100, `the server buffered at most the cap and one frame (peak ${peak} B)`)
  t.ok(grown < 96 * 1024 * 1024, `resident memory grew ${(grown / 1048576).toFixed(1)} MiB`)
  t.equal(app.realtime.connections().length, 0, 'the socket is gone')
  client.ws.terminate()
})

t.test('a slow client that reads again gets the close: 1008 Client too slow.', async t => {
  const { app, url } = await build(t, { rest: { auth: 'public' }, heartbeat: { enabled: false }, maxBufferedBytes: 256 * 1024 })
  const client = await connect(url('/websocket'))
  const socket = serverSocket(app)
  client.ws.pause()
  const frame = JSON.stringify({ type: 'ping', uid })
  // Until the server starts closing: then the client reads what reached it, and the close behind it.
  while (socket.readyState === socket.OPEN) await new Promise(resolve => client.ws.send(frame, resolve))
  client.ws.resume()
  t.same(await client.closed, { code: 1008, reason: 'Client too slow.' })
  const pongs = client.frames.filter(f => (f as { type?: string }).type === 'pong')
  t.ok(pongs.length > 0, `the pongs sent before it arrived first (${pongs.length})`)
})

t.test('application sends to a slow reader are bounded too', async t => {
  const { app, url } = await build(t, { rest: { auth: 'public' }, heartbeat: { enabled: false }, maxBufferedBytes: 128 * 1024 })
  const client = await connect(url('/websocket'))
  const socket = serverSocket(app)
  client.ws.pause()
  const message = { type: 'news', body: 'n'.repeat(32 * 1024) }
  let peak = 0
  for (let i = 0; i < 2000 && socket.readyState === socket.OPEN; i++) {
    app.realtime.send({}, message)
    peak = Math.max(peak, socket.bufferedAmount)
    if (i % 10 === 0) await new Promise(resolve => setImmediate(resolve))
  }
  t.ok(socket.readyState !== socket.OPEN, 'the socket is closing')
  t.ok(peak <= 128 * 1024, `the server buffered at most the cap (peak ${peak} B)`)
  client.ws.resume()
  t.equal((await client.closed).code, 1008)
})

t.test('a frame sent after the close began is dropped, not sent behind the close', async t => {
  const { app, url } = await build(t, { rest: { auth: 'public' }, heartbeat: { enabled: false } })
  const client = await connect(url('/websocket'))
  const connection = app.realtime.connections()[0] as Connection
  connection.close(1000, 'bye')
  connection.send({ type: 'late' })
  connection.sendFrame(JSON.stringify({ type: 'later' })) // the path the heartbeat and GraphQL results take
  t.same(await client.closed, { code: 1000, reason: 'bye' })
  t.same(client.frames, [], 'nothing reached the client')
})

t.test('a refresh by a client whose ok would not fit under the cap rotates nothing: its refresh token stays current', async t => {
  const cap = 64 * 1024
  const { app, url } = await build(t, { rest: { auth: 'public' }, heartbeat: { enabled: false }, maxBufferedBytes: cap, users: [admin] })
  const { refresh_token: held } = await app.realtime.login({ email: admin.email, password: admin.password })
  const client = await connect(url('/websocket'))
  const socket = serverSocket(app)
  const closed = new Promise<void>(resolve => app.realtime.on('close', () => resolve()))
  client.ws.pause() // the app's news piles up: first in the kernel's buffers, then in the server's
  const chunk = { type: 'news', body: 'n'.repeat(8 * 1024) }
  while (cap - socket.bufferedAmount > 8 * 1024 + 512) {
    app.realtime.send({}, chunk)
    await new Promise(resolve => setImmediate(resolve))
  }
  // Room left for a short frame, not for an ok with a refresh token in it.
  const room = cap - socket.bufferedAmount
  app.realtime.send({}, { type: 'news', body: 'n'.repeat(room - 60) })
  t.equal(socket.readyState, socket.OPEN, 'the socket is open still')
  client.send({ type: 'auth', refresh_token: held, uid: 'r' })
  await closed // too slow for its answer: closed 1008
  client.ws.terminate()
  const again = await connect(url('/websocket'))
  again.send({ type: 'auth', refresh_token: held, uid: 'again' })
  const answer = await again.next() as { status: string, refresh_token?: string }
  t.match(answer, { type: 'auth', status: 'ok', uid: 'again' }, 'the token it held refreshes: no reuse, the session lives')
  t.equal(answer.refresh_token?.length, 64, 'with a new refresh token')
  again.ws.terminate()
})
