// A message handler's signal on one process, its session logged out on another (Redis fan-out): it aborts as the
// revocation arrives, and what the handler computed for the session is not sent.
import t from 'tap'
import { EventEmitter, once } from 'node:events'
import type { MessageContext, MessageHandler } from '../../lib/index.js'
import { admin, build, connect, until, within } from '../helpers.js'
import { RedisServer } from '../redis-server.js'

t.test('a logout on another process aborts the signal of a handler still running as that session', async t => {
  const server = await RedisServer.start(t)
  const bus = new EventEmitter()
  let context: MessageContext | undefined
  let ended: Promise<unknown> | undefined
  const wait: MessageHandler = (message, _connection, given) => {
    context = given
    const running = (async () => {
      await once(bus, 'go', { signal: given.signal })
      given.send({ type: 'secret', uid: message.uid })
    })()
    ended = running.then(() => 'done', (err: unknown) => err)
    return running
  }
  const options = { users: [admin], authRoutes: true, redis: server.url, rest: { handlers: { wait }, authTimeout: 5 } }
  const [a, b] = [await build(t, options, { logger: false }), await build(t, options, { logger: false })]
  const login = await a.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  const tokens = login.json().data as { access_token: string, refresh_token: string }
  const onB = await connect(b.url('/websocket'))
  onB.send({ type: 'auth', access_token: tokens.access_token })
  t.same(await within(onB.next(), 'the ok'), { type: 'auth', status: 'ok' })
  onB.send({ type: 'wait', uid: 1 })
  await until(() => context !== undefined)
  const logout = await a.app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: tokens.refresh_token } })
  t.equal(logout.statusCode, 204)
  t.same(await within(onB.next(), 'the revocation'), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } })
  t.ok(context!.signal.aborted, 'aborted on the other process')
  t.match(await ended, { name: 'AbortError' })
  bus.emit('go')
  onB.send({ type: 'ping', uid: 'after' })
  t.same(await within(onB.next(), 'the pong'), { type: 'pong', uid: 'after' }, 'nothing sent for the ended session, no error')
  await onB.close()
})
