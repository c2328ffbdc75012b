// Refresh tokens are opaque random strings; only their hashes are ever stored.
import { createHash, randomBytes, randomUUID } from 'node:crypto'

/** 256 bits of randomness, URL-safe. */
export function newRefreshToken (): string {
  return randomBytes(32).toString('base64url')
}

export function hashRefreshToken (token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}

export function newSessionId (): string {
  return randomUUID()
}
