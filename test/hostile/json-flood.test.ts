// A client flooding the JSON endpoint with small frames (PROTOCOL.md section 11): a socket has one frame handled a turn
// of the event loop, as on the GraphQL endpoint (graphql-flood.test.ts), so another socket's frame waits for a few of
// the flooder's, not for everything the flooder's reads brought in (ws hands over every message of a read at once,
// and the server reads one socket many times in a turn: a ping waited 2 s behind a flood of pings). Counted in frames
// the server handled, not in milliseconds: load cannot change the count.
import type { Socket } from 'node:net'
import t from 'tap'
import type { MessageHandler, RealtimeConnection } from '../../types/index.js'
import type { Connection } from '../../lib/connection/connection.js'
import { build, connect, within, type Client } from '../helpers.js'

/** Far fewer than what one read of the flooder's socket holds (64 KiB: about 3,000 of its 22-byte frames). */
const bound = 10

/** Written in one go, so that each of the server's reads brings in thousands of them. */
function flood (client: Client, frame: string, count: number): void {
  const tcp = (client.ws as unknown as { _socket: Socket })._socket
  tcp.cork()
  for (let i = 0; i < count; i++) client.send(frame)
  tcp.uncork()
}

/** The server's side of a client's socket. */
function serverSide (connections: Iterable<RealtimeConnection>, client: Client): Connection {
  const { localPort } = (client.ws as unknown as { _socket: Socket })._socket
  return [...connections].find(c => c.request.raw.socket.remotePort === localPort) as Connection
}

t.test('one JSON socket flooding messages: another socket\'s message waits for a few of them', async t => {
  let handled = 0
  let flooding: (() => void) | null = null
  const flooded: MessageHandler = () => {
    handled++
    flooding?.()
  }
  const probe: MessageHandler = (message, connection) => connection.send({ type: 'probe', uid: message.uid, handled })
  const { url } = await build(t, { heartbeat: { enabled: false }, rest: { auth: 'public', handlers: { flood: flooded, probe } } })
  const bystander = await connect(url('/websocket'))
  const attacker = await connect(url('/websocket'))
  // The probe goes as the first of the flood is handled: the server has the rest of the attacker's 220 KB to read.
  const asked = new Promise<number>(resolve => {
    flooding = () => {
      flooding = null
      bystander.send({ type: 'probe', uid: 'p' })
      resolve(handled)
    }
  })
  flood(attacker, '{"type":"flood"}', 10_000)
  const before = await within(asked, 'the first message of the flood')
  const answer = await within(bystander.next(), 'the probe\'s answer') as { handled: number }
  const between = answer.handled - before
  attacker.ws.terminate()
  t.ok(between < bound, `${between} of the flood's messages were handled between the probe and its answer`)
})

t.test('the logs endpoint\'s sockets too: a ping waits for a few of another socket\'s pings', async t => {
  const { app, url } = await build(t, { heartbeat: { enabled: false }, logs: { auth: 'public' } })
  const bystander = await connect(url('/websocket/logs'))
  const attacker = await connect(url('/websocket/logs'))
  // The server's answers, counted as it sends them: each pong is a ping it handled. The ping goes with the first.
  let pongs = 0
  const flooder = serverSide(app.realtime.connections(), attacker)
  const answer = flooder.sendFrame.bind(flooder)
  flooder.sendFrame = frame => {
    if (++pongs === 1) bystander.send({ type: 'ping', uid: 'p' })
    answer(frame)
  }
  const probed = serverSide(app.realtime.connections(), bystander)
  const told = probed.sendFrame.bind(probed)
  const answeredAt = new Promise<number>(resolve => {
    probed.sendFrame = frame => {
      resolve(pongs)
      told(frame)
    }
  })
  flood(attacker, '{"type":"ping"}', 10_000)
  t.same(await within(bystander.next(), 'the ping\'s pong'), { type: 'pong', uid: 'p' })
  attacker.ws.terminate()
  const count = await answeredAt - 1
  t.ok(count < bound, `${count} of the flood's pings were answered between the ping and its pong`)
})

t.test('control frames too: a message waits for a few of another socket\'s pings and pongs', async t => {
  for (const kind of ['ping', 'pong'] as const) {
    let frames = 0
    const probe: MessageHandler = (message, connection) => connection.send({ type: 'probe', uid: message.uid, frames })
    const { app, url } = await build(t, { heartbeat: { enabled: false }, rest: { auth: 'public', handlers: { probe } } })
    const bystander = await connect(url('/websocket'))
    const attacker = await connect(url('/websocket'))
    // Counted as the server reads them; the probe goes with the first.
    let before = 0
    serverSide(app.realtime.connections(), attacker).socket.on(kind, () => {
      if (++frames === 1) {
        before = frames
        bystander.send({ type: 'probe', uid: 'p' })
      }
    })
    const tcp = (attacker.ws as unknown as { _socket: Socket })._socket
    tcp.cork()
    for (let i = 0; i < 10_000; i++) attacker.ws[kind]()
    tcp.uncork()
    const answer = await within(bystander.next(), 'the probe\'s answer') as { frames: number }
    attacker.ws.terminate()
    const between = answer.frames - before
    t.ok(between < bound, `${kind}: ${between} of the flood's frames were read between the probe and its answer`)
  }
})
