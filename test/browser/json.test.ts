// The Directus SDK in Chromium, login mode `json` (PROTOCOL.md section 7): the tokens in the body, the socket
// authenticated with the access token in handshake mode.
import t from 'tap'
import { admin, stoppedDate } from '../helpers.js'
import { launchChromium } from './chromium.js'
import { startReference } from './reference.js'
import { authError, authOk, isFrame, isResponse, logoutRevokes, SdkPage } from './sdk-page.js'

const browser = await launchChromium(t)
const adminMe = { email: admin.email, role: 'administrator', admin: true }

t.test('login answers the tokens in the body and sets no cookie; the socket authenticates with the access token', async t => {
  const { origin } = await startReference(t)
  const page = await SdkPage.open(t, browser, origin)
  await page.login('json', admin.email, admin.password)
  const login = await page.next(isResponse('/auth/login'))
  t.equal(login.status, 200)
  t.match(login.body, { data: { access_token: String, expires: 900_000, refresh_token: String } })
  t.same(await page.context.cookies(), [])

  await page.connect('handshake')
  t.match((await page.next(isFrame('websocket'))).frame, { type: 'auth', status: 'ok' })
  t.match(await page.whoami('me'), adminMe)
})

t.test('expiry: TOKEN_EXPIRED, the SDK refreshes over HTTP and re-authenticates, the socket stays open', async t => {
  // Access tokens live a second on a Date stopped just before the second the first one ends at: it expires when the
  // test ticks the Date, and the tokens after it never do. The SDK refreshes before every token it hands out then.
  const clock = stoppedDate(t)
  const { origin, refreshes } = await startReference(t, { ACCESS_TOKEN_TTL: '1s' })
  const page = await SdkPage.open(t, browser, origin)
  await page.login('json', admin.email, admin.password)
  await page.connect('handshake')
  await page.next(isFrame('websocket', authOk))
  const before = refreshes()

  page.seen()
  clock.tick(20)
  const expired = await page.next(isFrame('websocket', authError('TOKEN_EXPIRED')))
  t.same(expired.frame, { type: 'auth', status: 'error', error: { code: 'TOKEN_EXPIRED', message: 'Token expired.' } })
  t.equal((await page.next(isResponse('/auth/refresh'))).status, 200)
  await page.next(isFrame('websocket', authOk))
  t.ok(refreshes() > before, 'refreshed over HTTP before re-authenticating')
  t.match(await page.whoami('after-expiry'), adminMe, 'authenticated again')
  t.notOk(page.events.some(event => event.event === 'close'), 'no socket closed')
})

t.test('logout revokes the session: the open socket gets AUTH_REVOKED', async t => {
  const { origin } = await startReference(t)
  const page = await SdkPage.open(t, browser, origin)
  await page.login('json', admin.email, admin.password)
  await page.connect('handshake')
  t.match(await page.whoami('before'), adminMe)

  await logoutRevokes(t, page)
})
