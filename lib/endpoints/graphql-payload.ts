// What graphql-ws keeps of a client's messages: a `subscribe` as parsed, whole, while its operation runs, and the
// `connection_init` payload for the socket's life. Parsed JSON costs far more than its bytes (an empty object, 3 bytes
// with its comma, takes about 65 of heap): 64 KiB of `{}`s anywhere in a `subscribe` (undeclared variables, extensions,
// a field of no meaning) kept 1.4 MiB per subscription, 140 MiB for a public socket's 100, and in a `connection_init`
// 1.4 MiB per socket (docs/hostile-clients.md). Only what an operation runs with is kept, as the client sent it.
import type { OperationDefinitionNode } from 'graphql'
import type { SubscribePayload } from 'graphql-ws'

/** A `subscribe` as graphql-ws reads it: its type, id and payload; anything else is nobody's. */
const messageFields = new Set(['type', 'id', 'payload'])

/** The payload fields the plugin runs an operation with (`extensions` is read by nothing the plugin gives graphql-ws). */
const payloadFields = new Set(['query', 'operationName', 'variables'])

/**
 * A `subscribe`'s text as graphql-ws gets it: as sent, or, when the message has fields besides its type, id and payload,
 * written again without them (a client's fields of no meaning cost a second serialisation, nobody else anything).
 */
export function subscribeText (message: object, text: string): string {
  const fields = Object.keys(message)
  if (fields.every(field => messageFields.has(field))) return text
  const { type, id, payload } = message as Record<string, unknown>
  return JSON.stringify({ type, id, payload })
}

/**
 * Leaves in a `subscribe`'s payload, which graphql-ws keeps while the operation runs, only the query, the operation
 * name and the variables the operation declares; returns those variables.
 */
export function keepWhatRuns (payload: SubscribePayload, operation: OperationDefinitionNode): SubscribePayload['variables'] {
  const fields = payload as unknown as Record<string, unknown>
  for (const field of Object.keys(fields)) if (!payloadFields.has(field)) delete fields[field]
  const given = payload.variables
  if (given == null) return given
  // Own fields only, and defined as data (a variable may be named `__proto__`).
  const variables = Object.fromEntries((operation.variableDefinitions ?? [])
    .map(definition => definition.variable.name.value)
    .filter(name => Object.hasOwn(given, name))
    .map(name => [name, given[name]]))
  fields.variables = variables
  return variables
}
