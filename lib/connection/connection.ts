// One open socket as the application sees it: its guard, its endpoint, and a way to reach it.
import { randomUUID } from 'node:crypto'
import type { WebSocket } from 'ws'
import type { ConnectionGuard } from './guard.js'
import type { Accountability, EndpointName, RealtimeConnection } from '../../types/index.js'

/**
 * randomUUID builds its string from some twenty concatenated pieces, and an open socket would keep that whole tree
 * (about 400 bytes): reading a character makes V8 flatten it into one string.
 */
function connectionId (): string {
  const id = randomUUID()
  id.charCodeAt(0)
  return id
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
