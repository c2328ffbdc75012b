// What the attempt limits count per client and the password queue serves in turns: a client's network, not its bare
// address. An IPv6 client holds at least a /64 (2^64 addresses it can rotate through), so an IPv6 address stands for
// its /64; an IPv4 address, or one mapped into IPv6 (::ffff:192.0.2.1, a dual-stack socket's IPv4 client), for itself.
// Some IPv6 addresses carry an IPv4 client in their last 32 bits, whose /64 is every client of a translator or relay:
// NAT64 (64:ff9b::192.0.2.1) and Teredo (the client's address inverted) stand for that IPv4 client.
import { isIP } from 'node:net'
import ipaddr from 'ipaddr.js'
import type { FastifyRequest } from 'fastify'

/**
 * `request.ip`, or undefined for a request over no socket (injectWS's): Fastify's trustProxy reads the socket's
 * address first, and throws without one (the upgrade failed).
 */
export const requestIp = (request: FastifyRequest): string | undefined => request.raw.socket == null ? undefined : request.ip

/**
 * The address of a client whose socket has none to read: its connection reset before the address was first asked
 * for, or injectWS's. Every such client is one, counted and queued like any other: never the application's own
 * logins (no address), which no per-address limit bounds.
 */
export const unknownAddress = 'unknown'

// A proxy may forward the client's source port beside its address (Azure Application Gateway: `192.0.2.1:5678`,
// `[2001:db8::1]:5678`): each new port is no new client. An IPv6 address without brackets is read whole.
const withPort = /^(?:\[([^\]]*)\](?::\d+)?|([^:]*):\d+)$/

/**
 * The key of `ip`'s network: `192.0.2.1`, `2001:db8:1:2::/64`. A string that is no address, even without its port, is
 * `unknownAddress`: one client, or every spelling a proxy (or a client under `trustProxy: true`) writes is a new one.
 * An IPv4 address is four decimal parts without leading zeros (`net.isIP`'s rule); any other spelling is no address.
 */
export function clientNetwork (ip: string): string {
  const [, bracketed, beforePort] = withPort.exec(ip) ?? []
  const host = bracketed ?? beforePort ?? ip
  // Node's rule, dotted decimal only: ipaddr.js reads 010.0.0.1 as octal (8.0.0.1), 127.1 and 0x7f.0.0.1 as
  // 127.0.0.1, another client than the one the proxy's log shows.
  if (isIP(host) === 0) return unknownAddress
  // A zone (fe80::1%eth0) names an interface of the proxy's host, no part of the client; ipaddr.js refuses some
  // that net.isIP takes (%eth-0), and would throw.
  const address = ipaddr.process(host.replace(/%.*$/, ''))
  if (address instanceof ipaddr.IPv4) return address.toString()
  const range = address.range()
  if (range === 'rfc6052' || range === 'teredo') {
    const last = address.toByteArray().slice(12)
    return new ipaddr.IPv4(range === 'teredo' ? last.map(byte => byte ^ 0xff) : last).toString()
  }
  return `${new ipaddr.IPv6([...address.parts.slice(0, 4), 0, 0, 0, 0]).toString()}/64`
}
