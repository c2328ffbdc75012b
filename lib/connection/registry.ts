// Every open socket of this process, for the application API, the heartbeat and revocations.
import type { Connection } from './connection.js'
import type { ConnectionFilter } from '../../types/index.js'

export class Registry {
  readonly #connections = new Set<Connection>()

  add (connection: Connection): void {
    this.#connections.add(connection)
  }

  delete (connection: Connection): void {
    this.#connections.delete(connection)
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
