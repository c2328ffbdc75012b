// The upgrade gate (PROTOCOL.md section 3) and the payload limit.
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifyJwt from '@fastify/jwt'
import fastifyWebsocket from '@fastify/websocket'
import realtime, { type RealtimeUpgrade } from '../../lib/index.js'
import { build, connect, refusedWith, secret, type Client } from '../helpers.js'

t.test('origin: none, the own host, PUBLIC_URL and allowed origins pass; others get 403', async t => {
  const { url } = await build(t, { rest: { auth: 'public' }, publicUrl: 'https://api.example.com/base', origins: ['https://app.example.com'] })
  const { port } = new URL(url('/'))
  for (const origin of [undefined, `http://127.0.0.1:${port}`, 'https://api.example.com', 'https://app.example.com']) {
    const client = await connect(url('/websocket'), origin ? { origin } : {})
    client.send({ type: 'ping' })
    t.same(await client.next(), { type: 'pong' }, `origin ${origin} passes`)
    await client.close()
  }
  for (const origin of ['https://evil.example.com', 'null', 'not a url', 'https://app.example.com/path', 'http://app.example.com']) {
    const refused = await refusedWith(url('/websocket'), { origin })
    t.equal(refused.status, 403, `origin ${origin} refused`)
    t.same(JSON.parse(refused.body), { errors: [{ message: "You don't have permission to access this.", extensions: { code: 'FORBIDDEN' } }] })
  }
})

/** A socket on `url` once a closed one's place has come back with its TCP close, which may trail the websocket close. */
async function placeBack (t: Test, url: string): Promise<Client> {
  for (let attempt = 0; ; attempt++) {
    const opened = await connect(url).catch(() => undefined)
    if (opened) {
      t.pass('a closed socket gives its place back')
      return opened
    }
    if (attempt > 100) throw new Error('the place never came back')
  }
}

t.test('the connection limit counts handshake-phase sockets and answers 503 past it', async t => {
  const { url } = await build(t, { rest: { connLimit: 2 } })
  const one = await connect(url('/websocket'))
  const two = await connect(url('/websocket'))
  const refused = await refusedWith(url('/websocket'))
  t.equal(refused.status, 503)
  t.same(JSON.parse(refused.body), { errors: [{ message: 'Service unavailable.', extensions: { code: 'SERVICE_UNAVAILABLE' } }] })
  await one.close()
  const three = await placeBack(t, url('/websocket'))
  await Promise.all([two.close(), three.close()])
})

t.test('connLimitPerAddress: one client\'s open sockets across the endpoints, 429 past it; other clients pass', async t => {
  const { url } = await build(t, { rest: { auth: 'public' }, logs: { auth: 'public' }, connLimitPerAddress: 2 })
  const one = await connect(url('/websocket'))
  const two = await connect(url('/websocket/logs'))
  const refused = await refusedWith(url('/websocket'))
  t.equal(refused.status, 429, 'the third socket of 127.0.0.1, whatever the endpoint')
  t.same(JSON.parse(refused.body), { errors: [{ message: 'Too many requests, retry after 1000ms.', extensions: { code: 'REQUESTS_EXCEEDED' } }] })
  t.equal((await refusedWith(url('/websocket/logs'))).status, 429)
  const other = await connect(url('/websocket'), { localAddress: '127.0.0.2' })
  other.send({ type: 'ping' })
  t.same(await other.next(), { type: 'pong' }, 'another address has places of its own')
  await one.close()
  const three = await placeBack(t, url('/websocket'))
  await Promise.all([two.close(), three.close(), other.close()])
})

t.test('connLimitPerAddress counts the client Fastify reads behind a proxy, an IPv6 client by its /64', async t => {
  const { url } = await build(t, { rest: { auth: 'public' }, connLimitPerAddress: 1 }, { trustProxy: '127.0.0.1' })
  const forwarded = (address: string) => ({ headers: { 'x-forwarded-for': address } })
  const first = await connect(url('/websocket'), forwarded('2001:db8:1:2::1'))
  t.equal((await refusedWith(url('/websocket'), forwarded('2001:db8:1:2::ffff'))).status, 429, 'the same /64')
  const second = await connect(url('/websocket'), forwarded('2001:db8:1:3::1'))
  const third = await connect(url('/websocket'), forwarded('192.0.2.7'))
  t.pass('other networks pass though they share the proxy\'s address')
  await Promise.all([first.close(), second.close(), third.close()])
})

t.test('connLimitPerAddress counts a forwarded address by itself, whatever port the proxy writes beside it', async t => {
  // Azure Application Gateway forwards `192.0.2.8:5678`, `[2001:db8::1]:5678`: each source port is no new client.
  const { url } = await build(t, { rest: { auth: 'public' }, connLimitPerAddress: 2 }, { trustProxy: '127.0.0.1' })
  const forwarded = (address: string) => ({ headers: { 'x-forwarded-for': address } })
  const open = [await connect(url('/websocket'), forwarded('192.0.2.8:1001')), await connect(url('/websocket'), forwarded('192.0.2.8:1002'))]
  for (const port of [1003, 1004, 1005, 1006]) {
    t.equal((await refusedWith(url('/websocket'), forwarded(`192.0.2.8:${port}`))).status, 429, `192.0.2.8:${port}`)
  }
  t.equal((await refusedWith(url('/websocket'), forwarded('192.0.2.8'))).status, 429, 'and without a port')
  open.push(await connect(url('/websocket'), forwarded('[2001:db8:1:2::1]:1')), await connect(url('/websocket'), forwarded('[2001:db8:1:2::2]:2')))
  t.equal((await refusedWith(url('/websocket'), forwarded('[2001:db8:1:2::1]:3'))).status, 429, 'an IPv6 client with a port, by its /64')
  // What is still no address is one client, not one per spelling.
  open.push(await connect(url('/websocket'), forwarded('proxy-wrote-this')), await connect(url('/websocket'), forwarded('192.0.2.9:port')))
  t.equal((await refusedWith(url('/websocket'), forwarded('[not-an-address]:1'))).status, 429, 'strings that are no address share one place')
  await Promise.all(open.map(client => client.close()))
})

t.test('refused upgrades give their place back', async t => {
  const { url } = await build(t, { rest: { auth: 'strict' }, connLimitPerAddress: 1 })
  for (let i = 0; i < 3; i++) t.equal((await refusedWith(url('/websocket'))).status, 401)
})

t.test('refused upgrades give their slot back too', async t => {
  const { url } = await build(t, { rest: { auth: 'strict', connLimit: 1 } })
  for (let i = 0; i < 3; i++) t.equal((await refusedWith(url('/websocket'))).status, 401)
  t.equal((await refusedWith(url('/websocket?access_token=bad'))).status, 401, 'still 401, not 503')
})

t.test('the request carries the resolved auth mode and upgrade accountability', async t => {
  const seen: (RealtimeUpgrade | null | undefined)[] = []
  const app = Fastify()
  await app.register(realtime, { env: { WEBSOCKETS_REST_AUTH: 'Public' }, secret })
  app.addHook('preHandler', async (request) => { seen.push(request.realtime) })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  const token = app.realtime.signAccessToken({ user: 'u1', role: null, admin: true }, 'sid-1')

  await (await connect(`ws://127.0.0.1:${port}/websocket`)).close()
  await (await connect(`ws://127.0.0.1:${port}/websocket?access_token=${token.access_token}`, { headers: { 'user-agent': 'ua' } })).close()
  t.same(seen[0], { endpoint: 'rest', authMode: 'public', accountability: null, expiresAt: null })
  t.match(seen[1], {
    endpoint: 'rest',
    authMode: 'public',
    accountability: { user: 'u1', role: null, admin: true, ip: '127.0.0.1', userAgent: 'ua', origin: null, session: 'sid-1' },
    expiresAt: Number
  })
  // What the gate decided, kept as long as the socket: frozen, and one object for every upgrade without a credential.
  await (await connect(`ws://127.0.0.1:${port}/websocket`)).close()
  t.equal(seen[2], seen[0], 'upgrades without a credential share one')
  t.ok(Object.isFrozen(seen[0]) && Object.isFrozen(seen[1]), 'frozen, with a credential or without')
  const plain = await app.inject({ url: '/websocket' })
  t.equal(plain.statusCode, 404, 'a plain GET is not an upgrade')
})

t.test('request.realtime is null on the other routes of the scope the plugin is in, undefined outside it', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  const seen = (request: { realtime: RealtimeUpgrade | null | undefined }) => ({ realtime: String(request.realtime) })
  app.get('/outside', async (request) => seen(request))
  await app.register(async (scope) => {
    await scope.register(realtime, { env: {}, secret, prefix: '/rt' })
    scope.get('/beside', async (request) => seen(request))
  })
  t.same((await app.inject('/outside')).json(), { realtime: 'undefined' })
  t.same((await app.inject('/beside')).json(), { realtime: 'null' })
})

// README, `request.realtime`: the gate is the route's own onRequest hook, so the app's onRequest hooks run before it.
t.test('request.realtime: the app\'s hooks read it from preParsing on; its onRequest hooks, before the gate, read null', async t => {
  const app = Fastify()
  const seen: Record<string, string> = {}
  for (const hook of ['onRequest', 'preParsing', 'preValidation', 'preHandler'] as const) {
    app.addHook(hook, async (request: { realtime: RealtimeUpgrade | null | undefined }) => { seen[hook] = request.realtime === null ? 'null' : String(request.realtime?.authMode) })
  }
  await app.register(realtime, { env: {}, secret, rest: { auth: 'public' } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  await (await connect(`ws://127.0.0.1:${port}/websocket`)).close()
  t.same(seen, { onRequest: 'null', preParsing: 'public', preValidation: 'public', preHandler: 'public' })
})

t.test('the @fastify/jwt cookie authenticates at the upgrade; the query parameter wins over it', async t => {
  const app = Fastify()
  await app.register(fastifyCookie, { secret: 'cookie-signing-secret' })
  await app.register(fastifyJwt, { secret, cookie: { cookieName: 'session_token', signed: true } })
  await app.register(realtime, {
    env: {},
    rest: { auth: 'strict', handlers: { whoami: (_m, c) => c.send({ type: 'whoami', user: c.accountability.user }) } }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  const url = `ws://127.0.0.1:${port}/websocket`
  const fromCookie = app.realtime.jwt.sign({ id: 'cookie-user' })
  const fromQuery = app.realtime.jwt.sign({ id: 'query-user' })
  const cookie = `session_token=${app.signCookie(fromCookie)}`

  const byCookie = await connect(url, { headers: { cookie } })
  byCookie.send({ type: 'whoami' })
  t.same(await byCookie.next(), { type: 'whoami', user: 'cookie-user' })
  await byCookie.close()

  const byQuery = await connect(`${url}?access_token=${fromQuery}`, { headers: { cookie } })
  byQuery.send({ type: 'whoami' })
  t.same(await byQuery.next(), { type: 'whoami', user: 'query-user' })
  await byQuery.close()

  t.equal((await refusedWith(url, { headers: { cookie: `session_token=${fromCookie}` } })).status, 401, 'an unsigned cookie')
  t.equal((await refusedWith(url, { headers: { cookie: 'other=1' } })).status, 401, 'no token cookie: strict refuses')
})

t.test('a frame over the payload limit closes the socket with 1009', async t => {
  const { url } = await build(t, { rest: { auth: 'public' }, maxPayload: 1024 })
  const client = await connect(url('/websocket'))
  client.send({ type: 'ping', uid: 'x'.repeat(2048) })
  t.equal((await client.closed).code, 1009)
})

t.test('1009 and 1007 still reach a client that keeps sending, and are logged at debug alone, without a stack', async t => {
  const lines: { level: number, msg: string, code?: string, message?: string, err?: unknown }[] = []
  const { url } = await build(t, { rest: { auth: 'public' }, maxPayload: 1024 }, {
    logger: { level: 'debug', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } }
  })
  // Frames after the refused one arrive while ws closes the socket: it must not be torn down under its close frame.
  for (const [code, refused] of [[1009, 'x'.repeat(2048)], [1007, Buffer.from([0xff])]] as const) {
    const codes: number[] = []
    for (let round = 0; round < 10; round++) { // a race when it goes wrong: a few rounds make it show
      const client = await connect(url('/websocket'))
      for (let i = 0; i < 20; i++) client.send({ type: 'ping', uid: i })
      client.ws.send(refused, { binary: false })
      for (let i = 0; i < 50; i++) client.send({ type: 'ping', uid: 'y'.repeat(i * 50) })
      codes.push((await client.closed).code)
    }
    t.same(codes, Array(10).fill(code), `closed ${code}`)
  }
  const refused = lines.filter(line => line.msg === 'websocket frame refused')
  t.equal(refused.length, 20, 'one line a socket')
  t.ok(refused.every(line => line.level === 20 && line.err === undefined && typeof line.code === 'string' && typeof line.message === 'string'),
    'at debug, its code and message: any client can send such frames')
  const requestLines = new Set(['incoming request', 'request completed'])
  t.same(lines.filter(line => line.level > 20 && !requestLines.has(line.msg) && !line.msg.startsWith('Server listening')), [],
    'nothing above debug but Fastify\'s own lines')
})

t.test('the payload limit holds when the app brought its own @fastify/websocket with a larger one', async t => {
  const app = Fastify()
  await app.register(fastifyWebsocket)
  await app.register(realtime, { env: { WEBSOCKETS_MAX_PAYLOAD: '1024', WEBSOCKETS_REST_AUTH: 'public' }, secret })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  const client = await connect(`ws://127.0.0.1:${port}/websocket`)
  client.send({ type: 'ping', uid: 'small' })
  t.same(await client.next(), { type: 'pong', uid: 'small' })
  client.ws.send([Buffer.from('{"type":"ping","uid":"'), Buffer.alloc(2048, 'x'), Buffer.from('"}')].reduce((a, b) => Buffer.concat([a, b])))
  t.equal((await client.closed).code, 1009)
})
