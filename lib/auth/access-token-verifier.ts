// Access-token verification. @fastify/jwt (fast-jwt) is the authority; when the plugin registered it itself from
// SECRET with no verify options, the tokens it signs (HS256, the standard header) first take a short path that checks
// exactly what fast-jwt checks for them with those defaults, with less of the work: one HMAC and one JSON.parse.
// The short path only ever accepts; everything it does not accept goes to @fastify/jwt, whose answer and error code
// stand. A handshake's authentication is mostly this check, so it is worth its own few lines.
import { HmacSha256 } from './hmac-sha256.js'
import type { JWT } from '@fastify/jwt'

/** Verified claims, or a throw with fast-jwt's error code (`FAST_JWT_EXPIRED`, ...). */
export type VerifyAccessToken = (token: string) => Record<string, unknown>

// {"alg":"HS256","typ":"JWT"}: what fast-jwt (and Directus's jsonwebtoken) put in front of every HS256 token.
const standardHeader = Buffer.from('{"alg":"HS256","typ":"JWT"}').toString('base64url')
// Three base64url segments, the header the standard one, the signature 32 bytes (43 characters, no padding):
// the alphabet fast-jwt insists on, so that no other spelling of a token gets through here.
const shape = new RegExp(`^${standardHeader}\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]{43}$`)

/**
 * Whether the token's signature, from `at` on, spells `expected`: every character compared whatever the first
 * difference, so that the time taken says nothing of how much of a forged signature was right.
 */
function signatureIs (token: string, at: number, expected: string): boolean {
  // The shape has made it 43 characters, as long as `expected`.
  let difference = 0
  for (let i = 0; i < expected.length; i++) difference |= token.charCodeAt(at + i) ^ expected.charCodeAt(i)
  return difference === 0
}

/** A registered date claim, as fast-jwt's default validators take it: absent, or a number of seconds that holds. */
function dateHolds (payload: Record<string, unknown>, claim: 'exp' | 'nbf', now: number): boolean {
  if (!(claim in payload)) return true
  const value = payload[claim]
  if (typeof value !== 'number') return false
  return claim === 'exp' ? now <= value * 1000 : now >= value * 1000
}

/** The claims of a token the short path accepts, or null: not for it to say. */
export function verifyStandardHs256 (token: string, key: HmacSha256): Record<string, unknown> | null {
  if (!shape.test(token)) return null
  const signed = token.lastIndexOf('.')
  if (!signatureIs(token, signed + 1, key.digest(token.slice(0, signed)))) return null
  let payload: unknown
  try {
    payload = JSON.parse(Buffer.from(token.slice(standardHeader.length + 1, signed), 'base64url').toString())
  } catch {
    return null
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return null
  const claims = payload as Record<string, unknown>
  const now = Date.now()
  return dateHolds(claims, 'nbf', now) && dateHolds(claims, 'exp', now) ? claims : null
}

/**
 * `secret`: the SECRET the plugin registered @fastify/jwt with, when it did so with fast-jwt's default verify
 * options; null otherwise (the app's own @fastify/jwt, or verify options): every token goes to `jwt.verify`.
 */
export function accessTokenVerifier (jwt: JWT, secret: string | null): VerifyAccessToken {
  if (secret === null) return (token) => jwt.verify(token)
  const key = new HmacSha256(Buffer.from(secret))
  return (token) => verifyStandardHs256(token, key) ?? jwt.verify(token)
}
