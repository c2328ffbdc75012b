// The app's `onAuthenticate` check at every authentication (its event, its verdicts: refusal, context, a throw), and
// what a handler gets of its socket besides the accountability: the check's context, the upgrade request, and a state
// of its own. Real sockets on every endpoint, and the HTTP auth routes.
import t, { type Test } from 'tap'
import { GraphQLObjectType, GraphQLSchema, GraphQLString } from 'graphql'
import type { FastifyInstance } from 'fastify'
import {
  MemorySessionStore, type AuthenticateEvent, type CredentialSource, type GraphqlContext, type MessageHandlers,
  type RefreshSession, type TokenLookup
} from '../../lib/index.js'
import { newRefreshToken, newSessionId } from '../../lib/auth/refresh-tokens.js'
import { admin, build, connect, fakeClock, refusedWith, within, type Client } from '../helpers.js'
import { RedisServer } from '../redis-server.js'

const protocol = 'graphql-transport-ws'

const handshakeFailed = (uid?: string) => ({
  type: 'auth',
  status: 'error',
  error: { code: 'AUTH_FAILED', message: 'Authentication handshake failed.' },
  ...(uid === undefined ? {} : { uid })
})
const authFailed = (uid: string) => ({ type: 'auth', status: 'error', error: { code: 'AUTH_FAILED', message: 'Authentication failed.' }, uid })
const unavailable = (uid?: string) => ({
  type: 'auth',
  status: 'error',
  error: { code: 'SERVICE_UNAVAILABLE', message: 'Service unavailable.' },
  ...(uid === undefined ? {} : { uid })
})
const tokenExpired = { type: 'auth', status: 'error', error: { code: 'TOKEN_EXPIRED', message: 'Token expired.' } }
const sessionRevoked = { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } }
const invalidCredentials = { errors: [{ message: 'Invalid user credentials.', extensions: { code: 'INVALID_CREDENTIALS' } }] }
const authFailedBody = JSON.stringify({ errors: [{ message: 'Authentication failed.', extensions: { code: 'AUTH_FAILED' } }] })
const unavailableBody = JSON.stringify({ errors: [{ message: 'Service unavailable.', extensions: { code: 'SERVICE_UNAVAILABLE' } }] })

const next = (client: Client, what: string) => within(client.next(), what)
const closed = (client: Client, what: string) => within(client.closed, what)

/** The JSON endpoint's handlers: the socket's user, context, per-socket count and upgrade header, as the app sees them. */
const handlers: MessageHandlers = {
  whoami: (message, connection) => connection.send({ type: 'whoami', uid: message.uid, user: connection.accountability.user }),
  context: (message, connection) => connection.send({ type: 'context', uid: message.uid, context: connection.context }),
  count: (message, connection) => {
    const { state } = connection
    state.count = ((state.count as number | undefined) ?? 0) + 1
    connection.send({ type: 'count', uid: message.uid, count: state.count, same: connection.state === state })
  },
  header: (message, connection) => {
    connection.request.log.info({ custom: connection.request.headers['x-custom'] }, 'read by a handler')
    connection.send({ type: 'header', uid: message.uid, value: connection.request.headers['x-custom'] ?? null })
  }
}

/** `{ context }` answers the operation's whole contextValue, as JSON. */
const contextSchema = new GraphQLSchema({
  query: new GraphQLObjectType({
    name: 'Query',
    fields: {
      context: { type: GraphQLString, resolve: (_root, _args, context: GraphqlContext) => JSON.stringify(context) }
    }
  })
})

/** A raw socket on /graphql, offering graphql-transport-ws. */
function graphqlSocket (url: string, headers: Record<string, string> = {}): Promise<Client> {
  return connect(url, { protocols: protocol, headers })
}

/** connection_init (with a token, when given), answered by connection_ack. */
async function init (t: Test, socket: Client, accessToken?: string): Promise<void> {
  socket.send({ type: 'connection_init', payload: accessToken === undefined ? {} : { access_token: accessToken } })
  t.same(await next(socket, 'connection_ack'), { type: 'connection_ack' })
}

/** The contextValue the `{ context }` query saw. */
async function graphqlContext (socket: Client, id: string): Promise<Record<string, unknown>> {
  socket.send({ id, type: 'subscribe', payload: { query: '{ context }' } })
  const result = await next(socket, 'the query\'s result') as { type: string, payload: { data: { context: string } } }
  if (result.type !== 'next') throw new Error(`the query failed: ${JSON.stringify(result)}`)
  await next(socket, 'complete')
  return JSON.parse(result.payload.data.context)
}

/** Sends an auth message with an access token, and reads the answer. */
async function authWith (client: Client, accessToken: string, uid?: string): Promise<unknown> {
  client.send({ type: 'auth', access_token: accessToken, ...(uid === undefined ? {} : { uid }) })
  return next(client, 'the auth answer')
}

async function ask (client: Client, type: string, uid: string): Promise<unknown> {
  client.send({ type, uid })
  return next(client, `the ${type} answer`)
}

function post (app: FastifyInstance, url: string, payload: object, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url, payload, headers })
}

/** A memory store that keeps a copy of every session created, to ask afterwards whether its refresh token still works. */
class WatchedStore extends MemorySessionStore {
  readonly created: RefreshSession[] = []

  override async create (session: RefreshSession, deadline: number): Promise<string[]> {
    this.created.push({ ...session })
    return super.create(session, deadline)
  }

  /** The newest session, by the refresh token it was created with: `unknown` once the session is ended. */
  newest (): Promise<TokenLookup> {
    const { id, tokenHash } = this.created.at(-1)!
    return this.lookup({ sessionId: id, tokenHash })
  }
}

const u1 = { user: 'u1', role: 'editor', admin: false }

t.test('every source calls onAuthenticate with the identity, the claims, the request, the source and the endpoint', async t => {
  const events: AuthenticateEvent[] = []
  const { app, url } = await build(t, {
    users: [admin],
    authRoutes: true,
    rest: { handlers },
    graphql: { schema: contextSchema },
    onAuthenticate: (event) => { events.push(event) }
  })
  const token = app.realtime.signAccessToken(u1).access_token
  const tokenClaims = { id: 'u1', role: 'editor', admin_access: false, iss: 'fastify-realtime', iat: Number, exp: Number }
  const adminIdentity = { user: String, role: 'administrator', admin: true }
  /** The one event since the last call. */
  const only = (what: string): AuthenticateEvent => {
    t.equal(events.length, 1, `${what}: one call`)
    return events.shift()!
  }

  // At the upgrade, on the JSON endpoint: the upgrade request with its headers.
  const byUrl = await connect(url(`/websocket?access_token=${token}`), { headers: { 'x-custom': 'by-url' } })
  const upgrade = only('upgrade')
  t.match(upgrade, { source: 'upgrade', endpoint: 'rest', identity: u1, claims: tokenClaims })
  t.equal(upgrade.request.headers['x-custom'], 'by-url', 'the upgrade request\'s headers')
  t.match(upgrade.request.url, /^\/websocket\?access_token=/)

  // An auth message with an access token: the socket's upgrade request, the one its handlers get.
  const byMessage = await connect(url('/websocket'), { headers: { 'x-custom': 'by-message' } })
  t.same(await authWith(byMessage, token), { type: 'auth', status: 'ok' })
  const auth = only('auth message')
  t.match(auth, { source: 'auth', endpoint: 'rest', identity: u1, claims: tokenClaims })
  t.equal(auth.request.headers['x-custom'], 'by-message')
  const connection = app.realtime.connections().find(c => c.request.headers['x-custom'] === 'by-message')!
  t.equal(auth.request, connection.request, 'the request the socket\'s handlers see')

  // Email and password, then the refresh token it handed out: no claims.
  const byPassword = await connect(url('/websocket'), { headers: { 'x-custom': 'by-password' } })
  byPassword.send({ type: 'auth', email: admin.email, password: admin.password })
  const { refresh_token: refreshToken } = await next(byPassword, 'auth ok') as { refresh_token: string }
  const password = only('email and password')
  t.match(password, { source: 'auth', endpoint: 'rest', identity: adminIdentity })
  t.equal(password.claims, null, 'no claims for email and password')
  t.equal(password.request.headers['x-custom'], 'by-password')
  const byRefresh = await connect(url('/websocket'))
  byRefresh.send({ type: 'auth', refresh_token: refreshToken })
  t.match(await next(byRefresh, 'auth ok'), { type: 'auth', status: 'ok', refresh_token: String })
  const refresh = only('refresh token')
  t.match(refresh, { source: 'auth', endpoint: 'rest', identity: { ...adminIdentity, user: password.identity.user } })
  t.equal(refresh.claims, null, 'no claims for a refresh token')

  // The logs endpoint.
  const logs = await connect(url('/websocket/logs'))
  t.same(await authWith(logs, token), { type: 'auth', status: 'ok' })
  t.match(only('logs auth message'), { source: 'auth', endpoint: 'logs', identity: u1, claims: tokenClaims })

  // GraphQL: connection_init, and the upgrade.
  const byInit = await graphqlSocket(url('/graphql'), { 'x-custom': 'by-init' })
  await init(t, byInit, token)
  const connectionInit = only('connection_init')
  t.match(connectionInit, { source: 'connection_init', endpoint: 'graphql', identity: u1, claims: tokenClaims })
  t.equal(connectionInit.request.headers['x-custom'], 'by-init')
  const graphqlByUrl = await graphqlSocket(url(`/graphql?access_token=${token}`), { 'x-custom': 'graphql-url' })
  const graphqlUpgrade = only('graphql upgrade')
  t.match(graphqlUpgrade, { source: 'upgrade', endpoint: 'graphql', identity: u1, claims: tokenClaims })
  t.equal(graphqlUpgrade.request.headers['x-custom'], 'graphql-url')
  await init(t, graphqlByUrl)
  t.equal(events.length, 0, 'a connection_init without a token checks nothing more')

  // The HTTP auth routes: login and refresh, no endpoint, no claims.
  const login = await post(app, '/auth/login', { email: admin.email, password: admin.password }, { 'x-custom': 'http-login' })
  t.equal(login.statusCode, 200)
  const loginEvent = only('POST /auth/login')
  t.match(loginEvent, { source: 'login', endpoint: null, identity: adminIdentity })
  t.equal(loginEvent.claims, null)
  t.equal(loginEvent.request.headers['x-custom'], 'http-login', 'the route\'s request')
  const refreshed = await post(app, '/auth/refresh', { refresh_token: login.json().data.refresh_token }, { 'x-custom': 'http-refresh' })
  t.equal(refreshed.statusCode, 200)
  const refreshEvent = only('POST /auth/refresh')
  t.match(refreshEvent, { source: 'refresh', endpoint: null, identity: adminIdentity })
  t.equal(refreshEvent.claims, null)
  t.equal(refreshEvent.request.headers['x-custom'], 'http-refresh')

  // The session cookie at the upgrade: the session token's claims.
  const session = await post(app, '/auth/login', { email: admin.email, password: admin.password, mode: 'session' })
  t.equal(session.statusCode, 200)
  t.match(only('POST /auth/login in session mode'), { source: 'login', endpoint: null })
  const cookie = session.cookies.find(c => c.name === 'directus_session_token')!
  const byCookie = await connect(url('/websocket'), { headers: { cookie: `${cookie.name}=${cookie.value}` } })
  t.match(only('session cookie'), { source: 'upgrade', endpoint: 'rest', identity: adminIdentity, claims: { sid: String, iss: 'fastify-realtime' } })

  await Promise.all([byUrl, byMessage, byPassword, byRefresh, logs, byInit, graphqlByUrl, byCookie].map(client => client.close()))
})

t.test('false refuses the credential on every form, as a failed one; a refused login makes no session, a refused refresh ends its own', async t => {
  const store = new WatchedStore()
  const refusing = new Set<CredentialSource>()
  const { app, url } = await build(t, {
    users: [admin],
    authRoutes: true,
    sessionStore: store,
    rest: { handlers },
    graphql: { schema: contextSchema },
    // Async, as an app's check of its own database would be.
    onAuthenticate: async ({ source }) => !refusing.has(source)
  })
  const token = app.realtime.signAccessToken(u1).access_token

  // An auth message in handshake mode: the handshake fails as for a bad credential.
  refusing.add('auth')
  const handshake = await connect(url('/websocket'))
  t.same(await authWith(handshake, token, 'h'), handshakeFailed('h'))
  t.equal((await closed(handshake, 'the 4401 close')).code, 4401)
  const password = await connect(url('/websocket'))
  password.send({ type: 'auth', email: admin.email, password: admin.password })
  t.same(await next(password, 'the auth answer'), handshakeFailed(), 'email and password: no refresh token handed out')
  t.equal((await closed(password, 'the 4401 close')).code, 4401)
  t.equal(store.created.length, 0, 'the refused login made no session')

  // An auth message past the handshake: refused, then the close AUTH_FAILED brings.
  refusing.clear()
  const open = await connect(url('/websocket'))
  t.same(await authWith(open, token), { type: 'auth', status: 'ok' })
  refusing.add('auth')
  t.same(await authWith(open, token, 'again'), authFailed('again'))
  t.equal((await closed(open, 'the 4401 close')).code, 4401)
  refusing.clear()

  // The access_token of the upgrade: HTTP 401, on the JSON and GraphQL endpoints.
  refusing.add('upgrade')
  t.same(await refusedWith(url(`/websocket?access_token=${token}`)), { status: 401, body: authFailedBody })
  t.same(await refusedWith(url(`/graphql?access_token=${token}`)), { status: 401, body: authFailedBody })
  refusing.clear()

  // GraphQL's connection_init: 4403 Forbidden, as graphql-ws says it.
  refusing.add('connection_init')
  const graphql = await graphqlSocket(url('/graphql'))
  graphql.send({ type: 'connection_init', payload: { access_token: token } })
  t.same(await closed(graphql, 'the 4403 close'), { code: 4403, reason: 'Forbidden' })
  refusing.clear()

  // POST /auth/login: 401 as for a wrong password, and no session made.
  refusing.add('login')
  const login = await post(app, '/auth/login', { email: admin.email, password: admin.password })
  t.equal(login.statusCode, 401)
  t.same(login.json(), invalidCredentials)
  t.equal(store.created.length, 0, 'the store was never asked: the check comes first')
  refusing.clear()

  // POST /auth/refresh: 401, and the whole session ends with it: its sockets and its access tokens.
  const tokens = (await post(app, '/auth/login', { email: admin.email, password: admin.password })).json().data
  t.equal((await store.newest()).status, 'current', 'an admitted login keeps its session')
  const ofSession = await connect(url('/websocket'))
  t.same(await authWith(ofSession, tokens.access_token), { type: 'auth', status: 'ok' })
  refusing.add('refresh')
  const refresh = await post(app, '/auth/refresh', { refresh_token: tokens.refresh_token })
  t.equal(refresh.statusCode, 401)
  t.same(refresh.json(), invalidCredentials)
  t.equal((await store.newest()).status, 'unknown', 'the session is ended')
  t.same(await next(ofSession, 'AUTH_REVOKED'), sessionRevoked, 'its socket hears of it')
  t.equal((await refusedWith(url(`/websocket?access_token=${tokens.access_token}`))).status, 401, 'its access token is refused')
  refusing.clear()
  t.equal((await post(app, '/auth/refresh', { refresh_token: tokens.refresh_token })).statusCode, 401, 'its refresh token too, admitted or not')
  const unknown = await post(app, '/auth/refresh', { refresh_token: newRefreshToken(newSessionId()) })
  t.same([unknown.statusCode, unknown.json()], [401, invalidCredentials], 'a refresh token the store does not know, admitted or not')

  // Admitted again, every form works.
  const admitted = await connect(url(`/websocket?access_token=${token}`))
  t.same(await ask(admitted, 'whoami', 'w'), { type: 'whoami', uid: 'w', user: 'u1' })
  await Promise.all([ofSession.close(), admitted.close()])
})

t.test('a login refused after its password check (onAuthenticate, an identity no token can carry) leaves the user\'s sessions alone: at the limit, the oldest still refreshes', async t => {
  for (const backend of ['memory', 'Redis'] as const) {
    t.test(backend, async t => {
      const redis = backend === 'Redis' ? (await RedisServer.start(t)).url : undefined
      let refusing = false
      let unsignable = false
      const { app, url } = await build(t, {
        redis,
        authRoutes: true,
        maxSessionsPerUser: 1,
        // A role no token can carry makes the signing throw.
        verifyCredentials: async () => ({ user: 'u1', role: unsignable ? 10n as unknown as string : null, admin: false }),
        // A banned address, say: whoever logs in from it has the password, and is refused all the same.
        onAuthenticate: ({ source }) => !(refusing && (source === 'login' || source === 'auth'))
      }, { logger: false })
      const login = () => post(app, '/auth/login', { email: 'u1', password: 'p' })
      const oldest = (await login()).json().data.refresh_token

      refusing = true
      for (let i = 0; i < 3; i++) t.same((await login()).json(), invalidCredentials, `refused login ${i}: 401`)
      const socket = await connect(url('/websocket'))
      socket.send({ type: 'auth', email: 'u1', password: 'p' })
      t.same(await next(socket, 'the auth answer'), handshakeFailed(), 'refused on a socket too')
      await closed(socket, 'the 4401 close')
      refusing = false
      unsignable = true
      t.equal((await login()).statusCode, 503, 'a login whose tokens cannot be signed: 503')
      unsignable = false

      const refreshed = await post(app, '/auth/refresh', { refresh_token: oldest })
      t.equal(refreshed.statusCode, 200, 'the user\'s session lives on')
      t.equal((await login()).statusCode, 200, 'an admitted login')
      const ended = await post(app, '/auth/refresh', { refresh_token: refreshed.json().data.refresh_token })
      t.same([ended.statusCode, ended.json()], [401, invalidCredentials], 'does end it, past the limit of one')
    })
  }
})

t.test('the object onAuthenticate returns is the socket\'s context, in JSON handlers and GraphQL resolvers', async t => {
  const { app, url } = await build(t, {
    users: [admin],
    rest: { auth: 'public', handlers },
    graphql: {
      schema: contextSchema,
      context: (accountability, connection) => ({ extension: `for ${accountability.user}`, header: connection.request.headers['x-custom'] ?? null })
    },
    onAuthenticate: async ({ identity, source }) => identity.user === 'plain'
      ? true
      : { tenant: `tenant-of-${identity.user}`, source, accountability: { user: 'forged' } }
  })
  const sign = (user: string) => app.realtime.signAccessToken({ user, role: null, admin: false }).access_token

  const client = await connect(url('/websocket'))
  t.same(await ask(client, 'context', 'before'), { type: 'context', uid: 'before', context: {} }, 'nobody authenticated: empty')
  t.same(await authWith(client, sign('u1')), { type: 'auth', status: 'ok' })
  t.same(await ask(client, 'context', 'u1'), {
    type: 'context', uid: 'u1', context: { tenant: 'tenant-of-u1', source: 'auth', accountability: { user: 'forged' } }
  }, 'what the check returned')
  t.same(await ask(client, 'whoami', 'w'), { type: 'whoami', uid: 'w', user: 'u1' }, 'the accountability is the plugin\'s')
  t.same(await authWith(client, sign('plain')), { type: 'auth', status: 'ok' })
  t.same(await ask(client, 'context', 'plain'), { type: 'context', uid: 'plain', context: {} }, 'a new credential replaces it, with nothing')
  t.same(await authWith(client, sign('u2')), { type: 'auth', status: 'ok' })
  t.match(await ask(client, 'context', 'u2'), { context: { tenant: 'tenant-of-u2' } })
  client.send({ type: 'auth', email: admin.email, password: admin.password })
  t.match(await next(client, 'auth ok'), { type: 'auth', status: 'ok' })
  t.match(await ask(client, 'context', 'password'), { context: { tenant: /^tenant-of-/, source: 'auth' } }, 'email and password too')

  const byUrl = await connect(url(`/websocket?access_token=${sign('u3')}`))
  t.match(await ask(byUrl, 'context', 'url'), { context: { tenant: 'tenant-of-u3', source: 'upgrade' } }, 'at the upgrade')

  // GraphQL: merged into every operation's contextValue, with the context option's extension; the accountability
  // stays the socket's.
  const graphql = await graphqlSocket(url('/graphql'), { 'x-custom': 'from-upgrade' })
  await init(t, graphql, sign('g1'))
  const seen = await graphqlContext(graphql, '1')
  t.match(seen, {
    tenant: 'tenant-of-g1',
    source: 'connection_init',
    extension: 'for g1',
    header: 'from-upgrade',
    accountability: { user: 'g1', role: null, admin: false, ip: '127.0.0.1' }
  })
  t.same(Object.keys(seen).sort(), ['accountability', 'extension', 'header', 'signal', 'source', 'tenant'])
  t.same(await graphqlContext(graphql, '2'), seen, 'every operation')
  const plain = await graphqlSocket(url(`/graphql?access_token=${sign('plain')}`))
  await init(t, plain)
  t.same(Object.keys(await graphqlContext(plain, '1')).sort(), ['accountability', 'extension', 'header', 'signal'], 'nothing returned: nothing added')
  const upgraded = await graphqlSocket(url(`/graphql?access_token=${sign('g2')}`))
  await init(t, upgraded)
  t.match(await graphqlContext(upgraded, '1'), { tenant: 'tenant-of-g2', source: 'upgrade', accountability: { user: 'g2' } })

  await Promise.all([client, byUrl, graphql, plain, upgraded].map(socket => socket.close()))
})

t.test('the context goes with the credential: cleared when it expires or its session is revoked', async t => {
  const clock = fakeClock(t)
  const { app, url } = await build(t, {
    rest: { handlers, authTimeout: 5 },
    onAuthenticate: ({ identity }) => ({ tenant: `tenant-of-${identity.user}` })
  })
  const exp = Math.floor(Date.now() / 1000) + 2
  const client = await connect(url('/websocket'))
  t.same(await authWith(client, app.realtime.jwt.sign({ id: 'u1', exp })), { type: 'auth', status: 'ok' })
  t.same(await ask(client, 'context', 'before'), { type: 'context', uid: 'before', context: { tenant: 'tenant-of-u1' } })
  clock.tick(exp * 1000 - Date.now())
  t.same(await next(client, 'TOKEN_EXPIRED'), tokenExpired)
  t.same(await ask(client, 'context', 'expired'), { type: 'context', uid: 'expired', context: {} }, 'cleared with the identity')
  t.same(await ask(client, 'whoami', 'w'), { type: 'whoami', uid: 'w', user: null })
  t.same(await authWith(client, app.realtime.signAccessToken({ user: 'u2', role: null, admin: false }, 'session-2').access_token), { type: 'auth', status: 'ok' })
  t.same(await ask(client, 'context', 'again'), { type: 'context', uid: 'again', context: { tenant: 'tenant-of-u2' } }, 'a re-auth brings a new one')

  await app.realtime.revokeSession('session-2')
  t.same(await next(client, 'AUTH_REVOKED'), sessionRevoked)
  t.same(await ask(client, 'context', 'revoked'), { type: 'context', uid: 'revoked', context: {} }, 'cleared by a revocation')
  await client.close()
})

t.test('a throwing onAuthenticate is SERVICE_UNAVAILABLE on every form, and is logged', async t => {
  const store = new WatchedStore()
  let broken = false
  const logged: string[] = []
  const { app, url } = await build(t, {
    users: [admin],
    authRoutes: true,
    sessionStore: store,
    rest: { handlers },
    graphql: { schema: contextSchema },
    onAuthenticate: ({ source }) => {
      if (!broken) return true
      if (source === 'connection_init' || source === 'login') return Promise.reject(new Error(`tenants offline (${source})`))
      throw new Error(`tenants offline (${source})`)
    }
  }, { logger: { level: 'error', stream: { write: (line: string) => { logged.push(line) } } } })
  const token = app.realtime.signAccessToken(u1).access_token
  const open = await connect(url(`/websocket?access_token=${token}`))
  broken = true

  const handshake = await connect(url('/websocket'))
  t.same(await authWith(handshake, token, 'h'), unavailable('h'))
  t.equal((await closed(handshake, 'the 1013 close')).code, 1013, 'the handshake ends: try again later')

  t.same(await authWith(open, token, 'o'), unavailable('o'), 'past the handshake')
  t.same(await ask(open, 'whoami', 'w'), { type: 'whoami', uid: 'w', user: 'u1' }, 'still open, the identity as it was')

  t.same(await refusedWith(url(`/websocket?access_token=${token}`)), { status: 503, body: unavailableBody }, 'at the upgrade')

  const graphql = await graphqlSocket(url('/graphql'))
  graphql.send({ type: 'connection_init', payload: { access_token: token } })
  t.same(await closed(graphql, 'the 1013 close'), { code: 1013, reason: 'Service unavailable.' }, 'connection_init (a rejection)')

  const login = await post(app, '/auth/login', { email: admin.email, password: admin.password })
  t.equal(login.statusCode, 503)
  t.equal(login.headers['retry-after'], '1')
  t.same(login.json(), JSON.parse(unavailableBody))
  t.equal(store.created.length, 0, 'the login made no session')

  const failures = logged.map(line => JSON.parse(line)).filter(entry => entry.msg === 'onAuthenticate failed')
  t.same(failures.map(entry => entry.err.message), [
    'tenants offline (auth)', 'tenants offline (auth)', 'tenants offline (upgrade)', 'tenants offline (connection_init)',
    'tenants offline (login)'
  ], 'every failure logged, with its error')
  t.ok(failures.every(entry => typeof entry.reqId === 'string'), 'on the request\'s logger')
  await open.close()
})

t.test('a refresh whose onAuthenticate cannot answer keeps its session: the same refresh token works on the retry', async t => {
  const store = new WatchedStore()
  let broken = true
  const { app, url } = await build(t, {
    users: [admin],
    authRoutes: true,
    sessionStore: store,
    rest: { handlers },
    onAuthenticate: ({ source }) => {
      if (broken && source === 'refresh') throw new Error('tenants offline')
      if (broken && source === 'auth') return Promise.reject(new Error('tenants offline'))
      return { tenant: 't1' }
    }
  }, { logger: false })
  broken = false
  const tokens = (await post(app, '/auth/login', { email: admin.email, password: admin.password })).json().data
  const ofSession = await connect(url('/websocket'))
  t.same(await authWith(ofSession, tokens.access_token), { type: 'auth', status: 'ok' })
  broken = true

  const refused = await post(app, '/auth/refresh', { refresh_token: tokens.refresh_token })
  t.same([refused.statusCode, refused.json()], [503, JSON.parse(unavailableBody)], 'POST /auth/refresh: 503')
  t.equal((await store.newest()).status, 'current', 'the refresh token has not rotated')
  const bySocket = await connect(url('/websocket'))
  bySocket.send({ type: 'auth', refresh_token: tokens.refresh_token, uid: 'r' })
  t.same(await next(bySocket, 'the auth answer'), unavailable('r'), 'an auth message: SERVICE_UNAVAILABLE')
  t.match(await ask(ofSession, 'whoami', 'w'), { type: 'whoami', uid: 'w', user: String }, 'the session\'s socket is untouched')

  broken = false
  const retried = await post(app, '/auth/refresh', { refresh_token: tokens.refresh_token })
  t.equal(retried.statusCode, 200, 'the retry with the same refresh token')
  t.equal((await store.newest()).status, 'reused', 'rotated now')
  const next1 = retried.json().data.refresh_token
  const again = await connect(url('/websocket'))
  again.send({ type: 'auth', refresh_token: next1 })
  t.match(await next(again, 'the auth answer'), { type: 'auth', status: 'ok', refresh_token: String }, 'and by an auth message, the next one')
  t.same(await ask(again, 'context', 'c'), { type: 'context', uid: 'c', context: { tenant: 't1' } }, 'with the hook\'s context')
  await Promise.all([ofSession.close(), bySocket.close(), again.close()])
})

t.test('an onAuthenticate that never answers is SERVICE_UNAVAILABLE at the store deadline (3 s), and is logged', async t => {
  const clock = fakeClock(t)
  let called!: () => void
  const reached = new Promise<void>(resolve => { called = resolve })
  const logged: string[] = []
  const { app, url } = await build(t, {
    onAuthenticate: () => {
      called()
      return new Promise(() => {})
    }
  }, { logger: { level: 'error', stream: { write: (line: string) => { logged.push(line) } } } })
  const client = await connect(url('/websocket'))
  const answer = authWith(client, app.realtime.signAccessToken(u1).access_token, 'h')
  await within(reached, 'onAuthenticate')
  clock.tick(3_000)
  t.same(await answer, unavailable('h'))
  t.equal((await closed(client, 'the 1013 close')).code, 1013, 'the handshake ends: try again later')
  const failures = logged.map(line => JSON.parse(line)).filter(entry => entry.msg === 'onAuthenticate failed')
  t.same(failures.map(entry => entry.err.message), ['no answer within 3000 ms'])
})

t.test('an onAuthenticate that answers with a thenable of its own (a library\'s promise) is awaited: false refuses', async t => {
  const { app, url } = await build(t, {
    onAuthenticate: () => ({ then: (resolve: (verdict: boolean) => void) => resolve(false) }) as unknown as Promise<boolean>
  })
  const client = await connect(url('/websocket'))
  t.same(await authWith(client, app.realtime.signAccessToken(u1).access_token, 'h'), handshakeFailed('h'))
  t.equal((await closed(client, 'the 4401 close')).code, 4401)
})

t.test('connection.state: the app\'s own object per socket, kept from one message to the next', async t => {
  const { app, url } = await build(t, { rest: { handlers } })
  const token = app.realtime.signAccessToken(u1).access_token
  const a = await connect(url(`/websocket?access_token=${token}`))
  const b = await connect(url(`/websocket?access_token=${token}`))
  t.same(await ask(a, 'count', 'a1'), { type: 'count', uid: 'a1', count: 1, same: true })
  t.same(await ask(a, 'count', 'a2'), { type: 'count', uid: 'a2', count: 2, same: true }, 'kept between messages')
  t.same(await ask(b, 'count', 'b1'), { type: 'count', uid: 'b1', count: 1, same: true }, 'another socket has its own')
  t.same(await authWith(a, app.realtime.signAccessToken({ user: 'u2', role: null, admin: false }).access_token), { type: 'auth', status: 'ok' })
  t.same(await ask(a, 'count', 'a3'), { type: 'count', uid: 'a3', count: 3, same: true }, 'a new credential keeps it')
  t.same(await ask(b, 'count', 'b2'), { type: 'count', uid: 'b2', count: 2, same: true })
  t.same(app.realtime.connections().map(connection => connection.state.count).sort(), [2, 3], 'the API\'s connections are the same')
  await Promise.all([a.close(), b.close()])
})

t.test('connection.request: the upgrade request, its headers and its logger, in a handler', async t => {
  const logged: string[] = []
  const { app, url } = await build(t, { rest: { handlers } }, { logger: { level: 'info', stream: { write: (line: string) => { logged.push(line) } } } })
  const token = app.realtime.signAccessToken(u1).access_token
  const custom = await connect(url(`/websocket?access_token=${token}`), { headers: { 'x-custom': 'from the client' } })
  t.same(await ask(custom, 'header', 'h1'), { type: 'header', uid: 'h1', value: 'from the client' })
  const plain = await connect(url('/websocket'))
  t.same(await authWith(plain, token), { type: 'auth', status: 'ok' })
  t.same(await ask(plain, 'header', 'h2'), { type: 'header', uid: 'h2', value: null }, 'each socket its own request')
  t.same(await ask(custom, 'header', 'h3'), { type: 'header', uid: 'h3', value: 'from the client' }, 'for as long as the socket lives')
  const lines = logged.map(line => JSON.parse(line)).filter(entry => entry.msg === 'read by a handler')
  t.equal(lines.length, 3)
  t.match(lines[0], { custom: 'from the client', reqId: String }, 'request.log is the request\'s logger')
  await Promise.all([custom.close(), plain.close()])
})

t.test('the refresh token of a session cookie within its grace, in a JSON refresh or an auth message, is reuse before onAuthenticate is asked', async t => {
  const store = new WatchedStore()
  const asked: CredentialSource[] = []
  const { app, url } = await build(t, {
    users: [admin],
    authRoutes: true,
    sessionStore: store,
    onAuthenticate: ({ source }) => {
      asked.push(source)
      return true
    }
  }, { logger: false })
  const cookieOf = (response: { headers: Record<string, unknown> }) => String(response.headers['set-cookie']).split(';')[0]!
  const carried = (cookie: string) => (JSON.parse(Buffer.from(cookie.split('.')[1]!, 'base64url').toString()) as { session: string }).session
  for (const by of ['json', 'auth message'] as const) {
    const old = cookieOf(await post(app, '/auth/login', { email: admin.email, password: admin.password, mode: 'session' }))
    t.equal((await post(app, '/auth/refresh', { mode: 'session' }, { cookie: old })).statusCode, 200)
    asked.length = 0
    if (by === 'json') {
      const json = await post(app, '/auth/refresh', { refresh_token: carried(old) })
      t.same([json.statusCode, json.json()], [401, invalidCredentials], 'json: reuse')
    } else {
      const client = await connect(url('/websocket'))
      client.send({ type: 'auth', refresh_token: carried(old) })
      t.match(await next(client, 'the auth answer'), { type: 'auth', status: 'error' }, 'auth message: refused')
      await client.close()
    }
    t.same(asked, [], `${by}: the hook never saw a refresh that fails`)
    t.equal((await store.newest()).status, 'unknown', `${by}: the session ended`)
  }
})
