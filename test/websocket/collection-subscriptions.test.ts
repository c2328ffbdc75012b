// The README's collection subscriptions (Migration from Directus, "Collections and items") as the real @directus/sdk
// uses them: `client.subscribe('messages')`, its init and create events and its unsubscribe; and a socket that
// authenticates again as another user hears nothing more of what the first one subscribed to.
import t from 'tap'
import { authentication, createDirectus, realtime as realtimeClient } from '@directus/sdk'
import { RealtimeError, type RealtimeConnection } from '../../lib/index.js'
import { admin, build, editor, until, within } from '../helpers.js'
import { NodeWebSocket } from '../node-websocket.js'

interface Message { id: number, text: string }
interface Schema { messages: Message[] }
interface Frame { type: string, event?: string, uid?: string, status?: string, data?: Message[] }

type Uid = string | number | undefined
// As the README writes it.
const subscriptions = (connection: RealtimeConnection) =>
  (connection.state.messages ??= new Map<Uid, string>()) as Map<Uid, string>

t.test('the SDK subscribes to a collection, hears its rows, and a re-auth as another user hears none of them', async t => {
  const rows: Message[] = [{ id: 1, text: 'first' }]
  // The database read of the init: at once, unless a test holds it.
  let latestMessages = async () => rows.slice()
  const { app, url } = await build(t, {
    users: [admin, editor],
    authRoutes: true,
    rest: {
      auth: 'handshake',
      handlers: {
        async subscribe (message, connection, context) {
          if (message.collection !== 'messages') throw new RealtimeError('INVALID_PAYLOAD', 'Unknown collection.')
          const { user } = context.accountability
          if (user === null) throw new RealtimeError('FORBIDDEN', "You don't have permission to access this.")
          subscriptions(connection).set(message.uid, user)
          context.send({ type: 'subscription', event: 'init', uid: message.uid, data: await latestMessages() })
        },
        unsubscribe (message, connection) {
          subscriptions(connection).delete(message.uid)
        }
      }
    }
  })
  function created (row: Message) {
    rows.push(row)
    for (const connection of app.realtime.connections({ endpoint: 'rest' })) {
      const { user } = connection.accountability
      for (const [uid, subscriber] of subscriptions(connection)) {
        if (subscriber === user) connection.send({ type: 'subscription', event: 'create', uid, data: [row] })
      }
    }
  }

  const client = createDirectus<Schema>(url('').replace('ws:', 'http:'), { globals: { WebSocket: NodeWebSocket } })
    .with(authentication('json'))
    .with(realtimeClient({ authMode: 'handshake', reconnect: false }))
  t.teardown(() => {
    client.stopRefreshing()
    client.disconnect()
  })
  const frames: Frame[] = []
  let heard: (() => void) | null = null
  client.onWebSocket('message', (frame: Frame) => {
    frames.push(frame)
    heard?.()
  })
  /** The next frame of `type` from now on. */
  const next = (type: string) => within(new Promise<Frame>(resolve => {
    const from = frames.length
    heard = () => {
      const found = frames.slice(from).find(frame => frame.type === type)
      if (found) resolve(found)
    }
  }), type)

  await client.login(admin.email, admin.password)
  await client.connect()
  const { subscription, unsubscribe } = await client.subscribe('messages')
  t.match((await subscription.next()).value, { type: 'subscription', event: 'init', data: [{ id: 1 }] }, 'the rows so far')
  created({ id: 2, text: 'second' })
  t.match((await subscription.next()).value, { type: 'subscription', event: 'create', data: [{ id: 2 }] }, 'a new row')

  const editorTokens = await app.realtime.login({ email: editor.email, password: editor.password })
  const answered = next('auth')
  client.sendMessage({ type: 'auth', access_token: editorTokens.access_token })
  t.match(await answered, { type: 'auth', status: 'ok' }, 'the socket is the editor\'s now')
  const before = frames.length
  created({ id: 3, text: 'for the admin' })
  const pong = next('pong')
  client.sendMessage({ type: 'ping' })
  await pong
  t.same(frames.slice(before).map(frame => frame.type), ['pong'], 'the admin\'s subscription says nothing to the editor')

  unsubscribe()
  const mine = await client.subscribe('messages')
  t.match((await mine.subscription.next()).value, { event: 'init', data: [{ id: 1 }, { id: 2 }, { id: 3 }] }, 'the editor subscribes')
  created({ id: 4, text: 'for both' })
  t.match((await mine.subscription.next()).value, { event: 'create', data: [{ id: 4 }] }, 'and hears the rows from then on')

  // The init's database read spans a re-auth as the editor: what it read for the admin is not sent to the editor.
  let read: (() => void) | undefined
  latestMessages = async () => {
    await new Promise<void>(resolve => { read = resolve })
    return rows.slice()
  }
  const adminTokens = await app.realtime.login({ email: admin.email, password: admin.password })
  const reauthed = next('auth')
  client.sendMessage({ type: 'auth', access_token: adminTokens.access_token })
  t.match(await reauthed, { type: 'auth', status: 'ok' }, 'the admin\'s again')
  client.sendMessage({ type: 'subscribe', collection: 'messages', uid: 'slow' })
  await until(() => read !== undefined)
  const editorAgain = next('auth')
  client.sendMessage({ type: 'auth', access_token: editorTokens.access_token })
  t.match(await editorAgain, { type: 'auth', status: 'ok' }, 'the editor\'s while the read runs')
  const since = frames.length
  read!()
  const lastPong = next('pong')
  client.sendMessage({ type: 'ping' })
  await lastPong
  t.same(frames.slice(since).map(frame => frame.type), ['pong'], 'the rows read for the admin never reach the editor')
})
