// Registration order: the app's @fastify/websocket, @fastify/cookie and @fastify/jwt may come before the plugin or after
// it. A @fastify/jwt before the plugin verifies socket tokens; after it, it is the app's alone, and without SECRET boot
// fails with an error that says where it goes.
import t, { type Test } from 'tap'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifyJwt from '@fastify/jwt'
import fastifyWebsocket from '@fastify/websocket'
import type WebSocket from 'ws'
import realtime, { type RealtimeOptions } from '../../lib/index.js'
import { admin, connect, directoryOf, refusedWith, secret, upgradeAnswered, within, type Client } from '../helpers.js'

/** Boots an app where `register` registers the app's plugin, before the plugin or after it. */
async function boot (t: Test, order: 'before' | 'after', register: (app: FastifyInstance) => PromiseLike<unknown>,
  options: RealtimeOptions, routes?: (app: FastifyInstance) => void, serverOptions: FastifyServerOptions = {}) {
  const app = Fastify(serverOptions)
  t.teardown(() => app.close())
  if (order === 'before') await register(app)
  await app.register(realtime, { env: {}, heartbeat: { enabled: false }, ...options })
  if (order === 'after') await register(app)
  routes?.(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  return { app, url: (path: string) => `ws://127.0.0.1:${port}${path}` }
}

/** The app's `/echo` and the plugin's `/websocket` each answer a socket of their own; both left open. */
async function bothServe (t: Test, url: (path: string) => string, order: string): Promise<[Client, Client]> {
  const own = await connect(url('/echo'))
  own.send('hello')
  t.equal(await own.next(), 'hello', `${order}: the app's route`)
  const plugin = await connect(url('/websocket'))
  plugin.send({ type: 'ping', uid: 1 })
  t.same(await plugin.next(), { type: 'pong', uid: 1 }, `${order}: the plugin's route`)
  return [own, plugin]
}

t.test("the app's @fastify/websocket before or after the plugin: both boot, and both serve their routes", async t => {
  for (const order of ['before', 'after'] as const) {
    const { app, url } = await boot(t, order, (app) => app.register(fastifyWebsocket), { secret, rest: { auth: 'public' } }, (app) => {
      app.get('/echo', { websocket: true }, (socket) => { socket.on('message', (data) => socket.send(data.toString())) })
    })
    const [own, plugin] = await bothServe(t, url, order)
    t.equal(app.websocketServer.clients.size, 1, `${order}: one @fastify/websocket, the app's, for the app's routes`)
    await Promise.all([own.close(), plugin.close()])
  }
})

t.test("the app's @fastify/websocket in a scope of its own, before or after the plugin: each upgrade routed once, no warning", async t => {
  for (const order of ['before', 'after'] as const) {
    // Every @fastify/websocket listening to the server routes each upgrade through the whole app: the app's, in its
    // scope, and the plugin's own (which that scope hides from the plugin) both did, and the second failed, logging
    // `websocket upgrade failed` (ERR_HTTP_SOCKET_ASSIGNED) for every socket.
    const warnings: string[] = []
    const logger = { level: 'warn', stream: { write: (line: string) => { warnings.push(line) } } }
    let scope: FastifyInstance | undefined
    const { url } = await boot(t, order, (app) => app.register(async (api) => {
      await api.register(fastifyWebsocket)
      api.get('/echo', { websocket: true }, (socket) => { socket.on('message', (data) => socket.send(data.toString())) })
      scope = api
    }), { secret, rest: { auth: 'public' } }, undefined, { logger })
    const [own, plugin] = await bothServe(t, url, order)
    t.equal((await refusedWith(url('/nothing'))).status, 404, `${order}: no route, a 404`)
    t.match(await within(upgradeAnswered(Number(new URL(url('/')).port), '/nothing'), 'the close'), /^HTTP\/1\.1 404 /,
      `${order}: whose connection the server closes`)
    // The app's injectWS, in the app's scope, reaches the plugin's routes too.
    const injected: WebSocket = await scope!.injectWS('/websocket')
    const pong = new Promise<unknown>(resolve => injected.once('message', (data) => resolve(JSON.parse(data.toString()))))
    injected.send(JSON.stringify({ type: 'ping', uid: 2 }))
    t.same(await pong, { type: 'pong', uid: 2 }, `${order}: injectWS`)
    injected.terminate()
    await Promise.all([own.close(), plugin.close()])
    t.same(warnings, [], `${order}: no warning`)
  }
})

t.test("the app's @fastify/cookie before or after the plugin: both boot, and both read cookies", async t => {
  for (const order of ['before', 'after'] as const) {
    const { app, url } = await boot(t, order, (app) => app.register(fastifyCookie), {
      secret, authRoutes: true, users: await directoryOf([admin]), rest: { auth: 'strict' }
    }, (app) => {
      app.get('/flavour', async (request) => ({ flavour: request.cookies.flavour }))
    })
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { ...admin, mode: 'session' } })
    t.equal(login.statusCode, 200, `${order}: session login`)
    const session = login.cookies.find(cookie => cookie.name === 'directus_session_token')!
    // The session cookie authenticates an upgrade to a strict endpoint: the plugin's routes read it.
    const socket = await connect(url('/websocket'), { headers: { cookie: `${session.name}=${session.value}` } })
    socket.send({ type: 'ping', uid: 1 })
    t.same(await socket.next(), { type: 'pong', uid: 1 }, `${order}: authenticated by the session cookie`)
    await socket.close()
    const flavour = await app.inject({ url: '/flavour', headers: { cookie: 'flavour=plain' } })
    t.same(flavour.json(), { flavour: 'plain' }, `${order}: the app's routes read theirs`)
  }
})

t.test("the app's @fastify/cookie defaults (parseOptions) for its own cookies stay off the plugin's", async t => {
  // @fastify/cookie puts its parseOptions under every setCookie's options: an attribute the plugin left out was the
  // app's. Its Domain made the refresh and session cookies the whole site's (every subdomain sent them), its Partitioned
  // made them partitioned, and a clearing meant for the host-only copy named the Domain and left that copy.
  const parseOptions = { domain: 'example.com', partitioned: true, expires: new Date('2099-01-01T00:00:00Z'), path: '/app' }
  const { app } = await boot(t, 'before', (app) => app.register(fastifyCookie, { parseOptions }), {
    secret, authRoutes: true, users: await directoryOf([admin]), rest: { auth: 'strict' }
  }, (app) => {
    app.get('/app/flavour', async (_request, reply) => reply.setCookie('flavour', 'plain').send())
  })
  const own = await app.inject({ url: '/app/flavour' })
  t.match(own.headers['set-cookie'], /Domain=example\.com/, "the app's own cookie keeps them")
  const headers = { host: 'app.example.com' }
  for (const mode of ['cookie', 'session'] as const) {
    const login = await app.inject({ method: 'POST', url: '/auth/login', headers, payload: { ...admin, mode } })
    t.equal(login.statusCode, 200, `${mode} login`)
    const name = mode === 'cookie' ? 'directus_refresh_token' : 'directus_session_token'
    const set = ([login.headers['set-cookie'] ?? []].flat()).filter(line => line.startsWith(`${name}=`) && !line.startsWith(`${name}=;`))
    t.equal(set.length, 1, `${mode}: one cookie set`)
    t.notMatch(set[0], /Domain=|Partitioned|Expires=|Path=\/app/i, `${mode}: host-only, unpartitioned, on /, for its Max-Age alone: ${set[0]}`)
    const value = login.cookies.find(cookie => cookie.name === name)!.value
    const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers: { ...headers, cookie: `${name}=${value}` }, payload: { mode } })
    t.equal(logout.statusCode, 204, `${mode} logout`)
    const cleared = [logout.headers['set-cookie'] ?? []].flat().filter(line => line.startsWith(`${name}=;`))
    t.ok(cleared.some(line => !/Domain=/i.test(line)), `${mode}: the host-only copy cleared`)
  }
})

t.test("the app's @fastify/jwt before the plugin verifies socket tokens; after it, beside the plugin's own from SECRET", async t => {
  const appJwt = { secret: 'the-app-secret-the-app-secret-32' }
  const { app, url } = await boot(t, 'before', (app) => app.register(fastifyJwt, appJwt), { rest: { auth: 'strict' } })
  t.equal(app.realtime.jwt, app.jwt, "before: the plugin uses the app's")
  const socket = await connect(url(`/websocket?access_token=${app.jwt.sign({ id: 'app-user' })}`))
  socket.send({ type: 'ping', uid: 1 })
  t.same(await socket.next(), { type: 'pong', uid: 1 }, "before: the app's own verifies the sockets' tokens")
  await socket.close()

  // After, with SECRET: the plugin's own instance never decorated the app, so the app's registers as it would alone.
  const after = await boot(t, 'after', (app) => app.register(fastifyJwt, appJwt), { secret, rest: { auth: 'strict' } }, (app) => {
    app.get('/me', async (request) => { await request.jwtVerify(); return request.user })
  })
  t.not(after.app.realtime.jwt, after.app.jwt, 'after: the plugin keeps its own')
  const mine = after.app.jwt.sign({ id: 'app-user' })
  t.match((await after.app.inject({ url: '/me', headers: { authorization: `Bearer ${mine}` } })).json(), { id: 'app-user' },
    "after: the app's routes verify with the app's")
  const plugins = after.app.realtime.signAccessToken({ user: 'u1', role: null, admin: false }).access_token
  const late = await connect(after.url(`/websocket?access_token=${plugins}`))
  late.send({ type: 'ping', uid: 2 })
  t.same(await late.next(), { type: 'pong', uid: 2 }, "after: the plugin's tokens open sockets")
  await late.close()
  t.equal((await refusedWith(after.url(`/websocket?access_token=${mine}`))).status, 401,
    "after: the app's tokens are no socket credential (its instance came too late to be the plugin's)")

  // After, without SECRET: the plugin has nothing to sign with when it registers, and says where @fastify/jwt goes.
  const unsigned = Fastify()
  t.teardown(() => unsigned.close())
  await t.rejects(async () => {
    unsigned.register(realtime, { env: {} })
    unsigned.register(fastifyJwt, appJwt)
    await unsigned.ready()
  }, {
    code: 'FST_REALTIME_INVALID_CONFIG',
    message: /unless the app registers @fastify\/jwt itself, before fastify-realtime/
  })
})
