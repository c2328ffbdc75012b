// Resolves plugin options over Directus's environment variables into one frozen config, once, at registration.
// Options are written onto the variables they override and validated by the same @fastify/env schema, so a bad
// value fails boot the same way whichever side it came from.
import Fastify from 'fastify'
import fastifyEnv from '@fastify/env'
import ms from 'ms'
import { InvalidConfigError } from './errors.js'
import { checkOptionKinds } from './option-kinds.js'
import { unknownOptions } from './option-names.js'
import { isProduction } from './production.js'
import { defaultSessionsPerUser } from './stores/sessions/per-user-limit.js'
import type { AttemptLimit } from './stores/attempts/contract.js'
import type { AuthMode, EndpointName, RealtimeOptions } from '../types/index.js'

export const authModes: readonly AuthMode[] = ['public', 'handshake', 'strict']

const endpoints: Record<EndpointName, { prefix: string, path: string }> = {
  rest: { prefix: 'WEBSOCKETS_REST_', path: '/websocket' },
  graphql: { prefix: 'WEBSOCKETS_GRAPHQL_', path: '/graphql' },
  logs: { prefix: 'WEBSOCKETS_LOGS_', path: '/websocket/logs' }
}

export interface EndpointConfig {
  name: EndpointName
  enabled: boolean
  path: string
  authMode: AuthMode
  authTimeoutMs: number
  /** Infinity when unlimited. */
  connLimit: number
}

export interface Config {
  endpoints: Record<EndpointName, EndpointConfig>
  heartbeat: { enabled: boolean, periodMs: number }
  maxPayload: number
  /** Unsent bytes a socket may hold before it is closed as too slow (1008). */
  maxBufferedBytes: number
  /** Open sockets one client network may hold across the endpoints; Infinity when unlimited. */
  addressConnLimit: number
  /** Refresh sessions one user keeps in the plugin's own stores: a new one past it ends the oldest. */
  maxSessionsPerUser: number
  /** The `iss` of the access tokens the plugin signs, and what it requires of the ones it verifies itself. */
  issuer: string
  /** Password checks waiting for a turn: at most `limit` in all and `perAddress` from one client address. */
  passwordQueue: { limit: number, perAddress: number }
  accessTokenTtlMs: number
  refreshTokenTtlMs: number
  secret: string | undefined
  /** Origins (scheme://host[:port]) allowed besides the request's own host. */
  origins: ReadonlySet<string>
  publicRole: string | null
  authRoutes: { prefix: string } | null
  /** Limits of GraphQL documents (Directus's GRAPHQL_* variables, and the cost bounds of PROTOCOL.md section 11). */
  graphql: {
    queryTokenLimit: number
    queryDepthLimit: number
    queryAliasLimit: number
    queryFieldLimit: number
    /** Operations in flight on one socket. */
    operationLimit: number
    introspection: boolean
  }
  /** Failed email/password attempts allowed per IP and per email in a window; null when unlimited. */
  attemptLimit: Readonly<AttemptLimit> | null
  /** `NODE_ENV` (of the `env` option, else of the process) is `production`, in any case: what is only warned about elsewhere fails boot. */
  production: boolean
  /** What was set but not used, or to no effect, for the plugin to log once it has a logger. */
  warnings: readonly string[]
  /** The login modes' cookies (PROTOCOL.md section 7). */
  cookies: { refresh: CookieConfig, session: CookieConfig & { ttlMs: number, refreshGraceMs: number } }
}

export interface CookieConfig {
  name: string
  secure: boolean
  sameSite: 'lax' | 'strict' | 'none'
  domain: string | undefined
  partitioned: boolean
}

// Directus's variables for its two cookies, and their defaults.
const cookieVariables = {
  refresh: { prefix: 'REFRESH_TOKEN_COOKIE_', name: 'directus_refresh_token' },
  session: { prefix: 'SESSION_COOKIE_', name: 'directus_session_token' }
} as const

// One schema for every registration: @fastify/env's validator (a shared Ajv) compiles a schema once per object, and
// the one change it makes to it (no additional properties) is the same every time.
let schema: object | undefined
const envSchema = () => (schema ??= buildEnvSchema())

// Seconds a timer may wait: Node runs a longer one (Infinity too) after 1 ms, which would end every handshake at once.
const longestTimerS = Math.floor((2 ** 31 - 1) / 1000)
// The shortest heartbeat period and auth timeout, in seconds: no client answers in less (a 1 ms heartbeat closes every
// socket at its first ping, and spins); the tests' own go down to 20 ms.
const shortestTimerS = 0.01
// The longest lifetime of a token, a session or a cookie: the cookie's Max-Age and Expires, and Redis's PX, are
// valid far past it; 1e19 ms is valid for none of them (every login would fail).
const longestDurationMs = ms('100y')

/** The variables the plugin reads, each with its schema (`default`, bounds): what the README's tables must list. */
export function environmentVariables (): Readonly<Record<string, { readonly default?: unknown }>> {
  return (envSchema() as { properties: Record<string, { default?: unknown }> }).properties
}

/** Whether the variable is one the schema reads as a number. */
function isNumber (variable: string): boolean {
  const property = (envSchema() as { properties: Record<string, { type?: string }> }).properties[variable]
  return property !== undefined && (property.type === 'number' || property.type === 'integer')
}

function buildEnvSchema () {
  const properties: Record<string, object> = {
    WEBSOCKETS_HEARTBEAT_ENABLED: { type: 'boolean', default: true },
    WEBSOCKETS_HEARTBEAT_PERIOD: { type: 'number', minimum: shortestTimerS, maximum: longestTimerS, default: 30 },
    WEBSOCKETS_MAX_PAYLOAD: { type: 'integer', minimum: 1, default: 65536 },
    WEBSOCKETS_MAX_BUFFERED_BYTES: { type: 'integer', minimum: 1, default: 1024 * 1024 },
    WEBSOCKETS_ADDRESS_CONN_LIMIT: { type: 'integer', minimum: 1 },
    MAX_SESSIONS_PER_USER: { type: 'integer', minimum: 1, default: defaultSessionsPerUser },
    ACCESS_TOKEN_ISSUER: { type: 'string', minLength: 1, default: 'fastify-realtime' },
    PASSWORD_QUEUE_LIMIT: { type: 'integer', minimum: 1, default: 256 },
    PASSWORD_QUEUE_PER_ADDRESS: { type: 'integer', minimum: 1, default: 4 },
    ACCESS_TOKEN_TTL: { type: 'string', default: '15m' },
    REFRESH_TOKEN_TTL: { type: 'string', default: '7d' },
    SECRET: { type: 'string', minLength: 1 },
    PUBLIC_URL: { type: 'string' },
    CORS_ORIGIN: { type: 'string' },
    GRAPHQL_QUERY_TOKEN_LIMIT: { type: 'integer', minimum: 1, default: 5000 },
    GRAPHQL_QUERY_DEPTH_LIMIT: { type: 'integer', minimum: 1, default: 10 },
    GRAPHQL_QUERY_ALIAS_LIMIT: { type: 'integer', minimum: 0, default: 15 },
    GRAPHQL_QUERY_FIELD_LIMIT: { type: 'integer', minimum: 1, default: 200 },
    GRAPHQL_OPERATION_LIMIT: { type: 'integer', minimum: 1, default: 100 },
    GRAPHQL_INTROSPECTION: { type: 'boolean', default: true }
  }
  for (const { prefix, name } of Object.values(cookieVariables)) {
    properties[`${prefix}NAME`] = { type: 'string', pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$', default: name }
    properties[`${prefix}SECURE`] = { type: 'boolean', default: false }
    properties[`${prefix}SAME_SITE`] = { type: 'string', enum: ['lax', 'strict', 'none'], default: 'lax' }
    properties[`${prefix}PARTITIONED`] = { type: 'boolean', default: false }
    // A host name, as @fastify/cookie takes one: any other would fail every login that sets the cookie.
    properties[`${prefix}DOMAIN`] = { type: 'string', pattern: '^\\.?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$' }
  }
  properties.SESSION_COOKIE_TTL = { type: 'string', default: '1d' }
  properties.SESSION_REFRESH_GRACE_PERIOD = { type: 'string', default: '10s' }
  for (const { prefix, path } of Object.values(endpoints)) {
    properties[`${prefix}ENABLED`] = { type: 'boolean', default: true }
    // A query or a fragment is never part of a request's path: the endpoint would never be reached.
    properties[`${prefix}PATH`] = { type: 'string', pattern: '^/[^?#]*$', default: path }
    properties[`${prefix}AUTH`] = { type: 'string', enum: [...authModes], default: 'handshake' }
    properties[`${prefix}AUTH_TIMEOUT`] = { type: 'number', minimum: shortestTimerS, maximum: longestTimerS, default: 10 }
    properties[`${prefix}CONN_LIMIT`] = { type: 'integer', minimum: 1 }
  }
  return { type: 'object', properties }
}

// Which option each variable comes from, so an error can name both.
function optionValues (options: RealtimeOptions): Record<string, { value: unknown, option: string }> {
  const values: Record<string, { value: unknown, option: string }> = {}
  const set = (variable: string, option: string, value: unknown) => {
    if (value !== undefined) values[variable] = { value, option }
  }
  const endpointOptions = { rest: options.rest, graphql: options.graphql, logs: options.logs }
  for (const [name, endpoint] of Object.entries(endpointOptions)) {
    const { prefix } = endpoints[name as EndpointName]
    if (endpoint === false) {
      set(`${prefix}ENABLED`, name, false)
      continue
    }
    set(`${prefix}ENABLED`, `${name}.enabled`, endpoint?.enabled)
    set(`${prefix}PATH`, `${name}.path`, endpoint?.path)
    set(`${prefix}AUTH`, `${name}.auth`, endpoint?.auth)
    set(`${prefix}AUTH_TIMEOUT`, `${name}.authTimeout`, endpoint?.authTimeout)
    set(`${prefix}CONN_LIMIT`, `${name}.connLimit`, endpoint?.connLimit)
  }
  set('WEBSOCKETS_HEARTBEAT_ENABLED', 'heartbeat.enabled', options.heartbeat?.enabled)
  set('WEBSOCKETS_HEARTBEAT_PERIOD', 'heartbeat.period', options.heartbeat?.period)
  set('WEBSOCKETS_MAX_PAYLOAD', 'maxPayload', options.maxPayload)
  set('WEBSOCKETS_MAX_BUFFERED_BYTES', 'maxBufferedBytes', options.maxBufferedBytes)
  set('WEBSOCKETS_ADDRESS_CONN_LIMIT', 'connLimitPerAddress', options.connLimitPerAddress)
  set('MAX_SESSIONS_PER_USER', 'maxSessionsPerUser', options.maxSessionsPerUser)
  set('ACCESS_TOKEN_ISSUER', 'issuer', options.issuer)
  set('PASSWORD_QUEUE_LIMIT', 'passwordQueue.limit', options.passwordQueue?.limit)
  set('PASSWORD_QUEUE_PER_ADDRESS', 'passwordQueue.perAddress', options.passwordQueue?.perAddress)
  set('ACCESS_TOKEN_TTL', 'accessTokenTtl', options.accessTokenTtl === undefined ? undefined : String(options.accessTokenTtl))
  set('REFRESH_TOKEN_TTL', 'refreshTokenTtl', options.refreshTokenTtl === undefined ? undefined : String(options.refreshTokenTtl))
  set('SECRET', 'secret', options.secret)
  set('PUBLIC_URL', 'publicUrl', options.publicUrl)
  set('CORS_ORIGIN', 'origins', options.origins?.join(','))
  for (const [cookie, { prefix }] of Object.entries(cookieVariables)) {
    const chosen = options.cookies?.[cookie as keyof typeof cookieVariables]
    set(`${prefix}NAME`, `cookies.${cookie}.name`, chosen?.name)
    set(`${prefix}SECURE`, `cookies.${cookie}.secure`, chosen?.secure)
    set(`${prefix}SAME_SITE`, `cookies.${cookie}.sameSite`, chosen?.sameSite)
    set(`${prefix}PARTITIONED`, `cookies.${cookie}.partitioned`, chosen?.partitioned)
    set(`${prefix}DOMAIN`, `cookies.${cookie}.domain`, chosen?.domain)
  }
  const sessionTtl = options.cookies?.session?.ttl
  set('SESSION_COOKIE_TTL', 'cookies.session.ttl', sessionTtl === undefined ? undefined : String(sessionTtl))
  const refreshGrace = options.cookies?.session?.refreshGrace
  set('SESSION_REFRESH_GRACE_PERIOD', 'cookies.session.refreshGrace', refreshGrace === undefined ? undefined : String(refreshGrace))
  const graphql = options.graphql || undefined
  set('GRAPHQL_QUERY_TOKEN_LIMIT', 'graphql.queryTokenLimit', graphql?.queryTokenLimit)
  set('GRAPHQL_QUERY_DEPTH_LIMIT', 'graphql.queryDepthLimit', graphql?.queryDepthLimit)
  set('GRAPHQL_QUERY_ALIAS_LIMIT', 'graphql.queryAliasLimit', graphql?.queryAliasLimit)
  set('GRAPHQL_QUERY_FIELD_LIMIT', 'graphql.queryFieldLimit', graphql?.queryFieldLimit)
  set('GRAPHQL_OPERATION_LIMIT', 'graphql.operationLimit', graphql?.operationLimit)
  set('GRAPHQL_INTROSPECTION', 'graphql.introspection', graphql?.introspection)
  return values
}

interface SchemaError { instancePath: string, keyword: string, params: Record<string, unknown>, message?: string }

type Sources = Record<string, { option: string }>

/** `VARIABLE (option name)`: what the user has to look for, whichever side the value came from. */
function label (variable: string, from: Sources): string {
  return from[variable] ? `${variable} (option ${from[variable].option})` : variable
}

function describe (error: SchemaError, from: Sources): string {
  const allowed = error.keyword === 'enum' ? `: one of ${(error.params.allowedValues as string[]).join(', ')}` : ''
  return `${label(error.instancePath.slice(1), from)} ${error.message}${allowed}`
}

async function readEnvironment (data: Record<string, unknown>, from: Sources) {
  // An encapsulated throwaway instance: @fastify/env decorates the instance, and the app's own `config` is not ours.
  const scratch = Fastify()
  // env: false, since `data` already is the chosen environment (options.env or process.env), not a layer over it.
  scratch.register(fastifyEnv, { schema: envSchema(), data, env: false, confKey: 'realtimeEnv' })
  const failure = await scratch.ready().then(() => null, (err: { errors: SchemaError[] }) => err)
  await scratch.close()
  // With neither dotenv nor a custom Ajv, env-schema fails only on validation, always with `errors`.
  if (failure) throw new InvalidConfigError(failure.errors.map(e => describe(e, from)).join('; '))
  return (scratch as unknown as { realtimeEnv: Record<string, unknown> }).realtimeEnv
}

/** `orZero`: 0 (`0`, `0s`) turns off what the duration is of. */
function duration (variable: string, value: string, orZero = false): number {
  // `variable` is a label: the variable, and the option when it came from one.
  // A bare number is milliseconds, as in Directus.
  const parsed = /^\d+$/.test(value) ? Number(value) : ms(value as ms.StringValue)
  if (orZero && parsed === 0) return 0
  if (typeof parsed !== 'number' || !Number.isFinite(parsed) || parsed <= 0) {
    const kind = orZero ? 'duration such as 10s, 900000, or 0' : 'positive duration such as 15m, 7d or 900000'
    throw new InvalidConfigError(`${variable} must be a ${kind} (got "${value}")`)
  }
  if (parsed > longestDurationMs) throw new InvalidConfigError(`${variable} must be at most 100 years (got "${value}")`)
  return parsed
}

// What @fastify/cors takes for "any origin" (or none), and patterns (`https://*.example.com`, which no origin is):
// fine for HTTP, never for sockets that carry cookies.
const corsOnlyValues = new Set(['*', 'true', 'false'])
const corsOnly = (value: string) => corsOnlyValues.has(value) || value.includes('*')

function origin (variable: string, value: string): string {
  // `variable` is a label: the variable, and the option when it came from one.
  if (corsOnly(value)) {
    throw new InvalidConfigError(`${variable} must list origins: a wildcard would let any site open sockets with your users' cookies`)
  }
  try {
    const url = new URL(value)
    if (url.origin === 'null') throw new Error('opaque origin')
    return url.origin
  } catch {
    throw new InvalidConfigError(`${variable} must be a URL such as https://app.example.com (got "${value}")`)
  }
}

function attemptLimit (option: RealtimeOptions['attemptLimit']): Readonly<AttemptLimit> | null {
  if (option === false) return null
  const limit = { points: option?.points ?? 10, durationSeconds: option?.durationSeconds ?? 60 }
  for (const [name, value] of Object.entries(limit)) {
    // Whole seconds: Redis counts its windows in them.
    if (!Number.isInteger(value) || value < 1) throw new InvalidConfigError(`attemptLimit.${name} must be a positive integer (got ${value})`)
  }
  // The memory store ends a window with a timer: a longer one would end it after 1 ms, and no login would be limited.
  if (limit.durationSeconds > longestTimerS) {
    throw new InvalidConfigError(`attemptLimit.durationSeconds must be at most ${longestTimerS} (about 24 days; got ${limit.durationSeconds})`)
  }
  return Object.freeze(limit)
}

export async function resolveConfig (options: RealtimeOptions): Promise<Readonly<Config>> {
  checkOptionKinds(options)
  const env = options.env ?? process.env
  const data: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined || value === '') continue
    data[key] = value
  }
  const fromOptions = optionValues(options)
  for (const [variable, { value }] of Object.entries(fromOptions)) data[variable] = value
  for (const [variable, value] of Object.entries(data)) {
    // Directus spells "unlimited" Infinity; auth modes and booleans are case-insensitive.
    if (variable.endsWith('_CONN_LIMIT') && (value === Infinity || (typeof value === 'string' && /^infinity$/i.test(value)))) {
      delete data[variable]
    } else if (typeof value === 'string' && /^[+-]?infinity$/i.test(value) && isNumber(variable)) {
      // Ajv would read the string as Infinity and let it past `maximum`; the number itself it refuses, by name.
      data[variable] = Infinity
    } else if (typeof value === 'string' && (variable.endsWith('_AUTH') || variable.endsWith('_ENABLED') || variable.endsWith('_SAME_SITE') ||
      variable.endsWith('_COOKIE_SECURE') || variable.endsWith('_COOKIE_PARTITIONED') || variable === 'GRAPHQL_INTROSPECTION')) {
      data[variable] = value.toLowerCase()
    }
  }
  const raw = await readEnvironment(data, fromOptions)

  const resolvedEndpoints = {} as Record<EndpointName, EndpointConfig>
  for (const [name, { prefix }] of Object.entries(endpoints) as [EndpointName, { prefix: string }][]) {
    resolvedEndpoints[name] = Object.freeze({
      name,
      enabled: raw[`${prefix}ENABLED`] as boolean,
      path: raw[`${prefix}PATH`] as string,
      authMode: raw[`${prefix}AUTH`] as AuthMode,
      authTimeoutMs: Math.round((raw[`${prefix}AUTH_TIMEOUT`] as number) * 1000),
      connLimit: (raw[`${prefix}CONN_LIMIT`] as number | undefined) ?? Infinity
    })
  }

  const origins = new Set<string>()
  if (typeof raw.PUBLIC_URL === 'string') origins.add(origin(label('PUBLIC_URL', fromOptions), raw.PUBLIC_URL))
  const warnings: string[] = unknownOptions(options).map(name => `option ${name} is no option of fastify-realtime, and is ignored: a misspelling?`)
  for (const value of String(raw.CORS_ORIGIN ?? '').split(',').map(v => v.trim()).filter(Boolean)) {
    // The app's CORS_ORIGIN may be set for @fastify/cors: a value it can use and sockets cannot is left to it.
    if (corsOnly(value) && !fromOptions.CORS_ORIGIN) {
      warnings.push(`CORS_ORIGIN "${value}" is ignored for sockets (any origin would let every site open them with your users' cookies): list the origins allowed to open sockets in the plugin's \`origins\` option`)
      continue
    }
    origins.add(origin(label('CORS_ORIGIN', fromOptions), value))
  }

  const cookie = (which: keyof typeof cookieVariables): CookieConfig => {
    const { prefix } = cookieVariables[which]
    const resolved = {
      name: raw[`${prefix}NAME`] as string,
      secure: raw[`${prefix}SECURE`] as boolean,
      sameSite: raw[`${prefix}SAME_SITE`] as CookieConfig['sameSite'],
      domain: raw[`${prefix}DOMAIN`] as string | undefined,
      partitioned: raw[`${prefix}PARTITIONED`] as boolean
    }
    // Browsers drop a SameSite=None cookie that is not Secure, a __Secure- or __Host- one that is not Secure, a
    // __Host- one with a domain, and a Partitioned one that is not Secure: the login would seem to work and nothing
    // would stick.
    const name = label(`${prefix}NAME`, fromOptions)
    const secure = label(`${prefix}SECURE`, fromOptions)
    if (resolved.sameSite === 'none' && !resolved.secure) {
      throw new InvalidConfigError(`${label(`${prefix}SAME_SITE`, fromOptions)} none needs ${secure} true: browsers refuse a SameSite=None cookie that is not Secure`)
    }
    if (resolved.partitioned && !resolved.secure) {
      throw new InvalidConfigError(`${label(`${prefix}PARTITIONED`, fromOptions)} needs ${secure} true: browsers refuse a Partitioned cookie that is not Secure`)
    }
    if (/^__(?:secure|host)-/i.test(resolved.name) && !resolved.secure) {
      throw new InvalidConfigError(`${name} ${resolved.name} needs ${secure} true: browsers refuse a cookie of that prefix that is not Secure`)
    }
    if (/^__host-/i.test(resolved.name) && resolved.domain !== undefined) {
      throw new InvalidConfigError(`${name} ${resolved.name} takes no ${label(`${prefix}DOMAIN`, fromOptions)}: browsers refuse a __Host- cookie with a domain`)
    }
    // Not refused: harmless at the top level. But in a frame of another site, what the option is for, it is dropped.
    if (resolved.partitioned && resolved.sameSite !== 'none') {
      warnings.push(`${label(`${prefix}PARTITIONED`, fromOptions)} is set with ${label(`${prefix}SAME_SITE`, fromOptions)} ${resolved.sameSite}: a frame of another site drops such a cookie (the login answers 200 and keeps nothing); set it to none`)
    }
    return Object.freeze(resolved)
  }
  const refresh = cookie('refresh')
  const session = cookie('session')
  // The session cookie is read at the upgrade: the refresh cookie, read as one, would refuse every browser's socket.
  if (refresh.name === session.name) {
    throw new InvalidConfigError(`${label('REFRESH_TOKEN_COOKIE_NAME', fromOptions)} and ${label('SESSION_COOKIE_NAME', fromOptions)} must differ (both are ${refresh.name})`)
  }

  // Keys are tagged `{s:<id>}` and `{u:<user>}` so that one session's or one user's keys share a cluster slot: a brace
  // in the prefix would be read as the tag instead, and a script over two of a user's keys would span two slots.
  if (options.redisPrefix !== undefined && /[{}]/.test(options.redisPrefix)) {
    throw new InvalidConfigError(`redisPrefix must not contain { or } (got "${options.redisPrefix}"): Redis Cluster reads them as the keys' hash tags`)
  }

  const authRoutes = options.authRoutes
  // As a WEBSOCKETS_X_PATH: a route under `/auth?x` is one no request path matches, so every login would be a 404. null
  // is unset, as for every option.
  if (typeof authRoutes === 'object' && authRoutes !== null && /[?#]/.test(authRoutes.prefix ?? '')) {
    throw new InvalidConfigError(`authRoutes.prefix must not contain ? or # (got "${authRoutes.prefix}"): no request path would reach its routes`)
  }
  return Object.freeze({
    endpoints: Object.freeze(resolvedEndpoints),
    heartbeat: Object.freeze({
      enabled: raw.WEBSOCKETS_HEARTBEAT_ENABLED as boolean,
      periodMs: Math.round((raw.WEBSOCKETS_HEARTBEAT_PERIOD as number) * 1000)
    }),
    maxPayload: raw.WEBSOCKETS_MAX_PAYLOAD as number,
    maxBufferedBytes: raw.WEBSOCKETS_MAX_BUFFERED_BYTES as number,
    addressConnLimit: (raw.WEBSOCKETS_ADDRESS_CONN_LIMIT as number | undefined) ?? Infinity,
    maxSessionsPerUser: raw.MAX_SESSIONS_PER_USER as number,
    issuer: raw.ACCESS_TOKEN_ISSUER as string,
    passwordQueue: Object.freeze({
      limit: raw.PASSWORD_QUEUE_LIMIT as number,
      perAddress: raw.PASSWORD_QUEUE_PER_ADDRESS as number
    }),
    accessTokenTtlMs: duration(label('ACCESS_TOKEN_TTL', fromOptions), raw.ACCESS_TOKEN_TTL as string),
    refreshTokenTtlMs: duration(label('REFRESH_TOKEN_TTL', fromOptions), raw.REFRESH_TOKEN_TTL as string),
    secret: raw.SECRET as string | undefined,
    origins,
    publicRole: options.publicRole ?? null,
    authRoutes: authRoutes ? Object.freeze({ prefix: (typeof authRoutes === 'object' && authRoutes.prefix) || '/auth' }) : null,
    graphql: Object.freeze({
      queryTokenLimit: raw.GRAPHQL_QUERY_TOKEN_LIMIT as number,
      queryDepthLimit: raw.GRAPHQL_QUERY_DEPTH_LIMIT as number,
      queryAliasLimit: raw.GRAPHQL_QUERY_ALIAS_LIMIT as number,
      queryFieldLimit: raw.GRAPHQL_QUERY_FIELD_LIMIT as number,
      operationLimit: raw.GRAPHQL_OPERATION_LIMIT as number,
      introspection: raw.GRAPHQL_INTROSPECTION as boolean
    }),
    attemptLimit: attemptLimit(options.attemptLimit),
    production: isProduction(options.env),
    warnings: Object.freeze(warnings),
    cookies: Object.freeze({
      refresh,
      session: Object.freeze({
        ...session,
        ttlMs: duration(label('SESSION_COOKIE_TTL', fromOptions), raw.SESSION_COOKIE_TTL as string),
        // 0 turns it off, as in Directus.
        refreshGraceMs: duration(label('SESSION_REFRESH_GRACE_PERIOD', fromOptions), raw.SESSION_REFRESH_GRACE_PERIOD as string, true)
      })
    })
  })
}
