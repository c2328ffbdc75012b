// One open socket as the application sees it: its guard, its endpoint, and a way to reach it.
import { randomUUID } from 'node:crypto'
import type { Duplex } from 'node:stream'
import type { FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import { ConnectionGuard, type GuardEvents, type GuardPolicy } from './guard.js'
import { ClientInfo } from './accountability.js'
import type { AuthSuccess } from '../auth/authenticator.js'
import type { Outbound } from './outbound.js'
import { cutAfterGrace } from './close-grace.js'
import { checkClose } from './close-frame.js'
import type { Accountability, EndpointName, RealtimeConnection } from '../../types/index.js'

// Ids unique to this process (a count) and across processes (a random UUID per process), given when first asked
// for: most sockets never are, and each would keep one all the same.
const processPrefix = randomUUID()
let given = 0

const jsonPing = JSON.stringify({ type: 'ping' })
/** An empty write: its callback runs once everything written before it is. */
const nothing = Buffer.alloc(0)

/** A connection is its client's info (its upgrade request, its address) and owns its guard, which reports about it. */
export class Connection extends ClientInfo implements RealtimeConnection {
  #id: string | null = null
  readonly endpoint: EndpointName
  readonly socket: WebSocket
  readonly guard: ConnectionGuard
  readonly #outbound: Outbound
  /** Made when the app first asks: most sockets never carry any. */
  #state: Record<string, unknown> | null = null
  /** The heartbeat's: pinged at the last beat, and nothing (no frame, no pong) arrived since. */
  unanswered = false

  /** `upgrade`: the credential the upgrade request carried, verified by the gate. */
  constructor (endpoint: EndpointName, socket: WebSocket, request: FastifyRequest, outbound: Outbound,
    policy: GuardPolicy, events: GuardEvents, upgrade: AuthSuccess | null) {
    super(request)
    this.endpoint = endpoint
    this.socket = socket
    this.#outbound = outbound
    this.guard = new ConnectionGuard(policy, this, events, upgrade)
  }

  /**
   * Runs `fn` in the socket's context: its frames, its close and its expiry or revocation, whichever timer or request
   * set them off (a shared expiry timer carries the context of the socket that armed it, a revocation the revoking
   * request's), so the app's handlers, `onAuthenticate` and listeners see this socket's own: the one its guard was
   * made in.
   */
  inContext<A extends unknown[]> (fn: (...args: A) => void, thisArg: unknown, ...args: A): void {
    this.guard.runInAsyncScope(fn, thisArg, ...args)
  }

  get id (): string {
    this.#id ??= `${processPrefix}-${(++given).toString(36)}`
    return this.#id
  }

  get accountability (): Accountability {
    return this.guard.accountability
  }

  get context (): Readonly<Record<string, unknown>> {
    return this.guard.context
  }

  get state (): Record<string, unknown> {
    this.#state ??= {}
    return this.#state
  }

  send (message: object): void {
    if (this.open) this.sendFrame(JSON.stringify(message))
  }

  /** Whether the socket takes frames still: a closing one is sent nothing, and nothing is serialized for it. */
  get open (): boolean {
    return this.socket.readyState === this.socket.OPEN
  }

  /**
   * ws's own stream under the socket: its TCP connection, or `injectWS`'s in-memory one (the request's `raw.socket` is
   * then a stand-in without one). A private field of ws: a ws without it shows none.
   */
  get #transport (): (Duplex & { bytesRead?: number }) | undefined {
    return (this.socket as WebSocket & { _socket?: Duplex & { bytesRead?: number } })._socket
  }

  /** The bytes its TCP connection has read, frames not yet read from them included; undefined if ws hides them. */
  get bytesRead (): number | undefined {
    // Unknown, the heartbeat judges as before.
    return this.#transport?.bytesRead
  }

  /** Runs `send`, whose frames leave in one write of the connection (corked) rather than a write each. */
  together (send: () => void): void {
    const transport = this.#transport
    transport?.cork()
    try {
      send()
    } finally {
      transport?.uncork()
    }
  }

  /**
   * Calls `fn` once the connection has written all it was given and had held back. Its transport emits `drain` only
   * after a write it refused (past its 16 KiB): below that, an empty write's callback, behind all the rest, tells it.
   */
  whenDrained (fn: () => void): void {
    const transport = this.#transport
    if (transport?.writable === true && !transport.writableNeedDrain) transport.write(nothing, () => fn())
    else transport?.once('drain', fn)
  }

  /** Whether `frame` would be sent now: the socket open, and its unsent bytes leaving room for it under the cap. */
  takes (frame: string): boolean {
    return this.open && this.#outbound.fits(this.socket, frame)
  }

  /** A frame serialized already; within the cap on unsent bytes, like everything sent here. */
  sendFrame (frame: string): void {
    this.#outbound.send(this.socket, frame)
  }

  /** The heartbeat's ping, in the endpoint's own terms: `{"type":"ping"}` on the JSON endpoints (section 4). */
  ping (): void {
    this.sendFrame(jsonPing)
  }

  close (code?: number, reason?: string): void {
    checkClose(code, reason)
    this.socket.close(code, reason)
    // A socket paused with frames waiting reads on: its client's answer to the close completes it, where ws would
    // otherwise wait 30 s for it. What else arrives is dropped unread (the inbox).
    this.socket.resume()
  }

  /**
   * Closes the socket of a client gone silent (the heartbeat found it so) or refused in its handshake, and cuts it
   * after the grace if it does not answer.
   */
  closeAndCut (code?: number, reason?: string): void {
    this.close(code, reason)
    cutAfterGrace(this.socket)
  }
}
