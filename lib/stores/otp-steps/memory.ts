// Each user's last accepted TOTP step, in this process, and the claim that made it (none once given back).
import type { OtpSteps } from './contract.js'

export class MemoryOtpSteps implements OtpSteps {
  readonly #last = new Map<string, { step: number, nonce: string | null }>()

  /** Whether `claim` would take it: a step newer than the user's last, or the claim that made that one, made again. */
  claimable (user: string, step: number, nonce: string): boolean {
    const last = this.#last.get(user)
    return last === undefined || step > last.step || (step === last.step && nonce === last.nonce)
  }

  async claim (user: string, step: number, nonce: string): Promise<boolean> {
    if (!this.claimable(user, step, nonce)) return false
    this.#last.set(user, { step, nonce })
    return true
  }

  async giveBack (user: string, step: number, nonce: string): Promise<void> {
    const last = this.#last.get(user)
    if (last?.step === step && last.nonce === nonce) this.#last.set(user, { step: step - 1, nonce: null })
  }
}
