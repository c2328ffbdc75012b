// /websocket in public and strict modes (PROTOCOL.md section 4).
import t from 'tap'
import type { RealtimeConnection, RealtimeMessage } from '../../lib/index.js'
import { admin, build, connect, refusedWith } from '../helpers.js'

const whoami = { whoami: (_m: RealtimeMessage, c: RealtimeConnection) => c.send({ type: 'whoami', accountability: c.accountability }) }

t.test('public: opens with the public accountability, never a null one', async t => {
  const { url } = await build(t, { rest: { auth: 'public', handlers: whoami }, publicRole: 'guest' })
  const client = await connect(url('/websocket'), { headers: { 'user-agent': 'tap' } })
  client.send({ type: 'whoami' })
  t.same(await client.next(), {
    type: 'whoami',
    accountability: { user: null, role: 'guest', admin: false, ip: '127.0.0.1', userAgent: 'tap', origin: null }
  })
  await client.close()
})

t.test('public: a later auth message changes the identity; a failed one leaves it public and open', async t => {
  const { app, url } = await build(t, { rest: { auth: 'public', handlers: whoami }, users: [admin] })
  const client = await connect(url('/websocket'))
  client.send({ type: 'ping' })
  t.same(await client.next(), { type: 'pong' })
  client.send({ type: 'auth', access_token: 'bad' })
  t.same(await client.next(), { type: 'auth', status: 'error', error: { code: 'AUTH_FAILED', message: 'Authentication failed.' } })
  client.send({ type: 'auth', email: admin.email, password: admin.password, uid: 1 })
  t.match(await client.next(), { type: 'auth', status: 'ok', uid: 1, refresh_token: String })
  client.send({ type: 'whoami' })
  const { accountability } = await client.next() as { accountability: { user: string, admin: boolean, session: string } }
  t.match(accountability, { user: String, role: 'administrator', admin: true, session: String })

  // A failed re-auth falls back to public and keeps the socket in public mode.
  const token = app.realtime.signAccessToken({ user: 'u2', role: null, admin: false }).access_token
  client.send({ type: 'auth', access_token: `${token}x`, uid: 2 })
  t.match(await client.next(), { error: { code: 'AUTH_FAILED' }, uid: 2 })
  client.send({ type: 'whoami' })
  t.match(await client.next(), { accountability: { user: null, admin: false } })
  await client.close()
})

t.test('strict: no credential at the upgrade gets HTTP 401', async t => {
  const { url } = await build(t, { rest: { auth: 'strict' } })
  const refused = await refusedWith(url('/websocket'))
  t.equal(refused.status, 401)
  t.same(JSON.parse(refused.body), { errors: [{ message: 'Authentication failed.', extensions: { code: 'AUTH_FAILED' } }] })
})

t.test('strict: a bad or expired URL token gets HTTP 401', async t => {
  const { app, url } = await build(t, { rest: { auth: 'strict' } })
  t.equal((await refusedWith(url('/websocket?access_token=bad'))).status, 401)
  t.equal((await refusedWith(url('/websocket?access_token='))).status, 401)
  t.equal((await refusedWith(url('/websocket?access_token=a&access_token=b'))).status, 401)
  const expired = app.realtime.jwt.sign({ id: 'u1', exp: Math.floor(Date.now() / 1000) - 10 })
  const refused = await refusedWith(url(`/websocket?access_token=${expired}`))
  t.equal(refused.status, 401)
  t.same(JSON.parse(refused.body), { errors: [{ message: 'Token expired.', extensions: { code: 'TOKEN_EXPIRED' } }] })
})

t.test('strict: a URL token opens it authenticated; later, all three auth forms work, and a failure closes 4401', async t => {
  const { app, url } = await build(t, { rest: { auth: 'strict', handlers: whoami }, users: [admin] })
  const token = app.realtime.signAccessToken({ user: 'u1', role: 'editor', admin: false }).access_token
  const client = await connect(url(`/websocket?access_token=${token}`))
  client.send({ type: 'whoami' })
  t.match(await client.next(), { accountability: { user: 'u1', role: 'editor' } })

  client.send({ type: 'auth', email: admin.email, password: admin.password })
  const { refresh_token: refreshToken } = await client.next() as { refresh_token: string }
  client.send({ type: 'auth', refresh_token: refreshToken, uid: 'r' })
  t.match(await client.next(), { type: 'auth', status: 'ok', uid: 'r', refresh_token: String })
  client.send({ type: 'auth', access_token: token, uid: 'a' })
  t.same(await client.next(), { type: 'auth', status: 'ok', uid: 'a' })

  client.send({ type: 'auth', access_token: 'bad' })
  t.match(await client.next(), { error: { code: 'AUTH_FAILED', message: 'Authentication failed.' } })
  t.equal((await client.closed).code, 4401)
})
