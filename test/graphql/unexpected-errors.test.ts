// The last line behind the bounds (lib/endpoints/graphql-unexpected.ts): what graphql-js throws, or puts among a
// result's errors, that is no GraphQLError answers its operation with `An unexpected error occurred.`, logged as a
// warning; graphql-ws took it for a broken hook (closing the socket 4500, an error logged) or failed to send it.
import t from 'tap'
import { buildSchema, GraphQLError, GraphQLObjectType, GraphQLSchema, parse, type ExecutionResult } from 'graphql'
import type { FastifyBaseLogger } from 'fastify'
import { build } from '../helpers.js'
import { GraphqlSocket } from '../hostile/graphql-socket.js'
import { operationRunners } from '../../lib/endpoints/graphql-unexpected.js'

const unexpected = [{ message: 'An unexpected error occurred.' }]

t.test('a schema graphql-js finds invalid: an error for the operation, a warning, the socket open', async t => {
  const lines: Array<{ level: number, msg: string, err?: { message: string }, reqId?: string }> = []
  // The constructor takes it; validation asserts it is valid, and throws a plain Error.
  const invalid = new GraphQLSchema({ query: new GraphQLObjectType({ name: 'Query', fields: {} }) })
  const { url } = await build(t, { graphql: { auth: 'public', schema: invalid } },
    { logger: { level: 'warn', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  const client = await GraphqlSocket.open(url('/graphql'))
  t.same(await client.result('1', '{ __typename }'), [{ id: '1', type: 'error', payload: unexpected }])
  t.same(await client.result('2', '{ __typename }'), [{ id: '2', type: 'error', payload: unexpected }], 'and the next')
  t.match(lines, [
    { level: 40, msg: 'a graphql operation failed inside graphql-js', err: { message: /Type Query must define one or more fields/ }, reqId: String },
    { level: 40 }
  ], 'a warning each, on the request\'s logger; nothing at error level')
  t.equal(lines.length, 2)
  await client.roundTrip()
  t.equal(client.client.ws.readyState, client.client.ws.OPEN, 'the socket stays open')
})

t.test('execute and subscribe: a throw, or a result error that is no GraphQLError, answers as one', async t => {
  const warned: unknown[] = []
  const log = { warn: (object: { err: unknown }) => { warned.push(object.err) } } as unknown as FastifyBaseLogger
  const runners = operationRunners(log)
  const schema = buildSchema(`
    input Filter { _and: [Filter], id: ID }
    type Query { items(filter: Filter): String, failing: String }
    type Subscription { items(filter: Filter): String }
  `)
  // Past the variables' nesting limit, as nothing but the runners would ever see them: graphql-js's input coercion
  // overflows the stack, and puts the RangeError among the result's errors.
  let deep: unknown = {}
  for (let level = 0; level < 10_000; level++) deep = { _and: [deep] }
  for (const [operation, run] of Object.entries(runners)) {
    const document = parse(`${operation === 'execute' ? 'query' : 'subscription'} ($f: Filter) { items(filter: $f) }`)
    warned.length = 0
    t.same(await run({ schema, document, variableValues: { f: deep } }), { errors: unexpected.map(({ message }) => new GraphQLError(message)) }, `${operation}: the overflow`)
    t.match(warned, [RangeError], 'logged')
    // graphql-js asserts the schema, with a plain Error, before it runs anything.
    const invalid = new GraphQLSchema({ query: new GraphQLObjectType({ name: 'Query', fields: {} }) })
    warned.length = 0
    t.same(await run({ schema: invalid, document }), { errors: unexpected.map(({ message }) => new GraphQLError(message)) }, `${operation}: a throw`)
    t.match(warned, [{ message: /must define one or more fields/ }], 'logged')
  }
  // What graphql-js answers itself passes as it is: a resolver's error is a GraphQLError already, a stream a stream.
  warned.length = 0
  const failing = (await runners.execute({
    schema,
    document: parse('{ failing }'),
    rootValue: { failing: () => { throw new Error('no') } }
  })) as ExecutionResult
  t.match(failing, { data: { failing: null }, errors: [{ message: 'no', path: ['failing'] }] })
  t.ok(failing.errors![0] instanceof GraphQLError)
  t.same(await runners.execute({ schema, document: parse('{ items }') }), { data: { items: null } })
  const stream = await runners.subscribe({
    schema,
    document: parse('subscription { items }'),
    rootValue: { items: async function * () { yield { items: 'one' } } }
  })
  t.ok(Symbol.asyncIterator in stream, 'a subscription\'s stream')
  const events: unknown[] = []
  for await (const event of stream as AsyncGenerator<ExecutionResult>) events.push(event)
  t.same(events, [{ data: { items: 'one' } }])
  t.same(warned, [], 'nothing logged')
})
