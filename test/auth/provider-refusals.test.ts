// What the reference server tells the operator of refused provider tokens: each one's reason at debug (rate-limited,
// never the token), the plugin's authFailed reasons at debug, and one warning when none of the first 20 verifies.
import t, { type Test } from 'tap'
import { fakeClock } from '../helpers.js'
import { authAndWhoami, issuer, patOk, Provider, providerKey, refusal, start } from './provider.js'

interface Line { level: number, msg: string, reason?: string, detail?: string, code?: string, unlogged?: number }

/** The reference server at LOG_LEVEL=debug with `env`; its log lines, parsed, and its provider's one key. */
async function logged (t: Test, env: Record<string, string> = {}) {
  const provider = new Provider()
  const key = providerKey('rsa-1', 'RS256')
  provider.keys = [key]
  const raw: string[] = []
  const { url } = await start(t, provider, { LOG_LEVEL: 'debug', ...env }, { write: line => { raw.push(line) } })
  const lines = (msg: RegExp) => raw.map(line => JSON.parse(line) as Line).filter(line => msg.test(line.msg))
  return { provider, key, url, raw, refused: () => lines(/^a provider token was refused$/), failed: () => lines(/^authentication failed$/), warnings: () => lines(/provider tokens verified/) }
}

t.test('JWT_ISSUER a trailing slash off the provider\'s: each refusal said at debug, then one warning naming it', async t => {
  const { provider, key, url, raw, refused, failed, warnings } = await logged(t, { JWT_ISSUER: issuer.replace(/\/$/, '') })
  const tokens = Array.from({ length: 25 }, (_v, i) => provider.sign(key, { sub: `user-${i}` }))
  for (const token of tokens.slice(0, 19)) t.match(await authAndWhoami(url('/websocket'), token), refusal)
  t.match(refused()[0], { level: 20, reason: 'ISSUER', detail: 'iss "https://id.example.com/" is not JWT_ISSUER "https://id.example.com" (a trailing slash apart)' })
  t.match(failed()[0], { level: 20, code: 'AUTH_FAILED', reason: 'invalid token (ISSUER)', endpoint: 'rest' }, 'the plugin\'s authFailed event, logged')
  t.same(warnings(), [], 'nineteen: not yet')
  for (const token of tokens.slice(19)) t.match(await authAndWhoami(url('/websocket'), token), refusal)
  t.match(warnings(), [{ level: 40, reason: 'ISSUER', count: 20, msg: /none of the first 20 provider tokens verified; 20 of them: iss .* \(a trailing slash apart\)/ }],
    'the twentieth: one warning, and no more after it')
  t.notOk(raw.some(line => tokens.some(token => line.includes(token.split('.')[1]))), 'no line carries a token, nor its claims whole')
})

t.test('a token that verifies among the first 20: no warning, however many are refused', async t => {
  const { provider, key, url, warnings, refused } = await logged(t)
  const now = Math.floor(Date.now() / 1000)
  t.match(await authAndWhoami(url('/websocket'), provider.sign(key, { exp: now - 30 }, null)), refusal, 'an expired token')
  t.match(await authAndWhoami(url('/websocket'), provider.sign(key, { nbf: now + 300 })), refusal, 'one not valid for minutes yet')
  t.match(refused(), [{ reason: 'EXPIRED', detail: /^expired 3\d s ago by this server's clock$/ }, { reason: 'NOT_YET_VALID', detail: /^valid in (299|300) s by this server's clock$/ }],
    'told in the server\'s clock, which may be the one off')
  t.match(await authAndWhoami(url('/websocket'), provider.sign(key)), patOk)
  for (let i = 0; i < 25; i++) t.match(await authAndWhoami(url('/websocket'), provider.sign(key, { aud: 'other-api' })), refusal)
  t.same(warnings(), [])
})

t.test('refusals at debug: 20 lines a minute at most, the ones held back counted on the next', async t => {
  const clock = fakeClock(t, ['Date'])
  const { provider, key, url, refused, failed } = await logged(t)
  for (let i = 0; i < 25; i++) t.match(await authAndWhoami(url('/websocket'), provider.sign(key, { aud: 'other-api' })), refusal)
  t.equal(refused().length, 20)
  t.equal(failed().length, 20, 'the authFailed lines alike')
  clock.tick(60_000)
  t.match(await authAndWhoami(url('/websocket'), provider.sign(key, { aud: 'other-api' })), refusal)
  t.match(refused()[20], { reason: 'AUDIENCE', detail: 'aud "other-api" is not JWT_AUDIENCE "realtime-api"', unlogged: 5 })
  t.match(failed()[20], { reason: 'invalid token (AUDIENCE)', unlogged: 5 })
})
