// Behind a proxy, an app without Fastify's trustProxy, or listening on a unix socket (nginx's `proxy_pass
// http://unix:...`) without a trustProxy that reads the hop the proxy appended, takes every client for one to the
// attempt limits. The plugin says so once, on the app's logger, at the first forwarded request.
import t, { type Test } from 'tap'
import { request } from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyServerOptions } from 'fastify'
import fastifyWebsocket from '@fastify/websocket'
import realtime from '../../lib/index.js'
import { admin, secret } from '../helpers.js'

const warning = /^requests reach the app on a unix socket \(.*app\.sock\) with no client address: every client is one to the attempt limits and connLimitPerAddress\. Set Fastify's trustProxy to \(address, hop\) => hop === 0/

async function listening (t: Test, serverOptions: FastifyServerOptions, on: 'unix' | 'tcp') {
  const warnings: string[] = []
  const app = Fastify({ ...serverOptions, logger: { level: 'warn', stream: { write: (line: string) => { warnings.push(JSON.parse(line).msg) } } } })
  t.teardown(() => app.close())
  await app.register(realtime, { env: {}, secret, users: [admin], authRoutes: true })
  // Requests before any listen (inject's, injectWS's) say nothing of the server's connections.
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: {} })).statusCode, 400)
  const dir = mkdtempSync(join(tmpdir(), 'unaddressed-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const socketPath = join(dir, 'app.sock')
  if (on === 'unix') await app.listen({ path: socketPath })
  else await app.listen({ host: '127.0.0.1', port: 0 })
  const port = on === 'tcp' ? (app.server.address() as { port: number }).port : undefined
  /** A login from `client`, as a proxy that appends X-Forwarded-For forwards it. */
  /** `client` undefined: a request from no proxy. */
  const login = (client: string | undefined, password: string, email = admin.email) => new Promise<number>((resolve, reject) => {
    const body = JSON.stringify({ email, password })
    const req = request({
      ...(on === 'unix' ? { socketPath } : { host: '127.0.0.1', port }),
      agent: false,
      method: 'POST',
      path: '/auth/login',
      headers: { 'content-type': 'application/json', ...(client === undefined ? {} : { 'x-forwarded-for': client }) }
    }, response => { response.resume(); response.on('end', () => resolve(response.statusCode!)) })
    req.on('error', reject)
    req.end(body)
  })
  return { warnings, login }
}

/** Ten wrong passwords from one client (for another email: the admin's has its own limit), then a login from another. */
async function guessesThenLogin (login: (client: string | undefined, password: string, email?: string) => Promise<number>) {
  for (let i = 0; i < 10; i++) await login('192.0.2.66', 'wrong password', 'someone@example.com')
  return login('192.0.2.7', admin.password)
}

const forwardedWarning = /^requests reach the app with X-Forwarded-For, and Fastify's trustProxy is off: behind a proxy every client is the proxy to the attempt limits and connLimitPerAddress, .* set trustProxy to the proxy's address$/

for (const [on, said] of [['unix', warning], ['tcp', forwardedWarning]] as const) {
  t.test(`without trustProxy, on ${on === 'unix' ? 'a unix socket every client is one' : 'TCP every client is the proxy'}: the plugin warns once`, async t => {
    const { warnings, login } = await listening(t, {}, on)
    t.equal(await login(undefined, admin.password), 200)
    t.same(warnings, [], 'a request from no proxy decides nothing')
    t.equal(await guessesThenLogin(login), 429, "one client's guesses lock the other out")
    t.equal(warnings.length, 1, 'said once')
    t.match(warnings[0], said)
  })
}

t.test('a trustProxy of addresses never applies on a unix socket (the proxy has none): the same warning', async t => {
  const { warnings, login } = await listening(t, { trustProxy: '127.0.0.1' }, 'unix')
  t.equal(await guessesThenLogin(login), 429)
  t.match(warnings, [warning])
})

t.test('on a unix socket with trustProxy taking the hop the proxy appended: each client its own, nothing said', async t => {
  const { warnings, login } = await listening(t, { trustProxy: (_address: string, hop: number) => hop === 0 }, 'unix')
  t.equal(await guessesThenLogin(login), 200, 'the other client logs in')
  t.equal(await login('192.0.2.66', admin.password), 429, 'the guessing one is locked out')
  t.same(warnings, [])
})

t.test('on TCP with trustProxy naming the proxy, or with no proxy: nothing said', async t => {
  const proxied = await listening(t, { trustProxy: '127.0.0.1' }, 'tcp')
  t.equal(await guessesThenLogin(proxied.login), 200)
  t.same(proxied.warnings, [])
  const direct = await listening(t, {}, 'tcp')
  for (let i = 0; i < 3; i++) t.equal(await direct.login(undefined, admin.password), 200)
  t.same(direct.warnings, [])
})

// Injected requests are no connection of the server's: after listen too, they neither warn nor stand for one. An
// injectWS request has no socket at all, and with a trustProxy reading its address threw (500) as the hook read it.
t.test('on a unix socket, inject and injectWS after listen: the warning waits for a connection of the server', async t => {
  for (const [trustProxy, injectFirst] of [[undefined, true], [undefined, false], [(_address: string, hop: number) => hop === 0, false]] as const) {
    const warnings: string[] = []
    const app = Fastify({ trustProxy, logger: { level: 'warn', stream: { write: (line: string) => { warnings.push(JSON.parse(line).msg) } } } })
    t.teardown(() => app.close())
    await app.register(realtime, { env: {}, secret, users: [admin], authRoutes: true })
    await app.register(fastifyWebsocket)
    const dir = mkdtempSync(join(tmpdir(), 'unaddressed-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const socketPath = join(dir, 'app.sock')
    await app.listen({ path: socketPath })
    // Forwarded, as a test of an app behind a proxy would send them.
    const headers = { 'x-forwarded-for': '192.0.2.9' }
    const injected = async () => t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: {}, headers })).statusCode, 400)
    if (injectFirst) await injected()
    const ws = await app.injectWS('/websocket', { headers })
    ws.terminate()
    await injected()
    t.same(warnings, [], `${typeof trustProxy}: nothing said of injected requests`)
    const status = await new Promise<number>((resolve, reject) => {
      request({ socketPath, agent: false, method: 'POST', path: '/auth/login', headers: { 'x-forwarded-for': '192.0.2.7' } }, response => {
        response.resume()
        resolve(response.statusCode!)
      }).on('error', reject).end()
    })
    t.equal(status, 400)
    t.equal(warnings.length, trustProxy === undefined ? 1 : 0, `${typeof trustProxy}: the first connection's request decides`)
  }
})
