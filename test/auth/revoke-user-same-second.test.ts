// A credential issued after a revokeUser, in the revocation's second, reads as issued the second after (its token's
// `iat`), so the revocation does not refuse it: a socket that takes it keeps it, however it came (a token of the HTTP
// refresh route, email and password, a refresh token on the socket), and a revocation in a later second still ends it.
// Only the Date is fake, stopped 100 ms into a second: sockets and timers run in real time.
import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { MemorySessionStore, type RealtimeOptions } from '../../lib/index.js'
import { hashRefreshToken, newRefreshToken, newSessionId } from '../../lib/auth/refresh-tokens.js'
import { admin, build, connect, stoppedDate, whoami, within, type Client } from '../helpers.js'

const sessionRevoked = { type: 'auth', status: 'error', error: { code: 'AUTH_REVOKED', message: 'Session revoked.' } }
const handshakeFailed = { type: 'auth', status: 'error', error: { code: 'AUTH_FAILED', message: 'Authentication handshake failed.' } }

/** An app with one user, revoked 300 ms ago, in the current second; a later second once the test ticks the clock. */
async function revokedThisSecond (t: Test) {
  const clock = stoppedDate(t, 900)
  const built = await build(t, { users: [admin], authRoutes: true, rest: { handlers: { whoami } } })
  const login = async () => (await built.app.inject({ method: 'POST', url: '/auth/login', payload: admin })).json().data as
    { access_token: string, refresh_token: string }
  const user = built.app.realtime.jwt.decode<{ id: string }>((await login()).access_token)!.id
  await built.app.realtime.revokeUser(user)
  clock.tick(300)
  return { ...built, clock, login, user }
}

async function whoIs (client: Client, uid: string): Promise<unknown> {
  client.send({ type: 'whoami', uid })
  return within(client.next(), 'the whoami answer')
}

/** A socket authenticated with `token` is `user`'s, and stays so. */
async function keptBy (t: Test, url: string, token: string, user: string): Promise<void> {
  const client = await connect(url)
  client.send({ type: 'auth', access_token: token, uid: 'a' })
  t.same(await within(client.next(), 'the auth answer'), { type: 'auth', status: 'ok', uid: 'a' })
  // An AUTH_REVOKED the socket was told as it took the token would come before the answer.
  t.same(await whoIs(client, 'w'), { type: 'whoami', uid: 'w', user }, 'still the user\'s')
  await client.close()
}

t.test('the HTTP refresh route\'s access token, in the revocation\'s second: the socket keeps it', async t => {
  const { app, url, login, user } = await revokedThisSecond(t)
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: (await login()).refresh_token } })
  t.equal(refreshed.statusCode, 200, 'the refresh')
  await keptBy(t, url('/websocket'), refreshed.json().data.access_token, user)
})

t.test('email and password on the socket, in the revocation\'s second: the socket keeps the login, until a later revocation', async t => {
  const { app, url, clock, user } = await revokedThisSecond(t)
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', email: admin.email, password: admin.password, uid: 'a' })
  t.match(await within(client.next(), 'the auth answer'), { type: 'auth', status: 'ok', uid: 'a', refresh_token: String })
  t.same(await whoIs(client, 'w1'), { type: 'whoami', uid: 'w1', user }, 'still the user\'s')
  clock.tick(1_000)
  await app.realtime.revokeUser(user)
  t.same(await within(client.next(), 'AUTH_REVOKED'), sessionRevoked, 'a revocation in the next second ends it')
  t.same(await whoIs(client, 'w2'), { type: 'whoami', uid: 'w2', user: null })
  await client.close()
})

t.test('a second revokeUser in the same second ends the sessions begun between the two: their tokens, dated the second after, and their sockets', async t => {
  const { app, url, clock, login, user } = await revokedThisSecond(t)
  const between = await login()
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: between.access_token, uid: 'a' })
  t.same(await within(client.next(), 'the auth answer'), { type: 'auth', status: 'ok', uid: 'a' })
  // 100 ms later, in the same second: a password changed twice, an admin's revocation.
  clock.tick(100)
  await app.realtime.revokeUser(user)
  t.same(await within(client.next(), 'AUTH_REVOKED'), sessionRevoked, 'the socket is told')
  const another = await connect(url('/websocket'))
  another.send({ type: 'auth', access_token: between.access_token })
  t.same(await within(another.next(), 'the auth answer'), handshakeFailed, 'the access token is refused')
  const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: between.refresh_token } })
  t.equal(refreshed.statusCode, 401, 'and so is its refresh token')
  // A login after the second, in the same second, is the user's.
  clock.tick(100)
  await keptBy(t, url('/websocket'), (await login()).access_token, user)
  await Promise.all([client.close(), another.close()])
})

t.test('a refresh token on the socket, in the revocation\'s second: the socket keeps the tokens it rotated to', async t => {
  const { url, login, user } = await revokedThisSecond(t)
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', refresh_token: (await login()).refresh_token, uid: 'r' })
  t.match(await within(client.next(), 'the auth answer'), { type: 'auth', status: 'ok', uid: 'r', refresh_token: String })
  t.same(await whoIs(client, 'w'), { type: 'whoami', uid: 'w', user }, 'still the user\'s')
  await client.close()
})

/**
 * A store whose endUser waits until the test lets it go: a revokeUser on Redis ends a user's sessions a batch at a
 * time, and a session of a later batch is still there, refreshable, after the revocation has gone out.
 */
class HeldStore extends MemorySessionStore {
  reached!: Promise<void>
  release!: () => void

  hold (): void {
    let reached!: () => void
    this.reached = new Promise(resolve => { reached = resolve })
    const over = new Promise<void>(resolve => { this.release = resolve })
    const endUser = super.endUser.bind(this)
    this.endUser = async (user, deadline) => {
      reached()
      await over
      return endUser(user, deadline)
    }
  }
}

async function heldRevocation (t: Test, options: RealtimeOptions = {}) {
  const clock = stoppedDate(t, 900)
  const sessionStore = new HeldStore()
  const built = await build(t, { users: [admin], authRoutes: true, sessionStore, rest: { handlers: { whoami } }, ...options })
  const login = async () => (await built.app.inject({ method: 'POST', url: '/auth/login', payload: admin })).json().data as
    { access_token: string, refresh_token: string }
  const refresh = (refreshToken: string) => built.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refreshToken } })
  const user = built.app.realtime.jwt.decode<{ id: string }>((await login()).access_token)!.id
  return { ...built, clock, sessionStore, login, refresh, user }
}

t.test('a refresh, in the revocation\'s second, of a session begun before it that the store has not ended yet: refused, the session ended', async t => {
  // The app's hook is not asked about a refresh that the revocation refuses.
  const asked: string[] = []
  const { app, url, clock, sessionStore, login, refresh, user } = await heldRevocation(t, {
    onAuthenticate: ({ source }) => { asked.push(source) }
  })
  const before = await login()
  asked.length = 0
  sessionStore.hold()
  const revoking = app.realtime.revokeUser(user)
  await sessionStore.reached
  clock.tick(300)
  const refreshed = await refresh(before.refresh_token)
  t.equal(refreshed.statusCode, 401, 'no tokens: the revocation ends the session')
  t.equal(refreshed.json().errors[0].extensions.code, 'INVALID_CREDENTIALS')
  t.same(asked, [], 'the hook not asked')
  sessionStore.release()
  await revoking
  clock.tick(100)
  t.equal((await refresh(before.refresh_token)).statusCode, 401, 'and stays ended')
  // A login after the revocation, in its second, is the user's: its session refreshes, and its token works.
  const after = await login()
  const again = await refresh(after.refresh_token)
  t.equal(again.statusCode, 200, 'a session begun after the revocation refreshes')
  await keptBy(t, url('/websocket'), again.json().data.access_token, user)
})

// Sessions whose id does not say they began after the revocation, though the store has them still: an earlier build's
// (a UUIDv4), and what a login a moment before the revocation writes on a process whose clock runs 5 s ahead.
const idsSayingNothing = {
  'of an earlier build (its id says not when it began)': () => randomUUID(),
  'whose id says its login began seconds from now (its login\'s process has a clock ahead)': () => newSessionId(Date.now() + 5_000)
}

for (const [what, sessionId] of Object.entries(idsSayingNothing)) {
  t.test(`a refresh, in the revocation's second, of a session ${what}: its token reads as issued then, and is refused`, async t => {
    const { app, url, clock, sessionStore, refresh, user } = await heldRevocation(t)
    const id = sessionId()
    const refreshToken = newRefreshToken(id)
    const identity = { user, role: 'administrator', admin: true }
    await sessionStore.create({ id, identity, tokenHash: hashRefreshToken(refreshToken), expiresAt: Date.now() + 60_000 }, Date.now() + 1_000)
    sessionStore.hold()
    const revoking = app.realtime.revokeUser(user)
    await sessionStore.reached
    clock.tick(300)
    const refreshed = await refresh(refreshToken)
    t.equal(refreshed.statusCode, 200, 'the store has it still, and its id does not say it began before')
    const { access_token: accessToken } = refreshed.json().data
    t.equal(app.realtime.jwt.decode<{ iat: number }>(accessToken)!.iat, Math.floor(Date.now() / 1000), 'dated as it is, not the second after')
    sessionStore.release()
    await revoking
    const client = await connect(url('/websocket'))
    client.send({ type: 'auth', access_token: accessToken })
    t.same(await within(client.next(), 'the auth answer'), handshakeFailed, 'refused as a token of before the revocation')
    await client.close()
  })
}

t.test('signAccessToken in the revocation\'s second: the second after without a session; as it is for a session the id says nothing of', async t => {
  const { app, url, clock } = await revokedThisSecond(t)
  const identity = { user: 'someone', role: null, admin: false }
  await app.realtime.revokeUser('someone')
  clock.tick(100)
  const iat = (token: string) => app.realtime.jwt.decode<{ iat: number }>(token)!.iat
  const second = Math.floor(Date.now() / 1000)
  const sessionless = app.realtime.signAccessToken(identity).access_token
  t.equal(iat(sessionless), second + 1, 'without a session: the second after')
  const own = app.realtime.signAccessToken(identity, 'a-session-of-the-app').access_token
  t.equal(iat(own), second, 'a session id of the app\'s own: as it is')
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', access_token: own })
  t.same(await within(client.next(), 'the auth answer'), handshakeFailed, 'refused while the revocation lasts')
  await client.close()
})

t.test('signAccessToken in the revocation\'s own millisecond, once revokeUser has resolved: the second after, and it works', async t => {
  // The Date does not move: the token is signed in the millisecond revokeUser stamped, as a fast store allows.
  const { app, url } = await build(t, { users: [admin], rest: { handlers: { whoami } } })
  const clock = stoppedDate(t, 900)
  const identity = { user: 'someone', role: null, admin: false }
  await app.realtime.revokeUser('someone')
  const token = app.realtime.signAccessToken(identity).access_token
  t.equal(app.realtime.jwt.decode<{ iat: number }>(token)!.iat, Math.floor(clock.now / 1000) + 1, 'the second after')
  await keptBy(t, url('/websocket'), token, 'someone')
})

t.test('revokeUser then a login, 100 times in one millisecond 5 ms before a second ends: every login\'s tokens are trusted and refresh', async t => {
  // Each revocation is stamped by the clock: one a millisecond after the last (to order revocations of one
  // millisecond) ran ahead of a stopped clock, past the second, and the logins' tokens read as from an issuer ahead.
  stoppedDate(t, 5)
  const { app } = await build(t, { users: [admin], authRoutes: true, attemptLimit: { points: 1_000 } })
  const user = app.realtime.jwt.decode<{ id: string }>((await app.realtime.login(admin)).access_token)!.id
  const failed: string[] = []
  for (let i = 0; i < 100; i++) {
    await app.realtime.revokeUser(user)
    const issued = await app.realtime.login(admin)
    if (app.realtime.trusted({ log: app.log } as never, app.realtime.jwt.verify(issued.access_token)) !== true) failed.push(`${i}: untrusted`)
    const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: issued.refresh_token } })
    if (refreshed.statusCode !== 200) failed.push(`${i}: refresh ${refreshed.statusCode}`)
  }
  t.same(failed, [], 'none untrusted, none refused')
})
