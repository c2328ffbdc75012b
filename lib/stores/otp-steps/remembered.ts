// The steps this process claimed on a shared store (Redis), remembered here too: a Redis restarted empty, or from a
// snapshot older than the claim, or a replica promoted before it had it, has forgotten them, and would take again a code
// this process accepted a moment before. A claim the memory refuses is one the store, as it was, refused too.
import type { OtpSteps } from './contract.js'
import { MemoryOtpSteps } from './memory.js'

export class RememberedOtpSteps implements OtpSteps {
  readonly #shared: OtpSteps
  /** One entry per user of the directory who logged in with a code here: no more than it holds. */
  readonly #here = new MemoryOtpSteps()

  constructor (shared: OtpSteps) {
    this.#shared = shared
  }

  async claim (user: string, step: number, nonce: string): Promise<boolean> {
    if (!this.#here.claimable(user, step, nonce)) return false
    const claimed = await this.#shared.claim(user, step, nonce)
    // Two claims of this process at once, for two steps, may be answered in either order: the newer stays.
    if (claimed) await this.#here.claim(user, step, nonce)
    return claimed
  }

  async giveBack (user: string, step: number, nonce: string): Promise<void> {
    await this.#here.giveBack(user, step, nonce)
    await this.#shared.giveBack(user, step, nonce)
  }
}
