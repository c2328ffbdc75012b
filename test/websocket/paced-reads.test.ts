// A socket's frames come one a turn (PROTOCOL.md section 11), but the first of a read comes as it is read: deferring
// every frame cost a few percent of every message's CPU (docs/performance.md). The floods are in
// hostile/json-flood.test.ts and hostile/graphql-flood.test.ts.
import type { Socket } from 'node:net'
import t from 'tap'
import * as ws from 'ws'
import type { WebSocket } from 'ws'
import type { MessageHandler, RealtimeConnection } from '../../types/index.js'
import { paceAfterFrame, readAtOnce } from '../../lib/endpoints/paced-reads.js'
import { build, connect, within } from '../helpers.js'

t.test('the first frame of a read is handled as it is read, the next a turn later', async t => {
  /** Whether the server's socket has told a listener added after ws's of the read that brought the frame. */
  let readSeen = false
  const seen: boolean[] = []
  const record: MessageHandler = (message, connection: RealtimeConnection) => {
    seen.push(readSeen)
    readSeen = false
    if (message.uid === 'last') connection.send({ type: 'done' })
  }
  const { app, url } = await build(t, { heartbeat: { enabled: false }, rest: { auth: 'public', handlers: { record } } })
  const client = await connect(url('/websocket'))
  const [connection] = app.realtime.connections()
  connection!.request.raw.socket.on('data', () => { readSeen = true })
  const tcp = (client.ws as unknown as { _socket: Socket })._socket
  tcp.cork()
  client.send({ type: 'record', uid: 'first' })
  client.send({ type: 'record', uid: 'last' })
  tcp.uncork()
  t.same(await within(client.next(), 'the answer to the last'), { type: 'done' })
  // The first ran inside ws's handling of the read, before the listener after it; the second in a later turn.
  t.same(seen, [false, true])
})

t.test('a ws whose receiver has no such setting is left as the server set it: nothing read at once', async t => {
  const receiver: Record<string, unknown> = {}
  const socket = { _receiver: receiver } as unknown as WebSocket
  t.equal(readAtOnce(socket), false, 'not paced')
  paceAfterFrame(socket)
  t.same(receiver, {})
  t.equal(readAtOnce({} as WebSocket), false)
  t.pass('a socket without a receiver is left alone')
})

t.test('a ws whose receivers lack the setting is told of once, at warn, and its sockets serve all the same', async t => {
  // A ws release without the setting, as its receivers would be: nothing of it on an instance, every frame deferred.
  const prototype = (ws as unknown as { Receiver: { prototype: object } }).Receiver.prototype // exported, untyped
  Object.defineProperty(prototype, '_allowSynchronousEvents', { configurable: true, get: () => undefined, set: () => {} })
  t.teardown(() => { delete (prototype as { _allowSynchronousEvents?: unknown })._allowSynchronousEvents })
  const logged: string[] = []
  const { url } = await build(t, { heartbeat: { enabled: false }, rest: { auth: 'public' } },
    { logger: { level: 'warn', stream: { write: (line: string) => { logged.push(line) } } } })
  for (const uid of ['first', 'second']) {
    const client = await connect(url('/websocket'))
    client.send({ type: 'ping', uid })
    t.same(await within(client.next(), 'the pong'), { type: 'pong', uid })
    await client.close()
  }
  t.match(logged.map(line => JSON.parse(line)), [{ level: 40, pacedReads: false, fragmentCopies: true, msg: /the installed ws changed its receiver/ }])
  t.equal(logged.length, 1, 'once')
})
