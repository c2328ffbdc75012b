// A logout that fails half-way (PROTOCOL.md section 7): Redis, which carries the revocations, is down while the
// sessions live elsewhere. The logout is answered 503 and has ended nothing, so the client's retry, once Redis is
// back, ends the session and reaches its socket.
import t from 'tap'
import { Redis } from 'ioredis'
import { MemorySessionStore } from '../../lib/index.js'
import { admin, build, connect, within } from '../helpers.js'
import { RedisServer } from '../redis-server.js'

t.test('a logout answered 503 while Redis is down can be retried: the retry ends the session and its socket hears', async t => {
  const redis = await RedisServer.start(t)
  const { app, url } = await build(t, { users: [admin], authRoutes: true, redis: redis.url, sessionStore: new MemorySessionStore() },
    { logger: false })
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  const { access_token: accessToken, refresh_token: refreshToken } = login.json().data
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: accessToken })
  t.same(await within(client.next(), 'the ok'), { type: 'auth', status: 'ok' })

  await redis.stop()
  const logout = () => app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: refreshToken } })
  t.equal((await logout()).statusCode, 503, 'the revocation could not go out')
  await redis.start()
  // Until the plugin's connections are back, a retry is answered 503 as well.
  let retry = await logout()
  while (retry.statusCode === 503) {
    await new Promise(resolve => setTimeout(resolve, 100))
    retry = await logout()
  }
  t.equal(retry.statusCode, 204, 'the retry logs out')
  t.match(await within(client.next(), 'the revocation'), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED' } })
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refreshToken } })).statusCode, 401,
    'and the session is over')
  await client.close()
})

t.test('a logout whose revocation Redis never answers (the app\'s client has no command timeout) is answered 503', async t => {
  const redis = await RedisServer.start(t)
  // As an app may make it: ioredis's defaults, no commandTimeout.
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  const { app } = await build(t, { users: [admin], authRoutes: true, redis: client, sessionStore: new MemorySessionStore() },
    { logger: false })
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  const { refresh_token: refreshToken } = login.json().data
  redis.pause()
  t.teardown(() => redis.resume())
  const logout = await within(app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: refreshToken } }), 'the logout\'s answer')
  t.equal(logout.statusCode, 503, 'given up on at the store timeout, as a store call is')
  redis.resume()
})
