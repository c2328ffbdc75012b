// How a revocation reaches every process: the memory feed for one process, the Redis feed for several.
import type { Revocations } from '../../auth/revocations.js'

/** Called once per revoked session on every process, with when its last access token expires. */
export type RevokedHandler = (session: string, until: number) => void

export interface RevocationFeed {
  /**
   * What this process knows is revoked, filled by `start`'s handler: one set for the registrations that share the feed's
   * revocations (in memory, those that verify with one key), each of which adds what it hears.
   */
  readonly revocations: Revocations
  /** Announces a revocation; every process's handler sees it, this one's included. */
  publish (session: string, until: number): Promise<void>
  /**
   * Starts delivering revocations (past ones still in force too, where the feed keeps them), and calls `onLoaded`
   * once this process knows every revocation in force and hears every new one (again, maybe, after an outage), with
   * since when (epoch milliseconds) it knows them: -Infinity for a feed that keeps them for processes started later
   * (Redis), the process's start for one whose revocations die with it (memory).
   */
  start (onRevoked: RevokedHandler, onLoaded: (knownSince: number) => void): void
  /** Stops what `start` keeps trying (a replay that failed), at close. */
  stop (): void
}
