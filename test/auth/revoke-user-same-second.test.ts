// A credential issued after a revokeUser, in the revocation's second, reads as issued the second after (its token's
// `iat`), so the revocation does not refuse it: a socket that takes it keeps it, however it came (a token of the HTTP
// refresh route, email and password, a refresh token on the socket), and a revocation in a later second still ends it.
// Only the Date is fake, stopped 100 ms into a second: sockets and timers run in real time.
import t, { type Test } from 'tap'
import { admin, build, connect, stoppedDate, whoami, within, type Client } from '../helpers.js'

const sessionRevoked = { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } }

/** An app with one user, revoked 300 ms ago, in the current second; a later second once the test ticks the clock. */
async function revokedThisSecond (t: Test) {
  const clock = stoppedDate(t, 900)
  const built = await build(t, { users: [admin], authRoutes: true, rest: { handlers: { whoami } } })
  const login = async () => (await built.app.inject({ method: 'POST', url: '/auth/login', payload: admin })).json().data as
    { access_token: string, refresh_token: string }
  const user = built.app.realtime.jwt.decode<{ id: string }>((await login()).access_token)!.id
  await built.app.realtime.revokeUser(user)
  clock.tick(300)
  return { ...built, clock, login, user }
}

async function whoIs (client: Client, uid: string): Promise<unknown> {
  client.send({ type: 'whoami', uid })
  return within(client.next(), 'the whoami answer')
}

t.test('the HTTP refresh route\'s access token, in the revocation\'s second: the socket keeps it', async t => {
  const { app, url, login, user } = await revokedThisSecond(t)
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: (await login()).refresh_token } })
  t.equal(refreshed.statusCode, 200, 'the refresh')
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: refreshed.json().data.access_token, uid: 'a' })
  t.same(await within(client.next(), 'the auth answer'), { type: 'auth', status: 'ok', uid: 'a' })
  // An AUTH_REVOKED the socket was told as it took the token would come before the answer.
  t.same(await whoIs(client, 'w'), { type: 'whoami', uid: 'w', user }, 'still the user\'s')
  await client.close()
})

t.test('email and password on the socket, in the revocation\'s second: the socket keeps the login, until a later revocation', async t => {
  const { app, url, clock, user } = await revokedThisSecond(t)
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', email: admin.email, password: admin.password, uid: 'a' })
  t.match(await within(client.next(), 'the auth answer'), { type: 'auth', status: 'ok', uid: 'a', refresh_token: String })
  t.same(await whoIs(client, 'w1'), { type: 'whoami', uid: 'w1', user }, 'still the user\'s')
  clock.tick(1_000)
  await app.realtime.revokeUser(user)
  t.same(await within(client.next(), 'AUTH_REVOKED'), sessionRevoked, 'a revocation in the next second ends it')
  t.same(await whoIs(client, 'w2'), { type: 'whoami', uid: 'w2', user: null })
  await client.close()
})

t.test('a refresh token on the socket, in the revocation\'s second: the socket keeps the tokens it rotated to', async t => {
  const { url, login, user } = await revokedThisSecond(t)
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', refresh_token: (await login()).refresh_token, uid: 'r' })
  t.match(await within(client.next(), 'the auth answer'), { type: 'auth', status: 'ok', uid: 'r', refresh_token: String })
  t.same(await whoIs(client, 'w'), { type: 'whoami', uid: 'w', user }, 'still the user\'s')
  await client.close()
})
