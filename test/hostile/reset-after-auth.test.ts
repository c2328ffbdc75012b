// A client that sends its password on a socket and resets the connection at once, before anything has read the
// socket's address: the address is gone when the frame is handled. Such a client is still one, counted per address:
// before, it passed for the application's own logins (no address), which no per-address limit bounds.
import t from 'tap'
import WebSocket from 'ws'
import type { Socket } from 'node:net'
import { build, secret, until } from '../helpers.js'

/** Opens a socket, sends a password auth for `email`, and resets the TCP connection straight away. */
function authThenReset (url: string, email: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.on('open', () => {
      ws.send(JSON.stringify({ type: 'auth', email, password: 'wrong' }), () => {
        (ws as unknown as { _socket: Socket })._socket.resetAndDestroy()
        resolve()
      })
    })
    ws.on('error', () => {})
    ws.on('unexpected-response', () => reject(new Error('refused')))
  })
}

t.test('password auths whose connection resets at once count against one address: past the limit, no check runs', async t => {
  let checks = 0
  const { url } = await build(t, {
    secret,
    attemptLimit: { points: 3, durationSeconds: 60 },
    verifyCredentials: async () => { checks++; return null },
    rest: { auth: 'handshake' },
    heartbeat: { enabled: false }
  })
  // Each with an email of its own: the per-email limit never stops them, only the per-address one can.
  for (let i = 0; i < 10; i++) await authThenReset(url('/websocket'), `user${i}@example.com`)
  await until(() => checks >= 3)
  // Frames still on their way would be checked meanwhile: a slow machine can only make this miss that, never fail.
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(checks, 3, 'three checked, then the address is limited like any other')
})
