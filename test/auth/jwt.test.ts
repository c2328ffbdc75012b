// Which @fastify/jwt verifies socket tokens: the app's (renamed verify decorator, namespace) or the plugin's own (with
// a namespace asked for, and the app's own `trusted` kept beside the revocation check).
import t from 'tap'
import Fastify from 'fastify'
import fastifyJwt from '@fastify/jwt'
import realtime from '../../lib/index.js'
import { admin, build, connect, directoryOf, secret } from '../helpers.js'

t.test('the app\'s instance with a renamed verify decorator: jwt.jwtVerify names it', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, { namespace: 'app', jwtVerify: 'checkToken', secret })
  await app.register(realtime, { env: {}, jwt: { namespace: 'app', jwtVerify: 'checkToken' } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const signer = (app.jwt as unknown as Record<string, { sign: (claims: object) => string }>).app
  const client = await connect(`ws://127.0.0.1:${(app.server.address() as { port: number }).port}/websocket?access_token=${signer.sign({ id: 'u1' })}`)
  client.send({ type: 'ping' })
  t.match(await client.next(), { type: 'pong' }, 'authenticated at the upgrade')
  await client.close()
})

t.test('jwt.namespace without an app instance: the plugin registers its own under it', async t => {
  const { app } = await build(t, { jwt: { namespace: 'realtime' }, users: await directoryOf([admin]) })
  const own = (app.jwt as unknown as Record<string, { verify: (token: string) => { id: string } }>).realtime
  const { access_token: token } = await app.realtime.login(admin)
  t.ok(own.verify(token).id, 'signed and verified by fastify.jwt.realtime')
})

t.test('the plugin\'s own instance: the app\'s `trusted` runs beside the revocation check', async t => {
  const refused = new Set<string>()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, {
    env: {},
    secret,
    jwt: { trusted: (_request, claims) => !refused.has((claims as { id: string }).id) },
    users: await directoryOf([admin])
  })
  app.get('/me', async (request) => { await request.jwtVerify(); return { ok: true } })
  const { access_token: token } = await app.realtime.login(admin)
  const me = () => app.inject({ url: '/me', headers: { authorization: `Bearer ${token}` } })
  t.equal((await me()).statusCode, 200)
  refused.add(app.jwt.decode<{ id: string }>(token)!.id)
  t.equal((await me()).statusCode, 401, 'the app\'s check refuses')
  refused.clear()
  const { sid } = app.jwt.decode<{ sid: string }>(token)!
  await app.realtime.revokeSession(sid)
  t.match((await me()).json(), { code: 'FST_JWT_AUTHORIZATION_TOKEN_UNTRUSTED' }, 'and the revocation check too')
})

t.test('the app\'s instance renamed without jwt.jwtVerify: boot says which option to set', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, { namespace: 'app', jwtVerify: 'checkToken', secret })
  await t.rejects(async () => { await app.register(realtime, { env: {}, jwt: { namespace: 'app' } }) },
    /no request\.appJwtVerify: set the option jwt\.jwtVerify/)
})
