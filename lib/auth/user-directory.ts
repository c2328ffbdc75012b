// The embedded user directory: the default `verifyCredentials`. Passwords are kept only as argon2id hashes, and
// hashing runs on libuv's thread pool, never on the event loop (the plugin's password-check queue gives checks turns).
import { createHash, randomUUID } from 'node:crypto'
import argon2 from 'argon2'
import type { Secret } from 'otpauth'
import { otpKey, totpStep } from './totp.js'
import { normalizeEmail } from './emails.js'
import { maxEmailLength, maxPasswordLength } from './credential-bounds.js'
import type { OtpSteps } from '../stores/otp-steps/contract.js'
import { MemoryOtpSteps } from '../stores/otp-steps/memory.js'
import { InvalidConfigError } from '../errors.js'
import type { CredentialCheck, DirectoryUser, Identity, PasswordCredential, UserDirectoryOptions } from '../../types/index.js'

// OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
const owaspHashing = { memoryCost: 19_456, timeCost: 2 }

/** argon2's own floors: 8 KiB per lane, one pass. */
function checkedCost (name: 'memoryCost' | 'timeCost', value: number, least: number): number {
  if (!Number.isSafeInteger(value) || value < least) {
    throw new InvalidConfigError(`passwordHashing.${name} must be an integer of at least ${least} (got ${value})`)
  }
  return value
}

/** A stable id from the email: every process seeded with the same users agrees on their ids. */
function userIdOf (email: string): string {
  const hex = createHash('sha256').update(`fastify-realtime:${email}`).digest('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`
}

interface Entry {
  identity: Identity
  passwordHash: string
  otpKey: Secret | null
}

export class UserDirectory {
  readonly #users = new Map<string, Entry>()
  // The emails and ids taken, before the hash's await: the plugin adds its users all at once.
  readonly #emails = new Set<string>()
  readonly #emailsById = new Map<string, string>()
  // Unknown emails are checked against this, so a wrong email costs the same time as a wrong password.
  #decoyHash: Promise<string> | null = null
  #otpSteps: OtpSteps = new MemoryOtpSteps()
  readonly #hashOptions: { type: typeof argon2.argon2id, memoryCost: number, timeCost: number, parallelism: 1 }

  constructor (options: UserDirectoryOptions = {}) {
    const { memoryCost = owaspHashing.memoryCost, timeCost = owaspHashing.timeCost } = options.passwordHashing ?? {}
    this.#hashOptions = {
      type: argon2.argon2id,
      memoryCost: checkedCost('memoryCost', memoryCost, 8),
      timeCost: checkedCost('timeCost', timeCost, 1),
      parallelism: 1
    }
  }

  /**
   * Where each user's last accepted TOTP step is kept (default: in this process). The plugin puts it on its Redis,
   * so that a code is used once across processes.
   */
  useOtpSteps (otpSteps: OtpSteps): void {
    this.#otpSteps = otpSteps
  }

  async add (user: DirectoryUser): Promise<Identity> {
    checkUser(user)
    const email = normalizeEmail(user.email)
    // Derived from the spelling ids were always derived from (trimmed, lowercased), not the normalised one: sessions
    // and revocations from before normalisation, and processes not yet upgraded, go by the same id.
    const id = user.id ?? userIdOf(user.email.trim().toLowerCase())
    // Added again, a user would silently take the first one's place (password, role); two emails of one id would be
    // one identity (one's socket the other's, a revocation of one ending both).
    if (this.#emails.has(email)) throw new InvalidConfigError(`${email} is already in the directory: add each user once`)
    const holder = this.#emailsById.get(id)
    if (holder !== undefined) throw new InvalidConfigError(`${email} has the id of ${holder}: give each user an id of their own`)
    this.#emails.add(email)
    this.#emailsById.set(id, email)
    // Beside the first user's hash, not in the first check of an unknown email: that one would cost two hashes, and
    // tell the email unknown.
    this.#decoy()
    const identity: Identity = { user: id, role: user.role ?? null, admin: user.admin === true }
    this.#users.set(email, {
      identity,
      passwordHash: await argon2.hash(user.password, this.#hashOptions),
      otpKey: user.otpSecret == null ? null : otpKey(String(user.otpSecret))
    })
    return identity
  }

  /** The decoy's hash, made once, at this directory's cost. */
  #decoy (): Promise<string> {
    if (this.#decoyHash === null) {
      this.#decoyHash = argon2.hash(randomUUID(), this.#hashOptions)
      // Made before any check awaits it: its failure (none is expected, the cost is checked) is that check's.
      Promise.allSettled([this.#decoyHash])
    }
    return this.#decoyHash
  }

  get size (): number {
    return this.#users.size
  }

  /** The email of a user id, for the reference server's `me`. */
  emailOf (user: string): string | null {
    return this.#emailsById.get(user) ?? null
  }

  readonly verifyCredentials = async ({ email, password, otp }: PasswordCredential, check?: CredentialCheck): Promise<Identity | null> => {
    const entry = this.#users.get(normalizeEmail(email))
    if (!entry) {
      const decoyHash = await this.#decoy()
      await argon2.verify(decoyHash, password)
      return null
    }
    if (!await argon2.verify(entry.passwordHash, password)) return null
    if (entry.otpKey) {
      const step = typeof otp === 'string' ? totpStep(entry.otpKey, otp) : null
      if (step === null) return null
      const { user } = entry.identity
      const nonce = randomUUID()
      // The login failed after this check for want of a store or a hook, or the claim's answer never came (it may have
      // landed): the code is given back, so that the client's retry with it works. A claim that did not land, or lost
      // to a replay, has nothing to give back: the give-back names this claim.
      check?.signal.addEventListener('abort', () => {
        Promise.allSettled([this.#otpSteps.giveBack(user, step, nonce)])
      }, { once: true })
      // A code is good once: its replay, or an older code, fails exactly as a wrong one does.
      if (!await this.#otpSteps.claim(user, step, nonce)) return null
    }
    return { ...entry.identity }
  }
}

/**
 * Users to add, each named by its index in `list` (`users[2]`): a user listed twice, by email or by id, is said here
 * with both indexes (the directory refuses them too, naming the emails).
 */
export function checkUsers (users: readonly DirectoryUser[], list: string): void {
  const listed = new Map<string, number>()
  const ids = new Map<string, number>()
  users.forEach((user, index) => {
    checkUser(user, `${list}[${index}]`)
    const email = normalizeEmail(user.email)
    if (listed.has(email)) throw new InvalidConfigError(`${list}[${index}] has the email of ${list}[${listed.get(email)}]: list each user once`)
    listed.set(email, index)
    if (user.id == null) return
    if (ids.has(user.id)) throw new InvalidConfigError(`${list}[${index}] has the id of ${list}[${ids.get(user.id)}]: give each user an id of their own`)
    ids.set(user.id, index)
  })
}

/** A user to add; a password or a TOTP secret is never repeated in the error. */
function checkUser (user: DirectoryUser, name = 'the user'): void {
  if (typeof user !== 'object' || user === null) throw new InvalidConfigError(`${name} must be a user: { email, password }`)
  if (typeof user.email !== 'string' || user.email.trim() === '') throw new InvalidConfigError(`${name}'s email must be an email address`)
  if (typeof user.password !== 'string' || user.password === '') throw new InvalidConfigError(`${name}'s password must be a non-empty string`)
  // Past the bounds every login is refused (credential-bounds.ts): such a user could never log in.
  if (normalizeEmail(user.email).length > maxEmailLength) throw new InvalidConfigError(`${name}'s email must be at most ${maxEmailLength} characters once normalised: no login could name it`)
  if (user.password.length > maxPasswordLength) throw new InvalidConfigError(`${name}'s password must be at most ${maxPasswordLength} characters: no login could carry it`)
  // An id is the identity sockets and revocations go by: a number from a JSON file would be another key than its string.
  if (user.id != null && (typeof user.id !== 'string' || user.id === '')) throw new InvalidConfigError(`${name}'s id must be a non-empty string`)
  // Unset, as null is for the plugin's options; an empty string is a secret, refused below, not a user without one.
  if (user.otpSecret == null) return
  try {
    otpKey(String(user.otpSecret))
  } catch {
    throw new InvalidConfigError(`${name}'s otpSecret must be a base32 TOTP secret of 16 characters or more`)
  }
}
