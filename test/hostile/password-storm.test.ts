// Password checks (PROTOCOL.md section 11): a storm of wrong passwords from many addresses neither queues without
// bound nor holds a legitimate login behind it; a full queue answers SERVICE_UNAVAILABLE at once.
import t from 'tap'
import { request } from 'node:http'
import { availableParallelism } from 'node:os'
import { UserDirectory } from '../../lib/index.js'
import { admin, build, connect, editor } from '../helpers.js'

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
