// The JSON endpoint (`/websocket`, PROTOCOL.md section 4): turns frames into guard calls and guard decisions into
// frames and close codes.
import type { FastifyRequest } from 'fastify'
import type { RawData, WebSocket } from 'ws'
import type { AuthFailure, AuthResult } from '../auth/authenticator.js'
import { failureClose, failureFrame, RealtimeError, refusal, type Failure, type SocketStage } from '../errors.js'
import { Connection } from '../connection/connection.js'
import { isThenable } from '../thenable.js'
import { unknownAddress } from '../client-network.js'
import type { ExpiryCode, GuardEvents, GuardPolicy } from '../connection/guard.js'
import { Inbox } from '../connection/inbox.js'
import { cutAfterGrace } from '../connection/close-grace.js'
import { takeUpgradeCredential } from './upgrade.js'
import { refreshTokenLength } from '../auth/refresh-tokens.js'
import { authOkFrame, errorFrame, withUid, type Uid } from './frames.js'
import { parseFrame, readCredential, readEnvelope, unparsable } from './messages.js'
import { handlerTable, validateMessage, type HandlerEntry } from './handlers.js'
import { heldCost } from './held-messages.js'
import { HandlerScope } from './handler-scope.js'
import type { AdapterOptions } from './adapter.js'
import type { SocketOwner } from './socket-server.js'
import type { MessageHandler, RealtimeMessage, ValidatedMessageHandler } from '../../types/index.js'

export interface JsonEndpointOptions extends AdapterOptions {
  /** Handlers of the message types the endpoint does not own itself, each a function or a schema and a function. */
  handlers: Readonly<Record<string, MessageHandler | ValidatedMessageHandler>>
  /** Told when a socket is gone (the logs endpoint forgets its subscription). */
  onClose?: (connection: Connection) => void
}

/**
 * App handlers one socket may have running at once. At the limit its next frame waits, the socket paused (the inbox's
 * bound on what waits applies), until one ends: a client cannot start handlers, each holding its message, faster than
 * they finish. Frames keep their order, so a ping or an auth message behind the waiting ones waits too: a socket
 * whose handlers hold every slot for a whole heartbeat period is closed as silent. The messages they hold count too
 * (held-messages.ts): past what `handlerLimit` frames of the max payload weigh, the socket stops reading (`running`).
 */
export const handlerLimit = 100

/** A socket's app handlers still running, what their messages count, and the frame waiting for one of them to end. */
interface Running {
  count: number
  cost: number
  freed: (() => void) | null
  /** The socket stopped reading for what their messages count (`running`). */
  paused: boolean
}

/** What stands for the refresh token an ok carries, when the check asks whether the client can still take it. */
const refreshTokenStandIn = 'x'.repeat(refreshTokenLength)
const cannotParse: Failure = { code: 'INVALID_PAYLOAD', problem: 'Unable to parse the incoming message.' }

/** A failure as a socket hears it: its frame, and the close that follows it, if any. */
interface Notice {
  frame: string
  closes: number | undefined
}

function notice (failure: Failure, type: string, uid: Uid, stage: SocketStage): Notice {
  return { frame: JSON.stringify(failureFrame(failure, type, uid, stage)), closes: failureClose(failure, stage) }
}

/**
 * The endpoint's options with its handlers checked, once, at registration, and the notice of an ended credential,
 * the same for every socket of the endpoint: a second's expiries are told one socket after the other.
 */
type SocketOptions = Omit<JsonEndpointOptions, 'handlers'> & {
  handlers: Map<string, HandlerEntry>
  expiryNotices: Readonly<Record<ExpiryCode, Notice>>
}

/**
 * One socket on the JSON endpoint. It is its own inbox and takes its socket's and its guard's events itself, in
 * methods: closures would be kept by every open socket. Its helpers are `private`, not `#`: #methods give each
 * instance a brand, a field of its own.
 */
class JsonSocket extends Inbox implements GuardEvents, SocketOwner {
  readonly connection: Connection
  readonly #options: SocketOptions
  /** Made when its first async handler starts: most sockets never run one, and every idle socket would keep it. */
  #running: Running | null = null
  /** What its handlers run as, made as the first is called under the socket's accountability, ended with it. */
  #scope: HandlerScope | null = null

  constructor (socket: WebSocket, request: FastifyRequest, options: SocketOptions) {
    super()
    this.#options = options
    this.connection = new Connection(options.endpoint.name, socket, request, options.outbound, options.policy, this,
      takeUpgradeCredential(request))
  }

  get request (): FastifyRequest {
    return this.connection.request
  }

  protected get inboxSocket (): WebSocket {
    return this.connection.socket
  }

  protected get maxBacklogBytes (): number {
    return this.#options.maxPayload
  }

  // Resumed by its handlers as they end (`running`): an auth message's check ending between them must not, or a client
  // interleaving auth messages would have every frame it sends read, however much its held messages weigh.
  protected get readingHeld (): boolean {
    return this.#running !== null && this.#running.paused
  }

  closed (code: number): void {
    const { connection } = this
    this.endScope()
    connection.guard.close()
    this.#options.registry.delete(connection, code)
    this.#options.onClose?.(connection)
  }

  /** The server began closing the socket: its handlers' accountability ends now, not when the client answers. */
  closing (): void {
    this.endScope()
  }

  onExpire (code: ExpiryCode): void {
    // Before the client hears: a handler stopping at the abort sends nothing after the notice.
    this.endScope()
    this.deliver(this.#options.expiryNotices[code])
  }

  onAuthTimeout (phase: 'handshake' | 'reauth'): void {
    this.tell({ code: 'AUTH_TIMEOUT' }, 'auth', undefined, phase === 'handshake')
  }

  /**
   * An auth message that has to wait (behind a check, or the handlers at their limit) was sent in time all the same: the
   * auth window waits for it until it has run (`ran`). The app's close does not: nothing has acted for it yet, and it
   * goes with the socket. Only a frame that names the type is read twice.
   */
  protected waits (data: RawData): boolean {
    if (!(data as Buffer).includes('"auth"')) return false
    const parsed = parseFrame(data)
    if (parsed === unparsable || (parsed as { type?: unknown } | null)?.type !== 'auth') return false
    this.connection.guard.waiting()
    return true
  }

  protected ran (): void {
    this.connection.guard.waited()
  }

  /** Called by the inbox, one frame after the other. */
  receiveFrame (data: RawData, isBinary: boolean): void | Promise<void> {
    const { connection } = this
    connection.unanswered = false
    // Frames still buffered behind a close are not the application's business.
    if (connection.socket.readyState !== connection.socket.OPEN) return
    const parsed = parseFrame(data)
    if (connection.guard.phase === 'handshake') return this.handshake(parsed)

    if (parsed === unparsable) {
      this.tell(cannotParse, 'server', undefined)
      return
    }
    const envelope = readEnvelope(parsed)
    if (!envelope.ok) {
      this.tell({ code: 'INVALID_PAYLOAD', problem: envelope.problem }, envelope.type, envelope.uid)
      return
    }
    const { message, uid } = envelope
    switch (message.type) {
      case 'auth': return this.auth(message, uid, false)
      case 'ping':
        connection.send(withUid({ type: 'pong' }, uid))
        return
      case 'pong': return // an answer to the heartbeat: being active was all it had to say
      default: return this.application(message as RealtimeMessage, uid, data as Buffer)
    }
  }

  /** The first frame of a handshake-mode socket: a valid auth message, or the end. */
  private handshake (parsed: unknown): void | Promise<void> {
    const envelope = readEnvelope(parsed === unparsable ? null : parsed)
    if (!envelope.ok || envelope.message.type !== 'auth') {
      this.handshakeFailed(envelope.uid, { ok: false, code: 'AUTH_FAILED', reason: 'the first message was not an auth message' })
      return
    }
    return this.auth(envelope.message, envelope.uid, true)
  }

  private auth (message: Record<string, unknown>, uid: Uid, handshake: boolean): void | Promise<void> {
    const read = readCredential(message)
    if ('problem' in read) {
      if (handshake) this.handshakeFailed(uid, { ok: false, code: 'AUTH_FAILED', reason: 'malformed auth message' })
      else this.tell({ code: 'INVALID_PAYLOAD', problem: read.problem }, 'auth', uid)
      return
    }
    // The client's address counts email/password attempts; the other forms never need it.
    const { connection } = this
    const { guard } = connection
    const ip = 'email' in read.credential ? connection.ip ?? unknownAddress : null
    // A client its ok cannot reach (its unsent frames at the cap) is gone for the check: a refresh token rotated, or a
    // session made, for it would be lost with the frame, and its retry with the token it holds would be reuse.
    let answer: string | undefined
    const waiting = () => connection.takes(answer ??= JSON.stringify(authOkFrame(uid, refreshTokenStandIn)))
    const result = this.#options.authenticator.authenticate(read.credential,
      { request: connection.request, source: 'auth', endpoint: connection.endpoint, ip, waiting })
    if (result instanceof Promise) {
      // The client may be gone by the time the check answers, and its address with the socket: read it now.
      connection.pin()
      // It answered in time: an auth window ending while the server checks would refuse a credential the check may
      // accept (and a refresh token it rotates, which the client would never hear of).
      guard.checking()
      return result.then(settled => { this.authSettled(settled, uid, handshake) }, (err: unknown) => {
        // A check that failed unforeseen (the app's identity no token can carry) is told as one that could not run.
        connection.request.log.error({ err }, 'an auth check failed')
        this.authSettled({ ok: false, code: 'SERVICE_UNAVAILABLE', reason: 'the auth check failed' }, uid, handshake)
      }).finally(() => guard.checked())
    }
    this.authSettled(result, uid, handshake)
  }

  private authSettled (result: AuthResult, uid: Uid, handshake: boolean): void {
    // The socket may have closed meanwhile: the closed guard ignores the result, and nothing is sent.
    if (result.ok) {
      // The client hears first: what an 'auth' listener sends it comes after the ok.
      this.connection.send(authOkFrame(uid, result.issued?.refresh_token))
      this.connection.guard.authenticate(result)
      this.accountabilityChanged()
      return
    }
    if (handshake) {
      this.handshakeFailed(uid, result)
      return
    }
    this.connection.guard.refuse(result)
    this.accountabilityChanged()
    this.tell(refusal(result, 'AUTH_FAILED'), 'auth', uid)
  }

  /**
   * An auth message was answered: a refresh of the same session keeps the handlers' accountability; another user,
   * role or session (a failure dropping the socket to public too) ends it.
   */
  private accountabilityChanged (): void {
    if (this.#scope !== null && !this.#scope.holds(this.connection.accountability)) this.endScope()
  }

  private endScope (): void {
    this.#scope?.end()
    this.#scope = null
  }

  /** The handshake's one message failed: the table says how for each cause, and the socket ends. */
  private handshakeFailed (uid: Uid, failure: AuthFailure): void {
    this.connection.guard.refuse(failure)
    this.tell(refusal(failure, 'AUTH_FAILED'), 'auth', uid, true)
  }

  /**
   * Tells the client of a failure, in answer to a message of `type`, and closes where the table says so. A client whose
   * window ran out, or whose handshake failed, is cut if it does not answer the close: it has nothing to read but that.
   */
  private tell (failure: Failure, type: string, uid: Uid, handshake = false): void {
    this.deliver(notice(failure, type, uid, handshake ? 'handshake' : pastHandshake(this.#options.policy)), handshake || failure.code === 'AUTH_TIMEOUT')
  }

  private deliver ({ frame, closes }: Notice, cut = false): void {
    this.connection.sendFrame(frame)
    if (closes === undefined) return
    this.connection.close(closes)
    if (cut) cutAfterGrace(this.connection.socket)
  }

  private application (message: RealtimeMessage, uid: Uid, frame: Buffer): void | Promise<void> {
    const { handlers } = this.#options
    const { type } = message
    // A Map: a "__proto__" or "constructor" type cannot reach Object.prototype.
    const entry = handlers.get(type)
    if (!entry) {
      this.tell({ code: 'INVALID_PAYLOAD', problem: `Unknown message type "${type}".` }, type, uid)
      return
    }
    // The handler's accountability: the socket's now (the handler may read it after the socket is gone, its address
    // with it).
    this.connection.pin()
    const scope = this.#scope ??= new HandlerScope(this.connection)
    const answer = (err: unknown) => {
      if (scope.stopped(err)) return
      if (err instanceof RealtimeError) {
        this.connection.send(errorFrame(type, err.code, err.message, uid))
        return
      }
      entry.failures.log(this.connection.request.log, { err, type })
      this.tell({ code: 'INTERNAL_SERVER_ERROR' }, type, uid)
    }
    try {
      if (entry.schema) {
        const validated = validateMessage(this.connection.request, entry.schema, message)
        if ('problem' in validated) {
          this.tell({ code: 'INVALID_PAYLOAD', problem: validated.problem }, type, uid)
          return
        }
        message = validated.message
      }
      const pending: unknown = entry.handler(message, this.connection, scope)
      // Application handlers run concurrently: below the limit, a slow one holds back no ping or re-authentication.
      // Any thenable counts (a library's promise, another realm's): its rejection is answered, its time counted.
      if (isThenable(pending)) return this.running(Promise.resolve(pending).then(undefined, answer), heldCost(frame))
    } catch (err) {
      answer(err)
    }
  }

  /**
   * An app handler still running, holding a message that counts `cost`. At the limit in number, the socket's next frame
   * waits until one of them ends. Past what their messages may count, the socket stops reading until they are back
   * under it, but the frames ws has read already still run: held in the inbox instead, a burst of large messages (60 of
   * 22 KB) filled it past the max payload and closed 1008 `Too many frames queued.`, a client the count alone let be.
   */
  private running (handler: Promise<void>, cost: number): void | Promise<void> {
    const running = this.#running ??= { count: 0, cost: 0, freed: null, paused: false }
    const bound = handlerLimit * this.#options.maxPayload
    const { socket } = this.connection
    running.count++
    running.cost += cost
    const ended = () => {
      running.cost -= cost
      // None left: an idle socket keeps no record of them.
      if (--running.count === 0) this.#running = null
      const { freed } = running
      running.freed = null
      freed?.()
      if (running.paused && running.cost < bound) {
        running.paused = false
        socket.resume()
      }
    }
    handler.then(ended, ended)
    // At each frame past the bound: the frames ws had read already run all the same, and it stays paused.
    if (running.cost >= bound) {
      running.paused = true
      socket.pause()
    }
    if (running.count < handlerLimit) return
    return new Promise(resolve => { running.freed = resolve })
  }
}

/** Where a socket past its handshake hears of a failure: in public mode none ends it. */
const pastHandshake = (policy: GuardPolicy): SocketStage => policy.authMode === 'public' ? 'public' : 'open'

/** The websocket handler of the JSON endpoint. */
export function jsonEndpoint (endpointOptions: JsonEndpointOptions) {
  const stage = pastHandshake(endpointOptions.policy)
  const options: SocketOptions = {
    ...endpointOptions,
    handlers: handlerTable(endpointOptions.handlers, `${endpointOptions.endpoint.name}.handlers`),
    expiryNotices: {
      TOKEN_EXPIRED: notice({ code: 'TOKEN_EXPIRED' }, 'auth', undefined, stage),
      AUTH_REVOKED: notice({ code: 'AUTH_REVOKED' }, 'auth', undefined, stage)
    }
  }
  return function open (socket: WebSocket, request: FastifyRequest): JsonSocket {
    const owner = new JsonSocket(socket, request, options)
    options.registry.add(owner.connection)
    return owner
  }
}
