// Upgrades the app's own listeners take (a ws server of its own with `noServer`, socket.io): the plugin routes only
// its own paths while another listener is on the server, so theirs never get Fastify's 404 (lib/routes/upgrade-paths.ts).
import type { IncomingMessage } from 'node:http'
import { createConnection } from 'node:net'
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import WebSocket, { WebSocketServer } from 'ws'
import { buildSchema } from 'graphql'
import realtime from '../../lib/index.js'
import { slashTwin, upgradePaths } from '../../lib/routes/upgrade-paths.js'
import { urlRewrite } from '../../lib/routes/url-rewrite.js'
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

/** The app's own upgrade listener, last: an upgrade no listener took (none reads its socket a turn later) gets a 404. */
function answerLeftOnes (app: FastifyInstance): void {
  app.server.on('upgrade', (_request, socket) => setImmediate(() => {
    if (socket.listenerCount('data') === 0) socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n')
  }))
}

/** The status line a raw upgrade to `target` (any request target: absolute-form, a fragment) is answered with. */
function statusLine (port: number, target: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
    })
    let answer = ''
    socket.on('data', (chunk) => {
      answer += chunk.toString()
      if (answer.includes('\r\n')) { resolve(answer.split('\r\n', 1)[0]!); socket.destroy() }
    })
    socket.on('error', reject)
  })
}

t.test('with another listener, the plugin takes every URL the router routes to it: an absolute-form target, a fragment', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, { env: {}, secret, rest: { auth: 'public' }, heartbeat: { enabled: false } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  answerLeftOnes(app)
  const { port } = app.server.address() as { port: number }
  for (const target of ['/websocket', `http://127.0.0.1:${port}/websocket`, 'HTTPS://example.com/websocket?x=1', '/websocket#x', '/websocket?x#y']) {
    t.equal(await statusLine(port, target), 'HTTP/1.1 101 Switching Protocols', target)
  }
  for (const target of ['/nothing', 'http://example.com/nothing', 'http://example.com/websocket#x', 'ftp://example.com/websocket', '/websocket%23x']) {
    t.equal(await statusLine(port, target), 'HTTP/1.1 404 Not Found', `${target}: the app's`)
  }
})

t.test('with another listener and the app\'s rewriteUrl, the plugin takes the URLs the app rewrites to its paths', async t => {
  // An app served under /api, its rewrite stripping it (the routes see /websocket), and its own socket at /api/chat.
  const app = Fastify({ rewriteUrl: (request) => request.url!.replace(/^\/api(?=\/)/, '') })
  t.teardown(() => app.close())
  await app.register(realtime, { env: {}, secret, rest: { auth: 'public' }, heartbeat: { enabled: false } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  answerLeftOnes(app)
  const { port } = app.server.address() as { port: number }
  const client = await connect(`ws://127.0.0.1:${port}/api/websocket?x=1`)
  client.send({ type: 'ping', uid: 1 })
  t.same(await client.next(), { type: 'pong', uid: 1 }, '/api/websocket')
  await client.close()
  t.equal(await statusLine(port, '/api/nothing'), 'HTTP/1.1 404 Not Found', 'another path is the app\'s')
})

t.test('with another listener and ignoreTrailingSlash, a route at a prefix ending in a slash has no twin: a second slash is the app\'s', async t => {
  const app = Fastify(routerOptions({ ignoreTrailingSlash: true }))
  t.teardown(() => app.close())
  await app.register(realtime, { prefix: '/rt/', env: {}, secret, rest: { auth: 'public', path: '/' }, heartbeat: { enabled: false } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  answerLeftOnes(app)
  const { port } = app.server.address() as { port: number }
  for (const target of ['/rt', '/rt/']) t.equal(await statusLine(port, target), 'HTTP/1.1 101 Switching Protocols', target)
  t.equal(await upgradeAnswered(port, '/rt//'), 'HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n', '/rt//: no route of the router\'s, so the app\'s listener answers it, not Fastify')
})

t.test('upgradePaths: the router\'s options, percent-encoding, parameters, fragments, absolute-form targets', async t => {
  const paths = new Set(['/api/websocket'])
  const at = (matches: (request: IncomingMessage) => boolean) => (url: string) => matches({ url } as IncomingMessage)
  const plain = at(upgradePaths(paths, {}))
  t.ok(plain('/api/websocket?access_token=x'), 'the query is no part of the path')
  t.ok(plain('/api/websocket#x'), 'nor is a fragment')
  t.ok(plain('/api/websocke%74'), 'percent-decoded')
  t.notOk(at(upgradePaths(new Set(['/a@b']), {}))('/a%40b'), 'reserved characters stay escaped, as the router keeps them')
  t.notOk(at(upgradePaths(new Set(['/a%b']), {}))('/a%25b'), 'and so does an escaped %')
  t.ok(at(upgradePaths(new Set(['/a%25b']), {}))('/a%25b'), 'which the router matches as it came')
  t.notOk(plain('/api/websocket/'), 'a trailing slash is another path')
  t.notOk(plain('/API/websocket'), 'so is another case')
  t.notOk(plain('/api//websocket'), 'and a duplicate slash')
  t.notOk(plain('/api/websocket;v=1'), 'and a parameter')
  t.notOk(plain('/api/%E0%A4%A'), 'a path that does not decode is none')
  for (const url of ['http://h/api/websocket', 'https://h:1/api/websocket?x', 'HTTP://h/api/websocke%74']) t.ok(plain(url), `absolute-form: ${url}`)
  for (const url of ['http://h', 'http://h?x', 'http://h/api/websocket#x', 'ws://h/api/websocket', 'http:///api/websocket', 'http://[/api/websocket', '*']) {
    t.notOk(plain(url), `no such path: ${url}`)
  }
  t.ok(at(upgradePaths(new Set(['/']), {}))('http://h?x'), 'the root, of an absolute-form target without a path')
  const lenient = at(upgradePaths(paths, { ignoreTrailingSlash: true, routerOptions: { ignoreDuplicateSlashes: true, caseSensitive: false, useSemicolonDelimiter: true } }))
  for (const url of ['/api/websocket/', '/API/WebSocket', '/api//websocket', '/api/websocket;v=1', '/']) {
    t.equal(lenient(url), url !== '/', url)
  }
  const rewritten = at(upgradePaths(paths, {}, (request) => {
    if (request.url === '/throws') throw new Error('a rewriteUrl that throws')
    return request.url === '/no-string' ? 5 : `/api${request.url!}`
  }))
  t.ok(rewritten('/websocket'), 'the URL the app\'s rewriteUrl gives')
  t.notOk(rewritten('/api/websocket'), 'not the one the client sent')
  t.notOk(rewritten('/throws'), 'none when it throws')
  t.notOk(rewritten('/no-string'), 'nor when it gives no string')
})

t.test('slashTwin: Fastify adds a route at a prefix its twin with a trailing slash unless its router takes both at one', async t => {
  t.equal(slashTwin('/rt', {}), true, 'no router options')
  t.equal(slashTwin('/rt', { routerOptions: { ignoreTrailingSlash: true } }), false, 'ignoreTrailingSlash')
  t.equal(slashTwin('/rt/', { ignoreDuplicateSlashes: true }), false, 'ignoreDuplicateSlashes, the prefix ending in a slash')
  t.equal(slashTwin('/rt', { ignoreDuplicateSlashes: true }), true, 'ignoreDuplicateSlashes, the prefix without one')
})

t.test('urlRewrite: the app\'s rewriteUrl, called on the root instance as Fastify calls it, from any scope', async t => {
  t.equal(urlRewrite(Fastify()), undefined, 'none set')
  t.equal(urlRewrite({}), undefined, 'no Fastify')
  const root: { app?: FastifyInstance } = {}
  const app: FastifyInstance = Fastify({ rewriteUrl (this: unknown, request): string { return this === root.app ? `/rewritten${request.url!}` : 'not the root' } })
  root.app = app
  await app.register(async (scope: FastifyInstance) => {
    t.equal(urlRewrite(scope)?.({ url: '/x' } as IncomingMessage), '/rewritten/x')
  })
  await app.ready()
  await app.close()
})
