// A @fastify/session store serving as the refresh-session store, beyond the contract (test/stores/sessions.test.ts).
import t from 'tap'
import { MemoryStore } from '@fastify/session'
import { fromFastifySessionStore } from '../../lib/index.js'
import { admin, build, fakeClock, until } from '../helpers.js'

t.test('records carry their expiry as cookie.expires, for stores that expire by it', async t => {
  const records = new Map<string, { cookie: { expires: string } }>()
  const store = fromFastifySessionStore(new MemoryStore(records as Map<string, never>))
  const expiresAt = Date.now() + 60_000
  await store.create({ id: 's1', identity: { user: 'u1', role: null, admin: false }, tokenHash: 'h1', expiresAt }, Date.now() + 1_000)
  t.same([...records.keys()].sort(), ['realtime:session:s1', 'realtime:user-sessions:u1'], 'one record per session, one per user')
  await store.rotate({ sessionId: 's1', tokenHash: 'h1' }, 'h2', expiresAt, Date.now() + 1_000)
  t.equal(records.size, 2, 'and no more after a rotation')
  for (const record of records.values()) t.equal(record.cookie.expires, new Date(expiresAt).toISOString())
})

t.test('store errors fail closed over HTTP', async t => {
  const broken = new MemoryStore()
  broken.get = (_id, callback) => callback(new Error('store down'))
  const { app } = await build(t, { users: [admin], authRoutes: true, sessionStore: fromFastifySessionStore(broken) })
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  t.equal(login.statusCode, 503)
})

t.test('the plugin logs in, refreshes and logs out through an adapted store', async t => {
  const { app } = await build(t, { users: [admin], authRoutes: true, sessionStore: fromFastifySessionStore(new MemoryStore()) })
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  const { refresh_token: first } = login.json().data
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: first } })
  t.equal(refreshed.statusCode, 200)
  const { refresh_token: second } = refreshed.json().data
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: second } })).statusCode, 204)
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: second } })).statusCode, 401)
})

t.test('logins of one user at once are all on its list, so that endUser ends every one; a failed change blocks none', async t => {
  // A store across a network: every answer comes a moment later, so that the changes of the list overlap.
  const records = new Map<string, unknown>()
  let failing = false
  const later = (answer: () => void) => { setTimeout(answer, 2) }
  const store = fromFastifySessionStore({
    get: (id, callback) => later(() => callback(null, structuredClone(records.get(id)))),
    set: (id, record, callback) => later(() => {
      if (failing && id.includes('user-sessions')) return callback(new Error('store down'))
      records.set(id, record)
      callback()
    }),
    destroy: (id, callback) => later(() => { records.delete(id); callback() })
  })
  const identity = { user: 'u1', role: null, admin: false }
  const create = (id: string) => store.create({ id, identity, tokenHash: id, expiresAt: Date.now() + 60_000 }, Date.now() + 1_000)
  await Promise.all(['s1', 's2', 's3', 's4', 's5'].map(create))
  failing = true
  await t.rejects(async () => { await create('s6') }, 'a change the store refuses fails its own login')
  failing = false
  await create('s7')
  t.same((await store.endUser('u1', Date.now() + 1_000)).sort(), ['s1', 's2', 's3', 's4', 's5', 's7'], 'every session on the list is ended')
})

t.test('a store that never answers one login holds the user\'s next one a minute, not for good', async t => {
  const clock = fakeClock(t, ['setTimeout', 'clearTimeout'])
  const records = new Map<string, unknown>()
  const store = fromFastifySessionStore({
    get: (id, callback) => setImmediate(() => callback(null, structuredClone(records.get(id)))),
    set: (id, record, callback) => {
      // The list write of the first login never answers.
      if ((record as { sessions?: string[] }).sessions?.includes('s1')) return
      setImmediate(() => { records.set(id, record); callback() })
    },
    destroy: (id, callback) => setImmediate(() => { records.delete(id); callback() })
  })
  const identity = { user: 'u1', role: null, admin: false }
  const create = (id: string) => store.create({ id, identity, tokenHash: id, expiresAt: Date.now() + 60_000 }, Date.now() + 1_000)
  let first = 'pending'
  create('s1').then(() => { first = 'answered' }, () => { first = 'failed' })
  await until(() => records.has('realtime:session:s1'))
  let second = false
  const next = create('s2').then(() => { second = true })
  await new Promise(resolve => setImmediate(resolve))
  t.notOk(second, 'the next waits for the one before')
  clock.tick(30_000)
  await new Promise(resolve => setImmediate(resolve))
  t.notOk(second, 'a write may still land for a minute after its deadline')
  clock.tick(31_000) // past the first's deadline (1 s) and the minute after it
  await next
  t.ok(second, 'then goes on')
  t.equal(first, 'pending', 'the stuck one is still stuck, and no longer in the way')
  t.same((records.get('realtime:user-sessions:u1') as { sessions: string[] }).sessions, ['s2'])
})
