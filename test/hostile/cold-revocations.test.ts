// Revocations and a cold process (PROTOCOL.md section 11): a process that has never loaded the revocation set refuses
// access tokens that carry a session with SERVICE_UNAVAILABLE until it has loaded it; then it refuses the revoked
// ones and accepts the others, and goes on with what it knows when Redis is away again. Redis is reached through a
// proxy the test opens and closes, so "Redis is down" for the cold process while the revocation already sits in it.
import t from 'tap'
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net'
import { referenceSchema } from '../../example/schema.js'
import { build, connect, refusedWith, whoami } from '../helpers.js'
import { RedisServer } from '../redis-server.js'

const unavailable = { errors: [{ message: 'Service unavailable.', extensions: { code: 'SERVICE_UNAVAILABLE' } }] }
const identity = { user: 'u1', role: 'editor', admin: false }
const schema = referenceSchema(() => null)

/** A TCP proxy to Redis on a port of its own: closed, the port refuses connections as a Redis that is down does. */
class Link {
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  port = 0

  constructor (redisPort: number) {
    this.#server = createServer(client => {
      const upstream = tcpConnect(redisPort, '127.0.0.1')
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket)
        socket.on('error', () => {})
        socket.on('close', () => { client.destroy(); upstream.destroy(); this.#sockets.delete(socket) })
      }
      client.pipe(upstream).pipe(client)
    })
  }

  up (): Promise<void> {
    return new Promise(resolve => this.#server.listen(this.port, '127.0.0.1', () => {
      this.port = (this.#server.address() as { port: number }).port
      resolve()
    }))
  }

  down (): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    return new Promise(resolve => this.#server.close(() => resolve()))
  }
}

/** Whether an upgrade with `token` opens (the socket is closed again at once), or the HTTP status that refused it. */
async function upgrade (url: string): Promise<number | 'open'> {
  try {
    const client = await connect(url)
    await client.close()
    return 'open'
  } catch (err) {
    return Number((err as Error).message.replace('HTTP ', ''))
  }
}

t.test('a process started while Redis is down refuses session tokens (503) until it has loaded the revocations', async t => {
  const redis = await RedisServer.start(t)
  const issuer = await build(t, { redis: redis.url }, { logger: false })
  await issuer.app.realtime.revokeSession('session-revoked')

  const link = new Link(redis.port)
  await link.up()
  await link.down() // the port is known, and nothing listens on it
  t.teardown(() => link.down())
  const cold = await build(t, {
    redis: `redis://127.0.0.1:${link.port}`, rest: { handlers: { whoami } }, graphql: { schema }
  }, { logger: false })
  const valid = cold.app.realtime.signAccessToken(identity, 'session-valid').access_token
  const revoked = cold.app.realtime.signAccessToken(identity, 'session-revoked').access_token
  const sessionless = cold.app.realtime.signAccessToken(identity).access_token

  const refused = await refusedWith(cold.url(`/websocket?access_token=${valid}`))
  t.same({ status: refused.status, body: JSON.parse(refused.body) }, { status: 503, body: unavailable }, 'at the upgrade: 503')
  t.equal(await upgrade(cold.url(`/websocket?access_token=${revoked}`)), 503, 'the revoked one too: nothing is known yet')
  t.equal(await upgrade(cold.url(`/graphql?access_token=${valid}`)), 503, 'on every endpoint')

  const handshake = await connect(cold.url('/websocket'))
  handshake.send({ type: 'auth', access_token: valid })
  t.same(await handshake.next(), { type: 'auth', status: 'error', error: { code: 'SERVICE_UNAVAILABLE', message: 'Service unavailable.' } })
  t.equal((await handshake.closed).code, 1013, 'as the handshake\'s first message: closed 1013, try again later')

  const later = await connect(cold.url(`/websocket?access_token=${sessionless}`))
  later.send({ type: 'whoami', uid: 1 })
  t.same(await later.next(), { type: 'whoami', uid: 1, user: 'u1' }, 'a token without a session is unaffected')
  later.send({ type: 'auth', access_token: valid, uid: 2 })
  t.same(await later.next(), {
    type: 'auth', status: 'error', error: { code: 'SERVICE_UNAVAILABLE', message: 'Service unavailable.' }, uid: 2
  }, 'a later auth message: SERVICE_UNAVAILABLE, and the socket stays')
  later.send({ type: 'whoami', uid: 3 })
  t.same(await later.next(), { type: 'whoami', uid: 3, user: 'u1' }, 'with the identity it had')
  await later.close()

  const graphql = await connect(cold.url('/graphql'), { protocols: 'graphql-transport-ws' })
  graphql.send({ type: 'connection_init', payload: { access_token: valid } })
  t.same(await graphql.closed, { code: 1013, reason: 'Service unavailable.' }, 'GraphQL connection_init: 1013, to be retried')

  await link.up() // Redis reachable: the cold process subscribes and loads the revocation set
  let status = await upgrade(cold.url(`/websocket?access_token=${valid}`))
  for (let attempt = 0; status === 503 && attempt < 400; attempt++) {
    await new Promise(resolve => setTimeout(resolve, 25))
    status = await upgrade(cold.url(`/websocket?access_token=${valid}`))
  }
  t.equal(status, 'open', 'once loaded, a valid session token is accepted')
  t.equal(await upgrade(cold.url(`/websocket?access_token=${revoked}`)), 401, 'and the revoked one refused')

  await link.down() // an outage after the load: the process goes on with what it knows
  t.equal(await upgrade(cold.url(`/websocket?access_token=${valid}`)), 'open', 'during an outage, valid: accepted')
  t.equal(await upgrade(cold.url(`/websocket?access_token=${revoked}`)), 401, 'revoked: refused')
  const init = await connect(cold.url('/graphql'), { protocols: 'graphql-transport-ws' })
  init.send({ type: 'connection_init', payload: { access_token: valid } })
  t.match(await init.next(), { type: 'connection_ack' }, 'GraphQL too')
  await init.close()
})
