// Time-based one-time passwords (RFC 6238: HMAC-SHA1, 30 s steps, 6 digits), as authenticator apps make them, through
// otpauth. Checking a code says which time step it belongs to, so that each user's codes are accepted once
// (lib/stores/otp-steps/): a code whose step is not newer than the user's last accepted one is a replay.
import { Secret, TOTP } from 'otpauth'

const sixDigits = /^[0-9]{6}$/

// 80 bits, the 16 base32 characters authenticator apps are usually given: a shorter key is guessed, and a blank
// secret's key is empty, its codes computed by anyone who has the password.
const minKeyBytes = 10

/**
 * The key of a base32 secret (case-insensitive, spaces and padding ignored); a TypeError when it is not base32 or
 * its key is under 10 bytes.
 */
export function otpKey (secret: string): Secret {
  let key: Secret
  try {
    key = Secret.fromBase32(secret.replace(/\s/g, ''))
  } catch {
    throw new TypeError('OTP secret must be base32')
  }
  if (key.bytes.length < minKeyBytes) throw new TypeError(`OTP secret must be a key of ${minKeyBytes} bytes or more (16 base32 characters)`)
  return key
}

/**
 * The time step of `otp` when it is the code of the current step or of a neighbour (clocks a step apart), else null.
 * Six digits only: otpauth compares bytes, and a code of six other characters could be more bytes than six.
 */
export function totpStep (key: Secret, otp: string, now = Date.now()): number | null {
  if (!sixDigits.test(otp)) return null
  const delta = TOTP.validate({ token: otp, secret: key, timestamp: now, window: 1 })
  return delta === null ? null : TOTP.counter({ timestamp: now }) + delta
}
