// Type tests of the @fastify/jwt shapes the contract writes out (types/jwt.ts): @fastify/jwt's own types fit them, so
// an app that registers it passes its options and reads its instance as before. Checked by `tsc --noEmit` (npm test),
// never run. That an app importing only the plugin gets none of @fastify/jwt's decorators is checked where no file
// imports @fastify/jwt: in the packaging test's consumer (test/package/), with an augmented FastifyJWT too.
import Fastify from 'fastify'
import fastifyJwt, { type FastifyJWTOptions, type JWT } from '@fastify/jwt'
import { expectTypeOf } from 'expect-type'
import realtime, { type JwtInstance, type JwtOptions, type RealtimeOptions } from '../lib/index.js'

expectTypeOf<JWT>().toMatchTypeOf<JwtInstance>()
expectTypeOf<Omit<FastifyJWTOptions, 'secret'>>().toMatchTypeOf<JwtOptions>()
expectTypeOf<JWT['options']>().toMatchTypeOf<JwtInstance['options']>()

const app = Fastify()
const shared: Omit<FastifyJWTOptions, 'secret'> = {
  sign: { algorithm: 'HS512', expiresIn: '15m' },
  verify: { maxAge: '1h', errorCacheTTL: (error) => error.code === 'FAST_JWT_EXPIRED' ? 0 : 1000, extractToken: () => 't' },
  messages: { authorizationTokenInvalid: (err) => err.message },
  trusted: () => true
}
await app.register(realtime, { secret: 's', jwt: shared })
await app.register(realtime, {
  secret: 's',
  jwt: {
    sign: { algorithm: 'HS384', expiresIn: 900, iss: 'me' },
    verify: { allowedIss: ['me', /^other/], maxAge: 3600, errorCacheTTL: (error) => error.code.length },
    cookie: { cookieName: 'token', signed: false },
    trusted: (request, claims) => app.realtime.trusted(request, claims)
  }
})
// @ts-expect-error: not an algorithm
await app.register(realtime, { secret: 's', jwt: { sign: { algorithm: 'HS999' } } })
// @ts-expect-error: a misspelt option of @fastify/jwt's
await app.register(realtime, { secret: 's', jwt: { verify: { maxAg: 60 } } })
expectTypeOf<RealtimeOptions['jwt']>().toEqualTypeOf<JwtOptions | undefined>()

// The app's own instance, registered before the plugin: both decorators are there, and fit each other.
await app.register(fastifyJwt, { secret: 's', trusted: (request, claims) => app.realtime.trusted(request, claims) })
const instance: JwtInstance = app.jwt
expectTypeOf(app.realtime.jwt).toEqualTypeOf<JwtInstance>()
expectTypeOf(app.realtime.jwt.sign({ id: 'u' }, { expiresIn: '1m' })).toEqualTypeOf<string>()
expectTypeOf(app.realtime.jwt.verify<{ id: string }>('t')).toEqualTypeOf<{ id: string }>()
expectTypeOf(app.realtime.jwt.decode<{ id: string }>('t')).toEqualTypeOf<{ id: string } | null>()
expectTypeOf(instance.lookupToken).parameter(0).toMatchTypeOf<object>()
