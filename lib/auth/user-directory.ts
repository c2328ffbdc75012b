// The embedded user directory: the default `verifyCredentials`. Passwords are kept only as argon2id hashes, and
// hashing runs on libuv's thread pool, never on the event loop.
import { createHash, randomUUID } from 'node:crypto'
import { availableParallelism } from 'node:os'
import argon2 from 'argon2'
import { decodeBase32, verifyTotp } from './totp.js'
import type { DirectoryUser, Identity, PasswordCredential } from '../../types/index.js'

// OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
const hashOptions = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const

/**
 * Password checks take turns: each keeps a core busy for tens of milliseconds, and as many at once as libuv has
 * threads (4) would leave the event loop no core of its own (50 logins at once on two cores made pings 10x slower).
 * One core stays the loop's; the checks queue, round-robin, on one lane per other core.
 */
const hashLanes: Promise<unknown>[] = Array.from({ length: Math.max(1, availableParallelism() - 1) }, () => Promise.resolve())
let nextLane = 0
const settled = () => {}

function inTurn<T> (check: () => Promise<T>): Promise<T> {
  const lane = nextLane
  nextLane = (nextLane + 1) % hashLanes.length
  const result = hashLanes[lane].then(check)
  hashLanes[lane] = result.then(settled, settled)
  return result
}

/** A stable id from the email: every process seeded with the same users agrees on their ids. */
function userIdOf (email: string): string {
  const hex = createHash('sha256').update(`fastify-realtime:${email}`).digest('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`
}

interface Entry {
  identity: Identity
  passwordHash: string
  otpKey: Buffer | null
}

export class UserDirectory {
  readonly #users = new Map<string, Entry>()
  // Unknown emails are checked against this, so a wrong email costs the same time as a wrong password.
  #decoyHash: Promise<string> | null = null

  async add (user: DirectoryUser): Promise<Identity> {
    const email = user.email.trim().toLowerCase()
    const identity: Identity = { user: user.id ?? userIdOf(email), role: user.role ?? null, admin: user.admin === true }
    this.#users.set(email, {
      identity,
      passwordHash: await argon2.hash(user.password, hashOptions),
      otpKey: user.otpSecret ? decodeBase32(user.otpSecret) : null
    })
    return identity
  }

  get size (): number {
    return this.#users.size
  }

  /** The email of a user id, for the reference server's `me`. */
  emailOf (user: string): string | null {
    for (const [email, entry] of this.#users) {
      if (entry.identity.user === user) return email
    }
    return null
  }

  readonly verifyCredentials = async ({ email, password, otp }: PasswordCredential): Promise<Identity | null> => {
    const entry = this.#users.get(email.trim().toLowerCase())
    if (!entry) {
      this.#decoyHash ??= argon2.hash(randomUUID(), hashOptions)
      const decoyHash = await this.#decoyHash
      await inTurn(() => argon2.verify(decoyHash, password))
      return null
    }
    if (!await inTurn(() => argon2.verify(entry.passwordHash, password))) return null
    if (entry.otpKey && !(typeof otp === 'string' && verifyTotp(entry.otpKey, otp))) return null
    return { ...entry.identity }
  }
}
