// `verify.maxAge` of the @fastify/jwt that verifies socket tokens: fast-jwt refuses a token older than that since its
// `iat`, whatever its `exp`, so a socket holding one ends then too (TOKEN_EXPIRED), as it does at `exp`: the app's
// instance (maxAge in seconds, or a time span), a token without `exp`, and the plugin's own instance with a login's
// token. And `verify.clockTolerance`: a token past its `exp` by less still verifies, and its socket lives that long.
// On a fake clock: the tokens' age is the test's to choose.
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import fastifyJwt from '@fastify/jwt'
import realtime from '../../lib/index.js'
import { admin, build, connect, fakeClock, refusedWith, secret, whoami, within, type Client } from '../helpers.js'

const tokenExpired = { type: 'auth', status: 'error', error: { code: 'TOKEN_EXPIRED', message: 'Token expired.' } }

async function whoIs (client: Client, uid: string): Promise<unknown> {
  client.send({ type: 'whoami', uid })
  return within(client.next(), 'the whoami answer')
}

/** An app with its own @fastify/jwt verifying with `verify`, the plugin, and a route verifying the bearer token. */
async function appWithMaxAge (t: Test, maxAge: number | string | undefined, verify: { clockTolerance?: number } = {}) {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, { secret, verify: { ...(maxAge === undefined ? {} : { maxAge }), ...verify } })
  await app.register(realtime, { env: {}, rest: { handlers: { whoami } } })
  app.get('/me', async (request) => { await request.jwtVerify(); return request.user })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = (path: string) => `ws://127.0.0.1:${(app.server.address() as { port: number }).port}${path}`
  return { app, url }
}

t.test('the app\'s maxAge in seconds: the socket\'s token ends at iat + maxAge, before its exp, as the app then refuses it', async t => {
  const clock = fakeClock(t)
  const { app, url } = await appWithMaxAge(t, 60)
  const token = app.jwt.sign({ id: 'alice' }, { expiresIn: '1h' })
  const { iat } = app.jwt.decode<{ iat: number }>(token)!
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: token })
  t.same(await client.next(), { type: 'auth', status: 'ok' })
  const byUrl = await connect(url(`/websocket?access_token=${token}`))
  clock.tick(iat * 1000 + 60_000 - Date.now() - 1)
  t.same(await whoIs(client, 'before'), { type: 'whoami', uid: 'before', user: 'alice' }, 'a millisecond before')
  clock.tick(1)
  t.same(await within(client.next(), 'TOKEN_EXPIRED'), tokenExpired, 'by an auth message: expired at iat + maxAge')
  t.same(await within(byUrl.next(), 'TOKEN_EXPIRED'), tokenExpired, 'at the upgrade too')
  t.same(await whoIs(client, 'after'), { type: 'whoami', uid: 'after', user: null })
  clock.tick(1)
  t.equal((await app.inject({ url: '/me', headers: { authorization: `Bearer ${token}` } })).statusCode, 401, 'the app\'s route refuses it')
  t.same(await refusedWith(url(`/websocket?access_token=${token}`)), {
    status: 401, body: JSON.stringify({ errors: [{ message: 'Token expired.', extensions: { code: 'TOKEN_EXPIRED' } }] })
  }, 'and so does a new socket')
  await Promise.all([client.close(), byUrl.close()])
})

t.test('the app\'s maxAge as a time span: a token without exp ends at iat + maxAge; one without iat has no age', async t => {
  const clock = fakeClock(t)
  const { app, url } = await appWithMaxAge(t, '90s')
  const aged = app.jwt.sign({ id: 'alice' })
  const ageless = app.jwt.sign({ id: 'bob' }, { noTimestamp: true })
  const { iat } = app.jwt.decode<{ iat: number, exp?: number }>(aged)!
  t.equal(app.jwt.decode<{ exp?: number }>(aged)!.exp, undefined, 'no exp')
  const client = await connect(url(`/websocket?access_token=${aged}`))
  const bobs = await connect(url(`/websocket?access_token=${ageless}`))
  clock.tick(iat * 1000 + 90_000 - Date.now())
  t.same(await within(client.next(), 'TOKEN_EXPIRED'), tokenExpired, 'expired at iat + 90 s')
  clock.tick(3_600_000)
  t.same(await whoIs(bobs, 'later'), { type: 'whoami', uid: 'later', user: 'bob' }, 'a token without iat and exp never expires, as fast-jwt checks no age for it')
  await Promise.all([client.close(), bobs.close()])
})

t.test('the plugin\'s own instance with jwt.verify.maxAge: a password login\'s socket ends at iat + maxAge, before the access token\'s TTL', async t => {
  const clock = fakeClock(t)
  const { url } = await build(t, { users: [admin], jwt: { verify: { maxAge: 60 } }, rest: { handlers: { whoami } } })
  const client = await connect(url('/websocket'))
  const iat = Math.floor(Date.now() / 1000) // the Date stands still while the password is checked
  client.send({ type: 'auth', email: admin.email, password: admin.password })
  t.match(await client.next(), { type: 'auth', status: 'ok', refresh_token: String })
  clock.tick(iat * 1000 + 60_000 - Date.now() - 1)
  t.match(await whoIs(client, 'before'), { type: 'whoami', uid: 'before', user: String }, 'a millisecond before')
  clock.tick(1)
  t.same(await within(client.next(), 'TOKEN_EXPIRED'), tokenExpired, 'at iat + maxAge, not at the 15 minutes of ACCESS_TOKEN_TTL')
  await client.close()
})

t.test('the app\'s clockTolerance: a socket\'s token ends at exp + the tolerance, when the app refuses it too, not at exp', async t => {
  const clock = fakeClock(t)
  const { app, url } = await appWithMaxAge(t, undefined, { clockTolerance: 5_000 })
  const token = app.jwt.sign({ id: 'alice' }, { expiresIn: '1m' })
  const { exp } = app.jwt.decode<{ exp: number }>(token)!
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: token })
  t.same(await client.next(), { type: 'auth', status: 'ok' })
  clock.tick(exp * 1000 + 5_000 - Date.now() - 1)
  t.equal((await app.inject({ url: '/me', headers: { authorization: `Bearer ${token}` } })).statusCode, 200, 'past exp, within the tolerance: the app takes it')
  t.same(await whoIs(client, 'before'), { type: 'whoami', uid: 'before', user: 'alice' }, 'and the socket is still its user\'s')
  const late = await connect(url(`/websocket?access_token=${token}`))
  t.same(await whoIs(late, 'late'), { type: 'whoami', uid: 'late', user: 'alice' }, 'a socket authenticated then is not told it expired at once')
  clock.tick(1)
  t.same(await within(client.next(), 'TOKEN_EXPIRED'), tokenExpired, 'expired at exp + the tolerance')
  t.same(await within(late.next(), 'TOKEN_EXPIRED'), tokenExpired)
  clock.tick(1)
  t.equal((await app.inject({ url: '/me', headers: { authorization: `Bearer ${token}` } })).statusCode, 401, 'as the app refuses it')
  await Promise.all([client.close(), late.close()])
})
