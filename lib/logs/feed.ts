// How log lines reach the subscribers: straight to this process's, or through Redis to every process's.
/** Called for every line of every process on the feed, with the process that logged it. */
export type LineHandler = (line: string, node: string) => void

export interface LogFeed {
  publish (line: string): void
  start (onLine: LineHandler): void
}

export class MemoryLogFeed implements LogFeed {
  readonly #node: string
  // Set by `start`, which the plugin calls at registration, before any line is captured.
  #onLine!: LineHandler

  constructor (node: string) {
    this.#node = node
  }

  publish (line: string): void {
    this.#onLine(line, this.#node)
  }

  start (onLine: LineHandler): void {
    this.#onLine = onLine
  }
}
