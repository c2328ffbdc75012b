// An upgrade answered over HTTP (a refusal, a 404 from whichever scope answers it, the app's root included) is done with
// once the answer is sent: the client would otherwise hold the connection open, and `close()` would wait for it.
// @fastify/websocket ends the ones its own hooks see; the plugin watches every upgrade it forwards.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'

// The response the socket is writing (Node's ServerResponse.assignSocket sets it, and throws ERR_HTTP_SOCKET_ASSIGNED
// when it is set already): a listener's routing the upgrade, or that of a request pipelined before it, still unanswered.
// A keep-alive connection's is null once a request on it was answered: a fresh connection has none.
type Assigned = Duplex & { _httpMessage?: ServerResponse | null }

/** The response the socket is writing; none on a fresh connection, nor once the requests before the upgrade are answered. */
export const responseOf = (socket: Duplex): ServerResponse | undefined => (socket as Assigned)._httpMessage ?? undefined

// One function for every upgrade, no closure: the response stays with its socket.
function endAnswered (this: ServerResponse): void {
  this.socket?.destroy()
}

// The upgrade being routed in this turn, and whether it went through as it was: most do, in the same turn.
let routing: Duplex | null = null
let upgradedWhileRouting = false

/** Routes an upgrade (`route`), then ends its connection once it is answered over HTTP, unless it went through. */
export function routeWatched (socket: Duplex, route: () => void): void {
  routing = socket
  upgradedWhileRouting = false
  try {
    route()
  } finally {
    routing = null
  }
  if (upgradedWhileRouting) return
  const response = responseOf(socket)
  // No listener took it: nothing would ever answer it or end its connection.
  if (!response || response.writableFinished) socket.destroy()
  else {
    // Its answer says so: a client pooling connections would send its next request on it (a refusal on the plugin's
    // routes, which the app's own @fastify/websocket may route too, says so from their onSend hook: scope.ts).
    if (!response.headersSent) response.shouldKeepAlive = false
    response.on('finish', endAnswered)
  }
}

/** The upgrade went through: its response is never sent, and keeps no listener for the socket's life. */
export function upgraded (socket: Duplex | undefined): void {
  if (socket === routing) upgradedWhileRouting = true
  else if (socket) responseOf(socket)?.off('finish', endAnswered)
}

/**
 * An 'upgrade' listener for an app whose own @fastify/websocket routes every upgrade: one pipelined behind a request
 * still unanswered fails there (ERR_HTTP_SOCKET_ASSIGNED) and is left open, its connection held for good. Once that
 * request is answered, a connection nothing reads (nothing upgraded it) is closed.
 */
export function closeIfLeft (_request: IncomingMessage, socket: Duplex): void {
  // A turn after: one a @fastify/websocket that waits for the answer upgrades then is read (ws listens for its data).
  responseOf(socket)?.once('finish', () => setImmediate(() => { if (socket.listenerCount('data') === 0) socket.destroy() }))
}
