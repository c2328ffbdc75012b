// A shared computer in Chromium: one user logs in with the SDK in session mode and walks away, the next logs in in
// cookie mode in the same browser and logs out. A login clears the other mode's cookie, ending its session, and a
// logout every login cookie it carries (lib/routes/auth.ts): the browser holds one login at most, and no socket opened
// there afterwards is the first user's.
import { join } from 'node:path'
import t from 'tap'
import { admin, editor, within } from '../helpers.js'
import { launchChromium } from './chromium.js'
import { startReference } from './reference.js'
import { authError, isFrame, isResponse, SdkPage } from './sdk-page.js'

const browser = await launchChromium(t)

t.test('the admin logs in in session mode and walks away; the editor logs in in cookie mode and logs out: the next socket is nobody\'s', async t => {
  const dir = t.testdir({ 'users.json': JSON.stringify([editor]) })
  // Public sockets: one opened without a credential answers whoami, with the public.
  const { origin, upgrades } = await startReference(t, { USERS_FILE: join(dir, 'users.json'), WEBSOCKETS_REST_AUTH: 'public' })
  const page = await SdkPage.open(t, browser, origin)
  await page.login('session', admin.email, admin.password)
  await page.connect('public')
  t.match(await page.whoami('admin'), { email: admin.email }, 'the admin\'s socket, left open')

  await page.login('cookie', editor.email, editor.password)
  t.equal(await page.cookie('directus_session_token'), undefined, 'the editor\'s login cleared the admin\'s session cookie')
  t.match(await page.cookie('directus_refresh_token'), { httpOnly: true }, 'and set the editor\'s refresh cookie')
  const revoked = await within(page.next(isFrame('websocket', authError('AUTH_REVOKED'))), 'the admin\'s socket\'s AUTH_REVOKED')
  t.same(revoked.frame, { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } }, 'the admin\'s session has ended')

  await page.logout()
  t.equal((await page.next(isResponse('/auth/logout'))).status, 204, 'the editor logs out')
  t.same((await page.context.cookies()).map(cookie => cookie.name), [], 'the browser holds no login cookie')
  await page.connect('public')
  t.match(upgrades.at(-1), { path: '/websocket', cookie: undefined }, 'the next socket carries no cookie')
  t.equal(await page.whoami('after'), null, 'and is nobody\'s: the public')
})
