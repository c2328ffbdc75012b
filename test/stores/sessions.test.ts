// The session-store contract (types/index.ts `SessionStore`), run against every implementation: memory, Redis, and a
// @fastify/session store through the adapter.
import t, { type Test } from 'tap'
import { MemoryStore } from '@fastify/session'
import { Redis } from 'ioredis'
import { fromFastifySessionStore, MemorySessionStore, type Identity, type SessionStore } from '../../lib/index.js'
import { RedisSessionStore } from '../../lib/stores/sessions/redis.js'
import type { RedisClient } from '../../lib/stores/redis-connection.js'
import { RedisCluster } from '../redis-cluster.js'
import { RedisServer } from '../redis-server.js'
import { fakeClock } from '../clock.js'
import { refuseLateLua } from '../../lib/stores/write-deadline.js'
import { redisKeys } from '../../lib/stores/redis-keys.js'

/** A deadline well ahead: the write acts. */
const soon = () => Date.now() + 10_000
/** A deadline that has passed (by more than any clock's rounding): the write must not act. */
const passed = () => Date.now() - 1_000

const alice: Identity = { user: 'alice', role: 'editor', admin: false }
const bob: Identity = { user: 'bob', role: null, admin: true }

/**
 * `atomic`: two rotations of one token at once see exactly one `rotated` (the adapter promises it within one process
 * only, which is what the contract's single store object sees).
 */
async function sessionContract (t: Test, store: SessionStore, { atomic }: { atomic: boolean }): Promise<void> {
  const expiresAt = Date.now() + 60_000
  const s1 = (tokenHash: string) => ({ sessionId: 's1', tokenHash })
  const created = { id: 's1', identity: alice, tokenHash: 'h1', expiresAt }
  await store.create(created, soon())
  created.tokenHash = 'tampered'
  await store.create({ id: 's2', identity: alice, tokenHash: 'x1', expiresAt }, soon())
  t.same(await store.lookup(s1('h1')), { status: 'current', session: { id: 's1', identity: alice, tokenHash: 'h1', expiresAt } },
    'lookup: current, as created (the store kept its own copy)')
  t.same(await store.rotate(s1('h1'), 'h2', expiresAt + 1, soon()), { status: 'rotated', session: { id: 's1', identity: alice, tokenHash: 'h2', expiresAt: expiresAt + 1 } }, 'rotate')
  t.same(await store.rotate(s1('h1'), 'h3', expiresAt, soon()), { status: 'reused', sessionId: 's1' }, 'rotate: a rotated token is reuse')
  t.same(await store.lookup(s1('h1')), { status: 'reused', sessionId: 's1' }, 'lookup: a rotated token is reuse')
  t.same(await store.lookup(s1('forged')), { status: 'reused', sessionId: 's1' }, 'lookup: any other hash naming a live session is reuse')
  t.same(await store.lookup({ sessionId: 'nope', tokenHash: 'h2' }), { status: 'unknown' }, 'lookup: unknown session')
  t.same(await store.rotate({ sessionId: 'nope', tokenHash: 'h2' }, 'h4', expiresAt, soon()), { status: 'unknown' }, 'rotate: unknown session')

  await t.rejects(store.rotate(s1('h2'), 'late', expiresAt, passed()), 'rotate past its deadline: rejected')
  await t.rejects(store.create({ id: 's9', identity: alice, tokenHash: 'z1', expiresAt }, passed()), 'create past its deadline: rejected')
  await t.rejects(store.end('s1', passed()), 'end past its deadline: rejected')
  await t.rejects(store.endUser('alice', passed()), 'endUser past its deadline: rejected')
  t.match(await store.lookup(s1('h2')), { status: 'current' }, 'and none of them acted')
  t.same(await store.lookup({ sessionId: 's9', tokenHash: 'z1' }), { status: 'unknown' })
  t.match(await store.lookup({ sessionId: 's2', tokenHash: 'x1' }), { status: 'current' })

  if (atomic) {
    const both = await Promise.all([store.rotate(s1('h2'), 'a', expiresAt, soon()), store.rotate(s1('h2'), 'b', expiresAt, soon())])
    t.same(both.map(r => r.status).sort(), ['reused', 'rotated'], 'of two rotations of one token at once, exactly one rotates')
  }

  t.same(await store.end('s1', soon()), alice, 'end: the identity')
  t.same(await store.end('s1', soon()), null, 'end: once')
  t.same(await store.lookup(s1('h2')), { status: 'unknown' }, 'an ended session\'s tokens are gone')
  await store.create({ id: 'b1', identity: bob, tokenHash: 'y1', expiresAt }, soon())
  t.same(await store.endUser('alice', soon()), ['s2'], 'endUser: the sessions it ended')
  t.same(await store.endUser('alice', soon()), [], 'endUser: none left')
  t.match(await store.lookup({ sessionId: 'b1', tokenHash: 'y1' }), { status: 'current' }, 'endUser: another user\'s sessions stay')

  await store.create({ id: 's3', identity: alice, tokenHash: 'e1', expiresAt: Date.now() + 30 }, soon())
  await store.create({ id: 's4', identity: alice, tokenHash: 'r1', expiresAt }, soon())
  await store.rotate({ sessionId: 's4', tokenHash: 'r1' }, 'r2', Date.now() + 30, soon())
  await new Promise(resolve => setTimeout(resolve, 60))
  t.same(await store.lookup({ sessionId: 's3', tokenHash: 'e1' }), { status: 'unknown' }, 'an expired session is unknown')
  t.same(await store.rotate({ sessionId: 's3', tokenHash: 'e1' }, 'e2', Date.now() + 60_000, soon()), { status: 'unknown' }, 'and cannot be rotated')
  t.same(await store.lookup({ sessionId: 's4', tokenHash: 'r1' }), { status: 'unknown' }, 'a session expired after a rotation is unknown by its older tokens too')
  t.same(await store.end('s4', soon()), null, 'and there is nothing to end')
  await store.end('b1', soon())
}

/**
 * `unrotate`: a rotation taken back leaves the session at the token before it; one the session has moved on from, or
 * an ended session, is left as it is (an ended one is not brought back).
 */
async function unrotateContract (t: Test, store: SessionStore): Promise<void> {
  const expiresAt = Date.now() + 60_000
  const u1 = (tokenHash: string) => ({ sessionId: 'u1', tokenHash })
  await store.create({ id: 'u1', identity: alice, tokenHash: 'a', expiresAt }, soon())
  await store.rotate(u1('a'), 'b', expiresAt, soon())
  await store.unrotate!(u1('a'), 'b')
  t.match(await store.lookup(u1('a')), { status: 'current' }, 'the token before is current again')
  t.same(await store.lookup(u1('b')), { status: 'reused', sessionId: 'u1' }, 'the next one, never handed out, is not')
  await store.unrotate!(u1('a'), 'b')
  t.match(await store.lookup(u1('a')), { status: 'current' }, 'taken back twice: the same')
  await store.rotate(u1('a'), 'c', expiresAt, soon())
  await store.unrotate!(u1('a'), 'b')
  t.match(await store.lookup(u1('c')), { status: 'current' }, 'a session at another token than the one taken back stays there')
  await store.end('u1', soon())
  await store.unrotate!(u1('a'), 'c')
  t.same(await store.lookup(u1('a')), { status: 'unknown' }, 'an ended session stays ended')
  t.same(await store.lookup(u1('c')), { status: 'unknown' })
}

/**
 * A rotation with a grace (a session cookie's refresh): the token it replaced is `previous` for the grace's
 * milliseconds, while the session is still at the token it was rotated to, and `rotate` answers it with the grace's
 * salt, changing nothing. A rotation without a grace, or an unrotate, drops it; past the grace it is reuse.
 */
async function graceContract (t: Test, store: SessionStore, { atomic }: { atomic: boolean }): Promise<void> {
  const expiresAt = Date.now() + 60_000
  const g1 = (tokenHash: string) => ({ sessionId: 'g1', tokenHash })
  const at = (tokenHash: string, expires = expiresAt) => ({ id: 'g1', identity: alice, tokenHash, expiresAt: expires })
  const grace = (ms = 60_000) => ({ ms })
  await store.create(at('a'), soon())
  t.same(await store.rotate(g1('a'), 'b', expiresAt + 1, soon(), grace()), { status: 'rotated', session: at('b', expiresAt + 1) })
  t.same(await store.lookup(g1('a')), { status: 'previous', session: at('b', expiresAt + 1) }, 'lookup: the token replaced is previous')
  t.same(await store.rotate(g1('a'), 'b2', expiresAt + 2, soon(), grace()), { status: 'previous', session: at('b', expiresAt + 1) }, 'rotate: previous')
  t.same(await store.lookup(g1('b')), { status: 'current', session: at('b', expiresAt + 1) }, 'and nothing rotated')

  t.match(await store.rotate(g1('b'), 'c', expiresAt, soon()), { status: 'rotated' }, 'a rotation without a grace')
  t.same(await store.lookup(g1('b')), { status: 'reused', sessionId: 'g1' }, 'makes the token it replaced reuse at once')
  t.same(await store.lookup(g1('a')), { status: 'reused', sessionId: 'g1' }, 'and drops the grace before it')

  await store.rotate(g1('c'), 'd', expiresAt, soon(), grace(50))
  await new Promise(resolve => setTimeout(resolve, 100))
  t.same(await store.lookup(g1('c')), { status: 'reused', sessionId: 'g1' }, 'past the grace, the previous token is reuse')
  t.same(await store.rotate(g1('c'), 'e', expiresAt, soon(), grace()), { status: 'reused', sessionId: 'g1' })

  if (store.unrotate) {
    await store.rotate(g1('d'), 'e', expiresAt, soon(), grace())
    await store.unrotate(g1('d'), 'e')
    t.match(await store.lookup(g1('d')), { status: 'current' }, 'an unrotate takes the session back to the token before')
    t.same(await store.lookup(g1('e')), { status: 'reused', sessionId: 'g1' }, 'with no previous token')
  }

  if (atomic) {
    const both = await Promise.all([store.rotate(g1('d'), 'f', expiresAt, soon(), grace()), store.rotate(g1('d'), 'g', expiresAt, soon(), grace())])
    t.same(both.map(r => r.status).sort(), ['previous', 'rotated'], 'of two rotations with a grace of one token at once, one rotates, the other is previous')
  }
  await store.end('g1', soon())
  t.same(await store.lookup(g1('d')), { status: 'unknown' }, 'an ended session has no previous token')
}

/**
 * `store` keeps 2 sessions a user: a new one past it ends the one created or refreshed longest ago (on Redis, the one
 * that expires first: a refresh moves a session's expiry on), and resolves its id.
 */
async function limitContract (t: Test, store: SessionStore): Promise<void> {
  const at = Date.now() + 60_000
  const session = (id: string, identity: Identity, expiresAt: number) => ({ id, identity, tokenHash: id, expiresAt })
  t.same(await store.create(session('k1', alice, at), soon()), [], 'within the limit: none ended')
  t.same(await store.create(session('k2', alice, at + 1), soon()), [])
  t.same(await store.create(session('b1', bob, at), soon()), [], 'another user\'s sessions count for that user')
  t.same(await store.create(session('k3', alice, at + 2), soon()), ['k1'], 'past it: the oldest, ended')
  t.same(await store.lookup({ sessionId: 'k1', tokenHash: 'k1' }), { status: 'unknown' }, 'its tokens are gone')
  t.match(await store.rotate({ sessionId: 'k2', tokenHash: 'k2' }, 'k2b', at + 3, soon()), { status: 'rotated' })
  t.same(await store.create(session('k4', alice, at + 4), soon()), ['k3'], 'a refreshed session is used: the other goes')
  t.match(await store.lookup({ sessionId: 'k2', tokenHash: 'k2b' }), { status: 'current' })
  t.same((await store.endUser('alice', soon())).sort(), ['k2', 'k4'], 'endUser: the ones the limit left')
  t.same(await store.endUser('bob', soon()), ['b1'])
  t.same(await store.create(session('k5', alice, at), soon()), [], 'and the user starts anew')
  await store.create(session('k6', alice, at + 10), soon())
  // The refresh lifetime lowered since the others were made: the new session expires first, and is kept.
  t.same(await store.create(session('k7', alice, at - 30_000), soon()), ['k5'], 'a new session that expires first: the oldest other goes')
  t.match(await store.lookup({ sessionId: 'k7', tokenHash: 'k7' }), { status: 'current' }, 'the new one is live')
  t.same((await store.endUser('alice', soon())).sort(), ['k6', 'k7'])
}

/**
 * `store` keeps 1 session a user, and fails to end a session (a dropped connection, a deadline past) while `endsFail.on`.
 * A login whose ending of the user's oldest fails leaves it live and listed: endUser (revokeUser), or the next login
 * past the limit, ends it. Not the memory store's: it ends a session and unlists it in one turn.
 */
async function limitFailureContract (t: Test, store: SessionStore, endsFail: { on: boolean }): Promise<void> {
  const at = Date.now() + 60_000
  const login = (id: string, expiresAt: number) => store.create({ id, identity: alice, tokenHash: id, expiresAt }, soon())
  const status = async (id: string) => (await store.lookup({ sessionId: id, tokenHash: id })).status
  await login('old', at)
  endsFail.on = true
  await t.rejects(login('new', at + 1), 'the login fails (503 to its client)')
  endsFail.on = false
  t.equal(await status('old'), 'current', 'the oldest lives on')
  t.ok((await store.endUser('alice', soon())).includes('old'), 'endUser finds it')
  t.equal(await status('old'), 'unknown', 'and ends it')

  await login('kept', at)
  endsFail.on = true
  await t.rejects(login('refused', at + 1))
  endsFail.on = false
  t.ok((await login('next', at + 2) ?? []).includes('kept'), 'the next login past the limit ends it')
  t.equal(await status('kept'), 'unknown')
  t.equal(await status('next'), 'current')
  await store.endUser('alice', soon())
}

/**
 * `store` keeps 1 session a user, and orders logins' checks against `endUser` (`checkBegins`): a login whose check began
 * before an endUser of its user began is not kept, whenever it is written; one that began after it is.
 */
async function checkBeganContract (t: Test, store: SessionStore): Promise<void> {
  const at = Date.now() + 60_000
  const login = (id: string, checkBegan: number) => store.create({ id, identity: alice, tokenHash: id, expiresAt: at }, soon(), checkBegan)
  const status = async (id: string) => (await store.lookup({ sessionId: id, tokenHash: id })).status
  const before = await store.checkBegins!()
  t.same(await login('kept', before), [], 'a login with no endUser since its check began: kept')
  const racing = await store.checkBegins!()
  t.same(await store.endUser('alice', soon()), ['kept'])
  t.same(await login('late', racing), ['late'], 'one whose check began before the endUser, written after it: ended at once')
  t.equal(await status('late'), 'unknown', 'its token is refused')
  t.same(await login('after', await store.checkBegins!()), [], 'one whose check began after the endUser: kept')
  t.equal(await status('after'), 'current')
  t.same(await store.create({ id: 'plain', identity: alice, tokenHash: 'plain', expiresAt: at }, soon()), ['after'],
    'a login without checkBegan: kept, and past the limit of one, the one before is ended')
  t.same(await login('refused', racing), ['refused'], 'one that is not kept ends none of the user\'s sessions past the limit')
  t.equal(await status('plain'), 'current')
  t.same(await store.endUser('alice', soon()), ['plain'], 'and is not listed')
}

/** `redis`, whose scripts that call `command` fail as over a dropped connection while `failing.on`. */
function failingScripts<Client extends RedisClient> (redis: Client, command: string, failing: { on: boolean }): Client {
  const evalScript = redis.eval.bind(redis) as (...args: unknown[]) => Promise<unknown>
  redis.eval = ((script: string, ...args: unknown[]) => failing.on && script.includes(`redis.call('${command}'`)
    ? Promise.reject(new Error('Connection is closed.'))
    : evalScript(script, ...args)) as Client['eval']
  return redis
}

t.test('memory', async t => {
  await sessionContract(t, new MemorySessionStore(), { atomic: true })
  await unrotateContract(t, new MemorySessionStore())
  await graceContract(t, new MemorySessionStore(), { atomic: true })
  await limitContract(t, new MemorySessionStore({ maxSessionsPerUser: 2 }))
})

t.test('Redis', async t => {
  const server = await RedisServer.start(t)
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  await sessionContract(t, new RedisSessionStore(redis, 'test:'), { atomic: true })
  await unrotateContract(t, new RedisSessionStore(redis, 'test:'))
  await graceContract(t, new RedisSessionStore(redis, 'test:'), { atomic: true })
  t.same(await redis.keys('test:{s:*'), [], 'an ended or expired session leaves no key behind')

  // A process of the build before rotates with the session's token hash alone, leaving the previous token's fields.
  const graced = new RedisSessionStore(redis, 'grace:')
  await graced.create({ id: 'g2', identity: alice, tokenHash: 'a', expiresAt: Date.now() + 60_000 }, soon())
  await graced.rotate({ sessionId: 'g2', tokenHash: 'a' }, 'b', Date.now() + 60_000, soon(), { ms: 60_000 })
  await redis.hset(redisKeys('grace:').session('g2'), 'tokenHash', 'c')
  t.same(await graced.lookup({ sessionId: 'g2', tokenHash: 'a' }), { status: 'reused', sessionId: 'g2' },
    'a token whose session has moved on past the one it was rotated to, by a process of the build before, is reuse')
  await graced.end('g2', soon())

  for (const key of await redis.keys('test:*')) t.ok(await redis.pttl(key) > 0, `${key} expires (with the user's last session, or an hour after the user's last endUser)`)
  await limitContract(t, new RedisSessionStore(redis, 'limit:', 2))
  t.same(await redis.keys('limit:{s:*'), [], 'the sessions the limit ended leave no key behind')
  await checkBeganContract(t, new RedisSessionStore(redis, 'began:', 1))
  t.same(await redis.keys('began:{s:*'), [], 'a session not kept leaves no key behind')
  const mark = await redis.pttl('began:{u:alice}:sessions-ended-at')
  t.ok(mark > 59 * 60_000 && mark <= 60 * 60_000, 'the mark of the user\'s last endUser stays an hour')
  // The clock's node away (on a cluster): the user's sessions end all the same, unmarked.
  const clockless = new RedisSessionStore(redis, 'clockless:', 1)
  clockless.checkBegins = () => Promise.reject(new Error('the clock\'s node is away'))
  await clockless.create({ id: 'n1', identity: alice, tokenHash: 'n1', expiresAt: Date.now() + 60_000 }, soon())
  t.same(await clockless.endUser('alice', soon()), ['n1'], 'endUser ends the sessions without the clock')
  t.same(await redis.keys('clockless:*'), [], 'and marks nothing')

  const store = new RedisSessionStore(redis, 'test:')
  const carol: Identity = { user: 'carol', role: null, admin: false }
  await store.create({ id: 'c1', identity: carol, tokenHash: 'c', expiresAt: Date.now() + 60_000 }, soon())
  t.same(await redis.zrange('test:{u:carol}:session-expiries', 0, -1), ['c1'], 'a user\'s sessions are listed under the user\'s hash tag')
  await redis.set('test:{u:carol}:session-expiries', 'not a set')
  t.same(await store.end('c1', soon()), carol, 'a session ends even when its user\'s set cannot be updated')
  t.same(await store.lookup({ sessionId: 'c1', tokenHash: 'c' }), { status: 'unknown' })
})

t.test('Redis: a session the limit fails to end stays on its user\'s set; one it ended goes, even if taking it off fails', async t => {
  const server = await RedisServer.start(t)
  const endsFail = { on: false }
  const redis = failingScripts(new Redis(server.url), 'DEL', endsFail)
  t.teardown(() => redis.disconnect())
  await limitFailureContract(t, new RedisSessionStore(redis, 'test:', 1), endsFail)

  const forgetFails = { on: false }
  const store = new RedisSessionStore(failingScripts(redis, 'ZREM', forgetFails), 'test:', 1)
  const at = Date.now() + 60_000
  await store.create({ id: 'first', identity: alice, tokenHash: 'first', expiresAt: at }, soon())
  forgetFails.on = true
  t.same(await store.create({ id: 'second', identity: alice, tokenHash: 'second', expiresAt: at + 1 }, soon()), ['first'],
    'a login whose taking off of the ended one fails succeeds: that one has ended')
  forgetFails.on = false
  t.same(await store.lookup({ sessionId: 'first', tokenHash: 'first' }), { status: 'unknown' })
  t.same(await store.endUser('alice', soon()), ['second'], 'endUser skips it')
  t.same(await redis.keys('test:*'), ['test:{u:alice}:sessions-ended-at'], 'and nothing is left but the mark of the endUser')
})

/** Waits until Redis's own clock, which expires its keys, has passed `at` (epoch milliseconds). */
async function redisPast (redis: Redis, at: number): Promise<void> {
  for (;;) {
    const [seconds, micros] = await redis.time()
    if (Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) > at) return
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

t.test('Redis: a user who keeps one session alive while others lapse keeps no more ids than live sessions', async t => {
  const server = await RedisServer.start(t)
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  const store = new RedisSessionStore(redis, 'test:')
  const dave: Identity = { user: 'dave', role: null, admin: false }
  const key = 'test:{u:dave}:session-expiries'
  const create = (id: string, expiresAt: number) => store.create({ id, identity: dave, tokenHash: id, expiresAt }, soon())
  await create('kept', Date.now() + 3_600_000)
  for (let round = 0; round < 3; round++) {
    // Lapsing in 50 ms by Redis's clock, which is the one that expires them.
    const lapse = Date.now() + 50
    for (let i = 0; i < 10; i++) await create(`lapsed-${round}-${i}`, lapse + i)
    await redisPast(redis, lapse + 10)
    const next = Date.now() + 3_600_000
    t.same(await store.rotate({ sessionId: 'kept', tokenHash: round === 0 ? 'kept' : `kept-${round - 1}` }, `kept-${round}`, next, soon()),
      { status: 'rotated', session: { id: 'kept', identity: dave, tokenHash: `kept-${round}`, expiresAt: next } })
    t.same(await redis.zrange(key, 0, -1), ['kept'], `round ${round}: the lapsed ones are gone from the set`)
  }
  await create('live', Date.now() + 3_600_000)
  const lapse = Date.now() + 50
  await create('lapsing', lapse)
  await redisPast(redis, lapse)
  t.same((await store.endUser('dave', soon())).sort(), ['kept', 'live'], 'endUser ends the live ones, and asks after no other')
})

t.test('Redis: a process whose clock runs ahead of Redis\'s neither forgets nor skips a live session', async t => {
  const clock = fakeClock(t, ['Date'])
  const server = await RedisServer.start(t)
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  const store = new RedisSessionStore(redis, 'test:')
  const frank: Identity = { user: 'frank', role: null, admin: false }
  // Both expire in a minute by Redis's clock; this process's clock then runs two minutes ahead.
  const inAMinute = Date.now() + 60_000
  await store.create({ id: 'earlier', identity: frank, tokenHash: 'e', expiresAt: inAMinute }, soon())
  clock.tick(120_000)
  await store.create({ id: 'later', identity: frank, tokenHash: 'l', expiresAt: inAMinute }, soon())
  t.same((await redis.zrange('test:{u:frank}:session-expiries', 0, -1)).sort(), ['earlier', 'later'], 'both stay on the user\'s set')
  t.same((await store.endUser('frank', soon())).sort(), ['earlier', 'later'], 'endUser ends both')
})

t.test('Redis: endUser also ends the sessions a process of 0.1.0 indexed in the plain set it kept', async t => {
  const server = await RedisServer.start(t)
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  const store = new RedisSessionStore(redis, 'test:')
  const erin: Identity = { user: 'erin', role: null, admin: false }
  await store.create({ id: 'new', identity: erin, tokenHash: 'n', expiresAt: Date.now() + 60_000 }, soon())
  await store.create({ id: 'old', identity: erin, tokenHash: 'o', expiresAt: Date.now() + 60_000 }, soon())
  // As 0.1.0 indexed it: in a plain set under `:sessions`, not in the sorted one.
  await redis.zrem('test:{u:erin}:session-expiries', 'old')
  await redis.sadd('test:{u:erin}:sessions', 'old')
  t.same((await store.endUser('erin', soon())).sort(), ['new', 'old'])
  t.same(await store.lookup({ sessionId: 'old', tokenHash: 'o' }), { status: 'unknown' }, 'the old one ended too')
})

// The two scripts of the build before, which listed a session and read the mark of endUser in one, and marked and
// read the set in the other: a process of it runs beside this one during a rolling deploy.
const beforeIndexScript = `${refuseLateLua}
refuseLate(ARGV[1])
if ARGV[5] ~= '' and tonumber(redis.call('GET', KEYS[2]) or '-1') >= tonumber(ARGV[5]) then return false end
redis.call('ZADD', KEYS[1], 'GT', ARGV[3], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', redisNow())
if redis.call('PEXPIRETIME', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIREAT', KEYS[1], ARGV[3]) end
return {}`
const beforeUserSessionsScript = `${refuseLateLua}
refuseLate(ARGV[1])
if ARGV[3] ~= '' then
  local ended = redis.call('GET', KEYS[3])
  if not ended or tonumber(ended) < tonumber(ARGV[3]) then ended = ARGV[3] end
  redis.call('SET', KEYS[3], ended, 'PX', ARGV[4])
end
local ids = redis.call('ZRANGE', KEYS[1], '+inf', '(' .. redisNow(), 'BYSCORE', 'REV', 'LIMIT', 0, ARGV[2])
if #ids == 0 and redis.call('TYPE', KEYS[2]).ok == 'set' then ids = redis.call('SRANDMEMBER', KEYS[2], ARGV[2]) end
return ids`

t.test('Redis: beside a process of the build before, a login racing an endUser on the other gets no session', async t => {
  const server = await RedisServer.start(t)
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  const store = new RedisSessionStore(redis, 'test:')
  const at = Date.now() + 60_000
  const keys = ['test:{u:alice}:session-expiries', 'test:{u:alice}:sessions', 'test:{u:alice}:sessions-ended-at']

  // Its login's check began, then this process's endUser read the set, then it lists its session.
  await store.create({ id: 'kept', identity: alice, tokenHash: 'kept', expiresAt: at }, soon())
  let racing = await store.checkBegins()
  t.same(await store.endUser('alice', soon()), ['kept'])
  t.equal(await redis.eval(beforeIndexScript, 2, keys[0]!, keys[2]!, soon(), 'theirs', at, 0, racing), null,
    'the login on the process before finds the mark: it does not list its session (and ends it)')

  // This process's login's check began, then the other's endUser marked and read the set, then it lists its session.
  racing = await store.checkBegins()
  t.same(await redis.eval(beforeUserSessionsScript, 3, ...keys, soon(), 500, await store.checkBegins(), 3_600_000), [])
  t.same(await store.create({ id: 'ours', identity: alice, tokenHash: 'ours', expiresAt: at }, soon(), racing), ['ours'],
    'the login on this process finds the mark of the other\'s: its session ends')
  t.same(await store.lookup({ sessionId: 'ours', tokenHash: 'ours' }), { status: 'unknown' })
  t.same(await redis.zrange(keys[0]!, 0, -1), [], 'and is taken off the set')
})

t.test('Redis Cluster', async t => {
  const cluster = await RedisCluster.start(t)
  const redis = cluster.client(t)
  await sessionContract(t, new RedisSessionStore(redis, 'test:'), { atomic: true })
  await unrotateContract(t, new RedisSessionStore(redis, 'test:'))
  await graceContract(t, new RedisSessionStore(redis, 'test:'), { atomic: true })
  await limitContract(t, new RedisSessionStore(redis, 'limit:', 2))
  const endsFail = { on: false }
  await limitFailureContract(t, new RedisSessionStore(failingScripts(cluster.client(t), 'DEL', endsFail), 'test:', 1), endsFail)
  await checkBeganContract(t, new RedisSessionStore(redis, 'began:', 1))
  t.same(await cluster.keys('test:{s:*'), [], 'an ended or expired session leaves no key behind')
  for (const key of await cluster.keys('test:*')) {
    t.match(key, /^test:\{u:\w+\}:(session-expiries|sessions-ended-at)$/, 'only users\' sets and marks of endUser are left')
    t.ok(await redis.pttl(key) > 0, `${key} expires`)
  }
})

t.test('a @fastify/session store, adapted', async t => {
  await sessionContract(t, fromFastifySessionStore(new MemoryStore(), { prefix: 'rt:' }), { atomic: true })
  await graceContract(t, fromFastifySessionStore(new MemoryStore(), { prefix: 'rt:' }), { atomic: true })
  // Read-then-write, it could bring back a session a logout ended meanwhile: a rotation stands.
  t.equal(fromFastifySessionStore(new MemoryStore()).unrotate, undefined, 'no unrotate')
  const records = new Map<string, unknown>()
  await limitContract(t, fromFastifySessionStore(new MemoryStore(records as Map<string, never>), { prefix: 'limit:', maxSessionsPerUser: 2 }))
  t.same([...records.keys()], [], 'the sessions the limit ended leave no record behind')

  const endsFail = { on: false }
  const memory = new MemoryStore(records as Map<string, never>)
  await limitFailureContract(t, fromFastifySessionStore({
    get: (id, callback) => memory.get(id, callback),
    set: (id, record, callback) => memory.set(id, record as never, callback),
    destroy: (id, callback) => endsFail.on && id.includes(':session:') ? callback(new Error('store down')) : memory.destroy(id, callback)
  }, { prefix: 'limit:', maxSessionsPerUser: 1 }), endsFail)
})

t.test('a store\'s maxSessionsPerUser is a whole number of at least 1, or Infinity', async t => {
  for (const maxSessionsPerUser of [0, -1, 1.5, NaN]) {
    t.throws(() => new MemorySessionStore({ maxSessionsPerUser }), { code: 'FST_REALTIME_INVALID_CONFIG' }, `memory: ${maxSessionsPerUser}`)
    t.throws(() => fromFastifySessionStore(new MemoryStore(), { maxSessionsPerUser }), { code: 'FST_REALTIME_INVALID_CONFIG' }, `adapted: ${maxSessionsPerUser}`)
  }
  const unlimited = new MemorySessionStore({ maxSessionsPerUser: Infinity })
  const at = Date.now() + 60_000
  for (let i = 0; i < 150; i++) await unlimited.create({ id: `s${i}`, identity: alice, tokenHash: 'h', expiresAt: at }, soon())
  t.same(await unlimited.create({ id: 's150', identity: alice, tokenHash: 'h', expiresAt: at }, soon()), [], 'Infinity: no limit')
})

t.test('the memory store and a @fastify/session store, adapted, keep 100 sessions a user by default', async t => {
  for (const store of [new MemorySessionStore(), fromFastifySessionStore(new MemoryStore())]) {
    const at = Date.now() + 60_000
    const created = []
    for (let i = 0; i < 100; i++) created.push(...await store.create({ id: `s${i}`, identity: alice, tokenHash: 'h', expiresAt: at + i }, soon()) ?? [])
    t.same(created, [], 'the first 100 stay')
    t.same(await store.create({ id: 's100', identity: alice, tokenHash: 'h', expiresAt: at + 100 }, soon()), ['s0'], 'the 101st ends the first')
  }
})
