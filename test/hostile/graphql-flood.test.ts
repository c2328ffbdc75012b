// A GraphQL client flooding documents (PROTOCOL.md section 11): a socket has one frame handled a turn of the event
// loop, so another socket's frame waits for a few of the flooder's, not for everything the flooder's reads brought in
// (ws hands over every message of a read at once, and the server reads one socket many times in a turn). Counted in
// documents the server prepared, not in milliseconds: load cannot change the count.
import type { Socket } from 'node:net'
import t from 'tap'
import WebSocket from 'ws'
import { GraphQLInt, GraphQLObjectType, GraphQLSchema, GraphQLString } from 'graphql'
import { createClient } from 'graphql-ws'
import { build, within } from '../helpers.js'
import { GraphqlSocket, type Frame } from './graphql-socket.js'

/** Far fewer than what one read of the flooder's socket holds (64 KiB: about 65 of its documents). */
const bound = 10

t.test('one GraphQL socket flooding documents: a query of the graphql-ws client on another waits for a few of them', async t => {
  let prepared = 0
  let flooding: (() => void) | null = null
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({
      name: 'Query',
      fields: {
        me: { type: new GraphQLObjectType({ name: 'Me', fields: { id: { type: GraphQLString } } }), resolve: () => null },
        // The documents prepared so far, this one included.
        prepared: { type: GraphQLInt, resolve: () => prepared }
      }
    })
  })
  // Called as each document is prepared, before its validation.
  const schemaOf = () => {
    prepared++
    flooding?.()
    return schema
  }
  const { app, url } = await build(t, { heartbeat: { enabled: false }, graphql: { auth: 'public', schema: schemaOf } })
  const client = createClient({ url: url('/graphql'), webSocketImpl: WebSocket, retryAttempts: 0, lazy: false })
  t.teardown(() => client.dispose())
  await within(new Promise(resolve => client.on('connected', resolve)), 'the connection_ack')
  const attacker = await GraphqlSocket.open(url('/graphql'))

  // The reviewer's document: 993 bytes, about a millisecond to validate.
  const query = `{ ${Array.from({ length: 99 }, () => 'me { id }').join(' ')} }`
  const flood = Array.from({ length: 1000 }, (_v, i): Frame => ({ id: `${i}`, type: 'subscribe', payload: { query } }))
  const sent = flood.reduce((bytes, frame) => bytes + JSON.stringify(frame).length, 0)
  // The query goes as the first of the flood is prepared (in the microtasks after it): the server has the rest of the
  // attacker's 1 MB to read by then.
  const asked = new Promise<number>(resolve => {
    flooding = () => {
      flooding = null
      resolve(prepared)
    }
  })
  attacker.atOnce(...flood)
  const before = await within(asked, 'the first document of the flood')
  const answer = await within(client.iterate({ query: '{ prepared }' }).next(), 'the query\'s answer')
  const between = (answer.value as { data: { prepared: number } }).data.prepared - before - 1
  const { localPort } = (attacker.client.ws as unknown as { _socket: Socket })._socket
  const { bytesRead } = [...app.realtime.connections()].map(c => c.request.raw.socket).find(s => s.remotePort === localPort)!
  attacker.client.ws.terminate()
  t.ok(between < bound, `${between} of the flood's documents were prepared between the query and its answer`)
  // What the server has read and not handled yet is a few reads' worth: the rest waits in TCP's buffers.
  t.ok(bytesRead < 256 * 1024, `the server had read ${Math.round(bytesRead / 1024)} KiB of the flood's ${Math.round(sent / 1024)} KiB`)
})
