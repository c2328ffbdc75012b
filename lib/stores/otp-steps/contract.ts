// Which TOTP time step each user's codes were last accepted at, so that a code is accepted once per user: one number
// per user, in memory for one process, on Redis for several.
export interface OtpSteps {
  /**
   * Records `step` as the user's last accepted one when it is newer; resolves whether it was (false: a replay). `nonce`
   * (random, one per check) names the claim: the same claim made again is answered true, as Redis is sent a command
   * again when its connection dropped before the answer.
   */
  claim (user: string, step: number, nonce: string): Promise<boolean>
  /**
   * Makes `step` claimable again, when the claim `nonce` made is still the user's last: a login that used it up failed
   * after its check.
   */
  giveBack (user: string, step: number, nonce: string): Promise<void>
}
