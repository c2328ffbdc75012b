// The GraphQL endpoint (PROTOCOL.md section 5): the real graphql-ws client in every mode, expiry and revocation that
// close with 4403, and raw `ws` sockets for the close codes and for proof that only graphql-transport-ws frames arrive.
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import WebSocket from 'ws'
import { buildSchema, GraphQLObjectType, GraphQLSchema, GraphQLString, type ExecutionResult } from 'graphql'
import { createClient, type Client as GqlClient, type ClientOptions } from 'graphql-ws'
import realtime, { type Accountability, type GraphqlContext, type RealtimeOptions } from '../../lib/index.js'
import { resolveConfig } from '../../lib/config.js'
import type { Connection } from '../../lib/connection/connection.js'
import { referenceSchema, ticks, type Me } from '../../example/schema.js'
import { buildReferenceServer } from '../../example/app.js'
import { admin, build, connect, fakeClock, nextSecond, noTcpConnections, refusedWith, secret, stoppedDate, within, type Client } from '../helpers.js'

const protocol = 'graphql-transport-ws'
const me = (accountability: Accountability): Me | null => accountability.user === null
  ? null
  : { id: accountability.user, email: `${accountability.user}@example.com`, role: accountability.role, admin: accountability.admin }
const schema = referenceSchema(me)
const meQuery = '{ me { id email role admin } }'

/** A token for `user` that expires at the next whole second: under `stoppedDate`, when the test ticks the clock. */
function shortToken (app: FastifyInstance, user: string) {
  const exp = nextSecond()
  return { token: app.realtime.jwt.sign({ id: user, exp }), exp }
}

/** The real graphql-ws client over `ws`, disposed at the end of the test; no retries unless asked. */
function gqlClient (t: Test, url: string, options: Partial<ClientOptions> = {}): GqlClient {
  const client = createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0, ...options })
  t.teardown(() => client.dispose())
  return client
}

/** One operation to its single result; what ended it otherwise (a close, the errors) is thrown. */
async function execute (client: GqlClient, query: string): Promise<ExecutionResult> {
  const results: ExecutionResult[] = []
  for await (const result of client.iterate({ query })) results.push(result as ExecutionResult)
  return results[0]
}

/**
 * What ended an operation: `{ code, reason }` of a close, the messages of the errors the server answered with, or
 * the message of the socket's error event.
 */
async function failure (client: GqlClient, query: string): Promise<{ code: number, reason: string } | string> {
  try {
    await execute(client, query)
  } catch (err) {
    if (Array.isArray(err)) return err.map(error => error.message).join('\n')
    const { code, reason, message } = err as { code?: number, reason: string, message: string }
    return code === undefined ? message : { code, reason }
  }
  throw new Error('the operation did not fail')
}

const protocolTypes = new Set(['connection_ack', 'ping', 'pong', 'next', 'error', 'complete'])

interface RawSocket {
  client: Client
  /** Every frame that arrived and is not a graphql-transport-ws message: must stay empty. */
  foreign: unknown[]
}

/** A raw `ws` socket on the GraphQL endpoint, offering the subprotocol unless told otherwise. */
async function raw (url: string, protocols: string | string[] = protocol): Promise<RawSocket> {
  const client = await connect(url, { protocols })
  const foreign: unknown[] = []
  client.ws.on('message', (data) => {
    let frame: unknown
    try { frame = JSON.parse(data.toString()) } catch { frame = data.toString() }
    const type = (frame as { type?: unknown } | null)?.type
    if (typeof type !== 'string' || !protocolTypes.has(type)) foreign.push(frame)
  })
  return { client, foreign }
}

async function closedWith (socket: RawSocket) {
  const { code, reason } = await socket.client.closed
  return { code, reason }
}

const graphqlSockets = (app: FastifyInstance) => app.realtime.connections({ endpoint: 'graphql' }) as Connection[]

/**
 * No GraphQL socket open, nor a TCP connection: `connections()` lists the open sockets alone, and one its client closed
 * may still be closing on the server.
 */
async function noGraphqlSocketLeft (app: FastifyInstance) {
  while (graphqlSockets(app).length > 0) await new Promise(resolve => setTimeout(resolve, 5))
  await noTcpConnections(app)
}

/** Each of `connections` (taken while open) let go by the plugin: CLOSED, as ws emits the close it lets it go at. */
async function letGo (connections: Connection[]) {
  while (connections.some(({ socket }) => socket.readyState !== socket.CLOSED)) await new Promise(resolve => setTimeout(resolve, 5))
}

t.test('public: me is null without a token; a connection_init access_token makes it that user', async t => {
  const { app, url } = await build(t, { graphql: { auth: 'public', schema } })
  t.same(await execute(gqlClient(t, url('/graphql')), meQuery), { data: { me: null } })
  const nullToken = gqlClient(t, url('/graphql'), { connectionParams: { access_token: null } })
  t.same(await execute(nullToken, meQuery), { data: { me: null } }, 'a null token is no token')
  const token = app.realtime.jwt.sign({ id: 'u1', role: 'editor' })
  const client = gqlClient(t, url('/graphql'), { connectionParams: { access_token: token } })
  t.same(await execute(client, meQuery), { data: { me: { id: 'u1', email: 'u1@example.com', role: 'editor', admin: false } } })
})

t.test('public: an invalid connection_init token closes 4403 Forbidden, and nothing else arrives', async t => {
  const { url } = await build(t, { graphql: { auth: 'public', schema } })
  const client = gqlClient(t, url('/graphql'), { connectionParams: { access_token: 'not-a-token' } })
  t.same(await failure(client, meQuery), { code: 4403, reason: 'Forbidden' })
  for (const payload of [{ access_token: 'not-a-token' }, { access_token: 42 }, { access_token: '' }]) {
    const socket = await raw(url('/graphql'))
    socket.client.send({ type: 'connection_init', payload })
    t.same(await closedWith(socket), { code: 4403, reason: 'Forbidden' }, JSON.stringify(payload))
    t.same(socket.foreign, [])
  }
})

t.test('a subscribe before connection_ack closes 4403 Forbidden, as Directus closes it (graphql-ws alone: 4401)', async t => {
  for (const auth of ['public', 'handshake'] as const) {
    const { url } = await build(t, { graphql: { auth, schema } })
    const socket = await raw(url('/graphql'))
    socket.client.send({ id: '1', type: 'subscribe', payload: { query: meQuery } })
    t.same(await closedWith(socket), { code: 4403, reason: 'Forbidden' }, auth)
    t.same(socket.foreign, [])
  }
})

t.test('handshake: the connection_init access_token authenticates, or the URL token without one', async t => {
  const { app, url } = await build(t, { graphql: { schema } })
  const token = app.realtime.jwt.sign({ id: 'admin-1', role: 'administrator', admin_access: true })
  const byInit = gqlClient(t, url('/graphql'), { connectionParams: { access_token: token } })
  const expected = { data: { me: { id: 'admin-1', email: 'admin-1@example.com', role: 'administrator', admin: true } } }
  t.same(await execute(byInit, meQuery), expected)
  const byUrl = gqlClient(t, url(`/graphql?access_token=${token}`))
  t.same(await execute(byUrl, meQuery), expected, 'authenticated at the upgrade: no token needed in connection_init')
  const other = app.realtime.jwt.sign({ id: 'u2' })
  const both = gqlClient(t, url(`/graphql?access_token=${token}`), { connectionParams: { access_token: other } })
  t.match(await execute(both, meQuery), { data: { me: { id: 'u2' } } }, 'a connection_init token replaces the URL one')
})

t.test('handshake: a missing, invalid or expired token closes 4403 at once', async t => {
  fakeClock(t, ['setTimeout', 'clearTimeout', 'performance']) // the auth window never ends: each 4403 is the token's
  const { app, url } = await build(t, { graphql: { schema } })
  t.same(await failure(gqlClient(t, url('/graphql')), meQuery), { code: 4403, reason: 'Forbidden' }, 'graphql-ws client')
  const expired = app.realtime.jwt.sign({ id: 'u1', exp: Math.floor(Date.now() / 1000) - 10 })
  const inits = [
    { type: 'connection_init' },
    { type: 'connection_init', payload: {} },
    { type: 'connection_init', payload: { access_token: 'bad' } },
    { type: 'connection_init', payload: { access_token: expired } },
    { type: 'connection_init', payload: { access_token: ['a', 'b'] } }
  ]
  for (const init of inits) {
    const socket = await raw(url('/graphql'))
    socket.client.send(init)
    t.same(await closedWith(socket), { code: 4403, reason: 'Forbidden' }, JSON.stringify(init))
    t.same(socket.foreign, [], 'no frame but the protocol\'s')
  }
})

t.test('handshake: a silent client is closed 4408 when the auth timeout runs out', async t => {
  const clock = fakeClock(t, ['setTimeout', 'clearTimeout', 'performance'])
  const { url } = await build(t, { graphql: { schema, authTimeout: 0.2 } })
  const socket = await raw(url('/graphql'))
  clock.tick(199)
  socket.client.send({ type: 'ping' })
  t.same(await socket.client.next(), { type: 'pong' }, 'open a millisecond before the timeout')
  clock.tick(1)
  t.same(await closedWith(socket), { code: 4408, reason: 'Connection initialisation timeout' })
  t.same(socket.foreign, [])
})

t.test('public, strict, or authenticated at the upgrade: a client that sends no connection_init is closed 4408 when the auth timeout runs out', async t => {
  // Directus closes such a socket 4408 after graphql-ws's 3 s in every mode; left open, it held its place unused for good.
  const clock = fakeClock(t, ['setTimeout', 'clearTimeout', 'performance'])
  for (const auth of ['public', 'strict', 'handshake'] as const) {
    const { app, url } = await build(t, { graphql: { auth, schema, authTimeout: 0.2 } })
    const token = app.realtime.jwt.sign({ id: 'u1' })
    const socket = await raw(url(auth === 'public' ? '/graphql' : `/graphql?access_token=${token}`))
    clock.tick(199)
    socket.client.send({ type: 'ping' })
    t.same(await socket.client.next(), { type: 'pong' }, `${auth}: open a millisecond before the timeout`)
    clock.tick(1)
    // A ping after the timeout: answered, the socket would still be open (a pong comes before any close).
    socket.client.send({ type: 'ping' })
    t.same(await Promise.race([closedWith(socket), socket.client.next()]), { code: 4408, reason: 'Connection initialisation timeout' }, auth)
    t.same(socket.foreign, [])

    const initialised = await raw(url(auth === 'public' ? '/graphql' : `/graphql?access_token=${token}`))
    initialised.client.send({ type: 'connection_init' })
    t.same(await initialised.client.next(), { type: 'connection_ack' }, auth)
    clock.tick(1000)
    initialised.client.send({ id: '1', type: 'subscribe', payload: { query: meQuery } })
    t.match(await initialised.client.next(), { id: '1', type: 'next' }, `${auth}: a connection_init in time keeps it open`)
    await initialised.client.close()
  }
})

t.test('strict: the URL token authenticates; without one the upgrade gets HTTP 401', async t => {
  const { app, url } = await build(t, { graphql: { auth: 'strict', schema } })
  const token = app.realtime.jwt.sign({ id: 'u1' })
  t.match(await execute(gqlClient(t, url(`/graphql?access_token=${token}`)), meQuery), { data: { me: { id: 'u1' } } })
  t.equal((await refusedWith(url('/graphql'))).status, 401)
  t.equal((await refusedWith(url('/graphql?access_token=bad'))).status, 401)
  const withParamsOnly = gqlClient(t, url('/graphql'), { connectionParams: { access_token: token } })
  t.match(await failure(withParamsOnly, meQuery), /401/, 'connectionParams do not get past the upgrade')
})

t.test('strict: a connection_init access_token is checked as in the other modes (Directus ignores it): it replaces the URL one, or closes 4403', async t => {
  const { app, url } = await build(t, { graphql: { auth: 'strict', schema } })
  const token = app.realtime.jwt.sign({ id: 'u1' })
  const other = app.realtime.jwt.sign({ id: 'u2' })
  const both = gqlClient(t, url(`/graphql?access_token=${token}`), { connectionParams: { access_token: other } })
  t.match(await execute(both, meQuery), { data: { me: { id: 'u2' } } })
  for (const payload of [{ access_token: 'bad' }, { access_token: 42 }]) {
    const socket = await raw(url(`/graphql?access_token=${token}`))
    socket.client.send({ type: 'connection_init', payload })
    t.same(await closedWith(socket), { code: 4403, reason: 'Forbidden' }, JSON.stringify(payload))
    t.same(socket.foreign, [])
  }
})

t.test('an invalid URL token gets HTTP 401 in every mode', async t => {
  for (const auth of ['public', 'handshake'] as const) {
    const { url } = await build(t, { graphql: { auth, schema } })
    t.equal((await refusedWith(url('/graphql?access_token=bad'))).status, 401, auth)
  }
})

t.test('without graphql-transport-ws the socket closes 4406; offered among others, it is chosen', async t => {
  const { app, url } = await build(t, { graphql: { schema }, rest: { auth: 'public' } })
  for (const protocols of [[], ['graphql-ws'], ['chat', 'graphql-ws']]) {
    const socket = await raw(url('/graphql'), protocols)
    t.same(await closedWith(socket), { code: 4406, reason: 'Subprotocol not acceptable' }, protocols.join() || 'none')
    t.same(socket.foreign, [])
  }
  const token = app.realtime.jwt.sign({ id: 'u1' })
  const socket = await raw(url('/graphql'), ['graphql-ws', protocol])
  t.equal(socket.client.ws.protocol, protocol)
  socket.client.send({ type: 'connection_init', payload: { access_token: token } })
  t.same(await socket.client.next(), { type: 'connection_ack' })
  await socket.client.close()
  const json = await connect(url('/websocket'), { protocols: ['chat', protocol] })
  t.equal(json.ws.protocol, 'chat', 'other routes keep ws\'s choice: the first offered')
  await json.close()
})

t.test("an app's own @fastify/websocket: its handleProtocols is its routes' alone, and the payload limit holds", async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyWebsocket, { options: { handleProtocols: (protocols: Set<string>) => [...protocols].at(-1)! } })
  await app.register(realtime, { env: { WEBSOCKETS_MAX_PAYLOAD: '1024' }, secret, rest: { auth: 'public' }, graphql: { auth: 'public', schema } })
  app.get('/chat', { websocket: true }, () => {})
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  const url = (path: string) => `ws://127.0.0.1:${port}${path}`
  const chat = await connect(url('/chat'), { protocols: [protocol, 'chat'] })
  t.equal(chat.ws.protocol, 'chat', "the app's choice on the app's route")
  await chat.close()
  const json = await connect(url('/websocket'), { protocols: ['chat', protocol] })
  t.equal(json.ws.protocol, 'chat', "ws's own on the plugin's: the first offered")
  await json.close()
  const socket = await raw(url('/graphql'), [protocol, 'chat'])
  t.equal(socket.client.ws.protocol, protocol)
  socket.client.send({ type: 'connection_init' })
  t.same(await socket.client.next(), { type: 'connection_ack' })
  socket.client.send({ id: '1', type: 'subscribe', payload: { query: `{ me { id } } # ${'x'.repeat(2048)}` } })
  t.equal((await closedWith(socket)).code, 1009)
})

/**
 * Subscribes to ticks, calls `expire` at the first one, and resolves once they run again on a new socket, after
 * `closes` recorded a close.
 */
function ticksCarryOnAfterAClose (client: GqlClient, closes: number[], expire: () => void): Promise<void> {
  client.on('closed', (event) => closes.push((event as { code: number }).code))
  return new Promise<void>((resolve, reject) => {
    client.subscribe<{ ticks: number }>({ query: 'subscription { ticks(every: 20) }' }, {
      next: (result) => {
        if (closes.length === 0 && result.data!.ticks === 1) expire()
        // Ticks start again at 1 on the new socket: two of them after a close show it carried on.
        if (closes.length > 0 && result.data!.ticks === 2) resolve()
      },
      error: reject,
      complete: () => reject(new Error('completed'))
    })
  })
}

t.test('a ticks subscription is closed with 4403 at the token\'s expiry', async t => {
  const clock = stoppedDate(t)
  const { app, url } = await build(t, { graphql: { schema } })
  const { token, exp } = shortToken(app, 'u1')
  const client = gqlClient(t, url('/graphql'), { connectionParams: { access_token: token } })
  const received: number[] = []
  const ended = await new Promise<unknown>(resolve => {
    client.subscribe<{ ticks: number }>({ query: 'subscription { ticks(every: 20) }' }, {
      next: (result) => {
        received.push(result.data!.ticks)
        if (received.length === 2) clock.tick(20) // the token's exp
      },
      error: resolve,
      complete: () => resolve('complete')
    })
  })
  const { code, reason } = ended as { code: number, reason: string }
  t.same({ code, reason }, { code: 4403, reason: 'Forbidden' })
  t.ok(Date.now() >= exp * 1000, 'not before exp')
  t.ok(received.length >= 2, 'it was ticking')
  t.same(received, received.map((_, i) => i + 1), 'ticks 1, 2, 3, ... until then')
  await noGraphqlSocketLeft(app)
})

t.test('a client whose connectionParams is a function reconnects with a fresh token after the 4403 and carries on', async t => {
  const clock = stoppedDate(t)
  const { app, url } = await build(t, { graphql: { schema } })
  const tokens = [shortToken(app, 'u1').token, app.realtime.jwt.sign({ id: 'u1', role: 'renewed' })]
  let calls = 0
  const closes: number[] = []
  const client = gqlClient(t, url('/graphql'), {
    connectionParams: async () => ({ access_token: tokens[calls++] }),
    retryAttempts: 3,
    shouldRetry: () => true,
    retryWait: async () => {}
  })
  await ticksCarryOnAfterAClose(client, closes, () => clock.tick(20))
  t.same(closes, [4403])
  t.equal(calls, 2, 'a fresh token for the second socket')
  t.match(await execute(client, meQuery), { data: { me: { id: 'u1', role: 'renewed' } } })
})

t.test('strict: a client whose url is a function reconnects with a fresh URL token after the 4403', async t => {
  const clock = stoppedDate(t)
  const { app, url } = await build(t, { graphql: { auth: 'strict', schema } })
  const tokens = [shortToken(app, 'u1').token, app.realtime.jwt.sign({ id: 'u1', role: 'renewed' })]
  let calls = 0
  const closes: number[] = []
  const client = gqlClient(t, url('/graphql'), {
    url: () => url(`/graphql?access_token=${tokens[calls++]}`),
    retryAttempts: 3,
    retryWait: async () => {}
  })
  await ticksCarryOnAfterAClose(client, closes, () => clock.tick(20))
  t.same(closes, [4403])
  t.match(await execute(client, meQuery), { data: { me: { id: 'u1', role: 'renewed' } } })
})

t.test('a client with shouldRetry: () => true comes back after HTTP 503 at the upgrade once a place frees', { timeout: 90_000 }, async t => {
  const { app, url } = await build(t, { graphql: { schema, connLimit: 1 } })
  const holder = await raw(url('/graphql'))
  const errors: string[] = []
  // graphql-ws's default retryAttempts and backoff; by default it retries closes only, and a refused upgrade is an error.
  const client = gqlClient(t, url('/graphql'), {
    connectionParams: { access_token: app.realtime.jwt.sign({ id: 'u1' }) },
    retryAttempts: 5,
    shouldRetry: () => true
  })
  const refused = new Promise<void>(resolve => client.on('error', (event) => {
    errors.push((event as { message: string }).message)
    resolve()
  }))
  const ticked = new Promise<number>((resolve, reject) => {
    client.subscribe<{ ticks: number }>({ query: 'subscription { ticks(every: 20) }' }, {
      next: (result) => resolve(result.data!.ticks),
      error: reject,
      complete: () => reject(new Error('completed'))
    })
  })
  await within(refused, 'the upgrade was refused')
  t.same(errors, ['Unexpected server response: 503'])
  await holder.client.close()
  t.equal(await within(ticked, 'the subscription started on a retry'), 1)
})

t.test('logout over HTTP closes the socket of its session with 4403', async t => {
  const { app, url } = await build(t, { graphql: { schema }, authRoutes: true, users: [admin] })
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  const { access_token: token, refresh_token: refreshToken } = login.json().data
  const client = gqlClient(t, url('/graphql'), { connectionParams: { access_token: token } })
  const connected = new Promise(resolve => client.on('connected', resolve))
  const ended = new Promise<unknown>(resolve => {
    client.subscribe({ query: 'subscription { ticks }' }, { next: () => {}, error: resolve, complete: () => resolve('complete') })
  })
  await connected
  t.match(graphqlSockets(app).map(connection => connection.accountability), [{ user: String, admin: true, session: String }])
  const logout = await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: refreshToken } })
  t.equal(logout.statusCode, 204)
  const { code, reason } = await ended as { code: number, reason: string }
  t.same({ code, reason }, { code: 4403, reason: 'Forbidden' })
  const again = gqlClient(t, url('/graphql'), { connectionParams: { access_token: token } })
  t.same(await failure(again, meQuery), { code: 4403, reason: 'Forbidden' }, 'the revoked session\'s token is refused')
})

t.test('GraphQL sockets are in the registry; JSON messages never reach them', async t => {
  const { app, url } = await build(t, { graphql: { schema, auth: 'public' }, rest: { auth: 'public' } })
  const socket = await raw(url('/graphql'))
  socket.client.send({ type: 'connection_init', payload: { access_token: app.realtime.jwt.sign({ id: 'u1' }) } })
  await socket.client.next()
  const json = await connect(url('/websocket'))
  const [connection] = app.realtime.connections({ endpoint: 'graphql' })
  t.match(connection, { endpoint: 'graphql', accountability: { user: 'u1' } })
  t.equal(app.realtime.send({}, { type: 'news' }), 1, 'only the JSON socket counts')
  t.same(await json.next(), { type: 'news' })
  t.throws(() => connection.send({ type: 'news' }), /only graphql-transport-ws frames/)
  t.equal(app.realtime.close({ endpoint: 'graphql' }, 4000, 'bye'), 1)
  t.same(await closedWith(socket), { code: 4000, reason: 'bye' })
  t.same(socket.foreign, [])
  await json.close()
})

t.test('every operation gets the accountability in its context, with the context extension', async t => {
  const contextual = new GraphQLSchema({
    query: new GraphQLObjectType({
      name: 'Query',
      fields: {
        context: {
          type: GraphQLString,
          resolve: (_root, _args, context: GraphqlContext) => JSON.stringify({ user: context.accountability.user, tenant: context.tenant })
        }
      }
    })
  })
  const seen: string[] = []
  const { app, url } = await build(t, {
    graphql: {
      schema: contextual,
      auth: 'public',
      context: async (accountability, connection) => {
        seen.push(`${connection.endpoint}:${accountability.user}`)
        return { tenant: 'acme', accountability: { user: 'forged' } }
      }
    }
  })
  const client = gqlClient(t, url('/graphql'), { connectionParams: { access_token: app.realtime.jwt.sign({ id: 'u1' }) } })
  t.same(await execute(client, '{ context }'), { data: { context: '{"user":"u1","tenant":"acme"}' } }, 'the extension cannot replace the accountability')
  t.same(seen, ['graphql:u1'])
})

t.test('the schema can be a function of the accountability', async t => {
  const publicSchema = buildSchema('type Query { hello: String }')
  const adminSchema = buildSchema('type Query { hello: String, secret: String }')
  const { app, url } = await build(t, {
    graphql: { auth: 'public', schema: async (accountability) => accountability.admin ? adminSchema : publicSchema }
  })
  const anonymous = gqlClient(t, url('/graphql'))
  t.match(await failure(anonymous, '{ secret }'), /Cannot query field "secret" on type "Query"/)
  const adminToken = app.realtime.jwt.sign({ id: 'a', admin_access: true })
  const administrator = gqlClient(t, url('/graphql'), { connectionParams: { access_token: adminToken } })
  t.same(await execute(administrator, '{ secret }'), { data: { secret: null } })
})

t.test('a schema or context function that throws closes the socket 4500 and is logged', async t => {
  const lines: string[] = []
  const logger = { level: 'error', stream: { write: (line: string) => lines.push(line) } }
  const failing = {
    schema: () => { throw new Error('no schema today') },
    context: () => { throw new Error('no context today') }
  }
  for (const [option, thrower] of Object.entries(failing)) {
    const options: RealtimeOptions = { graphql: { auth: 'public', schema, [option]: thrower } }
    const { url } = await build(t, options, { logger })
    t.same(await failure(gqlClient(t, url('/graphql')), meQuery), { code: 4500, reason: 'Internal server error' }, option)
  }
  t.match(lines.map(line => JSON.parse(line)), [
    { msg: 'graphql operation failed', err: { message: 'no schema today' }, reqId: String },
    { msg: 'graphql operation failed', err: { message: 'no context today' }, reqId: String }
  ])
})

t.test('a client\'s protocol mistakes close as the client\'s: 4400 for a server\'s message, 4409 for a long id in use; nothing logged', async t => {
  const lines: string[] = []
  const { url } = await build(t, { graphql: { auth: 'public', schema: referenceSchema(() => null) } },
    { logger: { level: 'warn', stream: { write: (line: string) => lines.push(line) } } })
  async function closedAfter (frames: object[]) {
    const client = await connect(url('/graphql'), { protocols: 'graphql-transport-ws' })
    client.send({ type: 'connection_init' })
    t.same(await client.next(), { type: 'connection_ack' })
    for (const frame of frames) client.send(frame)
    return client.closed
  }
  const invalid = { code: 4400, reason: 'Invalid message received' }
  t.same(await closedAfter([{ id: '1', type: 'next', payload: {} }]), invalid, 'next')
  t.same(await closedAfter([{ type: 'connection_ack' }]), invalid, 'connection_ack')
  t.same(await closedAfter([{ id: '1', type: 'error', payload: [{ message: 'x' }] }]), invalid, 'error')
  const subscribe = (id: string) => ({ id, type: 'subscribe', payload: { query: 'subscription { ticks(every: 100000) }' } })
  for (const id of ['x'.repeat(130), 'é'.repeat(70)]) {
    const closed = await closedAfter([subscribe(id), subscribe(id)])
    t.equal(closed.code, 4409, `an id of ${id.length} characters in use`)
    t.ok(Buffer.byteLength(closed.reason) <= 123 && closed.reason.startsWith(`Subscriber for ${id.slice(0, 20)}`), closed.reason)
  }
  t.same(lines, [], 'nothing logged at warn or above')
})

/** A raw socket, its connection acknowledged (with `params`), running `subscription { <field> }` under id 1. */
async function subscribed (url: string, field: string, params?: object): Promise<RawSocket> {
  const socket = await raw(url)
  socket.client.send(params ? { type: 'connection_init', payload: params } : { type: 'connection_init' })
  await socket.client.next()
  socket.client.send({ id: '1', type: 'subscribe', payload: { query: `subscription { ${field} }` } })
  socket.client.send({ type: 'ping' })
  await socket.client.next() // the pong: the subscription is running by now
  return socket
}

t.test('a subscription that fails to end is logged, and its socket closes all the same', async t => {
  const lines: string[] = []
  const stubborn = new GraphQLSchema({
    query: new GraphQLObjectType({ name: 'Query', fields: { hello: { type: GraphQLString } } }),
    subscription: new GraphQLObjectType({
      name: 'Subscription',
      fields: {
        stuck: {
          type: GraphQLString,
          subscribe: () => ({
            next: () => new Promise<IteratorResult<string>>(() => {}),
            return: () => Promise.reject(new Error('cannot stop')),
            [Symbol.asyncIterator] () { return this }
          })
        }
      }
    })
  })
  const { app, url } = await build(t, { graphql: { auth: 'public', schema: stubborn } }, { logger: { level: 'error', stream: { write: (line: string) => lines.push(line) } } })
  const socket = await subscribed(url('/graphql'), 'stuck')
  await socket.client.close()
  await noGraphqlSocketLeft(app)
  while (lines.length === 0) await new Promise(resolve => setTimeout(resolve, 5))
  t.match(JSON.parse(lines[0]), { msg: 'a graphql subscription failed to end', err: { message: 'cannot stop' }, reqId: String }, 'on the request\'s logger')
})

/** A schema whose `subscription { waiting }` never gives a result, and resolves `ending` once asked to end. */
function watchedSubscription () {
  let ended!: () => void
  const ending = new Promise<void>(resolve => { ended = resolve })
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({ name: 'Query', fields: { hello: { type: GraphQLString } } }),
    subscription: new GraphQLObjectType({
      name: 'Subscription',
      fields: {
        waiting: {
          type: GraphQLString,
          subscribe: () => ({
            next: () => new Promise<IteratorResult<string>>(() => {}),
            return: async () => { ended(); return { done: true, value: undefined } },
            [Symbol.asyncIterator] () { return this }
          })
        }
      }
    })
  })
  return { schema, ending }
}

t.test('a revoked socket\'s subscriptions end at once, though its client never answers the close', async t => {
  const { schema: watched, ending } = watchedSubscription()
  const { app, url } = await build(t, { graphql: { auth: 'handshake', schema: watched } })
  const closes: number[] = []
  app.realtime.on('close', ({ code }) => { closes.push(code) })
  const socket = await subscribed(url('/graphql'), 'waiting', { access_token: app.realtime.jwt.sign({ id: 'u' }) })
  // The client reads nothing more: it never sees the close, nor answers it.
  ;(socket.client.ws as unknown as { _socket: { pause (): void } })._socket.pause()
  await app.realtime.revokeUser('u')
  await ending
  t.same(closes, [], 'ended before the socket closed: the close is still waiting for the client')
  socket.client.ws.terminate()
})

for (const [what, trigger, code] of [
  ['a second connection_init', { type: 'connection_init' }, 4429],
  ['a subscribe under a running id', { id: '1', type: 'subscribe', payload: { query: 'subscription { waiting }' } }, 4409],
  ['a message graphql-ws cannot read', { type: 'nonsense' }, 4400]
] as const) {
  t.test(`graphql-ws's own close for ${what} (${code}) ends the socket's subscriptions at once, though its client never answers`, async t => {
    const { schema: watched, ending } = watchedSubscription()
    const { url } = await build(t, { graphql: { auth: 'public', schema: watched } })
    const socket = await subscribed(url('/graphql'), 'waiting')
    // The client reads nothing more: it never sees the close, nor answers it.
    ;(socket.client.ws as unknown as { _socket: { pause (): void } })._socket.pause()
    socket.client.send(trigger)
    await within(ending, 'the subscription\'s end')
    t.pass('ended')
    socket.client.ws.terminate()
  })
}

for (const step of ['schema', 'context'] as const) {
  t.test(`an operation whose ${step} function outlasts its socket's credential never runs`, async t => {
    let release: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    const ran: string[] = []
    const guarded = new GraphQLSchema({
      query: new GraphQLObjectType({ name: 'Query', fields: { hello: { type: GraphQLString } } }),
      mutation: new GraphQLObjectType({
        name: 'Mutation',
        fields: { spend: { type: GraphQLString, resolve: (_, __, { accountability }: GraphqlContext) => { ran.push(String(accountability.user)); return 'spent' } } }
      })
    })
    const waits = async () => { await gate }
    const { app, url } = await build(t, {
      graphql: {
        auth: 'handshake',
        schema: step === 'schema' ? async () => { await waits(); return guarded } : guarded,
        context: step === 'context' ? async () => { await waits(); return {} } : undefined
      }
    })
    const socket = await raw(url('/graphql'))
    socket.client.send({ type: 'connection_init', payload: { access_token: app.realtime.jwt.sign({ id: 'u' }) } })
    await socket.client.next()
    socket.client.send({ id: '1', type: 'subscribe', payload: { query: 'mutation { spend }' } })
    socket.client.send({ type: 'ping' })
    t.same(await socket.client.next(), { type: 'pong' }) // the operation is waiting on the app's function by now
    await app.realtime.revokeUser('u')
    t.same(await closedWith(socket), { code: 4403, reason: 'Forbidden' })
    release!()
    await new Promise(setImmediate) // the operation's every step after the wait is a microtask
    t.same(ran, [], 'the mutation did not run as the revoked user')
    t.same(socket.foreign, [])
  })
}

t.test('@skip or @include at a subscription\'s root is refused for its id (graphql 16 threw from inside subscribe): no error logged, the socket stays', async t => {
  const logged: string[] = []
  const { url } = await build(t, { graphql: { auth: 'public', schema } }, { logger: { level: 'warn', stream: { write: (line: string) => { logged.push(line) } } } })
  const client = gqlClient(t, url('/graphql'))
  const refused = /must not use `@skip` or `@include` directives in the top level selection\./
  t.match(await failure(client, 'subscription { ticks(every: 20) @skip(if: true) }'), /^Anonymous Subscription must not use/)
  t.match(await failure(client, 'subscription S { ...F } fragment F on Subscription { ticks(every: 20) @include(if: false) }'), /^Subscription "S" must not use/)
  t.match(await failure(client, 'subscription { ... on Subscription { ticks(every: 20) @skip(if: false) } }'), refused, 'in an inline fragment at the root')
  t.match(await failure(client, 'subscription { ...F ...F } fragment F on Subscription { ticks(every: 20) @skip(if: true) }'), refused, 'a fragment spread twice')
  t.match(await failure(client, 'subscription { ...Missing }'), /Unknown fragment "Missing"/, 'an unknown fragment is graphql-js\'s to refuse')
  const ticked: number[] = []
  for await (const result of client.iterate({ query: 'subscription { ...F ...F } fragment F on Subscription { ticks(every: 5) }' })) {
    ticked.push((result.data as { ticks: number }).ticks)
    if (ticked.length === 2) break
  }
  t.same(ticked, [1, 2], 'a subscription without them runs')
  t.same(await execute(client, meQuery), { data: { me: null } }, 'the socket stays open')
  t.same(logged, [], 'nothing logged: the client\'s document, not the server\'s failure')
})

t.test('a document over the query token limit is refused without being parsed; the socket stays open', async t => {
  const { url } = await build(t, { graphql: { auth: 'public', schema, queryTokenLimit: 10 } })
  const client = gqlClient(t, url('/graphql'))
  // `{ me { id email role admin } }` is 9 tokens with <EOF>. (graphql 16 spells the error "more that".)
  t.same(await execute(client, meQuery), { data: { me: null } })
  t.match(await failure(client, '{ me { id email role admin } me2: me { id } }'), /Document contains more (than|that) 10 tokens\. Parsing aborted\./)
  t.match(await failure(client, '{ me { '), /Syntax Error/)
  t.same(await execute(client, meQuery), { data: { me: null } }, 'still serving')
})

t.test('GRAPHQL_QUERY_TOKEN_LIMIT and GRAPHQL_INTROSPECTION: defaults, environment, options', async t => {
  t.match((await resolveConfig({ env: {} })).graphql, { queryTokenLimit: 5000, introspection: true })
  t.match((await resolveConfig({ env: { GRAPHQL_QUERY_TOKEN_LIMIT: '20', GRAPHQL_INTROSPECTION: 'FALSE' } })).graphql,
    { queryTokenLimit: 20, introspection: false }, 'booleans are case-insensitive')
  t.match((await resolveConfig({ env: { GRAPHQL_QUERY_TOKEN_LIMIT: '20' }, graphql: { queryTokenLimit: 30, introspection: false } })).graphql,
    { queryTokenLimit: 30, introspection: false }, 'options win')
  t.same((await resolveConfig({ env: {}, graphql: false })).endpoints.graphql.enabled, false)
  await t.rejects(resolveConfig({ env: {}, graphql: { queryTokenLimit: 0 } }),
    { code: 'FST_REALTIME_INVALID_CONFIG', message: /GRAPHQL_QUERY_TOKEN_LIMIT \(option graphql\.queryTokenLimit\) must be >= 1/ })

  const { url } = await build(t, { env: { GRAPHQL_QUERY_TOKEN_LIMIT: '5' }, graphql: { auth: 'public', schema } })
  t.match(await failure(gqlClient(t, url('/graphql')), meQuery), /Document contains more (than|that) 5 tokens/)
})

t.test('introspection off: __schema and __type are refused, __typename still answers', async t => {
  const introspect = '{ __schema { queryType { name } } }'
  const on = await build(t, { graphql: { auth: 'public', schema } })
  t.same(await execute(gqlClient(t, on.url('/graphql')), introspect), { data: { __schema: { queryType: { name: 'Query' } } } })

  for (const off of [{ graphql: { auth: 'public' as const, schema, introspection: false } }, { env: { GRAPHQL_INTROSPECTION: 'false' }, graphql: { auth: 'public' as const, schema } }]) {
    const { url } = await build(t, off)
    const client = gqlClient(t, url('/graphql'))
    t.match(await failure(client, introspect), /GraphQL introspection has been disabled/)
    t.match(await failure(client, '{ __type(name: "Me") { name } }'), /GraphQL introspection has been disabled/)
    t.same(await execute(client, '{ __typename }'), { data: { __typename: 'Query' } })
  }
})

t.test('mounted only with a schema and while enabled; the path is configurable', async t => {
  const unmounted: [string, RealtimeOptions][] = [
    ['no graphql option', {}],
    ['no schema', { graphql: { auth: 'public' } }],
    ['graphql: false', { graphql: false }],
    ['enabled: false', { graphql: { schema, enabled: false } }],
    ['WEBSOCKETS_GRAPHQL_ENABLED=false', { env: { WEBSOCKETS_GRAPHQL_ENABLED: 'false' }, graphql: { schema } }],
    ['WEBSOCKETS_GRAPHQL_ENABLED=true without a schema', { env: { WEBSOCKETS_GRAPHQL_ENABLED: 'true' } }]
  ]
  for (const [label, options] of unmounted) {
    const { app, url } = await build(t, options)
    t.notOk(app.hasRoute({ method: 'GET', url: '/graphql' }), label)
    t.equal((await refusedWith(url('/graphql'))).status, 404, `${label}: 404`)
  }
  const { url } = await build(t, { env: { WEBSOCKETS_GRAPHQL_PATH: '/api/graphql', WEBSOCKETS_GRAPHQL_AUTH: 'public' }, graphql: { schema } })
  t.same(await execute(gqlClient(t, url('/api/graphql')), meQuery), { data: { me: null } })
})

t.test('a schema that is not a GraphQLSchema fails boot', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => {
    await app.register(realtime, { env: {}, secret, graphql: { schema: {} as GraphQLSchema } })
    await app.ready()
  }, { code: 'FST_REALTIME_INVALID_CONFIG', message: /graphql\.schema must be a GraphQLSchema or a function/ })
})

t.test('frames that arrive behind the server\'s close are not run', async t => {
  let operations = 0
  const clock = stoppedDate(t)
  const { app, url } = await build(t, { graphql: { schema, context: () => ({ operation: ++operations }) } })
  const socket = await raw(url('/graphql'))
  socket.client.send({ type: 'connection_init', payload: { access_token: shortToken(app, 'u1').token } })
  t.same(await socket.client.next(), { type: 'connection_ack' })
  // The client stops reading, so it sends on while the server's close frame waits unread.
  socket.client.ws.pause()
  clock.tick(20) // the token's exp: the server closes
  const [server] = graphqlSockets(app)
  while (server.socket.readyState === server.socket.OPEN) await new Promise(resolve => setTimeout(resolve, 10))
  socket.client.send({ id: '1', type: 'subscribe', payload: { query: meQuery } })
  socket.client.ws.resume()
  t.same(await closedWith(socket), { code: 4403, reason: 'Forbidden' })
  t.equal(operations, 0, 'the subscribe behind the close never ran (it would have run as nobody)')
  t.same(socket.foreign, [])
})

t.test('closed GraphQL sockets leave no timer behind: auth wait, expiry, running subscriptions', async t => {
  // Counted as a difference, not against a baseline: timers left by earlier tests may end meanwhile.
  const timers = () => process.getActiveResourcesInfo().filter(kind => kind === 'Timeout').length
  const { app, url } = await build(t, { graphql: { schema }, heartbeat: { enabled: false } })
  const sockets: RawSocket[] = []
  for (let i = 0; i < 4; i++) sockets.push(await raw(url('/graphql'))) // handshake: the auth window
  for (let i = 0; i < 4; i++) {
    const socket = await raw(url('/graphql'))
    const exp = Math.floor(Date.now() / 1000) + 600
    socket.client.send({ type: 'connection_init', payload: { access_token: app.realtime.jwt.sign({ id: `u${i}`, exp }) } })
    await socket.client.next() // authenticated: the expiry clock
    socket.client.send({ id: 'ticks', type: 'subscribe', payload: { query: 'subscription { ticks(every: 60000) }' } })
    socket.client.send({ type: 'ping' })
    t.same(await socket.client.next(), { type: 'pong' }) // the subscription, and its tick timer, started before
    sockets.push(socket)
  }
  const open = timers()
  const held = graphqlSockets(app)
  t.equal(held.length, 8)

  await Promise.all(sockets.slice(0, 2).concat(sockets.slice(4, 6)).map(socket => socket.client.close()))
  app.realtime.close({ endpoint: 'graphql' })
  await Promise.all(sockets.map(socket => socket.client.closed))
  await letGo(held)
  // One or two expiry timers (the tokens' exp seconds), four tick timers; the auth windows' timer is unref'd.
  t.ok(open - timers() >= 5, `the timers of the 8 sockets are gone (${open} -> ${timers()})`)
  t.same(sockets.flatMap(socket => socket.foreign), [])
})

t.test('the reference server: me for its users, null for the public, ticks 1, 2, 3 until completed', async t => {
  const { app } = await buildReferenceServer({ ADMIN_EMAIL: admin.email, ADMIN_PASSWORD: admin.password, SECRET: secret, LOG_LEVEL: 'silent', WEBSOCKETS_GRAPHQL_AUTH: 'public' })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  const url = `ws://127.0.0.1:${port}/graphql`
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  const token = login.json().data.access_token
  const administrator = gqlClient(t, url, { connectionParams: { access_token: token } })
  t.match(await execute(administrator, meQuery), { data: { me: { id: String, email: admin.email, role: 'administrator', admin: true } } })
  t.same(await execute(gqlClient(t, url), meQuery), { data: { me: null } })

  const received: number[] = []
  for await (const result of administrator.iterate<{ ticks: number }>({ query: 'subscription { ticks(every: 20) }' })) {
    received.push(result.data!.ticks)
    if (received.length === 3) break // completes the subscription: the server returns its iterator
  }
  t.same(received, [1, 2, 3])
  for (const every of [0, null]) {
    const result = await execute(administrator, `subscription { ticks(every: ${every}) }`)
    t.match(result, { errors: [{ message: '"every" must be at least 1 (milliseconds).' }] }, `every: ${every}`)
  }
})

t.test('ticks: return ends the iterator at once, before or while a tick is awaited', async t => {
  const early = ticks(10)
  t.same(await early.return!(), { value: undefined, done: true })
  t.same(await early.next(), { value: undefined, done: true })
  const waiting = ticks(60_000)
  const pending = waiting.next()
  await waiting.return!()
  t.same(await pending, { value: undefined, done: true }, 'the awaited tick ends without its minute')
  const ticking = ticks(5)
  t.same([await ticking.next(), await ticking.next()], [{ value: 1, done: false }, { value: 2, done: false }])
  await ticking.return!()
})
