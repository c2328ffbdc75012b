// Late store writes (PROTOCOL.md section 11): a refresh answered SERVICE_UNAVAILABLE because Redis did not answer in
// time must not rotate the token when Redis comes back, so the client's retry with the same token succeeds.
import t from 'tap'
import { admin, build } from '../helpers.js'
import { RedisServer } from '../redis-server.js'

t.test('a refresh answered 503 while Redis hangs has not rotated: the retry with the same token succeeds', async t => {
  const redis = await RedisServer.start(t)
  const { app } = await build(t, { users: [admin], authRoutes: true, redis: redis.url }, { logger: false })
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  const { refresh_token: token } = login.json().data

  redis.pause() // the command is sent and waits in Redis's socket buffer
  const timedOut = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: token } })
  t.equal(timedOut.statusCode, 503)
  t.same(timedOut.json(), { errors: [{ message: 'Service unavailable.', extensions: { code: 'SERVICE_UNAVAILABLE' } }] })
  redis.resume() // Redis now runs the command it was sent: it must refuse to act, its deadline has passed

  const retry = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: token } })
  t.equal(retry.statusCode, 200, 'the retry is no reuse: the late rotation did not land')
  const next = retry.json().data?.refresh_token
  t.type(next, 'string')
  t.not(next, token, 'a new refresh token')
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: next } })).statusCode, 200,
    'and the session goes on')
})
