// The options the plugin reads, by name: one it does not know (a misspelling, `redisUrl` for `redis`,
// `cookies.refresh.secur` for `secure`) would be ignored without a word, and a deployment would run without what it
// meant (each process with sessions of its own, a cookie without Secure). Typed as the option types' keys, so that an
// option added to the types and not here fails the type-check.
import type { CookieOptions, EndpointOptions, GraphqlEndpointOptions, RealtimeOptions, RestEndpointOptions } from '../types/index.js'

/**
 * The names of an options object, each `true` (a value the plugin takes whole: a setting, or an object of the app's,
 * such as a schema, a client, a store, handlers or @fastify/jwt's options, never looked into) or the names of an
 * options object of the plugin's own, looked into in turn.
 */
type Names<T> = { [K in keyof Required<T>]: true | Names<Extract<NonNullable<T[K]>, object>> }

/** The same, as the walk reads it. */
interface Table { readonly [name: string]: true | Table }

const endpoint = { enabled: true, path: true, auth: true, authTimeout: true, connLimit: true } satisfies Names<EndpointOptions>
const cookie = { name: true, secure: true, sameSite: true, domain: true, partitioned: true } satisfies Names<CookieOptions>

const top = {
  // Fastify's `register` options, which the plugin applies to its routes' scope.
  prefix: true,
  logLevel: true,
  logSerializers: true,
  env: true,
  secret: true,
  jwt: true,
  onAuthenticate: true,
  rest: { ...endpoint, handlers: true } satisfies Names<RestEndpointOptions>,
  logs: endpoint,
  graphql: {
    ...endpoint,
    schema: true,
    context: true,
    queryTokenLimit: true,
    queryDepthLimit: true,
    queryAliasLimit: true,
    queryFieldLimit: true,
    operationLimit: true,
    introspection: true
  } satisfies Names<GraphqlEndpointOptions>,
  heartbeat: { enabled: true, period: true },
  maxPayload: true,
  maxBufferedBytes: true,
  connLimitPerAddress: true,
  maxSessionsPerUser: true,
  issuer: true,
  passwordQueue: { limit: true, perAddress: true },
  accessTokenTtl: true,
  refreshTokenTtl: true,
  publicUrl: true,
  origins: true,
  publicRole: true,
  mapClaims: true,
  verifyCredentials: true,
  users: true,
  sessionStore: true,
  redis: true,
  redisPrefix: true,
  redisReplicaAcks: true,
  authRoutes: { prefix: true },
  cookies: { refresh: cookie, session: { ...cookie, ttl: true, refreshGrace: true } },
  attemptLimit: { points: true, durationSeconds: true }
} satisfies Names<RealtimeOptions>

const known: Table = top

/** The options given that the plugin does not read, by their path (`rest.authMode`, `cookies.refresh.secur`). */
export function unknownOptions (options: RealtimeOptions): string[] {
  const unknown: string[] = []
  const look = (given: object, names: Table, path: string) => {
    for (const [name, value] of Object.entries(given)) {
      const read = Object.hasOwn(names, name) ? names[name] : undefined
      if (read === undefined) unknown.push(path + name)
      // Where an object of the plugin's is not one (`rest: false`, `authRoutes: true`), its kind is checked elsewhere.
      else if (read !== true && typeof value === 'object' && value !== null) look(value, read, `${path}${name}.`)
    }
  }
  look(options, known, '')
  return unknown
}

/** Every option's path (`rest.auth`, `cookies.session.ttl`), parents included: what the README's tables must list. */
export function optionPaths (): string[] {
  const paths: string[] = []
  const walk = (names: Table, path: string) => {
    for (const [name, read] of Object.entries(names)) {
      paths.push(path + name)
      if (read !== true) walk(read, `${path}${name}.`)
    }
  }
  walk(known, '')
  return paths
}
