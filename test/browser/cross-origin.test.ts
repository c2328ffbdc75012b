// Cross-site WebSocket hijacking (PROTOCOL.md section 3): a page of another origin on the same site (the same host,
// another port) opens sockets to the reference server. The browser sends the user's SameSite=Lax session cookie with
// them, so only the origin check stands between that page and the user's sockets: it answers 403.
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { admin } from '../helpers.js'
import { launchChromium } from './chromium.js'
import { startReference } from './reference.js'
import { SdkPage } from './sdk-page.js'

const browser = await launchChromium(t)
const endpoints = ['/graphql', '/websocket', '/websocket/logs']

/** A second server on the same host: another origin, the same site. */
async function otherOrigin (t: Test): Promise<string> {
  const app = Fastify()
  app.get('/', (_request, reply) => reply.type('text/html').send('<!doctype html><title>another origin</title>'))
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

t.test('a page of another origin gets 403 on every endpoint, though the browser sends the session cookie', async t => {
  const reference = await startReference(t)
  const own = await SdkPage.open(t, browser, reference.origin)
  await own.login('session', admin.email, admin.password)
  t.match(await own.cookie('directus_session_token'), { httpOnly: true, sameSite: 'Lax' })
  // The reference server's own page: the cookie authenticates its socket.
  await own.connect('public')
  t.match(await own.whoami('own page'), { email: admin.email })

  const other = await otherOrigin(t)
  const hostile = await own.context.newPage() // the same browser profile: the same cookies
  await hostile.goto(`${other}/`)
  const sockets = await hostile.evaluate(({ server, endpoints }) => Promise.all(endpoints.map(path =>
    new Promise(resolve => {
      const socket = new WebSocket(`${server}${path}`, path === '/graphql' ? 'graphql-transport-ws' : [])
      socket.addEventListener('open', () => resolve({ path, opened: true }))
      socket.addEventListener('close', (event) => resolve({ path, opened: false, code: event.code }))
    }))), { server: reference.origin.replace(/^http/, 'ws'), endpoints })
  t.same(sockets, endpoints.map(path => ({ path, opened: false, code: 1006 })), 'no socket opened')

  const refused = reference.upgrades.filter(upgrade => upgrade.origin === other).sort((a, b) => a.path.localeCompare(b.path))
  t.same(refused.map(({ path, status }) => ({ path, status })), endpoints.map(path => ({ path, status: 403 })))
  for (const { path, cookie } of refused) t.match(cookie, /(?:^|; )directus_session_token=[^;]+/, `${path}: the browser sent the session cookie`)
})
