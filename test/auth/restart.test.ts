// A restart without Redis (PROTOCOL.md section 4): the memory revocation feed dies with its process, so a process takes
// an access token with a session from before its start only while the session store still has that session. A
// restart here closes the app and builds a new one with the same secret; the clients are real sockets, the real
// graphql-ws client and the HTTP routes (login, logout, and the app's own route through `trusted`).
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import WebSocket from 'ws'
import { createClient } from 'graphql-ws'
import realtime, { fromFastifySessionStore, MemorySessionStore, type CallbackSessionStore, type RealtimeOptions } from '../../lib/index.js'
import { referenceSchema, type Me } from '../../example/schema.js'
import { admin, connect, directoryOf, secret, whoami } from '../helpers.js'
import { RedisServer } from '../redis-server.js'

const schema = referenceSchema(accountability => accountability.user === null
  ? null
  : { id: accountability.user, email: 'admin@example.com', role: accountability.role, admin: accountability.admin } satisfies Me)

interface Served {
  app: FastifyInstance
  http: (path: string) => string
  ws: (path: string) => string
}

/** One run of the process: the plugin with its HTTP routes, the app's @fastify/jwt asking `trusted`, and a route of its own. */
async function serve (t: Test, options: RealtimeOptions = {}): Promise<Served> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, { secret, trusted: (request, claims) => app.realtime.trusted(request, claims) })
  await app.register(realtime, {
    env: {}, authRoutes: true, users: await directoryOf([admin]), rest: { handlers: { whoami } }, graphql: { schema }, ...options
  })
  app.get('/me', async (request) => {
    await request.jwtVerify()
    return request.user
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  return { app, http: (path) => `http://127.0.0.1:${port}${path}`, ws: (path) => `ws://127.0.0.1:${port}${path}` }
}

const post = (url: string, body: object) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

async function login (t: Test, served: Served): Promise<{ access_token: string, refresh_token: string }> {
  const response = await post(served.http('/auth/login'), { email: admin.email, password: admin.password })
  t.equal(response.status, 200, 'logged in')
  return (await response.json() as { data: { access_token: string, refresh_token: string } }).data
}

async function logout (t: Test, served: Served, refreshToken: string): Promise<void> {
  t.equal((await post(served.http('/auth/logout'), { refresh_token: refreshToken })).status, 204, 'logged out')
}

/** What the token gets everywhere it is shown: the upgrade, the handshake's auth message, GraphQL, the app's route. */
async function everywhere (served: Served, token: string) {
  let upgrade: number | string
  try {
    const client = await connect(served.ws(`/websocket?access_token=${token}`))
    client.send({ type: 'whoami', uid: 1 })
    upgrade = (await client.next() as { user: string }).user
    await client.close()
  } catch (err) {
    upgrade = (err as Error).message
  }
  const handshake = await connect(served.ws('/websocket'))
  handshake.send({ type: 'auth', access_token: token })
  const auth = await handshake.next() as { status: string, error?: { code: string } }
  handshake.ws.close()
  const graphql = await new Promise<string>((resolve) => {
    const client = createClient({
      url: served.ws('/graphql'),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      connectionParams: { access_token: token },
      on: { closed: (event) => resolve(`closed ${(event as CloseEvent).code}`) }
    })
    client.subscribe<{ me: Me }>({ query: '{ me { id } }' }, {
      next: (result) => resolve(result.data!.me.id),
      error: () => {},
      complete: () => client.dispose()
    })
  })
  const route = await fetch(served.http('/me'), { headers: { authorization: `Bearer ${token}` } })
  return { upgrade, auth: auth.error?.code ?? auth.status, graphql, route: route.status }
}

const refused = { upgrade: 'HTTP 401', auth: 'AUTH_FAILED', graphql: 'closed 4403', route: 401 }

/** What a live session's token gets: the admin, everywhere. */
function accepted (user: string) {
  return { upgrade: user, auth: 'ok', graphql: user, route: 200 }
}

const userOf = (served: Served, token: string) => served.app.realtime.jwt.decode<{ id: string }>(token)!.id

/** A @fastify/session store as its simplest: a Map that outlives the processes the test starts, as a database does. */
function persistentStore (): CallbackSessionStore {
  const records = new Map<string, string>()
  return {
    set (id, session, callback) { records.set(id, JSON.stringify(session)); callback() },
    get (id, callback) { const record = records.get(id); callback(null, record === undefined ? null : JSON.parse(record)) },
    destroy (id, callback) { records.delete(id); callback() }
  }
}

t.test('memory stores: a token logged out before a restart is refused after it, on every endpoint and route', async t => {
  const before = await serve(t)
  const tokens = await login(t, before)
  const user = userOf(before, tokens.access_token)
  t.same(await everywhere(before, tokens.access_token), accepted(user), 'before the logout')
  await logout(t, before, tokens.refresh_token)
  t.same(await everywhere(before, tokens.access_token), refused, 'after it')
  await before.app.close()

  const after = await serve(t)
  t.same(await everywhere(after, tokens.access_token), refused, 'after the restart')
})

t.test('memory stores: a token of a user revoked before a restart is refused after it; one without a session is not', async t => {
  const before = await serve(t)
  const tokens = await login(t, before)
  const user = userOf(before, tokens.access_token)
  const sessionless = before.app.realtime.signAccessToken({ user, role: 'administrator', admin: true }).access_token
  await before.app.realtime.revokeUser(user)
  t.same(await everywhere(before, sessionless), refused, 'before the restart, both are refused')
  await before.app.close()

  const after = await serve(t)
  t.same(await everywhere(after, tokens.access_token), refused, 'its sessions are gone')
  // The limit the README states: the user's revocation lived in memory, and no store holds a session to ask about.
  t.same(await everywhere(after, sessionless), accepted(user), 'a token without a session: accepted again until its exp')
})

t.test('memory stores: a restart forgets every session, and their access tokens with them', async t => {
  const before = await serve(t)
  const tokens = await login(t, before)
  await before.app.close()

  const after = await serve(t)
  t.same(await everywhere(after, tokens.access_token), refused, 'its session is gone: the client logs in again')
  t.equal((await post(after.http('/auth/refresh'), { refresh_token: tokens.refresh_token })).status, 401, 'as its refresh token says')
  const again = await login(t, after)
  t.same(await everywhere(after, again.access_token), accepted(userOf(after, again.access_token)), 'a new login works')
})

t.test('a provider\'s token carrying a `sid` of its own (Keycloak signs one) outlives a restart: no store here holds the provider\'s sessions', async t => {
  const before = await serve(t)
  const token = before.app.jwt.sign({ sub: 'kc-user', iss: 'https://id.example.com/realms/app', sid: 'a-keycloak-session' })
  t.same(await everywhere(before, token), accepted('kc-user'), 'before the restart')
  await before.app.close()

  const after = await serve(t)
  t.same(await everywhere(after, token), accepted('kc-user'), 'after it, on every endpoint and route')
})

t.test('a session store that outlives the process: a live session\'s token works after a restart, a logged-out or revoked one does not', async t => {
  const store = persistentStore()
  const before = await serve(t, { sessionStore: fromFastifySessionStore(store) })
  const live = await login(t, before)
  const ended = await login(t, before)
  const user = userOf(before, live.access_token)
  await logout(t, before, ended.refresh_token)
  await before.app.close()

  const after = await serve(t, { sessionStore: fromFastifySessionStore(store) })
  t.same(await everywhere(after, live.access_token), accepted(user), 'the live session\'s token')
  t.same(await everywhere(after, ended.access_token), refused, 'the logged-out one\'s')

  await after.app.realtime.revokeUser(user)
  await after.app.close()
  const third = await serve(t, { sessionStore: fromFastifySessionStore(store) })
  t.same(await everywhere(third, live.access_token), refused, 'revoked, then restarted again')
})

t.test('Redis: unchanged, the revocation set decides and the session store is not asked', async t => {
  const redis = await RedisServer.start(t)
  // Sessions in each process's memory, revocations in Redis: a restarted process has none of the sessions, and still
  // takes the live one's token, as the set does not name it.
  const before = await serve(t, { redis: redis.url, sessionStore: new MemorySessionStore() })
  const live = await login(t, before)
  const ended = await login(t, before)
  const user = userOf(before, live.access_token)
  await logout(t, before, ended.refresh_token)
  await before.app.close()

  const after = await serve(t, { redis: redis.url, sessionStore: new MemorySessionStore() })
  t.same(await everywhere(after, live.access_token), accepted(user), 'the live session\'s token')
  t.same(await everywhere(after, ended.access_token), refused, 'the logged-out one\'s')
})
