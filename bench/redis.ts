// A throwaway redis-server for the scale benchmark: on a free loopback port, nothing saved, gone at the end.
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, type AddressInfo } from 'node:net'

/** A free loopback port (closed again before redis-server binds it: a race the benchmark can live with). */
function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}

export class BenchRedis {
  readonly port: number
  readonly #child: ChildProcess

  private constructor (port: number, child: ChildProcess) {
    this.port = port
    this.#child = child
  }

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  /** Starts one and waits (at most 10 s) until it accepts connections. */
  static async start (): Promise<BenchRedis> {
    const port = await freePort()
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: ['ignore', 'pipe', 'inherit'] })
    await new Promise<void>((resolve, reject) => {
      let output = ''
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`redis-server did not start in 10 s: ${output}`))
      }, 10_000)
      const failed = (err: Error) => {
        clearTimeout(timer)
        reject(err)
      }
      child.once('error', failed)
      child.once('exit', (code) => failed(new Error(`redis-server exited with ${code}: ${output}`)))
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString()
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer)
          child.removeAllListeners('exit')
          child.removeListener('error', failed)
          child.stdout!.removeAllListeners('data')
          child.stdout!.resume() // keep draining what it logs, so its pipe never fills
          resolve()
        }
      })
    })
    // Should the orchestrator die without stopping it, it goes too.
    const orphaned = () => { child.kill('SIGKILL') }
    process.once('exit', orphaned)
    child.once('exit', () => process.removeListener('exit', orphaned))
    return new BenchRedis(port, child)
  }

  /** Kills it (SIGKILL: nothing to save) and waits until it is gone. */
  stop (): Promise<void> {
    const child = this.#child
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
    return new Promise(resolve => {
      child.once('exit', () => resolve())
      child.kill('SIGKILL')
    })
  }
}
