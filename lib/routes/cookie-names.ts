// The cookie names of the plugin's instances on one server. A browser sends every cookie of the host (Path=/) to every
// instance: one instance's session cookie reaches the other's upgrades, which cannot verify it and refuse them (401,
// PROTOCOL.md section 3), and one instance's login replaces the other's cookie of the same name. Two instances on one
// server sharing a name that either sets fail boot.
import { InvalidConfigError } from '../errors.js'
import type { Config } from '../config.js'

type Role = 'session' | 'refresh'

/** What one instance does with cookies. */
interface CookieUser {
  /** Where its routes are, to name it. */
  readonly prefix: string
  /** It sets both cookies (its auth routes); every instance reads the session cookie at the upgrade. */
  readonly sets: boolean
  readonly names: ReadonlyMap<string, Role>
}

// Keyed by the app's http server: the instances of one app, and of apps sharing a server (a `serverFactory`).
const usersOf = new WeakMap<object, Set<CookieUser>>()

/**
 * Records the cookies of the instance under `prefix` on `server`, or throws when one of its names is another instance's
 * there, and either sets it. Returns what removes the record, once the instance closes.
 */
export function claimCookieNames (server: object, prefix: string, config: Pick<Config, 'authRoutes' | 'cookies'>): () => void {
  const { session, refresh } = config.cookies
  const sets = config.authRoutes !== null
  const names = new Map<string, Role>([[session.name, 'session']])
  if (sets) names.set(refresh.name, 'refresh')
  const user: CookieUser = { prefix: prefix || '/', sets, names }
  const users = usersOf.get(server) ?? new Set()
  for (const other of users) {
    if (!other.sets && !sets) continue
    for (const [name, role] of names) {
      const its = other.names.get(name)
      if (its) throw sharedName(name, role, its, other.prefix)
    }
  }
  users.add(user)
  usersOf.set(server, users)
  return () => users.delete(user)
}

function sharedName (name: string, role: Role, its: Role, prefix: string): Error {
  return new InvalidConfigError(`two fastify-realtime instances on one server would share the cookie ${name} (the ${its} ` +
    `cookie of the one under ${prefix}, and this one's ${role} cookie): a browser sends each the other's, which refuses ` +
    'its upgrades (401) or replaces its login. Give each instance cookie names of its own (the cookies.session.name and ' +
    'cookies.refresh.name options, or SESSION_COOKIE_NAME and REFRESH_TOKEN_COOKIE_NAME)')
}
