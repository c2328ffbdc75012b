// No socket leaves a timer or handle behind once closed.
import t from 'tap'
import { admin, build, connect, letGoCount, nextSecond, stoppedDate, type Client } from '../helpers.js'

const timers = () => process.getActiveResourcesInfo().filter(kind => kind === 'Timeout').length

t.test('closed sockets leave no timer behind, whatever phase they closed in', async t => {
  // Timers stay real, to be counted; the Date stops before a second, for a token that expires when told.
  const clock = stoppedDate(t)
  const { app, url } = await build(t, { users: [admin], heartbeat: { enabled: false } })
  const gone = letGoCount(app)
  const baseline = timers()
  const clients: Client[] = []
  for (let i = 0; i < 10; i++) clients.push(await connect(url('/websocket'))) // handshake: auth timer
  for (let i = 0; i < 10; i++) {
    const client = await connect(url('/websocket'))
    client.send({ type: 'auth', access_token: app.realtime.signAccessToken({ user: `u${i}`, role: null, admin: false }).access_token })
    await client.next() // authenticated: expiry timer
    clients.push(client)
  }
  const expiring = await connect(url('/websocket'))
  expiring.send({ type: 'auth', access_token: app.realtime.jwt.sign({ id: 'soon', exp: nextSecond() }) })
  await expiring.next()
  clock.tick(20)
  await expiring.next() // TOKEN_EXPIRED: now in the re-auth window
  clients.push(expiring)
  t.ok(timers() > baseline, 'the clocks of the open sockets run')

  // Half closed by the client, half by the server.
  await Promise.all(clients.slice(0, 10).map(client => client.close()))
  app.realtime.close({})
  await Promise.all(clients.map(client => client.closed))
  while (gone() < clients.length) await new Promise(resolve => setImmediate(resolve))
  t.equal(timers(), baseline, 'back to the baseline')
})

t.test('a socket that closes while its password is being checked leaves nothing behind', async t => {
  const { app, url } = await build(t, { users: [admin], heartbeat: { enabled: false } })
  const gone = letGoCount(app)
  const baseline = timers()
  const client = await connect(url('/websocket'))
  client.send({ type: 'auth', email: admin.email, password: admin.password })
  await client.close()
  // The check finishes after the close: its result must not restart a timer on the closed socket.
  while (gone() < 1) await new Promise(resolve => setImmediate(resolve))
  const login = await app.realtime.login({ email: admin.email, password: admin.password }) // after the first check
  t.ok(login.access_token)
  t.equal(timers(), baseline, 'no timer left')
})
