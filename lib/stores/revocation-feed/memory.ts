// Revocations in one process: the ones it knows were made here, after its start. An earlier run's, made with the same
// secret, died with it: its tokens are known from its start on only (`Revocations.predates`).
import type { RevocationFeed, RevokedHandler } from './contract.js'

export class MemoryRevocationFeed implements RevocationFeed {
  // Set by `start`, which the plugin calls at registration, before anything can be revoked.
  #onRevoked!: RevokedHandler

  async publish (session: string, until: number): Promise<void> {
    this.#onRevoked(session, until)
  }

  start (onRevoked: RevokedHandler, onLoaded: (knownSince: number) => void): void {
    this.#onRevoked = onRevoked
    onLoaded(Date.now())
  }

  // Loaded as it starts: nothing to try again.
  stop (): void {}
}
