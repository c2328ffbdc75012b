// Test helpers: a real server on loopback and a real `ws` client that records every frame and the close.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { createRequire } from 'node:module'
import type { IncomingHttpHeaders } from 'node:http'
import { createConnection, type Socket } from 'node:net'
import WebSocket from 'ws'
import type { Test } from 'tap'
import type { Redis } from 'ioredis'
import realtime, {
  UserDirectory, type DirectoryUser, type Identity, type PasswordHashing, type RealtimeConnection, type RealtimeMessage, type RealtimeOptions
} from '../lib/index.js'
import type { Connection } from '../lib/connection/connection.js'

export { fakeClock, nextSecond, stoppedDate, until } from './clock.js'

export const secret = 'a-test-secret-that-is-long-enough'

const fastifyVersion = (createRequire(import.meta.url)('fastify/package.json') as { version: string }).version.split('.').map(Number)

/**
 * The router's options as the Fastify installed takes them: in `routerOptions` from 5.5 (the same options at the top
 * warn FSTDEP022 there), at the top before (5.0 to 5.4 know no `routerOptions`). `npm run test:lowest` runs on 5.0.0.
 */
export function routerOptions (options: NonNullable<FastifyServerOptions['routerOptions']>): FastifyServerOptions {
  return fastifyVersion[0] > 5 || fastifyVersion[1] >= 5 ? { routerOptions: options } : options as FastifyServerOptions
}
export const admin = { email: 'admin@example.com', password: 'd1r3ctu5', admin: true, role: 'administrator' }
export const editor = { email: 'editor@example.com', password: 'edit0r!', role: 'editor' }

/**
 * An app's `verifyCredentials` that knows `admin` alone, by the exact email it is handed, and records every email it is
 * handed (`handed`): what reaches an app's lookup.
 */
export function adminLookup (): { handed: string[], verifyCredentials: (given: { email: string, password: string }) => Promise<Identity | null> } {
  const handed: string[] = []
  const identity: Identity = { user: 'u-admin', role: 'administrator', admin: true }
  const verifyCredentials = async ({ email, password }: { email: string, password: string }) => {
    handed.push(email)
    return email === admin.email && password === admin.password ? identity : null
  }
  return { handed, verifyCredentials }
}

export interface Built {
  app: FastifyInstance
  url: (path: string) => string
}

/**
 * The cheapest argon2id the directory takes (1 MiB, one pass: about a millisecond), for the test apps' users: the
 * suite adds and checks hundreds of passwords, and what it tests is what a check decides, not what it costs. A test of
 * the cost itself makes its `UserDirectory` with the default (OWASP's 19 MiB, 2 passes).
 */
export const testHashing: PasswordHashing = { memoryCost: 1024, timeCost: 1 }

/** An embedded directory of `users`, hashed at `testHashing`. */
export async function directoryOf (users: DirectoryUser[]): Promise<UserDirectory> {
  const directory = new UserDirectory({ passwordHashing: testHashing })
  for (const user of users) await directory.add(user)
  return directory
}

/**
 * An app with the plugin, listening on a random loopback port; closed at the end of the test. Its `users`, when a
 * list, are hashed at `testHashing`.
 */
export async function build (t: Test, options: RealtimeOptions = {}, serverOptions: FastifyServerOptions = {}): Promise<Built> {
  // A copy: Fastify 5.0.0 writes its logger into the object it is given (5.1.0 copies it), and tests share theirs.
  const app = Fastify({ ...serverOptions })
  const users = Array.isArray(options.users) ? await directoryOf(options.users) : options.users
  await app.register(realtime, { env: {}, secret, ...options, users })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  return { app, url: (path) => `ws://127.0.0.1:${port}${path}` }
}

export interface Closed {
  code: number
  reason: string
}

/** A `ws` client that queues what arrives, so a test reads frames in order with `next()`. */
export class Client {
  readonly ws: WebSocket
  readonly frames: unknown[] = []
  readonly closed: Promise<Closed>
  readonly opened: Promise<void>
  #waiters: ((frame: unknown) => void)[] = []

  constructor (url: string, options: WebSocket.ClientOptions & { protocols?: string | string[] } = {}) {
    const { protocols, ...rest } = options
    this.ws = new WebSocket(url, protocols, rest)
    this.ws.on('message', (data) => {
      const text = data.toString()
      let frame: unknown
      try { frame = JSON.parse(text) } catch { frame = text }
      const waiter = this.#waiters.shift()
      if (waiter) waiter(frame)
      else this.frames.push(frame)
    })
    this.closed = new Promise(resolve => this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })))
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve())
      this.ws.once('error', reject)
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
    })
    this.ws.on('error', () => {})
  }

  /** The next frame (already received or still to come). */
  next (): Promise<unknown> {
    if (this.frames.length > 0) return Promise.resolve(this.frames.shift())
    return new Promise(resolve => this.#waiters.push(resolve))
  }

  send (frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  }

  close (): Promise<Closed> {
    this.ws.close()
    return this.closed
  }
}

/** Opens a socket and waits for it to be open. */
export async function connect (url: string, options: WebSocket.ClientOptions & { protocols?: string | string[] } = {}): Promise<Client> {
  const client = new Client(url, options)
  await client.opened
  return client
}

/**
 * Resolves once the server has read every byte the client wrote and handed over every frame of them (one a turn): what
 * it sent waits in the inbox by then. The app's only socket is the client's.
 */
export async function readByServer (app: FastifyInstance, client: Client): Promise<void> {
  const [connection] = app.realtime.connections()
  const { socket } = connection as Connection
  const sent = (client.ws as unknown as { _socket: Socket })._socket
  let handed = 0
  const counted = () => { handed++ }
  socket.on('message', counted)
  // Done once a whole turn, begun with every byte read, handed nothing over: a frame read waits a turn at most.
  for (;;) {
    const read = connection.request.raw.socket.bytesRead >= sent.bytesWritten
    const before = handed
    await new Promise(resolve => setImmediate(resolve))
    if (read && handed === before) break
  }
  socket.off('message', counted)
}

/** The HTTP status a refused upgrade got. */
export async function refusedWith (url: string, options: WebSocket.ClientOptions = {}): Promise<{ status: number, body: string }> {
  const { status, body } = await upgradeRefusal(url, options)
  return { status, body }
}

/** The answer a refused upgrade got: status, body and headers. */
export function upgradeRefusal (url: string, options: WebSocket.ClientOptions = {}): Promise<{ status: number, body: string, headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options)
    ws.on('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString() })
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }))
    })
    ws.on('open', () => { ws.close(); reject(new Error('the upgrade was accepted')) })
    ws.on('error', () => {})
  })
}

/**
 * A raw upgrade request to `path` (to `upgrade`, a WebSocket by default): what the server answers, once it has closed
 * the connection (the client never does).
 */
export function upgradeAnswered (port: number, path: string, upgrade = 'websocket'): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: ${upgrade}\r\n` +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
    })
    let answer = ''
    socket.on('data', (chunk) => { answer += chunk.toString() })
    socket.on('close', () => resolve(answer))
    socket.on('error', reject)
  })
}

/**
 * Collects crashes and unhandled rejections for the rest of the test file (the server runs in the test's process,
 * so either would land here); the file asserts the list stays empty.
 */
export function recordCrashes (t: Test): unknown[] {
  const crashes: unknown[] = []
  const onCrash = (err: unknown) => { crashes.push(err) }
  process.on('unhandledRejection', onCrash)
  process.on('uncaughtException', onCrash)
  t.teardown(() => {
    process.off('unhandledRejection', onCrash)
    process.off('uncaughtException', onCrash)
  })
  return crashes
}

/** A `whoami` message handler: answers with the socket's user, the accountability as the application sees it. */
export const whoami = (message: RealtimeMessage, connection: RealtimeConnection) => {
  connection.send({ type: 'whoami', uid: message.uid, user: connection.accountability.user })
}

// The real timers, taken before any test fakes them.
const realSetTimeout = setTimeout
const realClearTimeout = clearTimeout

/**
 * `promise`, or a failure naming `what` if it has not settled within `ms` of real time: for a frame or close that only
 * a bug leaves unsent, so the test says which instead of reaching tap's timeout. Far above what load adds on loopback.
 */
export function within<T> (promise: Promise<T>, what: string, ms = 30_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = realSetTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms)
  })
  return Promise.race([promise, late]).finally(() => realClearTimeout(timer))
}

/**
 * Resolves once the app's server holds no TCP connection: every socket's client is gone, and its address with it.
 * (`connections()` lists the open sockets alone: one its client closed may still be closing on the server.)
 */
export async function noTcpConnections (app: FastifyInstance): Promise<void> {
  const count = () => new Promise<number>((resolve, reject) => app.server.getConnections((err, n) => err ? reject(err) : resolve(n)))
  while (await count() > 0) await new Promise(resolve => setImmediate(resolve))
}

/**
 * How many sockets the plugin has let go since the call (its `close` events): what a test waits on to know the server
 * saw a socket go. `connections()` lists the open sockets alone, and one its client closed may still be closing there.
 */
export function letGoCount (app: FastifyInstance): () => number {
  let gone = 0
  app.realtime.on('close', () => { gone++ })
  return () => gone
}

/**
 * How many commands `redis` (an app's own client) has sent and awaits the answer to, the plugin's probes of its
 * subscription aside: one PUBLISH at a time, every second, on a channel under the prefix's `probe:`.
 */
export function awaitingAnswers (redis: Redis): number {
  const { commandQueue } = redis as unknown as { commandQueue: { toArray (): { command: { name: string, args: unknown[] } }[] } }
  return commandQueue.toArray().filter(({ command }) => command.name !== 'publish' || !String(command.args[0]).includes('probe:')).length
}

/** An app with an instance of the plugin for each of `tenants`, in sibling scopes (`/t0`, `/t1`...), and the messages of its warnings. */
export async function tenantsOn (t: Test, tenants: RealtimeOptions[]): Promise<{ app: FastifyInstance, warnings: string[] }> {
  const warnings: string[] = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { warnings.push(JSON.parse(line).msg) } } } })
  t.teardown(() => app.close())
  for (const [i, options] of tenants.entries()) {
    await app.register(async (scope) => {
      await scope.register(realtime, { prefix: `/t${i}`, env: {}, secret, heartbeat: { enabled: false }, ...options })
    })
  }
  await app.ready()
  return { app, warnings }
}
