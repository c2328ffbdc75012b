// The Lua side of a write's deadline (lib/auth/write-deadline.ts): a script that writes first calls
// `refuseLate(deadline)`, which compares the deadline (epoch milliseconds, the app's clock) with Redis's own clock and
// fails the script, before it changes anything, once the deadline has passed. A command the app gave up on, still
// queued when Redis comes back (a pause, a long fork), then does nothing.
export const refuseLateLua = `
local function refuseLate (deadline)
  local time = redis.call('TIME')
  if tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) > tonumber(deadline) then
    error({ err = 'DEADLINE the write\\'s deadline passed before it could act' })
  end
end
`
