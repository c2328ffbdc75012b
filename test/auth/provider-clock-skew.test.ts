// A provider whose clock runs ahead of the reference server's: its tokens carry an `nbf` (Azure AD's is its `iat`) a
// few seconds in this server's future as they arrive, fresh from a login or a refresh.
import t, { type Test } from 'tap'
import { createClient } from 'graphql-ws'
import WebSocket from 'ws'
import { connect, fakeClock, secret } from '../helpers.js'
import { createSigner } from 'fast-jwt'
import { createHmac, sign, type KeyObject } from 'node:crypto'
import { audience, authAndWhoami, issuer, patOk, Provider, providerKey, refusal, start } from './provider.js'

/** The reference server and its provider's key, on a Date that moves only when told: the skew is the one signed. */
async function skewed (t: Test) {
  fakeClock(t, ['Date'])
  const provider = new Provider()
  const key = providerKey('rsa-1', 'RS256')
  provider.keys = [key]
  const { server, url } = await start(t, provider)
  const reasons: string[] = []
  server.app.realtime.on('authFailed', ({ reason }) => { reasons.push(reason) })
  /** A token issued `aheadS` seconds ahead of this server's clock, as Azure AD issues them: `nbf` its `iat`. */
  const issued = (aheadS: number) => {
    const at = Math.floor(Date.now() / 1000) + aheadS
    return provider.sign(key, { iat: at, nbf: at, exp: at + 300 }, null)
  }
  return { url, issued, reasons, key }
}

t.test('a token of a provider whose clock runs 30 s ahead authenticates: auth message, upgrade, connection_init', async t => {
  const { url, issued, reasons } = await skewed(t)
  t.match(await authAndWhoami(url('/websocket'), issued(30)), patOk, 'the auth message')
  const client = await connect(url(`/websocket?access_token=${issued(30)}`))
  client.send({ type: 'whoami' })
  t.match(await client.next(), patOk.whoami, 'the upgrade')
  await client.close()
  const graphql = createClient({ url: url('/graphql'), webSocketImpl: WebSocket, connectionParams: { access_token: issued(30) }, retryAttempts: 0, lazy: true })
  t.teardown(() => graphql.dispose())
  const me = await new Promise((resolve, reject) => {
    graphql.subscribe({ query: '{ me { id } }' }, { next: resolve, error: reject, complete: () => {} })
  })
  t.same(me, { data: { me: { id: 'provider-user' } } }, 'connection_init')
  t.same(reasons, [])
})

t.test('a token not valid for minutes yet is refused, said as such; the server\'s own tokens get no leeway', async t => {
  const { url, issued, reasons } = await skewed(t)
  t.match(await authAndWhoami(url('/websocket'), issued(61)), refusal, 'a provider token past the minute')
  const now = Math.floor(Date.now() / 1000)
  const own = createSigner({ key: secret, algorithm: 'HS256' })({ id: 'someone', iss: 'fastify-realtime', iat: now, nbf: now + 1, exp: now + 300 })
  t.match(await authAndWhoami(url('/websocket'), own), refusal, 'the server\'s own, a second ahead')
  t.same(reasons, ['invalid token (NOT_YET_VALID)', 'invalid token (FAST_JWT_INACTIVE)'])
})

/**
 * A JWT of `claims` as they are, put together here: fast-jwt's signer drops a falsy `nbf` and refuses any other that is
 * no integer. Signed by Node, with the server's secret (HS256) or the provider's key (RS256).
 */
function rawToken (header: Record<string, unknown>, claims: Record<string, unknown>, key: string | KeyObject): string {
  const input = [header, claims].map(part => Buffer.from(JSON.stringify(part)).toString('base64url')).join('.')
  const signature = typeof key === 'string' ? createHmac('sha256', key).update(input).digest() : sign('sha256', Buffer.from(input), key)
  return `${input}.${signature.toString('base64url')}`
}

t.test('an nbf that is no number is refused, the provider\'s and the server\'s own, as fast-jwt refused it before it left nbf to the key lookup', async t => {
  const { url, reasons, key } = await skewed(t)
  const now = Math.floor(Date.now() / 1000)
  for (const nbf of [String(now + 3600), null]) {
    const own = rawToken({ alg: 'HS256', typ: 'JWT' }, { id: 'someone', iss: 'fastify-realtime', iat: now, nbf, exp: now + 300 }, secret)
    t.match(await authAndWhoami(url('/websocket'), own), refusal, `the server's own, nbf ${JSON.stringify(nbf)}`)
    const provider = rawToken({ alg: 'RS256', typ: 'JWT', kid: key.kid }, { sub: 'provider-user', iss: issuer, aud: audience, iat: now, nbf, exp: now + 300 }, key.privateKey)
    t.match(await authAndWhoami(url('/websocket'), provider), refusal, `a provider's, nbf ${JSON.stringify(nbf)}`)
  }
  t.same(reasons, ['invalid token (FAST_JWT_INACTIVE)', 'invalid token (NBF_TYPE)', 'invalid token (FAST_JWT_INACTIVE)', 'invalid token (NBF_TYPE)'])
})
