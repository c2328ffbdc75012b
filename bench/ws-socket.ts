// The same client surface as LiteSocket over the `ws` package's client, as most Node clients (the Directus SDK
// included) connect: masking, UTF-8 validation and its own parser. A heavier client shows more of the server's cost
// per message than the lite one, whose run is cheaper than the server's by design.
import { EventEmitter } from 'node:events'
import WebSocket from 'ws'
import type { ClientSocket, LiteSocketOptions } from './lite-socket.js'

/** The payload of a frame that textFrame built: after the 2 or 4 byte header and the zero mask. */
function payloadOf (frame: Buffer): Buffer {
  return frame.subarray((frame[1] & 0x7f) === 126 ? 8 : 6)
}

export class WsSocket implements ClientSocket {
  /** Emits 'close' once TCP is gone, as LiteSocket's net.Socket does. */
  readonly tcp = new EventEmitter()
  opened = false
  closed = false
  tag: unknown = undefined
  readonly #ws: WebSocket

  constructor (options: LiteSocketOptions) {
    this.#ws = new WebSocket(`ws://127.0.0.1:${options.port}${options.path}`, options.protocol ? [options.protocol] : [], {
      localAddress: options.localAddress,
      perMessageDeflate: false
    })
    this.#ws.on('open', () => {
      this.opened = true
      options.onOpen?.(this)
    })
    this.#ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) options.onText?.(data.toString(), this)
    })
    this.#ws.on('error', () => {})
    this.#ws.once('close', () => {
      this.closed = true
      options.onClose?.(this, this.opened)
      this.tcp.emit('close')
    })
  }

  send (text: string): void {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.send(text)
  }

  sendFrame (frame: Buffer): void {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.send(payloadOf(frame), { binary: false })
  }

  close (): void {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.close(1000)
    else if (this.#ws.readyState === WebSocket.CONNECTING) this.#ws.terminate()
  }

  destroy (): void {
    this.#ws.terminate()
  }
}
