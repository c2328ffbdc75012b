// The logs endpoint (PROTOCOL.md section 6): the app's log lines streamed to admin subscribers.
import t from 'tap'
import type { Test } from 'tap'
import Fastify from 'fastify'
import realtime from '../../lib/index.js'
import type { Connection } from '../../lib/connection/connection.js'
import { admin, awaitingAnswers, build, connect, fakeClock, refusedWith, secret, within, type Client } from '../helpers.js'
import { Redis, type RedisOptions } from 'ioredis'
import { RedisServer } from '../redis-server.js'
import { logsApp, subscriber } from './subscribers.js'

/** The next `logs` data frame whose message is `msg`, skipping other lines (request logs and the like). */
async function line (client: Client, msg: string): Promise<{ data: Record<string, unknown>, node: string }> {
  for (;;) {
    const frame = await client.next() as { type: string, data?: { msg?: string }, node: string }
    if (frame.type === 'logs' && frame.data?.msg === msg) return frame as { data: Record<string, unknown>, node: string }
  }
}

/** The messages of the `logs` lines a subscriber gets up to the one whose message is `last`, that one included. */
async function messagesUntil (client: Client, last: string): Promise<string[]> {
  const messages: string[] = []
  for (;;) {
    const frame = await client.next() as { type: string, data?: { msg?: string } }
    if (frame.type !== 'logs' || frame.data === undefined) continue
    messages.push(String(frame.data.msg))
    if (frame.data.msg === last) return messages
  }
}

t.test('an admin subscribes and gets the app\'s lines of its level and above, tagged with the node', async t => {
  const { app, url } = await logsApp(t)
  const token = app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const info = await subscriber(t, url('/websocket/logs'), token, 'info')
  const warn = await subscriber(t, url('/websocket/logs'), token, 'warn')
  app.log.debug('not for anyone')
  app.log.info('for info')
  app.log.warn('for both')
  const first = await line(info, 'for info')
  t.match(first, { type: 'logs', data: { level: 30, msg: 'for info' }, node: String })
  t.equal((await line(info, 'for both')).data.level, 40)
  t.match(await warn.next(), { type: 'logs', data: { level: 40, msg: 'for both' } }, 'the warn subscriber skipped info')

  info.send({ type: 'unsubscribe' })
  t.same(await info.next(), { type: 'logs', event: 'unsubscribe' })
  app.log.warn('after unsubscribe')
  await line(warn, 'after unsubscribe')
  info.send({ type: 'ping' })
  t.same(await info.next(), { type: 'pong' }, 'nothing arrived on the unsubscribed socket meanwhile')
  await Promise.all([info.close(), warn.close()])
})

t.test('an app whose pino writes level names (formatters.level) streams by level too, its custom levels included', async t => {
  const { app, url } = await build(t, { users: [admin] }, {
    logger: { level: 'trace', stream: { write () {} }, customLevels: { notice: 45 }, formatters: { level: (label: string) => ({ level: label }) } }
  })
  const token = app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const warn = await subscriber(t, url('/websocket/logs'), token, 'warn')
  app.log.info('below warn')
  app.log.error('disk full')
  t.match(await warn.next(), { type: 'logs', data: { level: 'error', msg: 'disk full' } }, 'the error line, not the info one')
  ;(app.log as unknown as { notice: (msg: string) => void }).notice('a notice')
  t.match(await warn.next(), { type: 'logs', data: { level: 'notice', msg: 'a notice' } }, 'a custom level above warn')
  await warn.close()
})

t.test('a line whose level cannot be read reaches every subscriber, whatever its level', async t => {
  // Google Cloud's `severity`, and an upper-case name pino does not know: neither can be ranked.
  const { app, url } = await build(t, { users: [admin] }, {
    logger: { level: 'trace', stream: { write () {} }, formatters: { level: (label: string) => label === 'debug' ? { level: 'DEBUG' } : { severity: label } } }
  })
  const token = app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const fatal = await subscriber(t, url('/websocket/logs'), token, 'fatal')
  app.log.info('no level')
  t.match((await line(fatal, 'no level')).data, { severity: 'info' })
  app.log.debug('unknown level')
  t.match((await line(fatal, 'unknown level')).data, { level: 'DEBUG' })
  await fatal.close()
})

t.test('the answers to subscribe and unsubscribe carry the message\'s uid, and none without one', async t => {
  const { app, url } = await logsApp(t)
  const client = await connect(url('/websocket/logs'))
  client.send({ type: 'auth', access_token: app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token })
  await client.next()
  client.send({ type: 'subscribe', log_level: 'warn', uid: 's' })
  t.same(await client.next(), { type: 'logs', event: 'subscribe', log_level: 'warn', uid: 's' })
  client.send({ type: 'unsubscribe', uid: 1 })
  t.same(await client.next(), { type: 'logs', event: 'unsubscribe', uid: 1 })
  client.send({ type: 'subscribe', log_level: 'error' })
  t.same(await client.next(), { type: 'logs', event: 'subscribe', log_level: 'error' })
  await client.close()
})

t.test('non-admins get FORBIDDEN, bad levels INVALID_PAYLOAD', async t => {
  const { app, url } = await logsApp(t)
  const client = await connect(url('/websocket/logs'))
  client.send({ type: 'auth', access_token: app.realtime.signAccessToken({ user: 'e', role: 'editor', admin: false }).access_token })
  await client.next()
  client.send({ type: 'subscribe', log_level: 'info', uid: 's' })
  t.same(await client.next(), {
    type: 'subscribe', status: 'error', error: { code: 'FORBIDDEN', message: "You don't have permission to access this." }, uid: 's'
  })
  client.send({ type: 'unsubscribe', uid: 'u' })
  t.same(await client.next(), {
    type: 'unsubscribe', status: 'error', error: { code: 'FORBIDDEN', message: "You don't have permission to access this." }, uid: 'u'
  }, 'as Directus answers a non-admin unsubscribe')
  client.send({ type: 'auth', access_token: app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token })
  await client.next()
  for (const level of ['loud', 5, undefined, 'toString']) {
    client.send({ type: 'subscribe', log_level: level })
    t.match(await client.next(), {
      type: 'subscribe', status: 'error', error: { code: 'INVALID_PAYLOAD', message: '"log_level" must be one of trace, debug, info, warn, error, fatal.' }
    }, `level ${level}`)
  }
  await client.close()
})

t.test('streamed lines never carry a token, a password or an authorization header', async t => {
  const { app, url } = await logsApp(t)
  const token = app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const client = await subscriber(t, url('/websocket/logs'), token)
  app.log.info({
    password: 'hunter2',
    nested: { refresh_token: 'r-secret', headers: { authorization: 'Bearer b-secret', cookie: 'c=secret' } },
    url: `/websocket?access_token=${token}`,
    list: [{ access_token: 'a-secret' }]
  }, 'with secrets')
  const { data } = await line(client, 'with secrets')
  t.same(data.nested, { refresh_token: '[redacted]', headers: { authorization: '[redacted]', cookie: '[redacted]' } })
  t.equal(data.password, '[redacted]')
  t.equal(data.url, '/websocket?access_token=[redacted]')
  t.same(data.list, [{ access_token: '[redacted]' }])

  // Fastify's own request line for a socket opened with a URL token.
  await (await connect(url(`/websocket?access_token=${token}`))).close()
  for (;;) {
    const frame = await client.next() as { data: { req?: { url: string } } }
    if (frame.data.req?.url.startsWith('/websocket?')) {
      t.equal(frame.data.req.url, '/websocket?access_token=[redacted]')
      break
    }
  }
  await client.close()
})

t.test('a subscriber whose credential expires gets nothing more until it is an admin again', async t => {
  const clock = fakeClock(t)
  const { app, url } = await logsApp(t)
  // Two subscribers expiring in the same second, and a line logged as each expiry is reported: the second socket has
  // heard TOKEN_EXPIRED by the time the first one's line is logged, and must not get it.
  app.realtime.on('expire', ({ code }) => app.log.info(`expired: ${code}`))
  const exp = Math.floor(Date.now() / 1000) + 2
  const clients: Client[] = []
  for (const user of ['a', 'b']) {
    const client = await connect(url('/websocket/logs'))
    client.send({ type: 'auth', access_token: app.realtime.jwt.sign({ id: user, admin_access: true, exp }) })
    await client.next()
    client.send({ type: 'subscribe', log_level: 'info' })
    await client.next()
    clients.push(client)
  }
  clock.tick(exp * 1000 - Date.now())
  for (const client of clients) {
    for (;;) {
      const frame = await client.next() as { error?: { code: string } }
      if (frame.error?.code === 'TOKEN_EXPIRED') break
    }
  }
  app.log.info('while public')
  for (const client of clients) {
    client.send({ type: 'ping', uid: 'p' })
    t.same(await client.next(), { type: 'pong', uid: 'p' }, 'no line while public, not even of the expiries')
  }
  const [client, other] = clients
  client.send({ type: 'auth', access_token: app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token })
  t.same(await client.next(), { type: 'auth', status: 'ok' })
  app.log.info('admin again')
  await line(client, 'admin again')
  await Promise.all([client.close(), other.close()])
})

t.test('WEBSOCKETS_LOGS_AUTH is honoured: strict refuses the upgrade, public opens as nobody', async t => {
  const strict = await logsApp(t, { env: { WEBSOCKETS_LOGS_AUTH: 'strict' } })
  t.equal((await refusedWith(strict.url('/websocket/logs'))).status, 401)
  const token = strict.app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const byUrl = await connect(strict.url(`/websocket/logs?access_token=${token}`))
  byUrl.send({ type: 'subscribe', log_level: 'error' })
  t.same(await byUrl.next(), { type: 'logs', event: 'subscribe', log_level: 'error' })
  await byUrl.close()

  const open = await logsApp(t, { logs: { auth: 'public' } })
  const client = await connect(open.url('/websocket/logs'))
  client.send({ type: 'subscribe', log_level: 'info' })
  t.match(await client.next(), { error: { code: 'FORBIDDEN' } })
  await client.close()
})

t.test('a slow subscriber never makes the server buffer without bound: its lines are dropped', async t => {
  const maxBufferedBytes = 256 * 1024
  const { app, url } = await logsApp(t, { maxBufferedBytes })
  const token = app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const client = await subscriber(t, url('/websocket/logs'), token)
  const server = app.realtime.connections({ endpoint: 'logs' })[0] as Connection
  client.ws.pause() // stops reading: TCP back-pressure builds up to the server
  const padding = 'x'.repeat(16 * 1024)
  let peak = 0
  for (let i = 0; i < 2000; i++) {
    app.log.info({ padding }, 'bulk')
    peak = Math.max(peak, server.socket.bufferedAmount)
    if (i % 100 === 0) await new Promise(resolve => setImmediate(resolve))
  }
  t.ok(peak > 0, 'the client really stopped reading')
  t.ok(peak <= maxBufferedBytes, `buffered at most the limit (peak ${peak})`)
  client.ws.resume()
  await client.close()
})

t.test('the lines logged in one turn reach each subscriber in one write, each serialized once, in order', async t => {
  const { app, url } = await logsApp(t)
  const token = app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const clients: Client[] = []
  for (let i = 0; i < 20; i++) clients.push(await subscriber(t, url('/websocket/logs'), token, i % 2 === 0 ? 'info' : 'warn'))
  // The writes each subscriber's TCP socket makes: what the logging app pays a system call for.
  const writes: number[] = []
  for (const [index, connection] of app.realtime.connections({ endpoint: 'logs' }).entries()) {
    const tcp = connection.request.raw.socket as unknown as Record<'_write' | '_writev', (...args: unknown[]) => void>
    writes[index] = 0
    for (const method of ['_write', '_writev'] as const) {
      const own = tcp[method]
      tcp[method] = function (...args) { writes[index]++; own.apply(this, args) }
    }
  }
  const stringify = JSON.stringify
  let serialized = 0
  // The logs frames alone: the logger's own serializing is not the stream's (pino's differs across Node versions).
  JSON.stringify = ((...args: Parameters<typeof stringify>) => {
    if ((args[0] as { type?: unknown } | null)?.type === 'logs') serialized++
    return stringify(...args)
  }) as typeof stringify
  for (let i = 0; i < 200; i++) app.log[i % 4 === 0 ? 'warn' : 'info'](`line ${i}`)
  app.log.debug('for nobody')
  await new Promise(resolve => setImmediate(resolve))
  JSON.stringify = stringify
  t.same(writes, Array(20).fill(1), '200 lines, one write per subscriber')
  t.equal(serialized, 200, 'each line serialized once for 20 subscribers, the debug one not at all')
  const infos = Array.from({ length: 200 }, (_, i) => `line ${i}`)
  const warns = infos.filter((_, i) => i % 4 === 0)
  // The later subscribers' upgrades were logged too.
  const ours = (messages: string[]) => messages.filter(message => message.startsWith('line '))
  t.same(ours(await messagesUntil(clients[0], 'line 199')), infos, 'an info subscriber got them all, in order')
  t.same(ours(await messagesUntil(clients[1], 'line 196')), warns, 'a warn subscriber its level\'s')
  await Promise.all(clients.map(client => client.close()))
})

t.test('a burst logged in one turn, past maxBufferedBytes, reaches a subscriber that reads whole', async t => {
  // Sent in batches the kernel takes at once: one write of them all would be counted unsent until the next turn, and
  // every line past the first maxBufferedBytes dropped.
  const { app, url } = await logsApp(t, { maxBufferedBytes: 256 * 1024 })
  const token = app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const client = await subscriber(t, url('/websocket/logs'), token)
  for (let i = 0; i < 5000; i++) app.log.info(`burst ${i}`)
  await new Promise(resolve => setTimeout(resolve, 50))
  app.log.info('after the burst')
  const burst = (await messagesUntil(client, 'after the burst')).filter(message => message.startsWith('burst '))
  t.equal(burst.length, 5000, 'about 750 KB in one turn, every line')
  await client.close()
})

t.test('the endpoint can be left out, and a logger that is not pino streams nothing', async t => {
  const off = await logsApp(t, { logs: false })
  t.notOk(off.app.hasRoute({ method: 'GET', url: '/websocket/logs' }))

  const lines: string[] = []
  const custom = {
    level: 'info',
    info: (message: string) => { lines.push(message) },
    error () {},
    debug () {},
    fatal () {},
    warn () {},
    trace () {},
    silent () {},
    child () { return custom }
  }
  const app = Fastify({ loggerInstance: custom as never })
  await app.register(realtime, { env: {}, secret })
  t.teardown(() => app.close())
  await app.ready()
  t.ok(app.hasRoute({ method: 'GET', url: '/websocket/logs' }))
})

t.test('with Redis, a subscriber on one process gets the lines of every process', async t => {
  const server = await RedisServer.start(t)
  const a = await logsApp(t, { redis: server.url })
  const b = await logsApp(t, { redis: server.url })
  const token = b.app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const client = await subscriber(t, b.url('/websocket/logs'), token)
  // The subscription to Redis may still be on its way: log until a line comes through.
  const arrived = line(client, 'from a')
  let got: { node: string } | undefined
  for (let attempt = 0; got === undefined && attempt < 200; attempt++) {
    a.app.log.info('from a')
    got = await Promise.race([arrived, new Promise<undefined>(resolve => setTimeout(resolve, 50))])
  }
  if (!got) throw new Error('no line from the other process')
  b.app.log.info('from b')
  const own = await line(client, 'from b')
  t.not(got.node, own.node, 'each line names the process that logged it')
  await client.close()
})

t.test('with Redis away, a subscriber still gets its own process\'s lines, the one saying Redis is away included', async t => {
  const server = await RedisServer.start(t)
  const { app, url } = await logsApp(t, { redis: server.url })
  const token = app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const client = await subscriber(t, url('/websocket/logs'), token)
  await server.stop()
  t.match(await within(line(client, 'Redis (subscriber) unavailable; retrying'), 'the outage\'s line'), { data: { level: 40 } }, 'a warning')
  app.log.error('database down, here is why')
  await within(line(client, 'database down, here is why'), 'a line logged during the outage')
  await client.close()
})

t.test('with the app\'s own Redis client queueing commands while Redis is away, log lines are not queued', async t => {
  const server = await RedisServer.start(t)
  // BullMQ requires `maxRetriesPerRequest: null`: the client keeps every command until Redis is back.
  const redis = new Redis(server.url, { maxRetriesPerRequest: null })
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  const { app, url } = await logsApp(t, { redis })
  const token = app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const client = await subscriber(t, url('/websocket/logs'), token)
  const away = new Promise(resolve => redis.once('close', resolve))
  await server.stop()
  await away
  const { offlineQueue } = redis as unknown as { offlineQueue: { length: number } }
  const before = offlineQueue.length
  for (let i = 0; i < 2000; i++) app.log.info('request completed')
  t.equal(offlineQueue.length, before, 'nothing more waits for Redis')
  await line(client, 'request completed')
  await client.close()
})

/** What goes over the logs channel, as another process would hear it. */
async function overRedis (t: Test, server: RedisServer): Promise<string[]> {
  const heard: string[] = []
  const listener = new Redis(server.url)
  t.teardown(() => listener.disconnect())
  listener.on('message', (_channel: string, message: string) => heard.push(message))
  await listener.subscribe('realtime:logs')
  return heard
}

/** The app's own client, made with `options`, and how many of its commands await Redis's answer. */
function appClient (t: Test, server: RedisServer, options: RedisOptions) {
  const redis = new Redis(server.url, options)
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  return { redis, unanswered: () => awaitingAnswers(redis) }
}

t.test('with the app\'s own Redis client and Redis hung, at most 10,000 lines await its answer: the others are not published', async t => {
  const server = await RedisServer.start(t)
  const heard = await overRedis(t, server)
  // BullMQ's options: no command timeout, and the plugin checks the health of its own connections only.
  const { redis, unanswered } = appClient(t, server, { maxRetriesPerRequest: null })
  // Room for every line awaiting Redis and for the subscriber's frames: the count is the bound here, not the bytes.
  const { app, url } = await logsApp(t, { redis, maxBufferedBytes: 8 * 1024 * 1024 })
  const token = app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const client = await subscriber(t, url('/websocket/logs'), token)
  await redis.ping() // every line published so far answered
  // Stopped, its kernel still accepts: the connection stays ready, and nothing is answered.
  server.pause()
  for (let i = 0; i < 12_000; i++) app.log.info(`request ${i} completed`)
  t.equal(unanswered(), 10_000, 'ten thousand lines await Redis, not twelve thousand')
  await within(line(client, 'request 11999 completed'), 'this process\'s own subscriber gets every line')

  server.resume()
  await redis.ping()
  app.log.info('answered: published again')
  while (!heard.some(message => message.includes('answered: published again'))) await new Promise(resolve => setTimeout(resolve, 10))
  const published = heard.filter(message => /request \d+ completed/.test(message))
  t.equal(published.length, 10_000, 'the ten thousand reached the other processes once Redis answered')
  t.match(published.at(-1), /request 9999 completed/, 'the first ten thousand: the lines after them were dropped')
  await client.close()
})

t.test('with Redis well, a burst logged in one turn reaches the other processes whole, up to 10,000 lines', async t => {
  const server = await RedisServer.start(t)
  const heard = await overRedis(t, server)
  const { redis } = appClient(t, server, {})
  // Room for every line of the longer burst: the count is the bound here, not the bytes.
  const a = await logsApp(t, { redis, maxBufferedBytes: 8 * 1024 * 1024 })
  const b = await logsApp(t, { redis: server.url })
  const token = b.app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const client = await subscriber(t, b.url('/websocket/logs'), token)
  // The subscription to Redis may still be on its way: log until a line comes through.
  const arrived = line(client, 'from a')
  let got: unknown
  while (got === undefined) {
    a.app.log.info('from a')
    got = await Promise.race([arrived, new Promise<undefined>(resolve => setTimeout(resolve, 50))])
  }
  await redis.ping() // every line published so far answered

  for (let i = 0; i < 1500; i++) a.app.log.info(`burst line ${i}`)
  await redis.ping() // the burst answered: a line after it marks its end
  a.app.log.info('end of the burst')
  const messages = await within(messagesUntil(client, 'end of the burst'), 'the burst on the other process')
  t.equal(messages.filter(msg => msg.startsWith('burst line ')).length, 1500, 'a subscriber of another process gets all 1,500 lines')

  // The other process can have the end line before this one has read Redis's answer to it: one line still awaiting
  // its answer, the long burst would have room for 9,999 (one loaded run).
  await redis.ping()
  for (let i = 0; i < 10_000; i++) a.app.log.info(`long burst line ${i}`)
  await redis.ping()
  a.app.log.info('end of the long burst')
  while (!heard.some(message => message.includes('end of the long burst'))) await new Promise(resolve => setTimeout(resolve, 10))
  t.equal(heard.filter(message => message.includes('"msg":"long burst line ')).length, 10_000, 'ten thousand lines in one turn, every one published')
  await client.close()
})

t.test('with Redis hung, the lines awaiting its answer are at most maxBufferedBytes together, and a longer line is never published', async t => {
  const maxBufferedBytes = 64 * 1024
  const server = await RedisServer.start(t)
  const heard = await overRedis(t, server)
  // The README's options for the app's own client: a command waits 2 s for its answer.
  const { redis, unanswered } = appClient(t, server, { commandTimeout: 2_000, maxRetriesPerRequest: 1 })
  const { app, url } = await logsApp(t, { redis, maxBufferedBytes })
  const token = app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const client = await subscriber(t, url('/websocket/logs'), token)
  // No subscriber could ever be sent it: its frame would be longer than the cap.
  app.log.info({ padding: 'x'.repeat(maxBufferedBytes) }, 'too long for any subscriber')
  app.log.info('after the long line')
  await within(line(client, 'after the long line'), 'the line after it')
  while (!heard.some(message => message.includes('after the long line'))) await new Promise(resolve => setTimeout(resolve, 10))
  t.notOk(heard.some(message => message.includes('too long for any subscriber')), 'the long line was not published')

  await redis.ping()
  server.pause()
  const padding = 'x'.repeat(4 * 1024)
  for (let i = 0; i < 100; i++) app.log.info({ padding }, 'bulk')
  const awaiting = unanswered()
  t.ok(awaiting > 0 && awaiting * padding.length <= maxBufferedBytes, `${awaiting} lines of 4 KiB await Redis`)
  server.resume()
  await client.close()
})

t.test('with Redis, no process publishes its lines while no process has a subscriber, and each stops once the last has gone', async t => {
  // The reminders of a process with subscribers, and how long the others count on them (the monotonic clock), run on
  // the fake clock.
  const clock = fakeClock(t, ['Date', 'setInterval', 'clearInterval', 'performance'])
  const server = await RedisServer.start(t)
  // What goes over Redis, as another process would hear it: log lines, and revocations to mark where a process is.
  const heard: string[] = []
  const listener = new Redis(server.url)
  t.teardown(() => listener.disconnect())
  listener.on('message', (_channel: string, message: string) => heard.push(message))
  await listener.subscribe('realtime:logs', 'realtime:revocations')
  const a = await logsApp(t, { redis: server.url, heartbeat: { enabled: false } })
  const b = await logsApp(t, { redis: server.url, heartbeat: { enabled: false } })
  /** Resolves once what `built` published so far has been heard: a revocation it publishes after, on one connection. */
  let marks = 0
  const caughtUp = async (built: typeof a) => {
    const mark = `mark-${marks++}`
    await built.app.realtime.revokeUser(mark)
    while (!heard.some(message => message.includes(mark))) await new Promise(resolve => setTimeout(resolve, 10))
  }
  const lines = (msg: string) => heard.filter(message => message.includes(`"msg":"${msg}"`)).length
  // Just started, each publishes until it has had the time to hear of a subscriber.
  a.app.log.info('just started')
  await caughtUp(a)
  t.equal(lines('just started'), 1, 'a process just started publishes')
  clock.tick(30_000)

  for (let i = 0; i < 100; i++) a.app.log.info('nobody reads this')
  await caughtUp(a)
  t.equal(lines('nobody reads this'), 0, 'no subscriber anywhere: nothing published')

  const token = b.app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const client = await subscriber(t, b.url('/websocket/logs'), token)
  // The subscriber's process tells the others at once; the first line may still cross that.
  const arrived = line(client, 'read on b')
  let got: { node: string } | undefined
  while (got === undefined) {
    a.app.log.info('read on b')
    got = await Promise.race([arrived, new Promise<undefined>(resolve => setTimeout(resolve, 20))])
  }
  for (const seconds of [10, 20, 30, 40]) {
    clock.tick(10_000)
    a.app.log.info(`${seconds} s on`)
    t.match(await within(line(client, `${seconds} s on`), `the line ${seconds} s on`), { node: got.node },
      `${seconds} s on: still published (the subscriber's process says so again)`)
  }

  // A process started now publishes at once, not at the subscriber's next reminder.
  const c = await logsApp(t, { redis: server.url, heartbeat: { enabled: false } })
  c.app.log.info('from a process started now')
  t.not((await within(line(client, 'from a process started now'), 'the new process\'s line')).node, got.node, 'it comes, from the new process')

  client.send({ type: 'unsubscribe' })
  await client.next()
  clock.tick(30_000)
  a.app.log.info('read by nobody again')
  await caughtUp(a)
  t.equal(lines('read by nobody again'), 0, 'the last subscriber gone: no longer published')
  await client.close()
})

t.test('the tap keeps the destination\'s own properties and methods, and can be undone', async t => {
  const { default: pino } = await import('pino')
  const { captureLogLines } = await import('../../lib/logs/capture.js')
  const written: string[] = []
  const destination = { fd: 7, write (line: string) { written.push(line) }, flushSync () { return this.fd } }
  const logger = pino({ base: null }, destination)
  const tapped: string[] = []
  const stop = captureLogLines(logger as never, (line) => tapped.push(line))!
  logger.info('one')
  const proxied = (logger as unknown as Record<symbol, typeof destination>)[pino.symbols.streamSym]
  t.equal(proxied.fd, 7, 'a plain property reads through')
  t.equal(proxied.flushSync(), 7, 'a method runs with the real destination as this')
  stop()
  logger.info('two')
  t.equal(written.length, 2)
  t.equal(tapped.length, 1, 'nothing after stop')

  // While nobody may read them, lines are neither redacted nor handed on; the destination gets every one.
  let wanted = false
  const heard: string[] = []
  const stopWanting = captureLogLines(logger as never, (line) => heard.push(line), () => wanted)!
  logger.info({ password: 'hunter2' }, 'unread')
  wanted = true
  logger.info({ password: 'hunter2' }, 'read')
  stopWanting()
  t.equal(written.length, 4)
  t.equal(heard.length, 1, 'the line nobody could read was not handed on')
  t.match(heard[0], /"password":"\[redacted\]".*"msg":"read"/)
})

t.test('an app whose Fastify logs through another pino major (pino 9 beside the plugin\'s own) streams its lines', async t => {
  // Fastify 5 takes pino 9 or 10; npm nests the plugin's own where the app's differs, and pino's symbols are the
  // module's own, not registered ones.
  const { default: pino9 } = await import('pino-9')
  const lines: string[] = []
  const app = Fastify({ loggerInstance: pino9({ level: 'info' }, { write (line: string) { lines.push(line) } }) })
  await app.register(realtime, { env: {}, secret, users: [admin] })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  const token = app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const client = await subscriber(t, `ws://127.0.0.1:${port}/websocket/logs`, token)
  app.log.info('from pino 9')
  t.match(await line(client, 'from pino 9'), { type: 'logs', data: { level: 30, msg: 'from pino 9' } })
  t.ok(lines.some(written => written.includes('from pino 9')), 'and the app\'s destination still got it')
  await client.close()
})

t.test('an app given its own pino (loggerInstance) streams the lines of that instance and of its children, made before it or after', async t => {
  const { default: pino } = await import('pino')
  const written: string[] = []
  const root = pino({ level: 'info' }, { write (line: string) { written.push(line) } })
  // Made before Fastify, as an app makes its workers' loggers.
  const worker = root.child({ component: 'worker' })
  const { app, url } = await build(t, { users: [admin] }, { loggerInstance: root })
  const token = app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const client = await subscriber(t, url('/websocket/logs'), token)
  root.error('from the instance')
  worker.error('from a child made before')
  root.child({ job: 7 }).error('from a child made after')
  app.log.error('from fastify.log')
  const messages = await within(messagesUntil(client, 'from fastify.log'), 'the lines of the instance')
  t.same(messages.filter(msg => msg.startsWith('from ')),
    ['from the instance', 'from a child made before', 'from a child made after', 'from fastify.log'], 'each streamed, once')
  t.equal(written.filter(line => line.includes('"msg":"from ')).length, 4, 'and written once each')
  await client.close()
})

t.test('an app whose pino destination is frozen (its write read-only) logs and streams as any other', async t => {
  const { default: pino } = await import('pino')
  const written: string[] = []
  const destination = Object.freeze({ write (line: string) { written.push(line) }, fd: 7 })
  const logger = pino({ level: 'info' }, destination)
  const { app, url } = await build(t, { users: [admin] }, { loggerInstance: logger })
  // What stands for the destination now answers as the destination does, `write` aside.
  const stream = Object.getOwnPropertySymbols(logger).find(own => own.description === 'pino.stream')!
  const tapped = (logger as unknown as Record<symbol, { fd?: number }>)[stream]!
  t.not(tapped, destination, 'tapped')
  t.ok('fd' in tapped && tapped.fd === 7 && !('flushSync' in tapped), 'its other members are the destination\'s')
  const token = app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const client = await subscriber(t, url('/websocket/logs'), token)
  app.log.info('through a frozen destination')
  t.match(await line(client, 'through a frozen destination'), { type: 'logs', data: { msg: 'through a frozen destination' } })
  t.equal((await app.inject('/nowhere')).statusCode, 404, 'a request logs, and is answered')
  t.ok(written.some(line => line.includes('through a frozen destination')), 'written to the destination too')
  await client.close()
})

t.test('apps sharing one loggerInstance each stream its every line once, and one closing leaves the other streaming them', async t => {
  const { default: pino } = await import('pino')
  const written: string[] = []
  const root = pino({ level: 'info' }, { write (line: string) { written.push(line) } })
  const a = await build(t, { users: [admin] }, { loggerInstance: root })
  const b = await build(t, { users: [admin] }, { loggerInstance: root })
  const token = a.app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const onA = await subscriber(t, a.url('/websocket/logs'), token)
  const onB = await subscriber(t, b.url('/websocket/logs'), token)
  root.info('shared')
  a.app.log.info('from a')
  root.info('end of both')
  for (const [name, client] of [['a', onA], ['b', onB]] as const) {
    const messages = await within(messagesUntil(client, 'end of both'), `the lines on ${name}`)
    t.same(messages.filter(msg => msg === 'shared' || msg === 'from a'), ['shared', 'from a'], `${name} streams each once`)
  }
  await onA.close()
  await a.app.close()
  root.info('a closed')
  b.app.log.info('end of b')
  const messages = await within(messagesUntil(onB, 'end of b'), 'the lines on b after a closed')
  t.same(messages.filter(msg => msg === 'a closed'), ['a closed'], 'b streams the instance\'s lines still, once')
  t.equal(written.filter(line => /"msg":"(shared|from a|a closed)"/.test(line)).length, 3, 'each line written once')
  await onB.close()
})

t.test('apps given children of one root (loggerInstance) each stream their child\'s lines and its children\'s, not the root\'s nor a sibling\'s, and leave the loggers as they were', async t => {
  const { default: pino } = await import('pino')
  const written: string[] = []
  const root = pino({ level: 'info' }, { write (line: string) { written.push(line) } })
  const destination = (root as unknown as Record<symbol, unknown>)[pino.symbols.streamSym]
  // Two tenants' apps on one root, and a module of the host logging beside them.
  const tenantA = root.child({ tenant: 'a' })
  const tenantB = root.child({ tenant: 'b' })
  const billing = root.child({ module: 'billing' })
  const a = await build(t, { users: [admin] }, { loggerInstance: tenantA })
  const b = await build(t, { users: [admin] }, { loggerInstance: tenantB })
  const token = a.app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const onA = await subscriber(t, a.url('/websocket/logs'), token)
  const onB = await subscriber(t, b.url('/websocket/logs'), token)
  root.info('from the root')
  billing.info({ card: '4242' }, 'from a sibling')
  tenantA.info('from a')
  tenantA.child({ job: 7 }).info('from a child of a')
  tenantB.info('from b')
  a.app.log.info('end of a')
  b.app.log.info('end of b')
  const sent = ['from the root', 'from a sibling', 'from a', 'from a child of a', 'from b']
  const onlyA = await within(messagesUntil(onA, 'end of a'), 'the lines on a')
  t.same(onlyA.filter(msg => sent.includes(msg)), ['from a', 'from a child of a'], 'a streams its instance\'s lines and its children\'s only')
  const onlyB = await within(messagesUntil(onB, 'end of b'), 'the lines on b')
  t.same(onlyB.filter(msg => sent.includes(msg)), ['from b'], 'b streams its instance\'s lines only')
  t.equal(written.filter(line => sent.some(msg => line.includes(`"msg":"${msg}"`))).length, 5, 'each line written once')

  await Promise.all([onA.close(), onB.close()])
  await Promise.all([a.app.close(), b.app.close()])
  for (const [name, logger] of [['a', tenantA], ['b', tenantB]] as const) {
    t.notOk(Object.getOwnPropertySymbols(logger).includes(pino.symbols.streamSym), `${name}'s logger holds no destination of its own again`)
  }
  t.equal((root as unknown as Record<symbol, unknown>)[pino.symbols.streamSym], destination, 'the root\'s destination untouched')
})

t.test('an app given the root streams the lines of an app given a child of it, whichever was built first', async t => {
  const { default: pino } = await import('pino')
  const root = pino({ level: 'info' }, { write () {} })
  const tenant = root.child({ tenant: 'a' })
  // The tenant's app first: the host's tap, put on the root after, still gets the tenant's lines.
  const onTenant = await build(t, { users: [admin] }, { loggerInstance: tenant })
  const onRoot = await build(t, { users: [admin] }, { loggerInstance: root })
  const token = onRoot.app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const host = await subscriber(t, onRoot.url('/websocket/logs'), token)
  const guest = await subscriber(t, onTenant.url('/websocket/logs'), token)
  tenant.info('from the tenant')
  root.info('from the root')
  t.same((await within(messagesUntil(host, 'from the root'), 'the lines on the root\'s app')).filter(msg => msg.startsWith('from ')),
    ['from the tenant', 'from the root'], 'the root\'s app streams the tenant\'s lines and its own')
  tenant.info('end of the tenant')
  t.same((await within(messagesUntil(guest, 'end of the tenant'), 'the lines on the tenant\'s app')).filter(msg => msg.startsWith('from ')),
    ['from the tenant'], 'the tenant\'s app its own only')
  await host.close()
  await onRoot.app.close()
  tenant.info('the root\'s app closed')
  await within(line(guest, 'the root\'s app closed'), 'the tenant\'s app streams on')
  await guest.close()
})

t.test('a logger writing to a multistream streams each line once, and each stream gets its levels', async t => {
  const { default: pino } = await import('pino')
  const info: string[] = []
  const errors: string[] = []
  // pino tells a multistream each line's level by setting it on the destination: through the tap, on the real one.
  const root = pino({ level: 'info' }, pino.multistream([
    { level: 'info', stream: { write (line: string) { info.push(line) } } },
    { level: 'error', stream: { write (line: string) { errors.push(line) } } }
  ]))
  const { app, url } = await build(t, { users: [admin] }, { loggerInstance: root })
  const token = app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const client = await subscriber(t, url('/websocket/logs'), token)
  root.info('an info line')
  root.error('an error line')
  t.same((await within(messagesUntil(client, 'an error line'), 'the lines')).filter(msg => msg.startsWith('an ')), ['an info line', 'an error line'])
  t.equal(info.filter(line => /"msg":"an (info|error) line"/.test(line)).length, 2, 'the info stream got both')
  t.equal(errors.filter(line => /"msg":"an (info|error) line"/.test(line)).length, 1, 'the error stream the error only')
  await client.close()
})

t.test('two apps on one logger: the one that closes first leaves the other\'s tap in place, and its own stops', async t => {
  const { default: pino } = await import('pino')
  const { captureLogLines } = await import('../../lib/logs/capture.js')
  const written: string[] = []
  const destination = { write (line: string) { written.push(line) } }
  const logger = pino({ base: null }, destination)
  const first: string[] = []
  const second: string[] = []
  const stopFirst = captureLogLines(logger as never, (line) => first.push(line))!
  const stopSecond = captureLogLines(logger as never, (line) => second.push(line))!
  logger.info('both')
  stopFirst()
  logger.info('second only')
  stopSecond()
  logger.info('neither')
  t.same([first.length, second.length, written.length], [1, 2, 3])
  t.match(second[1], /second only/)
  t.equal((logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym], destination, 'the logger\'s own destination is back')
})

t.test('a destination put on the logger after the tap (another copy of the plugin\'s) stays when the tap is taken off', async t => {
  const { default: pino } = await import('pino')
  const { captureLogLines } = await import('../../lib/logs/capture.js')
  const written: string[] = []
  const logger = pino({ base: null }, { write (line: string) { written.push(line) } }) as unknown as Record<symbol, { write (line: string): unknown }>
  const tapped: string[] = []
  const stop = captureLogLines(logger as never, (line) => tapped.push(line))!
  const tap = logger[pino.symbols.streamSym]!
  const other: string[] = []
  const wrapper = { write (line: string) { other.push(line); return tap.write(line) } }
  logger[pino.symbols.streamSym] = wrapper
  stop()
  t.equal(logger[pino.symbols.streamSym], wrapper, 'the other tap stays')
  ;(logger as unknown as { info (msg: string): void }).info('after')
  t.same([tapped.length, other.length, written.length], [0, 1, 1], 'this one passes the line on, and hands it to nobody')
})

t.test('deeply nested log objects are cut short, and lines that are not pino\'s are ignored', async t => {
  const { redactLogObject } = await import('../../lib/index.js')
  let deep: Record<string, unknown> = { password: 'p' }
  for (let i = 0; i < 40; i++) deep = { inner: deep }
  let cursor = redactLogObject(deep) as Record<string, unknown>
  let depth = 0
  while (typeof cursor === 'object') { cursor = cursor.inner as Record<string, unknown>; depth++ }
  t.equal(cursor, '[redacted]')
  t.equal(depth, 33)

  const server = await RedisServer.start(t)
  const { app, url } = await logsApp(t, { redis: server.url, redisPrefix: 'garbage:' })
  const token = app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token
  const client = await subscriber(t, url('/websocket/logs'), token)
  const { Redis } = await import('ioredis')
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  let got: { data: Record<string, unknown> } | undefined
  const arrived = line(client, 'real')
  for (let attempt = 0; got === undefined && attempt < 200; attempt++) {
    await redis.publish('garbage:logs', 'elsewhere\nnot json')

    await redis.publish('garbage:logs', 'no-node-separator')
    app.log.info('real')
    got = await Promise.race([arrived, new Promise<undefined>(resolve => setTimeout(resolve, 50))])
  }
  t.equal(got?.data.level, 30, 'only the real line came through')
  await client.close()
})
