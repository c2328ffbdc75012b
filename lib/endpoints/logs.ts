// The logs endpoint (`/websocket/logs`, PROTOCOL.md section 6): the JSON endpoint with two message types of its own,
// `subscribe` and `unsubscribe`, streaming the app's log lines to admin subscribers.
import { RealtimeError } from '../errors.js'
import { withUid } from './frames.js'
import { MissedLines } from '../logs/missed-lines.js'
import { leadingLevel } from '../logs/line-level.js'
import type { NoticeWriter } from '../logs/notice-writer.js'
import type { Connection } from '../connection/connection.js'
import type { Outbound } from '../connection/outbound.js'
import type { MessageHandler, RealtimeConnection } from '../../types/index.js'

/** pino's levels: a subscriber gets the lines of its level and above. */
export const logLevels: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 }

/** What a `logs` frame adds to its line. */
const frameOverhead = JSON.stringify({ type: 'logs', data: null, node: '' }).length - 'null'.length
/**
 * How many lines, and how long, a batch is at most. Each frame is two buffers of one write, and the kernel takes at
 * most 1,024 (IOV_MAX) in one call: the rest would wait for the next turn, the whole write counted as unsent until
 * then, and the turn's later lines dropped for a subscriber that reads. A write past 64 KiB is likewise counted whole
 * while the kernel takes it in parts.
 */
const batchLines = 500
const batchBytes = 64 * 1024

/** A subscriber: the lowest level it wants, and the lines of those it missed since it was last sent one. */
class Subscriber extends MissedLines {
  lowest: number
  /** Whether its socket's drain is awaited, to tell it of its gap then. */
  awaitingDrain = false

  constructor (lowest: number) {
    super()
    this.lowest = lowest
  }
}

export class LogStream {
  readonly #subscribers = new Map<RealtimeConnection, Subscriber>()
  readonly #outbound: Outbound
  readonly #levelValues: Record<string, number>
  readonly #node: string
  readonly #writeNotice: NoticeWriter
  readonly #onFirstSubscriber: () => void

  /**
   * `levelValues`: the logger's own level names and numbers (pino's `logger.levels.values`), for lines that carry their
   * level's name; `node`: this process's, naming the notices of lines missed here, which `writeNotice` writes as the
   * app's logger writes; `onFirstSubscriber`: called when a subscriber comes while there was none.
   */
  constructor (outbound: Outbound, levelValues: Record<string, number>, node: string, writeNotice: NoticeWriter, onFirstSubscriber: () => void) {
    this.#outbound = outbound
    this.#levelValues = levelValues
    this.#node = node
    this.#writeNotice = writeNotice
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

  /** A line of this process dropped before reaching anyone (too long): each subscriber of its level misses it. */
  missedByAll (line: string): void {
    const level = this.levelOf(line)
    for (const subscriber of this.#subscribers.values()) if (level >= subscriber.lowest) subscriber.add(level)
    // Told at the end of the turn, to a subscriber that reads, with no other line to follow.
    this.#flushSoon()
  }

  /** The level of a line as it was written, for the lines the feed drops. */
  readonly levelOf = (line: string): number => leadingLevel(line, this.#levelValues)

  /**
   * A line of any process, redacted where it was captured. The lines of a turn of the event loop are sent together at
   * its end: each subscriber's socket then takes them in one write, where a write per line and subscriber made the
   * logging app pay a system call per admin for every line it logs. Past a batch's worth, those before are sent at once.
   */
  deliver (line: string, node: string): void {
    if (this.#subscribers.size === 0) return
    const length = frameOverhead + line.length + node.length
    if (this.#pending.length === 2 * batchLines || this.#pendingLength + length > batchBytes) this.#flush()
    this.#pending.push(line, node)
    this.#pendingLength += length
    this.#flushSoon()
  }

  #flushSoon (): void {
    if (this.#flushing) return
    this.#flushing = true
    setImmediate(this.#flush)
  }

  /** Lines awaiting the end of the turn, each followed by its node, and about how long their frames are together. */
  #pending: string[] = []
  #pendingLength = 0
  #flushing = false

  /** Each line parsed, filtered and serialized once, whoever gets it; each subscriber's frames written together. */
  readonly #flush = (): void => {
    this.#flushing = false
    const pending = this.#pending
    this.#pending = []
    this.#pendingLength = 0
    let wanted = Infinity
    for (const { lowest } of this.#subscribers.values()) wanted = Math.min(wanted, lowest)
    const levels: number[] = []
    const frames: string[] = []
    for (let i = 0; i < pending.length; i += 2) {
      let entry: unknown
      try {
        entry = JSON.parse(pending[i])
      } catch {
        continue // not a pino line
      }
      const level = this.#levelOf((entry as { level?: unknown })?.level)
      if (level < wanted) continue // serialized for nobody
      levels.push(level)
      frames.push(JSON.stringify({ type: 'logs', data: entry, node: pending[i + 1] }))
    }
    // Encoded once, when first sent: a string would be measured and encoded again for every subscriber.
    const bytes: Buffer[] = []
    for (const [connection, subscriber] of this.#subscribers) {
      // Nothing for it, nor a gap to tell of (a turn's lines all below every level, or a drain with nothing missed).
      if (frames.length === 0 && subscriber.count === 0) continue
      // Admins only, at delivery time: a subscriber whose credential expired or was revoked gets nothing more.
      if (!connection.accountability.admin) continue
      const { lowest } = subscriber
      const client = connection as Connection
      const { socket } = client
      client.together(() => {
        // A gap is told before any line after it, or the lines after it are missed too: they would hide it.
        if (subscriber.count > 0) this.#tellGap(client, subscriber)
        for (let i = 0; i < frames.length; i++) {
          if (levels[i] < lowest) continue
          // A slow subscriber misses lines rather than being closed: the lines are the server's, not its answers.
          if (subscriber.count === 0 && this.#outbound.fits(socket, frames[i])) socket.send(bytes[i] ??= Buffer.from(frames[i]), { binary: false })
          else subscriber.add(levels[i])
        }
      })
      if (subscriber.count > 0) this.#awaitDrain(client, subscriber)
    }
  }

  /**
   * Sends the line telling `subscriber` of the lines it missed, once half of what waited for it has gone: one hovering
   * at the cap hears of one long gap, not of a gap a line.
   */
  #tellGap (connection: Connection, subscriber: Subscriber): void {
    const { socket } = connection
    const cap = this.#outbound.maxBufferedBytes
    if (socket.bufferedAmount > cap / 2) return
    const line = subscriber.notice(this.#writeNotice, 'missed', 'missed', 'dropped, not queued, to bound the server\'s memory (this socket was not reading fast enough, or a line was longer than maxBufferedBytes)')
    const frame = JSON.stringify({ type: 'logs', data: JSON.parse(line), node: this.#node })
    // Within the cap; a notice longer than the cap goes once nothing waits for the socket, rather than never. Until
    // then the gap goes on, told at the drain.
    if (socket.bufferedAmount <= Math.max(0, cap - frame.length)) {
      socket.send(frame)
      subscriber.reset()
    }
  }

  /** A subscriber still in a gap hears of it once its socket has sent what waited: when it reads again, lines or none. */
  #awaitDrain (connection: Connection, subscriber: Subscriber): void {
    if (subscriber.awaitingDrain) return
    subscriber.awaitingDrain = true
    connection.whenDrained(() => {
      subscriber.awaitingDrain = false
      this.#flushSoon()
    })
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
      // Subscribing again changes the level: a gap already counted is still told.
      const subscriber = this.#subscribers.get(connection)
      if (subscriber === undefined) this.#subscribers.set(connection, new Subscriber(logLevels[level]))
      else subscriber.lowest = logLevels[level]
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
