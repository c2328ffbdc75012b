// The load generator's WebSocket client: the least a client can do on a raw TCP socket (a fixed upgrade request,
// zero-masked frames, unfragmented text frames in), so that the client is several times cheaper than the server it
// loads and the measurements show the server. Not a general client: no extensions, no fragments, no validation of
// Sec-WebSocket-Accept.
import net from 'node:net'

/** What the load generator uses of a client socket: LiteSocket, or WsSocket over the `ws` client. */
export interface ClientSocket {
  /** Emits 'close' once TCP is gone. */
  readonly tcp: { once: (event: 'close', listener: () => void) => unknown }
  opened: boolean
  closed: boolean
  /** Free for the scenario: what it needs to remember per socket. */
  tag: unknown
  send: (text: string) => void
  /** A frame built by textFrame. */
  sendFrame: (frame: Buffer) => void
  close: () => void
  destroy: () => void
}

export interface LiteSocketOptions {
  port: number
  path: string
  /** Offered subprotocol (graphql-transport-ws on the GraphQL servers). */
  protocol?: string
  /** A loopback source address: spreads the ephemeral ports of a run over several addresses. */
  localAddress?: string
  onOpen?: (socket: ClientSocket) => void
  onText?: (text: string, socket: ClientSocket) => void
  /** Once, when TCP is gone; `opened` says whether the upgrade had succeeded. */
  onClose?: (socket: ClientSocket, opened: boolean) => void
}

const zeroMask = Buffer.alloc(4)
// A masked close frame with status 1000 and a zero mask.
const closeFrame = Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8])

function upgradeRequest (options: LiteSocketOptions): string {
  return `GET ${options.path} HTTP/1.1\r\n` +
    `Host: 127.0.0.1:${options.port}\r\n` +
    'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
    (options.protocol ? `Sec-WebSocket-Protocol: ${options.protocol}\r\n` : '') +
    '\r\n'
}

/** A text frame as a client must send it: masked (with a zero key, so the payload is sent as it is). */
export function textFrame (text: string): Buffer {
  const payload = Buffer.from(text)
  const length = payload.length
  let header: Buffer
  if (length < 126) {
    header = Buffer.from([0x81, 0x80 | length])
  } else if (length < 65536) {
    header = Buffer.from([0x81, 0x80 | 126, length >> 8, length & 0xff])
  } else {
    throw new RangeError('the bench client sends frames under 64 KiB only')
  }
  return Buffer.concat([header, zeroMask, payload])
}

export class LiteSocket implements ClientSocket {
  readonly tcp: net.Socket
  opened = false
  closed = false
  /** Free for the scenario: what it needs to remember per socket. */
  tag: unknown = undefined
  readonly #options: LiteSocketOptions
  #pending: Buffer | null = null
  #closeSent = false

  constructor (options: LiteSocketOptions) {
    this.#options = options
    this.tcp = net.connect({ host: '127.0.0.1', port: options.port, localAddress: options.localAddress })
    this.tcp.setNoDelay(true)
    this.tcp.once('connect', () => this.tcp.write(upgradeRequest(options)))
    this.tcp.on('data', this.#data)
    this.tcp.on('error', () => {})
    this.tcp.once('close', () => {
      this.closed = true
      this.#options.onClose?.(this, this.opened)
    })
  }

  send (text: string): void {
    if (!this.closed && !this.#closeSent) this.tcp.write(textFrame(text))
  }

  sendFrame (frame: Buffer): void {
    if (!this.closed && !this.#closeSent) this.tcp.write(frame)
  }

  /** The closing handshake: the server answers with its close frame and ends TCP. */
  close (): void {
    if (this.closed || this.#closeSent) return
    this.#closeSent = true
    if (this.opened) this.tcp.write(closeFrame)
    else this.tcp.destroy()
  }

  destroy (): void {
    this.tcp.destroy()
  }

  readonly #data = (chunk: Buffer): void => {
    let buffer = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk
    this.#pending = null
    if (!this.opened) {
      const end = buffer.indexOf('\r\n\r\n')
      if (end === -1) {
        this.#pending = buffer
        return
      }
      // "HTTP/1.1 101": anything else (401, 403, 503) is a refused upgrade.
      if (buffer[9] !== 0x31 || buffer[10] !== 0x30 || buffer[11] !== 0x31) {
        this.tcp.destroy()
        return
      }
      this.opened = true
      buffer = buffer.subarray(end + 4)
      this.#options.onOpen?.(this)
    }
    let offset = 0
    while (buffer.length - offset >= 2) {
      const opcode = buffer[offset] & 0x0f
      let length = buffer[offset + 1] & 0x7f
      let start = offset + 2
      if (length === 126) {
        if (buffer.length - offset < 4) break
        length = buffer.readUInt16BE(offset + 2)
        start = offset + 4
      } else if (length === 127) {
        if (buffer.length - offset < 10) break
        length = Number(buffer.readBigUInt64BE(offset + 2))
        start = offset + 10
      }
      if (buffer.length < start + length) break
      const payload = buffer.subarray(start, start + length)
      offset = start + length
      if (opcode === 0x1) {
        this.#options.onText?.(payload.toString(), this)
      } else if (opcode === 0x8) {
        // The server's close: answer it if it started the handshake; the server then ends TCP.
        if (!this.#closeSent) {
          this.#closeSent = true
          this.tcp.write(closeFrame)
        }
        this.tcp.end()
      } else if (opcode === 0x9) {
        // A protocol ping (graphql-ws keep-alive): answer with a pong carrying the same payload.
        const header = Buffer.from([0x8a, 0x80 | payload.length])
        this.tcp.write(Buffer.concat([header, zeroMask, payload]))
      }
      if (this.closed) return
    }
    if (offset < buffer.length) this.#pending = Buffer.from(buffer.subarray(offset))
  }
}
