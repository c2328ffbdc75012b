// Property-based fuzzing of both endpoints against a live server over loopback (issue 5): at least 10,000 random
// and malformed frames per endpoint per run. Properties: nothing crashes or rejects unhandled, every frame the server
// sends is a well-formed contract frame (PROTOCOL.md sections 4, 5 and 8) and the answer the contract gives for what
// was sent, every close has the code the contract gives, and no socket is anyone but public without a valid
// credential. Seeded: FUZZ_SEED=<integer> replays a run exactly; FUZZ_FRAMES=<n> changes the frames per endpoint.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import WebSocket from 'ws'
import { isUtf8 } from 'node:buffer'
import { GraphQLInt, GraphQLObjectType, GraphQLSchema, GraphQLString } from 'graphql'
import { validateMessage } from 'graphql-ws'
import type { FastifyInstance } from 'fastify'
import type {
  AuthMode, GraphqlContext, Identity, PasswordCredential, RealtimeOptions
} from '../../lib/index.js'
import { build, recordCrashes, whoami } from '../helpers.js'
import { maxEmailLength, maxPasswordLength } from '../../lib/auth/credential-bounds.js'

const seed = process.env.FUZZ_SEED === undefined ? 20_250_605 : Number(process.env.FUZZ_SEED)
if (!Number.isSafeInteger(seed)) throw new Error(`FUZZ_SEED must be an integer (got "${process.env.FUZZ_SEED}")`)
const framesPerEndpoint = process.env.FUZZ_FRAMES === undefined ? 10_000 : Number(process.env.FUZZ_FRAMES)
t.comment(`FUZZ_SEED=${seed} (run with FUZZ_SEED=${seed} to replay)`)

const maxPayload = 4096
const runLength = { minLength: 40, maxLength: 60 }
/** Longest wait for an answer: a socket that goes silent for this long is a failure, not a slow machine. */
const answerTimeoutMs = 10_000

const crashes = recordCrashes(t)
function assertNoCrash (): void {
  if (crashes.length > 0) throw new Error(`the process crashed or rejected unhandled: ${String(crashes[0])}`)
}

// --- the server ---------------------------------------------------------------------------------------------------

/** The one password login that works: checked in memory, so thousands of attempts cost no argon2 time. */
const validLogin = { email: 'fuzz@example.com', password: 'correct horse battery staple' }
const passwordUser: Identity = { user: 'pw-user', role: 'editor', admin: false }
const verifyCredentials = async ({ email, password }: PasswordCredential) =>
  email === validLogin.email && password === validLogin.password ? passwordUser : null

const schema = new GraphQLSchema({
  query: new GraphQLObjectType({
    name: 'Query',
    fields: { me: { type: GraphQLString, resolve: (_root, _args, context: GraphqlContext) => context.accountability.user } }
  }),
  subscription: new GraphQLObjectType({
    name: 'Subscription',
    fields: {
      ticks: {
        type: GraphQLInt,
        subscribe: async function * () { for (let i = 1; i <= 3; i++) yield { ticks: i } }
      }
    }
  })
})

interface Server {
  app: FastifyInstance
  url: (path: string) => string
  /** Substituted for `@@name@@` in generated frames, so generated values stay printable and replayable. */
  secrets: Record<string, string>
  /** Error-level log lines: none is expected on /websocket. */
  errors: string[]
  /** What the server answered, by kind: shows what the fuzz reached. */
  stats: Map<string, number>
}

function tally (server: Server, frames: unknown[], closed: Closed | null): void {
  const kinds = frames.map(frame => {
    if (!isObject(frame)) return 'not an object'
    const type = ['auth', 'ping', 'pong', 'whoami', 'server'].includes(frame.type as string) ? frame.type : '<other>'
    if (isObject(frame.error)) return `${type} ${frame.error.code}`
    return typeof frame.status === 'string' ? `${frame.type} ${frame.status}` : String(frame.type)
  })
  if (closed) kinds.push(`close ${closed.code}`)
  for (const kind of kinds) server.stats.set(kind, (server.stats.get(kind) ?? 0) + 1)
}

const summary = (stats: Map<string, number>) => [...stats].sort(([a], [b]) => a < b ? -1 : 1).map(([kind, n]) => `${kind}: ${n}`).join(', ')

const base64url = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url')

async function server (t: Test, options: RealtimeOptions): Promise<Server> {
  const errors: string[] = []
  const { app, url } = await build(t, {
    maxPayload, verifyCredentials, heartbeat: { enabled: false }, ...options
  }, { logger: { level: 'error', stream: { write: (line: string) => { errors.push(line) } } } })
  const access = app.realtime.jwt.sign({ id: 'frame-user' })
  const [header, , signature] = access.split('.')
  // Credentials that must fail, each in its own way, next to the valid ones (`access`, `url`, `email` + `password`).
  const ended = await app.realtime.login(validLogin)
  await app.realtime.revokeSession(app.realtime.jwt.decode<{ sid: string }>(ended.access_token)!.sid)
  const secrets = {
    access,
    url: app.realtime.jwt.sign({ id: 'url-user' }),
    expired: app.realtime.jwt.sign({ id: 'frame-user', exp: Math.floor(Date.now() / 1000) - 60 }),
    forged: `${header}.${base64url({ id: 'frame-user', admin: true })}.${signature}`,
    none: `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ id: 'frame-user' })}.`,
    nouser: app.realtime.jwt.sign({ role: 'admin', admin_access: true }),
    revoked: app.realtime.jwt.sign({ id: 'frame-user', sid: app.realtime.jwt.decode<{ sid: string }>(ended.access_token)!.sid }),
    ended: ended.refresh_token,
    email: validLogin.email,
    password: validLogin.password
  }
  return { app, url, secrets, errors, stats: new Map() }
}

// --- frames -------------------------------------------------------------------------------------------------------

/** A frame as generated: text (with `@@secret@@` placeholders) or raw bytes, sent as a text or a binary frame. */
type FrameSpec = { text: string, binary: boolean } | { bytes: Uint8Array, binary: boolean }

interface Frame {
  data: Buffer
  binary: boolean
}

function render (spec: FrameSpec, secrets: Record<string, string>): Frame {
  if ('bytes' in spec) return { data: Buffer.from(spec.bytes), binary: spec.binary }
  const text = spec.text.replace(/@@(\w+)@@/g, (all, name: string) => secrets[name] ?? all)
  return { data: Buffer.from(text), binary: spec.binary }
}

const unparsable = Symbol('unparsable')

/** What the server reads from a frame: the same bytes, decoded and parsed the same way. */
function parsedOf (frame: Frame): unknown {
  try {
    return JSON.parse(frame.data.toString())
  } catch {
    return unparsable
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

const validUid = (uid: unknown) => uid === undefined || typeof uid === 'string' || (typeof uid === 'number' && Number.isFinite(uid))

/** What ws itself refuses before the endpoint sees it: over the payload limit, or a text frame that is not UTF-8. */
const refusedByWs = (frame: Frame) => frame.data.byteLength > maxPayload || (!frame.binary && !isUtf8(frame.data))

const text = (value: string, binary = false): FrameSpec => ({ text: value, binary })
/** A JSON object from raw entries: keys such as `__proto__` stay own keys, values stay as written (`1e400`). */
const objectText = (entries: [string, string][]) => `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${value}`).join(',')}}`
const quoted = (value: string) => JSON.stringify(value)
const secretNames = ['access', 'url', 'expired', 'forged', 'none', 'nouser', 'revoked', 'ended', 'email', 'password']

const hugeNumber = fc.constantFrom('1e400', '-1e400', '1e-400', '-0', '123456789012345678901234567890', '9007199254740993',
  '1.7976931348623157e308', '0.000000000000000000001', '-9223372036854775808')
const nesting = fc.tuple(fc.constantFrom('[', '{"a":', '{"__proto__":', '{"constructor":', '{"type":"ping","uid":'), fc.nat(1000))
  .map(([open, depth]) => {
    const levels = Math.floor(depth * maxPayload / 1000 / open.length) + 1 // up to just over the payload limit
    return open.repeat(levels) + '0' + (open === '[' ? ']' : '}').repeat(levels)
  })
/** Any JSON value as text, with the awkward ones over-represented. */
const value: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 2 }).map(v => JSON.stringify(v)) },
  { weight: 2, arbitrary: hugeNumber },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }).map(quoted) },
  { weight: 2, arbitrary: fc.constantFrom(...secretNames).map(name => quoted(`@@${name}@@`)) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: maxPayload + 100 }).map(n => quoted('x'.repeat(n))) },
  { weight: 1, arbitrary: nesting },
  { weight: 1, arbitrary: fc.constantFrom('null', 'true', 'false', '[]', '{}', '""', '{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"admin":true}}}') }
)
const key = fc.oneof(
  fc.constantFrom('type', 'uid', 'id', 'payload', 'access_token', 'email', 'password', 'refresh_token', 'otp', 'status',
    'error', 'data', 'query', 'user', 'admin', 'role', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'),
  fc.string({ maxLength: 12 })
)
const uid = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 16 }).map(quoted) },
  { weight: 2, arbitrary: fc.integer().map(String) },
  { weight: 1, arbitrary: fc.double().map(d => JSON.stringify(d)) }, // NaN and Infinity become null
  { weight: 1, arbitrary: hugeNumber },
  { weight: 1, arbitrary: value }
)
const notJson = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.constantFrom('', ' ', '{', '}', '{"type":', 'undefined', 'NaN', 'Infinity', "{'type':'ping'}", '{"type":"ping",}',
    '{"type":"ping"}{"type":"ping"}', '\u0000', '\ufeff{"type":"ping"}', '[{"type":"ping"}'),
  value.map(v => v.slice(0, -1)) // truncated
)
const binaryFrame = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((bytes): FrameSpec => ({ bytes, binary: true })),
  fc.constantFrom('{"type":"ping","uid":"bin"}', '{"type":"auth","access_token":"@@forged@@"}', '{"type":"whoami"}')
    .map(v => text(v, true))
)
/** Text frames that are not UTF-8 (ws refuses them with 1007), with some that are. */
const badText = fc.oneof(
  fc.constantFrom([0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x7b, 0xff, 0x7d]),
  fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 40 })
).map((bytes): FrameSpec => ({ bytes: Uint8Array.from(bytes), binary: false }))
/** Around and over the payload limit, as text or binary: a ping padded to `size` bytes. */
const sized = fc.record({
  size: fc.oneof(fc.integer({ min: maxPayload - 2, max: maxPayload + 2 }), fc.integer({ min: maxPayload + 1, max: maxPayload * 3 })),
  binary: fc.boolean()
}).map(({ size, binary }) => {
  const head = '{"type":"ping","uid":"big","pad":"'
  return text(head + 'x'.repeat(Math.max(0, size - head.length - 2)) + '"}', binary)
})
const shuffled = (entries: fc.Arbitrary<[string, string][]>) => entries.chain(list => fc.shuffledSubarray(list, { minLength: list.length }))

// --- /websocket ---------------------------------------------------------------------------------------------------

const restType = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('auth', 'ping', 'pong', 'whoami', 'server', 'subscribe', '__proto__', 'constructor', 'toString', 'hasOwnProperty', '', 'AUTH', 'auth ').map(quoted) },
  { weight: 2, arbitrary: fc.string({ maxLength: 20 }).map(quoted) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: maxPayload }).map(n => quoted('t'.repeat(n))) },
  { weight: 1, arbitrary: value } // not a string, mostly
)
const envelope = fc.record({
  type: fc.option(restType, { nil: undefined, freq: 8 }),
  uid: fc.option(uid, { nil: undefined }),
  extra: fc.array(fc.tuple(key, value), { maxLength: 4 })
}).chain(({ type, uid, extra }) => shuffled(fc.constant([
  ...(type === undefined ? [] : [['type', type] as [string, string]]),
  ...(uid === undefined ? [] : [['uid', uid] as [string, string]]),
  ...extra
]))).map(entries => text(objectText(entries)))
const credentialValue = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...secretNames).map(name => quoted(`@@${name}@@`)) },
  { weight: 2, arbitrary: fc.string({ maxLength: 30 }).map(quoted) },
  { weight: 1, arbitrary: value },
  { weight: 1, arbitrary: fc.constant('""') }
)
/** Auth messages with any mix of the three forms' fields, valid secrets among them. */
const authFrame = fc.record({
  fields: fc.subarray(['access_token', 'email', 'password', 'refresh_token', 'otp'], { minLength: 1 }),
  values: fc.array(credentialValue, { minLength: 5, maxLength: 5 }),
  uid: fc.option(uid, { nil: undefined }),
  extra: fc.array(fc.tuple(key, value), { maxLength: 2 })
}).chain(({ fields, values, uid, extra }) => shuffled(fc.constant([
  ['type', '"auth"'] as [string, string],
  ...fields.map((field, i) => [field, values[i]] as [string, string]),
  ...(uid === undefined ? [] : [['uid', uid] as [string, string]]),
  ...extra
]))).map(entries => text(objectText(entries)))
const goodUid = fc.option(fc.oneof(fc.string({ maxLength: 10 }).map(quoted), fc.integer().map(String)), { nil: undefined })
/** The valid credentials, explicitly: an access token, or the email and password (with an ignored otp). */
const validAuth = fc.record({ form: fc.constantFrom('access', 'password', 'otp'), uid: goodUid }).map(({ form, uid }) => {
  const entries: [string, string][] = [['type', '"auth"']]
  if (form === 'access') entries.push(['access_token', '"@@access@@"'])
  else entries.push(['email', '"@@email@@"'], ['password', '"@@password@@"'])
  if (form === 'otp') entries.push(['otp', '"123456"'])
  if (uid !== undefined) entries.push(['uid', uid])
  return text(objectText(entries))
})
const simple = fc.record({ type: fc.constantFrom('ping', 'pong', 'whoami'), uid: fc.option(uid, { nil: undefined }) })
  .map(({ type, uid }) => text(objectText([['type', quoted(type)], ...(uid === undefined ? [] : [['uid', uid] as [string, string]])])))

const restFrame: fc.Arbitrary<FrameSpec> = fc.oneof(
  { weight: 3, arbitrary: notJson.map(v => text(v)) },
  { weight: 2, arbitrary: value.map(v => text(v)) },
  { weight: 8, arbitrary: envelope },
  { weight: 6, arbitrary: authFrame },
  { weight: 2, arbitrary: validAuth },
  { weight: 4, arbitrary: simple },
  { weight: 2, arbitrary: binaryFrame },
  { weight: 1, arbitrary: badText },
  { weight: 1, arbitrary: sized }
)

const errorCodes = new Set(['AUTH_FAILED', 'TOKEN_EXPIRED', 'AUTH_REVOKED', 'AUTH_TIMEOUT', 'INVALID_PAYLOAD',
  'REQUESTS_EXCEEDED', 'FORBIDDEN', 'SERVICE_UNAVAILABLE'])

/** Section 4 and 8: a JSON object with a string `type`; an error frame has a contract code and a message. */
function contractProblem (frame: unknown): string | null {
  if (!isObject(frame) || typeof frame.type !== 'string') return 'not a JSON object with a string "type"'
  if (frame.status === 'error') {
    const error = frame.error
    if (!isObject(error) || !errorCodes.has(error.code as string)) return 'an error frame without a contract code'
    if (typeof error.message !== 'string' || error.message === '') return 'an error frame without a message'
  }
  return null
}

type Pattern = unknown | ((actual: unknown) => boolean)
const nonEmptyString = (actual: unknown) => typeof actual === 'string' && actual !== ''

/** Exact structural match: same keys, same values (`===`, so -0 and 0 agree), predicates where a value may vary. */
function matches (actual: unknown, pattern: Pattern): boolean {
  if (typeof pattern === 'function') return (pattern as (actual: unknown) => boolean)(actual)
  if (isObject(pattern)) {
    if (!isObject(actual)) return false
    const keys = Object.keys(pattern).filter(k => pattern[k] !== undefined)
    return Object.keys(actual).length === keys.length && keys.every(k => Object.hasOwn(actual, k) && matches(actual[k], pattern[k]))
  }
  return actual === pattern
}

const errorReply = (type: string, code: string, message: Pattern, uid?: unknown) =>
  ({ type, status: 'error', error: { code, message }, uid })

/** The user of a valid access token: `access` and `url` are the two valid ones. */
const tokenUser = (token: unknown, secrets: Record<string, string>) =>
  token === secrets.access ? 'frame-user' : token === secrets.url ? 'url-user' : null

/** Which user a valid credential makes the socket: the clean forms of section 4 with the valid secrets, nothing else. */
function validCredential (parsed: unknown, secrets: Record<string, string>): string | null {
  if (!isObject(parsed) || parsed.type !== 'auth' || !validUid(parsed.uid)) return null
  const access = parsed.access_token !== undefined
  const password = parsed.email !== undefined || parsed.password !== undefined
  const refresh = parsed.refresh_token !== undefined
  if (access && !password && !refresh && parsed.otp === undefined) return tokenUser(parsed.access_token, secrets)
  if (password && !access && !refresh && parsed.email === secrets.email && parsed.password === secrets.password &&
    (parsed.otp === undefined || typeof parsed.otp === 'string')) return passwordUser.user
  return null
}

/**
 * Section 4's three forms: exactly one of them, its fields strings (`otp` only with email and password), an email and
 * a password within their bounds (as sent). Anything else is malformed (INVALID_PAYLOAD); an empty string may count
 * either way.
 */
function authShape (parsed: Record<string, unknown>): 'well formed' | 'malformed' | 'either' {
  const forms = [['access_token'], ['email', 'password'], ['refresh_token']].filter(form => form.some(field => parsed[field] !== undefined))
  if (forms.length !== 1 || (parsed.otp !== undefined && forms[0][0] !== 'email')) return 'malformed'
  const fields = [...forms[0], ...(parsed.otp === undefined ? [] : ['otp'])]
  if (fields.some(field => typeof parsed[field] !== 'string')) return 'malformed'
  if (fields.some(field => parsed[field] === '')) return 'either'
  const over = (field: string, bound: number) => typeof parsed[field] === 'string' && parsed[field].length > bound
  return over('email', maxEmailLength) || over('password', maxPasswordLength) ? 'malformed' : 'well formed'
}

/** The password form, well formed: the one the credential-attempt limits of section 8 may refuse. */
const passwordForm = (parsed: unknown) => isObject(parsed) && parsed.type === 'auth' &&
  typeof parsed.email === 'string' && typeof parsed.password === 'string' && parsed.access_token === undefined &&
  parsed.refresh_token === undefined

/** An auth message checked asynchronously (a password or a refresh token): frames behind it wait, bounded in bytes. */
const checkedLater = (frame: Frame) => {
  const parsed = refusedByWs(frame) ? undefined : parsedOf(frame)
  return isObject(parsed) && parsed.type === 'auth' && authShape(parsed) !== 'malformed' &&
    (passwordForm(parsed) || typeof parsed.refresh_token === 'string')
}

interface RestState {
  mode: AuthMode
  phase: 'handshake' | 'open'
  user: string | null
}

interface Closed {
  code: number
  reason: string
}

/**
 * What the contract says about one frame, given the socket's state: every reply it got (at most one) and the close
 * it caused, if any. Updates the state; answers what went wrong, or null.
 */
function checkRest (state: RestState, frame: Frame, replies: unknown[], closed: Closed | null, secrets: Record<string, string>): string | null {
  for (const reply of replies) {
    const problem = contractProblem(reply)
    if (problem) return problem
  }
  const [reply] = replies
  const expectClose = (code: number) => closed?.code === code ? null : `expected close ${code}, got ${closed ? closed.code : 'none'}`
  const expectOnly = (pattern: Pattern | null, close: number | null): string | null => {
    if (replies.length !== (pattern === null ? 0 : 1) || (pattern !== null && !matches(reply, pattern))) return 'unexpected reply'
    return close === null ? (closed ? `unexpected close ${closed.code}` : null) : expectClose(close)
  }

  if (frame.data.byteLength > maxPayload) return expectOnly(null, 1009)
  if (!frame.binary && !isUtf8(frame.data)) return expectOnly(null, 1007)
  const parsed = parsedOf(frame)
  const envelope = isObject(parsed) && typeof parsed.type === 'string'
  const uidOk = envelope && validUid(parsed.uid)
  const echoed = uidOk ? parsed.uid : undefined
  const valid = validCredential(parsed, secrets)
  const limited = passwordForm(parsed) && matches(reply, errorReply('auth', 'REQUESTS_EXCEEDED', nonEmptyString, echoed))

  if (state.phase === 'handshake') {
    if (limited) return expectOnly(reply, 4429)
    if (valid === null) return expectOnly(errorReply('auth', 'AUTH_FAILED', 'Authentication handshake failed.', echoed), 4401)
    state.phase = 'open'
    state.user = valid
    return expectOnly({ type: 'auth', status: 'ok', uid: echoed, refresh_token: valid === passwordUser.user ? nonEmptyString : undefined }, null)
  }

  if (parsed === unparsable) return expectOnly(errorReply('server', 'INVALID_PAYLOAD', 'Unable to parse the incoming message.'), null)
  if (!envelope) return expectOnly(errorReply('server', 'INVALID_PAYLOAD', nonEmptyString), null)
  const type = parsed.type as string
  if (!uidOk) return expectOnly(errorReply(type, 'INVALID_PAYLOAD', nonEmptyString), null)
  switch (type) {
    case 'auth': {
      if (limited) return expectOnly(reply, null)
      if (valid !== null) {
        state.user = valid
        return expectOnly({ type: 'auth', status: 'ok', uid: echoed, refresh_token: valid === passwordUser.user ? nonEmptyString : undefined }, null)
      }
      const shape = authShape(parsed)
      if (shape !== 'well formed' && matches(reply, errorReply('auth', 'INVALID_PAYLOAD', nonEmptyString, echoed))) return expectOnly(reply, null)
      if (shape === 'malformed') return 'a malformed auth message not answered INVALID_PAYLOAD'
      state.user = null
      return expectOnly(errorReply('auth', 'AUTH_FAILED', 'Authentication failed.', echoed), state.mode === 'public' ? null : 4401)
    }
    case 'ping': return expectOnly({ type: 'pong', uid: echoed }, null)
    case 'pong': return expectOnly(null, null)
    case 'whoami': return expectOnly({ type: 'whoami', uid: echoed, user: state.user }, null)
    default: return expectOnly(errorReply(type, 'INVALID_PAYLOAD', nonEmptyString, echoed), null)
  }
}

// --- sockets ------------------------------------------------------------------------------------------------------

/** A raw `ws` client that records every frame (parsed when JSON) and the close. */
class Sock {
  readonly ws: WebSocket
  readonly received: unknown[] = []
  closed: Closed | null = null
  binaryReceived = false
  readonly opened: Promise<void>
  #wake: () => void = () => {}

  constructor (url: string, protocol?: string) {
    this.ws = new WebSocket(url, protocol)
    this.ws.on('message', (data, isBinary) => {
      if (isBinary) this.binaryReceived = true
      const raw = data.toString()
      let frame: unknown
      try { frame = JSON.parse(raw) } catch { frame = { notJson: raw } }
      this.received.push(frame)
      this.#wake()
    })
    this.ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() }
      this.#wake()
    })
    this.ws.on('error', () => {})
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve())
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)))
      this.ws.once('error', reject)
    })
  }

  static async open (url: string, protocol?: string): Promise<Sock> {
    const sock = new Sock(url, protocol)
    await sock.opened
    return sock
  }

  send (frame: Frame | string): void {
    if (typeof frame === 'string') this.ws.send(frame)
    else this.ws.send(frame.data, { binary: frame.binary })
  }

  /** Waits until `done()` or the close; a silence longer than the answer timeout fails. */
  async until (done: () => boolean, what: string): Promise<void> {
    while (!done() && this.closed === null) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${what} within ${answerTimeoutMs} ms`)), answerTimeoutMs)
        this.#wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
  }

  async close (): Promise<void> {
    if (this.closed === null) this.ws.close()
    await this.until(() => false, 'close')
  }
}

const short = (value: unknown) => {
  const shown = typeof value === 'string' ? value : value instanceof Buffer ? value.toString() : JSON.stringify(value)
  return shown.length > 300 ? `${shown.slice(0, 300)}... (${shown.length} chars)` : shown
}

// --- /websocket runs ----------------------------------------------------------------------------------------------

interface RestRun {
  /** First frames of the first sockets, in handshake mode: then sockets open with a valid one. */
  handshakes: FrameSpec[]
  frames: FrameSpec[]
}

const restSentinel = (i: number) => JSON.stringify({ type: 'ping', uid: `\u0000sentinel:${i}` })
const isRestSentinel = (frame: unknown) => isObject(frame) && frame.type === 'pong' && typeof frame.uid === 'string' && frame.uid.startsWith('\u0000sentinel:')

/**
 * One fast-check run on /websocket: the frames pipelined on one socket, each followed by a sentinel ping, so the
 * replies between two sentinel pongs are that frame's (the server handles a socket's frames in order). When the server
 * closes the socket, a new one carries on with the frames the old one never got to.
 */
async function restRun (server: Server, mode: AuthMode, run: RestRun): Promise<number> {
  const { secrets } = server
  const url = server.url(mode === 'strict' ? `/websocket?access_token=${secrets.url}` : '/websocket')
  const handshakes = [...run.handshakes]
  let pending = [...run.frames]
  let fuzzed = 0
  while (pending.length > 0 || handshakes.length > 0) {
    const sock = await Sock.open(url)
    const state: RestState = { mode, phase: mode === 'handshake' ? 'handshake' : 'open', user: mode === 'strict' ? 'url-user' : null }
    const batch: { spec: FrameSpec, fuzz: boolean }[] = []
    if (mode === 'handshake') {
      const handshake = handshakes.shift()
      batch.push(handshake ? { spec: handshake, fuzz: true } : { spec: text('{"type":"auth","access_token":"@@access@@"}'), fuzz: false })
    }
    for (const spec of pending) batch.push({ spec, fuzz: true })
    batch.push({ spec: text('{"type":"whoami","uid":"final"}'), fuzz: false })
    const frames = batch.map(({ spec }) => render(spec, secrets))
    frames.forEach((frame, i) => {
      sock.send(frame)
      sock.send(restSentinel(i))
    })
    await sock.until(() => isRestSentinel(sock.received.at(-1)) && (sock.received.at(-1) as { uid: string }).uid === `\u0000sentinel:${frames.length - 1}`, 'sentinel pong')

    // Split the replies at the sentinels: segment i answers frame i.
    const segments: unknown[][] = [[]]
    for (const frame of sock.received) {
      if (!isRestSentinel(frame)) {
        segments.at(-1)!.push(frame)
        continue
      }
      if ((frame as { uid: string }).uid !== `\u0000sentinel:${segments.length - 1}`) throw new Error(`sentinel out of order: ${short(frame)}`)
      segments.push([])
    }
    const answered = segments.length - 1
    if (sock.closed && answered === frames.length) throw new Error(`closed ${sock.closed.code} after the last frame`)
    if (sock.binaryReceived) throw new Error('the server sent a binary frame')
    const check = (i: number, replies: unknown[], closed: Closed | null) => {
      tally(server, replies, closed)
      const problem = checkRest(state, frames[i], replies, closed, secrets)
      if (problem) {
        throw new Error(`${mode} /websocket, frame ${i} ${short(frames[i].data)} (binary: ${frames[i].binary}, ` +
          `state before: ${state.phase}/${state.user}): ${problem}; replies ${short(replies)}, close ${short(closed)}`)
      }
    }
    for (let i = 0; i < answered; i++) check(i, segments[i], null)
    // ws refuses a frame over the payload limit (1009) or a text frame that is not UTF-8 (1007) as it reads it, ahead
    // of the frames queued behind an asynchronous auth: those end unanswered, and the next socket gets them again.
    let closer = answered
    // Past the max payload's worth of frames queued behind a password or refresh check, the socket is closed 1008
    // (PROTOCOL.md section 11): the check, its answer never sent, is done; the frames after it go to the next socket.
    const overflowed = sock.closed?.code === 1008
    if (overflowed && (sock.closed!.reason !== 'Too many frames queued.' || !checkedLater(frames[answered]) || segments[answered].length > 0)) {
      throw new Error(`${mode} /websocket: closed 1008 ${sock.closed!.reason} after ${short(frames[answered].data)}: ${short(segments[answered])}`)
    }
    if (sock.closed && (sock.closed.code === 1009 || sock.closed.code === 1007)) {
      closer = frames.findIndex((frame, i) => i >= answered && refusedByWs(frame))
      if (closer === -1) throw new Error(`closed ${sock.closed.code} with no frame that calls for it: ${short(segments[answered])}`)
    }
    if (sock.closed && !overflowed && closer === answered) check(answered, segments[answered], sock.closed)
    if (sock.closed && closer > answered) {
      for (const reply of segments[answered]) {
        const problem = contractProblem(reply)
        if (problem) throw new Error(`${mode} /websocket: ${problem}: ${short(reply)}`)
      }
      check(closer, [], sock.closed)
    }
    const done = overflowed ? batch.slice(0, answered + 1) : sock.closed ? [...batch.slice(0, answered), batch[closer]] : batch
    fuzzed += done.filter(({ fuzz }) => fuzz).length
    const left = overflowed ? batch.slice(answered + 1) : sock.closed ? [...batch.slice(answered, closer), ...batch.slice(closer + 1)] : []
    pending = left.filter(({ fuzz }) => fuzz).map(({ spec }) => spec)
    await sock.close()
    assertNoCrash()
  }
  // Every socket in the registry has a whole accountability, public unless it authenticated.
  for (const connection of server.app.realtime.connections()) {
    const { accountability } = connection
    if (!isObject(accountability) || !('user' in accountability) || accountability.admin !== false) {
      throw new Error(`a connection with accountability ${short(accountability)}`)
    }
  }
  return fuzzed
}

// No socket left open, nor a TCP connection: `connections()` lists the open sockets alone, and one its client closed
// may still be closing on the server.
async function drained (app: FastifyInstance): Promise<void> {
  const deadline = Date.now() + answerTimeoutMs
  const tcp = () => new Promise<number>((resolve, reject) => app.server.getConnections((err, n) => err ? reject(err) : resolve(n)))
  while (app.realtime.connections().length > 0 || await tcp() > 0) {
    if (Date.now() > deadline) throw new Error(`${app.realtime.connections().length} connections left open, ${await tcp()} TCP connections`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

t.test('/websocket: random and malformed frames in public, handshake and strict modes', async t => {
  const modes: AuthMode[] = ['public', 'handshake', 'strict']
  const numRuns = Math.ceil(framesPerEndpoint / modes.length / runLength.minLength)
  let total = 0
  for (const mode of modes) {
    // Public mode without the credential-attempt limits, so every password attempt reaches the check; the other
    // modes with them, so their refusals (REQUESTS_EXCEEDED, 4429 in a handshake) are fuzzed too.
    const srv = await server(t, { rest: { auth: mode, handlers: { whoami } }, ...(mode === 'public' ? { attemptLimit: false } : {}) })
    let fuzzed = 0
    const run = fc.record({
      handshakes: mode === 'handshake' ? fc.array(restFrame, { maxLength: 3 }) : fc.constant<FrameSpec[]>([]),
      frames: fc.array(restFrame, runLength)
    })
    await fc.assert(fc.asyncProperty(run, async (spec) => {
      fuzzed += await restRun(srv, mode, spec)
    }), { seed, numRuns })
    await drained(srv.app)
    t.same(srv.errors, [], `${mode}: no error logged`)
    t.comment(`${mode}: ${fuzzed} frames; answers ${summary(srv.stats)}`)
    total += fuzzed
  }
  t.ok(total >= framesPerEndpoint, `${total} frames on /websocket`)
  t.same(crashes, [], 'no crash, no unhandled rejection')
})

// --- /graphql -----------------------------------------------------------------------------------------------------

const gqlId = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('1', '2', 'a', '__proto__', 'constructor', 'toString', 'hasOwnProperty').map(quoted) },
  { weight: 2, arbitrary: fc.string({ maxLength: 8 }).map(quoted) },
  { weight: 1, arbitrary: value }
)
const queries = ['{ me }', 'query Q { me }', 'subscription { ticks }', '{ __typename me }',
  '{ __schema { queryType { name } } }', '{ me { x } }', '{ nope }', 'mutation { me }', '{', '',
  'query A { me } query B { me }', 'fragment F on Query { me } { ...F }', '{ ...F }', 'query ($a: Int) { me }',
  'subscription { ticks } subscription { ticks }', '{ me @skip(if: true) }']
const query = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...queries).map(quoted) },
  { weight: 2, arbitrary: fc.string({ maxLength: 40 }).map(quoted) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 1400 }).map(n => quoted(`{ ${'me '.repeat(n)}}`)) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 1000 }).map(n => quoted(`{ ${'me { '.repeat(n)}${'} '.repeat(n)}}`)) },
  { weight: 1, arbitrary: value }
)
/** Mostly what graphql-ws accepts (an object or nothing), sometimes not. */
const objectOr = (valid: fc.Arbitrary<string>) => fc.option(fc.oneof({ weight: 4, arbitrary: valid }, { weight: 1, arbitrary: value }), { nil: undefined })
const variables = fc.constantFrom('{}', 'null', '{"a":1}', '{"a":"x","__proto__":{"admin":true}}', '{"constructor":{"prototype":{"x":1}}}')
const subscribePayload = fc.record({
  query,
  variables: objectOr(variables),
  operationName: objectOr(fc.constantFrom('"Q"', '"A"', '"B"', 'null', '""', '"__proto__"')),
  extensions: objectOr(variables),
  extra: fc.array(fc.tuple(key, value), { maxLength: 2 })
}).map(({ query, variables, operationName, extensions, extra }) => objectText([
  ['query', query],
  ...(variables === undefined ? [] : [['variables', variables] as [string, string]]),
  ...(operationName === undefined ? [] : [['operationName', operationName] as [string, string]]),
  ...(extensions === undefined ? [] : [['extensions', extensions] as [string, string]]),
  ...extra
]))
const subscribe = fc.record({ id: gqlId, payload: fc.oneof({ weight: 8, arbitrary: subscribePayload }, { weight: 1, arbitrary: value }) })
  .map(({ id, payload }) => text(objectText([['type', '"subscribe"'], ['id', id], ['payload', payload]])))
const meQuery = fc.string({ minLength: 1, maxLength: 6 }).map(id => text(objectText([['type', '"subscribe"'], ['id', quoted(id)], ['payload', '{"query":"{ me }"}']])))
const initPayload = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ token: fc.option(credentialValue, { nil: undefined }), extra: fc.array(fc.tuple(key, value), { maxLength: 3 }) })
      .map(({ token, extra }) => objectText([...(token === undefined ? [] : [['access_token', token] as [string, string]]), ...extra]))
  },
  { weight: 1, arbitrary: value }
)
const init = fc.option(initPayload, { nil: undefined })
  .map(payload => text(objectText([['type', '"connection_init"'], ...(payload === undefined ? [] : [['payload', payload] as [string, string]])])))
const pingPong = fc.record({ type: fc.constantFrom('"ping"', '"pong"'), payload: fc.option(value, { nil: undefined }) })
  .map(({ type, payload }) => text(objectText([['type', type], ...(payload === undefined ? [] : [['payload', payload] as [string, string]])])))
const complete = gqlId.map(id => text(objectText([['type', '"complete"'], ['id', id]])))
/** Messages only a server may send: graphql-ws refuses them from a client. */
const serverOnly = fc.constantFrom('{"type":"connection_ack"}', '{"type":"next","id":"1","payload":{"data":{"me":"x"}}}',
  '{"type":"error","id":"1","payload":[{"message":"x"}]}').map(v => text(v))
const gqlEnvelope = fc.record({
  type: fc.oneof(
    fc.constantFrom('connection_init', 'connection_ack', 'ping', 'pong', 'subscribe', 'next', 'error', 'complete',
      'auth', '__proto__', 'constructor', 'start', 'connection_terminate').map(quoted),
    fc.string({ maxLength: 12 }).map(quoted),
    value
  ),
  extra: fc.array(fc.tuple(key, value), { maxLength: 4 })
}).chain(({ type, extra }) => shuffled(fc.constant([['type', type] as [string, string], ...extra]))).map(entries => text(objectText(entries)))

const gqlFrame: fc.Arbitrary<FrameSpec> = fc.oneof(
  { weight: 10, arbitrary: subscribe },
  { weight: 3, arbitrary: meQuery },
  { weight: 4, arbitrary: pingPong },
  { weight: 3, arbitrary: complete },
  { weight: 1, arbitrary: init },
  { weight: 1, arbitrary: serverOnly },
  { weight: 2, arbitrary: gqlEnvelope },
  { weight: 1, arbitrary: notJson.map(v => text(v)) },
  { weight: 1, arbitrary: value.map(v => text(v)) },
  { weight: 1, arbitrary: binaryFrame },
  { weight: 1, arbitrary: badText },
  { weight: 1, arbitrary: sized }
)
/** Before `connection_init`: inits above all, with valid and invalid tokens. */
const preInitFrame: fc.Arbitrary<FrameSpec> = fc.oneof({ weight: 3, arbitrary: init }, { weight: 2, arbitrary: gqlFrame })

const serverTypes = new Set(['connection_ack', 'ping', 'pong', 'next', 'error', 'complete'])
const gqlSentinel = (i: number) => JSON.stringify({ type: 'ping', payload: { '\u0000sentinel': i } })
const isGqlSentinel = (frame: unknown, i: number) => isObject(frame) && frame.type === 'pong' && isObject(frame.payload) && frame.payload['\u0000sentinel'] === i

interface GqlState {
  mode: AuthMode
  initSeen: boolean
  acked: boolean
  user: string | null
  /** Every subscription id sent: answers (next, error, complete) may come for these only. */
  ids: Set<string>
}

/** The graphql-transport-ws contract for one frame (section 5, and graphql-ws's own closes): what went wrong, or null. */
function checkGql (state: GqlState, frame: Frame, replies: unknown[], closed: Closed | null, secrets: Record<string, string>): string | null {
  const expect = (pattern: Pattern | null, close: number | null): string | null => {
    if (replies.length !== (pattern === null ? 0 : 1) || (pattern !== null && !matches(replies[0], pattern))) return 'unexpected reply'
    if (close === null) return closed ? `unexpected close ${closed.code}` : null
    return closed?.code === close ? null : `expected close ${close}, got ${closed ? closed.code : 'none'}`
  }
  if (frame.data.byteLength > maxPayload) return expect(null, 1009)
  if (!frame.binary && !isUtf8(frame.data)) return expect(null, 1007)
  let message: Record<string, unknown> & { type: string }
  try {
    message = validateMessage(parsedOf(frame)) as unknown as typeof message
  } catch {
    return expect(null, 4400)
  }
  switch (message.type) {
    case 'connection_init': {
      if (state.initSeen) return expect(null, 4429)
      state.initSeen = true
      const payload = message.payload
      const token = typeof payload === 'object' && payload !== null ? (payload as Record<string, unknown>).access_token : undefined
      const user = tokenUser(token, secrets)
      if (token === undefined || token === null) {
        if (state.mode !== 'public') return expect(null, 4403)
      } else if (user === null) {
        return expect(null, 4403)
      }
      state.acked = true
      state.user = user
      return expect({ type: 'connection_ack' }, null)
    }
    case 'ping': return expect(message.payload ? { type: 'pong', payload: (actual: unknown) => JSON.stringify(actual) === JSON.stringify(message.payload) } : { type: 'pong' }, null)
    case 'pong': return expect(null, null)
    case 'complete': return expect(null, null)
    case 'subscribe': {
      const id = message.id as string
      // Before the ack: 4403 `Forbidden`, as Directus closes it (graphql-ws alone says 4401).
      if (!state.acked) return expect(null, 4403)
      // A subscription with that id may still be running (4409), or have ended already.
      if (closed?.code === 4409 && state.ids.has(id)) return expect(null, 4409)
      state.ids.add(id)
      return expect(null, null)
    }
    default: // connection_ack, next, error: a server's messages, which the adapter closes as unreadable
      return expect(null, 4400)
  }
}

/** Every frame on /graphql, whenever it came: a graphql-transport-ws server message, answering what was asked. */
function checkGqlFrame (state: GqlState, received: unknown): string | null {
  if (!isObject(received) || typeof received.type !== 'string' || !serverTypes.has(received.type)) return 'not a graphql-transport-ws server message'
  try {
    validateMessage(received)
  } catch (err) {
    return (err as Error).message
  }
  if (received.type === 'next' || received.type === 'error' || received.type === 'complete') {
    if (!state.ids.has(received.id as string)) return `an answer for an id never subscribed: ${short(received.id)}`
  }
  if (received.type === 'next') {
    const data = (received.payload as { data?: unknown }).data
    if (isObject(data) && 'me' in data && data.me !== state.user) return `me is ${short(data.me)}, the socket's user is ${state.user}`
  }
  return null
}

interface GqlRun {
  preInit: FrameSpec[]
  /** Public mode: whether the socket's own connection_init carries the valid token. */
  authed: boolean
  frames: FrameSpec[]
}

const isAsyncAnswer = (frame: unknown) => isObject(frame) && (frame.type === 'next' || frame.type === 'error' || frame.type === 'complete')

/**
 * One fast-check run on /graphql, in lockstep: each frame is followed by a sentinel ping and waits for its pong (or a
 * close), so each synchronous answer and close belongs to its frame; operation results may come later, and are
 * checked whenever they come. The first socket gets the pre-init frames before any connection_init; every socket
 * then a valid connection_init unless one was accepted, then the frames; a closed socket is replaced.
 */
async function gqlRun (server: Server, mode: AuthMode, run: GqlRun): Promise<number> {
  const { secrets } = server
  const preInit = [...run.preInit]
  const pending = [...run.frames]
  let fuzzed = 0
  while (preInit.length > 0 || pending.length > 0) {
    const sock = await Sock.open(server.url('/graphql'), 'graphql-transport-ws')
    const state: GqlState = { mode, initSeen: false, acked: false, user: null, ids: new Set() }
    let step = 0
    const send = async (spec: FrameSpec, fuzz: boolean) => {
      const frame = render(spec, secrets)
      const from = sock.received.length
      sock.send(frame)
      sock.send(gqlSentinel(step))
      const sentinel = step++
      await sock.until(() => sock.received.slice(from).some(f => isGqlSentinel(f, sentinel)), 'sentinel pong')
      const replies = sock.received.slice(from).filter(f => !isGqlSentinel(f, sentinel) && !isAsyncAnswer(f))
      const problem = checkGql(state, frame, replies, sock.closed, secrets)
      if (problem) {
        throw new Error(`${mode} /graphql, ${fuzz ? 'fuzz' : 'own'} frame ${short(frame.data)} (binary: ${frame.binary}, ` +
          `acked: ${state.acked}): ${problem}; replies ${short(replies)}, close ${short(sock.closed)}`)
      }
      if (fuzz) fuzzed++
    }
    while (preInit.length > 0 && sock.closed === null && !state.initSeen) await send(preInit.shift()!, true)
    if (sock.closed === null && !state.initSeen) {
      const token = mode === 'handshake' || run.authed
      await send(text(token ? '{"type":"connection_init","payload":{"access_token":"@@access@@"}}' : '{"type":"connection_init"}'), false)
      if (!state.acked) throw new Error(`a valid connection_init was refused: ${short(sock.closed)}`)
    }
    while (pending.length > 0 && sock.closed === null) await send(pending.shift()!, true)
    if (sock.closed === null && state.acked) {
      // The last word on the accountability: `me` is the socket's user.
      state.ids.add('\u0000final')
      sock.send(JSON.stringify({ type: 'subscribe', id: '\u0000final', payload: { query: '{ me }' } }))
      const done = (f: unknown) => isObject(f) && f.id === '\u0000final' && f.type === 'complete'
      await sock.until(() => sock.received.some(done), '`me` result')
      if (sock.closed === null && !sock.received.some(f => isObject(f) && f.id === '\u0000final' && f.type === 'next')) {
        throw new Error('the final `me` query had no result')
      }
    }
    await sock.close()
    if (sock.binaryReceived) throw new Error('the server sent a binary frame on /graphql')
    tally(server, sock.received, sock.closed)
    for (const received of sock.received) {
      const problem = checkGqlFrame(state, received)
      if (problem) throw new Error(`${mode} /graphql: ${problem}: ${short(received)}`)
    }
    if (sock.received.filter(f => isObject(f) && f.type === 'connection_ack').length > 1) throw new Error('acknowledged twice')
    assertNoCrash()
  }
  return fuzzed
}

t.test('/graphql: random and malformed frames before and after connection_init', async t => {
  const modes: AuthMode[] = ['public', 'handshake']
  const numRuns = Math.ceil(framesPerEndpoint / modes.length / runLength.minLength)
  let total = 0
  for (const mode of modes) {
    const srv = await server(t, { graphql: { auth: mode, schema } })
    let fuzzed = 0
    const run = fc.record({
      preInit: fc.array(preInitFrame, { maxLength: 4 }),
      authed: fc.boolean(),
      frames: fc.array(gqlFrame, runLength)
    })
    await fc.assert(fc.asyncProperty(run, async (spec) => {
      fuzzed += await gqlRun(srv, mode, spec)
    }), { seed, numRuns })
    await drained(srv.app)
    for (const line of srv.errors) t.fail(`unexpected error logged: ${line}`)
    t.comment(`${mode}: ${fuzzed} frames; answers ${summary(srv.stats)}`)
    total += fuzzed
  }
  t.ok(total >= framesPerEndpoint, `${total} frames on /graphql`)
  t.same(crashes, [], 'no crash, no unhandled rejection')
})
