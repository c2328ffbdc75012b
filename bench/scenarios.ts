// The six scenarios of the benchmark (issue 6). Throughput goals are ratios of medians over alternating rounds
// against a baseline server measured in the same run by the same client; the others are limits measured here.
import { holdSockets, median, percentile, runLoad, ServerHandle, signedAfterStart, sleep } from './harness.js'
import type { HandshakeResult, PingerResult, PingPongResult } from './load.js'
import type { MemorySample } from './server-process.js'
import { stormUsers } from './servers.js'

export interface Goal {
  /** What is compared, e.g. "rate vs bare". */
  name: string
  value: number
  /** e.g. ">= 0.85" */
  target: string
  met: boolean
}

/** One line of the printed table. */
export interface Row {
  measure: string
  plugin: string
  baseline: string
  /** The ratio or value the goal is judged on, formatted; '' when the line only informs. */
  value: string
  goal: string
  met: boolean | null
}

/** One row of the chart: bars on a common scale, and the goal as a mark. */
export interface ChartRow {
  label: string
  unit: string
  bars: { name: string, value: number }[]
  /** Where the goal lies on the same scale, and which side of it is good. */
  limit?: { value: number, better: 'above' | 'below', label: string }
}

export interface ScenarioResult {
  id: number
  title: string
  rows: Row[]
  goals: Goal[]
  chart: ChartRow[]
  details: Record<string, unknown>
}

export interface Servers {
  plugin: ServerHandle
  bare: ServerHandle
}

export interface Budget {
  rounds: number
  roundMs: number
  sockets: number
}

const ok = '"status":"ok"'
export const fmt = (value: number, digits = 0) => Number.isFinite(value)
  ? value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
  : 'n/a'
export const ms = (value: number) => fmt(value, value < 10 ? 2 : 1)
export const ratio = (value: number) => fmt(value, 2)

interface RateRound {
  rate: number
  p50: number
  p99: number
  authP50: number
  authP99: number
  /** Server CPU time per completed operation, µs. */
  cpuPerOp: number
  /** Share of one core the server used during the round. */
  cpuShare: number
  failed: number
}

/** One measured round of a closed-loop load against one server, with the server's CPU time around it. */
async function rateRound (server: ServerHandle, run: () => Promise<HandshakeResult | PingPongResult>): Promise<RateRound> {
  const before = await server.cpu()
  const result = await run()
  const after = await server.cpu()
  const ops = 'completed' in result ? result.completed : result.roundTrips
  const auth = 'authLatencies' in result ? result.authLatencies : result.latencies
  return {
    rate: ops / (result.elapsedMs / 1000),
    p50: percentile(result.latencies, 50),
    p99: percentile(result.latencies, 99),
    authP50: percentile(auth, 50),
    authP99: percentile(auth, 99),
    cpuPerOp: (after.cpuMicros - before.cpuMicros) / Math.max(1, ops),
    cpuShare: (after.cpuMicros - before.cpuMicros) / 1000 / (after.at - before.at),
    failed: result.failed
  }
}

/** The median of each measure over the rounds, with the rounds themselves. */
interface Summary extends RateRound {
  rounds: RateRound[]
}

function summarize (rounds: RateRound[]): Summary {
  const of = (key: keyof RateRound) => median(rounds.map(r => r[key]))
  return {
    rate: of('rate'),
    p50: of('p50'),
    p99: of('p99'),
    authP50: of('authP50'),
    authP99: of('authP99'),
    cpuPerOp: of('cpuPerOp'),
    cpuShare: of('cpuShare'),
    failed: rounds.reduce((sum, r) => sum + r.failed, 0),
    rounds
  }
}

/**
 * A warm-up round each (not counted), then `rounds` rounds, the order of the servers alternating every round. The
 * first server is the plugin; the others are baselines, and one that fails an operation is broken, not slow: the run
 * stops rather than compare the plugin against it, at the warm-up if it fails there.
 */
async function alternate (servers: ServerHandle[], budget: Budget, run: (server: ServerHandle, durationMs: number) => Promise<HandshakeResult | PingPongResult>): Promise<Summary[]> {
  const whole = (i: number, failed: number) => {
    if (i > 0 && failed > 0) throw new Error(`${servers[i].kind} failed ${failed} operations: the baseline is broken`)
  }
  for (const [i, server] of servers.entries()) whole(i, (await run(server, Math.min(500, budget.roundMs))).failed)
  const rounds: RateRound[][] = servers.map(() => [])
  for (let round = 0; round < budget.rounds; round++) {
    const order = round % 2 === 0 ? servers.map((_s, i) => i) : servers.map((_s, i) => servers.length - 1 - i)
    for (const i of order) {
      rounds[i].push(await rateRound(servers[i], () => run(servers[i], budget.roundMs)))
      await sleep(100)
    }
  }
  const summaries = rounds.map(summarize)
  summaries.forEach((summary, i) => whole(i, summary.failed))
  return summaries
}

/**
 * The goal's ratio: the median over rounds of plugin / baseline, each pair measured back to back, so that a load
 * drifting on the machine weighs on both sides of every ratio alike.
 */
const pairedRatio = (plugin: Summary, baseline: Summary) =>
  median(plugin.rounds.map((round, i) => round.rate / baseline.rounds[i].rate))

const rateDetails = (summary: Summary) => ({
  perSecond: Math.round(summary.rate),
  latencyMs: { p50: summary.p50, p99: summary.p99 },
  authStepMs: { p50: summary.authP50, p99: summary.authP99 },
  serverCpuMicrosPerOp: summary.cpuPerOp,
  serverCpuShare: summary.cpuShare,
  failed: summary.failed,
  rounds: summary.rounds.map(r => Math.round(r.rate))
})

/** Which client loads the servers: the lite one (the server's cost alone), or `ws`'s (as most Node clients). */
export type ClientKind = 'lite' | 'ws'

const clientName = { lite: 'lite client', ws: 'ws client' }

/** Tokens handed out once each: every connection of a handshake scenario authenticates with a token of its own. */
export class TokenPool {
  readonly #tokens: string[]
  #next = 0

  constructor (tokens: string[]) {
    this.#tokens = tokens
  }

  take (count: number): string[] {
    if (this.#next + count > this.#tokens.length) throw new Error(`the token pool of ${this.#tokens.length} is used up`)
    this.#next += count
    return this.#tokens.slice(this.#next - count, this.#next)
  }
}

/** The most handshakes one round may open: the pool gives each round of a verifying server this many fresh tokens. */
export const handshakesPerRound = 3000

/**
 * Tokens for the pool of `jsonHandshake`, for each of the two clients: fresh ones for every round of the two verifying
 * servers, the warm-up round included, and one set that bare gets every round.
 */
export const handshakeTokens = (budget: Budget) => handshakesPerRound * (4 * (budget.rounds + 1) + 2)

const authFrames = (tokens: string[]) => tokens.map(token => JSON.stringify({ type: 'auth', access_token: token, uid: 'bench' }))

/**
 * 1. Open /websocket, authenticate with an access token of its own, get status ok, close: with the lite client and
 * with `ws`'s. Beside bare, which verifies nothing, bare-verify verifies each token with @fastify/jwt and does nothing
 * else: its rate against bare's is what verifying through @fastify/jwt alone leaves, whatever else a server does.
 */
export async function jsonHandshake (servers: Servers, verifying: ServerHandle, pool: TokenPool, budget: Budget): Promise<ScenarioResult> {
  const target = 0.9
  const views = []
  for (const client of ['lite', 'ws'] as const) {
    // Any token does for bare: the same ones every round; the verifying servers never see a token twice.
    const bareFrames = authFrames(pool.take(handshakesPerRound))
    const [plugin, bare, verify] = await alternate([servers.plugin, servers.bare, verifying], budget, (server, durationMs) => {
      const frames = server === servers.bare ? bareFrames : authFrames(pool.take(handshakesPerRound))
      return runLoad<HandshakeResult>({
        kind: 'handshakes', port: server.port, path: '/websocket', client, frames, success: ok, concurrency: 16, durationMs, maxOps: frames.length
      })
    })
    const rateRatio = pairedRatio(plugin, bare)
    views.push({ client, plugin, bare, verify, rateRatio, met: rateRatio >= target && plugin.failed === 0 })
  }
  return {
    id: 1,
    title: 'JSON handshake (a token of its own per connection)',
    rows: views.flatMap(({ client, plugin, bare, verify, rateRatio, met }) => [
      { measure: `handshakes/s (open, auth, ok, close) [${clientName[client]}]`, plugin: fmt(plugin.rate), baseline: fmt(bare.rate), value: ratio(rateRatio), goal: `>= ${target}`, met },
      { measure: `verifying alone: bare-verify's handshakes/s, and its ratio to bare [${clientName[client]}]`, plugin: '', baseline: fmt(verify.rate), value: ratio(pairedRatio(verify, bare)), goal: 'reported', met: null },
      { measure: `plugin / bare-verify [${clientName[client]}]`, plugin: fmt(plugin.rate), baseline: fmt(verify.rate), value: ratio(pairedRatio(plugin, verify)), goal: 'reported', met: null },
      { measure: `latency p50 / p99 (ms) [${clientName[client]}]`, plugin: `${ms(plugin.p50)} / ${ms(plugin.p99)}`, baseline: `${ms(bare.p50)} / ${ms(bare.p99)}`, value: '', goal: '', met: null },
      { measure: `server CPU per handshake (µs) [${clientName[client]}; bare / bare-verify]`, plugin: fmt(plugin.cpuPerOp), baseline: `${fmt(bare.cpuPerOp)} / ${fmt(verify.cpuPerOp)}`, value: ratio(bare.cpuPerOp / plugin.cpuPerOp), goal: '', met: null }
    ]),
    goals: views.map(({ client, rateRatio, met }) => ({ name: `JSON handshake rate vs bare (${clientName[client]})`, value: rateRatio, target: `>= ${target}`, met })),
    chart: views.map(({ client, plugin, bare, verify }) => ({
      label: `1 JSON handshakes (${clientName[client]})`,
      unit: '/s',
      bars: [
        { name: 'fastify-realtime', value: plugin.rate },
        { name: 'bare @fastify/websocket', value: bare.rate },
        { name: 'bare + @fastify/jwt verify', value: verify.rate }
      ],
      limit: { value: target * bare.rate, better: 'above' as const, label: `${target} × bare` }
    })),
    details: Object.fromEntries(views.map(({ client, plugin, bare, verify, rateRatio }) => [client, {
      plugin: rateDetails(plugin), bare: rateDetails(bare), bareVerify: rateDetails(verify), ratio: rateRatio, verifyingAlone: pairedRatio(verify, bare), vsBareVerify: pairedRatio(plugin, verify)
    }]))
  }
}

const heapOf = (m: MemorySample) => m.heapUsed + m.external

interface MemoryRound {
  perSocket: number
  rssPerSocket: number
  retainedPerSocket: number
  authenticated: number
  failed: number
  openMs: number
  leftOpen: number
}

async function memoryRound (server: ServerHandle, frames: string[]): Promise<MemoryRound> {
  const before = await server.memory()
  const held = await holdSockets({ kind: 'hold', port: server.port, path: '/websocket', frames, concurrency: 256 })
  await sleep(300)
  const during = await server.memory()
  await held.release()
  const leftOpen = await server.drained()
  const after = await server.memory()
  const n = held.ready.authenticated
  return {
    perSocket: (heapOf(during) - heapOf(before)) / n,
    rssPerSocket: (during.rss - before.rss) / n,
    retainedPerSocket: (heapOf(after) - heapOf(before)) / n,
    authenticated: n,
    failed: held.ready.failed,
    openMs: held.ready.elapsedMs,
    leftOpen
  }
}

/** What each deployment pays before its first socket: resident memory of fresh processes, the median of three each. */
export interface StartupMemory {
  bare: number
  plugin: number
  pluginUser: number
}

const mib = (bytes: number) => fmt(bytes / 2 ** 20, 1)
/** A difference in MiB with its sign: a fresh process's RSS moves by a MiB or two, so one may come out below. */
const mibMore = (bytes: number) => `${bytes < 0 ? '' : '+'}${mib(bytes)}`

const memoryFrames = (tokens: string[]) => tokens.map(token => JSON.stringify({ type: 'auth', access_token: token }))

/**
 * What a fresh server process grows by in resident memory for `frames.length` sockets, as a deployment pays it: first
 * uses included, and no pages freed by an earlier round to reuse, which made a long-lived server's figure swing from
 * 4.8 to 8.3 KB per socket between two rounds of the same server.
 */
async function freshRssPerSocket (kind: 'plugin' | 'bare', frames: string[], signer: ServerHandle): Promise<number> {
  const server = await ServerHandle.start(kind)
  try {
    if (kind === 'plugin') frames = memoryFrames(await signedAfterStart(signer, frames.length))
    const before = await server.memory()
    const held = await holdSockets({ kind: 'hold', port: server.port, path: '/websocket', frames, concurrency: 256 })
    await sleep(300)
    const during = await server.memory()
    await held.release()
    return (during.rss - before.rss) / held.ready.authenticated
  } finally {
    await server.stop()
  }
}

/** 2. Memory of idle authenticated sockets, resident and on the heap, what is left once they close, and at startup. */
export async function memoryPerSocket (servers: Servers, tokens: string[], budget: Budget, startup: StartupMemory, signer: ServerHandle): Promise<ScenarioResult & { openMs: number }> {
  const frames = memoryFrames(tokens.slice(0, budget.sockets))
  const kinds = [servers.plugin, servers.bare]
  // Warm-up: code paths compiled and pools grown before anything is counted.
  for (const server of kinds) await memoryRound(server, frames.slice(0, 1000))
  const rounds: MemoryRound[][] = [[], []]
  for (let round = 0; round < 2; round++) {
    const order = round % 2 === 0 ? [0, 1] : [1, 0]
    for (const i of order) rounds[i].push(await memoryRound(kinds[i], frames))
  }
  // Resident memory: fresh processes, three of each, alternating.
  const fresh: Record<'plugin' | 'bare', number[]> = { plugin: [], bare: [] }
  for (let round = 0; round < 3; round++) {
    for (const kind of round % 2 === 0 ? ['plugin', 'bare'] as const : ['bare', 'plugin'] as const) {
      fresh[kind].push(await freshRssPerSocket(kind, frames, signer))
    }
  }
  const [plugin, bare] = rounds.map((r, i) => ({
    perSocket: median(r.map(x => x.perSocket)),
    rssPerSocket: median(fresh[i === 0 ? 'plugin' : 'bare']),
    rssFresh: fresh[i === 0 ? 'plugin' : 'bare'],
    retainedPerSocket: Math.max(...r.map(x => x.retainedPerSocket)),
    authenticated: Math.min(...r.map(x => x.authenticated)),
    failed: r.reduce((sum, x) => sum + x.failed, 0),
    leftOpen: Math.max(...r.map(x => x.leftOpen)),
    openMs: median(r.map(x => x.openMs)),
    rounds: r
  }))
  const memoryRatio = plugin.perSocket / bare.perSocket
  const rssRatio = plugin.rssPerSocket / bare.rssPerSocket
  const complete = plugin.authenticated === frames.length && bare.authenticated === frames.length
  const met = memoryRatio <= 1.25 && complete
  const rssMet = rssRatio <= 1.05 && complete
  // "All of it returned": what stays after close and GC is noise, under 2% of what an open socket holds.
  const returnedMet = plugin.retainedPerSocket <= 0.02 * plugin.perSocket && plugin.leftOpen === 0
  const startupExtra = startup.plugin - startup.bare
  const startupMet = startupExtra <= 16 * 2 ** 20
  return {
    id: 2,
    title: `Memory per idle socket (${fmt(frames.length)} sockets) and before the first`,
    openMs: plugin.openMs,
    rows: [
      { measure: 'RSS per socket, fresh process (bytes)', plugin: fmt(plugin.rssPerSocket), baseline: fmt(bare.rssPerSocket), value: `${ratio(rssRatio)}x`, goal: '<= 1.05x', met: rssMet },
      { measure: 'heap + external per socket (bytes)', plugin: fmt(plugin.perSocket), baseline: fmt(bare.perSocket), value: `${ratio(memoryRatio)}x`, goal: '<= 1.25x', met },
      { measure: 'left after close + GC (bytes/socket)', plugin: fmt(plugin.retainedPerSocket), baseline: fmt(bare.retainedPerSocket), value: fmt(plugin.retainedPerSocket), goal: '~0 (< 2%)', met: returnedMet },
      { measure: 'RSS before the first socket (MiB) [bare: @fastify/websocket + graphql-ws]', plugin: mib(startup.plugin), baseline: mib(startup.bare), value: mibMore(startupExtra), goal: '<= +16 MiB', met: startupMet },
      { measure: 'the same with one password user hashed at boot (MiB)', plugin: mib(startup.pluginUser), baseline: '', value: mibMore(startup.pluginUser - startup.plugin), goal: '', met: null }
    ],
    goals: [
      { name: 'RSS per socket vs bare', value: rssRatio, target: '<= 1.05', met: rssMet },
      { name: 'memory per socket vs bare', value: memoryRatio, target: '<= 1.25', met },
      { name: 'memory returned after close (bytes/socket left)', value: plugin.retainedPerSocket, target: '< 2% of per-socket', met: returnedMet },
      { name: 'RSS before the first socket, over bare (MiB)', value: startupExtra / 2 ** 20, target: '<= 16', met: startupMet }
    ],
    chart: [{
      label: '2 RSS per idle socket',
      unit: ' B',
      bars: [{ name: 'fastify-realtime', value: plugin.rssPerSocket }, { name: 'bare @fastify/websocket', value: bare.rssPerSocket }],
      limit: { value: 1.05 * bare.rssPerSocket, better: 'below', label: '1.05 × bare' }
    }, {
      label: '2 RSS before the first socket',
      unit: ' MiB',
      bars: [{ name: 'fastify-realtime', value: startup.plugin / 2 ** 20 }, { name: 'bare + graphql-ws', value: startup.bare / 2 ** 20 }],
      limit: { value: startup.bare / 2 ** 20 + 16, better: 'below', label: 'bare + 16 MiB' }
    }],
    details: { plugin, bare, ratio: memoryRatio, rssRatio, startup }
  }
}

/** 3. Tokens expiring over 10 s: how late TOKEN_EXPIRED arrives, and how the event loop fares meanwhile. */
export async function expiryPrecision (server: ServerHandle, budget: Budget, openMs: number): Promise<ScenarioResult> {
  const count = budget.sockets
  const spreadSeconds = 10
  // Far enough ahead that every socket is open and authenticated before the first expiry.
  const leadSeconds = Math.ceil((openMs * 2 + 1500) / 1000) + 1
  const firstExp = Math.ceil(Date.now() / 1000) + leadSeconds
  // As tokens from many logins are: whole-second `exp`s, a thousand on each of ten seconds.
  const exp = Array.from({ length: count }, (_v, i) => firstExp + (i % spreadSeconds))
  const tokens = await server.sign(count, exp)
  const frames = tokens.map(token => JSON.stringify({ type: 'auth', access_token: token }))
  const held = await holdSockets({ kind: 'hold', port: server.port, path: '/websocket', frames, concurrency: 256, expiresAt: exp.map(s => s * 1000) })
  const resolution = 10
  const windowStart = firstExp * 1000 - 1000
  const windowEnd = (firstExp + spreadSeconds - 1) * 1000 + 500
  await sleep(Math.max(0, windowStart - Date.now()))
  await server.startDelay(resolution)
  const cpuBefore = await server.cpu()
  await sleep(Math.max(0, windowEnd - Date.now()))
  const delay = await server.stopDelay()
  const cpuAfter = await server.cpu()
  // Released before the re-auth windows (10 s after each expiry) start closing sockets.
  const result = await held.release()
  await server.drained()
  const lateness = result.expiredLatencies
  const p99 = percentile(lateness, 99)
  // Node's histogram holds resolution + delay; the delay is what exceeds the resolution (as @fastify/under-pressure reads it).
  const delayP99 = Math.max(0, delay.p99 - resolution)
  const delayMax = Math.max(0, delay.max - resolution)
  const allExpired = lateness.length === held.ready.authenticated && held.ready.authenticated === count
  const expiryMet = p99 <= 50 && allExpired
  const delayMet = delayP99 <= 20
  return {
    id: 3,
    title: `Expiry precision (${fmt(count)} tokens over ${spreadSeconds} s)`,
    rows: [
      { measure: 'TOKEN_EXPIRED after exp p50 / p99 / max (ms)', plugin: `${ms(percentile(lateness, 50))} / ${ms(p99)} / ${ms(Math.max(...lateness))}`, baseline: '', value: ms(p99), goal: '<= 50 ms', met: expiryMet },
      { measure: 'event-loop delay p50 / p99 / max (ms)', plugin: `${ms(Math.max(0, delay.p50 - resolution))} / ${ms(delayP99)} / ${ms(delayMax)}`, baseline: '', value: ms(delayP99), goal: '<= 20 ms', met: delayMet },
      { measure: 'sockets expired / authenticated', plugin: `${fmt(lateness.length)} / ${fmt(held.ready.authenticated)}`, baseline: '', value: '', goal: '', met: null }
    ],
    goals: [
      { name: 'TOKEN_EXPIRED p99 after exp (ms)', value: p99, target: '<= 50', met: expiryMet },
      { name: 'event-loop delay p99 during expiries (ms)', value: delayP99, target: '<= 20', met: delayMet }
    ],
    chart: [
      { label: '3 TOKEN_EXPIRED after exp, p99', unit: ' ms', bars: [{ name: 'fastify-realtime', value: p99 }], limit: { value: 50, better: 'below', label: '50 ms' } },
      { label: '3 event-loop delay, p99', unit: ' ms', bars: [{ name: 'fastify-realtime', value: delayP99 }], limit: { value: 20, better: 'below', label: '20 ms' } }
    ],
    details: {
      sockets: count,
      authenticated: held.ready.authenticated,
      expired: lateness.length,
      latenessMs: { p50: percentile(lateness, 50), p90: percentile(lateness, 90), p99, max: Math.max(...lateness), min: Math.min(...lateness) },
      eventLoopDelayMs: { resolution, p50: Math.max(0, delay.p50 - resolution), p99: delayP99, max: delayMax, samples: delay.count },
      serverCpuShare: (cpuAfter.cpuMicros - cpuBefore.cpuMicros) / 1000 / (cpuAfter.at - cpuBefore.at),
      openMs: held.ready.elapsedMs,
      leadSeconds
    }
  }
}

/**
 * 4. graphql-transport-ws: connection_init with a token to connection_ack. graphql-ws-verify is graphql-ws with an
 * onConnect that verifies the token with @fastify/jwt and does nothing else: what verifying alone leaves.
 */
export async function graphqlHandshake (plugin: ServerHandle, baselines: { graphqlWs: ServerHandle, verifying: ServerHandle, mercurius: ServerHandle }, tokens: string[], budget: Budget): Promise<ScenarioResult> {
  const frames = tokens.map(token => JSON.stringify({ type: 'connection_init', payload: { access_token: token } }))
  const [ours, bare, verify, merc] = await alternate([plugin, baselines.graphqlWs, baselines.verifying, baselines.mercurius], budget, (server, durationMs) => runLoad<HandshakeResult>({
    kind: 'handshakes', port: server.port, path: '/graphql', protocol: 'graphql-transport-ws', frames, success: 'connection_ack', concurrency: 16, durationMs, maxOps: 100_000
  }))
  const vsBare = pairedRatio(ours, bare)
  const vsMercurius = pairedRatio(ours, merc)
  const bareMet = vsBare >= 0.95 && ours.failed === 0
  const mercMet = vsMercurius > 1 && ours.failed === 0
  return {
    id: 4,
    title: 'GraphQL connection_init -> connection_ack',
    rows: [
      { measure: 'handshakes/s vs graphql-ws (no auth)', plugin: fmt(ours.rate), baseline: fmt(bare.rate), value: ratio(vsBare), goal: '>= 0.95', met: bareMet },
      { measure: 'verifying alone: graphql-ws-verify\'s handshakes/s (onConnect, @fastify/jwt), and its ratio to graphql-ws', plugin: '', baseline: fmt(verify.rate), value: ratio(pairedRatio(verify, bare)), goal: 'reported', met: null },
      { measure: 'plugin / graphql-ws-verify', plugin: fmt(ours.rate), baseline: fmt(verify.rate), value: ratio(pairedRatio(ours, verify)), goal: 'reported', met: null },
      { measure: 'handshakes/s vs mercurius (onConnect check)', plugin: fmt(ours.rate), baseline: fmt(merc.rate), value: ratio(vsMercurius), goal: '> 1 (ahead)', met: mercMet },
      { measure: 'init -> ack p50 / p99 (ms) [graphql-ws]', plugin: `${ms(ours.authP50)} / ${ms(ours.authP99)}`, baseline: `${ms(bare.authP50)} / ${ms(bare.authP99)}`, value: '', goal: '', met: null },
      { measure: 'init -> ack p50 / p99 (ms) [mercurius]', plugin: '', baseline: `${ms(merc.authP50)} / ${ms(merc.authP99)}`, value: '', goal: '', met: null },
      { measure: 'server CPU per handshake (µs) [graphql-ws / graphql-ws-verify / mercurius]', plugin: fmt(ours.cpuPerOp), baseline: `${fmt(bare.cpuPerOp)} / ${fmt(verify.cpuPerOp)} / ${fmt(merc.cpuPerOp)}`, value: '', goal: '', met: null }
    ],
    goals: [
      { name: 'GraphQL handshake rate vs graphql-ws', value: vsBare, target: '>= 0.95', met: bareMet },
      { name: 'GraphQL handshake rate vs mercurius', value: vsMercurius, target: '> 1', met: mercMet }
    ],
    chart: [{
      label: '4 GraphQL init -> ack',
      unit: '/s',
      bars: [
        { name: 'fastify-realtime', value: ours.rate },
        { name: 'graphql-ws (no auth)', value: bare.rate },
        { name: 'graphql-ws + @fastify/jwt verify', value: verify.rate },
        { name: 'mercurius (onConnect)', value: merc.rate }
      ],
      limit: { value: 0.95 * bare.rate, better: 'above', label: '0.95 × graphql-ws' }
    }],
    details: {
      plugin: rateDetails(ours),
      graphqlWs: rateDetails(bare),
      graphqlWsVerify: rateDetails(verify),
      mercurius: rateDetails(merc),
      vsGraphqlWs: vsBare,
      verifyingAlone: pairedRatio(verify, bare),
      vsGraphqlWsVerify: pairedRatio(ours, verify),
      vsMercurius
    }
  }
}

/** 5. 50 concurrent email/password auths while 200 authenticated sockets ping. */
export async function credentialStorm (server: ServerHandle, tokens: string[]): Promise<ScenarioResult> {
  const pingFrames = tokens.slice(0, 200).map(token => JSON.stringify({ type: 'auth', access_token: token }))
  const calmMs = 3000
  const stormMs = 6000
  const start = Date.now()
  const pinging = runLoad<PingerResult>({ kind: 'pinger', port: server.port, path: '/websocket', frames: pingFrames, intervalMs: 100, durationMs: calmMs + stormMs + 1500 })
  await sleep(calmMs + 500) // the pingers connect, then a calm stretch
  const stormStart = Date.now()
  await server.startDelay(10)
  const storm = await runLoad<HandshakeResult>({
    kind: 'handshakes',
    port: server.port,
    path: '/websocket',
    frames: stormUsers.map(({ email, password }) => JSON.stringify({ type: 'auth', email, password })),
    success: ok,
    concurrency: 50,
    durationMs: stormMs,
    maxOps: 10_000
  })
  const stormEnd = Date.now()
  const delay = await server.stopDelay()
  const { samples, failed } = await pinging
  const calm = samples.filter(([at]) => at >= start + 1000 && at < stormStart).map(([, rtt]) => rtt)
  const stormy = samples.filter(([at]) => at >= stormStart + 200 && at < stormEnd).map(([, rtt]) => rtt)
  const p99 = percentile(stormy, 99)
  const met = p99 <= 20 && storm.completed > 0 && storm.failed === 0 && failed === 0
  const logins = storm.completed / (storm.elapsedMs / 1000)
  return {
    id: 5,
    title: 'Credential storm (50 password auths, 200 pinging sockets)',
    rows: [
      { measure: 'ping round trip p50 / p99 (ms), storm vs calm', plugin: `${ms(percentile(stormy, 50))} / ${ms(p99)}`, baseline: `${ms(percentile(calm, 50))} / ${ms(percentile(calm, 99))}`, value: ms(p99), goal: '<= 20 ms', met },
      { measure: 'password auths: per second, failed, p50 latency (ms)', plugin: `${fmt(logins, 1)}, ${fmt(storm.failed)}, ${fmt(percentile(storm.authLatencies, 50))}`, baseline: '', value: '', goal: '', met: null },
      { measure: 'event-loop delay p99 / max in storm (ms)', plugin: `${ms(Math.max(0, delay.p99 - 10))} / ${ms(Math.max(0, delay.max - 10))}`, baseline: '', value: '', goal: '', met: null }
    ],
    goals: [{ name: 'ping p99 during credential storm (ms)', value: p99, target: '<= 20', met }],
    chart: [{
      label: '5 ping p99 in a credential storm',
      unit: ' ms',
      bars: [{ name: 'storm', value: p99 }, { name: 'calm', value: percentile(calm, 99) }],
      limit: { value: 20, better: 'below', label: '20 ms' }
    }],
    details: {
      pingMs: {
        storm: { p50: percentile(stormy, 50), p99, max: Math.max(...stormy), samples: stormy.length },
        calm: { p50: percentile(calm, 50), p99: percentile(calm, 99), max: Math.max(...calm), samples: calm.length }
      },
      passwordAuths: { completed: storm.completed, failed: storm.failed, perSecond: logins, latencyMs: { p50: percentile(storm.authLatencies, 50), p99: percentile(storm.authLatencies, 99) } },
      eventLoopDelayMs: { p99: Math.max(0, delay.p99 - 10), max: Math.max(0, delay.max - 10) },
      pingerFailures: failed
    }
  }
}

/**
 * 6. Closed-loop ping/pong on authenticated sockets: 64 with the lite client (the server's cost per message alone),
 * and 2,000 with each client, where the per-socket state and a heavier client show more of it.
 */
export async function pingPong (servers: Servers, tokens: string[], budget: Budget): Promise<ScenarioResult> {
  const target = 0.95
  const views: { sockets: number, client: ClientKind, goal: boolean }[] = [
    { sockets: 64, client: 'lite', goal: false },
    { sockets: 2000, client: 'lite', goal: true },
    { sockets: 2000, client: 'ws', goal: true }
  ]
  const measured = []
  for (const view of views) {
    const frames = tokens.slice(0, view.sockets).map(token => JSON.stringify({ type: 'auth', access_token: token }))
    const [plugin, bare] = await alternate([servers.plugin, servers.bare], budget, (server, durationMs) => runLoad<PingPongResult>({
      kind: 'pingpong', port: server.port, path: '/websocket', client: view.client, frames, durationMs, maxOps: 2_000_000
    }))
    const rateRatio = pairedRatio(plugin, bare)
    measured.push({ ...view, plugin, bare, rateRatio, met: rateRatio >= target && plugin.failed === 0 })
  }
  const label = (view: { sockets: number, client: ClientKind }) => `${fmt(view.sockets)} sockets, ${clientName[view.client]}`
  return {
    id: 6,
    title: 'Ping/pong on authenticated sockets',
    rows: measured.flatMap((view) => [
      { measure: `round trips/s [${label(view)}]`, plugin: fmt(view.plugin.rate), baseline: fmt(view.bare.rate), value: ratio(view.rateRatio), goal: view.goal ? `>= ${target}` : 'reported', met: view.goal ? view.met : null },
      { measure: `round trip p50 / p99 (ms) [${label(view)}]`, plugin: `${ms(view.plugin.p50)} / ${ms(view.plugin.p99)}`, baseline: `${ms(view.bare.p50)} / ${ms(view.bare.p99)}`, value: '', goal: '', met: null },
      { measure: `server CPU per round trip (µs) [${label(view)}]`, plugin: fmt(view.plugin.cpuPerOp, 1), baseline: fmt(view.bare.cpuPerOp, 1), value: ratio(view.bare.cpuPerOp / view.plugin.cpuPerOp), goal: '', met: null }
    ]),
    goals: measured.filter(view => view.goal).map(view => ({ name: `ping/pong rate vs bare (${label(view)})`, value: view.rateRatio, target: `>= ${target}`, met: view.met })),
    chart: measured.map(view => ({
      label: `6 ping/pong (${label(view)})`,
      unit: '/s',
      bars: [{ name: 'fastify-realtime', value: view.plugin.rate }, { name: 'bare @fastify/websocket', value: view.bare.rate }],
      ...(view.goal ? { limit: { value: target * view.bare.rate, better: 'above' as const, label: `${target} × bare` } } : {})
    })),
    details: Object.fromEntries(measured.map(view => [`${view.sockets}-${view.client}`, { plugin: rateDetails(view.plugin), bare: rateDetails(view.bare), ratio: view.rateRatio }]))
  }
}
