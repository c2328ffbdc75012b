// A store write carries the time after which its caller has answered SERVICE_UNAVAILABLE: past it, it must not act,
// or the client's retry would meet a change it was told did not happen (a rotated token counted as reuse).
export class DeadlinePassedError extends Error {
  constructor () {
    super('the write\'s deadline passed before it could act')
    this.name = 'DeadlinePassedError'
  }
}

/** Throws when `deadline` (epoch milliseconds) has passed: the write that asks must not act. */
export function refuseLate (deadline: number): void {
  if (Date.now() > deadline) throw new DeadlinePassedError()
}
