// Reading client frames: JSON parsing, the envelope, and the three forms of the auth message.
import type { RawData } from 'ws'
import type { Credential } from '../../types/index.js'
import type { Uid } from './frames.js'
import { maxEmailLength, maxPasswordLength, tooLong } from '../auth/credential-bounds.js'

export type Envelope =
  | { ok: true, message: Record<string, unknown> & { type: string }, uid: Uid }
  | { ok: false, type: string, uid: Uid, problem: string }

export const unparsable = Symbol('unparsable')

// ws hands over a Buffer: sockets keep the default binaryType, 'nodebuffer'.
export function parseFrame (data: RawData): unknown {
  try {
    return JSON.parse((data as Buffer).toString())
  } catch {
    return unparsable
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** The envelope every frame needs: a JSON object with a string `type`, and a string or number `uid` if any. */
export function readEnvelope (parsed: unknown): Envelope {
  if (!isObject(parsed) || typeof parsed.type !== 'string') {
    return { ok: false, type: 'server', uid: undefined, problem: 'A message must be a JSON object with a string "type".' }
  }
  const { type, uid } = parsed
  if (uid !== undefined && typeof uid !== 'string' && !(typeof uid === 'number' && Number.isFinite(uid))) {
    return { ok: false, type, uid: undefined, problem: '"uid" must be a string or a number.' }
  }
  return { ok: true, message: parsed as Record<string, unknown> & { type: string }, uid }
}

const forms = [['access_token'], ['email', 'password'], ['refresh_token']] as const
type Form = typeof forms[number]

/** The form an auth message uses, by the fields it carries: null for none, 'several' for more than one. */
function formOf (message: Record<string, unknown>): Form | null | 'several' {
  let found: Form | null = null
  for (const form of forms) {
    if (message[form[0]] === undefined && (form.length === 1 || message[form[1]] === undefined)) continue
    if (found) return 'several'
    found = form
  }
  return found
}

/** The credential of an auth message, or what is wrong with it. */
export function readCredential (message: Record<string, unknown>): { credential: Credential } | { problem: string } {
  const form = formOf(message)
  if (form === null) {
    return { problem: 'An auth message must carry "access_token", "email" and "password", or "refresh_token".' }
  }
  if (form === 'several' || (message.otp !== undefined && form[0] !== 'email')) {
    return { problem: 'An auth message must carry only one of "access_token", "email" and "password" (with "otp"), or "refresh_token".' }
  }
  for (const field of form) {
    if (typeof message[field] !== 'string' || message[field] === '') {
      return { problem: `"${field}" must be a non-empty string.` }
    }
  }
  if (message.otp !== undefined && typeof message.otp !== 'string') {
    return { problem: '"otp" must be a string.' }
  }
  if (form[0] === 'email') {
    const { email, password, otp } = message as { email: string, password: string, otp?: string }
    // Refused before the attempt is counted or the password hashed, as the HTTP login refuses them.
    if (email.length > maxEmailLength) return { problem: tooLong('email', maxEmailLength) }
    if (password.length > maxPasswordLength) return { problem: tooLong('password', maxPasswordLength) }
    return { credential: otp === undefined ? { email, password } : { email, password, otp } }
  }
  if (form[0] === 'access_token') return { credential: { access_token: message.access_token as string } }
  return { credential: { refresh_token: message.refresh_token as string } }
}
