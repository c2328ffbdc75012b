// An operation's id (lib/endpoints/graphql-operation-ids.ts): free for the client at its `complete`, as the protocol
// says, however long graphql-ws takes to run the operation out. A `subscribe` reusing it at once runs, alone under its
// id, once the first has ended; nothing of the first is sent after the client's `complete`.
import { EventEmitter, on } from 'node:events'
import t from 'tap'
import WebSocket from 'ws'
import { GraphQLObjectType, GraphQLSchema, GraphQLString } from 'graphql'
import { createClient } from 'graphql-ws'
import { ticks } from '../../example/schema.js'
import { build } from '../helpers.js'
import type { GraphqlContext } from '../../lib/index.js'
import { GraphqlSocket, type Frame } from '../hostile/graphql-socket.js'

/** A schema whose `slow` query answers when `finish` is called; `tick` counts the subscriptions it started. */
function schemaOf () {
  const notices = new EventEmitter()
  let finish!: () => void
  const finished = new Promise<string>(resolve => { finish = () => resolve('first') })
  const started = { tick: 0 }
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({
      name: 'Query',
      fields: {
        hello: { type: GraphQLString, resolve: () => 'world' },
        slow: { type: GraphQLString, resolve: () => finished }
      }
    }),
    mutation: new GraphQLObjectType({ name: 'Mutation', fields: { touch: { type: GraphQLString, resolve: () => 'touched' } } }),
    subscription: new GraphQLObjectType({
      name: 'Subscription',
      fields: {
        tick: { type: GraphQLString, subscribe: () => { started.tick++; return ticks(5) }, resolve: () => 'tick' },
        // Its source ends at once when asked to.
        wait: { type: GraphQLString, subscribe: () => ticks(60_000), resolve: () => 'wait' },
        // Paused at an `await` its signal ends.
        notice: {
          type: GraphQLString,
          subscribe: async function * (_root: unknown, _args: unknown, context: GraphqlContext) {
            for await (const [notice] of on(notices, 'notice', { signal: context.signal })) yield notice
          },
          resolve: (value: unknown) => value
        },
        // Paused at an `await` nothing ends: its source never stops.
        stuck: {
          type: GraphQLString,
          subscribe: async function * () { await new Promise(() => {}); yield 'never' },
          resolve: () => 'stuck'
        }
      }
    })
  })
  return { schema, finish, started }
}

const subscribe = (id: string, query: string): Frame => ({ id, type: 'subscribe', payload: { query } })
const complete = (id: string): Frame => ({ id, type: 'complete' })
const ticked = (id: string): Frame => ({ id, type: 'next', payload: { data: { tick: 'tick' } } })
const ticking = (socket: GraphqlSocket, id: string, count: number) =>
  socket.until(() => (socket.frames.get(id) ?? []).length >= count)

for (const [first, source] of [['wait', 'ends at once'], ['notice', 'ends at its signal'], ['stuck', 'never ends']]) {
  t.test(`a subscription whose source ${source}, completed and subscribed again under its id in one read: the new one runs, and nothing else comes for the id`, async t => {
    const { schema } = schemaOf()
    const { url } = await build(t, { graphql: { auth: 'public', schema } })
    const client = await GraphqlSocket.open(url('/graphql'))
    client.subscribe('x', `subscription { ${first} }`)
    await client.roundTrip()
    client.atOnce(complete('x'), subscribe('x', 'subscription { tick }'))
    t.ok(await ticking(client, 'x', 3), 'it ticks')
    t.same(client.frames.get('x')!.slice(0, 3), [ticked('x'), ticked('x'), ticked('x')], 'no stray complete, no error')
    t.equal(client.client.ws.readyState, client.client.ws.OPEN, 'the socket stays open')
  })
}

t.test('the graphql-ws client naming its operations: unsubscribing and subscribing again at once under one id', async t => {
  const { schema } = schemaOf()
  const { url } = await build(t, { graphql: { auth: 'public', schema } })
  const client = createClient({ url: url('/graphql'), webSocketImpl: WebSocket, retryAttempts: 0, generateID: () => 'feed' })
  t.teardown(() => client.dispose())
  const ended: string[] = []
  const sink = (name: string, next: () => void, end = () => {}) => ({
    next,
    error: (err: unknown) => { ended.push(`${name} failed: ${JSON.stringify(err)}`); end() },
    complete: () => { ended.push(`${name} completed`); end() }
  })
  let stop!: () => void
  await new Promise<void>(resolve => { stop = client.subscribe({ query: 'subscription { tick }' }, sink('first', resolve)) })
  stop()
  let count = 0
  await new Promise<void>(resolve => {
    client.subscribe({ query: 'subscription { tick }' }, sink('second', () => { if (++count === 3) resolve() }, resolve))
  })
  t.equal(count, 3, 'the second ticks')
  t.same(ended, ['first completed'], 'the first completed as the client stopped it; the second goes on')
})

t.test('a query subscribed, completed while it is prepared, and a mutation subscribed under its id in one read: only the mutation answers', async t => {
  const { schema } = schemaOf()
  // The server handles one frame a turn: the context function holds the query in onSubscribe while the others come.
  let prepare!: () => void
  const preparing = new Promise<void>(resolve => { prepare = resolve })
  t.teardown(() => prepare())
  const context = async () => { await preparing; return {} }
  const { url } = await build(t, { graphql: { auth: 'public', schema, context } })
  const client = await GraphqlSocket.open(url('/graphql'))
  client.atOnce(subscribe('q', '{ hello }'), complete('q'), subscribe('q', 'mutation { touch }'))
  await client.roundTrip()
  t.same(client.frames.get('q'), undefined, 'the mutation waits')
  prepare()
  await client.until(() => client.ended('q'))
  await client.roundTrip()
  t.same(client.frames.get('q'), [{ id: 'q', type: 'next', payload: { data: { touch: 'touched' } } }, { id: 'q', type: 'complete' }])
})

t.test('a subscribe reusing the id of a query the client completed runs once that query\'s resolvers have: the first\'s result goes to nobody', async t => {
  const { schema, finish } = schemaOf()
  const { url } = await build(t, { graphql: { auth: 'public', schema } })
  const client = await GraphqlSocket.open(url('/graphql'))
  client.subscribe('x', '{ slow }')
  client.complete('x') // its resolver still runs
  client.subscribe('x', 'subscription { tick }')
  await client.roundTrip()
  t.same(client.frames.get('x'), undefined, 'it waits')
  finish()
  t.ok(await ticking(client, 'x', 3))
  t.same(client.frames.get('x')!.slice(0, 3), [ticked('x'), ticked('x'), ticked('x')], 'then runs, alone under its id')
  t.equal(client.client.ws.readyState, client.client.ws.OPEN)
})

t.test('a subscribe waiting for its id, completed before it ran: it never runs, and the id is free', async t => {
  const { schema, finish, started } = schemaOf()
  const { url } = await build(t, { graphql: { auth: 'public', schema } })
  const client = await GraphqlSocket.open(url('/graphql'))
  client.subscribe('x', '{ slow }')
  client.complete('x')
  client.subscribe('x', 'subscription { tick }')
  client.complete('x')
  // The server has handled all four (one a turn) before the query ends.
  await client.roundTrip()
  finish()
  await client.roundTrip()
  await client.roundTrip()
  t.equal(started.tick, 0, 'it never ran')
  t.same(client.frames.get('x'), undefined, 'nothing was sent for the id')
  t.same(await client.result('x', '{ hello }'), [{ id: 'x', type: 'next', payload: { data: { hello: 'world' } } }, { id: 'x', type: 'complete' }])
})

t.test('a subscribe waiting for its id when its socket closes never runs', async t => {
  const { schema: operations, finish } = schemaOf()
  let schemas = 0
  const schema = () => { schemas++; return operations }
  const { url } = await build(t, { graphql: { auth: 'public', schema } })
  const client = await GraphqlSocket.open(url('/graphql'))
  client.subscribe('x', '{ slow }')
  client.complete('x')
  client.subscribe('x', 'subscription { tick }')
  await client.roundTrip()
  await client.client.close()
  finish()
  // The first runs out within this turn of the event loop (server and test share it).
  await new Promise(resolve => setImmediate(resolve))
  t.equal(schemas, 1, 'only the first asked for its schema')
})

t.test('subscribes waiting for their ids cost at most the max payload together: past it the socket closes 1008, as a backlog does', async t => {
  const { schema, finish } = schemaOf()
  const { url } = await build(t, { env: { WEBSOCKETS_MAX_PAYLOAD: '4096' }, graphql: { auth: 'public', schema } })
  const client = await GraphqlSocket.open(url('/graphql'))
  const closed = new Promise<[number, string]>(resolve => client.client.ws.once('close', (code, reason) => resolve([code, reason.toString()])))
  // Each waiting subscribe about 1.5 KB: two fit in 4 KiB, the third does not.
  const padded = (n: number) => `subscription { tick } # ${'x'.repeat(1_500)} ${n}`
  for (const id of ['a', 'b', 'c']) {
    client.subscribe(id, '{ slow }')
    client.complete(id)
  }
  client.subscribe('a', padded(1))
  client.subscribe('b', padded(2))
  await client.roundTrip()
  t.equal(client.client.ws.readyState, client.client.ws.OPEN, 'two wait')
  client.subscribe('c', padded(3))
  t.same(await closed, [1008, 'Too many frames queued.'])
  finish()
})
