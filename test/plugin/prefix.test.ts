// `register(realtime, { prefix })`: every route of the plugin is mounted under it, as any plugin's routes would be.
// fastify-plugin makes the plugin share the app's instance, so Fastify leaves the prefix to the plugin.
import t from 'tap'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { buildSchema } from 'graphql'
import realtime from '../../lib/index.js'
import { admin, connect, directoryOf, refusedWith, secret, upgradeAnswered, within } from '../helpers.js'

const schema = buildSchema('type Query { hello: String }')

const paths = ['/websocket', '/websocket/logs', '/graphql']
const authPaths = ['/auth/login', '/auth/refresh', '/auth/logout']

t.test('every route of the plugin is mounted under the prefix it was registered with', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, {
    prefix: '/api', env: {}, secret, authRoutes: true, users: await directoryOf([admin]), graphql: { schema }, heartbeat: { enabled: false }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const url = (path: string) => `ws://127.0.0.1:${port}${path}`

  for (const path of paths) {
    t.ok(app.hasRoute({ method: 'GET', url: `/api${path}` }), `GET /api${path}`)
    t.notOk(app.hasRoute({ method: 'GET', url: path }), `no GET ${path}`)
  }
  for (const path of authPaths) {
    t.ok(app.hasRoute({ method: 'POST', url: `/api${path}` }), `POST /api${path}`)
    t.notOk(app.hasRoute({ method: 'POST', url: path }), `no POST ${path}`)
  }

  const login = await app.inject({ method: 'POST', url: '/api/auth/login', payload: admin })
  t.equal(login.statusCode, 200, 'logged in at /api/auth/login')
  const { access_token: accessToken } = login.json<{ data: { access_token: string } }>().data
  const socket = await connect(url('/api/websocket'))
  socket.send({ type: 'auth', access_token: accessToken, uid: 1 })
  t.same(await socket.next(), { type: 'auth', status: 'ok', uid: 1 }, 'a socket on /api/websocket')
  await socket.close()
  t.equal((await refusedWith(url('/websocket'))).status, 404, 'nothing on /websocket')
})

t.test('the prefix adds to the one of the scope the plugin is registered in, and to authRoutes.prefix', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(async (v1) => {
    await v1.register(realtime, { prefix: '/live', env: {}, secret, authRoutes: { prefix: '/session' }, rest: { auth: 'public' } })
  }, { prefix: '/v1' })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  t.ok(app.hasRoute({ method: 'POST', url: '/v1/live/session/login' }))
  const socket = await connect(`ws://127.0.0.1:${port}/v1/live/websocket`)
  socket.send({ type: 'ping', uid: 1 })
  t.same(await socket.next(), { type: 'pong', uid: 1 })
  await socket.close()
})

t.test('the plugin registered twice, under two prefixes in sibling scopes: both serve their sockets, each upgrade routed once', async t => {
  // Each instance's @fastify/websocket routed every upgrade through the whole app, and the second one to try failed,
  // logging `websocket upgrade failed` (ERR_HTTP_SOCKET_ASSIGNED) for every socket.
  const warnings: string[] = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { warnings.push(line) } } } })
  t.teardown(() => app.close())
  for (const prefix of ['/v1', '/v2']) {
    await app.register(async (scope) => {
      await scope.register(realtime, { prefix, env: {}, secret, rest: { auth: 'public' }, heartbeat: { enabled: false } })
    })
  }
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  for (const prefix of ['/v1', '/v2']) {
    const socket = await connect(`ws://127.0.0.1:${port}${prefix}/websocket`)
    socket.send({ type: 'ping', uid: 1 })
    t.same(await socket.next(), { type: 'pong', uid: 1 }, `a socket on ${prefix}/websocket`)
    await socket.close()
  }
  t.same(warnings, [], 'no warning')
})

t.test('the plugin registered twice, with no listener of the app\'s: an upgrade to no route gets one 404, its connection closed', async t => {
  // Each instance took the other's forwarder for a listener of the app's and left the upgrade to it: never answered,
  // its connection held for good (and the app's close with it), an app route asked with `Upgrade: h2c` never answered.
  const app = Fastify()
  t.teardown(() => app.close())
  app.get('/health', async () => 'ok')
  for (const prefix of ['/v1', '/v2']) {
    await app.register(async (scope) => {
      await scope.register(realtime, { prefix, env: {}, secret, rest: { auth: 'public' }, heartbeat: { enabled: false } })
    })
  }
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  t.match(await within(upgradeAnswered(port, '/nothing'), 'the close of an upgrade to no route'), /^HTTP\/1\.1 404 /)
  t.match(await within(upgradeAnswered(port, '/health', 'h2c'), 'the close of an app route asked with h2c'), /^HTTP\/1\.1 200 [^]*\r\n\r\nok$/)
  t.match(await within(upgradeAnswered(port, '/v2/websocket?access_token=bad'), 'the close of a refused upgrade'), /^HTTP\/1\.1 401 /)
  await within(app.close(), 'the app\'s close')
})

t.test('the plugin registered twice, the first closing: an upgrade of its own gets one 503, the second\'s still opens, a stray one is answered', async t => {
  // The first instance closes first (its preClose hook, held by a check in flight) and answers its upgrades itself; the
  // second still serves, and routes what no instance has.
  const warnings: string[] = []
  let entered!: () => void
  const checking = new Promise<void>(resolve => { entered = resolve })
  let release!: () => void
  const released = new Promise<void>(resolve => { release = resolve })
  const app = Fastify({ return503OnClosing: false, logger: { level: 'warn', stream: { write: (line: string) => { warnings.push(line) } } } })
  t.teardown(() => app.close())
  for (const prefix of ['/v1', '/v2']) {
    await app.register(async (scope) => {
      const verifyCredentials = async () => { entered(); await released; return null }
      await scope.register(realtime, { prefix, env: {}, secret, heartbeat: { enabled: false }, verifyCredentials })
    })
  }
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const checked = await connect(`ws://127.0.0.1:${port}/v1/websocket`)
  checked.send({ type: 'auth', email: admin.email, password: 'wrong' })
  await within(checking, 'the check to start')
  const idle = await connect(`ws://127.0.0.1:${port}/v1/websocket`)
  const closing = app.close()
  await within(idle.closed, 'the first instance\'s idle socket\'s close')
  const refused = await within(upgradeAnswered(port, '/v1/websocket'), 'the close of an upgrade to the first instance')
  t.match(refused, /^HTTP\/1\.1 503 Service Unavailable\r\n[^]*\r\n\r\n\{"errors":\[\{"message":"Service unavailable\.","extensions":\{"code":"SERVICE_UNAVAILABLE"\}\}\]\}$/, 'one 503, nothing after it')
  const second = await within(connect(`ws://127.0.0.1:${port}/v2/websocket`), 'a socket on the second instance')
  t.match(await within(upgradeAnswered(port, '/nothing'), 'the close of an upgrade to no route'), /^HTTP\/1\.1 404 /, 'a stray one: the second routes it')
  release()
  t.match(await within(checked.next(), 'the check\'s answer'), { type: 'auth', status: 'error' })
  await within(second.closed, 'the second instance\'s socket closed with the app')
  await within(closing, 'the app\'s close')
  t.same(warnings, [], 'no warning')
})

t.test('the plugin registered twice in one scope: boot says to register instances in sibling scopes', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, { prefix: '/v1', env: {}, secret, rest: { auth: 'public' } })
  await t.rejects(async () => {
    await app.register(realtime, { prefix: '/v2', env: {}, secret, rest: { auth: 'public' } })
    await app.ready()
  }, { code: 'FST_REALTIME_INVALID_CONFIG', message: /^Invalid configuration: fastify-realtime is already registered in this scope or a parent scope: register instances in sibling scopes/ })
})

t.test('the plugin registered in a child of a scope that has it: boot says the parent scope has it', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, { env: {}, secret, rest: { auth: 'public' } })
  await t.rejects(async () => {
    await app.register(async (tenant) => {
      await tenant.register(realtime, { prefix: '/t1', env: {}, secret, rest: { auth: 'public' } })
    })
    await app.ready()
  }, { code: 'FST_REALTIME_INVALID_CONFIG', message: /already registered in this scope or a parent scope: register instances in sibling scopes/ })
})

t.test('the plugin registered in a scope of the app\'s: an upgrade to no route gets its 404, and its connection is closed', async t => {
  // The 404 comes from the app's root, outside the plugin's scope: a hook of the plugin's scope never saw it, and the
  // connection stayed open as long as the client kept it (a client could hold the server's sockets that way).
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(async (scope) => {
    await scope.register(realtime, { prefix: '/v1', env: {}, secret, rest: { auth: 'public' }, heartbeat: { enabled: false } })
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  t.match(await within(upgradeAnswered(port, '/nothing'), 'the close of an upgrade to no route'), /^HTTP\/1\.1 404 /)
  t.match(await within(upgradeAnswered(port, '/v1/websocket?access_token=bad'), 'the close of a refused upgrade'), /^HTTP\/1\.1 401 /)
})
