// Revoked sessions (lib/auth/revocations.ts): refused until their last access token has expired, on a fake `Date`.
import t from 'tap'
import { readRevocation, revocationId, Revocations } from '../../lib/auth/revocations.js'
import { fakeClock } from '../clock.js'

const hour = 3_600_000

t.test('Revocations: add then has', async (t) => {
  const revocations = new Revocations()
  t.notOk(revocations.has('s1'))
  revocations.add('s1', Date.now() + hour)
  t.ok(revocations.has('s1'))
  t.notOk(revocations.has('s2'))
})

t.test('Revocations: not loaded until the feed says so, then for good', async (t) => {
  const revocations = new Revocations()
  t.notOk(revocations.loaded)
  revocations.markLoaded()
  t.ok(revocations.loaded)
})

t.test('Revocations: an entry expires after the ttl and is pruned by later adds', async (t) => {
  const clock = fakeClock(t, ['Date'])
  const revocations = new Revocations()
  revocations.add('s1', Date.now() + 20)
  revocations.add('s2', Date.now() + 20)
  clock.tick(19)
  t.ok(revocations.has('s1'), 'until its deadline')
  clock.tick(1)
  t.notOk(revocations.has('s1'), 'not at it')
  t.notOk(revocations.has('s2'))
  revocations.add('s3', Date.now() + hour)
  t.ok(revocations.has('s3'))
  revocations.add('s3', Date.now() + 10)
  clock.tick(30)
  t.ok(revocations.has('s3'), 'a later deadline is kept over an earlier one')
  t.notOk(revocations.has('s1'))
})

t.test('Revocations: a user\'s tokens issued up to the revocation\'s second, until its end; the latest wins', async (t) => {
  // Revoked at 1000.5 s, looked at 1002 s: a token of 1001 s was issued after the revocation, in the server's past.
  const clock = fakeClock(t, ['Date'], 1_002_000)
  const revocations = new Revocations()
  const at = 1_000_500
  revocations.addUser('u1', at, Date.now() + hour)
  t.ok(revocations.revokesUser('u1', 999), 'an earlier second')
  t.ok(revocations.revokesUser('u1', 1000), 'the revocation\'s own second')
  t.notOk(revocations.revokesUser('u1', 1001), 'a later second')
  t.ok(revocations.revokesUser('u1', 1003), 'a second still to come: its issuer\'s clock runs ahead')
  t.ok(revocations.revokesUser('u1', undefined), 'no iat: as old as can be')
  t.notOk(revocations.revokesUser('u2', 999), 'another user')
  revocations.addUser('u1', at + 2_000, at + 10)
  t.ok(revocations.revokesUser('u1', 1002), 'a second revocation moves the time on')
  clock.tick(hour - 1)
  t.ok(revocations.revokesUser('u1', 1002), 'and keeps the later end')
  clock.tick(1)
  t.notOk(revocations.revokesUser('u1', 1002), 'past its end')
  revocations.addUser('u3', Date.now(), Date.now() + hour)
  revocations.addUser('u1', 0, Date.now() + 5)
  t.notOk(revocations.revokesUser('u1', 1), 'an ended revocation was forgotten, not merged')
})

t.test('readRevocation: session, user, and an untagged id as a session', async (t) => {
  t.same(readRevocation(revocationId.session('user:1:bob')), { session: 'user:1:bob' })
  t.same(readRevocation(revocationId.user('a:b', 42)), { user: 'a:b', at: 42 })
  t.same(readRevocation('6c1b9b52-0b1f-4f8e-9d55-1c0e3a1f2b3c'), { session: '6c1b9b52-0b1f-4f8e-9d55-1c0e3a1f2b3c' })
})
