// Redis over TLS, as managed Redis serves it (ElastiCache, Azure, Upstash): a redis-server on its TLS port with a
// certificate of a private CA. An app's own ioredis client given the CA carries sessions and revocations between two
// processes (the plugin's subscriber, a duplicate of it, speaks TLS too); a `rediss://` URL whose certificate the
// process does not trust says why as it retries. Needs openssl, as the nginx test.
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { admin, build, connect, within, type Built } from '../helpers.js'
import { RedisServer, freePorts } from '../redis-server.js'

/** A CA, and a certificate it signed for 127.0.0.1, in a folder of the test's. */
function certificates (t: Test): { dir: string, ca: Buffer } {
  const dir = t.testdir({})
  const at = (file: string) => join(dir, file)
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' })
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=realtime-test-ca', '-keyout', at('ca.key'), '-out', at('ca.crt'))
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', at('redis.key'), '-out', at('redis.csr'))
  writeFileSync(at('san.cnf'), 'subjectAltName=IP:127.0.0.1\n')
  openssl('x509', '-req', '-in', at('redis.csr'), '-CA', at('ca.crt'), '-CAkey', at('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', at('san.cnf'), '-out', at('redis.crt'))
  return { dir, ca: readFileSync(at('ca.crt')) }
}

/** redis-server on a TLS port alone (its plain port off), clients not asked for certificates. */
async function tlsRedis (t: Test): Promise<{ port: number, ca: Buffer }> {
  const { dir, ca } = certificates(t)
  const [port] = await freePorts(1)
  const server = new RedisServer(port!, ['--port', '0', '--tls-port', String(port), '--tls-cert-file', join(dir, 'redis.crt'),
    '--tls-key-file', join(dir, 'redis.key'), '--tls-ca-cert-file', join(dir, 'ca.crt'), '--tls-auth-clients', 'no'])
  await server.start()
  t.teardown(() => server.stop())
  return { port: port!, ca }
}

const login = (built: Built) => built.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })

t.test('an app\'s ioredis client over TLS, given the CA: a refresh on the other process, and a logout reaching its socket', async t => {
  const { port, ca } = await tlsRedis(t)
  const clients = [0, 1].map(() => new Redis({ host: '127.0.0.1', port, tls: { ca }, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 2_000 }))
  t.teardown(() => { for (const client of clients) client.disconnect() })
  const [a, b] = [await build(t, { users: [admin], authRoutes: true, redis: clients[0] }, { logger: false }),
    await build(t, { users: [admin], authRoutes: true, redis: clients[1] }, { logger: false })]
  const tokens = (await login(a)).json().data as { access_token: string, refresh_token: string }
  const refreshed = await b.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: tokens.refresh_token } })
  t.equal(refreshed.statusCode, 200, 'a refresh token from a rotates on b')
  const socket = await connect(b.url(`/websocket?access_token=${tokens.access_token}`))
  const logout = await a.app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: refreshed.json().data.refresh_token } })
  t.equal(logout.statusCode, 204)
  t.same(await within(socket.next(), 'the revocation on b'), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } },
    'the socket on b is told, through the subscriber over TLS')
  await socket.close()
})

t.test('a rediss:// URL whose certificate the process does not trust: logins 503, and the log says why', async t => {
  const { port } = await tlsRedis(t)
  const lines: { msg: string, err?: { message: string } }[] = []
  const built = await build(t, { users: [admin], authRoutes: true, redis: `rediss://127.0.0.1:${port}` },
    { logger: { level: 'warn', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  t.equal((await login(built)).statusCode, 503)
  t.ok(lines.some(line => /^Redis \(commands\) unavailable/.test(line.msg) && /certificate/.test(`${line.msg} ${line.err?.message}`)),
    'a warning names the certificate')
})
