// graphql-ws keeps a `subscribe` as parsed while its operation runs, and a `connection_init` payload for the socket's
// life. Parsed JSON costs far more than its bytes: 64 KiB of `{}`s kept about 1.4 MiB, wherever the client put them
// (variables the operation does not declare, extensions, a field of no meaning), so 100 subscriptions on one public
// socket kept 140 MiB. Only what the operation runs with is kept now: the frame's bytes bound it again.
import t from 'tap'
import { parse, type OperationDefinitionNode } from 'graphql'
import { referenceSchema } from '../../example/schema.js'
import { keepWhatRuns } from '../../lib/endpoints/graphql-payload.js'
import { build, connect } from '../helpers.js'
import { GraphqlSocket } from './graphql-socket.js'
import { retainedBytes } from './gc.js'

/** 63 KB of empty objects: about 1.4 MiB of heap once parsed. */
const objects = `[${Array.from({ length: 21_000 }, () => '{}').join(',')}]`
const subscriptions = 20
const query = '"query":"subscription { ticks(every: 10000000) }"'
const frames: Record<string, (id: string) => string> = {
  'undeclared variables': id => `{"type":"subscribe","id":"${id}","payload":{${query},"variables":{"x":${objects}}}}`,
  extensions: id => `{"type":"subscribe","id":"${id}","payload":{${query},"extensions":{"x":${objects}}}}`,
  'a payload field of no meaning': id => `{"type":"subscribe","id":"${id}","payload":{${query},"x":${objects}}}`,
  'a message field of no meaning': id => `{"type":"subscribe","id":"${id}","x":${objects},"payload":{${query}}}`
}

for (const [where, frame] of Object.entries(frames)) {
  t.test(`a subscription keeps no more than its frame's bytes of 64 KiB of {}s in ${where}`, async t => {
    const { url } = await build(t, { heartbeat: { enabled: false }, graphql: { auth: 'public', schema: referenceSchema(() => null) } })
    const client = await GraphqlSocket.open(url('/graphql'))
    const before = retainedBytes()
    const ids = Array.from({ length: subscriptions }, (_, i) => `s${i}`)
    for (const id of ids) client.client.send(frame(id))
    await client.roundTrip()
    const perSubscription = (retainedBytes() - before) / subscriptions
    t.equal(ids.filter(id => client.ended(id)).length, 0, 'every one runs')
    // About 90 KiB (the frame as text, and the subscription); 1.4 MiB when the parsed message was kept whole.
    t.ok(perSubscription < 400 * 1024, `the server kept ${Math.round(perSubscription / 1024)} KiB per subscription`)
    await client.client.close()
  })
}

t.test('the variables an operation declares still reach its resolvers', async t => {
  const { url } = await build(t, { heartbeat: { enabled: false }, graphql: { auth: 'public', schema: referenceSchema(() => null) } })
  const client = await GraphqlSocket.open(url('/graphql'))
  client.client.send(JSON.stringify({
    type: 'subscribe',
    id: 'v',
    payload: { query: 'subscription ($every: Int) { ticks(every: $every) }', variables: { every: 1, x: [{}] }, extensions: { y: 1 } }
  }))
  await client.until(() => (client.frames.get('v') ?? []).length > 0)
  t.same(client.frames.get('v')![0], { id: 'v', type: 'next', payload: { data: { ticks: 1 } } }, '`every` reached the resolver: a tick after a millisecond')
  client.complete('v')
  await client.client.close()
})

t.test('a connection_init payload is not kept once read: 64 KiB of {}s beside no token', async t => {
  const sockets = 10
  const { url } = await build(t, { heartbeat: { enabled: false }, graphql: { auth: 'public', schema: referenceSchema(() => null) } })
  const clients = []
  const before = retainedBytes()
  for (let i = 0; i < sockets; i++) {
    const client = await connect(url('/graphql'), { protocols: 'graphql-transport-ws' })
    client.send(`{"type":"connection_init","payload":{"x":${objects}}}`)
    t.same(await client.next(), { type: 'connection_ack' })
    clients.push(client)
  }
  const perSocket = (retainedBytes() - before) / sockets
  // About 50 KiB (a socket of its own is about 40); 1.4 MiB when the payload was kept for the socket's life.
  t.ok(perSocket < 400 * 1024, `the server kept ${Math.round(perSocket / 1024)} KiB per socket`)
  await Promise.all(clients.map(client => client.close()))
})

t.test('the payload kept: the query, the operation name, and the variables declared, each as sent', async t => {
  const operation = (source: string) => parse(source, { noLocation: true }).definitions[0] as OperationDefinitionNode
  // JSON.parse makes `__proto__` an own field, as a client sends it; kept as one, no prototype set.
  const payload = JSON.parse('{"query":"q","operationName":"Q","variables":{"__proto__":1,"a":[2],"b":3},"extensions":{},"x":4}')
  const variables = keepWhatRuns(payload, operation('query Q($__proto__: Int, $a: [Int], $c: Int) { me { id } }'))
  t.same(Object.entries(variables!), [['__proto__', 1], ['a', [2]]])
  t.equal(Object.getPrototypeOf(variables), Object.prototype)
  t.same(Object.keys(payload), ['query', 'operationName', 'variables'])
  t.equal(payload.variables, variables)
  const bare = { query: 'q', variables: { a: 1 } }
  t.same(keepWhatRuns(bare, { kind: 'OperationDefinition', operation: 'query', selectionSet: { kind: 'SelectionSet', selections: [] } } as unknown as OperationDefinitionNode), {}, 'an operation with no variable definitions at all')
  t.equal(keepWhatRuns({ query: 'q', variables: null }, operation('{ me { id } }')), null)
  t.equal(keepWhatRuns({ query: 'q' }, operation('{ me { id } }')), undefined)
})
