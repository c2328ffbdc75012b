// What the memory session store does beyond the contract (test/stores/sessions.test.ts): it forgets expired sessions
// that nobody presents again.
import t from 'tap'
import { MemorySessionStore } from '../../lib/stores/sessions/memory.js'
import type { Identity, RefreshSession } from '../../lib/index.js'
import { fakeClock } from '../clock.js'

const alice: Identity = { user: 'alice', role: 'editor', admin: false }
const bob: Identity = { user: 'bob', role: null, admin: true }
const hour = 3_600_000

function session (id: string, tokenHash: string, identity: Identity = alice, expiresAt = Date.now() + hour): RefreshSession {
  return { id, identity, tokenHash, expiresAt }
}

/** A deadline well ahead, for writes that must act. */
const soon = () => Date.now() + hour

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

t.test('MemorySessionStore: a wall clock stepped back (NTP) during a rotation\'s grace lengthens it not a bit', async (t) => {
  const clock = fakeClock(t)
  const store = new MemorySessionStore()
  await store.create(session('s', 'h-a'), soon())
  await store.rotate({ sessionId: 's', tokenHash: 'h-a' }, 'h-b', Date.now() + hour, soon(), { ms: 10_000 })
  t.match(await store.lookup({ sessionId: 's', tokenHash: 'h-a' }), { status: 'previous' }, 'within the grace')
  clock.setSystemTime(Date.now() - hour)
  clock.tick(10_000)
  t.same(await store.lookup({ sessionId: 's', tokenHash: 'h-a' }), { status: 'reused', sessionId: 's' }, 'past it by the timers: reuse, not an hour more')
  t.match(await store.lookup({ sessionId: 's', tokenHash: 'h-b' }), { status: 'current' })
})
