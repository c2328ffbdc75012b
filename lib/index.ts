// fastify-realtime: Directus-style authenticated realtime for any Fastify app.
import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { resolveConfig, type EndpointConfig } from './config.js'
import { InvalidConfigError, RealtimeError, refusal } from './errors.js'
import { Authenticator, defaultMapClaims } from './auth/authenticator.js'
import { PasswordChecks } from './auth/password-checks.js'
import { readRevocation } from './auth/revocations.js'
import { tokenJwt, verifyWindow } from './auth/jwt.js'
import { memoryBackend, redisBackend, type Backend } from './stores/backend.js'
import { unlimited } from './stores/attempts/contract.js'
import { GiveBacks } from './stores/give-backs.js'
import { usePrefix } from './stores/prefixes-in-use.js'
import { workerWithoutRedis } from './stores/cluster-workers.js'
import type { RedisClient } from './stores/redis-connection.js'
import { onRegistration, type RegisteredSessionStore } from './stores/sessions/fastify-session.js'
import { givenBackUntilLanded } from './stores/otp-steps/given-back.js'
import { captureLogLines, levelValuesOf } from './logs/capture.js'
import { LogStream } from './endpoints/logs.js'
import { noticeWriter } from './logs/notice-writer.js'
import { RealtimeEvents } from './events.js'
import { UserDirectory } from './auth/user-directory.js'
import { Registry } from './connection/registry.js'
import { guardPolicy } from './connection/guard.js'
import { Outbound } from './connection/outbound.js'
import { checkClose } from './connection/close-frame.js'
import { jsonEndpoint } from './endpoints/rest.js'
import { upgradeGate } from './endpoints/upgrade.js'
import { AddressLimit } from './endpoints/address-limit.js'
import { startHeartbeat } from './endpoints/heartbeat.js'
import { authRoutes, routeContext } from './routes/auth.js'
import { RouteScope } from './routes/scope.js'
import { claimCookieNames } from './routes/cookie-names.js'
import type { RealtimeApi, RealtimeOptions } from '../types/index.js'

/** How long a session-store call, a key lookup or the app's `onAuthenticate` may take before the auth fails closed. */
const storeTimeoutMs = 3_000

async function realtime (fastify: FastifyInstance, options: RealtimeOptions) {
  // A second instance in the same scope, or in a child of one that has an instance, would fail on its first
  // decoration, with Fastify's words and not ours.
  if (fastify.hasDecorator('realtime')) {
    throw new InvalidConfigError('fastify-realtime is already registered in this scope or a parent scope: register instances in sibling scopes (app.register(async (scope) => { await scope.register(realtime, { prefix: ... }) }))')
  }
  // WebSockets upgrade HTTP/1.1 requests: a server speaking HTTP/2 alone would boot with no reachable socket.
  const { http2, https } = fastify.initialConfig as { http2?: boolean, https?: boolean | { allowHTTP1?: boolean } }
  if (http2 && !(typeof https === 'object' && https.allowHTTP1)) {
    throw new InvalidConfigError('WebSockets need HTTP/1.1 upgrades: with http2, serve HTTP/1.1 as well (https: { allowHTTP1: true, ... })')
  }
  const config = await resolveConfig(options)
  for (const warning of config.warnings) fastify.log.warn(warning)
  const unshared = workerWithoutRedis(options.redis, options.sessionStore)
  if (unshared) fastify.log.warn(unshared)
  // Before anything opens: two instances on one server sharing a cookie name fail boot.
  const releaseCookieNames = claimCookieNames(fastify.server, fastify.prefix + (options.prefix ?? ''), config)
  fastify.addHook('onClose', async () => releaseCookieNames())

  // A key lookup waits no longer than a client is given to authenticate: an unknown kid fails within the auth timeout.
  const keyLookupMs = Math.min(storeTimeoutMs, ...Object.values(config.endpoints).filter(e => e.enabled).map(e => e.authTimeoutMs))
  // Passwords are checked (a directory, or the app's check): logins sign tokens of the plugin's own.
  const logins = options.verifyCredentials != null || options.users instanceof UserDirectory || (options.users?.length ?? 0) > 0
  const { jwt, verify: verifyToken, claimsOf, requestUsers, verifier } = await tokenJwt(fastify, options, config, keyLookupMs, logins)
  // One process by default; with Redis, sessions, revocations and used one-time codes are shared by every process on it.
  let backend: Backend = memoryBackend
  // In memory the revocations are loaded as the feed starts (this process's own, from the start of the first
  // registration that shares them on).
  let revocationsLoaded = (loaded: Promise<void>): Promise<void> => loaded
  if (options.redis) {
    // ioredis is loaded by the apps that use it only: it is a third of the plugin's load time.
    const { connectRedis, opened, refusedDatabase, warnIfEvicting, within } = await import('./stores/redis-connection.js')
    const redisPrefix = options.redisPrefix ?? 'realtime:'
    // The app's client may be of ioredis 6, typed by its own classes: the plugin uses the same of either major
    // (test/redis/ioredis-6.test.ts).
    const redis = connectRedis(options.redis as string | RedisClient, redisPrefix, fastify.log)
    fastify.addHook('onClose', () => redis.close())
    // The URL's database, refused by the server before the connection is ready: the sessions would go to database 0.
    let refused: string | null = null
    const onRefusal = (err: Error) => { refused ??= refusedDatabase(err) }
    redis.commands.on('error', onRefusal)
    // Bounded: an app's own client to a Redis that hangs (stopped, its kernel still accepting) never gets ready, and
    // Fastify's plugin timeout would fail every start for as long as Redis hangs.
    let answered = false
    await within(opened(redis.commands).then(() => { answered = true }), 2_000)
    redis.commands.off('error', onRefusal)
    if (refused) {
      await redis.close()
      throw new InvalidConfigError(`redis names ${refused}`)
    }
    if (!answered) {
      fastify.log.warn('Redis did not answer within 2 s: starting without it (it is used as soon as it answers)')
    }
    // Only while Redis answers, and not for long: an app's client queues commands while it is away, for good maybe.
    if (redis.commands.status === 'ready') await within(warnIfEvicting(redis.commands, fastify.log), 2_000)
    backend = redisBackend(redis, redisPrefix, fastify.log, options.redisReplicaAcks ?? 0)
    const releasePrefix = usePrefix(redis.commands, redisPrefix, fastify.log)
    fastify.addHook('onClose', async () => releasePrefix())
    // While Redis answers, start-up waits for the revocations (a few milliseconds), so the process does not start cold.
    revocationsLoaded = async (loaded) => {
      if (redis.commands.status !== 'ready') return
      let read = false
      await within(loaded.then(() => { read = true }), 2_000)
      if (!read) fastify.log.warn('the revocations in force were not read from Redis within 2 s: tokens with a session are refused until they are')
    }
  }

  // What a failed login or refresh took from the stores, given back until it lands.
  const giveBacks = new GiveBacks(storeTimeoutMs)
  fastify.addHook('onClose', async () => giveBacks.stop())
  let verifyCredentials = options.verifyCredentials
  if (!verifyCredentials) {
    let directory = options.users
    if (!(directory instanceof UserDirectory)) {
      const users = directory ?? []
      const made = new UserDirectory()
      // All at once (argon2 hashes on libuv's threads): one after another, a few hundred users outlast Fastify's plugin
      // timeout.
      await Promise.all(users.map(user => made.add(user)))
      directory = made
    }
    if (backend.otpSteps) directory.useOtpSteps(givenBackUntilLanded(backend.otpSteps(), giveBacks))
    verifyCredentials = directory.verifyCredentials
  }
  const sessionStore = options.sessionStore ?? backend.sessions(config.maxSessionsPerUser)
  const releaseStore = (sessionStore as RegisteredSessionStore)[onRegistration]?.(fastify.log)
  if (releaseStore) fastify.addHook('onClose', async () => releaseStore())
  // Without Redis, registrations in this process that take each other's tokens share their revocations.
  const revocationFeed = backend.revocationFeed(verifier)
  fastify.addHook('onClose', async () => revocationFeed.stop())

  const events = new RealtimeEvents(fastify.log)
  const registry = new Registry(events)
  // Every route of the plugin, mounted at the end in a scope of its own: the app's routes keep their own limits.
  const routes = new RouteScope(config.maxPayload, () => Array.from(registry.matching()), storeTimeoutMs)
  const { revocations } = revocationFeed
  const releaseIssuer = revocations.useIssuer(config.issuer)
  // The set's user revocations last as long as any registration using it signs its tokens for, and takes them past
  // their `exp` (`verify.clockTolerance`): a revocation lapsed before a token it refused would let it in again.
  const window = verifyWindow(jwt)
  revocations.tokenLived(config.accessTokenTtlMs + window.clockToleranceMs)
  fastify.addHook('onClose', async () => releaseIssuer())
  const loaded = new Promise<void>(resolve => revocationFeed.start((id, until) => {
    const revoked = readRevocation(id)
    if ('user' in revoked) {
      revocations.addUser(revoked.user, revoked.at, until)
      registry.revokeUser(revoked.user, revoked.at)
      return
    }
    revocations.add(revoked.session, until)
    registry.revokeSession(revoked.session)
  }, (knownSince) => {
    revocations.markLoaded(knownSince)
    resolve()
  }))
  await revocationsLoaded(loaded)
  const authenticator = new Authenticator({
    jwt,
    claimsOf,
    verifyToken,
    verifyWindow: window,
    appVerifies: requestUsers !== null,
    onAuthenticate: options.onAuthenticate,
    issuer: config.issuer,
    mapClaims: options.mapClaims ?? defaultMapClaims(config.issuer),
    verifyCredentials,
    sessionStore,
    revocations,
    revocationFeed,
    accessTokenTtlMs: config.accessTokenTtlMs,
    refreshTokenTtlMs: config.refreshTokenTtlMs,
    sessionTokenTtlMs: config.cookies.session.ttlMs,
    sessionCookieName: config.cookies.session.name,
    storeTimeoutMs,
    keyLookupMs,
    passwordChecks: new PasswordChecks(config.passwordQueue),
    attemptLimiter: config.attemptLimit ? backend.attempts(config.attemptLimit) : unlimited,
    giveBacks
  })

  fastify.decorateRequest('realtime', null)
  const outbound = new Outbound(config.maxBufferedBytes)

  /** What every endpoint adapter shares, for one endpoint. */
  const adapterOptions = (endpoint: EndpointConfig) => ({
    endpoint,
    authenticator,
    registry,
    policy: guardPolicy(endpoint.authMode, config.publicRole, endpoint.authTimeoutMs, fastify.log, registry, revocations, requestUsers),
    maxPayload: config.maxPayload,
    outbound,
    log: fastify.log
  })
  const addressLimit = new AddressLimit(config.addressConnLimit)
  const gate = (endpoint: EndpointConfig, admitted?: (request: FastifyRequest) => void) =>
    upgradeGate(endpoint, { authenticator, jwt, origins: config.origins, registry, sessionCookie: config.cookies.session, addressLimit, requestUsers }, admitted)

  const rest = config.endpoints.rest
  if (rest.enabled) {
    routes.websocket(rest.path, gate(rest),
      jsonEndpoint({ ...adapterOptions(rest), handlers: (options.rest && options.rest.handlers) || {} }))
  }

  const logs = config.endpoints.logs
  if (logs.enabled) {
    // Every process's lines with Redis (each tagged with the process that logged it), this one's without.
    const node = randomUUID()
    // Redis is held to what a subscriber is: the lines it has not taken yet cost at most `maxBufferedBytes`.
    const logFeed = backend.logFeed(node, config.maxBufferedBytes)
    const writeNotice = noticeWriter(fastify.log)
    const stream = new LogStream(outbound, levelValuesOf(fastify.log), node, writeNotice, () => logFeed.listening())
    logFeed.start((line, from) => stream.deliver(line, from), () => stream.listened, stream.levelOf, writeNotice)
    // A line goes nowhere while nobody subscribes, here or (with Redis) in another process, nor one too long for any
    // subscriber (every process would parse it for nothing): those who would have had it are told they missed it.
    const stopCapture = captureLogLines(fastify.log, (line) => {
      if (stream.sendable(line)) logFeed.publish(line)
      else {
        stream.missedByAll(line)
        logFeed.dropped(line)
      }
    }, () => logFeed.wanted)
    fastify.addHook('onClose', async () => {
      logFeed.stop()
      if (stopCapture) stopCapture()
    })
    routes.websocket(logs.path, gate(logs),
      jsonEndpoint({ ...adapterOptions(logs), handlers: stream.handlers, onClose: (connection) => stream.remove(connection) }))
  }

  const graphql = config.endpoints.graphql
  // Only with a schema: without one there is nothing to serve (WEBSOCKETS_GRAPHQL_ENABLED alone mounts nothing).
  if (graphql.enabled && options.graphql && options.graphql.schema) {
    // graphql is an optional peer dependency: only the apps that serve GraphQL load it.
    const { graphqlEndpoint } = await import('./endpoints/graphql.js')
    const { markGraphqlUpgrade, preferGraphqlTransportWs } = await import('./endpoints/subprotocol.js')
    preferGraphqlTransportWs(routes.sockets.server)
    routes.websocket(graphql.path, gate(graphql, markGraphqlUpgrade), graphqlEndpoint({
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

  const authPrefix = config.authRoutes?.prefix
  if (authPrefix) routes.http((scope) => authRoutes(scope, authenticator, { ...config, prefix: authPrefix }))
  // `register(realtime, { prefix, logLevel, logSerializers })`: Fastify leaves them to the plugin, which shares the
  // app's instance; they are its routes'.
  const { prefix, logLevel, logSerializers } = options
  await routes.mount(fastify, { prefix, logLevel, logSerializers, cookies: config.authRoutes !== null })

  const api: RealtimeApi = {
    on: (event, listener) => registry.on(event, listener),
    off: (event, listener) => events.off(event, listener),
    send (filter, message) {
      let count = 0
      // One frame for every socket, serialized for the first open one: a message JSON cannot write throws before any
      // socket got it.
      let frame: string | undefined
      for (const connection of registry.matching(filter)) {
        if (connection.endpoint === 'graphql') continue // it speaks only graphql-transport-ws
        // Not let in, or no longer: a client without a credential would otherwise read broadcasts an auth window at a
        // time (in public mode every socket past its handshake stays in, as public).
        const { phase } = connection.guard
        if (phase === 'handshake' || phase === 'reauth') continue
        // A closing socket takes nothing, and is not counted: how many got it.
        if (!connection.open) continue
        connection.sendFrame(frame ??= JSON.stringify(message))
        count++
      }
      return count
    },
    close (filter, code, reason) {
      // Once, for every socket: a close ws cannot send would throw at the first open one, and reach none.
      checkClose(code, reason)
      // A socket closing already is not closed again, nor counted.
      const open = [...registry.matching(filter)].filter(connection => connection.open)
      for (const connection of open) connection.close(code, reason)
      return open.length
    },
    connections: (filter) => registry.list(filter),
    async login (credential, request) {
      const result = await authenticator.login(credential, request ? routeContext(request, 'login') : null)
      if (!result.ok) throw RealtimeError.of(refusal(result, 'INVALID_CREDENTIALS'))
      return result.issued!
    },
    revokeSession: (session) => authenticator.endSession(session),
    revokeUser: (user) => authenticator.endUser(user),
    trusted: (request, claims) => authenticator.trusts(request, claims),
    jwt,
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

export { RealtimeError, CloseCode, InvalidConfigError } from './errors.js'
export { redactUrl, redactLogObject, realtimeSerializers } from './redaction.js'
export { MemorySessionStore } from './stores/sessions/memory.js'
export { fromFastifySessionStore, type CallbackSessionStore } from './stores/sessions/fastify-session.js'
export { UserDirectory } from './auth/user-directory.js'
export { normalizeEmail } from './auth/emails.js'
export type * from '../types/index.js'
