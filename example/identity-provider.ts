// Tokens of an identity provider beside the server's own (docs/protocol.md section 10): one @fastify/jwt whose key
// lookup gives SECRET for the server's own HS256 tokens and the provider's published key, chosen by `kid`, for the
// others. The plugin verifies sockets through it as the app's HTTP routes do.
import { createPublicKey, type JsonWebKeyInput } from 'node:crypto'
import type { FastifyJWTOptions } from '@fastify/jwt'

export interface ProviderOptions {
  /** `JWKS_URL`: where the provider publishes its keys. */
  jwksUrl: string
  /** `JWT_ISSUER`, `JWT_AUDIENCE`: what a provider token's `iss` and `aud` must be, when set. */
  issuer?: string
  audience?: string
  /** The server's own key and issuer, for the tokens `/auth/login` signs. */
  secret: string
  ownIssuer: string
}

/** The provider's signatures; HMAC never, so no public key can be taken for a shared secret. */
const providerAlgorithms = new Set(['RS256', 'ES256', 'EdDSA'])
// A `kid` the set lacks fetches it again, once per window at most: a flood of made-up ids is no flood of fetches.
const refetchEveryMs = 5_000
// The set is fetched again when a token needs it this long after the last fetch; while the provider cannot be
// reached, the keys of the last set stay in use.
const keyTtlMs = 10 * 60_000
const fetchTimeoutMs = 3_000
// A key set is a few kilobytes. A bigger answer (a wrong URL, a compromised host) is refused unread past this, and
// no more keys are imported than a provider rotates through.
const maxJwksBytes = 256 * 1024
const maxKeys = 100

/** The body as text; refused, without reading the rest, past `limit` bytes. */
async function bodyWithin (response: Response, limit: number): Promise<string> {
  const chunks: Uint8Array[] = []
  let size = 0
  // No body at all (a 204) is no key set either: iterating nothing throws, and the fetch fails.
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength
    if (size > limit) throw new Error(`the JWKS is over ${limit} bytes`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString()
}

type Decoded = { header: { alg?: string, kid?: string }, payload: Record<string, unknown> }

/** The provider's published keys by `kid`, in PEM, as of the last fetch that worked. */
class KeySet {
  readonly #url: string
  #keys = new Map<string, { alg: string | undefined, pem: string }>()
  #fetchedAt = -Infinity
  #triedAt = -Infinity
  #fetching: Promise<void> | null = null

  constructor (url: string) {
    this.#url = url
  }

  async key (kid: string, alg: string): Promise<string> {
    const now = Date.now()
    const fetchable = now - this.#triedAt >= refetchEveryMs
    if (this.#keys.has(kid)) {
      // A known key answers at once while the set is fetched again behind it: a provider slower than the auth timeout
      // would otherwise fail every token arriving during each refetch, a reconnect storm's all at once.
      if (now - this.#fetchedAt >= keyTtlMs && fetchable) this.#refetch() // never rejects: a failed fetch keeps the set
    } else if (fetchable) {
      await this.#refetch()
    } else if (this.#fetching) {
      // A fetch on its way (another token's) may bring the key: every token that needs it waits for it, not only the
      // one that started it, or the clients reconnecting after a restart or a key rotation would be refused but one.
      await this.#fetching.catch(() => {})
    }
    const key = this.#keys.get(kid)
    if (key === undefined) throw new Error(`unknown key ${kid}`)
    if (key.alg !== undefined && key.alg !== alg) throw new Error(`key ${kid} is for ${key.alg}`)
    return key.pem
  }

  /** One fetch at a time, whoever asks; a failed one leaves the keys as they were. */
  #refetch (): Promise<void> {
    this.#triedAt = Date.now()
    this.#fetching ??= this.#fetch().finally(() => { this.#fetching = null })
    return this.#fetching.catch(() => {})
  }

  async #fetch (): Promise<void> {
    const response = await fetch(this.#url, { signal: AbortSignal.timeout(fetchTimeoutMs) })
    if (!response.ok) throw new Error(`the JWKS answered ${response.status}`)
    const { keys } = JSON.parse(await bodyWithin(response, maxJwksBytes)) as { keys?: Array<Record<string, unknown>> }
    const next = new Map<string, { alg: string | undefined, pem: string }>()
    for (const jwk of (keys ?? []).slice(0, maxKeys)) {
      if (typeof jwk.kid !== 'string') continue
      try {
        // Node imports every key type a JWKS holds (RSA, EC, and OKP for EdDSA).
        const pem = createPublicKey({ key: jwk as JsonWebKeyInput['key'], format: 'jwk' }).export({ format: 'pem', type: 'spki' }).toString()
        next.set(jwk.kid, { alg: typeof jwk.alg === 'string' ? jwk.alg : undefined, pem })
      } catch {} // a key Node cannot import verifies nothing
    }
    this.#keys = next
    this.#fetchedAt = Date.now()
  }
}

export function providerJwt (options: ProviderOptions): FastifyJWTOptions {
  const keys = new KeySet(options.jwksUrl)

  async function providerKey ({ header, payload }: Decoded): Promise<string> {
    const { alg, kid } = header as { alg: string, kid?: string }
    if (!providerAlgorithms.has(alg)) throw new Error(`algorithm ${alg} is not accepted from the provider`)
    if (typeof kid !== 'string') throw new Error('a provider token names its key (kid)')
    // fast-jwt checks the values, but lets a claim that is missing pass: a provider token must carry them.
    if (options.issuer !== undefined && payload.iss === undefined) throw new Error('a provider token carries iss')
    if (options.audience !== undefined && payload.aud === undefined) throw new Error('a provider token carries aud')
    // A socket it opened would never expire.
    if (typeof payload.exp !== 'number') throw new Error('a provider token carries exp')
    // The server's own issuer is its own tokens' (an admin's among them): no provider speaks for it.
    if (payload.iss === options.ownIssuer) throw new Error('a provider token cannot carry the server\'s own issuer')
    return keys.key(kid, alg)
  }

  return {
    secret: {
      private: options.secret,
      public: (_request: unknown, token: Decoded, callback: (err: Error | null, key?: string) => void) => {
        const own = token.header.alg === 'HS256' && token.payload.iss === options.ownIssuer
        if (own) return callback(null, options.secret)
        providerKey(token).then(key => callback(null, key), callback)
      }
    } as unknown as FastifyJWTOptions['secret'],
    // The key lookup needs the token's header.
    decode: { complete: true },
    sign: { algorithm: 'HS256', iss: options.ownIssuer },
    // The server's own tokens are told by their issuer in the key lookup; these bind the provider's.
    verify: {
      ...(options.issuer === undefined ? {} : { allowedIss: [options.ownIssuer, options.issuer] }),
      ...(options.audience === undefined ? {} : { allowedAud: options.audience })
    }
  }
}
