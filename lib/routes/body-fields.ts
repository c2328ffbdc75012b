// The body of an auth route, checked by the plugin itself rather than by a route schema: an app's validator compiler
// (a zod or TypeBox type provider) would be handed JSON Schema it cannot read, and its OpenAPI transform would fail on
// it; Fastify's default Ajv coerces `["pw"]` or `123` into a string, which would reach the authenticator.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { replyWithFailure } from '../errors.js'
import { tooLong } from '../auth/credential-bounds.js'

/** A string field of a body: whether it must be there, must not be empty, its longest, and the values it may take. */
export interface BodyField {
  name: string
  required?: boolean
  nonEmpty?: boolean
  maxLength?: number
  oneOf?: readonly string[]
}

/**
 * A preValidation hook answering 400 INVALID_PAYLOAD: naming the field for one that is not a string (or is empty where
 * it must not be, or longer than its longest), `Invalid payload.` for a body that is no JSON object, a field missing,
 * or a value not among its own.
 */
export function bodyFields (fields: readonly BodyField[]) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const body = request.body
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return invalid(reply)
    const values = body as Record<string, unknown>
    for (const { name, nonEmpty, maxLength = Infinity } of fields) {
      const value = values[name]
      if (typeof value === 'string' && value.length > maxLength) return replyWithFailure(reply, { code: 'INVALID_PAYLOAD', problem: tooLong(name, maxLength) })
      if (value === undefined || (typeof value === 'string' && !(nonEmpty && value === ''))) continue
      return replyWithFailure(reply, { code: 'INVALID_PAYLOAD', problem: `"${name}" must be a ${nonEmpty ? 'non-empty ' : ''}string.` })
    }
    for (const { name, required, oneOf } of fields) {
      const value = values[name] as string | undefined
      if (value === undefined ? required : oneOf !== undefined && !oneOf.includes(value)) return invalid(reply)
    }
  }
}

function invalid (reply: FastifyReply) {
  return replyWithFailure(reply, { code: 'INVALID_PAYLOAD', problem: 'Invalid payload.' })
}
