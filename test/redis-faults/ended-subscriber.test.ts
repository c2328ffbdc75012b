// A subscriber its ioredis client ended for good (README "Scaling out", Sentinel): ioredis gives up on a Sentinel
// client when `+switch-master` reaches its failover detector while it asks a Sentinel where the master is, and an app's
// retryStrategy may give up. The plugin's subscriber, a duplicate of the app's client, is connected again: a logout
// on another process still reaches this one's sockets.
import t from 'tap'
import { Redis } from 'ioredis'
import { admin, build, connect, within } from '../helpers.js'
import { RedisServer } from '../redis-server.js'

t.test('a subscriber its client ended (an app\'s retryStrategy giving up) is connected again: a logout on another process reaches a socket here', async t => {
  const server = await RedisServer.start(t)
  const a = await build(t, { users: [admin], authRoutes: true, redis: server.url }, { logger: false })
  // No second try: the plugin's duplicate of it ends with its first lost connection.
  const givingUp = new Redis(server.port, '127.0.0.1', { retryStrategy: () => null })
  t.teardown(() => givingUp.disconnect())
  const warnings: string[] = []
  let warned = () => {}
  const b = await build(t, { users: [admin], authRoutes: true, redis: givingUp }, {
    logger: { level: 'warn', stream: { write: (line: string) => { warnings.push(JSON.parse(line).msg); warned() } } }
  })
  const ended = () => new Promise<void>(resolve => {
    warned = () => { if (warnings.some(line => line.includes('Redis (subscriber) ended by its client'))) resolve() }
    warned()
  })
  const tokens = (await a.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })).json().data
  const onB = await connect(b.url('/websocket'))
  onB.send({ type: 'auth', access_token: tokens.access_token })
  t.same(await onB.next(), { type: 'auth', status: 'ok' })

  // Redis ends every subscriber's connection: a's comes back by itself, b's client gives up.
  const operator = new Redis(server.port, '127.0.0.1')
  t.teardown(() => operator.disconnect())
  await operator.client('KILL', 'TYPE', 'pubsub')
  await within(ended(), 'b\'s subscriber ended, and said so')

  t.equal((await a.app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: tokens.refresh_token } })).statusCode, 204, 'a logout on a')
  t.match(await within(onB.next(), 'the revocation on b'), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED' } }, 'reaches the socket on b')
  await onB.close()
})
