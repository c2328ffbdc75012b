// A client that sends its password on a socket and resets the connection at once. A socket's frames are handled one a
// turn (PROTOCOL.md section 11), the first of a read as it is read: one handled before the reset is seen is an attempt
// like any other, of the address the socket still has. One behind it in a read that brought the reset is dropped
// unread, as any frame behind a close is, neither checked nor counted (its client is gone and could read no answer; a
// check that never runs tells an attacker nothing). Either way no reset lets a client past its address's limit.
// A client the server has no address for (a server on a Unix socket, behind a proxy that sends no X-Forwarded-For)
// is counted all the same: every such client shares one address.
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Socket } from 'node:net'
import Fastify from 'fastify'
import t from 'tap'
import WebSocket from 'ws'
import realtime from '../../lib/index.js'
import { build, connect, secret, within } from '../helpers.js'

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

t.test('password auths whose connection resets at once: never more checked than the address\'s limit allows', async t => {
  let checks = 0
  const { app, url } = await build(t, {
    secret,
    attemptLimit: { points: 3, durationSeconds: 60 },
    verifyCredentials: async () => { checks++; return null },
    rest: { auth: 'handshake' },
    heartbeat: { enabled: false }
  })
  let closed = 0
  const allClosed = new Promise<void>(resolve => app.realtime.on('close', () => { if (++closed === 10) resolve() }))
  // Each with an email of its own: the per-email limit never stops them, only the per-address one can.
  for (let i = 0; i < 10; i++) await authThenReset(url('/websocket'), `user${i}@example.com`)
  // A socket closes once ws has handed over every frame it read: what was not dropped has started its check by then.
  await within(allClosed, 'the ten closes')
  await new Promise(resolve => setImmediate(resolve))
  t.ok(checks <= 3, `${checks} checked: at most three, then the address is limited like any other`)
})

t.test('clients the server has no address for share one: past its limit, no check runs', async t => {
  let checks = 0
  const app = Fastify()
  await app.register(realtime, {
    env: {},
    secret,
    attemptLimit: { points: 3, durationSeconds: 60 },
    verifyCredentials: async () => { checks++; return null },
    rest: { auth: 'handshake' },
    heartbeat: { enabled: false }
  })
  const path = join(tmpdir(), `realtime-${process.pid}.sock`)
  await rm(path, { force: true })
  await app.listen({ path })
  t.teardown(() => app.close())
  const answers: unknown[] = []
  for (let i = 0; i < 5; i++) {
    const client = await connect(`ws+unix://${path}:/websocket`)
    client.send({ type: 'auth', email: `user${i}@example.com`, password: 'wrong' })
    answers.push(await within(client.next(), 'the answer'))
    await within(client.closed, 'the close')
  }
  t.equal(checks, 3, 'three checked, then the shared address is limited')
  t.match(answers.slice(3), [{ error: { code: 'REQUESTS_EXCEEDED' } }, { error: { code: 'REQUESTS_EXCEEDED' } }])
})
