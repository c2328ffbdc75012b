// The demo page at `/` of the reference server, driven end to end in Chromium as a newcomer would: fill the form,
// click, and read the frames in the log. What it serves is checked in test/reference-server/reference-server.test.ts.
import t from 'tap'
import type { Page } from 'playwright-core'
import { admin, stoppedDate } from '../helpers.js'
import { launchChromium, openPage } from './chromium.js'
import { startReference } from './reference.js'

const browser = await launchChromium(t)
const adminMe = { email: admin.email, role: 'administrator', admin: true }

/**
 * The frame of the first log line of that connection and direction whose text has `text`, once it is there; a line of
 * the page's own errors ends the wait with its text.
 */
async function logged (page: Page, connection: string, text: string, direction = 'in'): Promise<unknown> {
  const line = page.locator(`#log li[data-connection="${connection}"][data-direction="${direction}"]`, { hasText: text }).first()
  const error = page.locator('#log li[data-connection="page"]').first()
  await Promise.race([
    line.waitFor(),
    error.waitFor().then(async () => { throw new Error(`the page logged ${await error.textContent()}`) })
  ])
  const frame = await line.locator('.frame').textContent()
  return direction === 'event' ? frame : JSON.parse(frame!)
}

async function logIn (page: Page, origin: string, mode: string): Promise<void> {
  await page.goto(`${origin}/`)
  await page.getByLabel('Email').fill(admin.email)
  await page.getByLabel('Password').fill(admin.password)
  await page.getByLabel('Login mode').selectOption(mode)
  await page.getByRole('button', { name: 'Log in' }).click()
  await page.locator('#status', { hasText: `logged in (${mode})` }).waitFor()
}

for (const mode of ['json', 'cookie', 'session']) {
  t.test(`${mode} mode: log in, connect, whoami, GraphQL me and ticks, log out, and each frame is logged as it arrives`, async t => {
    const { origin } = await startReference(t)
    const page = await openPage(t, browser)
    await logIn(page, origin, mode)
    t.equal(await page.getByLabel('Socket auth mode').inputValue(), mode === 'session' ? 'public' : 'handshake', 'the auth mode that fits')

    await page.locator('#connect').click()
    await page.locator('#status', { hasText: 'connected' }).waitFor()
    await page.locator('#whoami').click()
    t.match(await logged(page, 'websocket', '"whoami"'), { type: 'whoami', data: adminMe })
    t.match(await page.locator('#log li time').first().textContent(), /^\d\d:\d\d:\d\d\.\d{3}$/, 'each line has its time')
    t.match(await logged(page, 'websocket', '"whoami"', 'out'), { type: 'whoami' }, 'frames sent are logged too')

    await page.locator('#graphql').click()
    t.match(await logged(page, 'graphql', '"me"'), { type: 'next', payload: { data: { me: { email: admin.email } } } })
    t.match(await logged(page, 'graphql', '"ticks"'), { type: 'next', payload: { data: { ticks: 1 } } })

    await page.locator('#logout').click()
    t.match(await logged(page, 'websocket', 'AUTH_REVOKED'), { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED' } })
    t.equal(await logged(page, 'graphql', 'closed', 'event'), 'closed 4403 Forbidden')
    await page.locator('#status', { hasText: `logged out (${mode})` }).waitFor()
  })
}

t.test('session mode: on TOKEN_EXPIRED the page refreshes the cookie and opens a socket that carries it', async t => {
  // The Date stops; a socket's expiry timer is armed for the time left on it when it opens. Moved to just before the
  // session's end first, the timer fires as soon as the test ticks past it, while the browser keeps the cookie an hour.
  const clock = stoppedDate(t)
  const { origin, upgrades } = await startReference(t, { SESSION_COOKIE_TTL: '1h' })
  const page = await openPage(t, browser)
  await logIn(page, origin, 'session')
  clock.tick(3600_000 - 1000) // 20 ms before the `exp` of a token signed in the second before the stopped Date's next
  await page.locator('#connect').click()
  await page.locator('#status', { hasText: 'connected' }).waitFor()

  clock.tick(20)
  t.match(await logged(page, 'websocket', 'TOKEN_EXPIRED'), { type: 'auth', status: 'error', error: { code: 'TOKEN_EXPIRED' } })
  t.equal(await logged(page, 'http', '/auth/refresh', 'event'), 'POST /auth/refresh 200')
  await page.locator('#log li[data-connection="websocket"][data-direction="event"] .frame', { hasText: /^open$/ }).nth(1).waitFor()
  t.equal(upgrades.length, 2, 'a second socket')
  await page.locator('#whoami').click()
  t.match(await logged(page, 'websocket', '"whoami"'), { type: 'whoami', data: adminMe })
})
