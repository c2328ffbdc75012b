// One open socket as the application sees it: its guard, its endpoint, and a way to reach it.
import { randomUUID } from 'node:crypto'
import type { WebSocket } from 'ws'
import type { ConnectionGuard } from './guard.js'
import type { Accountability, EndpointName, RealtimeConnection } from '../../types/index.js'

// Ids unique to this process (a count) and across processes (a random UUID per process): cheaper to make for every
// socket than a UUID each.
const processPrefix = randomUUID()
let opened = 0

function connectionId (): string {
  return `${processPrefix}-${(++opened).toString(36)}`
}

export class Connection implements RealtimeConnection {
  readonly id = connectionId()
  readonly endpoint: EndpointName
  readonly socket: WebSocket
  readonly guard: ConnectionGuard
  /** Heartbeat state: pinged at the last beat, and whether anything arrived since. */
  pinged = false
  active = false

  constructor (endpoint: EndpointName, socket: WebSocket, guard: ConnectionGuard) {
    this.endpoint = endpoint
    this.socket = socket
    this.guard = guard
  }

  get accountability (): Accountability {
    return this.guard.accountability
  }

  send (message: object): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(JSON.stringify(message))
  }

  close (code?: number, reason?: string): void {
    this.socket.close(code, reason)
  }
}
