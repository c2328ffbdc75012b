// Processes a socket's frames one after the other, in arrival order. A frame whose handling is asynchronous (a
// password check, a refresh) holds back the later ones instead of letting them overtake it or be dropped; the
// socket is paused meanwhile, so TCP back-pressure, not this queue, bounds what a client can pile up.
import type { RawData, WebSocket } from 'ws'

/** An endpoint's socket extends it and takes the frames, one at a time, in `receiveFrame`. */
export abstract class Inbox {
  readonly #socket: WebSocket
  // Made on the first frame that has to wait: most sockets never need one, and every idle socket would keep it.
  #backlog: [RawData, boolean][] | null = null
  #busy = false

  constructor (socket: WebSocket) {
    this.#socket = socket
  }

  abstract receiveFrame (data: RawData, isBinary: boolean): void | Promise<void>

  readonly receive = (data: RawData, isBinary: boolean): void => {
    if (this.#busy) {
      (this.#backlog ??= []).push([data, isBinary])
      return
    }
    this.#run(data, isBinary)
  }

  #run (data: RawData, isBinary: boolean): void {
    const pending = this.receiveFrame(data, isBinary)
    if (!pending) return
    this.#busy = true
    this.#socket.pause()
    const drain = () => this.#drain()
    pending.then(drain, drain)
  }

  #drain (): void {
    this.#busy = false
    const backlog = this.#backlog ?? []
    while (!this.#busy && backlog.length > 0) {
      const [data, isBinary] = backlog.shift()!
      this.#run(data, isBinary)
    }
    if (!this.#busy) this.#socket.resume()
  }
}
