// Every open socket of this process, for the application API, the heartbeat and revocations; and where the
// guards report what happens to them, for `fastify.realtime.on(...)`.
import type { Connection } from './connection.js'
import { ConnectionIndex } from './connection-index.js'
import type { ExpiryCode } from './guard.js'
import type { RealtimeEvents } from '../events.js'
import type { ClientInfo } from './accountability.js'
import type { AuthFailureCode, ConnectionFilter, EndpointName, RealtimeEventMap, RealtimeEventName } from '../../types/index.js'

const filterFields = ['user', 'session', 'endpoint'] as const

export class Registry {
  readonly #connections = new Set<Connection>()
  readonly #byUser = new ConnectionIndex()
  readonly #bySession = new ConnectionIndex()
  readonly #events: RealtimeEvents

  constructor (events: RealtimeEvents) {
    this.#events = events
  }

  /**
   * A listener of the application's. A 'close' listener may read a socket's address once the socket is gone, when
   * there is none to read: from then on every socket's address is read while it is open.
   */
  on<E extends RealtimeEventName> (event: E, listener: (payload: RealtimeEventMap[E]) => void): void {
    this.#events.on(event, listener)
    if (event === 'close') for (const connection of this.#connections) connection.pin()
  }

  /** How many sockets are open. */
  get size (): number {
    return this.#connections.size
  }

  /** A socket opened: its guard reports from now on (one authenticated at the upgrade counts as an authentication). */
  add (connection: Connection): void {
    this.#connections.add(connection)
    if (this.#events.has('close')) connection.pin()
    connection.guard.registered()
  }

  /** The socket is gone; its guard, closed first, has taken it out of the indexes. */
  delete (connection: Connection, code: number): void {
    this.#connections.delete(connection)
    if (this.#events.has('close')) this.#events.emit('close', { connection, code })
  }

  /**
   * The socket's guard took a user (and session), or has one as the registry takes the socket: found by them from now
   * on. Its guard tells the indexes of every change, and it alone.
   */
  index (connection: Connection, user: string, session: string | undefined): void {
    if (!this.#connections.has(connection)) return
    this.#byUser.add(user, connection)
    if (session !== undefined) this.#bySession.add(session, connection)
  }

  /** The socket's guard let its user (and session) go, or closed. */
  unindex (connection: Connection, user: string, session: string | undefined): void {
    this.#byUser.delete(user, connection)
    if (session !== undefined) this.#bySession.delete(session, connection)
  }

  /** How many users and sessions have a socket here. */
  get indexed (): { users: number, sessions: number } {
    return { users: this.#byUser.size, sessions: this.#bySession.size }
  }

  authenticated (connection: Connection): void {
    if (this.#events.has('auth')) this.#events.emit('auth', { connection: this.#handOut(connection) })
  }

  /** `client` is where the refused credential came from, for its address (the upgrade gate has no guard yet). */
  refused (endpoint: EndpointName, code: AuthFailureCode, reason: string, client: ClientInfo): void {
    if (this.#events.has('authFailed')) this.#events.emit('authFailed', { endpoint, code, reason, ip: client.ip })
  }

  /**
   * Told by a timer, which the first socket of a deadline armed, or by a revocation, in the revoking request's context:
   * the listeners run in the socket's own.
   */
  expired (connection: Connection, code: ExpiryCode): void {
    if (this.#events.has('expire')) connection.inContext(this.#emitExpire, this, connection, code)
  }

  #emitExpire (connection: Connection, code: ExpiryCode): void {
    this.#events.emit('expire', { connection: this.#handOut(connection), code })
  }

  /**
   * The matching open sockets, for the application: one closing (its close sent, its client's answer awaited) takes no
   * frame any more, and is left out. The plugin's own walks (shutdown, revocations, the heartbeat) see it still.
   */
  list (filter?: ConnectionFilter): Connection[] {
    const open: Connection[] = []
    for (const connection of this.matching(filter)) if (connection.open) open.push(this.#handOut(connection))
    return open
  }

  /**
   * A connection the application gets hold of may be read after its socket is gone: its address is read first, while
   * there is one. Sockets nobody hands out never pay for the system call.
   */
  #handOut (connection: Connection): Connection {
    connection.pin()
    return connection
  }

  /**
   * The sockets `filter` names, every one of them for none; a field given names a value (null: the sockets without
   * one), or it throws.
   */
  matching (filter: ConnectionFilter = {}): Generator<Connection> {
    for (const field of filterFields) {
      const value: unknown = filter[field]
      // `{ user: request.user?.id }` with no user would otherwise reach every socket (a private message to all).
      if (field in filter && typeof value !== 'string' && value !== null) {
        throw new TypeError(`filter.${field} must be a string (got ${typeof value}): a filter without it reaches every socket`)
      }
    }
    return this.#matching(filter)
  }

  * #matching (filter: ConnectionFilter): Generator<Connection> {
    // A user or session filter visits that key's sockets alone.
    const candidates = typeof filter.session === 'string'
      ? this.#bySession.get(filter.session)
      : typeof filter.user === 'string' ? this.#byUser.get(filter.user) : this.#connections
    for (const connection of candidates) {
      const { user, session } = connection.guard
      if (filter.endpoint !== undefined && connection.endpoint !== filter.endpoint) continue
      if (filter.user !== undefined && user !== filter.user) continue
      if (filter.session !== undefined && session !== filter.session) continue
      yield connection
    }
  }

  /** The session ended: every socket it authenticated loses its accountability. */
  revokeSession (session: string): void {
    for (const connection of this.matching({ session })) connection.guard.revoke()
  }

  /** The user was revoked at `at`: every socket authenticated with a credential issued until then loses it. */
  revokeUser (user: string, at: number): void {
    for (const connection of this.matching({ user })) connection.guard.revokeUser(at)
  }
}
