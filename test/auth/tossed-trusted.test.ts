// fastify.realtime.trusted on the app's own routes, where its @fastify/jwt reads the session cookie: a request carrying
// that cookie more than once (a sibling subdomain planted one for the whole site, or on a longer path, which the
// browser sends first: cookie tossing) is refused, as the plugin's upgrade and auth routes refuse it. The cookie
// parser keeps the first copy: the app's route would otherwise act as the planted session, the attacker's account.
import t from 'tap'
import Fastify, { type FastifyRequest } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifyJwt, { type FastifyJWTOptions } from '@fastify/jwt'
import realtime from '../../lib/index.js'
import { admin, directoryOf, editor, secret } from '../helpers.js'

t.test('the session cookie sent twice is no credential on the app\'s routes either; sent once, it is', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCookie)
  await app.register(fastifyJwt, {
    secret,
    cookie: { cookieName: 'directus_session_token', signed: false },
    trusted: (request: FastifyRequest, claims: Record<string, unknown>) => app.realtime.trusted(request, claims)
  } as unknown as FastifyJWTOptions)
  await app.register(realtime, { env: {}, authRoutes: true, users: await directoryOf([admin, editor]) })
  app.get('/api/me', async (request) => {
    await request.jwtVerify()
    return { id: (request.user as { id: string }).id }
  })
  await app.ready()
  const session = async (user: { email: string, password: string }) => {
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: user.password, mode: 'session' } })
    return String(login.headers['set-cookie']).split(';')[0]!
  }
  const me = (cookie: string) => app.inject({ method: 'GET', url: '/api/me', headers: { cookie } })
  const victims = await session(admin)
  const attackers = await session(editor)
  const victim = (await me(victims)).json<{ id: string }>().id
  t.not(victim, (await me(attackers)).json<{ id: string }>().id, 'each cookie alone is its user\'s')

  const tossed = await me(`${attackers}; ${victims}`)
  t.equal(tossed.statusCode, 401, 'the planted copy first, the browser\'s own after it: refused')
  t.match(tossed.json(), { code: 'FST_JWT_AUTHORIZATION_TOKEN_UNTRUSTED' })
  t.equal((await me(`${victims}; ${attackers}`)).statusCode, 401, 'in either order')
  t.equal((await me(`${victims}; \xa0${attackers}`)).json<{ id: string }>().id, victim, 'a cookie of another name beside it is no copy')
  t.equal((await me(victims)).json<{ id: string }>().id, victim, 'the browser\'s own alone still works')
  // A token of the app's in the Authorization header is no session token: the cookies do not concern it.
  const bearer = app.jwt.sign({ id: 'someone', iss: 'fastify-realtime' })
  const authorized = await app.inject({ method: 'GET', url: '/api/me', headers: { cookie: `${attackers}; ${victims}`, authorization: `Bearer ${bearer}` } })
  t.same([authorized.statusCode, authorized.json()], [200, { id: 'someone' }], 'an access token beside the copies is trusted')

  // The plugin's own refusal, through the same @fastify/jwt: it ends each copy's session, which it verifies itself.
  const refresh = (cookie: string) => app.inject({ method: 'POST', url: '/auth/refresh', payload: { mode: 'session' }, headers: { cookie } })
  t.equal((await refresh(`${attackers}; ${victims}`)).statusCode, 401, 'a refresh with both copies is refused')
  t.equal((await refresh(victims)).statusCode, 401, 'and has ended the session of each: the browser\'s own')
  t.equal((await refresh(attackers)).statusCode, 401, 'and the planted one')
})
