// The logs endpoint (`/websocket/logs`, PROTOCOL.md section 6): the JSON endpoint with two message types of its own,
// `subscribe` and `unsubscribe`, streaming the app's log lines to admin subscribers.
import { RealtimeError } from '../errors.js'
import { withUid } from './frames.js'
import type { Connection } from '../connection/connection.js'
import type { Outbound } from '../connection/outbound.js'
import type { MessageHandler, RealtimeConnection } from '../../types/index.js'

/** pino's levels: a subscriber gets the lines of its level and above. */
export const logLevels: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 }

export class LogStream {
  /** Subscribers and the lowest level each wants. */
  readonly #subscribers = new Map<RealtimeConnection, number>()
  readonly #outbound: Outbound
  readonly #levelValues: Record<string, number>
  readonly #onFirstSubscriber: () => void

  /**
   * `levelValues`: the logger's own level names and numbers (pino's `logger.levels.values`), for lines that carry their
   * level's name; `onFirstSubscriber`: called when a subscriber comes while there was none.
   */
  constructor (outbound: Outbound, levelValues: Record<string, number>, onFirstSubscriber: () => void) {
    this.#outbound = outbound
    this.#levelValues = levelValues
    this.#onFirstSubscriber = onFirstSubscriber
  }

  /** Whether anybody subscribes here. */
  get listened (): boolean {
    return this.#subscribers.size > 0
  }

  /** Whether a line could ever be sent: its frame holds it whole, and no frame past `maxBufferedBytes` is. */
  sendable (line: string): boolean {
    return line.length <= this.#outbound.maxBufferedBytes
  }

  /** A line of any process, redacted where it was captured: parsed and serialized once, whoever gets it. */
  deliver (line: string, node: string): void {
    if (this.#subscribers.size === 0) return
    let entry: unknown
    try {
      entry = JSON.parse(line)
    } catch {
      return // not a pino line
    }
    const level = this.#levelOf((entry as { level?: unknown })?.level)
    let frame: string | undefined
    for (const [connection, lowest] of this.#subscribers) {
      // Admins only, at delivery time: a subscriber whose credential expired or was revoked gets nothing more.
      if (level < lowest || !connection.accountability.admin) continue
      frame ??= JSON.stringify({ type: 'logs', data: entry, node })
      // A slow subscriber misses lines rather than being closed: the lines are the server's, not its answers.
      const { socket } = connection as Connection
      if (this.#outbound.fits(socket, frame)) socket.send(frame)
    }
  }

  /**
   * A line's level as a number: pino writes the number, or the name where the app's `formatters.level` says so. A line
   * whose level cannot be read (no `level`, another logger's name for it) counts as the most severe: every subscriber
   * gets it, rather than none.
   */
  #levelOf (level: unknown): number {
    if (typeof level === 'number') return level
    if (typeof level === 'string' && Object.hasOwn(this.#levelValues, level)) return this.#levelValues[level]
    return Infinity
  }

  remove (connection: RealtimeConnection): void {
    this.#subscribers.delete(connection)
  }

  readonly handlers: Record<string, MessageHandler> = {
    subscribe: (message, connection) => {
      if (!connection.accountability.admin) throw RealtimeError.of({ code: 'FORBIDDEN' })
      const level = message.log_level
      if (typeof level !== 'string' || !Object.hasOwn(logLevels, level)) {
        throw new RealtimeError('INVALID_PAYLOAD', `"log_level" must be one of ${Object.keys(logLevels).join(', ')}.`)
      }
      const first = this.#subscribers.size === 0
      this.#subscribers.set(connection, logLevels[level])
      if (first) this.#onFirstSubscriber()
      connection.send(withUid({ type: 'logs', event: 'subscribe', log_level: level }, message.uid))
    },
    // Directus refuses a non-admin's unsubscribe too: one that lost admin gets nothing delivered anyway (`deliver`).
    unsubscribe: (message, connection) => {
      if (!connection.accountability.admin) throw RealtimeError.of({ code: 'FORBIDDEN' })
      this.#subscribers.delete(connection)
      connection.send(withUid({ type: 'logs', event: 'unsubscribe' }, message.uid))
    }
  }
}
