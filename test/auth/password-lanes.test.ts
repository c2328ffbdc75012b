// The password lanes are the process's (PROTOCOL.md section 11: one check per spare core): every registration of the
// plugin in one process shares them, in turns, so that two tenants' password storms take the cores one would.
import t, { type Test } from 'tap'
import { availableParallelism } from 'node:os'
import { PasswordChecks, PasswordLanes } from '../../lib/auth/password-checks.js'
import { build, until, within } from '../helpers.js'

const lanes = Math.max(1, availableParallelism() - 1)

t.test('two queues on one lane take turns, a check each', async t => {
  const shared = new PasswordLanes(1)
  const first = new PasswordChecks({ limit: 10, perAddress: 10 }, shared)
  const second = new PasswordChecks({ limit: 10, perAddress: 10 }, shared)
  const started: string[] = []
  const releases: Array<() => void> = []
  const check = (name: string) => () => {
    started.push(name)
    return new Promise<string>(resolve => releases.push(() => resolve(name)))
  }
  const results = [
    first.run('a', check('first 1')), first.run('a', check('first 2')), first.run('b', check('first 3')),
    second.run('a', check('second 1')), second.run('a', check('second 2'))
  ]
  t.same(started, ['first 1'], 'one lane for both: the second queue\'s checks wait too')
  while (releases.length > 0) {
    releases.shift()!()
    await new Promise(resolve => setImmediate(resolve))
  }
  t.same(await Promise.all(results), ['first 1', 'first 2', 'first 3', 'second 1', 'second 2'])
  t.same(started, ['first 1', 'first 2', 'second 1', 'first 3', 'second 2'], 'the queues in turn, then the addresses within each')
})

/** An app whose password checks wait for `release`, counted as they start. */
async function heldChecks (t: Test, limit: number) {
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  const checks = { started: 0 }
  const { app } = await build(t, {
    heartbeat: { enabled: false },
    passwordQueue: { limit, perAddress: limit },
    verifyCredentials: async () => {
      checks.started++
      await held
      return null
    }
  })
  let logins = 0
  const login = () => app.realtime.login({ email: `user${logins++}@example.com`, password: 'wrong' }).catch((err: { code: string }) => err.code)
  return { login, checks, release }
}

t.test('two registrations in one process share its lanes: the second\'s checks wait while the first\'s take them all', async t => {
  const first = await heldChecks(t, 10)
  const second = await heldChecks(t, 2)
  const running = Array.from({ length: lanes }, () => first.login())
  await within(until(() => first.checks.started === lanes), 'the first app\'s checks to take every lane')
  // The second app's: two wait in its queue and the one more is refused, none running.
  const waiting = [second.login(), second.login()]
  t.equal(await within(second.login(), 'the refusal past the second app\'s queue'), 'SERVICE_UNAVAILABLE')
  t.equal(second.checks.started, 0, 'every lane is the first app\'s: none for the second')
  first.release()
  second.release()
  t.same(await Promise.all(running), Array(lanes).fill('INVALID_CREDENTIALS'))
  t.same(await Promise.all(waiting), ['INVALID_CREDENTIALS', 'INVALID_CREDENTIALS'], 'the lanes freed, the second app\'s checks ran')
  t.equal(second.checks.started, 2)
})
