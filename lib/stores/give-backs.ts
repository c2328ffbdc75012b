// What a login or refresh took from a store before it failed, its client told that nothing happened (a refresh token's
// rotation, a one-time code's step), is given back, so that the client's retry meets it as it was. The store is often
// why the call failed: a give-back that fails is tried again every second for a while, and a call on this process that
// would meet what it gives back waits for it (`settle`).
import { deadline } from '../deadline.js'

/** How often a give-back that failed is tried again. */
const retryMs = 1_000

interface Pending {
  giveBack: () => Promise<void>
  /** Epoch milliseconds after which it is no longer tried: what it gives back is of no use any more. */
  until: number
  trying: Promise<boolean> | null
}

export class GiveBacks {
  /** By what they give back to (a session, a user's codes): a give-back each, one for each call that failed. */
  readonly #pending = new Map<string, Set<Pending>>()
  #timer: NodeJS.Timeout | null = null
  #stopped = false
  readonly #tryWithinMs: number

  /** `tryWithinMs`: how long one try may take before it counts as failed (a store that never answers). */
  constructor (tryWithinMs: number) {
    this.#tryWithinMs = tryWithinMs
  }

  /** Gives back now, then every second until it lands or `forMs` have passed. */
  add (owner: string, giveBack: () => Promise<void>, forMs: number): void {
    // The app closing: its stores are closing too.
    if (this.#stopped) return
    const entry: Pending = { giveBack, until: Date.now() + forMs, trying: null }
    const owned = this.#pending.get(owner) ?? new Set()
    this.#pending.set(owner, owned.add(entry))
    this.#try(owner, entry)
    this.#timer ??= setInterval(() => {
      for (const [owner, owned] of this.#pending) for (const entry of owned) this.#try(owner, entry)
    }, retryMs).unref()
  }

  /**
   * Null when nothing is left to give back to `owner` (the caller goes on in the same turn). Else each is tried once
   * more now, and the promise resolves once all have landed, or rejects (the caller fails as the store being away
   * does, rather than meet what was not given back).
   */
  settle (owner: string): Promise<void> | null {
    const owned = this.#pending.get(owner)
    if (!owned) return null
    return Promise.all(Array.from(owned, entry => this.#try(owner, entry))).then((landed) => {
      if (landed.includes(false)) throw new Error('a failed call\'s give-back has not landed yet')
    })
  }

  stop (): void {
    this.#stopped = true
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = null
    this.#pending.clear()
  }

  /** One try at a time per give-back; resolves whether it has landed. */
  #try (owner: string, entry: Pending): Promise<boolean> {
    entry.trying ??= deadline(Promise.resolve().then(entry.giveBack), this.#tryWithinMs).then(() => true, () => false)
      .then((landed) => {
        entry.trying = null
        if (landed || Date.now() >= entry.until) this.#forget(owner, entry)
        return landed
      })
    return entry.trying
  }

  #forget (owner: string, entry: Pending): void {
    const owned = this.#pending.get(owner)
    if (!owned?.delete(entry) || owned.size > 0) return
    this.#pending.delete(owner)
    if (this.#pending.size === 0 && this.#timer) {
      clearInterval(this.#timer)
      this.#timer = null
    }
  }
}
