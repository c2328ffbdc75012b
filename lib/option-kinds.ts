// The plugin's options that are code or collections, not settings: a value of the wrong kind fails `register` with
// the option's name, not later with a TypeError from deep inside, or never (a `verifyCredentials` that is no function
// booted and answered every login 503).
import { InvalidConfigError } from './errors.js'
import { checkUser, UserDirectory } from './auth/user-directory.js'
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
    const listed = new Map<string, number>()
    const ids = new Map<string, number>()
    users.forEach((user, index) => {
      checkUser(user, `users[${index}]`)
      // Said here with both indexes; the directory refuses them too, naming the emails.
      const email = user.email.trim().toLowerCase()
      if (listed.has(email)) throw new InvalidConfigError(`users[${index}] has the email of users[${listed.get(email)}]: list each user once`)
      listed.set(email, index)
      if (user.id == null) return
      if (ids.has(user.id)) throw new InvalidConfigError(`users[${index}] has the id of users[${ids.get(user.id)}]: give each user an id of their own`)
      ids.set(user.id, index)
    })
  }
  if (sessionStore != null && !sessionStoreMethods.every(method => isFunction((sessionStore as unknown as Record<string, unknown>)[method]))) {
    fail('sessionStore', `a session store (${sessionStoreMethods.join(', ')})`, sessionStore)
  }
  if (redis != null && typeof redis !== 'string' && !isFunction((redis as { publish?: unknown }).publish)) {
    fail('redis', 'a URL or an ioredis client', redis)
  }
  // ioredis reads a string that is no redis URL as a socket path, and fails every command after boot: refused now,
  // without echoing it (a URL may carry a password).
  if (typeof redis === 'string' && !isRedisUrl(redis)) {
    throw new InvalidConfigError('redis must be a redis:// or rediss:// URL (such as redis://127.0.0.1:6379) or an ioredis client')
  }
}

// Never the string itself: it is often an environment variable given where an object was meant (REALTIME_USERS with
// its passwords, DATABASE_URL with its password), and boot errors end up in logs.
function describe (value: unknown): string {
  if (Array.isArray(value)) return 'an array'
  if (typeof value !== 'string') return typeof value
  return `a string of ${value.length} character${value.length === 1 ? '' : 's'}`
}

function isRedisUrl (value: string): boolean {
  try {
    const { protocol, hostname } = new URL(value)
    return (protocol === 'redis:' || protocol === 'rediss:') && hostname !== ''
  } catch {
    return false
  }
}
