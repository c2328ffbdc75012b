// Operations in flight (PROTOCOL.md section 11): at most `operationLimit` (default 100) per GraphQL socket; the
// excess get an `error` message for their id, the socket stays open, and an operation that ends gives its slot back.
import { EventEmitter, on } from 'node:events'
import t from 'tap'
import { GraphQLObjectType, GraphQLSchema, GraphQLString } from 'graphql'
import { referenceSchema, ticks } from '../../example/schema.js'
import { build } from '../helpers.js'
import type { GraphqlContext } from '../../lib/index.js'
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
  t.ok(await attacker.until(settled, 60_000), 'every subscribe was answered: by its ticks or by an error')
  t.same(ids.filter(ticking), ids.slice(0, 100), 'the first 100 tick')
  const errors = ids.filter(id => attacker.ended(id))
  t.same(errors, ids.slice(100), 'the other 1,900 are refused')
  t.same(errors.map(id => attacker.frames.get(id)), errors.map(id => [{ id, type: 'error', payload: tooMany(100) }]))
  t.equal(attacker.client.ws.readyState, attacker.client.ws.OPEN, 'the socket stays open')

  for (const id of ids.slice(0, 10)) attacker.complete(id)
  await attacker.roundTrip()
  const again = Array.from({ length: 11 }, (_, i) => `again${i}`)
  for (const id of again) attacker.subscribe(id, 'subscription { ticks(every: 100) }')
  t.ok(await attacker.until(() => again.every(id => attacker.ended(id) || ticking(id)), 60_000))
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

/** A schema whose `notice` subscription waits on `notices` between events, with the context's signal or without. */
function noticeSchema (notices: EventEmitter, withSignal: boolean) {
  return new GraphQLSchema({
    query: operations.getQueryType()!,
    subscription: new GraphQLObjectType({
      name: 'Subscription',
      fields: {
        // Paused at an `await` between events: its `return` runs only at the next event, or when its signal aborts.
        notice: {
          type: GraphQLString,
          subscribe: async function * (_root: unknown, _args: unknown, context: GraphqlContext) {
            for await (const [notice] of on(notices, 'notice', withSignal ? { signal: context.signal } : {})) yield notice
          },
          resolve: (value: unknown) => value
        }
      }
    })
  })
}

t.test('a subscription waiting on an event source with the context\'s signal stops at the client\'s complete: its slot is free at once, and nothing is sent after', async t => {
  const notices = new EventEmitter()
  const { url } = await build(t, { graphql: { auth: 'public', schema: noticeSchema(notices, true), operationLimit: 1 } })
  const client = await GraphqlSocket.open(url('/graphql'))
  client.subscribe('n', 'subscription { notice }')
  await client.roundTrip()
  t.equal(notices.listenerCount('notice'), 1, 'it waits on the event source')
  client.complete('n')
  await client.roundTrip()
  t.equal(notices.listenerCount('notice'), 0, 'its source has stopped, no event needed')
  t.same(await client.result('after', '{ hello }'), hello('after'), 'its slot is free')
  notices.emit('notice', 'late')
  await client.roundTrip()
  t.same(client.frames.get('n') ?? [], [], 'nothing is sent after the complete')
})

t.test('a source that does not stop at its signal keeps its slot until it does: subscribing and completing in a loop piles up no more than operationLimit', async t => {
  const notices = new EventEmitter()
  notices.setMaxListeners(0)
  const { url } = await build(t, { graphql: { auth: 'public', schema: noticeSchema(notices, false), operationLimit: 5 } })
  const client = await GraphqlSocket.open(url('/graphql'))
  for (let i = 0; i < 20; i++) {
    client.subscribe(`n${i}`, 'subscription { notice }')
    await client.roundTrip()
    client.complete(`n${i}`)
  }
  await client.roundTrip()
  t.equal(notices.listenerCount('notice'), 5, 'five sources still wait for their next event, no more')
  const subscriptions = () => [...client.frames].filter(([id]) => id.startsWith('n'))
  t.equal(subscriptions().filter(([, frames]) => frames.some(frame => frame.type === 'error')).length, 15, 'the others were refused')
  t.match(await client.result('full', '{ hello }'), [{ type: 'error', payload: tooMany(5) }], 'until the sources stop, so is a query')
  notices.emit('notice', 'late')
  await client.roundTrip()
  t.equal(notices.listenerCount('notice'), 0, 'at their next event, they stop')
  t.same(await client.result('after', '{ hello }'), hello('after'), 'and their slots are free')
  t.same(subscriptions().flatMap(([, frames]) => frames).filter(frame => frame.type === 'next'), [], 'what they gave after the complete was sent to nobody')
})

t.test('a query still running when its socket closes: its signal aborts', async t => {
  let aborted!: () => void
  const abortedOnce = new Promise<void>(resolve => { aborted = resolve })
  let started!: () => void
  const running = new Promise<void>(resolve => { started = resolve })
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({
      name: 'Query',
      fields: {
        slow: {
          type: GraphQLString,
          resolve: (_root, _args, context: GraphqlContext) => new Promise(resolve => {
            started()
            context.signal.addEventListener('abort', () => { aborted(); resolve('aborted') })
          })
        }
      }
    }),
    subscription: operations.getSubscriptionType()!
  })
  const { url } = await build(t, { graphql: { auth: 'public', schema } })
  const client = await GraphqlSocket.open(url('/graphql'))
  client.subscribe('q', '{ slow }')
  await running
  client.client.ws.close()
  await abortedOnce
  t.pass('the resolver was told')
})

t.test('a subscribe reusing the id of a query the client completed waits for it, one per id: a second under the id closes 4409', async t => {
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({ name: 'Query', fields: { slow: { type: GraphQLString, resolve: () => new Promise(() => {}) } } }),
    subscription: operations.getSubscriptionType()!
  })
  const { url } = await build(t, { graphql: { auth: 'public', schema } })
  const client = await GraphqlSocket.open(url('/graphql'))
  client.subscribe('x', '{ slow }')
  client.complete('x') // its resolver runs on: what waits behind it is one frame
  client.subscribe('x', 'subscription { wait }')
  client.subscribe('x', 'subscription { wait }')
  t.same(await client.client.closed, { code: 4409, reason: 'Subscriber for x already exists' })
})
