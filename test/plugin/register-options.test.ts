// Fastify's `register` options beside `prefix`: `logLevel` and `logSerializers` are the plugin's routes', as any
// plugin's would be. fastify-plugin makes Fastify leave them to the plugin, which gives them to its routes' scope.
import t, { type Test } from 'tap'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import realtime, { type RealtimeOptions } from '../../lib/index.js'
import { connect, secret } from '../helpers.js'

interface Line { level: number, reqId?: string, req?: unknown }

/**
 * The request log lines of a socket on the plugin's `/api/websocket`, a `POST /api/auth/logout` and a route of the
 * app's own, `/own`, by whose they are.
 */
async function requestLines (t: Test, options: RealtimeOptions): Promise<{ plugin: Line[], own: Line[] }> {
  const lines: Line[] = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  t.teardown(() => app.close())
  await app.register(realtime, {
    prefix: '/api', env: {}, secret, authRoutes: true, rest: { auth: 'public' }, heartbeat: { enabled: false }, ...options
  })
  app.get('/own', async (request) => request.id)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const socket = await connect(`ws://127.0.0.1:${port}/api/websocket`)
  socket.send({ type: 'ping' })
  await socket.next()
  await socket.close()
  await app.inject({ method: 'POST', url: '/api/auth/logout' })
  const own = (await app.inject('/own')).body
  const logged = lines.filter(line => line.reqId !== undefined)
  return { plugin: logged.filter(line => line.reqId !== own), own: logged.filter(line => line.reqId === own) }
}

t.test("logLevel: the plugin's routes log at it, the app's at its own", async t => {
  const atInfo = await requestLines(t, {})
  t.ok(atInfo.plugin.length >= 3, `without it, the plugin's routes log their requests at info (${atInfo.plugin.length} lines)`)

  const atWarn = await requestLines(t, { logLevel: 'warn' })
  t.same(atWarn.plugin, [], "with logLevel 'warn', not a line of the plugin's routes")
  t.equal(atWarn.own.length, 2, "the app's route logs its request and its response as before")
})

t.test("logSerializers: the plugin's routes' lines go through them, the app's do not", async t => {
  const { plugin, own } = await requestLines(t, { logSerializers: { req: (req: { url: string }) => `realtime ${req.url}` } })
  t.same(plugin.filter(line => line.req !== undefined).map(line => line.req), ['realtime /api/websocket', 'realtime /api/auth/logout'])
  t.match(own.find(line => line.req !== undefined), { req: { url: '/own' } })
})
