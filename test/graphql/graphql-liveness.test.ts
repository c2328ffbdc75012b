// GraphQL liveness (PROTOCOL.md section 5): with the heartbeat on, `/graphql` sockets get WebSocket ping frames, and
// one that answers nothing (no pong, no message) is closed. Silent peers are raw `ws` sockets without automatic pongs;
// every test also checks that nothing but graphql-transport-ws messages ever arrives.
import t from 'tap'
import WebSocket from 'ws'
import { createClient, type ClientOptions } from 'graphql-ws'
import type { ExecutionResult } from 'graphql'
import { referenceSchema } from '../../example/schema.js'
import { build, connect, fakeClock, until, type Client } from '../helpers.js'
import type { Connection } from '../../lib/connection/connection.js'
import type { RealtimeOptions } from '../../lib/index.js'

const schema = referenceSchema(() => null)
const protocolTypes = new Set(['connection_ack', 'ping', 'pong', 'next', 'error', 'complete'])

interface Peer {
  client: Client
  /** WebSocket ping frames received. */
  pings: number
  /** Messages that are not graphql-transport-ws: must stay empty. */
  foreign: unknown[]
}

/** A raw graphql-transport-ws socket whose `ws` does not answer ping frames: a dead peer, unless it sends something. */
async function deadPeer (url: string): Promise<Peer> {
  const client = await connect(url, { protocols: 'graphql-transport-ws', autoPong: false })
  const peer: Peer = { client, pings: 0, foreign: [] }
  client.ws.on('ping', () => { peer.pings++ })
  client.ws.on('message', (data) => {
    let frame: unknown
    try { frame = JSON.parse(data.toString()) } catch { frame = data.toString() }
    const type = (frame as { type?: unknown } | null)?.type
    if (typeof type !== 'string' || !protocolTypes.has(type)) peer.foreign.push(frame)
  })
  return peer
}

function graphql (options: RealtimeOptions['graphql'] = {}): { graphql: RealtimeOptions['graphql'] } {
  return { graphql: { schema, ...options } }
}

t.test('a socket that answers nothing is closed without a status at the beat after its unanswered ping', async t => {
  const { app, url } = await build(t, { ...graphql(), heartbeat: { period: 0.1 } })
  const peer = await deadPeer(url('/graphql'))
  peer.client.send({ type: 'connection_init', payload: { access_token: app.realtime.jwt.sign({ id: 'u1' }) } })
  t.same(await peer.client.next(), { type: 'connection_ack' })
  t.equal((await peer.client.closed).code, 1005, 'no status, as the JSON heartbeat: graphql-ws clients retry on it')
  t.equal(peer.pings, 1, 'one ping frame, unanswered: closed within two periods of silence')
  t.same(peer.client.frames, [], 'no message but connection_ack: liveness takes none')
  t.same(peer.foreign, [])
})

t.test('any message counts as an answer: protocol pongs keep a socket without automatic pongs open', async t => {
  // Beats on a fake clock: a busy machine could otherwise hold an answer past a real period.
  const clock = fakeClock(t, ['setInterval', 'clearInterval'])
  const { app, url } = await build(t, { ...graphql({ auth: 'public' }), heartbeat: { period: 0.2 } })
  const peer = await deadPeer(url('/graphql'))
  peer.client.send({ type: 'connection_init' })
  t.same(await peer.client.next(), { type: 'connection_ack' })
  const server = app.realtime.connections()[0] as Connection
  // An unsolicited graphql-transport-ws pong (a one-way heartbeat in its protocol) after each of the first 5 pings.
  peer.client.ws.on('ping', () => { if (peer.pings <= 5) peer.client.send({ type: 'pong' }) })
  for (let beat = 1; beat <= 5; beat++) {
    clock.tick(200)
    await until(() => !server.unanswered)
  }
  clock.tick(200) // the sixth ping, unanswered
  await until(() => peer.pings === 6)
  clock.tick(200)
  t.equal((await peer.client.closed).code, 1005)
  t.equal(peer.pings, 6, 'open across five answered pings, closed at the beat after the first unanswered one')
  t.same(peer.client.frames, [], 'a pong message is not answered')
  t.same(peer.foreign, [])
})

t.test('a public socket that never sent connection_init is checked too', async t => {
  const { url } = await build(t, { ...graphql({ auth: 'public' }), heartbeat: { period: 0.1 } })
  const peer = await deadPeer(url('/graphql'))
  t.equal((await peer.client.closed).code, 1005)
  t.equal(peer.pings, 1)
  t.same(peer.client.frames, [], 'nothing was sent but the ping frame')
})

t.test('sockets still in their handshake are not pinged: the auth timeout covers them', async t => {
  const { url } = await build(t, { ...graphql({ authTimeout: 0.5 }), heartbeat: { period: 0.1 } })
  const peer = await deadPeer(url('/graphql'))
  t.equal((await peer.client.closed).code, 4408)
  t.equal(peer.pings, 0)
})

t.test('a live graphql-ws client stays open across many beats and its subscription keeps running', async t => {
  // Beats on a fake clock (the ticks keep real time): a busy machine could otherwise hold a pong past a real period.
  const clock = fakeClock(t, ['setInterval', 'clearInterval'])
  const { app, url } = await build(t, { ...graphql(), heartbeat: { period: 0.2 } })
  let pings = 0
  const messageTypes = new Set<unknown>()
  const closes: unknown[] = []
  const on: ClientOptions['on'] = {
    opened: (socket) => {
      ;(socket as WebSocket).on('ping', () => { pings++ })
      ;(socket as WebSocket).on('message', (data) => { messageTypes.add(JSON.parse(data.toString()).type) })
    },
    closed: (event) => { closes.push(event) }
  }
  // keepAlive 0 (the default): the client sends no ping of its own, so only its WebSocket's pongs answer the server.
  const client = createClient({ url: url('/graphql'), webSocketImpl: WebSocket, retryAttempts: 0, connectionParams: { access_token: app.realtime.jwt.sign({ id: 'u1' }) }, on })
  t.teardown(() => client.dispose())
  const ticks: number[] = []
  const iterator = client.iterate({ query: 'subscription { ticks(every: 20) }' })
  ticks.push(((await iterator.next()).value as ExecutionResult<{ ticks: number }>).data!.ticks)
  const server = app.realtime.connections()[0] as Connection
  for (let beat = 1; beat <= 8; beat++) {
    clock.tick(200) // the beat pings the socket and marks it unanswered; only its pong answers
    await until(() => !server.unanswered)
    ticks.push(((await iterator.next()).value as ExecutionResult<{ ticks: number }>).data!.ticks)
  }
  await iterator.return?.()
  t.equal(pings, 8)
  t.same(ticks, ticks.map((_tick, i) => i + 1), 'one subscription throughout, never restarted')
  t.same(closes, [], 'never closed')
  t.same([...messageTypes], ['connection_ack', 'next'], 'liveness took no message')
})

t.test('with the heartbeat disabled, nothing is checked', async t => {
  const { url } = await build(t, { ...graphql({ auth: 'public' }), heartbeat: { enabled: false, period: 0.05 } })
  const peer = await deadPeer(url('/graphql'))
  peer.client.send({ type: 'connection_init' })
  t.same(await peer.client.next(), { type: 'connection_ack' })
  peer.client.send({ id: '1', type: 'subscribe', payload: { query: 'subscription { ticks(every: 50) }' } })
  // Ten ticks of 50 ms: ten periods at least, time for several beats had the heartbeat been on.
  for (let tick = 1; tick <= 10; tick++) t.same(await peer.client.next(), { id: '1', type: 'next', payload: { data: { ticks: tick } } })
  t.equal(peer.pings, 0)
  t.equal(peer.client.ws.readyState, WebSocket.OPEN)
  t.same(peer.foreign, [])
  await peer.client.close()
})
