// Two instances of the plugin on one server (two tenants) and their cookies: a browser sends every cookie of the host to
// both, so two that would share a name either of them sets fail boot (lib/routes/cookie-names.ts).
import t, { type Test } from 'tap'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import realtime, { type RealtimeOptions } from '../../lib/index.js'
import { admin, connect, directoryOf } from '../helpers.js'

const tenants = { a: 'tenant-a-secret-that-is-long-enough-aaaa', b: 'tenant-b-secret-that-is-long-enough-bbbb' }

/** An app with an instance under `/a` and one under `/b`, in sibling scopes, each with its options on top. */
async function twoTenants (t: Test, a: RealtimeOptions, b: RealtimeOptions) {
  const app = Fastify()
  t.teardown(() => app.close())
  for (const [name, options] of [['a', a], ['b', b]] as const) {
    await app.register(async (scope) => {
      await scope.register(realtime, {
        prefix: `/${name}`, env: {}, secret: tenants[name], users: await directoryOf([admin]), rest: { auth: 'public' }, heartbeat: { enabled: false }, ...options
      })
    })
  }
  await app.ready()
  return app
}

const sharing = (name: string, its: string, role: string) =>
  new RegExp(`^Invalid configuration: two fastify-realtime instances on one server would share the cookie ${name} \\(the ${its} cookie of the one under /a, and this one's ${role} cookie\\): .* Give each instance cookie names of its own \\(the cookies\\.session\\.name and cookies\\.refresh\\.name options, or SESSION_COOKIE_NAME and REFRESH_TOKEN_COOKIE_NAME\\)$`)

t.test('two instances with auth routes and Directus\'s cookie names: boot fails, naming the cookie', async t => {
  // A session-mode login at one made the browser send its session cookie with every upgrade to the other, refused
  // 401 even in public mode; a cookie-mode login at one replaced the other's refresh cookie.
  await t.rejects(twoTenants(t, { authRoutes: true }, { authRoutes: true }),
    { code: 'FST_REALTIME_INVALID_CONFIG', message: sharing('directus_session_token', 'session', 'session') })
})

t.test('one instance setting the cookies, the other reading the session cookie at its upgrades: boot fails', async t => {
  await t.rejects(twoTenants(t, { authRoutes: true }, {}), { message: sharing('directus_session_token', 'session', 'session') })
  await t.rejects(twoTenants(t, {}, { authRoutes: true }), { message: sharing('directus_session_token', 'session', 'session') })
})

t.test('a refresh cookie named as the other\'s, or as its session cookie: boot fails', async t => {
  await t.rejects(twoTenants(t, { authRoutes: true }, { authRoutes: true, cookies: { session: { name: 'b_session' } } }),
    { message: sharing('directus_refresh_token', 'refresh', 'refresh') })
  await t.rejects(twoTenants(t, { authRoutes: true, cookies: { session: { name: 'a_session' } } }, { env: { SESSION_COOKIE_NAME: 'directus_refresh_token', REFRESH_TOKEN_COOKIE_NAME: 'b_refresh' } }),
    { message: sharing('directus_refresh_token', 'refresh', 'session') })
})

t.test('two instances without auth routes share the session cookie\'s name: neither sets it, both boot', async t => {
  const app = await twoTenants(t, {}, {})
  t.ok(app.hasRoute({ method: 'GET', url: '/b/websocket' }))
})

t.test('names of their own: a login at one leaves the other\'s sockets and cookies alone', async t => {
  const app = await twoTenants(t,
    { authRoutes: true, cookies: { session: { name: 'a_session' }, refresh: { name: 'a_refresh' } } },
    { authRoutes: true, env: { SESSION_COOKIE_NAME: 'b_session', REFRESH_TOKEN_COOKIE_NAME: 'b_refresh' } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const cookieOf = (response: { headers: Record<string, unknown> }) => [response.headers['set-cookie']].flat().map(c => String(c).split(';')[0]!).join('; ')

  const session = await app.inject({ method: 'POST', url: '/a/auth/login', payload: { email: admin.email, password: admin.password, mode: 'session' } })
  const socket = await connect(`ws://127.0.0.1:${port}/b/websocket`, { headers: { cookie: cookieOf(session) } })
  socket.send({ type: 'ping', uid: 1 })
  t.same(await socket.next(), { type: 'pong', uid: 1 }, 'a public socket at B, the browser sending A\'s session cookie')
  await socket.close()

  const atA = await app.inject({ method: 'POST', url: '/a/auth/login', payload: { email: admin.email, password: admin.password, mode: 'cookie' } })
  const atB = await app.inject({ method: 'POST', url: '/b/auth/login', payload: { email: admin.email, password: admin.password, mode: 'cookie' } })
  const browser = `${cookieOf(atA)}; ${cookieOf(atB)}`
  t.match(browser, /^a_refresh=[^;]+; b_refresh=/, 'each its own cookie')
  const refreshed = await app.inject({ method: 'POST', url: '/a/auth/refresh', headers: { cookie: browser }, payload: { mode: 'cookie' } })
  t.equal(refreshed.statusCode, 200, 'A\'s refresh, after a login at B')
})
