// The in-memory session store (lib/auth/memory-session-store.ts): the session-store contract every store keeps
// (test/store-contract.ts), then what is its own: the copies it keeps, one winner of two rotations at once, and how
// it forgets expired sessions.
import t from 'tap'
import { MemorySessionStore } from '../../lib/auth/memory-session-store.js'
import type { Identity, RefreshSession } from '../../lib/index.js'
import { storeContract } from '../store-contract.js'
import { fakeClock } from '../clock.js'

const alice: Identity = { user: 'alice', role: 'editor', admin: false }
const bob: Identity = { user: 'bob', role: null, admin: true }
const hour = 3_600_000

function session (id: string, tokenHash: string, identity: Identity = alice, expiresAt = Date.now() + hour): RefreshSession {
  return { id, identity, tokenHash, expiresAt }
}

/** A deadline well ahead, for writes that must act. */
const soon = () => Date.now() + hour
/** The token `tokenHash` of session `sessionId`, as a store sees it. */
const token = (sessionId: string, tokenHash: string) => ({ sessionId, tokenHash })

t.test('MemorySessionStore keeps the session contract', async (t) => {
  await storeContract(t, new MemorySessionStore())
})

t.test('MemorySessionStore: create keeps its own copy of the session', async (t) => {
  const store = new MemorySessionStore()
  const created = session('s1', 'h1')
  await store.create(created, soon())
  created.tokenHash = 'tampered'
  t.match(await store.lookup(token('s1', 'h1')), { status: 'current', session: { tokenHash: 'h1' } })
})

t.test('MemorySessionStore: of two concurrent rotations of one token, exactly one rotates', async (t) => {
  const store = new MemorySessionStore()
  await store.create(session('s1', 'h1'), soon())
  const results = await Promise.all([
    store.rotate(token('s1', 'h1'), 'a', Date.now() + hour, soon()),
    store.rotate(token('s1', 'h1'), 'b', Date.now() + hour, soon())
  ])
  t.same(results.map(r => r.status).sort(), ['reused', 'rotated'])
})

t.test('MemorySessionStore: an expired session is unknown by its rotated tokens too, and presenting it forgets it', async (t) => {
  const store = new MemorySessionStore()
  await store.create(session('s1', 'h1'), soon())
  await store.rotate(token('s1', 'h1'), 'h2', Date.now() - 1, soon())
  t.same(await store.lookup(token('s1', 'h2')), { status: 'unknown' })
  t.same(await store.lookup(token('s1', 'h1')), { status: 'unknown' })
  t.equal(await store.end('s1', soon()), null, 'presenting it forgot it')

  await store.create(session('s2', 'x1', alice, Date.now() - 1), soon())
  t.same(await store.rotate(token('s2', 'x1'), 'x2', Date.now() + hour, soon()), { status: 'unknown' })
})

t.test('MemorySessionStore: writes past their deadline reject with DeadlinePassedError', async (t) => {
  const store = new MemorySessionStore()
  await store.create(session('s1', 'h1'), soon())
  const passed = Date.now() - 1
  await t.rejects(store.create(session('s2', 'x1'), passed), { name: 'DeadlinePassedError' })
  await t.rejects(store.rotate(token('s1', 'h1'), 'h2', Date.now() + hour, passed), { name: 'DeadlinePassedError' })
  await t.rejects(store.end('s1', passed), { name: 'DeadlinePassedError' })
  await t.rejects(store.endUser('alice', passed), { name: 'DeadlinePassedError' })
})

t.test('MemorySessionStore: endUser ends every session of that user only', async (t) => {
  const store = new MemorySessionStore()
  await store.create(session('a1', 'ha1', alice), soon())
  await store.create(session('a2', 'ha2', alice), soon())
  await store.create(session('b1', 'hb1', bob), soon())
  t.same((await store.endUser('alice', soon())).sort(), ['a1', 'a2'])
  t.same(await store.lookup(token('a1', 'ha1')), { status: 'unknown' })
  t.same(await store.lookup(token('a2', 'ha2')), { status: 'unknown' })
  t.match(await store.lookup(token('b1', 'hb1')), { status: 'current' })
})

t.test('MemorySessionStore: create sweeps expired sessions with sweepEveryMs: 0', async (t) => {
  const store = new MemorySessionStore({ sweepEveryMs: 0 })
  await store.create(session('old', 'h-old', alice, Date.now() - 1), soon())
  await store.create(session('live', 'h-live', bob), soon())
  await store.create(session('new', 'h-new', bob), soon())
  t.equal(await store.end('old', soon()), null, 'the expired session was swept')
  t.same(await store.end('live', soon()), bob, 'an unexpired one was kept')
})

t.test('MemorySessionStore: create sweeps once sweepEveryMs has passed, not before', async (t) => {
  const clock = fakeClock(t, ['Date'])
  const store = new MemorySessionStore({ sweepEveryMs: 60_000 })
  await store.create(session('old', 'h-old', alice, Date.now() + 1_000), soon())
  clock.tick(1_000)
  await store.create(session('new', 'h-new', bob), soon())
  t.same(await store.end('old', soon()), alice, 'still there: nobody presented it and no sweep ran')
  await store.create(session('older', 'h-older', alice, Date.now() + 1_000), soon())
  clock.tick(60_000)
  await store.create(session('newer', 'h-newer', bob), soon())
  t.equal(await store.end('older', soon()), null, 'swept a minute on')
})
