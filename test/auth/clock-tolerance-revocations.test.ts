// `verify.clockTolerance` takes a token that long past its `exp`: a logout's or a revokeUser's revocation lasts that
// much longer too, or a token it refused is let in again between the revocation's lapse and the tolerance's end. The
// plugin's own @fastify/jwt with a tolerance of a minute; a fake Date (sockets keep real time).
import t from 'tap'
import { admin, build, connect, fakeClock, whoami, within } from '../helpers.js'

const handshakeFailed = { type: 'auth', status: 'error', error: { code: 'AUTH_FAILED', message: 'Authentication handshake failed.' } }
const toleranceMs = 60_000
const accessTokenTtlMs = 15 * 60_000

for (const how of ['logout', 'revokeSession', 'revokeUser'] as const) {
  t.test(`${how} 10 s after a login: its access token is refused until exp + the tolerance`, async t => {
    const clock = fakeClock(t, ['Date'])
    const { app, url } = await build(t, { users: [admin], authRoutes: true, jwt: { verify: { clockTolerance: toleranceMs } }, rest: { handlers: { whoami } } })
    const login = (await app.inject({ method: 'POST', url: '/auth/login', payload: admin })).json().data as { access_token: string, refresh_token: string }
    const { id: user, sid } = app.realtime.jwt.decode<{ id: string, sid: string }>(login.access_token)!
    clock.tick(10_000)
    if (how === 'logout') t.equal((await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: login.refresh_token } })).statusCode, 204)
    else if (how === 'revokeSession') await app.realtime.revokeSession(sid)
    else await app.realtime.revokeUser(user)
    // Past exp and past one TTL from the revocation; within the tolerance, which the verifier still grants.
    clock.tick(accessTokenTtlMs - 10_000 + 20_000)
    const client = await connect(url('/websocket'))
    client.send({ type: 'auth', access_token: login.access_token })
    t.same(await within(client.next(), 'the auth answer'), handshakeFailed, 'refused at a socket')
    await client.close()
    t.equal(await app.realtime.trusted({} as never, app.realtime.jwt.decode(login.access_token)!), false, 'and by trusted')
  })
}
