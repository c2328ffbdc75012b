// Which TOTP time step each user's codes were last accepted at, so that a code is accepted once per user: one number
// per user, in memory for one process, on Redis for several.
export interface OtpSteps {
  /** Records `step` as the user's last accepted one when it is newer; resolves whether it was (false: a replay). */
  claim (user: string, step: number): Promise<boolean>
  /** Makes `step` claimable again, when it is still the user's last: a login that used it up failed after its check. */
  giveBack (user: string, step: number): Promise<void>
}
