// SDK 26's `cookie` and `session` logins and its rest() auth commands against the plugin's HTTP routes, in Node: a
// cookie jar shared by the SDK's fetch and its sockets stands in for the browser (test/browser/ runs SDK 18 in
// Chromium). What changed since 18 is the login's form; the requests and the cookies are 18's.
import t from 'tap'
import WebSocket from 'ws'
import { authentication, createDirectus, logout, realtime, refresh, rest } from '@directus/sdk-26'
import { admin, build, whoami, within } from '../helpers.js'

interface Frame { type: string, status?: string, error?: { code: string }, user?: string | null }

/** A fetch and a WebSocket (the README's NodeWebSocket, sending the jar's cookies with the upgrade) sharing one jar. */
function cookieJar () {
  const cookies = new Map<string, string>()
  const jarFetch: typeof fetch = async (input, init = {}) => {
    const headers = new Headers(init.headers)
    if (cookies.size > 0) headers.set('cookie', [...cookies].map(([name, value]) => `${name}=${value}`).join('; '))
    const response = await fetch(input, { ...init, headers })
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';')
      const name = pair.slice(0, pair.indexOf('='))
      if (attributes.some(attribute => /^\s*expires=thu, 01 jan 1970/i.test(attribute))) cookies.delete(name)
      else cookies.set(name, pair.slice(name.length + 1))
    }
    return response
  }
  class JarWebSocket extends WebSocket {
    constructor (url: string | URL, protocols?: string | string[]) {
      const cookie = [...cookies].map(([name, value]) => `${name}=${value}`).join('; ')
      super(url, protocols, { allowSynchronousEvents: false, headers: cookie ? { cookie } : {} })
    }
  }
  return { cookies, jarFetch, JarWebSocket }
}

/** The first frame of the socket's that matches, from the moment this is called. */
function nextFrame (socket: { addEventListener: WebSocket['addEventListener'] }, match: (frame: Frame) => boolean): Promise<Frame> {
  return within(new Promise(resolve => {
    socket.addEventListener('message', function listener (event) {
      const frame = JSON.parse(String(event.data)) as Frame
      if (match(frame)) resolve(frame)
    })
  }), 'the frame')
}

const options = { users: [admin], authRoutes: true, rest: { handlers: { whoami } } }
const httpUrl = (url: (path: string) => string) => url('').replace('ws:', 'http:')

t.test('cookie mode: the refresh token stays in its cookie, the socket authenticates with the access token, logout revokes it', async t => {
  const { url } = await build(t, options)
  const { cookies, jarFetch, JarWebSocket } = cookieJar()
  const client = createDirectus(httpUrl(url), { globals: { fetch: jarFetch, WebSocket: JarWebSocket as unknown as typeof globalThis.WebSocket } })
    .with(authentication('cookie', { credentials: 'include' }))
    .with(realtime({ authMode: 'handshake', reconnect: false }))
  t.teardown(() => { client.stopRefreshing(); client.disconnect() })

  const login = await client.login({ email: admin.email, password: admin.password })
  t.match(login, { access_token: String, expires: Number })
  t.notOk('refresh_token' in login, 'not in the body')
  t.same([...cookies.keys()], ['directus_refresh_token'])
  const first = cookies.get('directus_refresh_token')
  const socket = await client.connect()

  t.match(await client.refresh(), { access_token: String })
  t.not(cookies.get('directus_refresh_token'), first, 'rotated')
  const me = nextFrame(socket, frame => frame.type === 'whoami')
  client.sendMessage({ type: 'whoami' })
  t.type((await me).user, 'string')

  const revoked = nextFrame(socket, frame => frame.type === 'auth')
  await client.logout()
  t.same([...cookies.keys()], [], 'cleared')
  t.match(await revoked, { status: 'error', error: { code: 'AUTH_REVOKED' } })
})

t.test('session mode: the cookie authenticates the socket at the upgrade, logout revokes it and clears the cookie', async t => {
  const { url } = await build(t, options)
  const { cookies, jarFetch, JarWebSocket } = cookieJar()
  const auth = createDirectus(httpUrl(url), { globals: { fetch: jarFetch } }).with(authentication('session', { credentials: 'include' }))
  // As the README's Browsers example: no authentication() on the socket's client.
  const live = createDirectus(httpUrl(url), { globals: { WebSocket: JarWebSocket as unknown as typeof globalThis.WebSocket } })
    .with(realtime({ authMode: 'public', reconnect: false }))
  t.teardown(() => { auth.stopRefreshing(); live.disconnect() })

  const login = await auth.login({ email: admin.email, password: admin.password })
  t.same(Object.keys(login).sort(), ['expires', 'expires_at'], 'no token in the body')
  t.same([...cookies.keys()], ['directus_session_token'])
  await auth.refresh()
  const socket = await live.connect()
  const me = nextFrame(socket, frame => frame.type === 'whoami')
  live.sendMessage({ type: 'whoami' })
  t.type((await me).user, 'string', 'authenticated by the refreshed cookie')

  const revoked = nextFrame(socket, frame => frame.type === 'auth')
  await auth.logout()
  t.same([...cookies.keys()], [], 'cleared')
  t.match(await revoked, { status: 'error', error: { code: 'AUTH_REVOKED' } })
})

t.test("rest()'s refresh and logout commands, which send the access token as a Bearer header too", async t => {
  const { url } = await build(t, options)
  const client = createDirectus(httpUrl(url)).with(authentication('json')).with(rest())
  t.teardown(() => client.stopRefreshing())
  const login = await client.login({ email: admin.email, password: admin.password })
  const refreshed = await client.request(refresh({ mode: 'json', refresh_token: login.refresh_token! }))
  t.match(refreshed, { access_token: String, expires: Number, refresh_token: String })
  t.equal(await client.request(logout({ mode: 'json', refresh_token: refreshed.refresh_token! })), null)
  await t.rejects(client.request(refresh({ mode: 'json', refresh_token: refreshed.refresh_token! })), { message: 'Invalid user credentials.' })
})
