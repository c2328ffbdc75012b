// Which TOTP time step each user's codes were last accepted at, so that a code is accepted once per user: one number
// per user, in memory for one process, on Redis (lib/redis/otp-steps.ts) for several.
export interface OtpSteps {
  /** Records `step` as the user's last accepted one when it is newer; resolves whether it was (false: a replay). */
  claim (user: string, step: number): Promise<boolean>
}

export class MemoryOtpSteps implements OtpSteps {
  readonly #last = new Map<string, number>()

  async claim (user: string, step: number): Promise<boolean> {
    const last = this.#last.get(user)
    if (last !== undefined && step <= last) return false
    this.#last.set(user, step)
    return true
  }
}
