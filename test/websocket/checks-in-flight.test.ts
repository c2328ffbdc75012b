// The credential checks in flight, which the app's close waits for (README, "Shutting down").
import t from 'tap'
import { ChecksInFlight } from '../../lib/connection/checks-in-flight.js'

/** Whether `promise` has resolved, once the promises queued before this call have run. */
async function resolved (promise: Promise<void>): Promise<boolean> {
  const later = new Promise<boolean>(resolve => setImmediate(resolve, false))
  return await Promise.race([promise.then(() => true), later])
}

t.test('a target\'s checks are settled once the last of them has answered, and at once for one with none', async t => {
  const checks = new ChecksInFlight()
  const target = {}
  t.equal(checks.settled(target), null, 'none started: nothing to wait for')
  checks.start(target)
  checks.start(target)
  const settled = checks.settled(target)!
  t.equal(checks.settled(target), settled, 'everyone waiting is told by the same promise')
  checks.end(target)
  t.equal(await resolved(settled), false, 'one check still in flight')
  checks.end(target)
  t.equal(await resolved(settled), true, 'the last one answered')
  t.equal(checks.settled(target), null)
})

t.test('a target gone with its checks in flight is waited for no more', async t => {
  const checks = new ChecksInFlight()
  const target = {}
  checks.start(target)
  const settled = checks.settled(target)!
  checks.forget(target)
  t.equal(await resolved(settled), true)
  t.equal(checks.settled(target), null)
  checks.forget(target) // gone twice, or never checked: nothing happens
})
