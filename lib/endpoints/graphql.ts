// The GraphQL endpoint (`/graphql`, PROTOCOL.md section 5): graphql-ws's protocol core (`makeServer`) over the
// @fastify/websocket socket. graphql-ws speaks graphql-transport-ws, the only messages ever sent here (the heartbeat
// sends WebSocket ping frames); this adapter decides who is let in at `connection_init`, keeps the socket's guard,
// and ends the socket when its credential ends.
import type { FastifyRequest } from 'fastify'
import type { RawData, WebSocket } from 'ws'
import { isSchema } from 'graphql'
import {
  CloseCode as GraphqlCloseCode, GRAPHQL_TRANSPORT_WS_PROTOCOL, makeServer, type Server, type ServerOptions,
  type WebSocket as GraphqlWsSocket
} from 'graphql-ws'
import type { Authenticator, AuthResult } from '../auth/authenticator.js'
import { graphqlClose, InvalidConfigError, refusal } from '../errors.js'
import { Connection } from '../connection/connection.js'
import type { Outbound } from '../connection/outbound.js'
import { cutAfterGrace } from '../connection/close-grace.js'
import { closeReasonBytes } from '../connection/close-frame.js'
import type { ExpiryCode, GuardEvents, GuardPolicy } from '../connection/guard.js'
import type { Registry } from '../connection/registry.js'
import { takeUpgradeCredential } from './upgrade.js'
import type { SocketOwner } from './socket-server.js'
import { notAcceptable } from './subprotocol.js'
import { operationPreparer, type OperationOptions, type OperationsInFlight } from './graphql-operation.js'
import { endingAtOnce } from './graphql-subscription-end.js'
import { operationRunners } from './graphql-unexpected.js'
import { OperationIds, type FrameSink } from './graphql-operation-ids.js'
import type { AdapterOptions } from './adapter.js'
import type { EndpointName } from '../../types/index.js'

export interface GraphqlAdapterOptions extends AdapterOptions {
  operations: OperationOptions
}

/** A socket on the GraphQL endpoint, for the registry and the application API. */
class GraphqlConnection extends Connection {
  // The application API's JSON messages would break the protocol: graphql-ws clients close on them (4004).
  override send (): void {
    throw new TypeError('A GraphQL socket carries only graphql-transport-ws frames: send JSON messages on /websocket')
  }

  // A WebSocket ping frame, not a graphql-transport-ws `ping` message: the client's WebSocket answers it by itself
  // (browsers included), whatever its GraphQL library does with messages, before connection_init as after. A
  // two-byte control frame, not data: it bypasses the outbound cap.
  override ping (): void {
    this.socket.ping()
  }
}

interface Extra {
  connection: GraphqlConnection
  operations: OperationsInFlight
}

type ConnectionParams = Record<string, unknown> | undefined

/**
 * `connection_init`: an `access_token` in its payload authenticates the socket, in every mode; without one, only a
 * socket past its handshake (public mode, or authenticated at the upgrade) is let in. A refusal closes the socket as
 * the failure table says (4403 `Forbidden`, 1013 for a cold process); graphql-ws's own close then finds it closing.
 */
function admit (connection: GraphqlConnection, params: ConnectionParams, authenticator: Authenticator): boolean | Promise<boolean> {
  const { guard } = connection
  const token = params?.access_token
  const missing = token === undefined || token === null
  if (missing && guard.phase !== 'handshake') return true
  const settle = (result: AuthResult): boolean => {
    if (result.ok) {
      guard.authenticate(result)
      return true
    }
    guard.refuse(result)
    // Refused in its handshake, the client has nothing to read but the close: cut if it does not answer.
    connection.closeAndCut(...graphqlClose(refusal(result, 'AUTH_FAILED')))
    return false
  }
  if (typeof token !== 'string') {
    return settle({ ok: false, code: 'AUTH_FAILED', reason: missing ? 'connection_init without access_token' : 'access_token is not a string' })
  }
  const result = authenticator.verifyAccessToken(token, {
    request: connection.request, source: 'connection_init', endpoint: connection.endpoint, ip: null
  })
  if (!(result instanceof Promise)) return settle(result)
  // It answered in time: the auth window waits for the check, whose every answer ends it (authenticated, or closed).
  guard.checking()
  return result.then((settled) => {
    const admitted = settle(settled)
    guard.checked()
    return admitted
  })
}

/** What graphql-ws reads as a message and refuses from a client: it throws for these, as for a server's own error. */
const serverMessageTypes = new Set<unknown>(['next', 'error', 'connection_ack'])

/** A frame graphql-ws threw on is a message it read: one it cannot read it closes 4400 without throwing. */
const typeOf = (text: string): unknown => (JSON.parse(text) as { type?: unknown }).type

/** A close reason as ws takes it, at most 123 bytes: graphql-ws puts the client's operation id in some. */
function closeReason (reason: string): string {
  if (Buffer.byteLength(reason) <= closeReasonBytes) return reason
  let clipped = reason.slice(0, closeReasonBytes)
  while (Buffer.byteLength(clipped) > closeReasonBytes) clipped = clipped.slice(0, -1)
  return clipped
}

/** The websocket handler of the GraphQL endpoint. */
export function graphqlEndpoint (options: GraphqlAdapterOptions) {
  const { endpoint, authenticator, registry } = options
  const { schema } = options.operations
  if (typeof schema !== 'function' && !isSchema(schema)) {
    throw new InvalidConfigError('graphql.schema must be a GraphQLSchema or a function of the accountability returning one')
  }
  const prepare = operationPreparer(options.operations)

  const serverOptions: ServerOptions<ConnectionParams, Extra> = {
    onConnect: (ctx) => {
      const params = ctx.connectionParams
      // graphql-ws would keep the payload, as parsed, for the socket's life: its access_token is read once, here.
      ;(ctx as { connectionParams?: unknown }).connectionParams = undefined
      return admit(ctx.extra.connection, params, authenticator)
    },
    onSubscribe: (ctx, id, payload) => prepare(ctx.extra.connection, id, payload, ctx.extra.operations),
    // graphql-js's, with what it throws or puts among a result's errors that is no GraphQLError answering its operation.
    ...operationRunners(options.log),
    // A subscription ends when the client completes it or the socket closes, whatever its resolver awaits. Its context's
    // `signal` aborts then, to stop its source; one that does not stop keeps a slot among the socket's until it does,
    // or completing in a loop would pile sources up.
    onOperation: (ctx, id, _payload, _args, result) => {
      if (!(Symbol.asyncIterator in result)) return undefined
      const operations = ctx.extra.operations
      const controller = operations.get(id)!
      return endingAtOnce(result, {
        onEnding: (sourceEnded) => {
          const slot = {}
          operations.set(slot, controller)
          controller.abort()
          sourceEnded.finally(() => operations.delete(slot)).catch(() => {})
        },
        onReturnFailed: (err) => ctx.extra.connection.request.log.error({ err }, 'a graphql subscription failed to end')
      })
    },
    // Every operation onSubscribe let through ends here, once it has run out (done, failed, or completed by the
    // client): its id and its slot are free, and its signal aborts.
    onComplete: (ctx, id) => {
      ctx.extra.operations.get(id)?.abort()
      ctx.extra.operations.delete(id)
    }
  }

  const handling: GraphqlHandling = {
    // One deadline for the handshake: the guard's auth window (closing 4408) runs for every socket that must
    // authenticate and dies with the guard; graphql-ws's own init timer would be a second clock for the same wait.
    handshaking: makeServer({ ...serverOptions, connectionInitWaitTimeout: 0 }),
    // A socket past its handshake as it opens (public mode, a credential on the upgrade) has no auth window, but the
    // protocol still wants its connection_init in time (Directus: graphql-ws's 3 s): the endpoint's auth timeout here.
    initWaiting: makeServer({ ...serverOptions, connectionInitWaitTimeout: options.policy.authWindows.lengthMs }),
    registry,
    outbound: options.outbound,
    // graphql-transport-ws cannot re-authenticate in band: a socket whose credential ends is closed (onExpire).
    policy: { ...options.policy, reauthenticates: false },
    name: endpoint.name,
    maxPayload: options.maxPayload
  }
  return function open (socket: WebSocket, request: FastifyRequest): SocketOwner {
    // graphql-ws would close it from inside `opened`, before the socket could be told how to end: it gets no guard.
    if (socket.protocol !== GRAPHQL_TRANSPORT_WS_PROTOCOL) return notAcceptable(socket, request)
    return new GraphqlSocket(socket, request, handling)
  }
}

/** What every socket of the endpoint shares. */
interface GraphqlHandling {
  /** graphql-ws for the sockets that open in their handshake, and for those past it, which it gives the init timeout. */
  handshaking: Server<Extra>
  initWaiting: Server<Extra>
  registry: Registry
  outbound: Outbound
  policy: GuardPolicy
  name: EndpointName
  maxPayload: number
}

/**
 * One socket of the endpoint, in methods rather than closures (every open socket would keep those): its socket's
 * events, the guard's, and the socket graphql-ws's protocol core talks to (`send`, `close`, `onMessage`). Its helper
 * is `private`, not `#`: #methods give each instance a brand, a field of its own.
 */
class GraphqlSocket implements GuardEvents, GraphqlWsSocket, Extra, SocketOwner, FrameSink {
  readonly connection: GraphqlConnection
  readonly operations: OperationsInFlight = new Map()
  readonly #ids = new OperationIds(this)
  readonly #socket: WebSocket
  readonly #handling: GraphqlHandling
  /** graphql-ws's end of the socket: every running operation's end. Null once called. */
  #closed: ((code?: number, reason?: string) => Promise<void>) | null
  #handle: ((data: string) => Promise<void>) | null = null

  constructor (socket: WebSocket, request: FastifyRequest, handling: GraphqlHandling) {
    this.#socket = socket
    this.#handling = handling
    this.connection = new GraphqlConnection(handling.name, socket, request, handling.outbound, handling.policy, this,
      takeUpgradeCredential(request))
    // Opened first: registered, a socket whose credential was revoked meanwhile is closed at once, and graphql-ws's end
    // runs as it closes (`closed`: it has no operation yet, and its owner is told of closes only once it is open).
    const server = this.connection.guard.phase === 'handshake' ? handling.handshaking : handling.initWaiting
    this.#closed = server.opened(this, this)
    handling.registry.add(this.connection)
  }

  get request (): FastifyRequest {
    return this.connection.request
  }

  /** graphql-transport-ws: a socket without it is never opened here (`notAcceptable`). */
  get protocol (): string {
    return this.#socket.protocol
  }

  // A subscription may still emit while its socket closes: the outbound drops it.
  send (data: string): void {
    this.connection.sendFrame(data)
  }

  /**
   * graphql-ws's closes, each for a client that broke the protocol (4400, 4401, 4409, 4429) or was refused: its
   * operations end at once (`closing`), and it is cut if it does not answer.
   */
  close (code: number, reason: string): void {
    // A `subscribe` before `connection_ack`: graphql-ws says 4401, Directus 4403 `Forbidden`, as for any refusal here.
    if (code === GraphqlCloseCode.Unauthorized) [code, reason] = [GraphqlCloseCode.Forbidden, 'Forbidden']
    this.closeWith(code, reason)
    cutAfterGrace(this.#socket)
  }

  /** graphql-ws hands its frame handler over as the socket opens (in `opened`). */
  onMessage (handle: (data: string) => Promise<void>): void {
    this.#handle = handle
  }

  // The socket ends, and its subscriptions with it; its guard closes as it settles. The graphql-ws client retries on
  // 4403, so one whose connectionParams is a function comes back with a new token.
  onExpire (code: ExpiryCode): void {
    this.closeWith(...graphqlClose({ code }))
  }

  onAuthTimeout (): void {
    this.close(...graphqlClose({ code: 'AUTH_TIMEOUT' }))
  }

  /** ws takes at most 123 bytes of reason; the close ends the operations (`closing`). */
  private closeWith (code: number, reason: string): void {
    this.#socket.close(code, closeReason(reason))
  }

  /** The heartbeat's answer: a pong frame, or any message (`receive`). */
  answered (): void {
    this.connection.unanswered = false
  }

  receive (data: RawData): void {
    this.answered()
    // Frames behind a close (the credential ended, the handshake ran out) would run as nobody: they are dropped.
    if (!this.reading) return
    this.#ids.receive((data as Buffer).toString())
  }

  get maxWaitingBytes (): number {
    return this.#handling.maxPayload
  }

  get reading (): boolean {
    return this.#socket.readyState === this.#socket.OPEN
  }

  /** A frame to graphql-ws, once its operation's id is free there (graphql-operation-ids.ts). */
  pass (text: string): Promise<void> {
    return this.#handle!(text).catch((err: unknown) => this.failed(err, text))
  }

  /**
   * graphql-ws threw on a frame. A message only a server sends is the client's fault, closed as graphql-ws closes
   * what it cannot read; otherwise a schema or context function threw: graphql-ws's answer to an error of the server's.
   */
  private failed (err: unknown, text: string): void {
    if (serverMessageTypes.has(typeOf(text))) {
      this.close(GraphqlCloseCode.BadRequest, 'Invalid message received')
      return
    }
    this.request.log.error({ err }, 'graphql operation failed')
    this.closeWith(GraphqlCloseCode.InternalServerError, 'Internal server error')
  }

  closed (code: number): void {
    this.connection.guard.close()
    this.#handling.registry.delete(this.connection, code)
    this.closing() // done already, unless it closed before it was open or was lost without a close (TCP dropped)
  }

  /**
   * The server began closing the socket, whoever did (graphql-ws, the credential's end, the app, the heartbeat, the
   * outbound cap, ws on a frame it refused): every running operation ends now (its iterator's `return`, its signal),
   * once, not when the client answers the close (ws waits 30 s for one that never does): its resolvers would run on, as
   * a credential that may just have ended. graphql-ws's end takes no code: it passes one only to hooks not set here.
   */
  closing (): void {
    const closed = this.#closed
    if (closed === null) return
    this.#closed = null
    for (const controller of this.operations.values()) controller.abort()
    closed().catch((err: unknown) => this.request.log.error({ err }, 'a graphql subscription failed to end'))
  }
}
