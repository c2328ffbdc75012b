// The servers a benchmark compares: the plugin and the baselines it is measured against, each the way an app would
// write it, all on Fastify 5 and @fastify/websocket with their defaults and logging off.
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import fastifyJwt from '@fastify/jwt'
import mercurius from 'mercurius'
import { GraphQLInt, GraphQLObjectType, GraphQLSchema, GraphQLString } from 'graphql'
import { makeHandler } from 'graphql-ws/use/@fastify/websocket'
import type { WebSocket } from 'ws'
import realtime from '../lib/index.js'

export const secret = 'the-benchmark-secret-a-long-one-0123456789'
/** The heartbeat period of the plugin server here, and of bare-heartbeat. */
export const heartbeatPeriodS = 5
/** The users of the credential storm: fifty people logging in at once, each with their own email and password. */
export const stormUsers = Array.from({ length: 50 }, (_v, i) => ({ email: `storm-${i}@example.com`, password: `storm password ${i}` }))

/** The `iss` the plugin signs with by default, which the verifying baselines require as it does. */
const issuer = 'fastify-realtime'

/**
 * plugin: fastify-realtime; bare: @fastify/websocket answering the same JSON frames without verifying anything;
 * bare-verify and graphql-ws-verify: bare and graphql-ws with each token verified by @fastify/jwt as the plugin
 * verifies it, and nothing else; bare-heartbeat: bare with the protocol's heartbeat, and nothing else (each shows what
 * its one duty costs alone); plugin-redis: the plugin server on the Redis at BENCH_REDIS_URL, one of several processes
 * (the scale benchmark).
 */
export type ServerKind = 'plugin' | 'bare' | 'bare-verify' | 'bare-heartbeat' | 'graphql-ws' | 'graphql-ws-verify' | 'mercurius' | 'plugin-redis'

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
    heartbeat: { period: heartbeatPeriodS },
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

/**
 * Verifies as the plugin does by default: the same key, `iss` required and checked, through the verifier @fastify/jwt
 * builds once at registration (fast-jwt's cache of verified tokens off, as in the plugin).
 */
async function verifyingJwt (app: FastifyInstance): Promise<(token: unknown) => boolean> {
  await app.register(fastifyJwt, { secret, verify: { allowedIss: issuer, requiredClaims: ['iss'] } })
  return (token) => {
    if (typeof token !== 'string') return false
    try {
      app.jwt.verify(token)
      return true
    } catch {
      return false
    }
  }
}

interface BareOptions {
  /** Judges the auth message's token; any will do when absent. */
  admit?: (token: unknown) => boolean
  /** Told of every frame a socket sends. */
  heard?: (socket: WebSocket) => void
  /** Told of each socket once its auth message is answered ok. */
  admitted?: (socket: WebSocket) => void
}

/** What an app without the plugin would write: parse, answer auth and ping, check nothing it is not told to. */
async function bareServer (app: FastifyInstance, { admit = () => true, heard, admitted }: BareOptions = {}): Promise<void> {
  await app.register(fastifyWebsocket, { options: { maxPayload: 65536 } })
  app.get('/websocket', { websocket: true }, (socket) => {
    socket.on('message', (data: Buffer) => {
      heard?.(socket)
      let message: { type?: unknown, uid?: unknown, access_token?: unknown }
      try {
        message = JSON.parse(data.toString())
      } catch {
        return
      }
      const uid = message.uid
      if (message.type === 'auth') {
        if (!admit(message.access_token)) {
          socket.close(1008)
          return
        }
        socket.send(JSON.stringify(uid === undefined ? { type: 'auth', status: 'ok' } : { type: 'auth', status: 'ok', uid }))
        admitted?.(socket)
      } else if (message.type === 'ping') {
        socket.send(JSON.stringify(uid === undefined ? { type: 'pong' } : { type: 'pong', uid }))
      }
    })
  })
}

/** The bare server verifying each token, and nothing more. */
async function bareVerifyServer (app: FastifyInstance): Promise<void> {
  await bareServer(app, { admit: await verifyingJwt(app) })
}

/**
 * The bare server with the heartbeat of PROTOCOL.md (a `{"type":"ping"}` to every authenticated socket each period,
 * and a close with no status for one that sent nothing since the last), written as an app would, at the plugin
 * server's period: one loop over the sockets, where the plugin spreads a beat over half the period.
 */
async function bareHeartbeatServer (app: FastifyInstance): Promise<void> {
  // Weak sets: an entry goes with its socket, and is a slot in a table, not an object or a listener per socket.
  const authenticated = new WeakSet<WebSocket>()
  const quiet = new WeakSet<WebSocket>()
  await bareServer(app, { heard: (socket) => quiet.delete(socket), admitted: (socket) => authenticated.add(socket) })
  const timer = setInterval(() => {
    for (const socket of app.websocketServer.clients) {
      if (!authenticated.has(socket)) continue
      if (quiet.has(socket)) {
        socket.close()
        continue
      }
      quiet.add(socket)
      socket.send('{"type":"ping"}')
    }
  }, heartbeatPeriodS * 1000)
  app.addHook('onClose', async () => clearInterval(timer))
}

/** graphql-ws's own @fastify/websocket handler, no onConnect: anyone is acknowledged. */
async function graphqlWsServer (app: FastifyInstance): Promise<void> {
  await app.register(fastifyWebsocket, { options: { maxPayload: 65536 } })
  app.get('/graphql', { websocket: true }, makeHandler({ schema: schema() }))
}

/** graphql-ws's handler with an onConnect that verifies `connectionParams.access_token`, and nothing more. */
async function graphqlWsVerifyServer (app: FastifyInstance): Promise<void> {
  const admit = await verifyingJwt(app)
  await app.register(fastifyWebsocket, { options: { maxPayload: 65536 } })
  app.get('/graphql', { websocket: true }, makeHandler({ schema: schema(), onConnect: ({ connectionParams }) => admit(connectionParams?.access_token) }))
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
  const setup = {
    plugin: pluginServer,
    bare: bareServer,
    'bare-verify': bareVerifyServer,
    'bare-heartbeat': bareHeartbeatServer,
    'graphql-ws': graphqlWsServer,
    'graphql-ws-verify': graphqlWsVerifyServer,
    mercurius: mercuriusServer,
    'plugin-redis': pluginRedisServer
  }[kind]
  await setup(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  return app
}
