// A client process of the scale benchmark (`node scale-client.js <index>`): holds up to ~15,000 sockets on the lite
// client, in named groups, driven over IPC as a server process is. Each socket opens, sends its auth frame, answers the
// heartbeat's pings, and records when TOKEN_EXPIRED and AUTH_REVOKED arrive, in epoch milliseconds with sub-ms
// precision (performance.timeOrigin + performance.now()), comparable across the processes of one machine. Every
// wait is bounded; whatever is left open at `close` or `exit` is destroyed.
import { LiteSocket, textFrame } from './lite-socket.js'
import { sourceAddress } from './source-address.js'

export type ClientRequest =
  | {
    cmd: 'open'
    /** A new group: one socket per frame. */
    group: string
    port: number
    path: string
    frames: string[]
    /** What AUTH_REVOKED arrivals are reported with (a session or a user); the socket's index otherwise. */
    tags?: string[]
    /** Epoch ms at which each socket's token expires: TOKEN_EXPIRED arrivals are timed against it. */
    expiresAt?: number[]
    /** Handshakes (connect to `auth` answer) in flight at once in this group. */
    concurrency: number
    /** Where the group's source addresses start, groups 4,099 addresses apart: socket i binds `sourceAddress(addressOffset * 4_099 + i)`. */
    addressOffset: number
    /** Report every AUTH_REVOKED to the parent as it arrives (`RevokedEvent`), and close that socket. */
    pushRevoked?: boolean
  }
  | { cmd: 'collect', group: string }
  | { cmd: 'close', group: string }
  | { cmd: 'exit' }

export interface OpenResult {
  authenticated: number
  failed: number
  /** First frames other than ok, by error code ('closed' for a socket gone without an answer). */
  failures: Record<string, number>
  /** Epoch ms: the first connect of the group, the last `auth` ok. */
  firstConnectAt: number
  lastOkAt: number
  elapsedMs: number
  /** Heartbeat pings the group's sockets got while it was opening. */
  pings: number
}

export interface GroupStats {
  open: number
  /** TOKEN_EXPIRED arrival minus the token's exp, ms. */
  expiredLatencies: number[]
  revoked: number
  /** AUTH_TIMEOUT frames after the socket was admitted (a re-auth window ran out). */
  authTimeouts: number
  /** Sockets that closed while the group was not closing and had been neither revoked nor told their token expired. */
  unexpectedCloses: number
}

export interface CloseResult extends GroupStats {
  closeMs: number
}

/** Sent unasked, as each AUTH_REVOKED arrives in a group opened with `pushRevoked`. */
export interface RevokedEvent {
  event: 'revoked'
  group: string
  tag: string
  at: number
}

const epochNow = () => performance.timeOrigin + performance.now()
const pong = textFrame('{"type":"pong"}')
const ok = '"status":"ok"'
const codeOf = (text: string) => /"code":"([A-Z_]+)"/.exec(text)?.[1] ?? 'unknown'
// Bounds: a group's handshakes (a minute, and 20 ms more per socket: the server's own pace, at its slowest, is some
// hundreds a second), a close that gets no TCP end.
const openLimitMs = (sockets: number) => 60_000 + 20 * sockets
const closeLimitMs = 20_000

interface Group {
  sockets: LiteSocket[]
  expiredLatencies: number[]
  revoked: number
  authTimeouts: number
  unexpectedCloses: number
  closing: boolean
}

const groups = new Map<string, Group>()

function open (request: Extract<ClientRequest, { cmd: 'open' }>): Promise<OpenResult> {
  if (groups.has(request.group)) return Promise.reject(new Error(`group ${request.group} exists`))
  const group: Group = { sockets: [], expiredLatencies: [], revoked: 0, authTimeouts: 0, unexpectedCloses: 0, closing: false }
  groups.set(request.group, group)
  const { frames, tags, expiresAt } = request
  return new Promise((resolve) => {
    const failures: Record<string, number> = {}
    let authenticated = 0
    let failed = 0
    let next = 0
    let pending = 0
    let lastOkAt = 0
    let pings = 0
    const firstConnectAt = epochNow()
    const start = performance.now()
    let finished = false
    const finish = () => {
      if (finished) return
      finished = true
      clearTimeout(cut)
      resolve({ authenticated, failed, failures, firstConnectAt, lastOkAt, elapsedMs: performance.now() - start, pings })
    }
    // Whatever has no answer by then is counted as failed and destroyed.
    const cut = setTimeout(() => {
      for (const socket of group.sockets) if (socket.tag === 'waiting') socket.destroy()
      finish()
    }, openLimitMs(frames.length))
    const settle = () => {
      pending--
      if (next < frames.length) launch()
      else if (pending === 0) finish()
    }
    const fail = (code: string) => {
      failed++
      failures[code] = (failures[code] ?? 0) + 1
    }
    const launch = () => {
      if (finished) return
      while (pending < request.concurrency && next < frames.length) {
        const index = next++
        const frame = textFrame(frames[index])
        pending++
        const socket = new LiteSocket({
          port: request.port,
          path: request.path,
          localAddress: sourceAddress(request.addressOffset * 4_099 + index),
          onOpen: (s) => s.sendFrame(frame),
          onText: (text, s) => {
            if (s.tag === 'waiting') {
              if (text.includes(ok)) {
                s.tag = 'admitted'
                authenticated++
                lastOkAt = epochNow()
              } else {
                s.tag = 'refused'
                fail(codeOf(text))
                s.close()
              }
              settle()
              return
            }
            if (text === '{"type":"ping"}') {
              s.sendFrame(pong) // the plugin's heartbeat
              if (!finished) pings++
            } else if (text.includes('TOKEN_EXPIRED')) {
              if (expiresAt) group.expiredLatencies.push(epochNow() - expiresAt[index])
              s.tag = 'expired' // the server closes it once its re-auth window runs out (AUTH_TIMEOUT, 4408)
            } else if (text.includes('AUTH_REVOKED')) {
              const at = epochNow()
              group.revoked++
              if (request.pushRevoked) {
                s.tag = 'revoked'
                process.send!({ event: 'revoked', group: request.group, tag: tags ? tags[index] : String(index), at } satisfies RevokedEvent)
                s.close()
              }
            } else if (text.includes('AUTH_TIMEOUT')) {
              group.authTimeouts++
            }
          },
          onClose: (s) => {
            if (s.tag === 'waiting') {
              s.tag = 'refused'
              fail('closed')
              settle()
            } else if (s.tag === 'admitted' && !group.closing) {
              group.unexpectedCloses++
            }
          }
        })
        socket.tag = 'waiting'
        group.sockets.push(socket)
      }
    }
    if (frames.length === 0) finish()
    else launch()
  })
}

function stats (group: Group): GroupStats {
  return {
    open: group.sockets.filter(s => !s.closed).length,
    expiredLatencies: group.expiredLatencies,
    revoked: group.revoked,
    authTimeouts: group.authTimeouts,
    unexpectedCloses: group.unexpectedCloses
  }
}

/** Closes every socket of the group and waits (bounded) until TCP is gone for all of them. */
function close (name: string): Promise<CloseResult> {
  const group = groups.get(name)
  if (!group) return Promise.reject(new Error(`no group ${name}`))
  group.closing = true
  const start = performance.now()
  const result = stats(group)
  return new Promise((resolve) => {
    const done = () => {
      groups.delete(name)
      resolve({ ...result, closeMs: performance.now() - start })
    }
    let open = group.sockets.filter(s => !s.closed).length
    if (open === 0) {
      done()
      return
    }
    const timer = setTimeout(() => {
      for (const socket of group.sockets) socket.destroy()
      done()
    }, closeLimitMs)
    for (const socket of group.sockets) {
      if (socket.closed) continue
      socket.tcp.once('close', () => {
        if (--open === 0) {
          clearTimeout(timer)
          done()
        }
      })
      socket.close()
    }
  })
}

async function serve (request: ClientRequest): Promise<unknown> {
  switch (request.cmd) {
    case 'open': return open(request)
    case 'collect': {
      const group = groups.get(request.group)
      if (!group) throw new Error(`no group ${request.group}`)
      return stats(group)
    }
    case 'close': return close(request.group)
    case 'exit':
      for (const group of groups.values()) for (const socket of group.sockets) socket.destroy()
      setImmediate(() => process.exit(0))
      return null
  }
}

process.on('message', (message: { id: number, request: ClientRequest }) => {
  serve(message.request).then(
    (result) => process.send!({ id: message.id, result }),
    (err: Error) => process.send!({ id: message.id, error: err.stack ?? String(err) }))
})
// The parent is gone: so are the sockets.
process.on('disconnect', () => process.exit(0))
process.send!({ ready: true })
