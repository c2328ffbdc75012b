// The one-time-code steps contract (lib/stores/otp-steps/contract.ts), run against memory and Redis: a user's step is
// claimed once, and only when newer than the last, by one process or several.
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import type { OtpSteps } from '../../lib/stores/otp-steps/contract.js'
import { MemoryOtpSteps } from '../../lib/stores/otp-steps/memory.js'
import { RedisOtpSteps } from '../../lib/stores/otp-steps/redis.js'
import { RememberedOtpSteps } from '../../lib/stores/otp-steps/remembered.js'
import { refuseLateLua } from '../../lib/stores/write-deadline.js'
import { RedisCluster } from '../redis-cluster.js'
import { RedisServer } from '../redis-server.js'

/** `make` gives the steps of another process each time; `shared`: they share one backend (memory has one process). */
async function otpStepsContract (t: Test, make: () => OtpSteps, shared: boolean): Promise<void> {
  const steps = make()
  let made = 0
  /** A claim's nonce: one per check. */
  const nonce = () => `nonce-${made++}`
  t.equal(await steps.claim('alice', 100, nonce()), true, 'a first step is claimed')
  t.equal(await steps.claim('alice', 100, nonce()), false, 'the same step again is a replay')
  t.equal(await steps.claim('alice', 99, nonce()), false, 'an older step is a replay')
  const alice101 = nonce()
  t.equal(await steps.claim('alice', 101, alice101), true, 'a newer step is claimed')
  t.equal(await steps.claim('bob', 100, nonce()), true, 'each user has their own')
  const both = await Promise.all([steps.claim('carol', 7, nonce()), steps.claim('carol', 7, nonce())])
  t.same(both.sort(), [false, true], 'of two claims of one step at once, exactly one wins')
  await steps.giveBack('alice', 101, alice101)
  const alice101Again = nonce()
  t.equal(await steps.claim('alice', 101, alice101Again), true, 'a step given back is claimed again')
  t.equal(await steps.claim('alice', 100, nonce()), false, 'and the ones before it still are not')
  await steps.giveBack('alice', 101, alice101)
  t.equal(await steps.claim('alice', 101, nonce()), false, 'a give-back made again once the step was claimed anew changes nothing')
  await steps.claim('alice', 102, nonce())
  await steps.giveBack('alice', 101, alice101Again)
  t.equal(await steps.claim('alice', 102, nonce()), false, 'a step given back once a newer one was claimed changes nothing')
  await steps.giveBack('erin', 5, nonce())
  t.equal(await steps.claim('erin', 5, nonce()), true, 'nor does one of a user without any')

  const frank10 = nonce()
  t.equal(await steps.claim('frank', 10, frank10), true)
  t.equal(await steps.claim('frank', 10, frank10), true, 'the same claim made again (its answer lost) is answered as the first')
  t.equal(await steps.claim('frank', 9, frank10), false, 'as that claim, not for any step')
  await steps.giveBack('frank', 10, nonce())
  t.equal(await steps.claim('frank', 10, nonce()), false, 'another claim is not given back')
  await steps.giveBack('frank', 10, frank10)
  t.equal(await steps.claim('frank', 10, nonce()), true, 'its own claim is: the step is claimable again')
  if (!shared) return
  const other = make()
  t.equal(await other.claim('alice', 101, nonce()), false, 'a step claimed on one process is a replay on another')
  const across = await Promise.all([steps.claim('dave', 3, nonce()), other.claim('dave', 3, nonce())])
  t.same(across.sort(), [false, true], 'of two claims of one step on two processes at once, exactly one wins')
}

t.test('memory', async t => {
  await otpStepsContract(t, () => new MemoryOtpSteps(), false)
})

/** The contract on a Redis of its own, each process with a client of its own, on which `steps` makes its store: the clients. */
async function onRedis (t: Test, steps: (client: Redis) => OtpSteps): Promise<Redis[]> {
  const server = await RedisServer.start(t)
  const clients: Redis[] = []
  t.teardown(() => clients.forEach(client => client.disconnect()))
  await otpStepsContract(t, () => {
    const client = new Redis(server.url)
    clients.push(client)
    return steps(client)
  }, true)
  return clients
}

t.test('Redis', async t => {
  const [client] = await onRedis(t, client => new RedisOtpSteps(client, 'test:'))
  for (const key of await client!.keys('test:*')) t.ok(await client!.pttl(key) > 0, `${key} expires`)
})

t.test('Redis, remembered by each process: the same contract', async t => {
  await onRedis(t, client => new RememberedOtpSteps(new RedisOtpSteps(client, 'test:')))
})

t.test('Redis, remembered: a Redis restarted empty takes no step this process claimed, and a give-back still gives it back', async t => {
  const server = await RedisServer.start(t)
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  const steps = new RememberedOtpSteps(new RedisOtpSteps(redis, 'test:'))
  t.equal(await steps.claim('alice', 100, 'first'), true)
  t.equal(await steps.claim('bob', 100, 'bob'), true)
  t.equal(await steps.claim('carol', 8, 'older'), true)
  t.equal(await steps.claim('carol', 9, 'newest'), true)
  await redis.flushall()
  t.equal(await steps.claim('alice', 100, 'replay'), false, 'the code this process accepted is still used here')
  t.equal(await steps.claim('carol', 9, 'replay'), false, 'the newest too')
  t.equal(await steps.claim('alice', 100, 'first'), true, 'the claim made again (its answer lost) answers as the first')
  await steps.giveBack('bob', 100, 'bob')
  t.equal(await steps.claim('bob', 100, 'retry'), true, 'a step given back is claimed again')
  t.equal(await steps.claim('alice', 101, 'next'), true, 'a newer step is claimed')
})

t.test('Redis: a process of the release before and one of this release share each user\'s step', async t => {
  const server = await RedisServer.start(t)
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  // The release before's claim, as it ran on Redis: the step's key alone, read with GET and tonumber.
  const claimBefore = (user: string, step: number) => redis.eval(`${refuseLateLua}
refuseLate(ARGV[1])
local last = redis.call('GET', KEYS[1])
if last and tonumber(last) >= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`, 1, `test:{u:${user}}:otp-step`, Date.now() + 1_000, step, 120_000)
  const steps = new RedisOtpSteps(redis, 'test:')
  t.equal(await steps.claim('alice', 100, 'here'), true)
  t.equal(await claimBefore('alice', 100), 0, 'a step claimed here is a replay there')
  t.equal(await claimBefore('alice', 101), 1)
  t.equal(await steps.claim('alice', 101, 'here again'), false, 'and one claimed there is a replay here')
  t.equal(await steps.claim('alice', 102, 'newer'), true)
})

t.test('Redis Cluster', async t => {
  const cluster = await RedisCluster.start(t)
  await otpStepsContract(t, () => new RedisOtpSteps(cluster.client(t), 'test:'), true)
  t.same(await cluster.keys('test:*'), ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'].flatMap(user => [`test:{u:${user}}:otp-claim`, `test:{u:${user}}:otp-step`]),
    'a step and its claim per user, under the user\'s hash tag')
})
