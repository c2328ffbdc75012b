// A server listening on a unix socket (nginx's `proxy_pass http://unix:/run/app.sock:`) reads no client address: unless
// trustProxy takes the proxy's X-Forwarded-For, every client is one (`unknown`) to the attempt limits, the password
// queue and `connLimitPerAddress`, and ten wrong passwords from anyone lock every password login out. A trustProxy of
// addresses or hops never applies there (the proxy has no address either). Said once, on the app's logger.
import type { Socket } from 'node:net'
import type { FastifyBaseLogger, onRequestHookHandler } from 'fastify'

export function unaddressedClientsWarning (log: FastifyBaseLogger): onRequestHookHandler {
  // Until the first request over the server's own connections.
  let pending = true
  return function checkClientAddress (request, _reply, done) {
    if (pending) {
      const listening = request.server.server.address()
      if (typeof listening !== 'string') {
        // On TCP, nothing to say; before any listen, the request was injected.
        if (listening !== null) pending = false
      } else if ((request.raw.socket as Socket | undefined)?.remoteAddress === undefined && request.raw.socket != null) {
        // A connection on the socket: inject's has an address, and injectWS's request no socket (where a trustProxy's
        // read of its address throws).
        pending = false
        if (request.ip == null) {
          log.warn(`requests reach the app on a unix socket (${listening}) with no client address: every client is one to the attempt limits and connLimitPerAddress. Set Fastify's trustProxy to (address, hop) => hop === 0 (the proxy appends X-Forwarded-For), or listen on TCP`)
        }
      }
    }
    done()
  }
}
