// A logout's revocation on Redis lasts until the tokens it refuses could no longer verify, whatever the clock of the
// process that made it: one whose clock runs behind the others' (a host off NTP) once sent a lapse that early, and a
// logged-out access token signed by another process verified again there before its `exp`. Two apps stand for two
// processes; the fake Date stands for the revoking one's clock while it revokes (its lapse is computed then, before
// anything reaches the wire), the others' the rest of the time. Redis keeps its real clock.
import t, { type Test } from 'tap'
import { admin, build, connect, fakeClock, refusedWith, whoami, within, type Built } from '../helpers.js'
import { RedisServer } from '../redis-server.js'

const accessTokenTtlMs = 15 * 60_000
/** How far behind the revoking process's clock runs: past the margin a revocation lasts beyond its tokens (9 s). */
const behindMs = 60_000
const handshakeFailed = { type: 'auth', status: 'error', error: { code: 'AUTH_FAILED', message: 'Authentication handshake failed.' } }

async function node (t: Test, server: RedisServer): Promise<Built> {
  return build(t, { users: [admin], authRoutes: true, redis: server.url, rest: { handlers: { whoami }, authTimeout: 5 } }, { logger: false })
}

/** A new socket's auth message with `token` is refused on `built`. */
async function refusedOn (t: Test, built: Built, token: string, what: string): Promise<void> {
  const client = await connect(built.url('/websocket'))
  client.send({ type: 'auth', access_token: token })
  t.same(await within(client.next(), 'the auth answer'), handshakeFailed, what)
  await client.close()
}

t.test('revokeSession on a process whose clock runs a minute behind: the token signed elsewhere is refused there until its exp', async t => {
  const clock = fakeClock(t, ['Date'])
  const server = await RedisServer.start(t)
  const [slow, other] = [await node(t, server), await node(t, server)]
  const login = (await other.app.inject({ method: 'POST', url: '/auth/login', payload: admin })).json().data as { access_token: string }
  const { sid } = other.app.realtime.jwt.decode<{ sid: string }>(login.access_token)!
  const socket = await connect(other.url('/websocket'))
  socket.send({ type: 'auth', access_token: login.access_token })
  t.same(await within(socket.next(), 'the auth answer'), { type: 'auth', status: 'ok' })

  const now = Date.now()
  clock.setSystemTime(now - behindMs)
  const revoked = slow.app.realtime.revokeSession(sid)
  clock.setSystemTime(now)
  await revoked
  t.match(await within(socket.next(), 'the revocation on the other process'), { error: { code: 'AUTH_REVOKED' } }, 'heard on the other process')
  await socket.close()

  // A few seconds before the token's exp, by the clock of the process that signed it.
  clock.setSystemTime(now + accessTokenTtlMs - 5_000)
  await refusedOn(t, other, login.access_token, 'refused on the other process until its exp')
  t.equal(await other.app.realtime.trusted({} as never, other.app.realtime.jwt.decode(login.access_token)!), false, 'and by trusted')
  t.equal((await refusedWith(other.url(`/websocket?access_token=${login.access_token}`))).status, 401, 'and at the upgrade')
  const later = await node(t, server)
  await refusedOn(t, later, login.access_token, 'and on a process started after, which read it from Redis')
})
