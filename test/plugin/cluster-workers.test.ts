// node:cluster workers (pm2's cluster mode is one) share one port, each request and upgrade going to any of them
// (README, "Scaling out"): with one Redis they act as one server; without it boot says what each worker keeps to
// itself.
import cluster, { type Worker } from 'node:cluster'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { RedisServer, freePorts } from '../redis-server.js'
import { admin } from '../helpers.js'

// The worker beside this file's build: the TypeScript source under tsx, `.build/` under `npm test`.
const workerFile = fileURLToPath(new URL(`cluster-worker${import.meta.url.slice(import.meta.url.lastIndexOf('.'))}`, import.meta.url))

/** Two workers on one port; resolves with each one's boot warnings once both listen. */
async function workers (t: Test, env: Record<string, string>): Promise<{ port: number, warnings: string[][] }> {
  const [port] = await freePorts(1)
  cluster.setupPrimary({ exec: workerFile, silent: true })
  const started: Worker[] = []
  const warnings = await Promise.all([0, 1].map(() => new Promise<string[]>((resolve, reject) => {
    const worker = cluster.fork({ ...env, PORT: String(port) })
    started.push(worker)
    worker.once('message', (message: { warnings: string[] }) => { resolve(message.warnings) })
    worker.once('exit', code => { reject(new Error(`a worker exited (${code}) before it listened`)) })
  })))
  t.teardown(() => Promise.all(started.map(worker => new Promise(resolve => {
    worker.once('exit', resolve)
    worker.disconnect()
  }))))
  return { port: port!, warnings }
}

/** A request on a connection of its own, so that the primary hands each to the next worker. */
async function post (port: number, path: string, body: object): Promise<{ status: number, data: { refresh_token?: string } }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', connection: 'close' },
    body: JSON.stringify(body)
  })
  return { status: response.status, data: ((await response.json()) as { data: { refresh_token?: string } }).data }
}

const alone = 'fastify-realtime runs in a node:cluster worker without redis: each worker has its own revocations, attempt counters, log lines'
const advice = ", so a logout or revokeUser reaches only one worker's sockets and tokens; give every worker one Redis (the redis option)"

t.test('a worker without redis warns that its sessions and revocations are its own', async t => {
  const { warnings } = await workers(t, {})
  t.same(warnings, [0, 1].map(() => [`${alone} and sessions (a refresh token works only on the worker that issued it: the others answer 401 INVALID_CREDENTIALS)${advice}`]))
})

t.test('a worker given a session store of its own but no redis warns of the rest', async t => {
  const { warnings } = await workers(t, { SESSION_STORE: '1' })
  t.same(warnings, [0, 1].map(() => [`${alone}${advice}`]))
})

t.test('workers on one Redis take each other\'s refresh tokens, and say nothing', async t => {
  const redis = await RedisServer.start(t)
  const { port, warnings } = await workers(t, { REDIS_URL: `redis://127.0.0.1:${redis.port}` })
  t.same(warnings, [[], []])
  let { status, data } = await post(port, '/auth/login', { email: admin.email, password: admin.password })
  t.equal(status, 200)
  const statuses: number[] = []
  for (let refresh = 0; refresh < 6; refresh++) {
    ({ status, data } = await post(port, '/auth/refresh', { refresh_token: data.refresh_token, mode: 'json' }))
    statuses.push(status)
  }
  t.same(statuses, [200, 200, 200, 200, 200, 200], 'each refresh on the worker after the last')
})
