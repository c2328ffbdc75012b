// fastify-realtime: Directus-style authenticated realtime for any Fastify app.
import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import fastifyJwt from '@fastify/jwt'
import fastifyWebsocket from '@fastify/websocket'
import fastifyCookie from '@fastify/cookie'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { resolveConfig, type EndpointConfig } from './config.js'
import { InvalidConfigError, RealtimeError, refusal } from './errors.js'
import { Authenticator, defaultMapClaims } from './auth/authenticator.js'
import { PasswordChecks } from './auth/password-checks.js'
import { Revocations } from './auth/revocations.js'
import { memoryBackend, redisBackend, type Backend } from './stores/backend.js'
import { unlimited } from './stores/attempts/contract.js'
import { captureLogLines } from './logs/capture.js'
import { LogStream } from './endpoints/logs.js'
import { RealtimeEvents } from './events.js'
import { UserDirectory } from './auth/user-directory.js'
import { Registry } from './connection/registry.js'
import { guardPolicy } from './connection/guard.js'
import { Outbound } from './connection/outbound.js'
import { jsonEndpoint } from './endpoints/rest.js'
import { upgradeGate } from './endpoints/upgrade.js'
import { startHeartbeat } from './endpoints/heartbeat.js'
import { authRoutes } from './routes/auth.js'
import type { RealtimeApi, RealtimeOptions } from '../types/index.js'

// HS256's key should be as long as its hash: 256 bits, 32 characters at the very least.
const minSecretLength = 32

async function realtime (fastify: FastifyInstance, options: RealtimeOptions) {
  const config = await resolveConfig(options)
  for (const warning of config.warnings) fastify.log.warn(warning)

  if (!fastify.hasDecorator('jwt')) {
    if (!config.secret) {
      throw new InvalidConfigError('SECRET (option secret) is required to sign access tokens, unless the app registers @fastify/jwt itself')
    }
    if (config.secret.length < minSecretLength) {
      const weak = `SECRET (option secret) is ${config.secret.length} characters: anyone who guesses it signs tokens as any user; use ${minSecretLength} random characters or more (openssl rand -base64 32)`
      if (config.production) throw new InvalidConfigError(weak)
      fastify.log.warn(`${weak}. With NODE_ENV=production this fails boot`)
    }
    // Its own key, its own issuer: what the app signs with `fastify.jwt` carries it, and a token signed with SECRET
    // by anything else is no realtime credential.
    await fastify.register(fastifyJwt, {
      ...options.jwt,
      secret: config.secret,
      sign: { iss: config.issuer, ...options.jwt?.sign },
      verify: { allowedIss: config.issuer, requiredClaims: ['iss'], ...options.jwt?.verify }
    })
  }
  // The login modes set cookies, and the session cookie authenticates upgrades: parsed by the app's own
  // @fastify/cookie when it has one.
  if (config.authRoutes && !fastify.hasPlugin('@fastify/cookie')) await fastify.register(fastifyCookie)
  if (!fastify.hasPlugin('@fastify/websocket')) {
    await fastify.register(fastifyWebsocket, {
      options: { maxPayload: config.maxPayload },
      // ws closes a socket whose frame it refuses (1009 over maxPayload, 1007 not UTF-8) itself; the default handler
      // would terminate it under that close, and the client would get 1006 instead.
      errorHandler: (err, socket, request) => {
        request.log.info({ err }, 'websocket frame refused')
        socket.close()
      }
    })
  }

  // One process by default; with Redis, sessions, revocations and used one-time codes are shared by every process on it.
  let backend: Backend = memoryBackend
  // In memory the revocations are loaded as the feed starts.
  let revocationsLoaded = (loaded: Promise<void>): Promise<void> => loaded
  if (options.redis) {
    // ioredis is loaded by the apps that use it only: it is a third of the plugin's load time.
    const { connectRedis, opened, within } = await import('./stores/redis-connection.js')
    const redis = connectRedis(options.redis, fastify.log)
    fastify.addHook('onClose', () => redis.close())
    await opened(redis.commands)
    backend = redisBackend(redis, options.redisPrefix ?? 'realtime:', fastify.log)
    // While Redis answers, start-up waits for the revocations (a few milliseconds), so the process does not start cold.
    revocationsLoaded = (loaded) => redis.commands.status === 'ready' ? within(loaded, 2_000) : Promise.resolve()
  }

  let verifyCredentials = options.verifyCredentials
  if (!verifyCredentials) {
    let directory = options.users
    if (!(directory instanceof UserDirectory)) {
      const users = directory ?? []
      directory = new UserDirectory()
      for (const user of users) await directory.add(user)
    }
    if (backend.otpSteps) directory.useOtpSteps(backend.otpSteps())
    verifyCredentials = directory.verifyCredentials
  }
  const sessionStore = options.sessionStore ?? backend.sessions()
  const revocationFeed = backend.revocationFeed()

  const events = new RealtimeEvents(fastify.log)
  const registry = new Registry(events)
  const revocations = new Revocations()
  const loaded = new Promise<void>(resolve => revocationFeed.start((session, until) => {
    revocations.add(session, until)
    registry.revokeSession(session)
  }, () => {
    revocations.markLoaded()
    resolve()
  }))
  await revocationsLoaded(loaded)
  const authenticator = new Authenticator({
    jwt: fastify.jwt,
    verifyToken: (token) => fastify.jwt.verify(token),
    issuer: config.issuer,
    mapClaims: options.mapClaims ?? defaultMapClaims(config.issuer),
    verifyCredentials,
    sessionStore,
    revocations,
    revocationFeed,
    accessTokenTtlMs: config.accessTokenTtlMs,
    refreshTokenTtlMs: config.refreshTokenTtlMs,
    sessionTokenTtlMs: config.cookies.session.ttlMs,
    storeTimeoutMs: 3_000,
    passwordChecks: new PasswordChecks(config.passwordQueue),
    attemptLimiter: config.attemptLimit ? backend.attempts(config.attemptLimit) : unlimited
  })

  fastify.decorateRequest('realtime', null)
  const outbound = new Outbound(config.maxBufferedBytes)

  /** What every endpoint adapter shares, for one endpoint. */
  const adapterOptions = (endpoint: EndpointConfig) => ({
    endpoint,
    authenticator,
    registry,
    policy: guardPolicy(endpoint.authMode, config.publicRole, endpoint.authTimeoutMs, fastify.log, registry),
    maxPayload: config.maxPayload,
    outbound,
    log: fastify.log
  })
  const gate = (endpoint: EndpointConfig, admitted?: (request: FastifyRequest) => void) =>
    upgradeGate(fastify, endpoint, { authenticator, origins: config.origins, registry, sessionCookie: config.cookies.session.name }, admitted)

  const rest = config.endpoints.rest
  if (rest.enabled) {
    fastify.get(rest.path, { websocket: true, onRequest: gate(rest) },
      jsonEndpoint({ ...adapterOptions(rest), handlers: (options.rest && options.rest.handlers) || {} }))
  }

  const logs = config.endpoints.logs
  if (logs.enabled) {
    // Every process's lines with Redis (each tagged with the process that logged it), this one's without.
    const node = randomUUID()
    const logFeed = backend.logFeed(node)
    const stream = new LogStream(outbound)
    logFeed.start((line, from) => stream.deliver(line, from))
    const stopCapture = captureLogLines(fastify.log, (line) => logFeed.publish(line))
    if (stopCapture) fastify.addHook('onClose', async () => stopCapture())
    fastify.get(logs.path, { websocket: true, onRequest: gate(logs) },
      jsonEndpoint({ ...adapterOptions(logs), handlers: stream.handlers, onClose: (connection) => stream.remove(connection) }))
  }

  const graphql = config.endpoints.graphql
  // Only with a schema: without one there is nothing to serve (WEBSOCKETS_GRAPHQL_ENABLED alone mounts nothing).
  if (graphql.enabled && options.graphql && options.graphql.schema) {
    // graphql is an optional peer dependency: only the apps that serve GraphQL load it.
    const { graphqlEndpoint } = await import('./endpoints/graphql.js')
    const { markGraphqlUpgrade, preferGraphqlTransportWs } = await import('./endpoints/subprotocol.js')
    preferGraphqlTransportWs(fastify.websocketServer)
    fastify.get(graphql.path, {
      websocket: true,
      onRequest: gate(graphql, markGraphqlUpgrade)
    }, graphqlEndpoint({
      ...adapterOptions(graphql),
      operations: {
        schema: options.graphql.schema,
        context: options.graphql.context,
        ...config.graphql
      }
    }))
  }

  if (config.heartbeat.enabled) {
    // Every endpoint's sockets, each pinged in its own protocol's terms (`Connection.ping`).
    const stop = startHeartbeat(registry, config.heartbeat.periodMs)
    fastify.addHook('onClose', async () => stop())
  }

  if (config.authRoutes) authRoutes(fastify, authenticator, { ...config, prefix: config.authRoutes.prefix })

  const api: RealtimeApi = {
    on: (event, listener) => registry.on(event, listener),
    off: (event, listener) => events.off(event, listener),
    send (filter, message) {
      let count = 0
      for (const connection of registry.matching(filter)) {
        if (connection.endpoint === 'graphql') continue // it speaks only graphql-transport-ws
        connection.send(message)
        count++
      }
      return count
    },
    close (filter, code, reason) {
      const matching = [...registry.matching(filter)]
      for (const connection of matching) connection.close(code, reason)
      return matching.length
    },
    connections: (filter) => registry.list(filter),
    async login (credential) {
      const result = await authenticator.login(credential)
      if (!result.ok) throw RealtimeError.of(refusal(result, 'INVALID_CREDENTIALS'))
      return result.issued!
    },
    revokeSession: (session) => authenticator.endSession(session),
    revokeUser: (user) => authenticator.endUser(user),
    signAccessToken (identity, session) {
      const { access_token: accessToken, expires } = authenticator.signAccessToken(identity, session)
      return { access_token: accessToken, expires }
    }
  }
  fastify.decorate('realtime', api)
}

export default fp(realtime, {
  fastify: '5.x',
  name: 'fastify-realtime'
})

export { RealtimeError, CloseCode } from './errors.js'
export { redactUrl, redactLogObject, realtimeSerializers } from './redaction.js'
export { MemorySessionStore } from './stores/sessions/memory.js'
export { fromFastifySessionStore, type CallbackSessionStore } from './stores/sessions/fastify-session.js'
export { UserDirectory } from './auth/user-directory.js'
export type * from '../types/index.js'
