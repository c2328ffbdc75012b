// How log lines reach the subscribers: straight to this process's, and with Redis through it to every other process's.
import type { NoticeWriter } from '../../logs/notice-writer.js'

/** Called for every line of every process on the feed, with the process that logged it. */
export type LineHandler = (line: string, node: string) => void

export interface LogFeed {
  /**
   * Whether a line published now may reach a subscriber: one of this process's, or with Redis one of any process's.
   * A line nobody may read is neither redacted nor published.
   */
  readonly wanted: boolean
  /** Delivers the line to this process's subscribers at once, and with Redis publishes it for the others. */
  publish (line: string): void
  /**
   * A line of this process that reaches none of the others' subscribers (too long): with Redis, counted for them to be
   * told, as the lines Redis did not take are, at the end of the turn.
   */
  dropped (line: string): void
  /**
   * Delivers every line of the feed to `onLine`, each once: this process's own when published. `listened` says
   * whether this process has subscribers: with Redis, the other processes are told so, again and again while it has.
   * `levelOf` reads the level of a line the feed drops; `writeNotice` writes the line telling of those dropped, as the
   * app's logger writes.
   */
  start (onLine: LineHandler, listened: () => boolean, levelOf: (line: string) => number, writeNotice: NoticeWriter): void
  /** This process's first subscriber came: the other processes are told at once. */
  listening (): void
  stop (): void
}
