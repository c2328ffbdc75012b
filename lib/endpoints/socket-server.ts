// The plugin's sockets come from a ws server of its own: its frame limit (maxPayload), its choice of subprotocol and
// its answer to a refused frame hold on its routes and nowhere else, whatever the app gave its own @fastify/websocket.
// @fastify/websocket upgrades every route with the one server it decorates its instance with (`websocketServer`,
// the app's own when the app registered it), through that server's `handleUpgrade`: the one place where an upgrade to
// a plugin route can be handed to this server instead. test/plugin/socket-server.test.ts fails if @fastify/websocket stops
// upgrading there.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { WebSocket, WebSocketServer, type RawData } from 'ws'
import { upgraded } from '../routes/answered-upgrades.js'
import { refuseUpgrade } from '../errors.js'
import { cutAfterGrace } from '../connection/close-grace.js'
import type { Connection } from '../connection/connection.js'
import { deadline } from '../deadline.js'
import { paceAfterFrame, readAtOnce } from './paced-reads.js'
import { keepFragmentCopies, maxFragments } from './message-fragments.js'

// A mark on the request itself, naming the server it is for, as subprotocol.ts marks GraphQL upgrades.
const ownUpgrade = Symbol('fastify-realtime.ownUpgrade')
type Claimed = IncomingMessage & { [ownUpgrade]?: WebSocketServer }

/** What serves one plugin socket: the socket's events come to it. */
export interface SocketOwner {
  /** The upgrade request: its log reports a refused frame. */
  readonly request: FastifyRequest
  /** The socket's connection: its events run in its context (none for a socket that gets no connection). */
  readonly connection: Pick<Connection, 'inContext'>
  receive (data: RawData, isBinary: boolean): void
  closed (code: number, reason: Buffer): void
  /** The server began closing the socket, by whatever path (only owners that have this method are told). */
  closing? (): void
  /** A pong frame came (only owners that have this method are told). */
  answered? (): void
  /**
   * The app closes, and the socket with it once its credential check in flight is answered: what its client sent
   * after that check is not run (only owners that queue frames behind a check have this method).
   */
  answerLast? (): void
}

/** What takes a plugin route's socket once it is open, and serves it. */
export type SocketHandler = (socket: WebSocket, request: FastifyRequest) => SocketOwner

const ownerKey = Symbol('fastify-realtime.socketOwner')
type Owned = WebSocket & { [ownerKey]: SocketOwner }
const ownerOf = (socket: WebSocket): SocketOwner => (socket as Owned)[ownerKey]

// The listeners every socket shares: each finds its socket's owner on the socket. A closure per socket and event
// would be kept by every idle socket (docs/performance.md).
// Each in the context the app's hooks left on the socket's upgrade request (Connection.inContext): a socket's data
// arrives in the context its TCP connection was accepted in, the app's for none of its requests.
function onMessage (this: WebSocket, data: RawData, isBinary: boolean): void {
  const owner = ownerOf(this)
  owner.connection.inContext(owner.receive, owner, data, isBinary)
}

function onClose (this: WebSocket, code: number, reason: Buffer): void {
  const owner = ownerOf(this)
  owner.connection.inContext(owner.closed, owner, code, reason)
}

function onPong (this: WebSocket): void {
  ownerOf(this).answered!()
}

/**
 * The plugin's sockets. Every close the server begins, whoever calls it (the plugin, the app, ws itself on a frame it
 * refuses or as it answers a client's close), tells the socket's owner at once: its client may take ws's 30 s to answer.
 * A socket closed while it opens has no owner yet, and nothing to tell.
 */
class PluginSocket extends WebSocket {
  // Every frame the client sends is paced (paced-reads.ts), control frames too: a flood of pings would otherwise have
  // each answered in the turn that read it. Here rather than in listeners: an idle socket keeps no more for it.
  override emit (event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'message' || event === 'ping' || event === 'pong') paceAfterFrame(this)
    return super.emit(event, ...args)
  }

  override close (code?: number, data?: string | Buffer): void {
    super.close(code, data)
    ;(this as WebSocket as Partial<Owned>)[ownerKey]?.closing?.()
  }
}

/**
 * A frame ws refuses (1009 over maxPayload, 1007 not UTF-8) is a client's fault, and ws closes the socket with its
 * code itself: the error handler of the app's @fastify/websocket (terminating, by default) would tear it down under
 * that close, and the client would get 1006.
 */
function onError (this: WebSocket, err: Error): void {
  // At debug, without a stack: any client can send such frames, once per socket it opens.
  const { code, message } = err as Error & { code?: string }
  ownerOf(this).request.log.debug({ code, message }, 'websocket frame refused')
  this.close()
  cutAfterGrace(this)
}

export class SocketServer {
  /**
   * A socket's frames come one a turn of the event loop (paced-reads.ts; `allowSynchronousEvents: false` until a socket
   * opens: ws emits its next frame in a `setImmediate`, and pauses the socket once its receiver's buffer is full), so
   * other sockets' frames come between a flooder's, whose read would otherwise hold the loop
   * (docs/hostile-clients.md). What waits stays bytes, a few reads' worth, the rest held back by TCP.
   */
  readonly server: WebSocketServer
  readonly #open: () => Iterable<Connection>
  readonly #answerWithinMs: number
  #receiverChangeTold = false
  #closed = false

  /**
   * `open`: the sockets open now, to close with the app. The plugin's registry has every one of them; ws's own
   * tracking would keep a second entry and a closure per socket. `answerWithinMs`: how long the close waits for the
   * credential checks in flight (the store timeout: each of a check's steps is given up on after it).
   */
  constructor (maxPayload: number, open: () => Iterable<Connection>, answerWithinMs: number) {
    this.server = new WebSocketServer({
      noServer: true,
      maxPayload,
      maxFragments: maxFragments(maxPayload),
      clientTracking: false,
      WebSocket: PluginSocket,
      allowSynchronousEvents: false
    })
    this.#open = open
    this.#answerWithinMs = answerWithinMs
  }

  /** Makes `shared`, the server of a @fastify/websocket, hand the upgrades `claim` marked over to this one. */
  takeUpgradesFrom (shared: WebSocketServer): void {
    const own = this.server
    const upgrade = shared.handleUpgrade
    shared.handleUpgrade = function (request, socket, head, callback) {
      if ((request as Claimed)[ownUpgrade] === own) own.handleUpgrade(request, socket, head, callback)
      else upgrade.call(this, request, socket, head, callback)
    }
  }

  /** An onRequest hook of the plugin's websocket routes: their upgrades are this server's. */
  readonly claim = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    // Once the app closes, every @fastify/websocket has stopped listening for upgrades, and Node routes one as a plain
    // request (Fastify's `return503OnClosing: false` lets it through): 503 as ws answers in the gate, not a 404.
    if (this.#closed && !request.ws && asksForWebsocket(request.raw.headers)) return refuseUpgrade(reply, { code: 'SERVICE_UNAVAILABLE' })
    ;(request.raw as Claimed)[ownUpgrade] = this.server
    versionAsSent(request.raw.headers)
    done()
  }

  /** A plugin route's socket handler: `open` makes the socket's owner, and the socket's events go to it. */
  handler (open: SocketHandler): (socket: WebSocket, request: FastifyRequest) => void {
    return (socket, request) => {
      socket.removeAllListeners('error') // @fastify/websocket's, added just before it called this handler
      upgraded(request.raw.socket)
      const owner = open(socket, request);
      (socket as Owned)[ownerKey] = owner
      socket.on('error', onError)
      socket.on('message', onMessage)
      socket.on('close', onClose)
      if (owner.answered) socket.on('pong', onPong)
      const paced = readAtOnce(socket)
      const copied = keepFragmentCopies(socket)
      if (!(paced && copied)) this.receiverChanged(request, paced, copied)
    }
  }

  /**
   * The installed ws lacks what the plugin reaches into on its sockets' receivers (a ws release that changed them):
   * its sockets are read as ws reads them, without two of the bounds on hostile clients. Told once.
   */
  private receiverChanged (request: FastifyRequest, paced: boolean, copied: boolean): void {
    if (this.#receiverChangeTold) return
    this.#receiverChangeTold = true
    request.log.warn({ pacedReads: paced, fragmentCopies: copied },
      'the installed ws changed its receiver: frames are not paced or message fragments not copied (docs/hostile-clients.md); install the ws release the plugin was tested with')
  }

  /**
   * Closes every socket, as @fastify/websocket does its own when the app closes, and cuts those whose client has not
   * answered within the grace: the app's close waits for every connection. A socket whose credential is being checked
   * is closed once its client has the answer, within `answerWithinMs`: cut off, a check may have acted (a refresh
   * token rotated, a session made) for a client that never hears of it, and the stores a take-back needs close next.
   * One whose auth message only waits its turn (behind the app's handlers) closes at once, the message unread: no check
   * has started for it, nothing has acted. Nor does one waiting behind the check in flight start one after it.
   */
  async close (): Promise<void> {
    // No socket opens from now on: an upgrade still in the gate is answered 503, ws's answer once its server closed.
    this.#closed = true
    this.server.close()
    // Only the sockets with a check in flight cost a promise: thousands of idle ones are closed in one pass.
    const unanswered = new Set<WebSocket>()
    const answering: Promise<void>[] = []
    const closeOnce = (socket: WebSocket) => { if (unanswered.delete(socket)) closeWithApp(socket) }
    for (const { socket, guard } of this.#open()) {
      const settled = guard.settled()
      if (settled === null) {
        closeWithApp(socket)
        continue
      }
      ownerOf(socket).answerLast?.()
      unanswered.add(socket)
      answering.push(answered(settled).then(() => closeOnce(socket)))
    }
    if (answering.length === 0) return
    await deadline(Promise.all(answering), this.#answerWithinMs).catch(() => {})
    // Past the wait, closed unanswered.
    for (const socket of unanswered) closeOnce(socket)
  }
}

/**
 * Once the guard holds no answer: the socket is closed a turn later, so that an answer sent a few steps after its check
 * settled (graphql-ws's `connection_ack`) goes first. No other check starts meanwhile: a JSON socket runs nothing its
 * client sent after the check (`answerLast`), and a GraphQL socket has one `connection_init`.
 */
async function answered (settled: Promise<void>): Promise<void> {
  await settled
  await new Promise(resolve => setImmediate(resolve))
}

/** A socket closed with the app; one whose client left meanwhile needs nothing more. */
function closeWithApp (socket: WebSocket): void {
  if (socket.readyState === socket.CLOSED) return
  socket.close()
  socket.resume() // one paused with frames waiting reads its client's answer
  cutAfterGrace(socket)
}

/** An `Upgrade: websocket` request (the header names the protocols asked for, comma-separated, in any case). */
const asksForWebsocket = (headers: IncomingHttpHeaders): boolean => /(?:^|,)\s*websocket\s*(?:,|$)/i.test(headers.upgrade ?? '')

/**
 * @fastify/websocket's `injectWS` writes `sec-websocket-version` as the number 13; ws from 8.23.1 compares it with
 * '13', as Node's parser gives every header, and answers 400. The header as a socket would have sent it.
 */
function versionAsSent (headers: IncomingHttpHeaders): void {
  const version: unknown = headers['sec-websocket-version']
  if (typeof version === 'number') headers['sec-websocket-version'] = String(version)
}
