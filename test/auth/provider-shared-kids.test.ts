// A key set whose keys share a `kid`, as RFC 7517 (4.5) allows and Keycloak publishes: its key id is the key's own, so
// one RSA key it uses to sign and to decrypt (`use: enc`, `RSA-OAEP`), or to sign with two algorithms, appears twice
// under one kid; and keys of two types named alike, as equivalent alternatives.
import t from 'tap'
import { authAndWhoami, patOk, Provider, providerKey, refusal, start, type ProviderKey } from './provider.js'

/** `key`, published again under its kid with other members (another `alg`, a `use`). */
const alias = (key: ProviderKey, members: Record<string, unknown>): ProviderKey => ({ ...key, publicJwk: { ...key.publicJwk, ...members } })

t.test('one RSA key published for signing and for encryption under one kid: its tokens verify, whichever comes first', async t => {
  const rsa = providerKey('keycloak-1', 'RS256')
  const enc = alias(rsa, { use: 'enc', alg: 'RSA-OAEP' })
  for (const keys of [[rsa, enc], [enc, rsa]]) {
    const provider = new Provider()
    provider.keys = keys
    const { url } = await start(t, provider)
    t.match(await authAndWhoami(url('/websocket'), provider.sign(rsa)), patOk, keys.map(key => key.publicJwk.use).join(', '))
  }
})

t.test('one RSA key published for RS256 and RS512 under one kid: its RS256 tokens verify', async t => {
  const rsa = providerKey('keycloak-2', 'RS256')
  const provider = new Provider()
  provider.keys = [rsa, alias(rsa, { alg: 'RS512' })]
  const { url } = await start(t, provider)
  t.match(await authAndWhoami(url('/websocket'), provider.sign(rsa)), patOk)
})

t.test('an RSA and an EC key under one kid, without alg (equivalent alternatives): tokens of each verify', async t => {
  const withoutAlg = (key: ProviderKey, kid: string) => {
    const { alg: _alg, ...jwk } = key.publicJwk
    return { ...key, kid, publicJwk: { ...jwk, kid } }
  }
  const rsa = withoutAlg(providerKey('rsa-1', 'RS256'), 'both')
  const ec = withoutAlg(providerKey('ec-1', 'ES256'), 'both')
  const provider = new Provider()
  provider.keys = [rsa, ec]
  const { url } = await start(t, provider)
  t.match(await authAndWhoami(url('/websocket'), provider.sign(rsa)), patOk, 'RS256')
  t.match(await authAndWhoami(url('/websocket'), provider.sign(ec)), patOk, 'ES256')
  t.equal(provider.fetches, 1, 'with the set fetched at boot')
})

t.test('a key published for encryption alone verifies no token, whatever its alg says', async t => {
  const rsa = providerKey('rsa-1', 'RS256')
  const { alg: _alg, ...withoutAlg } = providerKey('enc-1', 'RS256').publicJwk
  const enc = { ...providerKey('enc-1', 'RS256'), publicJwk: { ...withoutAlg, use: 'enc' } }
  const provider = new Provider()
  provider.keys = [rsa, enc]
  const { server, url } = await start(t, provider)
  const reasons: string[] = []
  server.app.realtime.on('authFailed', ({ reason }) => { reasons.push(reason) })
  t.match(await authAndWhoami(url('/websocket'), provider.sign(enc)), refusal)
  t.same(reasons, ['invalid token (UNKNOWN_KEY)'])
  t.match(await authAndWhoami(url('/websocket'), provider.sign(rsa)), patOk, 'the signing key beside it')
})
