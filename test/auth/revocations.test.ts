// Revoked sessions (lib/auth/revocations.ts): refused until their last access token has expired, on a fake `Date`.
import t from 'tap'
import { Revocations } from '../../lib/auth/revocations.js'
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
