// Configuration (PROTOCOL.md section 1): environment variables, plugin options over them, and boot failures that name
// what is wrong. Effects are checked through behaviour (routes, upgrades, frames, tokens) wherever one exists.
import t, { type Test } from 'tap'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import fastifyWebsocket from '@fastify/websocket'
import { createClient } from '@redis/client'
import realtime, { UserDirectory, type RealtimeOptions, type RealtimeUpgrade } from '../../lib/index.js'
import { resolveConfig } from '../../lib/config.js'
import { secretWeakness } from '../../lib/auth/jwt.js'
import { admin, build, connect, fakeClock, recordCrashes, refusedWith, secret, until } from '../helpers.js'
import { RedisServer } from '../redis-server.js'

const invalid = 'FST_REALTIME_INVALID_CONFIG'
const ignored = (name: string) => `option ${name} is no option of fastify-realtime, and is ignored: a misspelling?`
const identity = { user: 'user-1', role: 'editor', admin: false }

interface Started {
  app: FastifyInstance
  url: (path: string) => string
  /** What the upgrade gate put on each websocket request, in order. */
  upgrades: RealtimeUpgrade[]
}

/** Sets a variable of the process's own environment for the rest of the test. */
function processEnv (t: Test, name: string, value: string): void {
  const saved = process.env[name]
  t.teardown(() => {
    if (saved === undefined) delete process.env[name]
    else process.env[name] = saved
  })
  process.env[name] = value
}

/** A listening app with the plugin registered with exactly these options (no defaults added). */
async function start (t: Test, options: RealtimeOptions, before?: (app: FastifyInstance) => Promise<void>): Promise<Started> {
  const app = Fastify()
  t.teardown(() => app.close())
  const upgrades: RealtimeUpgrade[] = []
  app.addHook('preHandler', async (request) => {
    if (request.realtime) upgrades.push(request.realtime)
  })
  if (before) await before(app)
  await app.register(realtime, options)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  return { app, upgrades, url: (path) => `ws://127.0.0.1:${port}${path}` }
}

/** Boots an app with these options and expects the boot to fail with this error. */
async function bootFails (t: Test, options: RealtimeOptions, message: RegExp) {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => {
    await app.register(realtime, options)
    await app.ready()
  }, { code: invalid, message })
}

/** The auth mode the gate resolved for an upgrade on this path (with a valid token, so every mode lets it in). */
async function authModeAt (started: Started, path: string) {
  const { access_token: token } = started.app.realtime.signAccessToken(identity)
  const client = await connect(started.url(`${path}?access_token=${token}`))
  await client.close()
  return started.upgrades.at(-1)!.authMode
}

function hasJsonRoute (app: FastifyInstance, url: string) {
  return app.hasRoute({ method: 'GET', url })
}

function claims (app: FastifyInstance, token: string) {
  return app.realtime.jwt.decode<Record<string, unknown>>(token)!
}

t.test('defaults: every value from PROTOCOL.md section 1 when nothing is configured', async (t) => {
  const config = await resolveConfig({ env: {} })
  const endpoint = (name: string, path: string) => ({
    name, enabled: true, path, authMode: 'handshake', authTimeoutMs: 10_000, connLimit: Infinity
  })
  t.same(config.endpoints, {
    rest: endpoint('rest', '/websocket'),
    graphql: endpoint('graphql', '/graphql'),
    logs: endpoint('logs', '/websocket/logs')
  })
  t.same(config.heartbeat, { enabled: true, periodMs: 30_000 })
  t.equal(config.maxPayload, 65536)
  t.equal(config.maxBufferedBytes, 1024 * 1024)
  t.equal(config.issuer, 'fastify-realtime')
  t.same(config.passwordQueue, { limit: 256, perAddress: 4 })
  t.equal(config.accessTokenTtlMs, 15 * 60_000)
  t.equal(config.refreshTokenTtlMs, 7 * 24 * 3_600_000)
  t.equal(config.secret, undefined)
  t.same([...config.origins], [])
  t.equal(config.publicRole, null)
  t.equal(config.authRoutes, null)
})

t.test('the resolved config is frozen', async (t) => {
  const config = await resolveConfig({ env: {} })
  t.ok(Object.isFrozen(config))
  t.ok(Object.isFrozen(config.endpoints))
  t.ok(Object.isFrozen(config.endpoints.rest))
  t.ok(Object.isFrozen(config.heartbeat))
})

t.test('empty and undefined environment values count as unset', async (t) => {
  const config = await resolveConfig({
    env: { WEBSOCKETS_REST_PATH: '', WEBSOCKETS_REST_AUTH: undefined, WEBSOCKETS_HEARTBEAT_PERIOD: '', SECRET: '' }
  })
  t.equal(config.endpoints.rest.path, '/websocket')
  t.equal(config.endpoints.rest.authMode, 'handshake')
  t.equal(config.heartbeat.periodMs, 30_000)
  t.equal(config.secret, undefined)
})

t.test('every endpoint reads its own WEBSOCKETS_X_ variables', async (t) => {
  const config = await resolveConfig({
    env: {
      WEBSOCKETS_GRAPHQL_PATH: '/gql',
      WEBSOCKETS_GRAPHQL_AUTH: 'Public',
      WEBSOCKETS_GRAPHQL_CONN_LIMIT: '7',
      WEBSOCKETS_LOGS_ENABLED: 'false',
      WEBSOCKETS_LOGS_AUTH: 'STRICT',
      WEBSOCKETS_LOGS_AUTH_TIMEOUT: '2.5'
    }
  })
  t.match(config.endpoints.graphql, { path: '/gql', authMode: 'public', connLimit: 7, enabled: true })
  t.match(config.endpoints.logs, { path: '/websocket/logs', authMode: 'strict', authTimeoutMs: 2500, enabled: false })
  t.match(config.endpoints.rest, { path: '/websocket', authMode: 'handshake', connLimit: Infinity })
})

t.test('env WEBSOCKETS_REST_PATH moves the JSON endpoint', async (t) => {
  const started = await start(t, { env: { SECRET: secret, WEBSOCKETS_REST_PATH: '/realtime' } })
  t.ok(hasJsonRoute(started.app, '/realtime'))
  t.notOk(hasJsonRoute(started.app, '/websocket'))
  const client = await connect(started.url('/realtime'))
  client.send({ type: 'auth', access_token: started.app.realtime.signAccessToken(identity).access_token })
  t.same(await client.next(), { type: 'auth', status: 'ok' })
  await client.close()
})

t.test('env WEBSOCKETS_REST_AUTH is case-insensitive and reaches request.realtime.authMode', async (t) => {
  for (const [value, mode] of [['STRICT', 'strict'], ['Public', 'public'], ['handshake', 'handshake']]) {
    const started = await start(t, { env: { SECRET: secret, WEBSOCKETS_REST_AUTH: value } })
    t.equal(await authModeAt(started, '/websocket'), mode, value)
  }
})

t.test('env WEBSOCKETS_REST_AUTH=STRICT refuses an upgrade without a credential', async (t) => {
  const started = await start(t, { env: { SECRET: secret, WEBSOCKETS_REST_AUTH: 'STRICT' } })
  t.equal((await refusedWith(started.url('/websocket'))).status, 401)
})

t.test('the resolved auth mode defaults to handshake on the request', async (t) => {
  const started = await start(t, { env: { SECRET: secret } })
  t.equal(await authModeAt(started, '/websocket'), 'handshake')
  t.match(started.upgrades.at(-1), { endpoint: 'rest', accountability: { user: identity.user } })
})

t.test('env WEBSOCKETS_REST_AUTH_TIMEOUT takes decimal seconds', async (t) => {
  const config = await resolveConfig({ env: { WEBSOCKETS_REST_AUTH_TIMEOUT: '0.15' } })
  t.equal(config.endpoints.rest.authTimeoutMs, 150)

  const clock = fakeClock(t)
  const started = await start(t, { env: { SECRET: secret, WEBSOCKETS_REST_AUTH_TIMEOUT: '0.15' } })
  const client = await connect(started.url('/websocket'))
  await until(() => started.app.realtime.connections().length === 1)
  clock.tick(149)
  t.equal(started.app.realtime.connections().length, 1, 'open 149 ms on')
  clock.tick(1)
  t.same(await client.next(), {
    type: 'auth', status: 'error', error: { code: 'AUTH_FAILED', message: 'Authentication handshake failed.' }
  }, 'closed at 150 ms, not after the default 10 s')
  t.equal((await client.closed).code, 4408)
})

t.test('env WEBSOCKETS_REST_CONN_LIMIT caps open sockets with 503', async (t) => {
  const started = await start(t, { env: { SECRET: secret, WEBSOCKETS_REST_AUTH: 'public', WEBSOCKETS_REST_CONN_LIMIT: '1' } })
  const first = await connect(started.url('/websocket'))
  t.equal((await refusedWith(started.url('/websocket'))).status, 503)
  await first.close()
})

t.test('env WEBSOCKETS_REST_CONN_LIMIT=Infinity (any case) means unlimited', async (t) => {
  for (const value of ['Infinity', 'infinity', 'INFINITY']) {
    const config = await resolveConfig({ env: { WEBSOCKETS_REST_CONN_LIMIT: value } })
    t.equal(config.endpoints.rest.connLimit, Infinity, value)
  }
  const started = await start(t, { env: { SECRET: secret, WEBSOCKETS_REST_AUTH: 'public', WEBSOCKETS_REST_CONN_LIMIT: 'Infinity' } })
  const clients = await Promise.all([1, 2, 3].map(() => connect(started.url('/websocket'))))
  t.equal(started.app.realtime.connections().length, 3)
  await Promise.all(clients.map(client => client.close()))
})

t.test('env WEBSOCKETS_ADDRESS_CONN_LIMIT caps one client\'s sockets with 429; unset or Infinity, unlimited; the option wins', async (t) => {
  t.equal((await resolveConfig({ env: {} })).addressConnLimit, Infinity, 'unlimited by default')
  t.equal((await resolveConfig({ env: { WEBSOCKETS_ADDRESS_CONN_LIMIT: 'infinity' } })).addressConnLimit, Infinity)
  t.equal((await resolveConfig({ env: { WEBSOCKETS_ADDRESS_CONN_LIMIT: '5' }, connLimitPerAddress: 9 })).addressConnLimit, 9)
  const started = await start(t, { env: { SECRET: secret, WEBSOCKETS_REST_AUTH: 'public', WEBSOCKETS_ADDRESS_CONN_LIMIT: '1' } })
  const first = await connect(started.url('/websocket'))
  t.equal((await refusedWith(started.url('/websocket'))).status, 429)
  await first.close()
})

t.test('env WEBSOCKETS_REST_ENABLED=false leaves the endpoint out', async (t) => {
  const started = await start(t, { env: { SECRET: secret, WEBSOCKETS_REST_ENABLED: 'false' } })
  t.notOk(hasJsonRoute(started.app, '/websocket'))
  t.equal((await refusedWith(started.url('/websocket'))).status, 404)
})

t.test('env WEBSOCKETS_HEARTBEAT_PERIOD sets the ping period in seconds', async (t) => {
  const clock = fakeClock(t, ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'])
  const started = await start(t, {
    env: { SECRET: secret, WEBSOCKETS_REST_AUTH: 'public', WEBSOCKETS_HEARTBEAT_PERIOD: '0.05' }
  })
  const client = await connect(started.url('/websocket'))
  clock.tick(50)
  t.same(await client.next(), { type: 'ping' }, 'a ping 50 ms on, not 30 s')
  await client.close()
})

t.test('env WEBSOCKETS_HEARTBEAT_ENABLED=false sends no heartbeat', async (t) => {
  const started = await start(t, {
    env: { SECRET: secret, WEBSOCKETS_REST_AUTH: 'public', WEBSOCKETS_HEARTBEAT_ENABLED: 'false', WEBSOCKETS_HEARTBEAT_PERIOD: '0.02' }
  })
  const client = await connect(started.url('/websocket'))
  await new Promise(resolve => setTimeout(resolve, 150))
  client.send({ type: 'ping', uid: 1 })
  t.same(await client.next(), { type: 'pong', uid: 1 }, 'nothing arrived before the pong')
  await client.close()
})

t.test('env WEBSOCKETS_MAX_PAYLOAD caps frames (1009 past it)', async (t) => {
  const started = await start(t, { env: { SECRET: secret, WEBSOCKETS_REST_AUTH: 'public', WEBSOCKETS_MAX_PAYLOAD: '64' } })
  const client = await connect(started.url('/websocket'))
  client.send({ type: 'ping', uid: 'small' })
  t.same(await client.next(), { type: 'pong', uid: 'small' })
  client.send({ type: 'ping', uid: 'x'.repeat(100) })
  t.equal((await client.closed).code, 1009)
})

t.test('env ACCESS_TOKEN_TTL sets the lifetime of issued access tokens', async (t) => {
  const started = await start(t, { env: { SECRET: secret, ACCESS_TOKEN_TTL: '2m' } })
  const signed = started.app.realtime.signAccessToken(identity)
  t.equal(signed.expires, 120_000)
  const { exp, iat } = claims(started.app, signed.access_token) as { exp: number, iat: number }
  t.equal(exp - iat, 120, 'exp is 120 seconds after iat')
})

t.test('options.env is the whole environment: process.env does not leak under it', async (t) => {
  process.env.WEBSOCKETS_REST_AUTH = 'STRICT'
  t.teardown(() => { delete process.env.WEBSOCKETS_REST_AUTH })
  t.equal((await resolveConfig({ env: {} })).endpoints.rest.authMode, 'handshake')
  t.equal((await resolveConfig({})).endpoints.rest.authMode, 'strict', 'process.env, normalized, when no env is given')
})

t.test('connLimit Infinity and case-insensitive booleans', async (t) => {
  const config = await resolveConfig({ env: { WEBSOCKETS_REST_CONN_LIMIT: '5', WEBSOCKETS_HEARTBEAT_ENABLED: 'FALSE' }, rest: { connLimit: Infinity } })
  t.equal(config.endpoints.rest.connLimit, Infinity, 'the option wins, unlimited')
  t.equal(config.heartbeat.enabled, false)
})

t.test('a bare number of ACCESS_TOKEN_TTL or REFRESH_TOKEN_TTL is milliseconds', async (t) => {
  const config = await resolveConfig({ env: { ACCESS_TOKEN_TTL: '900000', REFRESH_TOKEN_TTL: '60000' } })
  t.equal(config.accessTokenTtlMs, 900_000)
  t.equal(config.refreshTokenTtlMs, 60_000)
})

t.test('env REFRESH_TOKEN_TTL sets how long a refresh session lives', async (t) => {
  t.equal((await resolveConfig({ env: { REFRESH_TOKEN_TTL: '1d' } })).refreshTokenTtlMs, 86_400_000)
  const started = await start(t, {
    env: { SECRET: secret, REFRESH_TOKEN_TTL: '30' },
    authRoutes: true,
    verifyCredentials: async () => identity
  })
  const issued = await started.app.realtime.login({ email: 'a@example.com', password: 'x' })
  await new Promise(resolve => setTimeout(resolve, 60))
  const refreshed = await started.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: issued.refresh_token } })
  t.equal(refreshed.statusCode, 401)
})

t.test('env SECRET signs the access tokens', async (t) => {
  const started = await start(t, { env: { SECRET: 'the-env-secret' } })
  const verifier = Fastify()
  t.teardown(() => verifier.close())
  await verifier.register(fastifyJwt, { secret: 'the-env-secret' })
  await verifier.ready()
  t.match(verifier.jwt.verify(started.app.realtime.signAccessToken(identity).access_token), { id: identity.user })
})

t.test('env PUBLIC_URL lets its origin open sockets', async (t) => {
  const started = await start(t, {
    env: { SECRET: secret, WEBSOCKETS_REST_AUTH: 'public', PUBLIC_URL: 'https://app.example.com/admin/' }
  })
  const client = await connect(started.url('/websocket'), { origin: 'https://app.example.com' })
  await client.close()
  t.equal((await refusedWith(started.url('/websocket'), { origin: 'https://evil.example.com' })).status, 403)
  t.same([...(await resolveConfig({ env: { PUBLIC_URL: 'https://app.example.com/admin/' } })).origins], ['https://app.example.com'])
})

t.test('env CORS_ORIGIN lists further allowed origins, comma-separated', async (t) => {
  const CORS_ORIGIN = 'https://a.example.com, https://b.example.com:8443/ ,'
  const started = await start(t, { env: { SECRET: secret, WEBSOCKETS_REST_AUTH: 'public', CORS_ORIGIN } })
  for (const origin of ['https://a.example.com', 'https://b.example.com:8443']) {
    const client = await connect(started.url('/websocket'), { origin })
    await client.close()
  }
  t.equal((await refusedWith(started.url('/websocket'), { origin: 'https://c.example.com' })).status, 403)
  const config = await resolveConfig({ env: { CORS_ORIGIN, PUBLIC_URL: 'http://localhost:8055' } })
  t.same([...config.origins].sort(), ['http://localhost:8055', 'https://a.example.com', 'https://b.example.com:8443'])
})

t.test('options only: every option sets its value', async (t) => {
  const options: RealtimeOptions = {
    env: {},
    secret: 'an-option-secret',
    rest: { path: '/live', auth: 'public', authTimeout: 0.25, connLimit: 2 },
    heartbeat: { enabled: false, period: 12 },
    maxPayload: 128,
    accessTokenTtl: '5m',
    refreshTokenTtl: 3_600_000,
    publicUrl: 'https://app.example.com',
    origins: ['https://other.example.com'],
    publicRole: 'guest',
    authRoutes: { prefix: '/api/auth' }
  }
  const config = await resolveConfig(options)
  t.match(config.endpoints.rest, { enabled: true, path: '/live', authMode: 'public', authTimeoutMs: 250, connLimit: 2 })
  t.same(config.heartbeat, { enabled: false, periodMs: 12_000 })
  t.equal(config.maxPayload, 128)
  t.equal(config.accessTokenTtlMs, 300_000)
  t.equal(config.refreshTokenTtlMs, 3_600_000)
  t.equal(config.secret, 'an-option-secret')
  t.same([...config.origins].sort(), ['https://app.example.com', 'https://other.example.com'])
  t.equal(config.publicRole, 'guest')
  t.same(config.authRoutes, { prefix: '/api/auth' })

  const started = await start(t, {
    ...options,
    rest: {
      ...options.rest,
      handlers: { whoami: (message, connection) => connection.send({ type: 'whoami', data: connection.accountability }) }
    }
  })
  t.ok(hasJsonRoute(started.app, '/live'))
  t.notOk(hasJsonRoute(started.app, '/websocket'))
  t.ok(started.app.hasRoute({ method: 'POST', url: '/api/auth/login' }))
  t.equal(started.app.realtime.signAccessToken(identity).expires, 300_000)
  t.equal(await authModeAt(started, '/live'), 'public')

  const first = await connect(started.url('/live'), { origin: 'https://other.example.com' })
  first.send({ type: 'whoami' })
  t.match(await first.next(), { type: 'whoami', data: { user: null, role: 'guest', admin: false } })
  const second = await connect(started.url('/live'), { origin: 'https://app.example.com' })
  t.equal((await refusedWith(started.url('/live'))).status, 503, 'connLimit 2')
  second.send({ type: 'ping', uid: 'x'.repeat(128) })
  t.equal((await second.closed).code, 1009, 'maxPayload 128')
  await first.close()
})

t.test('options only: rest: false and rest.enabled: false leave the endpoint out', async (t) => {
  for (const rest of [false, { enabled: false }] as const) {
    const started = await start(t, { env: {}, secret, rest })
    t.notOk(hasJsonRoute(started.app, '/websocket'))
  }
})

t.test('options only: heartbeat.period in seconds', async (t) => {
  const started = await start(t, { env: {}, secret, rest: { auth: 'public' }, heartbeat: { period: 0.05 } })
  const client = await connect(started.url('/websocket'))
  t.same(await client.next(), { type: 'ping' })
  await client.close()
})

t.test('options only: rest.auth is case-insensitive too', async (t) => {
  const config = await resolveConfig({ env: {}, rest: { auth: 'Strict' as 'strict' } })
  t.equal(config.endpoints.rest.authMode, 'strict')
})

t.test('options only: authRoutes true or {} mounts them under /auth', async (t) => {
  for (const authRoutes of [true, {}]) {
    t.same((await resolveConfig({ env: {}, authRoutes })).authRoutes, { prefix: '/auth' })
  }
  t.equal((await resolveConfig({ env: {}, authRoutes: false })).authRoutes, null)
  // null is unset, as for the other options (`authRoutes: process.env.LOGINS ? {} : null`).
  t.equal((await resolveConfig({ env: {}, authRoutes: null as never })).authRoutes, null, 'null: none')
  const started = await start(t, { env: {}, secret, authRoutes: true })
  for (const route of ['login', 'refresh', 'logout']) {
    t.ok(started.app.hasRoute({ method: 'POST', url: `/auth/${route}` }), route)
  }
})

t.test('both: options win over the environment', async (t) => {
  const env = {
    SECRET: 'the-env-secret',
    WEBSOCKETS_REST_PATH: '/from-env',
    WEBSOCKETS_REST_AUTH: 'strict',
    WEBSOCKETS_REST_AUTH_TIMEOUT: '3',
    WEBSOCKETS_REST_CONN_LIMIT: '5',
    WEBSOCKETS_REST_ENABLED: 'false',
    WEBSOCKETS_HEARTBEAT_ENABLED: 'false',
    WEBSOCKETS_HEARTBEAT_PERIOD: '3',
    WEBSOCKETS_MAX_PAYLOAD: '1000',
    ACCESS_TOKEN_TTL: '1h',
    REFRESH_TOKEN_TTL: '2d',
    PUBLIC_URL: 'https://env.example.com',
    CORS_ORIGIN: 'https://env-cors.example.com'
  }
  const options: RealtimeOptions = {
    env,
    secret: 'the-option-secret',
    rest: { enabled: true, path: '/from-options', auth: 'public', authTimeout: 4, connLimit: 6 },
    heartbeat: { enabled: true, period: 4 },
    maxPayload: 2000,
    accessTokenTtl: '2h',
    refreshTokenTtl: '3d',
    publicUrl: 'https://options.example.com',
    origins: ['https://options-cors.example.com']
  }
  const config = await resolveConfig(options)
  t.same(config.endpoints.rest, {
    name: 'rest', enabled: true, path: '/from-options', authMode: 'public', authTimeoutMs: 4000, connLimit: 6
  })
  t.same(config.heartbeat, { enabled: true, periodMs: 4000 })
  t.equal(config.maxPayload, 2000)
  t.equal(config.accessTokenTtlMs, 2 * 3_600_000)
  t.equal(config.refreshTokenTtlMs, 3 * 86_400_000)
  t.equal(config.secret, 'the-option-secret')
  t.same([...config.origins].sort(), ['https://options-cors.example.com', 'https://options.example.com'])

  const started = await start(t, options)
  t.ok(hasJsonRoute(started.app, '/from-options'))
  t.notOk(hasJsonRoute(started.app, '/from-env'))
  t.equal(await authModeAt(started, '/from-options'), 'public')
  const verifier = Fastify()
  t.teardown(() => verifier.close())
  await verifier.register(fastifyJwt, { secret: 'the-option-secret' })
  await verifier.ready()
  t.match(verifier.jwt.verify(started.app.realtime.signAccessToken(identity).access_token), { id: identity.user })
})

t.test('both: an option left undefined keeps the environment value', async (t) => {
  const config = await resolveConfig({
    env: { WEBSOCKETS_REST_PATH: '/from-env', WEBSOCKETS_REST_AUTH: 'strict' },
    rest: { auth: 'public' }
  })
  t.equal(config.endpoints.rest.path, '/from-env')
  t.equal(config.endpoints.rest.authMode, 'public')
})

t.test('invalid WEBSOCKETS_REST_AUTH fails boot naming the variable and the allowed values', async (t) => {
  await bootFails(t, { env: { SECRET: secret, WEBSOCKETS_REST_AUTH: 'bogus' } },
    /^Invalid configuration: WEBSOCKETS_REST_AUTH must be equal to one of the allowed values: one of public, handshake, strict$/)
})

t.test('invalid rest.auth option fails boot naming the variable, the option and the allowed values', async (t) => {
  await bootFails(t, { env: {}, secret, rest: { auth: 'open' as 'public' } },
    /WEBSOCKETS_REST_AUTH \(option rest\.auth\).*public, handshake, strict/)
  await bootFails(t, { env: {}, secret, rest: { auth: 42 as unknown as 'public' } },
    /WEBSOCKETS_REST_AUTH \(option rest\.auth\).*public, handshake, strict/)
})

t.test('invalid WEBSOCKETS_GRAPHQL_AUTH and WEBSOCKETS_LOGS_AUTH fail boot too', async (t) => {
  await bootFails(t, { env: { SECRET: secret, WEBSOCKETS_GRAPHQL_AUTH: 'none' } }, /WEBSOCKETS_GRAPHQL_AUTH.*public, handshake, strict/)
  await bootFails(t, { env: { SECRET: secret, WEBSOCKETS_LOGS_AUTH: 'admin' } }, /WEBSOCKETS_LOGS_AUTH.*public, handshake, strict/)
})

t.test('invalid WEBSOCKETS_REST_AUTH_TIMEOUT fails boot', async (t) => {
  for (const value of ['soon', '0', '-1']) {
    await bootFails(t, { env: { SECRET: secret, WEBSOCKETS_REST_AUTH_TIMEOUT: value } }, /WEBSOCKETS_REST_AUTH_TIMEOUT must be/)
  }
  await bootFails(t, { env: {}, secret, rest: { authTimeout: 0 } }, /WEBSOCKETS_REST_AUTH_TIMEOUT \(option rest\.authTimeout\) must be >= 0\.01/)
  // Past what a timer can wait, Node would fire it at once: every handshake would end as it began.
  for (const value of ['2147484', '3000000']) {
    await bootFails(t, { env: { SECRET: secret, WEBSOCKETS_REST_AUTH_TIMEOUT: value } }, /WEBSOCKETS_REST_AUTH_TIMEOUT must be <= 2147483/)
  }
  for (const value of ['Infinity', '-infinity']) {
    await bootFails(t, { env: { SECRET: secret, WEBSOCKETS_REST_AUTH_TIMEOUT: value } }, /WEBSOCKETS_REST_AUTH_TIMEOUT must be number/)
  }
  await bootFails(t, { env: {}, secret, graphql: { authTimeout: Infinity } }, /WEBSOCKETS_GRAPHQL_AUTH_TIMEOUT \(option graphql\.authTimeout\) must be number/)
})

t.test('invalid WEBSOCKETS_ADDRESS_CONN_LIMIT fails boot', async (t) => {
  for (const value of ['0', '2.5', 'lots']) {
    await bootFails(t, { env: { SECRET: secret, WEBSOCKETS_ADDRESS_CONN_LIMIT: value } }, /WEBSOCKETS_ADDRESS_CONN_LIMIT must be/)
  }
  await bootFails(t, { env: {}, secret, connLimitPerAddress: 0 }, /WEBSOCKETS_ADDRESS_CONN_LIMIT \(option connLimitPerAddress\) must be >= 1/)
})

t.test('invalid WEBSOCKETS_REST_CONN_LIMIT fails boot', async (t) => {
  for (const value of ['0', '1.5', 'lots', '-3']) {
    await bootFails(t, { env: { SECRET: secret, WEBSOCKETS_REST_CONN_LIMIT: value } }, /WEBSOCKETS_REST_CONN_LIMIT must be/)
  }
  await bootFails(t, { env: {}, secret, rest: { connLimit: 0 } }, /WEBSOCKETS_REST_CONN_LIMIT \(option rest\.connLimit\) must be >= 1/)
})

t.test('invalid WEBSOCKETS_REST_ENABLED fails boot', async (t) => {
  await bootFails(t, { env: { SECRET: secret, WEBSOCKETS_REST_ENABLED: 'maybe' } }, /WEBSOCKETS_REST_ENABLED must be boolean/)
  await bootFails(t, { env: {}, secret, rest: { enabled: 'yes' as unknown as boolean } },
    /WEBSOCKETS_REST_ENABLED \(option rest\.enabled\) must be boolean/)
})

t.test('invalid WEBSOCKETS_REST_PATH fails boot', async (t) => {
  await bootFails(t, { env: { SECRET: secret, WEBSOCKETS_REST_PATH: 'websocket' } }, /WEBSOCKETS_REST_PATH must match pattern "\^\/\[\^\?#\]\*\$"/)
  await bootFails(t, { env: {}, secret, rest: { path: 'live' } }, /WEBSOCKETS_REST_PATH \(option rest\.path\) must match/)
})

t.test('invalid WEBSOCKETS_HEARTBEAT_ENABLED and WEBSOCKETS_HEARTBEAT_PERIOD fail boot', async (t) => {
  await bootFails(t, { env: { SECRET: secret, WEBSOCKETS_HEARTBEAT_ENABLED: 'sometimes' } }, /WEBSOCKETS_HEARTBEAT_ENABLED must be boolean/)
  await bootFails(t, { env: { SECRET: secret, WEBSOCKETS_HEARTBEAT_PERIOD: '0' } }, /WEBSOCKETS_HEARTBEAT_PERIOD must be >= 0\.01/)
  await bootFails(t, { env: {}, secret, heartbeat: { period: -1 } }, /WEBSOCKETS_HEARTBEAT_PERIOD \(option heartbeat\.period\) must be >= 0\.01/)
  await bootFails(t, { env: { SECRET: secret, WEBSOCKETS_HEARTBEAT_PERIOD: 'Infinity' } }, /WEBSOCKETS_HEARTBEAT_PERIOD must be number/)
  await bootFails(t, { env: { SECRET: secret, WEBSOCKETS_MAX_PAYLOAD: 'infinity' } }, /WEBSOCKETS_MAX_PAYLOAD must be integer/)
  await bootFails(t, { env: {}, secret, heartbeat: { period: 3_000_000 } }, /WEBSOCKETS_HEARTBEAT_PERIOD \(option heartbeat\.period\) must be <= 2147483/)
  await bootFails(t, { env: {}, secret, heartbeat: { enabled: 'no' as unknown as boolean } },
    /WEBSOCKETS_HEARTBEAT_ENABLED \(option heartbeat\.enabled\) must be boolean/)
})

t.test('invalid WEBSOCKETS_MAX_PAYLOAD fails boot', async (t) => {
  for (const value of ['0', '1.5', 'big']) {
    await bootFails(t, { env: { SECRET: secret, WEBSOCKETS_MAX_PAYLOAD: value } }, /WEBSOCKETS_MAX_PAYLOAD must be/)
  }
  await bootFails(t, { env: {}, secret, maxPayload: 0 }, /WEBSOCKETS_MAX_PAYLOAD \(option maxPayload\) must be >= 1/)
})

t.test('hostile-client bounds and the issuer: environment, options over it, and boot failures', async (t) => {
  const env = {
    WEBSOCKETS_MAX_BUFFERED_BYTES: '4096',
    ACCESS_TOKEN_ISSUER: 'https://realtime.example.com',
    PASSWORD_QUEUE_LIMIT: '10',
    PASSWORD_QUEUE_PER_ADDRESS: '2'
  }
  const fromEnv = await resolveConfig({ env })
  t.equal(fromEnv.maxBufferedBytes, 4096)
  t.equal(fromEnv.issuer, 'https://realtime.example.com')
  t.same(fromEnv.passwordQueue, { limit: 10, perAddress: 2 })
  t.ok(Object.isFrozen(fromEnv.passwordQueue))
  const fromOptions = await resolveConfig({ env, maxBufferedBytes: 8192, issuer: 'app', passwordQueue: { limit: 20 } })
  t.equal(fromOptions.maxBufferedBytes, 8192)
  t.equal(fromOptions.issuer, 'app')
  t.same(fromOptions.passwordQueue, { limit: 20, perAddress: 2 }, 'an option left out keeps the environment value')

  const started = await start(t, { env: { SECRET: secret, ACCESS_TOKEN_ISSUER: 'from-env' } })
  t.equal(claims(started.app, started.app.realtime.signAccessToken(identity).access_token).iss, 'from-env')

  await bootFails(t, { env: { SECRET: secret, WEBSOCKETS_MAX_BUFFERED_BYTES: '0' } }, /WEBSOCKETS_MAX_BUFFERED_BYTES must be >= 1/)
  await bootFails(t, { env: {}, secret, maxBufferedBytes: 1.5 }, /WEBSOCKETS_MAX_BUFFERED_BYTES \(option maxBufferedBytes\) must be integer/)
  await bootFails(t, { env: {}, secret, issuer: '' }, /ACCESS_TOKEN_ISSUER \(option issuer\) must NOT have fewer than 1 characters/)
  await bootFails(t, { env: { SECRET: secret, PASSWORD_QUEUE_LIMIT: 'many' } }, /PASSWORD_QUEUE_LIMIT must be integer/)
  await bootFails(t, { env: {}, secret, passwordQueue: { perAddress: 0 } }, /PASSWORD_QUEUE_PER_ADDRESS \(option passwordQueue\.perAddress\) must be >= 1/)
})

t.test('GraphQL cost limits: defaults, environment, options over it, and boot failures', async (t) => {
  t.match((await resolveConfig({ env: {} })).graphql, { queryDepthLimit: 10, queryAliasLimit: 15, queryFieldLimit: 200, operationLimit: 100 })
  const env = { GRAPHQL_QUERY_DEPTH_LIMIT: '4', GRAPHQL_QUERY_ALIAS_LIMIT: '0', GRAPHQL_QUERY_FIELD_LIMIT: '50', GRAPHQL_OPERATION_LIMIT: '7' }
  const fromEnv = await resolveConfig({ env })
  t.match(fromEnv.graphql, { queryDepthLimit: 4, queryAliasLimit: 0, queryFieldLimit: 50, operationLimit: 7 }, 'an alias limit of 0 forbids aliases')
  t.ok(Object.isFrozen(fromEnv.graphql))
  const fromOptions = await resolveConfig({ env, graphql: { queryDepthLimit: 5, queryAliasLimit: 6, queryFieldLimit: 70 } })
  t.match(fromOptions.graphql, { queryDepthLimit: 5, queryAliasLimit: 6, queryFieldLimit: 70, operationLimit: 7 }, 'an option left out keeps the environment value')
  t.match((await resolveConfig({ env, graphql: { operationLimit: 8 } })).graphql, { operationLimit: 8 })

  for (const variable of ['GRAPHQL_QUERY_DEPTH_LIMIT', 'GRAPHQL_QUERY_FIELD_LIMIT', 'GRAPHQL_OPERATION_LIMIT']) {
    for (const value of ['0', '1.5', 'lots']) {
      await bootFails(t, { env: { SECRET: secret, [variable]: value } }, new RegExp(`^Invalid configuration: ${variable} must be`))
    }
  }
  await bootFails(t, { env: { SECRET: secret, GRAPHQL_QUERY_ALIAS_LIMIT: '-1' } }, /GRAPHQL_QUERY_ALIAS_LIMIT must be >= 0/)
  await bootFails(t, { env: {}, secret, graphql: { queryDepthLimit: 0 } }, /GRAPHQL_QUERY_DEPTH_LIMIT \(option graphql\.queryDepthLimit\) must be >= 1/)
  await bootFails(t, { env: {}, secret, graphql: { queryAliasLimit: 1.5 } }, /GRAPHQL_QUERY_ALIAS_LIMIT \(option graphql\.queryAliasLimit\) must be integer/)
  await bootFails(t, { env: {}, secret, graphql: { queryFieldLimit: -3 } }, /GRAPHQL_QUERY_FIELD_LIMIT \(option graphql\.queryFieldLimit\) must be >= 1/)
  await bootFails(t, { env: {}, secret, graphql: { operationLimit: 0 } }, /GRAPHQL_OPERATION_LIMIT \(option graphql\.operationLimit\) must be >= 1/)
})

t.test('every invalid value is reported at once', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const error = await app.register(realtime, {
    env: { SECRET: secret, WEBSOCKETS_REST_AUTH: 'x', WEBSOCKETS_MAX_PAYLOAD: '0' },
    rest: { path: 'p' }
  }).ready().then(() => null, (err: Error) => err)
  t.match(error, { code: invalid })
  const problems = error!.message.replace(/^Invalid configuration: /, '').split('; ').sort()
  t.same(problems, [
    'WEBSOCKETS_MAX_PAYLOAD must be >= 1',
    'WEBSOCKETS_REST_AUTH must be equal to one of the allowed values: one of public, handshake, strict',
    'WEBSOCKETS_REST_PATH (option rest.path) must match pattern "^/[^?#]*$"'
  ])
})

t.test('bad durations fail boot', async (t) => {
  for (const value of ['forever', '0', '-5m', '9'.repeat(400), '0s']) {
    await bootFails(t, { env: { SECRET: secret, ACCESS_TOKEN_TTL: value } },
      /ACCESS_TOKEN_TTL must be a positive duration such as 15m, 7d or 900000/)
  }
  await bootFails(t, { env: { SECRET: secret, REFRESH_TOKEN_TTL: 'a week' } }, /REFRESH_TOKEN_TTL must be a positive duration .*"a week"/)
  await bootFails(t, { env: {}, secret, accessTokenTtl: 0 }, /ACCESS_TOKEN_TTL \(option accessTokenTtl\) must be a positive duration .*"0"/)
  // A JavaScript caller's mistake: TypeScript refuses it.
  await bootFails(t, { env: {}, secret, refreshTokenTtl: 'soon' as never }, /REFRESH_TOKEN_TTL \(option refreshTokenTtl\) must be a positive duration .*"soon"/)
})

t.test('a CORS_ORIGIN for @fastify/cors only (*, true, false) is ignored for sockets, with a warning naming the origins option', async (t) => {
  for (const value of ['*', 'true', 'false', 'https://app.example.com,*', 'https://*.example.com']) {
    const lines: string[] = []
    const started = await start(t, { env: { SECRET: secret, WEBSOCKETS_REST_AUTH: 'public', CORS_ORIGIN: value } }, async (app) => {
      app.log.warn = ((line: string) => { lines.push(line) }) as never
    })
    const bad = value.split(',').at(-1)!
    t.same(lines, [`CORS_ORIGIN "${bad}" is ignored for sockets (any origin would let every site open them with your users' cookies): list the origins allowed to open sockets in the plugin's \`origins\` option`], value)
    t.equal((await refusedWith(started.url('/websocket'), { headers: { origin: 'https://evil.example' } })).status, 403, `${value}: other origins still refused`)
  }
  const config = await resolveConfig({ env: { CORS_ORIGIN: 'https://app.example.com,*' } })
  t.same([...config.origins], ['https://app.example.com'], 'the listed origins are kept')
  // The option is the plugin's own: there a wildcard is a mistake.
  await bootFails(t, { env: {}, secret, origins: ['*'] }, /CORS_ORIGIN \(option origins\) must list origins: a wildcard/)
  await bootFails(t, { env: {}, secret, origins: ['https://*.example.com'] }, /CORS_ORIGIN \(option origins\) must list origins: a wildcard/)
})

t.test('a redisPrefix with a brace fails boot: a cluster would read it as the keys\' hash tag', async (t) => {
  for (const redisPrefix of ['app{}:', '{tenant}:']) {
    await bootFails(t, { env: {}, secret, redisPrefix }, /redisPrefix must not contain \{ or \}/)
  }
  t.ok(await resolveConfig({ env: {}, redisPrefix: 'tenant-a:' }), 'any other prefix boots')
})

t.test('options of the wrong kind fail boot, naming the option, and never echo a password or a secret', async (t) => {
  const cases: Array<[RealtimeOptions, RegExp]> = [
    [{ verifyCredentials: 'x' as never }, /verifyCredentials must be a function \(got a string of 1 character\)$/],
    [{ mapClaims: {} as never }, /mapClaims must be a function \(got object\)/],
    [{ onAuthenticate: true as never }, /onAuthenticate must be a function \(got boolean\)/],
    [{ origins: 'https://app.example.com' as never }, /origins must be a list of origins, such as \['https:\/\/app.example.com'\] \(got a string of 23 characters\)$/],
    [{ origins: [1] as never }, /origins must be a list of origins/],
    [{ users: {} as never }, /users must be a list of users or a UserDirectory \(got object\)/],
    [{ users: [null] as never }, /users\[0\] must be a user: \{ email, password \}/],
    [{ users: [admin, { password: 'p' }] as never }, /users\[1\]'s email must be an email address/],
    [{ users: [{ email: 'a@example.com', password: 42 }] as never }, /users\[0\]'s password must be a non-empty string$/],
    [{ users: [{ ...admin, otpSecret: 'not base32!' }] }, /users\[0\]'s otpSecret must be a base32 TOTP secret of 16 characters or more$/],
    [{ users: [{ ...admin, otpSecret: ' ' }] }, /users\[0\]'s otpSecret must be a base32 TOTP secret of 16 characters or more$/],
    [{ users: [admin, { email: 'b@example.com', password: 'p' }, { email: ` ${admin.email.toUpperCase()}`, password: 'q' }] }, /users\[2\] has the email of users\[0\]: list each user once$/],
    [{ users: [{ ...admin, id: 'user-1' }, { email: 'b@example.com', password: 'p' }, { email: 'c@example.com', password: 'q', id: 'user-1' }] }, /users\[2\] has the id of users\[0\]: give each user an id of their own$/],
    [{ users: [{ ...admin, id: 1 }] as never }, /users\[0\]'s id must be a non-empty string$/],
    [{ sessionStore: {} as never }, /sessionStore must be a session store \(create, rotate, lookup, end, endUser\) \(got object\)/],
    [{ redis: 1234 as never }, /redis must be a URL or an ioredis client \(got number\)/],
    [{ redis: [] as never }, /redis must be a URL or an ioredis client \(got an array\)/],
    // ioredis would take these for socket paths, and fail every command once booted.
    [{ redis: 'not a url' }, /redis must be a redis:\/\/ or rediss:\/\/ URL \(such as redis:\/\/127\.0\.0\.1:6379\) or an ioredis client$/],
    [{ redis: 'localhost' }, /redis must be a redis:\/\/ or rediss:\/\/ URL/],
    [{ redis: 'htp://:s3cret@127.0.0.1:6379' }, /redis must be a redis:\/\/ or rediss:\/\/ URL \(such as redis:\/\/127\.0\.0\.1:6379\) or an ioredis client$/],
    [{ redis: 'redis://' }, /redis must be a redis:\/\/ or rediss:\/\/ URL/]
  ]
  for (const [options, message] of cases) await bootFails(t, { env: {}, secret, ...options }, message)
  // An environment variable given where an object was meant: the error says what it is, never what it holds.
  const usersJson = JSON.stringify([{ ...admin, otpSecret: 'JBSWY3DPEHPK3PXP' }])
  const databaseUrl = 'postgres://app:db-Pa55word@db.internal/app'
  await bootFails(t, { env: {}, secret, users: usersJson as never },
    new RegExp(`^Invalid configuration: users must be a list of users or a UserDirectory \\(got a string of ${usersJson.length} characters\\)$`))
  await bootFails(t, { env: {}, secret, sessionStore: databaseUrl as never },
    /^Invalid configuration: sessionStore must be a session store \(create, rotate, lookup, end, endUser\) \(got a string of 42 characters\)$/)
  // null is unset (`redis: process.env.REDIS_URL ?? null`), as it always was.
  const unset = Fastify()
  t.teardown(() => unset.close())
  await unset.register(realtime, {
    env: {}, secret, ...Object.fromEntries(['verifyCredentials', 'mapClaims', 'onAuthenticate', 'origins', 'users', 'sessionStore', 'redis'].map(option => [option, null]))
  })
  t.ok(await unset.ready(), 'every one of them null: boots')
  // The app's own directory, given the same user, says the same.
  await t.rejects(async () => { await new UserDirectory().add({ email: 'a@example.com', password: '' }) },
    { code: invalid, message: /the user's password must be a non-empty string/ })
})

t.test('cookie settings browsers would refuse, or that would read one cookie as the other, fail boot', async (t) => {
  await bootFails(t, { env: { SECRET: secret, REFRESH_TOKEN_COOKIE_NAME: 'rt', SESSION_COOKIE_NAME: 'rt' } },
    /REFRESH_TOKEN_COOKIE_NAME and SESSION_COOKIE_NAME must differ \(both are rt\)/)
  await bootFails(t, { env: {}, secret, cookies: { session: { name: '__Host-session' } } },
    /SESSION_COOKIE_NAME \(option cookies\.session\.name\) __Host-session needs SESSION_COOKIE_SECURE true/)
  await bootFails(t, { env: { SECRET: secret, REFRESH_TOKEN_COOKIE_NAME: '__Secure-rt' } }, /REFRESH_TOKEN_COOKIE_NAME __Secure-rt needs REFRESH_TOKEN_COOKIE_SECURE true/)
  await bootFails(t, { env: { SECRET: secret, SESSION_COOKIE_NAME: '__Host-s', SESSION_COOKIE_SECURE: 'true', SESSION_COOKIE_DOMAIN: 'example.com' } },
    /SESSION_COOKIE_NAME __Host-s takes no SESSION_COOKIE_DOMAIN/)
  for (const domain of ['a;b', 'exa mple.com', ' ', 'example.com/', '-example.com']) {
    await bootFails(t, { env: { SECRET: secret, REFRESH_TOKEN_COOKIE_DOMAIN: domain } }, /REFRESH_TOKEN_COOKIE_DOMAIN must match pattern/)
  }
  const config = await resolveConfig({ env: { SESSION_COOKIE_NAME: '__Host-s', SESSION_COOKIE_SECURE: 'true', REFRESH_TOKEN_COOKIE_DOMAIN: '.example.com' } })
  t.equal(config.cookies.session.name, '__Host-s', 'a __Host- cookie, Secure and without a domain, boots')
  t.equal(config.cookies.refresh.domain, '.example.com')
})

t.test('a short SECRET is warned about, and fails boot with NODE_ENV=production', async (t) => {
  const lines: string[] = []
  await start(t, { env: { SECRET: 'short' } }, async (app) => {
    app.log.warn = ((line: string) => { lines.push(line) }) as never
  })
  t.match(lines, [/^SECRET \(option secret\) is 5 characters: .* use 32 random characters or more .*\. With NODE_ENV=production this fails boot$/])
  await bootFails(t, { env: { NODE_ENV: 'production', SECRET: 'x'.repeat(31) } }, /SECRET \(option secret\) is 31 characters/)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, { env: { NODE_ENV: 'production', SECRET: 'abcdefghbadcfehgcdabghefdcbahgfe' } })
  t.pass('32 characters, 8 of them distinct, no pattern repeated, boot in production')
})

t.test('a blank SECRET, or one of a few characters repeated, is as weak as a short one', async (t) => {
  const lines: string[] = []
  await start(t, { env: {}, secret: ' '.repeat(32) }, async (app) => {
    app.log.warn = ((line: string) => { lines.push(line) }) as never
  })
  t.match(lines, [/^SECRET \(option secret\) is blank: .* use 32 random characters or more .*\. With NODE_ENV=production this fails boot$/])
  await bootFails(t, { env: { NODE_ENV: 'production' }, secret: ' '.repeat(32) }, /SECRET \(option secret\) is blank: anyone who guesses it/)
  await bootFails(t, { env: { NODE_ENV: 'production' }, secret: 'a'.repeat(32) }, /SECRET \(option secret\) has fewer than 8 distinct characters: anyone who guesses it/)
  await bootFails(t, { env: { NODE_ENV: 'production' }, secret: 'abcdefg'.repeat(5) }, /SECRET \(option secret\) has fewer than 8 distinct characters/)
})

t.test('a SECRET that repeats a pattern shorter than 32 characters is as weak as that pattern', async (t) => {
  const lines: string[] = []
  await start(t, { env: {}, secret: '0123456789'.repeat(4) }, async (app) => {
    app.log.warn = ((line: string) => { lines.push(line) }) as never
  })
  t.match(lines, [/^SECRET \(option secret\) repeats its first 10 characters: .* use 32 random characters or more .*\. With NODE_ENV=production this fails boot$/])
  await bootFails(t, { env: { NODE_ENV: 'production' }, secret: 'abcdefgh'.repeat(4) }, /SECRET \(option secret\) repeats its first 8 characters: anyone who guesses it/)
  // Cut anywhere: the tail is the pattern's beginning all the same.
  await bootFails(t, { env: { NODE_ENV: 'production' }, secret: 'correct-horse-battery-'.repeat(3).slice(0, 50) }, /SECRET \(option secret\) repeats its first 22 characters/)
  await bootFails(t, { env: { NODE_ENV: 'production' }, secret: 'ab'.repeat(16) }, /SECRET \(option secret\) has fewer than 8 distinct characters/)
  t.equal(secretWeakness('0123456789abcdefghijklmnopqrstu'.repeat(2)), 'repeats its first 31 characters', 'as weak as a secret of 31')
  t.equal(secretWeakness('0123456789abcdefghijklmnopqrstuv'.repeat(2)), null, 'a pattern of 32 characters is as strong as a secret of 32')
  t.equal(secretWeakness('abcdefghijklmnopqrstuvwxyz0123ab'), null, 'ending as it begins is no repetition')
})

t.test('random secrets (hex and base64 of 32 random bytes, base64 of 24) are never weak', async (t) => {
  const weak: string[] = []
  for (let i = 0; i < 5_000; i++) {
    const bytes = randomBytes(32)
    // openssl rand -base64 24: 32 characters, the shortest a secret may be.
    for (const secret of [bytes.toString('hex'), bytes.toString('base64'), bytes.toString('base64url'), bytes.subarray(0, 24).toString('base64')]) {
      if (secretWeakness(secret) !== null) weak.push(secret)
    }
  }
  t.same(weak, [], '20,000 secrets')
})

t.test("NODE_ENV is read from the env option, else from the process's own environment", async (t) => {
  processEnv(t, 'NODE_ENV', 'production')
  // An app passing its settings alone, without NODE_ENV among them, is in production all the same.
  await bootFails(t, { env: { SECRET: 'short', PUBLIC_URL: 'https://app.example.com' } }, /SECRET \(option secret\) is 5 characters/)
  t.equal((await resolveConfig({ env: {} })).production, true)
  t.equal((await resolveConfig({ env: { NODE_ENV: 'development' } })).production, false, 'the env option wins')
  delete process.env.NODE_ENV
  t.equal((await resolveConfig({ env: { NODE_ENV: 'production' } })).production, true)
  t.equal((await resolveConfig({ env: {} })).production, false)
})

t.test('NODE_ENV is production whatever its case, and around spaces', async (t) => {
  for (const value of ['Production', 'PRODUCTION', ' production', 'production\n', '\tProduction ']) {
    t.equal((await resolveConfig({ env: { NODE_ENV: value } })).production, true, JSON.stringify(value))
    await bootFails(t, { env: { NODE_ENV: value, SECRET: 'short' } }, /SECRET \(option secret\) is 5 characters/)
  }
  for (const value of ['', 'development', 'preproduction', 'production-eu', 'prod']) {
    t.equal((await resolveConfig({ env: { NODE_ENV: value } })).production, false, JSON.stringify(value))
  }
  processEnv(t, 'NODE_ENV', 'PRODUCTION ')
  t.equal((await resolveConfig({ env: {} })).production, true, "the process's own, read alike")
})

t.test('malformed origins are refused', async (t) => {
  for (const value of ['app.example.com', 'https://ok.example.com,not a url', 'file:///etc/passwd', 'data:text/plain,x']) {
    await bootFails(t, { env: { SECRET: secret, CORS_ORIGIN: value } }, /CORS_ORIGIN must be a URL such as https:\/\/app\.example\.com/)
  }
  await bootFails(t, { env: {}, secret, origins: ['//no-scheme.example.com'] }, /CORS_ORIGIN \(option origins\) must be a URL .*"\/\/no-scheme\.example\.com"/)
})

t.test('a malformed PUBLIC_URL is refused', async (t) => {
  await bootFails(t, { env: { SECRET: secret, PUBLIC_URL: 'localhost:8055' } }, /PUBLIC_URL must be a URL .*"localhost:8055"/)
  await bootFails(t, { env: {}, secret, publicUrl: '/admin' }, /PUBLIC_URL \(option publicUrl\) must be a URL .*"\/admin"/)
})

t.test('a missing SECRET fails boot when the app has no @fastify/jwt', async (t) => {
  await bootFails(t, { env: {} }, /SECRET \(option secret\) is required to sign access tokens/)
  await bootFails(t, { env: { SECRET: '' } }, /SECRET \(option secret\) is required/)
  await bootFails(t, { env: {}, secret: '' }, /SECRET \(option secret\) must NOT have fewer than 1 characters/)
})

t.test("an app's own @fastify/jwt and @fastify/websocket are used as they are", async (t) => {
  const started = await start(t, { env: {}, rest: { auth: 'strict' }, maxPayload: 64 }, async (app) => {
    await app.register(fastifyJwt, { secret: 'the-app-secret' })
    await app.register(fastifyWebsocket, { options: { maxPayload: 4096 } })
  })
  const { app } = started
  t.equal(app.websocketServer.options.maxPayload, 4096, "the app's websocket server, not a second one")

  // A token the app signed itself, without the plugin, opens a strict socket.
  const own = app.realtime.jwt.sign({ id: 'app-user', role: 'editor' })
  const client = await connect(started.url(`/websocket?access_token=${own}`))
  t.match(started.upgrades.at(-1), { authMode: 'strict', accountability: { user: 'app-user', role: 'editor' } })
  // The plugin still enforces its own maxPayload on frames the app's server lets through.
  client.send({ type: 'ping', uid: 'x'.repeat(100) })
  t.equal((await client.closed).code, 1009)

  // The plugin signs with the app's key.
  t.match(app.realtime.jwt.verify(app.realtime.signAccessToken(identity).access_token), { id: identity.user })
  // A token under another key is refused.
  const stranger = Fastify()
  t.teardown(() => stranger.close())
  await stranger.register(fastifyJwt, { secret: 'another-secret' })
  await stranger.ready()
  t.equal((await refusedWith(started.url(`/websocket?access_token=${stranger.jwt.sign({ id: 'x' })}`))).status, 401)
})

t.test('options.jwt reaches the @fastify/jwt the plugin registers', async (t) => {
  const started = await start(t, { env: {}, secret, jwt: { sign: { aud: 'fastify-realtime-test' } } })
  t.match(claims(started.app, started.app.realtime.signAccessToken(identity).access_token), { aud: 'fastify-realtime-test', iss: 'fastify-realtime' })
})

t.test('resolveConfig on its own: invalid values reject with FST_REALTIME_INVALID_CONFIG', async (t) => {
  await t.rejects(resolveConfig({ env: { WEBSOCKETS_REST_AUTH: 'nope' } }), {
    code: invalid,
    statusCode: 500,
    message: /WEBSOCKETS_REST_AUTH.*public, handshake, strict/
  })
})

t.test('without an env option, process.env is read', async (t) => {
  processEnv(t, 'WEBSOCKETS_REST_PATH', '/from-process-env')
  t.equal((await resolveConfig({})).endpoints.rest.path, '/from-process-env')
})

t.test('an option the plugin does not read, top level or an endpoint\'s, is named in a warning at boot; Fastify\'s register options are none', async (t) => {
  const config = await resolveConfig({
    env: {},
    secret,
    prefix: '/api',
    logLevel: 'warn',
    redisUrl: 'redis://127.0.0.1:6379',
    rest: { auth: 'public', authMode: 'strict' },
    graphql: { operationlimit: 10 },
    logs: { enabled: true, paht: '/logs' }
  } as RealtimeOptions)
  t.same(config.warnings, ['redisUrl', 'rest.authMode', 'graphql.operationlimit', 'logs.paht'].map(ignored))
  t.same((await resolveConfig({ env: {}, secret, rest: { auth: 'public', handlers: {} }, logs: false, graphql: { operationLimit: 5 } })).warnings, [],
    'every option it reads')
})

t.test('an option the plugin does not read inside one of its option objects is named by its path, once; the app\'s own objects are not looked into', async (t) => {
  const config = await resolveConfig({
    env: {},
    secret,
    heartbeat: { perod: 10 },
    passwordQueue: { limt: 8, perAddress: 2 },
    // A cookie meant Secure that would not be.
    cookies: { refresh: { secur: true, sameSite: 'strict' }, session: { ttl: '2h', domian: 'example.com' }, sesion: {} },
    attemptLimit: { point: 5 },
    authRoutes: { prefx: '/login' },
    graphql: { limits: { depth: 3 } }
  } as RealtimeOptions)
  t.same(config.warnings, [
    'heartbeat.perod',
    'passwordQueue.limt',
    'cookies.refresh.secur',
    'cookies.session.domian',
    'cookies.sesion',
    'attemptLimit.point',
    'authRoutes.prefx',
    'graphql.limits'
  ].map(ignored))

  // Every option, nested ones too: none is named. The app's objects (the environment, @fastify/jwt's options, a
  // store, handlers, a schema's stand-in) hold names of their own, never read as options.
  const store = { create: async () => {}, rotate: async () => ({ status: 'unknown' }), lookup: async () => ({ status: 'unknown' }), end: async () => null, endUser: async () => [], mine: 1 }
  const every: Required<RealtimeOptions> = {
    prefix: '/api',
    logLevel: 'warn',
    logSerializers: { req: () => 'request' },
    env: { ANY_VARIABLE: 'x' },
    secret,
    jwt: { sign: { aud: 'x' }, verify: { allowedAud: 'x' }, anything: true } as RealtimeOptions['jwt'] & object,
    onAuthenticate: () => true,
    rest: { enabled: true, path: '/ws', auth: 'public', authTimeout: 5, connLimit: 10, handlers: { echo: () => {}, schemaed: { schema: { type: 'object' }, handler: () => {} } } },
    logs: { enabled: true, path: '/ws/logs', auth: 'strict', authTimeout: 5, connLimit: 10 },
    graphql: {
      enabled: true,
      path: '/gql',
      auth: 'handshake',
      authTimeout: 5,
      connLimit: 10,
      schema: { notAnOption: true } as never,
      context: () => ({}),
      queryTokenLimit: 100,
      queryDepthLimit: 5,
      queryAliasLimit: 5,
      queryFieldLimit: 50,
      operationLimit: 5,
      introspection: false
    },
    heartbeat: { enabled: true, period: 10 },
    maxPayload: 1024,
    maxBufferedBytes: 4096,
    connLimitPerAddress: 10,
    maxSessionsPerUser: 5,
    issuer: 'me',
    passwordQueue: { limit: 8, perAddress: 2 },
    accessTokenTtl: '5m',
    refreshTokenTtl: '1d',
    publicUrl: 'https://app.example.com',
    origins: ['https://other.example.com'],
    publicRole: 'public',
    mapClaims: () => null,
    verifyCredentials: async () => null,
    users: [{ email: 'a@example.com', password: 'pw', otpSecret: undefined }],
    sessionStore: store as unknown as RealtimeOptions['sessionStore'] & object,
    redis: 'redis://127.0.0.1:6379',
    redisPrefix: 'rt:',
    redisReplicaAcks: 0,
    authRoutes: { prefix: '/auth' },
    cookies: {
      refresh: { name: 'refresh', secure: true, sameSite: 'none', domain: 'example.com' },
      session: { name: 'session', secure: true, sameSite: 'strict', domain: 'example.com', ttl: '1h' }
    },
    attemptLimit: { points: 5, durationSeconds: 30 }
  }
  t.same((await resolveConfig(every)).warnings, [], 'every option it reads')
  t.same((await resolveConfig({ env: {}, secret, rest: false, logs: false, graphql: false, authRoutes: true, attemptLimit: false })).warnings, [],
    'and the options that are no objects where they may be one')
})

t.test('another Redis library\'s client fails boot, naming the option: node-redis has publish, eval and duplicate too', async (t) => {
  // It booted, then answered every login 503 (it has no status to wait on, and evals otherwise).
  const client = createClient({ url: 'redis://127.0.0.1:1' })
  await bootFails(t, { env: {}, secret, redis: client as never }, /^Invalid configuration: redis must be a URL or an ioredis client \(got object\)$/)
  t.equal(client.isOpen, false, 'and it is never connected')
})

t.test('a redis URL whose path is no database number fails boot, naming the option and never echoing the URL', async (t) => {
  // ioredis would send SELECT NaN (an uncaught rejection: the process ends) or SELECT -1 (refused, and every command
  // then runs on database 0).
  for (const redis of ['redis://127.0.0.1:6391/abc', 'redis://:s3cret@127.0.0.1:6391/-1', 'redis://127.0.0.1:6391/1.5',
    'redis://127.0.0.1:6391/0/x', 'redis://127.0.0.1:6391/3abc', 'redis://127.0.0.1:6391?db=abc', 'rediss://127.0.0.1:6391/?db=-2']) {
    await bootFails(t, { env: {}, secret, redis },
      /^Invalid configuration: redis's database \(the URL's path, or its db parameter\) must be a whole number, such as redis:\/\/127\.0\.0\.1:6379\/0$/)
  }
  for (const redis of ['redis://127.0.0.1:6391', 'redis://127.0.0.1:6391/', 'redis://127.0.0.1:6391/0', 'redis://127.0.0.1:6391/15', 'redis://127.0.0.1:6391?db=2']) {
    t.ok(await resolveConfig({ env: {}, redis }), `${redis} is a URL of a database`)
  }
})

t.test('a database the Redis server does not have fails boot, naming it, instead of running on database 0', async (t) => {
  const crashes = recordCrashes(t)
  const server = await RedisServer.start(t)
  // Before the check, this one ended the process: SELECT NaN rejected with nothing to catch it.
  await bootFails(t, { env: {}, secret, redis: `redis://127.0.0.1:${server.port}/abc` }, /redis's database \(the URL's path, or its db parameter\) must be a whole number/)
  await bootFails(t, { env: {}, secret, redis: `redis://127.0.0.1:${server.port}/99` },
    /^Invalid configuration: redis names database 99, which the Redis server refuses \(ERR DB index is out of range\)$/)
  const started = await start(t, { env: {}, secret, redis: `redis://127.0.0.1:${server.port}/15` })
  t.ok(started.app.realtime, 'a database the server has boots')
  t.same(crashes, [])
})

t.test('durations past 100 years fail boot: cookies, dates and Redis expiries could not hold them', async (t) => {
  for (const [variable, value] of [['REFRESH_TOKEN_TTL', '9999999999999999999'], ['REFRESH_TOKEN_TTL', '101y'], ['ACCESS_TOKEN_TTL', '1000y'], ['SESSION_COOKIE_TTL', '40000d']]) {
    await bootFails(t, { env: { SECRET: secret, [variable!]: value } }, new RegExp(`^Invalid configuration: ${variable} must be at most 100 years \\(got "${value}"\\)$`))
  }
  await bootFails(t, { env: {}, secret, cookies: { session: { ttl: 1e19 } } }, /SESSION_COOKIE_TTL \(option cookies\.session\.ttl\) must be at most 100 years/)
  // The longest allowed works end to end: the cookie and session logins answer with their cookies.
  const { app } = await build(t, { users: [admin], authRoutes: true, env: { REFRESH_TOKEN_TTL: '100y', SESSION_COOKIE_TTL: '100y', ACCESS_TOKEN_TTL: '100y' } })
  for (const mode of ['json', 'cookie', 'session']) {
    const response = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password, mode } })
    t.equal(response.statusCode, 200, `${mode} login`)
  }
})

t.test('the session cookie\'s refresh grace: 10 s by default, a duration or 0 (off), from the variable or the option', async (t) => {
  const grace = async (options: RealtimeOptions) => (await resolveConfig({ secret, ...options })).cookies.session.refreshGraceMs
  t.equal(await grace({ env: {} }), 10_000)
  t.equal(await grace({ env: { SESSION_REFRESH_GRACE_PERIOD: '0' } }), 0)
  t.equal(await grace({ env: { SESSION_REFRESH_GRACE_PERIOD: '0s' } }), 0)
  t.equal(await grace({ env: { SESSION_REFRESH_GRACE_PERIOD: '2500' } }), 2_500, 'a bare number is milliseconds')
  t.equal(await grace({ env: { SESSION_REFRESH_GRACE_PERIOD: '30s' } }), 30_000)
  t.equal(await grace({ env: { SESSION_REFRESH_GRACE_PERIOD: '30s' }, cookies: { session: { refreshGrace: 0 } } }), 0, 'the option over the variable')
  await bootFails(t, { env: { SECRET: secret, SESSION_REFRESH_GRACE_PERIOD: '-1s' } },
    /^Invalid configuration: SESSION_REFRESH_GRACE_PERIOD must be a duration such as 10s, 900000, or 0 \(got "-1s"\)$/)
  await bootFails(t, { env: {}, secret, cookies: { session: { refreshGrace: 'soon' as never } } },
    /SESSION_REFRESH_GRACE_PERIOD \(option cookies\.session\.refreshGrace\) must be a duration such as 10s/)
})

t.test('the plugin\'s own options of the wrong kind fail boot, naming the option and what it takes', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ authRoutes: 'false' }, /^Invalid configuration: authRoutes must be true, false or \{ prefix \} \(got a string of 5 characters\)$/],
    [{ authRoutes: { prefix: 5 } }, /^Invalid configuration: authRoutes\.prefix must be a string \(got number\)$/],
    [{ heartbeat: false }, /^Invalid configuration: heartbeat must be an object, such as \{ enabled: false \} \(got boolean\)$/],
    [{ rest: 'strict' }, /^Invalid configuration: rest must be an object or false \(got a string of 6 characters\)$/],
    [{ rest: true }, /^Invalid configuration: rest must be an object or false \(got boolean\)$/],
    [{ graphql: true }, /^Invalid configuration: graphql must be an object or false \(got boolean\)$/],
    [{ logs: [] }, /^Invalid configuration: logs must be an object or false \(got an array\)$/],
    [{ cookies: true }, /^Invalid configuration: cookies must be an object \(got boolean\)$/],
    [{ cookies: { refresh: 'secure' } }, /^Invalid configuration: cookies\.refresh must be an object \(got a string of 6 characters\)$/],
    [{ cookies: { session: 1 } }, /^Invalid configuration: cookies\.session must be an object \(got number\)$/],
    [{ passwordQueue: 4 }, /^Invalid configuration: passwordQueue must be an object \(got number\)$/],
    [{ attemptLimit: true }, /^Invalid configuration: attemptLimit must be an object or false \(got boolean\)$/],
    [{ env: 'x' }, /^Invalid configuration: env must be an object of variables \(got a string of 1 character\)$/],
    [{ publicRole: 5 }, /^Invalid configuration: publicRole must be a string or null \(got number\)$/],
    [{ jwt: 'x' }, /^Invalid configuration: jwt must be an object of @fastify\/jwt's options \(got a string of 1 character\)$/],
    [{ secret: 1234567890 }, /^Invalid configuration: secret must be a string \(got number\)$/],
    [{ redisPrefix: 5 }, /^Invalid configuration: redisPrefix must be a string \(got number\)$/],
    [{ redisReplicaAcks: -1 }, /^Invalid configuration: redisReplicaAcks must be a whole number of replicas, 0 or more \(got number\)$/],
    [{ redisReplicaAcks: '1' }, /^Invalid configuration: redisReplicaAcks must be a whole number of replicas, 0 or more \(got a string of 1 character\)$/],
    [{ rest: { handlers: 'whoami' } }, /^Invalid configuration: rest\.handlers must be an object of handlers by type \(got a string of 6 characters\)$/],
    [{ graphql: { context: {} } }, /^Invalid configuration: graphql\.context must be a function \(got object\)$/]
  ]
  for (const [options, message] of cases) await bootFails(t, { env: {}, secret, ...options } as RealtimeOptions, message)
  // Every documented form still boots: false for an endpoint, the attempt limits or the auth routes, and null as unset.
  const config = await resolveConfig({
    env: {},
    rest: false,
    graphql: false,
    logs: {},
    attemptLimit: false,
    authRoutes: false,
    heartbeat: { enabled: false },
    publicRole: null,
    cookies: { refresh: {}, session: { ttl: '2h' } },
    ...Object.fromEntries(['jwt', 'passwordQueue', 'redisPrefix'].map(option => [option, null]))
  })
  t.match(config, { authRoutes: null, attemptLimit: null, heartbeat: { enabled: false }, publicRole: null })
  t.match((await resolveConfig({ env: {}, authRoutes: { prefix: '/login' }, publicRole: 'public' })), { authRoutes: { prefix: '/login' }, publicRole: 'public' })
})

t.test('a heartbeat period or an auth timeout under 10 ms fails boot: no client answers that fast', async (t) => {
  await bootFails(t, { env: { SECRET: secret, WEBSOCKETS_HEARTBEAT_PERIOD: '0.001' } }, /^Invalid configuration: WEBSOCKETS_HEARTBEAT_PERIOD must be >= 0\.01$/)
  for (const variable of ['WEBSOCKETS_REST_AUTH_TIMEOUT', 'WEBSOCKETS_GRAPHQL_AUTH_TIMEOUT', 'WEBSOCKETS_LOGS_AUTH_TIMEOUT']) {
    await bootFails(t, { env: { SECRET: secret, [variable]: '1e-9' } }, new RegExp(`^Invalid configuration: ${variable} must be >= 0\\.01$`))
  }
  await bootFails(t, { env: {}, secret, heartbeat: { period: 0.005 } }, /WEBSOCKETS_HEARTBEAT_PERIOD \(option heartbeat\.period\) must be >= 0\.01/)
  const config = await resolveConfig({ env: { WEBSOCKETS_HEARTBEAT_PERIOD: '0.01' }, rest: { authTimeout: 0.01 } })
  t.equal(config.heartbeat.periodMs, 10)
  t.equal(config.endpoints.rest.authTimeoutMs, 10)
})

t.test('a WEBSOCKETS_X_PATH with a query or a fragment fails boot: no request path would ever match it', async (t) => {
  for (const path of ['/ws?x=1', '/ws#x']) {
    await bootFails(t, { env: { SECRET: secret, WEBSOCKETS_REST_PATH: path } }, /^Invalid configuration: WEBSOCKETS_REST_PATH must match pattern/)
  }
  await bootFails(t, { env: {}, secret, graphql: { path: '/gql?' } }, /WEBSOCKETS_GRAPHQL_PATH \(option graphql\.path\) must match pattern/)
})

t.test('an authRoutes.prefix with a query or a fragment fails boot, as a path does: no login would ever reach it', async (t) => {
  for (const prefix of ['/auth?x', '/auth#x']) {
    await bootFails(t, { env: {}, secret, authRoutes: { prefix } }, /^Invalid configuration: authRoutes\.prefix must not contain \? or #/)
  }
  t.same((await resolveConfig({ env: {}, authRoutes: { prefix: 'api/auth' } })).authRoutes, { prefix: 'api/auth' }, 'Fastify adds the slash')
})
