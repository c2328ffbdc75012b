// What the plugin counts per client (the attempt limits, the password queue's shares, `connLimitPerAddress`) is
// `request.ip`. Behind a proxy two setups make every client one, silently, and ten wrong passwords from anyone lock
// every password login out: Fastify's trustProxy off (every client is the proxy), and a unix socket (nginx's
// `proxy_pass http://unix:/run/app.sock:`), where no connection has an address and a trustProxy of addresses or hop
// counts never applies. The first forwarded request over the server's own connections tells; said once, on the app's
// logger. A request without X-Forwarded-For came from no proxy, and says nothing.
import type { AddressInfo } from 'node:net'
import type { FastifyBaseLogger, FastifyRequest, onRequestHookHandler } from 'fastify'

export function unaddressedClientsWarning (log: FastifyBaseLogger): onRequestHookHandler {
  let checking = true
  // The server's address, once a request comes after it listens (inject's and injectWS's come before).
  let listening: string | AddressInfo | null = null
  const check = (request: FastifyRequest) => {
    if (request.headers['x-forwarded-for'] === undefined) return
    checking = false
    if (typeof listening !== 'string') {
      // Fastify reads X-Forwarded-For only with trustProxy, which defines `request.ips`.
      if (!('ips' in request)) {
        log.warn('requests reach the app with X-Forwarded-For, and Fastify\'s trustProxy is off: behind a proxy every client is the proxy to the attempt limits and connLimitPerAddress, and its https:// pages\' sockets are refused as another origin without PUBLIC_URL. If a proxy sets it, set trustProxy to the proxy\'s address')
      }
    } else if (request.ip == null) {
      log.warn(`requests reach the app on a unix socket (${listening}) with no client address: every client is one to the attempt limits and connLimitPerAddress. Set Fastify's trustProxy to (address, hop) => hop === 0 (the proxy appends X-Forwarded-For), or listen on TCP`)
    }
  }
  return function checkClientAddress (request, _reply, done) {
    if (checking) {
      listening ??= request.server.server.address()
      if (listening !== null) check(request)
    }
    done()
  }
}
