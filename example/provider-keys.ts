// The key lookup README.md "Identity providers (OpenID Connect, JWKS)" gives for @fastify/jwt with get-jwks, here
// where it is tested. get-jwks fetches the key set for any `kid` it holds no key for, and remembers no failure: each
// made-up kid a client sends would cost a fetch, two with providerDiscovery.
import buildGetJwks, { type GetJwksOptions } from 'get-jwks'

// A lookup that would fetch goes to the issuer once per window at most, as the reference server's does.
const refetchEveryMs = 5_000
// A public key verifies these alone: no other is looked up (nor kept).
const publicKeyAlgorithms = /^((RS|PS|ES)(256|384|512)|EdDSA)$/

const withSlash = (url: string) => (url.endsWith('/') ? url : `${url}/`)

/** get-jwks's `getPublicKey` for the tokens of `issuersWhitelist`, with a bounded number of fetches. */
export function providerKeyLookup (options: GetJwksOptions & { issuersWhitelist: string[] }) {
  const jwks = buildGetJwks(options)
  const issuers = new Set(options.issuersWhitelist.map(withSlash))
  // The last key each lookup found, and when each issuer was last asked.
  const found = new Map<string, string>()
  const askedAt = new Map<string, number>()
  return async ({ domain, kid, alg }: { domain: string, kid: string, alg: string }): Promise<string> => {
    const issuer = withSlash(String(domain))
    if (!issuers.has(issuer) || !publicKeyAlgorithms.test(alg)) throw new Error('not a key of an accepted issuer')
    const key = jwks.generateCacheKey(alg, kid, issuer)
    // Not in get-jwks's cache, nor on its way there (a fetch other tokens wait for): this lookup would fetch.
    if (jwks.cache.get(key) === undefined) {
      if (Date.now() - (askedAt.get(issuer) ?? -Infinity) < refetchEveryMs) {
        const last = found.get(key)
        if (last === undefined) throw new Error(`unknown kid ${kid}, not asked for again yet`)
        return last
      }
      askedAt.set(issuer, Date.now())
    }
    try {
      const pem = await jwks.getPublicKey({ domain: issuer, kid, alg })
      found.set(key, pem)
      return pem
    } catch (err) {
      found.delete(key)
      throw err
    }
  }
}
