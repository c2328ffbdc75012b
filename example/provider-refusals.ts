// Why the provider's tokens are refused, told to the operator: each refusal at debug (rate-limited; its reason, never
// the token), and one warning when none of the first tokens verifies, naming the commonest reason. A JWT_ISSUER one
// slash off the provider's, or JWT_AUDIENCE set to the client's id, refuses every token; silent, it looks like the
// provider's fault.
import type { FastifyBaseLogger } from 'fastify'
import { RateLimitedLog } from './rate-limited-log.js'

// Enough tokens that a few bad ones (a client's stale or forged token) are not taken for a setting that refuses all.
const firstTokens = 20

export class ProviderRefusals {
  readonly #log: FastifyBaseLogger
  readonly #lines = new RateLimitedLog('a provider token was refused')
  /** Of the first tokens: how many were seen, and each reason's count and last words. Nothing past them. */
  #seen = 0
  #verified = false
  readonly #reasons = new Map<string, { count: number, detail: string }>()

  constructor (log: FastifyBaseLogger) {
    this.#log = log
  }

  verified (): void {
    this.#seen++
    this.#verified = true
  }

  /** `reason`: a code (`ISSUER`); `detail`, what it was (`iss "x" is not JWT_ISSUER "y"`). */
  refused (reason: string, detail: string): void {
    this.#lines.debug(this.#log, { reason, detail })
    if (this.#verified || this.#seen === firstTokens) return
    this.#seen++
    const counted = this.#reasons.get(reason) ?? { count: 0, detail }
    this.#reasons.set(reason, { count: counted.count + 1, detail })
    if (this.#seen < firstTokens) return
    const [commonest, { count, detail: words }] = [...this.#reasons].sort(([, a], [, b]) => b.count - a.count)[0]
    this.#log.warn({ reason: commonest, count, detail: words },
      `none of the first ${firstTokens} provider tokens verified; ${count} of them: ${words}. Check JWT_ISSUER, JWT_AUDIENCE and JWKS_URL against the provider's tokens`)
  }
}
