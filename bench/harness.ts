// The orchestrator's side: server processes driven over IPC, load tasks in worker threads, and the statistics.
import { execFile, fork, type ChildProcess } from 'node:child_process'
import { promisify } from 'node:util'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { ServerKind } from './servers.js'
import type { DelaySample, MemorySample, ServerRequest } from './server-process.js'
import type { HoldReady, HoldResult, HoldTask, LoadTask } from './load.js'
import type { StartupMemory } from './scenarios.js'
import type { StartupKind } from './startup.js'

const serverScript = fileURLToPath(new URL('./server-process.js', import.meta.url))
const loadScript = fileURLToPath(new URL('./load.js', import.meta.url))
const startupScript = fileURLToPath(new URL('./startup.js', import.meta.url))

/**
 * BENCH_NODE_FLAGS="--no-opt --no-maglev": Node and V8 flags for every server process (and the startup probes), to see
 * what a V8 setting does to the servers alone; the load workers are threads of this process, which takes its own.
 */
const serverFlags = () => (process.env.BENCH_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean)

/** A server in its own process. */
export class ServerHandle {
  readonly kind: ServerKind
  readonly port: number
  readonly #child: ChildProcess
  readonly #waiting = new Map<number, { resolve: (value: unknown) => void, reject: (err: Error) => void }>()
  #nextId = 0

  private constructor (kind: ServerKind, port: number, child: ChildProcess) {
    this.kind = kind
    this.port = port
    this.#child = child
    child.on('message', (message: { id: number, result?: unknown, error?: string }) => {
      const waiter = this.#waiting.get(message.id)
      if (!waiter) return
      this.#waiting.delete(message.id)
      if (message.error) waiter.reject(new Error(message.error))
      else waiter.resolve(message.result)
    })
  }

  static start (kind: ServerKind): Promise<ServerHandle> {
    // BENCH_CPU_PROF=dir writes a V8 CPU profile of every server process there (node --cpu-prof).
    const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`, `--cpu-prof-name=${kind}-${Date.now()}.cpuprofile`] : []
    const child = fork(serverScript, [kind], { execArgv: ['--expose-gc', ...serverFlags(), ...profile], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the ${kind} server did not start in 20 s`)), 20_000)
      child.once('exit', (code) => reject(new Error(`the ${kind} server exited with ${code}`)))
      child.once('message', (message: { port: number }) => {
        clearTimeout(timer)
        resolve(new ServerHandle(kind, message.port, child))
      })
    })
  }

  request<T> (request: ServerRequest): Promise<T> {
    if (!this.#child.connected) return Promise.reject(new Error(`the ${this.kind} server is gone`))
    const id = this.#nextId++
    this.#child.send({ id, request })
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.kind} server: no answer to ${request.cmd}`)), 30_000)
      this.#waiting.set(id, {
        resolve: (value) => { clearTimeout(timer); resolve(value as T) },
        reject: (err) => { clearTimeout(timer); reject(err) }
      })
    })
  }

  memory (): Promise<MemorySample> { return this.request({ cmd: 'memory' }) }
  cpu (): Promise<{ cpuMicros: number, at: number }> { return this.request({ cmd: 'cpu' }) }
  connections (): Promise<number> { return this.request({ cmd: 'connections' }) }
  startDelay (resolution: number): Promise<void> { return this.request({ cmd: 'eld-start', resolution }) }
  stopDelay (): Promise<DelaySample> { return this.request({ cmd: 'eld-stop' }) }
  sign (count: number, exp?: number[]): Promise<string[]> { return this.request({ cmd: 'sign', count, exp }) }

  /** Waits (bounded) until the server has no open socket. */
  async drained (limitMs = 15_000): Promise<number> {
    const until = Date.now() + limitMs
    let open = await this.connections()
    while (open > 0 && Date.now() < until) {
      await new Promise(resolve => setTimeout(resolve, 50))
      open = await this.connections()
    }
    return open
  }

  async stop (): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return
    const exited = new Promise(resolve => this.#child.once('exit', resolve))
    await this.request({ cmd: 'exit' }).catch(() => {})
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5_000)
    await exited
    clearTimeout(timer)
  }
}

/** Runs a one-shot load task in a worker thread and returns what it posts. */
export function runLoad<T> (task: Exclude<LoadTask, HoldTask>): Promise<T> {
  const worker = new Worker(loadScript, { workerData: task })
  return new Promise<T>((resolve, reject) => {
    worker.once('message', (result: T) => {
      resolve(result)
      worker.terminate().catch(() => {})
    })
    worker.once('error', reject)
    worker.once('exit', (code) => { if (code !== 0) reject(new Error(`load worker exited with ${code}`)) })
  })
}

/** One worker of a hold task: `ready` once its sockets are authenticated, `release()` closes them. */
async function holdPart (task: HoldTask): Promise<{ ready: HoldReady, release: () => Promise<HoldResult> }> {
  const worker = new Worker(loadScript, { workerData: task })
  const next = <T>() => new Promise<T>((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  const ready = await next<HoldReady>()
  return {
    ready,
    async release () {
      const result = next<HoldResult>()
      worker.postMessage('close')
      const final = await result
      await worker.terminate()
      return final
    }
  }
}

/**
 * A hold task spread over `workers` threads, so that a burst to every socket (expiries, heartbeat pings to answer)
 * is read by two clients at once rather than queued behind one: `ready` once all are authenticated.
 */
export async function holdSockets (task: HoldTask, workers = 2): Promise<{ ready: HoldReady, release: () => Promise<HoldResult> }> {
  const size = Math.ceil(task.frames.length / workers)
  const parts = await Promise.all(Array.from({ length: workers }, (_v, i) => holdPart({
    ...task,
    frames: task.frames.slice(i * size, (i + 1) * size),
    expiresAt: task.expiresAt?.slice(i * size, (i + 1) * size),
    concurrency: Math.ceil(task.concurrency / workers)
  })))
  const ready: HoldReady = {
    type: 'ready',
    authenticated: parts.reduce((sum, p) => sum + p.ready.authenticated, 0),
    failed: parts.reduce((sum, p) => sum + p.ready.failed, 0),
    elapsedMs: Math.max(...parts.map(p => p.ready.elapsedMs))
  }
  return {
    ready,
    async release () {
      const results = await Promise.all(parts.map(p => p.release()))
      return {
        type: 'result',
        expiredLatencies: results.flatMap(r => r.expiredLatencies),
        unexpectedCloses: results.reduce((sum, r) => sum + r.unexpectedCloses, 0),
        closeMs: Math.max(...results.map(r => r.closeMs))
      }
    }
  }
}

/** The resident memory of a fresh process of each kind once it listens: the median of `runs`, kinds alternating. */
export async function startupMemory (runs = 3): Promise<StartupMemory> {
  const kinds: StartupKind[] = ['bare', 'plugin', 'plugin-user']
  const samples = new Map<StartupKind, number[]>(kinds.map(kind => [kind, []]))
  for (let run = 0; run < runs; run++) {
    for (const kind of run % 2 === 0 ? kinds : [...kinds].reverse()) {
      const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', ...serverFlags(), startupScript, kind])
      samples.get(kind)!.push((JSON.parse(stdout) as { rss: number }).rss)
    }
  }
  const of = (kind: StartupKind) => median(samples.get(kind)!)
  return { bare: of('bare'), plugin: of('plugin'), pluginUser: of('plugin-user') }
}

/** This process's limits on open files (and so every child's). */
export function openFileLimits (): { soft: number, hard: number } {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find(l => l.startsWith('Max open files'))
  const [soft, hard] = (line ?? '').split(/\s+/).slice(3, 5).map(v => v === 'unlimited' ? Infinity : Number(v))
  return { soft: soft || 1024, hard: hard || 1024 }
}

/** Nearest-rank percentile of unsorted values. */
export function percentile (values: readonly number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = Float64Array.from(values).sort()
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]
}

export function median (values: readonly number[]): number {
  if (values.length === 0) return NaN
  const sorted = Float64Array.from(values).sort()
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

export const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/**
 * `count` tokens of the plugin's own kind (a session each), signed by `signer` once the processes started before this
 * call are a whole second old (`iat` counts seconds). A process without Redis takes a session's token signed before its
 * start only while its session store has the session (README, "A restart without Redis"), and the bench's sessions are
 * in none: tokens from before would measure a refusal, not the handshake.
 */
export async function signedAfterStart (signer: ServerHandle, count: number): Promise<string[]> {
  await sleep(1000 - Date.now() % 1000 + 1)
  return await signer.sign(count)
}
