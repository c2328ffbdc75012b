// The revocation-feed contract (lib/stores/revocation-feed/contract.ts), run against memory and Redis: a revocation
// reaches this process's handler and, on a shared feed, every other process's, including one that starts later.
import { once } from 'node:events'
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import pino from 'pino'
import { readRevocation, revocationId } from '../../lib/auth/revocations.js'
import type { RevocationFeed } from '../../lib/stores/revocation-feed/contract.js'
import { MemoryRevocationFeed, memoryFeedsInUse } from '../../lib/stores/revocation-feed/memory.js'
import { RedisRevocationFeed } from '../../lib/stores/revocation-feed/redis.js'
import { connectRedis, type RedisConnections } from '../../lib/stores/redis-connection.js'
import { fakeClock, until, within } from '../helpers.js'
import { RedisCluster } from '../redis-cluster.js'
import { Link } from '../redis-link.js'
import { RedisServer } from '../redis-server.js'
import { silentLog } from './silent-log.js'

/** A started feed, the revocations it has heard, and a promise of the next one. */
async function started (feed: RevocationFeed) {
  const heard: Array<[string, number]> = []
  let waiting: (() => void) | null = null
  const next = () => new Promise<void>(resolve => { waiting = resolve })
  const knownSince = await new Promise<number>(resolve => feed.start((session, until) => {
    heard.push([session, until])
    waiting?.()
  }, resolve))
  return { feed, heard, next, knownSince }
}

/**
 * The lapse `heard` last has for `session`. One published on Redis lapses by Redis's clock or its publisher's, whichever
 * is later: on one host that is when its publisher said, or up to the publish's own time later.
 */
function lapseOf (heard: Array<[string, number]>, session: string): number | undefined {
  return heard.filter(([revoked]) => revoked === session).at(-1)?.[1]
}

/** Publishes `session` lapsing at `until` on `feed`, and answers how long that took (the most Redis's clock adds). */
async function timedPublish (feed: RevocationFeed, session: string, until: number): Promise<number> {
  const sent = Date.now()
  await feed.publish(session, until)
  return Date.now() - sent
}

/** `make` gives a feed of another process each time; `shared`: they share one backend (memory has one process). */
async function revocationFeedContract (t: Test, make: () => RevocationFeed, shared: boolean): Promise<void> {
  const startedAt = Date.now()
  const a = await started(make())
  t.pass('start: loaded')
  if (shared) t.equal(a.knownSince, -Infinity, 'every revocation in force, whoever made it and whenever')
  else t.ok(a.knownSince >= startedAt && a.knownSince <= Date.now(), 'its own, from its start: an earlier process\'s died with it')
  const until = Date.now() + 60_000
  let heard = a.next()
  const took = await timedPublish(a.feed, 's1', until)
  await heard
  t.same(a.heard[0], ['s1', until], 'publish: this process hears it at once, as its publisher said')
  const lapse = lapseOf(a.heard, 's1')!
  if (!shared) {
    t.same(a.heard, [['s1', until]], 'and only so')
    return
  }
  t.ok(lapse >= until && lapse <= until + took, 'then as Redis\'s clock says, if later')

  await a.feed.publish('gone', Date.now() + 20)
  await new Promise(resolve => setTimeout(resolve, 50))
  const b = await started(make())
  // Maybe more than once (a replay after each reconnection): a revocation heard again changes nothing.
  t.same(new Set(b.heard.map(entry => entry.join())), new Set([`s1,${lapse}`]), 'a process that starts later learns the revocations still in force, and only those')
  heard = a.next()
  const heardByB = b.next()
  const tookB = await timedPublish(b.feed, 's2', until)
  await Promise.all([heard, heardByB])
  const lapseB = lapseOf(b.heard, 's2')!
  t.ok(lapseB >= until && lapseB <= until + tookB, 'a revocation published on one process reaches its own...')
  t.same(a.heard.at(-1), ['s2', lapseB], '...and the others, lapsing as Redis took it')
}

t.test('memory', async t => {
  await revocationFeedContract(t, () => new MemoryRevocationFeed(), false)
})

t.test('memory: the feeds of one key share one set, begun at the first one\'s start, and hear each other\'s revocations', async t => {
  const clock = fakeClock(t, ['Date'])
  // The contract's feeds above are never stopped: their keys, each its own, are counted apart.
  const before = memoryFeedsInUse()
  const a = await started(new MemoryRevocationFeed('key'))
  clock.tick(5_000)
  const b = await started(new MemoryRevocationFeed('key'))
  const other = await started(new MemoryRevocationFeed('another key'))
  t.equal(b.knownSince, a.knownSince, 'the later one knows every revocation made since the first started')
  t.equal(b.feed.revocations, a.feed.revocations, 'one set')
  t.not(other.feed.revocations, a.feed.revocations, 'another key\'s is its own')
  await a.feed.publish('s1', Date.now() + 60_000)
  t.same([a.heard.length, b.heard.length, other.heard.length], [1, 1, 0], 'a revocation reaches the feeds of its key only')

  a.feed.stop()
  a.feed.stop()
  await b.feed.publish('s2', Date.now() + 60_000)
  t.same([a.heard.length, b.heard.length], [1, 2], 'a stopped feed hears nothing more, stopped twice or not')
  t.equal(memoryFeedsInUse() - before, 2, 'the key is kept while a feed of it is not stopped')
  b.feed.stop()
  other.feed.stop()
  // One made and stopped at once (a registration that failed before it started its feed).
  new MemoryRevocationFeed('key').stop()
  t.equal(memoryFeedsInUse() - before, 0, 'and let go with the last one')
})

t.test('Redis', async t => {
  const server = await RedisServer.start(t)
  const processes: RedisConnections[] = []
  t.teardown(() => Promise.all(processes.map(p => p.close())))
  await revocationFeedContract(t, () => {
    const connections = connectRedis(server.url, 'test:', silentLog)
    processes.push(connections)
    return new RedisRevocationFeed(connections, 'test:', silentLog)
  }, true)
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  t.same(await redis.keys('test:*'), ['test:revoked'], 'one key')
  // By name: s1 and s2 lapse as Redis's clock took them, which may put either first.
  const held = async () => (await redis.zrange('test:revoked', 0, -1)).sort()
  t.same(await held(), ['gone', 's1', 's2'], 'holding the revocations in force, and one lapsed less than a minute ago')
  // A second past the minute: its lapse by Redis's clock is the milliseconds Redis's reading came later.
  await new RedisRevocationFeed({ commands: redis } as RedisConnections, 'test:', silentLog).publish('long-gone', Date.now() - 61_000)
  t.same(await held(), ['gone', 's1', 's2'], 'one lapsed longer ago goes at the next publish')
  const expiry = Number(await redis.pexpiretime('test:revoked'))
  t.ok(expiry > Date.now() + 110_000 && expiry <= Date.now() + 120_000, 'and it expires a minute after the latest lapses')
})

t.test('Redis: a process whose clock runs an hour ahead sheds none of the revocations still in force for the others', async t => {
  const clock = fakeClock(t, ['Date'])
  const server = await RedisServer.start(t)
  const processes: RedisConnections[] = []
  t.teardown(() => Promise.all(processes.map(p => p.close())))
  const feed = () => {
    const connections = connectRedis(server.url, 'test:', silentLog)
    processes.push(connections)
    return new RedisRevocationFeed(connections, 'test:', silentLog)
  }
  const until = Date.now() + 15 * 60_000
  await (await started(feed())).feed.publish('logged out', until)
  const ahead = (await started(feed())).feed
  clock.setSystemTime(Date.now() + 60 * 60_000) // its host's clock (a container moved to a host off NTP)
  await ahead.publish('logged out ahead', Date.now() + 15 * 60_000)
  clock.setSystemTime(Date.now() - 60 * 60_000)
  const later = await started(feed())
  t.ok(later.heard.some(([session]) => session === 'logged out'), 'a process started later still learns of the one in force by its clock and Redis\'s')
})

t.test('Redis: a process whose clock runs behind Redis\'s has its revocation lapse, and the set expire, by Redis\'s clock', async t => {
  const clock = fakeClock(t, ['Date'])
  const server = await RedisServer.start(t)
  const redis = new Redis(server.url)
  const processes: RedisConnections[] = []
  t.teardown(async () => {
    redis.disconnect()
    await Promise.all(processes.map(p => p.close()))
  })
  const feed = () => {
    const connections = connectRedis(server.url, 'test:', silentLog)
    processes.push(connections)
    return new RedisRevocationFeed(connections, 'test:', silentLog)
  }
  const lastsMs = 15 * 60_000
  const other = await started(feed())
  const behind = await started(feed())
  // The fake Date stays at or behind Redis's real clock, which has run on since the fake one was installed.
  const redisAtLeast = Date.now()
  clock.setSystemTime(redisAtLeast - 5 * 60_000) // its host's clock (off NTP)
  const heard = other.next()
  const published = behind.feed.publish('logged out behind', Date.now() + lastsMs)
  clock.setSystemTime(redisAtLeast)
  await published
  await heard
  const lapse = lapseOf(other.heard, 'logged out behind')!
  t.ok(lapse >= redisAtLeast + lastsMs, 'the others hear it lapse one life after Redis\'s clock read it, not five minutes early')
  t.equal(lapseOf(behind.heard, 'logged out behind'), lapse, 'and so does its publisher')
  t.ok(Number(await redis.pexpiretime('test:revoked')) >= lapse + 60_000, 'the set lasts a minute past it')
  const later = await started(feed())
  t.equal(lapseOf(later.heard, 'logged out behind'), lapse, 'a process started later reads the same')
})

t.test('Redis: in a rolling deploy, the message is what an earlier build reads and sends, JSON with session, until and from', async t => {
  const server = await RedisServer.start(t)
  const redis = new Redis(server.url)
  const listener = new Redis(server.url)
  const connections = connectRedis(server.url, 'test:', silentLog)
  t.teardown(async () => {
    redis.disconnect()
    listener.disconnect()
    await connections.close()
  })
  const messages: string[] = []
  await listener.subscribe('test:revocations')
  listener.on('message', (_channel, message) => messages.push(message))
  const later = await started(new RedisRevocationFeed(connections, 'test:', silentLog))
  // A user id as an app may name one: the message and the set carry it as given.
  const user = 'Zoë/ünïcode "quoted"'
  const at = Date.now()
  const lapsesAt = at + 60_000
  await new RedisRevocationFeed({ commands: redis } as RedisConnections, 'test:', silentLog).publish(revocationId.user(user, at), lapsesAt)
  await within(until(() => messages.length === 1 && later.heard.length === 1), 'the message')
  const sent = JSON.parse(messages[0]!) as Record<string, unknown>
  t.same(Object.keys(sent).sort(), ['from', 'session', 'until'], 'the fields an earlier build reads')
  const revoked = readRevocation(sent.session as string) as { user: string, at: number }
  t.equal(revoked.user, user, 'the user as given')
  t.ok(revoked.at >= at, 'revoked at its publisher\'s time or Redis\'s, if later')
  t.ok(typeof sent.until === 'number' && sent.until >= lapsesAt, 'lapsing no earlier than its publisher said')
  t.same(later.heard, [[sent.session, sent.until]], 'and this build reads it so')
  t.same(await redis.zrange('test:revoked', 0, -1), [sent.session], 'the set holds it by the same id')

  // What an earlier build sends: its publisher's lapse, as it said.
  await redis.publish('test:revocations', JSON.stringify({ session: 'from an earlier build', until: lapsesAt, from: 'an earlier process' }))
  await within(until(() => later.heard.length === 2), 'the earlier build\'s message')
  t.same(later.heard[1], ['from an earlier build', lapsesAt], 'heard as it was sent')
})

t.test('Redis: the set is read again once subscribed again, not when only the command connection comes back', async t => {
  const server = await RedisServer.start(t)
  const redis = new Redis(server.url)
  const connections = connectRedis(server.url, 'test:', silentLog)
  t.teardown(async () => {
    redis.disconnect()
    await connections.close()
  })
  const reads = async () => Number(/cmdstat_zscan:calls=(\d+)/.exec(await redis.info('commandstats'))?.[1] ?? 0)
  let loaded = () => {}
  const nextLoad = () => new Promise<void>(resolve => { loaded = resolve })
  const first = nextLoad()
  new RedisRevocationFeed(connections, 'test:', silentLog).start(() => {}, () => loaded())
  await first
  t.equal(await reads(), 1, 'read once at the start')

  const back = once(connections.commands, 'ready')
  await redis.client('KILL', 'ID', String(await connections.commands.client('ID')))
  await back
  // After whatever the feed sent on its return.
  await connections.commands.ping()
  t.equal(await reads(), 1, 'the subscription heard everything meanwhile: nothing to read again')

  const again = nextLoad()
  await redis.client('KILL', 'TYPE', 'pubsub')
  await again
  t.equal(await reads(), 2, 'a subscription made again reads it again')
})

/** A Redis whose user `app` may not read the feed's keys (`test:*`), an admin connection to it, and `app`'s URL. */
async function refusingReads (t: Test) {
  const server = await RedisServer.start(t)
  const admin = new Redis(server.url)
  t.teardown(() => admin.disconnect())
  await admin.acl('SETUSER', 'app', 'on', '>app-password', '~other:*', '&*', '+@all')
  /** Reads of the set Redis refused so far. */
  const refused = async () => Number(/cmdstat_zscan:.*rejected_calls=(\d+)/.exec(await admin.info('commandstats'))?.[1] ?? 0)
  return { admin, refused, url: `redis://app:app-password@127.0.0.1:${server.port}` }
}

/** A logger whose lines go to `lines`, each as it is logged; `onLine` is called with each. */
function linesLog (lines: string[], onLine: (line: string) => void = () => {}) {
  return pino({ level: 'info' }, { write: (line: string) => { lines.push(line); onLine(line) } })
}

t.test('Redis: a read of the set that failed, the connections up, is tried again, later each time, until one passes', async t => {
  // Only the Date is fake: the retries wait in real time, the test moves the Date past a failover's length.
  const clock = fakeClock(t, ['Date'])
  const { admin, refused, url } = await refusingReads(t)
  const connections = connectRedis(url, 'test:', silentLog)
  t.teardown(() => connections.close())
  const lines: string[] = []
  let loaded = false
  new RedisRevocationFeed(connections, 'test:', linesLog(lines)).start(() => {}, () => { loaded = true })
  await within(until(() => lines.length > 0), 'the first failure')
  // Tried again 250 ms after the first failure, 500 ms after the second, 1 s after the third: not at a steady pace.
  await new Promise(resolve => setTimeout(resolve, 1_500))
  const tries = await refused()
  t.ok(tries >= 2 && tries <= 4, `tried again, backing off (${tries} tries in 1.5 s)`)
  /** The levels of the lines about the failing read so far. */
  const failing = () => lines.filter(line => line.includes('could not read the revocations in force from Redis (test:revoked)')).map(line => JSON.parse(line).level)
  t.same(failing(), [40], 'the failure logged once, as a warning: a failover\'s length')
  clock.tick(10_000)
  await within(until(() => failing().length > 1), 'the next failure')
  t.same(failing(), [40, 50], 'still failing 10 s on: an error, once')
  t.match(lines.at(-1), /\(failing for 1\d s, longer than a failover\)/)

  await admin.acl('SETUSER', 'app', '~test:*')
  await within(until(() => loaded), 'the set read once Redis lets it')
  t.match(lines.at(-1), /read the revocations in force from Redis \(test:revoked\) after \d+ failed tries/, 'the late read is logged')
})

t.test('Redis: stopped, a feed tries no read again, whether one was failing or waiting to be tried again', async t => {
  const { refused, url } = await refusingReads(t)
  const connections = connectRedis(url, 'test:', silentLog)
  t.teardown(() => connections.close())
  const lines: string[] = []
  // Stopped as the read fails (the failure is logged before anything else is done with it)...
  const failing: RedisRevocationFeed = new RedisRevocationFeed(connections, 'test:', linesLog(lines, () => failing.stop()))
  failing.start(() => {}, () => {})
  await within(until(() => lines.length === 1), 'the first read failing')
  // ...and once it waits to try again.
  const waiting = new RedisRevocationFeed(connections, 'test:', linesLog(lines))
  waiting.start(() => {}, () => {})
  await within(until(() => lines.length === 2), 'the second feed\'s read failing')
  await new Promise(resolve => setImmediate(resolve))
  waiting.stop()
  // Past when each would have tried again (250 ms), on connections still up.
  await new Promise(resolve => setTimeout(resolve, 1_000))
  t.equal(await refused(), 2, 'one read each, none after')
})

t.test('Redis: one read of the set at a time; a subscription made again during one reads once it is done', async t => {
  const server = await RedisServer.start(t)
  const admin = new Redis(server.url)
  t.teardown(() => admin.disconnect())
  const link = new Link(server.port)
  const busy = link.hold('zscan')
  await link.up()
  t.teardown(() => link.down())
  // An app's own client with no command timeout: the read waits for as long as Redis is busy.
  const commands = new Redis(`redis://127.0.0.1:${link.port}`)
  t.teardown(() => commands.disconnect())
  const connections = connectRedis(commands, 'test:', silentLog)
  t.teardown(() => connections.close())
  let subscriptions = 0
  let loads = 0
  const counted: RedisConnections = {
    ...connections,
    listen: (channel, onMessage, onSubscribed) => connections.listen(channel, onMessage, (since) => {
      subscriptions++
      onSubscribed?.(since)
    })
  }
  new RedisRevocationFeed(counted, 'test:', silentLog).start(() => {}, () => { loads++ })
  await within(busy.held, 'the first read')
  await admin.client('KILL', 'TYPE', 'pubsub')
  await within(until(() => subscriptions === 2), 'the subscription made again')
  // What the feed sent before this PING, on the same connection, reached the link before it.
  commands.ping().catch(() => {})
  await within(until(() => busy.sent().includes('ping')), 'the PING')
  t.equal(busy.sent().split('zscan').length - 1, 1, 'no second read while the first is unanswered')

  busy.release()
  await within(until(() => loads === 2), 'both reads')
  t.equal(Number(/cmdstat_zscan:calls=(\d+)/.exec(await admin.info('commandstats'))?.[1]), 2, 'the second read once the first was done')
})

t.test('Redis Cluster', async t => {
  const cluster = await RedisCluster.start(t)

  t.test('the contract', async t => {
    const processes: RedisConnections[] = []
    t.teardown(() => Promise.all(processes.map(p => p.close())))
    await revocationFeedContract(t, () => {
      // Each process has its own client, as each app has.
      const connections = connectRedis(cluster.client(t), 'test:', silentLog)
      processes.push(connections)
      return new RedisRevocationFeed(connections, 'test:', silentLog)
    }, true)
    t.same(await cluster.keys('test:*'), ['test:revoked'], 'one key, on one node')
  })

  t.test('a process whose subscriber\'s node goes away listens on another, and misses nothing', async t => {
    const client = cluster.client(t)
    // The subscriber connects to any node; the test needs the revocation set on another one, to write it meanwhile.
    for (let attempt = 0; ; attempt++) {
      const prefix = `moved${attempt}:`
      const connections = connectRedis(cluster.client(t), 'test:', silentLog)
      t.teardown(() => connections.close())
      const listener = await started(new RedisRevocationFeed(connections, prefix, silentLog))
      const counts = await cluster.onEachNode(async node => Number((await node.pubsub('NUMSUB', `${prefix}revocations`))[1]))
      const subscribed = cluster.nodes[counts.indexOf(1)]!
      if (subscribed === await cluster.nodeOf(`${prefix}revoked`)) {
        await connections.close()
        continue
      }
      await subscribed.stop()
      const heard = listener.next()
      await new RedisRevocationFeed({ commands: client } as RedisConnections, prefix, silentLog).publish('while-away', Date.now() + 60_000)
      await heard
      t.match(listener.heard.at(-1), ['while-away', Number], 'heard once listening on another node (or replayed from the set)')
      t.equal(await cluster.subscribers(`${prefix}revocations`), 1, 'it listens on one of the nodes left')
      break
    }
  })
})
