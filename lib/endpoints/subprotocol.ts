// Subprotocol negotiation for the GraphQL endpoint. ws picks a socket's subprotocol during the upgrade with one
// `handleProtocols` for the whole server, which the plugin's three endpoints share (socket-server.ts); left unset, it
// takes the first protocol the client offers, so a client offering `graphql-ws, graphql-transport-ws` would get the
// one graphql-ws closes with 4406. GraphQL upgrades are marked on their way through the route's upgrade gate, and for
// those graphql-transport-ws wins whenever it is offered; every other choice stays what it was.
import type { IncomingMessage } from 'node:http'
import type { FastifyRequest } from 'fastify'
import type { WebSocket, WebSocketServer } from 'ws'
import { GRAPHQL_TRANSPORT_WS_PROTOCOL } from 'graphql-ws'
import { CloseCode } from '../errors.js'
import { cutAfterGrace } from '../connection/close-grace.js'
import { takeUpgradeCredential } from './upgrade.js'
import type { SocketOwner } from './socket-server.js'

type HandleProtocols = (protocols: Set<string>, request: IncomingMessage) => string | false

// A mark on the request itself: a WeakSet entry would cost every GraphQL upgrade more than the property does.
const graphqlUpgrade = Symbol('fastify-realtime.graphqlUpgrade')
type Marked = IncomingMessage & { [graphqlUpgrade]?: true }

/** Makes `server`, the plugin's own, pick graphql-transport-ws for the upgrades `markGraphqlUpgrade` marked. */
export function preferGraphqlTransportWs (server: WebSocketServer): void {
  const handleProtocols: HandleProtocols = (protocols, request) => {
    if ((request as Marked)[graphqlUpgrade] && protocols.has(GRAPHQL_TRANSPORT_WS_PROTOCOL)) return GRAPHQL_TRANSPORT_WS_PROTOCOL
    // ws's own default: the first offered. A client offering no graphql-transport-ws still gets a socket, to be
    // closed with 4406 and a reason, rather than a failed handshake it cannot explain.
    return protocols.values().next().value!
  }
  server.options.handleProtocols = handleProtocols
}

/** Called by the GraphQL route's upgrade gate: this request is a GraphQL upgrade. */
export function markGraphqlUpgrade (request: FastifyRequest): void {
  (request.raw as Marked)[graphqlUpgrade] = true
}

const ignored = (): void => {}
// It runs nothing of the app's: no context to keep.
const noConnection = { inContext: <A extends unknown[]>(fn: (...args: A) => void, thisArg: unknown, ...args: A) => { fn.apply(thisArg, args) } }

/**
 * A GraphQL socket whose client did not offer graphql-transport-ws: closed 4406 with graphql-ws's (and Directus's)
 * reason, and cut if its client does not answer. It gets no guard: its upgrade credential is let go unused, no auth
 * window or expiry waits for it, and the app hears of no socket (no `auth`, `expire` or `close`).
 */
export function notAcceptable (socket: WebSocket, request: FastifyRequest): SocketOwner {
  takeUpgradeCredential(request)
  socket.close(CloseCode.SubprotocolNotAcceptable, 'Subprotocol not acceptable')
  cutAfterGrace(socket)
  return { request, connection: noConnection, receive: ignored, closed: ignored }
}
