// Fuzzing the logs endpoint against a live server: at least 10,000 random and malformed frames per run, while the
// app keeps logging. No crash, every reply a contract frame or an allowed close, and not one log line ever reaches a
// socket that is not an admin's. Seeded: FUZZ_SEED=<integer> replays a run; FUZZ_FRAMES=<n> changes the count.
import t from 'tap'
import fc from 'fast-check'
import WebSocket from 'ws'
import { build, recordCrashes, secret } from '../helpers.js'

const seed = process.env.FUZZ_SEED === undefined ? 20250605 : Number(process.env.FUZZ_SEED)
const frames = process.env.FUZZ_FRAMES === undefined ? 10_000 : Number(process.env.FUZZ_FRAMES)
const perRun = 25
const codes = new Set(['AUTH_FAILED', 'TOKEN_EXPIRED', 'AUTH_REVOKED', 'AUTH_TIMEOUT', 'INVALID_PAYLOAD', 'REQUESTS_EXCEEDED',
  'FORBIDDEN', 'SERVICE_UNAVAILABLE', 'INTERNAL_SERVER_ERROR'])
const closeCodes = new Set([1005, 1007, 1009, 4401, 4408, 4429])

const junk = fc.oneof(
  fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant(1e308), fc.string({ minLength: 500, maxLength: 1500 }),
  fc.array(fc.string(), { maxLength: 4 }), fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 })
)
const deep = fc.integer({ min: 1, max: 300 }).map(depth => '['.repeat(depth) + ']'.repeat(depth))
const message = fc.record({
  type: fc.oneof(fc.constantFrom('subscribe', 'unsubscribe', 'auth', 'ping', 'pong', '__proto__', 'constructor', 'logs'), fc.string()),
  log_level: fc.oneof(fc.constantFrom('trace', 'debug', 'info', 'warn', 'error', 'fatal', 'toString', '__proto__'), junk),
  uid: junk,
  access_token: fc.oneof(fc.constant('not-a-token'), junk),
  email: junk,
  password: junk,
  refresh_token: junk
}, { requiredKeys: [] })
// Frames that end the socket (over the limit: 1009; not UTF-8: 1007) are rare, so most batches run to the end.
const frame = fc.oneof(
  { weight: 30, arbitrary: message.map(m => ({ data: JSON.stringify(m), binary: false })) },
  { weight: 10, arbitrary: message.map(m => ({ data: JSON.stringify(m).replace('"type"', '"__proto__":{"admin":true},"type"'), binary: false })) },
  { weight: 10, arbitrary: message.map(m => ({ data: Buffer.from(JSON.stringify(m)), binary: true })) },
  { weight: 10, arbitrary: fc.string().map(s => ({ data: s, binary: false })) },
  { weight: 5, arbitrary: deep.map(s => ({ data: s, binary: false })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map(bytes => ({ data: Buffer.from(bytes), binary: true })) },
  { weight: 1, arbitrary: fc.constant({ data: 'x'.repeat(5000), binary: false }) } // over the 4 KiB limit: 1009
)

interface Outcome { replies: unknown[], close: number | null }

/** Sends the frames then a marker ping; resolves with what came back until the marker's pong or the close. */
function exchange (url: string, sent: { data: string | Buffer, binary: boolean }[]): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    const replies: unknown[] = []
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('no answer within 10 s')) }, 10_000)
    const finish = (close: number | null) => { clearTimeout(timer); resolve({ replies, close }) }
    ws.on('open', () => {
      for (const { data, binary } of sent) ws.send(data, { binary })
      ws.send(JSON.stringify({ type: 'ping', uid: '\u0000marker' }))
    })
    ws.on('message', (data) => {
      const reply = JSON.parse(data.toString()) as { type?: string, uid?: string }
      if (reply.type === 'pong' && reply.uid === '\u0000marker') {
        ws.close()
        return finish(null)
      }
      replies.push(reply)
    })
    ws.on('close', (code) => finish(code))
    ws.on('error', () => {})
  })
}

function problem (reply: unknown): string | null {
  if (typeof reply !== 'object' || reply === null || Array.isArray(reply)) return 'not a JSON object'
  const { type, status, error, data, event } = reply as Record<string, unknown>
  if (typeof type !== 'string') return 'no string type'
  if (type === 'logs' && data !== undefined) return 'a log line reached a socket that is not an admin\'s'
  if (type === 'logs' && status === undefined && event !== 'unsubscribe') return `a logs event other than unsubscribe: ${String(event)}`
  if (status === 'error') {
    const { code, message } = error as { code?: unknown, message?: unknown }
    if (typeof code !== 'string' || !codes.has(code)) return `unknown error code ${String(code)}`
    if (typeof message !== 'string' || message === '') return 'an error without a message'
  }
  return null
}

t.test('/websocket/logs: random and malformed frames from non-admins never get a log line', async t => {
  const crashes = recordCrashes(t)
  const { app, url } = await build(t, { secret, maxPayload: 4096, logs: { auth: 'public' }, attemptLimit: false },
    { logger: { level: 'info', stream: { write () {} } } })
  // The app keeps logging all along: a leak would have lines to leak.
  const logging = setInterval(() => app.log.warn({ password: 'p' }, 'tick'), 2)
  t.teardown(() => clearInterval(logging))
  const editor = app.realtime.signAccessToken({ user: 'editor', role: 'editor', admin: false }).access_token
  const endpoints = [url('/websocket/logs'), url(`/websocket/logs?access_token=${editor}`)]

  t.comment(`FUZZ_SEED=${seed}`)
  let sent = 0
  const closes = new Map<number, number>()
  await fc.assert(fc.asyncProperty(fc.nat({ max: 1 }), fc.array(frame, { minLength: perRun, maxLength: perRun }), async (which, batch) => {
    const outcome = await exchange(endpoints[which], batch)
    sent += batch.length
    for (const reply of outcome.replies) {
      const wrong = problem(reply)
      if (wrong) throw new Error(`${wrong}: ${JSON.stringify(reply).slice(0, 300)}`)
    }
    if (outcome.close !== null) {
      closes.set(outcome.close, (closes.get(outcome.close) ?? 0) + 1)
      if (!closeCodes.has(outcome.close)) throw new Error(`close code ${outcome.close}`)
    }
  }), { seed, numRuns: Math.ceil(frames / perRun) })
  t.comment(`closes: ${JSON.stringify(Object.fromEntries(closes))}`)
  t.ok(sent >= frames, `${sent} frames sent`)
  t.same(crashes, [], 'no crash, no unhandled rejection')
  for (const connection of app.realtime.connections()) t.equal(connection.accountability.admin, false)
})
