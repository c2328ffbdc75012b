// Beside mercurius, as the README tells: both want `/graphql`. Either the plugin's GraphQL sockets move to a path of
// their own, or mercurius serves GraphQL over sockets (`subscription: true`) and the plugin's GraphQL endpoint stays off.
import t, { type Test } from 'tap'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import mercurius from 'mercurius'
import { buildSchema } from 'graphql'
import { createClient } from 'graphql-ws'
import WebSocket from 'ws'
import realtime from '../../lib/index.js'
import { connect, secret } from '../helpers.js'

const mercuriusSchema = 'type Query { hello: String }\ntype Subscription { tick: Int }'
const resolvers = {
  Query: { hello: () => 'mercurius' },
  Subscription: { tick: { subscribe: async function * () { yield { tick: 1 } } } }
}
const realtimeSchema = buildSchema('type Query { hello: String }')

async function listen (t: Test, app: FastifyInstance): Promise<(path: string) => string> {
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  return (path) => `ws://127.0.0.1:${port}${path}`
}

/** The first result of `query` over graphql-transport-ws at `url`. */
async function first (t: Test, url: string, query: string): Promise<unknown> {
  const client = createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0 })
  t.teardown(() => client.dispose())
  const { value } = await client.iterate({ query }).next()
  return value
}

t.test("mercurius keeps /graphql, the plugin's GraphQL sockets take graphql.path or WEBSOCKETS_GRAPHQL_PATH", async t => {
  for (const moved of [{ graphql: { path: '/realtime/graphql' } }, { env: { WEBSOCKETS_GRAPHQL_PATH: '/realtime/graphql' } }]) {
    const app = Fastify()
    await app.register(mercurius, { schema: mercuriusSchema, resolvers })
    await app.register(realtime, {
      env: {},
      secret,
      ...moved,
      graphql: { auth: 'public', schema: realtimeSchema, ...moved.graphql }
    })
    const url = await listen(t, app)
    const http = await app.inject({ method: 'POST', url: '/graphql', payload: { query: '{ hello }' } })
    t.same(http.json(), { data: { hello: 'mercurius' } }, "mercurius's /graphql")
    t.same(await first(t, url('/realtime/graphql'), '{ __typename }'), { data: { __typename: 'Query' } }, "the plugin's sockets")
  }
})

t.test("left on /graphql beside mercurius, the plugin's GraphQL endpoint fails boot on the duplicate route", async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => {
    await app.register(mercurius, { schema: mercuriusSchema, resolvers })
    await app.register(realtime, { env: {}, secret, graphql: { schema: realtimeSchema } })
    await app.ready()
  }, { code: 'FST_ERR_DUPLICATED_ROUTE' })
})

t.test('mercurius subscriptions and the plugin on the @fastify/websocket the app registered first: no warning', async t => {
  const warnings: string[] = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { warnings.push(line) } } } })
  await app.register(fastifyWebsocket)
  await app.register(mercurius, { schema: mercuriusSchema, resolvers, subscription: true })
  await app.register(realtime, { env: {}, secret, graphql: false, rest: { auth: 'public' } })
  const url = await listen(t, app)
  t.same(await first(t, url('/graphql'), 'subscription { tick }'), { data: { tick: 1 } }, "mercurius's subscription")
  const socket = await connect(url('/websocket'))
  socket.send({ type: 'ping', uid: 1 })
  t.same(await socket.next(), { type: 'pong', uid: 1 }, "the plugin's /websocket")
  await socket.close()
  t.same(warnings, [])
})

t.test("mercurius subscriptions with mercurius's own @fastify/websocket, before or after the plugin: no warning either", async t => {
  for (const order of ['before', 'after'] as const) {
    // mercurius's @fastify/websocket, in its scope, and the plugin's both routed every upgrade: the second failed and
    // logged `websocket upgrade failed`.
    const warnings: string[] = []
    const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { warnings.push(line) } } } })
    if (order === 'before') await app.register(mercurius, { schema: mercuriusSchema, resolvers, subscription: true })
    await app.register(realtime, { env: {}, secret, graphql: false, rest: { auth: 'public' } })
    if (order === 'after') await app.register(mercurius, { schema: mercuriusSchema, resolvers, subscription: true })
    const url = await listen(t, app)
    t.same(await first(t, url('/graphql'), 'subscription { tick }'), { data: { tick: 1 } }, `${order}: mercurius's subscription`)
    const socket = await connect(url('/websocket'))
    socket.send({ type: 'ping', uid: 1 })
    t.same(await socket.next(), { type: 'pong', uid: 1 }, `${order}: the plugin's /websocket`)
    await socket.close()
    t.same(warnings, [], `${order}: no warning`)
  }
})

t.test("mercurius registered after the plugin keeps its own @fastify/websocket and limits (1 MiB, not the plugin's 64 KiB)", async t => {
  const app = Fastify({ logger: { level: 'error' } })
  await app.register(realtime, { env: {}, secret, graphql: false, rest: { auth: 'public' } })
  await app.register(mercurius, { schema: mercuriusSchema, resolvers, subscription: true })
  const url = await listen(t, app)
  const socket = await connect(url('/graphql'), { protocols: 'graphql-transport-ws' })
  socket.send({ type: 'connection_init', payload: { padding: 'x'.repeat(100_000) } })
  t.same(await Promise.race([socket.next(), socket.closed]), { type: 'connection_ack' }, 'a 100 kB frame on mercurius')
  await socket.close()
  const plugin = await connect(url('/websocket'))
  plugin.send({ type: 'ping', uid: 'x'.repeat(100_000) })
  t.equal((await plugin.closed).code, 1009, "the plugin's 64 KiB on its own route")
})
