// Log lines in one process: each goes straight to this process's subscribers.
import type { LineHandler, LogFeed } from './contract.js'

export class MemoryLogFeed implements LogFeed {
  readonly #node: string
  // Set by `start`, which the plugin calls at registration, before any line is captured.
  #onLine!: LineHandler
  #listened!: () => boolean

  constructor (node: string) {
    this.#node = node
  }

  get wanted (): boolean {
    return this.#listened()
  }

  publish (line: string): void {
    this.#onLine(line, this.#node)
  }

  start (onLine: LineHandler, listened: () => boolean): void {
    this.#onLine = onLine
    this.#listened = listened
  }

  // Nobody else to tell.
  dropped (): void {}
  listening (): void {}
  stop (): void {}
}
