// An app that serves TLS itself, no proxy in front: Fastify's `https`, and `http2` with HTTP/1.1 beside it
// (`allowHTTP1`, which the plugin requires of an HTTP/2 server). Chromium loads the demo page over h2 or HTTP/1.1,
// logs in in each mode with Secure cookies, and opens its WebSocket over HTTP/1.1 (Node's HTTP/2 server offers no
// extended CONNECT) with the cookie, on the JSON and GraphQL endpoints. Needs openssl, as the nginx test.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import realtime, { type RealtimeConnection, type RealtimeMessage } from '../../lib/index.js'
import { demoPage } from '../../example/demo/plugin.js'
import { referenceSchema } from '../../example/schema.js'
import { admin, secret } from '../helpers.js'
import { launchChromium, openPage } from './chromium.js'

const host = 'app.realtime.test'
const browser = await launchChromium(t, ['--ignore-certificate-errors', `--host-resolver-rules=MAP ${host} 127.0.0.1`])

function certificate (t: Test): { key: Buffer, cert: Buffer } {
  const dir = t.testdir({})
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', `/CN=${host}`, '-addext', `subjectAltName=DNS:${host}`, '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' })
  return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }
}

/** The app over TLS, its warnings kept; `http2`: HTTP/2 with HTTP/1.1 beside it. */
async function start (t: Test, http2: boolean): Promise<{ origin: string, warnings: string[] }> {
  const warnings: string[] = []
  const logger = { level: 'warn', stream: { write: (line: string) => { warnings.push((JSON.parse(line) as { msg: string }).msg) } } }
  const https = certificate(t)
  const app = (http2
    ? Fastify({ http2: true, https: { ...https, allowHTTP1: true }, logger })
    : Fastify({ https, logger })) as unknown as FastifyInstance
  t.teardown(() => app.close())
  const me = (identity: RealtimeConnection['accountability']) =>
    identity.user === null ? null : { id: identity.user, email: admin.email, role: identity.role, admin: identity.admin }
  await app.register(realtime, {
    env: { SECRET: secret, REFRESH_TOKEN_COOKIE_SECURE: 'true', SESSION_COOKIE_SECURE: 'true' },
    users: [admin],
    authRoutes: true,
    rest: { handlers: { whoami: (message: RealtimeMessage, connection: RealtimeConnection) => { connection.send({ type: 'whoami', uid: message.uid, data: me(connection.accountability) }) } } },
    graphql: { schema: referenceSchema(me) }
  })
  await app.register(demoPage)
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { origin: `https://${host}:${(app.server.address() as AddressInfo).port}`, warnings }
}

for (const [server, http2, protocol] of [['https', false, 'http/1.1'], ['http2 with allowHTTP1', true, 'h2']] as const) {
  t.test(`${server}: the demo page logs in in each mode, with Secure cookies, and opens its sockets`, async t => {
    const { origin, warnings } = await start(t, http2)
    for (const mode of ['json', 'cookie', 'session']) {
      const page = await openPage(t, browser)
      await page.goto(`${origin}/`)
      t.equal(await page.evaluate(() => (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).nextHopProtocol), protocol)
      await page.getByLabel('Email').fill(admin.email)
      await page.getByLabel('Password').fill(admin.password)
      await page.getByLabel('Login mode').selectOption(mode)
      await page.getByRole('button', { name: 'Log in' }).click()
      await page.locator('#status', { hasText: `logged in (${mode})` }).waitFor()
      const cookies = await page.context().cookies()
      t.same(cookies.map(({ name, secure, httpOnly }) => ({ name, secure, httpOnly })),
        { json: [], cookie: [{ name: 'directus_refresh_token', secure: true, httpOnly: true }], session: [{ name: 'directus_session_token', secure: true, httpOnly: true }] }[mode],
        `${mode}: the cookie Secure, as set`)
      await page.locator('#connect').click()
      await page.locator('#status', { hasText: 'connected' }).waitFor()
      await page.locator('#whoami').click()
      const whoami = page.locator('#log li[data-connection="websocket"][data-direction="in"]', { hasText: '"whoami"' }).first()
      await whoami.waitFor()
      t.match(JSON.parse((await whoami.locator('.frame').textContent())!), { type: 'whoami', data: { email: admin.email, admin: true } }, mode)
      await page.locator('#graphql').click()
      await page.locator('#log li[data-connection="graphql"][data-direction="in"]', { hasText: '"ticks"' }).first().waitFor()
      await page.locator('#logout').click()
      await page.locator('#status', { hasText: `logged out (${mode})` }).waitFor()
      t.same(await page.context().cookies(), [], `${mode}: logging out drops the cookie`)
    }
    t.same(warnings, [], 'nothing warned: the cookies are Secure over HTTPS')
  })
}
