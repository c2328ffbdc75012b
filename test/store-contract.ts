// The session-store contract, run against every implementation.
import type { Test } from 'tap'
import type { SessionStore } from '../lib/index.js'

/** A deadline well ahead: the write acts. */
const soon = () => Date.now() + 10_000
/** A deadline that has passed (by more than any clock's rounding): the write must not act. */
const passed = () => Date.now() - 1_000

export async function storeContract (t: Test, store: SessionStore): Promise<void> {
  const identity = { user: 'u1', role: 'editor', admin: false }
  const expiresAt = Date.now() + 60_000
  const s1 = (tokenHash: string) => ({ sessionId: 's1', tokenHash })
  await store.create({ id: 's1', identity, tokenHash: 'h1', expiresAt }, soon())
  await store.create({ id: 's2', identity, tokenHash: 'x1', expiresAt }, soon())
  t.same(await store.lookup(s1('h1')), { status: 'current', session: { id: 's1', identity, tokenHash: 'h1', expiresAt } }, 'lookup: current')
  t.same(await store.rotate(s1('h1'), 'h2', expiresAt + 1, soon()), { status: 'rotated', session: { id: 's1', identity, tokenHash: 'h2', expiresAt: expiresAt + 1 } }, 'rotate')
  t.same(await store.rotate(s1('h1'), 'h3', expiresAt, soon()), { status: 'reused', sessionId: 's1' }, 'rotate: a rotated token is reuse')
  t.same(await store.lookup(s1('h1')), { status: 'reused', sessionId: 's1' }, 'lookup: a rotated token is reuse')
  t.same(await store.lookup(s1('forged')), { status: 'reused', sessionId: 's1' }, 'lookup: any other hash naming a live session is reuse')
  t.same(await store.lookup({ sessionId: 'nope', tokenHash: 'h2' }), { status: 'unknown' }, 'lookup: unknown session')
  t.same(await store.rotate({ sessionId: 'nope', tokenHash: 'h2' }, 'h4', expiresAt, soon()), { status: 'unknown' }, 'rotate: unknown session')

  await t.rejects(store.rotate(s1('h2'), 'late', expiresAt, passed()), 'rotate past its deadline: rejected')
  await t.rejects(store.create({ id: 's9', identity, tokenHash: 'z1', expiresAt }, passed()), 'create past its deadline: rejected')
  await t.rejects(store.end('s1', passed()), 'end past its deadline: rejected')
  await t.rejects(store.endUser('u1', passed()), 'endUser past its deadline: rejected')
  t.match(await store.lookup(s1('h2')), { status: 'current' }, 'and none of them acted')
  t.same(await store.lookup({ sessionId: 's9', tokenHash: 'z1' }), { status: 'unknown' })
  t.match(await store.lookup({ sessionId: 's2', tokenHash: 'x1' }), { status: 'current' })

  t.same(await store.end('s1', soon()), identity, 'end: the identity')
  t.same(await store.end('s1', soon()), null, 'end: once')
  t.same(await store.lookup(s1('h2')), { status: 'unknown' }, 'an ended session\'s tokens are gone')
  t.same(await store.endUser('u1', soon()), ['s2'], 'endUser: the sessions it ended')
  t.same(await store.endUser('u1', soon()), [], 'endUser: none left')

  await store.create({ id: 's3', identity, tokenHash: 'e1', expiresAt: Date.now() + 30 }, soon())
  await new Promise(resolve => setTimeout(resolve, 60))
  t.same(await store.lookup({ sessionId: 's3', tokenHash: 'e1' }), { status: 'unknown' }, 'an expired session is unknown')
  t.same(await store.rotate({ sessionId: 's3', tokenHash: 'e1' }, 'e2', Date.now() + 60_000, soon()), { status: 'unknown' }, 'and cannot be rotated')
}
