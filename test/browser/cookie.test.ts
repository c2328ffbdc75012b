// The Directus SDK in Chromium, login mode `cookie` (PROTOCOL.md section 7, the SDK's default in browsers): the
// access token in the body, the refresh token in an HttpOnly cookie the page cannot read, the socket authenticated
// with the access token in handshake mode.
import t from 'tap'
import type { Page } from 'playwright-core'
import { admin, stoppedDate } from '../helpers.js'
import { launchChromium } from './chromium.js'
import { startReference } from './reference.js'
import { authError, authOk, isFrame, isResponse, logoutRevokes, SdkPage } from './sdk-page.js'

const browser = await launchChromium(t)
const adminMe = { email: admin.email, role: 'administrator', admin: true }
const weekSeconds = 7 * 24 * 3600

t.test('login answers the access token and sets the refresh token as an HttpOnly cookie; the socket authenticates', async t => {
  const { origin } = await startReference(t)
  const page = await SdkPage.open(t, browser, origin)
  await page.login('cookie', admin.email, admin.password)
  const login = await page.next(isResponse('/auth/login'))
  t.equal(login.status, 200)
  t.match(login.body, { data: { access_token: String, expires: 900_000 } })
  t.notOk('refresh_token' in (login.body as { data: object }).data, 'no refresh token in the body')
  const cookie = await page.cookie('directus_refresh_token')
  t.match(cookie, { path: '/', httpOnly: true, secure: false, sameSite: 'Lax' })
  t.ok(cookie!.expires > Date.now() / 1000 + weekSeconds - 60, 'for REFRESH_TOKEN_TTL (7 days)')
  t.equal(await page.page.evaluate(() => document.cookie), '', 'the page cannot read it')

  await page.connect('handshake')
  t.match((await page.next(isFrame('websocket'))).frame, { type: 'auth', status: 'ok' })
  t.match(await page.whoami('me'), adminMe)
})

t.test('expiry: TOKEN_EXPIRED, the SDK refreshes with the cookie, which rotates, and re-authenticates', async t => {
  // Access tokens live a second on a Date stopped just before the second the first one ends at: it expires when the
  // test ticks the Date, and the tokens after it never do. The SDK refreshes before every token it hands out then.
  const clock = stoppedDate(t)
  const { origin } = await startReference(t, { ACCESS_TOKEN_TTL: '1s' })
  const page = await SdkPage.open(t, browser, origin)
  await page.login('cookie', admin.email, admin.password)
  await page.connect('handshake')
  await page.next(isFrame('websocket', authOk))
  const before = (await page.cookie('directus_refresh_token'))!.value

  page.seen()
  clock.tick(20)
  const expired = await page.next(isFrame('websocket', authError('TOKEN_EXPIRED')))
  t.same(expired.frame, { type: 'auth', status: 'error', error: { code: 'TOKEN_EXPIRED', message: 'Token expired.' } })
  const refresh = await page.next(isResponse('/auth/refresh'))
  t.equal(refresh.status, 200)
  t.match(refresh.body, { data: { access_token: String, expires: 1000 } })
  t.notOk('refresh_token' in (refresh.body as { data: object }).data, 'no refresh token in the body')
  await page.next(isFrame('websocket', authOk))
  t.not((await page.cookie('directus_refresh_token'))!.value, before, 'a new refresh cookie')
  t.match(await page.whoami('after-expiry'), adminMe, 'authenticated again')
  t.notOk(page.events.some(event => event.event === 'close'), 'no socket closed')
})

t.test('logout with the cookie revokes the session: AUTH_REVOKED on the socket, and the cookie is cleared', async t => {
  const { origin } = await startReference(t)
  const page = await SdkPage.open(t, browser, origin)
  await page.login('cookie', admin.email, admin.password)
  await page.connect('handshake')
  t.match(await page.whoami('before'), adminMe)

  await logoutRevokes(t, page)
  t.equal(await page.cookie('directus_refresh_token'), undefined)
})

t.test('two tabs refreshing the refresh cookie at once: one is reuse, which ends the session (the protocol\'s rule); refreshing within a Web Lock, both work', async t => {
  /** A refresh from the page, as the SDK's in `cookie` mode, inside a lock every tab of the origin shares when `locked`. */
  const refreshIn = (page: Page, locked: boolean) => page.evaluate(async (locked) => {
    const refresh = async () => (await fetch('/auth/refresh', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"mode":"cookie"}', credentials: 'include' })).status
    return locked ? await navigator.locks.request('directus-refresh', refresh) : await refresh()
  }, locked)
  for (const locked of [false, true]) {
    await t.test(locked ? 'each in navigator.locks' : 'at once', async t => {
      let arrived = 0
      let release!: () => void
      const together = new Promise<void>(resolve => { release = resolve })
      const { origin } = await startReference(t, {}, app => {
        // Unlocked, the first two refreshes are held until both are in: each carries the cookie as it was before either was answered.
        if (!locked) {
          app.addHook('onRequest', async (request) => {
            if (request.url !== '/auth/refresh' || ++arrived > 2) return
            if (arrived === 2) release()
            await together
          })
        }
      })
      const page = await SdkPage.open(t, browser, origin)
      await page.login('cookie', admin.email, admin.password)
      const tab = await page.context.newPage()
      await tab.goto(`${origin}/`)
      const statuses = await Promise.all([refreshIn(page.page, locked), refreshIn(tab, locked)])
      t.same(statuses.sort(), locked ? [200, 200] : [200, 401], locked ? 'one after the other, each with the cookie the one before set' : 'one wins, the other is reuse')
      t.equal(await refreshIn(page.page, locked), locked ? 200 : 401, locked ? 'the session lives on' : 'which ended the session')
    })
  }
})
