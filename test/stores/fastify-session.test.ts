// A @fastify/session store serving as the refresh-session store, beyond the contract (test/stores/sessions.test.ts).
import t from 'tap'
import { MemoryStore } from '@fastify/session'
import { fromFastifySessionStore, type CallbackSessionStore, type SessionStore } from '../../lib/index.js'
import { admin, build, fakeClock, tenantsOn, until } from '../helpers.js'

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

const oneDay = 86_400_000

/**
 * A store that keeps a record as long as its `cookie.maxAge` says, a day without one, as memorystore's getTTL does
 * (better-sqlite3-session-store and connect-memcached read it too, and express-session writes it).
 */
function maxAgeStore (): CallbackSessionStore {
  const records = new Map<string, { record: unknown, until: number }>()
  return {
    get: (id, callback) => {
      const kept = records.get(id)
      setImmediate(() => callback(null, kept && kept.until > Date.now() ? structuredClone(kept.record) : undefined))
    },
    set: (id, record, callback) => {
      const maxAge = (record as { cookie?: { maxAge?: unknown } }).cookie?.maxAge
      records.set(id, { record: structuredClone(record), until: Date.now() + (typeof maxAge === 'number' ? Math.floor(maxAge) : oneDay) })
      setImmediate(callback)
    },
    destroy: (id, callback) => { records.delete(id); setImmediate(callback) }
  }
}

t.test('records carry their lifetime as cookie.maxAge too, for stores that keep them by it', async t => {
  const clock = fakeClock(t, ['Date'])
  const store = fromFastifySessionStore(maxAgeStore())
  const week = 7 * oneDay
  await store.create({ id: 's1', identity: { user: 'u1', role: null, admin: false }, tokenHash: 'h1', expiresAt: Date.now() + week }, Date.now() + 1_000)
  clock.tick(25 * 3_600_000)
  t.equal((await store.lookup({ sessionId: 's1', tokenHash: 'h1' })).status, 'current', 'a 7-day session is there after 25 h idle')
  await store.rotate({ sessionId: 's1', tokenHash: 'h1' }, 'h2', Date.now() + week, Date.now() + 1_000)
  clock.tick(week - 3_600_000)
  t.equal((await store.lookup({ sessionId: 's1', tokenHash: 'h2' })).status, 'current', 'and a refresh moves its lifetime on')
  t.same(await store.endUser('u1', Date.now() + 1_000), ['s1'], 'its user\'s list lives as long')
})

t.test('store errors fail closed over HTTP', async t => {
  const broken = new MemoryStore()
  broken.get = (_id, callback) => callback(new Error('store down'))
  const { app } = await build(t, { users: [admin], authRoutes: true, sessionStore: fromFastifySessionStore(broken) })
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  t.equal(login.statusCode, 503)
})

t.test('tenants given one store object and one prefix: boot warns once; on prefixes or stores of their own, not at all', async t => {
  const store = new MemoryStore()
  const shared = await tenantsOn(t, [0, 1, 2].map(() => ({ sessionStore: fromFastifySessionStore(store) })))
  t.equal(shared.warnings.length, 1, 'one warning for three tenants')
  t.equal(shared.warnings[0], 'another fastify-realtime in this process uses the same store with prefix "realtime:" (fromFastifySessionStore): the two share their sessions (a refresh token of one refreshes on the other). Unless they are one app, give each its own prefix')
  await shared.app.close()
  const apart = await tenantsOn(t, [
    { sessionStore: fromFastifySessionStore(store, { prefix: 'a:' }) },
    { sessionStore: fromFastifySessionStore(store, { prefix: 'b:' }) },
    { sessionStore: fromFastifySessionStore(new MemoryStore(), { prefix: 'a:' }) }
  ])
  t.same(apart.warnings, [], 'distinct prefixes or stores, and those of the app closed are free again')
})

t.test('a store that calls back ENOENT for a missing record (session-file-store) has no record there, not an error', async t => {
  const memory = new MemoryStore()
  const files: CallbackSessionStore = {
    get: (id, callback) => memory.get(id, (err, record) => callback(err ?? (record ? null : Object.assign(new Error(`ENOENT: no such file or directory, open '${id}.json'`), { code: 'ENOENT' })), record)),
    set: (id, record, callback) => memory.set(id, record as never, callback),
    destroy: (id, callback) => memory.destroy(id, callback)
  }
  const { app } = await build(t, { users: [admin], authRoutes: true, sessionStore: fromFastifySessionStore(files) })
  const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  t.equal(login.statusCode, 200, 'a login, its user with no list yet')
  const { refresh_token: first } = login.json().data
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: first } })).statusCode, 204)
  const refresh = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: first } })
  t.same([refresh.statusCode, refresh.json().errors[0].extensions.code], [401, 'INVALID_CREDENTIALS'], 'a logged-out token, its record gone')
  t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })).statusCode, 200, 'a login after the last logout')
  const broken = new MemoryStore()
  broken.get = (_id, callback) => callback(Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' }))
  const other = await build(t, { users: [admin], authRoutes: true, sessionStore: fromFastifySessionStore(broken) })
  t.equal((await other.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })).statusCode, 503, 'any other error is one')
})

t.test('a promise-style store is refused at its first call, on the app\'s log; a store whose async methods call back works', async t => {
  const records = new Map<string, unknown>()
  let calls = 0
  // As @mgcrea/fastify-session-redis-store: set(id, data, expiry), each method a promise, no callback.
  const promises = {
    get: async (id: string) => { calls++; return records.get(id) ?? null },
    set: async (id: string, record: object, _expiry?: number) => { calls++; records.set(id, record) },
    destroy: async (id: string) => { calls++; records.delete(id) }
  }
  const errors: { msg: string, err: { code: string } }[] = []
  const stream = { write: (line: string) => { errors.push(JSON.parse(line)) } }
  const { app } = await build(t, { users: [admin], authRoutes: true, sessionStore: fromFastifySessionStore(promises as never) }, { logger: { level: 'error', stream } })
  const login = () => app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  t.equal((await login()).statusCode, 503)
  t.same(errors.map(line => [line.err.code, line.msg]), [['FST_REALTIME_INVALID_CONFIG', 'Invalid configuration: sessionStore: fromFastifySessionStore takes a store whose get, set and destroy call back, as @fastify/session\'s do; this one\'s set answered with a promise and never called back (a promise-style store, such as @mgcrea/fastify-session-redis-store)']])
  const callsBefore = calls
  t.equal((await login()).statusCode, 503, 'and every call after it')
  t.equal(calls, callsBefore, 'without asking the store')
  t.equal(errors.length, 1, 'told once')

  // As connect-redis: async methods whose callback has a default, so that they declare fewer parameters.
  const memory = new MemoryStore()
  const both = {
    get: async (id: string, callback = (_err: unknown, _record?: unknown) => {}) => { memory.get(id, callback) },
    set: async (id: string, record: object, callback = (_err?: unknown) => {}) => { memory.set(id, record as never, callback) },
    destroy: async (id: string, callback = (_err?: unknown) => {}) => { memory.destroy(id, callback) }
  }
  const other = await build(t, { users: [admin], authRoutes: true, sessionStore: fromFastifySessionStore(both) })
  const logged = await other.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  t.equal(logged.statusCode, 200)
  t.equal((await other.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: logged.json().data.refresh_token } })).statusCode, 200)
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

t.test('of two uses of one refresh token at once on one process, one refreshes and the other is reuse', async t => {
  // A store across a network: both reads of a rotation land before either write, unless the second waits its turn.
  const remote = behind(new MemoryStore(), 2)
  const { app } = await build(t, { users: [admin], authRoutes: true, sessionStore: fromFastifySessionStore(remote) })
  const login = async () => (await app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })).json().data.refresh_token as string
  const post = (url: string, token: string) => app.inject({ method: 'POST', url, payload: { refresh_token: token } })
  for (let round = 0; round < 5; round++) {
    const token = await login()
    const both = await Promise.all([post('/auth/refresh', token), post('/auth/refresh', token)])
    t.same(both.map(answer => answer.statusCode).sort(), [200, 401], `round ${round}: one refreshes, the other is reuse`)
    const winner = both.find(answer => answer.statusCode === 200)!.json().data.refresh_token
    t.equal((await post('/auth/refresh', winner)).statusCode, 401, 'and the reuse ended the session')
  }
})

t.test('a store answering each call in 400 ms rotates within the write deadline: the list and the record are written at once', async t => {
  const clock = fakeClock(t, ['Date', 'setTimeout', 'clearTimeout'])
  const store = fromFastifySessionStore(behind(new MemoryStore(), 400))
  const expiresAt = Date.now() + 60_000
  const created = store.create({ id: 's1', identity: { user: 'u1', role: null, admin: false }, tokenHash: 'h1', expiresAt }, Date.now() + 1_000)
  await clock.tickAsync(1_200)
  await created
  // The plugin gives a write a second from the call's start (a third of its 3 s store timeout).
  const rotated = store.rotate({ sessionId: 's1', tokenHash: 'h1' }, 'h2', expiresAt, Date.now() + 1_000)
  await clock.tickAsync(1_200)
  t.match(await rotated, { status: 'rotated' }, 'its last write starts 800 ms in')
  const found = store.lookup({ sessionId: 's1', tokenHash: 'h2' })
  await clock.tickAsync(400)
  t.match(await found, { status: 'current' })
})

t.test('a session ended while it rotates stays ended', async t => {
  const store = fromFastifySessionStore(behind(new MemoryStore(), 2))
  const expiresAt = Date.now() + 60_000
  await store.create({ id: 's1', identity: { user: 'u1', role: null, admin: false }, tokenHash: 'h1', expiresAt }, Date.now() + 1_000)
  const [rotated] = await Promise.all([
    store.rotate({ sessionId: 's1', tokenHash: 'h1' }, 'h2', expiresAt, Date.now() + 1_000),
    store.end('s1', Date.now() + 1_000)
  ])
  t.equal(rotated.status, 'rotated', 'the rotation came first')
  t.same(await store.lookup({ sessionId: 's1', tokenHash: 'h2' }), { status: 'unknown' }, 'and the end after it, which it did not undo')
})

t.test('a store that never answers one login holds the user\'s next one a minute, not for good', async t => {
  const clock = fakeClock(t, ['setTimeout', 'clearTimeout'])
  const records = new Map<string, unknown>()
  const store = fromFastifySessionStore({
    get: (id, callback) => setImmediate(() => callback(null, structuredClone(records.get(id)))),
    set: (id, record, callback) => {
      // The list write of the first login never answers.
      if ((record as { sessions?: { id: string }[] }).sessions?.some(listed => listed.id === 's1')) return
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
  t.same((records.get('realtime:user-sessions:u1') as { sessions: { id: string }[] }).sessions.map(listed => listed.id), ['s2'])
})

t.test('a user\'s list holds the live sessions only: ended and expired ones go at the next change, a rotated one stays', async t => {
  const clock = fakeClock(t, ['Date'])
  const records = new Map<string, { sessions?: { id: string, expiresAt: number }[] }>()
  const store = fromFastifySessionStore(new MemoryStore(records as Map<string, never>))
  const identity = { user: 'u1', role: null, admin: false }
  const listed = () => records.get('realtime:user-sessions:u1')?.sessions?.map(session => session.id)
  const create = (id: string, ttl = 60_000) => store.create({ id, identity, tokenHash: id, expiresAt: Date.now() + ttl }, Date.now() + 1_000)
  for (let i = 0; i < 100; i++) {
    await create(`gone-${i}`)
    await store.end(`gone-${i}`, Date.now() + 1_000)
  }
  t.equal(listed(), undefined, '100 logins each followed by its logout: no list left')
  await create('lapses', 1_000)
  await create('rotated', 1_000)
  await store.rotate({ sessionId: 'rotated', tokenHash: 'rotated' }, 'rotated-2', Date.now() + 60_000, Date.now() + 1_000)
  clock.tick(2_000)
  await create('live')
  t.same(listed(), ['rotated', 'live'], 'the lapsed one is gone; the rotated one lives on, and stays')
  t.same(await store.endUser('u1', Date.now() + 1_000), ['live', 'rotated'], 'endUser ends them, newest first')
  t.equal(listed(), undefined)
})

t.test('a lapsed session\'s record is destroyed once seen lapsed, for stores that keep records until told', async t => {
  const clock = fakeClock(t, ['Date'])
  const records = new Map<string, unknown>()
  const store = fromFastifySessionStore(new MemoryStore(records as Map<string, never>))
  const create = (user: string, id: string, ttl: number) =>
    store.create({ id, identity: { user, role: null, admin: false }, tokenHash: id, expiresAt: Date.now() + ttl }, Date.now() + 1_000)
  for (let i = 0; i < 100; i++) await create(`u${i % 10}`, `lapses-${i}`, 1_000)
  await create('u0', 'looked-up', 1_000)
  clock.tick(2_000)
  t.same(await store.lookup({ sessionId: 'looked-up', tokenHash: 'looked-up' }), { status: 'unknown' })
  for (let i = 0; i < 10; i++) await create(`u${i}`, `live-${i}`, 60_000)
  // Not waited for by the calls that found them lapsed.
  for (let turn = 0; turn < 5; turn++) await new Promise(resolve => setImmediate(resolve))
  t.same([...records.keys()].filter(key => key.includes(':session:')).sort(), Array.from({ length: 10 }, (_, i) => `realtime:session:live-${i}`),
    'the ten live sessions are left, and their ten lists')
  t.equal(records.size, 20)
})

t.test('a listed session whose record lives on (refreshed on another process) is not destroyed with its list entry', async t => {
  const clock = fakeClock(t, ['Date'])
  const records = new Map<string, unknown>()
  const store = fromFastifySessionStore(new MemoryStore(records as Map<string, never>))
  const identity = { user: 'u1', role: null, admin: false }
  await store.create({ id: 's1', identity, tokenHash: 'h1', expiresAt: Date.now() + 1_000 }, Date.now() + 1_000)
  // Another process's refresh, its list write lost: the record moved on, the list did not.
  records.set('realtime:session:s1', { ...records.get('realtime:session:s1') as object, expiresAt: Date.now() + 60_000 })
  clock.tick(2_000)
  await store.create({ id: 's2', identity, tokenHash: 'h2', expiresAt: Date.now() + 60_000 }, Date.now() + 1_000)
  for (let turn = 0; turn < 5; turn++) await new Promise(resolve => setImmediate(resolve))
  t.match(await store.lookup({ sessionId: 's1', tokenHash: 'h1' }), { status: 'current' })
})

t.test('a list of plain ids (as 0.1.0 wrote it) is read, its ids expiring with it', async t => {
  const records = new Map<string, unknown>()
  const store = fromFastifySessionStore(new MemoryStore(records as Map<string, never>))
  const identity = { user: 'u1', role: null, admin: false }
  const create = (id: string) => store.create({ id, identity, tokenHash: id, expiresAt: Date.now() + 60_000 }, Date.now() + 1_000)
  await create('old')
  await create('lapsed')
  records.set('realtime:user-sessions:u1', { sessions: ['old'], cookie: { expires: new Date(Date.now() + 60_000).toISOString() } })
  await create('new')
  t.same((records.get('realtime:user-sessions:u1') as { sessions: { id: string }[] }).sessions.map(session => session.id), ['old', 'new'])
  records.set('realtime:user-sessions:u1', { sessions: ['old', 'new', 'lapsed'], cookie: { expires: new Date(Date.now() - 1).toISOString() } })
  t.same(await store.endUser('u1', Date.now() + 1_000), [], 'a list past its expiry holds nothing')
  records.set('realtime:user-sessions:u1', { sessions: ['old', 'new'], cookie: { expires: new Date(Date.now() + 60_000).toISOString() } })
  t.same((await store.endUser('u1', Date.now() + 1_000)).sort(), ['new', 'old'])
})

t.test('endUser ends the newest first, a batch at a time: one that runs out of time has ended some, the next goes on', async t => {
  const clock = fakeClock(t, ['Date'])
  const records = new Map<string, unknown>()
  const memory = new MemoryStore(records as Map<string, never>)
  let runOut = false
  const store = fromFastifySessionStore({
    get: (id, callback) => memory.get(id, callback),
    destroy: (id, callback) => memory.destroy(id, callback),
    set: (id, record, callback) => memory.set(id, record as never, (err?: unknown) => {
      // Time runs out once the first batch is off the list: the clock jumps past the call's deadline.
      if (runOut && id.includes('user-sessions')) { runOut = false; clock.tick(60_000) }
      callback(err)
    })
  }, { maxSessionsPerUser: 200 })
  const identity = { user: 'u1', role: null, admin: false }
  const ids = Array.from({ length: 120 }, (_, i) => `s${i}`)
  for (const [i, id] of ids.entries()) await store.create({ id, identity, tokenHash: id, expiresAt: Date.now() + 600_000 + i }, Date.now() + 1_000)
  const live = async () => (await Promise.all(ids.map(async id => (await store.lookup({ sessionId: id, tokenHash: id })).status === 'current')))
  runOut = true
  await t.rejects(store.endUser('u1', Date.now() + 1_000), 'out of time: it fails')
  const left = await live()
  t.same([left.indexOf(false), left.lastIndexOf(true)], [70, 69], 'it has ended the newest 50, and no other')
  t.equal((records.get('realtime:user-sessions:u1') as { sessions: unknown[] }).sessions.length, 70, 'and taken them off the list')
  t.equal((await store.endUser('u1', Date.now() + 1_000)).length, 70, 'the next one ends the rest')
  t.same((await live()).filter(Boolean), [])
})

/** @fastify/session's MemoryStore across a network: each call answered `ms` later, its act too. */
function behind (memory: MemoryStore, ms: number): CallbackSessionStore {
  const later = (answer: () => void) => { setTimeout(answer, ms) }
  return {
    get: (id, callback) => later(() => memory.get(id, callback)),
    set: (id, record, callback) => later(() => memory.set(id, record as never, callback)),
    destroy: (id, callback) => later(() => memory.destroy(id, callback))
  }
}

/**
 * A store `ms` away whose calls act at once and answer `ms` later (on the fake clock), so that a read and a write of
 * two changes can cross: what `records` holds is what the store holds.
 */
function remoteStore (records: Map<string, unknown>, ms: () => number): CallbackSessionStore {
  const later = (answer: () => void) => { setTimeout(answer, ms()) }
  return {
    get: (id, callback) => { const record = structuredClone(records.get(id)); later(() => callback(null, record)) },
    set: (id, record, callback) => { records.set(id, structuredClone(record)); later(() => callback()) },
    destroy: (id, callback) => { records.delete(id); later(() => callback()) }
  }
}

t.test('a rotation in flight as endUser (revokeUser) ends its session does not bring it back', async t => {
  const clock = fakeClock(t, ['Date', 'setTimeout', 'clearTimeout'])
  const identity = { user: 'u1', role: null, admin: false }
  // endUser reads the list then the record, and destroys it 100 ms in: a rotation that read the record before that
  // wrote it back once its read answered (measured: at 50 and 75 ms).
  for (const offset of [0, 25, 50, 75, 100, 125, 150]) {
    const records = new Map<string, unknown>()
    const store = fromFastifySessionStore(remoteStore(records, () => 50))
    const created = store.create({ id: 's1', identity, tokenHash: 'h1', expiresAt: Date.now() + 60_000 }, Date.now() + 1_000)
    await clock.tickAsync(200)
    await created
    const ended = store.endUser('u1', Date.now() + 3_000)
    await clock.tickAsync(offset)
    const rotated = store.rotate({ sessionId: 's1', tokenHash: 'h1' }, 'h2', Date.now() + 60_000, Date.now() + 1_000)
    await clock.tickAsync(1_000)
    const [endedIds, rotation] = await Promise.all([ended, rotated])
    t.same(endedIds, ['s1'], `${offset} ms: endUser ended the session`)
    t.same([...records.keys()], [], `${offset} ms: the rotation (${rotation.status}) left no record and no list behind`)
    const next = store.lookup({ sessionId: 's1', tokenHash: 'h2' })
    await clock.tickAsync(50)
    t.same(await next, { status: 'unknown' }, `${offset} ms: its next token refreshes nothing`)
  }
})

t.test('a rotation in flight as a login past the limit ends its session does not bring it back', async t => {
  const clock = fakeClock(t, ['Date', 'setTimeout', 'clearTimeout'])
  const identity = { user: 'u1', role: null, admin: false }
  for (const offset of [0, 50, 100, 150, 200, 250]) {
    const records = new Map<string, unknown>()
    const store = fromFastifySessionStore(remoteStore(records, () => 50), { maxSessionsPerUser: 1 })
    const create = (id: string) => store.create({ id, identity, tokenHash: id, expiresAt: Date.now() + 60_000 }, Date.now() + 1_000)
    const created = create('s1')
    await clock.tickAsync(200)
    await created
    const login = create('s2')
    await clock.tickAsync(offset)
    const rotated = store.rotate({ sessionId: 's1', tokenHash: 's1' }, 'h2', Date.now() + 60_000, Date.now() + 1_000)
    await clock.tickAsync(1_000)
    const [ended, rotation] = await Promise.all([login, rotated])
    t.same(ended, ['s1'], `${offset} ms: the login ended the other session`)
    t.same([...records.keys()].sort(), ['realtime:session:s2', 'realtime:user-sessions:u1'], `${offset} ms: the rotation (${rotation.status}) did not bring it back`)
    t.same((records.get('realtime:user-sessions:u1') as { sessions: { id: string }[] }).sessions.map(session => session.id), ['s2'], `${offset} ms: the list holds the login's`)
  }
})

t.test('a read that saw a session lapse just before it was refreshed does not destroy the refreshed record', async t => {
  const clock = fakeClock(t, ['Date', 'setTimeout', 'clearTimeout'])
  const records = new Map<string, unknown>()
  let answerIn = 50
  let stale: ReturnType<SessionStore['lookup']> | undefined
  const remote = remoteStore(records, () => answerIn)
  const store = fromFastifySessionStore({
    ...remote,
    set: (id, record, callback) => {
      // Just before the rotation's write lands, a lookup reads the record, and is answered once it has lapsed.
      if (id === 'realtime:session:s1' && (record as { tokenHash?: string }).tokenHash === 'h2' && !stale) {
        answerIn = 200
        stale = store.lookup({ sessionId: 's1', tokenHash: 'h1' })
        answerIn = 50
      }
      remote.set(id, record, callback)
    }
  })
  const expiresAt = Date.now() + 1_000
  const created = store.create({ id: 's1', identity: { user: 'u1', role: null, admin: false }, tokenHash: 'h1', expiresAt }, Date.now() + 1_000)
  await clock.tickAsync(200)
  await created
  await clock.tickAsync(expiresAt - 150 - Date.now())
  const rotated = store.rotate({ sessionId: 's1', tokenHash: 'h1' }, 'h2', Date.now() + 60_000, Date.now() + 1_000)
  await clock.tickAsync(1_000)
  t.match(await rotated, { status: 'rotated' }, 'the rotation writes before the session lapses')
  t.same(await stale, { status: 'unknown' }, 'the read before it finds it lapsed')
  const next = store.lookup({ sessionId: 's1', tokenHash: 'h2' })
  await clock.tickAsync(50)
  t.match(await next, { status: 'current' }, 'and the refreshed record lives on')
})

t.test('rotations, logins (past the limit), logouts and endUsers of one user at once all settle, and leave no session unlisted', async t => {
  const clock = fakeClock(t, ['Date', 'setTimeout', 'clearTimeout'])
  // A seeded generator, so that a failure replays.
  let seed = 42
  const random = () => { seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648; return seed / 2_147_483_648 }
  const records = new Map<string, unknown>()
  // A limit of 5, so that logins end sessions too.
  const store = fromFastifySessionStore(remoteStore(records, () => Math.floor(random() * 20)), { maxSessionsPerUser: 5 })
  const identity = { user: 'u1', role: null, admin: false }
  const deadline = () => Date.now() + 5_000
  const tokens = new Map<string, string>()
  const login = async (id: string) => {
    await store.create({ id, identity, tokenHash: `${id}-0`, expiresAt: Date.now() + 60_000 }, deadline())
    tokens.set(id, `${id}-0`)
  }
  const refresh = async (id: string, round: number) => {
    const token = tokens.get(id)
    if (!token) return
    const next = `${id}-${round}`
    if ((await store.rotate({ sessionId: id, tokenHash: token }, next, Date.now() + 60_000, deadline())).status === 'rotated') tokens.set(id, next)
  }
  const early = Promise.all([0, 1, 2, 3, 4].map(i => login(`early-${i}`)))
  await clock.tickAsync(200)
  await early
  const calls: Promise<unknown>[] = []
  let settled = 0
  const call = (change: () => Promise<unknown>) => { calls.push(change().finally(() => { settled++ })) }
  for (let round = 1; round <= 20; round++) {
    for (let i = 0; i < 5; i++) call(() => refresh(`early-${i}`, round))
    call(() => login(`late-${round}`))
    if (round % 3 === 0) call(() => store.end(`early-${round % 5}`, deadline()))
    if (round % 4 === 0) call(() => store.endUser('u1', deadline()))
    if (round % 2 === 0) call(() => refresh(`late-${round - 1}`, round))
    await clock.tickAsync(Math.floor(random() * 15))
  }
  // Well before a deadline (5 s), let alone the minute past it after which a turn stops waiting for the one before.
  await clock.tickAsync(4_000)
  t.equal(settled, calls.length, `all ${calls.length} calls settled`)
  const outcomes = await Promise.allSettled(calls)
  t.same(outcomes.filter(outcome => outcome.status === 'rejected'), [], 'none failed')
  const list = records.get('realtime:user-sessions:u1') as { sessions: { id: string }[] } | undefined
  const listed = new Set(list?.sessions.map(session => session.id))
  const kept = [...records.keys()].filter(key => key.includes(':session:')).map(key => key.slice('realtime:session:'.length))
  t.same(kept.filter(id => !listed.has(id)), [], 'every session kept is on the list, within reach of endUser')
  const last = store.endUser('u1', deadline())
  await clock.tickAsync(1_000)
  t.same((await last).sort(), kept.sort(), 'which ends them')
  t.same([...records.keys()], [], 'and leaves nothing behind')
})
