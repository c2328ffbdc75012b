// The servers a benchmark compares: the plugin and the baselines it is measured against, each the way an app would
// write it, all on Fastify 5 and @fastify/websocket with their defaults and logging off.
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import fastifyJwt from '@fastify/jwt'
import mercurius from 'mercurius'
import { GraphQLInt, GraphQLObjectType, GraphQLSchema, GraphQLString } from 'graphql'
import { makeHandler } from 'graphql-ws/use/@fastify/websocket'
import realtime from '../lib/index.js'

export const secret = 'the-benchmark-secret-a-long-one-0123456789'
/** The users of the credential storm: fifty people logging in at once, each with their own email and password. */
export const stormUsers = Array.from({ length: 50 }, (_v, i) => ({ email: `storm-${i}@example.com`, password: `storm password ${i}` }))

/**
 * plugin: fastify-realtime; bare: @fastify/websocket answering the same JSON frames without verifying anything;
 * plugin-redis: the plugin server on the Redis at BENCH_REDIS_URL, one of several processes (the scale benchmark).
 */
export type ServerKind = 'plugin' | 'bare' | 'graphql-ws' | 'mercurius' | 'plugin-redis'

const done: IteratorReturnResult<undefined> = { value: undefined, done: true }

/** An iterator that never yields: the subscription exists only so that the schemas have one. */
function never (): AsyncIterableIterator<number> {
  return {
    next: () => new Promise<IteratorResult<number>>(() => {}),
    return: () => Promise.resolve(done),
    [Symbol.asyncIterator] () { return this }
  }
}

function schema (): GraphQLSchema {
  return new GraphQLSchema({
    query: new GraphQLObjectType({ name: 'Query', fields: { hello: { type: GraphQLString, resolve: () => 'world' } } }),
    subscription: new GraphQLObjectType({
      name: 'Subscription',
      fields: { tick: { type: GraphQLInt, subscribe: never, resolve: (value: number) => value } }
    })
  })
}

/**
 * The plugin with its defaults (handshake mode on /websocket and /graphql, limits as shipped), but for the heartbeat:
 * every 5 s instead of 30, so that beats (a ping to each of thousands of sockets) fall inside every measurement.
 */
async function pluginServer (app: FastifyInstance, redis?: string): Promise<void> {
  await app.register(realtime, {
    env: {},
    secret,
    heartbeat: { period: 5 },
    accessTokenTtl: '1h',
    users: stormUsers,
    graphql: { schema: schema() },
    ...(redis ? { redis } : {})
  })
}

/** The same plugin server, one of several processes sharing sessions and revocations on one Redis (BENCH_REDIS_URL). */
async function pluginRedisServer (app: FastifyInstance): Promise<void> {
  const redis = process.env.BENCH_REDIS_URL
  if (!redis) throw new Error('plugin-redis needs BENCH_REDIS_URL')
  await pluginServer(app, redis)
}

/** What an app without the plugin would write: parse, answer auth and ping, check nothing. */
async function bareServer (app: FastifyInstance): Promise<void> {
  await app.register(fastifyWebsocket, { options: { maxPayload: 65536 } })
  app.get('/websocket', { websocket: true }, (socket) => {
    socket.on('message', (data: Buffer) => {
      let message: { type?: unknown, uid?: unknown }
      try {
        message = JSON.parse(data.toString())
      } catch {
        return
      }
      const uid = message.uid
      if (message.type === 'auth') {
        socket.send(JSON.stringify(uid === undefined ? { type: 'auth', status: 'ok' } : { type: 'auth', status: 'ok', uid }))
      } else if (message.type === 'ping') {
        socket.send(JSON.stringify(uid === undefined ? { type: 'pong' } : { type: 'pong', uid }))
      }
    })
  })
}

/** graphql-ws's own @fastify/websocket handler, no onConnect: anyone is acknowledged. */
async function graphqlWsServer (app: FastifyInstance): Promise<void> {
  await app.register(fastifyWebsocket, { options: { maxPayload: 65536 } })
  app.get('/graphql', { websocket: true }, makeHandler({ schema: schema() }))
}

/** mercurius subscriptions (graphql-transport-ws) with the token checked in onConnect, by the same @fastify/jwt. */
async function mercuriusServer (app: FastifyInstance): Promise<void> {
  await app.register(fastifyJwt, { secret })
  await app.register(mercurius, {
    schema: 'type Query { hello: String }\ntype Subscription { tick: Int }',
    resolvers: {
      Query: { hello: () => 'world' },
      Subscription: { tick: { subscribe: () => never() } }
    },
    subscription: {
      onConnect: ({ payload }: { payload?: { access_token?: unknown } }) => {
        if (typeof payload?.access_token !== 'string') return false
        try {
          const claims = app.jwt.verify<{ id?: string }>(payload.access_token)
          return { user: claims.id }
        } catch {
          return false
        }
      }
    }
  })
}

export async function startServer (kind: ServerKind): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  const setup = { plugin: pluginServer, bare: bareServer, 'graphql-ws': graphqlWsServer, mercurius: mercuriusServer, 'plugin-redis': pluginRedisServer }[kind]
  await setup(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  return app
}
