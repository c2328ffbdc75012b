// A benchmarked server in its own process (`node --expose-gc server-process.js <kind>`), so that it has a core and a
// file-descriptor table of its own. The parent drives it over IPC: memory after GC, CPU time, event-loop delay,
// tokens, open sockets.
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { startServer, stormUsers, type ServerKind } from './servers.js'

export interface MemorySample {
  heapUsed: number
  external: number
  rss: number
}

export interface DelaySample {
  /** Raw histogram values in ms: each is the resolution plus the delay. */
  p50: number
  p99: number
  max: number
  count: number
}

export type ServerRequest =
  | { cmd: 'memory' }
  | { cmd: 'cpu' }
  | { cmd: 'eld-start', resolution: number }
  | { cmd: 'eld-stop' }
  | { cmd: 'sign', count: number, exp?: number[] }
  | { cmd: 'connections' }
  | { cmd: 'exit' }
  // The scale benchmark's (bench/scale.ts):
  | { cmd: 'sockets' }
  | { cmd: 'sign-user', user: string, count: number }
  | { cmd: 'login', count: number, concurrency: number }
  | { cmd: 'revoke-user', user: string }
  | { cmd: 'revoke-session', session: string }
  | { cmd: 'push', users: number, count: number }

/** The user of the i-th token `sign` makes: one socket each, in the benchmarks that open one per token. */
const benchUser = (i: number) => `bench-user-${i}`

/** `push`: each call's time (µs), after a few untimed ones, and how many sockets the calls matched in all. */
export interface PushSample {
  micros: number[]
  matched: number
}

/** Untimed calls of `push` first: the first calls after a quiet spell run cold. */
const pushWarmUp = 20

/** A session made by `login`: its access token names it (`sid`). */
export interface BenchSession {
  session: string
  user: string
  access_token: string
}

/** When a revocation call began and when it resolved here, epoch ms with sub-ms precision. */
export interface CallTimes {
  calledAt: number
  resolvedAt: number
}

const epochNow = () => performance.timeOrigin + performance.now()

const gc = (globalThis as { gc?: () => void }).gc

async function collect (): Promise<void> {
  // Several passes with turns of the loop between them: sockets closed a moment ago release in steps.
  for (let pass = 0; pass < 4; pass++) {
    gc?.()
    await sleep(25)
  }
}

async function serve (app: FastifyInstance, request: ServerRequest, state: { eld: IntervalHistogram | null }): Promise<unknown> {
  switch (request.cmd) {
    case 'memory': {
      await collect()
      const { heapUsed, external, rss } = process.memoryUsage()
      return { heapUsed, external, rss } satisfies MemorySample
    }
    case 'cpu': {
      const { user, system } = process.cpuUsage()
      return { cpuMicros: user + system, at: performance.now() }
    }
    case 'eld-start':
      state.eld = monitorEventLoopDelay({ resolution: request.resolution })
      state.eld.enable()
      return null
    case 'eld-stop': {
      const eld = state.eld!
      eld.disable()
      state.eld = null
      return { p50: eld.percentile(50) / 1e6, p99: eld.percentile(99) / 1e6, max: eld.max / 1e6, count: eld.count } satisfies DelaySample
    }
    case 'sign': {
      const tokens: string[] = []
      for (let i = 0; i < request.count; i++) {
        const user = benchUser(i)
        tokens.push(request.exp
          // Tokens as another issuer would sign them: the expiry is in whole seconds, as JWTs carry it.
          ? app.realtime.jwt.sign({ id: user, role: null, admin_access: false, exp: request.exp[i] })
          // The plugin's own, as its logins issue them: a session of their own, whose sockets are indexed by it too.
          : app.realtime.signAccessToken({ user, role: null, admin: false }, `bench-session-${i}`).access_token)
      }
      return tokens
    }
    case 'connections':
      // The plugin's sockets are its own ws server's, out of the app's sight; the baselines' are @fastify/websocket's.
      return app.hasDecorator('realtime') ? app.realtime.connections().length : app.websocketServer.clients.size
    case 'sockets':
      // TCP connections of the HTTP server, upgraded or not: unlike `connections`, it hands no socket out (the plugin
      // reads the address of every socket it hands out), so it leaves the memory it counts as it is.
      return await new Promise<number>((resolve, reject) => app.server.getConnections((err, count) => err ? reject(err) : resolve(count)))
    case 'sign-user': {
      const tokens: string[] = []
      for (let i = 0; i < request.count; i++) {
        tokens.push(app.realtime.signAccessToken({ user: request.user, role: null, admin: false }).access_token)
      }
      return tokens
    }
    case 'login': {
      // Real sessions (in the session store: Redis for plugin-redis), of the storm users in turn, a few logins at once.
      const sessions: BenchSession[] = []
      let next = 0
      const worker = async () => {
        while (next < request.count) {
          const { email, password } = stormUsers[next++ % stormUsers.length]
          const issued = await app.realtime.login({ email, password })
          // The token's own claims, read without verifying (it was signed a moment ago): its session and user.
          const claims = app.realtime.jwt.decode<{ sid: string, id: string }>(issued.access_token)!
          sessions.push({ session: claims.sid, user: claims.id, access_token: issued.access_token })
        }
      }
      await Promise.all(Array.from({ length: Math.max(1, request.concurrency) }, worker))
      return sessions
    }
    case 'push': {
      // fastify.realtime.send({ user }) to one of the first `users` users in turn, as an app pushes to one person.
      const micros: number[] = []
      let matched = 0
      for (let i = -pushWarmUp; i < request.count; i++) {
        const user = benchUser(((i + pushWarmUp) * 7919) % request.users)
        const start = performance.now()
        const count = app.realtime.send({ user }, { type: 'notice' })
        if (i < 0) continue
        micros.push((performance.now() - start) * 1000)
        matched += count
      }
      return { micros, matched } satisfies PushSample
    }
    case 'revoke-user': {
      const calledAt = epochNow()
      await app.realtime.revokeUser(request.user)
      return { calledAt, resolvedAt: epochNow() } satisfies CallTimes
    }
    case 'revoke-session': {
      const calledAt = epochNow()
      await app.realtime.revokeSession(request.session)
      return { calledAt, resolvedAt: epochNow() } satisfies CallTimes
    }
    case 'exit':
      await app.close()
      setImmediate(() => process.exit(0))
      return null
  }
}

async function main (): Promise<void> {
  const kind = process.argv[2] as ServerKind
  const app = await startServer(kind)
  const state = { eld: null as IntervalHistogram | null }
  process.on('message', (message: { id: number, request: ServerRequest }) => {
    serve(app, message.request, state).then(
      (result) => process.send!({ id: message.id, result }),
      (err: Error) => process.send!({ id: message.id, error: err.stack ?? String(err) }))
  })
  // The parent is gone: so is the server.
  process.on('disconnect', () => process.exit(0))
  process.send!({ ready: true, port: (app.server.address() as { port: number }).port })
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
