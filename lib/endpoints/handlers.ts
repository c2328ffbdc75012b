// The application's message handlers on a JSON endpoint: checked once at registration, each with the schema its
// messages must match before it is called, validated by the app's own validator compiler as Fastify validates a body.
import type { FastifyRequest } from 'fastify'
import { InvalidConfigError } from '../errors.js'
import { RepeatedFailures } from '../repeated-failures.js'
import type {
  MessageHandler, MessageSchema, RealtimeMessage, ReservedMessageType, ValidatedMessageHandler
} from '../../types/index.js'

/**
 * A message type's handler, the schema its messages must match when it has one, and its failures: a handler that
 * throws on what a client sends (a field it reads without checking) would log a line per frame for any client.
 */
export interface HandlerEntry {
  handler: MessageHandler
  schema?: MessageSchema
  failures: RepeatedFailures
}

const reserved: readonly string[] = ['auth', 'ping', 'pong'] satisfies ReservedMessageType[]

/**
 * An endpoint's handlers by type, checked at registration: a handler for a type the plugin answers itself would never
 * be called, and a malformed one would fail only when its first message came, so either fails boot, naming it.
 */
export function handlerTable (
  handlers: Readonly<Record<string, MessageHandler | ValidatedMessageHandler>>,
  option: string
): Map<string, HandlerEntry> {
  const table = new Map<string, HandlerEntry>()
  for (const [type, entry] of Object.entries(handlers)) {
    if (reserved.includes(type)) {
      throw new InvalidConfigError(`${option}.${type}: the plugin answers "${type}" messages itself (and "${reserved.join('", "')}"); give the handler another type`)
    }
    const failures = new RepeatedFailures('realtime message handler failed')
    if (typeof entry === 'function') {
      table.set(type, { handler: entry, failures })
    } else if (typeof entry?.handler === 'function' && typeof entry.schema === 'object' && entry.schema !== null) {
      table.set(type, { handler: entry.handler, schema: entry.schema, failures })
    } else {
      throw new InvalidConfigError(`${option}.${type} must be a function, or { schema, handler } with a schema object and a function`)
    }
  }
  return table
}

/** What Fastify's validation functions answer: Ajv's true or false (with `errors`), or a custom compiler's result. */
type Validated = boolean | { error?: Error | SchemaError[], value?: unknown } | PromiseLike<unknown> | undefined
interface SchemaError { instancePath?: string, message?: string }

/** A validation error as the client reads it: the JSON pointer of the failing value, and what is wrong with it. */
const describe = ({ instancePath, message = 'is invalid' }: SchemaError) =>
  `${instancePath ? `"${instancePath}"` : 'The message'} ${message}`

/**
 * Validates a message against its handler's schema with the validator compiler of the endpoint's route (the app's
 * `setValidatorCompiler`, or Fastify's Ajv built from the app's `ajv` options, with its shared schemas): compiled on
 * the first message of the type, then cached by Fastify for the route. Resolves the message the handler gets (Ajv may
 * coerce values and add defaults in place; a custom compiler may hand back a parsed value), or what is wrong with it.
 * A schema the compiler refuses throws, as a crashing handler would.
 */
export function validateMessage (
  request: FastifyRequest,
  schema: MessageSchema,
  message: RealtimeMessage
): { message: RealtimeMessage } | { problem: string } {
  const validate = request.compileValidationSchema(schema as Record<string, unknown>)
  const result = validate(message) as Validated
  if (result === false) return { problem: `${(validate.errors ?? [{}]).map(describe).join(', ')}.` }
  if (typeof result !== 'object' || result === null) return { message }
  if ('then' in result) throw new TypeError('a message schema must validate synchronously ($async schemas are not supported)')
  if (result.error) {
    return { problem: Array.isArray(result.error) ? `${result.error.map(describe).join(', ')}.` : result.error.message }
  }
  return { message: 'value' in result ? result.value as RealtimeMessage : message }
}
