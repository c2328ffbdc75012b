// The logs endpoint (`/websocket/logs`, PROTOCOL.md section 6): the JSON endpoint with two message types of its own,
// `subscribe` and `unsubscribe`, streaming the app's log lines to admin subscribers.
import { messages, RealtimeError } from '../errors.js'
import { redactLogObject } from '../redaction.js'
import type { Connection } from '../connection/connection.js'
import type { MessageHandler, RealtimeConnection } from '../../types/index.js'

/** pino's levels: a subscriber gets the lines of its level and above. */
export const logLevels: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 }

/**
 * A slow subscriber's lines are dropped while this much is still waiting to be sent to it, so a client that
 * does not read never makes the server's memory grow.
 */
export const maxBufferedBytes = 1024 * 1024

export class LogStream {
  /** Subscribers and the lowest level each wants. */
  readonly #subscribers = new Map<RealtimeConnection, number>()

  /** A line of any process: parsed, redacted and serialized once, whoever gets it. */
  deliver (line: string, node: string): void {
    if (this.#subscribers.size === 0) return
    let entry: unknown
    try {
      entry = JSON.parse(line)
    } catch {
      return // not a pino line
    }
    const level = (entry as { level?: unknown })?.level
    if (typeof level !== 'number') return
    let frame: string | undefined
    for (const [connection, lowest] of this.#subscribers) {
      // Admins only, at delivery time: a subscriber whose credential expired or was revoked gets nothing more.
      if (level < lowest || !connection.accountability.admin) continue
      const { socket } = connection as Connection
      if (socket.bufferedAmount > maxBufferedBytes) continue
      frame ??= JSON.stringify({ type: 'logs', data: redactLogObject(entry), node })
      socket.send(frame)
    }
  }

  remove (connection: RealtimeConnection): void {
    this.#subscribers.delete(connection)
  }

  readonly handlers: Record<string, MessageHandler> = {
    subscribe: (message, connection) => {
      if (!connection.accountability.admin) throw new RealtimeError('FORBIDDEN', messages.forbidden)
      const level = message.log_level
      if (typeof level !== 'string' || !Object.hasOwn(logLevels, level)) {
        throw new RealtimeError('INVALID_PAYLOAD', `"log_level" must be one of ${Object.keys(logLevels).join(', ')}.`)
      }
      this.#subscribers.set(connection, logLevels[level])
      connection.send({ type: 'logs', event: 'subscribe', log_level: level })
    },
    unsubscribe: (_message, connection) => {
      this.#subscribers.delete(connection)
      connection.send({ type: 'logs', event: 'unsubscribe' })
    }
  }
}
