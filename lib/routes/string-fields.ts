// The string fields of a route's body, checked before its schema: Fastify's default Ajv coerces types
// (`coerceTypes: 'array'`), so `["pw"]` or `123` would pass for a string and reach the authenticator; an app's own
// Ajv options may differ again. The schema stays the one documented (@fastify/swagger).
import type { FastifyReply, FastifyRequest } from 'fastify'
import { replyWithFailure } from '../errors.js'

interface BodySchema { properties: Record<string, { type: string, minLength?: number }> }

/** A preValidation hook answering 400 INVALID_PAYLOAD, naming the field, for a string field that is not one. */
export function stringFields (schema: BodySchema) {
  const fields = Object.entries(schema.properties)
    .filter(([, property]) => property.type === 'string')
    .map(([field, property]) => ({ field, nonEmpty: (property.minLength ?? 0) > 0 }))
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const body = request.body as Record<string, unknown> | null | undefined
    if (typeof body !== 'object' || body === null) return // no object at all: the schema's to refuse
    for (const { field, nonEmpty } of fields) {
      const value = body[field]
      if (value === undefined || (typeof value === 'string' && !(nonEmpty && value === ''))) continue
      return replyWithFailure(reply, { code: 'INVALID_PAYLOAD', problem: `"${field}" must be a ${nonEmpty ? 'non-empty ' : ''}string.` })
    }
  }
}
