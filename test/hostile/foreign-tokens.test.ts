// Foreign tokens (PROTOCOL.md section 11): a token signed with SECRET for another purpose is no realtime credential
// (the plugin's own tokens carry and require its issuer), and `admin` comes only from tokens the plugin issued or
// from the app's mapClaims.
import { createHmac, generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import Fastify, { type FastifyRequest } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import { createSigner } from 'fast-jwt'
import realtime from '../../lib/index.js'
import { buildSchema } from 'graphql'
import { admin, build, connect, fakeClock, recordCrashes, refusedWith, secret } from '../helpers.js'

const signedElsewhere = createSigner({ key: secret, expiresIn: 60_000 })

t.test('an HS256 token signed with SECRET without the plugin\'s issuer is refused everywhere', async t => {
  const { url } = await build(t, { users: [admin] })
  for (const claims of [{ id: 'u1' }, { id: 'u1', admin: true }, { id: 'u1', admin_access: true, iss: 'billing' }]) {
    const token = signedElsewhere(claims)
    t.equal((await refusedWith(url(`/websocket?access_token=${token}`))).status, 401, `${JSON.stringify(claims)} at the upgrade`)
    const client = await connect(url('/websocket'))
    client.send({ type: 'auth', access_token: token })
    t.match(await client.next(), { type: 'auth', status: 'error', error: { code: 'AUTH_FAILED' } }, 'in an auth message')
    t.equal((await client.closed).code, 4401)
  }
})

t.test('with claims of the app\'s required of the plugin\'s own instance (jwt.verify.requiredClaims), a token without its issuer is still refused', async t => {
  const { app, url } = await build(t, { users: [admin], jwt: { verify: { requiredClaims: ['exp'] } } })
  const token = signedElsewhere({ id: 'u1' })
  t.equal((await refusedWith(url(`/websocket?access_token=${token}`))).status, 401, 'no iss: refused at the upgrade')
  t.equal((await refusedWith(url(`/websocket?access_token=${createSigner({ key: secret, iss: 'fastify-realtime' })({ id: 'u1' })}`))).status, 401,
    'the app\'s required claim holds too (no exp)')
  const issued = await app.realtime.login({ email: admin.email, password: admin.password })
  const client = await connect(url(`/websocket?access_token=${issued.access_token}`))
  t.ok(client, 'the plugin\'s own tokens are taken')
  await client.close()
})

t.test('the plugin\'s own tokens carry its issuer, and its admins stay admins', async t => {
  const { app, url } = await build(t, { users: [admin], issuer: 'realtime.example.com' })
  const issued = await app.realtime.login({ email: admin.email, password: admin.password })
  t.equal(app.realtime.jwt.decode<{ iss: string }>(issued.access_token)!.iss, 'realtime.example.com')
  const client = await connect(url(`/websocket/logs?access_token=${issued.access_token}`))
  client.send({ type: 'subscribe', log_level: 'error' })
  t.same(await client.next(), { type: 'logs', event: 'subscribe', log_level: 'error' }, 'an admin may read the logs')
  await client.close()
})

t.test('the app\'s @fastify/jwt with an RSA key pair: a token unsigned (alg none), or HS256 with its public key as the secret, is refused; its own is taken', async t => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const publicPem = publicKey.export({ format: 'pem', type: 'spki' }).toString()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, { secret: { private: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), public: publicPem }, sign: { algorithm: 'RS256' } })
  await app.register(realtime, { env: {} })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `ws://127.0.0.1:${(app.server.address() as { port: number }).port}/websocket`
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const claims = part({ sub: 'mallory', exp: Math.floor(Date.now() / 1000) + 600 })
  const hs256 = `${part({ alg: 'HS256', typ: 'JWT' })}.${claims}`
  for (const [what, token] of [
    ['alg none', `${part({ alg: 'none', typ: 'JWT' })}.${claims}.`],
    ['HS256 with the public key', `${hs256}.${createHmac('sha256', publicPem).update(hs256).digest('base64url')}`]
  ] as const) {
    t.equal((await refusedWith(`${url}?access_token=${token}`)).status, 401, what)
  }
  const client = await connect(`${url}?access_token=${app.jwt.sign({ sub: 'alice' })}`)
  t.ok(client, 'a token the app signed')
  await client.close()
})

t.test('with the app\'s own @fastify/jwt, its tokens authenticate, but a bare admin claim makes no admin', async t => {
  const app = Fastify()
  await app.register(fastifyJwt, { secret })
  await app.register(realtime, { env: {} })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  for (const claims of [{ sub: 'u1', admin: true }, { sub: 'u1', admin_access: true }]) {
    const client = await connect(`ws://127.0.0.1:${port}/websocket/logs?access_token=${app.realtime.jwt.sign(claims)}`)
    client.send({ type: 'subscribe', log_level: 'error' })
    t.match(await client.next(), { error: { code: 'FORBIDDEN' } }, `${JSON.stringify(claims)} is no admin`)
    await client.close()
  }
})

t.test('mapClaims decides admin for the app\'s own tokens', async t => {
  const { app, url } = await build(t, { mapClaims: (claims) => ({ user: String(claims.sub), role: null, admin: claims.scope === 'ops' }) })
  const token = signedElsewhere({ sub: 'u1', scope: 'ops', iss: 'fastify-realtime' })
  const client = await connect(url(`/websocket/logs?access_token=${token}`))
  client.send({ type: 'subscribe', log_level: 'error' })
  t.same(await client.next(), { type: 'logs', event: 'subscribe', log_level: 'error' })
  await client.close()
  t.ok(app.realtime)
})

t.test('a token the app\'s mapClaims cannot read (it throws) is refused everywhere, logged once a minute, and crashes nothing', async t => {
  const clock = fakeClock(t, ['Date'])
  const crashes = recordCrashes(t)
  const logged: unknown[] = []
  const stream = { write: (line: string) => { if (line.includes('mapClaims failed')) logged.push(line) } }
  const { app, url } = await build(t, {
    // An app that expects a role claim on every token, and meets one signed for another purpose.
    mapClaims: (claims) => ({ user: String(claims.sub), role: (claims.role as string).toLowerCase(), admin: false }),
    graphql: { schema: buildSchema('type Query { hello: String }') }
  }, { logger: { level: 'error', stream } })
  const token = signedElsewhere({ sub: 'u1', purpose: 'unsubscribe', iss: 'fastify-realtime' })
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: token })
  t.match(await client.next(), { type: 'auth', status: 'error', error: { code: 'AUTH_FAILED' } }, 'in an auth message')
  t.equal((await client.closed).code, 4401)
  t.equal((await refusedWith(url(`/websocket?access_token=${token}`))).status, 401, 'at the upgrade')
  const graphql = await connect(url('/graphql'), { protocols: 'graphql-transport-ws' })
  graphql.send({ type: 'connection_init', payload: { access_token: token } })
  t.equal((await graphql.closed).code, 4403, 'in a connection_init')
  t.notOk(app.realtime.trusted({ log: app.log } as FastifyRequest, app.realtime.jwt.decode(token)!), 'nor trusted on the app\'s routes')
  // Any client can send such tokens again and again: logged once a minute, with how many went unlogged since.
  t.equal(logged.length, 1, 'logged once')
  t.equal(typeof JSON.parse(logged[0] as string).reqId, 'string', 'on the request\'s logger')
  clock.tick(60_000)
  const again = signedElsewhere({ sub: 'u1', purpose: 'unsubscribe', iss: 'fastify-realtime' })
  t.equal((await refusedWith(url(`/websocket?access_token=${again}`))).status, 401)
  t.equal(logged.length, 2, 'a minute on, logged again')
  t.match(JSON.parse(logged[1] as string), { msg: 'mapClaims failed', unlogged: 3 }, 'with the three unlogged meanwhile')
  t.same(crashes, [])
})
