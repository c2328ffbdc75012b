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
