// Cookie tossing in Chromium: a page on a sibling subdomain (same site, so SameSite does not stop it) sets the app's
// session cookie for the whole domain, holding the attacker's session. The browser then sends both copies. Neither is
// a credential; the plugin has the browser drop every copy, and ends each session they name
// (lib/routes/plugin-cookies.ts).
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { admin } from '../helpers.js'
import { launchChromium } from './chromium.js'
import { startReference } from './reference.js'
import { SdkPage } from './sdk-page.js'

// Both names resolve to the reference server on loopback: app. serves the app, evil. is the sibling.
const browser = await launchChromium(t, ['--host-resolver-rules=MAP *.realtime.test 127.0.0.1'])

/** A session of the attacker's own, as its session cookie's value. */
async function attackerSession (app: FastifyInstance): Promise<string> {
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password, mode: 'session' } })
  return /^directus_session_token=([^;]+)/.exec(String(login.headers['set-cookie']))![1]!
}

/** The victim's browser on the app, logged in (session mode), and the attacker's page in the same browser. */
async function victim (t: Test) {
  const reference = await startReference(t)
  const port = new URL(reference.origin).port
  const page = await SdkPage.open(t, browser, `http://app.realtime.test:${port}`)
  await page.login('session', admin.email, admin.password)
  const attacker = await attackerSession(reference.app)
  /** The attacker's page plants its session for the whole site, on `path`. */
  const toss = async (path: string) => {
    const evil = await page.context.newPage()
    await evil.goto(`http://evil.realtime.test:${port}/`)
    await evil.evaluate(({ attacker, path }) => { document.cookie = `directus_session_token=${attacker}; Domain=realtime.test; Path=${path}` }, { attacker, path })
    await evil.close()
  }
  const copies = async () => (await page.context.cookies()).filter(cookie => cookie.name === 'directus_session_token')
  const refreshed = async (cookie: string) => (await reference.app.inject({
    method: 'POST', url: '/auth/refresh', payload: { mode: 'session' }, headers: { cookie: `directus_session_token=${cookie}` }
  })).statusCode
  return { ...reference, page, attacker, toss, copies, refreshed }
}

t.test('a copy planted on the socket\'s path: the upgrade is refused, and the browser drops every copy; a new login then connects', async t => {
  const { page, attacker, toss, copies, refreshed, upgrades } = await victim(t)
  const own = (await page.cookie('directus_session_token'))!.value
  await toss('/websocket')
  t.equal((await copies()).length, 2, 'the browser holds both')
  await t.rejects(page.connect('public'), 'the socket does not open')
  t.match(upgrades.at(-1), { path: '/websocket', status: 401 })
  t.same(await copies(), [], 'and the browser holds neither copy afterwards')
  t.equal(await refreshed(attacker), 401, 'the planted session has ended')
  t.equal(await refreshed(own), 401, 'and so has the one the browser lost')

  await page.login('session', admin.email, admin.password)
  await page.connect('public')
  t.match(await page.whoami('again'), { email: admin.email }, 'logged in again, the socket opens as the user')
})

t.test('a copy planted for the whole site: the logout leaves the browser with neither, not with the planted one', async t => {
  const { page, attacker, toss, copies, refreshed, upgrades } = await victim(t)
  await toss('/')
  t.equal((await copies()).length, 2, 'the browser holds both')
  await page.logout()
  t.same(await copies(), [], 'logged out: the browser holds neither copy')
  t.equal(await refreshed(attacker), 401, 'the planted session has ended')
  await page.connect('public')
  t.match(upgrades.at(-1), { path: '/websocket' })
  t.equal(upgrades.at(-1)!.cookie, undefined, 'a socket opened afterwards carries no session, the planted one least of all')
})

/**
 * A sibling subdomain's own server (cookies know no port), answering every request with `setCookie` as it is written,
 * byte for byte (latin1): a name may carry bytes no page's `document.cookie` can write.
 */
async function siblingServer (t: Test, setCookie: string): Promise<string> {
  const server = createServer((request, response) => {
    response.socket!.end(`HTTP/1.1 200 OK\r\nSet-Cookie: ${setCookie}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok`, 'latin1')
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise(resolve => server.close(resolve)))
  return `http://evil.realtime.test:${(server.address() as AddressInfo).port}/`
}

t.test('a sibling\'s cookie named after a no-break space is another cookie: the session cookie beside it stays the user\'s', async t => {
  const { page, app, upgrades, refreshed } = await victim(t)
  const own = (await page.cookie('directus_session_token'))!.value
  // Chromium keeps the 0xA0 byte in the name, and sends it back as it is: `directus_session_token=<own>; \xa0directus_session_token=x`.
  const attacker = await attackerSession(app)
  const evil = await page.context.newPage()
  await evil.goto(await siblingServer(t, `\xa0directus_session_token=${attacker}; Domain=realtime.test; Path=/`))
  await evil.close()
  t.equal((await page.context.cookies()).length, 2, 'the browser holds the planted cookie beside its own')

  await page.connect('public')
  t.match(upgrades.at(-1), { path: '/websocket', status: undefined }, 'the upgrade is accepted')
  t.match(await page.whoami('planted'), { email: admin.email }, 'the socket opens as the user')
  await page.connect('public')
  t.match(await page.whoami('again'), { email: admin.email }, 'and again: the session was not ended')
  t.equal(await refreshed(own), 200, 'the user\'s session lives on')
})
