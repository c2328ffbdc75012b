// graphql-ws holds an operation's id from its `subscribe` until it has run the operation out: for one the client
// completed, some turns after the `complete` (a query's resolvers may still run). The protocol frees the id at the
// `complete`; a `subscribe` reusing it before graphql-ws is done shared graphql-ws's one entry with the first, whose end
// sent a stray `complete` (or its own result, as the second's) and deleted the entry, the second then running on unseen,
// past its socket's close too. Such a `subscribe` waits here until graphql-ws is done with the id.
import { CloseCode, MessageType, parseMessage } from 'graphql-ws'
import { CloseCode as RealtimeCloseCode } from '../errors.js'
import { backlogFullReason } from '../connection/inbox.js'
import { subscribeText } from './graphql-payload.js'

/** The socket frames come from, and graphql-ws behind it. */
export interface FrameSink {
  /** Hands a frame to graphql-ws; settles once graphql-ws is done with it (a `subscribe`: its operation has run out). */
  pass (text: string): Promise<void>
  /** Whether the socket still reads frames. */
  readonly reading: boolean
  /** What the `subscribe`s waiting here may cost together, in bytes: the max payload, as frames queued on `/websocket`. */
  readonly maxWaitingBytes: number
  close (code: number, reason: string): void
}

interface IdInUse {
  /** The client has completed the operation: the id is free for it. */
  completed: boolean
  /** The `subscribe` reusing the id, until graphql-ws is done with it. */
  waiting: string | null
}

/** The operation a frame names, as graphql-ws reads it; null for any other frame, and one it closes the socket on. */
function operationOf (text: string): { type: MessageType.Subscribe | MessageType.Complete, id: string } | null {
  try {
    const message = parseMessage(text)
    return message.type === MessageType.Subscribe || message.type === MessageType.Complete ? message : null
  } catch {
    return null
  }
}

export class OperationIds {
  /** Made at the first operation: most sockets of a busy server hold one or none, and idle ones none. */
  #inUse: Map<string, IdInUse> | null = null
  readonly #sink: FrameSink

  constructor (sink: FrameSink) {
    this.#sink = sink
  }

  /** A frame of the client's, in the order they came. */
  receive (text: string): void {
    const operation = operationOf(text)
    if (operation === null) {
      this.#sink.pass(text)
      return
    }
    const { type, id } = operation
    if (type === MessageType.Subscribe) text = subscribeText(operation, text)
    const inUse = this.#inUse?.get(id)
    if (type === MessageType.Complete) this.complete(inUse, text)
    else if (inUse === undefined) this.start(id, text)
    else if (inUse.completed && inUse.waiting === null) this.wait(inUse, text)
    // The first is live for the client: not completed, or itself a `subscribe` waiting. graphql-ws's own answer.
    else this.#sink.close(CloseCode.SubscriberAlreadyExists, `Subscriber for ${id} already exists`)
  }

  /**
   * Held until its id is free. Each id holds one, but as many ids as operations may be in use (queries whose resolvers
   * are slow, completed): past the bound, the socket closes as a `/websocket` one with too many frames queued does.
   */
  private wait (inUse: IdInUse, text: string): void {
    let bytes = Buffer.byteLength(text)
    for (const other of this.#inUse!.values()) bytes += other.waiting === null ? 0 : Buffer.byteLength(other.waiting)
    if (bytes > this.#sink.maxWaitingBytes) this.#sink.close(RealtimeCloseCode.PolicyViolation, backlogFullReason)
    else inUse.waiting = text
  }

  private complete (inUse: IdInUse | undefined, text: string): void {
    // Completed before it ran: graphql-ws never had it.
    if (inUse?.waiting != null) {
      inUse.waiting = null
      return
    }
    if (inUse !== undefined) inUse.completed = true
    this.#sink.pass(text)
  }

  private start (id: string, text: string): void {
    const inUse: IdInUse = { completed: false, waiting: null }
    const ids = this.#inUse ??= new Map()
    ids.set(id, inUse)
    this.#sink.pass(text).then(() => {
      ids.delete(id)
      // A frame behind a close is dropped, as every frame is.
      if (inUse.waiting !== null && this.#sink.reading) this.start(id, inUse.waiting)
    })
  }
}
