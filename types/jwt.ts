// The parts of @fastify/jwt's types the public contract names (`fastify.realtime.jwt`, the `jwt` option), written
// out: importing them from @fastify/jwt, even as types, would bring its `declare module 'fastify'` into every app
// that imports the plugin, and `app.jwt`, `request.user` and `request.jwtVerify` would type-check on apps that never
// registered it (and throw at run time). @fastify/jwt's own `JWT` and `FastifyJWTOptions` are assignable to these
// (types/jwt.test-d.ts checks it).
import type { FastifyRequest } from 'fastify'

/** The algorithms fast-jwt (under @fastify/jwt) signs and verifies with. */
export type JwtAlgorithm =
  | 'none' | 'HS256' | 'HS384' | 'HS512' | 'ES256' | 'ES384' | 'ES512'
  | 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'EdDSA'

/** What a claim check allows: a value, a pattern, or a list of them. */
export type JwtAllowed = string | RegExp | Array<string | RegExp>

/** @fastify/jwt's sign options (fast-jwt's, with `expiresIn` and `notBefore` in seconds or as an `ms` span). */
export interface JwtSignOptions {
  algorithm?: JwtAlgorithm | undefined
  mutatePayload?: boolean | undefined
  expiresIn?: number | string | undefined
  notBefore?: number | string | undefined
  jti?: string | undefined
  aud?: string | string[] | undefined
  iss?: string | undefined
  sub?: string | undefined
  nonce?: string | undefined
  kid?: string | undefined
  header?: { alg: string, [name: string]: unknown } | undefined
  noTimestamp?: boolean | undefined
  clockTimestamp?: number | undefined
  key?: string | Buffer | undefined
}

// A method's parameters are compared both ways: fast-jwt's TokenError, whose `code` is a union of its own codes, is
// an error with a code here, and a function of @fastify/jwt's options still fits.
type ErrorCacheTtl = { ttl (tokenError: Error & { code: string }): number }['ttl']

/** @fastify/jwt's verify options (fast-jwt's, with `maxAge` in seconds or as an `ms` span). */
export interface JwtVerifyOptions {
  algorithms?: JwtAlgorithm[] | undefined
  complete?: boolean | undefined
  cache?: boolean | number | undefined
  cacheTTL?: number | undefined
  errorCacheTTL?: number | ErrorCacheTtl | undefined
  allowedJti?: JwtAllowed | undefined
  allowedAud?: JwtAllowed | undefined
  allowedIss?: JwtAllowed | undefined
  allowedSub?: JwtAllowed | undefined
  allowedNonce?: JwtAllowed | undefined
  ignoreExpiration?: boolean | undefined
  ignoreNotBefore?: boolean | undefined
  maxAge?: number | string | undefined
  clockTimestamp?: number | undefined
  clockTolerance?: number | undefined
  requiredClaims?: string[] | undefined
  checkTyp?: string | undefined
  allowedCritHeaders?: string[] | undefined
  cacheKeyBuilder? (token: string): string
  onlyCookie?: boolean | undefined
  key?: string | Buffer | undefined
}

/** @fastify/jwt's decode options (fast-jwt's). */
export interface JwtDecodeOptions {
  complete?: boolean | undefined
  checkTyp?: string | undefined
}

/** @fastify/jwt's registration options but `secret` (the plugin's is `secret`, or SECRET). */
export interface JwtOptions {
  decode?: JwtDecodeOptions | undefined
  sign?: JwtSignOptions | undefined
  verify?: (JwtVerifyOptions & { extractToken? (request: FastifyRequest): string | void }) | undefined
  cookie?: { cookieName: string, signed: boolean } | undefined
  messages?: {
    badRequestErrorMessage?: string | undefined
    badCookieRequestErrorMessage?: string | undefined
    noAuthorizationInHeaderMessage?: string | undefined
    noAuthorizationInCookieMessage?: string | undefined
    authorizationTokenExpiredMessage?: string | undefined
    authorizationTokenInvalid?: ((err: Error) => string) | string | undefined
    authorizationTokenUntrusted?: string | undefined
    authorizationTokenUnsigned?: string | undefined
  } | undefined
  trusted? (request: FastifyRequest, decodedToken: Record<string, unknown>): boolean | Promise<boolean>
  formatUser? (payload: Record<string, unknown>): unknown
  jwtDecode?: string | undefined
  namespace?: string | undefined
  jwtVerify?: string | undefined
  jwtSign?: string | undefined
  decoratorName?: string | undefined
}

/** A @fastify/jwt instance (its `JWT`, what `fastify.jwt` is): what `fastify.realtime.jwt` offers of it. */
export interface JwtInstance {
  readonly options: {
    decode: JwtDecodeOptions
    sign: JwtSignOptions
    verify: JwtVerifyOptions
  }
  /** The cookie its tokens may come in, when it was registered with one. */
  readonly cookie?: { cookieName: string, signed: boolean } | undefined
  /** Signs a token at once (an instance whose key is a function signs only as @fastify/jwt's own `JWT` says). */
  sign (payload: string | object, options?: JwtSignOptions): string
  /** The verified payload; throws fast-jwt's TokenError (`code`: `FAST_JWT_EXPIRED`...) for a token it refuses. */
  verify<Decoded extends object | string> (token: string, options?: JwtVerifyOptions): Decoded
  /** The payload, unverified; null when the token cannot be read. */
  decode<Decoded extends object | string> (token: string, options?: JwtDecodeOptions): Decoded | null
  /** The token of a request, where the instance looks for it (the `Authorization` header, its cookie). */
  lookupToken (request: FastifyRequest, options?: JwtOptions['verify']): string
}
