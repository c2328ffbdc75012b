// The last line behind the endpoint's bounds: what graphql-js throws, or puts among a result's errors, that is no
// GraphQLError (a stack overflow a bound missed, a schema graphql-js finds invalid) answers its operation as an error.
// graphql-ws would take it for a broken hook, or fail on it (`toJSON`): the socket closed 4500 and an error logged, per
// frame, whoever the client. A warning: the client may have caused it; an operator may still want to know.
import { execute, GraphQLError, subscribe, type ExecutionArgs, type ExecutionResult } from 'graphql'
import type { FastifyBaseLogger } from 'fastify'
import { RealtimeError } from '../errors.js'

const unexpected = RealtimeError.of({ code: 'INTERNAL_SERVER_ERROR' }).message

/** What an operation answers for `err`: itself if a GraphQLError, otherwise the table's message, the error logged. */
export function operationError (err: unknown, log: FastifyBaseLogger): GraphQLError {
  if (err instanceof GraphQLError) return err
  log.warn({ err }, 'a graphql operation failed inside graphql-js')
  return new GraphQLError(unexpected)
}

/** A result whose every error graphql-ws can send. */
function sendable (result: ExecutionResult, log: FastifyBaseLogger): ExecutionResult {
  const { errors } = result
  if (errors === undefined || errors.every(error => error instanceof GraphQLError)) return result
  return { ...result, errors: errors.map(error => operationError(error, log)) }
}

/** graphql-js's `execute` and `subscribe` for graphql-ws, whose throws and results answer their operation. */
export function operationRunners (log: FastifyBaseLogger) {
  return {
    async execute (args: ExecutionArgs): Promise<ExecutionResult> {
      try {
        return sendable(await execute(args), log)
      } catch (err) {
        return { errors: [operationError(err, log)] }
      }
    },
    async subscribe (args: ExecutionArgs): Promise<AsyncGenerator<ExecutionResult> | ExecutionResult> {
      try {
        const result = await subscribe(args)
        return Symbol.asyncIterator in result ? result : sendable(result, log)
      } catch (err) {
        return { errors: [operationError(err, log)] }
      }
    }
  }
}
