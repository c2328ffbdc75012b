// A revocation that lands while a credential is being checked (PROTOCOL.md sections 4 and 7): the check had passed, and
// the socket was not yet among those holding the credential, so the revocation's walk missed it. The socket takes the
// credential and is revoked at once, as if the revocation had come a moment later: never the revoked identity, and the
// app's `auth` listeners never hear of it.
import t, { type Test } from 'tap'
import { createClient } from 'graphql-ws'
import WebSocket from 'ws'
import { GraphQLObjectType, GraphQLSchema, GraphQLString } from 'graphql'
import Fastify, { type FastifyInstance } from 'fastify'
import realtime, { MemorySessionStore } from '../../lib/index.js'
import type { RealtimeOptions, SessionStore } from '../../types/index.js'
import { admin, build, Client, connect, directoryOf, letGoCount, recordCrashes, secret, until, whoami, within } from '../helpers.js'

const crashes = recordCrashes(t)

/** A gate the test opens: `reached` resolves when something waits at it. */
function gate () {
  let open!: () => void
  let reached!: () => void
  const opened = new Promise<void>(resolve => { open = resolve })
  const arrived = new Promise<void>(resolve => { reached = resolve })
  return { open, arrived, wait: async () => { reached(); await opened } }
}

const rest = { handlers: { whoami } }
const schema = new GraphQLSchema({ query: new GraphQLObjectType({ name: 'Query', fields: { hello: { type: GraphQLString } } }) })
type App = FastifyInstance

/** Logs in and returns the tokens and the session they carry. */
async function login (app: App) {
  const issued = await app.realtime.login({ email: admin.email, password: admin.password })
  const { sid, id } = app.realtime.jwt.decode<{ sid: string, id: string }>(issued.access_token)!
  return { ...issued, session: sid, user: id }
}

/** The client, after its revocation, is nobody: public to its handlers, and held by no index. */
async function isNobody (t: Test, client: Client, app: App, { session, user }: { session: string, user: string }) {
  client.send({ type: 'whoami', uid: 'after' })
  t.same(await within(client.next(), 'whoami'), { type: 'whoami', uid: 'after', user: null }, 'public to its handlers')
  t.same(app.realtime.connections({ session }), [], 'held by no session index')
  t.same(app.realtime.connections({ user }), [], 'nor by the user index')
}

/**
 * What the app's listeners hear of the socket: an `auth` listener pushes the user's private data to the user's sockets
 * (an ordinary welcome), which would reach a socket holding the revoked identity.
 */
function listen (app: App) {
  const heard: string[] = []
  app.realtime.on('auth', ({ connection }) => {
    const { user } = connection.accountability
    heard.push(`auth ${user}`)
    app.realtime.send({ user: user! }, { type: 'welcome', secret: `inbox of ${user}` })
  })
  app.realtime.on('expire', ({ code }) => { heard.push(`expire ${code}`) })
  return heard
}

const revocations = [
  ['its session', (app: App, { session }: { session: string }) => app.realtime.revokeSession(session)],
  ['its user', (app: App, { user }: { user: string }) => app.realtime.revokeUser(user)]
] as const

for (const [what, revoke] of revocations) {
  t.test(`an auth message whose onAuthenticate is pending as ${what} is revoked: ok, then AUTH_REVOKED`, async t => {
    const hook = gate()
    const { app, url } = await build(t, { users: [admin], rest, onAuthenticate: async () => { await hook.wait() } })
    const heard = listen(app)
    const issued = await login(app)
    const client = await connect(url('/websocket'))
    client.send({ type: 'auth', access_token: issued.access_token })
    await within(hook.arrived, 'onAuthenticate')
    await revoke(app, issued)
    hook.open()
    t.same(await within(client.next(), 'the ok'), { type: 'auth', status: 'ok' })
    t.match(await within(client.next(), 'the revocation'), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED' } })
    await isNobody(t, client, app, issued)
    t.same(heard, ['expire AUTH_REVOKED'], 'the app hears of no authentication, and pushed nothing to the revoked user')
    await client.close()
  })
}

/**
 * An app whose async hook (any of the app's own, between the plugin's gate and the socket's opening) holds every
 * upgrade until the test opens it; the client upgrades to `path` with a fresh login's token, and its session is
 * revoked while the hook holds it.
 */
async function upgradeRevokedInHook (t: Test, path: string, options: RealtimeOptions, protocols?: string) {
  const hook = gate()
  const app = Fastify()
  app.addHook('preHandler', async (request) => { if (request.ws) await hook.wait() })
  await app.register(realtime, { env: {}, secret, users: await directoryOf([admin]), ...options })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  const heard = listen(app)
  const gone = letGoCount(app)
  const issued = await login(app)
  const client = new Client(`ws://127.0.0.1:${port}${path}?access_token=${issued.access_token}`, { protocols })
  await within(hook.arrived, 'the app\'s hook')
  await app.realtime.revokeSession(issued.session)
  hook.open()
  return { app, client, issued, heard, gone }
}

t.test('an upgrade whose app hook is pending as its session is revoked opens and is told AUTH_REVOKED', async t => {
  const { app, client, issued, heard } = await upgradeRevokedInHook(t, '/websocket', { rest })
  await within(client.opened, 'the socket')
  t.match(await within(client.next(), 'the revocation'), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED' } })
  await isNobody(t, client, app, issued)
  t.same(heard, ['expire AUTH_REVOKED'], 'the app hears of no authentication, and pushed nothing to the revoked user')
  await client.close()
})

t.test('a GraphQL upgrade whose app hook is pending as its session is revoked opens and closes 4403', async t => {
  const { app, client, issued, heard, gone } = await upgradeRevokedInHook(t, '/graphql', { graphql: { schema } }, 'graphql-transport-ws')
  t.equal((await within(client.closed, 'the close')).code, 4403)
  t.same(app.realtime.connections({ session: issued.session }), [], 'held by no index')
  // Revoked as it registered, before graphql-ws had opened it: it closed all the same, and left the registry.
  await within(until(() => gone() === 1), 'the registry empty')
  t.same(heard, ['expire AUTH_REVOKED'], 'the app hears of no authentication')
})

t.test('a refresh whose rotation is on its way back as its session is revoked: ok, then AUTH_REVOKED', async t => {
  const inner = new MemorySessionStore()
  const answer = gate()
  // A store whose answers take a moment, as any store across a network.
  const sessionStore: SessionStore = {
    create: (session, deadline) => inner.create(session, deadline),
    lookup: (token) => inner.lookup(token),
    end: (session, deadline) => inner.end(session, deadline),
    endUser: (user, deadline) => inner.endUser(user, deadline),
    async rotate (token, next, expiresAt, deadline) {
      const rotated = await inner.rotate(token, next, expiresAt, deadline)
      await answer.wait()
      return rotated
    }
  }
  const { app, url } = await build(t, { users: [admin], rest, sessionStore })
  const heard = listen(app)
  const issued = await login(app)
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', refresh_token: issued.refresh_token })
  await within(answer.arrived, 'the rotation')
  await app.realtime.revokeSession(issued.session)
  answer.open()
  t.match(await within(client.next(), 'the ok'), { type: 'auth', status: 'ok' })
  t.match(await within(client.next(), 'the revocation'), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED' } })
  await isNobody(t, client, app, issued)
  t.same(heard, ['expire AUTH_REVOKED'], 'the app hears of no authentication, and pushed nothing to the revoked user')
  await client.close()
})

t.test('a GraphQL connection_init whose onAuthenticate is pending as its session is revoked closes 4403', async t => {
  const hook = gate()
  const options: RealtimeOptions = { users: [admin], graphql: { schema }, onAuthenticate: async () => { await hook.wait() } }
  const { app, url } = await build(t, options)
  const heard = listen(app)
  const { access_token: token, session } = await login(app)
  const closed = new Promise<number>(resolve => {
    const client = createClient({
      url: url('/graphql'),
      webSocketImpl: WebSocket,
      lazy: false,
      retryAttempts: 0,
      connectionParams: { access_token: token },
      on: { closed: (event) => resolve((event as { code: number }).code) },
      onNonLazyError: () => {}
    })
    t.teardown(() => client.dispose())
  })
  await within(hook.arrived, 'onAuthenticate')
  await app.realtime.revokeSession(session)
  hook.open()
  t.equal(await within(closed, 'the close'), 4403)
  t.same(app.realtime.connections({ session }), [], 'held by no index')
  t.same(heard, ['expire AUTH_REVOKED'], 'the app hears of no authentication')
})

t.test('nothing crashed', async t => {
  t.same(crashes, [])
})
