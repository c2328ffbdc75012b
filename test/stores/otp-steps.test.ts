// The one-time-code steps contract (lib/stores/otp-steps/contract.ts), run against memory and Redis: a user's step is
// claimed once, and only when newer than the last, by one process or several.
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import type { OtpSteps } from '../../lib/stores/otp-steps/contract.js'
import { MemoryOtpSteps } from '../../lib/stores/otp-steps/memory.js'
import { RedisOtpSteps } from '../../lib/stores/otp-steps/redis.js'
import { RedisCluster } from '../redis-cluster.js'
import { RedisServer } from '../redis-server.js'

/** `make` gives the steps of another process each time; `shared`: they share one backend (memory has one process). */
async function otpStepsContract (t: Test, make: () => OtpSteps, shared: boolean): Promise<void> {
  const steps = make()
  t.equal(await steps.claim('alice', 100), true, 'a first step is claimed')
  t.equal(await steps.claim('alice', 100), false, 'the same step again is a replay')
  t.equal(await steps.claim('alice', 99), false, 'an older step is a replay')
  t.equal(await steps.claim('alice', 101), true, 'a newer step is claimed')
  t.equal(await steps.claim('bob', 100), true, 'each user has their own')
  const both = await Promise.all([steps.claim('carol', 7), steps.claim('carol', 7)])
  t.same(both.sort(), [false, true], 'of two claims of one step at once, exactly one wins')
  await steps.giveBack('alice', 101)
  t.equal(await steps.claim('alice', 101), true, 'a step given back is claimed again')
  t.equal(await steps.claim('alice', 100), false, 'and the ones before it still are not')
  await steps.claim('alice', 102)
  await steps.giveBack('alice', 101)
  t.equal(await steps.claim('alice', 102), false, 'a step given back once a newer one was claimed changes nothing')
  await steps.giveBack('erin', 5)
  t.equal(await steps.claim('erin', 5), true, 'nor does one of a user without any')
  if (!shared) return
  const other = make()
  t.equal(await other.claim('alice', 101), false, 'a step claimed on one process is a replay on another')
  const across = await Promise.all([steps.claim('dave', 3), other.claim('dave', 3)])
  t.same(across.sort(), [false, true], 'of two claims of one step on two processes at once, exactly one wins')
}

t.test('memory', async t => {
  await otpStepsContract(t, () => new MemoryOtpSteps(), false)
})

t.test('Redis', async t => {
  const server = await RedisServer.start(t)
  const clients: Redis[] = []
  t.teardown(() => clients.forEach(client => client.disconnect()))
  await otpStepsContract(t, () => {
    const client = new Redis(server.url)
    clients.push(client)
    return new RedisOtpSteps(client, 'test:')
  }, true)
  for (const key of await clients[0]!.keys('test:*')) t.ok(await clients[0]!.pttl(key) > 0, `${key} expires`)
})

t.test('Redis Cluster', async t => {
  const cluster = await RedisCluster.start(t)
  await otpStepsContract(t, () => new RedisOtpSteps(cluster.client(t), 'test:'), true)
  t.same(await cluster.keys('test:*'), ['alice', 'bob', 'carol', 'dave', 'erin'].map(user => `test:{u:${user}}:otp-step`),
    'one key per user, under the user\'s hash tag')
})
