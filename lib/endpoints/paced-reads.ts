// A socket's frames come one a turn of the event loop (PROTOCOL.md section 11): the first of a read at once, the rest
// of it a turn at a time. ws's `allowSynchronousEvents: false` defers every frame, a lone one too, at a cost of a few
// percent of every message's CPU (docs/performance.md); its receiver reads the setting at each frame, so it is turned
// off only for the sockets that had a frame in this turn, and on again for all of them in one `setImmediate`.
// A ws that no longer reads the setting there leaves the server's own (`false`): every frame deferred, none at once.
import type { WebSocket } from 'ws'
import { receiverOf, type Receiver } from './ws-receiver.js'

/** The receivers that had a frame in this turn: they read their next a turn later. */
let paced: Receiver[] = []

function readAtOnceAgain (): void {
  const receivers = paced
  paced = []
  for (const receiver of receivers) receiver._allowSynchronousEvents = true
}

/** Called as a socket opens: its next frame comes at once. False for a ws whose receiver has no such setting. */
export function readAtOnce (socket: WebSocket): boolean {
  const receiver = receiverOf(socket)
  if (typeof receiver?._allowSynchronousEvents !== 'boolean') return false
  receiver._allowSynchronousEvents = true
  return true
}

/** Called on each frame (a message, a ping, a pong): the socket's next frame waits for the next turn. */
export function paceAfterFrame (socket: WebSocket): void {
  const receiver = receiverOf(socket)!
  if (receiver._allowSynchronousEvents !== true) return
  receiver._allowSynchronousEvents = false
  if (paced.push(receiver) === 1) setImmediate(readAtOnceAgain)
}
