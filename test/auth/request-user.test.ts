// connection.request.user, with the app's own @fastify/jwt, changes only as the socket takes a credential: the app's
// instance writes what it made of a token as soon as it has verified it, and a handler still running while the app's
// async onAuthenticate checks a re-auth read that user, one the socket never took when the hook then refused it. The
// upgrade's own credential is on the request for the app's later hooks, as on its routes.
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import realtime, { type RealtimeConnection, type RealtimeMessage } from '../../lib/index.js'
import { connect, secret, within, type Client } from '../helpers.js'

/** A promise the test settles when it likes. */
function gate<T = void> (): { promise: Promise<T>, open: (value: T) => void } {
  let open!: (value: T) => void
  const promise = new Promise<T>(resolve => { open = resolve })
  return { promise, open }
}

const requestUser = (connection: RealtimeConnection) => (connection.request as unknown as { user: unknown }).user
const who = (message: RealtimeMessage, connection: RealtimeConnection) =>
  connection.send({ type: 'who', uid: message.uid, user: connection.accountability.user, requestUser: requestUser(connection) })

/**
 * A public-mode app with its own @fastify/jwt (`formatUser` names the user) whose `onAuthenticate` takes alice at once
 * and asks the test about anyone else; its `slow` handler answers as `who` does once the test lets it.
 */
async function appAsking (t: Test) {
  let verdict = gate<boolean>()
  let asked = gate()
  let handler = gate()
  const app: FastifyInstance = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, { secret, formatUser: (claims) => ({ name: (claims as { id: string }).id }) })
  await app.register(realtime, {
    env: {},
    rest: {
      auth: 'public',
      handlers: {
        who,
        async slow (message, connection) {
          await handler.promise
          who(message, connection)
        }
      }
    },
    onAuthenticate: async ({ identity }) => {
      if (identity.user === 'alice') return true
      asked.open()
      return await verdict.promise
    }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const client = await connect(`ws://127.0.0.1:${(app.server.address() as { port: number }).port}/websocket`)
  t.teardown(() => client.close())
  const next = (what: string) => within(client.next(), what)
  return {
    app,
    client,
    next,
    /** Authenticates as alice, then starts `slow` and a re-auth as `user`: answers once the hook is asked about it. */
    async reauthAs (user: string): Promise<void> {
      verdict = gate<boolean>()
      asked = gate()
      handler = gate()
      client.send({ type: 'auth', access_token: app.jwt.sign({ id: 'alice' }) })
      t.match(await next('alice\'s ok'), { type: 'auth', status: 'ok' })
      client.send({ type: 'slow', uid: 'during' })
      client.send({ type: 'auth', access_token: app.jwt.sign({ id: user }), uid: user })
      await within(asked.promise, 'the hook asked')
    },
    answer: (admitted: boolean) => verdict.open(admitted),
    release: () => handler.open()
  }
}

async function whoIs (client: Client, uid: string): Promise<unknown> {
  client.send({ type: 'who', uid })
  return within(client.next(), 'the who answer')
}

t.test('a handler running while onAuthenticate checks a re-auth reads the user the socket holds, not the one checked', async t => {
  const { client, next, reauthAs, answer, release } = await appAsking(t)
  await reauthAs('bob')
  release()
  t.same(await next('slow'), { type: 'who', uid: 'during', user: 'alice', requestUser: { name: 'alice' } }, 'alice\'s while bob\'s is checked')
  answer(false)
  t.match(await next('bob refused'), { type: 'auth', status: 'error', uid: 'bob', error: { code: 'AUTH_FAILED' } })
  t.same(await whoIs(client, 'after'), { type: 'who', uid: 'after', user: null, requestUser: null }, 'refused: nobody\'s, never bob\'s')
})

t.test('a re-auth the hook admits is on the request once the socket takes it', async t => {
  const { client, next, reauthAs, answer, release } = await appAsking(t)
  await reauthAs('carol')
  release()
  t.same(await next('slow'), { type: 'who', uid: 'during', user: 'alice', requestUser: { name: 'alice' } }, 'alice\'s while carol\'s is checked')
  answer(true)
  t.same(await next('carol\'s ok'), { type: 'auth', status: 'ok', uid: 'carol' })
  t.same(await whoIs(client, 'after'), { type: 'who', uid: 'after', user: 'carol', requestUser: { name: 'carol' } })
})

t.test('the upgrade\'s token is on the request for the app\'s later hooks, and the socket\'s', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, { secret, formatUser: (claims) => ({ name: (claims as { id: string }).id }) })
  const seen: unknown[] = []
  app.addHook('preHandler', async (request) => { seen.push(request.user) })
  await app.register(realtime, { env: {}, rest: { auth: 'public', handlers: { who } } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const client = await connect(`ws://127.0.0.1:${(app.server.address() as { port: number }).port}/websocket?access_token=${app.jwt.sign({ id: 'alice' })}`)
  t.same(seen, [{ name: 'alice' }], 'the app\'s preHandler')
  t.same(await whoIs(client, 'w'), { type: 'who', uid: 'w', user: 'alice', requestUser: { name: 'alice' } })
  await client.close()
})
