// Answers lost on the way back from Redis (PROTOCOL.md section 8): the connection drops after Redis ran a script and
// before its answer arrived, and ioredis sends the script again once connected (a plain client resends what went
// unanswered; a Cluster client retries a command that failed with "Connection is closed"). The second run answers as
// the first did: a refresh is no reuse, a one-time code is no replay. Or the answer is held past the store's timeout
// (the connection gone silent one way): the refresh answered 503 gives its rotation back, and the client's retry with
// the token it holds works, on this process and on another.
import t, { type Test } from 'tap'
import { Cluster, Redis, type ClusterOptions } from 'ioredis'
import { TOTP } from 'otpauth'
import type { RealtimeOptions } from '../../lib/index.js'
import { hashRefreshToken, readRefreshToken } from '../../lib/auth/refresh-tokens.js'
import { otpKey } from '../../lib/auth/totp.js'
import { admin, awaitingAnswers, build, type Built } from '../helpers.js'
import { RedisCluster } from '../redis-cluster.js'
import { RedisServer } from '../redis-server.js'
import { replyCuttingProxy, type ReplyCuttingProxy } from '../reply-cutting-proxy.js'

const otpSecret = 'JBSWY3DPEHPK3PXP'
const otpUser = { email: 'otp@example.com', password: 'otp-p4ss!', id: 'otp-user', otpSecret }
// A piece of each script's text, and of no other's: the rotation's compare-and-set, the one-time code's claim.
const rotation = "'rotated'"
const claim = 'tonumber(last)'

function post (built: Built, url: string, payload: object) {
  return built.app.inject({ method: 'POST', url, payload })
}

/**
 * `redis`: the app's connection, through the proxies; `proxyOf`: the proxy in front of the node holding a key. The
 * rotation's answer is lost once: the refresh works, its session lives on, and the token it replaced is reuse.
 */
async function refreshWhoseAnswerIsLost (t: Test, redis: RealtimeOptions['redis'], proxyOf: (key: string) => Promise<ReplyCuttingProxy>) {
  const built = await build(t, { users: [admin], authRoutes: true, redis }, { logger: false })
  const login = await post(built, '/auth/login', { email: admin.email, password: admin.password })
  const { refresh_token: token } = login.json().data
  const proxy = await proxyOf(`realtime:{s:${readRefreshToken(token)!.sessionId}}:session`)

  proxy.cutAfter(rotation)
  const refreshed = await post(built, '/auth/refresh', { refresh_token: token })
  t.equal(proxy.cuts, 1, 'the rotation ran on Redis, and its answer was lost with its connection')
  t.equal(refreshed.statusCode, 200, 'the rotation sent again answers as the first did: no reuse')
  const next = refreshed.json().data?.refresh_token
  t.not(next, token)
  const after = await post(built, '/auth/refresh', { refresh_token: next })
  t.equal(after.statusCode, 200, 'the session lives: the token the refresh answered works')
  t.equal((await post(built, '/auth/refresh', { refresh_token: token })).statusCode, 401, 'the token it replaced is spent')
  t.equal((await post(built, '/auth/refresh', { refresh_token: after.json().data.refresh_token })).statusCode, 401,
    'presented, it was reuse: the session ended, its newest token with it')
}

/** The claim's answer is lost once: the login with the right password and a fresh code works, and the code is used. */
async function loginWhoseClaimIsLost (t: Test, redis: RealtimeOptions['redis'], proxyOf: (key: string) => Promise<ReplyCuttingProxy>) {
  const built = await build(t, { users: [otpUser], authRoutes: true, redis }, { logger: false })
  const proxy = await proxyOf(`realtime:{u:${otpUser.id}}:otp-step`)
  const credential = { email: otpUser.email, password: otpUser.password, otp: TOTP.generate({ secret: otpKey(otpSecret) }) }

  proxy.cutAfter(claim)
  const login = await post(built, '/auth/login', credential)
  t.equal(proxy.cuts, 1, 'the claim ran on Redis, and its answer was lost with its connection')
  t.equal(login.statusCode, 200, 'the claim sent again answers as the first did: no replay')
  t.equal((await post(built, '/auth/login', credential)).statusCode, 401, 'the code is used: its replay is refused')
}

t.test('one Redis', async t => {
  const server = await RedisServer.start(t)
  t.test('a refresh whose rotation\'s answer is lost works, and its session lives', async t => {
    const proxy = await replyCuttingProxy(t, server.port)
    await refreshWhoseAnswerIsLost(t, proxy.url, async () => proxy)
  })
  t.test('a login whose one-time code\'s claim lost its answer works', async t => {
    const proxy = await replyCuttingProxy(t, server.port)
    await loginWhoseClaimIsLost(t, proxy.url, async () => proxy)
  })
})

t.test('one Redis: a refresh whose rotation\'s answer is held past the store timeout', async t => {
  const server = await RedisServer.start(t)
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  const sessionKey = (token: string) => `realtime:{s:${readRefreshToken(token)!.sessionId}}:session`
  /** Redis itself, asked until the session is back at `token` (or a while has passed: the test then fails below). */
  async function givenBack (token: string): Promise<string | null> {
    let current: string | null = null
    for (let tries = 0; tries < 200 && current !== hashRefreshToken(token); tries++) {
      if (tries > 0) await new Promise(resolve => setTimeout(resolve, 100))
      current = await redis.hget(sessionKey(token), 'tokenHash')
    }
    return current
  }

  t.test('its retry on another process works once the rotation is given back', async t => {
    const proxy = await replyCuttingProxy(t, server.port)
    const silent = await build(t, { users: [admin], authRoutes: true, redis: proxy.url }, { logger: false })
    const other = await build(t, { users: [admin], authRoutes: true, redis: server.url }, { logger: false })
    const login = await post(silent, '/auth/login', { email: admin.email, password: admin.password })
    const { refresh_token: token } = login.json().data

    proxy.holdAfter(rotation)
    t.equal((await post(silent, '/auth/refresh', { refresh_token: token })).statusCode, 503, 'no answer in time: 503')
    t.equal(await givenBack(token), hashRefreshToken(token), 'the rotation ran on Redis, and was taken back')
    const retried = await post(other, '/auth/refresh', { refresh_token: token })
    t.equal(retried.statusCode, 200, 'the retry elsewhere is no reuse')
    proxy.release()
    t.equal((await post(silent, '/auth/refresh', { refresh_token: retried.json().data.refresh_token })).statusCode, 200,
      'the silent process, its answers come, refreshes the session it had given up on')
  })

  t.test('its retry on the same process works once the connection speaks again', async t => {
    const proxy = await replyCuttingProxy(t, server.port)
    const silent = await build(t, { users: [admin], authRoutes: true, redis: proxy.url }, { logger: false })
    const login = await post(silent, '/auth/login', { email: admin.email, password: admin.password })
    const { refresh_token: token } = login.json().data

    proxy.holdAfter(rotation)
    t.equal((await post(silent, '/auth/refresh', { refresh_token: token })).statusCode, 503, 'no answer in time: 503')
    proxy.release()
    const retried = await post(silent, '/auth/refresh', { refresh_token: token })
    t.equal(retried.statusCode, 200, 'the retry is no reuse')
    t.equal((await post(silent, '/auth/refresh', { refresh_token: retried.json().data.refresh_token })).statusCode, 200,
      'and the session lives on')
  })
})

t.test('a Redis Cluster, each node behind a proxy', async t => {
  const cluster = await RedisCluster.start(t)
  /** A client made as the README has an app make one, reaching the nodes through proxies of this test's own. */
  async function throughProxies (t: Test) {
    const proxies = await Promise.all(cluster.nodes.map(node => replyCuttingProxy(t, node.port)))
    const natMap = Object.fromEntries(cluster.nodes.map((node, i) =>
      [`127.0.0.1:${node.port}`, { host: '127.0.0.1', port: proxies[i]!.port }]))
    const options: ClusterOptions = {
      enableOfflineQueue: false,
      redisOptions: { commandTimeout: 2_000, maxRetriesPerRequest: 1 },
      slotsRefreshInterval: 2_000,
      natMap
    }
    const redis = new Cluster(proxies.map(proxy => ({ host: '127.0.0.1', port: proxy.port })), options)
    t.teardown(() => redis.disconnect())
    const proxyOf = async (key: string) => proxies[cluster.nodes.indexOf(await cluster.nodeOf(key))]!
    return { redis, proxyOf }
  }
  t.test('a refresh whose rotation\'s answer is lost works, and its session lives', async t => {
    const { redis, proxyOf } = await throughProxies(t)
    await refreshWhoseAnswerIsLost(t, redis, proxyOf)
  })
  t.test('a login whose one-time code\'s claim lost its answer works', async t => {
    const { redis, proxyOf } = await throughProxies(t)
    await loginWhoseClaimIsLost(t, redis, proxyOf)
  })
})

t.test('one Redis hung with its connection up, the app\'s own client with no command timeout: failed refreshes\' give-backs add no command while theirs wait', async t => {
  const server = await RedisServer.start(t)
  const redis = new Redis(server.url)
  t.teardown(() => redis.disconnect())
  const built = await build(t, { users: [admin], authRoutes: true, redis }, { logger: false })
  const login = await post(built, '/auth/login', { email: admin.email, password: admin.password })
  const { refresh_token: token } = login.json().data
  /** ioredis's commands sent and waiting for their answers (the probe of the plugin's subscription aside). */
  const waiting = () => awaitingAnswers(redis)

  server.pause()
  t.teardown(() => server.resume())
  const answers = await Promise.all(Array.from({ length: 50 }, () => post(built, '/auth/refresh', { refresh_token: token })))
  t.same(new Set(answers.map(answer => answer.statusCode)), new Set([503]), 'every refresh answered 503 at the store timeout')
  const after = waiting()
  // Past the 3 s a try is waited for, and two retry periods: each would be tried again meanwhile, one more command each.
  await new Promise(resolve => setTimeout(resolve, 5_500))
  t.equal(waiting(), after, 'none sent again while the one sent waits for Redis')
})
