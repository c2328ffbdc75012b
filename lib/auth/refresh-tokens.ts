// Refresh tokens are opaque strings: the session's id (16 bytes) then 256 random bits, base64url. Naming its session,
// a token lets a store keep one hash per session: whatever else names a live session is reuse. Only hashes are stored.
import { createHash, randomBytes } from 'node:crypto'
import type { PresentedToken } from '../../types/index.js'

// 48 bytes: 64 base64url characters, no padding, so every token has exactly one spelling.
export const refreshTokenLength = 64
const shape = new RegExp(`^[A-Za-z0-9_-]{${refreshTokenLength}}$`)
const v7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

/** A new token for `sessionId` (a UUID, as `newSessionId` makes). */
export function newRefreshToken (sessionId: string): string {
  return Buffer.concat([Buffer.from(sessionId.replaceAll('-', ''), 'hex'), randomBytes(32)]).toString('base64url')
}

export function hashRefreshToken (token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}

/** The session a token names and its hash, or null when it is no token of ours. */
export function readRefreshToken (token: string): PresentedToken | null {
  if (!shape.test(token)) return null
  return { sessionId: uuidOf(Buffer.from(token, 'base64url').subarray(0, 16)), tokenHash: hashRefreshToken(token) }
}

/**
 * A session's id: a UUIDv7 (RFC 9562) whose time is `began`, when its login's check began (epoch milliseconds). Every
 * refresh token names its session, so a refresh learns from the token alone, whatever store keeps the session, whether
 * the session predates a revocation of its user. The secret is the token's 256 random bits, not the id.
 */
export function newSessionId (began = Date.now()): string {
  const bytes = randomBytes(16)
  bytes.writeUIntBE(began, 0, 6)
  bytes[6] = 0x70 | (bytes[6]! & 0x0f)
  bytes[8] = 0x80 | (bytes[8]! & 0x3f)
  return uuidOf(bytes)
}

/** When the session's login began, as `newSessionId` wrote it; undefined for an id of another kind (the UUIDv4s of earlier builds, an app's own). */
export function sessionBegan (sessionId: string | undefined): number | undefined {
  return sessionId !== undefined && v7.test(sessionId) ? parseInt(sessionId.slice(0, 8) + sessionId.slice(9, 13), 16) : undefined
}

/** 16 bytes in a UUID's spelling. */
function uuidOf (bytes: Buffer): string {
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
