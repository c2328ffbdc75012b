// Redis as operators run it (README "Scaling out"): an eviction policy that could drop the plugin's keys is warned
// of at start; a Redis full refuses a revocation's write, and this process's sockets are revoked all the same; an ACL
// that refuses the channels is logged; and apps on two databases of one Redis are apart on pub/sub too.
import { readFile } from 'node:fs/promises'
import net from 'node:net'
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import Fastify from 'fastify'
import { admin, build, connect, secret, within, type Built } from '../helpers.js'
import { freePorts, RedisServer } from '../redis-server.js'
import realtime, { type RealtimeOptions } from '../../lib/index.js'

const whoami = { whoami: (_m: unknown, c: { send: (m: object) => void, accountability: { user: string | null } }) => c.send({ type: 'whoami', user: c.accountability.user }) }

/** An app on `redis`, its warnings and errors in `lines`. */
async function node (t: Test, redis: string, options: RealtimeOptions = {}): Promise<Built & { lines: string[] }> {
  const lines: string[] = []
  const logger = { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } }
  const built = await build(t, { users: [admin], authRoutes: true, redis, rest: { handlers: whoami, authTimeout: 5 }, ...options }, { logger })
  return { ...built, lines }
}

async function loggedIn (built: Built) {
  const response = await built.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  return response.json().data as { access_token: string, refresh_token: string }
}

async function socketOf (built: Built, token: string) {
  const socket = await connect(built.url('/websocket'))
  socket.send({ type: 'auth', access_token: token })
  await within(socket.next(), 'the auth answer')
  return socket
}

/** A client of the test's own, disconnected at the end. */
function admin$ (t: Test, server: RedisServer): Redis {
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  return redis
}

t.test('an eviction policy that could drop the plugin\'s keys is warned of at start', async t => {
  const server = await RedisServer.start(t)
  const redis = admin$(t, server)
  await redis.config('SET', 'maxmemory', '64mb')
  await redis.config('SET', 'maxmemory-policy', 'noeviction')
  const quiet = await node(t, server.url)
  t.notOk(quiet.lines.some(line => line.includes('evict')), 'noeviction: nothing said')
  await redis.config('SET', 'maxmemory-policy', 'volatile-lru')
  const warned = await node(t, server.url)
  t.ok(warned.lines.some(line => line.includes('Redis may evict keys (maxmemory-policy volatile-lru)')), 'volatile-lru: warned')
})

t.test('an app\'s own client to a Redis that is away, queueing commands for good: the app starts all the same', async t => {
  const [port] = await freePorts(1)
  const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: null, retryStrategy: () => 50 })
  t.teardown(() => client.disconnect())
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, { env: {}, secret, redis: client })
  await app.ready()
  t.pass('ready')
})

t.test('an app\'s own client to a Redis that hangs (its kernel accepts, it never answers): the app starts, and says so', async t => {
  // A Redis stopped (SIGSTOP) or stuck: connections are accepted, and nothing comes back, ever.
  const accepted: net.Socket[] = []
  const hung = net.createServer(socket => { accepted.push(socket) })
  await new Promise<void>(resolve => hung.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const socket of accepted) socket.destroy()
    return new Promise(resolve => { hung.close(resolve) })
  })
  const client = new Redis({ port: (hung.address() as net.AddressInfo).port, host: '127.0.0.1', lazyConnect: false })
  t.teardown(() => client.disconnect())
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } } })
  t.teardown(() => app.close())
  await app.register(realtime, { env: {}, secret, redis: client })
  await app.ready()
  t.ok(lines.some(line => line.includes('Redis did not answer within 2 s')), 'ready, and the start without Redis is logged')
})

t.test('Redis full: a revokeUser fails, and this process\'s sockets of the user are revoked all the same', async t => {
  const server = await RedisServer.start(t)
  const redis = admin$(t, server)
  const a = await node(t, server.url)
  const { access_token: token } = await loggedIn(a)
  const socket = await socketOf(a, token)
  socket.send({ type: 'whoami' })
  const { user } = await within(socket.next(), 'whoami') as { user: string }
  await redis.config('SET', 'maxmemory-policy', 'noeviction')
  await redis.config('SET', 'maxmemory', '1')
  await t.rejects(async () => { await a.app.realtime.revokeUser(user) }, 'the write is refused: the caller is told')
  t.match(await within(socket.next(), 'AUTH_REVOKED'), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED' } }, 'the socket is revoked')
  const again = await connect(a.url('/websocket'))
  again.send({ type: 'auth', access_token: token })
  t.match(await within(again.next(), 'the auth answer'), { status: 'error' }, 'and the token refused here')
  await redis.config('SET', 'maxmemory', '0')
  await Promise.all([socket.close(), again.close()])
})

t.test('an ACL user without the channels: logged, and start-up says the revocations were not read', async t => {
  const server = await RedisServer.start(t)
  const redis = admin$(t, server)
  // Redis 7's default for a new user: no channel (`resetchannels`). Nor INFO: the eviction check says nothing then.
  await redis.acl('SETUSER', 'app', 'on', '>app-password', '~*', '+@all', '-info', 'resetchannels')
  const a = await node(t, `redis://app:app-password@127.0.0.1:${server.port}`)
  t.ok(a.lines.some(line => line.includes('could not subscribe to realtime:revocations')), 'the refused subscription is logged')
  t.ok(a.lines.some(line => line.includes('the revocations in force were not read from Redis within 2 s')), 'and the start without them')
})

t.test('an ACL user that may not read the revocations: the refused read is logged, and so is the start without them', async t => {
  const server = await RedisServer.start(t)
  const redis = admin$(t, server)
  // Its channels, but none of its keys.
  await redis.acl('SETUSER', 'app', 'on', '>app-password', '~other:*', '&*', '+@all')
  const a = await node(t, `redis://app:app-password@127.0.0.1:${server.port}`)
  t.ok(a.lines.some(line => line.includes('could not read the revocations in force from Redis (realtime:revoked)')), 'the refused read is logged')
  t.ok(a.lines.some(line => line.includes('the revocations in force were not read from Redis within 2 s')), 'and the start without them')
})

t.test('apps on two databases of one Redis hear nothing of each other: channels belong to the whole server', async t => {
  const server = await RedisServer.start(t)
  const a = await node(t, `${server.url}/1`)
  const b = await node(t, `${server.url}/2`)
  const { access_token: token } = await loggedIn(a)
  const socket = await socketOf(a, token)
  socket.send({ type: 'whoami' })
  const { user } = await within(socket.next(), 'whoami') as { user: string }
  const other = await socketOf(a, a.app.realtime.signAccessToken({ user: 'other', role: null, admin: false }).access_token)
  // The same id on B (the embedded directory derives it from the email).
  await b.app.realtime.revokeUser(user)
  // A third process on A's database revokes another user after it: A hears that through Redis, so B's before it, had
  // it been on A's channel.
  const c = await node(t, `${server.url}/1`)
  await c.app.realtime.revokeUser('other')
  t.match(await within(other.next(), 'AUTH_REVOKED'), { error: { code: 'AUTH_REVOKED' } }, 'A hears its own database\'s revocations')
  socket.send({ type: 'whoami' })
  t.same(await within(socket.next(), 'whoami'), { type: 'whoami', user }, 'B\'s revocation of its user is not A\'s')
  await Promise.all([socket.close(), other.close()])
})

t.test('the README\'s ACL for the plugin\'s user lets every flow through, and Redis refuses it nothing', async t => {
  const rules = '~realtime:* &realtime:* -@all +eval +evalsha +multi +exec +publish +subscribe +zscan +ping +info +time +set ' +
    '+get +incrby +pttl +zadd +zremrangebyscore +pexpireat +hset +hmget +hget +del +zrange +type +srandmember +zrem +srem ' +
    '+zcard +zpopmin +pexpiretime'
  const readme = (await readFile('README.md', 'utf8')).replace(/\s+/g, ' ')
  t.ok(readme.includes(rules), 'the README gives these rules')
  t.ok(readme.includes('on a database N other than 0, `+select` and `&dbN:realtime:*`'), 'and what changes on another database')
  for (const db of [0, 1]) await t.test(`on database ${db}`, t => aclFlows(t, db === 0 ? rules : `${rules.replace('&realtime:*', '&db1:realtime:*')} +select`, db))
})

/** Every flow of the plugin, through an ACL user of `rules` on database `db`: Redis refuses nothing. */
async function aclFlows (t: Test, rules: string, db: number): Promise<void> {
  const server = await RedisServer.start(t)
  const redis = admin$(t, server)
  await redis.acl('SETUSER', 'app', 'on', '>app-password', ...rules.split(' '))
  const a = await node(t, `redis://app:app-password@127.0.0.1:${server.port}/${db}`, { maxSessionsPerUser: 1 })
  const wrong = await a.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: 'wrong' } })
  t.equal(wrong.statusCode, 401, 'a wrong password is counted')
  const first = await loggedIn(a)
  const second = await loggedIn(a) // past the limit: the first session ends
  const refreshed = await a.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: second.refresh_token } })
  t.equal(refreshed.statusCode, 200, 'refreshed')
  const logs = await socketOf(a, refreshed.json().data.access_token)
  logs.send({ type: 'whoami' })
  const { user } = await within(logs.next(), 'whoami') as { user: string }
  const out = await a.app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: refreshed.json().data.refresh_token } })
  t.equal(out.statusCode, 204, 'logged out')
  t.match(await within(logs.next(), 'AUTH_REVOKED'), { error: { code: 'AUTH_REVOKED' } }, 'its socket revoked')
  await a.app.realtime.revokeUser(user)
  t.equal((await a.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: first.refresh_token } })).statusCode, 401)
  // A session cookie's refresh rotates with a grace; the replaced cookie refreshes again within it (the previous token).
  const sessionLogin = await a.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password, mode: 'session' } })
  const cookie = String(sessionLogin.headers['set-cookie']).split(';')[0]!
  for (const tab of ['first tab', 'second tab']) {
    t.equal((await a.app.inject({ method: 'POST', url: '/auth/refresh', payload: { mode: 'session' }, headers: { cookie } })).statusCode, 200, `${tab}: session cookie refreshed`)
  }
  t.same(await redis.acl('LOG'), [], 'nothing refused')
  t.same(a.lines, [], 'nothing logged')
  await redis.select(db)
  t.ok((await redis.keys('realtime:*')).length > 0, `the keys are on database ${db}`)
  await logs.close()
}
