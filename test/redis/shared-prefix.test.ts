// Two instances of the plugin in one process (two tenants) on one Redis and prefix share their sessions, revocations
// and log lines (README, "One app per prefix"): boot warns, once (lib/stores/prefixes-in-use.ts).
import t from 'tap'
import { Cluster, Redis } from 'ioredis'
import { usePrefix } from '../../lib/stores/prefixes-in-use.js'
import { tenantsOn } from '../helpers.js'
import { RedisServer } from '../redis-server.js'

const sharedWarning = /^another fastify-realtime in this process uses redisPrefix "([^"]*)" on the same Redis: the two share their sessions, revocations and log lines \(a refresh token of one refreshes on the other\)\. Unless they are one app, give each its own redisPrefix$/

t.test('tenants on one Redis and prefix: boot warns once; on prefixes of their own, not at all', async t => {
  const server = await RedisServer.start(t)
  const shared = await tenantsOn(t, [{ redis: server.url }, { redis: server.url }, { redis: server.url }])
  t.equal(shared.warnings.length, 1, 'one warning for three tenants')
  t.match(shared.warnings[0], sharedWarning)
  t.match(shared.warnings[0], /redisPrefix "realtime:"/)
  await shared.app.close()
  const apart = await tenantsOn(t, [{ redis: server.url, redisPrefix: 'a:' }, { redis: server.url, redisPrefix: 'b:' }])
  t.same(apart.warnings, [], 'distinct prefixes, and those of the app closed are free again')
})

/** Whether `usePrefix` warns for each of `uses` (a client and a prefix) in turn, released at the end. */
function warnings (uses: [Redis | Cluster, string][]): boolean[] {
  const warned: boolean[] = []
  const releases = uses.map(([redis, prefix]) => {
    let said = false
    const release = usePrefix(redis, prefix, { warn: () => { said = true } } as never)
    warned.push(said)
    return release
  })
  for (const release of releases) release()
  return warned
}

t.test('one Redis as the clients\' options name it: address and database, socket path, Sentinel set, Cluster client', async t => {
  const client = (options: object) => {
    const redis = new Redis({ lazyConnect: true, ...options })
    t.teardown(() => redis.disconnect())
    return redis
  }
  const at = (url: string) => {
    const redis = new Redis(url, { lazyConnect: true })
    t.teardown(() => redis.disconnect())
    return redis
  }
  t.same(warnings([[at('redis://127.0.0.1:7001/2'), 'p:'], [client({ host: '127.0.0.1', port: 7001, db: 2 }), 'p:']]), [false, true], 'a URL and options naming one Redis')
  t.same(warnings([[at('redis://127.0.0.1:7001/2'), 'p:'], [at('redis://127.0.0.1:7001/3'), 'p:']]), [false, false], 'another database')
  t.same(warnings([[at('redis://127.0.0.1:7001'), 'p:'], [client({ port: 7001, host: '127.0.0.1', keyPrefix: 'b:' }), 'p:']]), [false, false], 'a client\'s keyPrefix of its own')
  t.same(warnings([[client({ path: '/run/redis.sock' }), 'p:'], [client({ path: '/run/redis.sock' }), 'p:']]), [false, true], 'one socket path')
  const sentinels = [{ host: '127.0.0.1', port: 26379 }]
  t.same(warnings([[client({ sentinels, name: 'm' }), 'p:'], [client({ sentinels, name: 'm' }), 'p:'], [client({ sentinels, name: 'n' }), 'p:']]),
    [false, true, false], 'one Sentinel set and master name')
  const cluster = new Cluster([{ host: '127.0.0.1', port: 7001 }], { lazyConnect: true })
  const another = new Cluster([{ host: '127.0.0.1', port: 7001 }], { lazyConnect: true, redisOptions: { keyPrefix: 'b:' } })
  t.teardown(() => { cluster.disconnect(); another.disconnect() })
  t.same(warnings([[cluster, 'p:'], [another, 'p:'], [cluster, 'q:'], [cluster, 'p:'], [cluster, 'p:']]), [false, false, false, true, false],
    'the same Cluster client and prefix, warned of once')
  t.same(warnings([[cluster, 'p:'], [cluster, 'p:']]), [false, true], 'released, then used again')
})
