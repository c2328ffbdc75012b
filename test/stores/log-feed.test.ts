// The log-feed contract (lib/stores/log-feed/contract.ts), run against memory and Redis: a line reaches this
// process's subscribers, and on a shared feed every process's, tagged with the process that logged it.
import t, { type Test } from 'tap'
import type { LogFeed } from '../../lib/stores/log-feed/contract.js'
import { MemoryLogFeed } from '../../lib/stores/log-feed/memory.js'
import { RedisLogFeed } from '../../lib/stores/log-feed/redis.js'
import { connectRedis, opened, type RedisConnections } from '../../lib/stores/redis-connection.js'
import { RedisCluster } from '../redis-cluster.js'
import { Redis } from 'ioredis'
import { RedisServer } from '../redis-server.js'
import { silentLog } from './silent-log.js'
import { fakeClock } from '../clock.js'

/** A started feed and the lines it delivers, as `node line`; `listened`: whether its process has subscribers. */
function started (feed: LogFeed, listened = () => false) {
  const lines: string[] = []
  let waiting: (() => void) | null = null
  feed.start((line, node) => {
    lines.push(`${node} ${line}`)
    waiting?.()
  }, listened, () => 30, () => '')
  const next = () => new Promise<void>(resolve => { waiting = resolve })
  return { feed, lines, next }
}

/**
 * `make(node)` gives the feed of process `node`; `listening(count)` resolves once `count` started feeds hear lines
 * (a subscription takes a round trip) and can publish theirs (a line is not published before its connection is up); `shared`: processes share one backend (memory has one process).
 */
async function logFeedContract (t: Test, make: (node: string) => LogFeed, listening: (count: number) => Promise<void>, shared: boolean): Promise<void> {
  const a = started(make('a'))
  await listening(1)
  let heard = a.next()
  a.feed.publish('{"msg":"one"}')
  await heard
  t.same(a.lines, ['a {"msg":"one"}'], 'publish: this process\'s subscribers get the line, tagged with this process')
  if (!shared) return

  const b = started(make('b'))
  await listening(2)
  heard = a.next()
  const heardByB = b.next()
  b.feed.publish('{"msg":"two"}\n{"msg":"three"}')
  await Promise.all([heard, heardByB])
  t.same(a.lines.at(-1), 'b {"msg":"two"}\n{"msg":"three"}', 'a line from another process, tagged with it, whole')
  t.same(b.lines, ['b {"msg":"two"}\n{"msg":"three"}'], 'and its own')
  // What Redis sends b after a's line it sent before: had b's own line come back, it would be here by now.
  heard = b.next()
  a.feed.publish('{"msg":"four"}')
  await heard
  t.same(b.lines, ['b {"msg":"two"}\n{"msg":"three"}', 'a {"msg":"four"}'], 'its own line once, not again from the shared feed')
}

t.test('memory', async t => {
  await logFeedContract(t, (node) => new MemoryLogFeed(node), async () => {}, false)
})

t.test('Redis', async t => {
  const server = await RedisServer.start(t)
  const processes: RedisConnections[] = []
  t.teardown(() => Promise.all(processes.map(p => p.close())))
  const redis = connectRedis(server.url, 'test:', silentLog)
  processes.push(redis)
  await opened(redis.commands)
  const listening = async (count: number) => {
    while ((await redis.commands.pubsub('NUMSUB', 'test:logs'))[1] !== count) await new Promise(resolve => setTimeout(resolve, 10))
    await Promise.all(processes.map(p => opened(p.commands)))
  }
  await logFeedContract(t, (node) => {
    const connections = connectRedis(server.url, 'test:', silentLog)
    processes.push(connections)
    return new RedisLogFeed(connections, 'test:', node, 1024 * 1024)
  }, listening, true)

  const feed = new RedisLogFeed(redis, 'test:', 'c', 1024 * 1024)
  const { lines, next } = started(feed)
  await listening(3)
  const heard = next()
  await redis.commands.publish('test:logs', 'a message without its process')
  await redis.commands.publish('test:logs', 'd\n{"msg":"five"}')
  await heard
  t.same(lines, ['d {"msg":"five"}'], 'a malformed message on the channel is ignored')
})

t.test('Redis: a process with subscribers says so again as soon as its subscription is back', async t => {
  const server = await RedisServer.start(t)
  const redis = connectRedis(server.url, 'test:', silentLog)
  t.teardown(() => redis.close())
  const listener = new Redis(server.url)
  t.teardown(() => listener.disconnect())
  const heard: string[] = []
  listener.on('message', (_channel: string, message: string) => heard.push(message))
  const listenerId = String(await listener.client('ID'))
  await listener.subscribe('test:logs')
  const feed = new RedisLogFeed(redis, 'test:', 'a', 1024 * 1024)
  t.teardown(() => feed.stop())
  started(feed, () => true)
  while (heard.length === 0) await new Promise(resolve => setTimeout(resolve, 10))
  t.same(heard, ['listening'], 'subscribed: it says it listens')
  heard.length = 0
  // The feed's subscription dropped, as by a Redis restart; the test's own stays.
  const subscribed = String(await redis.commands.call('CLIENT', 'LIST', 'TYPE', 'pubsub'))
  for (const [, id] of subscribed.matchAll(/^id=(\d+) /gm)) if (id !== listenerId) await redis.commands.client('KILL', 'ID', id)
  while (heard.length === 0) await new Promise(resolve => setTimeout(resolve, 10))
  t.same(heard, ['listening'], 'back: it says so again at once (not at its next reminder), and the others publish again')
})

t.test('Redis: a wall clock stepped either way leaves the others\' subscribers their 30 s of lines, no more, no less', async t => {
  const clock = fakeClock(t, ['Date', 'performance'])
  const server = await RedisServer.start(t)
  const redis = connectRedis(server.url, 'test:', silentLog)
  t.teardown(() => redis.close())
  const feed = new RedisLogFeed(redis, 'test:', 'a', 1024 * 1024)
  t.teardown(() => feed.stop())
  started(feed) // no subscriber here; just started, it publishes until it has had the time to hear the others'
  clock.setSystemTime(Date.now() + 3_600_000) // a resume from suspend
  t.equal(feed.wanted, true, 'stepped an hour forward: still published')
  clock.setSystemTime(Date.now() - 2 * 3_600_000) // NTP, an hour back from where it was
  clock.tick(29_999)
  t.equal(feed.wanted, true, 'stepped back: published for the rest of the 30 s')
  clock.tick(1)
  t.equal(feed.wanted, false, 'and not an hour more')
})

t.test('Redis: a process\'s own lines reach its subscribers while Redis is away', async t => {
  const server = await RedisServer.start(t)
  const redis = connectRedis(server.url, 'test:', silentLog)
  t.teardown(() => redis.close())
  await opened(redis.commands)
  const feed = new RedisLogFeed(redis, 'test:', 'a', 1024 * 1024)
  t.teardown(() => feed.stop())
  const { lines } = started(feed, () => true)
  await server.stop()
  feed.publish('{"msg":"Redis away"}')
  t.same(lines, ['a {"msg":"Redis away"}'], 'delivered at once, not through Redis')
})

t.test('Redis Cluster', async t => {
  const cluster = await RedisCluster.start(t)
  const processes: RedisConnections[] = []
  t.teardown(() => Promise.all(processes.map(p => p.close())))
  // Each process listens on one node of its choosing: a PUBLISH on any node reaches them all.
  const listening = async (count: number) => {
    while (await cluster.subscribers('test:logs') !== count) await new Promise(resolve => setTimeout(resolve, 10))
    await Promise.all(processes.map(p => opened(p.commands)))
  }
  await logFeedContract(t, (node) => {
    const connections = connectRedis(cluster.client(t), 'test:', silentLog)
    processes.push(connections)
    return new RedisLogFeed(connections, 'test:', node, 1024 * 1024)
  }, listening, true)
})
