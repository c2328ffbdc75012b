// Every close the server begins on a GraphQL socket ends its subscriptions at once: their `signal` aborts while the
// socket is closing, not once its client answers the close (ws waits 30 s for one that never does), whoever closed it:
// the app (`connection.close`, `fastify.realtime.close`, the app closing), the heartbeat, the outbound cap, ws itself
// on a frame over the payload limit. The client stops reading before the close: it never answers it.
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { GraphQLObjectType, GraphQLSchema, GraphQLString } from 'graphql'
import type { FastifyInstance } from 'fastify'
import type { Clock } from '@sinonjs/fake-timers'
import type { Connection } from '../../lib/connection/connection.js'
import type { RealtimeOptions } from '../../lib/index.js'
import { build, connect, fakeClock, until, type Client } from '../helpers.js'

/** A subscription whose events the test pushes; it records the server socket's state as its signal aborts. */
class Watched {
  /** The server socket's readyState each time a subscription's signal aborted. */
  readonly aborts: number[] = []
  ended = false
  server: WebSocket | null = null
  readonly #queue: string[] = []
  #wake: (() => void) | null = null

  readonly schema = new GraphQLSchema({
    query: new GraphQLObjectType({ name: 'Query', fields: { hello: { type: GraphQLString } } }),
    subscription: new GraphQLObjectType({
      name: 'Subscription',
      fields: {
        watched: {
          type: GraphQLString,
          subscribe: (_root: unknown, _args: unknown, { signal }: { signal: AbortSignal }) => this.events(signal)
        }
      }
    })
  })

  push (value: string): void {
    this.#queue.push(value)
    this.#wake?.()
  }

  async * events (signal: AbortSignal): AsyncGenerator<{ watched: string }> {
    signal.addEventListener('abort', () => {
      this.aborts.push(this.server!.readyState)
      this.#wake?.()
    })
    try {
      while (!signal.aborted) {
        const value = this.#queue.shift()
        if (value === undefined) await new Promise<void>(resolve => { this.#wake = resolve })
        else yield { watched: value }
      }
    } finally {
      this.ended = true
    }
  }
}

interface Subscribed {
  app: FastifyInstance
  client: Client
  server: Connection
  watched: Watched
}

/** A socket authenticated as u1 with a running subscription, which got its first event; then its client stops reading. */
async function subscribed (t: Test, options: RealtimeOptions = {}): Promise<Subscribed> {
  const watched = new Watched()
  const { app, url } = await build(t, { heartbeat: { enabled: false }, ...options, graphql: { schema: watched.schema } })
  const client = await connect(url('/graphql'), { protocols: 'graphql-transport-ws' })
  client.send({ type: 'connection_init', payload: { access_token: app.realtime.jwt.sign({ id: 'u1' }) } })
  t.same(await client.next(), { type: 'connection_ack' })
  const server = app.realtime.connections({ endpoint: 'graphql' })[0] as Connection
  watched.server = server.socket
  client.send({ id: '1', type: 'subscribe', payload: { query: 'subscription { watched }' } })
  watched.push('first')
  t.same(await client.next(), { id: '1', type: 'next', payload: { data: { watched: 'first' } } })
  client.ws.pause() // reads nothing more: the close never gets an answer
  return { app, client, server, watched }
}

/** Once the server began closing: the client goes away, and the subscription ended, at the latest, with the socket. */
async function endedAt (t: Test, { client, server, watched }: Subscribed): Promise<void> {
  await until(() => server.socket.readyState !== WebSocket.OPEN)
  client.ws.terminate()
  await until(() => watched.ended)
  t.same(watched.aborts, [WebSocket.CLOSING], 'its signal aborted as the socket began closing, its client silent')
}

t.test('connection.close', async t => {
  const subscription = await subscribed(t)
  subscription.server.close(4000, 'kicked')
  await endedAt(t, subscription)
})

t.test('fastify.realtime.close', async t => {
  const subscription = await subscribed(t)
  subscription.app.realtime.close({ user: 'u1' }, 4000, 'kicked')
  await endedAt(t, subscription)
})

t.test('the app closing', async t => {
  const subscription = await subscribed(t)
  const closing = subscription.app.close()
  await endedAt(t, subscription)
  await closing
})

t.test('the heartbeat, at the beat after an unanswered ping', async t => {
  // Beats on a fake clock: the client is silent by design, and the test need not wait for periods.
  const clock: Clock = fakeClock(t, ['setInterval', 'clearInterval'])
  const subscription = await subscribed(t, { heartbeat: { period: 0.1 } })
  clock.tick(100) // pinged: its client reads nothing, so never answers
  clock.tick(100)
  await endedAt(t, subscription)
})

t.test('the outbound cap: an event its client would not read in time', async t => {
  const subscription = await subscribed(t, { maxBufferedBytes: 1024 })
  subscription.watched.push('x'.repeat(2048))
  await endedAt(t, subscription)
})

t.test('ws, on a frame over the payload limit', async t => {
  const subscription = await subscribed(t, { env: { WEBSOCKETS_MAX_PAYLOAD: '1024' } })
  subscription.client.ws.send('x'.repeat(2048))
  await endedAt(t, subscription)
})
