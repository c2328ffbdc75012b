// /websocket in handshake mode (PROTOCOL.md section 4), frame by frame.
import t from 'tap'
import { admin, build, connect } from '../helpers.js'

const handshakeFailed = (uid?: string) => ({
  type: 'auth',
  status: 'error',
  error: { code: 'AUTH_FAILED', message: 'Authentication handshake failed.' },
  ...(uid === undefined ? {} : { uid })
})

t.test('an access token authenticates, and the uid is echoed only when sent', async t => {
  const { app, url } = await build(t)
  const { access_token: token } = app.realtime.signAccessToken({ user: 'u1', role: 'editor', admin: false })

  const plain = await connect(url('/websocket'))
  plain.send({ type: 'auth', access_token: token })
  t.same(await plain.next(), { type: 'auth', status: 'ok' })
  plain.send({ type: 'ping' })
  t.same(await plain.next(), { type: 'pong' })
  await plain.close()

  const withUid = await connect(url('/websocket'))
  withUid.send({ type: 'auth', access_token: token, uid: 7 })
  t.same(await withUid.next(), { type: 'auth', status: 'ok', uid: 7 })
  withUid.send({ type: 'ping', uid: 'p1' })
  t.same(await withUid.next(), { type: 'pong', uid: 'p1' })
  await withUid.close()
})

t.test('email and password authenticate and hand out a refresh token, which authenticates once', async t => {
  const { url } = await build(t, { users: [admin] })
  const first = await connect(url('/websocket'))
  first.send({ type: 'auth', email: admin.email, password: admin.password, uid: 'a1' })
  const ok = await first.next() as { refresh_token: string }
  t.match(ok, { type: 'auth', status: 'ok', uid: 'a1', refresh_token: /^[\w-]{43,}$/ })
  t.same(Object.keys(ok), ['type', 'status', 'uid', 'refresh_token'], 'Directus field order')
  await first.close()

  const second = await connect(url('/websocket'))
  second.send({ type: 'auth', refresh_token: ok.refresh_token })
  const rotated = await second.next() as { refresh_token: string }
  t.match(rotated, { type: 'auth', status: 'ok', refresh_token: /^[\w-]{43,}$/ })
  t.not(rotated.refresh_token, ok.refresh_token, 'rotated')
  await second.close()

  const reused = await connect(url('/websocket'))
  reused.send({ type: 'auth', refresh_token: ok.refresh_token, uid: 'r1' })
  t.same(await reused.next(), handshakeFailed('r1'))
  t.equal((await reused.closed).code, 4401)
})

t.test('a first frame that is not a valid auth message fails the handshake with 4401', async t => {
  const { app, url } = await build(t, { users: [admin] })
  const expired = app.realtime.jwt.sign({ id: 'u1', exp: Math.floor(Date.now() / 1000) - 10 })
  const cases: [string, unknown, string | undefined][] = [
    ['not JSON', 'hello', undefined],
    ['not auth', { type: 'ping', uid: 'p' }, 'p'],
    ['subscribe first', { type: 'subscribe', collection: 'articles', uid: 's1' }, 's1'],
    ['no credential', { type: 'auth' }, undefined],
    ['malformed credential', { type: 'auth', accessToken: 'x', uid: 'm' }, 'm'],
    ['bad token', { type: 'auth', access_token: 'not-a-jwt' }, undefined],
    ['expired token', { type: 'auth', access_token: expired, uid: 'e' }, 'e'],
    ['wrong password', { type: 'auth', email: admin.email, password: 'wrong', uid: 'w' }, 'w'],
    ['unknown refresh token', { type: 'auth', refresh_token: 'nope' }, undefined],
    ['an array', [1, 2], undefined],
    ['a bad uid', { type: 'auth', access_token: 'x', uid: { no: 1 } }, undefined]
  ]
  for (const [name, frame, uid] of cases) {
    const client = await connect(url('/websocket'))
    client.send(frame)
    t.same(await client.next(), handshakeFailed(uid), name)
    t.equal((await client.closed).code, 4401, `${name}: closed 4401`)
  }
})

t.test('a silent client gets AUTH_FAILED and 4408 once the auth timeout runs out', async t => {
  const { url } = await build(t, { rest: { authTimeout: 0.2 } })
  const client = await connect(url('/websocket'))
  t.same(await client.next(), handshakeFailed())
  t.equal((await client.closed).code, 4408)
})

t.test('frames sent while the handshake is checked are processed after it, in order', async t => {
  const { url } = await build(t, { users: [admin] })
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', email: admin.email, password: admin.password, uid: 'a' })
  for (let i = 0; i < 20; i++) client.send({ type: 'ping', uid: i })
  t.match(await client.next(), { type: 'auth', status: 'ok', uid: 'a' })
  for (let i = 0; i < 20; i++) t.same(await client.next(), { type: 'pong', uid: i })
  await client.close()
})

t.test('re-authentication replaces the identity; a failed one closes with 4401', async t => {
  const { app, url } = await build(t, { rest: { handlers: { whoami: (m, c) => c.send({ type: 'whoami', user: c.accountability.user }) } } })
  const one = app.realtime.signAccessToken({ user: 'one', role: null, admin: false }).access_token
  const two = app.realtime.signAccessToken({ user: 'two', role: null, admin: false }).access_token
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: one })
  t.same(await client.next(), { type: 'auth', status: 'ok' })
  client.send({ type: 'auth', access_token: two, uid: 'again' })
  t.same(await client.next(), { type: 'auth', status: 'ok', uid: 'again' })
  client.send({ type: 'whoami' })
  t.same(await client.next(), { type: 'whoami', user: 'two' })
  client.send({ type: 'auth', access_token: 'bad', uid: 'x' })
  t.same(await client.next(), {
    type: 'auth', status: 'error', error: { code: 'AUTH_FAILED', message: 'Authentication failed.' }, uid: 'x'
  })
  t.equal((await client.closed).code, 4401)
})

t.test('a malformed auth message after the handshake answers INVALID_PAYLOAD naming the problem', async t => {
  const { app, url } = await build(t)
  const token = app.realtime.signAccessToken({ user: 'u1', role: null, admin: false }).access_token
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: token })
  await client.next()
  const cases: [object, RegExp][] = [
    [{ type: 'auth', accessToken: 'x', uid: 1 }, /must carry "access_token", "email" and "password", or "refresh_token"/],
    [{ type: 'auth', access_token: 'x', refresh_token: 'y', uid: 1 }, /only one of/],
    [{ type: 'auth', refresh_token: 'y', otp: '123456', uid: 1 }, /only one of/],
    [{ type: 'auth', email: 'a@b.c', uid: 1 }, /"password" must be a non-empty string/],
    [{ type: 'auth', access_token: 5, uid: 1 }, /"access_token" must be a non-empty string/],
    [{ type: 'auth', email: 'a@b.c', password: 'p', otp: 5, uid: 1 }, /"otp" must be a string/]
  ]
  for (const [frame, problem] of cases) {
    client.send(frame)
    t.match(await client.next(), { type: 'auth', status: 'error', error: { code: 'INVALID_PAYLOAD', message: problem }, uid: 1 })
  }
  client.send({ type: 'ping', uid: 'still-open' })
  t.same(await client.next(), { type: 'pong', uid: 'still-open' })
  await client.close()
})

t.test('after the handshake, bad frames answer INVALID_PAYLOAD and the socket stays open', async t => {
  const { app, url } = await build(t)
  const token = app.realtime.signAccessToken({ user: 'u1', role: null, admin: false }).access_token
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: token })
  await client.next()

  client.send('hello')
  t.same(await client.next(), {
    type: 'server', status: 'error', error: { code: 'INVALID_PAYLOAD', message: 'Unable to parse the incoming message.' }
  })
  client.send({ no: 'type' })
  t.match(await client.next(), { type: 'server', status: 'error', error: { code: 'INVALID_PAYLOAD', message: /string "type"/ } })
  client.send({ type: 'ping', uid: [1] })
  t.match(await client.next(), { type: 'ping', status: 'error', error: { code: 'INVALID_PAYLOAD', message: /"uid"/ } })
  client.send({ type: 'nonsense', uid: 'n' })
  t.same(await client.next(), {
    type: 'nonsense', status: 'error', error: { code: 'INVALID_PAYLOAD', message: 'Unknown message type "nonsense".' }, uid: 'n'
  })
  client.send({ type: '__proto__' })
  t.match(await client.next(), { type: '__proto__', error: { code: 'INVALID_PAYLOAD' } })
  client.ws.send(Buffer.from(JSON.stringify({ type: 'ping', uid: 'binary' })), { binary: true })
  t.same(await client.next(), { type: 'pong', uid: 'binary' })
  client.send({ type: 'pong' })
  client.send({ type: 'ping', uid: 'last' })
  t.same(await client.next(), { type: 'pong', uid: 'last' }, 'a pong is taken silently')
  await client.close()
})

t.test('a URL token authenticates at the upgrade: no handshake needed', async t => {
  const { app, url } = await build(t)
  const token = app.realtime.signAccessToken({ user: 'u1', role: null, admin: false }).access_token
  const client = await connect(url(`/websocket?access_token=${token}`))
  client.send({ type: 'ping' })
  t.same(await client.next(), { type: 'pong' })
  await client.close()
})

t.test('SERVICE_UNAVAILABLE when the credential check cannot run: 1013 on the handshake, open afterwards', async t => {
  let down = true
  const { app, url } = await build(t, {
    verifyCredentials: async () => {
      if (down) throw new Error('directory offline')
      return null
    }
  })
  const unavailable = (uid?: string) => ({
    type: 'auth', status: 'error', error: { code: 'SERVICE_UNAVAILABLE', message: 'Service unavailable.' }, ...(uid ? { uid } : {})
  })
  const first = await connect(url('/websocket'))
  first.send({ type: 'auth', email: 'a@b.c', password: 'p', uid: 'h' })
  t.same(await first.next(), unavailable('h'))
  t.equal((await first.closed).code, 1013)

  const token = app.realtime.signAccessToken({ user: 'u1', role: null, admin: false }).access_token
  const later = await connect(url('/websocket'))
  later.send({ type: 'auth', access_token: token })
  await later.next()
  later.send({ type: 'auth', email: 'a@b.c', password: 'p', uid: 'l' })
  t.same(await later.next(), unavailable('l'))
  later.send({ type: 'ping' })
  t.same(await later.next(), { type: 'pong' }, 'still open, still authenticated')
  down = false
  await later.close()
})

t.test('frames behind a failed handshake are dropped, not run as nobody', async t => {
  const { url } = await build(t)
  const client = await connect(url('/websocket'))
  // One write, so both frames are already in the server's buffer when the first one closes the socket.
  client.ws.send('hello')
  client.ws.send(JSON.stringify({ type: 'ping', uid: 'behind' }))
  t.same(await client.next(), handshakeFailed())
  t.equal((await client.closed).code, 4401)
  t.same(client.frames, [], 'no pong')
})

t.test('a user with a one-time-password secret authenticates with email, password and otp', async t => {
  const { Secret, TOTP } = await import('otpauth')
  const otpSecret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'
  const { url } = await build(t, { users: [{ ...admin, otpSecret }] })
  const otp = TOTP.generate({ secret: Secret.fromBase32(otpSecret) })
  const withOtp = await connect(url('/websocket'))
  withOtp.send({ type: 'auth', email: admin.email, password: admin.password, otp, uid: 'otp' })
  t.match(await withOtp.next(), { type: 'auth', status: 'ok', uid: 'otp', refresh_token: String })
  await withOtp.close()
  const without = await connect(url('/websocket'))
  without.send({ type: 'auth', email: admin.email, password: admin.password })
  t.same(await without.next(), handshakeFailed())
  t.equal((await without.closed).code, 4401)
})
