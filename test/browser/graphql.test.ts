// graphql-ws's client in Chromium against the reference server's /graphql (PROTOCOL.md sections 3, 5 and 7): with
// the access token of a json login in `connection_init`, or with nothing but the session cookie the browser sends.
import t from 'tap'
import { admin } from '../helpers.js'
import { launchChromium } from './chromium.js'
import { startReference } from './reference.js'
import { isClose, isFrame, isSent, SdkPage, type Frame } from './sdk-page.js'

const browser = await launchChromium(t)
const adminMe = { email: admin.email }
const meQuery = '{ me { id email } }'
const isNext = (frame: Frame) => frame.type === 'next'

t.test('json login: `me` through connection_init\'s access token, ticks, and logout closes the socket with 4403', async t => {
  const { origin } = await startReference(t)
  const page = await SdkPage.open(t, browser, origin)
  await page.login('json', admin.email, admin.password)
  await page.subscribe(meQuery)
  t.match((await page.next(isSent('graphql'))).frame, { type: 'connection_init', payload: { access_token: String } })
  t.match((await page.next(isFrame('graphql'))).frame, { type: 'connection_ack' })
  t.match((await page.next(isFrame('graphql', isNext))).frame, { type: 'next', payload: { data: { me: adminMe } } })

  await page.subscribe('subscription { ticks(every: 50) }')
  t.match((await page.next(isFrame('graphql', isNext))).frame, { type: 'next', payload: { data: { ticks: 1 } } })
  await page.logout()
  t.same(await page.next(isClose('graphql')), { connection: 'graphql', event: 'close', code: 4403, reason: 'Forbidden' })
})

t.test('session login: the cookie authenticates the socket at the upgrade; `me` with an empty connection_init', async t => {
  const { origin } = await startReference(t)
  const page = await SdkPage.open(t, browser, origin)
  await page.login('session', admin.email, admin.password)
  await page.subscribe(meQuery)
  t.same((await page.next(isSent('graphql'))).frame, { type: 'connection_init', payload: {} })
  t.match((await page.next(isFrame('graphql', isNext))).frame, { type: 'next', payload: { data: { me: adminMe } } })

  await page.subscribe('subscription { ticks(every: 50) }')
  await page.next(isFrame('graphql', isNext))
  await page.logout()
  t.same(await page.next(isClose('graphql')), { connection: 'graphql', event: 'close', code: 4403, reason: 'Forbidden' })
})
