// A provider's ID tokens are no access tokens: the reference server refuses them even where their `aud` (the client's
// id) is JWT_AUDIENCE, or JWT_AUDIENCE is unset; JWT_TOKEN_TYPE=at+jwt takes RFC 9068's access tokens alone.
import { readFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import { createSigner } from 'fast-jwt'
import { buildReferenceServer } from '../../example/app.js'
import { admin, refusedWith, secret } from '../helpers.js'
import { authAndWhoami, issuer, patOk, Provider, providerKey, start, type ProviderKey } from './provider.js'

const clientId = 'realtime-app'
const authFailed = { auth: { status: 'error', error: { code: 'AUTH_FAILED' } } }

/** A token of `key` with `header` fields beside alg and kid, for the client `clientId` as an ID token is. */
function signed (key: ProviderKey, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): string {
  const pem = key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
  return createSigner({ key: pem, algorithm: key.alg, kid: key.kid, expiresIn: 300_000, header: { alg: key.alg, ...header } })(
    { sub: 'provider-user', email: 'pat@example.com', role: 'editor', iss: issuer, aud: clientId, ...claims })
}

/** The reference server with `env`, its provider's key fetched; the reasons its `authFailed` events give. */
async function withProvider (t: Test, env: Record<string, string>) {
  const provider = new Provider()
  const key = providerKey('rsa-1', 'RS256')
  provider.keys = [key]
  const { server, url } = await start(t, provider, env)
  const reasons: string[] = []
  server.app.realtime.on('authFailed', ({ reason }) => reasons.push(reason))
  return { server: server.app, key, url, reasons }
}

for (const [name, env] of [['JWT_AUDIENCE is the client\'s id', { JWT_AUDIENCE: clientId }], ['JWT_AUDIENCE is unset', { JWT_AUDIENCE: '' }]] as const) {
  t.test(`${name}: the provider's ID tokens are refused, its access tokens authenticate`, async t => {
    const { key, url, reasons } = await withProvider(t, env)
    const idTokens: Array<[string, string]> = [
      ['nonce', signed(key, { nonce: 'n-0S6_WzA2Mj' })],
      ['at_hash', signed(key, { at_hash: 'HK6E_P6Dh8Y93mRNtsDB1Q' })],
      ['c_hash', signed(key, { c_hash: 'LDktKdoQak3Pk0cnXxCltA' })],
      ['typ id_token+jwt', signed(key, {}, { typ: 'application/id_token+jwt' })],
      ['Keycloak\'s typ ID in the claims', signed(key, { typ: 'ID' })],
      ['Cognito\'s token_use id', signed(key, { token_use: 'id', at_hash: 'x' })]
    ]
    for (const [mark, token] of idTokens) {
      t.match(await authAndWhoami(url('/websocket'), token), authFailed, `an ID token (${mark})`)
    }
    t.same(reasons, Array(idTokens.length).fill('invalid token (ID_TOKEN)'), 'the authFailed event says why')
    t.match(await refusedWith(url(`/websocket?access_token=${idTokens[0][1]}`)), { status: 401, body: /AUTH_FAILED/ }, 'at the upgrade too')

    t.match(await authAndWhoami(url('/websocket'), signed(key)), patOk, 'a token without any mark')
    t.match(await authAndWhoami(url('/websocket'), signed(key, {}, { typ: undefined })), patOk, 'nor typ')
    t.match(await authAndWhoami(url('/websocket'), signed(key, { nonce: 'n' }, { typ: 'at+jwt' })), patOk, 'typ at+jwt, nonce or not')
    t.match(await authAndWhoami(url('/websocket'), signed(key, { nonce: 'n', typ: 'Bearer' })), patOk,
      'Keycloak\'s access token (typ Bearer in the claims), with the nonce Keycloak before 24 put in it')
    t.match(await authAndWhoami(url('/websocket'), signed(key, { token_use: 'access' })), patOk, 'Cognito\'s access token')
  })
}

t.test('JWT_TOKEN_TYPE=at+jwt: only a provider token typed at+jwt (RFC 9068) authenticates; the server\'s own still do', async t => {
  const { server, key, url, reasons } = await withProvider(t, { JWT_AUDIENCE: clientId, JWT_TOKEN_TYPE: 'at+jwt' })
  t.match(await authAndWhoami(url('/websocket'), signed(key, {}, { typ: 'at+jwt' })), patOk)
  t.match(await authAndWhoami(url('/websocket'), signed(key, {}, { typ: 'application/AT+JWT' })), patOk, 'as RFC 8725 compares it')
  t.match(await authAndWhoami(url('/websocket'), signed(key)), authFailed, 'an ID token with no mark of one (oidc-provider\'s)')
  t.match(await authAndWhoami(url('/websocket'), signed(key, {}, { typ: 'JWT' })), authFailed, 'typ JWT')
  t.match(await authAndWhoami(url('/websocket'), signed(key, {}, { typ: undefined })), authFailed, 'no typ')
  t.same(reasons, Array(3).fill('invalid token (TOKEN_TYPE)'))
  const login = await server.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  t.match(await authAndWhoami(url('/websocket'), login.json().data.access_token), { auth: { status: 'ok' } }, 'the server\'s own token')
})

t.test('boot: JWT_TOKEN_TYPE takes at+jwt alone', async t => {
  await t.rejects(buildReferenceServer({ SECRET: secret, LOG_LEVEL: 'silent', JWKS_URL: 'http://127.0.0.1:9/jwks.json', JWT_AUDIENCE: clientId, JWT_TOKEN_TYPE: 'JWT' }),
    { code: 'FST_REALTIME_INVALID_CONFIG', message: /JWT_TOKEN_TYPE must be at\+jwt/ })
})

t.test('README.md shows the ID-token check of example/token-kind.ts as it is', async t => {
  const source = readFileSync('example/token-kind.ts', 'utf8')
  t.ok(readFileSync('README.md', 'utf8').includes(source.slice(source.indexOf('/** A refused token'))))
})
