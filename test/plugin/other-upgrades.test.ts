// Upgrades the app's own listeners take (a ws server of its own with `noServer`, socket.io): the plugin routes only
// its own paths while another listener is on the server, so theirs never get Fastify's 404 (lib/routes/upgrade-paths.ts).
import t, { type Test } from 'tap'
import Fastify, { type FastifyServerOptions } from 'fastify'
import WebSocket, { WebSocketServer } from 'ws'
import { buildSchema } from 'graphql'
import realtime from '../../lib/index.js'
import { upgradePaths } from '../../lib/routes/upgrade-paths.js'
import { connect, routerOptions, secret, upgradeAnswered } from '../helpers.js'

/** An app with the plugin (JSON endpoint public) and ws's own server for `/chat`, listening before or after `listen`. */
async function boot (t: Test, when: 'before' | 'after', serverOptions: FastifyServerOptions = {}) {
  const app = Fastify(serverOptions)
  t.teardown(() => app.close())
  await app.register(realtime, { env: {}, secret, rest: { auth: 'public' }, heartbeat: { enabled: false } })
  const chat = new WebSocketServer({ noServer: true })
  t.teardown(() => chat.close())
  chat.on('connection', (ws) => ws.on('message', (data) => ws.send(`echo:${String(data)}`)))
  // As ws's README has it, but leaving the other paths to the other listeners.
  const listen = () => app.server.on('upgrade', (request, socket, head) => {
    if (request.url === '/chat') chat.handleUpgrade(request, socket, head, (ws) => chat.emit('connection', ws, request))
  })
  if (when === 'before') listen()
  await app.listen({ host: '127.0.0.1', port: 0 })
  if (when === 'after') listen()
  const { port } = app.server.address() as { port: number }
  return { app, port, url: (path: string) => `ws://127.0.0.1:${port}${path}` }
}

/** The first frame the app's own /chat answers to `hi`. */
function chatEcho (url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.on('open', () => ws.send('hi'))
    ws.on('message', (data) => { resolve(String(data)); ws.close() })
    ws.on('error', reject)
  })
}

for (const when of ['before', 'after'] as const) {
  t.test(`the app's own ws server, listening ${when} listen: its socket and the plugin's both work`, async t => {
    const { url } = await boot(t, when)
    t.equal(await chatEcho(url('/chat')), 'echo:hi', 'the app\'s socket, untouched by the plugin')
    const client = await connect(url('/websocket'))
    client.send({ type: 'ping', uid: 1 })
    t.same(await client.next(), { type: 'pong', uid: 1 }, 'the plugin\'s')
    await client.close()
  })
}

t.test('with another listener on the server, the plugin still takes its paths as the router matches them', async t => {
  const { url } = await boot(t, 'before', routerOptions({ caseSensitive: false, ignoreTrailingSlash: true }))
  const client = await connect(url('/WebSocket/?x=1'))
  client.send({ type: 'ping', uid: 1 })
  t.same(await client.next(), { type: 'pong', uid: 1 })
  await client.close()
})

t.test('with another listener, a route at the prefix itself is taken at both its URLs, and one with a reserved character', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, { prefix: '/rt', env: {}, secret, rest: { auth: 'public', path: '/' }, graphql: { path: '/g@1', auth: 'public', schema: buildSchema('type Query { hello: String }') }, heartbeat: { enabled: false } })
  app.server.on('upgrade', () => {}) // the app's own listener, which takes none of these
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  for (const path of ['/rt', '/rt/']) {
    const client = await connect(`ws://127.0.0.1:${port}${path}`)
    client.send({ type: 'ping', uid: 1 })
    t.same(await client.next(), { type: 'pong', uid: 1 }, path)
    await client.close()
  }
  const graphql = await connect(`ws://127.0.0.1:${port}/rt/g@1`, { protocols: 'graphql-transport-ws' })
  graphql.send({ type: 'connection_init' })
  t.match(await graphql.next(), { type: 'connection_ack' }, '/rt/g@1')
  await graphql.close()
})

t.test('two instances of the plugin and the app\'s own listener: each takes its own paths, and the app\'s the rest', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  for (const prefix of ['/v1', '/v2']) {
    await app.register(async (scope) => {
      await scope.register(realtime, { prefix, env: {}, secret, rest: { auth: 'public' }, heartbeat: { enabled: false } })
    })
  }
  const chat = new WebSocketServer({ noServer: true })
  t.teardown(() => chat.close())
  chat.on('connection', (ws) => ws.on('message', (data) => ws.send(`echo:${String(data)}`)))
  app.server.on('upgrade', (request, socket, head) => {
    if (request.url === '/chat') chat.handleUpgrade(request, socket, head, (ws) => chat.emit('connection', ws, request))
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  t.equal(await chatEcho(`ws://127.0.0.1:${port}/chat`), 'echo:hi', 'the app\'s socket, untouched by either instance')
  for (const prefix of ['/v1', '/v2']) {
    const client = await connect(`ws://127.0.0.1:${port}${prefix}/websocket`)
    client.send({ type: 'ping', uid: 1 })
    t.same(await client.next(), { type: 'pong', uid: 1 }, prefix)
    await client.close()
  }
})

t.test('alone on the server, the plugin answers a stray upgrade with its 404', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, { env: {}, secret, rest: { auth: 'public' }, heartbeat: { enabled: false } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.match(await upgradeAnswered((app.server.address() as { port: number }).port, '/nothing'), /^HTTP\/1\.1 404 /)
})

t.test('upgradePaths: the router\'s options, percent-encoding, parameters', async t => {
  const paths = new Set(['/api/websocket'])
  const plain = upgradePaths(paths, {})
  t.ok(plain('/api/websocket?access_token=x'), 'the query is no part of the path')
  t.ok(plain('/api/websocke%74'), 'percent-decoded')
  t.notOk(upgradePaths(new Set(['/a@b']), {})('/a%40b'), 'reserved characters stay escaped, as the router keeps them')
  t.notOk(plain('/api/websocket/'), 'a trailing slash is another path')
  t.notOk(plain('/API/websocket'), 'so is another case')
  t.notOk(plain('/api//websocket'), 'and a duplicate slash')
  t.notOk(plain('/api/websocket;v=1'), 'and a parameter')
  t.notOk(plain('/api/%E0%A4%A'), 'a path that does not decode is none')
  const lenient = upgradePaths(paths, { ignoreTrailingSlash: true, routerOptions: { ignoreDuplicateSlashes: true, caseSensitive: false, useSemicolonDelimiter: true } })
  for (const url of ['/api/websocket/', '/API/WebSocket', '/api//websocket', '/api/websocket;v=1', '/']) {
    t.equal(lenient(url), url !== '/', url)
  }
})
