// An app's async context (AsyncLocalStorage, as @fastify/request-context and OpenTelemetry keep it) set by its hooks on
// the upgrade request: what the app runs for a socket (message handlers, onAuthenticate, event listeners) sees that
// socket's, never another socket's nor that of the request that revoked it.
import t from 'tap'
import { AsyncLocalStorage } from 'node:async_hooks'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import Fastify from 'fastify'
import realtime, { type RealtimeOptions } from '../../lib/index.js'
import { Client, connect, directoryOf, nextSecond, secret, stoppedDate, until } from '../helpers.js'

const tenants = new AsyncLocalStorage<string>()
const tenant = () => tenants.getStore() ?? null

/** An app whose own hook runs each request in its tenant's context, as @fastify/request-context's does. */
async function tenantApp (t: Test, options: RealtimeOptions): Promise<{ app: FastifyInstance, open: (name: string, query?: string) => Promise<Client> }> {
  const app = Fastify()
  t.teardown(() => app.close())
  app.addHook('onRequest', (request, _reply, done) => {
    tenants.run(String(request.headers['x-tenant']), done)
  })
  await app.register(realtime, { env: {}, secret, heartbeat: { enabled: false }, ...options })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  return { app, open: (name, query = '') => connect(`ws://127.0.0.1:${port}/websocket${query}`, { headers: { 'x-tenant': name } }) }
}

t.test("a socket's handlers, its auth message's onAuthenticate and its events run in its upgrade's context", async t => {
  const authenticated: [string, string | null][] = []
  const { app, open } = await tenantApp(t, {
    users: await directoryOf([{ email: 'a@example.com', password: 'a-password' }]),
    onAuthenticate: ({ source, request }) => { authenticated.push([`${String(request.headers['x-tenant'])} ${source}`, tenant()]); return true },
    rest: {
      handlers: {
        tenant (message, connection) { connection.send({ type: 'tenant', uid: message.uid, tenant: tenant() }) },
        async later (message, connection) {
          await new Promise(resolve => setImmediate(resolve))
          connection.send({ type: 'later', uid: message.uid, tenant: tenant() })
        }
      }
    }
  })
  const closed: [string, string | null][] = []
  app.realtime.on('close', ({ connection }) => closed.push([String(connection.request.headers['x-tenant']), tenant()]))
  const a = await open('a')
  const b = await open('b')
  a.send({ type: 'auth', email: 'a@example.com', password: 'a-password' })
  b.send({ type: 'auth', access_token: app.realtime.jwt.sign({ id: 'b' }) })
  t.match(await a.next(), { type: 'auth', status: 'ok' })
  t.match(await b.next(), { type: 'auth', status: 'ok' })
  for (const uid of [1, 2]) {
    for (const [client, type] of [[a, 'tenant'], [b, 'tenant'], [a, 'later'], [b, 'later']] as const) client.send({ type, uid })
  }
  t.same([await a.next(), await a.next(), await a.next(), await a.next()].map(f => (f as { tenant: unknown }).tenant), ['a', 'a', 'a', 'a'], "a's handlers in a's context")
  t.same([await b.next(), await b.next(), await b.next(), await b.next()].map(f => (f as { tenant: unknown }).tenant), ['b', 'b', 'b', 'b'], "b's handlers in b's context")
  t.same(authenticated.sort(), [['a auth', 'a'], ['b auth', 'b']], 'the auth messages checked in their sockets\' contexts')
  await a.close()
  await b.close()
  await until(() => closed.length === 2)
  t.same(closed.sort(), [['a', 'a'], ['b', 'b']], 'close listeners in the closed socket\'s context')
})

t.test("an expiry shared with another socket's token, and a revocation from another request, tell each socket in its own context", async t => {
  const clock = stoppedDate(t)
  const { app, open } = await tenantApp(t, { users: await directoryOf([{ email: 'c@example.com', password: 'c-password' }]) })
  const expired: [string, string | null][] = []
  app.realtime.on('expire', ({ connection }) => expired.push([String(connection.request.headers['x-tenant']), tenant()]))
  // One token for both: one deadline, whose timer the first socket's upgrade arms, in its context.
  const token = app.realtime.jwt.sign({ id: 'u', exp: nextSecond() })
  const a = await open('a', `?access_token=${token}`)
  const b = await open('b')
  b.send({ type: 'auth', access_token: token })
  t.match(await b.next(), { type: 'auth', status: 'ok' })
  clock.tick(20)
  t.match(await a.next(), { error: { code: 'TOKEN_EXPIRED' } })
  t.match(await b.next(), { error: { code: 'TOKEN_EXPIRED' } })
  t.same(expired.sort(), [['a', 'a'], ['b', 'b']], "each expiry in its socket's context, b's not in a's")

  expired.length = 0
  const { access_token: session } = await app.realtime.login({ email: 'c@example.com', password: 'c-password' })
  const c = await open('c', `?access_token=${session}`)
  const { sid } = app.realtime.jwt.decode<{ sid: string }>(session)!
  await tenants.run('admin', () => app.realtime.revokeSession(sid))
  t.match(await c.next(), { error: { code: 'AUTH_REVOKED' } })
  t.same(expired, [['c', 'c']], "the revoked socket's context, not the revoking request's")
  await Promise.all([a.close(), b.close(), c.close()])
})
