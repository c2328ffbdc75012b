// SDK 26's `subscribe()` against the README's collection handlers (Migration from Directus, "Collections and items"):
// from SDK 21 on, its `query` reaches the handler in Directus's query-string form (18 sent it as it was given), and a
// reconnect subscribes again to what is still subscribed, and no more (18 also re-sent what it had unsubscribed).
import t from 'tap'
import { authentication, createDirectus, realtime } from '@directus/sdk-26'
import type { RealtimeMessage } from '../../lib/index.js'
import { admin, build, within } from '../helpers.js'
import { NodeWebSocket } from '../node-websocket.js'

interface Message { id: number, text: string }
interface Schema { messages: Message[], notes: Message[] }

t.test('subscribe(): the query as Directus reads it from a URL, its events by uid, and a reconnect re-sends what is held', async t => {
  const received: RealtimeMessage[] = []
  let reopened = false
  let heard!: () => void
  const resubscribed = new Promise<void>(resolve => { heard = resolve })
  const { app, url } = await build(t, {
    users: [admin],
    authRoutes: true,
    rest: {
      handlers: {
        subscribe (message, connection) {
          received.push(message)
          if (reopened) heard()
          connection.send({ type: 'subscription', event: 'init', uid: message.uid, data: [{ id: 1, text: 'first' }] })
        },
        unsubscribe (message) { received.push(message) }
      }
    }
  })
  const client = createDirectus<Schema>(url('').replace('ws:', 'http:'), { globals: { WebSocket: NodeWebSocket } })
    .with(authentication('json'))
    .with(realtime({ reconnect: { delay: 100, retries: 3 } }))
  t.teardown(() => { client.stopRefreshing(); client.disconnect() })
  await client.login({ email: admin.email, password: admin.password })
  const socket = await client.connect()

  const messages = await client.subscribe('messages', { query: { fields: ['id', 'text'], filter: { id: { _gt: 0 } }, sort: ['-id'], limit: 10 } })
  t.match((await messages.subscription.next()).value, { type: 'subscription', event: 'init', data: [{ id: 1 }] })
  t.same(received[0], {
    type: 'subscribe',
    uid: '1',
    collection: 'messages',
    query: { fields: 'id,text', filter: '{"id":{"_gt":0}}', sort: '-id', limit: '10' }
  }, 'strings, as in a URL')
  for (const connection of app.realtime.connections()) connection.send({ type: 'subscription', event: 'create', uid: '1', data: [{ id: 2, text: 'second' }] })
  t.match((await messages.subscription.next()).value, { event: 'create', data: [{ id: 2 }] })

  const notes = await client.subscribe('notes')
  await notes.subscription.next()
  notes.unsubscribe()

  reopened = true
  socket.close()
  await within(resubscribed, 'the subscription again')
  // Whatever the reconnect re-sends goes in one turn: answered before this pong.
  const pong = new Promise<void>(resolve => { client.onWebSocket('message', (frame: { type: string }) => { if (frame.type === 'pong') resolve() }) })
  client.sendMessage({ type: 'ping' })
  await within(pong, 'the pong')
  t.same(received.map(({ type, uid, collection }) => [type, uid, collection]), [
    ['subscribe', '1', 'messages'], ['subscribe', '2', 'notes'], ['unsubscribe', '2', undefined], ['subscribe', '1', 'messages']
  ])
})
