// The plugin's sockets come from a ws server of its own: its frame limit (maxPayload), its choice of subprotocol and
// its answer to a refused frame hold on its routes and nowhere else, whatever the app gave its own @fastify/websocket.
// @fastify/websocket upgrades every route with the one server it decorates its instance with (`websocketServer`,
// the app's own when the app registered it), through that server's `handleUpgrade`: the one place where an upgrade to
// a plugin route can be handed to this server instead. test/plugin/socket-server.test.ts fails if @fastify/websocket stops
// upgrading there.
import type { IncomingMessage } from 'node:http'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { WebSocketServer, type WebSocket } from 'ws'

// A mark on the request itself, naming the server it is for, as subprotocol.ts marks GraphQL upgrades.
const ownUpgrade = Symbol('fastify-realtime.ownUpgrade')
type Claimed = IncomingMessage & { [ownUpgrade]?: WebSocketServer }

/** What takes a plugin route's socket once it is open. */
export type SocketHandler = (socket: WebSocket, request: FastifyRequest) => void

export class SocketServer {
  readonly server: WebSocketServer

  constructor (maxPayload: number) {
    this.server = new WebSocketServer({ noServer: true, maxPayload })
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
  readonly claim = (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    (request.raw as Claimed)[ownUpgrade] = this.server
    done()
  }

  /**
   * A plugin route's socket handler. A frame ws refuses (1009 over maxPayload, 1007 not UTF-8) is a client's fault,
   * and ws closes the socket with its code itself: the error handler of the app's @fastify/websocket (terminating,
   * by default) would tear it down under that close, and the client would get 1006.
   */
  handler (open: SocketHandler): SocketHandler {
    return (socket, request) => {
      socket.removeAllListeners('error') // @fastify/websocket's, added just before it called this handler
      socket.on('error', (err) => {
        request.log.info({ err }, 'websocket frame refused')
        socket.close()
      })
      open(socket, request)
    }
  }

  /** Closes every socket, as @fastify/websocket does its own when the app closes (not waiting for their answers). */
  close (): void {
    for (const socket of this.server.clients) socket.close()
    this.server.close()
  }
}
