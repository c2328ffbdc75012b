// The revocation-feed contract (lib/stores/revocation-feed/contract.ts), run against memory and Redis: a revocation
// reaches this process's handler and, on a shared feed, every other process's, including one that starts later.
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import type { RevocationFeed } from '../../lib/stores/revocation-feed/contract.js'
import { MemoryRevocationFeed } from '../../lib/stores/revocation-feed/memory.js'
import { RedisRevocationFeed } from '../../lib/stores/revocation-feed/redis.js'
import { connectRedis } from '../../lib/stores/redis-connection.js'
import { RedisServer } from '../redis-server.js'
import { silentLog } from './silent-log.js'

/** A started feed, the revocations it has heard, and a promise of the next one. */
async function started (feed: RevocationFeed) {
  const heard: Array<[string, number]> = []
  let waiting: (() => void) | null = null
  const next = () => new Promise<void>(resolve => { waiting = resolve })
  await new Promise<void>(resolve => feed.start((session, until) => {
    heard.push([session, until])
    waiting?.()
  }, resolve))
  return { feed, heard, next }
}

/** `make` gives a feed of another process each time; `shared`: they share one backend (memory has one process). */
async function revocationFeedContract (t: Test, make: () => RevocationFeed, shared: boolean): Promise<void> {
  const a = await started(make())
  t.pass('start: loaded')
  const until = Date.now() + 60_000
  let heard = a.next()
  await a.feed.publish('s1', until)
  await heard
  t.same(a.heard, [['s1', until]], 'publish: this process hears it')
  if (!shared) return

  await a.feed.publish('gone', Date.now() + 20)
  await new Promise(resolve => setTimeout(resolve, 50))
  const b = await started(make())
  // Maybe more than once (a replay after each reconnection): a revocation heard again changes nothing.
  t.same(new Set(b.heard.map(entry => entry.join())), new Set([`s1,${until}`]), 'a process that starts later learns the revocations still in force, and only those')
  heard = a.next()
  const heardByB = b.next()
  await b.feed.publish('s2', until)
  await Promise.all([heard, heardByB])
  t.same(a.heard.at(-1), ['s2', until], 'a revocation published on one process reaches the others')
  t.same(b.heard.at(-1), ['s2', until], 'and its own')
}

t.test('memory', async t => {
  await revocationFeedContract(t, () => new MemoryRevocationFeed(), false)
})

t.test('Redis', async t => {
  const server = await RedisServer.start(t)
  const processes: Array<ReturnType<typeof connectRedis>> = []
  t.teardown(() => Promise.all(processes.map(p => p.close())))
  await revocationFeedContract(t, () => {
    const connections = connectRedis(server.url, silentLog)
    processes.push(connections)
    return new RedisRevocationFeed(connections, 'test:', silentLog)
  }, true)
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  t.same((await redis.keys('test:*')).sort(), ['test:revoked:s1', 'test:revoked:s2'], 'one key per revocation in force')
})
