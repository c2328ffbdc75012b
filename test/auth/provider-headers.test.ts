// A provider token's header names its key by `kid` alone, looked up in the set JWKS_URL publishes: a key the token
// carries or points at (`jwk`, `jku`, `x5u`, `x5c`) is never taken nor fetched, a `kid` of any spelling is a name and
// nothing more, and a `crit` header is refused (RFC 7515 4.1.11: the server understands no extension).
import t from 'tap'
import { createSigner } from 'fast-jwt'
import { audience, authAndWhoami, issuer, newProviderKey, patOk, Provider, providerKey, refusal, start, type ProviderKey } from './provider.js'

/** A token of `key` whose header carries `header` besides its alg and kid. */
function signedWith (key: ProviderKey, header: Record<string, unknown>, kid = key.kid): string {
  const pem = key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
  return createSigner({ key: pem, algorithm: key.alg, kid, header: { alg: key.alg, ...header }, expiresIn: 300_000 })({
    sub: 'provider-user', email: 'pat@example.com', role: 'editor', iss: issuer, aud: audience
  })
}

t.test('a key the token carries or points at is never fetched nor taken, whatever kid it names', async t => {
  const provider = new Provider()
  provider.keys = [providerKey('rsa-1', 'RS256')]
  const { url } = await start(t, provider)
  // The attacker's own key, published on a server of the attacker's.
  const attacker = new Provider()
  const own = newProviderKey('attacker-1', 'RS256')
  attacker.keys = [own]
  const attackerSet = await attacker.start(t)
  const pointers = { jku: attackerSet, x5u: attackerSet, jwk: own.publicJwk }
  for (const kid of ['attacker-1', 'rsa-1']) {
    t.match(await authAndWhoami(url('/websocket'), signedWith(own, pointers, kid)), refusal, `kid ${kid}: refused`)
  }
  t.equal(attacker.fetches, 0, 'the attacker\'s server was never asked')
  t.match(await authAndWhoami(url('/websocket'), signedWith(provider.keys[0]!, pointers)), patOk,
    'the provider\'s own token with the same headers authenticates: they are ignored, not refused')
  t.equal(attacker.fetches, 0, 'nor asked then')
})

t.test('a kid of any spelling is a name looked up in the set, and nothing more', async t => {
  const provider = new Provider()
  provider.keys = [providerKey('rsa-1', 'RS256')]
  const { url } = await start(t, provider)
  for (const kid of ['../../../../etc/passwd', '\' OR \'1\'=\'1', '__proto__', 'constructor', 'toString', 'rsa-1\u0000', 'x'.repeat(10_000)]) {
    t.match(await authAndWhoami(url('/websocket'), signedWith(provider.keys[0]!, {}, kid)), refusal, `kid ${JSON.stringify(kid.slice(0, 30))}: refused`)
  }
  t.match(await authAndWhoami(url('/websocket'), provider.sign(provider.keys[0]!)), patOk, 'and the server goes on: the right kid authenticates')
})

t.test('a token with a crit header is refused, signed by the provider\'s key all the same', async t => {
  const provider = new Provider()
  provider.keys = [providerKey('rsa-1', 'RS256')]
  const { url } = await start(t, provider)
  for (const header of [{ crit: ['b64'], b64: false }, { crit: ['x-extension'], 'x-extension': true }, { crit: ['exp'] }, { crit: [] }, { crit: 'x' }]) {
    t.match(await authAndWhoami(url('/websocket'), signedWith(provider.keys[0]!, header)), refusal, JSON.stringify(header))
  }
})
