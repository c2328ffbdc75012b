// The heartbeat: every period, a `{"type":"ping"}` to every socket past its handshake; a socket that sent nothing
// during the period after its ping is closed.
import type { Registry } from '../connection/registry.js'
import type { EndpointName } from '../../types/index.js'

const ping = JSON.stringify({ type: 'ping' })

export function startHeartbeat (registry: Registry, endpoints: EndpointName[], periodMs: number): () => void {
  const timer = setInterval(() => {
    for (const endpoint of endpoints) {
      for (const connection of registry.matching({ endpoint })) {
        if (connection.guard.phase === 'handshake') continue
        if (connection.pinged && !connection.active) {
          connection.close()
          continue
        }
        connection.pinged = true
        connection.active = false
        connection.socket.send(ping)
      }
    }
  }, periodMs)
  timer.unref()
  return () => clearInterval(timer)
}
