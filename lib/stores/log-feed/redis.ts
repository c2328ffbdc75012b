// Log lines across processes: every process hears every process's lines, its own straight away (not through Redis,
// which would leave its subscribers with nothing, not even the line saying Redis is away). A process publishes its
// lines only while one process or another has a subscriber: each with subscribers says so on the channel, at its first
// and then every few seconds, and the others publish until they have not heard it for three times that (and for that
// long after they start or their subscription comes back, not knowing yet).
import type { RedisConnections } from '../redis-connection.js'
import { channelScope, redisKeys } from '../redis-keys.js'
import type { LineHandler, LogFeed } from './contract.js'
import { MissedLines } from '../../logs/missed-lines.js'
import type { NoticeWriter } from '../../logs/notice-writer.js'

/** How often a process with subscribers says so. */
const remindEveryMs = 10_000
/** How long the others publish after the last time they heard it: a reminder or two may be lost to a reconnect. */
const listenersLapseAfterMs = 3 * remindEveryMs
/** What a process with subscribers says. No line is this: a line comes after its process's id and a newline. */
const listeningMessage = 'listening'
/**
 * How many lines may await Redis's answer at once, for the client's own cost of each command. No answer is read before
 * the event loop's turn ends: a burst logged in one turn awaits it whole, and a healthy Redis carries one this long.
 */
const maxUnansweredLines = 10_000

export class RedisLogFeed implements LogFeed {
  readonly #redis: RedisConnections
  readonly #channel: string
  readonly #node: string
  #onLine!: LineHandler
  #listened!: () => boolean
  /**
   * Until when another process is known to have subscribers, by the monotonic clock (as the reminders): a wall clock
   * stepped forward would stop the lines at once, one stepped back an hour would publish them that long to nobody.
   */
  #listenedElsewhereUntil = 0
  #reminders: NodeJS.Timeout | undefined
  readonly #maxUnansweredBytes: number
  /** The lines published that Redis has not answered yet, and their length together. */
  #unansweredLines = 0
  #unansweredBytes = 0
  /**
   * The lines not published: told to the other processes before the next one that is, or at the end of the turn of a
   * line too long, or once Redis has caught up or is back.
   */
  readonly #unpublished = new MissedLines()
  #levelOf!: (line: string) => number
  #writeNotice!: NoticeWriter
  /** Whether the gap's telling awaits the end of the turn. */
  #tellingSoon = false

  /** `maxUnansweredBytes`: how long the lines awaiting Redis's answer may be together. */
  constructor (redis: RedisConnections, prefix: string, node: string, maxUnansweredBytes: number) {
    this.#redis = redis
    this.#channel = redisKeys(prefix, channelScope(redis.commands)).logsChannel
    this.#node = node
    this.#maxUnansweredBytes = maxUnansweredBytes
  }

  get wanted (): boolean {
    return this.#listened() || performance.now() < this.#listenedElsewhereUntil
  }

  publish (line: string): void {
    this.#onLine(line, this.#node)
    // Only on a connection that is up: an app's client may queue commands while Redis is away (BullMQ's
    // `maxRetriesPerRequest: null`), and every line logged meanwhile would wait in memory. A line is droppable.
    if (this.#redis.commands.status !== 'ready') return this.#drop(line)
    // A gap is told before any line after it, or the lines after it are dropped too: they would hide it.
    if (this.#unpublished.count > 0 && !this.#tellUnpublished()) return this.#drop(line)
    if (!this.#send(line, this.#maxUnansweredBytes)) this.#drop(line)
  }

  // Only handed lines while a process may have subscribers: a line dropped may have been missed.
  #drop (line: string): void {
    this.#unpublished.add(this.#levelOf(line))
  }

  // A quiet process logs nothing after it: told at the end of the turn (the turn's lines dropped counted with it).
  dropped (line: string): void {
    this.#drop(line)
    this.#tellSoon()
  }

  /** Tells the gap at the end of the turn, if Redis is up by then. */
  #tellSoon (): void {
    if (this.#tellingSoon) return
    this.#tellingSoon = true
    setImmediate(() => {
      this.#tellingSoon = false
      if (this.#unpublished.count > 0 && this.#redis.commands.status === 'ready') this.#tellUnpublished()
    })
  }

  /**
   * Publishes one line as this process's unless too many await Redis's answer already, or the lines awaiting it would
   * be longer together than `room`; whether it did.
   */
  #send (line: string, room: number): boolean {
    // A client may hold a PUBLISH until Redis answers, for good when Redis hangs with its connection up (BullMQ's client
    // has no timeout, and only the plugin's own connections are health-checked): past the cap, lines are dropped.
    if (this.#unansweredLines === maxUnansweredLines || this.#unansweredBytes + line.length > room) return false
    this.#unansweredLines++
    this.#unansweredBytes += line.length
    const answered = () => {
      this.#unansweredLines--
      this.#unansweredBytes -= line.length
      // Redis has caught up: the gap is told now, whether or not another line is logged.
      if (this.#unansweredLines === 0 && this.#unpublished.count > 0 && this.#redis.commands.status === 'ready') this.#tellUnpublished()
    }
    // Never logged when it fails: that line would come back here, and Redis being away is logged already.
    this.#redis.commands.publish(this.#channel, `${this.#node}\n${line}`).then(answered, answered)
    return true
  }

  /**
   * Publishes the line telling the other processes' subscribers how many of this process's lines they missed, once Redis
   * has answered half of what awaited it: a backlog at the cap is told of once, not after every line it drops. Whether
   * the gap is over.
   */
  #tellUnpublished (): boolean {
    if (2 * this.#unansweredLines > maxUnansweredLines || 2 * this.#unansweredBytes > this.#maxUnansweredBytes) return false
    const line = this.#unpublished.notice(this.#writeNotice, 'dropped', 'of this process not published',
      'dropped, not queued, to bound its memory (Redis was away or slow to answer, or a line was longer than maxBufferedBytes)')
    // Within the cap; a notice longer than the cap goes once Redis has answered everything, rather than never (until
    // then the gap goes on, told at the last answer).
    const sent = this.#send(line, Math.max(this.#maxUnansweredBytes, line.length))
    if (sent) this.#unpublished.reset()
    return sent
  }

  start (onLine: LineHandler, listened: () => boolean, levelOf: (line: string) => number, writeNotice: NoticeWriter): void {
    this.#onLine = onLine
    this.#listened = listened
    this.#levelOf = levelOf
    this.#writeNotice = writeNotice
    this.#assumeListened()
    // Back after an outage: what was dropped meanwhile is told at once, not with the next line logged, if any ever is.
    this.#redis.onCommandsReady(() => this.#tellSoon())
    this.#redis.listen(this.#channel, (message) => {
      if (message === listeningMessage) {
        this.#listenedElsewhereUntil = performance.now() + listenersLapseAfterMs
        return
      }
      const split = message.indexOf('\n')
      const node = message.slice(0, split)
      // This process's own lines, back from Redis, were delivered when published.
      if (split > 0 && node !== this.#node) onLine(message.slice(split + 1), node)
    }, () => {
      // Back after an outage: the others may have stopped publishing meanwhile, and this one missed their reminders.
      this.#assumeListened()
      if (listened()) this.listening()
    })
    this.#reminders = setInterval(() => { if (listened()) this.listening() }, remindEveryMs).unref()
  }

  /**
   * A process just started, or back after an outage, has not heard the reminders of the processes with subscribers:
   * it publishes until it has had the time to.
   */
  #assumeListened (): void {
    this.#listenedElsewhereUntil = performance.now() + listenersLapseAfterMs
  }

  listening (): void {
    this.#redis.commands.publish(this.#channel, listeningMessage).catch(() => {})
  }

  stop (): void {
    clearInterval(this.#reminders)
  }
}
