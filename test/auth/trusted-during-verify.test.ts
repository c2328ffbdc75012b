// fastify.realtime.trusted leaves to the plugin the tokens the plugin itself is verifying through the app's
// @fastify/jwt, and only those: a handler of the app's verifying another token on the same upgrade request meanwhile
// (here a logged-out one, in the request's Authorization header) still meets every check.
import t from 'tap'
import Fastify, { type FastifyRequest } from 'fastify'
import fastifyJwt, { type FastifyJWTOptions } from '@fastify/jwt'
import type { AddressInfo } from 'node:net'
import realtime from '../../lib/index.js'
import { admin, connect, directoryOf, editor, secret, within } from '../helpers.js'

t.test('a logged-out token is untrusted while the plugin verifies another token on the same request', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  // An async key (a JWKS lookup): held for the editor's tokens while `held` is set, at once for any other.
  let editorId = ''
  let held: Promise<void> | null = null
  let reached = (): void => {}
  const options: FastifyJWTOptions = {
    secret: {
      private: secret,
      public: async (_request: unknown, token: { payload?: { id?: string } } & { id?: string }) => {
        if ((token.payload?.id ?? token.id) === editorId && held) {
          reached()
          await held
        }
        return secret
      }
    },
    trusted: (request: FastifyRequest, claims: Record<string, unknown>) => app.realtime.trusted(request, claims)
  } as unknown as FastifyJWTOptions
  await app.register(fastifyJwt, options)
  let checking: Promise<void> = Promise.resolve()
  await app.register(realtime, {
    env: {},
    authRoutes: true,
    users: await directoryOf([admin, editor]),
    rest: {
      handlers: {
        // The app's own check of the upgrade request's Authorization header.
        async check (_message, connection) {
          await checking
          try {
            await connection.request.jwtVerify()
            connection.send({ type: 'check', ok: true })
          } catch (err) {
            connection.send({ type: 'check', ok: false, code: (err as { code?: string }).code })
          }
        }
      }
    }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/websocket`
  const login = async (user: { email: string, password: string }) =>
    (await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: user.password } })).json().data
  const admins = await login(admin)
  const editors = await login(editor)
  editorId = app.jwt.decode<{ id: string }>(editors.access_token)!.id
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: admins.refresh_token } })).statusCode, 204)

  const client = await connect(url, { headers: { authorization: `Bearer ${admins.access_token}` } })
  client.send({ type: 'auth', access_token: editors.access_token })
  t.match(await within(client.next(), 'the auth answer'), { type: 'auth', status: 'ok' })
  const untrusted = { type: 'check', ok: false, code: 'FST_JWT_AUTHORIZATION_TOKEN_UNTRUSTED' }
  client.send({ type: 'check' })
  t.same(await within(client.next(), 'the check'), untrusted, 'alone: the logged-out token is untrusted')

  // The check waits; the plugin starts verifying the editor's token again (its key lookup held); then the check runs.
  let release!: () => void
  checking = new Promise(resolve => { release = resolve })
  let releaseKey!: () => void
  held = new Promise(resolve => { releaseKey = resolve })
  const lookingUp = new Promise<void>(resolve => { reached = resolve })
  client.send({ type: 'check' })
  client.send({ type: 'auth', access_token: editors.access_token })
  await within(lookingUp, 'the plugin\'s key lookup')
  release()
  t.same(await within(client.next(), 'the check'), untrusted, 'meanwhile: untrusted still')
  releaseKey()
  t.match(await within(client.next(), 'the auth answer'), { type: 'auth', status: 'ok' }, 'and the plugin\'s own verification passes')
  client.send({ type: 'auth', access_token: 'not.a.token', uid: 'bad' })
  t.match(await within(client.next(), 'the auth answer'), { type: 'auth', status: 'error', error: { code: 'AUTH_FAILED' }, uid: 'bad' },
    'a token that does not decode: refused')
  await client.close()
})
