// The line telling of a gap reads as the app's own lines do: written by the app's logger, with its level names, its
// message key, its base and its timestamp, whatever level that logger lets through, and to nobody but the subscriber.
import t from 'tap'
import Fastify from 'fastify'
import { pino } from 'pino'
import { noticeWriter } from '../../lib/logs/notice-writer.js'
import { Redis } from 'ioredis'
import { within } from '../helpers.js'
import { RedisServer } from '../redis-server.js'
import { framesUntil, logsApp, subscribedToLogs, subscriber } from './subscribers.js'

/** A logger writing unlike pino's default, at `error` but for its child at `info`; the lines it writes, in `written`. */
function appLogger () {
  const written: string[] = []
  const logger = pino({
    level: 'error',
    formatters: { level: (label: string) => ({ level: label }) },
    messageKey: 'message',
    base: { service: 'api' },
    timestamp: pino.stdTimeFunctions.isoTime
  }, { write (line: string) { written.push(line) } })
  return { logger, written }
}

t.test('the notice of a line missed is written as the app\'s logger writes, past its level, and to nobody else', async t => {
  const { logger, written } = appLogger()
  const maxBufferedBytes = 16 * 1024
  const { app, url } = await logsApp(t, { maxBufferedBytes }, { loggerInstance: logger })
  const token = app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const client = await subscriber(t, url('/websocket/logs'), token, 'info')
  // A worker's logger at info under an app logging errors only: a warning would not pass the app's own level.
  const worker = app.log.child({ worker: 1 }, { level: 'info' })
  worker.info({ padding: 'x'.repeat(maxBufferedBytes) }, 'too long')
  worker.info('after')
  const frames = await within(framesUntil(client, data => data.message === 'after'), 'the line after')
  const [notice, after] = frames.slice(-2).map(frame => frame.data!)
  t.match(after, { level: 'info', service: 'api', time: /^\d{4}-/, message: 'after' }, 'the app\'s line')
  t.match(notice, { level: 'warn', service: 'api', time: /^\d{4}-/, missed: 1, message: /^1 log line missed since / }, 'the notice, alike')
  t.notOk('pid' in notice! || 'msg' in notice! || 'hostname' in notice!, 'none of pino\'s defaults the app left out')
  t.notOk(written.some(line => line.includes('missed since')), 'not in the app\'s own output')
  await client.close()
})

t.test('with Redis, the notice of lines not published is written as the app\'s logger writes, and published once', async t => {
  const server = await RedisServer.start(t)
  const redis = new Redis(server.url, { maxRetriesPerRequest: null })
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  await redis.ping()
  const maxBufferedBytes = 16 * 1024
  const { logger, written } = appLogger()
  const a = await logsApp(t, { redis, maxBufferedBytes }, { loggerInstance: logger })
  const b = await logsApp(t, { redis: server.url, maxBufferedBytes })
  const token = b.app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const client = await subscriber(t, b.url('/websocket/logs'), token)
  await subscribedToLogs(redis, 2)
  a.app.log.error({ padding: 'x'.repeat(maxBufferedBytes) }, 'too long')
  a.app.log.error('after')
  const frames = await within(framesUntil(client, data => data.message === 'after'), 'the line after')
  t.match(frames.slice(-2).map(frame => frame.data), [
    { level: 'error', service: 'api', time: /^\d{4}-/, dropped: 1, message: /^1 log line of this process not published since / },
    { level: 'error', message: 'after' }
  ])
  t.equal(frames.filter(frame => frame.data!.dropped !== undefined).length, 1, 'once')
  t.notOk(written.some(line => line.includes('not published since')), 'not in the app\'s own output')
  await client.close()
})

t.test('under a logger that is not pino, the notice is written as pino writes by default', async t => {
  const app = Fastify({ logger: false })
  const line = JSON.parse(noticeWriter(app.log)(Infinity, { missed: 2 }, 'two missed'))
  t.match(line, { level: 60, time: Number, pid: process.pid, hostname: String, missed: 2, msg: 'two missed' }, 'at fatal, the most severe')
  await app.close()
})

t.test('a notice takes the logger\'s own level at or above its own, custom levels included', async t => {
  const written: string[] = []
  const logger = pino({ customLevels: { notice: 45, emergency: 70 }, useOnlyCustomLevels: true, level: 'notice' }, { write (line: string) { written.push(line) } })
  const write = noticeWriter(logger)
  t.equal(JSON.parse(write(40, {}, 'a warning')).level, 45, 'no warn: the next level up')
  t.equal(JSON.parse(write(Infinity, {}, 'a line whose level was not read')).level, 70, 'the most severe')
  t.same(written, [], 'written to nobody')
})

t.test('a logger whose lines are not JSON (a streamWrite hook) has its notices written as pino writes by default', async t => {
  const logger = pino({ hooks: { streamWrite: (line: string) => `[app] ${line}` } }, { write () {} })
  t.match(JSON.parse(noticeWriter(logger)(40, { missed: 1 }, 'one missed')), { level: 40, pid: process.pid, missed: 1, msg: 'one missed' })
})

t.test('a notice carries the logger\'s msgPrefix, as its other lines do', async t => {
  const written: string[] = []
  const logger = pino({ msgPrefix: '[api] ' }, { write (line: string) { written.push(line) } })
  logger.warn('a line')
  t.match(JSON.parse(written[0]!), { msg: '[api] a line' }, 'the app\'s line')
  t.match(JSON.parse(noticeWriter(logger)(40, { missed: 1 }, 'one missed')), { level: 40, missed: 1, msg: '[api] one missed' }, 'the notice')
})
