// Each user's last accepted TOTP step, in this process.
import type { OtpSteps } from './contract.js'

export class MemoryOtpSteps implements OtpSteps {
  readonly #last = new Map<string, number>()

  async claim (user: string, step: number): Promise<boolean> {
    const last = this.#last.get(user)
    if (last !== undefined && step <= last) return false
    this.#last.set(user, step)
    return true
  }

  async giveBack (user: string, step: number): Promise<void> {
    if (this.#last.get(user) === step) this.#last.set(user, step - 1)
  }
}
