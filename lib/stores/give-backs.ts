// What a login or refresh took from a store before it failed, its client told that nothing happened (a refresh token's
// rotation, a one-time code's step), is given back, so that the client's retry meets it as it was. The store is often
// why the call failed: a give-back that fails is tried again every second for a while, and a call on this process that
// would meet what it gives back waits for it (`settle`). One try at a time each: a store that never answers (a hung
// Redis behind a client with no command timeout) holds one call per give-back, not one more every second.
import { deadline } from '../deadline.js'

/** How often a give-back that failed is tried again. */
const retryMs = 1_000

/**
 * How many give-backs one owner, and all of them, may have pending: past either, a failed call's is dropped (its
 * client's retry may then meet what it took). One owner's many are one client's concurrent calls, which a client
 * that is not broken or hostile never makes; all of them, the failed calls of a long outage.
 */
const maxPerOwner = 16
const maxPending = 10_000

interface Pending {
  giveBack: () => Promise<void>
  /**
   * When it is no longer tried (the monotonic clock, as its retries: a wall clock stepped forward, a resume from suspend,
   * would have dropped it before its store came back): what it gives back is of no use any more.
   */
  until: number
  /** The try under way, until the store answers it, whenever that is. */
  trying: Promise<boolean> | null
}

export class GiveBacks {
  /** By what they give back to (a session, a user's codes): a give-back each, one for each call that failed. */
  readonly #pending = new Map<string, Set<Pending>>()
  #count = 0
  #timer: NodeJS.Timeout | null = null
  #stopped = false
  readonly #tryWithinMs: number

  /** `tryWithinMs`: how long `settle` waits for a try before it counts as failed (a store that never answers). */
  constructor (tryWithinMs: number) {
    this.#tryWithinMs = tryWithinMs
  }

  /** Gives back now, then every second until it lands or `forMs` have passed. */
  add (owner: string, giveBack: () => Promise<void>, forMs: number): void {
    // The app closing: its stores are closing too.
    if (this.#stopped || this.#count === maxPending) return
    const owned = this.#pending.get(owner) ?? new Set()
    if (owned.size === maxPerOwner) return
    const entry: Pending = { giveBack, until: performance.now() + forMs, trying: null }
    this.#pending.set(owner, owned.add(entry))
    this.#count++
    this.#try(owner, entry)
    this.#timer ??= setInterval(() => this.#retry(), retryMs).unref()
  }

  /**
   * Null when nothing is left to give back to `owner` (the caller goes on in the same turn). Else each is tried once
   * more now (or its try under way awaited), and the promise resolves once all have landed, or rejects, at the latest
   * after `tryWithinMs` (the caller fails as the store being away does, rather than meet what was not given back).
   */
  settle (owner: string): Promise<void> | null {
    const owned = this.#pending.get(owner)
    if (!owned) return null
    const tries = Array.from(owned, entry => deadline(this.#try(owner, entry), this.#tryWithinMs).catch(() => false))
    return Promise.all(tries).then((landed) => {
      if (landed.includes(false)) throw new Error('a failed call\'s give-back has not landed yet')
    })
  }

  stop (): void {
    this.#stopped = true
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
    this.#pending.clear()
    this.#count = 0
  }

  /** Each give-back whose try has failed is tried again; one past its time is dropped, its try answered or not. */
  #retry (): void {
    const now = performance.now()
    for (const [owner, owned] of this.#pending) {
      for (const entry of owned) {
        if (now >= entry.until) this.#forget(owner, entry)
        else if (entry.trying === null) this.#try(owner, entry)
      }
    }
  }

  /** The try under way, or a new one; resolves whether it has landed, once the store has answered. */
  #try (owner: string, entry: Pending): Promise<boolean> {
    entry.trying ??= Promise.resolve().then(entry.giveBack).then(() => true, () => false).then((landed) => {
      entry.trying = null
      if (landed) this.#forget(owner, entry)
      return landed
    })
    return entry.trying
  }

  #forget (owner: string, entry: Pending): void {
    const owned = this.#pending.get(owner)
    if (!owned?.delete(entry)) return
    this.#count--
    if (owned.size > 0) return
    this.#pending.delete(owner)
    if (this.#pending.size === 0 && this.#timer) {
      clearInterval(this.#timer)
      this.#timer = null
    }
  }
}
