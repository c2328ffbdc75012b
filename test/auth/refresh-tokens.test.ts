// Refresh tokens (lib/auth/refresh-tokens.ts): the session they name, their randomness, and the hash stores keep.
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { hashRefreshToken, newRefreshToken, newSessionId, readRefreshToken, sessionBegan } from '../../lib/auth/refresh-tokens.js'

t.test('refresh tokens: the session id then 256 random bits, url-safe, hashed with SHA-256', async (t) => {
  const session = newSessionId()
  t.match(session, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
  const token = newRefreshToken(session)
  t.match(token, /^[A-Za-z0-9_-]{64}$/)
  t.equal(Buffer.from(token, 'base64url').length, 48)
  t.not(newRefreshToken(session), token)
  t.equal(hashRefreshToken(token), hashRefreshToken(token))
  t.not(hashRefreshToken(token), token)
  t.same(readRefreshToken(token), { sessionId: session, tokenHash: hashRefreshToken(token) })
})

t.test('refresh tokens: anything else is no token', async (t) => {
  const token = newRefreshToken(newSessionId())
  for (const other of ['', 'whatever', token.slice(1), `${token}A`, `${token.slice(0, 63)}=`, `${token.slice(0, 63)}!`]) {
    t.equal(readRefreshToken(other), null, JSON.stringify(other))
  }
})

t.test('session ids: UUIDv7s that say when their login began, read back from the token that names them', async (t) => {
  const began = Date.UTC(2026, 11, 2, 18, 30, 0, 123)
  const session = newSessionId(began)
  t.match(session, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'version 7, RFC 9562\'s variant')
  t.equal(sessionBegan(session), began)
  t.equal(sessionBegan(readRefreshToken(newRefreshToken(session))!.sessionId), began, 'from its refresh token')
  t.not(newSessionId(began), session, 'random past the time')
  const before = Date.now()
  const now = sessionBegan(newSessionId())!
  t.ok(now >= before && now <= Date.now(), 'now by default')
  t.equal(sessionBegan(randomUUID()), undefined, 'an earlier build\'s UUIDv4 says nothing')
  for (const own of ['session-2', 'zzzzzzzz-zzzz-7zzz-8zzz-zzzzzzzzzzzz', `${session}0`, session.toUpperCase()]) {
    t.equal(sessionBegan(own), undefined, `nor an app's own id: ${own}`)
  }
})
