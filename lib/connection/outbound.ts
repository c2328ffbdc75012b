// Every frame the plugin sends goes out here, whatever produced it: a client that stops reading can make the server
// hold at most the cap for it (PROTOCOL.md section 11), then it is closed and, if even the close cannot reach it, cut.
import type { WebSocket } from 'ws'
import { CloseCode } from '../errors.js'
import { cutAfterGrace } from './close-grace.js'

export const tooSlowReason = 'Client too slow.'

/** One per plugin instance: the cap on unsent bytes every socket shares. */
export class Outbound {
  readonly maxBufferedBytes: number

  constructor (maxBufferedBytes: number) {
    this.maxBufferedBytes = maxBufferedBytes
  }

  /** Sends `frame` unless the socket is closing; a socket that would go over the cap is closed instead. */
  send (socket: WebSocket, frame: string): void {
    if (socket.readyState !== socket.OPEN) return
    if (this.fits(socket, frame)) socket.send(frame)
    else tooSlow(socket)
  }

  /** Whether `frame` can be sent without going over the cap (the logs stream drops a line that cannot). */
  fits (socket: WebSocket, frame: string): boolean {
    // String length for bytes: exact for ASCII, and never more than three times off; the cap is about megabytes.
    return socket.bufferedAmount + frame.length <= this.maxBufferedBytes
  }
}

function tooSlow (socket: WebSocket): void {
  // The close frame waits behind everything unsent, which a client that does not read never gets to.
  socket.close(CloseCode.PolicyViolation, tooSlowReason)
  cutAfterGrace(socket)
}
