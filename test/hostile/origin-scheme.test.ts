// Origins (PROTOCOL.md section 11): the origin check compares scheme, host and port, so a page on another scheme of
// the same host (plain http beside an https site, a hijacked http: page on the same name) cannot open sockets.
import t from 'tap'
import { build, connect, refusedWith } from '../helpers.js'

t.test('the own host on another scheme or port is another origin: 403', async t => {
  const { url } = await build(t, { rest: { auth: 'public' }, origins: ['https://app.example.com'] })
  const host = new URL(url('/')).host
  for (const origin of [`https://${host}`, `ws://${host}`, 'http://app.example.com', 'https://app.example.com:8443']) {
    t.equal((await refusedWith(url('/websocket'), { origin })).status, 403, `${origin} refused`)
  }
  for (const origin of [`http://${host}`, 'https://app.example.com']) {
    const client = await connect(url('/websocket'), { origin })
    client.send({ type: 'ping' })
    t.same(await client.next(), { type: 'pong' }, `${origin} passes`)
    await client.close()
  }
})

t.test('behind a proxy that terminates TLS, the forwarded scheme is the page\'s', async t => {
  const { url } = await build(t, { rest: { auth: 'public' } }, { trustProxy: true })
  const host = new URL(url('/')).host
  const headers = { 'x-forwarded-proto': 'https' }
  t.equal((await refusedWith(url('/websocket'), { origin: `http://${host}`, headers })).status, 403, 'http page refused')
  const client = await connect(url('/websocket'), { origin: `https://${host}`, headers })
  await client.close()
  t.pass('https page passes')
})
