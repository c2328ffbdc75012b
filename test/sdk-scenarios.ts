// The real `@directus/sdk` realtime client against the reference server (PROTOCOL.md sections 4, 7 and 9): HTTP login
// and refresh through `authentication('json')`, sockets through `realtime()`, unmodified. One set of scenarios for each
// major the README names: 18 (test/reference-server/sdk.test.ts) and 26, which needs Node 22 (test/newer-node/).
import { generateKeyPairSync } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { createSigner } from 'fast-jwt'
import type * as Sdk18 from '@directus/sdk'
import type { WebSocketAuthModes, WebSocketInterface } from '@directus/sdk'
import { buildReferenceServer } from '../example/app.js'
import { admin, connect, secret, stoppedDate, until, within, type Client as Socket } from './helpers.js'
import { NodeWebSocket } from './node-websocket.js'
import { RedisServer } from './redis-server.js'

interface Frame {
  type: string
  uid?: string | number
  status?: string
  error?: { code: string, message: string }
  data?: unknown
}

const adminMe = { email: admin.email, role: 'administrator', admin: true }

interface Server {
  app: FastifyInstance
  port: number
  url: string
  /** Successful `POST /auth/refresh` responses so far. */
  refreshes: () => number
  /** Query strings of the upgrade requests to `/websocket`, in order. */
  upgrades: Record<string, unknown>[]
}

interface StartOptions {
  port?: number
  /** Runs once the server is built, and it listens once this has finished: to add the test's hooks, or to wait. */
  beforeListen?: (app: FastifyInstance) => void | Promise<void>
}

async function start (t: Test, env: Record<string, string> = {}, { port = 0, beforeListen }: StartOptions = {}): Promise<Server> {
  const { app } = await buildReferenceServer({
    ADMIN_EMAIL: admin.email,
    ADMIN_PASSWORD: admin.password,
    SECRET: secret,
    LOG_LEVEL: 'silent',
    WEBSOCKETS_REST_AUTH: 'handshake',
    ...env
  })
  let refreshes = 0
  const upgrades: Record<string, unknown>[] = []
  app.addHook('onRequest', async (request) => {
    if (request.ws) upgrades.push({ ...request.query as Record<string, unknown> })
  })
  // Counted before the answer leaves, so before the client can act on it.
  app.addHook('onSend', async (request, reply) => {
    if (request.url === '/auth/refresh' && reply.statusCode === 200) refreshes++
  })
  await beforeListen?.(app)
  await app.listen({ host: '127.0.0.1', port })
  t.teardown(() => app.close())
  const address = app.server.address() as AddressInfo
  return { app, port: address.port, url: `http://127.0.0.1:${address.port}`, refreshes: () => refreshes, upgrades }
}

/**
 * The parts of one SDK major the scenarios use, typed as 18's. `login` is the call whose form changed: 18 and 19 take
 * `(email, password)`, 20 on `({ email, password })`.
 */
export interface SdkUnderTest {
  createDirectus: typeof Sdk18.createDirectus
  authentication: typeof Sdk18.authentication
  realtime: typeof Sdk18.realtime
  staticToken: typeof Sdk18.staticToken
  login: (client: Sdk18.AuthenticationClient<unknown>, email: string, password: string) => Promise<Sdk18.AuthenticationData>
}

/** Registers the scenarios, each run with `under`. */
export function sdkScenarios (under: SdkUnderTest): void {
  /** `reconnect`: the SDK's own default (a retry a second after each close, ten in a row) instead of none. */
  function sdk (t: Test, url: string, authMode: WebSocketAuthModes, reconnect = false) {
    const client = under.createDirectus(url, { globals: { WebSocket: NodeWebSocket } })
      .with(under.authentication('json'))
      .with(under.realtime({ authMode, heartbeat: true, ...(reconnect ? {} : { reconnect: false }) }))
    // Nothing left open: no socket, and no refresh timer from a login.
    t.teardown(() => {
      client.stopRefreshing()
      client.disconnect()
    })
    return client
  }

  type Client = ReturnType<typeof sdk>

  /** The next frame of that type the SDK hands to its `onWebSocket('message')` listeners. */
  function sdkMessage (client: Client, type: string): Promise<Frame> {
    return new Promise(resolve => {
      const off = client.onWebSocket('message', (frame: Frame) => {
        if (frame.type !== type) return
        off()
        resolve(frame)
      })
    })
  }

  /** Asks the server who the socket is, through the SDK's own send and message listeners. */
  async function whoami (client: Client): Promise<unknown> {
    const reply = sdkMessage(client, 'whoami')
    client.sendMessage({ type: 'whoami' })
    return (await reply).data
  }

  /**
   * Every frame of the raw socket the SDK opened, in order. The SDK keeps the auth error frames (TOKEN_EXPIRED,
   * AUTH_REVOKED) to itself and misses frames while it awaits a refresh, so events it handles are read here.
   */
  class Recorder {
    readonly frames: Frame[] = []
    #cursor = 0
    #waiters: (() => void)[] = []

    constructor (socket: WebSocketInterface) {
      socket.addEventListener('message', (event: { data: unknown }) => {
        this.frames.push(JSON.parse(String(event.data)) as Frame)
        for (const wake of this.#waiters.splice(0)) wake()
      })
    }

    /** The first frame past the previous match that matches; resolves with it and its index. */
    async next (match: (frame: Frame) => boolean): Promise<{ frame: Frame, index: number }> {
      for (;;) {
        while (this.#cursor < this.frames.length) {
          const index = this.#cursor++
          if (match(this.frames[index])) return { frame: this.frames[index], index }
        }
        await new Promise<void>(resolve => this.#waiters.push(resolve))
      }
    }
  }

  const isAuthError = (code: string) => (frame: Frame) => frame.type === 'auth' && frame.error?.code === code
  const isAuthOk = (frame: Frame) => frame.type === 'auth' && frame.status === 'ok'

  t.test('handshake mode: the SDK logs in over HTTP and authenticates the socket with its access token', { timeout: 30_000 }, async t => {
    const { url } = await start(t)
    const client = sdk(t, url, 'handshake')
    const login = await under.login(client, admin.email, admin.password)
    t.match(login, { access_token: String, refresh_token: String, expires: Number })
    await client.connect()

    const me = await whoami(client) as { id: string }
    t.same(me, { id: me.id, ...adminMe })
    t.type(me.id, 'string')
    client.disconnect()
  })

  t.test('strict mode: the SDK puts the access token on the URL, and without a login it gets HTTP 401', { timeout: 30_000 }, async t => {
    const { url, upgrades } = await start(t, { WEBSOCKETS_REST_AUTH: 'strict' })
    const client = sdk(t, url, 'strict')
    await under.login(client, admin.email, admin.password)
    await client.connect()
    t.same(upgrades, [{ access_token: await client.getToken() }])
    t.match(await whoami(client), adminMe)
    client.disconnect()

    const anonymous = sdk(t, url, 'strict')
    let opened = false
    anonymous.onWebSocket('open', () => { opened = true })
    await t.rejects(anonymous.connect(), { message: /401/ })
    t.equal(opened, false)
    t.same(upgrades[1], {}, 'no token to put on the URL')
    anonymous.disconnect()
  })

  t.test('public mode: the SDK connects without a login, then an auth message upgrades the identity', { timeout: 30_000 }, async t => {
    const { url } = await start(t, { WEBSOCKETS_REST_AUTH: 'public' })
    const client = sdk(t, url, 'public')
    await client.connect()
    t.equal(await whoami(client), null)

    await under.login(client, admin.email, admin.password)
    const accessToken = await client.getToken()
    const ok = sdkMessage(client, 'auth')
    client.sendMessage({ type: 'auth', access_token: accessToken })
    t.match(await ok, { type: 'auth', status: 'ok', uid: String })
    t.match(await whoami(client), adminMe)
    client.disconnect()
  })

  t.test('survives a token expiry: TOKEN_EXPIRED, an HTTP refresh, a re-auth, and the socket stays open', { timeout: 30_000 }, async t => {
    // Tokens live a second, on a Date stopped just before the one the first token ends at: it expires when the test
    // ticks the Date, and the tokens after it never do.
    const clock = stoppedDate(t)
    const { url, refreshes } = await start(t, { ACCESS_TOKEN_TTL: '1s' })
    const client = sdk(t, url, 'handshake')
    let closed = false
    client.onWebSocket('close', () => { closed = true })
    await under.login(client, admin.email, admin.password)
    const socket = await client.connect()
    const recorder = new Recorder(socket)
    let refreshesAtExpiry = -1
    socket.addEventListener('message', (event: { data: unknown }) => {
      // Counted as the frame arrives, before the SDK can react to it.
      if (refreshesAtExpiry === -1 && String(event.data).includes('TOKEN_EXPIRED')) refreshesAtExpiry = refreshes()
    })

    clock.tick(20)
    const expired = await recorder.next(isAuthError('TOKEN_EXPIRED'))
    t.same(expired.frame, { type: 'auth', status: 'error', error: { code: 'TOKEN_EXPIRED', message: 'Token expired.' } })
    t.not(refreshesAtExpiry, -1)
    await recorder.next(isAuthOk)
    t.ok(refreshes() > refreshesAtExpiry, 'the SDK refreshed over HTTP before re-authenticating')

    client.sendMessage({ type: 'whoami', uid: 'after-expiry' })
    const reply = await recorder.next(frame => frame.type === 'whoami' && frame.uid === 'after-expiry')
    t.match(reply.frame.data, adminMe, 'authenticated again')
    t.equal(closed, false, 'no close event')
    t.equal(socket.readyState, WebSocket.OPEN)
    client.disconnect()
  })

  t.test('logout over HTTP revokes the session: its open socket gets AUTH_REVOKED', { timeout: 30_000 }, async t => {
    const { url } = await start(t)
    const client = sdk(t, url, 'handshake')
    await under.login(client, admin.email, admin.password)
    const socket = await client.connect()
    const recorder = new Recorder(socket)
    t.match(await whoami(client), adminMe)

    await client.logout()
    const revoked = await recorder.next(frame => frame.type === 'auth' && frame.status === 'error')
    t.same(revoked.frame, { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } })
    // The re-auth window: open, with the public accountability.
    t.equal(await whoami(client), null)
    t.equal(socket.readyState, WebSocket.OPEN)
    client.disconnect()
  })

  /** The SDK's next `onWebSocket` event of that type. */
  function sdkEvent (client: Client, type: 'open' | 'close' | 'error'): Promise<void> {
    return new Promise(resolve => {
      const off = client.onWebSocket(type, () => {
        off()
        resolve()
      })
    })
  }

  /** A plain socket on `/websocket` marked as the test's own, retried while the server still refuses it. */
  async function blocker (url: string): Promise<Socket> {
    for (;;) {
      try {
        return await connect(`${url.replace('http', 'ws')}/websocket`, { headers: { 'x-test-blocker': '1' } })
      } catch {}
    }
  }

  t.test('in Node, with the README\'s NodeWebSocket, the SDK retries past a refused upgrade (429 at connLimitPerAddress)', { timeout: 90_000 }, async t => {
    let holding = false
    let release!: () => void
    const released = new Promise<void>(resolve => { release = resolve })
    let refuse!: (status: number) => void
    const refusal = new Promise<number>(resolve => { refuse = resolve })
    const { app, url } = await start(t, { WEBSOCKETS_ADDRESS_CONN_LIMIT: '1' }, {
      beforeListen: app => {
        // The SDK's retry waits here until the blocker holds the place: it reaches the limit second, whatever the timing.
        app.addHook('onRequest', async request => {
          if (holding && request.ws && request.headers['x-test-blocker'] === undefined) await released
        })
        app.addHook('onResponse', async (request, reply) => {
          if (request.ws && request.headers['x-test-blocker'] === undefined && reply.statusCode >= 400) refuse(reply.statusCode)
        })
      }
    })
    const client = sdk(t, url, 'handshake', true)
    await under.login(client, admin.email, admin.password)
    await client.connect()

    holding = true
    const closed = sdkEvent(client, 'close')
    app.realtime.close({ endpoint: 'rest' }, 1013, 'Try again later.')
    await within(closed, 'the SDK\'s socket closed')
    const taken = await within(blocker(url), 'the blocker took the address\'s place')
    release()
    t.equal(await within(refusal, 'the SDK\'s retry was refused'), 429)

    const reopened = sdkEvent(client, 'open')
    await taken.close()
    await within(reopened, 'the SDK reconnected once the place was free')
    t.match(await whoami(client), adminMe)
    client.disconnect()
  })

  t.test('in Node, with the README\'s NodeWebSocket, the SDK reconnects after app.close() once the server is back on its port', { timeout: 90_000 }, async t => {
    // On Redis, whose sessions and revocations outlive the process: a restart without it ends every session, and the
    // reconnection's token is refused (test/auth/restart.test.ts).
    const redis = await RedisServer.start(t)
    const first = await start(t, { REDIS_URL: redis.url })
    const client = sdk(t, first.url, 'handshake', true)
    await under.login(client, admin.email, admin.password)
    await client.connect()

    const noServer = sdkEvent(client, 'error')
    const reopened = sdkEvent(client, 'open')
    // Built meanwhile, listening as soon as a retry has found no server: well within the SDK's ten.
    const second = start(t, { REDIS_URL: redis.url }, { port: first.port, beforeListen: () => noServer })
    await first.app.close()
    await within(second, 'the server restarted after a retry found no server')
    await within(reopened, 'the SDK reconnected to the restarted server')
    t.match(await whoami(client), adminMe)
    client.disconnect()
  })

  t.test('the README\'s NodeWebSocket keeps the SDK\'s removals working: no close listener left behind per frame', { timeout: 30_000 }, async t => {
    const { url } = await start(t)
    const client = sdk(t, url, 'handshake')
    await under.login(client, admin.email, admin.password)
    const socket = await client.connect() as unknown as WebSocket
    await whoami(client)
    const listening = socket.listenerCount('close')
    for (let i = 0; i < 20; i++) await whoami(client)
    t.equal(socket.listenerCount('close'), listening, 'the SDK adds and removes one for every frame it reads')
    client.disconnect()
  })

  t.test('AUTH_REVOKED, which the SDK ignores: the README\'s listener disconnects it, and a new login connects again', { timeout: 90_000 }, async t => {
    // A re-auth window longer than the wait: only the listener closes the socket in time.
    const { url } = await start(t, { WEBSOCKETS_REST_AUTH_TIMEOUT: '60' })
    const client = sdk(t, url, 'handshake', true)
    const { refresh_token: refreshToken } = await under.login(client, admin.email, admin.password)
    const sdkMessages: Frame[] = []
    client.onWebSocket('message', (frame: Frame) => { sdkMessages.push(frame) })
    // The README's (Reconnecting), verbatim.
    client.onWebSocket('open', function () {
      this.addEventListener('message', (event) => {
        const frame = JSON.parse(event.data)
        if (frame.type === 'auth' && frame.error?.code === 'AUTH_REVOKED') {
          client.disconnect() // then log in again, and connect()
        }
      })
    })
    await client.connect()

    const closed = sdkEvent(client, 'close')
    // Logged out elsewhere: the SDK still holds the session's access token.
    await fetch(`${url}/auth/logout`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: refreshToken }) })
    await within(closed, 'the listener disconnected the SDK')
    t.notOk(sdkMessages.some(frame => frame.error?.code === 'AUTH_REVOKED'), 'the SDK\'s own message listeners never see it')

    await under.login(client, admin.email, admin.password)
    await client.connect()
    t.match(await whoami(client), adminMe)
    client.disconnect()
  })

  t.test('a provider token through the SDK\'s handshake, its JWKS answering in 1.5 s: the key set was fetched at boot', { timeout: 30_000 }, async t => {
    // The SDK waits 1 s for its auth reply, then rejects connect() and leaves its socket open, unauthenticated.
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const jwks = JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'ec-1', alg: 'ES256' }] })
    let answered = 0
    const provider = createServer((_request, response) => {
      setTimeout(() => {
        response.writeHead(200, { 'content-type': 'application/json' }).end(jwks)
        answered++
      }, 1_500)
    })
    await new Promise<void>(resolve => provider.listen(0, '127.0.0.1', resolve))
    t.teardown(() => { provider.closeAllConnections(); provider.close() })
    const issuer = 'https://id.example.com/'
    const { app, url } = await start(t, {
      JWKS_URL: `http://127.0.0.1:${(provider.address() as AddressInfo).port}/jwks.json`, JWT_ISSUER: issuer, JWT_AUDIENCE: 'realtime-api'
    })
    await within(until(() => answered === 1), 'the fetch of the key set at boot', 10_000).catch((err: Error) => t.fail(err.message))

    const token = createSigner({ key: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), algorithm: 'ES256', kid: 'ec-1', expiresIn: 300_000 })(
      { sub: 'provider-user', email: 'pat@example.com', iss: issuer, aud: 'realtime-api' })
    const client = under.createDirectus(url, { globals: { WebSocket: NodeWebSocket } }).with(under.staticToken(token)).with(under.realtime({ reconnect: false }))
    t.teardown(() => client.disconnect())
    t.equal(await client.connect().then(() => 'connected', () => 'rejected'), 'connected', 'the first client after the start')
    t.same(app.realtime.connections().map(connection => connection.accountability.user), ['provider-user'])
    t.equal(answered, 1, 'no fetch of its own')
  })
}
