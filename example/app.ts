// The reference server (`npm start`): the plugin with the embedded defaults, for trying it and for black-box tests.
import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import { pino } from 'pino'
import realtime, { InvalidConfigError, normalizeEmail, realtimeSerializers, redactUrl, UserDirectory, type Identity } from '../lib/index.js'
import { referenceSchema } from './schema.js'
import { demoPage } from './demo/plugin.js'
import { providerJwt } from './identity-provider.js'
import { RateLimitedLog } from './rate-limited-log.js'
import { readUsersFile } from './users-file.js'
import { trustProxy } from './trust-proxy.js'
import { isProduction } from '../lib/production.js'
import { maxEmailLength, maxPasswordLength } from '../lib/auth/credential-bounds.js'
import fastifyJwt from '@fastify/jwt'

export interface ReferenceServer {
  app: FastifyInstance
  /** ADMIN_EMAIL, or the default. */
  adminEmail: string
  /** Set when ADMIN_PASSWORD was not given: the one generated for this start. */
  generatedPassword: string | null
}

export interface ReferenceServerOptions {
  /** Where log lines go instead of stdout (one JSON line per `write`), e.g. to capture them in tests. */
  logStream?: { write (line: string): void }
}

export async function buildReferenceServer (
  env: Record<string, string | undefined> = process.env,
  options: ReferenceServerOptions = {}
): Promise<ReferenceServer> {
  // A variable set but empty, as compose files and `.env` templates write them, is unset.
  const level = env.LOG_LEVEL || 'info'
  // pino's own refusal names no variable.
  if (!Object.hasOwn(pino.levels.values, level) && level !== 'silent') {
    throw new InvalidConfigError(`LOG_LEVEL must be one of ${[...Object.keys(pino.levels.values), 'silent'].join(', ')}`)
  }
  if (env.JWKS_URL && !isHttpUrl(env.JWKS_URL)) throw new InvalidConfigError('JWKS_URL must be an http:// or https:// URL')
  if (env.JWT_TOKEN_TYPE && env.JWT_TOKEN_TYPE !== 'at+jwt') throw new InvalidConfigError('JWT_TOKEN_TYPE must be at+jwt (RFC 9068), or unset')
  // Processes on one Redis act as one server only with one key and one admin password: one generated per start is
  // this process's alone, and a token or password another process gave out fails here.
  for (const name of ['SECRET', 'ADMIN_PASSWORD'] as const) {
    if (env.REDIS_URL && !env[name]) throw new InvalidConfigError(`REDIS_URL is set without ${name}: every process on one Redis needs the same ${name} (one generated per start is this process's alone)`)
  }
  const app = Fastify({
    // Behind a proxy: the client's address and scheme, from the headers the proxy sets.
    trustProxy: trustProxy(env),
    logger: {
      level,
      stream: options.logStream,
      // No credential reaches a log line at any level: `req` cuts `?access_token=` out of the URL, `err` drops a
      // malformed request's raw bytes (Fastify's client errors at trace) and credentials in messages and properties.
      serializers: realtimeSerializers
    }
  })

  const directory = new UserDirectory()
  const generatedPassword = env.ADMIN_PASSWORD ? null : randomBytes(12).toString('base64url')
  const adminEmail = env.ADMIN_EMAIL || 'admin@example.com'
  // As the directory would refuse them, but naming the variable: past the bounds no login could name the admin.
  if (normalizeEmail(adminEmail).length > maxEmailLength) throw new InvalidConfigError(`ADMIN_EMAIL must be at most ${maxEmailLength} characters once normalised: no login could name it`)
  if ((env.ADMIN_PASSWORD ?? '').length > maxPasswordLength) throw new InvalidConfigError(`ADMIN_PASSWORD must be at most ${maxPasswordLength} characters: no login could carry it`)
  await directory.add({ email: adminEmail, password: env.ADMIN_PASSWORD || generatedPassword!, admin: true, role: 'administrator' })
  // The directory refuses an email or an id it has (the admin's included): no user silently replaces another.
  if (env.USERS_FILE) {
    for (const user of await readUsersFile(env.USERS_FILE)) await directory.add(user)
  }

  let secret = env.SECRET
  if (!secret) {
    secret = randomBytes(32).toString('base64url')
    app.log.warn('SECRET is not set: access tokens are signed with a key generated for this start and die with it')
  }

  // A provider's user is not in the directory: its email is the token's `email` claim, kept by `onAuthenticate`.
  const me = (identity: { user: string | null, role: string | null, admin: boolean }, context: Readonly<Record<string, unknown>>) =>
    identity.user === null
      ? null
      : { id: identity.user, email: directory.emailOf(identity.user) ?? (context.email as string | undefined) ?? null, role: identity.role, admin: identity.admin }

  if (env.JWKS_URL) {
    // A provider signs the tokens of all its clients with one key set (Google's, Azure AD's common endpoint, an Auth0
    // tenant serving several apps): without an audience, a token minted for any of them opens a socket here.
    if (!env.JWT_AUDIENCE) {
      const unbound = 'JWKS_URL is set without JWT_AUDIENCE: every token the provider signs authenticates, whichever application it was minted for'
      // As the plugin tells production: the same function.
      if (isProduction(env)) throw new InvalidConfigError(unbound)
      app.log.warn(`${unbound}. With NODE_ENV=production this fails boot`)
    }
    if (!env.JWT_ISSUER) app.log.warn('JWKS_URL is set without JWT_ISSUER: a token of any issuer whose key is in the set authenticates')
    await app.register(fastifyJwt, providerJwt({
      jwksUrl: env.JWKS_URL,
      issuer: env.JWT_ISSUER || undefined,
      audience: env.JWT_AUDIENCE || undefined,
      tokenType: env.JWT_TOKEN_TYPE || undefined,
      secret,
      // As the plugin reads it: empty is unset. Another issuer than the plugin's would fail every socket's login token.
      ownIssuer: env.ACCESS_TOKEN_ISSUER || 'fastify-realtime',
      log: app.log
    }))
  }

  // With JWKS_URL, SECRET is the key of the @fastify/jwt above, which the plugin verifies sockets and signs tokens
  // with: it is given none of its own (it would say so, as a SECRET it does not use).
  const { SECRET: _secret, ...withoutSecret } = env
  await app.register(realtime, {
    env: env.JWKS_URL ? withoutSecret : { ...env, SECRET: secret },
    // The plugin's own directory would do; this one also tells `me` a user's email.
    users: directory,
    authRoutes: true,
    // Several `npm start`s on one Redis act as one server: shared sessions and revocations.
    redis: env.REDIS_URL || undefined,
    onAuthenticate: ({ claims }) => typeof claims?.email === 'string' ? { email: claims.email } : undefined,
    rest: {
      handlers: {
        whoami (message, connection) {
          connection.send({ type: 'whoami', uid: message.uid, data: me(connection.accountability, connection.context) })
        }
      }
    },
    graphql: { schema: referenceSchema(me) }
  })

  // Why a credential was refused, at debug: the event says it, never the credential.
  const refusals = new RateLimitedLog('authentication failed')
  app.realtime.on('authFailed', ({ endpoint, code, reason, ip }) => { refusals.debug(app.log, { endpoint, code, reason, ip }) })

  // Fastify's default 404 logs and echoes the URL, query string and all.
  app.setNotFoundHandler((request, reply) => {
    request.log.info({ url: redactUrl(request.url) }, 'route not found')
    return reply.code(404).send({ errors: [{ message: 'Route not found.', extensions: { code: 'ROUTE_NOT_FOUND' } }] })
  })
  app.get('/server/ping', async (_request, reply) => reply.type('text/plain').send('pong'))
  // GET /: log in, open sockets and watch their frames in a browser.
  await app.register(demoPage)
  return { app, adminEmail, generatedPassword }
}

function isHttpUrl (value: string): boolean {
  try {
    return ['http:', 'https:'].includes(new URL(value).protocol)
  } catch {
    return false
  }
}

export type { Identity }
