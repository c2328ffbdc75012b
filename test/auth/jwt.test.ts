// Which @fastify/jwt verifies socket tokens: the app's (renamed verify decorator, namespace) or the plugin's own, which
// never decorates the app.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import { createSigner } from 'fast-jwt'
import realtime from '../../lib/index.js'
import { admin, build, connect, directoryOf, fakeClock, nextSecond, refusedWith, secret, stoppedDate, within } from '../helpers.js'

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

t.test('with logins, the app\'s instance must sign at once, or boot says what to change; the plugin\'s tokens carry its issuer whatever the app\'s sign.iss', async t => {
  const key = secret
  const users = await directoryOf([admin])
  const boot = async (jwtOptions: object, options: object = { users }) => {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(fastifyJwt, jwtOptions as never)
    await app.register(realtime, { env: {}, authRoutes: true, ...options })
    await app.ready()
    return app
  }
  const cannotSign = /cannot sign a token at once \(its key is a function, or public only\)/
  // A key function (a JWKS lookup) signs in a callback only; a public key alone cannot sign.
  await t.rejects(async () => { await boot({ secret: async () => key }) }, { message: cannotSign })
  await t.rejects(async () => { await boot({ secret: { public: key } }) }, { message: cannotSign })
  await t.rejects(async () => { await boot({ secret: async () => key }, { verifyCredentials: async () => null }) }, { message: cannotSign })

  const identityProvider = await boot({ secret: async () => key }, {})
  t.ok(identityProvider.hasRoute({ method: 'GET', url: '/websocket' }), 'without logins, a key function verifies as before')
  // The app's instance signs its own tokens with its issuer; the plugin's keep the plugin's, and their admin access.
  const ownIssuer = await boot({ secret: key, sign: { iss: 'the-app' } })
  const login = await ownIssuer.inject({ method: 'POST', url: '/auth/login', payload: admin })
  t.match(ownIssuer.jwt.decode(login.json().data.access_token), { iss: 'fastify-realtime', admin_access: true }, 'a login')
  t.match(ownIssuer.jwt.decode(ownIssuer.realtime.signAccessToken({ user: 'root', role: null, admin: true }).access_token),
    { iss: 'fastify-realtime', admin_access: true }, 'signAccessToken')
  t.match(ownIssuer.jwt.decode(ownIssuer.jwt.sign({ id: 'x' })), { iss: 'the-app' }, 'the app\'s own tokens')
  const both = await boot({ secret: { private: key, public: async () => key } })
  t.equal((await both.inject({ method: 'POST', url: '/auth/login', payload: admin })).statusCode, 200, 'a signing key beside a key function for verifying')

  // An instance that verifies only its own issuer, or claims the plugin does not sign, would refuse every login's token.
  const refuses = /^Invalid configuration: the app's @fastify\/jwt refuses the access tokens the plugin signs with it \(.+\): every login would answer a token no socket takes/
  const checksIssuer = { secret: key, sign: { iss: 'the-app' }, verify: { allowedIss: 'the-app' } }
  await t.rejects(async () => { await boot(checksIssuer) }, { message: refuses })
  await t.rejects(async () => { await boot({ secret: key, verify: { requiredClaims: ['aud'] } }) }, { message: refuses })
  const sameIssuer = await boot(checksIssuer, { users, issuer: 'the-app' })
  await sameIssuer.listen({ host: '127.0.0.1', port: 0 })
  const token = (await sameIssuer.inject({ method: 'POST', url: '/auth/login', payload: admin })).json().data.access_token
  const client = await connect(`ws://127.0.0.1:${(sameIssuer.server.address() as { port: number }).port}/websocket`)
  client.send({ type: 'auth', access_token: token })
  t.match(await client.next(), { type: 'auth', status: 'ok' }, 'with the plugin\'s issuer set to the app\'s, its logins\' tokens open sockets')
  await client.close()
})

t.test('the app\'s instance signing its own tokens without iat: the plugin\'s keep theirs, and one signed just after a revokeUser is taken', async t => {
  // @fastify/jwt lays its sign options under every call's: with the app's `noTimestamp` the plugin's tokens carried no
  // `iat`, so one signed just after a revokeUser of its user read as issued before it and was refused.
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, { secret, sign: { noTimestamp: true } })
  await app.register(realtime, { env: {}, authRoutes: true, users: await directoryOf([{ ...admin, id: 'admin-1' }]), heartbeat: { enabled: false } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `ws://127.0.0.1:${(app.server.address() as { port: number }).port}/websocket`
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: admin })
  t.equal(typeof app.jwt.decode<{ iat?: number }>(login.json().data.access_token)!.iat, 'number', 'a login\'s token has its iat')
  t.equal(app.jwt.decode<{ iat?: number }>(app.jwt.sign({ id: 'x' }))!.iat, undefined, 'the app\'s own tokens keep its options')
  const clock = fakeClock(t, ['Date'])
  await app.realtime.revokeUser('admin-1')
  clock.tick(1) // a millisecond after it, in its second: such a token reads as issued the second after (revoke-user.test.ts)
  const after = app.realtime.signAccessToken({ user: 'admin-1', role: 'administrator', admin: true }).access_token
  const client = await connect(url)
  client.send({ type: 'auth', access_token: after })
  t.match(await client.next(), { type: 'auth', status: 'ok' }, 'one signed just after a revokeUser is taken')
  await client.close()
})

t.test('the app\'s instance signing with sign.notBefore, and logins: boot says the logins\' tokens would wait that long', async t => {
  // fast-jwt counts an `nbf` from the instance's notBefore whatever a sign call says: every login answered a token
  // refused (AUTH_FAILED) for that long.
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, { secret, sign: { notBefore: '30s' } })
  await t.rejects(async () => { await app.register(realtime, { env: {}, users: await directoryOf([admin]) }) },
    { code: 'FST_REALTIME_INVALID_CONFIG', message: /signs with sign\.notBefore, and the plugin signs its logins' access tokens with it/ })
  const sockets = Fastify()
  t.teardown(() => sockets.close())
  await sockets.register(fastifyJwt, { secret, sign: { notBefore: '30s' } })
  await sockets.register(realtime, { env: {} })
  t.ok(sockets.hasRoute({ method: 'GET', url: '/websocket' }), 'without logins the plugin signs nothing with it: it boots')
})

t.test('the plugin\'s own instance with jwt options that refuse its tokens: boot says so', async t => {
  // Its own instance verifies only what the plugin signs: an allowedIss without its issuer, a claim it does not sign
  // required, or a notBefore had every login's and signAccessToken's token refused at its first socket.
  const boot = async (jwt: object) => {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(realtime, { env: {}, secret, jwt })
    return app
  }
  await t.rejects(async () => { await boot({ verify: { allowedIss: 'the-app' } }) },
    { code: 'FST_REALTIME_INVALID_CONFIG', message: /the option jwt\.verify refuses the access tokens the plugin signs \(.+\): every login would answer a token no socket takes/ })
  await t.rejects(async () => { await boot({ verify: { requiredClaims: ['aud'] } }) }, { message: /the option jwt\.verify refuses the access tokens the plugin signs/ })
  await t.rejects(async () => { await boot({ sign: { notBefore: '30s' } }) }, { message: /the option jwt\.sign\.notBefore would make every access token the plugin signs refused/ })
  // The plugin's tokens carry `iat` whatever the instance's noTimestamp says (authenticator.ts), and boot reads them so.
  const allowing = await boot({ sign: { noTimestamp: true }, verify: { allowedIss: ['fastify-realtime', 'the-app'], requiredClaims: ['exp', 'iat'] } })
  const { access_token: token } = allowing.realtime.signAccessToken({ user: 'root', role: null, admin: true })
  t.match(allowing.realtime.jwt.verify(token), { id: 'root' }, 'options that take its tokens boot, and its tokens verify')
})

t.test('connection.request.user follows the socket\'s credential: refused, kept, expired', async t => {
  const clock = stoppedDate(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, { secret, formatUser: (claims) => ({ name: (claims as { id: string }).id }) })
  let hookDown = false
  await app.register(realtime, {
    env: {},
    users: await directoryOf([admin]),
    rest: { auth: 'public', handlers: { who: (message, connection) => connection.send({ type: 'who', uid: message.uid, user: connection.accountability.user, requestUser: (connection.request as unknown as { user: unknown }).user }) } },
    onAuthenticate: ({ identity }) => {
      if (hookDown) throw new Error('tenants offline')
      return identity.user !== 'bob'
    }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const client = await connect(`ws://127.0.0.1:${(app.server.address() as { port: number }).port}/websocket`)
  const who = async (uid: string) => {
    client.send({ type: 'who', uid })
    return client.next()
  }
  const auth = async (id: string, exp?: number) => {
    client.send({ type: 'auth', access_token: app.jwt.sign(exp === undefined ? { id } : { id, exp }) })
    return client.next()
  }
  hookDown = true
  t.match(await auth('dave'), { error: { code: 'SERVICE_UNAVAILABLE' } })
  t.same(await who('0'), { type: 'who', uid: '0', user: null, requestUser: null }, 'a check that could not run, with nothing held: nobody\'s')
  hookDown = false
  t.match(await auth('alice'), { status: 'ok' })
  t.same(await who('1'), { type: 'who', uid: '1', user: 'alice', requestUser: { name: 'alice' } }, 'what the app made of the token')
  hookDown = true
  t.match(await auth('carol'), { error: { code: 'SERVICE_UNAVAILABLE' } })
  t.same(await who('2'), { type: 'who', uid: '2', user: 'alice', requestUser: { name: 'alice' } }, 'a check that could not run keeps the credential')
  hookDown = false
  t.match(await auth('bob'), { error: { code: 'AUTH_FAILED' } })
  t.same(await who('3'), { type: 'who', uid: '3', user: null, requestUser: null }, 'a refused one is nobody\'s, not the refused user\'s')
  t.match(await auth('alice'), { status: 'ok' })
  client.send({ type: 'auth', email: admin.email, password: admin.password })
  t.match(await client.next(), { status: 'ok' })
  t.match(await who('3b'), { type: 'who', uid: '3b', user: String, requestUser: null }, 'a password verified by no token: nothing the app made, and not alice\'s')
  t.match(await auth('alice', nextSecond()), { status: 'ok' })
  clock.tick(20)
  t.match(await client.next(), { error: { code: 'TOKEN_EXPIRED' } })
  t.same(await who('4'), { type: 'who', uid: '4', user: null, requestUser: null }, 'an expired one is nobody\'s')
  await client.close()
})

t.test('connection.request.user on a socket that opens without a credential: nobody\'s, whatever the app\'s own hook verified', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, { secret })
  // A common soft authentication: whoever the Authorization header names, if anyone.
  app.addHook('onRequest', async (request) => { try { await request.jwtVerify() } catch {} })
  await app.register(realtime, {
    env: {},
    rest: { auth: 'public', handlers: { who: (message, connection) => connection.send({ type: 'who', uid: message.uid, requestUser: (connection.request as unknown as { user: unknown }).user ?? null }) } }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const client = await connect(`ws://127.0.0.1:${(app.server.address() as { port: number }).port}/websocket`, { headers: { authorization: `Bearer ${app.jwt.sign({ id: 'alice' })}` } })
  client.send({ type: 'who', uid: '1' })
  t.same(await client.next(), { type: 'who', uid: '1', requestUser: null }, 'the header is no socket credential: the socket is public, and request.user says so')
  await client.close()
})

t.test('two registrations from their SECRETs beside the app\'s namespaced instances: both boot, each signing with its own', async t => {
  // Each gives its own instance a namespace of the app's shared `fastify.jwt`: the second took the first's name, and
  // boot failed with @fastify/jwt's `JWT namespace already used "realtime"`.
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, { namespace: 'access', secret })
  const tenants: FastifyInstance[] = []
  for (const [i, own] of [`${secret}-tenant-zero`, `${secret}-tenant-one`].entries()) {
    await app.register(async (scope) => {
      await scope.register(realtime, { env: {}, secret: own, prefix: `/t${i}`, users: await directoryOf([admin]), authRoutes: true, cookies: { session: { name: `session${i}` }, refresh: { name: `refresh${i}` } } })
      tenants.push(scope)
    })
  }
  await app.ready()
  const [zero, one] = tenants.map(scope => scope.realtime.jwt)
  t.not(zero, one, 'an instance each')
  const token = (i: number) => app.inject({ method: 'POST', url: `/t${i}/auth/login`, payload: admin }).then(reply => reply.json().data.access_token as string)
  const [zeros, ones] = [await token(0), await token(1)]
  t.ok(zero!.verify(zeros) && one!.verify(ones), 'each verifies its own login\'s token')
  t.throws(() => one!.verify(zeros), 'and not the other\'s')
  const namespaces = app.jwt as unknown as Record<string, unknown>
  t.equal(namespaces.realtime, zero, 'the first at fastify.jwt.realtime, as before')
  t.ok(namespaces.access, 'the app\'s own kept')
})

t.test('SECRET beside the app\'s @fastify/jwt registered first: boot warns that it is not used', async t => {
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { lines.push(JSON.parse(line).msg) } } } })
  t.teardown(() => app.close())
  await app.register(fastifyJwt, { secret: 'the-apps-own-secret-for-magic-links-and-more' })
  await app.register(realtime, { env: {}, secret, rest: { auth: 'public' } })
  await app.ready()
  t.match(lines, [/^SECRET \(option secret\) is not used: the app's @fastify\/jwt, registered before fastify-realtime, verifies socket tokens/])
})

t.test('a key lookup that answers after the wait leaves no trace on connection.request.user', async t => {
  const clock = fakeClock(t, ['setTimeout', 'clearTimeout'])
  let release!: () => void
  const released = new Promise<void>(resolve => { release = resolve })
  let asked!: () => void
  const lookedUp = new Promise<void>(resolve => { asked = resolve })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, {
    formatUser: (claims: object) => ({ name: (claims as { id: string }).id }),
    decode: { complete: true },
    // The key of `slow` tokens answers only when the test says so: past the wait.
    secret: async (_request: unknown, token: { header: { kid?: string } }) => {
      if (token.header.kid === 'slow') {
        asked()
        await released
      }
      return secret
    }
  } as never)
  await app.register(realtime, {
    env: {},
    rest: { auth: 'public', handlers: { who: (message, connection) => connection.send({ type: 'who', uid: message.uid, user: connection.accountability.user, requestUser: (connection.request as unknown as { user: unknown }).user }) } }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const client = await connect(`ws://127.0.0.1:${(app.server.address() as { port: number }).port}/websocket`)
  const sign = (id: string, kid: string) => createSigner({ key: secret, kid, expiresIn: 60_000 })({ id })
  client.send({ type: 'auth', access_token: sign('mallory', 'slow') })
  await within(lookedUp, 'the key lookup')
  await new Promise(resolve => setImmediate(resolve))
  clock.tick(3_000)
  t.match(await client.next(), { error: { code: 'AUTH_FAILED' } }, 'no key within 3 s: refused')
  client.send({ type: 'auth', access_token: sign('alice', 'fast') })
  t.match(await client.next(), { status: 'ok' })
  release() // mallory's key comes at last, and @fastify/jwt writes what it made of her token
  await new Promise(resolve => setImmediate(resolve))
  client.send({ type: 'who', uid: 'w' })
  t.same(await client.next(), { type: 'who', uid: 'w', user: 'alice', requestUser: { name: 'alice' } })
  await client.close()
})

t.test('a key lookup waits no longer than the shortest auth timeout, when it is under the store timeout', async t => {
  const clock = fakeClock(t, ['setTimeout', 'clearTimeout'])
  let asked!: () => void
  const lookedUp = new Promise<void>(resolve => { asked = resolve })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, {
    decode: { complete: true },
    // A provider that never answers.
    secret: async () => {
      asked()
      return new Promise<string>(() => {})
    }
  } as never)
  await app.register(realtime, { env: { WEBSOCKETS_REST_AUTH_TIMEOUT: '0.5' } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const token = createSigner({ key: secret, expiresIn: 60_000 })({ id: 'u' })
  const upgrade = refusedWith(`ws://127.0.0.1:${(app.server.address() as { port: number }).port}/websocket?access_token=${token}`)
  await within(lookedUp, 'the key lookup')
  await new Promise(resolve => setImmediate(resolve))
  clock.tick(500)
  t.match(await within(upgrade, 'the upgrade\'s answer'), { status: 401 }, 'refused as the auth timeout runs out')
})
