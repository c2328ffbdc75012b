// Type tests of the public contract: checked by `tsc --noEmit` (npm test), never run.
import Fastify from 'fastify'
import { expectTypeOf } from 'expect-type'
import { Cluster as Cluster5, Redis as Redis5 } from 'ioredis'
import { Cluster as Cluster6, Redis as Redis6 } from 'ioredis-6'
import realtime, {
  MemorySessionStore, RealtimeError, normalizeEmail,
  type Accountability, type AuthMode, type IoredisClient, type IssuedTokens, type RealtimeConnection, type RealtimeOptions, type RealtimeUpgrade,
  type SessionStore
} from '../lib/index.js'

const app = Fastify()
await app.register(realtime, {
  secret: 's',
  rest: {
    auth: 'strict',
    authTimeout: 2.5,
    handlers: {
      hello (message, connection) {
        expectTypeOf(message.type).toEqualTypeOf<string>()
        expectTypeOf(message.uid).toEqualTypeOf<string | number | undefined>()
        expectTypeOf(connection).toEqualTypeOf<RealtimeConnection>()
        expectTypeOf(connection.accountability.user).toEqualTypeOf<string | null>()
      },
      async later () {}
    }
  },
  sessionStore: new MemorySessionStore(),
  verifyCredentials: async ({ email }) => email === 'a@b.c' ? { user: '1', role: null, admin: false } : null,
  mapClaims: (claims) => typeof claims.sub === 'string' ? { user: claims.sub, role: null, admin: false } : null,
  authRoutes: { prefix: '/api/auth' }
})
await app.register(realtime, { rest: false })
// Fastify's register options the plugin applies to its routes are options too: options built apart keep them.
const built = { secret: 's', prefix: '/api', logLevel: 'warn', logSerializers: { req: () => 'r' }, rest: { auth: 'public' } } satisfies RealtimeOptions
await app.register(realtime, built)
expectTypeOf({ logLevel: 'loud' } as const).not.toMatchTypeOf<RealtimeOptions>()
await app.register(realtime, { attemptLimit: { points: 5, durationSeconds: 300 } })
await app.register(realtime, { attemptLimit: false })
// @ts-expect-error: the window is in seconds, a number
await app.register(realtime, { attemptLimit: { durationSeconds: '1m' } })

await app.register(realtime, { cookies: { refresh: { secure: true, sameSite: 'strict', domain: 'example.com' }, session: { name: 'sid', ttl: '12h' } } })
// @ts-expect-error: not a SameSite value
await app.register(realtime, { cookies: { session: { sameSite: 'sometimes' } } })
// @ts-expect-error: a refresh cookie's lifetime is the refresh session's (refreshTokenTtl)
await app.register(realtime, { cookies: { refresh: { ttl: '1d' } } })

// @ts-expect-error: not an auth mode
await app.register(realtime, { rest: { auth: 'open' } })
// @ts-expect-error: handlers are functions
await app.register(realtime, { rest: { handlers: { x: 1 } } })

app.get('/x', async (request) => {
  expectTypeOf(request.realtime).toEqualTypeOf<RealtimeUpgrade | null | undefined>()
  if (request.realtime) {
    expectTypeOf(request.realtime.authMode).toEqualTypeOf<AuthMode>()
    expectTypeOf(request.realtime.accountability).toEqualTypeOf<Accountability | null>()
  }
})

expectTypeOf(app.realtime.send({ user: 'u' }, { type: 'x' })).toEqualTypeOf<number>()
expectTypeOf(app.realtime.connections()).toEqualTypeOf<RealtimeConnection[]>()
expectTypeOf(app.realtime.login({ email: 'a', password: 'b' })).toEqualTypeOf<Promise<IssuedTokens>>()
app.post<{ Body: { email: string, password: string } }>('/my-login', (request) => {
  // Counted as /auth/login: the client's address too.
  expectTypeOf(app.realtime.login(request.body, request)).toEqualTypeOf<Promise<IssuedTokens>>()
})
expectTypeOf(app.realtime.revokeSession('s')).toEqualTypeOf<Promise<void>>()
expectTypeOf(app.realtime.jwt.sign({ id: 'u' })).toEqualTypeOf<string>()
expectTypeOf(new RealtimeError('FORBIDDEN', 'no').code).toEqualTypeOf<RealtimeError['code']>()
// The application's own codes are codes too: see types/handlers.test-d.ts.
expectTypeOf<MemorySessionStore>().toMatchTypeOf<SessionStore>()

// The spelling `verifyCredentials` is handed, for an app to store its users' emails by.
expectTypeOf(normalizeEmail).toEqualTypeOf<(email: string) => string>()

// `redis`: a URL, or the app's ioredis client or Cluster, of ioredis 5 (the plugin's own) or 6 (what `npm i ioredis`
// installs now: its classes are not 5's), with RESP3 replies too. What only looks like a client is none.
await app.register(realtime, { redis: new Redis5(), redisPrefix: 'a:' })
await app.register(realtime, { redis: new Cluster5([{ host: '127.0.0.1', port: 7000 }]) })
await app.register(realtime, { redis: new Redis5({ sentinels: [{ host: '127.0.0.1', port: 26379 }], name: 'realtime' }) })
await app.register(realtime, { redis: new Redis6() })
await app.register(realtime, { redis: new Redis6({ replyMapping: 'resp3' }) })
await app.register(realtime, { redis: new Cluster6([{ host: '127.0.0.1', port: 7000 }], { redisOptions: { replyMapping: 'resp3' } }) })
expectTypeOf<IoredisClient>().toMatchTypeOf<NonNullable<RealtimeOptions['redis']>>()
// @ts-expect-error: a publish is what the runtime check looks for, not a client
await app.register(realtime, { redis: { publish: async () => 1 } })
// @ts-expect-error: a pipeline is no client
await app.register(realtime, { redis: new Redis5().pipeline() })
// @ts-expect-error: nor is one of ioredis 6
await app.register(realtime, { redis: new Redis6().multi() })
