// Revocations in one process: the ones it knows were made here, after its start. An earlier run's, made with the same
// secret, died with it: its tokens are known from its start on only (`Revocations.predates`). Registrations of the
// plugin in this process that verify with one key take each other's tokens: they share one feed, and one set, which
// goes with the last of them (a restart, to the next one).
import { Revocations } from '../../auth/revocations.js'
import type { RevocationFeed, RevokedHandler } from './contract.js'

/** The registrations of one key: what they revoked, since the first of them started, and their handlers. */
interface SharedRevocations {
  readonly revocations: Revocations
  readonly startedAt: number
  readonly handlers: Set<RevokedHandler>
  /** Feeds made and not stopped yet: the last one's stop lets the set go. */
  feeds: number
}

/** By the key they verify with (a digest of the secret, never the secret; or the app's @fastify/jwt instance). */
const shared = new Map<unknown, SharedRevocations>()

/** How many sets registrations hold: none once every registration has closed. */
export function memoryFeedsInUse (): number {
  return shared.size
}

export class MemoryRevocationFeed implements RevocationFeed {
  readonly #key: unknown
  readonly #shared: SharedRevocations
  #onRevoked: RevokedHandler | undefined
  #stopped = false

  /** `key`: what the registration verifies tokens with; those with one key share their revocations. */
  constructor (key: unknown = {}) {
    let known = shared.get(key)
    if (known === undefined) {
      known = { revocations: new Revocations(), startedAt: Date.now(), handlers: new Set(), feeds: 0 }
      shared.set(key, known)
    }
    known.feeds++
    this.#key = key
    this.#shared = known
  }

  get revocations (): Revocations {
    return this.#shared.revocations
  }

  async publish (session: string, until: number): Promise<void> {
    for (const onRevoked of this.#shared.handlers) onRevoked(session, until)
  }

  // The set is the first registration's: one that starts later knows every revocation made since then.
  start (onRevoked: RevokedHandler, onLoaded: (knownSince: number) => void): void {
    this.#onRevoked = onRevoked
    this.#shared.handlers.add(onRevoked)
    onLoaded(this.#shared.startedAt)
  }

  stop (): void {
    if (this.#stopped) return
    this.#stopped = true
    if (this.#onRevoked) this.#shared.handlers.delete(this.#onRevoked)
    if (--this.#shared.feeds === 0) shared.delete(this.#key)
  }
}
