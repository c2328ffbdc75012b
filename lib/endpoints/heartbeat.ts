// The heartbeat: every period, a `{"type":"ping"}` to every socket past its handshake; a socket that sent nothing
// during the period after its ping is closed.
import type { Connection } from '../connection/connection.js'
import type { Registry } from '../connection/registry.js'
import type { EndpointName } from '../../types/index.js'

const ping = JSON.stringify({ type: 'ping' })

/**
 * A beat pings its sockets a slice at a time, spread over up to a second (a quarter of the period when that is
 * shorter). In one go, ten thousand sends would hold the event loop for a third of a second, and their ten thousand
 * pongs, arriving together, for as long again; spread out, expiry timers and other sockets hardly notice a beat.
 * Each socket keeps its place in the order, so its pings stay one period apart.
 */
const beatSlice = 100
const beatSpreadMs = 1000

function visit (connection: Connection): void {
  if (connection.guard.phase === 'handshake') return
  if (connection.pinged && !connection.active) {
    connection.close()
    return
  }
  connection.pinged = true
  connection.active = false
  connection.sendFrame(ping)
}

function * connectionsOf (registry: Registry, endpoints: EndpointName[]): Generator<Connection> {
  for (const endpoint of endpoints) yield * registry.matching({ endpoint })
}

export function startHeartbeat (registry: Registry, endpoints: EndpointName[], periodMs: number, slice = beatSlice): () => void {
  let next: NodeJS.Timeout | undefined
  const timer = setInterval(() => {
    const pauseMs = Math.min(beatSpreadMs, periodMs / 4) / Math.ceil([...connectionsOf(registry, endpoints)].length / slice)
    // A live walk over the registry, not a list made at the start: a socket that closes during the beat is skipped,
    // not kept alive until its turn comes.
    const walk = connectionsOf(registry, endpoints)
    const step = () => {
      for (let i = 0; i < slice; i++) {
        const { done, value } = walk.next()
        if (done) {
          next = undefined
          return
        }
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
