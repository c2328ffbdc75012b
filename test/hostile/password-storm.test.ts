// Password checks (PROTOCOL.md section 11): a storm of wrong passwords from many addresses neither queues without
// bound nor holds a legitimate login behind it; a full queue answers SERVICE_UNAVAILABLE at once. An IPv6 client has
// one share of the queue for its whole /64.
import t from 'tap'
import { request } from 'node:http'
import { availableParallelism } from 'node:os'
import { setTimeout } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { UserDirectory } from '../../lib/index.js'
import { admin, build, connect, editor } from '../helpers.js'
import { RedisServer } from '../redis-server.js'

interface Answer { status: number, retryAfter: string | undefined, body: string }

function login (port: number, localAddress: string, email: string, password: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, localAddress, method: 'POST', path: '/auth/login', headers: { 'content-type': 'application/json' } }, (res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString() })
      res.on('end', () => resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'], body }))
    })
    req.on('error', reject)
    req.end(JSON.stringify({ email, password }))
  })
}

t.test('a legitimate login during a storm from 20 addresses waits one round, not the storm', async t => {
  // Checks at the real cost (OWASP's 19 MiB, 2 passes): the storm queues behind them as it would in production.
  const users = new UserDirectory()
  for (const user of [admin, editor]) await users.add(user)
  const { app } = await build(t, { users, authRoutes: true, attemptLimit: false })
  const { port } = app.server.address() as { port: number }
  const storm: Promise<Answer>[] = []
  let checkedBeforeLegit = -1
  let checked = 0
  for (let address = 1; address <= 20; address++) {
    for (let i = 0; i < 10; i++) {
      storm.push(login(port, `127.0.0.${address + 1}`, editor.email, `wrong-${i}`).then(answer => {
        if (answer.status === 401) checked++
        return answer
      }))
    }
  }
  // Once the first wrong password has been checked, the storm is queued: the user logs in from an address of their own.
  await Promise.race(storm)
  const legit = await login(port, '127.0.0.100', admin.email, admin.password)
  checkedBeforeLegit = checked
  const answers = await Promise.all(storm)
  t.equal(legit.status, 200, 'the user is logged in')
  t.ok(checkedBeforeLegit <= 45, `${checkedBeforeLegit} wrong passwords were checked before it (20 addresses: one round, two at most)`)
  const refused = answers.filter(answer => answer.status === 503)
  t.ok(refused.length >= 100, `${refused.length} of the storm's 200 were refused at once: at most 4 wait per address`)
  t.ok(refused.every(answer => answer.retryAfter === '1' && answer.body.includes('SERVICE_UNAVAILABLE')), 'with 503 SERVICE_UNAVAILABLE and Retry-After')
  t.ok(answers.every(answer => answer.status === 401 || answer.status === 503), 'every other one was checked and refused')
})

t.test('a full password queue refuses a socket auth at once: SERVICE_UNAVAILABLE, 1013 as the handshake', async t => {
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  const { url } = await build(t, {
    attemptLimit: false,
    passwordQueue: { limit: 1, perAddress: 1 },
    verifyCredentials: async () => { await held; return null }
  })
  // As many checks run as there are lanes (a core each but the loop's), one waits, and the rest are refused at once.
  const lanes = Math.max(1, availableParallelism() - 1)
  const holders = await Promise.all(Array.from({ length: 8 }, () => connect(url('/websocket'))))
  const refused: unknown[] = []
  const allRefused = new Promise<void>(resolve => {
    for (const holder of holders) {
      holder.send({ type: 'auth', email: 'a@example.com', password: 'x' })
      holder.next().then(frame => {
        refused.push(frame)
        if (refused.length === 8 - lanes - 1) resolve()
      })
    }
  })
  await allRefused
  t.same(refused[0], { type: 'auth', status: 'error', error: { code: 'SERVICE_UNAVAILABLE', message: 'Service unavailable.' } })
  release()
  const closes = await Promise.all(holders.map(holder => holder.closed))
  t.equal(closes.filter(close => close.code === 1013).length, 8 - lanes - 1, 'the refused handshakes closed 1013')
  t.equal(closes.filter(close => close.code === 4401).length, lanes + 1, 'the checked ones failed as wrong passwords')
})

t.test('the queue\'s per-address share is per network: an IPv6 client\'s /64, an IPv4-mapped address\'s IPv4', async t => {
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  const lanes = Math.max(1, availableParallelism() - 1)
  let busy!: () => void
  const lanesBusy = new Promise<void>(resolve => { busy = resolve })
  let calls = 0
  const { app } = await build(t, {
    authRoutes: true,
    attemptLimit: false,
    passwordQueue: { limit: 100, perAddress: 1 },
    verifyCredentials: async () => {
      if (++calls === lanes) busy()
      await held
      return null
    }
  })
  const login = (remoteAddress: string) =>
    app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'a@example.com', password: 'x' }, remoteAddress })
  const running = Array.from({ length: lanes }, (_, i) => login(`10.0.40.${i}`))
  await lanesBusy
  // Each network may have one check waiting: of two from one network, one is refused at once.
  const sameSixtyFour = [login('2001:db8:1:2::1'), login('2001:db8:1:2:ffff:ffff:ffff:ffff')]
  const sameIPv4 = [login('10.0.41.1'), login('::ffff:10.0.41.1')]
  const others = [login('2001:db8:1:3::1'), login('::ffff:10.0.41.2')]
  // Bounded, so that the code before this bound (nothing refused: they all wait) fails rather than hangs.
  await Promise.race([Promise.all([Promise.race(sameSixtyFour), Promise.race(sameIPv4)]), setTimeout(2_000)])
  release()
  const statuses = async (answers: Promise<{ statusCode: number }>[]) => (await Promise.all(answers)).map(answer => answer.statusCode).sort()
  t.same(await statuses(running), Array(lanes).fill(401))
  t.same(await statuses(sameSixtyFour), [401, 503], 'two addresses of one /64: one share')
  t.same(await statuses(sameIPv4), [401, 503], 'an IPv4 and its mapped form: one share')
  t.same(await statuses(others), [401, 401], 'another /64, another IPv4: shares of their own')
})

t.test('logins the full queue refuses leave no attempt counter behind: one IPv6 network\'s flood from its /64s, on Redis', async t => {
  const redis = await RedisServer.start(t)
  const keys = new Redis(redis.url)
  t.teardown(() => keys.disconnect())
  const counters = async () => (await keys.keys('realtime:attempts:*')).length
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  const lanes = Math.max(1, availableParallelism() - 1)
  let calls = 0
  const { app } = await build(t, {
    redis: redis.url,
    authRoutes: true,
    passwordQueue: { limit: 2, perAddress: 1 },
    verifyCredentials: async () => { calls++; await held; return null }
  })
  const login = (remoteAddress: string, email: string) =>
    app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: 'x' }, remoteAddress })
  // Every lane checking, two waiting: the queue is full, each of them counted once per address and per email.
  const checked = Array.from({ length: lanes + 2 }, (_, i) => login(`10.0.50.${i}`, `user-${i}@example.com`))
  const queued = async () => calls === lanes && await counters() === 2 * (lanes + 2)
  while (!await queued()) await setTimeout(20)
  const flood: number[] = []
  for (let i = 0; i < 50; i++) flood.push((await login(`2001:db8:7:${i.toString(16)}::1`, `flood-${i}@example.com`)).statusCode)
  t.same(flood, Array(50).fill(503), 'each refused at once')
  t.equal(await counters(), 2 * (lanes + 2), 'no counter for any of them: only the logins checked or waiting have one')
  release()
  t.same((await Promise.all(checked)).map(answer => answer.statusCode), Array(lanes + 2).fill(401))
})
