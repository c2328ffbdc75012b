// TRUST_PROXY: the proxies whose X-Forwarded-For and X-Forwarded-Proto `npm start` believes (Fastify's `trustProxy`).
// Without it, behind a proxy every client is the proxy (one attempt counter for all: one client's wrong passwords lock
// every other out) and every browser upgrade from the https:// page is refused as a foreign origin.
import Fastify from 'fastify'
import { InvalidConfigError } from '../lib/index.js'

/** The proxies' addresses or CIDR ranges, comma-separated, as Fastify takes them; undefined: no proxy. */
export function trustProxy (env: Record<string, string | undefined>): string | undefined {
  const value = env.TRUST_PROXY
  if (!value) return undefined
  // Every hop trusted: a client writes the left-most X-Forwarded-For entry itself, and escapes its attempt limit.
  if (value.trim() === 'true') throw new InvalidConfigError('TRUST_PROXY must name the proxy\'s addresses or CIDR ranges, not true: a client would name its own address in X-Forwarded-For')
  // Fastify reads a number in a string as an address (`1` is 0.0.0.1): the hop count of Express's `trust proxy 1` would
  // trust no proxy, silently.
  const hops = value.split(',').map(entry => entry.trim()).find(entry => /^\d+$/.test(entry))
  if (hops !== undefined) throw new InvalidConfigError(`TRUST_PROXY must be the proxy's addresses or CIDR ranges, comma-separated: ${hops} is a hop count, not an address (Fastify would read it as one, 1 as 0.0.0.1)`)
  try {
    // Fastify compiles the list as the instance is made; its own refusal names no variable.
    Fastify({ trustProxy: value })
  } catch (error) {
    throw new InvalidConfigError(`TRUST_PROXY must be the proxy's addresses or CIDR ranges, comma-separated: ${(error as Error).message}`)
  }
  return value
}
