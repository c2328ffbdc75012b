// An app that changes its cookie domain (REFRESH_TOKEN_COOKIE_DOMAIN, SESSION_COOKIE_DOMAIN: added to share the login
// with subdomains, or removed) while browsers hold its cookies. A cookie of another Domain is another cookie: the
// first refresh set the new one beside the old copy, and the next request carried both, refused as tossed
// (lib/routes/plugin-cookies.ts): every user logged out. The plugin has the browser drop the one copy it replaces
// wherever it was set. The same deployment before and after is two apps on one session store and secret, on one port.
import Fastify from 'fastify'
import t from 'tap'
import realtime, { MemorySessionStore } from '../../lib/index.js'
import { admin, directoryOf, secret } from '../helpers.js'
import { launchChromium, openPage } from './chromium.js'

const browser = await launchChromium(t, ['--host-resolver-rules=MAP *.realtime.test 127.0.0.1'])
const users = await directoryOf([admin])

for (const [before, after] of [[undefined, 'realtime.test'], ['realtime.test', undefined]] as const) {
  for (const mode of ['cookie', 'session'] as const) {
    t.test(`${mode} mode, the cookie domain ${before ?? 'none'}, then ${after ?? 'none'}: the user stays logged in, with one cookie`, async t => {
      const sessionStore = new MemorySessionStore()
      let port = 0
      const start = async (domain: string | undefined) => {
        // A deployment's process exits with its connections: the next one's requests find no keep-alive left over.
        const app = Fastify({ forceCloseConnections: true })
        const cookie = domain === undefined ? {} : { domain }
        await app.register(realtime, { env: {}, secret, authRoutes: true, users, sessionStore, cookies: { session: cookie, refresh: cookie } })
        app.get('/', (_request, reply) => reply.type('text/html').send('<!doctype html><title>app</title>'))
        await app.listen({ host: '127.0.0.1', port })
        port = (app.server.address() as { port: number }).port
        return app
      }
      const first = await start(before)
      t.teardown(() => first.close())
      const page = await openPage(t, browser)
      await page.goto(`http://app.realtime.test:${port}/`)
      const post = (path: string, body: object) => page.evaluate(async ({ path, body }) => (await fetch(path, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body)
      })).status, { path, body })
      const copies = async () => (await page.context().cookies()).map(({ domain }) => domain)
      t.equal(await post('/auth/login', { email: admin.email, password: admin.password, mode }), 200, 'logged in')
      await first.close()
      const second = await start(after)
      t.teardown(() => second.close())

      const domain = after === undefined ? 'app.realtime.test' : `.${after}`
      for (const round of [1, 2, 3]) {
        t.equal(await post('/auth/refresh', { mode }), 200, `refresh ${round}`)
        t.same(await copies(), [domain], `refresh ${round}: one cookie, on the new domain`)
      }
      t.equal(await post('/auth/logout', { mode }), 204, 'logged out')
      t.same(await copies(), [], 'no cookie left')
      t.equal(await post('/auth/login', { email: admin.email, password: admin.password, mode }), 200, 'logged in again')
      await second.close()
      const third = await start(before)
      t.teardown(() => third.close())
      t.equal(await post('/auth/logout', { mode }), 204, 'logged out, the setting changed back')
      t.same(await copies(), [], 'no cookie left')
    })
  }
}
