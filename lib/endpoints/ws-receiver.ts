// ws's receiver, a private part of each socket, as the plugin reaches into it (paced-reads.ts, message-fragments.ts):
// every field may be missing in a ws that changed it, and each user checks what it reads before relying on it.
import type { WebSocket } from 'ws'

export interface Receiver {
  _allowSynchronousEvents?: unknown
  _fin?: unknown
  _fragments?: unknown
  dataMessage?: (this: Receiver, cb: unknown) => void
}

export const receiverOf = (socket: WebSocket): Receiver | undefined => (socket as WebSocket & { _receiver?: Receiver })._receiver
