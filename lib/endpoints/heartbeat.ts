// The heartbeat: every period, a `{"type":"ping"}` to every socket past its handshake; a socket that sent nothing
// during the period after its ping is closed.
import type { Connection } from '../connection/connection.js'
import type { Registry } from '../connection/registry.js'
import type { EndpointName } from '../../types/index.js'

const ping = JSON.stringify({ type: 'ping' })

/**
 * How many sockets a beat visits before the event loop turns: a send costs tens of microseconds, and ten thousand
 * sockets in one go would hold the loop (expiry timers, every other socket) for a third of a second.
 */
const beatSlice = 256

function visit (connection: Connection): void {
  // A socket that closed since the beat began is visited all the same: ws drops what is sent on it.
  if (connection.guard.phase === 'handshake') return
  if (connection.pinged && !connection.active) {
    connection.close()
    return
  }
  connection.pinged = true
  connection.active = false
  connection.socket.send(ping)
}

export function startHeartbeat (registry: Registry, endpoints: EndpointName[], periodMs: number, slice = beatSlice): () => void {
  let next: NodeJS.Immediate | undefined
  const timer = setInterval(() => {
    const due: Connection[] = []
    for (const endpoint of endpoints) {
      for (const connection of registry.matching({ endpoint })) due.push(connection)
    }
    const step = (from: number) => {
      const to = Math.min(from + slice, due.length)
      for (let i = from; i < to; i++) visit(due[i])
      next = to < due.length ? setImmediate(step, to) : undefined
    }
    step(0)
  }, periodMs)
  timer.unref()
  return () => {
    clearInterval(timer)
    clearImmediate(next)
  }
}
