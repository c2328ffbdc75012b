// README.md "Identity providers (OpenID Connect, JWKS)" gives this check for an app's own @fastify/jwt, and the reference
// server makes it: an ID token tells a client who logged in, it is no credential for an API. A provider signs both
// with one key, and an ID token's `aud` is the client's id: an API whose audience is set to that id (or to nothing)
// would take it for an access token.

/** A refused token: `code` is what the plugin's `authFailed` event tells (`invalid token (ID_TOKEN)`). */
export class ProviderTokenRefused extends Error {
  // As @fastify/jwt's own refusals: a route that verifies the token answers 401.
  readonly statusCode = 401
  constructor (readonly code: string, message: string) {
    super(message)
  }
}

/** A header's `typ` as RFC 8725 compares it: in lower case, without `application/`. */
const mediaType = (typ: unknown) => typeof typ === 'string' ? typ.toLowerCase().replace(/^application\//, '') : undefined
// The `typ` providers give ID tokens, where they give one (most give none, or `JWT`).
const idTokenTypes = new Set(['id_token', 'id_token+jwt', 'id-token', 'id-token+jwt', 'idtoken+jwt', 'id+jwt'])
// Claims only an ID token carries (OpenID Connect Core 2 and 3.3.2.11).
const idTokenClaims = ['nonce', 'at_hash', 'c_hash']

/** What marks the token as an ID token, undefined for none. */
export function idTokenMark (header: Record<string, unknown>, payload: Record<string, unknown>): string | undefined {
  const typ = mediaType(header.typ)
  // RFC 9068's access token, whatever else it carries.
  if (typ === 'at+jwt') return undefined
  // Keycloak types its tokens in the payload: its access tokens (`Bearer`) carried the login's nonce before version 24.
  // Cognito says it in `token_use`.
  if (payload.typ === 'Bearer' || payload.token_use === 'access') return undefined
  if (typ !== undefined && idTokenTypes.has(typ)) return `typ ${typ}`
  if (payload.typ === 'ID') return 'typ ID in its claims'
  if (payload.token_use === 'id') return 'token_use id'
  const claim = idTokenClaims.find(name => payload[name] !== undefined)
  return claim === undefined ? undefined : `it carries ${claim}`
}

/**
 * Throws for an ID token; with `requiredType` (`at+jwt`, for a provider that types its access tokens as RFC 9068
 * says), for any token of another `typ`, as an ID token without the marks above is.
 */
export function refuseIdToken (header: Record<string, unknown>, payload: Record<string, unknown>, requiredType?: string): void {
  const mark = idTokenMark(header, payload)
  if (mark !== undefined) throw new ProviderTokenRefused('ID_TOKEN', `an ID token (${mark}), not an access token`)
  const typ = mediaType(header.typ)
  if (requiredType !== undefined && typ !== requiredType) {
    throw new ProviderTokenRefused('TOKEN_TYPE', `typ ${typ ?? 'none'}, not ${requiredType}`)
  }
}
