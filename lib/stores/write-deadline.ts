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

/**
 * The same check inside a Redis script, against Redis's own clock, before the script changes anything: a command the
 * app gave up on, still queued when Redis comes back (a pause, a long fork), then does nothing. It also gives scripts
 * `redisNow`: Redis's clock in epoch milliseconds, the one that expires keys.
 */
export const refuseLateLua = `
local function redisNow ()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local function refuseLate (deadline)
  if redisNow() > tonumber(deadline) then
    error({ err = 'DEADLINE the write\\'s deadline passed before it could act' })
  end
end
`
