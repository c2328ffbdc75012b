// A client that never answers the server's close (PROTOCOL.md section 11): the socket is cut a second on, not after
// ws's own 30 s, so a silent flood holds its places under the connection limits for the auth window and that second.
import t from 'tap'
import type { Socket } from 'node:net'
import { buildSchema } from 'graphql'
import { build, connect, fakeClock, refusedWith, type Client } from '../helpers.js'

const realSetTimeout = setTimeout

/** Waits in real time (the test's clock is fake) until `done` holds, failing after 30 s. */
async function eventually (done: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !done(); waited += 10) {
    if (waited > 30_000) throw new Error(`${what}: not within 30 s`)
    await new Promise(resolve => realSetTimeout(resolve, 10))
  }
}

/** A client that reads nothing more from now on: the server's close frame is never answered. */
function silence (client: Client): void {
  ;(client.ws as unknown as { _socket: Socket })._socket.pause()
}

for (const endpoint of ['websocket', 'graphql'] as const) {
  t.test(`/${endpoint}: a silent client closed at the end of its auth window frees its place a second on`, async t => {
    // The auth window and ws's close timer run on the fake clock; sockets in real time.
    const clock = fakeClock(t)
    const { app, url } = await build(t, {
      heartbeat: { enabled: false },
      rest: { auth: 'handshake', authTimeout: 1, connLimit: 1 },
      graphql: { schema: buildSchema('type Query { hello: String }'), authTimeout: 1, connLimit: 1 }
    })
    const protocols = endpoint === 'graphql' ? { protocols: 'graphql-transport-ws' } : {}
    const silent = await connect(url(`/${endpoint}`), protocols)
    t.teardown(() => silent.ws.terminate())
    silence(silent)
    t.equal((await refusedWith(url(`/${endpoint}`))).status, 503, 'the one place is taken')
    clock.tick(1_000)
    const socket = app.realtime.connections()[0] as unknown as { socket: { readyState: number, CLOSING: number } }
    await eventually(() => socket.socket.readyState === socket.socket.CLOSING, 'the close at the end of the auth window')
    clock.tick(1_000)
    await eventually(() => app.realtime.connections().length === 0, 'the socket cut')
    const next = await connect(url(`/${endpoint}`), protocols)
    t.pass('a new client takes the place')
    await next.close()
  })
}
