// A real redis-server (the Debian package) on a free loopback port, for the tests that need one.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import type { Test } from 'tap'

// Below Linux's ephemeral range (32768 and up, /proc/sys/net/ipv4/ip_local_port_range): a port picked there and
// given back could be taken by any outgoing connection of the suite before redis-server binds it. Here only another
// listener could, and each is picked at random.
const lowest = 20_000
const range = 12_000

/** Whether `port` can be listened on now; the server that tried is left open, to hold it, or null. */
function holding (port: number): Promise<Server | null> {
  return new Promise(resolve => {
    const server = createServer()
    server.once('error', () => resolve(null))
    server.listen(port, '127.0.0.1', () => resolve(server))
  })
}

/** `count` distinct free loopback ports (all held open at once, so none is picked twice). */
export async function freePorts (count: number): Promise<number[]> {
  const held: Server[] = []
  while (held.length < count) {
    const server = await holding(lowest + Math.floor(Math.random() * range))
    if (server) held.push(server)
  }
  const ports = held.map(server => (server.address() as AddressInfo).port)
  await Promise.all(held.map(server => new Promise(resolve => server.close(resolve))))
  return ports
}

export class RedisServer {
  readonly port: number
  readonly #args: string[]
  readonly #config: string[]
  #process: ChildProcess | null = null

  /** `args` go after the defaults, and `config` (a config file) before them. */
  constructor (port: number, args: string[] = [], config?: string) {
    this.port = port
    this.#args = args
    this.#config = config ? [config] : []
  }

  /** Starts one for this test; it is stopped at the test's end. */
  static async start (t: Test): Promise<RedisServer> {
    const [port] = await freePorts(1)
    const server = new RedisServer(port!)
    await server.start()
    t.teardown(() => server.stop())
    return server
  }

  /**
   * A replica of `master`, started for this test and stopped at its end, once each side has the other: its link to the
   * master up, and the master listing it online (what `ROLE` tells `redisReplicaAcks`).
   */
  static async replicaOf (t: Test, master: RedisServer): Promise<RedisServer> {
    const [port] = await freePorts(1)
    const replica = new RedisServer(port!, ['--replicaof', '127.0.0.1', String(master.port)])
    await replica.start()
    t.teardown(() => replica.stop())
    const [onReplica, onMaster] = [new Redis(port!, '127.0.0.1'), new Redis(master.port, '127.0.0.1')]
    const linked = async () => (await onReplica.info('replication')).includes('master_link_status:up') &&
      ((await onMaster.role()) as [string, number, unknown[]])[2].length > 0
    try {
      while (!(await linked())) await new Promise(resolve => setTimeout(resolve, 20))
    } finally {
      onReplica.disconnect()
      onMaster.disconnect()
    }
    return replica
  }

  /** Started, and not stopped since. */
  get running (): boolean {
    return this.#process !== null
  }

  /**
   * A Sentinel monitoring `master` as `name`, with `quorum` (of one by default: a Sentinel alone) and `settings` of its
   * own (`down-after-milliseconds 1000`); stopped, and its config file removed, at the test's end.
   */
  static async sentinel (t: Test, master: RedisServer, name: string, settings: string[] = [], quorum = 1): Promise<RedisServer> {
    const dir = await mkdtemp(join(tmpdir(), 'realtime-sentinel-'))
    const config = join(dir, 'sentinel.conf')
    // Sentinel rewrites its config file as it learns: it must be a file of its own.
    const lines = [`sentinel monitor ${name} 127.0.0.1 ${master.port} ${quorum}`, ...settings.map(setting => `sentinel ${setting.replace(' ', ` ${name} `)}`)]
    await writeFile(config, `${lines.join('\n')}\n`)
    const [port] = await freePorts(1)
    const sentinel = new RedisServer(port!, ['--sentinel'], config)
    t.teardown(async () => {
      await sentinel.stop()
      await rm(dir, { recursive: true, force: true })
    })
    await sentinel.start()
    return sentinel
  }

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  /** (Re)starts the server on its port, empty (but for what `args` keep elsewhere: a cluster node's config file). */
  start (): Promise<void> {
    // A directory of its own, each start: a replica's full sync writes the master's data to dump.rdb there, which every
    // server started later in that directory (the suite's) would load, a test's sessions in another's fresh Redis.
    const dir = mkdtempSync(join(tmpdir(), 'realtime-redis-'))
    const defaults = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]
    const child = spawn('redis-server', [...this.#config, ...defaults, ...this.#args],
      { stdio: ['ignore', 'pipe', 'inherit'] })
    child.once('close', () => rmSync(dir, { recursive: true, force: true }))
    this.#process = child
    return new Promise((resolve, reject) => {
      let output = ''
      child.once('error', reject)
      child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)))
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString()
        // A Sentinel says neither: it is ready once it monitors its master.
        if (output.includes('Ready to accept connections') || output.includes('+monitor master')) resolve()
      })
    })
  }

  /**
   * Freezes the server (SIGSTOP): connections stay open, commands wait unanswered until `resume`. The kernel continues
   * it (SIGHUP, SIGCONT) if its process group is orphaned meanwhile: run the suite in the background of a shell that
   * exits before it ends (`npm test &`, then `exit`) only under `setsid`, or a frozen server answers.
   */
  pause (): void {
    this.#process!.kill('SIGSTOP')
  }

  resume (): void {
    this.#process!.kill('SIGCONT')
  }

  stop (): Promise<void> {
    const child = this.#process
    this.#process = null
    if (!child || child.exitCode !== null) return Promise.resolve()
    return new Promise(resolve => {
      child.removeAllListeners('exit')
      child.once('exit', () => resolve())
      child.kill('SIGKILL')
    })
  }
}
