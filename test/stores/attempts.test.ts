// The attempt-limiter contract (lib/stores/attempts/contract.ts), run against memory and Redis: attempts counted per
// IP (an IPv6 client's /64) and per email inside a window, successes forgotten, attempts never checked given back,
// and on a shared backend one count for every process.
import t, { type Test } from 'tap'
import { setTimeout } from 'node:timers/promises'
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible'
import { CountedAttempts, unlimited, type AttemptLimit, type AttemptLimiter, type ForgetUncounted } from '../../lib/stores/attempts/contract.js'
import { forgetInMemory, memoryAttempts } from '../../lib/stores/attempts/memory.js'
import { forgetOnRedis, redisAttempts } from '../../lib/stores/attempts/redis.js'
import { connectRedis, opened } from '../../lib/stores/redis-connection.js'
import { RedisCluster } from '../redis-cluster.js'
import { RedisServer } from '../redis-server.js'
import { silentLog } from './silent-log.js'

const limit: AttemptLimit = { points: 2, durationSeconds: 60 }

/** Whether `ms` is a refusal: a wait inside the window. */
const refusal = (ms: number) => ms > 0 && ms <= 60_000

/** `make` gives the limiter of another process each time; `shared`: they share one backend (memory has one process). */
async function attemptsContract (t: Test, make: () => AttemptLimiter, shared: boolean): Promise<void> {
  const limiter = make()
  t.equal(await limiter.begin('10.0.0.1', 'a@example.com'), 0)
  t.equal(await limiter.begin('10.0.0.1', 'b@example.com'), 0)
  t.ok(refusal(await limiter.begin('10.0.0.1', 'c@example.com')), 'per IP: the third attempt inside the window waits')
  t.equal(await limiter.begin('10.0.0.2', 'c@example.com'), 0, 'another IP goes on, and the refused attempt did not count against its email')

  t.equal(await limiter.begin('10.0.0.3', 'a@example.com'), 0)
  t.ok(refusal(await limiter.begin('10.0.0.4', ' A@Example.COM ')), 'per email, whatever its case and spaces')
  t.equal(await limiter.begin('10.0.0.4', 'a1@example.com'), 0)
  t.equal(await limiter.begin('10.0.0.4', 'a2@example.com'), 0, 'and the attempt refused for its email did not count against its IP')
  await limiter.succeeded('10.0.0.3', 'a@example.com')
  t.equal(await limiter.begin('10.0.0.5', 'a@example.com'), 0, 'a success forgets the email\'s failures')
  t.equal(await limiter.begin('10.0.0.3', 'e1@example.com'), 0)
  t.equal(await limiter.begin('10.0.0.3', 'e2@example.com'), 0, 'and gives its IP its attempt back')

  t.equal(await limiter.begin(null, 'd@example.com'), 0)
  t.equal(await limiter.begin(null, 'd@example.com'), 0)
  t.ok(refusal(await limiter.begin(null, 'd@example.com')), 'without an IP, the email alone is counted')
  await limiter.succeeded(null, 'd@example.com')
  t.equal(await limiter.begin(null, 'd@example.com'), 0)

  // A password never checked (the queue was full) gives its attempt back, on each counter, one point only.
  t.equal(await limiter.begin('10.0.1.1', 'u1@example.com'), 0)
  t.equal(await limiter.begin('10.0.1.1', 'u2@example.com'), 0)
  await limiter.unchecked('10.0.1.1', 'u2@example.com')
  t.equal(await limiter.begin('10.0.1.1', 'u3@example.com'), 0, 'unchecked: the IP has its attempt back')
  t.ok(refusal(await limiter.begin('10.0.1.1', 'u4@example.com')), 'one attempt, no more')
  t.equal(await limiter.begin('10.0.1.2', 'u5@example.com'), 0)
  t.equal(await limiter.begin('10.0.1.3', 'u5@example.com'), 0)
  await limiter.unchecked('10.0.1.3', 'u5@example.com')
  t.equal(await limiter.begin('10.0.1.4', 'u5@example.com'), 0, 'unchecked: the email has its attempt back')
  t.ok(refusal(await limiter.begin('10.0.1.5', 'u5@example.com')), 'one attempt, no more')
  t.equal(await limiter.begin(null, 'u6@example.com'), 0)
  t.equal(await limiter.begin(null, 'u6@example.com'), 0)
  await limiter.unchecked(null, 'u6@example.com')
  t.equal(await limiter.begin(null, 'u6@example.com'), 0, 'unchecked without an IP: the email has its attempt back')
  t.ok(refusal(await limiter.begin(null, 'u6@example.com')))

  // An attempt the limit refused was never checked: it gives back what it counted, on each counter, so a burst of
  // logins at once (more than the limit in flight, all correct) leaves nothing counted once those let through succeed.
  t.equal(await limiter.begin('10.0.4.1', 'w1@example.com'), 0)
  t.equal(await limiter.begin('10.0.4.1', 'w2@example.com'), 0)
  t.ok(refusal(await limiter.begin('10.0.4.1', 'w3@example.com')), 'a third at once waits')
  t.ok(refusal(await limiter.begin('10.0.4.1', 'w4@example.com')))
  await limiter.succeeded('10.0.4.1', 'w1@example.com')
  await limiter.succeeded('10.0.4.1', 'w2@example.com')
  t.equal(await limiter.begin('10.0.4.1', 'w3@example.com'), 0, 'once the two succeed, the refused ones have counted nothing')
  t.equal(await limiter.begin('10.0.4.1', 'w4@example.com'), 0)
  t.equal(await limiter.begin('10.0.4.2', 'w5@example.com'), 0)
  t.equal(await limiter.begin('10.0.4.3', 'w5@example.com'), 0)
  t.ok(refusal(await limiter.begin('10.0.4.4', 'w5@example.com')), 'refused by its email')
  t.equal(await limiter.begin('10.0.4.4', 'w6@example.com'), 0)
  t.equal(await limiter.begin('10.0.4.4', 'w7@example.com'), 0, 'its IP has the attempt back')
  t.ok(refusal(await limiter.begin('10.0.4.4', 'w8@example.com')), 'failures stay counted: a refusal gives back only its own')
  t.ok(refusal(await limiter.begin('10.0.4.4', 'w8@example.com')))

  // An IPv6 client counts for its /64, however it spells its address; an IPv4-mapped address counts as its IPv4.
  t.equal(await limiter.begin('2001:db8:1:2::1', 'v1@example.com'), 0)
  await limiter.unchecked('2001:db8:1:2::99', 'v1@example.com')
  t.equal(await limiter.begin('2001:db8:1:2:ffff:ffff:ffff:ffff', 'v2@example.com'), 0)
  t.equal(await limiter.begin('2001:0db8:0001:0002:0:0:0:abcd', 'v3@example.com'), 0, 'an attempt given back to the /64')
  t.ok(refusal(await limiter.begin('2001:db8:1:2::5', 'v4@example.com')), 'IPv6: one counter per /64')
  t.equal(await limiter.begin('2001:db8:1:3::1', 'v4@example.com'), 0, 'another /64 has its own')
  t.equal(await limiter.begin('2001:db8:5:6::1', 'v5@example.com'), 0)
  t.equal(await limiter.begin('2001:db8:5:6::2', 'v5@example.com'), 0)
  await limiter.succeeded('2001:db8:5:6::3', 'v5@example.com')
  t.equal(await limiter.begin('2001:db8:5:6::4', 'v5@example.com'), 0, 'a success gives the /64 its attempt back')
  t.ok(refusal(await limiter.begin('2001:db8:5:6::5', 'v5@example.com')))
  t.equal(await limiter.begin('10.0.3.1', 'v6@example.com'), 0)
  t.equal(await limiter.begin('::ffff:10.0.3.1', 'v7@example.com'), 0)
  t.ok(refusal(await limiter.begin('::ffff:a00:301', 'v8@example.com')), 'an IPv4-mapped address counts as its IPv4')
  t.equal(await limiter.begin('::ffff:10.0.3.2', 'v8@example.com'), 0)

  if (!shared) return
  const other = make()
  t.ok(refusal(await other.begin('10.0.0.1', 'f@example.com')), 'an IP refused on one process is refused on another')
  t.equal(await other.begin('10.0.0.6', 'f@example.com'), 0)
  t.equal(await limiter.begin('10.0.0.7', 'f@example.com'), 0)
  t.ok(refusal(await other.begin('10.0.0.8', 'f@example.com')), 'an email\'s failures add up across processes')
}

/**
 * An attempt given back after its window has ended (begun at the window's last moment), or a success forgiving its
 * address's point then, gives nothing: the next window allows `points` attempts, not one more (rate-limiter-flexible's reward of a gone counter starts it at -1).
 */
async function givenBackLate (t: Test, limiter: AttemptLimiter): Promise<void> {
  t.equal(await limiter.begin('10.0.2.1', 'late@example.com'), 0)
  t.equal(await limiter.begin('10.0.2.2', 'won@example.com'), 0)
  await setTimeout(1_100)
  await limiter.unchecked('10.0.2.1', 'late@example.com')
  await limiter.succeeded('10.0.2.2', 'won@example.com')
  t.equal(await limiter.begin('10.0.2.2', 'won1@example.com'), 0)
  t.equal(await limiter.begin('10.0.2.2', 'won2@example.com'), 0)
  t.ok(refusal(await limiter.begin('10.0.2.2', 'won3@example.com')), 'nor does a success whose window ended during its check')
  t.equal(await limiter.begin('10.0.2.1', 'late@example.com'), 0)
  t.equal(await limiter.begin('10.0.2.1', 'late@example.com'), 0)
  t.ok(refusal(await limiter.begin('10.0.2.1', 'late@example.com')), 'the window after it allows its points, no more')
  await limiter.unchecked(null, 'late2@example.com')
  t.equal(await limiter.begin(null, 'late2@example.com'), 0)
  t.equal(await limiter.begin(null, 'late2@example.com'), 0)
  t.ok(refusal(await limiter.begin(null, 'late2@example.com')), 'nor does one given back to a counter that never was')
}

/**
 * An attempt refused in one window whose point goes back once the next has begun (a round trip to Redis across its end)
 * takes nothing from the next: `make` gives a counter of 2 points in 1 s windows.
 */
async function givenBackAcrossWindows (t: Test, make: (name: string) => RateLimiterAbstract, forget: ForgetUncounted): Promise<void> {
  let gate: Promise<void> | null = null
  let open!: () => void
  const limiter = new CountedAttempts(name => {
    const counter = make(name)
    const reward = counter.reward.bind(counter)
    counter.reward = async (key, points, options) => {
      await gate
      return reward(key, points, options)
    }
    return counter
  }, forget)
  t.equal(await limiter.begin('10.0.3.1', 'x1@example.com'), 0)
  gate = new Promise(resolve => { open = resolve })
  // Both pass the read (one attempt counted); the second's count is refused, and its point held on its way back.
  const [second, third] = [limiter.begin('10.0.3.1', 'x2@example.com'), limiter.begin('10.0.3.1', 'x3@example.com')]
  t.equal(await second, 0)
  await setTimeout(1_100)
  t.equal(await limiter.begin('10.0.3.1', 'x4@example.com'), 0, 'the next window')
  t.equal(await limiter.begin('10.0.3.1', 'x5@example.com'), 0)
  open()
  t.ok(refusal(await third), 'refused in its window')
  gate = null
  t.ok(refusal(await limiter.begin('10.0.3.1', 'x6@example.com')), 'the next window allows its points, no more (before: a third password checked in it)')
}

/**
 * An attempt given back to a counter that then counts nothing takes the counter with it: a client sending passwords for
 * new emails and leaving before their checks left a counter per email for the rest of the window. `counters`: how many
 * the backend holds. A counter that still counts another attempt stays, and so does one counted between the give-back's
 * point and its forgetting.
 */
async function forgottenWhenGivenBack (t: Test, limiter: AttemptLimiter, counters: () => Promise<number>,
  forget: ForgetUncounted, counter: RateLimiterAbstract): Promise<void> {
  const before = await counters()
  for (let i = 0; i < 50; i++) {
    t.equal(await limiter.begin('10.0.4.1', `gone-${i}@example.com`), 0)
    await limiter.unchecked('10.0.4.1', `gone-${i}@example.com`)
  }
  t.equal(await counters(), before, 'no counter left by 50 attempts given back (before: 51, one per email and the IP\'s)')
  t.equal(await limiter.begin('10.0.4.2', 'kept@example.com'), 0)
  t.equal(await limiter.begin('10.0.4.3', 'kept@example.com'), 0)
  await limiter.unchecked('10.0.4.3', 'kept@example.com')
  t.equal(await counters(), before + 2, 'the email\'s counter counts the other attempt still, and its IP\'s: both stay')
  t.equal(await limiter.begin(null, 'kept@example.com'), 0, 'one attempt counted, one more allowed')
  // Forgetting reads the count and deletes in one step: a count landing just before it keeps the counter.
  await counter.consume('raced')
  await forget(counter, 'raced')
  t.equal((await counter.get('raced'))?.consumedPoints, 1, 'a counter counting an attempt is never forgotten')
  await counter.reward('raced')
  await forget(counter, 'raced')
  t.equal(await counter.get('raced'), null, 'one at nothing is')
  // Its window may end between the give-back and the forgetting.
  await forget(counter, 'raced')
  t.equal(await counter.get('raced'), null, 'one gone already stays gone')
}

t.test('unlimited (attemptLimit: false)', async t => {
  for (let i = 0; i < 5; i++) t.equal(await unlimited.begin('10.0.0.1', 'a@example.com'), 0)
  await unlimited.succeeded('10.0.0.1', 'a@example.com')
  await unlimited.unchecked('10.0.0.1', 'a@example.com')
})

t.test('memory', async t => {
  await attemptsContract(t, () => memoryAttempts(limit), false)
  await givenBackLate(t, memoryAttempts({ points: 2, durationSeconds: 1 }))
  await givenBackAcrossWindows(t, name => new RateLimiterMemory({ keyPrefix: `across:${name}`, points: 2, duration: 1 }), forgetInMemory)
  const held: RateLimiterMemory[] = []
  const counted = new CountedAttempts(name => {
    const counter = new RateLimiterMemory({ keyPrefix: `forgotten:${name}`, points: 2, duration: 60 })
    held.push(counter)
    return counter
  }, forgetInMemory)
  const counters = async () => held.reduce((sum, counter) => sum + counter.dump().storage.length, 0)
  await forgottenWhenGivenBack(t, counted, counters, forgetInMemory, new RateLimiterMemory({ keyPrefix: 'raced', points: 2, duration: 60 }))
})

t.test('Redis', async t => {
  const server = await RedisServer.start(t)
  // As the plugin connects: commands fail at once while Redis is away.
  const redis = connectRedis(server.url, 'test:', silentLog)
  t.teardown(() => redis.close())
  await opened(redis.commands)
  await attemptsContract(t, () => redisAttempts(limit, redis.commands, 'test:'), true)
  await givenBackLate(t, redisAttempts({ points: 2, durationSeconds: 1 }, redis.commands, 'late:'))
  await givenBackAcrossWindows(t, name => new RateLimiterRedis({ storeClient: redis.commands, keyPrefix: `across:${name}`, points: 2, duration: 1 }), forgetOnRedis(redis.commands))
  await forgottenWhenGivenBack(t, redisAttempts(limit, redis.commands, 'forgotten:'), async () => (await redis.commands.keys('forgotten:*')).length,
    forgetOnRedis(redis.commands), new RateLimiterRedis({ storeClient: redis.commands, keyPrefix: 'raced', points: 2, duration: 60 }))

  const keys = await redis.commands.keys('test:*')
  t.ok(keys.includes('test:attempts:ip:10.0.0.1'), 'counters live under the prefix')
  t.ok(keys.includes('test:attempts:ip:2001:db8:1:2::/64'), 'an IPv6 client\'s under its /64')
  t.notOk(keys.some(key => key.includes('@')), 'no email address is stored')
  await server.stop()
  await t.rejects(redisAttempts(limit, redis.commands, 'test:').begin('10.0.0.9', 'g@example.com'), 'counters out of reach: begin rejects, and the caller fails closed')
})

t.test('Redis Cluster', async t => {
  const cluster = await RedisCluster.start(t)
  // The app's own Cluster client, as it would pass it: the counters go wherever their keys' slots are.
  const redis = cluster.client(t)
  await attemptsContract(t, () => redisAttempts(limit, redis, 'test:'), true)
  await givenBackLate(t, redisAttempts({ points: 2, durationSeconds: 1 }, redis, 'late:'))
  await forgottenWhenGivenBack(t, redisAttempts(limit, redis, 'forgotten:'), async () => (await cluster.keys('forgotten:*')).length,
    forgetOnRedis(redis), new RateLimiterRedis({ storeClient: redis, keyPrefix: 'raced', points: 2, duration: 60 }))
  const keys = await cluster.keys('test:*')
  t.ok(keys.includes('test:attempts:ip:10.0.0.1'), 'counters live under the prefix')
  t.ok((await cluster.onEachNode(node => node.dbsize())).filter(size => size > 0).length > 1, 'spread over the nodes')
})
