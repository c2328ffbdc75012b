// Every open socket of this process, for the application API, the heartbeat and revocations; and where the
// endpoints report what happens to them, for `fastify.realtime.on(...)`.
import type { Connection } from './connection.js'
import type { ExpiryCode } from './guard.js'
import type { RealtimeEvents } from '../events.js'
import type { AuthFailureCode, ConnectionFilter, EndpointName } from '../../types/index.js'

export class Registry {
  readonly #connections = new Set<Connection>()
  readonly #events: RealtimeEvents

  constructor (events: RealtimeEvents) {
    this.#events = events
  }

  /** A socket opened; one authenticated at the upgrade counts as an authentication. */
  add (connection: Connection): void {
    this.#connections.add(connection)
    if (connection.accountability.user !== null) this.authenticated(connection)
  }

  delete (connection: Connection, code: number): void {
    this.#connections.delete(connection)
    this.#events.emit('close', { connection, code })
  }

  authenticated (connection: Connection): void {
    this.#events.emit('auth', { connection })
  }

  refused (endpoint: EndpointName, code: AuthFailureCode, reason: string, ip: string | null): void {
    this.#events.emit('authFailed', { endpoint, code, reason, ip })
  }

  expired (connection: Connection, code: ExpiryCode): void {
    this.#events.emit('expire', { connection, code })
  }

  * matching (filter: ConnectionFilter = {}): Generator<Connection> {
    for (const connection of this.#connections) {
      const { user, session } = connection.accountability
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
}
