// A message handler's third argument: the accountability it was called under, and the signal that aborts when that
// accountability ends on its socket (the close, an expiry, a revocation, an auth message making it someone else's).
import t, { type Test } from 'tap'
import { EventEmitter, getEventListeners, once } from 'node:events'
import { handlerLimit } from '../../lib/endpoints/rest.js'
import type { MessageContext, MessageHandler, RealtimeConnection, RealtimeOptions } from '../../lib/index.js'
import { admin, build, connect, editor, fakeClock, until, within, type Client } from '../helpers.js'

const tokenExpired = { type: 'auth', status: 'error', error: { code: 'TOKEN_EXPIRED', message: 'Token expired.' } }
const sessionRevoked = { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } }

/** A handler that waits for `go` on `bus` (with its signal, or without), then sends what it computed through its context. */
interface Waiting {
  bus: EventEmitter
  calls: { connection: RealtimeConnection, context: MessageContext, ended: Promise<unknown> }[]
  handlers: Record<string, MessageHandler>
}

function waiting (): Waiting {
  const bus = new EventEmitter()
  // Up to 100 handlers wait on it at once.
  bus.setMaxListeners(0)
  const calls: Waiting['calls'] = []
  const run = (heedsSignal: boolean): MessageHandler => (message, connection, context) => {
    const ended = (async () => {
      await once(bus, 'go', heedsSignal ? { signal: context.signal } : {})
      context.send({ type: 'secret', uid: message.uid, for: context.accountability.user })
    })()
    calls.push({ connection, context, ended: ended.then(() => 'done', (err: unknown) => err) })
    return ended
  }
  return { bus, calls, handlers: { wait: run(true), deaf: run(false) } }
}

/** Errors the app logged, by message. */
function loggedErrors (): { errors: string[], serverOptions: { logger: object } } {
  const errors: string[] = []
  const write = (line: string) => {
    const { level, msg } = JSON.parse(line) as { level: number, msg: string }
    if (level >= 50) errors.push(msg)
  }
  return { errors, serverOptions: { logger: { level: 'error', stream: { write } } } }
}

/** The next frame after everything sent before it: a ping's pong, so that a frame sent by mistake shows first. */
async function nothingBefore (client: Client, uid: string): Promise<unknown> {
  client.send({ type: 'ping', uid })
  return await within(client.next(), `the pong ${uid}`)
}

async function authenticated (t: Test, options: RealtimeOptions = {}) {
  const w = waiting()
  const { errors, serverOptions } = loggedErrors()
  const { app, url } = await build(t, { users: [admin, editor], ...options, rest: { handlers: w.handlers, authTimeout: 5, ...options.rest } }, serverOptions)
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', email: admin.email, password: admin.password })
  const ok = await within(client.next(), 'the auth ok') as { refresh_token: string }
  const [connection] = app.realtime.connections()
  return { app, client, errors, ...w, refreshToken: ok.refresh_token, adminId: connection!.accountability.user! }
}

async function called (w: Waiting, count: number) {
  while (w.calls.length < count) await new Promise(resolve => setImmediate(resolve))
  return w.calls[count - 1]!
}

t.test('the client closes: the signal aborts, and the handler stopping at it is neither logged nor answered', async t => {
  const s = await authenticated(t)
  s.client.send({ type: 'wait', uid: 1 })
  const { context, connection } = await called(s, 1)
  t.equal(context.accountability.user, connection.accountability.user)
  t.notOk(context.signal.aborted)
  await s.client.close()
  t.match(await s.calls[0]!.ended, { name: 'AbortError' }, 'what the handler awaited was stopped')
  t.ok(context.signal.aborted)
  await new Promise(resolve => setImmediate(resolve))
  t.same(s.errors, [], 'nothing logged')
})

t.test('the server closes the socket: the signal aborts as the close is sent, before the client answers', async t => {
  const s = await authenticated(t)
  s.client.send({ type: 'wait', uid: 1 })
  const { context, connection } = await called(s, 1)
  // The client will not answer the close: ws would wait 30 s for it.
  s.client.ws.pause()
  connection.close(1000)
  t.ok(context.signal.aborted, 'at once')
  t.match(await s.calls[0]!.ended, { name: 'AbortError' })
  s.client.ws.terminate()
})

t.test('the token expires: the signal aborts before TOKEN_EXPIRED is sent, and what the handler computed is not sent', async t => {
  const clock = fakeClock(t)
  const s = await authenticated(t, { accessTokenTtl: 1000 })
  s.client.send({ type: 'deaf', uid: 'deaf' })
  s.client.send({ type: 'wait', uid: 'heeds' })
  const deaf = await called(s, 1)
  const heeds = await called(s, 2)
  t.equal(deaf.context, heeds.context, 'one context for the handlers of one accountability')
  clock.tick(1000)
  t.same(await within(s.client.next(), 'the expiry'), tokenExpired)
  t.ok(heeds.context.signal.aborted)
  t.match(await heeds.ended, { name: 'AbortError' }, 'the handler that heeds its signal stopped')
  t.equal(deaf.context.accountability.user, s.adminId, 'the accountability it was called under, still')
  t.equal(deaf.connection.accountability.user, null, 'the socket\'s is public')
  s.bus.emit('go')
  t.equal(await deaf.ended, 'done', 'the one that does not heed it ran on')
  t.same(await nothingBefore(s.client, 'after'), { type: 'pong', uid: 'after' }, 'and sent nothing computed for the admin, nor an error')
  t.same(s.errors, [], 'nothing logged')
  // A handler called now runs as the public accountability, with a signal of its own.
  s.client.send({ type: 'wait', uid: 'public' })
  const later = await called(s, 3)
  t.not(later.context, deaf.context)
  t.equal(later.context.accountability.user, null)
  t.notOk(later.context.signal.aborted)
  s.bus.emit('go')
  t.same(await within(s.client.next(), 'the public answer'), { type: 'secret', uid: 'public', for: null })
  await s.client.close()
})

t.test('the session is revoked: the signal aborts with AUTH_REVOKED', async t => {
  const s = await authenticated(t)
  s.client.send({ type: 'wait', uid: 1 })
  const { context } = await called(s, 1)
  const { session } = context.accountability
  t.type(session, 'string')
  await s.app.realtime.revokeSession(session!)
  t.same(await within(s.client.next(), 'the revocation'), sessionRevoked)
  t.ok(context.signal.aborted)
  t.match(await s.calls[0]!.ended, { name: 'AbortError' })
  t.same(await nothingBefore(s.client, 'after'), { type: 'pong', uid: 'after' })
  t.same(s.errors, [])
  await s.client.close()
})

t.test('the user is revoked: the signal aborts', async t => {
  const s = await authenticated(t)
  s.client.send({ type: 'wait', uid: 1 })
  const { context } = await called(s, 1)
  await s.app.realtime.revokeUser(context.accountability.user!)
  t.same(await within(s.client.next(), 'the revocation'), sessionRevoked)
  t.ok(context.signal.aborted)
  await s.client.close()
})

t.test('an auth message as another user aborts the signal; a refresh of the same session does not', async t => {
  const s = await authenticated(t)
  s.client.send({ type: 'wait', uid: 1 })
  const first = await called(s, 1)
  // The SDK's refresh: a new token for the same session, in an auth message.
  s.client.send({ type: 'auth', refresh_token: s.refreshToken, uid: 'refresh' })
  t.match(await within(s.client.next(), 'the refresh'), { type: 'auth', status: 'ok', uid: 'refresh' })
  t.notOk(first.context.signal.aborted, 'the same user, role and session: still the handler\'s')
  s.client.send({ type: 'wait', uid: 2 })
  t.equal((await called(s, 2)).context, first.context, 'and later handlers share it')
  s.client.send({ type: 'auth', email: editor.email, password: editor.password, uid: 'editor' })
  t.match(await within(s.client.next(), 'the editor\'s ok'), { type: 'auth', status: 'ok', uid: 'editor' })
  t.ok(first.context.signal.aborted, 'another user: aborted')
  t.match(await first.ended, { name: 'AbortError' })
  s.client.send({ type: 'deaf', uid: 3 })
  const editors = await called(s, 3)
  const editorId = editors.connection.accountability.user
  t.equal(editors.context.accountability.user, editorId)
  t.not(editorId, s.adminId)
  t.notOk(editors.context.signal.aborted)
  s.bus.emit('go')
  t.same(await within(s.client.next(), 'the editor\'s answer'), { type: 'secret', uid: 3, for: editorId })
  t.same(await nothingBefore(s.client, 'after'), { type: 'pong', uid: 'after' }, 'nothing computed for the admin')
  t.same(s.errors, [])
  await s.client.close()
})

t.test('the same user in a new session is another accountability: aborted', async t => {
  const s = await authenticated(t)
  s.client.send({ type: 'wait', uid: 1 })
  const { context } = await called(s, 1)
  s.client.send({ type: 'auth', email: admin.email, password: admin.password, uid: 'again' })
  t.match(await within(s.client.next(), 'the ok'), { type: 'auth', status: 'ok', uid: 'again' })
  t.ok(context.signal.aborted)
  await s.client.close()
})

t.test('public mode: a failed auth message drops the socket to public and aborts the signal', async t => {
  const s = await authenticated(t, { rest: { auth: 'public' } })
  s.client.send({ type: 'wait', uid: 1 })
  const { context } = await called(s, 1)
  s.client.send({ type: 'auth', access_token: 'not-a-token', uid: 'bad' })
  t.match(await within(s.client.next(), 'the refusal'), { type: 'auth', status: 'error', error: { code: 'AUTH_FAILED' }, uid: 'bad' })
  t.ok(context.signal.aborted)
  await s.client.close()
})

t.test('what the aborted signal makes a handler throw is neither logged nor answered: its reason, an AbortError', async t => {
  const { errors, serverOptions } = loggedErrors()
  const contexts: MessageContext[] = []
  const stops: Record<string, (signal: AbortSignal) => never> = {
    reason: signal => { signal.throwIfAborted(); throw new Error('unreached') },
    named: () => { throw new DOMException('The query was cancelled.', 'AbortError') },
    caused: signal => { throw new Error('cancelled', { cause: signal.reason }) }
  }
  const handlers: Record<string, MessageHandler> = {}
  for (const [type, stop] of Object.entries(stops)) {
    handlers[type] = async (_message, _connection, context) => {
      contexts.push(context)
      await once(context.signal, 'abort')
      stop(context.signal)
    }
  }
  const { app, url } = await build(t, { users: [admin], rest: { authTimeout: 5, handlers } }, serverOptions)
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', email: admin.email, password: admin.password })
  await within(client.next(), 'the ok')
  for (const type of Object.keys(stops)) client.send({ type, uid: type })
  while (contexts.length < 3) await new Promise(resolve => setImmediate(resolve))
  await app.realtime.revokeSession(contexts[0]!.accountability.session!)
  t.same(await within(client.next(), 'the revocation'), sessionRevoked)
  t.same(await nothingBefore(client, 'after'), { type: 'pong', uid: 'after' }, 'no error frame')
  t.same(errors, [], 'nothing logged')
  await client.close()
})

t.test('a handler that throws anything else once aborted is logged and answered, as before', async t => {
  const { errors, serverOptions } = loggedErrors()
  const clock = fakeClock(t)
  let context: MessageContext | undefined
  const { url } = await build(t, {
    users: [admin],
    accessTokenTtl: 1000,
    rest: {
      authTimeout: 5,
      handlers: {
        async broken (_message, _connection, given) {
          context = given
          await once(given.signal, 'abort')
          throw new TypeError('a bug of its own')
        }
      }
    }
  }, serverOptions)
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', email: admin.email, password: admin.password })
  await within(client.next(), 'the ok')
  client.send({ type: 'broken', uid: 7 })
  await until(() => context !== undefined)
  clock.tick(1000)
  t.same(await within(client.next(), 'the expiry'), tokenExpired)
  t.same(await within(client.next(), 'the answer'),
    { type: 'broken', status: 'error', error: { code: 'INTERNAL_SERVER_ERROR', message: 'An unexpected error occurred.' }, uid: 7 })
  t.same(errors, ['realtime message handler failed'])
  await client.close()
})

t.test(`${handlerLimit} handlers holding every slot: an expiry aborts those heeding it, their slots free, and the frames behind them run`, async t => {
  const clock = fakeClock(t)
  const s = await authenticated(t, { accessTokenTtl: 1000, heartbeat: { enabled: false } })
  for (let i = 0; i < handlerLimit; i++) s.client.send({ type: 'wait', uid: i })
  s.client.send({ type: 'ping', uid: 'behind' })
  const last = await called(s, handlerLimit)
  t.equal(getEventListeners(last.context.signal, 'abort').length, handlerLimit, 'each waits on the one signal')
  clock.tick(1000)
  t.same(await within(s.client.next(), 'the expiry'), tokenExpired)
  t.same(await within(s.client.next(), 'the ping behind them'), { type: 'pong', uid: 'behind' })
  t.equal(s.calls.length, handlerLimit)
  for (const call of s.calls) t.match(await call.ended, { name: 'AbortError' })
  t.same(await nothingBefore(s.client, 'after'), { type: 'pong', uid: 'after' })
  t.same(s.errors, [])
  await s.client.close()
})

t.test(`${handlerLimit} deaf handlers holding every slot keep them past the expiry, until they end`, async t => {
  const clock = fakeClock(t)
  const s = await authenticated(t, { accessTokenTtl: 1000, heartbeat: { enabled: false } })
  for (let i = 0; i < handlerLimit; i++) s.client.send({ type: 'deaf', uid: i })
  s.client.send({ type: 'ping', uid: 'behind' })
  await called(s, handlerLimit)
  clock.tick(1000)
  t.same(await within(s.client.next(), 'the expiry'), tokenExpired)
  // The ping waits behind them: the next frame is its pong once they end, and none of theirs is sent.
  s.bus.emit('go')
  t.same(await within(s.client.next(), 'the ping behind them'), { type: 'pong', uid: 'behind' })
  for (const call of s.calls) t.equal(await call.ended, 'done')
  t.same(await nothingBefore(s.client, 'after'), { type: 'pong', uid: 'after' })
  await s.client.close()
})

/** `count` messages each awaiting an event with the signal, a hundred at once, on one socket. */
async function manyMessages (client: Client, s: Waiting, count: number) {
  const warnings: string[] = []
  const warned = (warning: Error) => { warnings.push(warning.name) }
  process.on('warning', warned)
  for (let sent = 0; sent < count; sent += handlerLimit) {
    for (let i = 0; i < handlerLimit; i++) client.send({ type: 'wait', uid: sent + i })
    await called(s, sent + handlerLimit)
    s.bus.emit('go')
    for (let i = 0; i < handlerLimit; i++) await within(client.next(), 'an answer')
  }
  process.off('warning', warned)
  return warnings
}

t.test('thousands of messages on one socket: one signal, and no listener left on it once they settle', async t => {
  const s = await authenticated(t, { heartbeat: { enabled: false } })
  const count = 5_000
  const warnings = await manyMessages(s.client, s, count)
  const { signal } = s.calls[0]!.context
  t.equal(new Set(s.calls.map(call => call.context)).size, 1, 'one context for all of them')
  t.equal(getEventListeners(signal, 'abort').length, 0, 'no listener left')
  t.same(warnings, [], 'no MaxListenersExceededWarning with 100 at once')
  t.notOk(signal.aborted)
  await s.client.close()
  t.ok(signal.aborted)
})
