// A client that sends messages faster than the app's async handlers finish (PROTOCOL.md section 11): at most
// `handlerLimit` of one socket's handlers run at once; its later frames wait, the socket paused, and none is lost.
import t from 'tap'
import { handlerLimit } from '../../lib/endpoints/rest.js'
import type { MessageHandler } from '../../types/index.js'
import { build, connect, within } from '../helpers.js'

t.test(`a socket runs at most ${handlerLimit} handlers at once; the rest wait their turn, in order, and all are answered`, async t => {
  let open!: () => void
  const gate = new Promise<void>(resolve => { open = resolve })
  let running = 0
  let started = 0
  let peak = 0
  let reachedLimit!: () => void
  const limitReached = new Promise<void>(resolve => { reachedLimit = resolve })
  const slow: MessageHandler = async (message, connection) => {
    started++
    peak = Math.max(peak, ++running)
    if (started === handlerLimit) reachedLimit()
    await gate
    running--
    connection.send({ type: 'done', uid: message.uid })
  }
  // Answers at once with how many handlers were running as it ran.
  const probe: MessageHandler = (message, connection) => connection.send({ type: 'probe', uid: message.uid, running })
  const { url } = await build(t, { rest: { auth: 'public', handlers: { slow, probe } }, heartbeat: { enabled: false } })
  const client = await connect(url('/websocket'))
  const total = handlerLimit + 50
  for (let i = 0; i < total; i++) client.send({ type: 'slow', uid: i })
  client.send({ type: 'probe', uid: 'probe' })
  client.send({ type: 'ping', uid: 'ping' })
  await within(limitReached, `${handlerLimit} handlers`)
  // Were there no limit, the other 50 would start meanwhile: a slow machine can only make this miss that, never fail.
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(started, handlerLimit, 'the others wait')
  open()
  const answers: unknown[] = []
  while (answers.length < total + 2) answers.push(await within(client.next(), 'an answer'))
  t.equal(peak, handlerLimit, `never more than ${handlerLimit} at once`)
  t.same(answers.filter(a => (a as { type: string }).type === 'done').map(a => (a as { uid: number }).uid),
    Array.from({ length: total }, (_v, i) => i), 'every message answered, in order')
  const probed = answers.find(a => (a as { type: string }).type === 'probe') as { running: number }
  t.ok(probed.running <= handlerLimit, `the probe ran behind the waiting frames (${probed.running} running)`)
  const at = (type: string) => answers.findIndex(a => (a as { type: string }).type === type)
  t.ok(at('pong') > at('probe'), 'and the ping after it, still answered at once, not behind the handlers')
  await client.close()
})
