// The session-store contract, run against every implementation.
import type { Test } from 'tap'
import type { SessionStore } from '../lib/index.js'

export async function storeContract (t: Test, store: SessionStore): Promise<void> {
  const identity = { user: 'u1', role: 'editor', admin: false }
  const expiresAt = Date.now() + 60_000
  await store.create({ id: 's1', identity, tokenHash: 'h1', expiresAt })
  await store.create({ id: 's2', identity, tokenHash: 'x1', expiresAt })
  t.same(await store.lookup('h1'), { status: 'current', session: { id: 's1', identity, tokenHash: 'h1', expiresAt } }, 'lookup: current')
  t.same(await store.rotate('h1', 'h2', expiresAt + 1), { status: 'rotated', session: { id: 's1', identity, tokenHash: 'h2', expiresAt: expiresAt + 1 } }, 'rotate')
  t.same(await store.rotate('h1', 'h3', expiresAt), { status: 'reused', sessionId: 's1' }, 'rotate: a rotated hash is reuse')
  t.same(await store.lookup('h1'), { status: 'reused', sessionId: 's1' }, 'lookup: a rotated hash is reuse')
  t.same(await store.lookup('nope'), { status: 'unknown' }, 'lookup: unknown')
  t.same(await store.rotate('nope', 'h4', expiresAt), { status: 'unknown' }, 'rotate: unknown')
  t.same(await store.end('s1'), identity, 'end: the identity')
  t.same(await store.end('s1'), null, 'end: once')
  t.same(await store.lookup('h2'), { status: 'unknown' }, 'an ended session\'s tokens are gone')
  t.same(await store.endUser('u1'), ['s2'], 'endUser: the sessions it ended')
  t.same(await store.endUser('u1'), [], 'endUser: none left')

  await store.create({ id: 's3', identity, tokenHash: 'e1', expiresAt: Date.now() + 30 })
  await new Promise(resolve => setTimeout(resolve, 60))
  t.same(await store.lookup('e1'), { status: 'unknown' }, 'an expired session is unknown')
  t.same(await store.rotate('e1', 'e2', Date.now() + 60_000), { status: 'unknown' }, 'and cannot be rotated')
}
