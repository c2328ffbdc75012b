// An app embedded in a frame of another site (a widget on a customer's page), logging in in `session` mode over TLS.
// Chromium blocks third-party cookies there (as Safari does, and Chrome in a private window): a SameSite=None cookie
// is dropped, and the frame can never log in. `Partitioned` (CHIPS) keeps it in a jar of the embedding site's. Needs
// openssl, as the other TLS tests.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Frame } from 'playwright-core'
import t, { type Test } from 'tap'
import realtime from '../../lib/index.js'
import { admin, secret, whoami } from '../helpers.js'
import { launchChromium, openPage } from './chromium.js'

const app = 'app.realtime.test'
const shop = 'shop.example.test'
const browser = await launchChromium(t, ['--ignore-certificate-errors', `--host-resolver-rules=MAP ${app} 127.0.0.1, MAP ${shop} 127.0.0.1`])

function certificate (t: Test): { key: Buffer, cert: Buffer } {
  const dir = t.testdir({})
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', `/CN=${app}`, '-addext', `subjectAltName=DNS:${app},DNS:${shop}`, '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' })
  return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }
}

/** The app over TLS with session cookies for frames (`SameSite=None; Secure`), and the shop's page that embeds it. */
async function start (t: Test, partitioned: boolean): Promise<{ shopPage: string }> {
  const refresh = { REFRESH_TOKEN_COOKIE_SECURE: 'true', REFRESH_TOKEN_COOKIE_SAME_SITE: 'none', REFRESH_TOKEN_COOKIE_PARTITIONED: String(partitioned) }
  const server = Fastify({ https: certificate(t) }) as unknown as FastifyInstance
  t.teardown(() => server.close())
  await server.register(realtime, {
    env: { SECRET: secret, SESSION_COOKIE_SECURE: 'true', SESSION_COOKIE_SAME_SITE: 'none', SESSION_COOKIE_PARTITIONED: String(partitioned), ...refresh },
    users: [admin],
    authRoutes: true,
    // Public mode: a socket without the cookie opens as the public, and says so.
    rest: { auth: 'public', handlers: { whoami } }
  })
  server.get('/embed', async (request, reply) => reply.type('text/html').send(`<iframe src="https://${app}:${request.port}/frame"></iframe>`))
  server.get('/frame', async (_request, reply) => reply.type('text/html').send('<p>the app</p>'))
  await server.listen({ host: '127.0.0.1', port: 0 })
  return { shopPage: `https://${shop}:${(server.server.address() as AddressInfo).port}/embed` }
}

/** The app's frame in the shop's page. */
async function embedded (t: Test, shopPage: string): Promise<Frame> {
  const page = await openPage(t, browser)
  const framed = new Promise<Frame>(resolve => page.on('framenavigated', frame => { if (frame.url().endsWith('/frame')) resolve(frame) }))
  await page.goto(shopPage)
  const frame = await framed
  await frame.waitForLoadState()
  return frame
}

/** A session-mode login from the frame, then a socket's `whoami`: the user the socket opened as. */
function loginThenWhoami (frame: Frame, credentials: { email: string, password: string }): Promise<{ login: number, user: string | null }> {
  return frame.evaluate(async ({ email, password }) => {
    const login = await fetch('/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password, mode: 'session' }) })
    const socket = new WebSocket(new URL('/websocket', location.href.replace('https:', 'wss:')))
    const reply = new Promise<{ user: string | null }>((resolve, reject) => {
      socket.addEventListener('message', event => {
        const frame = JSON.parse(event.data) as { type: string, user: string | null }
        if (frame.type === 'whoami') resolve(frame)
      })
      socket.addEventListener('close', event => reject(new Error(`closed ${event.code} before whoami's answer`)))
    })
    await new Promise(resolve => socket.addEventListener('open', resolve))
    socket.send(JSON.stringify({ type: 'whoami' }))
    const { user } = await reply
    socket.close()
    return { login: login.status, user }
  }, credentials)
}

t.test('without Partitioned, the browser drops the session cookie in another site\'s frame: the login answers 200 and the socket opens as the public', async t => {
  const { shopPage } = await start(t, false)
  const frame = await embedded(t, shopPage)
  t.same(await loginThenWhoami(frame, admin), { login: 200, user: null })
})

t.test('with SESSION_COOKIE_PARTITIONED, the frame logs in, its socket opens as the user, and logging out drops the cookie', async t => {
  const { shopPage } = await start(t, true)
  const frame = await embedded(t, shopPage)
  t.match(await loginThenWhoami(frame, admin), { login: 200, user: String })
  const cookies = await frame.page().context().cookies()
  t.match(cookies, [{ name: 'directus_session_token', secure: true, sameSite: 'None', partitionKey: `https://${shop.split('.').slice(-2).join('.')}` }], 'kept in the shop\'s partition')
  const logout = await frame.evaluate(async () => (await fetch('/auth/logout', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"mode":"session"}' })).status)
  t.equal(logout, 204)
  t.same(await frame.page().context().cookies(), [], 'the logout\'s clearing reaches the partitioned cookie')
})

// An app turning the option on (or off) under browsers already holding its cookie. A browser keeps a partitioned and
// an unpartitioned cookie of one name side by side, and a clearing reaches only the kind it names: the copy of the
// other kind must go with the login that replaces it, or every later request carries two copies and is refused as
// tossed (plugin-cookies.ts), the user logged out until the old one expires.
t.test('turning Partitioned on or off, the next login replaces the cookie of the other kind: one copy, and the socket opens as the user', async t => {
  for (const [before, after] of [[false, true], [true, false]] as const) {
    const appPage = async (partitioned: boolean) => (await start(t, partitioned)).shopPage.replace(shop, app).replace('/embed', '/frame')
    const [first, second] = [await appPage(before), await appPage(after)]
    const page = await openPage(t, browser)
    await page.goto(first)
    t.match(await loginThenWhoami(page.mainFrame(), admin), { login: 200, user: String }, `partitioned ${before}: logged in`)
    await page.goto(second)
    const login = await page.evaluate(async (body) => (await fetch('/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body })).status,
      JSON.stringify({ ...admin, mode: 'session' }))
    t.equal(login, 200)
    t.match(await page.context().cookies(), [{ name: 'directus_session_token', partitionKey: after ? String : undefined }], `partitioned ${after}: one copy, the new kind`)
    t.equal((await page.context().cookies()).length, 1)
    const user = await page.evaluate(async () => {
      const socket = new WebSocket(new URL('/websocket', location.href.replace('https:', 'wss:')))
      return new Promise<string | null>(resolve => {
        socket.addEventListener('open', () => socket.send(JSON.stringify({ type: 'whoami' })))
        socket.addEventListener('message', event => { resolve((JSON.parse(event.data) as { user: string | null }).user); socket.close() })
        socket.addEventListener('close', () => resolve('closed'))
      })
    })
    t.match(user, /^[\w-]{36}$/, 'the socket opens as the user')
  }
})

// The SDK's flow in `cookie` mode: a login sets the refresh cookie, a refresh trades it for an access token, a logout
// clears it.
t.test('in `cookie` mode, the frame refreshes with its partitioned cookie and a logout clears it; unpartitioned, the refresh has no cookie', async t => {
  for (const partitioned of [true, false]) {
    const { shopPage } = await start(t, partitioned)
    const frame = await embedded(t, shopPage)
    const statuses = await frame.evaluate(async (credentials) => {
      const post = async (route: string, body: object) => (await fetch(route, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).status
      return [await post('/auth/login', { ...credentials, mode: 'cookie' }), await post('/auth/refresh', { mode: 'cookie' }), await post('/auth/logout', { mode: 'cookie' })]
    }, admin)
    t.same(statuses, partitioned ? [200, 200, 204] : [200, 400, 400], `partitioned ${partitioned}`)
    t.same(await frame.page().context().cookies(), [], 'no cookie left')
  }
})

// The app opened directly and in the shop's frame at once, in one browser: two jars, neither copy beside the other in
// a request (no tossing), and the frame's logout leaves the top level's login alone.
t.test('the app at the top level and in a frame at once: a jar each, and a logout in one leaves the other logged in', async t => {
  const { shopPage } = await start(t, true)
  const top = await openPage(t, browser)
  await top.goto(shopPage.replace(shop, app).replace('/embed', '/frame'))
  t.match(await loginThenWhoami(top.mainFrame(), admin), { login: 200, user: String }, 'the top level logs in')
  const page = await top.context().newPage()
  const framed = new Promise<Frame>(resolve => page.on('framenavigated', frame => { if (frame.url().endsWith('/frame')) resolve(frame) }))
  await page.goto(shopPage)
  const frame = await framed
  await frame.waitForLoadState()
  t.match(await loginThenWhoami(frame, admin), { login: 200, user: String }, 'the frame logs in')
  const keys = (await top.context().cookies()).map(cookie => cookie.partitionKey).sort()
  t.same(keys, ['https://example.test', 'https://realtime.test'], 'a copy in each jar')
  const logout = await frame.evaluate(async () => (await fetch('/auth/logout', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"mode":"session"}' })).status)
  t.equal(logout, 204)
  t.same((await top.context().cookies()).map(cookie => cookie.partitionKey), ['https://realtime.test'], 'the top level\'s copy stays')
  const refreshed = await top.evaluate(async () => (await fetch('/auth/refresh', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"mode":"session"}' })).status)
  t.equal(refreshed, 200, 'and its session too')
})
