// The heartbeat (PROTOCOL.md sections 4 and 5): every period, a ping to every socket past its handshake, on every
// endpoint (`{"type":"ping"}` on the JSON ones, a WebSocket ping frame on /graphql); a socket that answered nothing (no
// frame; no pong either on /graphql) during the period after its ping is closed, within two periods of its last sign
// of life. A credential its client sent that is still being checked is one, and so are bytes it sent that wait unread
// while the server holds its socket paused (behind the app's handlers): its pongs are among them.
import type { Connection } from '../connection/connection.js'
import type { Registry } from '../connection/registry.js'

/**
 * A beat pings its sockets a slice at a time, spread over half the period. In one go, ten thousand sends would hold
 * the event loop for a third of a second, and their ten thousand pongs, arriving together, for as long again; spread
 * out, expiry timers and other sockets hardly notice a beat, and processes sharing cores do not beat all at once.
 * Each socket keeps its place in the order, so its pings stay about one period apart, never under half of one.
 */
const beatSlice = 100
const beatSpread = 0.5

/**
 * What the TCP connection of a socket the server holds paused (behind the app's handlers) had read when a beat found
 * it unanswered: only such sockets are in it, so a beat reads nothing more for the others.
 */
const heldReads = new WeakMap<Connection, number>()

/**
 * Whether an unanswered socket the server holds paused is alive still: its frames, its pongs among them, wait unread,
 * so bytes its connection read since the last beat stand for them. The first beat to find it so gives it one period.
 */
function answeredUnread (connection: Connection): boolean {
  const read = connection.socket.isPaused ? connection.bytesRead : undefined
  const before = heldReads.get(connection)
  if (read === undefined) {
    heldReads.delete(connection)
    return false
  }
  heldReads.set(connection, read)
  return read !== before
}

function visit (connection: Connection): void {
  if (connection.guard.phase === 'handshake') return
  // A client whose auth message is being checked has answered: its later frames, its pongs among them, wait for the
  // check to end (the inbox), however many beats a password queue or a slow store makes it take.
  if (connection.unanswered && !connection.guard.beingChecked && !answeredUnread(connection)) {
    connection.closeAndCut() // no status (1005), as Directus; graphql-ws clients retry on it
    return
  }
  connection.unanswered = true
  connection.ping()
}

export function startHeartbeat (registry: Registry, periodMs: number, slice = beatSlice): () => void {
  let next: NodeJS.Timeout | undefined
  const timer = setInterval(() => {
    // A beat visits as many sockets as were open when it started. Unbounded, a walk meeting sockets that open faster
    // than it goes would run into the next beat, whose walk would ping a socket a moment after this one did and close
    // it before its pong could come. For the same reason a beat that finds a walk still going (timers run 1 ms apart at
    // the least, and sends take time) lets it end: cut there, every walk stopped at the same place, its tail never pinged.
    if (next !== undefined) return
    let left = registry.size
    const pauseMs = periodMs * beatSpread / Math.ceil(left / slice)
    // A live walk over the registry, not a list made at the start: a socket that closes during the beat is skipped,
    // not kept alive until its turn comes.
    const walk = registry.matching()
    const step = () => {
      for (let i = 0; i < slice; i++) {
        const { done, value } = walk.next()
        if (done || left === 0) {
          next = undefined
          return
        }
        left--
        visit(value)
      }
      next = setTimeout(step, pauseMs).unref()
    }
    step()
  }, periodMs)
  timer.unref()
  return () => {
    clearInterval(timer)
    clearTimeout(next)
  }
}
