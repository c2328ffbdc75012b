// Turning a `subscribe` message into what graphql executes: the document parsed within the token limit, the schema
// for the socket's accountability, validation (without introspection when it is off), and the context.
import {
  NoSchemaIntrospectionCustomRule, parse, specifiedRules, validate,
  type DocumentNode, type ExecutionArgs, type GraphQLError
} from 'graphql'
import type { SubscribePayload } from 'graphql-ws'
import type { GraphqlContext, GraphqlEndpointOptions, RealtimeConnection } from '../../types/index.js'

export interface OperationOptions {
  schema: NonNullable<GraphqlEndpointOptions['schema']>
  context: GraphqlEndpointOptions['context']
  queryTokenLimit: number
  introspection: boolean
}

export type PrepareOperation =
  (connection: RealtimeConnection, payload: SubscribePayload) => Promise<ExecutionArgs | readonly GraphQLError[]>

export function operationPreparer (options: OperationOptions): PrepareOperation {
  const rules = options.introspection ? specifiedRules : [...specifiedRules, NoSchemaIntrospectionCustomRule]

  return async function prepare (connection, payload) {
    let document: DocumentNode
    try {
      // The token limit stops the parser itself, before a huge document costs more than its bytes.
      document = parse(payload.query, { maxTokens: options.queryTokenLimit })
    } catch (err) {
      return [err as GraphQLError] // parse throws only GraphQLErrors: syntax, or the token limit
    }
    // The accountability the operation started with, for the schema and for every resolver it runs.
    const { accountability } = connection
    const schema = typeof options.schema === 'function' ? await options.schema(accountability) : options.schema
    const errors = validate(schema, document, rules)
    if (errors.length > 0) return errors
    const extension = options.context ? await options.context(accountability, connection) : undefined
    const contextValue: GraphqlContext = { ...extension, accountability }
    return {
      schema,
      document,
      operationName: payload.operationName,
      variableValues: payload.variables,
      contextValue
    }
  }
}
