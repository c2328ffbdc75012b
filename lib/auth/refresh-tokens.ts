// Refresh tokens are opaque strings: the session's id (16 bytes) then 256 random bits, base64url. Naming its session,
// a token lets a store keep one hash per session: whatever else names a live session is reuse. Only hashes are stored.
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import type { PresentedToken } from '../../types/index.js'

// 48 bytes: 64 base64url characters, no padding, so every token has exactly one spelling.
const shape = /^[A-Za-z0-9_-]{64}$/

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
  const hex = Buffer.from(token, 'base64url').toString('hex', 0, 16)
  const sessionId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
  return { sessionId, tokenHash: hashRefreshToken(token) }
}

export function newSessionId (): string {
  return randomUUID()
}
