// A browser drops a cookie only for a clearing that matches it: each logout, in each mode, under every kind of cookie
// setting a deployment behind TLS uses (Secure, SameSite None or Strict, a Domain, the __Host- and __Secure- prefixes)
// leaves Chromium with no cookie. Over HTTPS (a certificate made with openssl), as Secure cookies need.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import Fastify from 'fastify'
import t from 'tap'
import realtime, { type RealtimeOptions } from '../../lib/index.js'
import { admin, directoryOf, secret } from '../helpers.js'
import { launchChromium, openPage } from './chromium.js'

const browser = await launchChromium(t, ['--ignore-certificate-errors', '--host-resolver-rules=MAP *.realtime.test 127.0.0.1'])
const users = await directoryOf([admin])
const dir = t.testdir({})
try {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=app.realtime.test',
    '-addext', 'subjectAltName=DNS:app.realtime.test', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' })
} catch {
  throw new Error('the cookie attributes test needs Debian\'s openssl (apt-get install openssl)')
}
const https = { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }

type Settings = { secure?: boolean, sameSite?: 'lax' | 'strict' | 'none', domain?: string, prefix?: string }
const settings: Settings[] = [
  {},
  { secure: true, sameSite: 'none' },
  { secure: true, sameSite: 'strict', domain: 'realtime.test' },
  { secure: true, domain: '.realtime.test' },
  { secure: true, prefix: '__Host-' },
  { secure: true, prefix: '__Secure-', domain: 'realtime.test' }
]

for (const { prefix = '', ...attributes } of settings) {
  t.test(`every logout drops the cookies: ${JSON.stringify({ prefix, ...attributes })}`, async t => {
    const names = { session: `${prefix}session`, refresh: `${prefix}refresh` }
    const cookies = { session: { ...attributes, name: names.session }, refresh: { ...attributes, name: names.refresh } }
    const app = Fastify({ https })
    t.teardown(() => app.close())
    await app.register(realtime, { env: {}, secret, authRoutes: true, users, cookies } as RealtimeOptions)
    app.get('/', (_request, reply) => reply.type('text/html').send('<!doctype html><title>app</title>'))
    await app.listen({ host: '127.0.0.1', port: 0 })
    const page = await openPage(t, browser)
    await page.goto(`https://app.realtime.test:${(app.server.address() as { port: number }).port}/`)
    const post = (path: string, body: object) => page.evaluate(async ({ path, body }) => {
      const response = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      return { status: response.status, body: await response.text() }
    }, { path, body })
    const jar = async () => (await page.context().cookies()).map(({ name, domain, secure, sameSite }) => ({ name, domain, secure, sameSite }))
    const held = (name: string) => [{
      name,
      domain: attributes.domain === undefined ? 'app.realtime.test' : `.${attributes.domain.replace(/^\./, '')}`,
      secure: attributes.secure ?? false,
      sameSite: { lax: 'Lax', strict: 'Strict', none: 'None' }[attributes.sameSite ?? 'lax']
    }]
    const credentials = { email: admin.email, password: admin.password }

    for (const mode of ['cookie', 'session'] as const) {
      const name = mode === 'cookie' ? names.refresh : names.session
      t.equal((await post('/auth/login', { ...credentials, mode })).status, 200, `${mode} login`)
      t.same(await jar(), held(name), `${mode}: the cookie held as set`)
      t.equal((await post('/auth/refresh', { mode })).status, 200, `${mode} refresh`)
      t.same(await jar(), held(name), `${mode}: one cookie after the refresh`)
      t.equal((await post('/auth/logout', { mode })).status, 204, `${mode} logout`)
      t.same(await jar(), [], `${mode}: no cookie after the logout`)
    }
    t.equal((await post('/auth/login', { ...credentials, mode: 'session' })).status, 200, 'session login')
    const { refresh_token: refreshToken } = JSON.parse((await post('/auth/login', credentials)).body).data
    t.equal((await post('/auth/logout', { refresh_token: refreshToken })).status, 204, 'json logout')
    t.same(await jar(), [], 'json: the session cookie dropped too')
  })
}
