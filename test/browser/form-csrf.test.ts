// Login CSRF: a page of another site submits a plain HTML form (no CORS preflight) to the app's `/auth/login` with the
// attacker's credentials. An app that parses forms for its own routes (@fastify/formbody) parsed the plugin's too: the
// browser took the attacker's session cookie, and the user's next socket ran as the attacker. The auth routes take JSON
// alone. app.test and evil.test are two sites, both resolved to loopback; evil.app.test is a page of the same site.
import { parse } from 'node:querystring'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import type { Page } from 'playwright-core'
import realtime from '../../lib/index.js'
import { admin, directoryOf, secret, whoami } from '../helpers.js'
import { launchChromium, openPage } from './chromium.js'

const browser = await launchChromium(t, ['--host-resolver-rules=MAP *.test 127.0.0.1'])
const attacker = { email: 'attacker@evil.test', password: 'attacker-pw', role: 'editor' }

/** The user, as the socket a page of the app opens with the browser's cookies says. */
const socketUser = (page: Page) => page.evaluate(() => new Promise(resolve => {
  const socket = new WebSocket(`${location.origin.replace('http', 'ws')}/websocket`)
  socket.onopen = () => socket.send(JSON.stringify({ type: 'whoami', uid: 'w' }))
  socket.onmessage = (event) => {
    resolve(JSON.parse(event.data).user)
    socket.close()
  }
}))

/** A page of the app at `origin`, logged in as the admin in session mode: the user its sockets run as. */
async function logIn (t: Test, page: Page, origin: string): Promise<unknown> {
  await page.goto(`${origin}/`)
  const status = await page.evaluate(async (user) => (await fetch('/auth/login', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...user, mode: 'session' })
  })).status, { email: admin.email, password: admin.password })
  t.equal(status, 200, 'the user logs in')
  const user = await socketUser(page)
  t.type(user, 'string')
  return user
}

t.test('a form of another site cannot log the browser in as its author, though the app parses forms', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => done(null, parse(body as string)))
  await app.register(realtime, { env: {}, secret, authRoutes: true, users: await directoryOf([admin, attacker]), rest: { handlers: { whoami } } })
  app.get('/', (_request, reply) => reply.type('text/html').send('<!doctype html><title>app</title>'))
  await app.listen({ host: '127.0.0.1', port: 0 })
  const origin = `http://app.test:${(app.server.address() as AddressInfo).port}`

  const evil = Fastify()
  t.teardown(() => evil.close())
  evil.get('/', (_request, reply) => reply.type('text/html').send(`<!doctype html><form method=POST action="${origin}/auth/login">` +
    `<input name=email value="${attacker.email}"><input name=password value="${attacker.password}"><input name=mode value=session>` +
    '</form><script>document.forms[0].submit()</script>'))
  await evil.listen({ host: '127.0.0.1', port: 0 })

  const page = await openPage(t, browser)
  const user = await logIn(t, page, origin)

  const hostile = await page.context().newPage()
  const answered = hostile.waitForResponse(`${origin}/auth/login`)
  await hostile.goto(`http://evil.test:${(evil.server.address() as AddressInfo).port}/`)
  t.equal((await answered).status(), 415, 'the form is refused')
  t.equal(await socketUser(page), user, 'the user\'s socket is still the user\'s')
})

t.test('a page of a sibling subdomain (the same site: the browser sends the session cookie) can neither refresh nor log out with a form or a simple fetch', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => done(null, parse(body as string)))
  app.addContentTypeParser('text/plain', { parseAs: 'string' }, (_request, body, done) => done(null, body))
  await app.register(realtime, { env: {}, secret, authRoutes: true, users: await directoryOf([admin]), rest: { handlers: { whoami } } })
  app.get('/', (_request, reply) => reply.type('text/html').send('<!doctype html><title>app</title>'))
  // What the hostile page's requests reached the routes with, and what they were answered.
  const attempts: { route: string, cookie: boolean, status: number, setCookie: unknown }[] = []
  let allAnswered: () => void
  const answered = new Promise<void>(resolve => { allAnswered = resolve })
  const sent = 5
  app.addHook('onResponse', async (request, reply) => {
    if (!request.headers.origin?.startsWith('http://evil.app.test:')) return
    attempts.push({ route: request.url, cookie: /directus_session_token=/.test(request.headers.cookie ?? ''), status: reply.statusCode, setCookie: reply.getHeader('set-cookie') })
    if (attempts.length === sent) allAnswered()
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const origin = `http://app.test:${(app.server.address() as AddressInfo).port}`

  const sibling = Fastify()
  t.teardown(() => sibling.close())
  // A text/plain form whose one field spells a JSON body, a form-encoded one, and simple fetches (no CORS preflight).
  sibling.get('/', (_request, reply) => reply.type('text/html').send('<!doctype html><iframe name=a></iframe><iframe name=b></iframe>' +
    `<form target=a method=POST enctype=text/plain action="${origin}/auth/logout"><input name='{"mode":"session","x":"' value='"}'></form>` +
    `<form target=b method=POST action="${origin}/auth/refresh"><input name=mode value=session></form><script>
      for (const form of document.forms) form.submit()
      const body = JSON.stringify({ mode: 'session' })
      fetch('${origin}/auth/refresh', { method: 'POST', mode: 'no-cors', credentials: 'include', body })
      fetch('${origin}/auth/logout', { method: 'POST', mode: 'no-cors', credentials: 'include', body })
      fetch('${origin}/auth/logout', { method: 'POST', mode: 'no-cors', credentials: 'include' })
    </script>`))
  await sibling.listen({ host: '127.0.0.1', port: 0 })

  const page = await openPage(t, browser)
  const user = await logIn(t, page, origin)
  const cookie = (await page.context().cookies()).find(({ name }) => name === 'directus_session_token')!.value

  const hostile = await page.context().newPage()
  await hostile.goto(`http://evil.app.test:${(sibling.server.address() as AddressInfo).port}/`)
  await answered
  t.same(attempts.map(({ route, cookie, setCookie }) => ({ route, cookie, setCookie })).sort((a, b) => a.route.localeCompare(b.route)), [
    ...Array.from({ length: 3 }, () => ({ route: '/auth/logout', cookie: true, setCookie: undefined })),
    ...Array.from({ length: 2 }, () => ({ route: '/auth/refresh', cookie: true, setCookie: undefined }))
  ], 'each carried the session cookie, and none set or cleared one')
  t.same(attempts.map(({ status }) => status).sort(), [400, 415, 415, 415, 415], 'each refused: a body that is no JSON (415), or none (400)')
  t.equal((await page.context().cookies()).find(({ name }) => name === 'directus_session_token')?.value, cookie, 'the browser keeps the user\'s cookie')
  t.equal(await socketUser(page), user, 'the user\'s socket is still the user\'s: no logout, no refresh')
})
