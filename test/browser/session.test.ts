// The Directus SDK in Chromium, login mode `session` (PROTOCOL.md sections 3 and 7): the whole session in an HttpOnly
// cookie that the browser sends with the upgrade, so the SDK's socket (authMode `public`) sends no token and opens
// already authenticated.
import t from 'tap'
import { admin, stoppedDate } from '../helpers.js'
import { launchChromium } from './chromium.js'
import { startReference } from './reference.js'
import { authError, isFrame, isResponse, logoutRevokes, SdkPage } from './sdk-page.js'

const browser = await launchChromium(t)
const adminMe = { email: admin.email, role: 'administrator', admin: true }
const hourMs = 3600_000

t.test('login sets the session cookie; the socket it authenticates at the upgrade answers whoami with the user', async t => {
  const { origin, upgrades } = await startReference(t)
  const page = await SdkPage.open(t, browser, origin)
  await page.login('session', admin.email, admin.password)
  const login = await page.next(isResponse('/auth/login'))
  t.equal(login.status, 200)
  t.same(login.body, { data: { expires: 24 * hourMs } }, 'no token in the body: SESSION_COOKIE_TTL (1 day)')
  const cookie = await page.cookie('directus_session_token')
  t.match(cookie, { path: '/', httpOnly: true, secure: false, sameSite: 'Lax' })
  t.ok(cookie!.expires > Date.now() / 1000 + 24 * 3600 - 60, 'for SESSION_COOKIE_TTL')
  t.equal(await page.cookie('directus_refresh_token'), undefined)
  t.equal(await page.page.evaluate(() => document.cookie), '', 'the page cannot read it')

  await page.connect('public')
  t.match(await page.whoami('me'), adminMe)
  t.notOk(page.events.some(event => event.event === 'sent' && event.frame.type === 'auth'), 'the SDK sent no token')
  t.match(upgrades, [{ path: '/websocket', cookie: /(?:^|; )directus_session_token=/ }])
})

t.test('expiry: TOKEN_EXPIRED at the session token\'s end; a refresh sets a new cookie, and a new socket carries it', async t => {
  // The Date stops; a socket's expiry timer is armed for the time left on it when it opens. Moved to just before the
  // session's end first, the timer fires as soon as the test ticks past it, while the browser keeps the cookie an hour.
  const clock = stoppedDate(t)
  const { origin } = await startReference(t, { SESSION_COOKIE_TTL: '1h' })
  const page = await SdkPage.open(t, browser, origin)
  await page.login('session', admin.email, admin.password)
  const before = (await page.cookie('directus_session_token'))!.value
  clock.tick(hourMs - 1000) // 20 ms before the `exp` of a token signed in the second before the stopped Date's next
  await page.connect('public')
  t.match(await page.whoami('before'), adminMe)

  clock.tick(20)
  const expired = await page.next(isFrame('websocket', authError('TOKEN_EXPIRED')))
  t.same(expired.frame, { type: 'auth', status: 'error', error: { code: 'TOKEN_EXPIRED', message: 'Token expired.' } })
  // No token to re-authenticate this socket with: the cookie is refreshed, and a new socket carries it.
  t.match(await page.refresh(), { expires: hourMs })
  const refresh = await page.next(isResponse('/auth/refresh'))
  t.same({ status: refresh.status, body: refresh.body }, { status: 200, body: { data: { expires: hourMs } } })
  t.not((await page.cookie('directus_session_token'))!.value, before, 'a new session cookie')
  await page.connect('public')
  t.match(await page.whoami('after-refresh'), adminMe, 'the new socket is authenticated')
})

t.test('two tabs refreshing the session cookie at once (restored together, or waking from sleep) both succeed, and the session lives on', async t => {
  let arrived = 0
  let release!: () => void
  const together = new Promise<void>(resolve => { release = resolve })
  const { origin } = await startReference(t, {}, app => {
    // The first two refreshes are held until both are in: each carries the cookie as it was before either was answered.
    app.addHook('onRequest', async (request) => {
      if (request.url !== '/auth/refresh') return
      if (++arrived === 2) release()
      await together
    })
  })
  const page = await SdkPage.open(t, browser, origin)
  await page.login('session', admin.email, admin.password)
  const before = (await page.cookie('directus_session_token'))!.value
  const tab = await page.context.newPage()
  await tab.goto(`${origin}/`)
  const [sdk, other] = await Promise.all([
    page.refresh(),
    tab.evaluate(async () => (await fetch('/auth/refresh', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"mode":"session"}', credentials: 'include' })).status)
  ])
  t.match(sdk, { expires: 24 * hourMs }, 'the SDK\'s refresh in the first tab succeeds')
  t.equal(other, 200, 'and the second tab\'s')
  t.not((await page.cookie('directus_session_token'))!.value, before, 'the browser keeps a new cookie')
  await page.connect('public')
  t.match(await page.whoami('after'), adminMe, 'a socket it opens is authenticated')
  t.match(await page.refresh(), { expires: 24 * hourMs }, 'and the next refresh works')
})

t.test('logout with the cookie: AUTH_REVOKED on the socket, the cookie cleared, and refused if put back', async t => {
  const { origin, upgrades } = await startReference(t)
  const page = await SdkPage.open(t, browser, origin)
  await page.login('session', admin.email, admin.password)
  const cookie = (await page.cookie('directus_session_token'))!
  await page.connect('public')
  t.match(await page.whoami('before'), adminMe)

  await logoutRevokes(t, page)
  t.equal(await page.cookie('directus_session_token'), undefined)

  // A copy of the cookie taken before the logout opens nothing.
  await page.context.addCookies([cookie])
  await t.rejects(page.connect('public'))
  t.match(upgrades.at(-1), { path: '/websocket', cookie: `${cookie.name}=${cookie.value}`, status: 401 })
})
