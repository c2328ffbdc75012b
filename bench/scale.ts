// The scale benchmarks of issue 14 (goals 5 to 7): `node dist/bench/run.js --scale [7 8 9]`.
//   7 At scale: RSS per idle socket in one process holding ~19,000 (plugin vs bare), then 100,000 sockets on six
//     plugin processes sharing one Redis: TOKEN_EXPIRED lateness, event-loop stalls during heartbeats, revokeUser
//     across every process, and what one process would need for 1,000,000 sockets.
//   8 Reconnect storm: 10,000 clients holding tokens reconnect at once, plugin vs bare and bare-verify, rounds in turn.
//   9 Logout fan-out: four plugin processes on one Redis; a logout on one, AUTH_REVOKED on the other three.
// Servers run in child processes (server-process.ts), the sockets in client processes (scale-client.ts), none over
// 15,000 sockets (a process may open 20,000 files). Every process started here is stopped at the end of its scenario,
// also when it fails.
//   BENCH_SCALE_FACTOR=<f>    (0, 1], default 1: multiplies every socket count, so that a small trial run goes the
//                             same way as the full one (e.g. 0.05); any other factor than 1 writes *.tmp results
//   BENCH_STORM_ROUNDS=<n>    rounds of scenario 8 per server (default 5, at least 3)
//   BENCH_STORM_WINDOW=<n>    scenario 8's handshakes in flight at once (default 500, within the listen backlog of
//                             511; 0: every client at once)
import { fork, type ChildProcess } from 'node:child_process'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { median, openFileLimits, percentile, ServerHandle, signedAfterStart, sleep } from './harness.js'
import { BenchRedis } from './redis.js'
import { heartbeatPeriodS } from './servers.js'
import { fmt, ms, ratio, type ChartRow, type Goal, type Row, type ScenarioResult } from './scenarios.js'
import type { BenchSession, CallTimes, DelaySample, MemorySample, PushSample } from './server-process.js'
import type { ClientRequest, CloseResult, GroupStats, OpenResult, RevokedEvent } from './scale-client.js'

const clientScript = fileURLToPath(new URL('./scale-client.js', import.meta.url))
const heartbeatPeriodMs = heartbeatPeriodS * 1000

function readScaleFactor (): number {
  const raw = process.env.BENCH_SCALE_FACTOR
  if (raw === undefined || raw === '') return 1
  const value = Number(raw)
  // Above 1, a process would need more than the 20,000 files it may open.
  if (!(value > 0 && value <= 1)) throw new Error(`BENCH_SCALE_FACTOR must be a number in (0, 1], not ${raw}`)
  return value
}

/** BENCH_SCALE_FACTOR: every socket count is multiplied by it. */
export const scaleFactor = readScaleFactor()
const scaled = (count: number, least = 1) => Math.max(least, Math.round(count * scaleFactor))

/** Sockets per client process: under the 20,000 files a process may open, with room to spare. */
const perClient = 14_000
/** Event-loop delay resolution (ms), as in scenarios 3 and 5: the histogram holds resolution + delay. */
const resolution = 10
const above = (raw: number) => Math.max(0, raw - resolution)

const epochNow = () => performance.timeOrigin + performance.now()
const sum = (values: readonly number[]) => values.reduce((total, v) => total + v, 0)
/** A CPU figure got by a difference of two windows: at or under zero it is noise. */
const noisy = (value: number, digits: number) => value > 0 ? fmt(value, digits) : 'under the noise'
const gib = (bytes: number) => `${fmt(bytes / 2 ** 30, 1)} GiB`

/** `count` split into `parts` sizes as even as can be. */
function split (count: number, parts: number): number[] {
  return Array.from({ length: parts }, (_v, i) => Math.floor(count / parts) + (i < count % parts ? 1 : 0))
}

/** `items` cut into `parts` consecutive pieces as even as can be. */
function chunks<T> (items: readonly T[], parts: number): T[][] {
  let start = 0
  return split(items.length, parts).map(size => items.slice(start, (start += size)))
}

/** Polls `done` every `stepMs` until it holds or `limitMs` has passed; says whether it held. */
async function waitFor (done: () => boolean, limitMs: number, stepMs = 5): Promise<boolean> {
  const until = Date.now() + limitMs
  while (!done()) {
    if (Date.now() >= until) return false
    await sleep(stepMs)
  }
  return true
}

/** A client process (scale-client.ts) holding sockets in named groups. */
class ClientHandle {
  readonly index: number
  /** Every AUTH_REVOKED of a group opened with `pushRevoked`, as it arrives. */
  onRevoked: ((event: RevokedEvent) => void) | null = null
  readonly #child: ChildProcess
  readonly #waiting = new Map<number, { resolve: (value: unknown) => void, reject: (err: Error) => void }>()
  #nextId = 0

  private constructor (index: number, child: ChildProcess) {
    this.index = index
    this.#child = child
    child.on('message', (message: { id?: number, result?: unknown, error?: string, event?: string }) => {
      if (message.event === 'revoked') {
        this.onRevoked?.(message as RevokedEvent)
        return
      }
      const waiter = this.#waiting.get(message.id!)
      if (!waiter) return
      this.#waiting.delete(message.id!)
      if (message.error) waiter.reject(new Error(message.error))
      else waiter.resolve(message.result)
    })
    child.on('exit', (code) => {
      for (const waiter of this.#waiting.values()) waiter.reject(new Error(`client ${index} exited with ${code}`))
      this.#waiting.clear()
    })
  }

  static start (index: number): Promise<ClientHandle> {
    const child = fork(clientScript, [String(index)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`client ${index} did not start in 20 s`))
      }, 20_000)
      child.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`client ${index} exited with ${code}`))
      })
      child.once('message', () => {
        clearTimeout(timer)
        resolve(new ClientHandle(index, child))
      })
    })
  }

  request<T> (request: ClientRequest, limitMs: number): Promise<T> {
    if (!this.#child.connected) return Promise.reject(new Error(`client ${this.index} is gone`))
    const id = this.#nextId++
    this.#child.send({ id, request })
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id)
        reject(new Error(`client ${this.index}: no answer to ${request.cmd} in ${limitMs} ms`))
      }, limitMs)
      this.#waiting.set(id, {
        resolve: (value) => { clearTimeout(timer); resolve(value as T) },
        reject: (err) => { clearTimeout(timer); reject(err) }
      })
    })
  }

  open (request: Omit<Extract<ClientRequest, { cmd: 'open' }>, 'cmd'>): Promise<OpenResult> {
    // The client gives up on a group's handshakes after a minute plus 20 ms per socket: this waits a little longer.
    return this.request({ cmd: 'open', ...request }, 70_000 + 20 * request.frames.length)
  }

  collect (group: string): Promise<GroupStats> { return this.request({ cmd: 'collect', group }, 30_000) }
  close (group: string): Promise<CloseResult> { return this.request({ cmd: 'close', group }, 30_000) }

  async stop (): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return
    const exited = new Promise(resolve => this.#child.once('exit', resolve))
    await this.request({ cmd: 'exit' }, 5_000).catch(() => {})
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5_000)
    await exited
    clearTimeout(timer)
  }
}

async function startClients (count: number, into: ClientHandle[]): Promise<ClientHandle[]> {
  const started = await Promise.allSettled(Array.from({ length: count }, (_v, i) => ClientHandle.start(into.length + i)))
  for (const result of started) if (result.status === 'fulfilled') into.push(result.value)
  const failed = started.find(result => result.status === 'rejected')
  if (failed) throw (failed as PromiseRejectedResult).reason
  return into
}

/** Stops every process given, clients first (their sockets go before the servers do), whatever fails. */
async function stopAll (clients: ClientHandle[], servers: ServerHandle[], redis?: BenchRedis | null): Promise<void> {
  await Promise.allSettled(clients.map(c => c.stop()))
  await Promise.allSettled(servers.map(s => s.stop()))
  if (redis) await redis.stop()
}

/** Servers of one kind, one after another (start-up hashes the embedded users' passwords: argon2, CPU-bound). */
async function startServers (kind: 'plugin' | 'bare' | 'plugin-redis', count: number, into: ServerHandle[]): Promise<ServerHandle[]> {
  for (let i = 0; i < count; i++) into.push(await ServerHandle.start(kind))
  return into
}

const sockets = (server: ServerHandle) => server.request<number>({ cmd: 'sockets' })

/** Waits (bounded) until the server holds no TCP connection. */
async function drained (server: ServerHandle, limitMs = 15_000): Promise<number> {
  const until = Date.now() + limitMs
  let open = await sockets(server)
  while (open > 0 && Date.now() < until) {
    await sleep(50)
    open = await sockets(server)
  }
  return open
}

const authFrame = (token: string) => JSON.stringify({ type: 'auth', access_token: token })

/** What a group opened over several clients adds up to. */
interface Opened {
  authenticated: number
  failed: number
  failures: Record<string, number>
  /** ms from the first connect of any client to the last ok of any. */
  spanMs: number
  elapsedMs: number
  pings: number
}

function merge (results: OpenResult[]): Opened {
  const failures: Record<string, number> = {}
  for (const result of results) for (const [code, n] of Object.entries(result.failures)) failures[code] = (failures[code] ?? 0) + n
  const started = results.filter(r => r.authenticated > 0)
  return {
    authenticated: sum(results.map(r => r.authenticated)),
    failed: sum(results.map(r => r.failed)),
    failures,
    spanMs: started.length ? Math.max(...started.map(r => r.lastOkAt)) - Math.min(...started.map(r => r.firstConnectAt)) : NaN,
    elapsedMs: Math.max(0, ...results.map(r => r.elapsedMs)),
    pings: sum(results.map(r => r.pings))
  }
}

/**
 * Opens one socket per frame on `server`, the frames (and their tags and expiries) spread over every client, as
 * group `group` on each. `concurrency` handshakes in flight at once in all.
 */
async function openSpread (clients: ClientHandle[], server: ServerHandle, group: string, frames: string[], options: {
  concurrency: number, tags?: string[], expiresAt?: number[], pushRevoked?: boolean, addressOffset?: number
}): Promise<Opened> {
  const frameParts = chunks(frames, clients.length)
  const tagParts = options.tags && chunks(options.tags, clients.length)
  const expiryParts = options.expiresAt && chunks(options.expiresAt, clients.length)
  const results = await Promise.all(clients.map((client, i) => client.open({
    group,
    port: server.port,
    path: '/websocket',
    frames: frameParts[i],
    tags: tagParts?.[i],
    expiresAt: expiryParts?.[i],
    concurrency: Math.max(1, Math.ceil(options.concurrency / clients.length)),
    addressOffset: (options.addressOffset ?? 0) + i * 3,
    pushRevoked: options.pushRevoked
  })))
  return merge(results)
}

async function closeSpread (clients: ClientHandle[], group: string): Promise<CloseResult[]> {
  return Promise.all(clients.map(client => client.close(group)))
}

interface CpuSample { cpuMicros: number, at: number }
const cpuShare = (before: CpuSample, after: CpuSample) => (after.cpuMicros - before.cpuMicros) / 1000 / (after.at - before.at)

// ---------------------------------------------------------------------------------------------------------------
// 7a. RSS per idle socket in one process, plugin vs bare

type MemoryKind = 'plugin' | 'bare' | 'bare-heartbeat'

interface MemoryRound {
  kind: MemoryKind
  rssPerSocket: number
  heapPerSocket: number
  rssBefore: number
  rssDuring: number
  authenticated: number
  failed: number
  serverSockets: number
  openMs: number
  /** Heartbeat pings the clients got while their sockets opened. */
  pings: number
  /** The plugin's: `send({ user })` to one user's socket among all of them, after the memory sample. */
  push: PushSample | null
  /** A server with a heartbeat: its CPU over `beatWindows` periods after the memory sample, µs per socket per beat. */
  cpuPerSocketPerBeat: number | null
}

/** Periods over which 7a measures a heartbeat's CPU. */
const beatWindows = 2

/** Pushes timed in each plugin round of 7a. */
const pushCalls = 200

/**
 * A fresh server (RSS before its first socket), `frames.length` idle authenticated sockets, RSS after GC, 500 ms
 * after the last socket opened, and for a server with a heartbeat no earlier than 500 ms after its first beat began:
 * a server that opened its sockets within one period would otherwise be measured without its heartbeat.
 */
async function memoryRound (kind: MemoryKind, frames: string[], clients: ClientHandle[], round: number, signer: ServerHandle): Promise<MemoryRound> {
  const server = await ServerHandle.start(kind)
  // The heartbeat's timer starts as the server is set up, before it listens: its first beat is at most a period away.
  const firstBeatAt = Date.now() + heartbeatPeriodMs
  if (kind === 'plugin') frames = (await signedAfterStart(signer, frames.length)).map(authFrame)
  const group = `memory-${kind}-${round}`
  try {
    const before = await server.memory()
    const opened = await openSpread(clients, server, group, frames, { concurrency: 128, addressOffset: round })
    await sleep(kind === 'bare' ? 500 : Math.max(500, firstBeatAt + 500 - Date.now()))
    const during: MemorySample = await server.memory()
    const serverSockets = await sockets(server)
    const push = kind === 'plugin' ? await server.request<PushSample>({ cmd: 'push', users: frames.length, count: pushCalls }) : null
    const n = opened.authenticated
    let cpuPerSocketPerBeat: number | null = null
    if (kind !== 'bare') {
      const start = await server.cpu()
      await sleep(beatWindows * heartbeatPeriodMs)
      const end = await server.cpu()
      cpuPerSocketPerBeat = (end.cpuMicros - start.cpuMicros) / ((end.at - start.at) / heartbeatPeriodMs) / n
    }
    await closeSpread(clients, group)
    return {
      kind,
      rssPerSocket: (during.rss - before.rss) / n,
      heapPerSocket: (during.heapUsed + during.external - before.heapUsed - before.external) / n,
      rssBefore: before.rss,
      rssDuring: during.rss,
      authenticated: n,
      failed: opened.failed,
      serverSockets,
      openMs: opened.elapsedMs,
      pings: opened.pings,
      push,
      cpuPerSocketPerBeat
    }
  } finally {
    await server.stop()
  }
}

interface MemoryMeasure {
  count: number
  plugin: MemoryRound[]
  bare: MemoryRound[]
  /** bare with a heartbeat at the plugin server's period: what the heartbeat alone costs. */
  heartbeat: MemoryRound[]
  pluginRss: number
  bareRss: number
  heartbeatRss: number
  pluginHeap: number
  bareHeap: number
  heartbeatHeap: number
  ratio: number
  /** bare-heartbeat / bare */
  heartbeatRatio: number
  /** `send({ user })` in the plugin rounds: each round's median µs per call, the p99 of all, sockets matched / calls. */
  push: { p50s: number[], p99: number, matched: number, calls: number }
  /** Server CPU per socket per beat, µs, of each round: the plugin's, and bare-heartbeat's. */
  beatCpu: { plugin: number[], heartbeat: number[] }
  complete: boolean
}

async function memoryInOneProcess (signer: ServerHandle, progress: (text: string) => void): Promise<MemoryMeasure> {
  // As many as a process may hold: its open-file limit (20,000) less room for its own files.
  const count = scaled(Math.min(19_000, openFileLimits().soft - 1000))
  const frames = (await signer.sign(count)).map(authFrame)
  const clients: ClientHandle[] = []
  try {
    await startClients(Math.max(1, Math.ceil(count / perClient)), clients)
    const rounds: MemoryRound[] = []
    // A fresh process each round, in an order that gives every kind the same average place.
    const order = ['plugin', 'bare', 'bare-heartbeat', 'bare-heartbeat', 'bare', 'plugin'] as const
    for (const [i, kind] of order.entries()) {
      progress(`7a round ${i + 1}/${order.length}: ${kind}, ${fmt(count)} sockets in one process`)
      rounds.push(await memoryRound(kind, frames, clients, i, signer))
    }
    const of = (kind: MemoryKind) => rounds.filter(r => r.kind === kind)
    const [plugin, bare, heartbeat] = [of('plugin'), of('bare'), of('bare-heartbeat')]
    const rss = (ofKind: MemoryRound[]) => median(ofKind.map(r => r.rssPerSocket))
    const heap = (ofKind: MemoryRound[]) => median(ofKind.map(r => r.heapPerSocket))
    const pushes = plugin.map(r => r.push!)
    const pushMicros = pushes.flatMap(p => p.micros)
    return {
      count,
      plugin,
      bare,
      heartbeat,
      pluginRss: rss(plugin),
      bareRss: rss(bare),
      heartbeatRss: rss(heartbeat),
      pluginHeap: heap(plugin),
      bareHeap: heap(bare),
      heartbeatHeap: heap(heartbeat),
      ratio: rss(plugin) / rss(bare),
      heartbeatRatio: rss(heartbeat) / rss(bare),
      push: { p50s: pushes.map(p => percentile(p.micros, 50)), p99: percentile(pushMicros, 99), matched: sum(pushes.map(p => p.matched)), calls: pushMicros.length },
      beatCpu: { plugin: plugin.map(r => r.cpuPerSocketPerBeat!), heartbeat: heartbeat.map(r => r.cpuPerSocketPerBeat!) },
      complete: rounds.every(r => r.authenticated === count)
    }
  } finally {
    await stopAll(clients, [])
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 7b. 100,000 sockets on six plugin processes and one Redis

interface ProcessMeasure {
  sockets: number
  rssBefore: number
  rssDuring: number
  rssPerSocket: number
  heapPerSocket: number
  idle: { cpuShare: number, delayP99: number, delayMax: number }
  heartbeat: { windowMs: number, delayP99: number, delayMax: number, cpuShare: number, cpuMicrosPerSocketPerBeat: number }
  expiry: {
    tokens: number
    expired: number
    latenessMs: { p50: number, p99: number, max: number }
    delayP99: number
    delayMax: number
    cpuShare: number
    cpuMicrosPerExpiry: number
  }
  unexpectedCloses: number
  authTimeouts: number
}

interface RevokeRound {
  user: string
  on: number
  expected: number
  arrived: number
  /** From the orchestrator's send of the call to the last AUTH_REVOKED of the user's sockets. */
  lastMs: number
  /** The same from when the call began in the server process. */
  lastFromCallMs: number
  callMs: number
  perProcessMs: number[]
}

interface ClusterMeasure {
  processes: number
  total: number
  authenticated: number
  failed: number
  openMs: number
  heartbeatPeriodS: number
  spreadSeconds: number
  perProcess: ProcessMeasure[]
  revocations: RevokeRound[]
  /**
   * An idle Node process on the same machine, no socket and no plugin, its event loop measured in the same windows:
   * what the machine's own scheduling costs every process (fifteen of them share two cores here).
   */
  canary: { heartbeat: DelaySample, expiry: DelaySample }
  /** The machine's 1-minute load average at the end of the heartbeat and expiry windows. */
  loadAverage: { heartbeat: number, expiry: number }
}

async function clusterAtScale (signer: ServerHandle, progress: (text: string) => void): Promise<ClusterMeasure> {
  const processes = 6
  const total = scaled(100_000, processes * 20)
  const perServer = split(total, processes)
  const expiringShare = 0.1
  const spreadSeconds = 10
  const revokeRounds = 5
  const revokePerProcess = 2
  const expiring = perServer.map(n => Math.round(n * expiringShare))
  const stable = perServer.map((n, s) => n - expiring[s] - revokeRounds * revokePerProcess)
  const redis = await BenchRedis.start()
  const servers: ServerHandle[] = []
  const clients: ClientHandle[] = []
  let canary: ServerHandle | null = null
  const previousUrl = process.env.BENCH_REDIS_URL
  process.env.BENCH_REDIS_URL = redis.url // the servers' environment: they are forked from here
  try {
    progress(`7b starting ${processes} plugin processes on one Redis`)
    await startServers('plugin-redis', processes, servers)
    canary = await ServerHandle.start('bare')
    const watched = [...servers, canary]
    await startClients(Math.max(2, Math.ceil(total / perClient)), clients)
    const before = await Promise.all(servers.map(s => s.memory()))
    // What a process costs without a socket, the delay monitor on as in the windows below (it costs most of it):
    // a heartbeat period, subtracted from the heartbeats' CPU.
    progress('7b idle processes: one heartbeat period')
    await Promise.all(servers.map(s => s.startDelay(resolution)))
    const idleCpuBefore = await Promise.all(servers.map(s => s.cpu()))
    await sleep(heartbeatPeriodMs)
    const idleDelay: DelaySample[] = await Promise.all(servers.map(s => s.stopDelay()))
    const idleCpuAfter = await Promise.all(servers.map(s => s.cpu()))

    // The users revoked later, each with sockets on every process, and the idle sockets, whose tokens last an hour.
    const revokeUsers = Array.from({ length: revokeRounds }, (_v, r) => `scale-revoke-${r}`)
    const revokeFrames: string[][] = servers.map(() => [])
    const revokeTags: string[][] = servers.map(() => [])
    for (const user of revokeUsers) {
      const tokens = await signer.request<string[]>({ cmd: 'sign-user', user, count: processes * revokePerProcess })
      chunks(tokens, processes).forEach((part, s) => {
        revokeFrames[s].push(...part.map(authFrame))
        revokeTags[s].push(...part.map(() => user))
      })
    }
    const stableFrames = (await signer.sign(Math.max(...stable))).map(authFrame)
    progress(`7b opening ${fmt(total - sum(expiring))} idle sockets over ${clients.length} client processes`)
    const openStart = Date.now()
    const stableOpened = await Promise.all(servers.map((server, s) => openSpread(clients, server, `stable-${s}`, stableFrames.slice(0, stable[s]), { concurrency: 128, addressOffset: s })))
    const revokeOpened = await Promise.all(servers.map((server, s) => openSpread(clients, server, `revoke-${s}`, revokeFrames[s], { concurrency: 16, tags: revokeTags[s], pushRevoked: true })))
    const stableMs = Date.now() - openStart

    // Tokens whose exp (whole seconds, as JWTs carry it) falls after everything below: the rest opened, memory
    // measured, the revocations done, and two heartbeats measured on their own.
    const expiringTotal = sum(expiring)
    const openEstimateMs = stableMs / Math.max(1, total - expiringTotal) * expiringTotal * 2 + 1000
    const leadMs = openEstimateMs + 3000 + revokeRounds * 700 + 2 * heartbeatPeriodMs + 500 + 1500
    const firstExp = Math.ceil((Date.now() + leadMs) / 1000)
    const exps = expiring.map(n => Array.from({ length: n }, (_v, i) => firstExp + (i % spreadSeconds)))
    progress(`7b opening ${fmt(expiringTotal)} sockets whose tokens expire from ${new Date(firstExp * 1000).toISOString()} over ${spreadSeconds} s`)
    const expiringFrames: string[][] = []
    for (const exp of exps) expiringFrames.push((await signer.sign(exp.length, exp)).map(authFrame))
    const expiringOpened = await Promise.all(servers.map((server, s) => openSpread(clients, server, `expiring-${s}`, expiringFrames[s], { concurrency: 128, expiresAt: exps[s].map(e => e * 1000), addressOffset: s + 7 })))
    const openMs = Date.now() - openStart
    const opened = [...stableOpened, ...revokeOpened, ...expiringOpened]
    const during = await Promise.all(servers.map(s => s.memory()))
    const held = await Promise.all(servers.map(sockets))

    // revokeUser of one user with sockets on every process, called on each process in turn.
    const revocations: RevokeRound[] = []
    const arrivals = new Map<string, { server: number, at: number }[]>()
    for (const client of clients) {
      client.onRevoked = (event) => {
        const list = arrivals.get(event.tag) ?? []
        list.push({ server: Number(event.group.slice('revoke-'.length)), at: event.at })
        arrivals.set(event.tag, list)
      }
    }
    const expected = processes * revokePerProcess
    for (const [r, user] of revokeUsers.entries()) {
      const on = r % processes
      progress(`7b revokeUser ${user} on process ${on}`)
      arrivals.set(user, [])
      const sentAt = epochNow()
      const call = await servers[on].request<CallTimes>({ cmd: 'revoke-user', user })
      await waitFor(() => arrivals.get(user)!.length >= expected, 2000)
      const got = arrivals.get(user)!
      const last = got.length ? Math.max(...got.map(a => a.at)) : NaN
      revocations.push({
        user,
        on,
        expected,
        arrived: got.length,
        lastMs: got.length === expected ? last - sentAt : NaN,
        lastFromCallMs: got.length === expected ? last - call.calledAt : NaN,
        callMs: call.resolvedAt - call.calledAt,
        perProcessMs: servers.map((_s, s) => {
          const here = got.filter(a => a.server === s).map(a => a.at)
          return here.length ? Math.max(...here) - sentAt : NaN
        })
      })
      await sleep(100)
    }
    for (const client of clients) client.onRevoked = null

    // Heartbeats alone, until a second before the first exp: at least two beats if the lead was long enough.
    const windowStart = firstExp * 1000 - 1000
    const heartbeatSockets = await Promise.all(servers.map(sockets))
    progress(`7b heartbeats: ${fmt((windowStart - Date.now()) / 1000, 1)} s`)
    await Promise.all(watched.map(s => s.startDelay(resolution)))
    const hbCpuBefore = await Promise.all(servers.map(s => s.cpu()))
    const hbStart = Date.now()
    await sleep(Math.max(0, windowStart - Date.now()))
    const hbDelay: DelaySample[] = await Promise.all(servers.map(s => s.stopDelay()))
    const canaryHeartbeat = await canary.stopDelay()
    const loadHeartbeat = os.loadavg()[0]
    const hbCpuAfter = await Promise.all(servers.map(s => s.cpu()))
    const hbWindowMs = Date.now() - hbStart

    // The expiries (and the heartbeats among them), from a second before the first to half a second after the last.
    progress('7b expiries')
    const windowEnd = (firstExp + spreadSeconds - 1) * 1000 + 500
    await Promise.all(watched.map(s => s.startDelay(resolution)))
    const exCpuBefore = await Promise.all(servers.map(s => s.cpu()))
    await sleep(Math.max(0, windowEnd - Date.now()))
    const exDelay: DelaySample[] = await Promise.all(servers.map(s => s.stopDelay()))
    const canaryExpiry = await canary.stopDelay()
    const loadExpiry = os.loadavg()[0]
    const exCpuAfter = await Promise.all(servers.map(s => s.cpu()))

    // Collected and closed before the re-auth windows (10 s after each exp) start closing the expired sockets.
    progress('7b closing')
    const expiries = await Promise.all(servers.map((_s, s) => Promise.all(clients.map(c => c.collect(`expiring-${s}`)))))
    const closes = await Promise.all(servers.map((_s, s) => Promise.all(['expiring', 'stable', 'revoke'].map(group => closeSpread(clients, `${group}-${s}`)))))
    const perProcess: ProcessMeasure[] = []
    for (let s = 0; s < servers.length; s++) {
      const closed = closes[s].flat()
      const lateness = expiries[s].flatMap(e => e.expiredLatencies)
      const idleShare = cpuShare(idleCpuBefore[s], idleCpuAfter[s])
      const hbShare = cpuShare(hbCpuBefore[s], hbCpuAfter[s])
      const exShare = cpuShare(exCpuBefore[s], exCpuAfter[s])
      const exWindowMs = exCpuAfter[s].at - exCpuBefore[s].at
      perProcess.push({
        sockets: held[s],
        rssBefore: before[s].rss,
        rssDuring: during[s].rss,
        rssPerSocket: (during[s].rss - before[s].rss) / held[s],
        heapPerSocket: (during[s].heapUsed + during[s].external - before[s].heapUsed - before[s].external) / held[s],
        idle: { cpuShare: idleShare, delayP99: above(idleDelay[s].p99), delayMax: above(idleDelay[s].max) },
        heartbeat: {
          windowMs: hbWindowMs,
          delayP99: above(hbDelay[s].p99),
          delayMax: above(hbDelay[s].max),
          cpuShare: hbShare,
          // CPU per period (the share above idle, times the period), per socket held: the pings and their pongs.
          cpuMicrosPerSocketPerBeat: (hbShare - idleShare) * heartbeatPeriodMs * 1000 / heartbeatSockets[s]
        },
        expiry: {
          tokens: exps[s].length,
          expired: lateness.length,
          latenessMs: { p50: percentile(lateness, 50), p99: percentile(lateness, 99), max: lateness.length ? Math.max(...lateness) : NaN },
          delayP99: above(exDelay[s].p99),
          delayMax: above(exDelay[s].max),
          cpuShare: exShare,
          // Above what the heartbeats cost meanwhile; at or under zero, under what this run can tell from noise.
          cpuMicrosPerExpiry: (exShare - hbShare) * exWindowMs * 1000 / Math.max(1, lateness.length)
        },
        unexpectedCloses: sum(closed.map(c => c.unexpectedCloses)),
        authTimeouts: sum(closed.map(c => c.authTimeouts))
      })
    }
    return {
      processes,
      total,
      authenticated: sum(opened.map(o => o.authenticated)),
      failed: sum(opened.map(o => o.failed)),
      openMs,
      heartbeatPeriodS: heartbeatPeriodMs / 1000,
      spreadSeconds,
      perProcess,
      revocations,
      canary: { heartbeat: canaryHeartbeat, expiry: canaryExpiry },
      loadAverage: { heartbeat: loadHeartbeat, expiry: loadExpiry }
    }
  } finally {
    await stopAll(clients, canary ? [...servers, canary] : servers, redis)
    if (previousUrl === undefined) delete process.env.BENCH_REDIS_URL
    else process.env.BENCH_REDIS_URL = previousUrl
  }
}

/** 7. At scale: memory in one process vs bare, and six processes on one Redis. */
async function atScale (signer: ServerHandle, progress: (text: string) => void): Promise<ScenarioResult> {
  const memory = await memoryInOneProcess(signer, progress)
  const cluster = await clusterAtScale(signer, progress)
  const pp = cluster.perProcess
  const worst = (of: (p: ProcessMeasure) => number) => Math.max(...pp.map(of))

  const memoryMet = memory.ratio <= 1.05 && memory.complete
  const expiryP99 = worst(p => p.expiry.latenessMs.p99)
  const allExpired = pp.every(p => p.expiry.expired === p.expiry.tokens)
  const expiryMet = expiryP99 <= 50 && allExpired
  const stall = worst(p => p.heartbeat.delayMax)
  const stallMet = stall <= 20 && pp.every(p => p.heartbeat.windowMs >= heartbeatPeriodMs)
  const revokeMedian = median(cluster.revocations.map(r => r.lastMs))
  const revokeMax = Math.max(...cluster.revocations.map(r => r.lastMs))
  const allRevoked = cluster.revocations.every(r => r.arrived === r.expected)
  const revokeMet = revokeMedian <= 100 && allRevoked
  const complete = cluster.authenticated === cluster.total && pp.every(p => p.unexpectedCloses === 0)

  // One process at 1,000,000 sockets, from what each held here (medians over the six processes).
  const million = 1_000_000
  const rssPerSocket = median(pp.map(p => p.rssPerSocket))
  const baseRss = median(pp.map(p => p.rssBefore))
  const beatMicros = median(pp.map(p => p.heartbeat.cpuMicrosPerSocketPerBeat))
  const expiryMicros = median(pp.map(p => p.expiry.cpuMicrosPerExpiry))
  const beatCpuS = beatMicros * million / 1e6
  // Were every socket's token to run out once per ACCESS_TOKEN_TTL's default, 15 minutes.
  const expiriesPerS = million / 900
  const projection = {
    sockets: million,
    rssBytes: baseRss + rssPerSocket * million,
    rssBytesFromOneProcess7a: memory.plugin[0].rssBefore + memory.pluginRss * million,
    heartbeatCpuSecondsPerBeat: beatCpuS,
    heartbeatCoreShareAt5s: beatCpuS / 5,
    heartbeatCoreShareAt30s: beatCpuS / 30,
    expiryCpuMicrosEach: expiryMicros,
    expiryCoreShareAt15mTokens: expiriesPerS * expiryMicros / 1e6,
    openFilesNeeded: million + 100
  }

  const rows: Row[] = [
    { measure: `RSS per idle socket, one process, ${fmt(memory.count)} sockets (bytes)`, plugin: fmt(memory.pluginRss), baseline: fmt(memory.bareRss), value: `${ratio(memory.ratio)}x`, goal: '<= 1.05x', met: memoryMet },
    { measure: 'heap + external per idle socket, one process (bytes)', plugin: fmt(memory.pluginHeap), baseline: fmt(memory.bareHeap), value: '', goal: '', met: null },
    { measure: `the heartbeat alone: bare-heartbeat's RSS per idle socket (a ping every ${heartbeatPeriodS} s, as the plugin here), and its ratio to bare`, plugin: '', baseline: fmt(memory.heartbeatRss), value: `${ratio(memory.heartbeatRatio)}x`, goal: 'reported', met: null },
    { measure: 'plugin / bare-heartbeat: RSS; heap + external (bytes)', plugin: `${fmt(memory.pluginRss)}; ${fmt(memory.pluginHeap)}`, baseline: `${fmt(memory.heartbeatRss)}; ${fmt(memory.heartbeatHeap)}`, value: `${ratio(memory.pluginRss / memory.heartbeatRss)}x; ${ratio(memory.pluginHeap / memory.heartbeatHeap)}x`, goal: 'reported', met: null },
    { measure: 'server CPU per socket per beat, one process, each round (µs) [bare-heartbeat: one loop over the sockets; all CPU in two periods, none subtracted]', plugin: memory.beatCpu.plugin.map(v => fmt(v, 1)).join(', '), baseline: memory.beatCpu.heartbeat.map(v => fmt(v, 1)).join(', '), value: `${ratio(median(memory.beatCpu.plugin) / median(memory.beatCpu.heartbeat))}x`, goal: 'reported', met: null },
    { measure: `send({ user }) to one user's socket among ${fmt(memory.count)}, one process: per call median of each round; p99 (µs); sockets matched / calls`, plugin: `${memory.push.p50s.map(v => fmt(v, 1)).join(', ')}; ${fmt(memory.push.p99, 1)}; ${fmt(memory.push.matched)} / ${fmt(memory.push.calls)}`, baseline: '', value: '', goal: 'reported', met: null },
    { measure: `${fmt(cluster.total)} sockets on ${cluster.processes} processes + Redis: authenticated / failed / closed unasked`, plugin: `${fmt(cluster.authenticated)} / ${fmt(cluster.failed)} / ${fmt(sum(pp.map(p => p.unexpectedCloses)))}`, baseline: '', value: '', goal: '', met: null },
    { measure: 'TOKEN_EXPIRED after exp p50 / p99 / max (ms), worst process', plugin: `${ms(worst(p => p.expiry.latenessMs.p50))} / ${ms(expiryP99)} / ${ms(worst(p => p.expiry.latenessMs.max))}`, baseline: '', value: ms(expiryP99), goal: '<= 50 ms', met: expiryMet },
    { measure: 'event-loop delay during heartbeats p99 / max (ms), worst process', plugin: `${ms(worst(p => p.heartbeat.delayP99))} / ${ms(stall)}`, baseline: '', value: ms(stall), goal: 'max <= 20 ms', met: stallMet },
    { measure: 'event-loop delay during expiries p99 / max (ms), worst process', plugin: `${ms(worst(p => p.expiry.delayP99))} / ${ms(worst(p => p.expiry.delayMax))}`, baseline: '', value: '', goal: '', met: null },
    { measure: 'an idle Node process beside them, no socket: event-loop delay p99 / max (ms), heartbeats; expiries', plugin: `${ms(above(cluster.canary.heartbeat.p99))} / ${ms(above(cluster.canary.heartbeat.max))}; ${ms(above(cluster.canary.expiry.p99))} / ${ms(above(cluster.canary.expiry.max))}`, baseline: '', value: '', goal: '', met: null },
    { measure: 'load average at the end of the heartbeat; expiry window (2 cores)', plugin: `${fmt(cluster.loadAverage.heartbeat, 1)}; ${fmt(cluster.loadAverage.expiry, 1)}`, baseline: '', value: '', goal: '', met: null },
    { measure: `revokeUser to the last AUTH_REVOKED on ${cluster.processes} processes, median / max of ${cluster.revocations.length} (ms)`, plugin: `${ms(revokeMedian)} / ${ms(revokeMax)}`, baseline: '', value: ms(revokeMedian), goal: '<= 100 ms', met: revokeMet },
    { measure: 'RSS per socket per process (bytes)', plugin: pp.map(p => fmt(p.rssPerSocket)).join(', '), baseline: '', value: '', goal: '', met: null },
    { measure: 'server CPU per socket per heartbeat (µs), per expiry (µs), median process', plugin: `${noisy(beatMicros, 2)}, ${noisy(expiryMicros, 1)}`, baseline: '', value: '', goal: '', met: null },
    { measure: '1,000,000 sockets in one process: RSS; heartbeat CPU per beat', plugin: `${gib(projection.rssBytes)}; ${beatMicros > 0 ? `${fmt(beatCpuS, 1)} s (${fmt(projection.heartbeatCoreShareAt30s * 100)}% of a core at 30 s, ${fmt(projection.heartbeatCoreShareAt5s * 100)}% at 5 s)` : 'under the noise'}`, baseline: '', value: '', goal: 'reported', met: null },
    { measure: '1,000,000 sockets: expiries of 15-min tokens (1,111/s)', plugin: expiryMicros > 0 ? `${fmt(projection.expiryCoreShareAt15mTokens * 100, 1)}% of a core` : 'under the noise', baseline: '', value: '', goal: 'reported', met: null }
  ]
  const goals: Goal[] = [
    { name: 'RSS per socket vs bare, one process at the file limit', value: memory.ratio, target: '<= 1.05', met: memoryMet },
    { name: `TOKEN_EXPIRED p99 after exp, ${fmt(cluster.total)} sockets on ${cluster.processes} processes (ms)`, value: expiryP99, target: '<= 50', met: expiryMet },
    { name: 'event-loop stall during heartbeats, max (ms)', value: stall, target: '<= 20', met: stallMet },
    { name: `revokeUser to every AUTH_REVOKED on ${cluster.processes} processes (ms)`, value: revokeMedian, target: '<= 100', met: revokeMet }
  ]
  if (!complete) goals.push({ name: `${fmt(cluster.total)} sockets authenticated and held`, value: cluster.authenticated, target: `${cluster.total}`, met: false })
  const chart: ChartRow[] = [
    {
      label: '7 RSS per idle socket (1 process)',
      unit: ' B',
      bars: [
        { name: 'fastify-realtime', value: memory.pluginRss },
        { name: 'bare @fastify/websocket', value: memory.bareRss },
        { name: 'bare + heartbeat', value: memory.heartbeatRss }
      ],
      limit: { value: 1.05 * memory.bareRss, better: 'below', label: '1.05 × bare' }
    },
    { label: '7 TOKEN_EXPIRED p99, 6 processes', unit: ' ms', bars: [{ name: 'worst process', value: expiryP99 }], limit: { value: 50, better: 'below', label: '50 ms' } },
    { label: '7 heartbeat stall, max', unit: ' ms', bars: [{ name: 'worst process', value: stall }], limit: { value: 20, better: 'below', label: '20 ms' } },
    { label: '7 revokeUser, 6 processes', unit: ' ms', bars: [{ name: 'median', value: revokeMedian }, { name: 'max', value: revokeMax }], limit: { value: 100, better: 'below', label: '100 ms' } }
  ]
  return {
    id: 7,
    title: `At scale (${fmt(memory.count)} sockets in one process; ${fmt(cluster.total)} on ${cluster.processes} + Redis)`,
    rows,
    goals,
    chart,
    details: { scaleFactor, oneProcess: memory, cluster, projection }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 8. Reconnect storm

/** The plugin, bare, and bare-verify: bare checking each token through @fastify/jwt and nothing else. */
const stormKinds = ['plugin', 'bare', 'bare-verify'] as const
type StormKind = typeof stormKinds[number]

interface StormRound {
  kind: StormKind
  totalMs: number
  authenticated: number
  failures: Record<string, number>
  delayP99: number
  delayMax: number
  cpuMicrosPerSocket: number
  leftOpen: number
  /** Heartbeat pings during the storm: a beat (every 5 s here) that falls inside one adds its pings to the work. */
  pings: number
}

async function stormRound (server: ServerHandle, frames: string[], clients: ClientHandle[], window: number, round: number): Promise<StormRound> {
  const group = `storm-${server.kind}-${round}`
  await server.startDelay(resolution)
  const cpuBefore = await server.cpu()
  const opened = await openSpread(clients, server, group, frames, { concurrency: window, addressOffset: round })
  const cpuAfter = await server.cpu()
  const delay = await server.stopDelay()
  await closeSpread(clients, group)
  const leftOpen = await drained(server)
  return {
    kind: server.kind as StormKind,
    totalMs: opened.spanMs,
    authenticated: opened.authenticated,
    failures: opened.failures,
    delayP99: above(delay.p99),
    delayMax: above(delay.max),
    cpuMicrosPerSocket: (cpuAfter.cpuMicros - cpuBefore.cpuMicros) / Math.max(1, opened.authenticated),
    leftOpen,
    pings: opened.pings
  }
}

/** 8. Everyone reconnects at once (after a deploy) with the token they hold. */
async function reconnectStorm (signer: ServerHandle, progress: (text: string) => void): Promise<ScenarioResult> {
  const count = scaled(10_000)
  // Medians of five pairs by default: a storm lasts a second or two, and a heartbeat falls inside some of them.
  const rounds = Math.max(3, Number(process.env.BENCH_STORM_ROUNDS) || 5)
  // Handshakes in flight at once: within the listen backlog (511), so that the kernel drops no SYN and no client
  // waits out a 1 s retransmission, which would measure the kernel rather than the server. 0: all at once.
  const windowSetting = process.env.BENCH_STORM_WINDOW === undefined ? 500 : Number(process.env.BENCH_STORM_WINDOW)
  const window = windowSetting > 0 ? Math.min(windowSetting, count) : count
  const servers: ServerHandle[] = []
  const clients: ClientHandle[] = []
  try {
    for (const kind of stormKinds) servers.push(await ServerHandle.start(kind))
    // Signed once the servers are up: without Redis, a session's token from before a process started is its store's
    // to vouch for (harness.ts); a deployment on Redis, whose processes know every revocation, takes them all alike.
    const frames = (await signedAfterStart(signer, count)).map(authFrame)
    await startClients(Math.max(1, Math.ceil(count / perClient)), clients)
    // A storm each to warm up (not counted), then the rounds, each server first, second and last in turn.
    for (const server of servers) {
      progress(`8 warm-up storm: ${server.kind}, ${fmt(count)} sockets`)
      await stormRound(server, frames, clients, window, 0)
    }
    const measured: StormRound[][] = servers.map(() => [])
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < servers.length; k++) {
        const i = (k + round) % servers.length
        progress(`8 round ${round + 1}/${rounds}: ${servers[i].kind}`)
        measured[i].push(await stormRound(servers[i], frames, clients, window, round + 1))
        await sleep(200)
      }
    }
    const [ours, theirs, verifying] = measured
    const paired = (a: StormRound[], b: StormRound[]) => median(a.map((r, i) => r.totalMs / b[i].totalMs))
    const timeRatio = paired(ours, theirs)
    const verifyRatio = paired(verifying, theirs)
    // The plugin beats every 5 s here and the baselines never: its storms with no beat inside, against bare's.
    const calm = ours.flatMap((r, i) => r.pings === 0 ? [r.totalMs / theirs[i].totalMs] : [])
    const pluginMs = median(ours.map(r => r.totalMs))
    const bareMs = median(theirs.map(r => r.totalMs))
    const verifyMs = median(verifying.map(r => r.totalMs))
    const cpu = (rs: StormRound[]) => fmt(median(rs.map(r => r.cpuMicrosPerSocket)))
    const delayP99 = median(ours.map(r => r.delayP99))
    const failures = (rs: StormRound[]) => {
      const all: Record<string, number> = {}
      for (const r of rs) for (const [code, n] of Object.entries(r.failures)) all[code] = (all[code] ?? 0) + n
      return all
    }
    const pluginFailures = failures(ours)
    const readmitted = ours.every(r => r.authenticated === count)
    const admittedMet = readmitted && !pluginFailures.AUTH_TIMEOUT && Object.keys(pluginFailures).length === 0
    const timeMet = timeRatio <= 1.15
    const delayMet = delayP99 <= 50
    const failureText = (f: Record<string, number>) => Object.entries(f).map(([code, n]) => `${code} ${n}`).join(', ') || 'none'
    return {
      id: 8,
      title: `Reconnect storm (${fmt(count)} clients, ${rounds} rounds each)`,
      rows: [
        { measure: 'readmitted per round (min); refused or timed out, all rounds', plugin: `${fmt(Math.min(...ours.map(r => r.authenticated)))}; ${failureText(pluginFailures)}`, baseline: `${fmt(Math.min(...theirs.map(r => r.authenticated)))}; ${failureText(failures(theirs))}`, value: `${fmt(Math.min(...ours.map(r => r.authenticated)))} / ${fmt(count)}`, goal: 'all, no AUTH_TIMEOUT', met: admittedMet },
        { measure: 'first connect to last ok (ms)', plugin: ms(pluginMs), baseline: ms(bareMs), value: ratio(timeRatio), goal: '<= 1.15', met: timeMet },
        { measure: 'verifying alone: bare-verify\'s first connect to last ok (ms), and its ratio to bare', plugin: '', baseline: ms(verifyMs), value: ratio(verifyRatio), goal: 'reported', met: null },
        { measure: 'plugin / bare-verify', plugin: ms(pluginMs), baseline: ms(verifyMs), value: ratio(paired(ours, verifying)), goal: 'reported', met: null },
        { measure: `plugin / bare in the storms without a plugin heartbeat inside (${calm.length} of ${rounds})`, plugin: '', baseline: '', value: calm.length > 0 ? ratio(median(calm)) : '-', goal: 'reported', met: null },
        { measure: 'server event-loop delay in the storm p99 / max (ms)', plugin: `${ms(delayP99)} / ${ms(median(ours.map(r => r.delayMax)))}`, baseline: `${ms(median(theirs.map(r => r.delayP99)))} / ${ms(median(theirs.map(r => r.delayMax)))}`, value: ms(delayP99), goal: 'p99 <= 50 ms', met: delayMet },
        { measure: 'server CPU per reconnect (µs) [bare / bare-verify]', plugin: cpu(ours), baseline: `${cpu(theirs)} / ${cpu(verifying)}`, value: '', goal: '', met: null },
        { measure: `storms with a heartbeat inside (of ${rounds}); handshakes in flight at most`, plugin: `${ours.filter(r => r.pings > 0).length}; ${fmt(window)}`, baseline: `-; ${fmt(window)}`, value: '', goal: '', met: null }
      ],
      goals: [
        { name: 'reconnect storm: all readmitted, no AUTH_TIMEOUT', value: Math.min(...ours.map(r => r.authenticated)), target: `${count}`, met: admittedMet },
        { name: 'reconnect storm time vs bare', value: timeRatio, target: '<= 1.15', met: timeMet },
        { name: 'event-loop delay p99 in the reconnect storm (ms)', value: delayP99, target: '<= 50', met: delayMet }
      ],
      chart: [
        {
          label: '8 reconnect storm, first to last ok',
          unit: ' ms',
          bars: [
            { name: 'fastify-realtime', value: pluginMs },
            { name: 'bare @fastify/websocket', value: bareMs },
            { name: 'bare + @fastify/jwt verify', value: verifyMs }
          ],
          limit: { value: 1.15 * bareMs, better: 'below', label: '1.15 × bare' }
        },
        { label: '8 event-loop delay p99 in the storm', unit: ' ms', bars: [{ name: 'fastify-realtime', value: delayP99 }], limit: { value: 50, better: 'below', label: '50 ms' } }
      ],
      details: { scaleFactor, count, window, rounds, plugin: ours, bare: theirs, bareVerify: verifying, ratio: timeRatio, verifyingAlone: verifyRatio, withoutHeartbeat: calm }
    }
  } finally {
    await stopAll(clients, servers)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 9. Logout fan-out

/** 9. A logout on one process; how soon its sockets on the three others hear of it. */
async function logoutFanout (signer: ServerHandle, progress: (text: string) => void): Promise<ScenarioResult> {
  const processes = 4
  const background = scaled(10_000)
  const sessionCount = scaled(200, 50)
  const gapMs = 20
  const redis = await BenchRedis.start()
  const servers: ServerHandle[] = []
  const clients: ClientHandle[] = []
  const previousUrl = process.env.BENCH_REDIS_URL
  process.env.BENCH_REDIS_URL = redis.url
  try {
    progress(`9 starting ${processes} plugin processes on one Redis`)
    await startServers('plugin-redis', processes, servers)
    await startClients(Math.max(2, Math.ceil((background + sessionCount) * processes / perClient)), clients)
    const frames = (await signer.sign(background)).map(authFrame)
    progress(`9 opening ${fmt(background)} idle sockets on each process`)
    const backgroundOpened = await Promise.all(servers.map((server, s) => openSpread(clients, server, `background-${s}`, frames, { concurrency: 128, addressOffset: s })))

    // Real sessions, in Redis: logins of the embedded users, on the first process (argon2: a few at once).
    progress(`9 logging in ${sessionCount} sessions`)
    const sessions: BenchSession[] = []
    for (let made = 0; made < sessionCount;) {
      const batch = Math.min(25, sessionCount - made)
      sessions.push(...await servers[0].request<BenchSession[]>({ cmd: 'login', count: batch, concurrency: 2 }))
      made += batch
    }
    const arrivals = new Map<string, Map<number, number>>(sessions.map(s => [s.session, new Map()]))
    for (const client of clients) {
      client.onRevoked = (event) => arrivals.get(event.tag)?.set(Number(event.group.slice('sessions-'.length)), event.at)
    }
    // Each session's socket on process s is held by one client.
    const sessionFrames = sessions.map(s => authFrame(s.access_token))
    const sessionOpened = await Promise.all(servers.map((server, s) => clients[s % clients.length].open({
      group: `sessions-${s}`,
      port: server.port,
      path: '/websocket',
      frames: sessionFrames,
      tags: sessions.map(x => x.session),
      concurrency: 16,
      addressOffset: s + 5,
      pushRevoked: true
    })))

    progress(`9 logging out ${sessionCount} sessions, one after another`)
    const remote: number[] = []
    const local: number[] = []
    const callMs: number[] = []
    const ipcMs: number[] = []
    let missing = 0
    const cpuBefore = await Promise.all(servers.map(s => s.cpu()))
    for (const [k, { session }] of sessions.entries()) {
      const origin = k % processes
      const sentAt = epochNow()
      const call = await servers[origin].request<CallTimes>({ cmd: 'revoke-session', session })
      const heard = arrivals.get(session)!
      await waitFor(() => heard.size >= processes, 2000, 2)
      callMs.push(call.resolvedAt - call.calledAt)
      ipcMs.push(call.calledAt - sentAt)
      for (let s = 0; s < processes; s++) {
        const at = heard.get(s)
        if (at === undefined) missing++
        else if (s === origin) local.push(at - sentAt)
        else remote.push(at - sentAt)
      }
      await sleep(gapMs)
    }
    const cpuAfter = await Promise.all(servers.map(s => s.cpu()))
    for (const client of clients) client.onRevoked = null
    await Promise.all(servers.map((_s, s) => clients[s % clients.length].close(`sessions-${s}`)))
    await Promise.all(servers.map((_s, s) => closeSpread(clients, `background-${s}`)))

    const p99 = percentile(remote, 99)
    const authenticated = sum(backgroundOpened.map(o => o.authenticated)) + sum(sessionOpened.map(o => o.authenticated))
    const expectedSockets = (background + sessionCount) * processes
    const met = p99 <= 100 && missing === 0 && authenticated === expectedSockets
    return {
      id: 9,
      title: `Logout fan-out (${processes} processes + Redis, ${fmt(background)} idle sockets each, ${sessionCount} sessions)`,
      rows: [
        { measure: 'logout on one process to AUTH_REVOKED on the 3 others p50 / p99 / max (ms)', plugin: `${ms(percentile(remote, 50))} / ${ms(p99)} / ${ms(Math.max(...remote))}`, baseline: '', value: ms(p99), goal: '<= 100 ms', met },
        { measure: 'the same on the process called p50 / p99 (ms)', plugin: `${ms(percentile(local, 50))} / ${ms(percentile(local, 99))}`, baseline: '', value: '', goal: '', met: null },
        { measure: 'revokeSession call p50 / p99 (ms); IPC to the call p50 (ms)', plugin: `${ms(percentile(callMs, 50))} / ${ms(percentile(callMs, 99))}; ${ms(percentile(ipcMs, 50))}`, baseline: '', value: '', goal: '', met: null },
        { measure: 'sockets authenticated / expected; AUTH_REVOKED missing', plugin: `${fmt(authenticated)} / ${fmt(expectedSockets)}; ${missing}`, baseline: '', value: '', goal: '', met: null }
      ],
      goals: [{ name: 'logout fan-out to other processes p99 (ms)', value: p99, target: '<= 100', met }],
      chart: [{ label: '9 logout fan-out p99, 4 processes', unit: ' ms', bars: [{ name: 'fastify-realtime', value: p99 }], limit: { value: 100, better: 'below', label: '100 ms' } }],
      details: {
        scaleFactor,
        processes,
        backgroundPerProcess: background,
        sessions: sessionCount,
        gapMs,
        remoteMs: { p50: percentile(remote, 50), p90: percentile(remote, 90), p99, max: Math.max(...remote), samples: remote.length },
        localMs: { p50: percentile(local, 50), p99: percentile(local, 99), max: Math.max(...local), samples: local.length },
        callMs: { p50: percentile(callMs, 50), p99: percentile(callMs, 99) },
        ipcMs: { p50: percentile(ipcMs, 50), p99: percentile(ipcMs, 99) },
        missing,
        authenticated,
        expectedSockets,
        serverCpuShare: servers.map((_s, s) => cpuShare(cpuBefore[s], cpuAfter[s]))
      }
    }
  } finally {
    await stopAll(clients, servers, redis)
    if (previousUrl === undefined) delete process.env.BENCH_REDIS_URL
    else process.env.BENCH_REDIS_URL = previousUrl
  }
}

// ---------------------------------------------------------------------------------------------------------------

/** A scenario that threw: reported as such, so that the others still run and the table says what happened. */
function failed (id: number, title: string, err: unknown): ScenarioResult {
  const message = err instanceof Error ? err.message : String(err)
  return {
    id,
    title,
    rows: [{ measure: `failed: ${message.split('\n')[0]}`, plugin: '', baseline: '', value: '', goal: 'completes', met: false }],
    goals: [{ name: `${title} completed`, value: NaN, target: 'completes', met: false }],
    chart: [],
    details: { scaleFactor, error: err instanceof Error ? err.stack : message }
  }
}

const scenarios = [
  { id: 7, title: 'At scale', run: atScale },
  { id: 8, title: 'Reconnect storm', run: reconnectStorm },
  { id: 9, title: 'Logout fan-out', run: logoutFanout }
]

/** The scale scenarios (7 to 9, or those named on the command line), each on processes of its own. */
export async function scaleScenarios (progress: (text: string) => void): Promise<ScenarioResult[]> {
  const named = new Set(process.argv.slice(2).map(Number).filter(n => n >= 7 && n <= 9))
  const results: ScenarioResult[] = []
  // Signs every token the scenarios use, so that no measured process spends memory or time on it.
  const signer = await ServerHandle.start('plugin')
  try {
    for (const { id, title, run } of scenarios) {
      if (named.size > 0 && !named.has(id)) continue
      progress(`${id} ${title} (BENCH_SCALE_FACTOR ${scaleFactor})`)
      const started = Date.now()
      try {
        results.push(await run(signer, progress))
      } catch (err) {
        progress(`${id} ${title} failed: ${err instanceof Error ? err.stack : String(err)}`)
        results.push(failed(id, title, err))
      }
      progress(`${id} done in ${fmt((Date.now() - started) / 1000)} s`)
    }
  } finally {
    await signer.stop()
  }
  return results
}
