// The key lookup README.md "Identity providers (OpenID Connect, JWKS)" gives for @fastify/jwt with get-jwks, here
// where it is tested. get-jwks fetches the key set for any `kid` it holds no key for, and remembers no failure: each
// made-up kid a client sends would cost a fetch, two with providerDiscovery.
import { createPublicKey, type JsonWebKey } from 'node:crypto'
import buildGetJwks, { type GetJwksOptions } from 'get-jwks'

// A lookup that would fetch goes to the issuer once per window at most, as the reference server's does.
const refetchEveryMs = 5_000
// A public key verifies these alone: no other is looked up (nor kept).
const publicKeyAlgorithms = /^((RS|PS|ES)(256|384|512)|EdDSA)$/
// What get-jwks says when the provider's key set lacks the key: the one failure that drops a key found before. Its
// NO_JWKS (an answer without keys: a proxy's JSON error, a maintenance page) is a failed fetch, as a provider down is.
const withdrawn = 'JWK_NOT_FOUND'

const withSlash = (url: string) => (url.endsWith('/') ? url : `${url}/`)

/** The public key (PEM) of a token of `issuersWhitelist`, looked up with get-jwks, with a bounded number of fetches. */
export function providerKeyLookup (options: GetJwksOptions & { issuersWhitelist: string[] }) {
  const jwks = buildGetJwks(options)
  const issuers = new Set(options.issuersWhitelist.map(withSlash))
  // The last key each lookup found, and when each issuer was last asked.
  const found = new Map<string, string>()
  const askedAt = new Map<string, number>()
  // get-jwks's getPublicKey converts the key with jwk-to-pem, which knows RSA and EC alone: an EdDSA (OKP) key failed
  // every token of it. Node imports every key type a JWKS holds.
  const publicKey = async (signature: { domain: string, kid: string, alg: string }) =>
    createPublicKey({ key: await jwks.getJwk(signature) as JsonWebKey, format: 'jwk' }).export({ format: 'pem', type: 'spki' }).toString()
  return async ({ domain, kid, alg }: { domain: string, kid: string, alg: string }): Promise<string> => {
    const issuer = withSlash(String(domain))
    if (!issuers.has(issuer) || !publicKeyAlgorithms.test(alg)) throw new Error('not a key of an accepted issuer')
    const key = jwks.generateCacheKey(alg, kid, issuer)
    const last = found.get(key)
    // In get-jwks's cache, or on its way there (a lookup other tokens wait for): nothing to fetch. A known key answers
    // as last found, an unknown one waits for that lookup.
    if (jwks.cache.get(key) !== undefined) return last ?? publicKey({ domain: issuer, kid, alg })
    if (Date.now() - (askedAt.get(issuer) ?? -Infinity) < refetchEveryMs) {
      if (last === undefined) throw new Error(`unknown kid ${kid}, not asked for again yet`)
      return last
    }
    askedAt.set(issuer, Date.now())
    // get-jwks answers a failed fetch with the key it had, whatever the failure, a key the provider withdrew included:
    // without its copy, the failure says which it was.
    jwks.staleCache.delete(key)
    const lookup = publicKey({ domain: issuer, kid, alg }).then(pem => {
      found.set(key, pem)
      return pem
    }, (err: { code?: string }) => {
      if (err.code === withdrawn) found.delete(key)
      throw err
    })
    if (last === undefined) return lookup
    // A known key answers at once, its lookup goes on behind it: a provider down, hung or slow holds no token of it.
    lookup.catch(() => {})
    return last
  }
}
