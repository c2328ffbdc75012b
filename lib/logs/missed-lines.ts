// Lines dropped to bound memory, counted so that whoever lost them hears of it: a gap in the stream would otherwise
// read as "nothing happened". Numbers only: dropping a line allocates nothing.
import type { NoticeWriter } from './notice-writer.js'

/** pino's warn: a notice is a warning, raised to the most severe line it reports. */
const warn = 40

export class MissedLines {
  /** How many lines since the gap began (0: no gap). */
  count = 0
  #since = 0
  #mostSevere = 0

  /** One more line of `level` dropped; the first of a gap dates it. */
  add (level: number): void {
    if (this.count++ === 0) {
      this.#since = Date.now()
      this.#mostSevere = level
    } else if (level > this.#mostSevere) this.#mostSevere = level
  }

  /**
   * The line telling of the gap, as the app's logger writes (`write`): at warn, or at the level of the most severe line
   * missed when that is higher, so that it passes the level filter of a subscriber that lost lines of its level (one
   * subscribed at `error` hears of the errors it missed). `field` names the count, `reason` says why after the count
   * and the date.
   */
  notice (write: NoticeWriter, field: string, what: string, reason: string): string {
    const since = new Date(this.#since).toISOString()
    return write(Math.max(warn, this.#mostSevere), { [field]: this.count, since: this.#since },
      `${this.count} log ${this.count === 1 ? 'line' : 'lines'} ${what} since ${since}: ${reason}`)
  }

  /** The gap told: the next line dropped begins another. */
  reset (): void {
    this.count = 0
  }
}
