// Type tests of the GraphQL options: checked by `tsc --noEmit` (npm test), never run.
import Fastify from 'fastify'
import { expectTypeOf } from 'expect-type'
import { buildSchema, type GraphQLSchema } from 'graphql'
import realtime, {
  type Accountability, type GraphqlContext, type GraphqlEndpointOptions, type RealtimeConnection
} from '../lib/index.js'

const app = Fastify()
const schema = buildSchema('type Query { hello: String }')

await app.register(realtime, {
  secret: 's',
  graphql: {
    auth: 'public',
    schema,
    context (accountability, connection) {
      expectTypeOf(accountability).toEqualTypeOf<Accountability>()
      expectTypeOf(connection).toEqualTypeOf<RealtimeConnection>()
      return { tenant: 'acme' }
    },
    queryTokenLimit: 1000,
    introspection: false
  }
})
await app.register(realtime, { graphql: { schema: async (accountability) => accountability.admin ? schema : schema } })
await app.register(realtime, { graphql: false })

// @ts-expect-error: the schema is a GraphQLSchema, not SDL
await app.register(realtime, { graphql: { schema: 'type Query { hello: String }' } })
// @ts-expect-error: the token limit is a number
await app.register(realtime, { graphql: { schema, queryTokenLimit: '5000' } })

expectTypeOf<GraphqlContext['accountability']>().toEqualTypeOf<Accountability>()
expectTypeOf<NonNullable<GraphqlEndpointOptions['schema']>>()
  .toEqualTypeOf<GraphQLSchema | ((accountability: Accountability) => GraphQLSchema | Promise<GraphQLSchema>)>()
