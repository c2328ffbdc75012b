// A burst of large messages to an async handler that holds each while it awaits (a batch of records saved to a
// database): past what the held messages may count (held-messages.ts), the socket stops reading, and the frames ws had
// read already still run. Held in the inbox instead, they passed the max payload and the socket closed 1008 `Too many
// frames queued.`, where the handler count alone (100) let 60 such messages through.
import t from 'tap'
import type { MessageHandler } from '../../types/index.js'
import type { Connection } from '../../lib/connection/connection.js'
import { build, connect, within } from '../helpers.js'

t.test('a burst of large messages past what held messages may count: the socket stops reading, and none is refused', async t => {
  let open!: () => void
  const gate = new Promise<void>(resolve => { open = resolve })
  t.teardown(() => open())
  const save: MessageHandler = async (message, connection) => {
    await gate
    connection.send({ type: 'saved', uid: message.uid })
  }
  const { app, url } = await build(t, { rest: { auth: 'public', handlers: { save } }, heartbeat: { enabled: false } })
  const client = await connect(url('/websocket'))
  const [connection] = app.realtime.connections() as Connection[]
  // 22 KB of records a message, each counting 190 KB: 35 reach what 100 frames of the max payload weigh.
  const items = Array.from({ length: 330 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'], price: 12.5, ok: true }))
  const frame = (uid: number) => JSON.stringify({ type: 'save', uid, items })
  const total = 60
  for (let i = 0; i < total; i++) client.send(frame(i))
  const receiver = (connection.socket as unknown as { _receiver: { _bufferedBytes: number, writableLength: number } })._receiver
  // Once paused, and the frames ws had read handed over (what it still holds is no whole frame, up to two reads of
  // 64 KiB when it paused): the inbox held them, past the max payload, and the socket closed 1008.
  const state = { closed: false }
  client.closed.then(() => { state.closed = true }, () => {})
  await within((async () => {
    while (!state.closed && !(connection.socket.isPaused && receiver.writableLength === 0 && receiver._bufferedBytes < frame(0).length)) await new Promise(resolve => setImmediate(resolve))
  })(), 'the pause')
  open()
  const answers: unknown[] = []
  while (answers.length < total) answers.push(await within(Promise.race([client.next(), client.closed]), 'an answer'))
  t.same(answers.map(a => (a as { uid: number }).uid), Array.from({ length: total }, (_v, i) => i), 'every message answered, in order')
  await client.close()
})
