// A provider whose clock runs ahead of the reference server's: its tokens carry an `nbf` (Azure AD's is its `iat`) a
// few seconds in this server's future as they arrive, fresh from a login or a refresh.
import t, { type Test } from 'tap'
import { createClient } from 'graphql-ws'
import WebSocket from 'ws'
import { connect, fakeClock, secret } from '../helpers.js'
import { createSigner } from 'fast-jwt'
import { authAndWhoami, patOk, Provider, providerKey, refusal, start } from './provider.js'

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
  return { url, issued, reasons }
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
