// A message may come in fragments (a frame and continuation frames), which ws keeps until the last one comes. It kept
// each as a view into the read it came in: one byte of fragment kept its whole read (up to 64 KiB) alive, so a client
// sending a byte of fragment per read, padded with pongs, held about a gigabyte per socket within the max payload
// (docs/hostile-clients.md). Each fragment is kept as a copy of its own bytes, and a message has a bounded number of them.
import type { WebSocket } from 'ws'
import { receiverOf, type Receiver } from './ws-receiver.js'

/** What one kept fragment costs besides its bytes (its Buffer and ArrayBuffer, about 200 B), rounded up. */
const fragmentOverhead = 256

/**
 * The most fragments a message may come in: what they cost besides their bytes stays within the max payload (ws's
 * own bound, 16,384, let 1-byte fragments keep about 3 MiB). 256 at the default 64 KiB: a client writing 4 KiB frames
 * (gorilla/websocket's default buffer) needs 17; more closes the socket 1008. At least 16, for tiny max payloads.
 */
export const maxFragments = (maxPayload: number): number => Math.max(16, Math.floor(maxPayload / fragmentOverhead))

/** ws's receiver calls it after each data frame, once its payload is among the message's fragments. */
function dataMessage (this: Receiver, cb: unknown): void {
  if (!this._fin) {
    const fragments = this._fragments as Buffer[]
    const last = fragments[fragments.length - 1]
    // An empty fragment adds none: the last one may already be a copy.
    if (last !== undefined && last.byteLength < last.buffer.byteLength) {
      // Outside Node's buffer pool, whose 8 KiB slab a small copy would keep alive in turn.
      const copy = Buffer.allocUnsafeSlow(last.byteLength)
      last.copy(copy)
      fragments[fragments.length - 1] = copy
    }
  }
  ;(Object.getPrototypeOf(this) as Required<Receiver>).dataMessage.call(this, cb)
}

/**
 * Called as a socket opens: its message fragments are kept as copies. A ws whose receiver no longer has what this
 * reads is left as it is, and false is returned (`hostile/message-fragments.test.ts` fails then).
 */
export function keepFragmentCopies (socket: WebSocket): boolean {
  const receiver = receiverOf(socket)
  if (typeof receiver?.dataMessage !== 'function' || !Array.isArray(receiver._fragments) || typeof receiver._fin !== 'boolean') return false
  receiver.dataMessage = dataMessage
  return true
}
