// A client that sends messages faster than the app's async handlers finish (PROTOCOL.md section 11): at most
// `handlerLimit` of one socket's handlers run at once; its later frames wait, the socket paused, and none is lost.
import t from 'tap'
import type { Socket } from 'node:net'
import { handlerLimit } from '../../lib/endpoints/rest.js'
import type { MessageHandler } from '../../types/index.js'
import { build, connect, fakeClock, within } from '../helpers.js'

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

t.test('a socket closed while its frames wait for a handler slot closes as its client answers, not 30 s later', async t => {
  let open!: () => void
  const gate = new Promise<void>(resolve => { open = resolve })
  t.teardown(() => open())
  let started = 0
  let allRunning!: () => void
  const limitReached = new Promise<void>(resolve => { allRunning = resolve })
  const slow: MessageHandler = async () => {
    if (++started === handlerLimit) allRunning()
    await gate
  }
  const { app, url } = await build(t, { rest: { auth: 'public', handlers: { slow } }, heartbeat: { enabled: false } })
  const serverClosed = new Promise<number>(resolve => app.realtime.on('close', ({ code }) => resolve(code)))
  const client = await connect(url('/websocket'))
  for (let i = 0; i < handlerLimit + 10; i++) client.send({ type: 'slow', uid: i })
  // The handlers hold every slot, and the frames behind them wait: the socket is paused.
  await within(limitReached, 'every slot taken')
  // ws's own wait for the client's answer (30 s) never ends here: only the answer can close the socket.
  fakeClock(t, ['setTimeout', 'clearTimeout'])
  t.equal(app.realtime.close({}, 4000, 'bye'), 1)
  t.same(await within(client.closed, 'the client\'s close'), { code: 4000, reason: 'bye' })
  t.equal(await within(serverClosed, 'the server\'s close event'), 4000, 'the server closed it as the client answered')
  t.equal(started, handlerLimit, 'the frames behind the close were dropped unread')
})

t.test('an auth message sent in its window while the handlers hold every slot is answered, however long it waits', async t => {
  let open!: () => void
  const gate = new Promise<void>(resolve => { open = resolve })
  t.teardown(() => open())
  let started = 0
  let allRunning!: () => void
  const limitReached = new Promise<void>(resolve => { allRunning = resolve })
  const slow: MessageHandler = async () => {
    if (++started === handlerLimit) allRunning()
    await gate
  }
  const whoami: MessageHandler = (message, connection) => connection.send({ type: 'whoami', user: connection.accountability.user })
  const { app, url } = await build(t, { rest: { auth: 'handshake', authTimeout: 1, handlers: { slow, whoami } }, heartbeat: { enabled: false } })
  const client = await connect(url(`/websocket?access_token=${app.realtime.jwt.sign({ id: 'first' })}`))
  for (let i = 0; i < handlerLimit; i++) client.send({ type: 'slow', uid: i })
  await within(limitReached, 'every slot taken')
  const clock = fakeClock(t, ['setTimeout', 'clearTimeout', 'performance'])
  await app.realtime.revokeUser('first')
  t.match(await within(client.next(), 'AUTH_REVOKED'), { error: { code: 'AUTH_REVOKED' } })
  // At once, well inside the window; it waits behind the handlers, for ten windows' time.
  client.send({ type: 'auth', access_token: app.realtime.jwt.sign({ id: 'second' }), uid: 'again' })
  client.send({ type: 'whoami' })
  // Once the server has read every byte the client wrote, the auth message waits in the inbox.
  const [connection] = app.realtime.connections()
  const sent = (client.ws as unknown as { _socket: Socket })._socket
  while (connection.request.raw.socket.bytesRead < sent.bytesWritten) await new Promise(resolve => setImmediate(resolve))
  clock.tick(10_000)
  open()
  t.same(await within(client.next(), 'the auth answer'), { type: 'auth', status: 'ok', uid: 'again' }, 'no AUTH_TIMEOUT')
  t.same(await within(client.next(), 'whoami'), { type: 'whoami', user: 'second' })
  clock.uninstall()
  await client.close()
})
