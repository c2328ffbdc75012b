// A soak of a Redis Cluster with replicas failing over under live traffic (not run by CI):
//   node --import tsx scripts/failover-soak.ts [seconds=120] [lag|cut|kill|none] [replicaAcks=0]
// Six redis-server (3 masters + 3 replicas, cluster-node-timeout 1500 ms) on loopback, two app processes (the plugin on
// an ioredis Cluster as the README shows), clients logging in, refreshing (each keeps only its newest refresh token),
// keeping a socket authenticated (re-authenticating it after each refresh), logging out, and revokeUser. Every ~15 s a
// master dies (kill -9); with `lag`, its replica first stops reading it for 600 ms (SIGSTOP, and sent 40 MB: still
// online), with `cut` its link is cut too (a partition): what the master acknowledged meanwhile is what asynchronous
// replication loses when the replica is promoted. The killed node is started again once failed over (it rejoins as a
// replica). After the revocations have lapsed (10 s access tokens), a third app process (started after every failover)
// is shown every logged-out and revoked refresh token. Every non-success is classified; the summary is printed as JSON.
// A refresh refused after the client's own logout or revokeUser answered 503 is counted apart: the revocation goes first
// and counts, so that refusal is the client's doing, not a failover's loss.
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import calculateSlot from 'cluster-key-slot'
import { Cluster, Redis } from 'ioredis'
import WebSocket from 'ws'

const users = Array.from({ length: 40 }, (_, i) => `u${i}`)

async function app (port: number, seeds: number[], replicaAcks: number): Promise<void> {
  const { default: Fastify } = await import('fastify')
  const { default: realtime } = await import('../lib/index.js')
  const redis = new Cluster(seeds.map(port => ({ host: '127.0.0.1', port })), {
    enableOfflineQueue: false, redisOptions: { commandTimeout: 2_000, maxRetriesPerRequest: 1 }, slotsRefreshInterval: 2_000
  })
  const server = Fastify({ logger: { level: 'warn' } })
  await server.register(realtime, {
    env: {},
    secret: 'soak-secret-soak-secret-soak-secret-0123',
    redis,
    authRoutes: true,
    rest: { authTimeout: 5 },
    // Short, so that the revocations lapse within the soak: what then refuses a logged-out token is Redis alone.
    accessTokenTtl: '10s',
    ...replicaAcks > 0 ? { redisReplicaAcks: replicaAcks } : {},
    verifyCredentials: async ({ email, password }: { email: string, password: string }) =>
      password === 'pw' && users.includes(email.split('@')[0]!) ? { user: email.split('@')[0]!, role: 'user', admin: false } : null
  } as never)
  server.post('/revoke-user', async (request, reply) => {
    try {
      await server.realtime.revokeUser((request.body as { user: string }).user)
      return reply.code(204).send()
    } catch (err) {
      return reply.code(503).send({ error: String(err) })
    }
  })
  await server.listen({ host: '127.0.0.1', port })
  process.stdout.write('ready\n')
}

// ---- the driver ----

const run = promisify(execFile)
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

class Node {
  process: ChildProcess | null = null
  constructor (readonly port: number, readonly dir: string) {}
  start (): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${this.port}.conf`, '--dir', this.dir,
      '--cluster-node-timeout', '1500', '--repl-diskless-sync-delay', '0', '--repl-ping-replica-period', '1'], { stdio: ['ignore', 'pipe', 'ignore'] })
    this.process = child
    return new Promise((resolve, reject) => {
      let out = ''
      child.once('exit', code => reject(new Error(`redis exited ${code}`)))
      child.stdout!.on('data', (chunk: Buffer) => { out += chunk; if (out.includes('Ready to accept')) { child.stdout!.removeAllListeners('data'); child.stdout!.resume(); resolve() } })
    })
  }

  signal (signal: NodeJS.Signals) { this.process?.kill(signal) }
  kill () { this.process?.removeAllListeners('exit'); this.process?.kill('SIGKILL'); this.process = null }
  async cmd<T> (f: (r: Redis) => Promise<T>): Promise<T> {
    const r = new Redis(this.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000, commandTimeout: 1000, retryStrategy: () => null })
    r.on('error', () => {})
    try { await r.connect(); return await f(r) } finally { r.disconnect() }
  }
}

interface Op { kind: string, app: number, at: number, ms: number, status: number, code?: string, note?: string }

function startApp (port: number, seeds: number[], replicaAcks: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'app', String(port), seeds.join(','), String(replicaAcks)],
    { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    child.once('exit', code => reject(new Error(`app exited ${code}`)))
    child.stdout!.once('data', () => { child.stdout!.resume(); resolve(child) })
  })
}

async function driver (seconds: number, mode: string, replicaAcks: number) {
  const dir = await mkdtemp(join(tmpdir(), 'failover-soak-'))
  const base = 21000 + Math.floor(Math.random() * 5000)
  const nodes = Array.from({ length: 6 }, (_, i) => new Node(base + i, dir))
  const apps: ChildProcess[] = []
  // Whatever happens, the nodes and apps started here go with the driver.
  process.on('exit', () => {
    for (const child of apps) child.kill('SIGKILL')
    for (const n of nodes) n.kill()
  })
  await Promise.all(nodes.map(n => n.start()))
  await run('redis-cli', ['--cluster', 'create', ...nodes.map(n => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'])
  const clusterOk = async () => {
    for (const n of nodes) {
      if (!n.process) continue
      const info = await n.cmd(r => r.cluster('INFO') as Promise<string>).catch(() => '')
      if (!info.includes('cluster_state:ok')) return false
    }
    return true
  }
  while (!(await clusterOk())) await sleep(50)
  const seeds = nodes.map(n => n.port)
  const appPorts = [base + 100, base + 101, base + 102]
  apps.push(await startApp(appPorts[0]!, seeds, replicaAcks), await startApp(appPorts[1]!, seeds, replicaAcks))
  const ops: Op[] = []
  const failovers: { at: number, killed: number, mode: string, lagMs: number, okAfterMs?: number }[] = []
  const t0 = Date.now()
  const http = async (appIndex: number, path: string, body: object): Promise<{ status: number, json: any }> => {
    try {
      const res = await fetch(`http://127.0.0.1:${appPorts[appIndex]}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) })
      const text = await res.text()
      return { status: res.status, json: text ? JSON.parse(text) : null }
    } catch (err) {
      return { status: 0, json: { error: String(err) } }
    }
  }
  const record = (kind: string, app: number, started: number, answer: { status: number, json: any }, note?: string) => {
    const op: Op = { kind, app, at: started - t0, ms: Date.now() - started, status: answer.status, code: answer.json?.errors?.[0]?.extensions?.code, note }
    ops.push(op)
    return op
  }
  const loggedOut: { token: string, at: number, user: string }[] = []
  const revoked: { token: string, at: number, user: string }[] = []
  const socketMisses: string[] = []
  const traffic = { stop: false }

  async function client (user: string) {
    let refreshToken: string | null = null
    let origin = ''
    let ws: WebSocket | null = null
    const frames: any[] = []
    let lastAuth = 0
    /**
     * A logout or revokeUser of this client's that failed (503), the client keeping its refresh token: it may have
     * ended the session all the same (revoked first), and a refresh then refused is its doing, not a failover's loss.
     */
    let unconfirmedEnd = ''
    /** The close code of the socket's close, once closed: a socket closed under a re-auth answers nothing. */
    let closedWith: number | undefined
    const openSocket = async (accessToken: string) => {
      ws?.terminate()
      const appIndex = Math.floor(Math.random() * 2)
      const socket = new WebSocket(`ws://127.0.0.1:${appPorts[appIndex]}/websocket`)
      ws = socket
      // The heartbeat's pings are no answer (taken for one, a re-auth's answer read as missing).
      socket.on('message', data => {
        const frame = JSON.parse(data.toString())
        if (frame.type !== 'ping') frames.push(frame)
      })
      socket.on('error', () => {})
      closedWith = undefined
      socket.on('close', code => { if (ws === socket) closedWith = code })
      await new Promise<void>(resolve => { socket.once('open', () => resolve()); socket.once('error', () => resolve()); socket.once('close', () => resolve()) })
      if (socket.readyState !== WebSocket.OPEN) return
      await authenticate(socket, accessToken, 'socket-auth', appIndex)
    }
    const reauth = async (accessToken: string) => {
      if (!ws || ws.readyState !== WebSocket.OPEN) return openSocket(accessToken)
      await authenticate(ws, accessToken, 'socket-reauth', -1)
    }
    /** Sends the auth message and records its answer (or none within 5 s: the socket's close, if it closed). */
    const authenticate = async (socket: WebSocket, accessToken: string, kind: string, appIndex: number) => {
      frames.length = 0
      socket.send(JSON.stringify({ type: 'auth', access_token: accessToken }))
      const started = Date.now()
      while (frames.length === 0 && Date.now() - started < 5000) await sleep(10)
      const frame = frames.shift()
      lastAuth = Date.now()
      record(kind, appIndex, started, { status: frame?.status === 'ok' ? 200 : 0, json: { errors: [{ extensions: { code: frame?.error?.code ?? 'NO_ANSWER' } }] } },
        frame === undefined ? `closed ${closedWith ?? 'no'}` : undefined)
    }
    const revokedReached = async (what: string) => {
      if (!ws || ws.readyState !== WebSocket.OPEN) return
      const started = Date.now()
      while (Date.now() - started < 5000) {
        if (frames.some(f => f?.error?.code === 'AUTH_REVOKED')) return
        await sleep(20)
      }
      socketMisses.push(`${what} ${user} at ${started - t0} frames ${JSON.stringify(frames)} lastAuth ${lastAuth - t0}`)
    }
    while (!traffic.stop) {
      const appIndex = Math.floor(Math.random() * 2)
      const started = Date.now()
      if (refreshToken === null) {
        const answer = await http(appIndex, '/auth/login', { email: `${user}@example.com`, password: 'pw' })
        record('login', appIndex, started, answer)
        if (answer.status === 200) {
          refreshToken = answer.json.data.refresh_token
          origin = `login on app${appIndex} at ${started - t0}`
          unconfirmedEnd = ''
          await openSocket(answer.json.data.access_token)
        } else await sleep(200)
      } else {
        const roll = Math.random()
        if (roll < 0.9) {
          const answer = await http(appIndex, '/auth/refresh', { refresh_token: refreshToken })
          const op = record('refresh', appIndex, started, answer, `newest from ${origin}`)
          if (answer.status === 200) {
            refreshToken = answer.json.data.refresh_token
            origin = `refresh on app${appIndex} at ${started - t0} answered in ${op.ms} ms`
            unconfirmedEnd = ''
            await reauth(answer.json.data.access_token)
          } else if (answer.status === 401) {
            op.kind = unconfirmedEnd === '' ? 'refresh-newest-refused' : 'refresh-refused-after-own-503-end'
            op.note += unconfirmedEnd
            refreshToken = null
            ws?.terminate()
          } else await sleep(200)
        } else if (roll < 0.96) {
          const answer = await http(appIndex, '/auth/logout', { refresh_token: refreshToken })
          record('logout', appIndex, started, answer)
          if (answer.status === 204) {
            loggedOut.push({ token: refreshToken, at: started - t0, user })
            await revokedReached('logout')
            refreshToken = null
            ws?.terminate()
          } else if (answer.status === 401) {
            refreshToken = null
          } else {
            unconfirmedEnd = ` after a logout answered ${answer.status} at ${started - t0}`
            await sleep(200)
          }
        } else {
          const answer = await http(appIndex, '/revoke-user', { user })
          record('revokeUser', appIndex, started, answer)
          if (answer.status === 204) {
            revoked.push({ token: refreshToken, at: started - t0, user })
            await revokedReached('revokeUser')
            refreshToken = null
            ws?.terminate()
          } else {
            unconfirmedEnd = ` after a revokeUser answered ${answer.status} at ${started - t0}`
            await sleep(200)
          }
        }
      }
      await sleep(20 + Math.random() * 60)
    }
    ws?.terminate()
  }

  async function chaos () {
    await sleep(8_000)
    if (mode === 'none') return
    while (!traffic.stop && Date.now() - t0 < seconds * 1000 - 15_000) {
      const masters: Node[] = []
      for (const n of nodes) {
        if (!n.process) continue
        const role = await n.cmd(r => r.role() as Promise<unknown[]>).catch(() => null)
        if (role?.[0] === 'master') masters.push(n)
      }
      const victim = masters[Math.floor(Math.random() * masters.length)]!
      const at = Date.now() - t0
      if (mode === 'lag' || mode === 'cut') {
        // Its replica stops hearing it: what the master acknowledges meanwhile is never replicated. `lag`: the replica
        // stays online, stopped, sent more than the kernel holds for it (a slow or saturated replica); `cut`: its link
        // is cut too (a partition), so it is no longer online.
        const replicaPort = await victim.cmd(async r => {
          const info = await r.info('replication')
          return Number(/slave0:ip=[^,]+,port=(\d+)/.exec(info)?.[1])
        })
        const replica = nodes.find(n => n.port === replicaPort)!
        replica.signal('SIGSTOP')
        if (mode === 'cut') await victim.cmd(r => r.client('KILL', 'TYPE', 'replica'))
        else {
          // A key of the victim's own slots.
          const ranges = await victim.cmd(r => r.cluster('SLOTS') as Promise<[number, number, [string, number]][]>)
          const own = ranges.filter(range => range[2][1] === victim.port)
          let key = ''
          for (let i = 0; key === ''; i++) {
            const slot = calculateSlot(`soak:ballast:{${i}}`)
            if (own.some(([from, to]) => slot >= from && slot <= to)) key = `soak:ballast:{${i}}`
          }
          await victim.cmd(r => r.set(key, Buffer.alloc(40 * 1024 * 1024)))
        }
        await sleep(600)
        victim.kill()
        replica.signal('SIGCONT')
      } else {
        victim.kill()
      }
      const failover: { at: number, killed: number, mode: string, lagMs: number, okAfterMs?: number } = { at, killed: victim.port, mode, lagMs: Date.now() - t0 - at }
      failovers.push(failover)
      const killedAt = Date.now()
      // Failed over once every node left says ok and none names the victim as a slot's master.
      const promoted = async () => {
        for (const n of nodes) {
          if (!n.process) continue
          const slots = await n.cmd(r => r.cluster('SLOTS') as Promise<[number, number, [string, number]][]>).catch(() => null)
          if (!slots || slots.some(range => range[2][1] === victim.port)) return false
        }
        return clusterOk()
      }
      while (!(await promoted())) await sleep(50)
      failover.okAfterMs = Date.now() - killedAt
      // Started again only once failed over (empty, it would otherwise come back as its slots' master with no data):
      // it rejoins as a replica of the promoted one.
      await victim.start()
      await sleep(12_000)
    }
  }

  const running = users.map(user => client(user))
  const chaosDone = chaos().catch((err: unknown) => { console.error('chaos failed', err); traffic.stop = true })
  await sleep(seconds * 1000)
  traffic.stop = true
  await Promise.all([...running, chaosDone])
  // Past every revocation's lapse (10 s access tokens, 9 s for late signers), a process started after every failover:
  // what Redis holds now is all it knows, and all the running processes know too.
  await sleep(25_000)
  const late = await startApp(appPorts[2]!, seeds, replicaAcks)
  apps.push(late)
  const replays: Record<string, number> = {}
  const replayed = async (list: { token: string, at: number, user: string }[], appIndex: number) => {
    const working: string[] = []
    for (const { token, at, user } of list) {
      const answer = await http(appIndex, '/auth/refresh', { refresh_token: token })
      replays[`app${appIndex} ${answer.status}`] = (replays[`app${appIndex} ${answer.status}`] ?? 0) + 1
      if (answer.status === 200) working.push(`${user}@${at}`)
    }
    return working
  }
  // Replayed on the late process first: the others refuse what they heard, and end it again in Redis.
  const lateLogout = await replayed(loggedOut, 2)
  const lateRevoked = await replayed(revoked, 2)
  const runningLogout = await replayed(loggedOut, 0)
  const summary: Record<string, unknown> = { seconds, mode, replicaAcks, failovers }
  const byKind: Record<string, Record<string, number>> = {}
  for (const op of ops) {
    const key = op.status === 200 || op.status === 204 ? 'ok' : `${op.status}${op.code ? ` ${op.code}` : ''}`
    byKind[op.kind] ??= {}
    byKind[op.kind]![key] = (byKind[op.kind]![key] ?? 0) + 1
  }
  summary.ops = byKind
  const ms = (kind: string) => {
    const list = ops.filter(op => op.kind === kind && (op.status === 200 || op.status === 204)).map(op => op.ms).sort((a, b) => a - b)
    return { n: list.length, p50: list[Math.floor(list.length / 2)], p99: list[Math.floor(list.length * 0.99)], max: list.at(-1) }
  }
  summary.latency = { login: ms('login'), refresh: ms('refresh'), logout: ms('logout'), revokeUser: ms('revokeUser') }
  summary.newestRefused = ops.filter(op => op.kind.startsWith('refresh-') && op.kind.includes('refused')).map(op => ({ at: op.at, note: op.note, sinceFailover: Math.min(...failovers.map(f => op.at - f.at).filter(d => d >= 0)) }))
  summary.non200NearFailover = ops.filter(op => op.status !== 200 && op.status !== 204 && !op.kind.includes('refused'))
    .map(op => ({ kind: op.kind, status: op.status, code: op.code, sinceFailover: Math.min(...failovers.map(f => op.at - f.at).filter(d => d >= 0)), ms: op.ms }))
    .reduce<Record<string, { n: number, maxSinceFailover: number, maxMs: number }>>((acc, op) => {
      const key = `${op.kind} ${op.status} ${op.code ?? ''}`
      const entry = acc[key] ??= { n: 0, maxSinceFailover: 0, maxMs: 0 }
      entry.n++
      entry.maxSinceFailover = Math.max(entry.maxSinceFailover, op.sinceFailover)
      entry.maxMs = Math.max(entry.maxMs, op.ms)
      return acc
    }, {})
  summary.unanswered = ops.filter(op => op.status === 0 && op.code === 'NO_ANSWER').map(op => ({ kind: op.kind, at: op.at, note: op.note, sinceFailover: Math.min(...failovers.map(f => op.at - f.at).filter(d => d >= 0)) }))
  summary.replays = replays
  // What the master took while its replica lagged (the 600 ms before each kill): lost unless confirmed by a replica.
  const inLag = (at: number) => failovers.some(f => at >= f.at && at <= f.at + f.lagMs)
  summary.answeredInLagWindows = ops.filter(op => inLag(op.at)).reduce<Record<string, number>>((acc, op) => {
    const key = `${op.kind} ${op.status}`
    acc[key] = (acc[key] ?? 0) + 1
    return acc
  }, {})
  summary.loggedOutInLagWindows = loggedOut.filter(({ at }) => inLag(at)).length
  summary.revokedInLagWindows = revoked.filter(({ at }) => inLag(at)).length
  summary.loggedOut = loggedOut.length
  summary.revoked = revoked.length
  summary.loggedOutWorkingOnLateProcess = lateLogout
  summary.revokedWorkingOnLateProcess = lateRevoked
  summary.loggedOutWorkingOnRunningProcess = runningLogout
  summary.socketMissedRevocation = socketMisses
  console.log(JSON.stringify(summary, null, 1))
  for (const child of apps) { child.removeAllListeners('exit'); child.kill('SIGKILL') }
  for (const n of nodes) n.kill()
  await rm(dir, { recursive: true, force: true })
  process.exit(0)
}

const [, , first, ...rest] = process.argv
if (first === 'app') await app(Number(rest[0]), rest[1]!.split(',').map(Number), Number(rest[2]))
else await driver(Number(first ?? 120), rest[0] ?? 'kill', Number(rest[1] ?? 0))
