// The load generator: runs in a worker thread (workerData is the task), on the lite client. Every loop is bounded
// in count and in time; whatever is still open at the end is closed or destroyed.
import { parentPort, workerData } from 'node:worker_threads'
import { LiteSocket, textFrame, type ClientSocket, type LiteSocketOptions } from './lite-socket.js'
import { sourceAddress } from './source-address.js'
import { WsSocket } from './ws-socket.js'

interface Target {
  port: number
  path: string
  protocol?: string
  /** The lite client (default), or the `ws` package's. */
  client?: 'lite' | 'ws'
}

function connect (target: Target, options: LiteSocketOptions): ClientSocket {
  return target.client === 'ws' ? new WsSocket(options) : new LiteSocket(options)
}

/** Closed-loop handshakes: open, send `frames[i]`, wait for a text containing `success`, close; `concurrency` at once. */
export interface HandshakeTask extends Target {
  kind: 'handshakes'
  frames: string[]
  success: string
  concurrency: number
  durationMs: number
  maxOps: number
}

/** Authenticated sockets (one per frame) in a closed ping/pong loop. */
export interface PingPongTask extends Target {
  kind: 'pingpong'
  frames: string[]
  durationMs: number
  maxOps: number
}

/** Opens and authenticates `frames.length` sockets, reports `ready`, holds them until told to close. */
export interface HoldTask extends Target {
  kind: 'hold'
  frames: string[]
  concurrency: number
  /** Epoch ms at which each socket's token expires: TOKEN_EXPIRED arrivals are timed against it. */
  expiresAt?: number[]
}

/** Authenticated sockets each pinging every `intervalMs`, every round trip timed. */
export interface PingerTask extends Target {
  kind: 'pinger'
  frames: string[]
  intervalMs: number
  durationMs: number
}

export type LoadTask = HandshakeTask | PingPongTask | HoldTask | PingerTask

/** latencies: from connect to the success frame; authLatencies: from the 101 (socket open) to it. */
export interface HandshakeResult { completed: number, failed: number, elapsedMs: number, latencies: number[], authLatencies: number[] }
export interface PingPongResult { roundTrips: number, failed: number, elapsedMs: number, latencies: number[] }
export interface HoldReady { type: 'ready', authenticated: number, failed: number, elapsedMs: number }
export interface HoldResult { type: 'result', expiredLatencies: number[], unexpectedCloses: number, closeMs: number }
/** [epoch ms sent, round trip ms] */
export interface PingerResult { samples: [number, number][], failed: number }

const ok = '"status":"ok"'
// How long the tail of a closed loop may take to drain before it is cut.
const drainLimitMs = 10_000

function handshakes (task: HandshakeTask): Promise<HandshakeResult> {
  return new Promise((resolve) => {
    const latencies: number[] = []
    const authLatencies: number[] = []
    let started = 0
    let completed = 0
    let failed = 0
    let inFlight = 0
    const open = new Set<ClientSocket>()
    const start = performance.now()
    const deadline = start + task.durationMs
    let finished = false
    const finish = () => {
      if (finished) return
      finished = true
      clearTimeout(cut)
      for (const socket of open) socket.destroy()
      resolve({ completed, failed, elapsedMs: performance.now() - start, latencies, authLatencies })
    }
    const cut = setTimeout(finish, task.durationMs + drainLimitMs)
    const launch = () => {
      while (inFlight < task.concurrency && started < task.maxOps && performance.now() < deadline) {
        const begin = performance.now()
        const frame = textFrame(task.frames[started % task.frames.length])
        let succeeded = false
        let openedAt = 0
        inFlight++
        const socket = connect(task, {
          port: task.port,
          path: task.path,
          protocol: task.protocol,
          localAddress: sourceAddress(started),
          onOpen: (s) => {
            openedAt = performance.now()
            s.sendFrame(frame)
          },
          onText: (text, s) => {
            if (!succeeded && text.includes(task.success)) {
              succeeded = true
              const now = performance.now()
              latencies.push(now - begin)
              authLatencies.push(now - openedAt)
            }
            s.close()
          },
          onClose: (s) => {
            open.delete(s)
            inFlight--
            if (succeeded) completed++
            else failed++
            launch()
            if (inFlight === 0) finish()
          }
        })
        open.add(socket)
        started++
      }
    }
    launch()
  })
}

/** Opens one socket per frame, `concurrency` handshakes at a time; resolves when each is authenticated or gone. */
function openAuthenticated (
  target: Target, frames: string[], concurrency: number, onText?: (text: string, socket: ClientSocket) => void
): Promise<{ sockets: ClientSocket[], failed: number, elapsedMs: number }> {
  return new Promise((resolve) => {
    const sockets: ClientSocket[] = []
    let next = 0
    let pending = 0
    let failed = 0
    const start = performance.now()
    const settle = () => {
      pending--
      if (next < frames.length) launch()
      else if (pending === 0) resolve({ sockets: sockets.filter(s => !s.closed), failed, elapsedMs: performance.now() - start })
    }
    const launch = () => {
      while (pending < concurrency && next < frames.length) {
        const index = next++
        const frame = textFrame(frames[index])
        let authenticated = false
        pending++
        const socket = connect(target, {
          ...target,
          localAddress: sourceAddress(index),
          onOpen: (s) => s.sendFrame(frame),
          onText: (text, s) => {
            if (!authenticated) {
              authenticated = true
              if (!text.includes(ok)) s.close()
              settle()
              return
            }
            onText?.(text, s)
          },
          onClose: () => {
            if (!authenticated) {
              failed++
              authenticated = true
              settle()
            }
          }
        })
        socket.tag = index
        sockets.push(socket)
      }
    }
    launch()
    if (frames.length === 0) resolve({ sockets, failed, elapsedMs: 0 })
  })
}

/** Closes every socket and waits (bounded) until TCP is gone for all of them. */
function closeAll (sockets: ClientSocket[], limitMs = 20_000): Promise<number> {
  const start = performance.now()
  return new Promise((resolve) => {
    let open = sockets.filter(s => !s.closed).length
    if (open === 0) {
      resolve(0)
      return
    }
    const timer = setTimeout(() => {
      for (const s of sockets) s.destroy()
    }, limitMs)
    for (const socket of sockets) {
      if (socket.closed) continue
      socket.tcp.once('close', () => {
        if (--open === 0) {
          clearTimeout(timer)
          resolve(performance.now() - start)
        }
      })
      socket.close()
    }
  })
}

async function pingpong (task: PingPongTask): Promise<PingPongResult> {
  const latencies: number[] = []
  let roundTrips = 0
  let sent = 0
  let outstanding = 0
  let start = 0
  let deadline = 0
  let resolveDone!: () => void
  const done = new Promise<void>(resolve => { resolveDone = resolve })
  const sentAt = new Float64Array(task.frames.length)
  const pings = task.frames.map((_frame, i) => textFrame(`{"type":"ping","uid":${i}}`))
  const send = (socket: ClientSocket) => {
    const i = socket.tag as number
    sent++
    outstanding++
    sentAt[i] = performance.now()
    socket.sendFrame(pings[i])
  }
  const { sockets, failed } = await openAuthenticated(task, task.frames, 256, (text, socket) => {
    if (!text.includes('"pong"')) return
    const now = performance.now()
    outstanding--
    roundTrips++
    latencies.push(now - sentAt[socket.tag as number])
    if (now < deadline && sent < task.maxOps) send(socket)
    else if (outstanding === 0) resolveDone()
  })
  start = performance.now()
  deadline = start + task.durationMs
  for (const socket of sockets) send(socket)
  const cut = setTimeout(resolveDone, task.durationMs + drainLimitMs)
  await done
  clearTimeout(cut)
  const elapsedMs = performance.now() - start
  await closeAll(sockets)
  return { roundTrips, failed, elapsedMs, latencies }
}

async function hold (task: HoldTask): Promise<void> {
  const expiredLatencies: number[] = []
  let closing = false
  let unexpectedCloses = 0
  const pong = textFrame('{"type":"pong"}')
  const opened = await openAuthenticated(task, task.frames, task.concurrency, (text, socket) => {
    if (text.includes('TOKEN_EXPIRED') && task.expiresAt) {
      expiredLatencies.push(Date.now() - task.expiresAt[socket.tag as number])
    } else if (text === '{"type":"ping"}') {
      socket.sendFrame(pong) // the plugin's heartbeat
    }
  })
  for (const socket of opened.sockets) {
    socket.tcp.once('close', () => { if (!closing) unexpectedCloses++ })
  }
  parentPort!.postMessage({ type: 'ready', authenticated: opened.sockets.length, failed: opened.failed, elapsedMs: opened.elapsedMs } satisfies HoldReady)
  await new Promise<void>(resolve => parentPort!.once('message', () => resolve()))
  closing = true
  const closeMs = await closeAll(opened.sockets)
  parentPort!.postMessage({ type: 'result', expiredLatencies, unexpectedCloses, closeMs } satisfies HoldResult)
}

async function pinger (task: PingerTask): Promise<PingerResult> {
  const samples: [number, number][] = []
  const timers: NodeJS.Timeout[] = []
  const sentAt = new Map<number, number>()
  let sequence = 0
  const { sockets, failed } = await openAuthenticated(task, task.frames, 64, (text) => {
    const match = /"uid":(\d+)/.exec(text)
    if (!match || !text.includes('"pong"')) return
    const uid = Number(match[1])
    const at = sentAt.get(uid)
    if (at === undefined) return
    sentAt.delete(uid)
    samples.push([performance.timeOrigin + at, performance.now() - at])
  })
  const stopAt = performance.now() + task.durationMs
  for (const socket of sockets) {
    // Spread over the interval, so that the pings arrive as a steady stream rather than in bursts.
    const offset = Math.random() * task.intervalMs
    timers.push(setTimeout(() => {
      const beat = () => {
        if (performance.now() >= stopAt) return
        const uid = sequence++
        sentAt.set(uid, performance.now())
        socket.send(`{"type":"ping","uid":${uid}}`)
      }
      beat()
      timers.push(setInterval(beat, task.intervalMs))
    }, offset))
  }
  await new Promise(resolve => setTimeout(resolve, task.durationMs + 500))
  for (const timer of timers) clearTimeout(timer)
  await closeAll(sockets)
  return { samples, failed }
}

async function main (): Promise<void> {
  const task = workerData as LoadTask
  switch (task.kind) {
    case 'handshakes': parentPort!.postMessage(await handshakes(task)); break
    case 'pingpong': parentPort!.postMessage(await pingpong(task)); break
    case 'pinger': parentPort!.postMessage(await pinger(task)); break
    case 'hold': await hold(task); break
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
