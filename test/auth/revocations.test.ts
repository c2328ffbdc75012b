// Revoked sessions (lib/auth/revocations.ts): refused until their last access token has expired, on a fake `Date`.
import t, { type Test } from 'tap'
import { heldIssuedAt, readRevocation, revocationId, Revocations } from '../../lib/auth/revocations.js'
import { newSessionId } from '../../lib/auth/refresh-tokens.js'
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

t.test('Revocations: with a feed that knows its process\'s own, a session token issued before its start predates them', async (t) => {
  const clock = fakeClock(t, ['Date'], 1_000_500)
  const revocations = new Revocations()
  revocations.markLoaded(Date.now())
  t.ok(revocations.predates('s1', 999), 'issued the second before')
  t.ok(revocations.predates('s1', undefined), 'issued at no time said')
  t.ok(revocations.predates('s1', 1_000), 'issued in its first second, by another process: iat cannot tell')
  revocations.signed('s1', 1_000)
  t.notOk(revocations.predates('s1', 1_000), 'signed here in that second')
  t.ok(revocations.predates('s2', 1_000), 'another session still does')
  t.notOk(revocations.predates('s2', 1_001), 'any later second is this process\'s')
  clock.tick(1_000)
  revocations.signed('s3', 1_001)
  t.ok(revocations.predates('s3', 1_000), 'a token signed after the first second vouches for none in it')
})

t.test('Revocations: with a feed that keeps them all, nothing predates them', async (t) => {
  const revocations = new Revocations()
  revocations.markLoaded()
  t.notOk(revocations.predates('s1', 0))
  t.notOk(revocations.predates('s1', undefined))
  revocations.signed('s1', 0)
  t.notOk(revocations.predates('s1', 0))
})

t.test('Revocations: an entry expires after the ttl, whatever is added later', async (t) => {
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
  const clock = fakeClock(t, ['Date'], 1_000_500)
  const revocations = new Revocations()
  const at = Date.now()
  revocations.addUser('u1', at, at + hour)
  t.ok(revocations.revokesUser('u1', 999), 'an earlier second')
  t.ok(revocations.revokesUser('u1', 1000), 'the revocation\'s own second')
  t.notOk(revocations.revokesUser('u1', 1001), 'the next second: another process\'s clock may be a moment ahead')
  t.ok(revocations.revokesUser('u1', 1002), 'a second later than that: its issuer\'s clock runs ahead')
  t.notOk(revocations.revokesUser('u2', 1002), 'which only a revocation of its user refuses')
  clock.tick(500)
  t.notOk(revocations.revokesUser('u1', 1001), 'a later second, once it is here')
  t.ok(revocations.revokesUser('u1', undefined), 'no iat: as old as can be')
  t.notOk(revocations.revokesUser('u2', 999), 'another user')
  clock.tick(2_000)
  revocations.addUser('u1', at + 2_000, at + 10)
  t.ok(revocations.revokesUser('u1', 1002), 'a second revocation moves the time on')
  t.notOk(revocations.revokesUser('u1', 1003), 'to its own second')
  clock.tick(hour - 2_501)
  t.ok(revocations.revokesUser('u1', 1002), 'and keeps the later end')
  clock.tick(1)
  t.notOk(revocations.revokesUser('u1', 1002), 'past its end')
  revocations.addUser('u3', Date.now(), Date.now() + hour)
  revocations.addUser('u1', 0, Date.now() + 5)
  t.notOk(revocations.revokesUser('u1', 1), 'an ended revocation was forgotten, not merged')
})

t.test('Revocations: a token of a session whose id says when its login began is refused by that, to the millisecond, whatever its second of issue', async (t) => {
  fakeClock(t, ['Date'], 1_000_500)
  const revocations = new Revocations()
  const at = Date.now()
  revocations.addUser('u1', at, at + hour)
  t.notOk(revocations.revokesUser('u1', 1000, newSessionId(at + 1)),
    'begun a millisecond after, in the revocation\'s second (a login on a process that had not heard of it yet)')
  t.ok(revocations.revokesUser('u1', 1000, newSessionId(at)), 'begun in its millisecond')
  t.ok(revocations.revokesUser('u1', 1001, newSessionId(at - 400)), 'begun before, its token dated the second after')
  t.ok(revocations.revokesUser('u1', 1002, newSessionId(at + 1)), 'a token from a clock that runs ahead is refused all the same')
  t.ok(revocations.revokesUser('u1', 1000, newSessionId(at + 5_000)), 'an id dated after its token (a login\'s process with a clock ahead): the second of issue decides')
  t.ok(revocations.revokesUser('u1', 1000, 'not-a-v7-session-id'), 'an id that says nothing: the second of issue decides')
  t.notOk(revocations.revokesUser('u1', 1001, 'not-a-v7-session-id'))
})

t.test('Revocations: a token life told lengthens the user revocations in force and those to come, never shortens them', async (t) => {
  const clock = fakeClock(t, ['Date'], 10 * hour)
  const revocations = new Revocations()
  revocations.addUser('lapsed', Date.now() - 2 * hour, Date.now() - 1)
  revocations.addUser('alice', Date.now(), Date.now() + 60_000)
  revocations.tokenLived(hour)
  t.equal(revocations.tokenLifeMs, hour)
  revocations.tokenLived(60_000)
  t.equal(revocations.tokenLifeMs, hour, 'a shorter life changes nothing')
  revocations.addUser('bob', Date.now(), Date.now() + 60_000)
  clock.tick(hour - 1)
  t.ok(revocations.revokesUser('alice', 0), 'one in force: lengthened to an hour from its time')
  t.ok(revocations.revokesUser('bob', 0), 'one made after: an hour, whatever it said')
  t.notOk(revocations.revokesUser('lapsed', 0), 'one lapsed before: not brought back')
  clock.tick(1)
  t.notOk(revocations.revokesUser('alice', 0), 'over an hour after')
})

t.test('Revocations: the issuers of the registrations using a set, as often as registered, each release once', async (t) => {
  const revocations = new Revocations()
  const first = revocations.useIssuer('tenant-a')
  const second = revocations.useIssuer('tenant-a')
  t.ok(revocations.namesSessions('tenant-a'))
  t.notOk(revocations.namesSessions('tenant-b'))
  t.notOk(revocations.namesSessions(undefined), 'a token without iss')
  first()
  first()
  t.ok(revocations.namesSessions('tenant-a'), 'one release each: the second registration still uses it')
  second()
  t.notOk(revocations.namesSessions('tenant-a'))
})

t.test('heldIssuedAt: a socket holds a token as of its iat, up to a second ahead of the clock; further ahead, as of now', async (t) => {
  fakeClock(t, ['Date'], 1_000_500)
  t.equal(heldIssuedAt(999), 999, 'an earlier second')
  t.equal(heldIssuedAt(1001), 1001, 'the next second: signed after a revocation in this one, or by a clock a moment ahead')
  t.equal(heldIssuedAt(1030), 1000, 'its issuer\'s clock runs ahead: issued by now')
  t.equal(heldIssuedAt(undefined), 0, 'no iat: as old as can be')
})

/** How many entries every loop over a Map visits from now on: the work of forgetting the revocations past. */
function mapVisits (t: Test): () => number {
  const entries = Map.prototype[Symbol.iterator]
  let visits = 0
  t.capture(Map.prototype, Symbol.iterator, function (this: Map<unknown, unknown>) {
    const iterator = entries.call(this)
    return Object.assign(Object.create(iterator) as typeof iterator, { next: () => { visits++; return iterator.next() } })
  })
  return () => visits
}

t.test('Revocations: a replay of n revocations visits each entry a few times in all, not once per revocation', async (t) => {
  const revocations = new Revocations()
  const until = Date.now() + hour
  const n = 5_000
  const visits = mapVisits(t)
  for (let i = 0; i < n; i++) revocations.add(`s${i}`, until)
  for (let i = 0; i < n; i++) revocations.addUser(`u${i}`, Date.now(), until)
  t.ok(visits() <= 3 * 2 * n, `${visits()} entries visited for ${2 * n} revocations`)
  t.ok(revocations.has('s0') && revocations.revokesUser(`u${n - 1}`, undefined), 'all kept')
})

t.test('Revocations: the lapsed ones are forgotten as the set grows again', async (t) => {
  const clock = fakeClock(t, ['Date'])
  const revocations = new Revocations()
  for (let i = 0; i < 100; i++) revocations.add(`lapsing${i}`, Date.now() + 20)
  for (let i = 0; i < 100; i++) revocations.addUser(`lapsing${i}`, Date.now(), Date.now() + 20)
  clock.tick(20)
  const forgotten = t.capture(Map.prototype, 'delete', Map.prototype.delete)
  for (let i = 0; i < 400; i++) revocations.add(`s${i}`, Date.now() + hour)
  t.equal(forgotten.calls.length, 200, 'every lapsed one, once')
  t.notOk(revocations.has('lapsing0'))
  t.ok(revocations.has('s0'))
})

t.test('Revocations: what a burst left is forgotten at the first revocation past its lapse, not after as many new ones', async (t) => {
  const clock = fakeClock(t, ['Date'])
  const revocations = new Revocations()
  // A logout wave: the set doubled, and was cleaned, as it grew; the last clean-up kept most of it.
  for (let i = 0; i < 1_000; i++) revocations.add(`wave${i}`, Date.now() + 20)
  for (let i = 0; i < 1_000; i++) revocations.addUser(`wave${i}`, Date.now(), Date.now() + 20)
  clock.tick(20)
  const forgotten = t.capture(Map.prototype, 'delete', Map.prototype.delete)
  revocations.add('later', Date.now() + hour)
  t.equal(forgotten.calls.length, 2_000, 'every lapsed one, at once')
  const visits = mapVisits(t)
  for (let i = 0; i < 100; i++) revocations.add(`trickle${i}`, Date.now() + hour)
  t.ok(visits() <= 3 * 100, `${visits()} entries visited for the 100 revocations after it`)
  t.ok(revocations.has('later') && revocations.has('trickle99'))
})

t.test('readRevocation: session, user, and an untagged id as a session', async (t) => {
  t.same(readRevocation(revocationId.session('user:1:bob')), { session: 'user:1:bob' })
  t.same(readRevocation(revocationId.user('a:b', 42)), { user: 'a:b', at: 42 })
  t.same(readRevocation('6c1b9b52-0b1f-4f8e-9d55-1c0e3a1f2b3c'), { session: '6c1b9b52-0b1f-4f8e-9d55-1c0e3a1f2b3c' })
})
