// Frames behind a pending check (PROTOCOL.md section 11): what a socket sends while its password is being checked
// is kept in order, but at most the max payload's worth of it; past that the socket is closed 1008.
import t from 'tap'
import type { Socket } from 'node:net'
import { build, connect } from '../helpers.js'
import { retainedBytes } from './gc.js'

const sockets = 20
// 64 KB of empty text frames as a client puts them on the wire: six bytes each (header and mask), in one write.
const emptyFrames = Buffer.concat(Array.from({ length: 11_000 }, () => Buffer.from([0x81, 0x80, 1, 2, 3, 4])))

t.test('empty frames queued behind a slow password check cost at most the max payload per socket', async t => {
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  const { url } = await build(t, {
    heartbeat: { enabled: false },
    attemptLimit: false,
    // Every socket's check waits its turn, not refused by the per-address share: the test's sockets share an address,
    // and their auth messages are all read before any socket's backlog fills (a socket's frames come one a turn).
    passwordQueue: { perAddress: sockets },
    // A password check that answers only when the test says so: every frame after the auth message must wait.
    verifyCredentials: async () => { await held; return null }
  })
  const clients = await Promise.all(Array.from({ length: sockets }, () => connect(url('/websocket'))))
  const before = retainedBytes()
  for (const client of clients) {
    client.send({ type: 'auth', email: 'someone@example.com', password: 'wrong' })
    ;(client.ws as unknown as { _socket: Socket })._socket.write(emptyFrames)
  }
  const closes = await Promise.all(clients.map(client => client.closed))
  const perSocket = (retainedBytes() - before) / sockets
  release()
  t.same(closes[0], { code: 1008, reason: 'Too many frames queued.' })
  t.ok(closes.every(close => close.code === 1008), 'every flooding socket was closed 1008')
  t.ok(perSocket < 128 * 1024, `the server kept ${Math.round(perSocket / 1024)} KiB per socket`)
})

t.test('frames within the bound still wait for the check and run after it, in order', async t => {
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  const { url } = await build(t, {
    heartbeat: { enabled: false },
    attemptLimit: false,
    verifyCredentials: async () => { await held; return { user: 'u1', role: null, admin: false } }
  })
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', email: 'someone@example.com', password: 'right', uid: 'a' })
  for (let i = 0; i < 100; i++) client.send({ type: 'ping', uid: i })
  // Every frame has reached the server's queue before the check answers: resolving after the last pong's turn.
  await new Promise(resolve => setTimeout(resolve, 50))
  release()
  t.match(await client.next(), { type: 'auth', status: 'ok', uid: 'a' })
  for (let i = 0; i < 100; i++) t.same(await client.next(), { type: 'pong', uid: i })
  await client.close()
})

t.test('frames pipelined behind an access-token auth are read at once: no backlog, whatever their size', async t => {
  const { app, url } = await build(t, { heartbeat: { enabled: false }, maxPayload: 1024 })
  const client = await connect(url('/websocket'))
  // One write: the auth message and 4 KiB of pings behind it reach the server in one chunk, read in one turn.
  const frames = [{ type: 'auth', access_token: app.realtime.jwt.sign({ id: 'u1' }), uid: 'a' }, ...Array.from({ length: 40 }, (_v, i) => ({ type: 'ping', uid: `${i}`.padStart(80, '0') }))]
  ;(client.ws as unknown as { _socket: Socket })._socket.write(Buffer.concat(frames.map(frame => maskedText(JSON.stringify(frame)))))
  // A close instead of the answers ends the test at once, with its code.
  const next = () => Promise.race([client.next(), client.closed.then(closed => ({ closed }))])
  t.match(await next(), { type: 'auth', status: 'ok', uid: 'a' })
  for (let i = 0; i < 40; i++) t.same(await next(), { type: 'pong', uid: `${i}`.padStart(80, '0') })
  await client.close()
})

/** A client's text frame (masked, as clients must), for a test that writes several in one TCP write. */
function maskedText (text: string): Buffer {
  const payload = Buffer.from(text)
  const mask = Buffer.from([1, 2, 3, 4])
  const length = payload.length < 126 ? Buffer.from([0x80 | payload.length]) : Buffer.from([0x80 | 126, payload.length >> 8, payload.length & 0xff])
  return Buffer.concat([Buffer.from([0x81]), length, mask, payload.map((byte, i) => byte ^ mask[i % 4]!)])
}
