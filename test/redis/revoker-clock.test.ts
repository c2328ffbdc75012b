// A revocation on Redis holds whatever the clock of the process that made it: one whose clock runs behind the others'
// (a host off NTP) once sent a logout's lapse that early, and a logged-out access token signed by another process
// verified again there before its `exp`; and its revokeUser's time that early, so the user's tokens signed elsewhere in
// the minute before were never refused, nor their sockets revoked. Two apps stand for two processes; the fake Date
// stands for the revoking one's clock while it revokes (what it sends is computed then), the others' (the real one)
// the rest of the time. Redis keeps its real clock.
import t, { type Test } from 'tap'
import { MemorySessionStore } from '../../lib/index.js'
import { admin, build, connect, fakeClock, refusedWith, whoami, within, type Built } from '../helpers.js'
import { RedisServer } from '../redis-server.js'

const accessTokenTtlMs = 15 * 60_000
/** How far behind the revoking process's clock runs: past the margin a revocation lasts beyond its tokens (9 s). */
const behindMs = 60_000
/** The wall clock the fake Date hides (performance is not faked): Redis's, on this host. */
const realNow = () => Math.ceil(performance.timeOrigin + performance.now())
const handshakeFailed = { type: 'auth', status: 'error', error: { code: 'AUTH_FAILED', message: 'Authentication handshake failed.' } }

/** A process on `server`; `sessionStore`: the app's own, shared (a database), whose writes do not read Redis's clock. */
async function node (t: Test, server: RedisServer, sessionStore?: MemorySessionStore): Promise<Built> {
  return build(t, { users: [admin], authRoutes: true, redis: server.url, sessionStore, rest: { handlers: { whoami }, authTimeout: 5 } }, { logger: false })
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
  // The others' clocks are the real one (Redis's, on this host): the Redis store's writes check it.
  clock.setSystemTime(realNow())
  const signedAt = Date.now()
  const login = (await other.app.inject({ method: 'POST', url: '/auth/login', payload: admin })).json().data as { access_token: string }
  const { sid } = other.app.realtime.jwt.decode<{ sid: string }>(login.access_token)!
  const socket = await connect(other.url('/websocket'))
  socket.send({ type: 'auth', access_token: login.access_token })
  t.same(await within(socket.next(), 'the auth answer'), { type: 'auth', status: 'ok' })

  clock.setSystemTime(realNow() - behindMs)
  const revoked = slow.app.realtime.revokeSession(sid)
  clock.setSystemTime(realNow())
  await revoked
  t.match(await within(socket.next(), 'the revocation on the other process'), { error: { code: 'AUTH_REVOKED' } }, 'heard on the other process')
  await socket.close()

  // A few seconds before the token's exp, by the clock of the process that signed it.
  clock.setSystemTime(signedAt + accessTokenTtlMs - 5_000)
  await refusedOn(t, other, login.access_token, 'refused on the other process until its exp')
  t.equal(await other.app.realtime.trusted({} as never, other.app.realtime.jwt.decode(login.access_token)!), false, 'and by trusted')
  t.equal((await refusedWith(other.url(`/websocket?access_token=${login.access_token}`))).status, 401, 'and at the upgrade')
  const later = await node(t, server)
  await refusedOn(t, later, login.access_token, 'and on a process started after, which read it from Redis')
})

t.test('revokeUser on a process whose clock runs a minute behind: the user\'s token signed elsewhere before it is refused, its socket revoked', async t => {
  const clock = fakeClock(t, ['Date'])
  const server = await RedisServer.start(t)
  // The Redis session store's writes fail (503) on a process whose clock is that far behind Redis's: not the app's own.
  const sessionStore = new MemorySessionStore()
  const [slow, other] = [await node(t, server, sessionStore), await node(t, server, sessionStore)]
  clock.setSystemTime(realNow())
  const login = (await other.app.inject({ method: 'POST', url: '/auth/login', payload: admin })).json().data as { access_token: string }
  const { id: user } = other.app.realtime.jwt.decode<{ id: string }>(login.access_token)!
  const socket = await connect(other.url('/websocket'))
  socket.send({ type: 'auth', access_token: login.access_token })
  t.same(await within(socket.next(), 'the auth answer'), { type: 'auth', status: 'ok' })

  // The whole call on the slow clock, a minute behind the real one (Redis's, on this host): each of its revocations is
  // stamped by it. The others' clocks are the real one, past the token's signing.
  clock.setSystemTime(realNow() - behindMs)
  await slow.app.realtime.revokeUser(user)
  t.match(await within(socket.next(), 'the revocation on the other process'), { error: { code: 'AUTH_REVOKED' } }, 'the socket on the other process is revoked')
  // A login there after it counts as begun after it, though its clock still reads before.
  t.equal((await slow.app.inject({ method: 'POST', url: '/auth/login', payload: admin })).statusCode, 200, 'a login on the slow process right after it')
  clock.setSystemTime(realNow())
  await socket.close()
  await refusedOn(t, other, login.access_token, 'the token is refused on the other process')
  t.equal(await other.app.realtime.trusted({} as never, other.app.realtime.jwt.decode(login.access_token)!), false, 'and by trusted')
  await refusedOn(t, slow, login.access_token, 'and on the revoking one')
  const later = await node(t, server, sessionStore)
  await refusedOn(t, later, login.access_token, 'and on a process started after')
  const again = (await other.app.inject({ method: 'POST', url: '/auth/login', payload: admin })).json().data as { access_token: string }
  const fresh = await connect(other.url('/websocket'))
  fresh.send({ type: 'auth', access_token: again.access_token })
  t.same(await within(fresh.next(), 'the auth answer'), { type: 'auth', status: 'ok' }, 'a login after it, on the other process, works')
  await fresh.close()
})
