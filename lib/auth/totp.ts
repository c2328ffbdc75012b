// Time-based one-time passwords (RFC 6238: HMAC-SHA1, 30 s steps, 6 digits), as authenticator apps make them.
import { createHmac, timingSafeEqual } from 'node:crypto'

const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
const stepMs = 30_000

export function decodeBase32 (secret: string): Buffer {
  const clean = secret.toUpperCase().replace(/[\s=]/g, '')
  const bytes: number[] = []
  let bits = 0
  let value = 0
  for (const char of clean) {
    const index = alphabet.indexOf(char)
    if (index === -1) throw new TypeError('OTP secret must be base32')
    value = (value << 5) | index
    bits += 5
    if (bits >= 8) {
      bytes.push((value >>> (bits - 8)) & 0xff)
      bits -= 8
    }
  }
  return Buffer.from(bytes)
}

export function totp (key: Buffer, counter: number): string {
  const message = Buffer.alloc(8)
  message.writeBigUInt64BE(BigInt(counter))
  const digest = createHmac('sha1', key).update(message).digest()
  const offset = digest[digest.length - 1] & 0x0f
  const code = (digest.readUInt32BE(offset) & 0x7fffffff) % 1_000_000
  return code.toString().padStart(6, '0')
}

/** Accepts the current code and its neighbours, for clocks a step apart. */
export function verifyTotp (key: Buffer, otp: string, now = Date.now()): boolean {
  const given = Buffer.from(otp)
  const counter = Math.floor(now / stepMs)
  let valid = false
  for (const drift of [-1, 0, 1]) {
    if (counter + drift < 0) continue
    const expected = Buffer.from(totp(key, counter + drift))
    if (expected.length === given.length && timingSafeEqual(expected, given)) valid = true
  }
  return valid
}
