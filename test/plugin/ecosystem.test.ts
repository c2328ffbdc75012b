// The plugin in an app with the usual Fastify plugins around it (cors, helmet, rate-limit, cookie, session, swagger),
// registered before it or after it. Either way the app boots, logs in, authenticates sockets, and keeps its own
// answers. App-wide hooks (helmet's, cors's) run on the plugin's routes either way; plugins that act through `onRoute`
// hooks (rate-limit, swagger) see the routes registered after them only, the plugin's as any other: registered after
// it, they leave its routes alone.
import t from 'tap'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyCors from '@fastify/cors'
import fastifyHelmet from '@fastify/helmet'
import fastifyRateLimit from '@fastify/rate-limit'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import fastifySwagger from '@fastify/swagger'
import realtime from '../../lib/index.js'
import { admin, connect, directoryOf, secret } from '../helpers.js'

const loginsPerMinute = 3

declare module 'fastify' {
  interface Session { visits?: number }
}

async function ecosystem (app: FastifyInstance): Promise<void> {
  await app.register(fastifyCors, { origin: 'https://app.example.com', credentials: true })
  await app.register(fastifyHelmet)
  await app.register(fastifyRateLimit, { max: loginsPerMinute, timeWindow: '1 minute' })
  await app.register(fastifyCookie)
  await app.register(fastifySession, { secret: 'a-session-secret-of-thirty-two-characters', cookie: { secure: false } })
  await app.register(fastifySwagger, { openapi: { info: { title: 'app', version: '1.0.0' } } })
}

for (const order of ['before', 'after'] as const) {
  t.test(`cors, helmet, rate-limit, cookie, session and swagger registered ${order} the plugin`, async t => {
    const app = Fastify()
    t.teardown(() => app.close())
    if (order === 'before') await ecosystem(app)
    await app.register(realtime, { env: {}, secret, authRoutes: true, users: await directoryOf([admin]), heartbeat: { enabled: false } })
    if (order === 'after') await ecosystem(app)
    app.get('/visits', { config: { rateLimit: false } }, async (request) => {
      const visits = (request.session.get('visits') ?? 0) + 1
      request.session.set('visits', visits)
      return { visits }
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as AddressInfo

    // The auth routes answer, in the cookie mode too.
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { ...admin, mode: 'cookie' }, headers: { origin: 'https://app.example.com' } })
    t.equal(login.statusCode, 200, 'logged in')
    t.ok(login.cookies.some(cookie => cookie.name === 'directus_refresh_token'), 'the refresh cookie')
    const { access_token: accessToken } = login.json<{ data: { access_token: string } }>().data

    // A socket authenticates with the token.
    const socket = await connect(`ws://127.0.0.1:${port}/websocket`)
    socket.send({ type: 'auth', access_token: accessToken, uid: 1 })
    t.same(await socket.next(), { type: 'auth', status: 'ok', uid: 1 }, 'authenticated')
    await socket.close()

    // The app's own session works on the app's own routes.
    const first = await app.inject({ url: '/visits' })
    const sessionCookie = first.cookies.find(cookie => cookie.name === 'sessionId')!
    const second = await app.inject({ url: '/visits', headers: { cookie: `sessionId=${sessionCookie.value}` } })
    t.same(second.json(), { visits: 2 }, "the app's session")

    // Swagger makes its document with the plugin's routes in it or not, and no websocket route shows.
    const spec = app.swagger() as { paths?: Record<string, unknown> }
    const documented = Object.keys(spec.paths ?? {})
    t.notOk(documented.some(path => path.startsWith('/websocket') || path === '/graphql'), 'no websocket route documented')

    const logins = []
    for (let i = 0; i < loginsPerMinute + 1; i++) logins.push(await app.inject({ method: 'POST', url: '/auth/login', payload: admin }))
    const last = logins.at(-1)!
    // App-wide hooks run on every route, whenever they were added: helmet's and cors's apply either way.
    t.equal(login.headers['x-content-type-options'], 'nosniff', "helmet's headers")
    t.equal(login.headers['access-control-allow-origin'], 'https://app.example.com', "cors's headers")
    if (order === 'before') {
      t.ok(documented.includes('/auth/login'), 'POST /auth/login documented')
      // Past its limit, the app's rate limit answers as it does on every route: its 429, not the plugin's 400.
      t.equal(last.statusCode, 429)
      t.match(last.json(), { statusCode: 429, error: 'Too Many Requests', message: /^Rate limit exceeded/ })
    } else {
      t.equal(last.statusCode, 200, 'a rate limit registered after the plugin never saw its routes')
    }
  })
}

t.test('an app on fastify-type-provider-zod: the auth routes check their bodies themselves, and its OpenAPI document builds', async t => {
  const { serializerCompiler, validatorCompiler, jsonSchemaTransform } = await import('fastify-type-provider-zod')
  const { z } = await import('zod')
  const app = Fastify()
  t.teardown(() => app.close())
  // As its README sets it up: the app's compilers read zod schemas only.
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)
  await app.register(fastifySwagger, { openapi: { info: { title: 'app', version: '1.0.0' } }, transform: jsonSchemaTransform })
  app.post('/sum', { schema: { body: z.object({ a: z.number(), b: z.number() }) } }, async (request) => {
    const { a, b } = request.body as { a: number, b: number }
    return { sum: a + b }
  })
  await app.register(realtime, { env: {}, secret, authRoutes: true, users: await directoryOf([admin]), heartbeat: { enabled: false } })
  await app.ready()

  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: admin })
  t.equal(login.statusCode, 200, 'logged in')
  const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: login.json().data.refresh_token } })
  t.equal(refresh.statusCode, 200, 'refreshed')
  const logout = await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: refresh.json().data.refresh_token } })
  t.equal(logout.statusCode, 204, 'logged out')
  const bad = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email } })
  t.same([bad.statusCode, bad.json()], [400, { errors: [{ message: 'Invalid payload.', extensions: { code: 'INVALID_PAYLOAD' } }] }])
  t.same((await app.inject({ method: 'POST', url: '/sum', payload: { a: 1, b: 2 } })).json(), { sum: 3 }, 'the app\'s own zod route')
  const paths = Object.keys((app.swagger() as { paths: Record<string, unknown> }).paths)
  t.ok(paths.includes('/sum') && paths.includes('/auth/login'), 'the app\'s document, the auth routes in it')
})

t.test('a server speaking HTTP/2 alone fails boot, saying so; with HTTP/1.1 beside it (allowHTTP1), it boots', async t => {
  const http2Only = Fastify({ http2: true })
  t.teardown(() => http2Only.close())
  await t.rejects(async () => { await http2Only.register(realtime, { env: {}, secret }) },
    { code: 'FST_REALTIME_INVALID_CONFIG', message: /WebSockets need HTTP\/1\.1 upgrades: with http2, serve HTTP\/1\.1 as well/ })
  const both = Fastify({ http2: true, https: { allowHTTP1: true } })
  t.teardown(() => both.close())
  await both.register(realtime, { env: {}, secret })
  t.ok(both.hasRoute({ method: 'GET', url: '/websocket' }))
})
