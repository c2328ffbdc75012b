// Turning a `subscribe` message into what graphql executes: a slot among the socket's operations in flight, the
// document parsed within the token and nesting limits, the schema for the socket's accountability, validation (the
// cost bounds, then graphql-js's rules, without introspection when it is off), and the context.
import {
  GraphQLError, NoSchemaIntrospectionCustomRule, getOperationAST, parse, specifiedRules, validate,
  type DocumentNode, type ExecutionArgs, type GraphQLSchema
} from 'graphql'
import type { FastifyBaseLogger } from 'fastify'
import type { SubscribePayload } from 'graphql-ws'
import type { GraphqlContext, GraphqlEndpointOptions, RealtimeConnection } from '../../types/index.js'
import type { Connection } from '../connection/connection.js'
import { costCheck, type CostLimits } from './graphql-cost.js'
import { keepWhatRuns } from './graphql-payload.js'
import { documentTooDeep, nestingLimit, variablesTooDeep } from './graphql-nesting.js'
import { NoSkipAtSubscriptionRoot } from './graphql-subscription-root.js'
import { operationError } from './graphql-unexpected.js'
import { introspectionDepthRule } from './graphql-version.js'

export interface OperationOptions extends CostLimits {
  schema: NonNullable<GraphqlEndpointOptions['schema']>
  context: GraphqlEndpointOptions['context']
  queryTokenLimit: number
  /** Operations in flight on one socket. */
  operationLimit: number
  introspection: boolean
}

/**
 * The operations in flight on one socket, by id, until each has ended: a query once its resolvers have run (the
 * client's `complete` cannot stop them), a subscription at the client's `complete` or the socket's close
 * (graphql-subscription-end.ts). A `subscribe` reusing an id reaches here only once its first operation has ended
 * (graphql-operation-ids.ts). An object: the slot of a subscription whose id is free again, and whose source has not
 * stopped yet. Each with the controller of its context's `signal`.
 */
export type OperationsInFlight = Map<string | object, AbortController>

type Prepared = ExecutionArgs | readonly GraphQLError[]

/**
 * What a step of graphql-js's gives, or its throw as the operation's errors: a GraphQLError as it is, any other (a
 * stack overflow a bound missed) as the last line has it (graphql-unexpected.ts).
 */
function guarded<T> (log: FastifyBaseLogger, step: () => T | readonly GraphQLError[]): T | readonly GraphQLError[] {
  try {
    return step()
  } catch (err) {
    return [operationError(err, log)]
  }
}

const refusal = (prepared: object): prepared is readonly GraphQLError[] => Array.isArray(prepared)

export type PrepareOperation =
  (connection: Connection, id: string, payload: SubscribePayload, inFlight: OperationsInFlight) => Promise<Prepared>

export function operationPreparer (options: OperationOptions): PrepareOperation {
  // Fails boot on a graphql before 16.9: the cost bounds leave introspection to this rule.
  const introspectionDepth = introspectionDepthRule()
  const cost = costCheck(options)
  const rules = [
    // Named, though every graphql that has it lists it in specifiedRules: validation runs it whatever a later graphql
    // lists there (17 also lists it apart, as a recommended rule).
    ...specifiedRules.filter(rule => rule !== introspectionDepth), introspectionDepth,
    NoSkipAtSubscriptionRoot, ...options.introspection ? [] : [NoSchemaIntrospectionCustomRule]
  ]
  const tooMany = [new GraphQLError(`Too many operations in flight: at most ${options.operationLimit} on one socket.`)]
  const ended = [new GraphQLError('The socket closed before the operation could run.')]
  // Worded like the cost bounds' refusals (graphql-cost.ts).
  const documentTooNested = [new GraphQLError(`Syntax Error: Query nesting limit of ${nestingLimit} exceeded.`)]
  const variablesTooNested = [new GraphQLError(`Variables nesting limit of ${nestingLimit} exceeded.`)]

  /** The document, or why it is refused: before graphql-js reads it, nesting as deep as its recursion can take. */
  function parsed (payload: SubscribePayload): DocumentNode | readonly GraphQLError[] {
    if (documentTooDeep(payload.query, options.queryTokenLimit)) return documentTooNested
    if (variablesTooDeep(payload.variables)) return variablesTooNested
    // The token limit stops the parser itself, before a huge document costs more than its bytes. Without locations:
    // every node's would keep the document's whole token list alive as long as a subscription runs, comments
    // included, which the limit does not count (64 KiB of `#` lines kept about 2 MB per operation). It throws
    // GraphQLErrors: syntax, or the token limit.
    return parse(payload.query, { maxTokens: options.queryTokenLimit, noLocation: true })
  }

  /** Why the document is refused for `schema`; none when it may run. */
  function refusals (schema: GraphQLSchema, document: DocumentNode, operationName: SubscribePayload['operationName']): readonly GraphQLError[] {
    // The cost bounds first: graphql-js's own rules validate only a document within them.
    const refused = cost(schema, document)
    if (refused.length > 0) return refused
    const errors = validate(schema, document, rules)
    if (errors.length > 0) return errors
    // graphql-ws refuses it after onSubscribe, where nothing gives its slot back: refused here, in graphql-ws's words.
    if (!getOperationAST(document, operationName)) return [new GraphQLError('Unable to identify operation')]
    return []
  }

  async function executionArgs (connection: RealtimeConnection, payload: SubscribePayload, signal: AbortSignal): Promise<Prepared> {
    const { log } = connection.request
    const document = guarded(log, () => parsed(payload))
    if (refusal(document)) return document
    // The accountability (and `onAuthenticate`'s context) the operation started with, for the schema and for every
    // resolver it runs. The app's schema and context functions are not guarded: their throw is the server's failure.
    const { accountability, context } = connection
    const schema = typeof options.schema === 'function' ? await options.schema(accountability) : options.schema
    const refused = guarded(log, () => refusals(schema, document, payload.operationName))
    if (refused.length > 0) return refused
    // graphql-ws keeps the payload as long as the operation runs: only what it runs with stays (graphql-payload.ts).
    const variableValues = keepWhatRuns(payload, getOperationAST(document, payload.operationName)!)
    const extension = options.context ? await options.context(accountability, connection) : undefined
    const contextValue: GraphqlContext = { ...context, ...extension, accountability, signal }
    return {
      schema,
      document,
      operationName: payload.operationName,
      variableValues,
      contextValue
    }
  }

  return async function prepare (connection, id, payload, inFlight) {
    // Counted before the first await: each subscribe of a burst sees every one before it.
    if (inFlight.size >= options.operationLimit) return tooMany
    const controller = new AbortController()
    inFlight.set(id, controller)
    let prepared = await executionArgs(connection, payload, controller.signal)
    // The credential it was asked under ended (expiry, revocation: the socket closes) while the app's schema or
    // context function ran: graphql-ws would still execute it, as that accountability. Nobody reads the error.
    if (connection.socket.readyState !== connection.socket.OPEN) prepared = ended
    // Refused, it never runs, and no onComplete will come. (A throw closes the socket 4500: no slot outlives it.)
    if (Array.isArray(prepared)) inFlight.delete(id)
    return prepared
  }
}
