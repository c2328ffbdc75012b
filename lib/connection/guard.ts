// The connection guard: the one owner of a socket's accountability and its timers. It knows nothing of frames;
// the endpoint adapter tells it what arrived and renders what it decides.
import type { AuthSuccess } from '../auth/authenticator.js'
import { authenticatedAccountability, publicAccountability, type ClientInfo } from './accountability.js'
import type { Accountability, AuthMode } from '../../types/index.js'

/** handshake: waiting for the first auth; open: serving; reauth: credential gone, waiting for a new one. */
export type GuardPhase = 'handshake' | 'open' | 'reauth' | 'closed'

export type ExpiryCode = 'TOKEN_EXPIRED' | 'AUTH_REVOKED'

export interface GuardEvents {
  /** The credential ran out or was revoked: the guard is public already, and waiting for re-auth unless public. */
  onExpire (code: ExpiryCode): void
  /** Nobody authenticated in time: the adapter says so and closes. */
  onAuthTimeout (phase: 'handshake' | 'reauth'): void
}

export interface GuardOptions {
  authMode: AuthMode
  authTimeoutMs: number
  client: ClientInfo
  publicRole: string | null
  events: GuardEvents
}

// setTimeout holds at most 2^31-1 ms (24.8 days); later deadlines are reached in hops.
const longestTimeoutMs = 2 ** 31 - 1

// One callback for every socket's expiry timer, the guard its argument: a closure would live as long as the socket.
const expireGuard = (guard: ConnectionGuard) => guard.expire('TOKEN_EXPIRED')

export class ConnectionGuard {
  readonly authMode: AuthMode
  #accountability: Accountability
  #phase: GuardPhase
  #expiryTimer: NodeJS.Timeout | null = null
  #authTimer: NodeJS.Timeout | null = null
  readonly #options: GuardOptions

  constructor (options: GuardOptions, upgrade: AuthSuccess | null) {
    this.#options = options
    this.authMode = options.authMode
    this.#accountability = publicAccountability(options.publicRole, options.client)
    if (upgrade) {
      this.#phase = 'open'
      this.authenticate(upgrade)
    } else if (options.authMode === 'public') {
      this.#phase = 'open'
    } else {
      this.#phase = 'handshake'
      this.#waitForAuth('handshake')
    }
  }

  get accountability (): Accountability {
    return this.#accountability
  }

  get phase (): GuardPhase {
    return this.#phase
  }

  /** A credential was verified: it replaces the accountability and the expiry. */
  authenticate (success: AuthSuccess): void {
    if (this.#phase === 'closed') return
    this.#clearTimers()
    this.#accountability = authenticatedAccountability(success.identity, success.session, this.#options.client)
    this.#phase = 'open'
    if (success.expiresAt !== null) this.#expireAt(success.expiresAt)
  }

  /** A credential was refused: back to public. Answers whether the mode says the socket must close. */
  fail (): boolean {
    this.#dropToPublic()
    return this.authMode !== 'public'
  }

  /** The credential ran out (or its session ended): public, then the re-auth window unless public mode. */
  expire (code: ExpiryCode): void {
    this.#dropToPublic()
    if (this.authMode !== 'public') {
      this.#phase = 'reauth'
      this.#waitForAuth('reauth')
    }
    this.#options.events.onExpire(code)
  }

  /** The session behind the socket ended: treated as an expiry with its own code. */
  revoke (): void {
    if (this.#accountability.session !== undefined) this.expire('AUTH_REVOKED')
  }

  /** The socket is gone: no timer outlives it. */
  close (): void {
    this.#clearTimers()
    this.#phase = 'closed'
  }

  #dropToPublic (): void {
    this.#clearTimers()
    this.#accountability = publicAccountability(this.#options.publicRole, this.#options.client)
  }

  #expireAt (deadline: number): void {
    const delay = deadline - Date.now()
    this.#expiryTimer = delay > longestTimeoutMs
      ? setTimeout(() => this.#expireAt(deadline), longestTimeoutMs)
      : setTimeout(expireGuard, Math.max(0, delay), this)
  }

  #waitForAuth (phase: 'handshake' | 'reauth'): void {
    this.#authTimer = setTimeout(() => {
      this.#authTimer = null
      this.#options.events.onAuthTimeout(phase)
    }, this.#options.authTimeoutMs)
  }

  #clearTimers (): void {
    if (this.#expiryTimer) clearTimeout(this.#expiryTimer)
    if (this.#authTimer) clearTimeout(this.#authTimer)
    this.#expiryTimer = null
    this.#authTimer = null
  }
}
