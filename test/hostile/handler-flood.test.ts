// A client that sends messages faster than the app's async handlers finish (PROTOCOL.md section 11): at most
// `handlerLimit` of one socket's handlers run at once; its later frames wait, the socket paused, and none is lost.
import t, { type Test } from 'tap'
import { handlerLimit } from '../../lib/endpoints/rest.js'
import type { MessageHandler } from '../../types/index.js'
import { admin, build, connect, fakeClock, readByServer, within } from '../helpers.js'
import { heldCost } from '../../lib/endpoints/held-messages.js'
import type { Connection } from '../../lib/connection/connection.js'
import { retainedBytes } from './gc.js'

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

t.test('messages that cost far more parsed than their bytes: fewer handlers hold them at once, no more than 100 frames weigh', async t => {
  const saves = await heldSaves(t)
  const { client, connection, items, open } = saves
  const total = handlerLimit + 10
  const before = retainedBytes()
  for (let i = 0; i < total; i++) client.send(`{"type":"save","uid":${i},"items":${items}}`)
  // Paused once the handlers hold what the socket may hold: nothing more starts until one ends.
  await within((async () => { while (!connection.socket.isPaused) await new Promise(resolve => setImmediate(resolve)) })(), 'the pause')
  const kept = retainedBytes() - before
  t.ok(saves.started < 10, `${saves.started} started`)
  // 100 of them held 130 MiB; the client's own unsent frames count here too (about 6 MB).
  t.ok(kept < 32 * 1024 * 1024, `the server kept ${Math.round(kept / 1048576)} MiB`)
  open()
  const answers: unknown[] = []
  while (answers.length < total) answers.push(await within(client.next(), 'an answer'))
  t.same(answers.map(a => (a as { uid: number }).uid), Array.from({ length: total }, (_v, i) => i), 'every message answered, in order')
  t.same(answers[0], { type: 'saved', uid: 0, items: 21_000 })
  await client.close()
})

t.test('auth messages between such messages resume no reading: their checks end, and the socket stays paused for what is held', async t => {
  const saves = await heldSaves(t)
  const { client, connection, items, open } = saves
  const total = handlerLimit + 10
  const before = retainedBytes()
  // Each auth message's check is async (a refresh token asks the store): the inbox waits for it, then reads on.
  for (let i = 0; i < total; i++) {
    client.send(`{"type":"save","uid":${i},"items":${items}}`)
    client.send({ type: 'auth', refresh_token: `unknown-${i}`, uid: `auth-${i}` })
  }
  await within((async () => { while (!connection.socket.isPaused) await new Promise(resolve => setImmediate(resolve)) })(), 'the pause')
  // Until no handler has started for 300 ms: the frames ws had read already have run, their checks ended, and what
  // each end resumed, if any, was read and started (before the fix, one more message every 20 to 30 ms, up to 100).
  for (let seen = -1; seen !== saves.started;) {
    seen = saves.started
    await new Promise(resolve => setTimeout(resolve, 300))
  }
  const kept = retainedBytes() - before
  t.ok(saves.started < 10, `${saves.started} started`)
  // Resumed by each check's end, it read on: 100 started, holding 128 MiB.
  t.ok(kept < 32 * 1024 * 1024, `the server kept ${Math.round(kept / 1048576)} MiB`)
  open()
  const saved: number[] = []
  while (saved.length < total) {
    const frame = await within(client.next(), 'an answer') as { type: string, uid: number }
    if (frame.type === 'saved') saved.push(frame.uid)
  }
  t.same(saved, Array.from({ length: total }, (_v, i) => i), 'every message answered, in order')
  await client.close()
})

t.test('a held message counts its bytes and 64 for each brace, bracket and comma', async t => {
  t.equal(heldCost(Buffer.from('{"type":"save","text":"abc"}')), 28 + 2 * 64)
  t.equal(heldCost(Buffer.from('[[],{}]')), 7 + 4 * 64)
})

/** A `slow` handler that holds its slot until `open`, and a promise that resolves once `handlerLimit` of them run. */
function slotHolder (t: Test) {
  let open!: () => void
  const gate = new Promise<void>(resolve => { open = resolve })
  t.teardown(() => open())
  let taken!: () => void
  const allTaken = new Promise<void>(resolve => { taken = resolve })
  const holder = {
    started: 0,
    open: () => open(),
    allTaken: () => within(allTaken, 'every slot taken'),
    slow: (async () => {
      if (++holder.started === handlerLimit) taken()
      await gate
    }) as MessageHandler
  }
  return holder
}

t.test('a socket closed while its frames wait for a handler slot closes as its client answers, not 30 s later', async t => {
  const slots = slotHolder(t)
  const { app, url } = await build(t, { rest: { auth: 'public', handlers: { slow: slots.slow } }, heartbeat: { enabled: false } })
  const serverClosed = new Promise<number>(resolve => app.realtime.on('close', ({ code }) => resolve(code)))
  const client = await connect(url('/websocket'))
  for (let i = 0; i < handlerLimit + 10; i++) client.send({ type: 'slow', uid: i })
  // The handlers hold every slot, and the frames behind them wait: the socket is paused.
  await slots.allTaken()
  // ws's own wait for the client's answer (30 s) never ends here: only the answer can close the socket.
  fakeClock(t, ['setTimeout', 'clearTimeout'])
  t.equal(app.realtime.close({}, 4000, 'bye'), 1)
  t.same(await within(client.closed, 'the client\'s close'), { code: 4000, reason: 'bye' })
  t.equal(await within(serverClosed, 'the server\'s close event'), 4000, 'the server closed it as the client answered')
  t.equal(slots.started, handlerLimit, 'the frames behind the close were dropped unread')
})

t.test('an auth message sent in its window while the handlers hold every slot is answered, however long it waits', async t => {
  const slots = slotHolder(t)
  const whoami: MessageHandler = (message, connection) => connection.send({ type: 'whoami', user: connection.accountability.user })
  const { app, url } = await build(t, {
    users: [admin], rest: { auth: 'handshake', authTimeout: 1, handlers: { slow: slots.slow, whoami } }, heartbeat: { enabled: false }
  })
  // A refresh token: its check, which runs once the handlers let it, is a store's, asynchronous.
  const { refresh_token: refreshToken } = await app.realtime.login({ email: admin.email, password: admin.password })
  const client = await connect(url(`/websocket?access_token=${app.realtime.jwt.sign({ id: 'first' })}`))
  for (let i = 0; i < handlerLimit; i++) client.send({ type: 'slow', uid: i })
  await slots.allTaken()
  const clock = fakeClock(t, ['setTimeout', 'clearTimeout', 'performance'])
  await app.realtime.revokeUser('first')
  t.match(await within(client.next(), 'AUTH_REVOKED'), { error: { code: 'AUTH_REVOKED' } })
  // At once, well inside the window; it waits behind the handlers, for ten windows' time.
  client.send({ type: 'auth', refresh_token: refreshToken, uid: 'again' })
  client.send({ type: 'whoami' })
  await readByServer(app, client)
  clock.tick(10_000)
  slots.open()
  t.match(await within(client.next(), 'the auth answer'), { type: 'auth', status: 'ok', uid: 'again', refresh_token: String }, 'no AUTH_TIMEOUT')
  t.match(await within(client.next(), 'whoami'), { type: 'whoami', user: String })
  clock.uninstall()
  await client.close()
})

t.test('an auth message that waited, then failed before its check (a bad uid), holds no later window', async t => {
  const slots = slotHolder(t)
  const { app, url } = await build(t, { rest: { auth: 'strict', authTimeout: 1, handlers: { slow: slots.slow } }, heartbeat: { enabled: false } })
  const client = await connect(url(`/websocket?access_token=${app.realtime.jwt.sign({ id: 'first' })}`))
  for (let i = 0; i < handlerLimit; i++) client.send({ type: 'slow', uid: i })
  await slots.allTaken()
  // Frames that name "auth" and are none: not held for.
  client.ws.send('{"auth"')
  client.send({ type: 'ping', uid: 'auth' })
  client.send({ type: 'auth', uid: true, access_token: 'x' })
  await readByServer(app, client)
  slots.open()
  t.match(await within(client.next(), 'the unparsable frame\'s answer'), { type: 'server', error: { code: 'INVALID_PAYLOAD' } })
  t.same(await within(client.next(), 'pong'), { type: 'pong', uid: 'auth' })
  t.match(await within(client.next(), 'INVALID_PAYLOAD'), { type: 'auth', error: { code: 'INVALID_PAYLOAD' } })
  const clock = fakeClock(t, ['setTimeout', 'clearTimeout', 'performance'])
  await app.realtime.revokeUser('first')
  t.match(await within(client.next(), 'AUTH_REVOKED'), { error: { code: 'AUTH_REVOKED' } })
  clock.tick(1_000)
  t.match(await within(client.next(), 'AUTH_TIMEOUT'), { error: { code: 'AUTH_TIMEOUT' } }, 'the window ran and ended')
  t.equal((await within(client.closed, 'the close')).code, 4408)
})

/**
 * A public socket whose `save` handler holds its message until `open`, as one writing it to a database does, and the
 * `items` of a 63 KB frame (about 1.3 MiB of heap once parsed); `started` counts the handlers begun.
 */
async function heldSaves (t: Test) {
  let open!: () => void
  const gate = new Promise<void>(resolve => { open = resolve })
  t.teardown(() => open())
  const saves = { started: 0, open: () => open() }
  const save: MessageHandler = async (message, connection) => {
    saves.started++
    await gate
    connection.send({ type: 'saved', uid: message.uid, items: (message.items as unknown[]).length })
  }
  const { app, url } = await build(t, { rest: { auth: 'public', handlers: { save } }, heartbeat: { enabled: false } })
  const client = await connect(url('/websocket'))
  const [connection] = app.realtime.connections() as Connection[]
  const items = `[${Array.from({ length: 21_000 }, () => '{}').join(',')}]`
  return Object.assign(saves, { client, connection: connection!, items })
}
