// A message sent in fragments (a frame and its continuation frames): ws keeps them until the last comes. Each kept
// the whole read it came in alive (a view into it), so a byte of fragment per read, the rest of each read pongs, held
// the reads: about a gigabyte per socket within ws's 16,384 fragments. Each is now a copy of its own bytes, and a
// message has at most one fragment per 256 bytes of the max payload.
import type { Socket } from 'node:net'
import t from 'tap'
import type { WebSocket } from 'ws'
import { keepFragmentCopies, maxFragments } from '../../lib/endpoints/message-fragments.js'
import type { Connection } from '../../lib/connection/connection.js'
import { build, connect, within, type Client } from '../helpers.js'
import { retainedBuffers } from './gc.js'

/** A frame as a client writes it: masked (with a zero mask, which leaves the payload as it is), at most 125 bytes. */
const frame = (opcode: number, payload: string | Buffer, fin = false) =>
  Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | Buffer.byteLength(payload), 0, 0, 0, 0]), Buffer.from(payload)])
const text = 0x1
const continuation = 0x0
const pong = 0x8a

const tcpOf = (client: Client) => (client.ws as unknown as { _socket: Socket })._socket

/** Writes `bytes` and waits for the server to have read them: each write is a read of its own. */
async function writeRead (client: Client, server: Socket, bytes: Buffer): Promise<void> {
  const tcp = tcpOf(client)
  await new Promise(resolve => tcp.write(bytes, resolve))
  while (server.bytesRead < tcp.bytesWritten) await new Promise(resolve => setImmediate(resolve))
}

t.test('a message\'s fragments keep their own bytes, not the reads they came in', async t => {
  const { app, url } = await build(t, { heartbeat: { enabled: false }, rest: { auth: 'public' } })
  const client = await connect(url('/websocket'))
  const [connection] = app.realtime.connections() as Connection[]
  const server = connection.request.raw.socket
  let pongs = 0
  connection.socket.on('pong', () => { pongs++ })
  // Each read: one byte of the message, then 63 KB of unsolicited pongs, which the server reads and lets go.
  const padding = Buffer.concat(Array.from({ length: 480 }, () => frame(pong, 'p'.repeat(125), true)))
  const reads = 200
  const before = retainedBuffers()
  await writeRead(client, server, frame(text, '{"type":"ping","uid":"'))
  for (let i = 0; i < reads; i++) await writeRead(client, server, Buffer.concat([frame(continuation, 'x'), padding]))
  await within(new Promise<void>(resolve => {
    const check = () => pongs === reads * 480 ? resolve() : setImmediate(check)
    check()
  }), 'every pong handled')
  // Buffers alone: the heap moves by a few MiB from run to run on Node 24 and later, whatever the server keeps.
  const kept = retainedBuffers() - before
  // 200 reads of 63 KB: about 12 MiB of buffers kept when each fragment kept its read, none otherwise.
  t.ok(kept < 1024 * 1024, `the server kept ${Math.round(kept / 1024)} KiB for ${reads} one-byte fragments`)
  tcpOf(client).write(frame(continuation, '"}', true))
  t.same(await within(client.next(), 'the pong'), { type: 'pong', uid: 'x'.repeat(reads) }, 'the message as sent')
  await client.close()
})

t.test('a message may come in one fragment per 256 bytes of the max payload, no more', async t => {
  t.equal(maxFragments(65536), 256)
  t.equal(maxFragments(1024), 16, 'at least 16')
  const { url } = await build(t, { heartbeat: { enabled: false }, rest: { auth: 'public' } })
  /** A ping in `count` fragments: the first carries its start, the last its end, the others a byte of its uid each. */
  const ping = (count: number) => Buffer.concat([
    frame(text, '{"type":"ping","uid":"'),
    ...Array.from({ length: count - 2 }, () => frame(continuation, 'y')),
    frame(continuation, '"}', true)
  ])
  const within256 = await connect(url('/websocket'))
  tcpOf(within256).write(ping(256))
  t.same(await within(within256.next(), 'the pong'), { type: 'pong', uid: 'y'.repeat(254) })
  await within256.close()
  const past = await connect(url('/websocket'))
  tcpOf(past).write(ping(257))
  // A pong would mean the message was taken.
  t.same(await within(Promise.race([past.closed, past.next()]), 'the close'), { code: 1008, reason: '' })
})

t.test('every endpoint reads fragmented messages: a GraphQL connection_init in five, two of them empty', async t => {
  const { referenceSchema } = await import('../../example/schema.js')
  const { url } = await build(t, { heartbeat: { enabled: false }, graphql: { auth: 'public', schema: referenceSchema(() => null) } })
  const client = await connect(url('/graphql'), { protocols: 'graphql-transport-ws' })
  tcpOf(client).write(Buffer.concat([
    frame(text, ''), frame(continuation, '{"type":'), frame(continuation, ''), frame(continuation, '"connection_'),
    frame(continuation, 'init"}', true)
  ]))
  t.same(await within(client.next(), 'the ack'), { type: 'connection_ack' })
  await client.close()
})

t.test('a ws whose receiver lacks what the copies need is left as it is', async t => {
  const receiver: Record<string, unknown> = { _fragments: [] }
  t.equal(keepFragmentCopies({ _receiver: receiver } as unknown as WebSocket), false, 'no copies')
  t.same(receiver, { _fragments: [] })
  t.equal(keepFragmentCopies({} as WebSocket), false)
  t.pass('a socket without a receiver is left alone')
})

t.test('frames out of the protocol close 1002 on every endpoint: a control frame too long or in fragments, a stray continuation', async t => {
  const { referenceSchema } = await import('../../example/schema.js')
  const { url } = await build(t, {
    heartbeat: { enabled: false },
    rest: { auth: 'public' },
    logs: { auth: 'public' },
    graphql: { auth: 'public', schema: referenceSchema(() => null) }
  })
  const ping = 0x89
  const refused: Record<string, Buffer> = {
    'a ping of 126 bytes': Buffer.concat([Buffer.from([ping, 0x80 | 126, 0, 126, 0, 0, 0, 0]), Buffer.alloc(126, 0x70)]),
    'a ping in fragments': frame(0x9, 'p'),
    'a continuation with no message begun': frame(continuation, '{}', true),
    'a new message inside a fragmented one': Buffer.concat([frame(text, '{'), frame(text, '{}', true)]),
    'a frame marked compressed, none negotiated': Buffer.from([0xc1, 0x80, 0, 0, 0, 0])
  }
  for (const path of ['/websocket', '/websocket/logs', '/graphql']) {
    for (const [what, bytes] of Object.entries(refused)) {
      const client = await connect(url(path), path === '/graphql' ? { protocols: 'graphql-transport-ws' } : {})
      tcpOf(client).write(bytes)
      t.equal((await within(client.closed, 'the close')).code, 1002, `${path}: ${what}`)
    }
  }
})
