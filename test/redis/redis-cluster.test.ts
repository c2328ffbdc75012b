// Several processes on one Redis Cluster (three masters on loopback): shared sessions, revocations and log lines that
// reach every process, shared attempt counters. Two app instances stand for two processes, each with its own ioredis
// Cluster client, as each app would make it; each behaviour has a prefix of its own on one cluster.
import t, { type Test } from 'tap'
import { Redis, type ClusterOptions } from 'ioredis'
import type { RealtimeOptions } from '../../lib/index.js'
import { admin, build, connect, editor, refusedWith, whoami, within, type Built, type Client } from '../helpers.js'
import { RedisCluster } from '../redis-cluster.js'
import type { RedisServer } from '../redis-server.js'

// What the README recommends: commands fail at once while the cluster is away, and give up after 2 s.
const clientOptions: ClusterOptions = {
  enableOfflineQueue: false, redisOptions: { commandTimeout: 2_000, maxRetriesPerRequest: 1 }, slotsRefreshInterval: 2_000
}

t.test('on a Redis Cluster', async t => {
  const cluster = await RedisCluster.start(t)

  /** A process of the app on the cluster; every key and channel under `redisPrefix`. */
  function node (t: Test, redisPrefix: string, options: RealtimeOptions = {}, logger: object | false = false): Promise<Built> {
    return build(t, {
      users: [admin, editor],
      authRoutes: true,
      redis: cluster.client(t, clientOptions),
      redisPrefix,
      rest: { handlers: { whoami }, authTimeout: 5 },
      ...options
    }, { logger } as never)
  }

  async function login (built: Built, credentials: { email: string, password: string } = admin, remoteAddress = '127.0.0.1') {
    return built.app.inject({ method: 'POST', url: '/auth/login', payload: credentials, remoteAddress })
  }

  function refresh (built: Built, refreshToken: string) {
    return built.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refreshToken } })
  }

  /** A logout on `a`, tried again while the cluster answers 503, reaches `onB` on the other process. */
  async function loggedOutOnceBack (t: Test, a: Built, refreshToken: string, onB: Client) {
    const logout = () => a.app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: refreshToken } })
    let answer = await logout()
    while (answer.statusCode === 503) {
      await new Promise(resolve => setTimeout(resolve, 100))
      answer = await logout()
    }
    t.equal(answer.statusCode, 204)
    t.same(await within(onB.next(), 'the revocation on b', 20_000), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } })
    await onB.close()
  }

  async function authenticated (built: Built, accessToken: string): Promise<Client> {
    const client = await connect(built.url('/websocket'))
    client.send({ type: 'auth', access_token: accessToken })
    t.same(await client.next(), { type: 'auth', status: 'ok' })
    return client
  }

  t.test('a refresh token from one process works on another, and of two concurrent refreshes exactly one wins', async t => {
    const [a, b] = [await node(t, 'sessions:'), await node(t, 'sessions:')]
    const tokens = (await login(a)).json().data
    const rotated = await refresh(b, tokens.refresh_token)
    t.equal(rotated.statusCode, 200)
    t.equal((await refresh(a, rotated.json().data.refresh_token)).statusCode, 200, 'the rotated token works back on the first')
    for (let round = 0; round < 5; round++) {
      const { refresh_token: token } = (await login(a)).json().data
      const results = await Promise.all([refresh(a, token), refresh(b, token)])
      t.same(results.map(r => r.statusCode).sort(), [200, 401], `round ${round}`)
    }
    const kinds = new Set((await cluster.keys('sessions:{*')).map(key => key.replace(/[\w-]{36}/, '<id>')))
    t.same([...kinds], ['sessions:{s:<id>}:session', 'sessions:{u:<id>}:session-expiries'],
      'sessions under their id\'s hash tag, each user\'s set under the user\'s')
  })

  t.test('logout on one process revokes the session\'s sockets on another; its tokens are refused everywhere', async t => {
    const [a, b] = [await node(t, 'logout:'), await node(t, 'logout:')]
    const tokens = (await login(a)).json().data
    const onB = await authenticated(b, tokens.access_token)
    t.equal((await a.app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: tokens.refresh_token } })).statusCode, 204)
    t.same(await onB.next(), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } })
    t.equal((await refusedWith(b.url(`/websocket?access_token=${tokens.access_token}`))).status, 401, 'refused at the upgrade on b')
    t.equal((await refresh(b, tokens.refresh_token)).statusCode, 401, 'the refresh token is gone on b')
    await onB.close()
    const c = await node(t, 'logout:')
    t.equal((await refusedWith(c.url(`/websocket?access_token=${tokens.access_token}`))).status, 401,
      'a process started afterwards learns it from the cluster')
  })

  t.test('revokeUser on one process reaches the user\'s sockets on another', async t => {
    const [a, b] = [await node(t, 'revoke-user:'), await node(t, 'revoke-user:')]
    const first = (await login(a)).json().data
    const second = (await login(b)).json().data
    const sockets = [await authenticated(b, first.access_token), await authenticated(a, second.access_token)]
    const user = (b.app.realtime.jwt.decode(first.access_token) as { id: string }).id
    await a.app.realtime.revokeUser(user)
    for (const socket of sockets) t.match(await socket.next(), { error: { code: 'AUTH_REVOKED' } })
    t.equal((await refresh(b, first.refresh_token)).statusCode, 401, 'every session of the user ended')
    t.equal((await refresh(a, second.refresh_token)).statusCode, 401)
    t.same(await cluster.keys('revoke-user:{*'), [`revoke-user:{u:${user}}:sessions-ended-at`],
      'and its keys are gone, but the mark of the revocation (a login whose check began before it gets no session)')
    await Promise.all(sockets.map(socket => socket.close()))
  })

  t.test('a logs subscriber on one process gets the lines of every process', async t => {
    const sink = { level: 'info', stream: { write () {} } }
    const [a, b] = [await node(t, 'logs:', {}, sink), await node(t, 'logs:', {}, sink)]
    const client = await connect(b.url('/websocket/logs'))
    client.send({ type: 'auth', access_token: b.app.realtime.signAccessToken({ user: 'a', role: null, admin: true }).access_token })
    await client.next()
    client.send({ type: 'subscribe', log_level: 'info' })
    t.same(await client.next(), { type: 'logs', event: 'subscribe', log_level: 'info' })
    // b's subscription to the cluster may still be on its way: log until a's line comes through.
    let got: { node: string } | undefined
    const arrived = (async () => {
      for (;;) {
        const frame = await client.next() as { data?: { msg?: string }, node: string }
        if (frame.data?.msg === 'from a') return frame
      }
    })()
    for (let attempt = 0; got === undefined && attempt < 200; attempt++) {
      a.app.log.info('from a')
      got = await Promise.race([arrived, new Promise<undefined>(resolve => setTimeout(resolve, 50))])
    }
    t.ok(got, 'a line logged on a reaches a subscriber on b')
    await client.close()
  })

  t.test('attempt counters are shared by every process', async t => {
    const [a, b] = [await node(t, 'attempts:', { attemptLimit: { points: 2 } }), await node(t, 'attempts:', { attemptLimit: { points: 2 } })]
    const wrong = (email: string) => ({ email, password: 'not-the-password' })
    t.equal((await login(a, wrong('x@example.com'), '10.0.1.1')).statusCode, 401)
    t.equal((await login(b, wrong('y@example.com'), '10.0.1.1')).statusCode, 401)
    t.equal((await login(a, admin, '10.0.1.1')).statusCode, 429, 'an IP\'s failures add up across processes')
    t.equal((await login(b, admin, '10.0.1.1')).statusCode, 429)
    t.equal((await login(a, wrong(editor.email), '10.0.2.1')).statusCode, 401)
    t.equal((await login(b, wrong(editor.email), '10.0.2.2')).statusCode, 401)
    t.equal((await login(a, editor, '10.0.2.3')).statusCode, 429, 'and an email\'s')
    t.equal((await login(b, admin, '10.0.2.4')).statusCode, 200, 'another email from another IP goes on')
  })

  t.test('a subscriber whose PING went unanswered (the cluster frozen) is cut, comes back, and hears the next logout', async t => {
    const [a, b] = [await node(t, 'frozen:'), await node(t, 'frozen:')]
    const tokens = (await login(a)).json().data
    const onB = await authenticated(b, tokens.access_token)
    for (const node of cluster.nodes) node.pause()
    // A health check (every 5 s) meets the silence and, 2 s on, cuts the connection.
    await new Promise(resolve => setTimeout(resolve, 8_000))
    for (const node of cluster.nodes) node.resume()
    await loggedOutOnceBack(t, a, tokens.refresh_token, onB)
  })

  t.test('a process whose Cluster client is made with lazyConnect (and a keyPrefix) loads the revocations, and hears a logout', async t => {
    const process = (options: ClusterOptions) => build(t, {
      users: [admin], authRoutes: true, redisPrefix: 'lazy:', redis: cluster.client(t, { ...clientOptions, keyPrefix: 'app:', ...options })
    }, { logger: false })
    const [a, b] = [await process({}), await process({ lazyConnect: true })]
    const tokens = (await login(a)).json().data
    // Until it has loaded the revocations, it refuses a token with a session (SERVICE_UNAVAILABLE).
    const admitted = async () => {
      for (;;) {
        const client = await connect(b.url('/websocket'))
        client.send({ type: 'auth', access_token: tokens.access_token })
        if ((await client.next() as { status: string }).status === 'ok') return client
        await client.closed
        await new Promise(resolve => setTimeout(resolve, 100))
      }
    }
    const onB = await within(admitted(), 'b loading the revocations', 20_000)
    t.equal(await cluster.subscribers('app:lazy:revocations'), 2, 'both listen, on the channel under the client\'s keyPrefix')
    t.equal((await a.app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: tokens.refresh_token } })).statusCode, 204)
    t.same(await onB.next(), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } })
    await onB.close()
  })

  t.test('a subscriber whose node hangs (connections accepted, never answered) moves to another node and hears the next logout', async t => {
    const [a, b] = [await node(t, 'hung:'), await node(t, 'hung:')]
    const tokens = (await login(a)).json().data
    const onB = await authenticated(b, tokens.access_token)
    /** Each node's listeners on the process's revocation channel; a hung node is not asked. */
    const listeners = (hung?: RedisServer) => Promise.all(cluster.nodes.map(async server => {
      if (server === hung) return 0
      const redis = new Redis(server.port, '127.0.0.1')
      try { return Number((await redis.pubsub('NUMSUB', 'hung:revocations'))[1]) } finally { redis.disconnect() }
    }))
    let counts = await listeners()
    while (counts.reduce((sum, count) => sum + count, 0) < 2) counts = await listeners()
    // The node where one of the two listens; the other may listen there too.
    const hung = cluster.nodes[counts.findIndex(count => count > 0)]!
    const others = counts[cluster.nodes.indexOf(hung)]!
    hung.pause()
    t.teardown(() => { if (hung.running) hung.resume() })
    const moved = async () => {
      for (;;) {
        const elsewhere = (await listeners(hung)).reduce((sum, count) => sum + count, 0)
        if (elsewhere === 2) return
        await new Promise(resolve => setTimeout(resolve, 250))
      }
    }
    await within(moved(), `the ${others} listener(s) on the hung node moving`, 40_000)
    t.pass('both listen on the nodes that answer')
    hung.resume()
    await loggedOutOnceBack(t, a, tokens.refresh_token, onB)
  })

  // Last: it takes the cluster down.
  t.test('the cluster away: refresh and password auth fail closed, access tokens go on, and all recovers when it is back', async t => {
    const a = await node(t, 'away:')
    const tokens = (await login(a)).json().data
    await Promise.all(cluster.nodes.map(node => node.stop()))
    t.equal((await refresh(a, tokens.refresh_token)).statusCode, 503)
    t.equal((await login(a)).statusCode, 503)
    const socket = await authenticated(a, tokens.access_token)
    await socket.close()

    // Each node comes back with its config file: the same cluster, emptied.
    await Promise.all(cluster.nodes.map(node => node.start()))
    let back = await login(a)
    while (back.statusCode !== 200) {
      await new Promise(resolve => setTimeout(resolve, 25))
      back = await login(a)
    }
    t.equal((await refresh(a, back.json().data.refresh_token)).statusCode, 200, 'login and refresh work again without a restart')
  })
})
