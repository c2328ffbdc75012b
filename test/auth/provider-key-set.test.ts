// What the reference server makes of a key-set URL that answers 200 with something else than a key set: a maintenance
// page's or a proxy's JSON error, the provider's discovery document set as JWKS_URL by mistake, a set none of whose keys
// imports. Each is a failed fetch: the keys of the last set stay, and one warning per run of failures says what came.
import t, { type Test } from 'tap'
import { buildReferenceServer } from '../../example/app.js'
import { admin, fakeClock, secret, until, within } from '../helpers.js'
import { audience, authAndWhoami, issuer, patOk, Provider, providerKey, start } from './provider.js'

const authFailed = { auth: { status: 'error', error: { code: 'AUTH_FAILED' } } }

/** The log lines written to a stream, parsed, and the warnings among them. */
function logLines () {
  const lines: Array<{ level: number, msg: string, url?: string, err?: { message: string } }> = []
  return {
    stream: { write: (line: string) => { lines.push(JSON.parse(line)) } },
    warnings: () => lines.filter(line => line.level === 40 && /key set/.test(line.msg)),
    recoveries: () => lines.filter(line => line.level === 30 && /key set is fetched again/.test(line.msg))
  }
}

/** A server whose provider's RS256 key is fetched already; only the Date is fake. A made-up kid makes it fetch again. */
async function withCachedKey (t: Test) {
  const clock = fakeClock(t, ['Date'])
  const provider = new Provider()
  const cached = providerKey('rsa-1', 'RS256')
  provider.keys = [cached]
  const log = logLines()
  const { url } = await start(t, provider, { LOG_LEVEL: 'info' }, log.stream)
  t.match(await authAndWhoami(url('/websocket'), provider.sign(cached)), patOk)
  const forger = providerKey('forger', 'RS256')
  let madeUp = 0
  /** Past the 5 s window, a token of a kid the set lacks: it fetches the set again, and is refused. */
  async function refetch (): Promise<void> {
    clock.tick(5_000)
    const fetches = provider.fetches
    t.match(await authAndWhoami(url('/websocket'), provider.sign({ ...forger, kid: `made-up-${++madeUp}` })), authFailed)
    t.equal(provider.fetches, fetches + 1, 'the set was fetched again')
  }
  return { provider, cached, url, log, refetch }
}

t.test('a key-set URL answering 200 with JSON that is no key set: the keys of the last set stay, one warning per run of failures', async t => {
  const { provider, cached, url, log, refetch } = await withCachedKey(t)
  provider.body = '{"error":"temporarily_unavailable"}'
  await refetch()
  t.match(await authAndWhoami(url('/websocket'), provider.sign(cached)), patOk, 'a token of the cached key still verifies')
  await refetch()
  t.match(await authAndWhoami(url('/websocket'), provider.sign(cached)), patOk, 'after a second such answer too')
  t.match(log.warnings(), [{ err: { message: /no key set/ }, url: /^http:\/\/127\.0\.0\.1:\d+\/oauth\/jwks\.json$/ }], 'one warning, naming the URL')
  t.equal(log.warnings().length, 1)

  provider.body = null
  await refetch()
  t.match(log.recoveries(), [{ url: /\/oauth\/jwks\.json$/ }], 'the set fetched again, at info')
  provider.body = '<html>down for maintenance</html>'
  await refetch()
  t.match(await authAndWhoami(url('/websocket'), provider.sign(cached)), patOk, 'not JSON at all: the same')
  provider.body = 'null'
  await refetch()
  t.match(await authAndWhoami(url('/websocket'), provider.sign(cached)), patOk, 'JSON null: the same')
  t.equal(log.warnings().length, 2, 'a set fetched in between ends the run: the next failure is told again')
})

t.test('a key set none of whose keys imports is no key set either: the keys of the last set stay', async t => {
  const { provider, cached, url, log, refetch } = await withCachedKey(t)
  provider.keys = [{ ...providerKey('rsa-3', 'RS256'), publicJwk: { kty: 'RSA', kid: 'rsa-3', n: 'AQAB' } }]
  await refetch()
  t.match(await authAndWhoami(url('/websocket'), provider.sign(cached)), patOk)
  t.match(log.warnings(), [{ err: { message: /no key Node can import/ } }])
  provider.keys = []
  await refetch()
  t.match(await authAndWhoami(url('/websocket'), provider.sign(cached)), patOk, 'an empty set: the same')
})

t.test('JWKS_URL set to the discovery document: the warning says so and names its jwks_uri', async t => {
  const provider = new Provider()
  const key = providerKey('rsa-1', 'RS256')
  provider.keys = [key]
  const jwksUrl = await provider.start(t)
  const discovery = new URL('/.well-known/openid-configuration', jwksUrl).href
  const log = logLines()
  const server = await buildReferenceServer({
    ADMIN_PASSWORD: admin.password,
    SECRET: secret,
    LOG_LEVEL: 'warn',
    JWKS_URL: discovery,
    JWT_ISSUER: issuer,
    JWT_AUDIENCE: audience
  }, { logStream: log.stream })
  t.teardown(() => server.app.close())
  await within(until(() => log.warnings().length > 0), 'the fetch at boot, warned of', 10_000)
  t.match(log.warnings(), [{ err: { message: /discovery document.*jwks_uri/ }, url: discovery, jwks_uri: jwksUrl }])
})
