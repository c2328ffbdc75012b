// The revocations registrations of one key share in memory (shared-secret.test.ts) are let go with the last of them:
// registrations that come and go, as tenants do, leave nothing in the module behind.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import realtime from '../../lib/index.js'
import { memoryFeedsInUse } from '../../lib/stores/revocation-feed/memory.js'
import { secret } from '../helpers.js'

t.test('registrations that come and go leave nothing behind', async t => {
  t.equal(memoryFeedsInUse(), 0, 'none before')
  const apps: FastifyInstance[] = []
  for (let i = 0; i < 1_000; i++) {
    const app = Fastify()
    // Two at a time, with one secret or another: the set is let go with the last of the registrations that share it.
    await app.register(realtime, { env: {}, secret: i % 3 === 0 ? `${secret}-${i}` : secret })
    await app.ready()
    apps.push(app)
    if (apps.length === 2) await apps.shift()!.close()
  }
  t.ok(memoryFeedsInUse() >= 1, 'one for the registrations still open')
  await apps.shift()!.close()
  t.equal(memoryFeedsInUse(), 0, 'none once every registration has closed')
})

t.test('a registration that fails to boot lets its set go at the app\'s close', async t => {
  const app = Fastify()
  app.get('/websocket', async () => 'the app\'s own route')
  await t.rejects(async () => { await app.register(realtime, { env: {}, secret }).ready() }, /already declared/, 'the plugin\'s route clashes')
  await app.close()
  t.equal(memoryFeedsInUse(), 0, 'none left')
})
