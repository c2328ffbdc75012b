// Lines dropped on `/websocket/logs` to bound memory (a slow subscriber, a line too long, lines Redis did not take):
// whoever would have had them is told how many it missed, once per gap, rather than reading the gap as a quiet time.
import { once } from 'node:events'
import t, { type Test } from 'tap'
import type { RealtimeOptions } from '../../lib/index.js'
import type { Connection } from '../../lib/connection/connection.js'
import { leadingLevel } from '../../lib/logs/line-level.js'
import { awaitingAnswers, within, type Client } from '../helpers.js'
import { Redis } from 'ioredis'
import { RedisServer } from '../redis-server.js'
import { framesUntil, logsApp, subscribedToLogs, subscriber, type LogsFrame } from './subscribers.js'

type Entry = { level: number | string, msg: string, missed?: number, dropped?: number, since?: number, time?: number }
type Frame = LogsFrame<Entry>

const notice = (entry: Entry) => entry.missed !== undefined

/** The frames a subscriber gets until the lines whose message starts with `prefix` it received and those it was told it missed are `logged`. */
async function accounted (client: Client, prefix: string, logged: number): Promise<Frame[]> {
  const frames: Frame[] = []
  let count = 0
  while (count < logged) {
    const [frame] = await framesUntil<Entry>(client, () => true)
    frames.push(frame)
    if (notice(frame.data!)) count += frame.data!.missed!
    else if (frame.data!.dropped !== undefined) count += frame.data!.dropped
    else if (frame.data!.msg.startsWith(prefix)) count++
  }
  return frames
}
const message = (msg: string) => (entry: Entry) => entry.msg === msg

/**
 * Logs turns of `line` (its index) until every one of `connections` holds half of `maxBufferedBytes` unsent (the
 * kernel's buffers, however large, full), then three turns more, each past the cap; returns how many lines it logged.
 */
async function flood (connections: Connection[], maxBufferedBytes: number, line: (i: number) => void): Promise<number> {
  let logged = 0
  let more = 3
  while (more > 0) {
    if (connections.every(connection => connection.socket.bufferedAmount >= maxBufferedBytes / 2)) more--
    for (let i = 0; i < 100; i++) line(logged++)
    await new Promise(resolve => setImmediate(resolve))
  }
  return logged
}

t.test('a subscriber that stops reading, then reads again, is told how many lines it missed and since when, once a gap', async t => {
  const maxBufferedBytes = 256 * 1024
  const { app, url } = await logsApp(t, { maxBufferedBytes })
  const token = app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const info = await subscriber(t, url('/websocket/logs'), token, 'info')
  const errors = await subscriber(t, url('/websocket/logs'), token, 'error')
  app.log.info('before')
  const [own] = await framesUntil(info, message('before'))
  info.ws.pause()
  errors.ws.pause()
  const started = Date.now()
  const padding = 'x'.repeat(16 * 1024)
  // One line in ten an error: far past the cap for both.
  const logged = await flood(app.realtime.connections({ endpoint: 'logs' }) as Connection[], maxBufferedBytes, i => {
    if (i % 10 === 0) app.log.error({ padding }, 'bulk error')
    else app.log.info({ padding }, 'bulk')
  })
  info.ws.resume()
  errors.ws.resume()
  // Nothing more is logged: the last gap (the flood's last turns, all past the cap) is told once the socket has taken
  // what waited, and only then does every line logged show, received or counted.
  const infoFrames = await within(accounted(info, 'bulk', logged), 'the info subscriber\'s notices')
  // The error subscriber counts the error lines alone: the info lines were never its.
  const errorFrames = await within(accounted(errors, 'bulk error', logged / 10), 'the error subscriber\'s notices')
  app.log.error('after')
  infoFrames.push(...await within(framesUntil(info, message('after')), 'the line after the gap'))
  const notices = infoFrames.filter(frame => notice(frame.data!))
  const missed = notices.reduce((sum, frame) => sum + frame.data!.missed!, 0)
  t.ok(missed > 0, `${missed} missed, told in ${notices.length} notices`)
  t.notOk(infoFrames.some((frame, i) => notice(frame.data!) && i > 0 && notice(infoFrames[i - 1].data!)), 'one notice a gap: lines between any two')
  t.equal(infoFrames.at(-2), notices.at(-1), 'the last notice before the line after it, and nothing of the flood after it')
  const { data, node } = notices.at(-1)!
  t.equal(node, own.node, 'named as this process\'s')
  t.ok(data!.since! >= started && data!.since! <= data!.time!, 'since the first line of its gap')
  t.match(data, { level: 50, pid: process.pid, hostname: String, msg: new RegExp(`^${data!.missed} log lines missed since ${new Date(data!.since!).toISOString()}: dropped`) },
    'as pino writes a line: at error, the most severe line it missed')

  const errorNotices = errorFrames.filter(frame => notice(frame.data!))
  t.ok(errorNotices.length > 0 && errorNotices.every(frame => frame.data!.level === 50), `told at error (${errorNotices.length} notices): its filter lets them through`)
  t.same((await within(framesUntil(errors, message('after')), 'the error after')).map(frame => frame.data!.msg), ['after'], 'nothing else')
  await Promise.all([info.close(), errors.close()])
})

t.test('a subscriber that reads misses nothing and is told nothing, and one that missed warnings only hears at warn', async t => {
  const { app, url } = await logsApp(t, { maxBufferedBytes: 256 * 1024 })
  const token = app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const reading = await subscriber(t, url('/websocket/logs'), token, 'info')
  const slow = await subscriber(t, url('/websocket/logs'), token, 'debug')
  for (let i = 0; i < 5000; i++) app.log.info(`burst ${i}`)
  app.log.info('after the burst')
  const frames = await within(framesUntil(reading, message('after the burst')), 'the burst')
  t.equal(frames.filter(frame => frame.data!.msg.startsWith('burst ')).length, 5000, 'every line')
  t.notOk(frames.some(frame => notice(frame.data!)), 'no notice')
  await within(framesUntil(slow, message('after the burst')), 'the burst on the other')

  const [, server] = app.realtime.connections({ endpoint: 'logs' }) as Connection[]
  slow.ws.pause()
  const padding = 'x'.repeat(16 * 1024)
  await flood([server], 256 * 1024, () => app.log.debug({ padding }, 'bulk debug'))
  slow.ws.resume()
  const [told] = (await within(framesUntil(slow, notice), 'the notice')).filter(frame => notice(frame.data!))
  t.match(told.data, { level: 40, missed: Number }, 'debug lines missed: a warning')
  await Promise.all([reading.close(), slow.close()])
})

t.test('a line too long for any subscriber is told as missed to the subscribers of its level', async t => {
  const maxBufferedBytes = 64 * 1024
  const { app, url } = await logsApp(t, { maxBufferedBytes })
  const token = app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const info = await subscriber(t, url('/websocket/logs'), token, 'info')
  const errors = await subscriber(t, url('/websocket/logs'), token, 'error')
  const padding = 'x'.repeat(maxBufferedBytes)
  app.log.info({ padding }, 'too long')
  app.log.debug({ padding }, 'too long, below both')
  app.log.error('an error')
  const frames = await within(framesUntil(info, message('an error')), 'the info subscriber\'s lines')
  t.same(frames.slice(-2).map(frame => [frame.data!.level, frame.data!.missed, frame.data!.msg.replace(/since \S+Z/, 'since <date>')]), [
    [40, 1, '1 log line missed since <date>: dropped, not queued, to bound the server\'s memory (this socket was not reading fast enough, or a line was longer than maxBufferedBytes)'],
    [50, undefined, 'an error']
  ], 'told of the info line, not of the debug one, before the line after it')
  t.same((await within(framesUntil(errors, message('an error')), 'the error subscriber\'s')).map(frame => frame.data!.msg), ['an error'],
    'the error subscriber missed nothing of its level')
  app.log.fatal({ padding }, 'too long, fatal')
  t.match((await within(framesUntil(errors, notice), 'the fatal line\'s notice')).at(-1)!.data, { level: 60, missed: 1 }, 'a fatal line missed: told at fatal')
  await Promise.all([info.close(), errors.close()])
})

t.test('subscribing again changes the level', async t => {
  const { app, url } = await logsApp(t)
  const token = app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const client = await subscriber(t, url('/websocket/logs'), token, 'info')
  client.send({ type: 'subscribe', log_level: 'error' })
  t.same(await client.next(), { type: 'logs', event: 'subscribe', log_level: 'error' })
  app.log.warn('below error now')
  app.log.error('an error')
  t.same((await within(framesUntil(client, message('an error')), 'the error')).map(frame => frame.data!.msg), ['an error'])
  await client.close()
})

t.test('a line\'s level read from its start: pino\'s number, or a name the logger knows; else the most severe', async t => {
  const values = { info: 30, notice: 45 }
  t.equal(leadingLevel('{"level":30,"time":1}', values), 30)
  t.equal(leadingLevel('{"level":"notice","time":1}', values), 45)
  t.equal(leadingLevel('{"level":"ERROR","time":1}', values), Infinity)
  t.equal(leadingLevel('{"severity":"info","time":1}', values), Infinity)
  t.equal(leadingLevel('{"level":"toString"}', values), Infinity)
})

t.test('with Redis, the other processes\' subscribers are told how many lines a process did not publish', async t => {
  const server = await RedisServer.start(t)
  // BullMQ's options: no command timeout.
  const redis = new Redis(server.url, { maxRetriesPerRequest: null })
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  await redis.ping() // up before the app logs: no line of its start dropped
  const maxBufferedBytes = 8 * 1024 * 1024
  const a = await logsApp(t, { redis, maxBufferedBytes })
  const b = await logsApp(t, { redis: server.url, maxBufferedBytes })
  const token = b.app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const client = await subscriber(t, b.url('/websocket/logs'), token)
  await subscribedToLogs(redis, 2)
  a.app.log.info('from a')
  const got = await within(framesUntil(client, message('from a')), 'a line from a')
  t.notOk(got.some(frame => notice(frame.data!) || frame.data!.dropped !== undefined), 'nothing dropped, nothing told')
  const aNode = got.at(-1)!.node

  // A line too long for any subscriber: not published, and told with the next line.
  a.app.log.warn({ padding: 'x'.repeat(maxBufferedBytes) }, 'too long')
  a.app.log.info('after the long line')
  const afterLong = await within(framesUntil(client, message('after the long line')), 'the line after the long one')
  t.match(afterLong.slice(-2).map(frame => frame.data), [{ level: 40, dropped: 1, msg: /^1 log line of this process not published since / }, { msg: 'after the long line' }])
  t.equal(afterLong.at(-2)!.node, aNode, 'named as the process that dropped it')

  // Redis hangs with the connection up: 10,000 lines await its answer, the others are dropped.
  await redis.ping()
  server.pause()
  for (let i = 0; i < 12_000; i++) a.app.log.info(`request ${i} completed`)
  t.equal(awaitingAnswers(redis), 10_000, 'ten thousand await Redis')
  server.resume()
  // Nothing more is logged: the notice goes once Redis has answered them.
  const frames = await within(framesUntil<Entry>(client, entry => entry.dropped !== undefined), 'the notice of the lines not published')
  const requests = frames.filter(frame => /^request \d+ completed$/.test(frame.data!.msg)).length
  t.equal(requests, 10_000, 'the ten thousand arrived')
  t.match(frames.at(-1), { node: aNode, data: { level: 40, dropped: 2000, msg: /^2000 log lines of this process not published since .*Redis was away or slow to answer/ } },
    'then the line saying how many the process did not publish')
  await client.close()
})

t.test('under a maxBufferedBytes shorter than the notice, the notice still goes, once nothing waits for the socket', async t => {
  const maxBufferedBytes = 300
  const { app, url } = await logsApp(t, { maxBufferedBytes })
  const token = app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const client = await subscriber(t, url('/websocket/logs'), token, 'info')
  app.log.info({ padding: 'x'.repeat(maxBufferedBytes) }, 'too long')
  // In the same turn: the notice, past the cap, leaves no room for it. Nothing more is logged.
  app.log.info('too long, the line after')
  const frames = await within(accounted(client, 'too long', 2), 'the lines accounted for')
  const notices = frames.filter(frame => notice(frame.data!))
  t.match(notices[0].data, { level: 40, missed: 1 }, 'the long line told')
  t.ok(JSON.stringify(notices[0]).length > maxBufferedBytes, 'in a notice longer than the cap')
  app.log.info('later')
  t.same((await within(framesUntil(client, message('later')), 'the line later')).map(frame => frame.data!.msg), ['later'], 'then lines again')
  await client.close()
})

/** Two apps on one Redis, `a` through the app's own client `redis`, and an admin subscribed to `b`'s logs. */
async function twoProcesses (t: Test, aOptions: RealtimeOptions = {}) {
  const server = await RedisServer.start(t)
  const redis = new Redis(server.url, { maxRetriesPerRequest: null })
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  await redis.ping()
  const a = await logsApp(t, { redis, ...aOptions })
  const b = await logsApp(t, { redis: server.url })
  const token = b.app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const client = await subscriber(t, b.url('/websocket/logs'), token)
  await subscribedToLogs(redis, 2)
  return { redis, a, client }
}

t.test('with Redis, a quiet process publishes the notice of the lines too long of a turn at its end', async t => {
  const { a, client } = await twoProcesses(t)
  a.app.log.error({ padding: 'x'.repeat(1024 * 1024) }, 'too long')
  a.app.log.warn({ padding: 'x'.repeat(1024 * 1024) }, 'too long')
  // Nothing more is logged.
  const [told] = await within(framesUntil(client, () => true), 'the notice')
  t.match(told.data, { level: 50, dropped: 2, msg: /^2 log lines of this process not published since / }, 'one notice for both')
  await client.close()
})

t.test('with Redis, a process under a maxBufferedBytes shorter than the notice still publishes it, once Redis has answered all', async t => {
  const maxBufferedBytes = 250
  const { a, client } = await twoProcesses(t, { maxBufferedBytes })
  a.app.log.warn({ padding: 'x'.repeat(maxBufferedBytes) }, 'too long')
  a.app.log.info('after')
  // The notice, past the cap, leaves no room for the line after it: that one is told of too.
  const frames = await within(accounted(client, 'after', 2), 'the lines accounted for')
  t.match(frames[0].data, { level: 40, dropped: 1 }, 'the long line told')
  t.ok(JSON.stringify(frames[0].data).length > maxBufferedBytes, 'in a notice longer than the cap')
  await client.close()
})

t.test('with Redis, a quiet process publishes the notice of the lines it dropped while Redis was away once it is back', async t => {
  const { redis, a, client } = await twoProcesses(t)
  const ended = once(redis, 'end')
  redis.disconnect()
  await ended
  a.app.log.error('while away')
  a.app.log.info('while away')
  await redis.connect()
  // Nothing more is logged: the notice comes all the same, first of all.
  const [told] = await within(framesUntil(client, () => true), 'the notice')
  t.match(told.data, { level: 50, dropped: 2, msg: /^2 log lines of this process not published since / })
  a.app.log.info('after')
  t.same((await within(framesUntil(client, message('after')), 'the line after')).map(frame => frame.data!.msg), ['after'], 'once')
  await client.close()
})
