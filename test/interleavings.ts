// What the model-based schedule tests of both endpoints share (test/websocket/interleavings.test.ts,
// test/graphql/interleavings.test.ts): the seed, a fake clock, the plugin's registry seen from outside, real sockets
// waited on until nothing moves, and the checks that nothing is left after the app's close.
import type { Test } from 'tap'
import fc from 'fast-check'
import FakeTimers from '@sinonjs/fake-timers'
import type { FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import type { Socket } from 'node:net'
import { Registry } from '../lib/connection/registry.js'
import type { Connection } from '../lib/connection/connection.js'
import type { Identity } from '../lib/index.js'

/** INTERLEAVINGS_SEED=<integer> replays a run, INTERLEAVINGS_RUNS=<n> runs more schedules than `defaultRuns`. */
export function scheduleSettings (t: Test, defaultRuns: number): { seed: number, numRuns: number } {
  const seed = process.env.INTERLEAVINGS_SEED === undefined ? 20_261_204 : Number(process.env.INTERLEAVINGS_SEED)
  if (!Number.isSafeInteger(seed)) throw new Error(`INTERLEAVINGS_SEED must be an integer (got "${process.env.INTERLEAVINGS_SEED}")`)
  const numRuns = process.env.INTERLEAVINGS_RUNS === undefined ? defaultRuns : Number(process.env.INTERLEAVINGS_RUNS)
  t.comment(`INTERLEAVINGS_SEED=${seed} (run with INTERLEAVINGS_SEED=${seed} to replay)`)
  return { seed, numRuns }
}

/** What the schedules reached, counted by kind: printed once, to show a schedule's steps were not all no-ops. */
export class Reached {
  readonly #counts = new Map<string, number>()

  count (kind: string): void {
    this.#counts.set(kind, (this.#counts.get(kind) ?? 0) + 1)
  }

  toString (): string {
    return [...this.#counts].sort(([a], [b]) => a < b ? -1 : 1).map(([kind, n]) => `${kind}: ${n}`).join(', ')
  }
}

/** How long the access tokens of a run live, and the two users whose credentials its sockets take. */
export const ttlMs = 3000
export const users: Record<string, Identity> = {
  A: { user: 'A', role: 'editor', admin: false },
  B: { user: 'B', role: 'viewer', admin: false }
}

/** The steps of both endpoints' schedules: sockets opened, closed and cut, slow parts answered, time, revocations. */
export type SharedStep =
  | { kind: 'open' }
  | { kind: 'resolve', pick: number }
  | { kind: 'tick', ms: number }
  | { kind: 'revokeUser', user: 'A' | 'B' }
  | { kind: 'serverClose', socket: number }
  | { kind: 'clientClose', socket: number }
  | { kind: 'drop', socket: number }

/** Which of the open sockets a step acts on (the index modulo how many are open). */
export const socketIndex = fc.nat(2)

/** The shared steps, weighted for `fc.oneof`: `resolveWeight` says how often a slow part is answered. */
export function sharedSteps (resolveWeight: number): Array<fc.WeightedArbitrary<SharedStep>> {
  return [
    { weight: 2, arbitrary: fc.constant({ kind: 'open' as const }) },
    { weight: resolveWeight, arbitrary: fc.record({ kind: fc.constant('resolve' as const), pick: fc.nat(20) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.constantFrom(400, 1000, 2500) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('revokeUser' as const), user: fc.constantFrom<'A' | 'B'>('A', 'B') }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('serverClose' as const), socket: socketIndex }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('clientClose' as const), socket: socketIndex }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), socket: socketIndex }) }
  ]
}

/** The open socket a step's `index` names, if any is open. */
export function pickOpen<S extends Opened> (socks: S[], index: number): S | undefined {
  const live = socks.filter(s => s.ws.readyState === WebSocket.OPEN)
  return live.length === 0 ? undefined : live[index % live.length]
}

/** Hands every frame the client gets to `onFrame`, parsed (a frame that is no JSON as its text). */
export function onFrames (ws: WebSocket, onFrame: (frame: unknown) => void): void {
  ws.on('message', data => {
    let frame: unknown
    try { frame = JSON.parse(data.toString()) } catch { frame = data.toString() }
    onFrame(frame)
  })
}

export const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null

export async function turns (n = 1): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise(resolve => setImmediate(resolve))
}

/** ws's receiver state while it holds a frame's event for a later turn (lib/receiver.js, `DEFER_EVENT`). */
const deferredEvent = 6

/** A client's socket and the plugin's connection for it. */
export interface Opened {
  ws: WebSocket
  conn: Connection
}

/** One run: a fake clock, and the registries the plugin makes while it lasts (the first is the endpoint's). */
export class Run {
  readonly clock = FakeTimers.install({ toFake: ['Date', 'setTimeout', 'clearTimeout', 'performance'], shouldClearNativeTimers: true })
  readonly #registries: Registry[] = []
  readonly #add = Registry.prototype.add

  constructor () {
    const registries = this.#registries
    const add = this.#add
    Registry.prototype.add = function (connection: Connection) {
      if (!registries.includes(this)) registries.push(this)
      add.call(this, connection)
    }
  }

  registry (): Registry | undefined {
    return this.#registries[0]
  }

  /** A socket opened to `url`, and its connection once the registry holds it. */
  async open (url: string, protocol?: string): Promise<Opened> {
    const before = new Set(this.registry()?.matching() ?? [])
    const ws = new WebSocket(url, protocol)
    ws.on('error', () => {})
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('unexpected-response', reject) })
    let conn: Connection | undefined
    while (conn === undefined) {
      conn = [...(this.registry()?.matching() ?? [])].find(c => !before.has(c))
      if (conn === undefined) await turns()
    }
    return { ws, conn }
  }

  /**
   * Until nothing moves: every byte either side of each socket wrote has been read, and a few turns passed with no
   * change (`waiting`: how many slow parts wait for the schedule, a change too).
   */
  async quiet (opened: Opened[], waiting: () => number, closedOf: (socket: Opened) => unknown): Promise<void> {
    let stable = 0
    let last = ''
    for (let turn = 0; stable < 5; turn++) {
      if (turn > 20_000) throw new Error('the sockets never went quiet')
      await turns()
      let matched = true
      const snapshot = opened.map(s => {
        const client = (s.ws as unknown as { _socket?: Socket })._socket
        const server = s.conn.request.raw.socket
        if (client && !client.destroyed && !server.destroyed && (client.bytesWritten !== server.bytesRead || server.bytesWritten !== client.bytesRead)) matched = false
        // A frame the server read and has yet to hand over: ws defers each to a turn of its own (paced reads).
        const receiver = (s.conn.socket as unknown as { _receiver?: { _state?: number, _writableState?: { length: number } } })._receiver
        if (receiver?._state === deferredEvent) matched = false
        return `${client?.bytesRead}/${client?.bytesWritten}/${server.bytesRead}/${server.bytesWritten}/${receiver?._writableState?.length}/${String(closedOf(s))}/${s.ws.readyState}`
      }).join('|') + `#${waiting()}`
      stable = matched && snapshot === last ? stable + 1 : 0
      last = snapshot
    }
  }

  /** Closes the app, answering the slow parts it waits for one at a time (`answerOne`: false once none waits). */
  async close (app: FastifyInstance, answerOne: () => boolean): Promise<void> {
    const closing = app.close()
    const closed = async () => await Promise.race([closing.then(() => true), turns().then(() => false)])
    while (!(await closed())) answerOne()
  }

  /** What is left once the app has closed: connections, indexes, timers. */
  leftovers (): string[] {
    const left: string[] = []
    const registry = this.registry()
    if (registry !== undefined) {
      if (registry.size !== 0) left.push(`${registry.size} connections left after the close`)
      if (registry.indexed.users !== 0 || registry.indexed.sessions !== 0) left.push(`indexes left after the close: ${JSON.stringify(registry.indexed)}`)
    }
    // The clock's own table: its count includes timers cleared and not yet dropped from its heap.
    const timers = Object.values((this.clock as unknown as { timers?: Record<string, { func: () => void, callAt: number }> }).timers ?? {})
    if (timers.length !== 0) {
      left.push(`${timers.length} timers left: ${timers.map(timer => `${timer.func.name || String(timer.func).slice(0, 120)} at ${timer.callAt - this.clock.now} ms`).join(', ')}`)
    }
    return left
  }

  end (): void {
    Registry.prototype.add = this.#add
    this.clock.uninstall()
  }
}
