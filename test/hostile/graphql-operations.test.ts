// Operations in flight (PROTOCOL.md section 11): at most `operationLimit` (default 100) per GraphQL socket; the
// excess get an `error` message for their id, the socket stays open, and an operation that ends gives its slot back.
import { EventEmitter, on } from 'node:events'
import t from 'tap'
import { GraphQLObjectType, GraphQLSchema, GraphQLString } from 'graphql'
import { referenceSchema, ticks } from '../../example/schema.js'
import { build } from '../helpers.js'
import { GraphqlSocket, type Frame } from './graphql-socket.js'

const tooMany = (limit: number) => [{ message: `Too many operations in flight: at most ${limit} on one socket.` }]

const operations = new GraphQLSchema({
  query: new GraphQLObjectType({ name: 'Query', fields: { hello: { type: GraphQLString, resolve: () => 'world' } } }),
  subscription: new GraphQLObjectType({
    name: 'Subscription',
    fields: {
      // Runs until the client completes it.
      wait: { type: GraphQLString, subscribe: () => ticks(60_000), resolve: () => 'tick' },
      once: {
        type: GraphQLString,
        subscribe: async function * () { yield 'once' },
        resolve: (value: string) => value
      },
      boom: {
        type: GraphQLString,
        subscribe: async function * () { throw new Error('boom') }
      }
    }
  })
})

const hello = (id: string): Frame[] => [{ id, type: 'next', payload: { data: { hello: 'world' } } }, { id, type: 'complete' }]

t.test('2,000 subscribes on one socket: the first 100 run, the other 1,900 get an error for their id', async t => {
  const { url } = await build(t, { graphql: { auth: 'public', schema: referenceSchema(() => null) } })
  const attacker = await GraphqlSocket.open(url('/graphql'))
  const ids = Array.from({ length: 2000 }, (_, i) => `s${i}`)
  for (const id of ids) attacker.subscribe(id, 'subscription { ticks(every: 100) }')
  const ticking = (id: string) => attacker.frames.get(id)?.[0]?.type === 'next'
  const settled = () => ids.filter(id => attacker.ended(id) || ticking(id)).length === ids.length
  t.ok(await attacker.until(settled, 5_000), 'every subscribe was answered: by its ticks or by an error')
  t.same(ids.filter(ticking), ids.slice(0, 100), 'the first 100 tick')
  const errors = ids.filter(id => attacker.ended(id))
  t.same(errors, ids.slice(100), 'the other 1,900 are refused')
  t.same(errors.map(id => attacker.frames.get(id)), errors.map(id => [{ id, type: 'error', payload: tooMany(100) }]))
  t.equal(attacker.client.ws.readyState, attacker.client.ws.OPEN, 'the socket stays open')

  for (const id of ids.slice(0, 10)) attacker.complete(id)
  await attacker.roundTrip()
  const again = Array.from({ length: 11 }, (_, i) => `again${i}`)
  for (const id of again) attacker.subscribe(id, 'subscription { ticks(every: 100) }')
  t.ok(await attacker.until(() => again.every(id => attacker.ended(id) || ticking(id)), 5_000))
  t.same(again.filter(ticking), again.slice(0, 10), 'the 10 slots the client completed run new subscriptions')
  t.same(attacker.frames.get('again10'), [{ id: 'again10', type: 'error', payload: tooMany(100) }], 'and no more')
})

t.test('an operation gives its slot back when it completes, fails, is refused or is completed by the client', async t => {
  const { url } = await build(t, { graphql: { auth: 'public', schema: operations, operationLimit: 1 } })
  const client = await GraphqlSocket.open(url('/graphql'))
  client.subscribe('wait', 'subscription { wait }')
  t.same(await client.result('held', '{ hello }'), [{ id: 'held', type: 'error', payload: tooMany(1) }], 'one in flight: the next is refused')
  const other = await GraphqlSocket.open(url('/graphql'))
  t.same(await other.result('other', '{ hello }'), hello('other'), 'another socket has its own slots')

  client.complete('wait')
  await client.roundTrip()
  t.same(await client.result('after-complete', '{ hello }'), hello('after-complete'), 'completed by the client')
  t.same(await client.result('after-query', '{ hello }'), hello('after-query'), 'a query that completed')
  t.same(await client.result('once', 'subscription { once }'), [
    { id: 'once', type: 'next', payload: { data: { once: 'once' } } },
    { id: 'once', type: 'complete' }
  ])
  t.same(await client.result('after-once', '{ hello }'), hello('after-once'), 'a subscription that ended')
  t.same(await client.result('boom', 'subscription { boom }'), [{ id: 'boom', type: 'error', payload: [{ message: 'boom' }] }])
  t.same(await client.result('after-boom', '{ hello }'), hello('after-boom'), 'a subscription that failed')
  t.match(await client.result('invalid', '{ nope }'), [{ id: 'invalid', type: 'error', payload: [{ message: /Cannot query field "nope"/ }] }])
  t.same(await client.result('after-invalid', '{ hello }'), hello('after-invalid'), 'an invalid document')
  t.match(await client.result('costly', `{ ${'hello '.repeat(201)}}`), [{ id: 'costly', type: 'error', payload: [{ message: /field limit/ }] }])
  t.same(await client.result('after-costly', '{ hello }'), hello('after-costly'), 'a document over a cost limit')
  t.same(await client.result('unnamed', 'query A { hello } query B { hello }'),
    [{ id: 'unnamed', type: 'error', payload: [{ message: 'Unable to identify operation' }] }])
  t.same(await client.result('after-unnamed', '{ hello }'), hello('after-unnamed'), 'a document whose operation is unknown')
  t.same(await client.result('named', 'query A { hello } query B { hello }', 'B'), hello('named'))
})

t.test('a subscription waiting on an event source gives its slot back at the client\'s complete, and sends nothing after it', async t => {
  const notices = new EventEmitter()
  const schema = new GraphQLSchema({
    query: operations.getQueryType()!,
    subscription: new GraphQLObjectType({
      name: 'Subscription',
      fields: {
        // Paused at an `await` between events: its `return` runs only at the next event.
        notice: { type: GraphQLString, subscribe: async function * () { for await (const [notice] of on(notices, 'notice')) yield notice }, resolve: (value: string) => value }
      }
    })
  })
  const { url } = await build(t, { graphql: { auth: 'public', schema, operationLimit: 1 } })
  const client = await GraphqlSocket.open(url('/graphql'))
  client.subscribe('n', 'subscription { notice }')
  await client.roundTrip()
  client.complete('n')
  await client.roundTrip()
  t.same(await client.result('after', '{ hello }'), hello('after'), 'its slot is free at once')
  notices.emit('notice', 'late')
  await client.roundTrip()
  t.same(client.frames.get('n') ?? [], [], 'the event after the complete sends nothing')
  t.equal(notices.listenerCount('notice'), 0, 'and the resolver has ended')
})

t.test('an id is refused while its operation still runs, completed by the client or not; free again once it has ended', async t => {
  let finish!: () => void
  const finished = new Promise<string>(resolve => { finish = () => resolve('late') })
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({ name: 'Query', fields: { slow: { type: GraphQLString, resolve: () => finished } } }),
    subscription: operations.getSubscriptionType()!
  })
  const { url } = await build(t, { graphql: { auth: 'public', schema } })
  const client = await GraphqlSocket.open(url('/graphql'))
  client.subscribe('x', '{ slow }')
  client.complete('x') // its resolver still runs
  await client.roundTrip()
  t.same(await client.result('x', 'subscription { wait }'),
    [{ id: 'x', type: 'error', payload: [{ message: 'Operation x is still running: use another id.' }] }],
    'refused: graphql-ws, ending the first, would forget the second, which would run on after the socket closed')
  finish()
  await client.roundTrip()
  client.frames.delete('x')
  t.same(await client.result('x', 'subscription { once }'), [{ id: 'x', type: 'next', payload: { data: { once: 'once' } } }, { id: 'x', type: 'complete' }],
    'the first has ended: the id is free')
  t.equal(client.client.ws.readyState, client.client.ws.OPEN)
})
