// One-time-code steps shared by processes (on Redis) whose give-backs are tried until they land, while the code they
// give back can still be used: a login that failed for want of the store fails so mostly while the store is away, when
// a single try would fail too and leave the client's code used up. A claim of the user's waits for them.
import type { GiveBacks } from '../give-backs.js'
import type { OtpSteps } from './contract.js'

/** A code is good for its step and the two around it (lib/auth/totp.ts): 90 s at most. */
const codeUsableMs = 3 * 30_000

const codesOf = (user: string) => `codes ${user}`

export function givenBackUntilLanded (steps: OtpSteps, giveBacks: GiveBacks): OtpSteps {
  return {
    async claim (user, step, nonce) {
      await giveBacks.settle(codesOf(user))
      return await steps.claim(user, step, nonce)
    },
    async giveBack (user, step, nonce) {
      giveBacks.add(codesOf(user), () => steps.giveBack(user, step, nonce), codeUsableMs)
    }
  }
}
