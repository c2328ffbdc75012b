// Each user's last accepted TOTP step, in this process, and the claim that made it (none once given back).
import type { OtpSteps } from './contract.js'

export class MemoryOtpSteps implements OtpSteps {
  readonly #last = new Map<string, { step: number, nonce: string | null }>()

  async claim (user: string, step: number, nonce: string): Promise<boolean> {
    const last = this.#last.get(user)
    if (last !== undefined && step <= last.step) return step === last.step && nonce === last.nonce
    this.#last.set(user, { step, nonce })
    return true
  }

  async giveBack (user: string, step: number, nonce: string): Promise<void> {
    const last = this.#last.get(user)
    if (last?.step === step && last.nonce === nonce) this.#last.set(user, { step: step - 1, nonce: null })
  }
}
