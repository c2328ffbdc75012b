// The plugin's options that are code, collections or objects of settings: a value of the wrong kind fails `register`
// with the option's name, not later with a TypeError from deep inside, or never (a `verifyCredentials` that is no
// function booted and answered every login 503).
import { InvalidConfigError } from './errors.js'
import { checkUsers, UserDirectory } from './auth/user-directory.js'
import type { RealtimeOptions } from '../types/index.js'

const sessionStoreMethods = ['create', 'rotate', 'lookup', 'end', 'endUser'] as const

const isFunction = (value: unknown) => typeof value === 'function'

export function checkOptionKinds (options: RealtimeOptions): void {
  const fail = (option: string, kind: string, value: unknown) => {
    throw new InvalidConfigError(`${option} must be ${kind} (got ${describe(value)})`)
  }
  // null is unset, as the plugin reads these options (`redis: process.env.REDIS_URL ?? null`).
  for (const option of ['verifyCredentials', 'mapClaims', 'onAuthenticate'] as const) {
    if (options[option] != null && !isFunction(options[option])) fail(option, 'a function', options[option])
  }
  const { origins, users, sessionStore, redis } = options
  if (origins != null && !(Array.isArray(origins) && origins.every(origin => typeof origin === 'string'))) {
    fail('origins', 'a list of origins, such as [\'https://app.example.com\']', origins)
  }
  // A UserDirectory of the app's, or the users to put in one.
  if (users != null && !(users instanceof UserDirectory)) {
    if (!Array.isArray(users)) fail('users', 'a list of users or a UserDirectory', users)
    checkUsers(users, 'users')
  }
  if (sessionStore != null && !sessionStoreMethods.every(method => isFunction((sessionStore as unknown as Record<string, unknown>)[method]))) {
    fail('sessionStore', `a session store (${sessionStoreMethods.join(', ')})`, sessionStore)
  }
  if (redis != null && typeof redis !== 'string' && !isIoredisClient(redis)) {
    fail('redis', 'a URL or an ioredis client', redis)
  }
  // ioredis reads a string that is no redis URL as a socket path, and fails every command after boot: refused now,
  // without echoing it (a URL may carry a password).
  if (typeof redis === 'string') {
    const url = redisUrl(redis)
    if (url === null) throw new InvalidConfigError('redis must be a redis:// or rediss:// URL (such as redis://127.0.0.1:6379) or an ioredis client')
    // ioredis sends SELECT NaN for a database that is no number (its rejection is uncaught: the process ends) and
    // SELECT -1 for a negative one (refused: every command then runs on database 0).
    if (!isDatabase(url)) {
      throw new InvalidConfigError('redis\'s database (the URL\'s path, or its db parameter) must be a whole number, such as redis://127.0.0.1:6379/0')
    }
  }
  for (const [option, takes, fits] of settingKinds) {
    const value = valueAt(options, option)
    // null is unset here too (and publicRole's documented "no role").
    if (value != null && !fits(value)) fail(option, takes, value)
  }
}

// What the plugin reads of a client: another Redis library's (node-redis has publish, eval and duplicate too, but no
// status) booted, then answered every login 503.
const ioredisMethods = ['publish', 'eval', 'duplicate', 'disconnect'] as const
function isIoredisClient (value: object): boolean {
  const client = value as Record<string, unknown>
  return typeof client.status === 'string' && typeof client.isCluster === 'boolean' &&
    ioredisMethods.every(method => isFunction(client[method]))
}

const isObject = (value: unknown) => typeof value === 'object' && value !== null && !Array.isArray(value)
const isString = (value: unknown) => typeof value === 'string'
const objectOrFalse = (value: unknown) => value === false || isObject(value)

/**
 * The options the plugin reads itself, and those that hold others, by path (parents first) with what they take: the
 * values it hands to the environment schema are checked there. A value of another kind would be read with another
 * meaning (`authRoutes: 'false'` mounting the routes, `heartbeat: false` leaving the heartbeat on).
 */
const settingKinds: ReadonlyArray<[option: string, takes: string, fits: (value: unknown) => boolean]> = [
  ['env', 'an object of variables', isObject],
  ['secret', 'a string', isString],
  ['jwt', 'an object of @fastify/jwt\'s options', isObject],
  ['rest', 'an object or false', objectOrFalse],
  ['rest.handlers', 'an object of handlers by type', isObject],
  ['logs', 'an object or false', objectOrFalse],
  ['graphql', 'an object or false', objectOrFalse],
  ['graphql.context', 'a function', isFunction],
  ['heartbeat', 'an object, such as { enabled: false }', isObject],
  ['passwordQueue', 'an object', isObject],
  ['publicRole', 'a string or null', isString],
  ['redisPrefix', 'a string', isString],
  ['redisReplicaAcks', 'a whole number of replicas, 0 or more', value => Number.isSafeInteger(value) && (value as number) >= 0],
  ['authRoutes', 'true, false or { prefix }', value => typeof value === 'boolean' || isObject(value)],
  ['authRoutes.prefix', 'a string', isString],
  ['cookies', 'an object', isObject],
  ['cookies.refresh', 'an object', isObject],
  ['cookies.session', 'an object', isObject],
  ['attemptLimit', 'an object or false', objectOrFalse]
]

/** The value at a dotted path; undefined under a parent that is no object (which its own row reports). */
function valueAt (options: RealtimeOptions, path: string): unknown {
  let value: unknown = options
  for (const name of path.split('.')) {
    if (!isObject(value)) return undefined
    value = (value as Record<string, unknown>)[name]
  }
  return value
}

// Never the string itself: it is often an environment variable given where an object was meant (REALTIME_USERS with
// its passwords, DATABASE_URL with its password), and boot errors end up in logs.
function describe (value: unknown): string {
  if (Array.isArray(value)) return 'an array'
  if (typeof value !== 'string') return typeof value
  return `a string of ${value.length} character${value.length === 1 ? '' : 's'}`
}

function redisUrl (value: string): URL | null {
  try {
    const url = new URL(value)
    return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '' ? url : null
  } catch {
    return null
  }
}

/** Whether the URL names no database (0), or one by a whole number: in its path, else in a `db` parameter. */
function isDatabase ({ pathname, searchParams }: URL): boolean {
  const database = pathname.length > 1 ? pathname.slice(1) : searchParams.get('db')
  return database === null || /^\d+$/.test(database)
}
