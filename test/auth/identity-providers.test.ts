// Tokens of an identity provider (docs/protocol.md section 10): the reference server with JWKS_URL, JWT_ISSUER and
// JWT_AUDIENCE against a local JWKS server. RS256, ES256 and EdDSA on every credential form, the server's own tokens
// beside them, rotation by `kid`, an outage, and every refusal; and the key lookup README.md gives an app's own
// @fastify/jwt with get-jwks.
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { createSigner } from 'fast-jwt'
import { createClient } from 'graphql-ws'
import WebSocket from 'ws'
import Fastify from 'fastify'
import fastifyJwt from '@fastify/jwt'
import buildGetJwks, { type GetJwksOptions } from 'get-jwks'
import realtime from '../../lib/index.js'
import { buildReferenceServer } from '../../example/app.js'
import { providerKeyLookup } from '../../example/provider-keys.js'
import { refuseIdToken } from '../../example/token-kind.js'
import { admin, connect, fakeClock, nextSecond, refusedWith, secret, stoppedDate, until, within } from '../helpers.js'
import { audience, authAndWhoami, issuer, newProviderKey, patOk, Provider, providerKey, start, type ProviderKey } from './provider.js'

t.test('RS256, ES256 and EdDSA provider tokens authenticate an auth message, with the identity of section 10', async t => {
  const provider = new Provider()
  provider.keys = [providerKey('rsa-1', 'RS256'), providerKey('ec-1', 'ES256'), providerKey('ed-1', 'EdDSA')]
  const { url } = await start(t, provider)
  for (const key of provider.keys) {
    t.match(await authAndWhoami(url('/websocket'), provider.sign(key)), patOk, key.alg)
  }
  t.equal(provider.fetches, 1, 'one fetch of the set serves its three keys')
})

t.test('a provider token authenticates at the upgrade (?access_token=) and in GraphQL connection_init', async t => {
  const provider = new Provider()
  const [ec, ed] = provider.keys = [providerKey('ec-1', 'ES256'), providerKey('ed-1', 'EdDSA')]
  const { url } = await start(t, provider, { WEBSOCKETS_REST_AUTH: 'strict' })
  const client = await connect(url(`/websocket?access_token=${provider.sign(ec)}`))
  client.send({ type: 'whoami' })
  t.match(await client.next(), patOk.whoami)
  await client.close()

  const graphql = createClient({ url: url('/graphql'), webSocketImpl: WebSocket, connectionParams: { access_token: provider.sign(ed) }, retryAttempts: 0, lazy: true })
  t.teardown(() => graphql.dispose())
  const result = await new Promise((resolve, reject) => {
    graphql.subscribe({ query: '{ me { id email role admin } }' }, { next: resolve, error: reject, complete: () => {} })
  })
  t.same(result, { data: { me: { id: 'provider-user', email: 'pat@example.com', role: 'editor', admin: false } } })
})

t.test('the server\'s own tokens keep working beside the provider\'s', async t => {
  const provider = new Provider()
  provider.keys = [providerKey('rsa-1', 'RS256')]
  const { server, url } = await start(t, provider)
  await within(until(() => provider.fetches === 1), 'the fetch of the key set at boot', 10_000)
  const login = await server.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  t.equal(login.statusCode, 200)
  t.match(await authAndWhoami(url('/websocket'), login.json().data.access_token),
    { auth: { status: 'ok' }, whoami: { data: { email: admin.email, admin: true } } })
  t.equal(provider.fetches, 1, 'no key lookup for the server\'s own token: the fetch at boot alone')
})

/** A provider publishing `first`, with `next` ready for it to start publishing, on a fake Date. */
function rotatingProvider (t: Test) {
  const clock = fakeClock(t, ['Date'])
  const provider = new Provider()
  const first = providerKey('rsa-1', 'RS256')
  const next = providerKey('rsa-2', 'RS256')
  provider.keys = [first]
  return { clock, provider, first, next }
}

t.test('a key the provider starts publishing is accepted without a restart; unknown kids fetch at most once per 5 s', async t => {
  const { clock, provider, first, next } = rotatingProvider(t)
  const { url } = await start(t, provider)
  t.match(await authAndWhoami(url('/websocket'), provider.sign(first)), patOk)
  t.equal(provider.fetches, 1)

  provider.keys = [first, next]
  clock.tick(5_000)
  t.match(await authAndWhoami(url('/websocket'), provider.sign(next)), patOk, 'the new kid fetched the set again')
  t.equal(provider.fetches, 2)

  clock.tick(5_000)
  const unknown = providerKey('rsa-9', 'RS256')
  const unknowns = [provider.sign(unknown), provider.sign(unknown, { sub: 'x' }), provider.sign(providerKey('rsa-8', 'RS256'))]
  for (const token of unknowns) {
    t.match(await authAndWhoami(url('/websocket'), token), { auth: { status: 'error', error: { code: 'AUTH_FAILED' } } })
  }
  t.equal(provider.fetches, 3, 'three unknown kids inside 5 s: one fetch')
  t.match(await authAndWhoami(url('/websocket'), provider.sign(first)), patOk, 'known keys do not wait for the window')
  t.equal(provider.fetches, 3)
})

t.test('clients reconnecting at once after a restart all wait for the one fetch of the key set, and get in', async t => {
  const provider = new Provider()
  const key = providerKey('rsa-1', 'RS256')
  provider.keys = [key]
  provider.delayMs = 100 // the provider's answer is on its way while the others arrive
  const { url } = await start(t, provider)
  const answers = await Promise.all(Array.from({ length: 5 }, (_v, i) =>
    authAndWhoami(url('/websocket'), provider.sign(key, { sub: `user-${i}` }))))
  for (const [i, answer] of answers.entries()) t.match(answer, { auth: { type: 'auth', status: 'ok' }, whoami: { data: { id: `user-${i}` } } })
  t.equal(provider.fetches, 1, 'one fetch for all of them')
})

t.test('a key the provider replaces under the same kid is taken past the 5 s window; the one it retired stops verifying', async t => {
  const clock = fakeClock(t, ['Date'])
  const provider = new Provider()
  // ES256: its signatures are r and s side by side, as the key set's own check of a token reads them.
  const retired = newProviderKey('main', 'ES256')
  const current = newProviderKey('main', 'ES256')
  provider.keys = [retired]
  const { url } = await start(t, provider)
  t.match(await authAndWhoami(url('/websocket'), provider.sign(retired)), patOk)
  t.equal(provider.fetches, 1)

  provider.keys = [current]
  t.match(await authAndWhoami(url('/websocket'), provider.sign(current)), { auth: { status: 'error', error: { code: 'AUTH_FAILED' } } },
    'inside the window, the set is not fetched again')
  t.equal(provider.fetches, 1)
  clock.tick(5_000)
  t.match(await authAndWhoami(url('/websocket'), provider.sign(current)), patOk, 'past it, a token its kid\'s key did not sign fetches the set')
  t.equal(provider.fetches, 2)
  t.match(await authAndWhoami(url('/websocket'), provider.sign(retired)), { auth: { status: 'error', error: { code: 'AUTH_FAILED' } } },
    'the retired key verifies no more')
  const forged = createSigner({ key: newProviderKey('main', 'ES256').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), algorithm: 'ES256', kid: 'main', expiresIn: 60_000 })
  for (let i = 0; i < 3; i++) {
    t.match(await authAndWhoami(url('/websocket'), forged({ sub: `x-${i}`, iss: issuer, aud: audience })), { auth: { status: 'error', error: { code: 'AUTH_FAILED' } } })
  }
  t.equal(provider.fetches, 2, 'tokens of a known kid signed by any key: no fetch inside the window')
  t.match(await authAndWhoami(url('/websocket'), provider.sign(current)), patOk)
})

t.test('the key set is fetched at boot, behind the start: a token finds its key at once; a provider down then is logged, not fatal', async t => {
  const provider = new Provider()
  const key = providerKey('rsa-1', 'RS256')
  provider.keys = [key]
  const { url } = await start(t, provider)
  await within(until(() => provider.fetches === 1), 'the fetch of the key set at boot', 10_000)
  provider.hanging = true
  t.teardown(() => provider.release())
  t.match(await authAndWhoami(url('/websocket'), provider.sign(key)), patOk, 'the first token, the provider hanging since')
  t.equal(provider.fetches, 1)

  const clock = fakeClock(t, ['Date'])
  const down = new Provider()
  down.keys = [key]
  down.down = true
  const lines: string[] = []
  const second = await start(t, down, { LOG_LEVEL: 'warn' }, { write: line => { lines.push(line) } })
  const failed = () => lines.map(line => JSON.parse(line) as { level: number, msg: string })
    .some(line => line.level === 40 && /key set could not be fetched/.test(line.msg))
  await within(until(failed), 'the failed fetch at boot, logged', 10_000)
  down.down = false
  clock.tick(5_000)
  t.match(await authAndWhoami(second.url('/websocket'), down.sign(key)), patOk, 'the provider back, a token fetches the set')
  t.equal(down.fetches, 2)
})

/** A server whose provider publishes one RS256 key, fetched already: a token of it authenticates. Only the Date is fake. */
async function withCachedKey (t: Test, env: Record<string, string> = {}) {
  const clock = fakeClock(t, ['Date'])
  const provider = new Provider()
  const cached = providerKey('rsa-1', 'RS256')
  provider.keys = [cached]
  const { url } = await start(t, provider, env)
  t.match(await authAndWhoami(url('/websocket'), provider.sign(cached)), patOk)
  return { clock, provider, cached, url }
}

t.test('while the provider is down, cached keys verify and others fail with AUTH_FAILED', async t => {
  const { clock, provider, cached, url } = await withCachedKey(t)
  provider.down = true
  provider.keys = [cached, providerKey('rsa-2', 'RS256')]
  clock.tick(11 * 60_000) // past the set's time to live: the next token fetches it again, and the fetch fails
  t.match(await authAndWhoami(url('/websocket'), provider.sign(cached)), patOk, 'the cached key, with the set out of date')
  t.equal(provider.fetches, 2)
  t.match(await authAndWhoami(url('/websocket'), provider.sign(provider.keys[1])), { auth: { status: 'error', error: { code: 'AUTH_FAILED' } } })
  provider.down = false
  clock.tick(5_000)
  t.match(await authAndWhoami(url('/websocket'), provider.sign(provider.keys[1])), patOk, 'back: the new key is fetched')
})

t.test('a provider that hangs once the set is out of date: a known key verifies at once, the set is fetched behind it', async t => {
  // An auth timeout under the key set's fetch timeout (3 s): a token that waited for the fetch would be refused.
  const { clock, provider, cached, url } = await withCachedKey(t, { WEBSOCKETS_REST_AUTH_TIMEOUT: '2' })
  t.teardown(() => provider.release())
  provider.hanging = true
  clock.tick(11 * 60_000)
  const storm = await Promise.all(Array.from({ length: 5 }, () => authAndWhoami(url('/websocket'), provider.sign(cached))))
  t.same(storm.map(answer => (answer.auth as { status: string }).status), Array(5).fill('ok'), 'every client of a reconnect storm gets in')
  t.equal(provider.fetches, 2, 'one fetch of the set, behind them')
  t.match(await authAndWhoami(url('/websocket'), provider.sign(providerKey('rsa-2', 'RS256'))),
    { auth: { status: 'error', error: { code: 'AUTH_FAILED' } } }, 'an unknown kid still waits for a fetch, and is refused')
})

t.test('refused: alg none, key confusion, a wrong or missing iss or aud, the server\'s own issuer, no exp, an expired token', async t => {
  const provider = new Provider()
  const rsa = providerKey('rsa-1', 'RS256')
  provider.keys = [rsa]
  const { url } = await start(t, provider)
  const publicPem = (await import('node:crypto')).createPublicKey(rsa.privateKey).export({ format: 'pem', type: 'spki' }).toString()
  const claims = { sub: 'provider-user', iss: issuer, aud: audience }
  const refusals: Array<[string, string, string]> = [
    ['alg none', createSigner({ algorithm: 'none', kid: 'rsa-1' } as never)(claims), 'AUTH_FAILED'],
    ['HS256 signed with the provider\'s public key', createSigner({ key: publicPem, algorithm: 'HS256', kid: 'rsa-1' })(claims), 'AUTH_FAILED'],
    ['another issuer', provider.sign(rsa, { iss: 'https://evil.example.com/' }), 'AUTH_FAILED'],
    ['no issuer', provider.sign(rsa, { iss: undefined }), 'AUTH_FAILED'],
    ['another audience', provider.sign(rsa, { aud: 'other-api' }), 'AUTH_FAILED'],
    ['no audience', provider.sign(rsa, { aud: undefined }), 'AUTH_FAILED'],
    ['an audience list without ours', provider.sign(rsa, { aud: ['a', 'b'] }), 'AUTH_FAILED'],
    ['the server\'s own issuer, admin_access', provider.sign(rsa, { iss: 'fastify-realtime', admin_access: true }), 'AUTH_FAILED'],
    ['no exp: a socket it opened would never expire', provider.sign(rsa, {}, null), 'AUTH_FAILED'],
    // A handshake tells every failure alike (section 4); the upgrade says which.
    ['expired', provider.sign(rsa, {}, -10), 'AUTH_FAILED']
  ]
  for (const [name, token, code] of refusals) {
    t.match(await authAndWhoami(url('/websocket'), token), { auth: { status: 'error', error: { code } } }, name)
  }
  t.match(await authAndWhoami(url('/websocket'), provider.sign(rsa, { aud: ['other', audience] })), patOk, 'an audience list with ours')
  t.match(await refusedWith(url(`/websocket?access_token=${refusals[1][1]}`)), { status: 401, body: /AUTH_FAILED/ }, 'at the upgrade too')
  t.match(await refusedWith(url(`/websocket?access_token=${provider.sign(rsa, {}, -10)}`)), { status: 401, body: /TOKEN_EXPIRED/ },
    'an expired one said so at the upgrade')
})

t.test('a provider token expires at its exp: TOKEN_EXPIRED on the JSON socket, 4403 on GraphQL', async t => {
  const clock = stoppedDate(t)
  const provider = new Provider()
  const rsa = providerKey('rsa-1', 'RS256')
  provider.keys = [rsa]
  const { url } = await start(t, provider)
  const token = createSigner({ key: rsa.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), algorithm: 'RS256', kid: 'rsa-1' })(
    { sub: 'provider-user', iss: issuer, aud: audience, exp: nextSecond() })
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: token })
  t.match(await client.next(), { type: 'auth', status: 'ok' })
  const graphql = await connect(url('/graphql'), { protocols: 'graphql-transport-ws' })
  graphql.send({ type: 'connection_init', payload: { access_token: token } })
  t.match(await graphql.next(), { type: 'connection_ack' })
  clock.tick(40)
  t.match(await client.next(), { type: 'auth', status: 'error', error: { code: 'TOKEN_EXPIRED' } })
  t.match(await graphql.closed, { code: 4403 })
  await client.close()
})

t.test('the app\'s own @fastify/jwt with get-jwks, in a namespace and with formatUser: sockets verify as its routes do', async t => {
  const provider = new Provider()
  const rsa = providerKey('rsa-1', 'RS256')
  provider.keys = [rsa]
  const jwksUrl = await provider.start(t)
  const jwks = buildGetJwks({ jwksPath: new URL(jwksUrl).pathname })
  const app = Fastify()
  t.teardown(() => app.close())
  const distrusted = new Set<string>()
  await app.register(fastifyJwt, {
    namespace: 'idp',
    decode: { complete: true },
    secret: (_request: unknown, token: { header: { kid: string, alg: string } }) =>
      jwks.getPublicKey({ domain: new URL(jwksUrl).origin, kid: token.header.kid, alg: token.header.alg }),
    verify: { allowedIss: issuer, allowedAud: audience },
    formatUser: (claims: Record<string, unknown>) => ({ name: claims.email }),
    trusted: (_request: unknown, claims: Record<string, unknown>) => !distrusted.has(claims.sub as string)
  } as never)
  await app.register(realtime, {
    env: {},
    jwt: { namespace: 'idp' },
    rest: {
      handlers: {
        whoami (message, connection) {
          connection.send({ type: 'whoami', user: connection.accountability.user, formatted: (connection.request as unknown as { user: unknown }).user })
        }
      }
    }
  })
  app.get('/me', async (request) => {
    await (request as unknown as { idpJwtVerify: () => Promise<unknown> }).idpJwtVerify()
    return (request as unknown as { user: unknown }).user
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = (path: string) => `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}${path}`

  const token = provider.sign(rsa)
  const http = await app.inject({ url: '/me', headers: { authorization: `Bearer ${token}` } })
  t.same(http.json(), { name: 'pat@example.com' }, 'the route accepts it')
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: token })
  t.match(await client.next(), { type: 'auth', status: 'ok' }, 'and so does the socket')
  client.send({ type: 'whoami' })
  t.same(await client.next(), { type: 'whoami', user: 'provider-user', formatted: { name: 'pat@example.com' } })
  await client.close()

  distrusted.add('provider-user')
  t.equal((await app.inject({ url: '/me', headers: { authorization: `Bearer ${token}` } })).statusCode, 401)
  t.match(await refusedWith(url(`/websocket?access_token=${token}`)), { status: 401, body: /AUTH_FAILED/ }, 'its trusted check too')
})

/** An app whose own @fastify/jwt looks the provider's keys up as README.md shows: get-jwks, with providerDiscovery. */
async function withKeyLookup (t: Test, provider: Provider, options: GetJwksOptions = {}) {
  // Without the trailing slash, as Keycloak's and Okta's issuers are: get-jwks adds it to the URLs it fetches.
  const iss = new URL(await provider.start(t)).origin
  const getPublicKey = providerKeyLookup({ providerDiscovery: true, issuersWhitelist: [iss], ...options })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, {
    decode: { complete: true },
    secret: async (_request: unknown, token: { header: { kid: string, alg: string }, payload: { iss: string } }) => {
      refuseIdToken(token.header, token.payload)
      return getPublicKey({ domain: token.payload.iss, kid: token.header.kid, alg: token.header.alg })
    },
    verify: { allowedIss: iss, allowedAud: audience, requiredClaims: ['iss', 'aud', 'exp'] }
  } as never)
  await app.register(realtime, { env: {} })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = (path: string) => `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}${path}`
  const sign = (key: ProviderKey, claims: Record<string, unknown> = {}, ttlSeconds?: number | null) => provider.sign(key, { iss, ...claims }, ttlSeconds)
  /** The answer to an auth message with `token`. */
  async function auth (token: string): Promise<unknown> {
    const client = await connect(url('/websocket'))
    client.send({ type: 'auth', access_token: token })
    const answer = await client.next()
    await client.close()
    return answer
  }
  return { iss, url, sign, auth }
}

const authOk = { type: 'auth', status: 'ok' }
const authFailed = { type: 'auth', status: 'error', error: { code: 'AUTH_FAILED' } }

t.test('the README\'s get-jwks lookup: made-up kids reach the provider once per 5 s, a key it starts publishing is accepted', async t => {
  const { clock, provider, first, next } = rotatingProvider(t)
  provider.delayMs = 50 // the provider's answer is on its way while the others arrive
  const { iss, url, sign, auth } = await withKeyLookup(t, provider)
  const answers = await Promise.all(Array.from({ length: 5 }, (_v, i) => auth(sign(first, { sub: `user-${i}` }))))
  t.same(answers, Array(5).fill(authOk), 'clients arriving at once all get in')
  t.equal(provider.fetches, 2, 'with one lookup: the discovery document and the key set')
  provider.delayMs = 0

  clock.tick(5_000)
  // Signed with any key at all: a client needs none of the provider's, only its issuer's URL.
  const forger = providerKey('forger', 'RS256').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
  for (let i = 0; i < 50; i++) {
    const forged = createSigner({ key: forger, algorithm: 'RS256', kid: `made-up-${i}` })({ sub: 'x', iss, aud: audience })
    t.match(await refusedWith(url(`/websocket?access_token=${forged}`)), { status: 401 })
  }
  t.equal(provider.fetches, 4, 'fifty made-up kids inside 5 s: one lookup')
  t.same(await auth(sign(first)), authOk, 'a known key does not wait for the window')

  provider.keys = [first, next]
  t.match(await auth(sign(next)), authFailed, 'a new kid inside the window is not asked for')
  t.equal(provider.fetches, 4)
  clock.tick(5_000)
  t.same(await auth(sign(next)), authOk, 'past it, the new key is fetched and accepted')
  t.equal(provider.fetches, 6)
  t.match(await auth(provider.sign(first, { iss: 'https://elsewhere.example.com/' })), authFailed, 'another issuer is not looked up')
  t.match(await auth(createSigner({ key: 'a-shared-secret-as-long-as-it-should-be', algorithm: 'HS256', kid: 'rsa-1' })({ iss, aud: audience })),
    authFailed, 'nor an algorithm no public key verifies')
  t.equal(provider.fetches, 6)
})

t.test('the README\'s get-jwks lookup: an EdDSA key (OKP, which get-jwks\'s getPublicKey cannot convert) verifies, as its algorithms say', async t => {
  const provider = new Provider()
  const [ed] = provider.keys = [providerKey('ed-1', 'EdDSA')]
  const { sign, auth } = await withKeyLookup(t, provider)
  t.same(await auth(sign(ed)), authOk, 'found by its lookup')
  t.same(await auth(sign(ed, { sub: 'another' })), authOk, 'and as last found')
})

t.test('the README\'s get-jwks registration refuses the provider\'s ID tokens, before any lookup', async t => {
  const { provider, first } = rotatingProvider(t)
  const { sign, auth, url } = await withKeyLookup(t, provider)
  t.same(await auth(sign(first)), authOk)
  const fetches = provider.fetches
  t.match(await auth(sign(first, { nonce: 'n-0S6_WzA2Mj' })), authFailed, 'an ID token with a nonce')
  t.match(await refusedWith(url(`/websocket?access_token=${sign(providerKey('rsa-9', 'RS256'), { at_hash: 'x' })}`)), { status: 401 },
    'one with at_hash, of a kid never seen, at the upgrade')
  t.equal(provider.fetches, fetches, 'no lookup')
})

t.test('the README\'s get-jwks registration refuses a provider token without aud or exp, which fast-jwt alone lets pass', async t => {
  const { provider, first } = rotatingProvider(t)
  const { sign, auth } = await withKeyLookup(t, provider)
  t.same(await auth(sign(first)), authOk)
  t.match(await auth(sign(first, { aud: undefined })), authFailed, 'a token of the provider for no audience in particular')
  t.match(await auth(sign(first, {}, null)), authFailed, 'a token that would never expire')
  t.match(await auth(sign(first, { aud: 'other-api' })), authFailed, 'another audience')
})

/** The clocks of the README's get-jwks lookup: its window's (`Date`) and get-jwks's cache's (`performance.now()`). */
function lookupClock (t: Test): ReturnType<typeof fakeClock> {
  const clock = fakeClock(t, ['Date', 'performance'])
  // The fake performance.now() starts at 0, and lru-cache takes an entry stamped 0 for one that never ages.
  clock.tick(1)
  return clock
}

/**
 * Moves the clocks of the README's get-jwks lookup `ms` on: its window's (`Date`) and get-jwks's cache's
 * (`performance.now()`, which lru-cache reads once per real millisecond at most: the real 2 ms let it read it again).
 */
async function age (clock: ReturnType<typeof fakeClock>, ms: number): Promise<void> {
  clock.tick(ms)
  await new Promise(resolve => setTimeout(resolve, 2))
}

/** The answer to `token` once a lookup behind an earlier answer has dropped its key: asked a socket at a time. */
async function onceDropped (auth: (token: string) => Promise<unknown>, token: string): Promise<unknown> {
  let answer: unknown
  for (let asked = 0; asked < 50; asked++) {
    answer = await auth(token)
    if ((answer as { status: string }).status !== 'ok') break
  }
  return answer
}

/**
 * The README's get-jwks lookup on the lookup clock, against a provider publishing one RSA key, its first token accepted.
 */
async function oneKeyLookup (t: Test, options: GetJwksOptions = {}) {
  const clock = lookupClock(t)
  const provider = new Provider()
  const first = providerKey('rsa-1', 'RS256')
  provider.keys = [first]
  const { sign, auth } = await withKeyLookup(t, provider, options)
  return { clock, provider, first, sign, auth }
}

t.test('the README\'s get-jwks lookup: a known key answers at once, the provider up, down or withdrawing it; then it is dropped', async t => {
  const { clock, provider, first, sign, auth } = await oneKeyLookup(t) // get-jwks's own cache ttl: 60 s
  t.same(await auth(sign(first)), authOk)
  t.equal(provider.fetches, 2, 'the discovery document and the key set')
  await age(clock, 30_000)
  t.same(await auth(sign(first)), authOk, 'in get-jwks\'s cache')
  t.equal(provider.fetches, 2)
  await age(clock, 31_000)
  t.same(await auth(sign(first)), authOk, 'out of it: the key last found, looked up again behind it')
  await until(() => provider.fetches === 4)

  provider.down = true
  await age(clock, 61_000)
  t.same(await auth(sign(first)), authOk, 'the provider down: the key last found')
  await until(() => provider.fetches === 5)
  await age(clock, 5_000)
  t.same(await auth(sign(first)), authOk, 'still, past the window: a lookup that failed keeps it')
  await until(() => provider.fetches === 6)

  provider.down = false
  provider.keys = [providerKey('rsa-2', 'RS256')]
  await age(clock, 5_000)
  // The trade-off the reference server's key set makes: a known key does not wait to learn it is withdrawn.
  t.same(await auth(sign(first)), authOk, 'the one lookup that finds it withdrawn still answers with it')
  t.match(await onceDropped(auth, sign(first)), authFailed, 'then it is refused (get-jwks\'s own copy of it is not taken)')
  t.equal(provider.fetches, 8, 'without asking again inside the window')
})

t.test('the README\'s get-jwks lookup: a key set answered without keys (a proxy\'s JSON error) is a failed lookup: the key stays', async t => {
  const { clock, provider, first, sign, auth } = await oneKeyLookup(t)
  t.same(await auth(sign(first)), authOk)
  // get-jwks's NO_JWKS: no keys array, or an empty one. Taken for a withdrawal, it would drop every key in use.
  for (const body of ['{"error":"temporarily_unavailable"}', '{"keys":[]}']) {
    provider.body = body
    const fetches = provider.fetches
    await age(clock, 61_000)
    t.same(await auth(sign(first)), authOk, `${body}: the key last found, looked up again behind it`)
    await until(() => provider.fetches === fetches + 2)
    t.same(await onceDropped(auth, sign(first)), authOk, `${body}: that lookup failed, and the key stays`)
  }
})

t.test('the README\'s get-jwks lookup, get-jwks\'s cache shorter than the window: a known key out of it answers unasked', async t => {
  const { clock, provider, first, sign, auth } = await oneKeyLookup(t, { ttl: 2_000 })
  t.same(await auth(sign(first)), authOk)
  await age(clock, 3_000)
  t.same(await auth(sign(first)), authOk, 'the key last found')
  t.equal(provider.fetches, 2, 'not looked up again inside the window')
})

t.test('the README\'s get-jwks lookup: a provider that hangs once get-jwks\'s cache is out of date holds no token of a known key', async t => {
  const { clock, provider, first, sign, auth } = await oneKeyLookup(t)
  t.teardown(() => provider.release())
  t.same(await auth(sign(first)), authOk)
  provider.hanging = true
  await age(clock, 61_000)
  // get-jwks caches the lookup on its way, which Node's fetch lets hang up to 300 s (undici's header timeout).
  const storm = await Promise.all(Array.from({ length: 5 }, (_v, i) => auth(sign(first, { sub: `user-${i}` }))))
  t.same(storm, Array(5).fill(authOk), 'every client of a reconnect storm gets in at once')
  t.equal(provider.fetches, 3, 'one lookup, behind them, held by the provider')
  t.match(await auth(sign(providerKey('rsa-2', 'RS256'))), authFailed, 'an unknown kid inside the window is refused')
  await age(clock, 5_000)
  t.same(await auth(sign(first)), authOk, 'past the window, the lookup still held: the key last found')
  t.equal(provider.fetches, 3)
})

t.test('README.md shows the key lookup of example/provider-keys.ts as it is', async t => {
  const source = readFileSync('example/provider-keys.ts', 'utf8')
  t.ok(readFileSync('README.md', 'utf8').includes(source.slice(source.indexOf('import '))))
})

t.test('boot: the app\'s namespaced @fastify/jwt without jwt.namespace nor SECRET says what to set', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, { namespace: 'idp', secret })
  await t.rejects(async () => { await app.register(realtime, { env: {} }) }, /namespaces \(idp\): set the option jwt\.namespace/)
})

t.test('beside the app\'s namespaced @fastify/jwt, SECRET gives the plugin a namespace of its own', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyJwt, { namespace: 'idp', secret: 'another-secret-that-is-long-enough-to-use' })
  await app.register(realtime, { env: {}, secret, authRoutes: true, users: [admin] })
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  t.equal(login.statusCode, 200)
  const token: string = login.json().data.access_token
  t.ok(app.realtime.jwt.verify(token), 'signed by the plugin\'s own')
  t.equal(app.realtime.jwt, (app.jwt as unknown as Record<string, unknown>).realtime, 'fastify.jwt.realtime')
  t.notOk(app.hasRequestDecorator('realtimeJwtVerify'), 'its request decorators stay in its scope')
})

t.test('a provider that never answers: the upgrade is refused 401 and the auth message AUTH_FAILED, nothing hangs', async t => {
  const provider = new Provider()
  const rsa = providerKey('rsa-1', 'RS256')
  provider.keys = [rsa]
  const { url } = await start(t, provider)
  // Every request from now on is held open, unanswered.
  const silent = createServer(() => {})
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { silent.closeAllConnections(); silent.close() })
  const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/jwks.json`
  const server = await buildReferenceServer({ ADMIN_PASSWORD: admin.password, SECRET: secret, LOG_LEVEL: 'silent', JWKS_URL: silentUrl })
  t.teardown(() => server.app.close())
  await server.app.listen({ host: '127.0.0.1', port: 0 })
  const hanging = (path: string) => `ws://127.0.0.1:${(server.app.server.address() as AddressInfo).port}${path}`
  const reasons: string[] = []
  server.app.realtime.on('authFailed', ({ reason }) => reasons.push(reason))
  const token = provider.sign(rsa)
  const [upgrade, message] = await Promise.all([
    refusedWith(hanging(`/websocket?access_token=${token}`)),
    authAndWhoami(hanging('/websocket'), token)
  ])
  t.match(upgrade, { status: 401, body: /AUTH_FAILED/ })
  t.match(message, { auth: { status: 'error', error: { code: 'AUTH_FAILED' } } })
  // The fetch at boot gives up first (3 s from the start): no key of that kid, the set never fetched.
  t.same(reasons, ['invalid token (UNKNOWN_KEY)', 'invalid token (UNKNOWN_KEY)'], 'said so to the app')
  t.match(await authAndWhoami(url('/websocket'), token), patOk, 'the other server, whose provider answers, is not held up')
})

t.test('the key set as published: keys without kid or alg, keys Node cannot import, a set without keys', async t => {
  const provider = new Provider()
  const rsa = providerKey('rsa-1', 'RS256')
  const ec = providerKey('ec-1', 'ES256')
  const { alg: _alg, ...withoutAlg } = providerKey('rsa-2', 'RS256').publicJwk
  const noAlg = { ...providerKey('rsa-2', 'RS256'), publicJwk: withoutAlg }
  const broken = { ...providerKey('rsa-3', 'RS256'), publicJwk: { kty: 'RSA', kid: 'rsa-3', n: 'AQAB' } }
  const { kid: _kid, ...withoutKid } = providerKey('rsa-4', 'RS256').publicJwk
  const nameless = { ...providerKey('rsa-4', 'RS256'), publicJwk: withoutKid }
  const { alg: _edAlg, ...edWithoutAlg } = providerKey('ed-1', 'EdDSA').publicJwk
  provider.keys = [rsa, ec, noAlg, broken, nameless, { ...providerKey('ed-1', 'EdDSA'), publicJwk: edWithoutAlg }]
  const { url } = await start(t, provider)
  t.match(await authAndWhoami(url('/websocket'), provider.sign(noAlg)), patOk, 'a key without alg serves its kid')
  t.match(await authAndWhoami(url('/websocket'), provider.sign(rsa, { email: undefined })),
    { whoami: { data: { id: 'provider-user', email: null } } }, 'no email claim: null')
  // ES256's kid on an RS256 token: the set says which algorithm the key is for.
  const misnamed = createSigner({ key: rsa.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), algorithm: 'RS256', kid: 'ec-1', expiresIn: 60_000 })(
    { sub: 'provider-user', iss: issuer, aud: audience })
  const kidless = createSigner({ key: rsa.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), algorithm: 'RS256', expiresIn: 60_000 })(
    { sub: 'provider-user', iss: issuer, aud: audience })
  // An Ed25519 key the set names no algorithm for, on an RS256 token: no RSA signature can be checked with it.
  const onEd25519 = createSigner({ key: rsa.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), algorithm: 'RS256', kid: 'ed-1', expiresIn: 60_000 })(
    { sub: 'provider-user', iss: issuer, aud: audience })
  for (const [name, token] of [['a kid of another algorithm', misnamed], ['a key Node cannot import', provider.sign(broken)], ['no kid', kidless],
    ['a key of another type, without alg', onEd25519]]) {
    t.match(await authAndWhoami(url('/websocket'), token), { auth: { status: 'error', error: { code: 'AUTH_FAILED' } } }, name)
  }
})

t.test('a key set over 256 KiB is refused unread: the keys of the last set stay, the new ones are not taken', async t => {
  const { clock, provider, cached: rsa, url } = await withCachedKey(t)
  const ec = providerKey('ec-1', 'ES256')
  provider.keys = [rsa, ec]
  provider.padding = 256 * 1024
  clock.tick(5_000)
  t.match(await authAndWhoami(url('/websocket'), provider.sign(ec)), { auth: { status: 'error', error: { code: 'AUTH_FAILED' } } },
    'a key only the oversized set has')
  t.match(await authAndWhoami(url('/websocket'), provider.sign(rsa)), patOk, 'the last set\'s keys still verify')
  provider.padding = 200 * 1024
  clock.tick(5_000)
  t.match(await authAndWhoami(url('/websocket'), provider.sign(ec)), patOk, 'a set under the cap is taken')
})

t.test('boot: JWKS_URL without JWT_AUDIENCE fails in production and is warned of otherwise; SECRET is the provider instance\'s', async t => {
  const provider = new Provider()
  provider.keys = [providerKey('rsa-1', 'RS256')]
  const env = { ADMIN_EMAIL: admin.email, ADMIN_PASSWORD: admin.password, SECRET: secret, LOG_LEVEL: 'warn', JWKS_URL: await provider.start(t) }
  // Read as the plugin reads it: whatever its case, around spaces.
  for (const production of ['production', 'Production', ' PRODUCTION\n']) {
    await t.rejects(buildReferenceServer({ ...env, JWT_ISSUER: issuer, NODE_ENV: production }, { logStream: { write () {} } }),
      { code: 'FST_REALTIME_INVALID_CONFIG', message: /JWKS_URL is set without JWT_AUDIENCE: every token the provider signs authenticates/ }, JSON.stringify(production))
  }

  /** The warnings a server built with `more` logs once ready. */
  async function warnings (more: Record<string, string>): Promise<string[]> {
    const lines: string[] = []
    const server = await buildReferenceServer({ ...env, ...more }, { logStream: { write: line => { lines.push(line) } } })
    t.teardown(() => server.app.close())
    await server.app.ready()
    return lines.map(line => JSON.parse(line) as { level: number, msg: string }).filter(line => line.level === 40).map(line => line.msg)
  }
  const unbound = await warnings({ NODE_ENV: 'development' })
  t.ok(unbound.some(msg => /without JWT_AUDIENCE.*With NODE_ENV=production this fails boot/.test(msg)), 'no audience, outside production: warned')
  t.ok(unbound.some(msg => /without JWT_ISSUER/.test(msg)), 'no issuer: warned')
  t.same(await warnings({ NODE_ENV: 'production', JWT_ISSUER: issuer, JWT_AUDIENCE: audience }), [],
    'both set: no warning, none about a SECRET the plugin would not use (the provider instance signs and verifies with it)')
})

t.test('a provider that answers without keys: its tokens fail, the server\'s own work', async t => {
  const empty = createServer((_request, response) => { response.writeHead(200, { 'content-type': 'application/json' }).end('{}') })
  await new Promise<void>(resolve => empty.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { empty.close() })
  const server = await buildReferenceServer({
    ADMIN_EMAIL: admin.email,
    ADMIN_PASSWORD: admin.password,
    SECRET: secret,
    LOG_LEVEL: 'silent',
    JWKS_URL: `http://127.0.0.1:${(empty.address() as AddressInfo).port}/jwks.json`
  })
  t.teardown(() => server.app.close())
  await server.app.listen({ host: '127.0.0.1', port: 0 })
  const url = (path: string) => `ws://127.0.0.1:${(server.app.server.address() as AddressInfo).port}${path}`
  const provider = new Provider()
  t.match(await authAndWhoami(url('/websocket'), provider.sign(providerKey('rsa-1', 'RS256'), { aud: undefined })),
    { auth: { status: 'error', error: { code: 'AUTH_FAILED' } } })
  const login = await server.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  t.match(await authAndWhoami(url('/websocket'), login.json().data.access_token), { auth: { status: 'ok' } })
})
