// Processes a socket's frames one after the other, in arrival order. A frame whose handling is asynchronous (a
// password check, a refresh) holds back the later ones instead of letting them overtake it or be dropped; the
// socket is paused while frames wait, so TCP back-pressure bounds what a client can pile up, and what ws had read
// already is bounded here, in bytes (PROTOCOL.md section 11).
import type { RawData, WebSocket } from 'ws'
import { CloseCode } from '../errors.js'
import { cutAfterGrace } from './close-grace.js'

/** What a queued frame costs besides its bytes: its buffer object and its place in the queue, roughly. */
const queuedFrameOverhead = 64

export const backlogFullReason = 'Too many frames queued.'

interface Backlog {
  /** Each frame, whether it is binary, and whether its owner holds something for it (`waits`). */
  frames: [RawData, boolean, boolean][]
  bytes: number
}

/** The backlog of an inbox that takes nothing more (`answerLast`): nothing is ever added to it. */
const closedBacklog: Backlog = Object.freeze({ frames: Object.freeze([]) as unknown as Backlog['frames'], bytes: 0 })

/**
 * An endpoint's socket extends it and takes the frames, one at a time, in `receiveFrame`. It names the socket and the
 * bound, which it holds already: fields here would be kept twice by every idle socket. Its helper methods are
 * `private`, not `#`, for the same reason: #methods give each instance a brand, a field of its own.
 */
export abstract class Inbox {
  // Made on the first frame that has to wait: most sockets never need one, and every idle socket would keep it.
  #backlog: Backlog | null = null
  #busy = false

  protected abstract get inboxSocket (): WebSocket
  /** What the frames waiting behind a pending one may cost: the max payload. */
  protected abstract get maxBacklogBytes (): number
  /**
   * Whether the owner keeps the socket paused for a bound of its own (what its running handlers hold): the inbox, its
   * own wait over, then leaves it paused, and the owner resumes it.
   */
  protected abstract get readingHeld (): boolean

  abstract receiveFrame (data: RawData, isBinary: boolean): void | Promise<void>

  /**
   * A frame that has to wait, told as it arrives: true if the owner holds something for it (an auth window), which
   * `ran` gives back once the frame has run, whatever its handling did (unless the socket closes first).
   */
  protected abstract waits (data: RawData): boolean
  protected abstract ran (): void

  /** A frame arrived: handled now, or queued behind the one still pending. */
  receive (data: RawData, isBinary: boolean): void {
    if (this.#backlog === closedBacklog) return
    if (this.#busy) {
      this.queue(data, isBinary)
      return
    }
    this.run(data, isBinary)
  }

  /**
   * The app closes, and the socket with it once the frame pending has been answered (its credential check): what waits
   * behind it, and what comes later, is dropped unread (`SocketOwner.answerLast`). An auth message among them would
   * start a check (a refresh token rotated, a session made) after the close began, one after the other, each holding it.
   */
  answerLast (): void {
    this.#backlog = closedBacklog
  }

  private queue (data: RawData, isBinary: boolean): void {
    // Frames behind a close are nobody's business: dropped, and the socket reads on until its client answers the close.
    if (this.inboxSocket.readyState !== this.inboxSocket.OPEN) return
    // Paused once a frame has to wait, not while the pending one alone is: until then the socket reads on, and a
    // client that leaves during a check is seen to leave (a refresh token it would never hear of is not rotated).
    this.inboxSocket.pause()
    const backlog = this.#backlog ??= { frames: [], bytes: 0 }
    backlog.bytes += (data as Buffer).byteLength + queuedFrameOverhead
    if (backlog.bytes > this.maxBacklogBytes) {
      // Nothing queued may run now that one frame is missing: the client gets the close, and the queue goes. Reading
      // resumes so that the client's answer to the close arrives; whatever else it sends is dropped unread.
      backlog.frames.length = 0
      const socket = this.inboxSocket
      socket.close(CloseCode.PolicyViolation, backlogFullReason)
      socket.resume()
      cutAfterGrace(socket)
      return
    }
    backlog.frames.push([data, isBinary, this.waits(data)])
  }

  private run (data: RawData, isBinary: boolean, held = false): void {
    const pending = this.receiveFrame(data, isBinary)
    if (!pending) {
      if (held) this.ran()
      return
    }
    this.#busy = true
    const drain = () => {
      if (held) this.ran()
      this.drain()
    }
    pending.then(drain, drain)
  }

  private drain (): void {
    // Back to back: ws handed them over one a turn as they came (socket-server.ts), and they cost the max payload at most.
    this.#busy = false
    const frames = this.#backlog?.frames ?? []
    while (!this.#busy && frames.length > 0) {
      const [data, isBinary, held] = frames.shift()!
      this.#backlog!.bytes -= (data as Buffer).byteLength + queuedFrameOverhead
      this.run(data, isBinary, held)
    }
    if (!this.#busy && !this.readingHeld) this.inboxSocket.resume()
  }
}
