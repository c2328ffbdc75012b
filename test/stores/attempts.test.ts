// The attempt-limiter contract (lib/stores/attempts/contract.ts), run against memory and Redis: attempts counted per
// IP and per email inside a window, successes forgotten, and on a shared backend one count for every process.
import t, { type Test } from 'tap'
import { unlimited, type AttemptLimit, type AttemptLimiter } from '../../lib/stores/attempts/contract.js'
import { memoryAttempts } from '../../lib/stores/attempts/memory.js'
import { redisAttempts } from '../../lib/stores/attempts/redis.js'
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
  await limiter.succeeded('10.0.0.3', 'a@example.com')
  t.equal(await limiter.begin('10.0.0.5', 'a@example.com'), 0, 'a success forgets the email\'s failures')
  t.equal(await limiter.begin('10.0.0.3', 'e1@example.com'), 0)
  t.equal(await limiter.begin('10.0.0.3', 'e2@example.com'), 0, 'and gives its IP its attempt back')

  t.equal(await limiter.begin(null, 'd@example.com'), 0)
  t.equal(await limiter.begin(null, 'd@example.com'), 0)
  t.ok(refusal(await limiter.begin(null, 'd@example.com')), 'without an IP, the email alone is counted')
  await limiter.succeeded(null, 'd@example.com')
  t.equal(await limiter.begin(null, 'd@example.com'), 0)

  if (!shared) return
  const other = make()
  t.ok(refusal(await other.begin('10.0.0.1', 'f@example.com')), 'an IP refused on one process is refused on another')
  t.equal(await other.begin('10.0.0.6', 'f@example.com'), 0)
  t.equal(await limiter.begin('10.0.0.7', 'f@example.com'), 0)
  t.ok(refusal(await other.begin('10.0.0.8', 'f@example.com')), 'an email\'s failures add up across processes')
}

t.test('unlimited (attemptLimit: false)', async t => {
  for (let i = 0; i < 5; i++) t.equal(await unlimited.begin('10.0.0.1', 'a@example.com'), 0)
  await unlimited.succeeded('10.0.0.1', 'a@example.com')
})

t.test('memory', async t => {
  await attemptsContract(t, () => memoryAttempts(limit), false)
})

t.test('Redis', async t => {
  const server = await RedisServer.start(t)
  // As the plugin connects: commands fail at once while Redis is away.
  const redis = connectRedis(server.url, silentLog)
  t.teardown(() => redis.close())
  await opened(redis.commands)
  await attemptsContract(t, () => redisAttempts(limit, redis.commands, 'test:'), true)

  const keys = await redis.commands.keys('test:*')
  t.ok(keys.includes('test:attempts:ip:10.0.0.1'), 'counters live under the prefix')
  t.notOk(keys.some(key => key.includes('@')), 'no email address is stored')
  await server.stop()
  await t.rejects(redisAttempts(limit, redis.commands, 'test:').begin('10.0.0.9', 'g@example.com'), 'counters out of reach: begin rejects, and the caller fails closed')
})

t.test('Redis Cluster', async t => {
  const cluster = await RedisCluster.start(t)
  // The app's own Cluster client, as it would pass it: the counters go wherever their keys' slots are.
  const redis = cluster.client(t)
  await attemptsContract(t, () => redisAttempts(limit, redis, 'test:'), true)
  const keys = await cluster.keys('test:*')
  t.ok(keys.includes('test:attempts:ip:10.0.0.1'), 'counters live under the prefix')
  t.ok((await cluster.onEachNode(node => node.dbsize())).filter(size => size > 0).length > 1, 'spread over the nodes')
})
