// Directus-compatible HTTP auth routes (PROTOCOL.md section 7), so the Directus SDK's `authentication('json')`
// works and a refresh token is one session whether it is used over HTTP or on a socket.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Authenticator, AuthFailure, AuthResult } from '../auth/authenticator.js'
import { refusal, replyWithFailure } from '../errors.js'

const loginBody = {
  type: 'object',
  required: ['email', 'password'],
  properties: {
    email: { type: 'string', minLength: 1 },
    password: { type: 'string', minLength: 1 },
    otp: { type: 'string' },
    mode: { type: 'string', enum: ['json'] }
  }
} as const

const refreshBody = {
  type: 'object',
  required: ['refresh_token'],
  properties: {
    refresh_token: { type: 'string', minLength: 1 },
    mode: { type: 'string', enum: ['json'] }
  }
} as const

function sendFailure (reply: FastifyReply, failure: AuthFailure) {
  return replyWithFailure(reply, refusal(failure, 'INVALID_CREDENTIALS'))
}

function sendTokens (reply: FastifyReply, result: AuthResult) {
  if (!result.ok) return sendFailure(reply, result)
  return reply.send({ data: result.issued })
}

export function authRoutes (fastify: FastifyInstance, authenticator: Authenticator, prefix: string): void {
  // Directus's shape for bad bodies too: 400 with INVALID_PAYLOAD, not Fastify's default.
  const schemaErrorFormatter = () => Object.assign(new Error('Invalid payload.'), { statusCode: 400 })
  const errorHandler = (error: { statusCode?: number, message: string }, request: FastifyRequest, reply: FastifyReply) => {
    if (error.statusCode && error.statusCode < 500) {
      // The client's fault (bad body, wrong content type, too large): say what, with Fastify's status.
      return replyWithFailure(reply, { code: 'INVALID_PAYLOAD', problem: error.message, status: error.statusCode })
    }
    request.log.error({ err: error }, 'auth route failed')
    return replyWithFailure(reply, { code: 'INTERNAL_SERVER_ERROR' })
  }

  fastify.register(async (routes) => {
    routes.setSchemaErrorFormatter(schemaErrorFormatter)
    routes.setErrorHandler(errorHandler)

    routes.post<{ Body: { email: string, password: string, otp?: string } }>('/login', { schema: { body: loginBody } },
      async (request, reply) => {
        const { email, password, otp } = request.body
        const credential = otp === undefined ? { email, password } : { email, password, otp }
        return sendTokens(reply, await authenticator.login(credential, request.ip))
      })

    routes.post<{ Body: { refresh_token: string } }>('/refresh', { schema: { body: refreshBody } },
      async (request, reply) => sendTokens(reply, await authenticator.refresh(request.body.refresh_token)))

    routes.post<{ Body: { refresh_token: string } }>('/logout', { schema: { body: refreshBody } },
      async (request, reply) => {
        const result = await authenticator.logout(request.body.refresh_token)
        return result.ok ? reply.code(204).send() : sendFailure(reply, result)
      })
  }, { prefix })
}
