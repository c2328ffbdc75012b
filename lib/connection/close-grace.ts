// A client that does not answer the server's close: ws waits 30 s for it, and meanwhile the socket keeps its places
// under the connection limits and its GraphQL operations run on. Where the server closes because the client is silent,
// does not read, or never got past its handshake (its auth window ran out, its handshake failed, the heartbeat went
// unanswered, its unsent bytes or its queued frames passed their cap, a frame ws refused, the app closing), the socket
// is cut after a grace instead. Other closes (the app's own, a revocation's) keep ws's 30 s: their client may still be
// reading what came before the close, on a slow link.
import type { WebSocket } from 'ws'

/** How long a client closed for its silence has to answer the close. */
export const closeGraceMs = 1000

/** Cuts `socket`, which the server has just closed, if its client has not answered within the grace. */
export function cutAfterGrace (socket: WebSocket): void {
  const timer = setTimeout(() => socket.terminate(), closeGraceMs).unref()
  // Closed in time, the socket is let go at once, not held by its timer for the rest of the grace.
  socket.once('close', () => clearTimeout(timer))
}
