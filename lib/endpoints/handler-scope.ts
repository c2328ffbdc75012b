// What a JSON message handler runs as: the socket's accountability when it was called, and a signal that aborts when
// that accountability ends on the socket. A handler awaiting a database, or pushing with `send` after it returned,
// would otherwise work on, and send, for a user the socket no longer holds.
import { setMaxListeners } from 'node:events'
import type { Accountability, MessageContext } from '../../types/index.js'
import type { Connection } from '../connection/connection.js'

/**
 * One per accountability a socket's handlers ran under, shared by all of them: made as the first handler is called
 * under it (most sockets never run one), ended once, as that accountability ends on the socket.
 */
export class HandlerScope implements MessageContext {
  readonly accountability: Accountability
  readonly #connection: Connection
  readonly #controller = new AbortController()

  constructor (connection: Connection) {
    this.#connection = connection
    this.accountability = connection.accountability
    // Up to 100 handlers share it at once, and whatever the app keeps running after they return: no leak warning at 11.
    setMaxListeners(0, this.#controller.signal)
  }

  get signal (): AbortSignal {
    return this.#controller.signal
  }

  /** `connection.send`, until the accountability ends: what was computed for it never reaches whoever holds it next. */
  send (message: object): void {
    if (!this.#controller.signal.aborted) this.#connection.send(message)
  }

  /** Whether the socket's accountability now is still this one: the same user, role, admin flag and session. */
  holds (now: Accountability): boolean {
    const { user, role, admin, session } = this.accountability
    return now.user === user && now.role === role && now.admin === admin && now.session === session
  }

  end (): void {
    this.#controller.abort()
  }

  /**
   * A handler's rejection once its scope ended, from what it handed the signal to (`signal.throwIfAborted()`, a timer,
   * `events.on`, `fetch`): it stopped as asked, and its client heard why already, or is gone.
   */
  stopped (err: unknown): boolean {
    const { signal } = this.#controller
    if (!signal.aborted) return false
    const error = Object(err) as { name?: unknown, cause?: unknown }
    return err === signal.reason || error.cause === signal.reason || error.name === 'AbortError'
  }
}
