// `npm start` behind a proxy (README "Deployment behind a proxy"): TRUST_PROXY names the proxy, whose X-Forwarded-For
// and X-Forwarded-Proto the reference server then believes. Without it every client was the proxy: one client's
// wrong passwords locked every other out, and the browser's https:// page had its sockets refused (403).
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { buildReferenceServer, type ReferenceServer } from '../../example/app.js'
import { trustProxy } from '../../example/trust-proxy.js'
import { admin, connect, refusedWith, secret } from '../helpers.js'

const baseEnv = { ADMIN_EMAIL: admin.email, ADMIN_PASSWORD: admin.password, SECRET: secret, LOG_LEVEL: 'silent' }
const invalid = 'FST_REALTIME_INVALID_CONFIG'

async function start (t: Test, env: Record<string, string | undefined>): Promise<ReferenceServer> {
  const server = await buildReferenceServer(env)
  t.teardown(() => server.app.close())
  return server
}

/** A login as nginx forwards it (`$proxy_add_x_forwarded_for`): from 127.0.0.1, the client's address appended. */
function loginFrom (server: ReferenceServer, client: string, password: string, email = admin.email) {
  return server.app.inject({
    method: 'POST',
    url: '/auth/login',
    remoteAddress: '127.0.0.1',
    // The client's own X-Forwarded-For comes first: the proxy appends to it.
    headers: { 'x-forwarded-for': `198.51.100.99, ${client}`, 'x-forwarded-proto': 'https' },
    payload: { email, password, mode: 'json' }
  })
}

t.test('TRUST_PROXY: attempts count per client behind the proxy, and the https page opens its sockets', async t => {
  const server = await start(t, { ...baseEnv, TRUST_PROXY: '127.0.0.1' })
  // Ten emails: the client's address is the one counter they share.
  for (let attempt = 0; attempt < 10; attempt++) t.equal((await loginFrom(server, '192.0.2.7', 'wrong', `guess${attempt}@example.com`)).statusCode, 401)
  t.equal((await loginFrom(server, '192.0.2.7', admin.password)).statusCode, 429, 'the guessing client is held')
  t.equal((await loginFrom(server, '192.0.2.8', admin.password)).statusCode, 200, 'another client logs in')

  await server.app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = server.app.server.address() as AddressInfo
  const page = { origin: 'https://app.example.com', host: 'app.example.com', 'x-forwarded-proto': 'https', 'x-forwarded-for': '192.0.2.8' }
  const client = await connect(`ws://127.0.0.1:${port}/websocket`, { headers: page })
  client.ws.close()
  t.equal((await refusedWith(`ws://127.0.0.1:${port}/websocket`, { headers: { ...page, origin: 'https://evil.example' } })).status, 403, 'a foreign page still is refused')
})

t.test('TRUST_PROXY unset, or set but empty: no proxy is trusted, as before', async t => {
  t.equal(trustProxy({}), undefined)
  t.equal(trustProxy({ TRUST_PROXY: '' }), undefined)
  t.equal(trustProxy({ TRUST_PROXY: 'loopback, 10.0.0.0/8' }), 'loopback, 10.0.0.0/8')
  const server = await start(t, baseEnv)
  for (let attempt = 0; attempt < 10; attempt++) await loginFrom(server, '192.0.2.7', 'wrong', `guess${attempt}@example.com`)
  t.equal((await loginFrom(server, '192.0.2.8', admin.password)).statusCode, 429, 'every client is the proxy')
})

t.test('a TRUST_PROXY that names no proxy, or every hop, fails boot naming TRUST_PROXY', async t => {
  await t.rejects(start(t, { ...baseEnv, TRUST_PROXY: 'true' }),
    { code: invalid, message: 'Invalid configuration: TRUST_PROXY must name the proxy\'s addresses or CIDR ranges, not true: a client would name its own address in X-Forwarded-For' })
  for (const [value, problem] of [['nginx', 'invalid IP address: nginx'], ['10.0.0.0/99', 'invalid range on address: 10.0.0.0/99']]) {
    await t.rejects(start(t, { ...baseEnv, TRUST_PROXY: value }),
      { code: invalid, message: `Invalid configuration: TRUST_PROXY must be the proxy's addresses or CIDR ranges, comma-separated: ${problem}` }, value)
  }
})

// Express's and Fastify's docs take a number of hops (`trust proxy 1`); as a string, Fastify reads `1` as the address
// 0.0.0.1: the reference server booted trusting no proxy, every client the proxy again, and said nothing.
t.test('a TRUST_PROXY hop count fails boot: read as an address it trusted none', async t => {
  for (const value of ['1', '127.0.0.1, 2']) {
    await t.rejects(start(t, { ...baseEnv, TRUST_PROXY: value }), {
      code: invalid,
      message: /^Invalid configuration: TRUST_PROXY must be the proxy's addresses or CIDR ranges, comma-separated: \d is a hop count, not an address/
    }, value)
  }
})
