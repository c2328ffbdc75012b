// One table for every failure the plugin tells a client (PROTOCOL.md section 8): per wire code its message, HTTP
// status and close codes. An adapter says which failure and where; the table says how. Boot errors are below it.
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import createError, { type FastifyErrorConstructor } from '@fastify/error'
import type { FastifyReply } from 'fastify'
import type { AuthFailure } from './auth/authenticator.js'
import { errorFrame, type Uid } from './endpoints/frames.js'
import type { RealtimeErrorCode, WireErrorCode } from '../types/index.js'

/** Websocket close codes the plugin uses (1xxx from RFC 6455, 4xxx from the Directus protocol). */
export const CloseCode = {
  Normal: 1000,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  TryAgainLater: 1013,
  Unauthorized: 4401,
  Forbidden: 4403,
  SubprotocolNotAcceptable: 4406,
  AuthTimeout: 4408,
  TooManyRequests: 4429
} as const

/** A failure to tell: its code, and what its message (or status) is made of where the table has no fixed one. */
export type Failure<C extends WireErrorCode = WireErrorCode> =
  C extends 'REQUESTS_EXCEEDED' ? { code: C, retryAfterMs: number }
    // `status`: over HTTP, the one Fastify gave the request's fault (a bad body 400, a wrong type 415).
    : C extends 'INVALID_PAYLOAD' ? { code: C, problem: string, status?: number }
      : { code: C }

interface Rule<F extends Failure> {
  /** The error frame's and the HTTP body's message. */
  message: string | ((failure: F) => string)
  /** The HTTP status; none for the failures only a socket hears. */
  status?: number | ((failure: F) => number)
  /** Retry-After seconds of an HTTP answer. */
  retryAfter?: (failure: F) => number
  /** The close code that follows the frame on a JSON socket past its handshake, unless the mode is public. */
  closes?: number
  /** When it ends a JSON socket's handshake: the close code, and the frame's code and message where they differ. */
  endsHandshake?: { closes: number, code?: WireErrorCode, message?: string }
  /** The close that tells it on a GraphQL socket, whose frames are graphql-transport-ws's only (reason: the message). */
  graphql?: { closes: number, reason?: string }
}

/** The failures an HTTP answer carries: the others only end a socket's credential. */
type HttpCode = Exclude<WireErrorCode, 'AUTH_REVOKED' | 'AUTH_TIMEOUT'>

/** The failures that end a GraphQL socket: a refused `connection_init`, or its credential ending. */
type GraphqlCode = 'AUTH_FAILED' | 'TOKEN_EXPIRED' | 'AUTH_REVOKED' | 'AUTH_TIMEOUT' | 'REQUESTS_EXCEEDED' | 'SERVICE_UNAVAILABLE'

/** A row per code, with a status where an HTTP answer carries it and a close where it ends a GraphQL socket. */
type Rules = {
  [C in WireErrorCode]: Rule<Failure<C>>
    & (C extends HttpCode ? Required<Pick<Rule<Failure<C>>, 'status'>> : unknown)
    & (C extends GraphqlCode ? Required<Pick<Rule<Failure<C>>, 'graphql'>> : unknown)
}

// Directus tells every way a handshake can fail alike; only the close code says whether time ran out.
const handshakeFailed = 'Authentication handshake failed.'
// graphql-ws's own words for a refused connection_init.
const forbidden = { closes: CloseCode.Forbidden, reason: 'Forbidden' }

export const failures: Rules = {
  AUTH_FAILED: {
    message: 'Authentication failed.',
    status: 401,
    closes: CloseCode.Unauthorized,
    endsHandshake: { closes: CloseCode.Unauthorized, message: handshakeFailed },
    graphql: forbidden
  },
  TOKEN_EXPIRED: { message: 'Token expired.', status: 401, graphql: forbidden },
  AUTH_REVOKED: { message: 'Session revoked.', graphql: forbidden },
  AUTH_TIMEOUT: {
    message: 'Authentication timed out.',
    closes: CloseCode.AuthTimeout,
    endsHandshake: { closes: CloseCode.AuthTimeout, code: 'AUTH_FAILED', message: handshakeFailed },
    graphql: { closes: CloseCode.AuthTimeout, reason: 'Connection initialisation timeout' }
  },
  INVALID_PAYLOAD: { message: ({ problem }) => problem, status: ({ status = 400 }) => status },
  INVALID_CREDENTIALS: { message: 'Invalid user credentials.', status: 401 },
  REQUESTS_EXCEEDED: {
    message: ({ retryAfterMs }) => `Too many requests, retry after ${retryAfterMs}ms.`,
    status: 429,
    retryAfter: ({ retryAfterMs }) => Math.ceil(retryAfterMs / 1000),
    endsHandshake: { closes: CloseCode.TooManyRequests },
    graphql: { closes: CloseCode.TooManyRequests }
  },
  FORBIDDEN: { message: "You don't have permission to access this.", status: 403 },
  SERVICE_UNAVAILABLE: {
    message: 'Service unavailable.',
    status: 503,
    // Every cause (a store down, a full password queue) passes within seconds.
    retryAfter: () => 1,
    endsHandshake: { closes: CloseCode.TryAgainLater },
    graphql: { closes: CloseCode.TryAgainLater }
  },
  INTERNAL_SERVER_ERROR: { message: 'An unexpected error occurred.', status: 500 }
}

// The table is typed row by row; TypeScript cannot follow a failure's code to its row by itself.
const ruleOf = (failure: Failure) => failures[failure.code] as Rule<Failure>

function messageOf (failure: Failure): string {
  const { message } = ruleOf(failure)
  return typeof message === 'string' ? message : message(failure)
}

/**
 * A refused credential as the client hears of it: `AUTH_FAILED` on a socket, `INVALID_CREDENTIALS` over HTTP, whatever
 * the cause (Directus's words); a limit or an outage keeps its own code, for the client to try again later.
 */
export function refusal<C extends 'AUTH_FAILED' | 'INVALID_CREDENTIALS'> (failure: AuthFailure, as: C) {
  const told = failure.code === 'REQUESTS_EXCEEDED' || failure.code === 'SERVICE_UNAVAILABLE' ? failure : { code: as }
  return told as Failure<C | 'REQUESTS_EXCEEDED' | 'SERVICE_UNAVAILABLE'>
}

/** Where a JSON socket hears of a failure: ending its handshake, past it, or in public mode (which no failure ends). */
export type SocketStage = 'handshake' | 'open' | 'public'

/** The error frame telling a failure, in answer to a message of `type`. */
export function failureFrame (failure: Failure, type: string, uid: Uid, stage: SocketStage) {
  const ending = stage === 'handshake' ? ruleOf(failure).endsHandshake : undefined
  return errorFrame(type, ending?.code ?? failure.code, ending?.message ?? messageOf(failure), uid)
}

/** The close code that follows a failure's frame on a JSON socket; none: the socket stays open. */
export function failureClose (failure: Failure, stage: SocketStage): number | undefined {
  const rule = ruleOf(failure)
  if (stage === 'handshake') return rule.endsHandshake?.closes
  return stage === 'open' ? rule.closes : undefined
}

/** The close code and reason ending a GraphQL socket for a failure. */
export function graphqlClose (failure: Failure<GraphqlCode>): [code: number, reason: string] {
  const { closes, reason } = ruleOf(failure).graphql!
  return [closes, reason ?? messageOf(failure)]
}

function statusOf (failure: Failure<HttpCode>): number {
  const status = ruleOf(failure).status!
  return typeof status === 'number' ? status : status(failure)
}

/** Directus's HTTP error body. */
function httpBody (failure: Failure) {
  return { errors: [{ message: messageOf(failure), extensions: { code: failure.code } }] }
}

/** Answers an HTTP request with a failure: its status, its Retry-After where it has one, and Directus's body. */
export function replyWithFailure (reply: FastifyReply, failure: Failure<HttpCode>): FastifyReply {
  const { retryAfter } = ruleOf(failure)
  if (retryAfter) reply.header('retry-after', retryAfter(failure))
  return reply.code(statusOf(failure)).send(httpBody(failure))
}

/**
 * Refuses an upgrade with a failure: its status and Directus's body, with no Retry-After (the connection limit cannot
 * say when a place frees up).
 */
export function refuseUpgrade (reply: FastifyReply, failure: Failure<HttpCode>): void {
  reply.code(statusOf(failure)).send(httpBody(failure))
}

/** The same refusal written on an upgrade's connection no route answers (the app closing), which it then ends. */
export function refuseUpgradeOn (socket: Duplex, failure: Failure<HttpCode>): void {
  // Node took its error listener off as it handed the socket over: a client's reset would be an uncaught error.
  socket.on('error', () => socket.destroy())
  const status = statusOf(failure)
  const body = JSON.stringify(httpBody(failure))
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
}

const realtimeErrorBrand = Symbol.for('fastify-realtime.RealtimeError')

/**
 * An error the application (or the plugin) answers a message with: rendered as an error frame with its code and
 * message. The code is one of the plugin's (`WireErrorCode`) or the application's own. Shaped as a `FastifyError`
 * (`code`, `statusCode`), so thrown from an HTTP route it answers with its status: the table's for the plugin's codes
 * (INVALID_CREDENTIALS 401), `options.statusCode` for the application's (none: 500). `@fastify/error` makes one class
 * per code; this one carries any code, so it is a class of its own.
 */
export class RealtimeError extends Error {
  /**
   * The package ships an ES module and a CommonJS copy, each with this class: an app mixing the two (a CommonJS library
   * of its handlers) throws one copy's error where the other checks. Either copy's is one, by a brand both share.
   */
  static [Symbol.hasInstance] (value: unknown): boolean {
    if (this !== RealtimeError) return Function.prototype[Symbol.hasInstance].call(this, value)
    return typeof value === 'object' && value !== null && realtimeErrorBrand in value
  }

  readonly code: RealtimeErrorCode
  readonly statusCode: number | undefined
  /**
   * Headers Fastify's error handler sends with the error's answer, as it does `http-errors`' and `@fastify/rate-limit`'s:
   * a failure of the table with a Retry-After (429, 503) has it, so an app's own route answers as the auth routes do.
   */
  readonly headers?: { 'retry-after': string }
  constructor (code: RealtimeErrorCode, message: string, options: { statusCode?: number, cause?: unknown } = {}) {
    super(message, 'cause' in options ? { cause: options.cause } : undefined)
    this.name = 'RealtimeError'
    this.code = code
    this.statusCode = options.statusCode ?? tableStatus(code)
  }

  /** The error of a failure of the table, with its message and its Retry-After. */
  static of (failure: Failure): RealtimeError {
    const error = new RealtimeError(failure.code, messageOf(failure))
    const { retryAfter } = ruleOf(failure)
    if (retryAfter) (error as { headers?: RealtimeError['headers'] }).headers = { 'retry-after': String(retryAfter(failure)) }
    return error
  }
}

// On the prototype: no own property of each error, nothing added to what serializers see.
Object.defineProperty(RealtimeError.prototype, realtimeErrorBrand, { value: true })

/** The HTTP status the table gives a code of the plugin's, whatever the failure's details. */
function tableStatus (code: RealtimeErrorCode): number | undefined {
  if (!Object.hasOwn(failures, code)) return undefined
  const { status } = failures[code as WireErrorCode] as Rule<Failure>
  return typeof status === 'function' ? status({ code } as Failure) : status
}

// Boot errors, made with @fastify/error as Fastify's own and its plugins' are: one class per code, `err.code` stable.
// Annotated with the imported interface: inferred, the declaration would name `createError.FastifyErrorConstructor`,
// which the published types cannot resolve under the `bundler` and `node10` module resolutions (TS2503).

/** An option or environment variable the plugin cannot use, named in the message; registration fails with it. */
export const InvalidConfigError: FastifyErrorConstructor<{ code: 'FST_REALTIME_INVALID_CONFIG', statusCode: 500 }, [problem: string]> =
  createError('FST_REALTIME_INVALID_CONFIG', 'Invalid configuration: %s', 500)
