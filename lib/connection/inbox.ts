// Processes a socket's frames one after the other, in arrival order. A frame whose handling is asynchronous (a
// password check, a refresh) holds back the later ones instead of letting them overtake it or be dropped; the
// socket is paused meanwhile, so TCP back-pressure, not this queue, bounds what a client can pile up.
import type { RawData, WebSocket } from 'ws'

export type FrameHandler = (data: RawData, isBinary: boolean) => void | Promise<void>

export class Inbox {
  readonly #socket: WebSocket
  readonly #handle: FrameHandler
  readonly #backlog: [RawData, boolean][] = []
  #busy = false

  constructor (socket: WebSocket, handle: FrameHandler) {
    this.#socket = socket
    this.#handle = handle
  }

  readonly receive = (data: RawData, isBinary: boolean): void => {
    if (this.#busy) {
      this.#backlog.push([data, isBinary])
      return
    }
    this.#run(data, isBinary)
  }

  #run (data: RawData, isBinary: boolean): void {
    const pending = this.#handle(data, isBinary)
    if (!pending) return
    this.#busy = true
    this.#socket.pause()
    pending.then(this.#drain, this.#drain)
  }

  readonly #drain = (): void => {
    this.#busy = false
    while (!this.#busy && this.#backlog.length > 0) {
      const [data, isBinary] = this.#backlog.shift()!
      this.#run(data, isBinary)
    }
    if (!this.#busy) this.#socket.resume()
  }
}
