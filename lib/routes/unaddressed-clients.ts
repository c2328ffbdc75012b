// What the plugin counts per client (the attempt limits, the password queue's shares, `connLimitPerAddress`) is
// `request.ip`. Behind a proxy two setups make every client one, silently, and ten wrong passwords from anyone lock
// every password login out: Fastify's trustProxy off (every client is the proxy), and a unix socket (nginx's
// `proxy_pass http://unix:/run/app.sock:`), where no connection has an address and a trustProxy of addresses never
// applies. The first request a proxy forwarded (with X-Forwarded-For) over one of the server's own connections tells;
// said once, on the app's logger.
import { Socket } from 'node:net'
import type { FastifyBaseLogger, onRequestHookHandler } from 'fastify'
import { requestIp } from '../client-network.js'

export function unaddressedClientsWarning (log: FastifyBaseLogger): onRequestHookHandler {
  let checking = true
  return function checkClientAddress (request, _reply, done) {
    // inject's request comes over a socket of its own making, and injectWS's over none (where a trustProxy's read of
    // the address throws): neither tells how the server's clients arrive.
    if (checking && request.headers['x-forwarded-for'] !== undefined && request.raw.socket instanceof Socket) {
      checking = false
      const listening = request.server.server.address()
      // On TCP, Fastify reads X-Forwarded-For only with trustProxy, which defines `request.ips`.
      if (typeof listening !== 'string') {
        if (!('ips' in request)) {
          log.warn('requests reach the app with X-Forwarded-For, and Fastify\'s trustProxy is off: behind a proxy every client is the proxy to the attempt limits and connLimitPerAddress, and its https:// pages\' sockets are refused as another origin without PUBLIC_URL. If a proxy sets it, set trustProxy to the proxy\'s address')
        }
      } else if (requestIp(request) == null) {
        log.warn(`requests reach the app on a unix socket (${listening}) with no client address: every client is one to the attempt limits and connLimitPerAddress. Set Fastify's trustProxy to (address, hop) => hop === 0 (the proxy appends X-Forwarded-For), or listen on TCP`)
      }
    }
    done()
  }
}
