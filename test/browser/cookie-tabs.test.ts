// Several tabs in `cookie` mode, as the README's "Browsers" has them: the tabs share the refresh cookie, and of two
// refreshes sent with one cookie before either is answered, one is reuse, which ends the session (PROTOCOL.md section
// 7). The README's recipe refreshes inside a Web Lock every tab of the origin shares. The SDK refreshes on its own too,
// though: `getToken` does, for a token about to expire, and its socket asks for one at every TOKEN_EXPIRED and every
// reconnect. Tabs waking together (from sleep, a frozen background, the network coming back) are told of their tokens'
// ends together and ask at once. Here both tabs' tokens end in one tick of the server's stopped Date, and the first
// refresh to reach the server is held until the other tab has either sent its own or waits for the lock. And a logout
// sent while the other tab's refresh is under way carries the cookie that refresh replaces (reuse: 401, though the
// session ends), unless it waits in the lock too.
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import t, { type Test } from 'tap'
import type { FastifyRequest } from 'fastify'
import { admin, stoppedDate, within } from '../helpers.js'
import { launchChromium } from './chromium.js'
import { startReference } from './reference.js'
import { authError, authOk, isFrame, SdkPage } from './sdk-page.js'

declare global {
  interface Window {
    lockAsked: () => Promise<void>
  }
}

const browser = await launchChromium(t)
// SDK 26 as one module (its package is many), served beside the demo page's SDK 18.
const sdk26 = (await build({ entryPoints: [fileURLToPath(import.meta.resolve('@directus/sdk-26'))], bundle: true, format: 'esm', write: false, logLevel: 'silent' })).outputFiles[0]!.text

/**
 * The README's recipe for several tabs in `cookie` mode, in the page, then the socket on the same client (handshake,
 * the access token in its first message). The first tab logs in, the others refresh with the cookie it set.
 */
async function recipe (page: SdkPage, sdk26: boolean, login: boolean): Promise<void> {
  await page.page.evaluate(async ({ sdk26, login, email, password }) => {
    const test = window.sdkTest
    const { createDirectus, authentication, realtime } = test.sdk
    // As the README writes it (with the page's recording fetch and WebSocket).
    const refreshing = createDirectus(location.origin, { globals: test.globals }).with(authentication('cookie', { autoRefresh: false }))
    const inLock = <T>(work: () => Promise<T>) => navigator.locks.request('directus-refresh', work)
    const auth = refreshing.with(() => ({
      getToken: () => inLock(() => refreshing.getToken()),
      refresh: () => inLock(() => refreshing.refresh()),
      logout: () => inLock(() => refreshing.logout())
    }))
    test.auth = auth
    if (!login) await auth.refresh()
    // SDK 20 and later take the credentials as one object.
    else if (sdk26) await (auth.login as unknown as (credentials: object) => Promise<unknown>)({ email, password })
    else await auth.login(email, password)
    test.socket = auth.with(realtime({ authMode: 'handshake', reconnect: false }))
    await test.socket.connect()
  }, { sdk26, login, email: admin.email, password: admin.password })
}

/** Tells the test each time the page asks for a Web Lock. */
async function watchLocks (page: SdkPage, asked: () => void): Promise<void> {
  await page.page.exposeFunction('lockAsked', asked)
  await page.page.evaluate(() => {
    const request = navigator.locks.request.bind(navigator.locks) as (...args: unknown[]) => Promise<unknown>
    (navigator.locks as { request: unknown }).request = (...args: unknown[]) => {
      window.lockAsked().catch(() => {})
      return request(...args)
    }
  })
}

/** What crosses the server once armed: refreshes and logouts as they arrive, each answer's status. */
interface Watch {
  arrived: string[]
  statuses: string[]
  /** Asks for the lock, in either tab. */
  locks: number
}

/**
 * The reference server, with access tokens of a second on a stopped Date (every token of the test's start ends at its
 * tick, none refreshed after it: see cookie.test.ts), and two tabs of one browser set up by the README's recipe, their
 * sockets authenticated. Once `arm`ed, the first refresh is held until `release` (its request before it acts, or its
 * answer once it has), and `until` waits for a condition on what crossed.
 */
async function twoTabs (t: Test, version: number, hold: 'request' | 'answer') {
  const clock = stoppedDate(t)
  let armed = false
  const watch: Watch = { arrived: [], statuses: [], locks: 0 }
  const waiting: { done: (watch: Watch) => boolean, wake: () => void }[] = []
  const changed = () => {
    for (const waiter of waiting.filter(waiter => waiter.done(watch))) {
      waiting.splice(waiting.indexOf(waiter), 1)
      waiter.wake()
    }
  }
  let release!: () => void
  const released = new Promise<void>(resolve => { release = resolve })
  let firstRefresh: FastifyRequest | undefined
  const { origin } = await startReference(t, { ACCESS_TOKEN_TTL: '1s' }, app => {
    app.get('/sdk-26.js', (_request, reply) => reply.type('text/javascript; charset=utf-8').send(sdk26))
    app.addHook('onRequest', async (request) => {
      if (!armed || !request.url.startsWith('/auth/')) return
      if (request.url === '/auth/refresh') firstRefresh ??= request
      watch.arrived.push(request.url.slice('/auth/'.length))
      changed()
      if (hold === 'request' && request === firstRefresh) await released
    })
    app.addHook('onSend', async (request, reply) => {
      if (!armed || !request.url.startsWith('/auth/')) return
      if (hold === 'answer' && request === firstRefresh) await released
      watch.statuses.push(`${request.url.slice('/auth/'.length)} ${reply.statusCode}`)
      changed()
    })
  })
  const sdk = version === 26 ? '/sdk-26.js' : '/demo/sdk.js'
  const first = await SdkPage.open(t, browser, origin, sdk)
  const second = await first.tab(t, origin, sdk)
  for (const page of [first, second]) await watchLocks(page, () => { if (armed) { watch.locks++; changed() } })
  await recipe(first, version === 26, true)
  await recipe(second, version === 26, false)
  for (const page of [first, second]) {
    await page.next(isFrame('websocket', authOk))
    page.seen()
  }
  return {
    first,
    second,
    clock,
    watch,
    arm: () => { armed = true },
    release,
    until: (done: (watch: Watch) => boolean) => done(watch) ? Promise.resolve() : new Promise<void>(resolve => { waiting.push({ done, wake: resolve }) })
  }
}

for (const version of [18, 26]) {
  t.test(`SDK ${version}: two tabs told of their tokens' ends at once refresh one after the other, and the session lives on`, async t => {
    const { first, second, clock, watch, arm, release, until } = await twoTabs(t, version, 'request')
    arm()
    clock.tick(20)
    // Both tabs are told; the first refresh is held until the other tab has sent its own, or waits for the lock.
    await until(({ arrived, locks }) => arrived.length === 2 || (arrived.length === 1 && locks === 2))
    t.same(watch.arrived, ['refresh'], 'the other tab waits for the lock: its refresh is not sent beside the first')
    release()
    for (const page of [first, second]) {
      await within(page.next(isFrame('websocket', authError('TOKEN_EXPIRED'))), 'TOKEN_EXPIRED')
      await within(page.next(isFrame('websocket', authOk)), 'the tab\'s socket authenticated again')
    }
    t.same(watch.statuses, ['refresh 200', 'refresh 200'], 'each refresh carried the cookie the one before set')
    t.notOk([first, second].some(page => page.events.some(event => event.event === 'close')), 'no socket closed')
    await first.page.evaluate(() => window.sdkTest.auth!.refresh())
    t.same(watch.statuses, ['refresh 200', 'refresh 200', 'refresh 200'], 'the session lives on')
  })

  t.test(`SDK ${version}: a logout in one tab while the other refreshes carries the cookie that refresh set, and logs out`, async t => {
    const { first, second, watch, arm, release, until } = await twoTabs(t, version, 'answer')
    arm()
    // The second tab refreshes; its answer (the new cookie) is held once the token has rotated. The first logs out.
    const refreshed = second.page.evaluate(() => window.sdkTest.auth!.refresh())
    await until(({ arrived }) => arrived.length === 1)
    const loggedOut = first.page.evaluate(async () => {
      try {
        await window.sdkTest.auth!.logout()
        return 'logged out'
      } catch (error) {
        return JSON.stringify(error)
      }
    })
    await until(({ arrived, locks }) => arrived.length === 2 || locks === 2)
    t.same(watch.arrived, ['refresh'], 'the logout waits for the lock: it is not sent with the cookie the refresh replaces')
    release()
    await refreshed
    t.equal(await loggedOut, 'logged out', 'the SDK\'s logout succeeds')
    t.same(watch.statuses, ['refresh 200', 'logout 204'])
    for (const page of [first, second]) {
      await within(page.next(isFrame('websocket', authError('AUTH_REVOKED'))), 'the tab\'s socket AUTH_REVOKED')
    }
  })
}
