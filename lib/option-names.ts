// The options the plugin reads, by name: one it does not know (a misspelling, `redisUrl` for `redis`) would be ignored
// without a word, and a deployment would run without what it meant (each process with sessions of its own). Typed as
// records of the option types' keys, so that an option added to the types and not here fails the type-check.
import type { EndpointOptions, GraphqlEndpointOptions, RealtimeOptions, RestEndpointOptions } from '../types/index.js'

const top = {
  env: true,
  secret: true,
  jwt: true,
  onAuthenticate: true,
  rest: true,
  logs: true,
  graphql: true,
  heartbeat: true,
  maxPayload: true,
  maxBufferedBytes: true,
  connLimitPerAddress: true,
  maxSessionsPerUser: true,
  issuer: true,
  passwordQueue: true,
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
  authRoutes: true,
  cookies: true,
  attemptLimit: true
} satisfies Record<keyof RealtimeOptions, true>

// What Fastify's `register` passes beside the plugin's own.
const registerOptions = ['prefix', 'logLevel', 'logSerializers']

const endpoint = { enabled: true, path: true, auth: true, authTimeout: true, connLimit: true } satisfies Record<keyof EndpointOptions, true>
const rest = { ...endpoint, handlers: true } satisfies Record<keyof RestEndpointOptions, true>
const graphql = {
  ...endpoint,
  schema: true,
  context: true,
  queryTokenLimit: true,
  queryDepthLimit: true,
  queryAliasLimit: true,
  queryFieldLimit: true,
  operationLimit: true,
  introspection: true
} satisfies Record<keyof GraphqlEndpointOptions, true>

const known: Record<string, ReadonlySet<string>> = {
  '': new Set([...Object.keys(top), ...registerOptions]),
  rest: new Set(Object.keys(rest)),
  logs: new Set(Object.keys(endpoint)),
  graphql: new Set(Object.keys(graphql))
}

/** The options given that the plugin does not read (`rest.authMode`), top level and endpoints'. */
export function unknownOptions (options: RealtimeOptions): string[] {
  const unknown = Object.keys(options).filter(name => !known['']!.has(name))
  for (const section of ['rest', 'logs', 'graphql'] as const) {
    const given = options[section]
    if (typeof given !== 'object' || given === null) continue
    unknown.push(...Object.keys(given).filter(name => !known[section]!.has(name)).map(name => `${section}.${name}`))
  }
  return unknown
}
