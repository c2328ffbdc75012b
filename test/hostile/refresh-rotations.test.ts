// Refresh sessions (PROTOCOL.md section 11): the state kept for reuse detection is constant per session, whatever the
// number of rotations. A client rotates one session 1,000 times against a live server; the store holds no more after
// than before (the memory store: the entries of its maps and sets, private ones included, read through the inspector
// since the heap's own noise is larger than the growth; Redis: its keys and their MEMORY USAGE, where even a byte kept
// per rotation would show). Reuse detection still holds at the end.
import t, { type Test } from 'tap'
import { Session, type Runtime } from 'node:inspector/promises'
import { Redis } from 'ioredis'
import { MemorySessionStore } from '../../lib/index.js'
import { admin, build, type Built } from '../helpers.js'
import { RedisServer } from '../redis-server.js'

const rotations = 1_000

/** How many entries the maps and sets among `object`'s own fields (private ones included) hold. */
async function entries (t: Test, object: object): Promise<number> {
  const session = new Session()
  session.connect()
  t.teardown(() => session.disconnect())
  const probe = globalThis as { inspected?: object }
  probe.inspected = object
  const { result } = await session.post('Runtime.evaluate', { expression: 'globalThis.inspected' })
  delete probe.inspected
  // The protocol answers private fields too; the typings do not name them.
  const fields = await session.post('Runtime.getProperties', { objectId: result.objectId!, ownProperties: true }) as
    { result: { value?: Runtime.RemoteObject }[], privateProperties?: { value?: Runtime.RemoteObject }[] }
  let total = 0
  for (const { value } of [...fields.result, ...(fields.privateProperties ?? [])]) {
    if (value?.subtype !== 'map' && value?.subtype !== 'set') continue
    const size = await session.post('Runtime.callFunctionOn', {
      objectId: value.objectId!, functionDeclaration: 'function () { return this.size }', returnByValue: true
    })
    total += size.result.value as number
  }
  return total
}

async function login (built: Built): Promise<string> {
  const response = await built.app.inject({ method: 'POST', url: '/auth/login', payload: { email: admin.email, password: admin.password } })
  return response.json().data.refresh_token
}

/** Rotates `token` `count` times; resolves the last token. */
async function rotate (built: Built, token: string, count: number): Promise<string> {
  for (let i = 0; i < count; i++) {
    const response = await built.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: token } })
    if (response.statusCode !== 200) throw new Error(`rotation ${i}: ${response.statusCode}`)
    token = response.json().data.refresh_token
  }
  return token
}

async function reuseStillEndsTheSession (t: Test, built: Built, old: string, current: string): Promise<void> {
  const refresh = (token: string) => built.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: token } })
  t.equal((await refresh(old)).statusCode, 401, 'a token rotated a thousand times ago is reuse')
  t.equal((await refresh(current)).statusCode, 401, 'and ended the session')
}

t.test('memory store: 1,000 rotations of one session leave its entries as they were', async t => {
  const store = new MemorySessionStore()
  const built = await build(t, { users: [admin], authRoutes: true, sessionStore: store }, { logger: false })
  const first = await login(built)
  const before = await entries(t, store)
  t.ok(before > 0, `${before} entries for one session`)
  const last = await rotate(built, first, rotations)
  t.equal(await entries(t, store), before, `as many after ${rotations} rotations`)
  await reuseStillEndsTheSession(t, built, first, last)
})

t.test('Redis store: 1,000 rotations of one session leave as many keys and as many bytes', async t => {
  const server = await RedisServer.start(t)
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  const built = await build(t, { users: [admin], authRoutes: true, redis: server.url }, { logger: false })

  /** Every key the plugin holds, and the bytes Redis says they take. */
  async function footprint () {
    const keys = await redis.keys('realtime:*')
    let bytes = 0
    for (const key of keys) bytes += Number(await redis.memory('USAGE', key))
    return { keys: keys.length, bytes }
  }

  const first = await login(built)
  const warm = await rotate(built, first, 10)
  const before = await footprint()
  const last = await rotate(built, warm, rotations)
  t.same(await footprint(), before, `${before.keys} keys, ${before.bytes} bytes, before and after ${rotations} rotations`)
  await reuseStillEndsTheSession(t, built, first, last)
})
