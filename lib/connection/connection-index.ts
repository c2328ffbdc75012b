// The open sockets of each user, or of each session: `send({ user })`, a logout and `revokeUser` visit those sockets
// alone, not every socket of the process.
import type { Connection } from './connection.js'

const none: readonly Connection[] = []

/**
 * A key's sockets. One socket is kept as itself: most users and sessions have one socket, and a Set per key would be
 * kept by every idle socket. A key's Set stays a Set until it is empty, so that it can lose sockets while it is walked.
 */
export class ConnectionIndex {
  readonly #byKey = new Map<string, Connection | Set<Connection>>()

  add (key: string, connection: Connection): void {
    const held = this.#byKey.get(key)
    if (held === undefined) this.#byKey.set(key, connection)
    else if (held instanceof Set) held.add(connection)
    else if (held !== connection) this.#byKey.set(key, new Set([held, connection]))
  }

  delete (key: string, connection: Connection): void {
    const held = this.#byKey.get(key)
    if (held === connection || (held instanceof Set && held.delete(connection) && held.size === 0)) this.#byKey.delete(key)
  }

  get (key: string): Iterable<Connection> {
    const held = this.#byKey.get(key)
    if (held === undefined) return none
    return held instanceof Set ? held : [held]
  }

  /** How many keys have a socket: a key left without one is forgotten, not kept empty. */
  get size (): number {
    return this.#byKey.size
  }
}
