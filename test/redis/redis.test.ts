// Several processes on one Redis (PROTOCOL.md sections 4, 7, 8): shared sessions, revocations that reach every
// process, and fail-closed behaviour while Redis is away. Two app instances stand for two processes.
import t from 'tap'
import type { Test } from 'tap'
import { Redis } from 'ioredis'
import { EventEmitter } from 'node:events'
import net from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { watch } from '../../lib/stores/redis-connection.js'
import { admin, build, connect, fakeClock, refusedWith, within, type Built } from '../helpers.js'
import { freePorts, RedisServer } from '../redis-server.js'
import type { RealtimeOptions } from '../../lib/index.js'

const whoami = { whoami: (_m: unknown, c: { send: (m: object) => void, accountability: { user: string | null } }) => c.send({ type: 'whoami', user: c.accountability.user }) }
const silent = { logger: false } as const

async function node (t: Test, redis: RedisServer, options: RealtimeOptions = {}): Promise<Built> {
  return build(t, { users: [admin], authRoutes: true, redis: redis.url, rest: { handlers: whoami, authTimeout: 5 }, ...options }, silent)
}

async function login (built: Built) {
  const response = await built.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  return response.json().data as { access_token: string, refresh_token: string }
}

function refresh (built: Built, refreshToken: string) {
  return built.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refreshToken } })
}

t.test('a refresh token from one process works on another, and rotates', async t => {
  const server = await RedisServer.start(t)
  const [a, b] = [await node(t, server), await node(t, server)]
  const tokens = await login(a)
  const rotated = await refresh(b, tokens.refresh_token)
  t.equal(rotated.statusCode, 200)
  t.equal((await refresh(a, rotated.json().data.refresh_token)).statusCode, 200, 'the rotated token works back on the first')

  const client = await connect(b.url('/websocket'))
  client.send({ type: 'auth', email: admin.email, password: admin.password })
  const { refresh_token: fromSocket } = await client.next() as { refresh_token: string }
  const onA = await connect(a.url('/websocket'))
  onA.send({ type: 'auth', refresh_token: fromSocket, uid: 1 })
  t.match(await onA.next(), { type: 'auth', status: 'ok', uid: 1, refresh_token: String }, 'socket-issued, used on the other process')
  await Promise.all([client.close(), onA.close()])
})

t.test('logout on one process revokes the session\'s sockets on another within a second; its tokens are refused everywhere', async t => {
  const server = await RedisServer.start(t)
  const [a, b] = [await node(t, server), await node(t, server)]
  const tokens = await login(a)
  const onB = await connect(b.url('/websocket'))
  onB.send({ type: 'auth', access_token: tokens.access_token })
  t.same(await onB.next(), { type: 'auth', status: 'ok' })

  const logout = await a.app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: tokens.refresh_token } })
  t.equal(logout.statusCode, 204)
  t.same(await onB.next(), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } })
  onB.send({ type: 'whoami' })
  t.same(await onB.next(), { type: 'whoami', user: null })
  t.equal((await refusedWith(b.url(`/websocket?access_token=${tokens.access_token}`))).status, 401, 'refused at the upgrade on b')
  t.equal((await refusedWith(a.url(`/websocket?access_token=${tokens.access_token}`))).status, 401, 'and on a')
  await onB.close()

  // A process that starts after the revocation learns of it from Redis; until it has loaded the revocations, it
  // refuses every token with a session as SERVICE_UNAVAILABLE.
  const c = await node(t, server)
  let frame: { error?: { code: string } }
  do {
    const client = await connect(c.url('/websocket'))
    client.send({ type: 'auth', access_token: tokens.access_token })
    frame = await client.next() as typeof frame
    await client.close()
    if (frame.error?.code === 'SERVICE_UNAVAILABLE') await new Promise(resolve => setTimeout(resolve, 20))
  } while (frame.error?.code === 'SERVICE_UNAVAILABLE')
  t.match(frame, { error: { code: 'AUTH_FAILED' } }, 'a later process refuses the revoked session\'s token')
})

t.test('reuse of a rotated token on another process ends the session everywhere', async t => {
  const server = await RedisServer.start(t)
  const [a, b] = [await node(t, server), await node(t, server)]
  const tokens = await login(a)
  const onA = await connect(a.url('/websocket'))
  onA.send({ type: 'auth', access_token: tokens.access_token })
  await onA.next()
  const rotated = (await refresh(a, tokens.refresh_token)).json().data.refresh_token
  const reuse = await refresh(b, tokens.refresh_token)
  t.equal(reuse.statusCode, 401)
  t.same(reuse.json(), { errors: [{ message: 'Invalid user credentials.', extensions: { code: 'INVALID_CREDENTIALS' } }] })
  t.equal((await refresh(a, rotated)).statusCode, 401, 'the newest token died with the session')
  t.match(await onA.next(), { error: { code: 'AUTH_REVOKED' } })
  await onA.close()
})

t.test('of two concurrent refreshes of one token on two processes, exactly one wins', async t => {
  const server = await RedisServer.start(t)
  const [a, b] = [await node(t, server), await node(t, server)]
  for (let round = 0; round < 10; round++) {
    const tokens = await login(a)
    const results = await Promise.all([refresh(a, tokens.refresh_token), refresh(b, tokens.refresh_token)])
    t.same(results.map(r => r.statusCode).sort(), [200, 401], `round ${round}`)
  }
})

t.test('tabs refreshing one session cookie at once on two processes all succeed, one setting the new cookie; the replaced one works on both for the grace', async t => {
  const server = await RedisServer.start(t)
  const [a, b] = [await node(t, server), await node(t, server)]
  const session = (built: Built, cookie: string) =>
    built.app.inject({ method: 'POST', url: '/auth/refresh', payload: { mode: 'session' }, headers: { cookie } })
  const cookieOf = (response: { headers: Record<string, unknown> }) => String(response.headers['set-cookie']).split(';')[0]!
  for (let round = 0; round < 10; round++) {
    const login = await a.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password, mode: 'session' } })
    const old = cookieOf(login)
    const tabs = await Promise.all([session(a, old), session(b, old), session(b, old)])
    t.same(tabs.map(tab => tab.statusCode), [200, 200, 200], `round ${round}: every tab refreshed`)
    const setting = tabs.filter(tab => tab.headers['set-cookie'] !== undefined)
    t.equal(setting.length, 1, `round ${round}: one sets the new cookie`)
    if (round > 0) continue
    for (const [built, cookie] of [[a, old], [b, old], [b, cookieOf(setting[0]!)]] as const) {
      const client = await connect(built.url('/websocket'), { headers: { cookie } })
      client.send({ type: 'whoami' })
      t.match(await client.next(), { type: 'whoami', user: String }, 'the replaced cookie and the new one open sockets on both')
      await client.close()
    }
  }
})

t.test('revokeUser on one process reaches the user\'s sockets on another', async t => {
  const server = await RedisServer.start(t)
  const [a, b] = [await node(t, server), await node(t, server)]
  const client = await connect(b.url('/websocket'))
  client.send({ type: 'auth', email: admin.email, password: admin.password })
  await client.next()
  client.send({ type: 'whoami' })
  const { user } = await client.next() as { user: string }
  await a.app.realtime.revokeUser(user)
  t.match(await client.next(), { error: { code: 'AUTH_REVOKED' } })
  await client.close()
})

/**
 * A TCP proxy to Redis that holds what it carries back to the connections that subscribed, while `hold`: a subscriber
 * that is slow to hear, or has lost its connection without knowing it yet. Commands go through.
 */
async function subscriberHolder (t: Test, port: number) {
  let holding = false
  const held: Array<() => void> = []
  const server = net.createServer(client => {
    const upstream = net.connect(port, '127.0.0.1')
    let subscriber = false
    client.on('data', (chunk: Buffer) => {
      if (/subscribe/i.test(chunk.toString('latin1'))) subscriber = true
      upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => {
      if (subscriber && holding) held.push(() => client.write(chunk))
      else client.write(chunk)
    })
    const end = () => { client.destroy(); upstream.destroy() }
    for (const socket of [client, upstream]) {
      socket.on('close', end)
      socket.on('error', () => {})
    }
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  return {
    url: `redis://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    hold: () => { holding = true },
    release: () => {
      holding = false
      for (const send of held.splice(0)) send()
    }
  }
}

t.test('a login on one process whose check began before a revokeUser on another, written after it, makes no session, though its process has not heard the revocation', async t => {
  const server = await RedisServer.start(t)
  const proxy = await subscriberHolder(t, server.port)
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  let check: { began: () => void, ends: Promise<void> } | null = null
  const options: RealtimeOptions = {
    authRoutes: true,
    rest: { handlers: whoami },
    verifyCredentials: async ({ email }) => {
      const held = check
      check = null
      if (held) {
        held.began()
        await held.ends
      }
      return { user: email, role: null, admin: false }
    }
  }
  const a = await build(t, { ...options, redis: proxy.url }, silent)
  const b = await build(t, { ...options, redis: server.url }, silent)
  while (Number((await redis.pubsub('NUMSUB', 'realtime:revocations'))[1]) < 2) await new Promise(resolve => setTimeout(resolve, 10))
  const login = (built: Built) => built.app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'u1', password: 'p' } })
  const before = a.app.realtime.signAccessToken({ user: 'u1', role: null, admin: false }).access_token

  let endCheck!: () => void
  const began = new Promise<void>(resolve => { check = { began: resolve, ends: new Promise(resolve => { endCheck = resolve }) } })
  const answer = login(a)
  await within(began, 'the password check on a')
  proxy.hold()
  await b.app.realtime.revokeUser('u1')
  const unheard = await connect(a.url(`/websocket?access_token=${before}`))
  await unheard.close()
  t.pass('a has not heard of the revocation: it takes a token of the user issued before it')
  endCheck()
  const raced = await answer
  t.same([raced.statusCode, raced.json()], [401, { errors: [{ message: 'Invalid user credentials.', extensions: { code: 'INVALID_CREDENTIALS' } }] }],
    'the login is refused as a wrong password')
  t.same(await redis.keys('realtime:{s:*'), [], 'and its session is gone from Redis')
  proxy.release()

  const after = await login(a)
  t.equal(after.statusCode, 200, 'a login begun after the revocation')
  t.equal((await refresh(b, after.json().data.refresh_token)).statusCode, 200, 'its refresh token works on the other process')
})

t.test('a login on a process that has not heard of a revokeUser made on another in the same second: its token works on both, before and after it hears', async t => {
  const server = await RedisServer.start(t)
  const proxy = await subscriberHolder(t, server.port)
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  const a = await node(t, server, { redis: proxy.url })
  const b = await node(t, server)
  while (Number((await redis.pubsub('NUMSUB', 'realtime:revocations'))[1]) < 2) await new Promise(resolve => setTimeout(resolve, 10))
  const user = a.app.realtime.jwt.decode<{ id: string }>((await login(a)).access_token)!.id
  const before = (await login(a)).access_token
  proxy.hold()
  // The revocation and the login in one second (what the token's iat says): tried again at the next second otherwise.
  let token = ''
  for (let tries = 0; token === ''; tries++) {
    await new Promise(resolve => setTimeout(resolve, 1_000 - Date.now() % 1_000))
    const second = Math.floor(Date.now() / 1000)
    await b.app.realtime.revokeUser(user)
    const { access_token: accessToken } = await login(a)
    if (a.app.realtime.jwt.decode<{ iat: number }>(accessToken)!.iat === second) token = accessToken
    else t.ok(tries < 20, 'a revocation and a login in one second, within 20 tries')
  }
  const onB = await connect(b.url('/websocket'))
  onB.send({ type: 'auth', access_token: token, uid: 'b' })
  t.same(await within(onB.next(), 'the auth answer on b'), { type: 'auth', status: 'ok', uid: 'b' }, 'the process that revoked takes it')
  const onA = await connect(a.url('/websocket'))
  onA.send({ type: 'auth', access_token: token, uid: 'a' })
  t.same(await within(onA.next(), 'the auth answer on a'), { type: 'auth', status: 'ok', uid: 'a' })
  proxy.release()
  // Once a has heard: a token of before the revocation is refused there, and the login's socket is still the user's.
  for (;;) {
    const old = await connect(a.url(`/websocket?access_token=${before}`)).then(async client => { await client.close(); return true }, () => false)
    if (!old) break
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  for (const client of [onA, onB]) {
    client.send({ type: 'whoami' })
    t.same(await within(client.next(), 'the whoami answer'), { type: 'whoami', user }, 'still the user\'s')
  }
  await Promise.all([onA.close(), onB.close()])
})

t.test('Redis away: refresh and password auth fail closed, access tokens go on, and all recovers when it is back', async t => {
  const server = await RedisServer.start(t)
  const a = await node(t, server)
  const tokens = await login(a)
  await server.stop()

  const started = Date.now()
  const down = await refresh(a, tokens.refresh_token)
  t.equal(down.statusCode, 503)
  t.same(down.json(), { errors: [{ message: 'Service unavailable.', extensions: { code: 'SERVICE_UNAVAILABLE' } }] })
  const loginDown = await a.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  t.equal(loginDown.statusCode, 503)
  t.ok(Date.now() - started < 5_000, 'within 5 s')

  const socket = await connect(a.url('/websocket'))
  socket.send({ type: 'auth', access_token: tokens.access_token })
  t.same(await socket.next(), { type: 'auth', status: 'ok' }, 'access tokens need no Redis')
  socket.send({ type: 'auth', refresh_token: tokens.refresh_token, uid: 'r' })
  t.same(await socket.next(), {
    type: 'auth', status: 'error', error: { code: 'SERVICE_UNAVAILABLE', message: 'Service unavailable.' }, uid: 'r'
  })
  socket.send({ type: 'whoami' })
  t.match(await socket.next(), { type: 'whoami', user: String }, 'the identity stayed')

  const handshake = await connect(a.url('/websocket'))
  handshake.send({ type: 'auth', email: admin.email, password: admin.password })
  t.match(await handshake.next(), { error: { code: 'SERVICE_UNAVAILABLE' } })
  t.equal((await handshake.closed).code, 1013)

  await server.start() // empty: the old session is gone with the old server
  let back = await a.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  for (let attempt = 0; back.statusCode !== 200 && attempt < 200; attempt++) {
    await new Promise(resolve => setTimeout(resolve, 25))
    back = await a.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  }
  t.equal(back.statusCode, 200, 'login works again without a restart')
  t.equal((await refresh(a, back.json().data.refresh_token)).statusCode, 200)
  await socket.close()
})

t.test('a logout lost with Redis restarted from an older snapshot: the session stays ended, after its revocation too', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'realtime-snapshot-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const [port] = await freePorts(1)
  // A snapshot only when told (SAVE), read back at each start: a server between two saves.
  const server = new RedisServer(port!, ['--dir', dir, '--dbfilename', 'dump.rdb'])
  t.teardown(() => server.stop())
  await server.start()
  const a = await node(t, server, { accessTokenTtl: '1m' })
  const tokens = await login(a)
  const sessionLogin = await a.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password, mode: 'session' } })
  const cookie = { cookie: `directus_session_token=${sessionLogin.cookies.find(cookie => cookie.name === 'directus_session_token')!.value}` }
  const redis = new Redis(server.url)
  await redis.save()
  redis.disconnect()
  t.equal((await a.app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: tokens.refresh_token } })).statusCode, 204)
  t.equal((await a.app.inject({ method: 'POST', url: '/auth/logout', payload: { mode: 'session' }, headers: cookie })).statusCode, 204)

  await server.stop()
  await server.start()
  // Once this process's connections are back.
  const loginAgain = () => a.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  while ((await loginAgain()).statusCode !== 200) await new Promise(resolve => setTimeout(resolve, 25))
  const refused = await refresh(a, tokens.refresh_token)
  t.equal(refused.statusCode, 401, 'the session is back in Redis, but this process heard its logout: its refresh token is refused')
  t.match(refused.json(), { errors: [{ extensions: { code: 'INVALID_CREDENTIALS' } }] })
  t.equal((await refusedWith(a.url('/websocket'), { headers: cookie })).status, 401, 'and its session cookie')

  // Once the revocations lapse (one access-token TTL), what stands is the store: both sessions were ended there again.
  const clock = fakeClock(t, ['Date'])
  clock.tick(61_000)
  t.equal((await refresh(a, tokens.refresh_token)).statusCode, 401, 'the refresh token stays refused')
  t.equal((await refusedWith(a.url('/websocket'), { headers: cookie })).status, 401, 'and the session cookie')
})

t.test('Redis unreachable at start-up: the server starts, and works once Redis comes', async t => {
  const server = await RedisServer.start(t)
  await server.stop()
  const a = await node(t, server)
  const down = await a.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  t.equal(down.statusCode, 503)
  await server.start()
  let back = down
  for (let attempt = 0; back.statusCode !== 200 && attempt < 200; attempt++) {
    await new Promise(resolve => setTimeout(resolve, 25))
    back = await a.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  }
  t.equal(back.statusCode, 200)
})

t.test('the app\'s own ioredis client can be given; a malformed message on the channel is ignored', async t => {
  const server = await RedisServer.start(t)
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  const a = await build(t, { users: [admin], authRoutes: true, redis, redisPrefix: 'app1:', rest: { handlers: whoami } }, silent)
  const tokens = await login(a)
  t.ok((await redis.keys('app1:{s:*}:session')).length === 1, 'sessions live under the prefix')
  const client = await connect(a.url('/websocket'))
  client.send({ type: 'auth', access_token: tokens.access_token })
  await client.next()
  await redis.publish('app1:revocations', 'not json')
  await redis.publish('app1:revocations', JSON.stringify({ session: 5 }))
  client.send({ type: 'whoami' })
  t.match(await client.next(), { type: 'whoami', user: String }, 'still authenticated')
  await client.close()
})

t.test('apps kept apart by their clients\' keyPrefix on one Redis hear nothing of each other: no log line, no revocation', async t => {
  const server = await RedisServer.start(t)
  const client = (keyPrefix: string) => {
    const redis = new Redis(server.url, { keyPrefix })
    t.teardown(() => redis.disconnect())
    return redis
  }
  const logged = { logger: { level: 'info', stream: { write () {} } } }
  const a = await build(t, { users: [admin], authRoutes: true, redis: client('appA:'), rest: { handlers: whoami } }, logged)
  const b = await build(t, { users: [admin], authRoutes: true, redis: client('appB:') }, logged)
  const tokens = await login(a)
  const logs = await connect(a.url('/websocket/logs'))
  logs.send({ type: 'auth', access_token: tokens.access_token })
  await logs.next()
  logs.send({ type: 'subscribe', log_level: 'info' })
  await logs.next()
  const socket = await connect(a.url('/websocket'))
  socket.send({ type: 'auth', access_token: tokens.access_token })
  await socket.next()
  socket.send({ type: 'whoami' })
  const { user } = await socket.next() as { user: string }

  b.app.log.info('a line of app B')
  // The same id on B (the embedded directory derives it from the email). Published after B's line, on one connection.
  await b.app.realtime.revokeUser(user)
  // Published after both: A's subscriber, had it heard them, would have heard them first.
  a.app.log.info('a line of app A')
  const frames: Array<{ type: string, data?: { msg?: string } }> = []
  do frames.push(await logs.next() as typeof frames[number])
  while (frames.at(-1)!.type === 'logs' && frames.at(-1)!.data!.msg !== 'a line of app A')
  t.notOk(frames.some(frame => frame.data?.msg === 'a line of app B'), 'A\'s logs carry none of B\'s lines')
  t.match(frames.at(-1), { data: { msg: 'a line of app A' } }, 'and their subscriber stays')
  socket.send({ type: 'whoami' })
  t.same(await socket.next(), { type: 'whoami', user }, 'B\'s revocation of its user is not A\'s')
  await Promise.all([logs.close(), socket.close()])
})

t.test('a client that finds its Redis through Sentinel is a plain ioredis client: processes share sessions and revocations', async t => {
  const server = await RedisServer.start(t)
  const sentinel = await RedisServer.sentinel(t, server, 'realtime')
  const client = () => {
    const redis = new Redis({ sentinels: [{ host: '127.0.0.1', port: sentinel.port }], name: 'realtime' })
    t.teardown(() => redis.disconnect())
    return redis
  }
  const [a, b] = [await node(t, server, { redis: client() }), await node(t, server, { redis: client() })]
  const tokens = await login(a)
  const onB = await connect(b.url('/websocket'))
  onB.send({ type: 'auth', access_token: tokens.access_token })
  t.same(await onB.next(), { type: 'auth', status: 'ok' })
  t.equal((await a.app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: tokens.refresh_token } })).statusCode, 204)
  t.match(await onB.next(), { error: { code: 'AUTH_REVOKED' } }, 'a logout on one reaches a socket on the other')
  t.equal((await refresh(b, tokens.refresh_token)).statusCode, 401, 'and the session is gone for both')
  await onB.close()
})

t.test('an outage is logged as a warning when it starts, as an error once past a failover\'s 10 s, and at info when it ends', async t => {
  const clock = fakeClock(t, ['Date'])
  const lines: string[] = []
  const log = {
    warn: (_o: object, line: string) => lines.push(`warn ${line}`),
    error: (_o: object, line: string) => lines.push(`error ${line}`),
    info: (line: string) => lines.push(`info ${line}`)
  }
  const events = new EventEmitter()
  watch(events, 'commands', log as never)
  events.emit('ready')
  events.emit('error', new Error('ECONNREFUSED'))
  events.emit('error', new Error('ECONNREFUSED'))
  events.emit('ready')
  events.emit('ready')
  t.same(lines, ['warn Redis (commands) unavailable; retrying', 'info Redis (commands) connected again'], 'a failover\'s outage')
  events.emit('error', new Error('ECONNREFUSED'))
  clock.tick(10_000)
  events.emit('error', new Error('ECONNREFUSED'))
  clock.tick(1_000)
  events.emit('error', new Error('ECONNREFUSED'))
  events.emit('ready')
  t.same(lines.slice(2), ['warn Redis (commands) unavailable; retrying',
    'error Redis (commands) unavailable; retrying (failing for 10 s, longer than a failover)', 'info Redis (commands) connected again'], 'a longer one')
})
