// Redis paused for about a second during a refresh or a login (a fork for a snapshot, `DEBUG SLEEP 1`; this process's
// own event loop stalled as long does the same): every command is answered well within the store timeout (3 s), so
// the refresh and the login work. Each write after a call's first command has as long from when it is sent as the call
// was given (a third of the store timeout): counted from the call's start, the write after a command held a second had
// none left, and the client was answered 503. Found by a soak (two processes on one Redis, `DEBUG SLEEP 1` every 10 s).
// Redis is reached through a proxy that holds the app's connection as a paused Redis would: the holds are on the wire.
import t, { type Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { readRefreshToken } from '../../lib/auth/refresh-tokens.js'
import { admin, build } from '../helpers.js'
import { Link } from '../redis-link.js'
import { RedisServer } from '../redis-server.js'

// A piece of each script's text, and of no other's (lower case, as the link reads it): the rotation's read of the
// session, a login's write of its session, and the listing on the user's set that follows either.
const lookup = 'return {find(argv[1])}'
const sessionWrite = "'identity', argv[2], 'tokenhash'"
const listing = "'zadd', keys[1], 'gt'"
// The read of Redis's clock that a revokeUser marks its user with, before it ends a thing.
const clockRead = 'return clock()'

async function paused (t: Test) {
  const redis = await RedisServer.start(t)
  const link = new Link(redis.port)
  await link.up()
  t.teardown(() => link.down())
  const built = await build(t, { users: [admin], authRoutes: true, redis: `redis://127.0.0.1:${link.port}` }, { logger: false })
  const post = (url: string, payload: object) => built.app.inject({ method: 'POST', url, payload })
  return { link, post, app: built.app, redis }
}

t.test('a refresh whose read of the session Redis holds 1.2 s: its rotation still acts, and it works', async t => {
  const { link, post } = await paused(t)
  const token = (await post('/auth/login', admin)).json().data.refresh_token as string

  const held = link.hold(lookup)
  const refreshing = post('/auth/refresh', { refresh_token: token })
  await held.held
  await sleep(1_200)
  held.release()
  const refreshed = await refreshing
  t.equal(refreshed.statusCode, 200, 'answered: every command was answered within the store timeout')
  const next = refreshed.json().data?.refresh_token
  t.equal((await post('/auth/refresh', { refresh_token: next })).statusCode, 200, 'the token it answered is the current one')
  t.equal((await post('/auth/refresh', { refresh_token: token })).statusCode, 401, 'the one it replaced is spent')
})

t.test('a login whose session write Redis holds 0.6 s, then its listing 0.6 s: it works', async t => {
  const { link, post } = await paused(t)

  const write = link.hold(sessionWrite)
  const login = post('/auth/login', admin)
  await write.held
  await sleep(600)
  write.release()
  // Set in the same turn as the release: the listing goes out once the write's answer is back.
  const listed = link.hold(listing)
  await listed.held
  await sleep(600)
  listed.release()
  const answered = await login
  t.equal(answered.statusCode, 200, 'the login works: its listing was sent 0.6 s into the call, and acted 0.6 s after')
  t.equal((await post('/auth/refresh', { refresh_token: answered.json().data?.refresh_token })).statusCode, 200, 'its session is there')
})

t.test('a revokeUser whose read of Redis\'s clock Redis holds 1.2 s: it still ends the user\'s sessions', async t => {
  const { link, post, app, redis } = await paused(t)
  const token = (await post('/auth/login', admin)).json().data.refresh_token as string
  const user = app.realtime.jwt.decode<{ id: string }>((await post('/auth/login', admin)).json().data.access_token)!.id

  const held = link.hold(clockRead)
  const revoking = app.realtime.revokeUser(user)
  await held.held
  await sleep(1_200)
  held.release()
  await t.resolves(revoking, 'it resolves: every command was answered within the store timeout')
  const direct = new Redis(redis.url)
  t.teardown(() => direct.disconnect())
  t.equal(await direct.exists(`realtime:{s:${readRefreshToken(token)!.sessionId}}:session`), 0, 'the user\'s session has ended in the store')
})
