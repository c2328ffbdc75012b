// The application API: message handlers, and reaching sockets by user or session.
import t from 'tap'
import { RealtimeError, type RealtimeConnection } from '../../lib/index.js'
import { admin, build, connect } from '../helpers.js'

t.test('handlers get the message and the socket with its accountability; errors become error frames', async t => {
  const logged: string[] = []
  const { app, url } = await build(t, {
    rest: {
      handlers: {
        echo: (message, connection) => connection.send({ type: 'echo', uid: message.uid, user: connection.accountability.user, body: message.body }),
        later: async (message, connection) => { connection.send({ type: 'later', uid: message.uid }) },
        forbidden: () => { throw new RealtimeError('FORBIDDEN', "You don't have permission to access this.") },
        rejects: async () => { throw new RealtimeError('INVALID_PAYLOAD', 'No such collection.') },
        crashes: () => { throw new Error('secret internals') }
      }
    }
  }, { logger: { level: 'error', stream: { write: (line: string) => { logged.push(line) } } } })
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: app.realtime.jwt.sign({ id: 'u1' }) })
  await client.next()

  client.send({ type: 'echo', uid: 1, body: { a: [1] } })
  t.same(await client.next(), { type: 'echo', uid: 1, user: 'u1', body: { a: [1] } })
  client.send({ type: 'later', uid: 2 })
  t.same(await client.next(), { type: 'later', uid: 2 })
  client.send({ type: 'forbidden', uid: 3 })
  t.same(await client.next(), {
    type: 'forbidden', status: 'error', error: { code: 'FORBIDDEN', message: "You don't have permission to access this." }, uid: 3
  })
  client.send({ type: 'rejects', uid: 4 })
  t.same(await client.next(), { type: 'rejects', status: 'error', error: { code: 'INVALID_PAYLOAD', message: 'No such collection.' }, uid: 4 })
  client.send({ type: 'crashes', uid: 5 })
  t.same(await client.next(), {
    type: 'crashes', status: 'error', error: { code: 'INTERNAL_SERVER_ERROR', message: 'An unexpected error occurred.' }, uid: 5
  })
  t.match(logged.map(line => JSON.parse(line)), [{ msg: 'realtime message handler failed', err: { message: 'secret internals' }, reqId: String }],
    'the real error is logged, not sent, on the request\'s logger')
  await client.close()
})

t.test('send, close and connections reach sockets by user, session and endpoint', async t => {
  const { app, url } = await build(t, { users: [admin] })
  const alice1 = await connect(url('/websocket'))
  alice1.send({ type: 'auth', access_token: app.realtime.signAccessToken({ user: 'alice', role: null, admin: false }, 's-a1').access_token })
  const alice2 = await connect(url('/websocket'))
  alice2.send({ type: 'auth', access_token: app.realtime.signAccessToken({ user: 'alice', role: null, admin: false }, 's-a2').access_token })
  const bob = await connect(url('/websocket'))
  bob.send({ type: 'auth', access_token: app.realtime.jwt.sign({ sub: 'bob' }) })
  await Promise.all([alice1.next(), alice2.next(), bob.next()])

  t.equal(app.realtime.connections().length, 3)
  t.same(app.realtime.connections({ user: 'bob' }).map(c => c.accountability.user), ['bob'])
  t.equal(app.realtime.connections({ endpoint: 'graphql' }).length, 0)
  t.equal(app.realtime.send({ user: 'alice' }, { type: 'notice', text: 'hi' }), 2)
  t.same(await alice1.next(), { type: 'notice', text: 'hi' })
  t.same(await alice2.next(), { type: 'notice', text: 'hi' })
  t.equal(app.realtime.send({ session: 's-a2' }, { type: 'only-a2' }), 1)
  t.same(await alice2.next(), { type: 'only-a2' })

  // A socket still to authenticate (handshake mode) is no one's yet: no broadcast reaches it, and it gets the next frame
  // it is owed, its answer.
  const waiting = await connect(url('/websocket'))
  t.equal(app.realtime.send({}, { type: 'everyone' }), 3, 'a broadcast reaches the three past their handshake')
  for (const client of [alice1, alice2, bob]) t.same(await client.next(), { type: 'everyone' })
  waiting.send({ type: 'auth', access_token: app.realtime.jwt.sign({ sub: 'carl' }) })
  t.same(await waiting.next(), { type: 'auth', status: 'ok' }, 'and not the one still in its handshake')
  t.equal(app.realtime.send({}, { type: 'everyone' }), 4, 'which is reached once it is in')
  t.same(await waiting.next(), { type: 'everyone' })
  t.equal(app.realtime.connections().length, 4)
  for (const client of [alice1, alice2, bob]) await client.next()
  await waiting.close()

  t.equal(app.realtime.close({ user: 'alice', session: 's-a1' }, 4000, 'bye'), 1)
  t.same(await alice1.closed, { code: 4000, reason: 'bye' })
  t.equal(app.realtime.close({ user: 'nobody' }), 0)
  // A field given with no value (`{ user: request.user?.id }` without a user) would read as no field: everyone.
  for (const filter of [{ user: undefined }, { session: undefined }, { endpoint: undefined }, { user: 42 }]) {
    const named = Object.keys(filter)[0]
    for (const call of [() => app.realtime.send(filter as never, { type: 'private' }), () => app.realtime.close(filter as never), () => app.realtime.connections(filter as never)]) {
      t.throws(call, { name: 'TypeError', message: new RegExp(`^filter\\.${named} must be a string \\(got \\w+\\): a filter without it reaches every socket$`) })
    }
  }
  bob.send({ type: 'ping', uid: 'after' })
  t.same(await bob.next(), { type: 'pong', uid: 'after' }, 'nothing was sent, and nobody closed')
  await Promise.all([alice2.close(), bob.close()])
})

t.test('a broadcast serializes its message once, for the first socket it goes to, and sends that frame to every one', async t => {
  const { app, url } = await build(t, { rest: { auth: 'public' }, heartbeat: { enabled: false } })
  const clients = [await connect(url('/websocket')), await connect(url('/websocket')), await connect(url('/websocket'))]
  while (app.realtime.connections().length < 3) await new Promise(resolve => setImmediate(resolve))
  let serialized = 0
  const news = { toJSON: () => { serialized++; return { type: 'news', text: 'hi' } } }
  t.equal(app.realtime.send({}, news), 3)
  t.equal(serialized, 1, 'serialized once for the three')
  for (const client of clients) t.same(await client.next(), { type: 'news', text: 'hi' })

  // What is serialized is what is sent: a message JSON cannot write throws, once, before any socket gets it.
  let attempts = 0
  const unwritable = { toJSON: () => { attempts++; throw new Error('not JSON') } }
  t.throws(() => app.realtime.send({}, unwritable), { message: 'not JSON' })
  t.equal(attempts, 1, 'tried once')
  const circular: Record<string, unknown> = { type: 'loop' }
  circular.self = circular
  t.throws(() => app.realtime.send({}, circular), TypeError)

  // A closing socket is sent nothing, and nothing is serialized for it.
  const [closing] = app.realtime.connections()
  closing.close(4000, 'bye')
  serialized = 0
  app.realtime.send({}, news)
  t.equal(serialized, 1, 'once for the two still open')
  t.same(await clients[0].closed, { code: 4000, reason: 'bye' }, 'the closing one got its close alone')
  for (const client of clients.slice(1)) {
    t.same(await client.next(), { type: 'news', text: 'hi' }, 'the others the news, and nothing of the messages that threw')
    client.send({ type: 'ping', uid: 'after' })
    t.same(await client.next(), { type: 'pong', uid: 'after' })
  }
  await Promise.all(clients.slice(1).map(client => client.close()))
})

t.test('a socket closing (its close sent, its client yet to answer) is no longer counted by send, listed or closed again', async t => {
  let said: RealtimeConnection | undefined
  const { app, url } = await build(t, {
    rest: { auth: 'public', handlers: { hello: (_message, connection) => { said = connection; connection.send({ type: 'hello' }) } } },
    heartbeat: { enabled: false }
  })
  const opened = async () => {
    const client = await connect(url('/websocket'))
    client.send({ type: 'hello' })
    await client.next()
    return { client, connection: said! }
  }
  const { client: leaving, connection: closing } = await opened()
  const { client: staying, connection: stays } = await opened()
  t.not(closing, stays)
  // Its client reads nothing for now: the socket stays closing until it answers.
  leaving.ws.pause()
  closing.close(4000, 'bye')
  t.equal(app.realtime.connections().length, 1, 'connections() lists the open one alone')
  t.equal(app.realtime.connections()[0], stays)
  t.equal(app.realtime.send({}, { type: 'news' }), 1, 'send() counts the one it sent to')
  t.equal(app.realtime.close({}, 4001, 'again'), 1, 'close() closes, and counts, the open one alone')
  t.same(await staying.closed, { code: 4001, reason: 'again' })
  leaving.ws.resume()
  t.same(await leaving.closed, { code: 4000, reason: 'bye' }, 'the closing one closes as it was closed')
  t.same(leaving.frames, [], 'and got nothing after its close')
  t.same(staying.frames, [{ type: 'news' }])
})

t.test('a socket is reached by the user and session it holds now, however it came by them or lost them', async t => {
  const { app, url } = await build(t)
  const token = (user: string, session?: string) => app.realtime.signAccessToken({ user, role: null, admin: false }, session).access_token
  const reach = (filter: { user?: string, session?: string }) => app.realtime.connections(filter).length

  const upgraded = await connect(url(`/websocket?access_token=${token('carol', 's-c')}`))
  t.same([reach({ user: 'carol' }), reach({ session: 's-c' })], [1, 1], 'authenticated on the upgrade request')

  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: token('dave', 's-d') })
  await client.next()
  t.same([reach({ user: 'dave' }), reach({ session: 's-d' })], [1, 1], 'authenticated by an auth message')
  client.send({ type: 'auth', access_token: token('erin', 's-e') })
  await client.next()
  t.same([reach({ user: 'dave' }), reach({ session: 's-d' }), reach({ user: 'erin', session: 's-e' })], [0, 0, 1],
    'authenticated again, as someone else')
  t.equal(app.realtime.send({ user: 'dave' }, { type: 'for-dave' }), 0)

  await app.realtime.revokeSession('s-e')
  t.match(await client.next(), { error: { code: 'AUTH_REVOKED' } })
  t.same([reach({ user: 'erin' }), reach({ session: 's-e' })], [0, 0], 'revoked: public')
  t.equal(app.realtime.send({}, { type: 'everyone' }), 1, 'and waiting to authenticate again, out of broadcasts')
  t.same(await upgraded.next(), { type: 'everyone' })
  client.send({ type: 'auth', access_token: token('frank') })
  await client.next()
  t.same([reach({ user: 'frank' }), reach({ session: 's-e' })], [1, 0], 'a token without a session')
  client.send({ type: 'auth', access_token: 'not a token' })
  t.match(await client.next(), { error: { code: 'AUTH_FAILED' } })
  t.equal(reach({ user: 'frank' }), 0, 'refused: public')

  const gone = new Promise<void>(resolve => app.realtime.on('close', ({ connection }) => {
    if (connection.accountability.user === 'carol') resolve()
  }))
  await upgraded.close()
  await gone
  t.same([reach({ user: 'carol' }), reach({ session: 's-c' })], [0, 0], 'closed: reached no more')
  await client.close()
})

t.test('login through the API issues a session whose tokens work on the socket', async t => {
  const { app, url } = await build(t, { users: [admin] })
  const tokens = await app.realtime.login({ email: admin.email, password: admin.password })
  t.match(tokens, { access_token: String, expires: 900000, refresh_token: /^[\w-]{43,}$/ })
  const claims = app.realtime.jwt.decode<{ sid: string, admin_access: boolean, role: string }>(tokens.access_token)!
  t.match(claims, { sid: String, admin_access: true, role: 'administrator' })

  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: tokens.access_token })
  t.same(await client.next(), { type: 'auth', status: 'ok' })
  await app.realtime.revokeSession(claims.sid)
  t.match(await client.next(), { error: { code: 'AUTH_REVOKED' } })
  await client.close()

  await t.rejects(app.realtime.login({ email: admin.email, password: 'wrong' }), { code: 'INVALID_CREDENTIALS', message: 'Invalid user credentials.' })
})

t.test('connection ids: one per socket, the same on every read, a UUID of the process then a count', async t => {
  const { app, url } = await build(t, { rest: { auth: 'public' }, heartbeat: { enabled: false } })
  const clients = [await connect(url('/websocket')), await connect(url('/websocket')), await connect(url('/websocket'))]
  while (app.realtime.connections().length < 3) await new Promise(resolve => setImmediate(resolve))
  const ids = app.realtime.connections().map(connection => connection.id)
  t.equal(new Set(ids).size, 3)
  t.same(app.realtime.connections().map(connection => connection.id), ids, 'stable')
  for (const id of ids) t.match(id, /^[0-9a-f-]{36}-[0-9a-z]+$/, 'a UUID of the process, then a count')
  await Promise.all(clients.map(client => client.close()))
})
