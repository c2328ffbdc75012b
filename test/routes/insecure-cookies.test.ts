// A login cookie set without `Secure` to a client on HTTPS (a proxy's X-Forwarded-Proto: https, with trustProxy): the
// setting alone decides the attribute, so the plugin says so once per cookie on the app's logger, naming the setting.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { admin, build } from '../helpers.js'

async function logged (t: Test, cookies?: object) {
  const warnings: string[] = []
  const { app } = await build(t, { users: [admin], authRoutes: true, ...(cookies ? { cookies } : {}) },
    { trustProxy: '127.0.0.1', logger: { level: 'warn', stream: { write: (line: string) => { warnings.push(JSON.parse(line).msg) } } } })
  return { app, warnings }
}

function login (app: FastifyInstance, mode: string, proto?: string) {
  return app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password, mode }, ...(proto ? { headers: { 'x-forwarded-proto': proto } } : {}) })
}

t.test('a cookie- or session-mode login over HTTPS with a cookie that is not Secure warns once per cookie, naming its setting', async t => {
  const { app, warnings } = await logged(t)
  for (const mode of ['json', 'cookie', 'session']) t.equal((await login(app, mode, 'http')).statusCode, 200, `${mode} over http`)
  t.equal((await login(app, 'json', 'https')).statusCode, 200)
  t.same(warnings, [], 'plain HTTP, or no cookie: nothing to say')

  for (let i = 0; i < 3; i++) {
    const response = await login(app, 'cookie', 'https')
    t.equal(response.statusCode, 200)
    t.notMatch(String(response.headers['set-cookie']), /Secure/, 'the setting alone decides the attribute')
  }
  t.same(warnings, ['the directus_refresh_token cookie is set without Secure on a request over HTTPS: set REFRESH_TOKEN_COOKIE_SECURE=true (cookies.refresh.secure), or a browser sends it over plain HTTP too'])
  for (let i = 0; i < 3; i++) t.equal((await login(app, 'session', 'https')).statusCode, 200)
  t.equal(warnings.length, 2, 'once per cookie')
  t.equal(warnings[1], 'the directus_session_token cookie is set without Secure on a request over HTTPS: set SESSION_COOKIE_SECURE=true (cookies.session.secure), or a browser sends it over plain HTTP too')
})

t.test('Secure cookies over HTTPS: no warning', async t => {
  const { app, warnings } = await logged(t, { refresh: { secure: true }, session: { secure: true } })
  for (const mode of ['cookie', 'session']) {
    const response = await login(app, mode, 'https')
    t.match(String(response.headers['set-cookie']), /Secure/)
  }
  t.same(warnings, [])
})
