// fastify-realtime: Directus-style authenticated realtime for any Fastify app.
import fp from 'fastify-plugin'
import fastifyJwt from '@fastify/jwt'
import fastifyWebsocket from '@fastify/websocket'
import type { FastifyInstance } from 'fastify'
import { resolveConfig } from './config.js'
import { InvalidConfigError, messages, RealtimeError } from './errors.js'
import { Authenticator, defaultMapClaims } from './auth/authenticator.js'
import { MemorySessionStore } from './auth/memory-session-store.js'
import { Revocations } from './auth/revocations.js'
import { UserDirectory } from './auth/user-directory.js'
import { Registry } from './connection/registry.js'
import { jsonEndpoint } from './endpoints/rest.js'
import { upgradeGate } from './endpoints/upgrade.js'
import { startHeartbeat } from './endpoints/heartbeat.js'
import { authRoutes } from './routes/auth.js'
import type { RealtimeApi, RealtimeOptions } from '../types/index.js'

async function realtime (fastify: FastifyInstance, options: RealtimeOptions) {
  const config = await resolveConfig(options)

  if (!fastify.hasDecorator('jwt')) {
    if (!config.secret) {
      throw new InvalidConfigError('SECRET (option secret) is required to sign access tokens, unless the app registers @fastify/jwt itself')
    }
    await fastify.register(fastifyJwt, { ...options.jwt, secret: config.secret })
  }
  if (!fastify.hasPlugin('@fastify/websocket')) {
    await fastify.register(fastifyWebsocket, { options: { maxPayload: config.maxPayload } })
  }

  let verifyCredentials = options.verifyCredentials
  if (!verifyCredentials) {
    const directory = new UserDirectory()
    for (const user of options.users ?? []) await directory.add(user)
    verifyCredentials = directory.verifyCredentials
  }

  const registry = new Registry()
  const authenticator = new Authenticator({
    jwt: fastify.jwt,
    mapClaims: options.mapClaims ?? defaultMapClaims,
    verifyCredentials,
    sessionStore: options.sessionStore ?? new MemorySessionStore(),
    revocations: new Revocations(config.accessTokenTtlMs),
    accessTokenTtlMs: config.accessTokenTtlMs,
    refreshTokenTtlMs: config.refreshTokenTtlMs,
    onSessionEnded: (session) => registry.revokeSession(session)
  })

  fastify.decorateRequest('realtime', null)

  const rest = config.endpoints.rest
  if (rest.enabled) {
    fastify.get(rest.path, {
      websocket: true,
      onRequest: upgradeGate(fastify, rest, authenticator, config.origins)
    }, jsonEndpoint({
      endpoint: rest,
      authenticator,
      registry,
      publicRole: config.publicRole,
      maxPayload: config.maxPayload,
      log: fastify.log,
      handlers: (options.rest && options.rest.handlers) || {}
    }))
  }

  if (config.heartbeat.enabled) {
    const stop = startHeartbeat(registry, ['rest'], config.heartbeat.periodMs)
    fastify.addHook('onClose', async () => stop())
  }

  if (config.authRoutes) authRoutes(fastify, authenticator, config.authRoutes.prefix)

  const api: RealtimeApi = {
    send (filter, message) {
      let count = 0
      for (const connection of registry.matching(filter)) {
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
    connections: (filter) => [...registry.matching(filter)],
    async login (credential) {
      const result = await authenticator.login(credential)
      if (!result.ok) {
        throw new RealtimeError(result.code, result.code === 'SERVICE_UNAVAILABLE' ? messages.serviceUnavailable : messages.invalidCredentials)
      }
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
export { MemorySessionStore } from './auth/memory-session-store.js'
export { UserDirectory } from './auth/user-directory.js'
export type * from '../types/index.js'
