// What a user can observe: `fastify.realtime.on('auth' | 'authFailed' | 'expire' | 'close', ...)`.
import { runInNewContext } from 'node:vm'
import t from 'tap'
import { buildSchema } from 'graphql'
import { MemorySessionStore, type RealtimeEventMap } from '../../lib/index.js'
import { admin, build, connect, fakeClock, noTcpConnections, recordCrashes, refusedWith } from '../helpers.js'

type Seen = { event: string, detail: Record<string, unknown> }

function record (app: { realtime: { on: <E extends keyof RealtimeEventMap>(e: E, l: (p: RealtimeEventMap[E]) => void) => void } }) {
  const seen: Seen[] = []
  app.realtime.on('auth', ({ connection }) => seen.push({ event: 'auth', detail: { endpoint: connection.endpoint, user: connection.accountability.user } }))
  app.realtime.on('authFailed', (failure) => seen.push({ event: 'authFailed', detail: { ...failure } }))
  app.realtime.on('expire', ({ connection, code }) => seen.push({ event: 'expire', detail: { endpoint: connection.endpoint, code } }))
  app.realtime.on('close', ({ connection, code }) => seen.push({ event: 'close', detail: { endpoint: connection.endpoint, code } }))
  return seen
}

t.test('a socket\'s life on /websocket, event by event, never with the credential', async t => {
  const clock = fakeClock(t)
  const { app, url } = await build(t, { users: [admin], rest: { authTimeout: 0.3 } })
  const seen = record(app)
  const client = await connect(url('/websocket'))
  const exp = Math.floor(Date.now() / 1000) + 2
  client.send({ type: 'auth', access_token: app.realtime.jwt.sign({ id: 'u1', exp }) })
  await client.next()
  clock.tick(exp * 1000 - Date.now())
  await client.next() // TOKEN_EXPIRED
  client.send({ type: 'auth', access_token: 'not-a-token' })
  await client.next()
  await client.closed
  while (!seen.some(s => s.event === 'close')) await new Promise(resolve => setImmediate(resolve))
  t.same(seen, [
    { event: 'auth', detail: { endpoint: 'rest', user: 'u1' } },
    { event: 'expire', detail: { endpoint: 'rest', code: 'TOKEN_EXPIRED' } },
    { event: 'authFailed', detail: { endpoint: 'rest', code: 'AUTH_FAILED', reason: 'invalid token (FAST_JWT_MALFORMED)', ip: '127.0.0.1' } },
    { event: 'close', detail: { endpoint: 'rest', code: 4401 } }
  ])
  t.notMatch(JSON.stringify(seen), /not-a-token/)
})

t.test('handshake failures, upgrade refusals and revocations are reported with their reason code', async t => {
  const { app, url } = await build(t, { users: [admin], rest: { auth: 'handshake' } })
  const seen = record(app)
  const first = await connect(url('/websocket'))
  first.send('hello')
  await first.closed
  const wrong = await connect(url('/websocket'))
  wrong.send({ type: 'auth', email: admin.email, password: 'wrong-password' })
  await wrong.closed
  t.equal((await refusedWith(url('/websocket?access_token=bad'))).status, 401)

  const tokens = await app.realtime.login({ email: admin.email, password: admin.password })
  const byUrl = await connect(url(`/websocket?access_token=${tokens.access_token}`))
  await app.realtime.revokeUser(app.realtime.connections()[0].accountability.user!)
  await byUrl.next()
  await byUrl.close()
  while (seen.filter(s => s.event === 'close').length < 3) await new Promise(resolve => setImmediate(resolve))

  const failures = seen.filter(s => s.event === 'authFailed').map(s => [s.detail.code, s.detail.reason])
  t.same(failures, [
    ['AUTH_FAILED', 'the first message was not an auth message'],
    ['INVALID_CREDENTIALS', 'wrong email, password or otp'],
    ['AUTH_FAILED', 'invalid token (FAST_JWT_MALFORMED)']
  ])
  t.match(seen.filter(s => s.event !== 'authFailed' && s.event !== 'close'), [
    { event: 'auth', detail: { endpoint: 'rest', user: String } },
    { event: 'expire', detail: { code: 'AUTH_REVOKED' } }
  ])
  t.notMatch(JSON.stringify(seen), /wrong-password|d1r3ctu5/)
})

t.test('GraphQL sockets report the same events', async t => {
  const schema = buildSchema('type Query { me: String }')
  const { app, url } = await build(t, { graphql: { schema } })
  const seen = record(app)
  const good = await connect(url('/graphql'), { protocols: 'graphql-transport-ws' })
  good.send({ type: 'connection_init', payload: { access_token: app.realtime.jwt.sign({ id: 'g1' }) } })
  t.same(await good.next(), { type: 'connection_ack' })
  await good.close()
  const bad = await connect(url('/graphql'), { protocols: 'graphql-transport-ws' })
  bad.send({ type: 'connection_init', payload: { access_token: 'bad' } })
  t.equal((await bad.closed).code, 4403)
  const none = await connect(url('/graphql'), { protocols: 'graphql-transport-ws' })
  none.send({ type: 'connection_init', payload: { access_token: 5 } })
  t.equal((await none.closed).code, 4403)
  const empty = await connect(url('/graphql'), { protocols: 'graphql-transport-ws' })
  empty.send({ type: 'connection_init' })
  t.equal((await empty.closed).code, 4403)
  while (seen.filter(s => s.event === 'close').length < 4) await new Promise(resolve => setImmediate(resolve))
  t.match(seen.filter(s => s.event !== 'close'), [
    { event: 'auth', detail: { endpoint: 'graphql', user: 'g1' } },
    { event: 'authFailed', detail: { endpoint: 'graphql', code: 'AUTH_FAILED', reason: /invalid token/ } },
    { event: 'authFailed', detail: { endpoint: 'graphql', code: 'AUTH_FAILED', reason: 'access_token is not a string' } },
    { event: 'authFailed', detail: { endpoint: 'graphql', code: 'AUTH_FAILED', reason: 'connection_init without access_token' } }
  ])
})

t.test('a listener that throws is logged and breaks nothing; off() stops a listener', async t => {
  const logged: string[] = []
  const { app, url } = await build(t, { rest: { auth: 'strict' } }, { logger: { level: 'error', stream: { write: (line: string) => { logged.push(line) } } } })
  let calls = 0
  const counting = () => { calls++ }
  app.realtime.on('auth', () => { throw new Error('listener bug') })
  app.realtime.on('auth', counting)
  const client = await connect(url(`/websocket?access_token=${app.realtime.jwt.sign({ id: 'u1' })}`))
  client.send({ type: 'ping' })
  t.same(await client.next(), { type: 'pong' }, 'the socket works')
  t.equal(calls, 1, 'the next listener still ran')
  t.match(logged.join(''), /a realtime event listener failed/)
  app.realtime.off('auth', counting)
  await (await connect(url(`/websocket?access_token=${app.realtime.jwt.sign({ id: 'u2' })}`))).close()
  t.equal(calls, 1)
  t.equal((await refusedWith(url('/websocket'))).status, 401)
  await client.close()
})

t.test("a listener's failure for a socket is logged on that socket's request log: its request id, as the app's genReqId made it", async t => {
  // The app tells which socket (and which upgrade) a failure was for by its request id; on the app's logger the line had
  // none.
  const logged: Array<{ msg: string, reqId?: string, event?: string }> = []
  let requests = 0
  const { app, url } = await build(t, { rest: { auth: 'public' } }, {
    genReqId: () => `upgrade-${++requests}`,
    logger: { level: 'error', stream: { write: (line: string) => { logged.push(JSON.parse(line)) } } }
  })
  app.realtime.on('close', () => { throw new Error('listener bug') })
  app.realtime.on('auth', async () => { throw new Error('audit store down') })
  const client = await connect(url(`/websocket?access_token=${app.realtime.jwt.sign({ id: 'u1' })}`))
  await client.close()
  while (logged.length < 2) await new Promise(resolve => setImmediate(resolve))
  t.match(logged.filter(line => line.msg === 'a realtime event listener failed').sort((a, b) => a.event!.localeCompare(b.event!)), [
    { event: 'auth', reqId: 'upgrade-1' },
    { event: 'close', reqId: 'upgrade-1' }
  ])
})

t.test('an async listener whose promise rejects (an audit store away) is logged and breaks nothing', async t => {
  const logged: string[] = []
  const crashes = recordCrashes(t)
  const { app, url } = await build(t, {}, { logger: { level: 'error', stream: { write: (line: string) => { logged.push(line) } } } })
  app.realtime.on('authFailed', async ({ code }) => { throw new Error(`audit store down (${code})`) })
  // Another realm's promise (a vm context's, a library's) rejects the same way.
  app.realtime.on('authFailed', () => runInNewContext('Promise.reject(new Error("audit store of another realm down"))'))
  t.equal((await refusedWith(url('/websocket?access_token=forged'))).status, 401, 'refused')
  while (logged.length < 2) await new Promise(resolve => setImmediate(resolve))
  t.match(logged.map(line => JSON.parse(line)), [
    { msg: 'a realtime event listener failed', event: 'authFailed', err: { message: 'audit store down (AUTH_FAILED)' } },
    { msg: 'a realtime event listener failed', event: 'authFailed', err: { message: 'audit store of another realm down' } }
  ])
  // Each listener's failures are logged once a minute: any client can set them off again.
  t.equal((await refusedWith(url('/websocket?access_token=forged-again'))).status, 401)
  const client = await connect(url(`/websocket?access_token=${app.realtime.jwt.sign({ id: 'u' })}`))
  client.send({ type: 'ping' })
  t.same(await client.next(), { type: 'pong' }, 'the server serves on')
  t.equal(logged.length, 2, 'the second refusal\'s failures are not logged again within the minute')
  t.same(crashes, [], 'no unhandled rejection')
  await client.close()
})

t.test('a close listener sees the client address, even one added while the socket was open and never asked for it', async t => {
  const { app, url } = await build(t, { rest: { auth: 'public' }, heartbeat: { enabled: false } })
  const early = await connect(url('/websocket'))
  const addresses: (string | null)[] = []
  app.realtime.on('close', ({ connection }) => addresses.push(connection.accountability.ip))
  const late = await connect(url('/websocket'))
  await Promise.all([early.close(), late.close()])
  while (addresses.length < 2) await new Promise(resolve => setImmediate(resolve))
  t.same(addresses, ['127.0.0.1', '127.0.0.1'])
})

t.test('behind a trusted proxy the address is the forwarded one, as request.ip has it', async t => {
  const { app, url } = await build(t, { rest: { auth: 'public' }, heartbeat: { enabled: false } }, { trustProxy: true })
  const proxied = await connect(url('/websocket'), { headers: { 'x-forwarded-for': '203.0.113.7' } })
  const direct = await connect(url('/websocket'))
  while (app.realtime.connections().length < 2) await new Promise(resolve => setImmediate(resolve))
  t.same(app.realtime.connections().map(connection => connection.accountability.ip).sort(), ['127.0.0.1', '203.0.113.7'])
  await Promise.all([proxied.close(), direct.close()])
})

t.test('without trustProxy a forwarded address is not believed', async t => {
  const { app, url } = await build(t, { rest: { auth: 'public' }, heartbeat: { enabled: false } })
  const client = await connect(url('/websocket'), { headers: { 'x-forwarded-for': '203.0.113.7' } })
  while (app.realtime.connections().length < 1) await new Promise(resolve => setImmediate(resolve))
  t.same(app.realtime.connections().map(connection => connection.accountability.ip), ['127.0.0.1'])
  await client.close()
})

t.test('the address is known to code that reads it after the socket is gone', async t => {
  const stalled: (() => void)[] = []
  const store = new MemorySessionStore()
  const sessionStore = Object.assign(Object.create(store), {
    // A refresh that answers only once the client has left.
    rotate: (...args: Parameters<MemorySessionStore['rotate']>) => new Promise(resolve => stalled.push(() => resolve(store.rotate(...args))))
  }) as MemorySessionStore
  const addresses: Record<string, unknown> = {}
  let handled: () => void = () => {}
  const { app, url } = await build(t, {
    sessionStore,
    heartbeat: { enabled: false },
    rest: {
      auth: 'public',
      handlers: {
        async later (_message, connection) {
          await new Promise<void>(resolve => { handled = resolve })
          addresses.handler = connection.accountability.ip
        }
      }
    }
  })
  const failed = new Promise<string | null>(resolve => app.realtime.on('authFailed', ({ ip }) => resolve(ip)))
  const refreshing = await connect(url('/websocket'))
  // The socket reads nothing while its check is pending, its close frame included, until the store's deadline (3 s,
  // on a fake clock) ends the check.
  const clock = fakeClock(t, ['setTimeout', 'clearTimeout'])
  refreshing.send({ type: 'auth', refresh_token: 'never-issued'.padEnd(64, 'A') }) // shaped as one: it reaches the store
  while (stalled.length === 0) await new Promise(resolve => setImmediate(resolve))
  const closing = refreshing.close()
  clock.tick(3_000)
  await closing
  clock.uninstall()
  await noTcpConnections(app)
  stalled[0]()
  addresses.refused = await failed

  const handling = await connect(url('/websocket'))
  handling.send({ type: 'later' })
  while (app.realtime.connections().length < 1) await new Promise(resolve => setImmediate(resolve))
  await new Promise(resolve => setTimeout(resolve, 20))
  await handling.close()
  await noTcpConnections(app)
  handled()
  while (addresses.handler === undefined) await new Promise(resolve => setImmediate(resolve))
  t.same(addresses, { refused: '127.0.0.1', handler: '127.0.0.1' })
})

t.test('what a listener sends comes after the frame its event is about', async t => {
  const { app, url } = await build(t, { users: [admin], rest: { auth: 'public' } })
  app.realtime.on('auth', ({ connection }) => connection.send({ type: 'welcome' }))
  app.realtime.on('expire', ({ connection, code }) => connection.send({ type: 'goodbye', code }))
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', email: admin.email, password: admin.password })
  t.match(await client.next(), { type: 'auth', status: 'ok', refresh_token: String })
  t.same(await client.next(), { type: 'welcome' })
  await app.realtime.revokeUser(app.realtime.connections()[0].accountability.user!)
  t.match(await client.next(), { type: 'auth', error: { code: 'AUTH_REVOKED' } })
  t.same(await client.next(), { type: 'goodbye', code: 'AUTH_REVOKED' })
  await client.close()
})

t.test('a GraphQL socket whose session ends reports expire, and closes 4403', async t => {
  const schema = buildSchema('type Query { me: String }')
  const { app, url } = await build(t, { users: [admin], graphql: { schema } })
  const seen = record(app)
  const tokens = await app.realtime.login({ email: admin.email, password: admin.password })
  const client = await connect(url('/graphql'), { protocols: 'graphql-transport-ws' })
  client.send({ type: 'connection_init', payload: { access_token: tokens.access_token } })
  t.same(await client.next(), { type: 'connection_ack' })
  await app.realtime.revokeUser(app.realtime.connections()[0].accountability.user!)
  t.same(await client.closed, { code: 4403, reason: 'Forbidden' })
  while (!seen.some(s => s.event === 'close')) await new Promise(resolve => setImmediate(resolve))
  t.same(seen.map(s => s.event), ['auth', 'expire', 'close'])
  t.match(seen[1], { detail: { endpoint: 'graphql', code: 'AUTH_REVOKED' } })
})

t.test('an authentication that settles after its socket is gone is not reported', async t => {
  let release: () => Promise<unknown> = async () => {}
  let holding = true
  // A refresh that answers only once the client has left.
  const sessionStore = new class extends MemorySessionStore {
    override rotate (...args: Parameters<MemorySessionStore['rotate']>) {
      if (!holding) return super.rotate(...args)
      return new Promise<Awaited<ReturnType<MemorySessionStore['rotate']>>>(resolve => {
        release = () => { const rotated = super.rotate(...args); resolve(rotated); return rotated }
      })
    }
  }()
  const { app, url } = await build(t, { sessionStore, users: [admin], heartbeat: { enabled: false }, rest: { auth: 'public' } })
  const tokens = await app.realtime.login({ email: admin.email, password: admin.password })
  const seen = record(app)
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', refresh_token: tokens.refresh_token })
  while (app.realtime.connections().length === 0) await new Promise(resolve => setImmediate(resolve))
  await client.close()
  while (!seen.some(s => s.event === 'close')) await new Promise(resolve => setImmediate(resolve))
  await release()
  await new Promise(resolve => setImmediate(resolve)) // the settled check has run: promises go before it
  t.same(seen.map(s => s.event), ['close', 'authFailed'], 'no auth for a socket that is gone')
  t.match(seen[1], { detail: { code: 'SERVICE_UNAVAILABLE', reason: 'the client left while its refresh token rotated' } },
    'its rotation was taken back: the client never heard of the next token')
  holding = false
  const again = await connect(url('/websocket'))
  again.send({ type: 'auth', refresh_token: tokens.refresh_token })
  t.match(await again.next(), { type: 'auth', status: 'ok' }, 'the token it holds still works')
  await again.close()
})
