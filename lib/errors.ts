// One code per failure, shared by the wire frame, the HTTP error and the boot error.
import createError from '@fastify/error'
import type { WireErrorCode } from '../types/index.js'

export const messages = {
  handshakeFailed: 'Authentication handshake failed.',
  authFailed: 'Authentication failed.',
  tokenExpired: 'Token expired.',
  sessionRevoked: 'Session revoked.',
  authTimeout: 'Authentication timed out.',
  unparsable: 'Unable to parse the incoming message.',
  forbidden: "You don't have permission to access this.",
  invalidCredentials: 'Invalid user credentials.',
  serviceUnavailable: 'Service unavailable.',
  internal: 'An unexpected error occurred.'
} as const

/** An error the application (or the plugin) answers a message with: rendered as an error frame. */
export class RealtimeError extends Error {
  readonly code: WireErrorCode
  constructor (code: WireErrorCode, message: string) {
    super(message)
    this.name = 'RealtimeError'
    this.code = code
  }
}

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

/** The REQUESTS_EXCEEDED message, the same on a socket and over HTTP. */
export function requestsExceeded (retryAfterMs: number): string {
  return `Too many requests, retry after ${retryAfterMs}ms.`
}

/** The Directus-style HTTP error body. */
export function httpErrorBody (code: WireErrorCode, message: string) {
  return { errors: [{ message, extensions: { code } }] }
}

export const InvalidConfigError = createError<[string]>('FST_REALTIME_INVALID_CONFIG', 'Invalid configuration: %s')
