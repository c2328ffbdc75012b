// The plugin under `app.injectWS`, as users test their apps.
import t from 'tap'
import Fastify from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import type WebSocket from 'ws'
import realtime from '../../lib/index.js'
import { secret } from '../helpers.js'

t.test('injectWS: handshake, ping and expiry-free close without a listening server', async t => {
  const app = Fastify()
  await app.register(realtime, { env: {}, secret, heartbeat: { enabled: false } })
  // `injectWS` is @fastify/websocket's: the app registers it, before the plugin or after it.
  await app.register(fastifyWebsocket)
  t.teardown(() => app.close())
  await app.ready()
  const frames: unknown[] = []
  let arrived: () => void = () => {}
  const ws: WebSocket = await app.injectWS('/websocket', {}, {
    onInit (socket) {
      socket.on('message', (data) => { frames.push(JSON.parse(data.toString())); arrived() })
    }
  })
  const next = () => new Promise<void>(resolve => { arrived = resolve })
  let frame = next()
  ws.send(JSON.stringify({ type: 'auth', access_token: app.realtime.signAccessToken({ user: 'u1', role: null, admin: false }).access_token, uid: 1 }))
  await frame
  frame = next()
  ws.send(JSON.stringify({ type: 'ping', uid: 2 }))
  await frame
  t.same(frames, [{ type: 'auth', status: 'ok', uid: 1 }, { type: 'pong', uid: 2 }])
  t.equal(app.realtime.connections()[0].accountability.ip, null, 'no socket address under injection')
  ws.terminate()
})

t.test('injectWS with X-Forwarded-For under trustProxy: the socket opens, with no address (it has no socket to trust)', async t => {
  // Fastify's trustProxy reads the socket's address before the header, and threw: the upgrade failed.
  const app = Fastify({ trustProxy: '127.0.0.1' })
  await app.register(fastifyWebsocket)
  await app.register(realtime, { env: {}, secret, heartbeat: { enabled: false }, rest: { auth: 'public' }, connLimitPerAddress: 2 })
  t.teardown(() => app.close())
  await app.ready()
  let answered!: (frame: unknown) => void
  const pong = new Promise(resolve => { answered = resolve })
  const ws: WebSocket = await app.injectWS('/websocket', { headers: { 'x-forwarded-for': '192.0.2.9' } }, {
    onInit (socket) { socket.on('message', (data) => { answered(JSON.parse(data.toString())) }) }
  })
  ws.send(JSON.stringify({ type: 'ping', uid: 1 }))
  t.same(await pong, { type: 'pong', uid: 1 })
  t.equal(app.realtime.connections()[0].accountability.ip, null)
  ws.terminate()
})

t.test('injectWS on the logs endpoint: an admin subscriber gets the app\'s lines', async t => {
  // The lines of a turn go out corked on the socket's stream: the request's `raw.socket`, a stand-in under injection,
  // has no cork, and the write threw outside any request, ending the app's test process.
  const app = Fastify({ logger: { level: 'info', stream: { write () {} } } })
  await app.register(fastifyWebsocket)
  await app.register(realtime, { env: {}, secret, heartbeat: { enabled: false } })
  t.teardown(() => app.close())
  await app.ready()
  const frames: Array<{ type: string, event?: string, data?: { msg?: string } }> = []
  let arrived: () => void = () => {}
  const ws: WebSocket = await app.injectWS('/websocket/logs', {}, {
    onInit (socket) {
      socket.on('message', (data) => { frames.push(JSON.parse(data.toString())); arrived() })
    }
  })
  const until = (done: () => boolean) => new Promise<void>(resolve => {
    arrived = () => { if (done()) resolve() }
  })
  let frame = until(() => true)
  ws.send(JSON.stringify({ type: 'auth', access_token: app.realtime.signAccessToken({ user: 'u1', role: 'admin', admin: true }).access_token }))
  await frame
  frame = until(() => true)
  ws.send(JSON.stringify({ type: 'subscribe', log_level: 'info' }))
  await frame
  frame = until(() => frames.some(frame => frame.data?.msg === 'second'))
  app.log.info('first')
  app.log.info('second')
  await frame
  t.same(frames.filter(frame => frame.data !== undefined).map(frame => frame.data!.msg), ['first', 'second'], 'both lines, in order')
  ws.terminate()
})
