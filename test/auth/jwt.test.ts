// Which @fastify/jwt verifies socket tokens: the app's (renamed verify decorator, namespace) or the plugin's own, which
// never decorates the app.
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

t.test('the plugin\'s own instance, from SECRET, stays out of the app: fastify.realtime.jwt signs and verifies', async t => {
  const { app } = await build(t, { jwt: { namespace: 'realtime', sign: { aud: 'sockets' } }, users: await directoryOf([admin]) })
  t.notOk(app.hasDecorator('jwt'), 'no fastify.jwt')
  t.notOk(app.hasRequestDecorator('jwtVerify'), 'no request.jwtVerify')
  t.notOk(app.hasRequestDecorator('user'), 'no request.user')
  const { access_token: token } = await app.realtime.login(admin)
  t.match(app.realtime.jwt.verify(token), { aud: 'sockets', iss: 'fastify-realtime' }, 'its options and issuer apply')
})

t.test('the app\'s instance renamed without jwt.jwtVerify: boot says which option to set', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, { namespace: 'app', jwtVerify: 'checkToken', secret })
  await t.rejects(async () => { await app.register(realtime, { env: {}, jwt: { namespace: 'app' } }) },
    /no request\.appJwtVerify: set the option jwt\.jwtVerify/)
})
