// A refused upgrade's connection is closed once the refusal is sent (answered-upgrades.ts): the refusal says so
// (`Connection: close`), whoever refused (the plugin's gate, the app's rate limit), as ws's own refusals do. Said
// `keep-alive`, a client that pools its connections (Node's keep-alive http.Agent, Node's default since 19; a proxy's
// upstream pool) sent its next request on the closed connection and got ECONNRESET.
import t from 'tap'
import { Agent, request as httpRequest, type OutgoingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import fastifyRateLimit from '@fastify/rate-limit'
import fastifyWebsocket from '@fastify/websocket'
import realtime from '../../lib/index.js'
import { secret } from '../helpers.js'

const upgrade = {
  connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ=='
}

for (const websocket of ['the plugin\'s', 'the app\'s'] as const) {
  t.test(`refused upgrades say Connection: close, and a keep-alive agent's next request gets its answer (${websocket} @fastify/websocket)`, async t => {
    const app = Fastify()
    t.teardown(() => app.close())
    if (websocket === 'the app\'s') await app.register(fastifyWebsocket)
    // The app's own refusal on the plugin's routes: a rate limit of three upgrades, the fourth refused. As an app-wide
    // hook, it runs before the plugin's gate and counts the upgrades the gate refuses too (README).
    await app.register(fastifyRateLimit, { global: false, max: 3, timeWindow: '1 minute', allowList: (request) => request.url === '/ping' || request.url === '/nowhere' })
    app.addHook('onRequest', app.rateLimit())
    app.get('/ping', async () => 'pong')
    await app.register(realtime, { env: {}, secret, rest: { auth: 'strict' }, heartbeat: { enabled: false } })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as AddressInfo
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    t.teardown(() => agent.destroy())
    const send = (path: string, headers: OutgoingHttpHeaders = {}) => new Promise<[number | string, string | undefined]>(resolve => {
      const sent = httpRequest({ agent, host: '127.0.0.1', port, path, headers })
      sent.on('response', (response) => {
        response.resume()
        response.on('end', () => resolve([response.statusCode!, response.headers.connection]))
      })
      sent.on('error', (err: NodeJS.ErrnoException) => resolve(['error', err.code]))
      sent.end()
    })

    const answers = []
    for (const headers of [
      { ...upgrade, origin: 'https://elsewhere.example' }, // the gate: another origin
      upgrade, // the gate: strict mode without a credential
      upgrade,
      upgrade // the app's rate limit
    ]) {
      answers.push(await send('/websocket', headers))
      // On the connection the agent pooled, were the refusal keep-alive.
      answers.push(await send('/ping'))
    }
    const ping = [200, 'keep-alive']
    t.same(answers, [[403, 'close'], ping, [401, 'close'], ping, [401, 'close'], ping, [429, 'close'], ping],
      "each refusal says close; the agent's next request gets its answer, and the app's routes keep keep-alive")
    if (websocket === 'the plugin\'s') {
      // An upgrade to a path no route has, which the plugin forwards to the app's routing: the app's 404.
      t.same([await send('/nowhere', upgrade), await send('/ping')], [[404, 'close'], ping], 'so does the 404 of a stray upgrade')
    }
  })
}
