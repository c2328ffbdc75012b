// A GraphQL socket that ends while a subscription's `subscribe` resolver still awaits (a permission lookup, a store):
// the source it makes afterwards is nobody's. It is returned as soon as it is made (its listener on the app's event
// source removed), its `signal` is aborted already, and nothing of it is sent; however the socket ended.
import t, { type Test } from 'tap'
import { EventEmitter } from 'node:events'
import { GraphQLObjectType, GraphQLSchema, GraphQLString } from 'graphql'
import type { FastifyInstance } from 'fastify'
import type { GraphqlContext } from '../../types/index.js'
import { build, connect, letGoCount, until, type Client } from '../helpers.js'

/** A `subscribe` resolver that awaits the test's word, then listens on `events` until its source is returned. */
class Resolving {
  readonly events = new EventEmitter()
  entered = 0
  made = 0
  returned = 0
  /** Whether each source's signal had aborted as it was made. */
  readonly abortedAtMaking: boolean[] = []
  #release: (() => void)[] = []

  readonly schema = new GraphQLSchema({
    query: new GraphQLObjectType({ name: 'Query', fields: { hello: { type: GraphQLString } } }),
    subscription: new GraphQLObjectType({
      name: 'Subscription',
      fields: {
        notice: {
          type: GraphQLString,
          subscribe: async (_root: unknown, _args: unknown, { signal }: GraphqlContext) => {
            this.entered++
            await new Promise<void>(resolve => this.#release.push(resolve))
            return this.source(signal)
          },
          resolve: (value: unknown) => value
        }
      }
    })
  })

  release (): void {
    for (const resolve of this.#release.splice(0)) resolve()
  }

  /** An event source as apps write one over an emitter: its `return` removes its listener. */
  source (signal: AbortSignal): AsyncIterableIterator<string> {
    this.made++
    this.abortedAtMaking.push(signal.aborted)
    const waiting: ((result: IteratorResult<string>) => void)[] = []
    const listener = (notice: string) => waiting.shift()?.({ done: false, value: notice })
    this.events.on('notice', listener)
    return {
      next: () => new Promise(resolve => waiting.push(resolve)),
      return: async () => {
        this.returned++
        this.events.off('notice', listener)
        for (const resolve of waiting.splice(0)) resolve({ done: true, value: undefined })
        return { done: true, value: undefined }
      },
      [Symbol.asyncIterator] () { return this }
    }
  }
}

type Ending = (client: Client, app: FastifyInstance) => Promise<unknown>

const endings: Record<string, Ending> = {
  'the client closes': (client) => client.close(),
  'the client\'s TCP connection drops': async (client) => { client.ws.terminate() },
  'its user is revoked (4403)': (_client, app) => app.realtime.revokeUser('u1'),
  'the app closes it': async (_client, app) => { app.realtime.close({ endpoint: 'graphql' }) }
}

async function endWhileResolving (t: Test, end: Ending, sockets = 3): Promise<void> {
  const resolving = new Resolving()
  const { app, url } = await build(t, { heartbeat: { enabled: false }, graphql: { schema: resolving.schema } })
  const letGo = letGoCount(app)
  const clients: Client[] = []
  for (let i = 0; i < sockets; i++) {
    const client = await connect(url('/graphql'), { protocols: 'graphql-transport-ws' })
    client.send({ type: 'connection_init', payload: { access_token: app.realtime.jwt.sign({ id: 'u1' }) } })
    t.same(await client.next(), { type: 'connection_ack' })
    client.send({ id: 'a', type: 'subscribe', payload: { query: 'subscription { notice }' } })
    client.send({ id: 'b', type: 'subscribe', payload: { query: 'subscription { notice }' } })
    clients.push(client)
  }
  await until(() => resolving.entered === 2 * sockets)
  // Revoking the user once reaches every socket; the other endings are per socket.
  await Promise.all(clients.map(client => end(client, app)))
  await until(() => letGo() === sockets)

  resolving.release()
  await until(() => resolving.made === 2 * sockets)
  // Returned as they are made, within their turn: a few turns are all it takes (graphql-ws's `await`s).
  for (let turn = 0; turn < 3; turn++) await new Promise(resolve => setImmediate(resolve))
  t.equal(resolving.events.listenerCount('notice'), 0, 'every source made after its socket ended is returned: no listener left')
  t.same(resolving.abortedAtMaking, Array(2 * sockets).fill(true), 'each was made with its signal aborted already')
  resolving.events.emit('notice', 'late')
  await new Promise(resolve => setImmediate(resolve))
  t.same(clients.flatMap(client => client.frames), [], 'nothing of them reached a client')
  t.equal(resolving.returned, 2 * sockets, 'each returned once')
}

for (const [name, end] of Object.entries(endings)) {
  t.test(`${name} while its subscriptions' resolvers still await: the sources they make then are returned at once`, t => endWhileResolving(t, end))
}
