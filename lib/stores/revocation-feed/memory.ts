// Revocations in one process: every revocation there is was made here, after the start.
import type { RevocationFeed, RevokedHandler } from './contract.js'

export class MemoryRevocationFeed implements RevocationFeed {
  // Set by `start`, which the plugin calls at registration, before anything can be revoked.
  #onRevoked!: RevokedHandler

  async publish (session: string, until: number): Promise<void> {
    this.#onRevoked(session, until)
  }

  start (onRevoked: RevokedHandler, onLoaded: () => void): void {
    this.#onRevoked = onRevoked
    onLoaded()
  }

  // Loaded as it starts: nothing to try again.
  stop (): void {}
}
