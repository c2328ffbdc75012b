// Log lines in one process: each goes straight to this process's subscribers.
import type { LineHandler, LogFeed } from './contract.js'

export class MemoryLogFeed implements LogFeed {
  readonly shared = false
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
