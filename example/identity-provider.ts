// Tokens of an identity provider beside the server's own (docs/protocol.md section 10): one @fastify/jwt whose key
// lookup gives SECRET for the server's own HS256 tokens and the provider's published key, chosen by `kid`, for the
// others. The plugin verifies sockets through it as the app's HTTP routes do.
import { createPublicKey, verify, type JsonWebKeyInput, type KeyObject } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { FastifyJWTOptions } from '@fastify/jwt'
import { TokenError } from 'fast-jwt'
import { ProviderRefusals } from './provider-refusals.js'
import { ProviderTokenRefused, refuseIdToken } from './token-kind.js'

export interface ProviderOptions {
  /** `JWKS_URL`: where the provider publishes its keys. */
  jwksUrl: string
  /** `JWT_ISSUER`, `JWT_AUDIENCE`: what a provider token's `iss` and `aud` must be, when set. */
  issuer?: string
  audience?: string
  /** `JWT_TOKEN_TYPE`: the `typ` every provider token must have (`at+jwt`), when set. */
  tokenType?: string
  /** The server's own key and issuer, for the tokens `/auth/login` signs. */
  secret: string
  ownIssuer: string
  /** Where a failed fetch of the key set is told. */
  log: FastifyBaseLogger
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
// A provider's clock may run ahead of this one: a token fresh from a login carries an `nbf` (Azure AD's is its `iat`)
// in this server's future, which fast-jwt, to the millisecond, refuses for as long as the skew. Checked here instead.
const notBeforeLeewayMs = 60_000

/**
 * How long until a token's `nbf` (milliseconds, 0 or less once it is valid). NaN for one that is no number: fast-jwt,
 * told to leave `nbf` to the key lookup, no longer refuses it (RFC 7519 4.1.5: a NumericDate).
 */
const notBeforeIn = (payload: Record<string, unknown>) =>
  payload.nbf === undefined ? 0 : typeof payload.nbf === 'number' ? payload.nbf * 1000 - Date.now() : NaN

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

/** A value of a token's, as a log line shows it: quoted, and cut short, since any client writes it. */
const shown = (value: unknown) => JSON.stringify(typeof value === 'string' ? value.slice(0, 100) : value ?? null).slice(0, 120)

/** What @fastify/jwt's decoder (`complete: true`) gives the key lookup: the signed part and its signature too. */
type Decoded = { header: { alg?: string, kid?: string, typ?: string }, payload: Record<string, unknown> } & Signed
type Signed = { input: string, signature: string }
type PublishedKey = { alg: string | undefined, pem: string, key: KeyObject }

/** Each provider algorithm's digest, for `crypto.verify`. */
const digests: Record<string, string | null> = { RS256: 'sha256', ES256: 'sha256', EdDSA: null }

/** Whether `key` signed the token; fast-jwt checks it again, this tells a key replaced behind its `kid`. */
function signedBy (key: KeyObject, alg: string, { input, signature }: Signed): boolean {
  try {
    // JWS signs ECDSA as r and s side by side, not in DER.
    return verify(digests[alg], Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'))
  } catch {
    return false // a key of another type than the token's algorithm (an Ed25519 key for RS256)
  }
}

/** Whether `key` may verify a token of `alg`: the one its set names, or any. */
const fitFor = (alg: string) => (key: PublishedKey) => key.alg === undefined || key.alg === alg

/**
 * The provider's published signing keys by `kid`, in PEM, as of the last fetch that worked. Several keys may share a
 * kid (RFC 7517 4.5): Keycloak names a key by itself, so one it signs with by two algorithms appears twice under one.
 */
class KeySet {
  readonly #url: string
  readonly #log: FastifyBaseLogger
  #keys = new Map<string, PublishedKey[]>()
  #fetchedAt = -Infinity
  #triedAt = -Infinity
  #fetching: Promise<void> | null = null
  /** Whether the last fetch failed: a run of failures is told once. */
  #failing = false

  constructor (url: string, log: FastifyBaseLogger) {
    this.#url = url
    this.#log = log
  }

  /** The URL as logged: without its query, which may carry a key of the provider's API. */
  get #where (): string {
    const { origin, pathname } = new URL(this.#url)
    return `${origin}${pathname}`
  }

  /** The key of `kid` for `alg` that signed the token, if the set holds one. */
  #signer (kid: string, alg: string, token: Signed): PublishedKey | undefined {
    return this.#keys.get(kid)?.find(key => fitFor(alg)(key) && signedBy(key.key, alg, token))
  }

  async key (kid: string, alg: string, token: Signed): Promise<string> {
    const now = Date.now()
    const fetchable = now - this.#triedAt >= refetchEveryMs
    const known = this.#signer(kid, alg, token)
    if (known) {
      // A known key answers at once while the set is fetched again behind it: a provider slower than the auth timeout
      // would otherwise fail every token arriving during each refetch, a reconnect storm's all at once.
      if (now - this.#fetchedAt >= keyTtlMs && fetchable) this.refetch() // never rejects: a failed fetch keeps the set
      return known.pem
    }
    if (fetchable) {
      // An unknown kid, or a known one whose key did not sign the token: the provider may have replaced the key behind
      // its kid, which would otherwise go unseen until the set ages out, the retired key verifying meanwhile.
      await this.refetch()
    } else if (this.#fetching) {
      // A fetch on its way (another token's) may bring the key: every token that needs it waits for it, not only the
      // one that started it, or the clients reconnecting after a restart or a key rotation would be refused but one.
      await this.#fetching
    }
    const keys = this.#keys.get(kid)
    if (keys === undefined) throw new ProviderTokenRefused('UNKNOWN_KEY', `no key ${shown(kid)} in the provider's key set`)
    if (!keys.some(fitFor(alg))) throw new ProviderTokenRefused('KEY_ALGORITHM', `key ${shown(kid)} is for ${keys.map(key => key.alg).join(', ')}`)
    // fast-jwt would refuse it too, as "invalid": said here, which key it was.
    const signer = this.#signer(kid, alg, token)
    if (signer === undefined) throw new ProviderTokenRefused('SIGNATURE', `not signed by the key ${shown(kid)}`)
    return signer.pem
  }

  /** One fetch at a time, whoever asks; never rejects: a failed one is logged and leaves the keys as they were. */
  refetch (): Promise<void> {
    this.#triedAt = Date.now()
    this.#fetching ??= this.#fetch()
      .then(() => this.#fetched(), (err: unknown) => this.#failed(err))
      .finally(() => { this.#fetching = null })
    return this.#fetching
  }

  /** The first failure of a run is a warning; the next ones, until a fetch works, are debug lines. */
  #failed (err: unknown): void {
    const fields = { err, url: this.#where, ...(err instanceof NoKeySet && err.jwksUri !== undefined ? { jwks_uri: err.jwksUri } : {}) }
    const message = 'the identity provider\'s key set could not be fetched: the keys of the last one stay in use'
    if (this.#failing) this.#log.debug(fields, message)
    else this.#log.warn(fields, message)
    this.#failing = true
  }

  #fetched (): void {
    if (this.#failing) this.#log.info({ url: this.#where }, 'the identity provider\'s key set is fetched again')
    this.#failing = false
  }

  async #fetch (): Promise<void> {
    const response = await fetch(this.#url, { signal: AbortSignal.timeout(fetchTimeoutMs) })
    if (!response.ok) throw new Error(`the JWKS answered ${response.status}`)
    this.#keys = importedKeys(JSON.parse(await bodyWithin(response, maxJwksBytes)) as unknown)
    this.#fetchedAt = Date.now()
  }
}

/**
 * The keys of a key set by `kid`, in PEM. An answer that is no key set (a proxy's or a maintenance page's JSON error,
 * a discovery document) throws, as does a set of which no key imports: taken, it would drop every key in use.
 */
function importedKeys (body: unknown): Map<string, PublishedKey[]> {
  const { keys, jwks_uri: jwksUri } = (body ?? {}) as { keys?: unknown, jwks_uri?: unknown }
  if (typeof jwksUri === 'string') throw new NoKeySet('JWKS_URL answers a discovery document, no key set: set it to its jwks_uri', jwksUri)
  if (!Array.isArray(keys)) throw new NoKeySet('the JWKS answered JSON that is no key set (no keys array)')
  const next = new Map<string, PublishedKey[]>()
  for (const jwk of (keys as Array<Record<string, unknown>>).slice(0, maxKeys)) {
    // A key published for encryption (`use: enc`, Keycloak's RSA-OAEP one) verifies no signature (RFC 7517 4.2).
    if (typeof jwk.kid !== 'string' || (jwk.use !== undefined && jwk.use !== 'sig')) continue
    try {
      // Node imports every key type a JWKS holds (RSA, EC, and OKP for EdDSA).
      const key = createPublicKey({ key: jwk as JsonWebKeyInput['key'], format: 'jwk' })
      const published = { alg: typeof jwk.alg === 'string' ? jwk.alg : undefined, pem: key.export({ format: 'pem', type: 'spki' }).toString(), key }
      next.set(jwk.kid, [...next.get(jwk.kid) ?? [], published])
    } catch {} // a key Node cannot import verifies nothing
  }
  if (next.size === 0) throw new NoKeySet(`the key set holds no key Node can import to verify signatures (of ${keys.length})`)
  return next
}

/** An answer that is no key set; `jwksUri`, the one a discovery document names. */
class NoKeySet extends Error {
  constructor (message: string, readonly jwksUri?: string) {
    super(message)
  }
}

export function providerJwt (options: ProviderOptions): FastifyJWTOptions {
  const keys = new KeySet(options.jwksUrl, options.log)
  const refusals = new ProviderRefusals(options.log)
  // Fetched at boot, behind the start: the first clients find their keys at once, where one that waited for a fetch
  // could give up first (the Directus SDK waits 1 s for its auth reply). A failed fetch is logged, and is tried again
  // by a token that needs the set, once per 5 s at most.
  keys.refetch()

  async function providerKey (token: Decoded): Promise<string> {
    const { header, payload } = token
    const { alg, kid } = header as { alg: string, kid?: string }
    if (!providerAlgorithms.has(alg)) throw new ProviderTokenRefused('ALGORITHM', `algorithm ${shown(alg)} is not accepted from the provider`)
    if (typeof kid !== 'string') throw new ProviderTokenRefused('NO_KID', 'a provider token names its key (kid)')
    // An ID token's aud is the client's id: with JWT_AUDIENCE set to it, or unset, it would pass for an access token.
    refuseIdToken(header, payload, options.tokenType)
    // The server's own issuer is its own tokens' (an admin's among them): no provider speaks for it.
    if (payload.iss === options.ownIssuer) throw new ProviderTokenRefused('OWN_ISSUER', 'a provider token cannot carry the server\'s own issuer')
    // fast-jwt checks iss and aud too, but lets a missing one pass, and says no more than "invalid": a JWT_ISSUER one
    // slash off the provider's refuses every token, which the operator is told in these words.
    const { issuer, audience } = options
    if (issuer !== undefined && payload.iss !== issuer) {
      const slash = String(payload.iss).replace(/\/$/, '') === issuer.replace(/\/$/, '') ? ' (a trailing slash apart)' : ''
      throw new ProviderTokenRefused('ISSUER', `iss ${shown(payload.iss)} is not JWT_ISSUER ${shown(issuer)}${slash}`)
    }
    if (audience !== undefined && !(Array.isArray(payload.aud) ? payload.aud : [payload.aud]).includes(audience)) {
      throw new ProviderTokenRefused('AUDIENCE', `aud ${shown(payload.aud)} is not JWT_AUDIENCE ${shown(audience)}`)
    }
    // A socket it opened would never expire.
    if (typeof payload.exp !== 'number') throw new ProviderTokenRefused('NO_EXP', 'a provider token carries exp')
    // Told in this server's clock, which may be the one off.
    const notBefore = notBeforeIn(payload)
    if (Number.isNaN(notBefore)) throw new ProviderTokenRefused('NBF_TYPE', `nbf ${shown(payload.nbf)} is no number`)
    if (notBefore > notBeforeLeewayMs) throw new ProviderTokenRefused('NOT_YET_VALID', `valid in ${Math.round(notBefore / 1000)} s by this server's clock`)
    const key = await keys.key(kid, alg, token)
    // fast-jwt refuses these (TOKEN_EXPIRED tells the client to refresh): told here for the operator, whose clock may
    // be the one that is off.
    const now = Date.now()
    if (payload.exp * 1000 <= now) refusals.refused('EXPIRED', `expired ${Math.round(now / 1000 - payload.exp)} s ago by this server's clock`)
    else refusals.verified()
    return key
  }

  return {
    secret: {
      private: options.secret,
      public: (_request: unknown, token: Decoded, callback: (err: Error | null, key?: string) => void) => {
        const own = token.header.alg === 'HS256' && token.payload.iss === options.ownIssuer
        // The server's own tokens share its clock: no leeway (fast-jwt leaves `nbf` to this lookup).
        if (own && !(notBeforeIn(token.payload) <= 0)) return callback(new TokenError(TokenError.codes.inactive, 'The token will be active later.'))
        if (own) return callback(null, options.secret)
        providerKey(token).then(key => callback(null, key), (err: ProviderTokenRefused) => {
          refusals.refused(err.code, err.message)
          callback(err)
        })
      }
    } as unknown as FastifyJWTOptions['secret'],
    // The key lookup needs the token's header.
    decode: { complete: true },
    sign: { algorithm: 'HS256', iss: options.ownIssuer },
    // The server's own tokens are told by their issuer in the key lookup; these bind the provider's.
    verify: {
      ignoreNotBefore: true,
      ...(options.issuer === undefined ? {} : { allowedIss: [options.ownIssuer, options.issuer] }),
      ...(options.audience === undefined ? {} : { allowedAud: options.audience })
    }
  }
}
