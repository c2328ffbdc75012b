// A TCP proxy to Redis on a port of its own: closed, the port refuses connections as a Redis that is down does; one of
// its connections can be held, as a Redis busy for as long as the test likes.
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net'

/** A connection held by `Link.hold`. */
export interface Hold {
  /** Resolves once a connection has sent the command, and is held. */
  readonly held: Promise<void>
  /** What the held connection has sent from the command on, lower-cased (not passed on until `release`). */
  sent (): string
  /** Passes on what was held, in order, and all that comes after. */
  release (): void
}

export class Link {
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  #hold: { command: string, upstream: Socket | null, chunks: Buffer[], onHeld: () => void } | null = null
  port = 0

  constructor (redisPort: number) {
    this.#server = createServer(client => {
      const upstream = tcpConnect(redisPort, '127.0.0.1')
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket)
        socket.on('error', () => {})
        socket.on('close', () => { client.destroy(); upstream.destroy(); this.#sockets.delete(socket) })
      }
      client.on('data', (chunk: Buffer) => this.#forward(upstream, chunk))
      upstream.pipe(client)
    })
  }

  #forward (upstream: Socket, chunk: Buffer): void {
    const hold = this.#hold
    if (hold && hold.upstream === null && chunk.toString().toLowerCase().includes(hold.command)) {
      hold.upstream = upstream
      hold.onHeld()
    }
    if (hold && hold.upstream === upstream) hold.chunks.push(chunk)
    else upstream.write(chunk)
  }

  /**
   * Holds the first connection to send `command` (lower case, as ioredis sends it) from now on: the command and all
   * the connection sends after it reach Redis at `release` only, as if Redis were busy. It stays up meanwhile.
   */
  hold (command: string): Hold {
    let onHeld!: () => void
    const held = new Promise<void>(resolve => { onHeld = resolve })
    const hold = { command, upstream: null as Socket | null, chunks: [] as Buffer[], onHeld }
    this.#hold = hold
    return {
      held,
      sent: () => Buffer.concat(hold.chunks).toString().toLowerCase(),
      release: () => {
        this.#hold = null
        for (const chunk of hold.chunks) hold.upstream!.write(chunk)
      }
    }
  }

  up (): Promise<void> {
    return new Promise(resolve => this.#server.listen(this.port, '127.0.0.1', () => {
      this.port = (this.#server.address() as { port: number }).port
      resolve()
    }))
  }

  down (): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    return new Promise(resolve => this.#server.close(() => resolve()))
  }
}
