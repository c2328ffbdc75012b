// Fake clocks for the tests: what a test would otherwise wait for in real time. Apart from helpers.ts so that unit
// tests take them without loading the plugin.
import FakeTimers, { type Clock, type FakeMethod } from '@sinonjs/fake-timers'
import type { Test } from 'tap'

/**
 * A fake clock for waits that nothing on the wire shows (a token's `exp`, an auth window, a TTL): it moves only when
 * the test ticks it, so the test waits for none of them. The default fakes what token expiries and auth windows run
 * on: `Date`, `setTimeout`/`clearTimeout` and `performance`. Install it before `build`: the plugin reads `Date.now`
 * once, at registration. Sockets, Redis and the thread pool keep real time. Uninstalled at the end of the test.
 */
export function fakeClock (t: Test, toFake: FakeMethod[] = ['Date', 'setTimeout', 'clearTimeout', 'performance'], now = Date.now()): Clock {
  // A timer set before the install (a socket of an earlier test still closing) is still cleared by its own.
  const clock = FakeTimers.install({ now, toFake, shouldClearNativeTimers: true })
  t.teardown(() => clock.uninstall())
  return clock
}

/** The next whole second, in seconds: the `exp` of a token that `stoppedDate`'s tick expires. */
export const nextSecond = () => Math.floor(Date.now() / 1000) + 1

/**
 * A fake `Date` alone, stopped `ms` before the next whole second, for expiries seen by clients that need real timers
 * (graphql-ws, the SDK, ticking subscriptions). A token whose `exp` is `nextSecond()` expires only once the test ticks
 * the Date past it, and then within `ms` of real time: the plugin's expiry timer is real, and looks at the Date again
 * every `ms` until it is there. Install it before `build`.
 */
export function stoppedDate (t: Test, ms = 20): Clock {
  return fakeClock(t, ['Date'], nextSecond() * 1000 - ms)
}

/** Waits, a turn of the event loop at a time (real turns: fake clocks leave setImmediate alone), until `done` holds. */
export async function until (done: () => boolean): Promise<void> {
  while (!done()) await new Promise(resolve => setImmediate(resolve))
}
