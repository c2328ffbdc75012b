// A bounded churn soak (issue 5): 450 sockets in staggered waves of 50 (one to warm up, eight measured) open,
// authenticate (long- and short-lived access tokens, email and password, refresh tokens), expire, re-authenticate
// inside the window, get revoked, time out, and close from either side or just drop. Every socket's frames and close
// are the contract's. Afterwards nothing is left behind: no connection, no timer, no socket handle, no connection
// object alive after garbage collection, and the heap back near its baseline.
import t from 'tap'
import assert from 'node:assert/strict'
import v8 from 'node:v8'
import vm from 'node:vm'
import { setTimeout as sleep } from 'node:timers/promises'
import { GraphQLObjectType, GraphQLSchema, GraphQLString } from 'graphql'
import type { GraphqlContext, RealtimeConnection } from '../../lib/index.js'
import { build, connect, whoami, type Client } from '../helpers.js'

const waves = process.env.CHURN_WAVES === undefined ? 8 : Number(process.env.CHURN_WAVES)
const waveSize = 50
/** Waves start this far apart, so several are in flight at once, each socket in its own phase. */
const waveGapMs = 400
const roles = 10
/**
 * Heap growth allowed after the soak: a fixed allowance (sessions the store keeps, code compiled late) plus 4 KiB per
 * socket. A socket the server keeps alive after its close costs about 6 KiB of heap (measured with a registry that
 * never forgets one: +3.4 MiB over 400 sockets), and the growth without a leak is about 1 MiB for 400. The weak
 * references below catch a kept connection object exactly; this bound catches what grows per socket elsewhere.
 */
const allowedGrowth = (sockets: number) => 1024 * 1024 + sockets * 4 * 1024

const user = { email: 'churn@example.com', password: 'churn-password-1', role: 'editor' }

/** The garbage collector: node's --expose-gc when given, else switched on here (V8 allows it at run time). */
function exposeGc (): () => void {
  const existing = (globalThis as { gc?: () => void }).gc
  if (existing) return existing
  v8.setFlagsFromString('--expose-gc')
  return vm.runInNewContext('gc') as () => void
}
const gc = exposeGc()
async function collect (): Promise<void> {
  // Several passes, with turns of the event loop between them: finalizers and weak references settle late.
  for (let i = 0; i < 4; i++) {
    gc()
    await new Promise(resolve => setImmediate(resolve))
  }
}

const active = (kind: string) => process.getActiveResourcesInfo().filter(k => k === kind).length

/** A wait that fails with what it was waiting for, instead of hanging the soak. */
function within<T> (work: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)
  })
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer))
}

const ok = { type: 'auth', status: 'ok' }
const authError = (code: string, message: string) => ({ type: 'auth', status: 'error', error: { code, message } })
const tokenExpired = authError('TOKEN_EXPIRED', 'Token expired.')
const sessionRevoked = authError('AUTH_REVOKED', 'Session revoked.')
const authTimedOut = authError('AUTH_TIMEOUT', 'Authentication timed out.')
const handshakeFailed = authError('AUTH_FAILED', 'Authentication handshake failed.')

const schema = new GraphQLSchema({
  query: new GraphQLObjectType({
    name: 'Query',
    fields: { me: { type: GraphQLString, resolve: (_root, _args, context: GraphqlContext) => context.accountability.user } }
  })
})

t.test('sockets churning through every phase leave nothing behind', async t => {
  const { app, url } = await build(t, {
    users: [user],
    heartbeat: { enabled: false },
    // Tokens issued for email/password and refresh tokens expire within the soak; the re-auth window is short.
    accessTokenTtl: '3s',
    rest: { auth: 'handshake', authTimeout: 2, handlers: { whoami } },
    graphql: { auth: 'handshake', schema },
    // Dozens of password logins from one address at once are the point here; the limits are tested on their own.
    attemptLimit: false,
    passwordQueue: { limit: 1000, perAddress: 1000 }
  })
  const long = (id: string) => app.realtime.jwt.sign({ id })
  const short = (id: string) => app.realtime.jwt.sign({ id, exp: Math.floor(Date.now() / 1000) + 2 })
  const sidOf = (accessToken: string) => app.realtime.jwt.decode<{ sid: string }>(accessToken)!.sid

  // Every connection object the server makes, weakly: none may outlive its socket.
  const seen = new Map<string, WeakRef<RealtimeConnection>>()
  const sample = () => {
    for (const connection of app.realtime.connections()) {
      if (!seen.has(connection.id)) seen.set(connection.id, new WeakRef(connection))
    }
  }

  /** One socket's life, by its role; every frame and close checked against the contract. */
  async function life (i: number): Promise<void> {
    const id = `churn-${i}`
    const next = (client: Client, what: string) => within(client.next(), `${what} (socket ${i})`)
    const closed = (client: Client) => within(client.closed, `close (socket ${i})`)
    const same = (actual: unknown, expected: unknown, what: string) => assert.deepEqual(actual, expected, `socket ${i}: ${what}`)
    const open = async (address: string, options?: Parameters<typeof connect>[1]) => {
      const client = await connect(address, options)
      sample() // the server registered the socket before it answered the upgrade
      return client
    }
    const who = async (client: Client, expected: string | null, what: string) => {
      client.send({ type: 'whoami', uid: i })
      same(await next(client, 'whoami'), { type: 'whoami', uid: i, user: expected }, what)
    }
    switch (i % roles) {
      case 0: { // a long-lived access token; the client closes
        const client = await open(url('/websocket'))
        client.send({ type: 'auth', access_token: long(id) })
        same(await next(client, 'auth'), ok, 'long-lived token accepted')
        await who(client, id, 'authenticated')
        await client.close()
        return
      }
      case 1: { // a short-lived token expires; another one re-authenticates inside the window
        const client = await open(url('/websocket'))
        client.send({ type: 'auth', access_token: short(id) })
        same(await next(client, 'auth'), ok, 'short-lived token accepted')
        same(await next(client, 'expiry'), tokenExpired, 'expired')
        await who(client, null, 'public in the re-auth window')
        client.send({ type: 'auth', access_token: long(id), uid: 're' })
        same(await next(client, 're-auth'), { ...ok, uid: 're' }, 're-authenticated')
        await who(client, id, 'authenticated again')
        await client.close()
        return
      }
      case 2: { // a short-lived token expires and nobody re-authenticates: AUTH_TIMEOUT, 4408
        const client = await open(url('/websocket'))
        client.send({ type: 'auth', access_token: short(id) })
        same(await next(client, 'auth'), ok, 'short-lived token accepted')
        same(await next(client, 'expiry'), tokenExpired, 'expired')
        same(await next(client, 'timeout'), authTimedOut, 'timed out')
        same((await closed(client)).code, 4408, 'closed 4408')
        return
      }
      case 3: { // email and password after the handshake; its access token expires; the refresh token re-authenticates
        const client = await open(url('/websocket'))
        // Password checks queue behind each other: made before the handshake's deadline, one could miss it under load.
        client.send({ type: 'auth', access_token: long(id) })
        same(await next(client, 'auth'), ok, 'long-lived token accepted')
        client.send({ type: 'auth', email: user.email, password: user.password })
        const login = await next(client, 'password auth') as { refresh_token?: unknown }
        same({ ...login, refresh_token: typeof login.refresh_token }, { ...ok, refresh_token: 'string' }, 'password accepted')
        same(await next(client, 'expiry'), tokenExpired, 'expired')
        client.send({ type: 'auth', refresh_token: login.refresh_token })
        const refreshed = await next(client, 'refresh auth') as { refresh_token?: unknown }
        same({ ...refreshed, refresh_token: typeof refreshed.refresh_token }, { ...ok, refresh_token: 'string' }, 'refreshed')
        assert.notEqual(refreshed.refresh_token, login.refresh_token, `socket ${i}: a rotated refresh token`)
        await client.close()
        return
      }
      case 4: { // a refresh token from login(); its session is revoked; an access token re-authenticates
        const issued = await app.realtime.login(user)
        const client = await open(url('/websocket'))
        client.send({ type: 'auth', refresh_token: issued.refresh_token })
        same(typeof (await next(client, 'refresh auth') as { refresh_token?: unknown }).refresh_token, 'string', 'refreshed')
        await app.realtime.revokeSession(sidOf(issued.access_token))
        same(await next(client, 'revocation'), sessionRevoked, 'revoked')
        client.send({ type: 'auth', access_token: long(id) })
        same(await next(client, 're-auth'), ok, 're-authenticated')
        await who(client, id, 'authenticated again')
        await client.close()
        return
      }
      case 5: { // opens and drops the connection without a close frame, still in its handshake
        const client = await open(url('/websocket'))
        client.ws.terminate()
        await closed(client)
        return
      }
      case 6: { // a first frame that is not an auth message: AUTH_FAILED, 4401
        const client = await open(url('/websocket'))
        client.send({ type: 'ping' })
        same(await next(client, 'handshake failure'), handshakeFailed, 'handshake failed')
        same((await closed(client)).code, 4401, 'closed 4401')
        return
      }
      case 7: { // authenticated, then closed by the server through the application API
        const client = await open(url(`/websocket?access_token=${long(id)}`))
        await who(client, id, 'authenticated at the upgrade')
        same(app.realtime.close({ user: id }, 1000, 'churn'), 1, 'one socket closed')
        same(await closed(client), { code: 1000, reason: 'churn' }, 'closed by the server')
        return
      }
      case 8: { // GraphQL with a short-lived token: 4403 at its expiry
        const client = await open(url('/graphql'), { protocols: 'graphql-transport-ws' })
        client.send({ type: 'connection_init', payload: { access_token: short(id) } })
        same(await next(client, 'ack'), { type: 'connection_ack' }, 'acknowledged')
        same(await closed(client), { code: 4403, reason: 'Forbidden' }, 'closed 4403 at expiry')
        return
      }
      default: { // GraphQL with a long-lived token; one query; the client closes
        const client = await open(url('/graphql'), { protocols: 'graphql-transport-ws' })
        client.send({ type: 'connection_init', payload: { access_token: long(id) } })
        same(await next(client, 'ack'), { type: 'connection_ack' }, 'acknowledged')
        client.send({ type: 'subscribe', id: '1', payload: { query: '{ me }' } })
        same(await next(client, 'result'), { type: 'next', id: '1', payload: { data: { me: id } } }, 'me')
        same(await next(client, 'complete'), { type: 'complete', id: '1' }, 'complete')
        await client.close()
      }
    }
  }

  // The sockets the plugin let go, by their `close` events: `connections()` lists the open ones alone, and a socket
  // its client closed may still be closing on the server.
  const gone = new Set<string>()
  app.realtime.on('close', ({ connection }) => { gone.add(connection.id) })
  const drained = async (what: string) => {
    const deadline = Date.now() + 10_000
    const left = () => [...seen.keys()].filter(id => !gone.has(id)).length
    while (left() > 0 && Date.now() < deadline) await sleep(5)
    t.equal(left(), 0, `${what}: no connection left`)
    t.equal(app.realtime.connections().length, 0, `${what}: none open`)
  }
  const run = async (from: number, count: number) => {
    const lives: Promise<void>[] = []
    for (let wave = 0; wave * waveSize < count; wave++) {
      if (wave > 0) await sleep(waveGapMs)
      for (let i = from + wave * waveSize; i < from + Math.min(count, (wave + 1) * waveSize); i++) lives.push(life(i))
    }
    await Promise.all(lives)
    await drained(`sockets ${from} to ${from + count - 1}`)
  }

  // A first wave warms up what is made once (compiled code, pools, the password hash's first use), then the baselines.
  await run(0, waveSize)
  await collect()
  const timers = active('Timeout')
  const sockets = active('TCPSocketWrap')
  const heap = process.memoryUsage().heapUsed
  seen.clear()

  const started = Date.now()
  await run(waveSize, waves * waveSize)
  t.pass(`${waves * waveSize} sockets in ${Date.now() - started} ms, each with the frames and close of its role`)

  t.equal(active('Timeout'), timers, 'no timer left')
  t.equal(active('TCPSocketWrap'), sockets, 'no socket handle left')
  t.equal(seen.size, waves * waveSize, 'every connection object watched')
  await collect()
  const alive = [...seen.values()].filter(ref => ref.deref() !== undefined).length
  t.equal(alive, 0, 'every connection object was collected')
  seen.clear()
  await collect()
  const grown = process.memoryUsage().heapUsed - heap
  const allowed = allowedGrowth(waves * waveSize)
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MiB`
  t.ok(grown < allowed, `heap back near its baseline: ${mib(grown)} more than before (${mib(heap)}), at most ${mib(allowed)}`)
})
