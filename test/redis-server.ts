// A real redis-server (the Debian package) on a free loopback port, for the tests that need one.
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import type { Test } from 'tap'

function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

export class RedisServer {
  readonly port: number
  #process: ChildProcess | null = null

  private constructor (port: number) {
    this.port = port
  }

  /** Starts one for this test; it is stopped at the test's end. */
  static async start (t: Test): Promise<RedisServer> {
    const server = new RedisServer(await freePort())
    await server.start()
    t.teardown(() => server.stop())
    return server
  }

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  /** (Re)starts the server on its port, empty. */
  start (): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: ['ignore', 'pipe', 'inherit'] })
    this.#process = child
    return new Promise((resolve, reject) => {
      let output = ''
      child.once('error', reject)
      child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)))
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString()
        if (output.includes('Ready to accept connections')) resolve()
      })
    })
  }

  /** Freezes the server (SIGSTOP): connections stay open, commands wait unanswered until `resume`. */
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
